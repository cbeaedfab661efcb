//! Behaviour of SigV4 signing and verification beyond the AWS vectors: tampering, clock skew,
//! required headers, payload rules, nonces, limits, and parsers that never panic.

// Test helpers outside #[test] fns: failing loudly is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use keyward_core::sigv4::{
    AccessKey, Authorization, AuthorizationFault, Limit, Limits, Payload, ScopeField,
    SignableRequest, SignatureError, SignatureErrorKind, Signer, SigningKey, SigningOptions,
    VerifiedSignature, canonical_request, parse_amz_date, verify_signature,
};
use proptest::prelude::*;
use time::{Duration as TimeDelta, OffsetDateTime};

const KEY_ID: &str = "AbCdEf123456";
const SECRET: &[u8] = b"kw_test_AbCdEf123456_q0uBbV2mZ9yTfJ4wXk7sLr1pHc3dGe8nA5vQ0zW6oIu";

fn t0() -> OffsetDateTime {
    parse_amz_date(b"20250115T093000Z").expect("date")
}

/// A request as it travels: owned, so tests can tamper with any part.
#[derive(Debug, Clone)]
struct Wire {
    method: String,
    path: String,
    query: Option<String>,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

impl Wire {
    fn new(method: &str, path: &str, query: Option<&str>, body: &[u8]) -> Self {
        Self {
            method: method.to_owned(),
            path: path.to_owned(),
            query: query.map(str::to_owned),
            headers: vec![
                ("Host".to_owned(), b"api.example.com".to_vec()),
                ("Content-Type".to_owned(), b"application/json".to_vec()),
            ],
            body: body.to_vec(),
        }
    }

    fn header(mut self, name: &str, value: &[u8]) -> Self {
        self.headers.push((name.to_owned(), value.to_vec()));
        self
    }

    fn pairs(&self) -> Vec<(&str, &[u8])> {
        self.headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_slice()))
            .collect()
    }

    fn set(&mut self, name: &str, value: &str) {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers
            .push((name.to_owned(), value.as_bytes().to_vec()));
    }

    fn sign_with(mut self, signer: &Signer, at: OffsetDateTime) -> Result<Self, SignatureError> {
        let credentials = AccessKey::new(KEY_ID, SECRET)?;
        let pairs = self.pairs();
        let request = SignableRequest::new(
            &self.method,
            &self.path,
            self.query.as_deref(),
            &pairs,
            Payload::Bytes(&self.body),
        );
        let out = signer.sign(&credentials, &request, at)?;
        let set: Vec<(String, String)> = out
            .headers()
            .into_iter()
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect();
        for (n, v) in set {
            self.set(&n, &v);
        }
        Ok(self)
    }

    fn signed(self, at: OffsetDateTime) -> Self {
        let signer = Signer::new("us-east-1", "keyward").expect("signer");
        self.sign_with(&signer, at).expect("sign")
    }

    fn verify_with(
        &self,
        secret: &[u8],
        options: &SigningOptions,
        now: OffsetDateTime,
    ) -> Result<VerifiedSignature, SignatureError> {
        let pairs = self.pairs();
        let request = SignableRequest::new(
            &self.method,
            &self.path,
            self.query.as_deref(),
            &pairs,
            Payload::Bytes(&self.body),
        );
        let value = request.authorization_value()?.unwrap_or_default();
        let authorization = Authorization::parse(value)?;
        verify_signature(&request, &authorization, secret, options, now)
    }

    fn verify(&self, now: OffsetDateTime) -> Result<VerifiedSignature, SignatureError> {
        self.verify_with(SECRET, &SigningOptions::default(), now)
    }
}

fn sample() -> Wire {
    Wire::new(
        "POST",
        "/v1/reports/q3",
        Some("format=json&limit=10"),
        br#"{"a":1}"#,
    )
    .header("X-Custom", b"  some   value ")
}

#[test]
fn round_trip() {
    let wire = sample().signed(t0());
    let verified = wire.verify(t0()).expect("verifies");
    assert_eq!(verified.access_key_id(), KEY_ID);
    assert_eq!(verified.timestamp(), t0());
    assert_eq!(verified.nonce(), None);
    assert_eq!(
        verified.signed_headers(),
        ["content-type", "host", "x-amz-date", "x-custom"].map(String::from)
    );
    assert!(verified.replay_key().starts_with("sigv4:s:"));
}

