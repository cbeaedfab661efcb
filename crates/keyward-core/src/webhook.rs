//! Lifecycle webhooks as the [Standard Webhooks] specification has them: what a delivery of an
//! [`Event`] carries and how it is signed, the retry schedule, and which addresses a webhook may
//! not target. No I/O: the `keyward` server sends the requests.
//!
//! A delivery is a `POST` of the JSON [`envelope`] with three headers:
//! `webhook-id` (the event id, the same on every attempt), `webhook-timestamp` (Unix seconds of
//! the attempt) and `webhook-signature` ([`signature`]: `v1,<base64 HMAC-SHA256>` for each secret,
//! separated by spaces, so that a receiver holding either secret verifies while one rotates).
//!
//! [Standard Webhooks]: https://www.standardwebhooks.com/

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::audit::{Event, EventCursor, EventId};
use crate::store::StoreError;

/// The prefix of a secret's text form.
pub const SECRET_PREFIX: &str = "whsec_";

/// Fewest bytes a signing secret may have.
pub const MIN_SECRET_BYTES: usize = 24;
/// Most bytes a signing secret may have.
pub const MAX_SECRET_BYTES: usize = 64;

/// A webhook signing secret: `whsec_` and the base64 of 24–64 random bytes. Zeroized on drop;
/// `Debug` never shows it.
#[derive(Clone)]
pub struct WebhookSecret(Zeroizing<Vec<u8>>);

/// Not a webhook secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a webhook secret is `whsec_` followed by the base64 of 24 to 64 bytes")]
pub struct WebhookSecretError;

impl WebhookSecret {
    /// Reads `whsec_<base64>`.
    ///
    /// # Errors
    /// [`WebhookSecretError`] for anything else.
    pub fn parse(text: &str) -> Result<Self, WebhookSecretError> {
        let b64 = text
            .trim()
            .strip_prefix(SECRET_PREFIX)
            .ok_or(WebhookSecretError)?;
        let bytes = Zeroizing::new(STANDARD.decode(b64).map_err(|_| WebhookSecretError)?);
        if !(MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&bytes.len()) {
            return Err(WebhookSecretError);
        }
        Ok(Self(bytes))
    }

