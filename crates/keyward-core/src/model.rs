//! Domain types: the stored [`KeyRecord`], its safe [`KeyView`], the [`Principal`] a verified
//! request carries, limits, usage and IP allowlists.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::digest::KeyDigest;
use crate::key::{KeyFormat, KeyId};
use crate::scope::ScopeSet;

/// Free-form JSON object attached to a key.
pub type Metadata = serde_json::Map<String, serde_json::Value>;

/// A per-key rate limit: at most `requests` per `window_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Requests allowed per window (≥ 1).
    #[serde(deserialize_with = "crate::integral::u32")]
    #[cfg_attr(feature = "openapi", schema(format = Int64, minimum = 1, maximum = 4_294_967_295_i64))]
    pub requests: u32,
    /// Window length in seconds (≥ 1).
    #[serde(deserialize_with = "crate::integral::u32")]
    #[cfg_attr(feature = "openapi", schema(format = Int64, minimum = 1, maximum = 4_294_967_295_i64))]
    pub window_seconds: u32,
}

/// Usage credits: `limit` verified requests, refilled every `refill_seconds` when set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Credits {
    /// Credits per period (or in total when there is no refill), at most 2^63 − 1.
    #[serde(deserialize_with = "crate::integral::u64")]
    #[cfg_attr(
        feature = "openapi",
        schema(minimum = 0, maximum = 9_223_372_036_854_775_807_i64)
    )]
    pub limit: u64,
    /// Refill period in seconds; periods start at the key's creation.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::integral::opt_u64"
    )]
    #[cfg_attr(
        feature = "openapi",
        schema(minimum = 1, maximum = 9_223_372_036_854_775_807_i64)
    )]
    pub refill_seconds: Option<u64>,
}

/// Counters kept for a key, flushed to the store in batches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Usage {
    /// Verified requests made with the key.
    pub request_count: u64,
    /// Credits used in the current period (see [`Credits`]).
    pub credits_used: u64,
    /// Index of the credit period `credits_used` belongs to.
    pub credits_period: u64,
}

/// An IPv4 or IPv6 network in CIDR notation (a bare address is a /32 or /128), on the `ipnet`
/// crate. keyward adds what an allowlist needs around it: bare addresses, IPv4-mapped IPv6
/// clients matching IPv4 networks, and the text form in stores and JSON.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpNet(ipnet::IpNet);

/// A malformed CIDR or address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an IP address or CIDR network: {0:?}")]
pub struct IpNetError(pub String);

impl IpNet {
    /// Whether `ip` lies inside this network. IPv4-mapped IPv6 addresses match IPv4 networks.
    #[must_use]
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.0.contains(&ip)
    }

    /// The network as the `ipnet` crate's type.
    #[must_use]
    pub fn as_ipnet(&self) -> ipnet::IpNet {
        self.0
    }
}

impl From<ipnet::IpNet> for IpNet {
    fn from(net: ipnet::IpNet) -> Self {
        Self(net)
    }
}

/// An allowlist entry as a regular expression, for OpenAPI documents: an IPv4 or IPv6 address,
/// or either in CIDR notation; what [`IpNet`]'s `FromStr` accepts (a test holds them together).
#[cfg_attr(not(feature = "openapi"), allow(dead_code))] // read by the document and tests
pub(crate) const IP_NETWORK_PATTERN: &str = concat!(
    r"^[ \t\n\f\r]*(",
    // IPv4, optionally /0–32.
    r"((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])",
    r"(/(3[0-2]|[012]?[0-9]))?",
    r"|",
    // IPv6 (RFC 4291 text forms, with an embedded IPv4 after `::` or `::ffff:`), optionally /0–128.
    r"(([0-9a-fA-F]{1,4}:){7}[0-9a-fA-F]{1,4}",
    r"|([0-9a-fA-F]{1,4}:){1,7}:",
    r"|([0-9a-fA-F]{1,4}:){1,6}:[0-9a-fA-F]{1,4}",
    r"|([0-9a-fA-F]{1,4}:){1,5}(:[0-9a-fA-F]{1,4}){1,2}",
    r"|([0-9a-fA-F]{1,4}:){1,4}(:[0-9a-fA-F]{1,4}){1,3}",
    r"|([0-9a-fA-F]{1,4}:){1,3}(:[0-9a-fA-F]{1,4}){1,4}",
    r"|([0-9a-fA-F]{1,4}:){1,2}(:[0-9a-fA-F]{1,4}){1,5}",
    r"|[0-9a-fA-F]{1,4}:(:[0-9a-fA-F]{1,4}){1,6}",
    r"|:((:[0-9a-fA-F]{1,4}){1,7}|:)",
    r"|::([fF]{4}:)?((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9]))",
    r"(/(12[0-8]|1[01][0-9]|0[0-9]{2}|[0-9]{1,2}))?",
    r")[ \t\n\f\r]*$"
);

