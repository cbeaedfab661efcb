//! The OpenAPI schemas of the fields keyward's request types share (scope lists, allowlists), each
//! with the pattern its parser enforces. A leaf: the request types (`management`) and the
//! document (`openapi`) both use it without one depending on the other.
//!
//! Only with the `openapi` feature.

use utoipa::openapi::schema::Schema;

/// A string matching `pattern`, at most `max_length` characters.
fn patterned(pattern: &str, max_length: Option<usize>) -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .pattern(Some(pattern))
        .max_length(max_length)
        .build()
}

fn array_of(items: utoipa::openapi::schema::Object, nullable: bool) -> Schema {
    use utoipa::openapi::schema::{ArrayBuilder, SchemaType, Type};
    let mut array = ArrayBuilder::new().items(items);
    if nullable {
        array = array.schema_type(SchemaType::from_iter([Type::Array, Type::Null]));
    }
    Schema::Array(array.build())
}

/// A list of scopes, each as [`crate::scope::SCOPE_PATTERN`] states: the schema of every
/// field or parameter that takes scopes (utoipa's `schema_with`).
#[must_use]
pub fn scope_list() -> Schema {
    let scope = patterned(
        crate::scope::SCOPE_PATTERN,
        Some(crate::scope::MAX_SCOPE_LEN),
    );
    array_of(scope, false)
}

/// [`scope_list`], or `null`.
pub(crate) fn nullable_scope_list() -> Schema {
    let scope = patterned(
        crate::scope::SCOPE_PATTERN,
        Some(crate::scope::MAX_SCOPE_LEN),
    );
    array_of(scope, true)
}

/// A list of allowlist entries, each as [`crate::model::IP_NETWORK_PATTERN`] states.
pub(crate) fn ip_list() -> Schema {
    array_of(patterned(crate::model::IP_NETWORK_PATTERN, None), false)
}

/// [`ip_list`], or `null`.
pub(crate) fn nullable_ip_list() -> Schema {
    array_of(patterned(crate::model::IP_NETWORK_PATTERN, None), true)
}