    /// A fresh secret of 32 bytes from the OS CSPRNG, and its text form.
    ///
    /// # Errors
    /// When the OS random source fails.
    pub fn generate() -> Result<(Self, Zeroizing<String>), crate::key::RngError> {
        let mut bytes = Zeroizing::new(vec![0u8; 32]);
        crate::key::os_random(&mut bytes)?;
        let text = Zeroizing::new(format!("{SECRET_PREFIX}{}", STANDARD.encode(&*bytes)));
        Ok((Self(bytes), text))
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

/// The `webhook-signature` header of a delivery of `body` with this id and timestamp: one
/// `v1,<signature>` for each of `secrets`, in order (the newest first), separated by spaces. Each
/// signature is the base64 of HMAC-SHA256 over `<id>.<timestamp>.<body>`.
#[must_use]
pub fn signature(secrets: &[WebhookSecret], id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut signed = Vec::with_capacity(id.len() + body.len() + 24);
    signed.extend_from_slice(id.as_bytes());
    signed.push(b'.');
    signed.extend_from_slice(timestamp.to_string().as_bytes());
    signed.push(b'.');
    signed.extend_from_slice(body);
    secrets
        .iter()
        .map(|s| {
            let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &s.0);
            format!("v1,{}", STANDARD.encode(ring::hmac::sign(&key, &signed)))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// What a receiver checks of a delivery: that `header` (the `webhook-signature` value) holds a
/// `v1` signature of `id`, `timestamp` and `body` under one of `secrets` (compared in constant
/// time), and that `timestamp` (the `webhook-timestamp` value) is within `tolerance` of `now`,
/// so that a captured delivery cannot be replayed later.
#[must_use]
pub fn verify(
    secrets: &[WebhookSecret],
    id: &str,
    timestamp: i64,
    body: &[u8],
    header: &str,
    now: std::time::SystemTime,
    tolerance: Duration,
) -> bool {
    let now = match now.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(_) => return false,
    };
    let tolerance = i64::try_from(tolerance.as_secs()).unwrap_or(i64::MAX);
    if now.abs_diff(timestamp) > tolerance.unsigned_abs() {
        return false;
    }
    let presented: Vec<&str> = header.split(' ').filter(|s| !s.is_empty()).collect();
    secrets.iter().any(|secret| {
        let expected = signature(std::slice::from_ref(secret), id, timestamp, body);
        presented.iter().any(|p| {
            bool::from(subtle::ConstantTimeEq::ct_eq(
                p.as_bytes(),
                expected.as_bytes(),
            ))
        })
    })
}

/// The body of a delivery: `{"type": <action>, "timestamp": <at>, "data": <event>}`, the
/// envelope the Standard Webhooks specification recommends ([`envelope`] writes it; the
/// `keyward` server's OpenAPI document describes it under `webhooks`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookPayload {
    /// The event's action (`key.created`, `key.expiring`, …).
    #[serde(rename = "type")]
    pub kind: crate::audit::Action,
    /// When the event happened, in seconds since the epoch.
    pub timestamp: i64,
    /// The event, as the audit log holds it.
    pub data: Event,
}

/// The body of a delivery of `event` ([`WebhookPayload`]).
#[must_use]
pub fn envelope(event: &Event) -> Vec<u8> {
    let payload = WebhookPayload {
        kind: event.action,
        timestamp: event.at.unix_timestamp(),
        data: event.clone(),
    };
    // An event serializes whole: its fields are strings, numbers and JSON values.
    serde_json::to_vec(&payload).unwrap_or_default()
}

/// How long after each failed attempt the next one is made: the schedule Standard Webhooks'
/// reference implementations use, 27.6 hours in all, 8 attempts. After the last, a delivery
/// has failed.
pub const RETRY_SCHEDULE: [Duration; 7] = [
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
];

/// How long to wait before attempt `attempts + 1`, after `attempts` failed ones (1 for the
/// first), ±10 % as `jitter` (in `[0, 1)`) says; `None` once the schedule is spent.
#[must_use]
pub fn retry_delay(attempts: u32, jitter: f64) -> Option<Duration> {
    let base = RETRY_SCHEDULE.get(usize::try_from(attempts.checked_sub(1)?).ok()?)?;
    let factor = 0.9 + 0.2 * jitter.clamp(0.0, 1.0);
    Some(base.mul_f64(factor))
}

/// Whether a webhook may target `ip`: not loopback, private, link-local, shared (CGNAT),
/// unspecified, multicast, documentation or otherwise reserved, in IPv4 or IPv6 (IPv4-mapped
/// addresses judged as IPv4). A webhook URL is checked against every address its host
/// resolves to, so that an endpoint cannot be pointed at the service's own network (SSRF).
#[must_use]
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0)
                || (a == 198 && (18..20).contains(&b))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || first == 0x2001 && v6.segments()[1] == 0x0db8
                || first == 0x0064 && v6.segments()[1] == 0xff9b)
        }
    }
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for its next attempt (or under way).
    Pending,
    /// The endpoint answered 2xx.
    Delivered,
    /// Given up: the schedule is spent, or the endpoint answered `410 Gone`.
    Failed,
}

impl DeliveryStatus {
    /// The wire name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    /// The status of a wire name.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Delivered, Self::Failed]
            .into_iter()
            .find(|d| d.as_str() == s)
    }
}