#[test]
fn tampering_is_invalid() {
    let good = sample().signed(t0());
    let mut cases: Vec<(&str, Wire)> = Vec::new();

    let mut w = good.clone();
    w.method = "PUT".to_owned();
    cases.push(("method", w));
    let mut w = good.clone();
    w.path = "/v1/reports/q4".to_owned();
    cases.push(("path", w));
    let mut w = good.clone();
    w.path = "/v1/reports/q3/".to_owned();
    cases.push(("path trailing slash", w));
    let mut w = good.clone();
    w.query = Some("format=json&limit=11".to_owned());
    cases.push(("query value", w));
    let mut w = good.clone();
    w.query = Some("format=json&limit=10&admin=1".to_owned());
    cases.push(("query added", w));
    let mut w = good.clone();
    w.query = None;
    cases.push(("query removed", w));
    let mut w = good.clone();
    w.set("X-Custom", "other value");
    cases.push(("signed header", w));
    let mut w = good.clone();
    w.set("Host", "evil.example.com");
    cases.push(("host", w));
    let mut w = good.clone();
    w.headers.push(("X-Custom".to_owned(), b"second".to_vec()));
    cases.push(("signed header repeated", w));
    let mut w = good.clone();
    w.body = br#"{"a":2}"#.to_vec();
    cases.push(("body", w));
    let mut w = good.clone();
    w.body.clear();
    cases.push(("body removed", w));

    for (what, wire) in cases {
        let err = wire.verify(t0()).expect_err(what);
        assert_eq!(err, SignatureError::SignatureMismatch, "{what}");
        assert_eq!(err.kind(), SignatureErrorKind::Invalid, "{what}");
    }

    // Equivalent forms still verify: unsigned headers, header case, whitespace, query order.
    let mut w = good.clone();
    w.headers
        .push(("User-Agent".to_owned(), b"curl/8".to_vec()));
    w.set("x-custom", "some value");
    w.query = Some("limit=10&format=json".to_owned());
    w.path = "/v1//reports/./q3".to_owned();
    assert!(w.verify(t0()).is_ok());
}

#[test]
fn wrong_secret_is_invalid() {
    let wire = sample().signed(t0());
    let err = wire
        .verify_with(b"another secret", &SigningOptions::default(), t0())
        .unwrap_err();
    assert_eq!(err, SignatureError::SignatureMismatch);
}

#[test]
fn skew_boundary_is_inclusive_both_ways() {
    let wire = sample().signed(t0());
    let s = |n: i64| TimeDelta::seconds(n);
    // Server clock ahead of the request (stale request).
    assert!(wire.verify(t0() + s(300)).is_ok());
    assert_eq!(
        wire.verify(t0() + s(301)).unwrap_err(),
        SignatureError::Expired {
            offset_seconds: -301
        }
    );
    // Server clock behind the request (request from the future).
    assert!(wire.verify(t0() - s(300)).is_ok());
    let err = wire.verify(t0() - s(301)).unwrap_err();
    assert_eq!(
        err,
        SignatureError::Expired {
            offset_seconds: 301
        }
    );
    assert_eq!(err.kind(), SignatureErrorKind::Expired);
    // Just past the boundary, by a nanosecond.
    let just_past = t0() + s(300) + TimeDelta::nanoseconds(1);
    assert_eq!(
        wire.verify(just_past).unwrap_err().kind(),
        SignatureErrorKind::Expired
    );
    // A configured window.
    let options = SigningOptions::default().with_max_skew(Duration::from_secs(30));
    assert!(wire.verify_with(SECRET, &options, t0() + s(30)).is_ok());
    assert!(wire.verify_with(SECRET, &options, t0() + s(31)).is_err());
    assert_eq!(options.replay_ttl(), Duration::from_secs(60));
    assert_eq!(
        SigningOptions::default().replay_ttl(),
        Duration::from_secs(600)
    );
    // A window too large for `time::Duration` saturates instead of overflowing.
    let huge = SigningOptions::default().with_max_skew(Duration::MAX);
    assert!(
        wire.verify_with(SECRET, &huge, t0() + TimeDelta::days(365 * 100))
            .is_ok()
    );
    assert_eq!(huge.replay_ttl(), Duration::MAX);
}

