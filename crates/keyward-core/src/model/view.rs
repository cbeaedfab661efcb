//! [`KeyView`]: the safe view of a key that management routes answer with.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{Credits, Deactivator, KeyState, Metadata, RateLimit, Usage};
use crate::key::KeyId;

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
    /// Where the last recorded use came from: client address and user agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_from: Option<crate::model::Origin>,
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
