//! The management service: create (the raw key is returned once), get, list, update, revoke,
//! rotate. Every call names the owner it acts for; a key of another owner is "not found".

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};

use crate::Keyward;
use crate::clock::micros;
use crate::error::ErrorCode;
use crate::key::{ApiKey, KeyId};
use crate::model::{Credits, IpNet, KeyRecord, KeyView, Metadata, RateLimit, Usage};
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
            Self::Unavailable(_) | Self::Internal(_) => ErrorCode::AuthUnavailable,
        }
    }

    fn field(field: &str, code: &str, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, code, message)])
    }
}

fn store_err(e: StoreError) -> ServiceError {
    match e.kind() {
        StoreErrorKind::NotFound => ServiceError::NotFound,
        StoreErrorKind::Corrupt | StoreErrorKind::Conflict | StoreErrorKind::Other => {
            ServiceError::Internal(e.to_string())
        }
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

/// Whose keys a management call may touch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access<'a> {
    /// Only this owner's keys; others are "not found".
    Owner(&'a str),
    /// Any key (the admin CLI).
    Admin,
}

impl Access<'_> {
    fn allows(&self, record: &KeyRecord) -> bool {
        match self {
            Self::Owner(o) => record.owner_id == *o,
            Self::Admin => true,
        }
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
            Ok(set) => match policy.catalog.admit(&set) {
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

    /// Creates a key for `owner_id`. The returned [`CreatedKey`] holds the raw key: the only time
    /// it exists outside its holder.
    ///
    /// # Errors
    /// [`ServiceError::Validation`] with field detail, [`ServiceError::LimitReached`],
    /// [`ServiceError::Unavailable`].
    pub async fn create_key(
        &self,
        owner_id: &str,
        req: CreateKeyRequest,
    ) -> Result<CreatedKey, ServiceError> {
        let now = micros(self.0.clock.now());
        let policy = &self.0.policy;
        let mut errors = Vec::new();
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
        let ip_allowlist = self.validate_ips(&mut errors, &req.ip_allowlist);
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
            (None, Some(t)) => now.checked_add_signed(chrono::Duration::seconds(t)),
            (None, None) => policy.default_ttl.and_then(|d| now.checked_add_signed(d)),
        };
        self.validate_expiry(&mut errors, "expires_at", expires_at, now, now);
        self.validate_limits(&mut errors, req.rate_limit.as_ref(), req.credits.as_ref());
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
            rate_limit: req.rate_limit,
            credits: req.credits,
            usage: Usage::default(),
            is_active: true,
            created_at: now,
            updated_at: now,
            not_before: None,
            expires_at,
            last_used_at: None,
            revoked_at: None,
            rotated_from: None,
        };
        self.insert_new(template, req.signing, policy.max_keys_per_owner, now)
            .await
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
            match self.0.store.create(&record, max, now).await {
                Ok(()) => {
                    tracing::info!(key_id = %record.key_id, owner_id = %record.owner_id, "API key created");
                    return Ok(CreatedKey {
                        key: record.view(now),
                        api_key: generated.api_key.clone(),
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

    async fn fetch(&self, access: Access<'_>, key_id: &KeyId) -> Result<KeyRecord, ServiceError> {
        match self.0.store.get(key_id).await {
            Ok(Some(r)) if access.allows(&r) => Ok(r),
            Ok(_) => Err(ServiceError::NotFound),
            Err(e) => Err(store_err(e)),
        }
    }

    /// One key's safe view. Missing and foreign keys are both [`ServiceError::NotFound`].
    ///
    /// # Errors
    /// `NotFound`, `Unavailable`.
    pub async fn get_key(
        &self,
        access: Access<'_>,
        key_id: &KeyId,
    ) -> Result<KeyView, ServiceError> {
        let now = self.0.clock.now();
        Ok(self.fetch(access, key_id).await?.view(now))
    }

    /// A page of an owner's keys, oldest first. `limit` defaults to 50 and is capped at 100.
    ///
    /// # Errors
    /// `Validation` for a bad cursor or limit, `Unavailable`.
    pub async fn list_keys(
        &self,
        owner_id: &str,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<KeyPage, ServiceError> {
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

    /// Updates management fields. Scope changes pass the same catalog check as create; a revoked
    /// key cannot be changed.
    ///
    /// # Errors
    /// `NotFound`, `Validation`, `Unavailable`.
    pub async fn update_key(
        &self,
        access: Access<'_>,
        key_id: &KeyId,
        req: UpdateKeyRequest,
    ) -> Result<KeyView, ServiceError> {
        let now = micros(self.0.clock.now());
        let policy = &self.0.policy;
        let mut record = self.fetch(access, key_id).await?;
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
        if let Some(s) = &req.scopes {
            record.scopes = self.validate_scopes(&mut errors, s);
        }
        if let Some(a) = req.is_active {
            record.is_active = a;
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
        if let Some(m) = req.metadata {
            self.validate_metadata(&mut errors, &m);
            record.metadata = m;
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
        record.updated_at = now;
        self.0.store.update(&record).await.map_err(store_err)?;
        self.invalidate_everywhere(key_id).await;
        tracing::info!(key_id = %key_id, "API key updated");
        Ok(record.view(now))
    }

    /// Soft-revokes a key; idempotent (the first `revoked_at` is kept). The key fails
    /// verification at once on this instance and, through the bus, on the others.
    ///
    /// # Errors
    /// `NotFound`, `Unavailable`.
    pub async fn revoke_key(
        &self,
        access: Access<'_>,
        key_id: &KeyId,
    ) -> Result<KeyView, ServiceError> {
        let now = micros(self.0.clock.now());
        self.fetch(access, key_id).await?;
        let record = self
            .0
            .store
            .revoke(key_id, now)
            .await
            .map_err(store_err)?
            .ok_or(ServiceError::NotFound)?;
        self.invalidate_everywhere(key_id).await;
        tracing::info!(key_id = %key_id, "API key revoked");
        Ok(record.view(now))
    }

    /// Issues a successor with the same name, scopes and settings; the old key keeps working for
    /// the grace period, then expires. The successor does not count against the owner's limit
    /// (the old key is on its way out).
    ///
    /// # Errors
    /// `NotFound`, `Validation` (bad grace, revoked or expired key), `Unavailable`.
    pub async fn rotate_key(
        &self,
        access: Access<'_>,
        key_id: &KeyId,
        req: RotateKeyRequest,
    ) -> Result<CreatedKey, ServiceError> {
        let now = micros(self.0.clock.now());
        let policy = &self.0.policy;
        let mut old = self.fetch(access, key_id).await?;
        let grace = match req.grace_seconds {
            None => policy.default_rotation_grace,
            Some(s) if s < 0 || chrono::Duration::seconds(s) > policy.max_rotation_grace => {
                return Err(ServiceError::field(
                    "grace_seconds",
                    "out_of_range",
                    format!("0–{} seconds", policy.max_rotation_grace.num_seconds()),
                ));
            }
            Some(s) => chrono::Duration::seconds(s),
        };
        match old.state(now) {
            crate::model::KeyState::Revoked | crate::model::KeyState::Expired => {
                return Err(ServiceError::field(
                    "key_id",
                    "not_rotatable",
                    "revoked or expired keys cannot be rotated",
                ));
            }
            _ => {}
        }
        let lifetime = old.expires_at.map(|e| e - old.created_at);
        let mut successor = old.clone();
        successor.rotated_from = Some(old.key_id);
        successor.created_at = now;
        successor.updated_at = now;
        successor.usage = Usage::default();
        successor.last_used_at = None;
        successor.expires_at = lifetime.and_then(|l| now.checked_add_signed(l));
        let created = self
            .insert_new(successor, old.is_signing(), None, now)
            .await?;
        let dies = now.checked_add_signed(grace).unwrap_or(now);
        if old.expires_at.is_none_or(|e| e > dies) {
            old.expires_at = Some(dies);
        }
        old.updated_at = now;
        self.0.store.update(&old).await.map_err(store_err)?;
        self.invalidate_everywhere(key_id).await;
        tracing::info!(old = %key_id, new = %created.key.id, "API key rotated");
        Ok(created)
    }
}
