//! Domain types: the stored [`KeyRecord`], its safe [`KeyView`], the [`Principal`] a verified
//! request carries, limits, usage and IP allowlists.

mod allowlist;
mod origin;
mod policy;
mod principal;
mod record;
mod view;

#[cfg(feature = "openapi")]
pub(crate) use allowlist::IP_NETWORK_PATTERN;
pub use allowlist::{IpNet, IpNetError};
pub use origin::{MAX_REQUEST_ID, MAX_USER_AGENT, Origin};
pub use policy::{LastUsedStrategy, Policy, SelfServiceDefaults};
pub use principal::Principal;
pub(crate) use record::Lifecycle;
pub use record::{Deactivator, KeyRecord, KeyState, Lineage, SealedSecret};
pub use view::KeyView;

use serde::{Deserialize, Serialize};

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
