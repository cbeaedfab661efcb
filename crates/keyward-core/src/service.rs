//! The management service: create (the raw key is returned once), get, list, update, revoke,
//! rotate. Every call names the owner it acts for; a key of another owner is "not found".

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};

use crate::Keyward;
use crate::authz::{self, Actor};
use crate::clock::micros;
use crate::error::ErrorCode;
use crate::key::{ApiKey, KeyId};
use crate::model::{Credits, Deactivator, IpNet, KeyRecord, KeyView, Metadata, RateLimit, Usage};
use crate::scope::{ScopeError, ScopeSet};
use crate::store::{Cursor, MAX_PAGE_SIZE, StoreError, StoreErrorKind};

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
            Self::PreconditionFailed => ErrorCode::PreconditionFailed,
            Self::Unavailable(_) | Self::Internal(_) => ErrorCode::AuthUnavailable,
        }
    }

    fn field(field: &str, code: &str, message: impl Into<String>) -> Self {
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
    /// Human name (1–128 characters).
    pub name: String,
    /// Optional description.
    #[serde(default)]
    pub description: Option<String>,
    /// Scopes to grant; must be allowed by the catalog.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Absolute expiry (must be in the future). Exclusive with `ttl_seconds`.
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    /// Lifetime in seconds from now. Exclusive with `expires_at`.
    #[serde(default)]
    pub ttl_seconds: Option<i64>,
    /// Application metadata (a JSON object).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub metadata: Option<Metadata>,
    /// Networks (CIDR or addresses) the key may be used from.
    #[serde(default)]
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
fn double_option<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
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
    /// New name.
    #[serde(default)]
    pub name: Option<String>,
    /// New description; `null` clears it.
    #[serde(default, deserialize_with = "double_option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub description: Option<Option<String>>,
    /// New scopes, validated against the catalog exactly as on create.
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    /// Deactivate or re-activate.
    #[serde(default)]
    pub is_active: Option<bool>,
    /// New expiry (in the future); `null` removes it (within the policy's maximum lifetime).
    #[serde(default, deserialize_with = "double_option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<DateTime<Utc>>))]
    pub expires_at: Option<Option<DateTime<Utc>>>,
    /// New metadata.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub metadata: Option<Metadata>,
    /// New allowlist.
    #[serde(default)]
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
    /// How long the old key keeps working (default: the policy's, one hour).
    #[serde(default)]
    pub grace_seconds: Option<i64>,
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

fn expose<S: serde::Serializer>(k: &ApiKey, s: S) -> Result<S::Ok, S::Error> {
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
        Self(view.updated_at.timestamp_micros())
    }

    /// The entity tag, quotes included: `"v1732876543123456"`.
    #[must_use]
    pub fn etag(self) -> String {
        format!("\"v{}\"", self.0)
    }

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

const MAX_OWNER_LEN: usize = 255;

fn check_text(errors: &mut Vec<FieldError>, field: &str, v: &str, max: usize, required: bool) {
    if required && v.trim().is_empty() {
        errors.push(FieldError::new(field, "required", "must not be empty"));
    } else if v.chars().count() > max {
        errors.push(FieldError::new(
            field,
            "too_long",
            format!("at most {max} characters"),
        ));
    } else if v.chars().any(char::is_control) {
        errors.push(FieldError::new(
            field,
            "invalid",
            "must not contain control characters",
        ));
    }
}

impl Keyward {
    fn validate_scopes(&self, errors: &mut Vec<FieldError>, scopes: &[String]) -> ScopeSet {
        let policy = &self.0.policy;
        if scopes.len() > policy.max_scopes {
            errors.push(FieldError::new(
                "scopes",
                "too_many",
                format!("at most {} scopes", policy.max_scopes),
            ));
            return ScopeSet::new();
        }
        match ScopeSet::parse(scopes) {
            Ok(set) if set.iter().any(|s| s.is_reserved() && s.is_wildcard()) => {
                errors.push(FieldError::new(
                    "scopes",
                    "reserved_wildcard",
                    "scopes under `keyward:` are granted by exact name only",
                ));
                ScopeSet::new()
            }
            // Reserved scopes are keyward's own, outside the application's catalog; who may
            // grant them is the actor rules' business (`authz`).
            Ok(set) => match policy.catalog.admit(&ScopeSet::from_scopes(
                set.iter().filter(|s| !s.is_reserved()).cloned().collect(),
            )) {
                Ok(()) => set,
                Err(e) => {
                    errors.push(FieldError::new("scopes", "not_in_catalog", e.to_string()));
                    ScopeSet::new()
                }
            },
            Err(e) => {
                let code = match e {
                    ScopeError::TooLong => "too_long",
                    _ => "invalid",
                };
                errors.push(FieldError::new("scopes", code, e.to_string()));
                ScopeSet::new()
            }
        }
    }

    fn validate_ips(&self, errors: &mut Vec<FieldError>, ips: &[String]) -> Vec<IpNet> {
        if ips.len() > self.0.policy.max_ip_entries {
            errors.push(FieldError::new(
                "ip_allowlist",
                "too_many",
                format!("at most {} entries", self.0.policy.max_ip_entries),
            ));
            return Vec::new();
        }
        let mut out = Vec::with_capacity(ips.len());
        for ip in ips {
            match ip.parse() {
                Ok(net) => out.push(net),
                Err(e) => errors.push(FieldError::new("ip_allowlist", "invalid", format!("{e}"))),
            }
        }
        out
    }

    fn validate_expiry(
        &self,
        errors: &mut Vec<FieldError>,
        field: &str,
        expires_at: Option<DateTime<Utc>>,
        created_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) {
        if let Some(e) = expires_at
            && e <= now
        {
            errors.push(FieldError::new(field, "in_past", "must be in the future"));
            return;
        }
        if let Some(max) = self.0.policy.max_ttl {
            let limit = created_at
                .checked_add_signed(max)
                .unwrap_or(DateTime::<Utc>::MAX_UTC);
            if expires_at.is_none_or(|e| e > limit) {
                errors.push(FieldError::new(
                    field,
                    "too_far",
                    format!("keys may live at most {} seconds", max.num_seconds()),
                ));
            }
        }
    }

    fn validate_limits(
        &self,
        errors: &mut Vec<FieldError>,
        rate: Option<&RateLimit>,
        credits: Option<&Credits>,
    ) {
        if rate.is_some_and(|r| r.requests == 0 || r.window_seconds == 0) {
            errors.push(FieldError::new(
                "rate_limit",
                "invalid",
                "requests and window_seconds must be at least 1",
            ));
        }
        if credits.is_some_and(|c| c.refill_seconds == Some(0)) {
            errors.push(FieldError::new(
                "credits",
                "invalid",
                "refill_seconds must be at least 1",
            ));
        }
    }

    fn validate_metadata(&self, errors: &mut Vec<FieldError>, m: &Metadata) {
        let size = serde_json::to_vec(m).map_or(usize::MAX, |v| v.len());
        if size > self.0.policy.max_metadata_bytes {
            errors.push(FieldError::new(
                "metadata",
                "too_large",
                format!("at most {} bytes of JSON", self.0.policy.max_metadata_bytes),
            ));
        }
    }

    /// Creates a key for `owner_id` as the application itself, that is as an administrator
    /// ([`Actor::admin_for`]). The returned [`CreatedKey`] holds the raw key: the only time it
    /// exists outside its holder. Requests from outside go through [`Keyward::create_key_as`].
    ///
    /// # Errors
    /// [`ServiceError::Validation`] with field detail, [`ServiceError::LimitReached`],
    /// [`ServiceError::Unavailable`].
    pub async fn create_key(
        &self,
        owner_id: &str,
        req: CreateKeyRequest,
    ) -> Result<CreatedKey, ServiceError> {
        self.create_key_as(&Actor::admin_for(owner_id), req).await
    }

    /// Creates a key as `actor`, for the owner it acts on, by the rules of DESIGN.md §11: an
    /// owner or key caller grants no reserved scope, a key caller no scope it does not hold,
    /// neither sets limits, credits, allowlists or metadata, and their keys get the operator's
    /// self-service defaults ([`crate::model::SelfServiceDefaults`]).
    ///
    /// # Errors
    /// [`ServiceError::Forbidden`] naming the refused fields, [`ServiceError::Validation`],
    /// [`ServiceError::LimitReached`], [`ServiceError::Unavailable`].
    pub async fn create_key_as(
        &self,
        actor: &Actor,
        req: CreateKeyRequest,
    ) -> Result<CreatedKey, ServiceError> {
        self.create_capped(actor, req, self.0.policy.max_keys_per_owner)
            .await
    }

    /// Creates the first key of `owner_id` as the application itself: only when the owner has
    /// no live key, decided atomically with the insert (the store's owner cap, at one), so that
    /// processes racing to bootstrap an administrator create one key between them. `Ok(None)`
    /// when the owner has a live key already.
    ///
    /// # Errors
    /// As [`Keyward::create_key`].
    pub async fn create_first_key(
        &self,
        owner_id: &str,
        req: CreateKeyRequest,
    ) -> Result<Option<CreatedKey>, ServiceError> {
        match self
            .create_capped(&Actor::admin_for(owner_id), req, Some(1))
            .await
        {
            Ok(created) => Ok(Some(created)),
            Err(ServiceError::LimitReached(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn create_capped(
        &self,
        actor: &Actor,
        req: CreateKeyRequest,
        cap: Option<u32>,
    ) -> Result<CreatedKey, ServiceError> {
        authz::check_actor(actor)?;
        let now = micros(self.0.clock.now());
        let policy = &self.0.policy;
        let mut errors = Vec::new();
        let owner_id = actor.owner_id().unwrap_or_default();
        if owner_id.is_empty()
            || owner_id.len() > MAX_OWNER_LEN
            || owner_id.chars().any(char::is_control)
        {
            errors.push(FieldError::new(
                "owner_id",
                "invalid",
                format!("1–{MAX_OWNER_LEN} printable characters"),
            ));
        }
        check_text(&mut errors, "name", &req.name, policy.max_name_len, true);
        if let Some(d) = &req.description {
            check_text(
                &mut errors,
                "description",
                d,
                policy.max_description_len,
                false,
            );
        }
        let scopes = self.validate_scopes(&mut errors, &req.scopes);
        // Who may do what comes before what is well formed: a refusal is the answer even for
        // a body that is also invalid.
        let refusals = authz::create_refusals(actor, &req, &scopes);
        if !refusals.is_empty() {
            return Err(ServiceError::Forbidden(refusals));
        }
        let ip_allowlist = self.validate_ips(&mut errors, &req.ip_allowlist);
        let self_service = (!actor.is_admin()).then_some(&policy.self_service);
        let default_ttl = self_service.and_then(|s| s.max_ttl).or(policy.default_ttl);
        let expires_at = match (req.expires_at, req.ttl_seconds) {
            (Some(_), Some(_)) => {
                errors.push(FieldError::new(
                    "ttl_seconds",
                    "conflict",
                    "give expires_at or ttl_seconds, not both",
                ));
                None
            }
            (Some(e), None) => Some(micros(e)),
            (None, Some(t)) if t <= 0 => {
                errors.push(FieldError::new(
                    "ttl_seconds",
                    "invalid",
                    "must be positive",
                ));
                None
            }
            (None, Some(t)) => {
                match chrono::Duration::try_seconds(t).and_then(|d| now.checked_add_signed(d)) {
                    Some(e) => Some(e),
                    None => {
                        errors.push(FieldError::new(
                            "ttl_seconds",
                            "out_of_range",
                            "too far in the future",
                        ));
                        None
                    }
                }
            }
            (None, None) => default_ttl.and_then(|d| now.checked_add_signed(d)),
        };
        self.validate_expiry(&mut errors, "expires_at", expires_at, now, now);
        if let Some(max) = self_service.and_then(|s| s.max_ttl) {
            let limit = now
                .checked_add_signed(max)
                .unwrap_or(DateTime::<Utc>::MAX_UTC);
            if expires_at.is_none_or(|e| e > limit) {
                errors.push(FieldError::new(
                    "expires_at",
                    "too_far",
                    format!(
                        "self-service keys live at most {} seconds",
                        max.num_seconds()
                    ),
                ));
            }
        }
        let (rate_limit, credits) = match self_service {
            Some(s) => (s.rate_limit, s.credits),
            None => (req.rate_limit, req.credits),
        };
        self.validate_limits(&mut errors, rate_limit.as_ref(), credits.as_ref());
        let metadata = req.metadata.unwrap_or_default();
        self.validate_metadata(&mut errors, &metadata);
        if req.signing && self.0.encryption.is_none() {
            errors.push(FieldError::new(
                "signing",
                "unavailable",
                "request signing is not enabled on this server",
            ));
        }
        if !errors.is_empty() {
            return Err(ServiceError::Validation(errors));
        }
        let template = KeyRecord {
            key_id: KeyId::MIN,
            owner_id: owner_id.to_owned(),
            name: req.name.trim().to_owned(),
            description: req
                .description
                .map(|d| d.trim().to_owned())
                .filter(|d| !d.is_empty()),
            env: policy.format.env().to_owned(),
            prefix: policy.format.prefix().to_owned(),
            digest: self.0.keyring.digest(&KeyId::MIN, ""),
            sealed_secret: None,
            scopes,
            metadata,
            ip_allowlist,
            rate_limit,
            credits,
            usage: Usage::default(),
            is_active: true,
            created_at: now,
            updated_at: now,
            not_before: None,
            expires_at,
            last_used_at: None,
            revoked_at: None,
            rotated_from: None,
            rotated_to: None,
            deactivated_by: None,
            lineage: None,
        };
        self.insert_new(template, req.signing, cap, now).await
    }

    /// Gives `record` a fresh key id and secret: sets its id, digest and (for signing keys)
    /// sealed secret, and returns the raw key.
    pub(crate) fn mint(
        &self,
        record: &mut KeyRecord,
        signing: bool,
    ) -> Result<ApiKey, ServiceError> {
        let generated = self
            .0
            .policy
            .format
            .generate()
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        record.key_id = generated.key_id;
        record.digest = self
            .0
            .keyring
            .digest(&generated.key_id, generated.secret().expose_secret());
        record.sealed_secret = match (signing, &self.0.encryption) {
            (true, Some(enc)) => Some(
                enc.seal(
                    &generated.key_id,
                    generated.api_key.expose_secret().as_bytes(),
                )
                .map_err(|e| ServiceError::Internal(e.to_string()))?,
            ),
            _ => None,
        };
        Ok(generated.api_key.clone())
    }

    /// Generates the secret, digests (and seals) it, and stores the record.
    async fn insert_new(
        &self,
        mut record: KeyRecord,
        signing: bool,
        max: Option<u32>,
        now: DateTime<Utc>,
    ) -> Result<CreatedKey, ServiceError> {
        // A key id collision (62^12 space) is astronomically unlikely; retry a few times anyway.
        for _ in 0..3 {
            let api_key = self.mint(&mut record, signing)?;
            match self.0.store.create(&record, max, now).await {
                Ok(()) => {
                    // An instance that answered "unknown" for this id a moment ago forgets it.
                    self.invalidate_everywhere(&record.key_id).await;
                    tracing::info!(key_id = %record.key_id, owner_id = %record.owner_id, "API key created");
                    return Ok(CreatedKey {
                        key: record.view(now),
                        api_key,
                    });
                }
                Err(e) if e.kind() == StoreErrorKind::Conflict => {}
                Err(e) if e.kind() == StoreErrorKind::LimitReached => {
                    return Err(ServiceError::LimitReached(max.unwrap_or(0)));
                }
                Err(e) => return Err(store_err(e)),
            }
        }
        Err(ServiceError::Internal(
            "could not allocate a unique key id".into(),
        ))
    }

    /// The key, if `actor` may see it; missing and out-of-reach keys are both `NotFound`.
    pub(crate) async fn fetch(
        &self,
        actor: &Actor,
        key_id: &KeyId,
    ) -> Result<KeyRecord, ServiceError> {
        authz::check_actor(actor)?;
        match self.0.store.get(key_id).await {
            Ok(Some(r)) if authz::reaches(actor, &r) => Ok(r),
            Ok(_) => Err(ServiceError::NotFound),
            Err(e) => Err(store_err(e)),
        }
    }

    /// One key's safe view. Missing and foreign keys are both [`ServiceError::NotFound`].
    ///
    /// # Errors
    /// `NotFound`, `Forbidden` (a reserved owner through self-service), `Unavailable`.
    pub async fn get_key(&self, actor: &Actor, key_id: &KeyId) -> Result<KeyView, ServiceError> {
        let now = self.0.clock.now();
        Ok(self.fetch(actor, key_id).await?.view(now))
    }

    /// A page of the keys of the owner `actor` acts on, oldest first. `limit` defaults to 50
    /// and is capped at 100.
    ///
    /// # Errors
    /// `Validation` for a bad cursor or limit, or an administrator of every owner (who must name
    /// one, [`Actor::admin_for`]); `Forbidden`, `Unavailable`.
    pub async fn list_keys(
        &self,
        actor: &Actor,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<KeyPage, ServiceError> {
        authz::check_actor(actor)?;
        let Some(owner_id) = actor.owner_id() else {
            return Err(ServiceError::field(
                "owner_id",
                "required",
                "name the owner whose keys to list",
            ));
        };
        let limit = limit.unwrap_or(50);
        if limit == 0 || limit > MAX_PAGE_SIZE {
            return Err(ServiceError::field(
                "limit",
                "out_of_range",
                format!("1–{MAX_PAGE_SIZE}"),
            ));
        }
        let cursor = match cursor.filter(|c| !c.is_empty()) {
            Some(c) => Some(
                Cursor::decode(c)
                    .map_err(|_| ServiceError::field("cursor", "invalid", "malformed cursor"))?,
            ),
            None => None,
        };
        let now = self.0.clock.now();
        let page = self
            .0
            .store
            .list_by_owner(owner_id, cursor, limit)
            .await
            .map_err(store_err)?;
        Ok(KeyPage {
            items: page.items.iter().map(|r| r.view(now)).collect(),
            next_cursor: page.next_cursor.map(|c| c.encode()),
        })
    }

    /// Updates the fields `req` names, as `actor` may (DESIGN.md §11): owners and key callers
    /// set name and description, narrow scopes, shorten the expiry, deactivate, and reactivate
    /// what they deactivated; everything else is for administrators. The write is checked
    /// against the version read (and against `if_match` when given), so concurrent updates
    /// never lose each other's fields: without `if_match` a lost race is retried on the fresh
    /// key. A revoked key cannot be changed.
    ///
    /// # Errors
    /// `NotFound`, `Forbidden`, `Validation`, `PreconditionFailed`, `Unavailable`.
    pub async fn update_key(
        &self,
        actor: &Actor,
        key_id: &KeyId,
        req: UpdateKeyRequest,
        if_match: Option<KeyVersion>,
    ) -> Result<KeyView, ServiceError> {
        let scopes = match &req.scopes {
            Some(s) => {
                let mut errors = Vec::new();
                let set = self.validate_scopes(&mut errors, s);
                if !errors.is_empty() {
                    return Err(ServiceError::Validation(errors));
                }
                Some(set)
            }
            None => None,
        };
        for _ in 0..WRITE_ATTEMPTS {
            let record = self.fetch(actor, key_id).await?;
            if if_match.is_some_and(|v| v != KeyVersion::of(&record)) {
                return Err(ServiceError::PreconditionFailed);
            }
            let refusals = authz::update_refusals(actor, &req, scopes.as_ref(), &record);
            if !refusals.is_empty() {
                return Err(ServiceError::Forbidden(refusals));
            }
            let expected = record.updated_at;
            let updated = self.apply_update(actor, record, &req, scopes.as_ref())?;
            match self.0.store.update(&updated, expected).await {
                Ok(()) => {
                    self.invalidate_everywhere(key_id).await;
                    tracing::info!(key_id = %key_id, "API key updated");
                    return Ok(updated.view(updated.updated_at));
                }
                Err(e) if e.kind() == StoreErrorKind::Stale && if_match.is_none() => {}
                Err(e) if e.kind() == StoreErrorKind::Stale => {
                    return Err(ServiceError::PreconditionFailed);
                }
                Err(e) => {
                    // The write may have landed before the failure (a cache in front of the
                    // store that could not be told): drop the cached record all the same.
                    self.invalidate_everywhere(key_id).await;
                    return Err(store_err(e));
                }
            }
        }
        Err(contended())
    }

    /// `record` with the fields of `req` applied and validated, `updated_at` moved forward.
    fn apply_update(
        &self,
        actor: &Actor,
        mut record: KeyRecord,
        req: &UpdateKeyRequest,
        scopes: Option<&ScopeSet>,
    ) -> Result<KeyRecord, ServiceError> {
        let now = micros(self.0.clock.now());
        let policy = &self.0.policy;
        let mut errors = Vec::new();
        if record.revoked_at.is_some() {
            return Err(ServiceError::field(
                "key_id",
                "revoked",
                "a revoked key cannot be changed",
            ));
        }
        if let Some(n) = &req.name {
            check_text(&mut errors, "name", n, policy.max_name_len, true);
            record.name = n.trim().to_owned();
        }
        if let Some(d) = &req.description {
            if let Some(d) = d {
                check_text(
                    &mut errors,
                    "description",
                    d,
                    policy.max_description_len,
                    false,
                );
            }
            record.description = d
                .as_ref()
                .map(|d| d.trim().to_owned())
                .filter(|d| !d.is_empty());
        }
        if let Some(s) = scopes {
            record.scopes = s.clone();
        }
        match req.is_active {
            Some(true) => {
                record.is_active = true;
                record.deactivated_by = None;
            }
            Some(false) => {
                // An owner deactivating a key an administrator deactivated keeps it the
                // administrator's: otherwise the owner could reactivate it next.
                if actor.is_admin() {
                    record.deactivated_by = Some(Deactivator::Admin);
                } else if record.is_active {
                    record.deactivated_by = Some(Deactivator::Owner);
                }
                record.is_active = false;
            }
            None => {}
        }
        if let Some(e) = req.expires_at {
            record.expires_at = e.map(micros);
            self.validate_expiry(
                &mut errors,
                "expires_at",
                record.expires_at,
                record.created_at,
                now,
            );
        }
        if let Some(m) = &req.metadata {
            self.validate_metadata(&mut errors, m);
            record.metadata = m.clone();
        }
        if let Some(ips) = &req.ip_allowlist {
            record.ip_allowlist = self.validate_ips(&mut errors, ips);
        }
        if let Some(r) = req.rate_limit {
            record.rate_limit = r;
        }
        if let Some(c) = req.credits {
            record.credits = c;
        }
        self.validate_limits(
            &mut errors,
            record.rate_limit.as_ref(),
            record.credits.as_ref(),
        );
        if !errors.is_empty() {
            return Err(ServiceError::Validation(errors));
        }
        record.updated_at = next_version_time(&record, now);
        Ok(record)
    }

    /// Soft-revokes a key; idempotent (the first `revoked_at` is kept). The key fails
    /// verification at once on this instance and, through the bus, on the others.
    ///
    /// # Errors
    /// `NotFound`, `Forbidden`, `PreconditionFailed`, `Unavailable`.
    pub async fn revoke_key(
        &self,
        actor: &Actor,
        key_id: &KeyId,
        if_match: Option<KeyVersion>,
    ) -> Result<KeyView, ServiceError> {
        let now = micros(self.0.clock.now());
        let record = self.fetch(actor, key_id).await?;
        if if_match.is_some_and(|v| v != KeyVersion::of(&record)) {
            return Err(ServiceError::PreconditionFailed);
        }
        let revoked = self.0.store.revoke(key_id, now).await;
        // Whatever the store answered, this instance stops trusting its cached record now: a
        // revoke that reached the store but not a cache in front of it must not leave the key
        // working here until the cache TTL ends.
        self.invalidate_everywhere(key_id).await;
        let record = revoked.map_err(store_err)?.ok_or(ServiceError::NotFound)?;
        tracing::info!(key_id = %key_id, "API key revoked");
        Ok(record.view(now))
    }
}

/// How often a management write is tried when another writer keeps winning the race.
pub(crate) const WRITE_ATTEMPTS: usize = 8;

/// The `updated_at` of a write at `now`: strictly after the record's, so that every write makes
/// a new version even within one microsecond.
pub(crate) fn next_version_time(record: &KeyRecord, now: DateTime<Utc>) -> DateTime<Utc> {
    let after = record
        .updated_at
        .checked_add_signed(chrono::Duration::microseconds(1))
        .unwrap_or(record.updated_at);
    now.max(after)
}

/// The answer when other writers kept winning the race for `WRITE_ATTEMPTS` tries.
pub(crate) fn contended() -> ServiceError {
    ServiceError::Unavailable(StoreError::unavailable(
        "the key kept changing under concurrent writes; try again",
    ))
}