/// One delivery of one event to one endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Delivery {
    /// The delivery's id (for redelivery).
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub id: EventId,
    /// The endpoint's URL.
    pub endpoint: String,
    /// The event delivered; its id is the `webhook-id` of every attempt.
    pub event: Event,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// Attempts made.
    pub attempts: u32,
    /// When the next attempt is due (pending ones).
    #[serde(with = "crate::rfc3339")]
    pub next_attempt_at: OffsetDateTime,
    /// The HTTP status the last attempt got.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_status: Option<u16>,
    /// Why the last attempt failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When the delivery was made from the outbox.
    #[serde(with = "crate::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it was delivered, or failed for good.
    #[serde(default, with = "crate::rfc3339::option")]
    pub settled_at: Option<OffsetDateTime>,
}

/// What became of an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settlement {
    /// Delivered (2xx).
    Delivered,
    /// Try again at this time.
    Retry(OffsetDateTime),
    /// Given up.
    Failed,
}

/// What an attempt got: the HTTP status, or why there was none, at most 512 bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attempt {
    /// The status the endpoint answered with.
    pub status: Option<u16>,
    /// Why it failed.
    pub error: Option<String>,
}

impl Attempt {
    /// The most bytes of an attempt's error a store keeps.
    pub const MAX_ERROR: usize = 512;

    /// The error as a store keeps it: its first [`Self::MAX_ERROR`] bytes, cut at a character.
    #[must_use]
    pub fn kept_error(&self) -> Option<&str> {
        self.error.as_deref().map(|e| {
            let mut end = e.len().min(Self::MAX_ERROR);
            while !e.is_char_boundary(end) {
                end -= 1;
            }
            &e[..end]
        })
    }
}

/// An endpoint that answered `410 Gone`, and is sent nothing more, by any instance, until an
/// operator enables it again ([`WebhookOutbox::enable_endpoint`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DisabledEndpoint {
    /// [`endpoint_id`] of its URL: how routes name it.
    pub id: String,
    /// Its URL without user info, query and fragment (which may carry credentials).
    pub endpoint: String,
    /// When it was disabled.
    #[serde(with = "crate::rfc3339")]
    pub disabled_at: OffsetDateTime,
    /// Why, at most 512 bytes.
    pub reason: String,
}

/// The id of an endpoint: the first 32 hex digits of the SHA-256 of its URL. Names it without
/// showing it (its URL may carry credentials).
#[must_use]
pub fn endpoint_id(url: &str) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(url.as_bytes());
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// A page of deliveries, newest first, and where the next page starts.
pub type DeliveryPage = (Vec<Delivery>, Option<EventCursor>);

