//! Signed requests (AWS Signature Version 4, DESIGN.md §7, `docs/signing.md`) for axum and any
//! `http`-based stack.
//!
//! [`crate::KeywardLayer`] calls [`verify_signed_request`] for every request whose
//! `Authorization` is `AWS4-HMAC-SHA256 …`; applications and servers that route requests
//! themselves (the standalone `keyward-server`) call it directly:
//!
//! ```no_run
//! # async fn demo(keyward: keyward_core::Keyward, req: http::Request<axum::body::Body>)
//! # -> Result<(), keyward_axum::Rejection> {
//! use keyward_axum::signed::verify_signed_request;
//! use keyward_core::{ScopeRequirement, VerifyContext};
//!
//! let (mut parts, body) = req.into_parts();
//! let (principal, body) = verify_signed_request(
//!     &keyward, &parts, body, &ScopeRequirement::none(), &VerifyContext::default(),
//! )
//! .await?;
//! parts.extensions.insert(principal);
//! // The handler reads the body unchanged.
//! let req = http::Request::from_parts(parts, axum::body::Body::from(body));
//! # drop(req); Ok(()) }
//! ```
//!
//! | what happens | answer |
//! | --- | --- |
//! | signing not enabled (`Keyward::signing_enabled` is false) | `401 SIGNATURE_INVALID` ("signed requests are not enabled") |
//! | `Authorization` unparsable, key id unknown, a key that does not sign, an address over its failures ([`Keyward::precheck_signed`]) | `401 SIGNATURE_INVALID` (`429` when throttled), **before one byte of the body is read** |
//! | `Content-Length` over `SigningOptions::max_body_bytes` | `413 PAYLOAD_TOO_LARGE`, before reading |
//! | body over `max_body_bytes` or `max_body_frames` while reading | `413 PAYLOAD_TOO_LARGE` |
//! | body cannot be read (client gone, transport error) | `400 BAD_REQUEST` |
//! | body slower than `SigningOptions::max_body_time` | `408 REQUEST_TIMEOUT` |
//! | anything [`Keyward::verify_signed`] refuses | its problem, as the bearer path (`401 SIGNATURE_*`, `403`, `429`, `503`) |
//!
//! The canonical request is rebuilt from the method, the path and query *as received* (from
//! axum's `OriginalUri` when the router is nested, so a prefix stripped by `Router::nest` is
//! still signed), every header of the `HeaderMap`, and the buffered body. Under HTTP/2 the
//! `host` comes from the `:authority` of the URI when no `host` header was sent.

use std::fmt;

use axum::body::HttpBody;
use axum::extract::OriginalUri;
use bytes::{Buf, Bytes};
use http::header::{AUTHORIZATION, CONTENT_LENGTH};
use http::request::Parts;
use http::{HeaderValue, Version};
use http_body_util::BodyExt;
use keyward_core::http::BodyBudget;
use keyward_core::http::gate::{self, SignedHead};
use keyward_core::{Keyward, Principal, ScopeRequirement, VerifyContext};

use crate::rejection::Rejection;

/// Marks a request whose SigV4 signature was not verified because signing is not enabled:
/// [`crate::Authenticated`] and [`crate::RequireScopes`] then answer `401 SIGNATURE_INVALID`
/// instead of `401 API_KEY_MISSING`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UnverifiedSignature;

/// The `401` for a request without a verified principal (see [`gate::no_principal`]).
pub(crate) fn missing(extensions: &http::Extensions) -> Rejection {
    Rejection::from(gate::no_principal(
        extensions.get::<UnverifiedSignature>().is_some(),
    ))
}

/// Checks `requirement` on the principal in `extensions` (see [`gate::require_scopes`]).
pub(crate) fn require(
    extensions: &http::Extensions,
    requirement: &ScopeRequirement,
) -> Result<(), Rejection> {
    let unverified = extensions.get::<UnverifiedSignature>().is_some();
    Ok(gate::require_scopes(
        extensions.get::<Principal>(),
        unverified,
        requirement,
    )?)
}

/// `401 SIGNATURE_INVALID` for a signed request reaching an engine without signing enabled
/// (no `EncryptionKeyring`): no key can have signed it.
#[must_use]
pub fn signing_disabled() -> Rejection {
    Rejection::from(gate::signing_disabled())
}

/// Verifies a SigV4-signed request: buffers `body` within the bounds of
/// [`Keyward::signing_config`], rebuilds the request as received from `parts` and the bytes,
/// and calls [`Keyward::verify_signed`] with `requirement` and `ctx`.
///
/// Returns the verified [`Principal`] and the whole body, which the caller puts back into the
/// request (`Body::from(bytes)`) so the handler reads it unchanged. Nothing is inserted into
/// `parts`; that is the caller's choice.
///
/// # Errors
/// A [`Rejection`] to answer with (see the [module docs](self)): `401 SIGNATURE_INVALID` when
/// signing is not enabled, `413` for a body over the bounds, `400` for a body that cannot be
/// read, and every error of [`Keyward::verify_signed`] as the bearer path answers it.
pub async fn verify_signed_request<B>(
    keyward: &Keyward,
    parts: &Parts,
    body: B,
    requirement: &ScopeRequirement,
    ctx: &VerifyContext,
) -> Result<(Principal, Bytes), Rejection>
where
    B: HttpBody,
    B::Error: fmt::Display,
{
    let authorization = parts
        .headers
        .get(AUTHORIZATION)
        .map_or(&b""[..], HeaderValue::as_bytes);
    let budget = gate::begin_signed(keyward, authorization, ctx).await?;
    let time = keyward.signing_config().max_body_time;
    let buffered = tokio::time::timeout(time, buffer(&parts.headers, body, budget))
        .await
        .unwrap_or_else(|_| Err(gate::signed_body_timeout().into()));
    let body = match buffered {
        Ok(bytes) => Bytes::from(bytes),
        Err(rejection) => {
            // Too large, too slow or unreadable: counted against the address.
            keyward.signed_body_failed(ctx).await;
            return Err(rejection);
        }
    };
    let uri = parts
        .extensions
        .get::<OriginalUri>()
        .map_or(&parts.uri, |o| &o.0);
    let headers = parts
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_bytes()));
    let authority = uri.authority().filter(|_| parts.version >= Version::HTTP_2);
    let head = SignedHead::new(
        parts.method.as_str(),
        uri.path(),
        uri.query(),
        headers,
        authority.map(http::uri::Authority::as_str),
    );
    let principal = gate::finish_signed(keyward, &head, &body, requirement, ctx).await?;
    Ok((principal, body))
}

/// Feeds the data frames of `body` to `budget` (trailers are neither signed nor read).
pub(crate) async fn buffer<B>(
    headers: &http::HeaderMap,
    body: B,
    mut budget: BodyBudget,
) -> Result<Vec<u8>, Rejection>
where
    B: HttpBody,
    B::Error: fmt::Display,
{
    budget.declared(headers.get(CONTENT_LENGTH).map(HeaderValue::as_bytes))?;
    let mut body = std::pin::pin!(body);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            tracing::debug!(error = %e, "request body could not be read");
            BodyBudget::unreadable()
        })?;
        if let Ok(mut data) = frame.into_data() {
            budget.feed(&data.copy_to_bytes(data.remaining()))?;
        }
    }
    Ok(budget.finish()?)
}
