//! [`KeyRecord`]: a key as a store keeps it, its lifecycle ([`KeyState`]), its rotation
//! chain ([`Lineage`]) and its sealed signing secret.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{Credits, IpNet, KeyView, Metadata, RateLimit, Usage};
use crate::digest::KeyDigest;
use crate::key::KeyId;
use crate::scope::ScopeSet;

/// The signing secret, sealed with AES-256-GCM under a versioned encryption key. Only
/// signing-enabled keys have one. Redacted in `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedSecret {
    /// Version of the encryption key that sealed it.
    pub key_version: u32,
    /// `nonce ‖ ciphertext ‖ tag`.
    pub bytes: Vec<u8>,
}

impl fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedSecret")
            .field("key_version", &self.key_version)
            .finish_non_exhaustive()
    }
}

/// A key as stored. Holds the digest, never the secret. Use [`KeyView`] for anything that leaves
/// the process.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyRecord {
    /// Public lookup handle, unique.
    pub key_id: KeyId,
    /// Opaque owner id (a user, team or tenant of the application).
    pub owner_id: String,
    /// Human name.
    pub name: String,
    /// Optional description.
    pub description: Option<String>,
    /// Environment marker the key was issued for.
    pub env: String,
    /// Issuer prefix the key was issued with.
    pub prefix: String,
    /// Keyed digest of the secret.
    pub digest: KeyDigest,
    /// Signing-only keys: the secret sealed for SigV4 verification.
    pub sealed_secret: Option<SealedSecret>,
    /// Granted scopes.
    pub scopes: ScopeSet,
    /// Application metadata.
    pub metadata: Metadata,
    /// Networks the key may be used from; empty means anywhere.
    pub ip_allowlist: Vec<IpNet>,
    /// Optional per-key rate limit.
    pub rate_limit: Option<RateLimit>,
    /// Optional usage credits.
    pub credits: Option<Credits>,
    /// Counters.
    pub usage: Usage,
    /// Deactivated keys fail verification but can be re-activated.
    pub is_active: bool,
    /// Creation time (microsecond precision).
    pub created_at: OffsetDateTime,
    /// Last management change.
    pub updated_at: OffsetDateTime,
    /// The key is not valid before this instant.
    pub not_before: Option<OffsetDateTime>,
    /// The key is not valid from this instant on.
    pub expires_at: Option<OffsetDateTime>,
    /// Last verified use (per the last-used strategy).
    pub last_used_at: Option<OffsetDateTime>,
    /// Where that use came from: the client address and user agent, when the application
    /// passed them ([`crate::VerifyContext`]).
    pub last_used_from: Option<crate::model::Origin>,
    /// Soft revocation time; final.
    pub revoked_at: Option<OffsetDateTime>,
    /// The key this one replaced by rotation.
    pub rotated_from: Option<KeyId>,
    /// The key that replaced this one by rotation: a key is rotated at most once.
    pub rotated_to: Option<KeyId>,
    /// Who deactivated the key, while it is inactive: only an administrator reactivates what an
    /// administrator deactivated.
    pub deactivated_by: Option<Deactivator>,
    /// The rotation chain the key belongs to, when it was issued by a rotation: its rate limit
    /// and credits are the chain's, so rotating does not reset them.
    pub lineage: Option<Lineage>,
}

/// Who deactivated a key (`is_active = false`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Deactivator {
    /// An administrator: only an administrator reactivates the key.
    Admin,
    /// The owner (self-service or a key caller): the owner may reactivate it.
    Owner,
}

impl Deactivator {
    /// The stored name (`admin`, `owner`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Owner => "owner",
        }
    }

    /// Parses [`Deactivator::as_str`]'s output.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(Self::Admin),
            "owner" => Some(Self::Owner),
            _ => None,
        }
    }
}

/// The first key of a rotation chain: every successor shares its rate-limit bucket and its
/// credit counter (periods counted from `started_at`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lineage {
    /// The chain's first key.
    pub root: KeyId,
    /// When the chain's first key was created: credit periods start there.
    #[serde(with = "crate::rfc3339")]
    pub started_at: OffsetDateTime,
}

