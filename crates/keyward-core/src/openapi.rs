//! The OpenAPI 3.1 document of the management routes (DESIGN.md §6), built once here with
//! utoipa's builder API so that every adapter serves the same JSON.
//!
//! Only with the `openapi` feature.

use utoipa::openapi::path::{
    HttpMethod, Operation, OperationBuilder, ParameterBuilder, ParameterIn, PathItem,
    PathItemBuilder,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{ComponentsBuilder, Schema};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    Content, HeaderBuilder, InfoBuilder, OpenApiBuilder, PathsBuilder, Ref, RefOr, Required,
    ResponseBuilder,
};
use utoipa::{PartialSchema, ToSchema};

use crate::error::ErrorCode;
use crate::model::{Credits, Deactivator, KeyState, KeyView, Policy, RateLimit, Usage};
use crate::problem::{CONTENT_TYPE as PROBLEM, Problem};
use crate::service::{
    CreateKeyRequest, CreatedKey, FieldError, KeyPage, RotateKeyRequest, UpdateKeyRequest,
};

/// The document type (utoipa's), re-exported so that adapters and applications name it
/// without depending on utoipa.
pub use utoipa::openapi::OpenApi;

/// Name of the bearer security scheme.
pub const BEARER_SCHEME: &str = "apiKeyAuth";
/// Name of the SigV4 security scheme (present when signing is enabled).
pub const HMAC_SCHEME: &str = "apiKeyHmacAuth";

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

/// A list of scopes, each as [`crate::scope::SCOPE_PATTERN`] states.
pub(crate) fn scope_list() -> Schema {
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

fn schema_ref<T: ToSchema>() -> RefOr<Schema> {
    RefOr::Ref(Ref::from_schema_name(T::name()))
}

fn json<T: ToSchema>() -> Content {
    Content::new(Some(schema_ref::<T>()))
}

fn problem_response(op: OperationBuilder, code: ErrorCode, description: &str) -> OperationBuilder {
    let mut response = ResponseBuilder::new()
        .description(description)
        .content(PROBLEM, json::<Problem>());
    if code.status() == 401 {
        response = response.header(
            "WWW-Authenticate",
            HeaderBuilder::new()
                .schema(String::schema())
                .description(Some("`Bearer`"))
                .build(),
        );
    }
    if code.status() == 429 {
        response = response.header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(u64::schema())
                .description(Some("seconds to wait"))
                .build(),
        );
    }
    op.response(code.status().to_string(), response.build())
}

/// The errors every management route may answer with.
fn common_errors(op: OperationBuilder) -> OperationBuilder {
    let op = problem_response(
        op,
        ErrorCode::OwnerUnauthenticated,
        "No owner could be resolved for the request (`OWNER_UNAUTHENTICATED`); on the admin \
         routes, a bad administrator key (`API_KEY_INVALID`)",
    );
    let op = problem_response(
        op,
        ErrorCode::ManagementForbidden,
        "Not allowed: `FORBIDDEN` for API-key callers or a failed admin check; \
         `MANAGEMENT_FORBIDDEN` when this caller may not make this change or act on this owner \
         (owner ids starting `keyward` are for administrators), with the refused fields (and \
         scopes) in `errors`",
    );
    problem_response(
        op,
        ErrorCode::AuthUnavailable,
        "The key store is unavailable",
    )
}

fn with_body<T: ToSchema>(op: OperationBuilder) -> OperationBuilder {
    with_body_required::<T>(op, Required::True)
}

fn with_body_required<T: ToSchema>(op: OperationBuilder, required: Required) -> OperationBuilder {
    let op = op.request_body(Some(
        RequestBodyBuilder::new()
            .content("application/json", json::<T>())
            .required(Some(required))
            .build(),
    ));
    let op = problem_response(op, ErrorCode::BadRequest, "The body is not valid JSON");
    let op = problem_response(op, ErrorCode::PayloadTooLarge, "The body exceeds the limit");
    let op = op.response(
        "415",
        ResponseBuilder::new()
            .description("The body is not application/json")
            .content(PROBLEM, json::<Problem>())
            .build(),
    );
    problem_response(
        op,
        ErrorCode::ValidationFailed,
        "The body is invalid (field-level detail in `errors`)",
    )
}

fn ok<T: ToSchema>(op: OperationBuilder, status: u16, description: &str) -> OperationBuilder {
    op.response(
        status.to_string(),
        ResponseBuilder::new()
            .description(description)
            .content("application/json", json::<T>())
            .build(),
    )
}

