//! Signed requests (AWS Signature Version 4, DESIGN.md §7, `docs/signing.md`) in the
//! middleware: the body is buffered within [`keyward_core::signing::SigningConfig`]'s bounds,
//! the request rebuilt as received and verified with [`Keyward::verify_signed`], and the body
//! put back with `ServiceRequest::set_payload` so the handler reads it unchanged. Answers as
//! `keyward_axum::signed`, so both adapters agree.

use actix_web::HttpMessage;
use actix_web::dev::{Payload, ServiceRequest};
use actix_web::http::Version;
use actix_web::http::header::{CONTENT_LENGTH, HOST, HeaderValue};
use actix_web::web::Bytes;
use futures::StreamExt;
use keyward_core::error::ErrorCode;
use keyward_core::http::{bad_request, payload_too_large};
use keyward_core::sigv4::{Payload as SignedPayload, SignableRequest};
use keyward_core::{Keyward, Principal, ScopeRequirement, VerifyContext};

use crate::rejection::Rejection;

/// Marks a request whose SigV4 signature was not verified because signing is not enabled:
/// [`crate::Authenticated`] and [`crate::RequireScopes`] then answer `401 SIGNATURE_INVALID`
/// instead of `401 API_KEY_MISSING`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UnverifiedSignature;

/// The `401` for a request without a verified principal: `SIGNATURE_INVALID` when it carried a
/// signature that could not be verified, else `API_KEY_MISSING`.
pub(crate) fn missing(extensions: &actix_web::dev::Extensions) -> Rejection {
    if extensions.get::<UnverifiedSignature>().is_some() {
        signing_disabled()
    } else {
        Rejection::missing()
    }
}

/// `401 SIGNATURE_INVALID`: a signed request reached an engine without signing enabled.
pub(crate) fn signing_disabled() -> Rejection {
    Rejection::with_code(
        ErrorCode::SignatureInvalid,
        "signed requests are not enabled",
    )
}

/// Verifies the signed request `req` (signing enabled): buffers its payload within the bounds
/// of [`Keyward::signing_config`] (a `Content-Length` over the limit is `413` before reading),
/// verifies it, and puts the payload back. On success the payload is back in `req`; on a
/// rejection it may be partly consumed (the request is answered with the rejection).
pub(crate) async fn verify(
    keyward: &Keyward,
    req: &mut ServiceRequest,
    requirement: &ScopeRequirement,
    ctx: &VerifyContext,
) -> Result<Principal, Rejection> {
    // Who signed is settled before the payload is read: junk and made-up credentials never
    // make this buffer anything.
    let authorization = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .map_or(&b""[..], HeaderValue::as_bytes);
    if let Err(e) = keyward.precheck_signed(authorization, ctx).await {
        tracing::debug!(reason = e.reason(), code = %e.code(), "signed request refused before its body");
        return Err(Rejection::from(&e));
    }
    let config = keyward.signing_config();
    let buffered = actix_web::rt::time::timeout(
        config.max_body_time,
        buffer(req, config.max_body_bytes, config.max_body_frames),
    )
    .await
    .map_err(|_| {
        Rejection::new(keyward_core::http::request_timeout(
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
    let result = {
        let uri = req.uri();
        let mut headers: Vec<(&str, &[u8])> = req
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_bytes()))
            .collect();
        if req.version() >= Version::HTTP_2
            && !req.headers().contains_key(HOST)
            && let Some(a) = uri.authority()
        {
            headers.push((HOST.as_str(), a.as_str().as_bytes()));
        }
        let request = SignableRequest::new(
            req.method().as_str(),
            uri.path(),
            uri.query(),
            &headers,
            SignedPayload::Bytes(&body),
        );
        keyward.verify_signed(&request, requirement, ctx).await
    };
    req.set_payload(Payload::from(body));
    result.map_err(|e| {
        tracing::debug!(reason = e.reason(), code = %e.code(), "signed request rejected");
        Rejection::from(&e)
    })
}

/// Reads the whole payload, refusing more than `max_bytes` bytes or `max_chunks` chunks.
async fn buffer(
    req: &mut ServiceRequest,
    max_bytes: usize,
    max_chunks: usize,
) -> Result<Bytes, Rejection> {
    let too_large = || Rejection::new(payload_too_large(max_bytes));
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > u64::try_from(max_bytes).unwrap_or(u64::MAX)) {
        return Err(too_large());
    }
    let mut payload = req.take_payload();
    let mut buf: Vec<u8> = Vec::new();
    let mut chunks = 0usize;
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            tracing::debug!(error = %e, "signed request body could not be read");
            Rejection::new(bad_request("the request body could not be read"))
        })?;
        chunks += 1;
        if chunks > max_chunks || buf.len().saturating_add(chunk.len()) > max_bytes {
            return Err(too_large());
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(buf))
}