#[test]
fn stale_and_tampered_is_invalid_not_expired() {
    let mut wire = sample().signed(t0());
    wire.body = b"tampered".to_vec();
    let err = wire.verify(t0() + TimeDelta::hours(2)).unwrap_err();
    assert_eq!(err, SignatureError::SignatureMismatch);
}

#[test]
fn scope_must_match_server() {
    let wire = sample().signed(t0());
    let other_region = SigningOptions::new("eu-west-1", "keyward").expect("options");
    assert_eq!(
        wire.verify_with(SECRET, &other_region, t0()).unwrap_err(),
        SignatureError::ScopeMismatch(ScopeField::Region)
    );
    let other_service = SigningOptions::new("us-east-1", "execute-api").expect("options");
    assert_eq!(
        wire.verify_with(SECRET, &other_service, t0()).unwrap_err(),
        SignatureError::ScopeMismatch(ScopeField::Service)
    );
    // The scope day must be the day of x-amz-date.
    let mut w = sample().signed(t0());
    let auth = String::from_utf8(
        w.headers
            .iter()
            .find(|(n, _)| n == "Authorization")
            .unwrap()
            .1
            .clone(),
    )
    .unwrap()
    .replace("/20250115/", "/20250116/");
    w.set("Authorization", &auth);
    assert_eq!(
        w.verify(t0()).unwrap_err(),
        SignatureError::ScopeMismatch(ScopeField::Date)
    );
}

/// Builds an Authorization header for `wire` by hand, signing exactly `signed`.
fn hand_signed(wire: &Wire, signed: &[&str], amz_date: &str) -> String {
    let signed: Vec<String> = signed.iter().map(|s| s.to_string()).collect();
    let pairs = wire.pairs();
    let request = SignableRequest::new(
        &wire.method,
        &wire.path,
        wire.query.as_deref(),
        &pairs,
        Payload::Bytes(&wire.body),
    );
    let creq = canonical_request(&request, &signed, &Limits::default()).expect("canonical");
    let day = &amz_date[..8];
    let scope = format!("{day}/us-east-1/keyward/aws4_request");
    let hash = ring_hex(creq.as_bytes());
    let sts = format!("AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{hash}");
    let sig = SigningKey::derive(SECRET, day, "us-east-1", "keyward").sign(&sts);
    let sig: String = sig.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "AWS4-HMAC-SHA256 Credential={KEY_ID}/{scope}, SignedHeaders={}, Signature={sig}",
        signed.join(";")
    )
}

