//! [`Principal`]: the identity a verified request carries, and its OpenAPI schema.

use std::fmt;
use std::sync::{Arc, LazyLock};

use serde::Serialize;

use super::{KeyRecord, Metadata};
use crate::key::KeyId;
use crate::scope::ScopeSet;

/// The identity a verified request carries. Cheap to clone.
#[derive(Clone, PartialEq)]
pub struct Principal(Arc<PrincipalInner>);

#[derive(Debug, PartialEq)]
struct PrincipalInner {
    key_id: KeyId,
    owner_id: Box<str>,
    scopes: ScopeSet,
    /// `None` for no metadata, the common case: a cached key carries no empty map.
    metadata: Option<Box<Metadata>>,
    /// Shared by every key of the environment (the cache interns it).
    env: Arc<str>,
}

/// What [`Principal::metadata`] answers for a key without metadata.
static NO_METADATA: LazyLock<Metadata> = LazyLock::new(Metadata::new);

impl Principal {
    /// Bytes of the shared part, for the cache's size test.
    #[cfg(test)]
    pub(crate) const INNER_SIZE: usize = size_of::<PrincipalInner>();

    /// Builds a principal from a verified record with its effective scopes and its interned
    /// environment.
    #[must_use]
    pub(crate) fn new(record: &KeyRecord, scopes: ScopeSet, env: Arc<str>) -> Self {
        Self(Arc::new(PrincipalInner {
            key_id: record.key_id,
            owner_id: record.owner_id.as_str().into(),
            scopes,
            metadata: (!record.metadata.is_empty()).then(|| Box::new(record.metadata.clone())),
            env,
        }))
    }

    /// The same principal with other (narrowed) scopes.
    #[must_use]
    pub(crate) fn with_scopes(&self, scopes: ScopeSet) -> Self {
        Self(Arc::new(PrincipalInner {
            key_id: self.0.key_id,
            owner_id: self.0.owner_id.clone(),
            scopes,
            metadata: self.0.metadata.clone(),
            env: Arc::clone(&self.0.env),
        }))
    }

    /// The key that authenticated.
    #[must_use]
    pub fn key_id(&self) -> KeyId {
        self.0.key_id
    }

    /// Its owner.
    #[must_use]
    pub fn owner_id(&self) -> &str {
        &self.0.owner_id
    }

    /// Its effective scopes (after any scope authority).
    #[must_use]
    pub fn scopes(&self) -> &ScopeSet {
        &self.0.scopes
    }

    /// The key's metadata.
    #[must_use]
    pub fn metadata(&self) -> &Metadata {
        self.0.metadata.as_deref().unwrap_or(&NO_METADATA)
    }

    /// The key's environment.
    #[must_use]
    pub fn env(&self) -> &str {
        &self.0.env
    }

    /// Whether the key holds [`crate::scope::ADMIN_SCOPE`] by name: an administrator of the
    /// management routes (DESIGN.md §11).
    #[must_use]
    pub fn is_admin(&self) -> bool {
        self.0.scopes.holds_exact(crate::scope::ADMIN_SCOPE)
    }
}

impl fmt::Debug for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Principal")
            .field("key_id", &self.0.key_id)
            .field("owner_id", &self.0.owner_id)
            .field("scopes", &self.0.scopes)
            .finish_non_exhaustive()
    }
}

/// What a [`Principal`] serializes to, for OpenAPI documents (`Principal` implements
/// `utoipa::ToSchema` with it; a test holds the two together).
#[cfg(feature = "openapi")]
#[derive(utoipa::ToSchema)]
#[schema(as = Principal)]
#[allow(dead_code, reason = "a schema only: Principal serializes itself")]
struct PrincipalSchema {
    /// The key that authenticated.
    key_id: String,
    /// Its owner.
    owner_id: String,
    /// The key's effective scopes.
    scopes: Vec<String>,
    /// The key's environment marker (`live`, `test`, …).
    env: String,
    /// The key's metadata.
    #[schema(value_type = Object)]
    metadata: serde_json::Value,
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Principal {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        <PrincipalSchema as utoipa::PartialSchema>::schema()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Principal {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("Principal")
    }
}

impl Serialize for Principal {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Principal", 5)?;
        st.serialize_field("key_id", &self.0.key_id)?;
        st.serialize_field("owner_id", &self.0.owner_id)?;
        st.serialize_field("scopes", &self.0.scopes)?;
        st.serialize_field("env", self.env())?;
        st.serialize_field("metadata", self.metadata())?;
        st.end()
    }
}
