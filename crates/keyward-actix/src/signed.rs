//! Signed requests (AWS Signature Version 4, DESIGN.md §7, `docs/signing.md`) in the
//! middleware: the body is buffered within [`keyward_core::signing::SigningOptions`]'s bounds,
//! the request rebuilt as received and verified with [`Keyward::verify_signed`], and the body
//! put back with `ServiceRequest::set_payload` so the handler reads it unchanged. Answers as
//! `keyward_axum::signed`, so both adapters agree.

use actix_web::HttpMessage;
use actix_web::dev::{Payload, ServiceRequest};
use actix_web::http::Version;
use actix_web::http::header::{AUTHORIZATION, CONTENT_LENGTH, HeaderMap, HeaderValue};
use futures::StreamExt;
use keyward_core::http::BodyBudget;
use keyward_core::http::gate::{self, Gate, SignedHead};
use keyward_core::{Principal, ScopeRequirement, VerifyContext};

use crate::rejection::Rejection;

/// Marks a request whose SigV4 signature was not verified because signing is not enabled:
/// [`crate::Authenticated`] and [`crate::RequireScopes`] then answer `401 SIGNATURE_INVALID`
/// instead of `401 API_KEY_MISSING`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UnverifiedSignature;

/// The `401` for a request without a verified principal (see [`gate::no_principal`]).
pub(crate) fn missing(extensions: &actix_web::dev::Extensions) -> Rejection {
    Rejection::from(gate::no_principal(
        extensions.get::<UnverifiedSignature>().is_some(),
    ))
}

/// Checks `requirement` on the principal in `extensions` (see [`gate::require_scopes`]).
pub(crate) fn require(
    extensions: &actix_web::dev::Extensions,
    requirement: &ScopeRequirement,
) -> Result<(), Rejection> {
    let unverified = extensions.get::<UnverifiedSignature>().is_some();
    Ok(gate::require_scopes(
        extensions.get::<Principal>(),
        unverified,
        requirement,
    )?)
}

/// Verifies the signed request `req` (signing enabled): buffers its payload within the bounds
/// of the signing configuration, verifies it, and puts the payload back. On a rejection the
/// payload may be partly consumed (the request is answered with the rejection).
pub(crate) async fn verify(
    gate: &Gate,
    req: &mut ServiceRequest,
    ctx: &VerifyContext,
) -> Result<Principal, Rejection> {
    let keyward = gate.keyward();
    let authorization = req
        .headers()
        .get(AUTHORIZATION)
        .map_or(&b""[..], HeaderValue::as_bytes);
    let budget = gate::begin_signed(keyward, authorization, ctx).await?;
    let time = keyward.signing_config().max_body_time;
    let payload = req.take_payload();
    let buffered = actix_web::rt::time::timeout(time, read_within(req.headers(), payload, budget))
        .await
        .unwrap_or_else(|_| Err(gate::signed_body_timeout().into()));
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
        let headers = req
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_bytes()));
        let authority = uri.authority().filter(|_| req.version() >= Version::HTTP_2);
        let head = SignedHead::new(
            req.method().as_str(),
            uri.path(),
            uri.query(),
            headers,
            authority.map(actix_web::http::uri::Authority::as_str),
        );
        gate.finish_signed(&head, &body, ctx).await
    };
    req.set_payload(Payload::from(actix_web::web::Bytes::from(body)));
    Ok(result?)
}

/// Feeds `payload`'s chunks to `budget`, after its `Content-Length` in `headers`: the one body
/// loop of this adapter (signed bodies here, management bodies in [`crate::routes`]).
pub(crate) async fn read_within<S, E>(
    headers: &HeaderMap,
    payload: S,
    mut budget: BodyBudget,
) -> Result<Vec<u8>, Rejection>
where
    S: futures::Stream<Item = Result<actix_web::web::Bytes, E>>,
    E: std::fmt::Display,
{
    budget.declared(headers.get(CONTENT_LENGTH).map(HeaderValue::as_bytes))?;
    let mut payload = std::pin::pin!(payload);
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            tracing::debug!(error = %e, "request body could not be read");
            BodyBudget::unreadable()
        })?;
        budget.feed(&chunk)?;
    }
    Ok(budget.finish()?)
}