fn ring_hex(bytes: &[u8]) -> String {
    // SHA-256 through the public API: the payload hash of `bytes`.
    Payload::Bytes(bytes)
        .sha256()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn host_and_date_must_be_signed() {
    let base = sample().header("X-Amz-Date", b"20250115T093000Z");

    let mut w = base.clone();
    let auth = hand_signed(&w, &["content-type", "x-amz-date"], "20250115T093000Z");
    w.set("Authorization", &auth);
    assert_eq!(
        w.verify(t0()).unwrap_err(),
        SignatureError::RequiredHeaderNotSigned("host")
    );

    let mut w = base.clone();
    let auth = hand_signed(&w, &["content-type", "host"], "20250115T093000Z");
    w.set("Authorization", &auth);
    assert_eq!(
        w.verify(t0()).unwrap_err(),
        SignatureError::RequiredHeaderNotSigned("x-amz-date")
    );

    // No date header at all.
    let mut w = sample();
    let auth = hand_signed(&w, &["host"], "20250115T093000Z");
    w.set("Authorization", &auth);
    assert_eq!(w.verify(t0()).unwrap_err(), SignatureError::MissingDate);
}

#[test]
fn date_header_may_replace_x_amz_date() {
    let mut w = sample().header("Date", b"Wed, 15 Jan 2025 09:30:00 GMT");
    let auth = hand_signed(&w, &["date", "host"], "20250115T093000Z");
    w.set("Authorization", &auth);
    assert!(w.verify(t0()).is_ok());

    // Present but unsigned.
    let mut w = sample().header("Date", b"Wed, 15 Jan 2025 09:30:00 GMT");
    let auth = hand_signed(&w, &["host"], "20250115T093000Z");
    w.set("Authorization", &auth);
    assert_eq!(
        w.verify(t0()).unwrap_err(),
        SignatureError::RequiredHeaderNotSigned("date")
    );

    // An x-amz-date added later takes precedence and is unsigned: refused.
    let mut w = sample().header("Date", b"Wed, 15 Jan 2025 09:30:00 GMT");
    let auth = hand_signed(&w, &["date", "host"], "20250115T093000Z");
    w.set("Authorization", &auth);
    w.set("X-Amz-Date", "20250115T093000Z");
    assert_eq!(
        w.verify(t0()).unwrap_err(),
        SignatureError::RequiredHeaderNotSigned("x-amz-date")
    );
}

#[test]
fn malformed_or_repeated_date_is_invalid() {
    let mut w = sample().signed(t0());
    w.set("X-Amz-Date", "2025-01-15T09:30:00Z");
    assert_eq!(w.verify(t0()).unwrap_err(), SignatureError::MalformedDate);
    let mut w = sample().signed(t0());
    w.headers
        .push(("x-amz-date".to_owned(), b"20250115T093000Z".to_vec()));
    assert_eq!(w.verify(t0()).unwrap_err(), SignatureError::MalformedDate);
}

#[test]
fn unsigned_payload_is_refused() {
    // The signer refuses to sign a request that claims an unsigned payload.
    let signer = Signer::new("us-east-1", "keyward").expect("signer");
    let w = sample().header("X-Amz-Content-Sha256", b"UNSIGNED-PAYLOAD");
    assert_eq!(
        w.clone().sign_with(&signer, t0()).unwrap_err(),
        SignatureError::UnsignedPayload
    );

    // A server refuses it even when correctly signed as a header.
    let mut w = sample().header("X-Amz-Content-Sha256", b"UNSIGNED-PAYLOAD");
    let auth = hand_signed(
        &w.clone().header("X-Amz-Date", b"20250115T093000Z"),
        &["host", "x-amz-content-sha256", "x-amz-date"],
        "20250115T093000Z",
    );
    w = w.header("X-Amz-Date", b"20250115T093000Z");
    w.set("Authorization", &auth);
    assert_eq!(w.verify(t0()).unwrap_err(), SignatureError::UnsignedPayload);

    let mut w = sample().signed(t0());
    w.set("X-Amz-Content-Sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD");
    assert_eq!(w.verify(t0()).unwrap_err(), SignatureError::UnsignedPayload);
}

#[test]
fn content_sha256_header() {
    let signer = Signer::new("us-east-1", "keyward")
        .expect("signer")
        .with_content_sha256_header(true);
    let w = sample().sign_with(&signer, t0()).expect("sign");
    let verified = w.verify(t0()).expect("verifies");
    assert!(
        verified
            .signed_headers()
            .iter()
            .any(|h| h == "x-amz-content-sha256")
    );

    let mut tampered = w.clone();
    tampered.body = b"other".to_vec();
    assert_eq!(
        tampered.verify(t0()).unwrap_err(),
        SignatureError::ContentSha256Mismatch
    );

    let mut bad = w.clone();
    bad.set("X-Amz-Content-Sha256", "XYZ");
    assert_eq!(
        bad.verify(t0()).unwrap_err(),
        SignatureError::MalformedContentSha256
    );
}

#[test]
fn signed_nonce_is_the_replay_key() {
    let a = sample().header("X-Keyward-Nonce", b"  n-1 ").signed(t0());
    let b = sample().header("X-Keyward-Nonce", b"n-2").signed(t0());
    let va = a.verify(t0()).expect("a");
    let vb = b.verify(t0()).expect("b");
    assert_eq!(va.nonce(), Some("n-1"));
    assert!(va.replay_key().starts_with("sigv4:n:"));
    assert_ne!(va.replay_key(), vb.replay_key());
    assert_eq!(va.replay_key().len(), vb.replay_key().len());

    // The same request twice has the same replay key.
    let again = sample().header("X-Keyward-Nonce", b"n-1").signed(t0());
    assert_eq!(
        again.verify(t0()).expect("again").replay_key(),
        va.replay_key()
    );

    // A nonce added after signing is not signed: ignored, the signature is the replay key.
    let plain = sample().signed(t0());
    let with_unsigned = plain.clone().header("X-Keyward-Nonce", b"attacker");
    let v = with_unsigned.verify(t0()).expect("verifies");
    assert_eq!(v.nonce(), None);
    assert_eq!(
        v.replay_key(),
        plain.verify(t0()).expect("plain").replay_key()
    );

    // Over-long nonce.
    let long = sample()
        .header("X-Keyward-Nonce", "n".repeat(300).as_bytes())
        .signed(t0());
    assert_eq!(
        long.verify(t0()).unwrap_err(),
        SignatureError::TooLarge(Limit::Nonce)
    );
}

#[test]
fn signed_header_missing_from_request() {
    let mut w = sample().signed(t0());
    w.headers.retain(|(n, _)| n != "X-Custom");
    assert_eq!(
        w.verify(t0()).unwrap_err(),
        SignatureError::SignedHeaderAbsent("x-custom".to_owned())
    );
}

#[test]
fn non_utf8_signed_header_is_invalid_and_unsigned_is_ignored() {
    let signer = Signer::new("us-east-1", "keyward").expect("signer");
    let w = sample().header("X-Bin", &[0xff, 0xfe]);
    assert_eq!(
        w.sign_with(&signer, t0()).unwrap_err(),
        SignatureError::MalformedHeaderValue("x-bin".to_owned())
    );
    let w = sample().signed(t0()).header("X-Bin", &[0xff, 0xfe]);
    assert!(w.verify(t0()).is_ok());
}

#[test]
fn signer_requires_host_and_valid_inputs() {
    let signer = Signer::new("us-east-1", "keyward").expect("signer");
    let mut w = sample();
    w.headers.retain(|(n, _)| n != "Host");
    assert_eq!(
        w.sign_with(&signer, t0()).unwrap_err(),
        SignatureError::MissingHost
    );
    assert_eq!(
        Signer::new("us/east", "x").unwrap_err(),
        SignatureError::InvalidRegion
    );
    assert_eq!(
        Signer::new("us-east-1", "").unwrap_err(),
        SignatureError::InvalidService
    );
    assert_eq!(
        AccessKey::new("a/b", b"s").unwrap_err(),
        SignatureError::InvalidAccessKeyId
    );
    assert_eq!(
        AccessKey::new("", b"s").unwrap_err(),
        SignatureError::InvalidAccessKeyId
    );
    let w = sample().header("Bad Name", b"x");
    assert_eq!(
        w.sign_with(&signer, t0()).unwrap_err(),
        SignatureError::MalformedHeaderName
    );
    let mut w = sample();
    w.method = "GET /".to_owned();
    assert_eq!(
        w.sign_with(&signer, t0()).unwrap_err(),
        SignatureError::MalformedMethod
    );
    let mut w = sample();
    w.query = Some("a=%G0".to_owned());
    assert_eq!(
        w.sign_with(&signer, t0()).unwrap_err(),
        SignatureError::MalformedQuery
    );
}

#[test]
fn signer_replaces_its_own_headers() {
    // A stale X-Amz-Date or a forged Authorization on the way in is replaced, not duplicated.
    let w = sample()
        .header("X-Amz-Date", b"20000101T000000Z")
        .header("Authorization", b"Bearer something")
        .signed(t0());
    assert_eq!(
        w.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("x-amz-date"))
            .count(),
        1
    );
    assert!(w.verify(t0()).is_ok());
}