/// A `200`/`201` about one key: its version as `ETag`, and with a raw key `no-store`.
fn ok_key<T: ToSchema>(
    op: OperationBuilder,
    status: u16,
    description: &str,
    raw_key: bool,
) -> OperationBuilder {
    let mut response = ResponseBuilder::new()
        .description(description)
        .content("application/json", json::<T>())
        .header(
            "ETag",
            HeaderBuilder::new()
                .schema(String::schema())
                .description(Some("The key's version, for `If-Match`"))
                .build(),
        );
    if raw_key {
        response = response.header(
            "Cache-Control",
            HeaderBuilder::new()
                .schema(String::schema())
                .description(Some("`no-store`: the answer carries a raw key"))
                .build(),
        );
    }
    op.response(status.to_string(), response.build())
}

/// The optional `If-Match` header and its `412`.
fn if_match(op: OperationBuilder) -> OperationBuilder {
    let op = op.parameter(
        ParameterBuilder::new()
            .name("If-Match")
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(
                "Act only if the key is still at this version (its `ETag`); `*` for any. Which \
                 version is current depends on the key's history: a well-formed tag of another \
                 version is `412`",
            ))
            .schema(Some(String::schema())),
    );
    problem_response(
        op,
        ErrorCode::PreconditionFailed,
        "`If-Match` names another version than the key's current one",
    )
}

fn path_param(name: &str, description: &str) -> ParameterBuilder {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .description(Some(description))
        .schema(Some(String::schema()))
}

fn op(id: &str, summary: &str, tag: &str) -> OperationBuilder {
    OperationBuilder::new()
        .operation_id(Some(id))
        .summary(Some(summary))
        .tag(tag)
}

fn not_found(op: OperationBuilder) -> OperationBuilder {
    problem_response(
        op,
        ErrorCode::ApiKeyNotFound,
        "No such key for this owner (missing and foreign keys alike)",
    )
}

fn create(id: &str, tag: &str) -> Operation {
    let o = op(
        id,
        "Create an API key; the raw key is in the response, this once",
        tag,
    );
    let o = ok_key::<CreatedKey>(
        with_body::<CreateKeyRequest>(o),
        201,
        "The key was created",
        true,
    );
    let o = problem_response(
        o,
        ErrorCode::ApiKeyLimitReached,
        "The owner has the maximum number of keys",
    );
    common_errors(o).build()
}

fn list(id: &str, tag: &str) -> Operation {
    let o = op(id, "List keys, oldest first", tag)
        .parameter(
            ParameterBuilder::new()
                .name("limit")
                .parameter_in(ParameterIn::Query)
                .required(Required::False)
                .description(Some("Page size, 1–100 (default 50)"))
                .schema(Some(
                    utoipa::openapi::schema::ObjectBuilder::new()
                        .schema_type(utoipa::openapi::schema::Type::Integer)
                        .minimum(Some(1))
                        .maximum(Some(crate::store::MAX_PAGE_SIZE)),
                )),
        )
        .parameter(
            ParameterBuilder::new()
                .name("cursor")
                .parameter_in(ParameterIn::Query)
                .required(Required::False)
                .description(Some("`next_cursor` of the previous page"))
                .schema(Some(
                    utoipa::openapi::schema::ObjectBuilder::new()
                        .schema_type(utoipa::openapi::schema::Type::String)
                        .pattern(Some(crate::store::CURSOR_PATTERN)),
                )),
        );
    let o = ok::<KeyPage>(o, 200, "A page of keys");
    let o = problem_response(o, ErrorCode::ValidationFailed, "Bad `limit` or `cursor`");
    common_errors(o).build()
}

fn get(id: &str, tag: &str) -> Operation {
    let o = ok_key::<KeyView>(op(id, "One key's safe view", tag), 200, "The key", false);
    common_errors(not_found(o)).build()
}

fn update(id: &str, tag: &str) -> Operation {
    let o = op(
        id,
        "Change the fields the body names (owners: name, description, narrower scopes, \
         shorter expiry, deactivate, reactivate what they deactivated; the rest is for \
         administrators)",
        tag,
    );
    let o = ok_key::<KeyView>(
        if_match(with_body::<UpdateKeyRequest>(o)),
        200,
        "The changed key",
        false,
    );
    let o = problem_response(
        o,
        ErrorCode::ApiKeyStateConflict,
        "The key is revoked: it cannot be changed",
    );
    common_errors(not_found(o)).build()
}