/// The webhook outbox of a store: events written with their changes wait here until each
/// configured endpoint has a delivery of them; deliveries are claimed one attempt at a time,
/// with a lease, so that each is in flight on at most one instance, and one whose instance died
/// is attempted again when its lease ends (at least once).
#[async_trait::async_trait]
pub trait WebhookOutbox: Send + Sync + fmt::Debug {
    /// Takes up to `limit` events out of the outbox, oldest first, and makes a pending delivery
    /// of each for each of `endpoints`, due `now`: atomically, each event once across instances.
    /// Returns how many events it took.
    ///
    /// # Errors
    /// `Unavailable`.
    async fn fan_out(
        &self,
        endpoints: &[String],
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<usize, StoreError>;

    /// Claims up to `limit` pending deliveries due at `now`, oldest due first: counts the attempt
    /// and leases them until `now + lease` (no other claim takes them before).
    ///
    /// # Errors
    /// `Unavailable`, `Corrupt`.
    async fn claim(
        &self,
        now: OffsetDateTime,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError>;

    /// Records what a claimed attempt got.
    ///
    /// # Errors
    /// `Unavailable`.
    async fn settle(
        &self,
        id: &EventId,
        settlement: &Settlement,
        attempt: &Attempt,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// Up to `limit` deliveries (of `status`, when given), newest first, after `cursor`.
    ///
    /// # Errors
    /// `Unavailable`, `Corrupt`.
    async fn deliveries(
        &self,
        status: Option<DeliveryStatus>,
        cursor: Option<EventCursor>,
        limit: u32,
    ) -> Result<DeliveryPage, StoreError>;

    /// Makes a delivery pending again, due `now`, its attempts counted from zero; `false` when
    /// there is no such delivery.
    ///
    /// # Errors
    /// `Unavailable`.
    async fn redeliver(&self, id: &EventId, now: OffsetDateTime) -> Result<bool, StoreError>;

    /// Disables an endpoint for every instance; an endpoint disabled already keeps its first
    /// time and reason.
    ///
    /// # Errors
    /// `Unavailable`.
    async fn disable_endpoint(&self, endpoint: &DisabledEndpoint) -> Result<(), StoreError>;

    /// Enables the endpoint of `id` ([`endpoint_id`]) again; `false` when it was not disabled.
    ///
    /// # Errors
    /// `Unavailable`.
    async fn enable_endpoint(&self, id: &str) -> Result<bool, StoreError>;

    /// The disabled endpoints.
    ///
    /// # Errors
    /// `Unavailable`, `Corrupt`.
    async fn disabled_endpoints(&self) -> Result<Vec<DisabledEndpoint>, StoreError>;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// The example of the Standard Webhooks specification's reference libraries.
    #[test]
    fn signs_as_the_reference_libraries() {
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sig = signature(
            &[secret],
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn receivers_verify_signature_and_time() {
        let (secret, _) = WebhookSecret::generate().unwrap();
        let (other, _) = WebhookSecret::generate().unwrap();
        let now = std::time::SystemTime::now();
        let ts =
            i64::try_from(now.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()).unwrap();
        let five = Duration::from_secs(300);
        let header = signature(&[other.clone(), secret.clone()], "evt", ts, b"{}");
        let ok = |s: &WebhookSecret, id, t, body: &[u8], h: &str| {
            verify(std::slice::from_ref(s), id, t, body, h, now, five)
        };
        assert!(ok(&secret, "evt", ts, b"{}", &header), "either signature");
        assert!(ok(&other, "evt", ts, b"{}", &header));
        assert!(!ok(&secret, "evt", ts, b"{ }", &header), "another body");
        assert!(!ok(&secret, "evt2", ts, b"{}", &header), "another id");
        let stale = signature(std::slice::from_ref(&secret), "evt", ts - 301, b"{}");
        assert!(!ok(&secret, "evt", ts - 301, b"{}", &stale), "too old");
        assert!(!ok(&secret, "evt", ts, b"{}", ""), "no signature");
        let (third, _) = WebhookSecret::generate().unwrap();
        assert!(!ok(&third, "evt", ts, b"{}", &header), "another secret");
    }

    #[test]
    fn secrets_are_checked_and_hidden() {
        for bad in [
            "",
            "whsec_",
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "whsec_AAAA",
            "whsec_!!",
        ] {
            assert!(WebhookSecret::parse(bad).is_err(), "{bad}");
        }
        let (secret, text) = WebhookSecret::generate().unwrap();
        assert!(text.starts_with(SECRET_PREFIX));
        assert!(WebhookSecret::parse(&text).is_ok());
        assert_eq!(format!("{secret:?}"), "WebhookSecret(<redacted>)");
        let two = signature(&[secret.clone(), secret], "id", 1, b"{}");
        assert_eq!(two.split(' ').count(), 2);
    }

    #[test]
    fn the_schedule_spans_a_day() {
        let total: Duration = RETRY_SCHEDULE.iter().sum();
        assert!(total >= Duration::from_secs(24 * 3600));
        assert_eq!(retry_delay(1, 0.5), Some(Duration::from_secs(5)));
        assert!(retry_delay(1, 0.0).unwrap() < Duration::from_secs(5));
        assert_eq!(retry_delay(8, 0.5), None);
        assert_eq!(retry_delay(0, 0.5), None);
    }

    #[test]
    fn private_targets_are_refused() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["93.184.216.34", "1.1.1.1", "2606:4700::1111"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }
}
