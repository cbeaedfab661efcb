//! Key management: what its operations on [`crate::Keyward`] (`create_key`, `list_keys`,
//! `get_key`, `update_key`, `revoke_key`, `rotate_key`) take and give: requests, answers,
//! versions, errors. The operations live in a private module beside it, so that the rules
//! (`authz`) and the operations share these types without importing each other.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};
use time::OffsetDateTime;

use crate::error::ErrorCode;
use crate::key::{ApiKey, KeyId};
use crate::model::{Credits, KeyRecord, KeyView, Metadata, RateLimit};
use crate::store::{StoreError, StoreErrorKind};

/// The longest `ttl_seconds` a key may ask for: 100 years (the policy's `max_ttl` may be
/// shorter).
pub const MAX_TTL_SECONDS: i64 = 3_155_760_000;

/// One field that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FieldError {
    /// The field, as named in the request body (`scopes`, `expires_at`, …).
    pub field: String,
    /// A stable machine code (`required`, `too_long`, `in_past`, `not_in_catalog`, …).
    pub code: String,
    /// A human explanation. Never contains secrets.
    pub message: String,
}

impl FieldError {
    /// A field error.
    #[must_use]
    pub fn new(field: &str, code: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            code: code.into(),
            message: message.into(),
        }
    }
}

/// Why a management call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// The request is invalid; one entry per bad field.
    #[error("validation failed: {}", .0.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; "))]
    Validation(Vec<FieldError>),
    /// No such key for this owner.
    #[error("API key not found")]
    NotFound,
    /// The owner has the maximum number of keys.
    #[error("the owner already has the maximum of {0} keys")]
    LimitReached(u32),
    /// The actor may not make this change (DESIGN.md §11); one entry per refused field, naming
    /// the refused scopes where scopes are refused.
    #[error("not allowed: {}", .0.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; "))]
    Forbidden(Vec<FieldError>),
    /// The key was rotated already; this is its successor.
    #[error("the API key was already rotated (successor {0})")]
    AlreadyRotated(KeyId),
    /// The key's state forbids the change: it is revoked (or, for a rotation, expired).
    #[error("{0}")]
    StateConflict(&'static str),
    /// `If-Match` named another version of the key than the current one.
    #[error("the API key changed since the version given in If-Match")]
    PreconditionFailed,
    /// A backend did not answer.
    #[error("key store unavailable: {0}")]
    Unavailable(#[source] StoreError),
    /// Something that should not happen (random source failure, corrupt data).
    #[error("internal error: {0}")]
    Internal(String),
}

impl ServiceError {
    /// The stable code (and with it the HTTP status).
    #[must_use]
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Validation(_) => ErrorCode::ValidationFailed,
            Self::NotFound => ErrorCode::ApiKeyNotFound,
            Self::LimitReached(_) => ErrorCode::ApiKeyLimitReached,
            Self::Forbidden(_) => ErrorCode::ManagementForbidden,
            Self::AlreadyRotated(_) => ErrorCode::ApiKeyAlreadyRotated,
            Self::StateConflict(_) => ErrorCode::ApiKeyStateConflict,
            Self::PreconditionFailed => ErrorCode::PreconditionFailed,
            Self::Unavailable(_) | Self::Internal(_) => ErrorCode::AuthUnavailable,
        }
    }

    pub(super) fn field(field: &str, code: &str, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, code, message)])
    }
}

/// Maps a store failure of a management call.
pub(crate) fn store_err(e: StoreError) -> ServiceError {
    match e.kind() {
        StoreErrorKind::NotFound => ServiceError::NotFound,
        StoreErrorKind::Corrupt
        | StoreErrorKind::Conflict
        | StoreErrorKind::Stale
        | StoreErrorKind::Other => ServiceError::Internal(e.to_string()),
        _ => ServiceError::Unavailable(e),
    }
}

/// Body of `POST /api-keys`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateKeyRequest {
    /// Human name: not blank, no control characters, at most the policy's length (128 by
    /// default).
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 1,
            pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$"
        )
    )]
    pub name: String,
    /// Optional description (no control characters).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[^\x00-\x1F\x7F-\x9F]*$"))]
    pub description: Option<String>,
    /// Scopes to grant; must be allowed by the catalog.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schemas::scope_list))]
    pub scopes: Vec<String>,
    /// Absolute expiry (must be in the future). Exclusive with `ttl_seconds`.
    #[serde(default, with = "crate::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// Lifetime in seconds from now (at most 100 years, and the policy's maximum lifetime).
    /// Exclusive with `expires_at`.
    #[serde(default, deserialize_with = "crate::integral::opt_i64")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 3_155_760_000_i64))]
    pub ttl_seconds: Option<i64>,
    /// Application metadata (a JSON object).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub metadata: Option<Metadata>,
    /// Networks (CIDR or addresses) the key may be used from.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schemas::ip_list))]
    pub ip_allowlist: Vec<String>,
    /// Per-key rate limit.
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
    /// Usage credits.
    #[serde(default)]
    pub credits: Option<Credits>,
    /// A signing-only key (SigV4); needs an encryption keyring.
    #[serde(default)]
    pub signing: bool,
}

