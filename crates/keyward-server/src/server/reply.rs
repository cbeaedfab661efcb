//! How the server's own routes answer: problem documents, JSON, and the outcome labels of
//! the verification metrics.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use keyward_core::ErrorCode;
use keyward_http::Problem;
use serde::Serialize;

/// A problem document, answered as keyward-axum answers it (keyward-core's `Reply`).
pub(crate) fn problem(p: &Problem) -> Response {
    keyward_axum::respond(p)
}

pub(super) fn json<T: Serialize>(status: StatusCode, v: &T) -> Response {
    match serde_json::to_vec(v) {
        Ok(body) => (status, [(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(_) => problem(&Problem::new(
            ErrorCode::AuthUnavailable,
            Some("response encoding failed".to_owned()),
        )),
    }
}

pub(super) async fn not_found() -> Response {
    problem(&Problem::new(
        ErrorCode::NotFound,
        Some("no such route".to_owned()),
    ))
}

/// The metrics label of an error code.
pub(super) fn outcome_of_code(code: &str) -> &'static str {
    const LABELS: &[(ErrorCode, &str)] = &[
        (ErrorCode::ApiKeyMissing, "missing"),
        (ErrorCode::ApiKeyInvalid, "invalid"),
        (ErrorCode::ApiKeyScopeDenied, "scope_denied"),
        (ErrorCode::ApiKeyIpDenied, "ip_denied"),
        (ErrorCode::RateLimited, "rate_limited"),
        (ErrorCode::UsageExhausted, "usage_exhausted"),
        (ErrorCode::AuthUnavailable, "unavailable"),
        (ErrorCode::SignatureInvalid, "signature_invalid"),
        (ErrorCode::SignatureExpired, "signature_expired"),
        (ErrorCode::SignatureReplayed, "signature_replayed"),
        (ErrorCode::PayloadTooLarge, "payload_too_large"),
    ];
    LABELS
        .iter()
        .find(|(c, _)| c.as_str() == code)
        .map_or("other", |(_, label)| label)
}