#[test]
fn limits() {
    let signed = sample().signed(t0());

    let mut w = signed.clone();
    for i in 0..200 {
        w.headers.push((format!("x-pad-{i}"), b"v".to_vec()));
    }
    assert_eq!(
        w.verify(t0()).unwrap_err(),
        SignatureError::TooLarge(Limit::Headers)
    );

    let mut w = signed.clone();
    w.path = format!("/{}", "a".repeat(9000));
    assert_eq!(
        w.verify(t0()).unwrap_err(),
        SignatureError::TooLarge(Limit::Path)
    );

    let mut w = signed.clone();
    w.query = Some("a=".repeat(5000));
    assert_eq!(
        w.verify(t0()).unwrap_err(),
        SignatureError::TooLarge(Limit::Query)
    );

    let mut w = signed.clone();
    w.query = Some(vec!["a=1"; 300].join("&"));
    assert_eq!(
        w.verify(t0()).unwrap_err(),
        SignatureError::TooLarge(Limit::QueryParameters)
    );

    let mut w = signed.clone();
    w.set("X-Custom", &"v".repeat(9000));
    assert_eq!(
        w.verify(t0()).unwrap_err(),
        SignatureError::TooLarge(Limit::HeaderValue)
    );

    let mut tight = Limits::default();
    tight.max_headers = 3;
    let options = SigningOptions::default().with_limits(tight);
    assert_eq!(
        signed.verify_with(SECRET, &options, t0()).unwrap_err(),
        SignatureError::TooLarge(Limit::Headers)
    );

    let long = format!("AWS4-HMAC-SHA256 Credential={}", "a".repeat(9000));
    assert_eq!(
        Authorization::parse(long.as_bytes()).unwrap_err(),
        SignatureError::TooLarge(Limit::Authorization)
    );
    let many: Vec<String> = (0..100).map(|i| format!("h{i:03}")).collect();
    let auth = format!(
        "AWS4-HMAC-SHA256 Credential=AKID/20150830/r/s/aws4_request, SignedHeaders={}, Signature={}",
        many.join(";"),
        "0".repeat(64)
    );
    assert_eq!(
        Authorization::parse(auth.as_bytes()).unwrap_err(),
        SignatureError::TooLarge(Limit::SignedHeaders)
    );
}