/// `Some(None)` for an explicit `null`, `None` when the field is absent.
pub(super) fn double_option<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Body of `PATCH /api-keys/{key_id}`. Absent fields are left alone; `null` clears.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateKeyRequest {
    /// New name (as on create).
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 1,
            pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$"
        )
    )]
    pub name: Option<String>,
    /// New description; `null` clears it.
    #[serde(default, deserialize_with = "double_option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>), schema(pattern = r"^[^\x00-\x1F\x7F-\x9F]*$"))]
    pub description: Option<Option<String>>,
    /// New scopes, validated against the catalog exactly as on create.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schemas::nullable_scope_list))]
    pub scopes: Option<Vec<String>>,
    /// Deactivate or re-activate.
    #[serde(default)]
    pub is_active: Option<bool>,
    /// New expiry (in the future); `null` removes it (within the policy's maximum lifetime).
    #[serde(default, with = "crate::rfc3339::double_option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<OffsetDateTime>))]
    pub expires_at: Option<Option<OffsetDateTime>>,
    /// New metadata.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub metadata: Option<Metadata>,
    /// New allowlist.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schemas::nullable_ip_list))]
    pub ip_allowlist: Option<Vec<String>>,
    /// New rate limit; `null` removes it.
    #[serde(default, deserialize_with = "double_option")]
    pub rate_limit: Option<Option<RateLimit>>,
    /// New credits; `null` removes them.
    #[serde(default, deserialize_with = "double_option")]
    pub credits: Option<Option<Credits>>,
}

/// Body of `POST /api-keys/{key_id}/rotate`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RotateKeyRequest {
    /// How long the old key keeps working, up to the policy's maximum (default: the policy's,
    /// one hour).
    #[serde(default, deserialize_with = "crate::integral::opt_i64")]
    #[cfg_attr(feature = "openapi", schema(minimum = 0))]
    pub grace_seconds: Option<i64>,
}

/// Body of `POST /api-keys/{key_id}/credits`: a top-up of a key's credits
/// ([`crate::Keyward::add_credits`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AddCreditsRequest {
    /// Credits added to the key's balance; negative takes them away.
    #[serde(deserialize_with = "crate::integral::i64")]
    pub add: i64,
}

/// A created (or rotated) key: the raw key, this once, and its safe view.
#[derive(Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedKey {
    /// The raw key. Shown once; keyward cannot show it again.
    #[serde(serialize_with = "expose")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "kw_live_AbCdEf012345_…"))]
    pub api_key: ApiKey,
    /// The safe view.
    pub key: KeyView,
}

pub(super) fn expose<S: serde::Serializer>(k: &ApiKey, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(k.expose_secret())
}

impl fmt::Debug for CreatedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreatedKey")
            .field("api_key", &self.api_key)
            .field("key", &self.key)
            .finish()
    }
}

/// What a key list asks for: a page (`cursor`, `limit`) of the keys the actor reaches, oldest
/// first, narrowed by owner, environment and state. The list routes read it from their query
/// (`?owner_id=&env=&state=&cursor=&limit=`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct KeyQuery {
    /// Only this owner's keys. An actor bound to an owner (self-service, a key, an
    /// administrator of one owner) may name only that owner.
    pub owner_id: Option<String>,
    /// Only keys of this environment.
    pub env: Option<String>,
    /// Only keys in this state now.
    pub state: Option<crate::model::KeyState>,
    /// `next_cursor` of the previous page; empty or absent for the first.
    pub cursor: Option<String>,
    /// Page size, 1–100 (default 50).
    pub limit: Option<u32>,
}

