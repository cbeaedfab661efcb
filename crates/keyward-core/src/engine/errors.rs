//! Why verification, or building the engine, failed.

use std::fmt;
use std::time::Duration;

use crate::analytics::Outcome;
use crate::error::ErrorCode;
use crate::key::ParseError;
use crate::scope::Scope;
use crate::store::StoreError;

/// Why a presented key is invalid. Outside, every one of these is `API_KEY_INVALID`; the reason
/// is for logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidReason {
    /// The string is not a key of this deployment (shape, checksum, prefix, env).
    Parse(ParseError),
    /// No key with this id.
    Unknown,
    /// The secret does not match.
    WrongSecret,
    /// Revoked.
    Revoked,
    /// Deactivated.
    Inactive,
    /// Expired.
    Expired,
    /// Not valid yet.
    NotYetValid,
    /// A signing-only key presented as a bearer token.
    SigningOnly,
    /// The secret matched, but the key was issued under another prefix or environment than
    /// the one presented (two deployments sharing a store and pepper; the checksum is public,
    /// so anyone can re-head a key they hold).
    OtherDeployment,
}

impl InvalidReason {
    /// A stable label for logs and metrics.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Parse(ParseError::Empty) => "empty",
            Self::Parse(ParseError::TooLong) => "too_long",
            Self::Parse(ParseError::Checksum) => "checksum",
            Self::Parse(ParseError::WrongPrefix) => "wrong_prefix",
            Self::Parse(ParseError::WrongEnv) => "wrong_env",
            Self::Parse(_) => "malformed",
            Self::Unknown => "unknown",
            Self::WrongSecret => "wrong_secret",
            Self::Revoked => "revoked",
            Self::Inactive => "inactive",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::SigningOnly => "signing_only",
            Self::OtherDeployment => "other_deployment",
        }
    }
}

impl fmt::Display for InvalidReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why verification failed. Messages never contain the presented key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// Not a valid, usable key.
    #[error("invalid API key ({0})")]
    Invalid(InvalidReason),
    /// Valid key, missing scopes.
    #[error("missing scopes: {}", join(.missing))]
    ScopeDenied {
        /// What the key lacks.
        missing: Vec<Scope>,
    },
    /// The caller's address is outside the key's allowlist.
    #[error("client address not in the key's allowlist")]
    IpDenied,
    /// The key has an IP allowlist, and the request reached verification without a client
    /// address: the application did not pass one ([`VerifyContext::client_ip`](super::VerifyContext::client_ip)), for example
    /// axum served without `into_make_service_with_connect_info`.
    #[error("the key has an IP allowlist but the client address is unknown to the server")]
    IpUnknown,
    /// The key's rate limit is exhausted.
    #[error("rate limit exceeded")]
    RateLimited {
        /// When to retry.
        retry_after: Option<Duration>,
    },
    /// Too many failed verifications from the caller's address: keys not already cached are
    /// refused for a while ([`crate::throttle`]).
    #[error("too many failed verifications from this address")]
    Throttled {
        /// When the address's window ends.
        retry_after: Option<Duration>,
    },
    /// The key's usage credits are exhausted.
    #[error("usage credits exhausted")]
    UsageExhausted {
        /// When credits refill, if they do.
        retry_after: Option<Duration>,
    },
    /// Request signature does not verify (signed requests only).
    #[error("request signature invalid")]
    SignatureInvalid,
    /// Request signature date outside the allowed skew.
    #[error("request signature expired")]
    SignatureExpired,
    /// Request signature seen before.
    #[error("request signature replayed")]
    SignatureReplayed,
    /// A backend did not answer: fail closed.
    #[error("authentication backend unavailable: {0}")]
    Unavailable(#[source] StoreError),
}

fn join(s: &[Scope]) -> String {
    s.iter().map(Scope::as_str).collect::<Vec<_>>().join(", ")
}

impl VerifyError {
    /// What this refusal of a known key counts as in its usage analytics; `None` for the
    /// refusals that say nothing about the key (an outage, the caller's address over its
    /// failures, a key that was never found).
    #[must_use]
    pub fn outcome(&self) -> Option<Outcome> {
        Some(match self {
            Self::Invalid(reason) => match reason {
                InvalidReason::Revoked => Outcome::Revoked,
                InvalidReason::Expired => Outcome::Expired,
                InvalidReason::Inactive | InvalidReason::NotYetValid => Outcome::Inactive,
                InvalidReason::Parse(_) | InvalidReason::Unknown => return None,
                InvalidReason::WrongSecret
                | InvalidReason::SigningOnly
                | InvalidReason::OtherDeployment => Outcome::Invalid,
            },
            Self::ScopeDenied { .. } => Outcome::ScopeDenied,
            Self::IpDenied | Self::IpUnknown => Outcome::IpDenied,
            Self::RateLimited { .. } => Outcome::RateLimited,
            Self::UsageExhausted { .. } => Outcome::UsageExhausted,
            Self::SignatureInvalid => Outcome::SignatureInvalid,
            Self::SignatureExpired => Outcome::SignatureExpired,
            Self::SignatureReplayed => Outcome::SignatureReplayed,
            Self::Throttled { .. } | Self::Unavailable(_) => return None,
        })
    }

    /// The stable code (and with it the HTTP status).
    #[must_use]
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Invalid(_) => ErrorCode::ApiKeyInvalid,
            Self::ScopeDenied { .. } => ErrorCode::ApiKeyScopeDenied,
            Self::IpDenied | Self::IpUnknown => ErrorCode::ApiKeyIpDenied,
            Self::RateLimited { .. } | Self::Throttled { .. } => ErrorCode::RateLimited,
            Self::UsageExhausted { .. } => ErrorCode::UsageExhausted,
            Self::SignatureInvalid => ErrorCode::SignatureInvalid,
            Self::SignatureExpired => ErrorCode::SignatureExpired,
            Self::SignatureReplayed => ErrorCode::SignatureReplayed,
            Self::Unavailable(_) => ErrorCode::AuthUnavailable,
        }
    }

    /// A stable label of the internal reason, for logs and metrics.
    #[must_use]
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Invalid(r) => r.as_str(),
            Self::ScopeDenied { .. } => "scope_denied",
            Self::IpDenied => "ip_denied",
            Self::IpUnknown => "ip_unknown",
            Self::RateLimited { .. } => "rate_limited",
            Self::Throttled { .. } => "throttled",
            Self::UsageExhausted { .. } => "usage_exhausted",
            Self::SignatureInvalid => "signature_invalid",
            Self::SignatureExpired => "signature_expired",
            Self::SignatureReplayed => "signature_replayed",
            Self::Unavailable(_) => "unavailable",
        }
    }

    /// The `Retry-After` hint, for 429s.
    #[must_use]
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after }
            | Self::Throttled { retry_after }
            | Self::UsageExhausted { retry_after } => *retry_after,
            _ => None,
        }
    }
}

/// Why a [`Keyward`](super::Keyward) could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The pepper keyring is invalid.
    #[error(transparent)]
    Keyring(#[from] crate::digest::KeyringError),
    /// The SigV4 region or service is invalid.
    #[error("invalid signing configuration: {0}")]
    Signing(#[from] crate::sigv4::SignatureError),
}
