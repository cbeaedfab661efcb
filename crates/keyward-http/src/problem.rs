//! RFC 9457 problem documents, built once here so every adapter answers identically.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use keyward_core::engine::VerifyError;
use keyward_core::error::ErrorCode;
use keyward_core::management::{FieldError, ServiceError};

/// The media type of problem documents.
pub const CONTENT_TYPE: &str = "application/problem+json";

/// An `application/problem+json` body with keyward's stable `code`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Problem {
    /// A URI naming the problem type (`urn:keyward:problem:<code>`).
    #[serde(rename = "type")]
    pub type_uri: String,
    /// Short human summary of the type.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// The stable machine code, e.g. `API_KEY_INVALID`.
    pub code: ErrorCode,
    /// Human detail for this occurrence. Never contains secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Field errors, for `VALIDATION_FAILED`, and the refused fields (and scopes, in their
    /// messages) for `MANAGEMENT_FORBIDDEN`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// Missing scopes, for `API_KEY_SCOPE_DENIED`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing_scopes: Vec<String>,
    /// Seconds to wait, for 429s (also sent as `Retry-After`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

impl Problem {
    /// A problem of `code` with an optional detail.
    #[must_use]
    pub fn new(code: ErrorCode, detail: impl Into<Option<String>>) -> Self {
        Self {
            type_uri: format!(
                "urn:keyward:problem:{}",
                code.as_str().to_ascii_lowercase().replace('_', "-")
            ),
            title: code.title().to_owned(),
            status: code.status(),
            code,
            detail: detail.into(),
            errors: Vec::new(),
            missing_scopes: Vec::new(),
            retry_after: None,
        }
    }

    /// `API_KEY_MISSING`.
    #[must_use]
    pub fn missing() -> Self {
        Self::new(
            ErrorCode::ApiKeyMissing,
            Some("no API key was presented".to_owned()),
        )
    }

    /// Whether the response needs `WWW-Authenticate: Bearer`.
    #[must_use]
    pub(crate) fn needs_www_authenticate(&self) -> bool {
        self.status == 401
    }

    /// The `Retry-After` header value, if any.
    #[must_use]
    pub(crate) fn retry_after_header(&self) -> Option<String> {
        self.retry_after.map(|s| s.to_string())
    }

    /// The JSON body.
    #[must_use]
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self)
            .unwrap_or_else(|_| br#"{"title":"Internal error","status":500}"#.to_vec())
    }
}

fn secs(d: Option<Duration>) -> u64 {
    // Round up: never tell a client to come back before it may.
    d.map_or(1, |d| d.as_secs() + u64::from(d.subsec_nanos() > 0))
        .max(1)
}

impl From<&VerifyError> for Problem {
    /// Every kind of bad key becomes the same `API_KEY_INVALID`; the reason stays in logs.
    fn from(e: &VerifyError) -> Self {
        let code = e.code();
        let mut p = match e {
            VerifyError::Invalid(_) => {
                Problem::new(code, Some("the API key is not valid".to_owned()))
            }
            VerifyError::ScopeDenied { missing } => {
                let mut p =
                    Problem::new(code, Some("the API key lacks required scopes".to_owned()));
                p.missing_scopes = missing.iter().map(|s| s.as_str().to_owned()).collect();
                p
            }
            VerifyError::Unavailable(_) => Problem::new(
                code,
                Some("authentication is temporarily unavailable".to_owned()),
            ),
            VerifyError::IpUnknown => Problem::new(
                code,
                Some(
                    "this key is limited to certain client addresses, and the server cannot see \
                     the client's address (for axum: serve with \
                     into_make_service_with_connect_info; behind a proxy, configure the \
                     forwarded client address)"
                        .to_owned(),
                ),
            ),
            other => Problem::new(code, Some(other.to_string())),
        };
        if matches!(
            e,
            VerifyError::RateLimited { .. } | VerifyError::UsageExhausted { .. }
        ) {
            p.retry_after = Some(secs(e.retry_after()));
        }
        p
    }
}

impl From<&ServiceError> for Problem {
    fn from(e: &ServiceError) -> Self {
        match e {
            ServiceError::Validation(errors) => {
                let mut p = Problem::new(e.code(), Some("the request is invalid".to_owned()));
                p.errors.clone_from(errors);
                p
            }
            ServiceError::Forbidden(refused) => {
                let fields: Vec<&str> = refused.iter().map(|f| f.field.as_str()).collect();
                let mut p = Problem::new(
                    e.code(),
                    Some(format!(
                        "this caller may not make this change: {}",
                        fields.join(", ")
                    )),
                );
                p.errors.clone_from(refused);
                p
            }
            ServiceError::Unavailable(_) | ServiceError::Internal(_) => Problem::new(
                e.code(),
                Some("the key store is temporarily unavailable".to_owned()),
            ),
            other => Problem::new(other.code(), Some(other.to_string())),
        }
    }
}

impl From<VerifyError> for Problem {
    fn from(e: VerifyError) -> Self {
        Self::from(&e)
    }
}

impl From<ServiceError> for Problem {
    fn from(e: ServiceError) -> Self {
        Self::from(&e)
    }
}

/// A 422 for one field (bodies that fail to deserialize, bad query parameters).
#[must_use]
pub fn validation(field: &str, code: &str, message: impl Into<String>) -> Problem {
    let mut p = Problem::new(
        ErrorCode::ValidationFailed,
        Some("the request is invalid".to_owned()),
    );
    p.errors.push(FieldError::new(field, code, message));
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every code's problem carries the code's status, and a type derived from its wire name.
    #[test]
    fn every_code_has_its_problem() {
        for code in ErrorCode::ALL {
            let problem = Problem::new(code, None);
            assert_eq!(problem.status, code.status());
            let name = code.as_str().to_ascii_lowercase().replace('_', "-");
            assert!(problem.type_uri.ends_with(&name), "{code}");
        }
    }

    /// What each verification refusal looks like outside: one answer for every bad key, the
    /// reason for an unseen client address, `Retry-After` in whole seconds, `503` for outages.
    #[test]
    fn verification_refusals() {
        use keyward_core::engine::InvalidReason;
        let a = Problem::from(&VerifyError::Invalid(InvalidReason::Revoked));
        let b = Problem::from(&VerifyError::Invalid(InvalidReason::WrongSecret));
        assert_eq!(a, b);
        assert_eq!(a.code, ErrorCode::ApiKeyInvalid);
        let p = Problem::from(&VerifyError::IpUnknown);
        assert_eq!(p.code, ErrorCode::ApiKeyIpDenied);
        let detail = p.detail.unwrap_or_default();
        assert!(
            detail.contains("cannot see the client's address"),
            "{detail}"
        );
        let limited = VerifyError::RateLimited {
            retry_after: Some(std::time::Duration::from_millis(1500)),
        };
        let p = Problem::from(&limited);
        assert_eq!((p.status, p.retry_after), (429, Some(2)));
        let down = VerifyError::Unavailable(keyward_core::StoreError::unavailable("down"));
        assert_eq!(Problem::from(&down).status, 503);
    }
}