/// What a read of the audit log asks for ([`Keyward::list_events`](crate::Keyward::list_events)):
/// a page (`cursor`, `limit`) of the events the actor reaches, newest first, narrowed by owner,
/// key, action, actor and time. The audit routes read it from their query
/// (`?owner_id=&key_id=&action=&actor=&since=&until=&cursor=&limit=`); every field is text,
/// checked by the service, so that a bad one (an empty one too, but for the cursor) is a `422`
/// naming it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct EventQuery {
    /// Only events of this owner's keys. An actor bound to an owner may name only that owner.
    pub owner_id: Option<String>,
    /// Only events of this key.
    pub key_id: Option<String>,
    /// Only this action (`key.created`, `key.updated`, …).
    pub action: Option<String>,
    /// Only this actor: a kind (`admin`, `admin_key`, `owner`, `key`, `cli`, `application`,
    /// `system`), or a kind and id (`owner:alice`, `admin_key:AbCdEf012345`).
    pub actor: Option<String>,
    /// Only events at or after this RFC 3339 instant.
    pub since: Option<String>,
    /// Only events before this RFC 3339 instant.
    pub until: Option<String>,
    /// `next_cursor` of the previous page; empty or absent for the first.
    pub cursor: Option<String>,
    /// Page size, 1–100 (default 50).
    pub limit: Option<u32>,
}

/// What a read of usage analytics asks for ([`Keyward::usage`](crate::Keyward::usage)): the
/// buckets (`granularity`, `hour` by default, or `day`) over `[from, to)`, only the
/// verifications carrying `tag` when one is given. `to` defaults to the end of the current
/// bucket, `from` to 24 hours (hourly) or 30 days (daily) before `to`; both are moved out to
/// bucket boundaries. A range spans at most 744 hourly or 400 daily buckets. Every field is
/// text, checked by the service (`422` naming a bad one).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct UsageQuery {
    /// The first instant, RFC 3339.
    pub from: Option<String>,
    /// The end, RFC 3339 (exclusive).
    pub to: Option<String>,
    /// `hour` or `day`.
    pub granularity: Option<String>,
    /// Only verifications carrying this tag.
    pub tag: Option<String>,
}

/// A page of the audit log, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventList {
    /// The events.
    pub items: Vec<crate::audit::Event>,
    /// Pass as `cursor` for the next (older) page; absent on the last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Most keys one [`Keyward::create_keys`](crate::Keyward::create_keys) call creates.
pub const MAX_BATCH: usize = 1_000;

/// Body of `POST /admin/api-keys/batch`: up to [`MAX_BATCH`] keys, created together or not at
/// all.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateKeysRequest {
    /// The keys, each with its owner; the answer lists them in this order.
    #[cfg_attr(feature = "openapi", schema(min_items = 1, max_items = 1000))]
    pub keys: Vec<NewKey>,
}

/// One key of a [`CreateKeysRequest`].
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    /// The owner to create it for.
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = r"^[A-Za-z0-9][A-Za-z0-9._:@+/=|~-]{0,254}$")
    )]
    pub owner_id: String,
    /// What to create, as for one key.
    pub key: CreateKeyRequest,
}

/// The keys a batch created: the raw keys, this once, in the order they were asked for.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedKeys {
    /// One per requested key.
    pub items: Vec<CreatedKey>,
}

/// A page of keys for the list route.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeyPage {
    /// The keys, oldest first.
    pub items: Vec<KeyView>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

/// The version of a key that management writes are checked against: sent as the `ETag` of a
/// key and honoured in `If-Match` (`"v<micros>"`). Every management write moves it forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyVersion(i64);

impl KeyVersion {
    /// The current version of `record`.
    #[must_use]
    pub fn of(record: &KeyRecord) -> Self {
        Self(record.version())
    }

    /// The version of a key's safe view.
    #[must_use]
    pub fn of_view(view: &KeyView) -> Self {
        Self(crate::clock::unix_micros(view.updated_at))
    }

    /// The entity tag, quotes included: `"v1732876543123456"`.
    #[must_use]
    pub fn etag(self) -> String {
        format!("\"v{}\"", self.0)
    }

    /// A version no key ever has (versions are times since the epoch): what an `If-Match` that
    /// names no version keyward issued stands for, so that it fails the precondition where the
    /// service checks it, after the request itself was judged.
    pub const UNMATCHABLE: Self = Self(-1);

    /// Parses one entity tag as [`KeyVersion::etag`] writes it (a weak `W/` tag never matches a
    /// strong comparison, so it is refused too).
    #[must_use]
    pub fn parse_etag(tag: &str) -> Option<Self> {
        let inner = tag.trim().strip_prefix("\"v")?.strip_suffix('"')?;
        if inner.is_empty() || inner.len() > 20 || !inner.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        inner.parse().ok().map(Self)
    }
}
