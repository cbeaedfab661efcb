//! Unit tests of the private parts.

use super::*;

fn at(s: &str) -> OffsetDateTime {
    parse_amz_date(s.as_bytes()).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

#[test]
fn amz_date_round_trip_and_rejects() {
    let t = at("20150830T123600Z");
    assert_eq!(format_amz_date(t).as_deref(), Ok("20150830T123600Z"));
    for bad in [
        "20150830T123600",
        "20150830t123600Z",
        "20150230T123600Z",
        "20150830T126000Z",
        "20150830T235960Z",
        "2015083OT123600Z",
        "+0150830T123600Z",
        "",
    ] {
        assert_eq!(
            parse_amz_date(bad.as_bytes()),
            Err(SignatureError::MalformedDate),
            "{bad}"
        );
    }
}

#[test]
fn http_date() {
    assert_eq!(
        parse_date_header(b"Sun, 30 Aug 2015 12:36:00 GMT"),
        Ok(at("20150830T123600Z"))
    );
    assert_eq!(
        parse_date_header(b"20150830T123600Z"),
        Ok(at("20150830T123600Z"))
    );
    // Wrong weekday.
    assert_eq!(
        parse_date_header(b"Mon, 30 Aug 2015 12:36:00 GMT"),
        Err(SignatureError::MalformedDate)
    );
    assert_eq!(
        parse_date_header(b"Sun, 30 Aug 2015 12:36:00 UTC"),
        Err(SignatureError::MalformedDate)
    );
}

#[test]
fn uri_normalization() {
    let limits = Limits::default();
    let uri = |p: &str| {
        let mut out = String::new();
        push_canonical_uri(&mut out, p, &limits).map(|()| out)
    };
    assert_eq!(uri("/").as_deref(), Ok("/"));
    assert_eq!(uri("//").as_deref(), Ok("/"));
    assert_eq!(uri("//example//").as_deref(), Ok("/example/"));
    assert_eq!(uri("/example1/example2/../..").as_deref(), Ok("/"));
    assert_eq!(uri("/../../a").as_deref(), Ok("/a"));
    assert_eq!(uri("/./example").as_deref(), Ok("/example"));
    assert_eq!(uri("/a%20b/c").as_deref(), Ok("/a%2520b/c"));
    assert_eq!(uri("/%2E%2E/x").as_deref(), Ok("/%252E%252E/x"));
    assert_eq!(uri("/a b/$").as_deref(), Ok("/a%20b/%24"));
    assert_eq!(uri("a"), Err(SignatureError::MalformedPath));
    assert_eq!(uri(""), Err(SignatureError::MalformedPath));
    assert_eq!(uri("*"), Err(SignatureError::MalformedPath));
}

#[test]
fn query_canonicalization() {
    let limits = Limits::default();
    let q = |s: &str| {
        let mut out = String::new();
        push_canonical_query(&mut out, Some(s), &limits).map(|()| out)
    };
    assert_eq!(q("b=2&a=1").as_deref(), Ok("a=1&b=2"));
    assert_eq!(q("a=2&a=1&A=3").as_deref(), Ok("A=3&a=1&a=2"));
    assert_eq!(q("flag&x=").as_deref(), Ok("flag=&x="));
    assert_eq!(q("a=b+c%20d%2be").as_deref(), Ok("a=b%20c%20d%2Be"));
    assert_eq!(q("a=x=y&&").as_deref(), Ok("a=x%3Dy"));
    assert_eq!(q("k=%e1%88%b4").as_deref(), Ok("k=%E1%88%B4"));
    assert_eq!(q("a=%zz"), Err(SignatureError::MalformedQuery));
    assert_eq!(q("a=%4"), Err(SignatureError::MalformedQuery));
    assert_eq!(q("a=%"), Err(SignatureError::MalformedQuery));
    assert_eq!(q("").as_deref(), Ok(""));
}

#[test]
fn header_collapse() {
    let mut out = String::new();
    push_collapsed(&mut out, "  a \t  b   c ");
    assert_eq!(out, "a b c");
}

#[test]
fn signing_key_matches_aws_documentation() {
    // AWS General Reference, "Examples of how to derive a signing key for Signature Version 4":
    // secret wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY, 20120215, us-east-1, iam.
    let key = SigningKey::derive(
        b"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        "20120215",
        "us-east-1",
        "iam",
    );
    // The documented kSigning is f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d;
    // a key signs as HMAC under those bytes.
    let expected_key = hmac::Key::new(
        hmac::HMAC_SHA256,
        &[
            0xf4, 0x78, 0x0e, 0x2d, 0x9f, 0x65, 0xfa, 0x89, 0x5f, 0x9c, 0x67, 0xb3, 0x2c, 0xe1,
            0xba, 0xf0, 0xb0, 0xd8, 0xa4, 0x35, 0x05, 0xa0, 0x00, 0xa1, 0xa9, 0xe0, 0x90, 0xd4,
            0x14, 0xdb, 0x40, 0x4d,
        ],
    );
    let expected = hmac::sign(&expected_key, b"probe");
    assert_eq!(key.sign("probe").as_slice(), expected.as_ref());
}

#[test]
fn hex_decoding_is_strict() {
    let good = "a".repeat(64);
    assert!(decode_hex32(&good).is_some());
    assert!(decode_hex32(&"A".repeat(64)).is_none());
    assert!(decode_hex32(&"g".repeat(64)).is_none());
    assert!(decode_hex32(&"a".repeat(63)).is_none());
}
