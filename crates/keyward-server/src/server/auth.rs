//! What the server adds to keyward-core's authentication: the verification metrics, the client
//! address (`--client-ip-header`), the static admin token.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, HeaderName, header};
use keyward_core::VerifyContext;
use keyward_core::model::IpNet;
use keyward_http::Observed;
use keyward_http::credentials;

use super::App;
use super::reply::outcome_of_code;
use crate::metrics::Metrics;

/// What keyward-core's gates report about each verification, counted in `metrics` by outcome
/// and latency.
pub(super) fn observer(metrics: &Arc<Metrics>) -> impl Fn(Observed) + Send + Sync + 'static {
    let metrics = Arc::clone(metrics);
    move |o: Observed| {
        let label = o
            .outcome
            .map_or_else(|code| outcome_of_code(code.as_str()), |()| "ok");
        metrics.verify(label, o.cached, o.elapsed);
    }
}

/// Where a request's client address comes from: `--client-ip-header`, believed only from
/// `--trusted-proxy` peers.
#[derive(Debug, Clone)]
pub(super) struct Clients {
    pub(super) client_ip_header: Option<HeaderName>,
    pub(super) trusted_proxies: Vec<IpNet>,
}

impl Clients {
    /// The client address. Without `--client-ip-header`, or from a peer outside
    /// `--trusted-proxy`, the peer's. From a trusted proxy, the header's (the last entry of a
    /// list: the one the nearest proxy added; `ip`, `ip:port`, `[v6]` or `[v6]:port`); a
    /// missing or malformed one is no address at all, [`VerifyContext::UNKNOWN_CLIENT`], never
    /// the proxy's own (review finding 6).
    pub(super) fn client_ip(&self, headers: &HeaderMap, peer: IpAddr) -> IpAddr {
        let Some(name) = &self.client_ip_header else {
            return peer;
        };
        if !self.trusted_proxies.iter().any(|net| net.contains(peer)) {
            return peer;
        }
        headers
            .get_all(name)
            .iter()
            .next_back()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|v| forwarded_ip(v.trim()))
            .unwrap_or(VerifyContext::UNKNOWN_CLIENT)
    }

    /// Whether the request's peer is one of `--trusted-proxy`.
    pub(super) fn peer_is_trusted_proxy(&self, extensions: &axum::http::Extensions) -> bool {
        extensions
            .get::<ConnectInfo<SocketAddr>>()
            .is_some_and(|peer| self.trusted_proxies.iter().any(|n| n.contains(peer.0.ip())))
    }

    /// The client address from a request's headers and its `ConnectInfo`, as
    /// [`client_ip`](Self::client_ip) decides it; `None` without a peer address.
    pub(super) fn client_ip_of(
        &self,
        headers: &HeaderMap,
        extensions: &axum::http::Extensions,
    ) -> Option<IpAddr> {
        let peer = extensions.get::<ConnectInfo<SocketAddr>>()?.0;
        Some(self.client_ip(headers, peer.ip()))
    }
}

impl App {
    /// The static admin token, if configured and presented.
    pub(super) fn token_presented(&self, headers: &HeaderMap) -> bool {
        let Some(token) = &self.admin_token else {
            return false;
        };
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| credentials::bearer_token(v.as_bytes()));
        let api_key = headers
            .get(credentials::API_KEY_HEADER)
            .and_then(|v| v.to_str().ok());
        // Evaluate both so the timing does not reveal which header carried it.
        let a = bearer.is_some_and(|b| token.matches(b));
        let b = api_key.is_some_and(|k| token.matches(k));
        a | b
    }
}

/// An address as proxies write it: `ip`, `ip:port`, `[v6]` or `[v6]:port`.
fn forwarded_ip(v: &str) -> Option<IpAddr> {
    v.parse::<IpAddr>()
        .ok()
        .or_else(|| v.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| {
            v.strip_prefix('[')?
                .strip_suffix(']')?
                .parse::<std::net::Ipv6Addr>()
                .ok()
                .map(IpAddr::V6)
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn forwarded_addresses() {
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        assert_eq!(forwarded_ip("192.0.2.7"), ip("192.0.2.7"));
        assert_eq!(forwarded_ip("192.0.2.7:4711"), ip("192.0.2.7"));
        assert_eq!(forwarded_ip("2001:db8::1"), ip("2001:db8::1"));
        assert_eq!(forwarded_ip("[2001:db8::1]"), ip("2001:db8::1"));
        assert_eq!(forwarded_ip("[2001:db8::1]:443"), ip("2001:db8::1"));
        for junk in [
            "",
            "unknown",
            "_hidden",
            "192.0.2.7:x",
            "[192.0.2.7]",
            "2001:db8::1:",
        ] {
            assert_eq!(forwarded_ip(junk), None, "{junk:?}");
        }
    }
}