impl FromStr for IpNet {
    type Err = IpNetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || IpNetError(s.chars().take(64).collect());
        // ASCII whitespace around an entry is forgiven (lists typed by hand), exactly as
        // IP_NETWORK_PATTERN states.
        let s = s.trim_matches(|c: char| c.is_ascii_whitespace());
        if let Ok(net) = s.parse::<ipnet::IpNet>() {
            return Ok(Self(net));
        }
        let addr: IpAddr = s.parse().map_err(|_| err())?;
        Ok(Self(ipnet::IpNet::from(addr)))
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for IpNet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for IpNet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

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
        self.state_at(crate::clock::unix_micros(now), &ValidityWindow::of(self))
    }

    /// [`KeyRecord::state`] at `now_us` (microseconds since the epoch, the precision every
    /// store keeps), with the record's validity window already in microseconds.
    pub(crate) fn state_at(&self, now_us: i64, window: &ValidityWindow) -> KeyState {
        if self.revoked_at.is_some() {
            KeyState::Revoked
        } else if !self.is_active {
            KeyState::Inactive
        } else if window.until_us.is_some_and(|e| now_us >= e) {
            KeyState::Expired
        } else if window.from_us.is_some_and(|nb| now_us < nb) {
            KeyState::NotYetValid
        } else {
            KeyState::Active
        }
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

/// The safe view of a key: what management routes return. Never the secret, never the digest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeyView {
    /// The key id.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "AbCdEf012345"))]
    pub id: KeyId,
    /// Human name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// `prefix_env_keyid…`: enough to recognise the key, useless to use it.
    pub display: String,
    /// Environment marker.
    pub env: String,
    /// Owner.
    pub owner_id: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// Active flag.
    pub is_active: bool,
    /// Lifecycle state now.
    pub state: KeyState,
    /// Whether this is a signing-only key.
    pub signing: bool,
    /// Creation time.
    #[serde(with = "crate::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Last management change.
    #[serde(with = "crate::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// Start of validity.
    #[serde(default, with = "crate::rfc3339::option")]
    pub not_before: Option<OffsetDateTime>,
    /// End of validity.
    #[serde(default, with = "crate::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// Last verified use.
    #[serde(default, with = "crate::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    /// Revocation time.
    #[serde(default, with = "crate::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
    /// Predecessor, for rotated keys.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub rotated_from: Option<KeyId>,
    /// Successor, once the key was rotated (a key is rotated at most once).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub rotated_to: Option<KeyId>,
    /// Who deactivated the key, while it is inactive.
    #[serde(default)]
    pub deactivated_by: Option<Deactivator>,
    /// Application metadata.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub metadata: Metadata,
    /// Allowed networks (CIDR); empty means anywhere.
    pub ip_allowlist: Vec<String>,
    /// Per-key rate limit.
    pub rate_limit: Option<RateLimit>,
    /// Usage credits.
    pub credits: Option<Credits>,
    /// Counters.
    pub usage: Usage,
}

/// A record's `not_before` and `expires_at` in microseconds since the epoch, computed once per
/// cache fill so that the hot path compares integers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ValidityWindow {
    /// First valid microsecond, if any.
    pub(crate) from_us: Option<i64>,
    /// First expired microsecond, if any.
    pub(crate) until_us: Option<i64>,
}

