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
//! | `Content-Length` over `SigningConfig::max_body_bytes` | `413 PAYLOAD_TOO_LARGE`, before reading |
//! | body over `max_body_bytes` or `max_body_frames` while reading | `413 PAYLOAD_TOO_LARGE` |
//! | body cannot be read (client gone, transport error) | `400 BAD_REQUEST` |
//! | body slower than `SigningConfig::max_body_time` | `408 REQUEST_TIMEOUT` |
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
use http::header::{CONTENT_LENGTH, HOST};
use http::request::Parts;
use http::{HeaderMap, Version};
use http_body_util::BodyExt;
use keyward_core::error::ErrorCode;
use keyward_core::http::{bad_request, payload_too_large};
use keyward_core::problem::Problem;
use keyward_core::sigv4::{Payload, SignableRequest};
use keyward_core::{Keyward, Principal, ScopeRequirement, VerifyContext};

use crate::rejection::Rejection;

/// Marks a request whose SigV4 signature was not verified because signing is not enabled:
/// [`crate::Authenticated`] and [`crate::RequireScopes`] then answer `401 SIGNATURE_INVALID`
/// instead of `401 API_KEY_MISSING`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UnverifiedSignature;

/// The `401` for a request without a verified principal: `SIGNATURE_INVALID` when it carried a
/// signature that could not be verified, else `API_KEY_MISSING`.
pub(crate) fn missing(extensions: &http::Extensions) -> Rejection {
    if extensions.get::<UnverifiedSignature>().is_some() {
        signing_disabled()
    } else {
        Rejection::missing()
    }
}

/// `401 SIGNATURE_INVALID` for a signed request reaching an engine without signing enabled
/// (no `EncryptionKeyring`): no key can have signed it.
#[must_use]
pub fn signing_disabled() -> Rejection {
    Rejection::from(Problem::new(
        ErrorCode::SignatureInvalid,
        Some("signed requests are not enabled".to_owned()),
    ))
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
    if !keyward.signing_enabled() {
        tracing::debug!(
            code = "SIGNATURE_INVALID",
            "signed request, but signing is not enabled"
        );
        return Err(signing_disabled());
    }
    // Who signed is settled before the body is read: junk and made-up credentials never make
    // this buffer anything.
    let authorization = parts
        .headers
        .get(http::header::AUTHORIZATION)
        .map_or(&b""[..], http::HeaderValue::as_bytes);
    if let Err(e) = keyward.precheck_signed(authorization, ctx).await {
        tracing::debug!(reason = e.reason(), code = %e.code(), "signed request refused before its body");
        return Err(Rejection::from(&e));
    }
    let config = keyward.signing_config();
    let buffered = tokio::time::timeout(
        config.max_body_time,
        buffer_body(
            &parts.headers,
            body,
            config.max_body_bytes,
            config.max_body_frames,
        ),
    )
    .await
    .map_err(|_| {
        Rejection::from(keyward_core::http::request_timeout(
            "the signed request's body did not arrive in time",
        ))
    })
    .and_then(|r| r);
    let body = match buffered {
        Ok(b) => b,
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
    let mut headers: Vec<(&str, &[u8])> = parts
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_bytes()))
        .collect();
    if parts.version >= Version::HTTP_2
        && !parts.headers.contains_key(HOST)
        && let Some(a) = uri.authority()
    {
        headers.push((HOST.as_str(), a.as_str().as_bytes()));
    }
    let request = SignableRequest::new(
        parts.method.as_str(),
        uri.path(),
        uri.query(),
        &headers,
        Payload::Bytes(&body),
    );
    match keyward.verify_signed(&request, requirement, ctx).await {
        Ok(principal) => Ok((principal, body)),
        Err(e) => {
            tracing::debug!(reason = e.reason(), code = %e.code(), "signed request rejected");
            Err(Rejection::from(&e))
        }
    }
}

/// Reads `body` whole, refusing more than `max_bytes` bytes or `max_frames` data frames, and a
/// `Content-Length` over `max_bytes` before reading anything.
async fn buffer_body<B>(
    headers: &HeaderMap,
    body: B,
    max_bytes: usize,
    max_frames: usize,
) -> Result<Bytes, Rejection>
where
    B: HttpBody,
    B::Error: fmt::Display,
{
    let too_large = || Rejection::from(payload_too_large(max_bytes));
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > u64::try_from(max_bytes).unwrap_or(u64::MAX)) {
        return Err(too_large());
    }
    let mut body = std::pin::pin!(body);
    let mut buf: Vec<u8> = Vec::new();
    let mut frames = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            tracing::debug!(error = %e, "signed request body could not be read");
            Rejection::from(bad_request("the request body could not be read"))
        })?;
        let Ok(mut data) = frame.into_data() else {
            continue; // trailers are not signed
        };
        frames += 1;
        if frames > max_frames {
            return Err(too_large());
        }
        while data.has_remaining() {
            let chunk = data.chunk();
            if buf.len().saturating_add(chunk.len()) > max_bytes {
                return Err(too_large());
            }
            buf.extend_from_slice(chunk);
            let n = chunk.len();
            data.advance(n);
        }
    }
    Ok(Bytes::from(buf))
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use axum::body::Body;
    use futures::stream;
    use http::HeaderValue;

    use super::*;

    #[tokio::test]
    async fn bounds() {
        let h = HeaderMap::new();
        let b = buffer_body(&h, Body::from("abc"), 3, 1).await.unwrap();
        assert_eq!(&b[..], b"abc");
        let e = buffer_body(&h, Body::from("abcd"), 3, 1).await.unwrap_err();
        assert_eq!(e.status(), 413);
        let mut h = HeaderMap::new();
        h.insert(CONTENT_LENGTH, HeaderValue::from_static("4"));
        let e = buffer_body(&h, Body::from("ab"), 3, 8).await.unwrap_err();
        assert_eq!(e.code(), keyward_core::ErrorCode::PayloadTooLarge);
        let chunks = stream::iter(["a", "b", "c"].map(|c| Ok::<_, Infallible>(Bytes::from(c))));
        let e = buffer_body(&HeaderMap::new(), Body::from_stream(chunks), 10, 2)
            .await
            .unwrap_err();
        assert_eq!(e.status(), 413);
        let chunks = stream::iter(["a", "b"].map(|c| Ok::<_, Infallible>(Bytes::from(c))));
        let b = buffer_body(&HeaderMap::new(), Body::from_stream(chunks), 10, 2)
            .await
            .unwrap();
        assert_eq!(&b[..], b"ab");
    }
}