#[test]
fn multiple_authorization_headers() {
    let w = sample()
        .signed(t0())
        .header("authorization", b"AWS4-HMAC-SHA256 x");
    assert_eq!(
        w.verify(t0()).unwrap_err(),
        SignatureError::MalformedAuthorization(AuthorizationFault::Multiple)
    );
}

#[test]
fn authorization_parsing() {
    const SIG: &str = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";
    let ok = |s: &str| Authorization::parse(s.as_bytes());
    let good = format!(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature={SIG}"
    );
    let a = ok(&good).expect("good");
    assert_eq!(a.access_key_id(), "AKIDEXAMPLE");
    assert_eq!(a.scope_date(), "20150830");
    assert_eq!(a.region(), "us-east-1");
    assert_eq!(a.service(), "service");
    assert_eq!(a.signed_headers(), ["host", "x-amz-date"].map(String::from));
    assert_eq!(a.to_string(), good);
    assert_eq!(good.parse::<Authorization>(), Ok(a.clone()));
    assert!(Authorization::is_sigv4(good.as_bytes()));
    assert!(!Authorization::is_sigv4(b"Bearer kw_live_x"));
    assert!(!Authorization::is_sigv4(b"AWS4-HMAC-SHA256X"));

    // Any order, no spaces, tabs.
    let reordered = format!(
        "AWS4-HMAC-SHA256\tSignature={SIG},Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request,SignedHeaders=host;x-amz-date"
    );
    assert_eq!(ok(&reordered), Ok(a));

    use AuthorizationFault as F;
    let m = SignatureError::MalformedAuthorization;
    let cred = "Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request";
    let sh = "SignedHeaders=host;x-amz-date";
    let sig = format!("Signature={SIG}");
    let cases: Vec<(String, SignatureError)> = vec![
        ("Bearer abc".into(), SignatureError::UnsupportedAlgorithm),
        (
            "AWS4-HMAC-SHA512 x=y".into(),
            SignatureError::UnsupportedAlgorithm,
        ),
        ("AWS4-HMAC-SHA256".into(), m(F::Syntax)),
        ("AWS4-HMAC-SHA256 ".into(), m(F::Syntax)),
        (
            format!("AWS4-HMAC-SHA256 {cred}, {sh}"),
            m(F::MissingSignature),
        ),
        (
            format!("AWS4-HMAC-SHA256 {cred}, {sig}"),
            m(F::MissingSignedHeaders),
        ),
        (
            format!("AWS4-HMAC-SHA256 {sh}, {sig}"),
            m(F::MissingCredential),
        ),
        (
            format!("AWS4-HMAC-SHA256 {cred}, {sh}, {sig}, {sig}"),
            m(F::DuplicateComponent),
        ),
        (
            format!("AWS4-HMAC-SHA256 {cred}, {sh}, {sig}, Foo=bar"),
            m(F::UnknownComponent),
        ),
        (
            format!("AWS4-HMAC-SHA256 {cred}, {sh}, {sig},"),
            m(F::Syntax),
        ),
        (
            format!(
                "AWS4-HMAC-SHA256 {cred}, {sh}, Signature={}",
                SIG.to_uppercase()
            ),
            m(F::Signature),
        ),
        (
            format!("AWS4-HMAC-SHA256 {cred}, {sh}, Signature={}", &SIG[..62]),
            m(F::Signature),
        ),
        (
            format!("AWS4-HMAC-SHA256 {cred}, SignedHeaders=x-amz-date;host, {sig}"),
            m(F::SignedHeaders),
        ),
        (
            format!("AWS4-HMAC-SHA256 {cred}, SignedHeaders=host;host, {sig}"),
            m(F::SignedHeaders),
        ),
        (
            format!("AWS4-HMAC-SHA256 {cred}, SignedHeaders=Host, {sig}"),
            m(F::SignedHeaders),
        ),
        (
            format!("AWS4-HMAC-SHA256 {cred}, SignedHeaders=, {sig}"),
            m(F::SignedHeaders),
        ),
        (
            format!("AWS4-HMAC-SHA256 {cred}, SignedHeaders=host;;x, {sig}"),
            m(F::SignedHeaders),
        ),
        (
            format!("AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/service, {sh}, {sig}"),
            m(F::Credential),
        ),
        (
            format!(
                "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/service/aws4_request/x, {sh}, {sig}"
            ),
            m(F::Credential),
        ),
        (
            format!(
                "AWS4-HMAC-SHA256 Credential=AKID/20150832/us-east-1/service/aws4_request, {sh}, {sig}"
            ),
            m(F::Credential),
        ),
        (
            format!(
                "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/service/aws5_request, {sh}, {sig}"
            ),
            m(F::Credential),
        ),
        (
            format!(
                "AWS4-HMAC-SHA256 Credential=/20150830/us-east-1/service/aws4_request, {sh}, {sig}"
            ),
            m(F::Credential),
        ),
        (
            format!(
                "AWS4-HMAC-SHA256 Credential=A K/20150830/us-east-1/service/aws4_request, {sh}, {sig}"
            ),
            m(F::Credential),
        ),
        ("AWS4-HMAC-SHA256 Credential=\u{e9}".into(), m(F::Syntax)),
    ];
    for (input, expected) in cases {
        assert_eq!(ok(&input), Err(expected), "{input}");
    }
    assert_eq!(Authorization::parse(&[0xff, 0x00]), Err(m(F::Syntax)));
}

