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
    /// The key's state forbids the change: changing a revoked key, rotating a revoked or
    /// expired one (409).
    ApiKeyStateConflict,
    /// `If-Match` does not name the key's current version (412).
    PreconditionFailed,
    /// A management route found no owner session (the application's owner resolver found
    /// nobody) (401).
    OwnerUnauthenticated,
    /// No route at this path (404).
    NotFound,
    /// The route exists, but not for this method (405).
    MethodNotAllowed,
    /// The request, or its body, took longer than allowed (408).
    RequestTimeout,
    /// The request body is not `application/json` (415).
    UnsupportedMediaType,
    /// The application is wired wrong, for instance a scope check placed where no
    /// authentication middleware ran before it (500). The server's log says what to change.
    Misconfigured,
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
            Self::ApiKeyStateConflict => "API_KEY_STATE_CONFLICT",
            Self::PreconditionFailed => "PRECONDITION_FAILED",
            Self::OwnerUnauthenticated => "OWNER_UNAUTHENTICATED",
            Self::NotFound => "NOT_FOUND",
            Self::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            Self::RequestTimeout => "REQUEST_TIMEOUT",
            Self::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            Self::Misconfigured => "SERVER_MISCONFIGURED",
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
            Self::ApiKeyNotFound | Self::NotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::RequestTimeout => 408,
            Self::UnsupportedMediaType => 415,
            Self::ApiKeyLimitReached | Self::ApiKeyAlreadyRotated | Self::ApiKeyStateConflict => {
                409
            }
            Self::PreconditionFailed => 412,
            Self::PayloadTooLarge => 413,
            Self::ValidationFailed => 422,
            Self::RateLimited | Self::UsageExhausted => 429,
            Self::BadRequest => 400,
            Self::Misconfigured => 500,
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
            Self::ApiKeyStateConflict => "The key's state forbids this change",
            Self::PreconditionFailed => "Precondition failed",
            Self::OwnerUnauthenticated => "Owner not authenticated",
            Self::NotFound => "Not found",
            Self::MethodNotAllowed => "Method not allowed",
            Self::RequestTimeout => "Request timeout",
            Self::UnsupportedMediaType => "Unsupported media type",
            Self::Misconfigured => "Server misconfigured",
        }
    }

    /// Every code, for documentation and exhaustive tests.
    pub const ALL: [ErrorCode; 26] = [
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
        Self::ApiKeyStateConflict,
        Self::PreconditionFailed,
        Self::OwnerUnauthenticated,
        Self::NotFound,
        Self::MethodNotAllowed,
        Self::RequestTimeout,
        Self::UnsupportedMediaType,
        Self::Misconfigured,
    ];

    /// The code of a wire name (`"API_KEY_INVALID"`); `None` for a name keyward does not use.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

impl serde::Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for ErrorCode {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::from_name(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown error code `{name}`")))
    }
}

/// On the wire a code is a string, one of [`ErrorCode::ALL`]: the OpenAPI document lists them.
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for ErrorCode {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(Self::ALL.iter().map(|c| c.as_str())))
            .description(Some("keyward's stable error code"))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for ErrorCode {}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Every code is in `ALL` once and round-trips through its wire name and serde (its problem
    /// document is keyward-http's, tested there).
    #[test]
    fn every_code_round_trips() {
        for (i, code) in ErrorCode::ALL.into_iter().enumerate() {
            assert!(!ErrorCode::ALL[..i].contains(&code), "{code} twice in ALL");
            assert_eq!(ErrorCode::from_name(code.as_str()), Some(code));
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{code}\""));
            assert_eq!(serde_json::from_str::<ErrorCode>(&json).unwrap(), code);
            assert!((400..600).contains(&code.status()), "{code}");
        }
        assert_eq!(ErrorCode::from_name("NO_SUCH_CODE"), None);
        assert!(serde_json::from_str::<ErrorCode>("\"NO_SUCH_CODE\"").is_err());
    }
}