/// The lifecycle state of a key at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum KeyState {
    /// Usable.
    Active,
    /// Revoked: final.
    Revoked,
    /// Deactivated by its owner or an admin.
    Inactive,
    /// Past its expiry.
    Expired,
    /// Before its start.
    NotYetValid,
}

impl KeyRecord {
    /// The state at `now`, most final first: revoked, inactive, expired, not yet valid, active.
    #[must_use]
    pub fn state(&self, now: OffsetDateTime) -> KeyState {
        Lifecycle::of(self).state(crate::clock::unix_micros(now))
    }

    /// The id its rate limit and credits are counted under: the rotation chain's first key.
    #[must_use]
    pub fn quota_key(&self) -> &KeyId {
        self.lineage.as_ref().map_or(&self.key_id, |l| &l.root)
    }

    /// Where its credit periods start: the creation of the rotation chain's first key.
    #[must_use]
    pub fn quota_since(&self) -> OffsetDateTime {
        self.lineage.map_or(self.created_at, |l| l.started_at)
    }

    /// The lineage a successor of this key belongs to.
    #[must_use]
    pub(crate) fn successor_lineage(&self) -> Lineage {
        self.lineage.unwrap_or(Lineage {
            root: self.key_id,
            started_at: self.created_at,
        })
    }

    /// The version management writes are checked against (`ETag` / `If-Match`): its
    /// `updated_at` in microseconds, which every management write moves strictly forward.
    #[must_use]
    pub(crate) fn version(&self) -> i64 {
        crate::clock::unix_micros(self.updated_at)
    }

    /// Whether the key counts against the owner's maximum at `now`: not revoked, not expired.
    #[must_use]
    pub fn counts_toward_limit(&self, now: OffsetDateTime) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| now < e)
    }

    /// Whether the key may only be used to sign requests.
    #[must_use]
    pub fn is_signing(&self) -> bool {
        self.sealed_secret.is_some()
    }

    /// The safe view.
    #[must_use]
    pub fn view(&self, now: OffsetDateTime) -> KeyView {
        KeyView {
            id: self.key_id,
            name: self.name.clone(),
            description: self.description.clone(),
            display: format!("{}_{}_{}…", self.prefix, self.env, self.key_id),
            env: self.env.clone(),
            owner_id: self.owner_id.clone(),
            scopes: self.scopes.iter().map(|s| s.as_str().to_owned()).collect(),
            is_active: self.is_active,
            state: self.state(now),
            signing: self.is_signing(),
            created_at: self.created_at,
            updated_at: self.updated_at,
            not_before: self.not_before,
            expires_at: self.expires_at,
            last_used_at: self.last_used_at,
            last_used_from: self.last_used_from.clone(),
            revoked_at: self.revoked_at,
            rotated_from: self.rotated_from,
            rotated_to: self.rotated_to,
            deactivated_by: self.deactivated_by,
            metadata: self.metadata.clone(),
            ip_allowlist: self.ip_allowlist.iter().map(ToString::to_string).collect(),
            rate_limit: self.rate_limit,
            credits: self.credits,
            usage: self.usage,
        }
    }
}

/// What a record's state depends on, computed once per cache fill so that the hot path compares
/// integers: `not_before` and `expires_at` in microseconds since the epoch (the precision every
/// store keeps; absent bounds are `i64::MIN` and `i64::MAX`), revocation and activity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Lifecycle {
    /// First valid microsecond.
    from_us: i64,
    /// First expired microsecond.
    until_us: i64,
    revoked: bool,
    active: bool,
}

impl Lifecycle {
    pub(crate) fn of(record: &KeyRecord) -> Self {
        Self {
            from_us: record
                .not_before
                .map_or(i64::MIN, crate::clock::unix_micros),
            until_us: record
                .expires_at
                .map_or(i64::MAX, crate::clock::unix_micros),
            revoked: record.revoked_at.is_some(),
            active: record.is_active,
        }
    }

    /// The state at `now_us`, most final first: revoked, inactive, expired, not yet valid,
    /// active.
    pub(crate) fn state(&self, now_us: i64) -> KeyState {
        if self.revoked {
            KeyState::Revoked
        } else if !self.active {
            KeyState::Inactive
        } else if now_us >= self.until_us {
            KeyState::Expired
        } else if now_us < self.from_us {
            KeyState::NotYetValid
        } else {
            KeyState::Active
        }
    }
}