fn revoke(id: &str, tag: &str) -> Operation {
    let o = op(id, "Revoke a key (soft, final, effective at once)", tag)
        .response("204", ResponseBuilder::new().description("Revoked").build());
    common_errors(not_found(if_match(o))).build()
}

fn rotate(id: &str, tag: &str) -> Operation {
    let o = op(
        id,
        "Issue a successor with the key's usage, credits and limits; the old key keeps working \
         for the grace period (a key is rotated once; rotating a successor ends its \
         predecessor's grace)",
        tag,
    );
    // Every field of the body is optional, and so is the body.
    let o = ok_key::<CreatedKey>(
        if_match(with_body_required::<RotateKeyRequest>(o, Required::False)),
        201,
        "The successor, with its raw key this once",
        true,
    );
    let o = problem_response(
        o,
        ErrorCode::ApiKeyAlreadyRotated,
        "The key was rotated already (`API_KEY_ALREADY_ROTATED`), or it is revoked or expired \
         (`API_KEY_STATE_CONFLICT`)",
    );
    common_errors(not_found(o)).build()
}

/// The six routes under `base`, their operation ids prefixed with `id_prefix` (`""` or
/// `"admin"`), and `params` (the admin routes' `owner_id`) on each path.
fn six_routes(
    mut paths: PathsBuilder,
    base: &str,
    id_prefix: &str,
    tag: &str,
    params: &dyn Fn() -> Vec<ParameterBuilder>,
) -> PathsBuilder {
    let id = |name: &str| {
        if id_prefix.is_empty() {
            format!("{name}ApiKey")
        } else {
            let mut c = name.chars();
            let first = c.next().map(|f| f.to_ascii_uppercase()).unwrap_or('x');
            format!("{id_prefix}{first}{}ApiKey", c.as_str())
        }
    };
    let key_id = || path_param("key_id", "The key id (12 base62 characters)");
    let with_key = || {
        let mut p = params();
        p.push(key_id());
        p
    };
    let list_id = if id_prefix.is_empty() {
        "listApiKeys".to_owned()
    } else {
        format!("{id_prefix}ListApiKeys")
    };
    let collection = path_item(
        vec![
            (HttpMethod::Post, create(&id("create"), tag)),
            (HttpMethod::Get, list(&list_id, tag)),
        ],
        params(),
    );
    let item = path_item(
        vec![
            (HttpMethod::Get, get(&id("get"), tag)),
            (HttpMethod::Patch, update(&id("update"), tag)),
            (HttpMethod::Delete, revoke(&id("revoke"), tag)),
        ],
        with_key(),
    );
    let rotation = path_item(
        vec![(HttpMethod::Post, rotate(&id("rotate"), tag))],
        with_key(),
    );
    paths = paths
        .path(base, collection)
        .path(format!("{base}/{{key_id}}"), item)
        .path(format!("{base}/{{key_id}}/rotate"), rotation);
    paths
}

/// Which management routes a document describes: what an adapter (or the server) mounts.
#[derive(Debug, Clone, Copy)]
pub struct Mounted<'a> {
    /// Where the self-service routes are (default `/api-keys`); the admin routes are under
    /// `{admin_prefix}/owners/{owner_id}{prefix}`.
    pub prefix: &'a str,
    /// The start of the admin routes' base (default `/admin`).
    pub admin_prefix: &'a str,
    /// The six self-service routes are mounted.
    pub self_service: bool,
    /// The six admin routes are mounted.
    pub admin: bool,
    /// Signed requests are verified: the `apiKeyHmacAuth` (SigV4) security scheme is added
    /// beside `apiKeyAuth`.
    pub signing: bool,
    /// The deployment's limits (name and description lengths, scopes and allowlist entries
    /// per key, the longest grace and lifetime), stated in the request schemas; `None` leaves
    /// them unstated.
    pub policy: Option<&'a Policy>,
}