// -------------------------------------------------------------------------------------------
// Properties
// -------------------------------------------------------------------------------------------

fn path_strategy() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        "([a-zA-Z0-9._~-]{0,6}|%[0-9A-F]{2}|\\.|\\.\\.|[ $!*'()]|é)",
        0..6,
    )
    .prop_map(|segs| format!("/{}", segs.join("/")))
}

fn query_strategy() -> impl Strategy<Value = Option<String>> {
    proptest::option::of("([a-zA-Z0-9=&+._~ -]|%[0-9A-Fa-f]{2}|ü){0,30}")
}

fn headers_strategy() -> impl Strategy<Value = Vec<(String, Vec<u8>)>> {
    proptest::collection::vec(("x-p-[a-z0-9]{1,6}", "[ -~]{0,20}"), 0..5)
        .prop_map(|hs| hs.into_iter().map(|(n, v)| (n, v.into_bytes())).collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = Authorization::parse(&bytes);
        let _ = parse_amz_date(&bytes);
    }

    #[test]
    fn authorization_parser_never_panics_on_near_misses(
        s in "AWS4-HMAC-SHA256[ \t]{0,2}((Credential|SignedHeaders|Signature|X)=[a-zA-Z0-9/;_ -]{0,70}[, ]{0,2}){0,4}"
    ) {
        let _ = Authorization::parse(s.as_bytes());
    }

    #[test]
    fn verify_never_panics(
        method in "[A-Z]{0,8}|[ -~]{0,8}",
        path in "[ -~]{0,40}",
        query in proptest::option::of("[ -~]{0,40}"),
        headers in proptest::collection::vec(("[ -~]{0,12}", proptest::collection::vec(any::<u8>(), 0..20)), 0..6),
        auth in "AWS4-HMAC-SHA256 Credential=[A-Za-z0-9]{1,4}/2025011[0-9]/us-east-1/keyward/aws4_request, SignedHeaders=(date|host|x-amz-date|x-keyward-nonce|x-amz-content-sha256|[a-z]{1,3})(;[a-z-]{1,12}){0,3}, Signature=[0-9a-f]{64}",
        body in proptest::collection::vec(any::<u8>(), 0..32),
    ) {
        let pairs: Vec<(&str, &[u8])> = headers.iter().map(|(n, v)| (n.as_str(), v.as_slice())).collect();
        let request = SignableRequest::new(&method, &path, query.as_deref(), &pairs, Payload::Bytes(&body));
        if let Ok(a) = Authorization::parse(auth.as_bytes()) {
            let result = verify_signature(&request, &a, SECRET, &SigningOptions::default(), t0());
            prop_assert!(result.is_err());
            let _ = canonical_request(&request, a.signed_headers(), &Limits::default());
        }
        let signer = Signer::new("us-east-1", "keyward").expect("signer");
        let credentials = AccessKey::new(KEY_ID, SECRET).expect("credentials");
        let _ = signer.sign(&credentials, &request, t0());
    }

    #[test]
    fn sign_then_verify_round_trips(
        method in "GET|POST|PUT|DELETE|PATCH",
        path in path_strategy(),
        query in query_strategy(),
        headers in headers_strategy(),
        body in proptest::collection::vec(any::<u8>(), 0..64),
        nonce in proptest::option::of("[a-zA-Z0-9]{1,16}"),
        offset in -300i64..=300,
    ) {
        let mut wire = Wire::new(&method, &path, query.as_deref(), &body);
        wire.headers.extend(headers);
        if let Some(nonce) = &nonce {
            wire = wire.header("X-Keyward-Nonce", nonce.as_bytes());
        }
        let signed = wire.signed(t0());
        let verified = signed.verify(t0() + TimeDelta::seconds(offset));
        prop_assert!(verified.is_ok(), "{verified:?}");
        let verified = verified.unwrap();
        prop_assert_eq!(verified.nonce(), nonce.as_deref());

        // Any change of body is detected.
        let mut tampered = signed.clone();
        tampered.body.push(0);
        prop_assert_eq!(tampered.verify(t0()).unwrap_err(), SignatureError::SignatureMismatch);
        // Any change of method is detected.
        let mut tampered = signed.clone();
        tampered.method.push('X');
        prop_assert_eq!(tampered.verify(t0()).unwrap_err(), SignatureError::SignatureMismatch);
        // A new path segment is detected.
        let mut tampered = signed.clone();
        tampered.path = format!("{}/extra", signed.path.trim_end_matches('/'));
        prop_assert_eq!(tampered.verify(t0()).unwrap_err(), SignatureError::SignatureMismatch);
        // A new query parameter is detected.
        let mut tampered = signed.clone();
        tampered.query = Some(match &signed.query { Some(q) => format!("{q}&zz=1"), None => "zz=1".to_owned() });
        prop_assert_eq!(tampered.verify(t0()).unwrap_err(), SignatureError::SignatureMismatch);
        // A signed header's value is detected.
        let mut tampered = signed.clone();
        tampered.set("Content-Type", "text/plain");
        prop_assert_eq!(tampered.verify(t0()).unwrap_err(), SignatureError::SignatureMismatch);
    }
}