impl ValidityWindow {
    pub(crate) fn of(record: &KeyRecord) -> Self {
        Self {
            from_us: record.not_before.map(crate::clock::unix_micros),
            until_us: record.expires_at.map(crate::clock::unix_micros),
        }
    }
}

/// The identity a verified request carries. Cheap to clone.
#[derive(Clone, PartialEq)]
pub struct Principal(Arc<PrincipalInner>);

#[derive(Debug, PartialEq)]
struct PrincipalInner {
    key_id: KeyId,
    owner_id: String,
    scopes: ScopeSet,
    metadata: Metadata,
    env: String,
}

impl Principal {
    /// Builds a principal from a verified record with its effective scopes.
    #[must_use]
    pub(crate) fn new(record: &KeyRecord, scopes: ScopeSet) -> Self {
        Self(Arc::new(PrincipalInner {
            key_id: record.key_id,
            owner_id: record.owner_id.clone(),
            scopes,
            metadata: record.metadata.clone(),
            env: record.env.clone(),
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
        &self.0.metadata
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
        st.serialize_field("env", &self.0.env)?;
        st.serialize_field("metadata", &self.0.metadata)?;
        st.end()
    }
}

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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The documented pattern accepts what the parser does, on every form an allowlist sees.
    #[test]
    fn the_documented_ip_pattern_is_the_parser() {
        let re = regex::Regex::new(IP_NETWORK_PATTERN).unwrap();
        for s in [
            "10.0.0.1",
            "10.0.0.0/8",
            "0.0.0.0/0",
            "255.255.255.255/32",
            "1.2.3.4/33",
            "256.1.1.1",
            "01.2.3.4",
            "1.2.3",
            "1.2.3.4/08",
            "1.2.3.4/+8",
            "1.2.3.4/008",
            "::/0128",
            "::/099",
            "::/08",
            "1.2.3.4/3",
            " 1.2.3.4",
            "1.2.3.4 ",
            "::",
            "::1",
            "::/0",
            "2001:db8::/32",
            "2001:db8::1/128",
            "2001:db8::1/129",
            "fe80::1",
            "::ffff:10.0.0.1",
            "::10.0.0.1",
            "1:2:3:4:5:6:7:8",
            "1:2:3:4:5:6:7:8:9",
            "1::2::3",
            "12345::",
            "g::",
            "2001:DB8::A",
            "",
            "x",
            "1.2.3.4/",
            "::1/",
        ] {
            assert_eq!(s.parse::<IpNet>().is_ok(), re.is_match(s), "{s:?}");
        }
    }

    /// Allowlist entries: bare addresses are single hosts, CIDR networks match what they cover,
    /// IPv4-mapped IPv6 clients match IPv4 networks, and the text round-trips.
    #[test]
    fn ip_networks() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let net = |s: &str| s.parse::<IpNet>().unwrap();
        assert!(net("10.1.2.3").contains(ip("10.1.2.3")));
        assert!(!net("10.1.2.3").contains(ip("10.1.2.4")));
        assert!(net("10.0.0.0/8").contains(ip("10.255.0.1")));
        assert!(!net("10.0.0.0/8").contains(ip("11.0.0.1")));
        assert!(net("0.0.0.0/0").contains(ip("192.0.2.1")));
        assert!(net("10.0.0.0/8").contains(ip("::ffff:10.9.9.9")));
        assert!(net("2001:db8::/32").contains(ip("2001:db8:1::1")));
        assert!(!net("2001:db8::/32").contains(ip("10.0.0.1")));
        assert!(net(" ::1 ").contains(ip("::1")));
        for text in ["10.0.0.0/8", "2001:db8::/32", "192.0.2.1/32"] {
            assert_eq!(net(text).to_string(), text);
        }
        assert_eq!(net("192.0.2.1").to_string(), "192.0.2.1/32");
        for bad in [
            "",
            "10.0.0.0/33",
            "::/129",
            "10.0.0",
            "example.com",
            "10.0.0.0/x",
        ] {
            assert!(bad.parse::<IpNet>().is_err(), "{bad:?}");
        }
    }
}
