//! [`RequestHead`]: what keyward reads of a request before its body, whatever the framework;
//! [`CredentialHeaders`]: which of its headers carry keys.

use std::borrow::Cow;
use std::net::IpAddr;

use crate::credentials::{self, Credential};
use keyward_core::key::KeyFormat;

/// A request head as received, framework-neutral. Each adapter implements it on a borrowed
/// view of its framework's request; keyward's flow reads nothing else of a request but its
/// body.
pub trait RequestHead {
    /// The method, uppercase (`GET`).
    fn method(&self) -> &str;
    /// The path as the client sent it, before routing stripped any prefix (a signature covers
    /// it).
    fn path(&self) -> &str;
    /// The query, without the `?`.
    fn query(&self) -> Option<&str>;
    /// The first value of the header `name` (lowercase).
    fn header(&self, name: &str) -> Option<&[u8]>;
    /// Every header, in order, names lowercase: what a signature covers.
    fn headers(&self) -> Vec<(&str, &[u8])>;
    /// The request target's authority under HTTP/2 (`:authority`); `None` under HTTP/1, where
    /// `host` is a header.
    fn authority(&self) -> Option<&str>;
    /// The client address IP allowlists are checked against
    /// ([`VerifyContext::client_ip`](keyward_core::VerifyContext::client_ip)).
    fn client_ip(&self) -> Option<IpAddr>;
    /// Whether this head stands for the request a signature covers. A forward-auth endpoint,
    /// whose head describes another request in headers a proxy sets, refuses here when the
    /// proxy did not describe it; the default accepts.
    ///
    /// # Errors
    /// The problem to answer a signed request with.
    fn signable(&self) -> Result<(), crate::Problem> {
        Ok(())
    }
}

/// Which headers carry credentials. Defaults: `authorization` (for `Bearer <key>` and SigV4
/// signatures) and `x-api-key` (whose whole value is a key). Names are compared
/// case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialHeaders {
    /// The header read for `Bearer <key>` and SigV4 signatures (`AWS4-HMAC-SHA256 …`).
    pub authorization: Cow<'static, str>,
    /// The header whose whole value is a key.
    pub api_key: Cow<'static, str>,
}

impl Default for CredentialHeaders {
    fn default() -> Self {
        Self {
            authorization: Cow::Borrowed("authorization"),
            api_key: Cow::Borrowed(credentials::API_KEY_HEADER),
        }
    }
}

impl CredentialHeaders {
    /// Reads keys from `authorization` and `api_key` (names lowercased).
    #[must_use]
    pub fn new(authorization: &str, api_key: &str) -> Self {
        Self {
            authorization: Cow::Owned(authorization.to_ascii_lowercase()),
            api_key: Cow::Owned(api_key.to_ascii_lowercase()),
        }
    }

    /// What `head` presents, for keys of `format`. Only the first value of each header is read.
    #[must_use]
    pub fn extract<'a>(&self, format: &KeyFormat, head: &'a impl RequestHead) -> Credential<'a> {
        let authorization = head.header(&self.authorization);
        // The API-key header is looked up only when `Authorization` leaves the decision to it
        // (a lookup by name can cost a header name's allocation, as in actix-web).
        match credentials::extract(format, authorization, None) {
            Credential::None | Credential::NotOurs => {
                credentials::extract(format, authorization, head.header(&self.api_key))
            }
            decided => decided,
        }
    }
}