/// The OpenAPI document of the management routes `mounted` describes.
#[must_use]
pub fn document(mounted: &Mounted<'_>) -> OpenApi {
    let Mounted {
        prefix,
        admin_prefix,
        self_service,
        admin,
        signing,
        policy,
    } = *mounted;
    let prefix = prefix.trim_end_matches('/');
    let mut paths = PathsBuilder::new();
    if self_service {
        paths = six_routes(paths, prefix, "", "api-keys", &Vec::new);
    }
    if admin {
        let owner_id = || vec![path_param("owner_id", "The owner whose keys are managed")];
        paths = six_routes(
            paths,
            &format!(
                "{}/owners/{{owner_id}}{prefix}",
                admin_prefix.trim_end_matches('/')
            ),
            "admin",
            "admin",
            &owner_id,
        );
    }

    let mut components = ComponentsBuilder::new()
        .schema_from::<CreateKeyRequest>()
        .schema_from::<UpdateKeyRequest>()
        .schema_from::<RotateKeyRequest>()
        .schema_from::<CreatedKey>()
        .schema_from::<KeyPage>()
        .schema_from::<KeyView>()
        .schema_from::<KeyState>()
        .schema_from::<Deactivator>()
        .schema_from::<RateLimit>()
        .schema_from::<Credits>()
        .schema_from::<Usage>()
        .schema_from::<Problem>()
        .schema_from::<ErrorCode>()
        .schema_from::<FieldError>()
        .security_scheme(
            BEARER_SCHEME,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("keyward API key")
                    .description(Some(
                        "An API key `<prefix>_<env>_<key_id>_<secret><check>` as `Authorization: Bearer <key>` \
                         (the `X-API-Key` header is accepted too).",
                    ))
                    .build(),
            ),
        );
    if signing {
        components = components.security_scheme(
            HMAC_SCHEME,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Authorization",
                "AWS Signature Version 4: `Authorization: AWS4-HMAC-SHA256 Credential=<key_id>/<date>/<region>/<service>/aws4_request, \
                 SignedHeaders=…, Signature=…` with the raw API key as the secret, plus `X-Amz-Date`. See docs/signing.md.",
            ))),
        );
    }
    let mut doc = OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("keyward API key management")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "Self-service (and admin) management of API keys. Errors are application/problem+json \
                     (RFC 9457) with a stable `code`.",
                ))
                .build(),
        )
        .paths(paths.build())
        .components(Some(components.build()))
        .build();
    if let Some(policy) = policy {
        state_limits(&mut doc, policy);
    }
    if !signing {
        // Without an encryption keyring no key can be a signing key.
        limit(&mut doc, "CreateKeyRequest", "signing", |s| {
            if let Schema::Object(o) = s {
                o.enum_values = Some(vec![false.into()]);
            }
        });
    }
    doc
}

/// The policy's limits on the request bodies, where the server checks them.
fn state_limits(doc: &mut OpenApi, policy: &Policy) {
    let seconds = |d: time::Duration| d.whole_seconds();
    let max_ttl = policy.max_ttl.map_or(crate::service::MAX_TTL_SECONDS, |d| {
        seconds(d).min(crate::service::MAX_TTL_SECONDS)
    });
    for body in ["CreateKeyRequest", "UpdateKeyRequest"] {
        limit(doc, body, "name", |s| {
            set_max_length(s, policy.max_name_len)
        });
        limit(doc, body, "description", |s| {
            set_max_length(s, policy.max_description_len);
        });
        limit(doc, body, "scopes", |s| set_max_items(s, policy.max_scopes));
        limit(doc, body, "ip_allowlist", |s| {
            set_max_items(s, policy.max_ip_entries);
        });
    }
    limit(doc, "CreateKeyRequest", "ttl_seconds", |s| {
        set_maximum(s, max_ttl)
    });
    limit(doc, "RotateKeyRequest", "grace_seconds", |s| {
        set_maximum(s, seconds(policy.max_rotation_grace));
    });
}

fn limit(doc: &mut OpenApi, schema: &str, property: &str, f: impl FnOnce(&mut Schema)) {
    let body = doc
        .components
        .as_mut()
        .and_then(|c| c.schemas.get_mut(schema));
    if let Some(RefOr::T(Schema::Object(o))) = body
        && let Some(RefOr::T(p)) = o.properties.get_mut(property)
    {
        f(p);
    }
}

fn set_max_length(s: &mut Schema, n: usize) {
    if let Schema::Object(o) = s {
        o.max_length = Some(n);
    }
}

fn set_max_items(s: &mut Schema, n: usize) {
    if let Schema::Array(a) = s {
        a.max_items = Some(n);
    }
}

fn set_maximum(s: &mut Schema, n: i64) {
    if let Schema::Object(o) = s {
        o.maximum = Some(n.into());
    }
}

