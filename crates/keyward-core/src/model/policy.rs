//! [`Policy`]: the limits and defaults of key management, with the self-service defaults and
//! how last use is recorded.

use super::{Credits, RateLimit};
use crate::key::KeyFormat;

/// How `last_used_at` is recorded. None of them writes to the store on the request path except
/// `Immediate`, which the application opts into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LastUsedStrategy {
    /// Never record.
    Disabled,
    /// Write on every verified request (a store write per request).
    Immediate,
    /// Record at most once per this many seconds per key, flushed in batches.
    Throttled(u64),
}

impl Default for LastUsedStrategy {
    /// `Throttled(300)`.
    fn default() -> Self {
        Self::Throttled(300)
    }
}

/// Limits and defaults for key management.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Key prefix and environment.
    pub format: KeyFormat,
    /// Expiry given to keys created without one; `None` for no default.
    pub default_ttl: Option<time::Duration>,
    /// Longest lifetime a key may be given; `None` for unbounded.
    pub max_ttl: Option<time::Duration>,
    /// Maximum keys per owner that are neither revoked nor expired; enforced atomically.
    pub max_keys_per_owner: Option<u32>,
    /// How last use is recorded.
    pub last_used: LastUsedStrategy,
    /// What may be granted.
    pub catalog: crate::scope::ScopeCatalog,
    /// Longest name, in characters.
    pub max_name_len: usize,
    /// Longest description, in characters.
    pub max_description_len: usize,
    /// Most scopes per key.
    pub max_scopes: usize,
    /// Largest metadata object, in bytes of JSON.
    pub max_metadata_bytes: usize,
    /// Most allowlist entries per key.
    pub max_ip_entries: usize,
    /// Grace period of a rotation when the request gives none.
    pub default_rotation_grace: time::Duration,
    /// Longest grace period a rotation may ask for.
    pub max_rotation_grace: time::Duration,
    /// What operators impose on keys created through self-service (DESIGN.md §11).
    pub self_service: SelfServiceDefaults,
}

/// Limits the operator imposes on keys that owners and key callers create for themselves.
/// Administrators are not bound by them; an owner cannot lift them later (only administrators
/// change limits).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SelfServiceDefaults {
    /// Rate limit given to every self-service key.
    pub rate_limit: Option<RateLimit>,
    /// Credits given to every self-service key.
    pub credits: Option<Credits>,
    /// Longest lifetime of a self-service key; a key asked for without an expiry gets this one.
    pub max_ttl: Option<time::Duration>,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            format: KeyFormat::default(),
            default_ttl: None,
            max_ttl: None,
            max_keys_per_owner: Some(20),
            last_used: LastUsedStrategy::default(),
            catalog: crate::scope::ScopeCatalog::Any,
            max_name_len: 128,
            max_description_len: 1024,
            max_scopes: 64,
            max_metadata_bytes: 8192,
            max_ip_entries: 64,
            default_rotation_grace: time::Duration::hours(1),
            max_rotation_grace: time::Duration::days(30),
            self_service: SelfServiceDefaults::default(),
        }
    }
}
