//! [`IpNet`]: the networks of an IP allowlist, and their text form in stores, JSON and
//! OpenAPI.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An IPv4 or IPv6 network in CIDR notation (a bare address is a /32 or /128), on the `ipnet`
/// crate. keyward adds what an allowlist needs around it: bare addresses, IPv4-mapped IPv6
/// clients matching IPv4 networks, and the text form in stores and JSON.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpNet(ipnet::IpNet);

/// A malformed CIDR or address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an IP address or CIDR network: {0:?}")]
pub struct IpNetError(pub String);

impl IpNet {
    /// Whether `ip` lies inside this network. IPv4-mapped IPv6 addresses match IPv4 networks.
    #[must_use]
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.0.contains(&ip)
    }

    /// The network as the `ipnet` crate's type.
    #[must_use]
    pub fn as_ipnet(&self) -> ipnet::IpNet {
        self.0
    }
}

impl From<ipnet::IpNet> for IpNet {
    fn from(net: ipnet::IpNet) -> Self {
        Self(net)
    }
}

/// An allowlist entry as a regular expression, for OpenAPI documents: an IPv4 or IPv6 address,
/// or either in CIDR notation; what [`IpNet`]'s `FromStr` accepts (a test holds them together).
#[cfg_attr(not(feature = "openapi"), allow(dead_code))] // read by the document and tests
pub(crate) const IP_NETWORK_PATTERN: &str = concat!(
    r"^[ \t\n\f\r]*(",
    // IPv4, optionally /0–32.
    r"((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])",
    r"(/(3[0-2]|[012]?[0-9]))?",
    r"|",
    // IPv6 (RFC 4291 text forms, with an embedded IPv4 after `::` or `::ffff:`), optionally /0–128.
    r"(([0-9a-fA-F]{1,4}:){7}[0-9a-fA-F]{1,4}",
    r"|([0-9a-fA-F]{1,4}:){1,7}:",
    r"|([0-9a-fA-F]{1,4}:){1,6}:[0-9a-fA-F]{1,4}",
    r"|([0-9a-fA-F]{1,4}:){1,5}(:[0-9a-fA-F]{1,4}){1,2}",
    r"|([0-9a-fA-F]{1,4}:){1,4}(:[0-9a-fA-F]{1,4}){1,3}",
    r"|([0-9a-fA-F]{1,4}:){1,3}(:[0-9a-fA-F]{1,4}){1,4}",
    r"|([0-9a-fA-F]{1,4}:){1,2}(:[0-9a-fA-F]{1,4}){1,5}",
    r"|[0-9a-fA-F]{1,4}:(:[0-9a-fA-F]{1,4}){1,6}",
    r"|:((:[0-9a-fA-F]{1,4}){1,7}|:)",
    r"|::([fF]{4}:)?((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9]))",
    r"(/(12[0-8]|1[01][0-9]|0[0-9]{2}|[0-9]{1,2}))?",
    r")[ \t\n\f\r]*$"
);

impl FromStr for IpNet {
    type Err = IpNetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || IpNetError(s.chars().take(64).collect());
        // ASCII whitespace around an entry is forgiven (lists typed by hand), exactly as
        // IP_NETWORK_PATTERN states.
        let s = s.trim_matches(|c: char| c.is_ascii_whitespace());
        if let Ok(net) = s.parse::<ipnet::IpNet>() {
            return Ok(Self(net));
        }
        let addr: IpAddr = s.parse().map_err(|_| err())?;
        Ok(Self(ipnet::IpNet::from(addr)))
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for IpNet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for IpNet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The documented pattern accepts what the parser does, on every form an allowlist sees.
    #[test]
    fn the_documented_ip_pattern_is_the_parser() {
        let re = regex::Regex::new(IP_NETWORK_PATTERN).unwrap();
        for s in [
            "10.0.0.1",
            "10.0.0.0/8",
            "0.0.0.0/0",
            "255.255.255.255/32",
            "1.2.3.4/33",
            "256.1.1.1",
            "01.2.3.4",
            "1.2.3",
            "1.2.3.4/08",
            "1.2.3.4/+8",
            "1.2.3.4/008",
            "::/0128",
            "::/099",
            "::/08",
            "1.2.3.4/3",
            " 1.2.3.4",
            "1.2.3.4 ",
            "::",
            "::1",
            "::/0",
            "2001:db8::/32",
            "2001:db8::1/128",
            "2001:db8::1/129",
            "fe80::1",
            "::ffff:10.0.0.1",
            "::10.0.0.1",
            "1:2:3:4:5:6:7:8",
            "1:2:3:4:5:6:7:8:9",
            "1::2::3",
            "12345::",
            "g::",
            "2001:DB8::A",
            "",
            "x",
            "1.2.3.4/",
            "::1/",
        ] {
            assert_eq!(s.parse::<IpNet>().is_ok(), re.is_match(s), "{s:?}");
        }
    }

    /// Allowlist entries: bare addresses are single hosts, CIDR networks match what they cover,
    /// IPv4-mapped IPv6 clients match IPv4 networks, and the text round-trips.
    #[test]
    fn ip_networks() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let net = |s: &str| s.parse::<IpNet>().unwrap();
        assert!(net("10.1.2.3").contains(ip("10.1.2.3")));
        assert!(!net("10.1.2.3").contains(ip("10.1.2.4")));
        assert!(net("10.0.0.0/8").contains(ip("10.255.0.1")));
        assert!(!net("10.0.0.0/8").contains(ip("11.0.0.1")));
        assert!(net("0.0.0.0/0").contains(ip("192.0.2.1")));
        assert!(net("10.0.0.0/8").contains(ip("::ffff:10.9.9.9")));
        assert!(net("2001:db8::/32").contains(ip("2001:db8:1::1")));
        assert!(!net("2001:db8::/32").contains(ip("10.0.0.1")));
        assert!(net(" ::1 ").contains(ip("::1")));
        for text in ["10.0.0.0/8", "2001:db8::/32", "192.0.2.1/32"] {
            assert_eq!(net(text).to_string(), text);
        }
        assert_eq!(net("192.0.2.1").to_string(), "192.0.2.1/32");
        for bad in [
            "",
            "10.0.0.0/33",
            "::/129",
            "10.0.0",
            "example.com",
            "10.0.0.0/x",
        ] {
            assert!(bad.parse::<IpNet>().is_err(), "{bad:?}");
        }
    }
}
