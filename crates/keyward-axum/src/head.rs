//! [`Head`]: an axum request head as keyward-core's [`RequestHead`], and the client address
//! IP allowlists are checked against.

use std::net::{IpAddr, SocketAddr};

use axum::extract::connect_info::MockConnectInfo;
use axum::extract::{ConnectInfo, OriginalUri};
use http::request::Parts;
use http::{HeaderValue, Uri, Version};
use keyward_http::{ClientIp, RequestHead};

/// The default client address: the peer address from axum's `ConnectInfo<SocketAddr>` (serve
/// with `into_make_service_with_connect_info::<SocketAddr>()`), or `MockConnectInfo` in tests.
#[must_use]
pub fn peer_ip(parts: &Parts) -> Option<IpAddr> {
    let connected = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let mocked = || {
        parts
            .extensions
            .get::<MockConnectInfo<SocketAddr>>()
            .map(|m| m.0)
    };
    connected.or_else(mocked).map(|a| a.ip())
}

/// A request head as received: the URI before `Router::nest` stripped a prefix
/// (`OriginalUri`), the headers, and the client address `client_ip` finds ([`peer_ip`] when
/// `None`).
#[derive(Debug, Clone, Copy)]
pub struct Head<'a> {
    parts: &'a Parts,
    client_ip: Option<&'a ClientIp<Parts>>,
}

impl<'a> Head<'a> {
    /// The head of `parts`.
    #[must_use]
    pub fn new(parts: &'a Parts, client_ip: Option<&'a ClientIp<Parts>>) -> Self {
        Self { parts, client_ip }
    }

    /// The URI as received: looked up only where the path counts (signatures, management).
    fn uri(&self) -> &'a Uri {
        let original = self.parts.extensions.get::<OriginalUri>();
        original.map_or(&self.parts.uri, |o| &o.0)
    }
}

impl RequestHead for Head<'_> {
    fn method(&self) -> &str {
        self.parts.method.as_str()
    }

    fn path(&self) -> &str {
        self.uri().path()
    }

    fn query(&self) -> Option<&str> {
        self.uri().query()
    }

    fn header(&self, name: &str) -> Option<&[u8]> {
        self.parts.headers.get(name).map(HeaderValue::as_bytes)
    }

    fn headers(&self) -> Vec<(&str, &[u8])> {
        let all = self.parts.headers.iter();
        all.map(|(n, v)| (n.as_str(), v.as_bytes())).collect()
    }

    fn authority(&self) -> Option<&str> {
        let http2 = self.parts.version >= Version::HTTP_2;
        let authority = self.uri().authority().filter(|_| http2);
        authority.map(http::uri::Authority::as_str)
    }

    fn client_ip(&self) -> Option<IpAddr> {
        self.client_ip
            .map_or_else(|| peer_ip(self.parts), |f| f.find(self.parts))
    }
}
