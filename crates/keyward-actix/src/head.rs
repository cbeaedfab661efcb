//! [`Head`]: an actix-web request head as keyward-core's [`RequestHead`], and the client
//! address IP allowlists are checked against.

use std::net::IpAddr;

use actix_web::HttpRequest;
use actix_web::http::Version;
use actix_web::http::header::HeaderValue;
use keyward_http::{ClientIp, RequestHead};

/// The default client address: the TCP peer's.
#[must_use]
pub fn peer_ip(req: &HttpRequest) -> Option<IpAddr> {
    req.peer_addr().map(|a| a.ip())
}

/// A request head as received, with the client address `client_ip` finds ([`peer_ip`] when
/// `None`).
#[derive(Debug, Clone, Copy)]
pub struct Head<'a> {
    req: &'a HttpRequest,
    client_ip: Option<&'a ClientIp<HttpRequest>>,
}

impl<'a> Head<'a> {
    /// The head of `req`.
    #[must_use]
    pub fn new(req: &'a HttpRequest, client_ip: Option<&'a ClientIp<HttpRequest>>) -> Self {
        Self { req, client_ip }
    }
}

impl RequestHead for Head<'_> {
    fn method(&self) -> &str {
        self.req.method().as_str()
    }

    fn path(&self) -> &str {
        self.req.uri().path()
    }

    fn query(&self) -> Option<&str> {
        self.req.uri().query()
    }

    fn header(&self, name: &str) -> Option<&[u8]> {
        self.req.headers().get(name).map(HeaderValue::as_bytes)
    }

    fn headers(&self) -> Vec<(&str, &[u8])> {
        let all = self.req.headers().iter();
        all.map(|(n, v)| (n.as_str(), v.as_bytes())).collect()
    }

    fn authority(&self) -> Option<&str> {
        let uri = self.req.uri();
        let authority = uri
            .authority()
            .filter(|_| self.req.version() >= Version::HTTP_2);
        authority.map(actix_web::http::uri::Authority::as_str)
    }

    fn client_ip(&self) -> Option<IpAddr> {
        self.client_ip
            .map_or_else(|| peer_ip(self.req), |f| f.find(self.req))
    }
}
