//! Authentication on the server's own routes (`/v1/…`): a key as bearer or `X-API-Key`, or a
//! SigV4 signature, each verification counted in the metrics; the client address; the static
//! admin token.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use keyward_core::credentials::{Credential, extract};
use keyward_core::{ErrorCode, Principal, Problem, ScopeRequirement, VerifyContext, VerifyError};

use super::reply::{outcome, outcome_of_code};
use super::verify::Pending;
use super::{API_KEY_HEADER, App};

impl App {
    /// Verifies `key`, counting the outcome and latency.
    pub(super) async fn verify_key(
        &self,
        key: &str,
        req: &ScopeRequirement,
        ip: SocketAddr,
    ) -> Result<Principal, VerifyError> {
        let started = Instant::now();
        let r = self
            .kw
            .verify(key, req, &VerifyContext::with_ip(ip.ip()))
            .await;
        let label = match &r {
            Ok(_) => "ok",
            Err(e) => {
                tracing::debug!(reason = e.reason(), "verification refused");
                outcome(e)
            }
        };
        self.metrics.verify(label, started.elapsed());
        r
    }

    /// Authenticates the request's own credential against `req`: a key (bearer or
    /// `X-API-Key`), or a SigV4 signature over the request as received. A signature covers the
    /// body, so for a signed request the body is buffered here (within the bounds of
    /// `SigningConfig`, else `413`) and handed back in `body` for the handler to read.
    pub(super) async fn authenticate(
        &self,
        parts: &Parts,
        body: &mut Pending,
        req: &ScopeRequirement,
        ip: SocketAddr,
    ) -> Result<Principal, Problem> {
        let ip = self.client_ip(&parts.headers, ip);
        let headers = &parts.headers;
        let cred = extract(
            &self.kw.policy().format,
            headers
                .get(header::AUTHORIZATION)
                .map(HeaderValue::as_bytes),
            headers.get(API_KEY_HEADER).map(HeaderValue::as_bytes),
        );
        match cred {
            Credential::Key(k) => self
                .verify_key(k, req, ip)
                .await
                .map_err(|e| Problem::from(&e)),
            Credential::Invalid(reason) => {
                tracing::debug!(reason = %reason, "unusable credential header");
                self.metrics.verify("invalid", Duration::ZERO);
                Err(Problem::new(
                    ErrorCode::ApiKeyInvalid,
                    Some("the API key is not valid".to_owned()),
                ))
            }
            Credential::Signed(_) => self.verify_signed(parts, body, req, ip).await,
            Credential::None | Credential::NotOurs => {
                self.metrics.verify("missing", Duration::ZERO);
                Err(Problem::missing())
            }
        }
    }

    /// Verifies a SigV4-signed request with keyward-axum's helper (body bounds, `413`, the
    /// request rebuilt as received), counting the outcome and latency.
    pub(super) async fn verify_signed(
        &self,
        parts: &Parts,
        body: &mut Pending,
        req: &ScopeRequirement,
        ip: SocketAddr,
    ) -> Result<Principal, Problem> {
        let started = Instant::now();
        let unread = std::mem::replace(body, Pending::Read(Bytes::new()));
        let raw = match unread {
            Pending::Unread(b) => b,
            Pending::Read(bytes) => Body::from(bytes),
        };
        let ctx = VerifyContext::with_ip(ip.ip());
        let r = keyward_axum::signed::verify_signed_request(&self.kw, parts, raw, req, &ctx).await;
        match r {
            Ok((principal, bytes)) => {
                *body = Pending::Read(bytes);
                self.metrics.verify("ok", started.elapsed());
                Ok(principal)
            }
            Err(rejection) => {
                let p = rejection.into_problem();
                self.metrics
                    .verify(outcome_of_code(p.code.as_str()), started.elapsed());
                Err(p)
            }
        }
    }

    /// The client address: from the trusted header when configured and well formed (the last
    /// entry of a list, the one the nearest proxy added), else the peer.
    pub(super) fn client_ip(&self, headers: &HeaderMap, peer: SocketAddr) -> SocketAddr {
        let from_header = self.client_ip_header.as_ref().and_then(|name| {
            let v = headers.get_all(name).iter().next_back()?.to_str().ok()?;
            v.rsplit(',')
                .next()?
                .trim()
                .parse::<std::net::IpAddr>()
                .ok()
        });
        from_header.map_or(peer, |ip| SocketAddr::new(ip, 0))
    }

    /// The client address from a request's headers and its `ConnectInfo`, as
    /// [`client_ip`](Self::client_ip) decides it; `None` without a peer address.
    pub(super) fn client_ip_of(
        &self,
        headers: &HeaderMap,
        extensions: &axum::http::Extensions,
    ) -> Option<std::net::IpAddr> {
        let peer = extensions.get::<ConnectInfo<SocketAddr>>()?.0;
        Some(self.client_ip(headers, peer).ip())
    }

    /// The static admin token, if configured and presented.
    pub(super) fn token_presented(&self, headers: &HeaderMap) -> bool {
        let Some(token) = &self.admin_token else {
            return false;
        };
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let v = v.trim();
                let (scheme, rest) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then_some(rest.trim())
            });
        let api_key = headers.get(API_KEY_HEADER).and_then(|v| v.to_str().ok());
        // Evaluate both so the timing does not reveal which header carried it.
        let a = bearer.is_some_and(|b| token.matches(b));
        let b = api_key.is_some_and(|k| token.matches(k));
        a | b
    }
}
