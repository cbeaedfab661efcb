//! Where a request came from ([`Origin`]): what an audit event records of the request that
//! made it, and what a key's last use records ([`crate::KeyRecord::last_used_from`]).

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// Most bytes of a user agent an event keeps.
pub const MAX_USER_AGENT: usize = 256;
/// Most bytes of a request id an event keeps; a longer one, or one with other characters than
/// visible ASCII, is not kept.
pub const MAX_REQUEST_ID: usize = 128;

/// Where a request came from, as far as the server could tell.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Origin {
    /// The client address (after the trusted proxies the server was told of).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub client_addr: Option<IpAddr>,
    /// The `User-Agent`, at most [`MAX_USER_AGENT`] bytes, control characters dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// The `X-Request-Id`, when it is at most [`MAX_REQUEST_ID`] visible ASCII characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl Origin {
    /// The origin of a request from `client_addr` with these `User-Agent` and `X-Request-Id`
    /// header values, cleaned: control characters and what is past the length bounds are
    /// dropped, so a client cannot forge lines in a log that prints them.
    #[must_use]
    pub fn new(
        client_addr: Option<IpAddr>,
        user_agent: Option<&[u8]>,
        request_id: Option<&[u8]>,
    ) -> Self {
        let user_agent = user_agent.map(|ua| {
            let text = String::from_utf8_lossy(ua);
            let mut clean = String::with_capacity(text.len().min(MAX_USER_AGENT));
            for c in text.chars().filter(|c| !c.is_control()) {
                if clean.len() + c.len_utf8() > MAX_USER_AGENT {
                    break;
                }
                clean.push(c);
            }
            clean
        });
        let request_id = request_id
            .filter(|id| {
                !id.is_empty() && id.len() <= MAX_REQUEST_ID && id.iter().all(u8::is_ascii_graphic)
            })
            .map(|id| String::from_utf8_lossy(id).into_owned());
        Self {
            client_addr,
            user_agent: user_agent.filter(|ua| !ua.is_empty()),
            request_id,
        }
    }
}
