//! What the server adds to keyward-core's authentication: the verification metrics, the client
//! address (`--client-ip-header`), the static admin token.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, header};
use keyward_core::http::Observed;

use super::reply::outcome_of_code;
use super::{API_KEY_HEADER, App};
use crate::metrics::Metrics;

/// What keyward-core's gates report about each verification, counted in `metrics` by outcome
/// and latency.
pub(super) fn observer(metrics: &Arc<Metrics>) -> impl Fn(Observed) + Send + Sync + 'static {
    let metrics = Arc::clone(metrics);
    move |o: Observed| {
        let label = o
            .outcome
            .map_or_else(|code| outcome_of_code(code.as_str()), |()| "ok");
        metrics.verify(label, o.elapsed);
    }
}

impl App {
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
