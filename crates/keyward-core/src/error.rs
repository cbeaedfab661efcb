//! Stable error codes and their HTTP statuses (DESIGN.md §6), shared by every adapter.

use std::fmt;

/// A stable, machine-readable error code. Adapters put it in the `code` member of
/// `application/problem+json` bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// No credential was presented (401).
    ApiKeyMissing,
    /// The credential is not a valid, usable key, for whatever reason (401).
    ApiKeyInvalid,
    /// Valid key without the required scopes (403).
    ApiKeyScopeDenied,
    /// Caller outside the key's IP allowlist (403).
    ApiKeyIpDenied,
    /// Management route: no such key for this owner (404).
    ApiKeyNotFound,
    /// The owner already has the maximum number of keys (409).
    ApiKeyLimitReached,
    /// A request body or parameter failed validation (422).
    ValidationFailed,
    /// Per-key rate limit exceeded (429).
    RateLimited,
    /// Usage credits exhausted (429).
    UsageExhausted,
    /// Bad request signature (401).
    SignatureInvalid,
    /// Request signature outside the allowed clock skew (401).
    SignatureExpired,
    /// Request signature already seen (401).
    SignatureReplayed,
    /// The request body is too large to verify (413).
    PayloadTooLarge,
    /// A malformed request the adapter could not interpret (400).
    BadRequest,
    /// The caller is authenticated but may not do this (403).
    Forbidden,
    /// Store or Redis unavailable: fail closed (503).
    AuthUnavailable,
    /// The management actor may not make this change (403, DESIGN.md §11).
    ManagementForbidden,
    /// Rotating a key that already has a successor (409).
    ApiKeyAlreadyRotated,
    /// `If-Match` does not name the key's current version (412).
    PreconditionFailed,
    /// A management route found no owner session (the application's owner resolver found
    /// nobody) (401).
    OwnerUnauthenticated,
}

impl ErrorCode {
    /// The code as it appears on the wire.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ApiKeyMissing => "API_KEY_MISSING",
            Self::ApiKeyInvalid => "API_KEY_INVALID",
            Self::ApiKeyScopeDenied => "API_KEY_SCOPE_DENIED",
            Self::ApiKeyIpDenied => "API_KEY_IP_DENIED",
            Self::ApiKeyNotFound => "API_KEY_NOT_FOUND",
            Self::ApiKeyLimitReached => "API_KEY_LIMIT_REACHED",
            Self::ValidationFailed => "VALIDATION_FAILED",
            Self::RateLimited => "RATE_LIMITED",
            Self::UsageExhausted => "USAGE_EXHAUSTED",
            Self::SignatureInvalid => "SIGNATURE_INVALID",
            Self::SignatureExpired => "SIGNATURE_EXPIRED",
            Self::SignatureReplayed => "SIGNATURE_REPLAYED",
            Self::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            Self::BadRequest => "BAD_REQUEST",
            Self::Forbidden => "FORBIDDEN",
            Self::AuthUnavailable => "AUTH_UNAVAILABLE",
            Self::ManagementForbidden => "MANAGEMENT_FORBIDDEN",
            Self::ApiKeyAlreadyRotated => "API_KEY_ALREADY_ROTATED",
            Self::PreconditionFailed => "PRECONDITION_FAILED",
            Self::OwnerUnauthenticated => "OWNER_UNAUTHENTICATED",
        }
    }

    /// The HTTP status code.
    #[must_use]
    pub fn status(self) -> u16 {
        match self {
            Self::ApiKeyMissing
            | Self::ApiKeyInvalid
            | Self::OwnerUnauthenticated
            | Self::SignatureInvalid
            | Self::SignatureExpired
            | Self::SignatureReplayed => 401,
            Self::ApiKeyScopeDenied
            | Self::ApiKeyIpDenied
            | Self::Forbidden
            | Self::ManagementForbidden => 403,
            Self::ApiKeyNotFound => 404,
            Self::ApiKeyLimitReached | Self::ApiKeyAlreadyRotated => 409,
            Self::PreconditionFailed => 412,
            Self::PayloadTooLarge => 413,
            Self::ValidationFailed => 422,
            Self::RateLimited | Self::UsageExhausted => 429,
            Self::BadRequest => 400,
            Self::AuthUnavailable => 503,
        }
    }

    /// A short human title for problem documents.
    #[must_use]
    pub fn title(self) -> &'static str {
        match self {
            Self::ApiKeyMissing => "API key missing",
            Self::ApiKeyInvalid => "API key invalid",
            Self::ApiKeyScopeDenied => "Insufficient scope",
            Self::ApiKeyIpDenied => "Client address not allowed",
            Self::ApiKeyNotFound => "API key not found",
            Self::ApiKeyLimitReached => "API key limit reached",
            Self::ValidationFailed => "Validation failed",
            Self::RateLimited => "Rate limit exceeded",
            Self::UsageExhausted => "Usage credits exhausted",
            Self::SignatureInvalid => "Signature invalid",
            Self::SignatureExpired => "Signature expired",
            Self::SignatureReplayed => "Signature replayed",
            Self::PayloadTooLarge => "Payload too large",
            Self::BadRequest => "Bad request",
            Self::Forbidden => "Forbidden",
            Self::AuthUnavailable => "Authentication unavailable",
            Self::ManagementForbidden => "Management action forbidden",
            Self::ApiKeyAlreadyRotated => "API key already rotated",
            Self::PreconditionFailed => "Precondition failed",
            Self::OwnerUnauthenticated => "Owner not authenticated",
        }
    }

    /// Every code, for documentation and exhaustive tests.
    pub const ALL: [ErrorCode; 20] = [
        Self::ApiKeyMissing,
        Self::ApiKeyInvalid,
        Self::ApiKeyScopeDenied,
        Self::ApiKeyIpDenied,
        Self::ApiKeyNotFound,
        Self::ApiKeyLimitReached,
        Self::ValidationFailed,
        Self::RateLimited,
        Self::UsageExhausted,
        Self::SignatureInvalid,
        Self::SignatureExpired,
        Self::SignatureReplayed,
        Self::PayloadTooLarge,
        Self::BadRequest,
        Self::Forbidden,
        Self::AuthUnavailable,
        Self::ManagementForbidden,
        Self::ApiKeyAlreadyRotated,
        Self::PreconditionFailed,
        Self::OwnerUnauthenticated,
    ];
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