fn path_item(ops: Vec<(HttpMethod, Operation)>, params: Vec<ParameterBuilder>) -> PathItem {
    let mut b = PathItemBuilder::new();
    for (method, op) in ops {
        b = b.operation(method, op);
    }
    if !params.is_empty() {
        b = b.parameters(Some(params.into_iter().map(ParameterBuilder::build)));
    }
    b.build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mounted(prefix: &str, admin: bool, signing: bool) -> Mounted<'_> {
        Mounted {
            prefix,
            admin_prefix: "/admin",
            self_service: true,
            admin,
            signing,
            policy: None,
        }
    }

    fn json_of(doc: &OpenApi) -> serde_json::Value {
        serde_json::to_value(doc).unwrap()
    }

    #[test]
    fn describes_every_route_and_schema() {
        let v = json_of(&document(&mounted("/api-keys", true, false)));
        let paths = v["paths"].as_object().unwrap();
        assert!(paths["/api-keys"]["post"].is_object());
        assert!(paths["/api-keys"]["get"].is_object());
        assert!(paths["/api-keys/{key_id}"]["get"].is_object());
        assert!(paths["/api-keys/{key_id}"]["patch"].is_object());
        assert!(paths["/api-keys/{key_id}"]["delete"].is_object());
        assert!(paths["/api-keys/{key_id}/rotate"]["post"].is_object());
        for (path, methods) in [
            ("/admin/owners/{owner_id}/api-keys", &["post", "get"][..]),
            (
                "/admin/owners/{owner_id}/api-keys/{key_id}",
                &["get", "patch", "delete"],
            ),
            (
                "/admin/owners/{owner_id}/api-keys/{key_id}/rotate",
                &["post"],
            ),
        ] {
            for m in methods {
                assert!(paths[path][m].is_object(), "{m} {path}");
            }
        }
        let rotate = &paths["/api-keys/{key_id}/rotate"]["post"]["responses"];
        for status in ["201", "403", "404", "409", "412"] {
            assert!(rotate[status].is_object(), "rotate answers {status}");
        }
        assert!(rotate["201"]["headers"]["Cache-Control"].is_object());
        assert!(rotate["201"]["headers"]["ETag"].is_object());
        assert!(
            paths["/api-keys"]["post"]["responses"]["201"]["headers"]["Cache-Control"].is_object()
        );
        assert!(paths["/api-keys/{key_id}"]["patch"]["responses"]["412"].is_object());
        // What the server enforces on `limit` is in the document (schemathesis found it missing).
        let limit = &paths["/api-keys"]["get"]["parameters"][0];
        assert_eq!(limit["name"], "limit");
        assert_eq!(
            (&limit["schema"]["minimum"], &limit["schema"]["maximum"]),
            (&serde_json::json!(1), &serde_json::json!(100))
        );
        let schemas = v["components"]["schemas"].as_object().unwrap();
        for name in [
            "CreateKeyRequest",
            "UpdateKeyRequest",
            "CreatedKey",
            "KeyPage",
            "KeyView",
            "Problem",
            "FieldError",
        ] {
            assert!(schemas.contains_key(name), "{name}");
        }
        assert_eq!(
            v["components"]["securitySchemes"][BEARER_SCHEME]["scheme"],
            "bearer"
        );
        assert!(
            v["components"]["securitySchemes"]
                .get(HMAC_SCHEME)
                .is_none()
        );
        let created = &paths["/api-keys"]["post"]["responses"]["201"]["content"]["application/json"]
            ["schema"]["$ref"];
        assert_eq!(created, "#/components/schemas/CreatedKey");
        assert!(paths["/api-keys"]["post"]["responses"]["422"]["content"][PROBLEM].is_object());
    }

    #[test]
    fn every_ref_resolves() {
        let v = json_of(&document(&mounted("/keys/", true, true)));
        let text = v.to_string();
        let schemas = v["components"]["schemas"].as_object().unwrap();
        for part in text.split("#/components/schemas/").skip(1) {
            let name: String = part
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            assert!(schemas.contains_key(&name), "dangling $ref {name}");
        }
        assert!(v["paths"].get("/keys").is_some());
    }

    #[test]
    fn signing_adds_the_hmac_scheme_and_admin_is_optional() {
        let v = json_of(&document(&mounted("/api-keys", false, true)));
        assert_eq!(
            v["components"]["securitySchemes"][HMAC_SCHEME]["in"],
            "header"
        );
        assert_eq!(
            v["components"]["securitySchemes"][HMAC_SCHEME]["name"],
            "Authorization"
        );
        assert!(
            v["paths"]
                .as_object()
                .unwrap()
                .keys()
                .all(|k| !k.starts_with("/admin"))
        );
    }
}
