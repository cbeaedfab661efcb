//! The keys table. One row per key; the verification cold path is one indexed `SELECT` by
//! `key_id`.
//!
//! Text holding structured values (scopes, metadata, IP allowlist) is JSON in a `TEXT` column,
//! portable across the three databases. Counters are `BIGINT` (values above `i64::MAX` are
//! clamped). Timestamps keep microseconds: `timestamptz` on PostgreSQL, `DATETIME(6)` on MySQL,
//! RFC 3339 text on SQLite.
//!
//! An application that queries or writes this table itself binds instants with
//! [`crate::instant`], as keyward's store does: on SQLite the text form matters (instants are
//! compared as text), and the `TimeDateTimeWithTimeZone` fields below, bound as they are, would
//! be written in another form.

use sea_orm::entity::prelude::*;

/// A stored key.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "api_keys")]
pub struct Model {
    /// Surrogate primary key.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Public lookup handle, 12 base62 characters; unique index.
    #[sea_orm(column_type = "String(StringLen::N(12))")]
    pub key_id: String,
    /// Opaque owner id (any user, team or tenant id of the application); indexed.
    #[sea_orm(column_type = "String(StringLen::N(255))")]
    pub owner_id: String,
    /// Human name.
    #[sea_orm(column_type = "Text")]
    pub name: String,
    /// Optional description.
    #[sea_orm(column_type = "Text", nullable)]
    pub description: Option<String>,
    /// Environment marker (`live`, `test`, …).
    #[sea_orm(column_type = "String(StringLen::N(16))")]
    pub env: String,
    /// Issuer prefix the key was issued with.
    #[sea_orm(column_type = "String(StringLen::N(16))")]
    pub key_prefix: String,
    /// Keyed digest of the secret (32 bytes).
    #[sea_orm(column_type = "Blob")]
    pub digest: Vec<u8>,
    /// Digest function (`hmac-sha256`, `blake3`, `argon2id`).
    #[sea_orm(column_type = "String(StringLen::N(16))")]
    pub digest_algorithm: String,
    /// Pepper version of the digest.
    pub pepper_version: i64,
    /// Signing keys only: the sealed secret (`nonce ‖ ciphertext ‖ tag`).
    #[sea_orm(column_type = "Blob", nullable)]
    pub sealed_secret: Option<Vec<u8>>,
    /// Version of the encryption key that sealed it.
    pub sealed_secret_version: Option<i64>,
    /// Granted scopes, a JSON array of strings.
    #[sea_orm(column_type = "Text")]
    pub scopes: String,
    /// Application metadata, a JSON object.
    #[sea_orm(column_type = "Text")]
    pub metadata: String,
    /// Allowed networks, a JSON array of CIDR strings; empty means anywhere.
    #[sea_orm(column_type = "Text")]
    pub ip_allowlist: String,
    /// Rate limit: requests per window.
    pub rate_limit_requests: Option<i64>,
    /// Rate limit: window length in seconds.
    pub rate_limit_window_seconds: Option<i64>,
    /// Usage credits per period.
    pub credits_limit: Option<i64>,
    /// Credit refill period in seconds.
    pub credits_refill_seconds: Option<i64>,
    /// Verified requests (flushed in batches).
    pub request_count: i64,
    /// Credits used in `credits_period`.
    pub credits_used: i64,
    /// Index of the current credit period.
    pub credits_period: i64,
    /// Deactivated keys fail verification.
    pub is_active: bool,
    /// Creation time.
    pub created_at: TimeDateTimeWithTimeZone,
    /// Last management change.
    pub updated_at: TimeDateTimeWithTimeZone,
    /// Not valid before.
    pub not_before: Option<TimeDateTimeWithTimeZone>,
    /// Not valid from.
    pub expires_at: Option<TimeDateTimeWithTimeZone>,
    /// Last verified use.
    pub last_used_at: Option<TimeDateTimeWithTimeZone>,
    /// Soft revocation time.
    pub revoked_at: Option<TimeDateTimeWithTimeZone>,
    /// The key this one replaced by rotation.
    #[sea_orm(column_type = "String(StringLen::N(12))", nullable)]
    pub rotated_from: Option<String>,
    /// The key that replaced this one (migration 0002): a key is rotated at most once.
    #[sea_orm(column_type = "String(StringLen::N(12))", nullable)]
    pub rotated_to: Option<String>,
    /// Who deactivated the key, `admin` or `owner` (migration 0002).
    #[sea_orm(column_type = "String(StringLen::N(16))", nullable)]
    pub deactivated_by: Option<String>,
    /// The first key of the rotation chain, whose rate limit and credits the key shares
    /// (migration 0002).
    #[sea_orm(column_type = "String(StringLen::N(12))", nullable)]
    pub lineage_root: Option<String>,
    /// When the chain's first key was created: credit periods start there (migration 0002).
    pub lineage_started_at: Option<TimeDateTimeWithTimeZone>,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
