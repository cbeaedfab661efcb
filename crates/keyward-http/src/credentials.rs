//! Framework-neutral credential extraction: which key, if any, a request presents.
//!
//! Every adapter calls [`extract`] with the raw bytes of the first value of its configured
//! `Authorization` and `X-API-Key` headers, so that every web stack reads credentials the same
//! way (DESIGN.md §6):
//!
//! - `Authorization: Bearer <key>`, with the scheme matched case-insensitively (RFC 9110 §11.1);
//! - `X-API-Key: <key>` (the header belongs to keyward: whatever it carries is a keyward key);
//! - when both carry a key, `Authorization` wins;
//! - a bearer token that is not shaped like a key of this deployment (a JWT, an opaque OAuth
//!   token) is [`Credential::NotOurs`], so that other authentication can run after keyward;
//! - `Authorization: AWS4-HMAC-SHA256 …` is [`Credential::Signed`]: the seam where signed
//!   requests are verified (an adapter that does not verify signatures treats it as
//!   [`Credential::NotOurs`]);
//! - bytes that are not UTF-8, and blank values, are [`Credential::Invalid`]: they get
//!   `API_KEY_INVALID`, never a 500.

use std::fmt;

use keyward_core::key::KeyFormat;

/// The scheme of SigV4-signed requests.
pub(crate) const SIGV4_SCHEME: &str = "AWS4-HMAC-SHA256";

/// The default name of the header that carries a keyward key, lower-case as HTTP/2 writes it.
pub const API_KEY_HEADER: &str = "x-api-key";

/// The token of an `Authorization: Bearer <token>` value (scheme matched case-insensitively,
/// spaces and tabs around it ignored), whatever the token is: `None` for another scheme, a
/// blank token, or bytes that are not UTF-8. For credentials that are not keys (a server's
/// static admin token); keys go through [`extract`].
#[must_use]
pub fn bearer_token(raw: &[u8]) -> Option<&str> {
    let value = trim_sp(std::str::from_utf8(raw).ok()?);
    let (scheme, rest) = value.split_at(value.bytes().position(is_sp)?);
    let token = trim_sp(rest);
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Why a presented credential cannot even be looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidCredential {
    /// The header value is not UTF-8.
    NotUtf8,
    /// The header is present but carries nothing (or `Bearer` with no token).
    Blank,
}

impl InvalidCredential {
    /// A stable label for logs and metrics.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotUtf8 => "not_utf8",
            Self::Blank => "blank",
        }
    }
}

impl fmt::Display for InvalidCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a request presents. `Debug` never shows the key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Credential<'a> {
    /// No credential at all: `API_KEY_MISSING` where one is required.
    None,
    /// A keyward key to verify (from a bearer token or the API-key header), trimmed.
    Key(&'a str),
    /// `Authorization` carries something that is not ours (another scheme, or a bearer token
    /// that is not key-shaped for this deployment). Leave the request to other authentication;
    /// where a key is required it is `API_KEY_MISSING`.
    NotOurs,
    /// A SigV4-signed request: the whole `Authorization` value.
    Signed(&'a str),
    /// A credential header keyward owns is present but unusable: `API_KEY_INVALID`.
    Invalid(InvalidCredential),
}

impl fmt::Debug for Credential<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Key(_) => f.write_str("Key(***)"),
            Self::NotOurs => f.write_str("NotOurs"),
            Self::Signed(_) => f.write_str("Signed(***)"),
            Self::Invalid(r) => write!(f, "Invalid({r})"),
        }
    }
}

impl Credential<'_> {
    /// Whether the request presents something keyward must answer for (a key, a signature or an
    /// invalid keyward credential), as opposed to nothing or someone else's token.
    #[must_use]
    pub fn is_presented(&self) -> bool {
        matches!(self, Self::Key(_) | Self::Signed(_) | Self::Invalid(_))
    }
}

/// Whether `token` looks like a key of `format`'s issuer: `<prefix>_…`. Deliberately loose
/// (no checksum, no env check): a key of another environment or with a typo is still ours and
/// gets `API_KEY_INVALID` rather than being passed on.
fn ours(format: &KeyFormat, token: &str) -> bool {
    token
        .strip_prefix(format.prefix())
        .is_some_and(|rest| rest.starts_with('_'))
}

/// Logs, at debug level, why a presented key was refused: the internal reason and the public
/// code, and the key only in its redacted form (`prefix_env_keyid…`). What every adapter
/// logs, so that they read the same.
pub(crate) fn log_rejected_key(e: &keyward_core::engine::VerifyError, key: &str) {
    tracing::debug!(reason = e.reason(), code = %e.code(), key = %keyward_core::key::redacted(key), "API key rejected");
}

/// Logs, at debug level, a credential header that cannot even be read (`API_KEY_INVALID`).
pub(crate) fn log_unusable(reason: InvalidCredential) {
    tracing::debug!(
        reason = reason.as_str(),
        code = "API_KEY_INVALID",
        "API key rejected"
    );
}

/// Space or horizontal tab: the whitespace allowed around and inside a header value.
fn is_sp(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

/// `s` without leading and trailing spaces and tabs (bytewise: cheaper than a char pattern).
fn trim_sp(s: &str) -> &str {
    let b = s.as_bytes();
    let start = b.iter().position(|&c| !is_sp(c)).unwrap_or(b.len());
    let end = b.iter().rposition(|&c| !is_sp(c)).map_or(start, |i| i + 1);
    // Both ends sit next to ASCII bytes, so they are character boundaries.
    s.get(start..end).unwrap_or_default()
}

/// Reads the `Authorization` header.
fn authorization<'a>(format: &KeyFormat, raw: &'a [u8]) -> Credential<'a> {
    let Ok(value) = std::str::from_utf8(raw) else {
        return Credential::Invalid(InvalidCredential::NotUtf8);
    };
    let value = trim_sp(value);
    if value.is_empty() {
        return Credential::NotOurs;
    }
    let (scheme, rest) = match value.bytes().position(is_sp) {
        Some(i) => value.split_at(i),
        None => (value, ""),
    };
    let rest = trim_sp(rest);
    if scheme.eq_ignore_ascii_case("bearer") {
        if rest.is_empty() {
            return Credential::Invalid(InvalidCredential::Blank);
        }
        if ours(format, rest) {
            Credential::Key(rest)
        } else {
            Credential::NotOurs
        }
    } else if scheme.eq_ignore_ascii_case(SIGV4_SCHEME) {
        Credential::Signed(value)
    } else {
        Credential::NotOurs
    }
}

/// Reads the API-key header: whatever it carries is meant for keyward.
fn api_key_header(raw: &[u8]) -> Credential<'_> {
    let Ok(value) = std::str::from_utf8(raw) else {
        return Credential::Invalid(InvalidCredential::NotUtf8);
    };
    let value = trim_sp(value);
    if value.is_empty() {
        Credential::Invalid(InvalidCredential::Blank)
    } else {
        Credential::Key(value)
    }
}

/// Decides what a request presents, from the raw bytes of its `Authorization` header and its
/// API-key header (each `None` when absent). Total: never panics, linear in the input.
///
/// Precedence: a key or signature in `Authorization` wins; an invalid `Authorization`
/// (non-UTF-8, `Bearer` without a token) is invalid whatever else is sent; otherwise the API-key
/// header decides; otherwise `Authorization` was either absent ([`Credential::None`]) or someone
/// else's ([`Credential::NotOurs`]).
#[must_use]
pub fn extract<'a>(
    format: &KeyFormat,
    authorization_header: Option<&'a [u8]>,
    api_key_header_value: Option<&'a [u8]>,
) -> Credential<'a> {
    let from_auth = authorization_header.map(|raw| authorization(format, raw));
    if let Some(c @ (Credential::Key(_) | Credential::Signed(_) | Credential::Invalid(_))) =
        from_auth
    {
        return c;
    }
    if let Some(raw) = api_key_header_value {
        return api_key_header(raw);
    }
    match from_auth {
        Some(_) => Credential::NotOurs,
        None => Credential::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn trim_sp_trims_exactly_spaces_and_tabs(s in "[ \t]{0,3}[a-zé \t\n\x0c]{0,12}[ \t]{0,3}") {
            prop_assert_eq!(trim_sp(&s), s.trim_matches([' ', '\t']));
        }
    }

    fn fmt() -> KeyFormat {
        KeyFormat::default()
    }

    const KEY: &str = "kw_live_AbCdEf012345_secretsecretsecretsecretsecret12abc123";

    fn bearer(v: &str) -> Credential<'_> {
        extract(&fmt(), Some(v.as_bytes()), None)
    }

    #[test]
    fn bearer_tokens_of_any_shape() {
        assert_eq!(bearer_token(b"Bearer abc"), Some("abc"));
        assert_eq!(bearer_token(b" bEaReR \t abc  "), Some("abc"));
        for none in [
            &b"Bearer"[..],
            b"Bearer  ",
            b"Basic abc",
            b"Bearerabc",
            b"",
            b"Bearer \xff",
        ] {
            assert_eq!(bearer_token(none), None, "{none:?}");
        }
    }

    #[test]
    fn nothing_is_none() {
        assert_eq!(extract(&fmt(), None, None), Credential::None);
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
            let v = format!("{scheme} {KEY}");
            assert_eq!(
                extract(&fmt(), Some(v.as_bytes()), None),
                Credential::Key(KEY),
                "{scheme}"
            );
        }
    }

    #[test]
    fn bearer_tolerates_extra_whitespace() {
        let v = format!("  Bearer \t  {KEY}  ");
        assert_eq!(bearer(&v), Credential::Key(KEY));
    }

    #[test]
    fn blank_bearer_is_invalid() {
        assert_eq!(
            bearer("Bearer"),
            Credential::Invalid(InvalidCredential::Blank)
        );
        assert_eq!(
            bearer("Bearer    "),
            Credential::Invalid(InvalidCredential::Blank)
        );
    }

    #[test]
    fn jwt_bearer_is_not_ours() {
        assert_eq!(
            bearer("Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig"),
            Credential::NotOurs
        );
        // A prefix that merely starts like ours is not ours.
        assert_eq!(bearer("Bearer kwx_live_abc"), Credential::NotOurs);
    }

    #[test]
    fn other_schemes_are_not_ours() {
        assert_eq!(bearer("Basic dXNlcjpwYXNz"), Credential::NotOurs);
        assert_eq!(bearer("Bearerish kw_live_x"), Credential::NotOurs);
        assert_eq!(bearer(""), Credential::NotOurs);
    }

    #[test]
    fn key_of_another_env_is_still_ours() {
        assert_eq!(
            bearer("Bearer kw_test_junk"),
            Credential::Key("kw_test_junk")
        );
    }

    #[test]
    fn sigv4_is_signed() {
        let v = "AWS4-HMAC-SHA256 Credential=AbCdEf012345/20250101/us-east-1/keyward/aws4_request, SignedHeaders=host, Signature=00";
        assert_eq!(bearer(v), Credential::Signed(v));
        let lower = v.to_ascii_lowercase();
        assert!(matches!(bearer(&lower), Credential::Signed(_)));
    }

    #[test]
    fn api_key_header_is_always_ours() {
        assert_eq!(
            extract(&fmt(), None, Some(KEY.as_bytes())),
            Credential::Key(KEY)
        );
        assert_eq!(
            extract(&fmt(), None, Some(b" junk ")),
            Credential::Key("junk")
        );
        assert_eq!(
            extract(&fmt(), None, Some(b"   ")),
            Credential::Invalid(InvalidCredential::Blank)
        );
        assert_eq!(
            extract(&fmt(), None, Some(b"")),
            Credential::Invalid(InvalidCredential::Blank)
        );
    }

    #[test]
    fn non_utf8_is_invalid() {
        assert_eq!(
            extract(&fmt(), None, Some(b"kw_\xff\xfe")),
            Credential::Invalid(InvalidCredential::NotUtf8)
        );
        assert_eq!(
            extract(&fmt(), Some(b"Bearer \xc3\x28"), None),
            Credential::Invalid(InvalidCredential::NotUtf8)
        );
    }

    #[test]
    fn authorization_wins_when_both_carry_a_key() {
        let auth = format!("Bearer {KEY}");
        assert_eq!(
            extract(&fmt(), Some(auth.as_bytes()), Some(b"kw_live_other")),
            Credential::Key(KEY)
        );
    }

    #[test]
    fn api_key_header_used_when_authorization_is_not_ours() {
        assert_eq!(
            extract(
                &fmt(),
                Some(b"Bearer eyJhbGciOiJIUzI1NiJ9.x.y"),
                Some(KEY.as_bytes())
            ),
            Credential::Key(KEY)
        );
        assert_eq!(
            extract(&fmt(), Some(b"Basic abc"), None),
            Credential::NotOurs
        );
    }

    #[test]
    fn invalid_authorization_is_not_overridden() {
        assert_eq!(
            extract(&fmt(), Some(b"Bearer "), Some(KEY.as_bytes())),
            Credential::Invalid(InvalidCredential::Blank)
        );
    }

    #[test]
    fn debug_never_shows_the_key() {
        let c = Credential::Key(KEY);
        assert!(!format!("{c:?}").contains("secret"));
        assert!(Credential::Key(KEY).is_presented());
        assert!(!Credential::NotOurs.is_presented());
        assert!(!Credential::None.is_presented());
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let samples: [&[u8]; 8] = [
            b"\x00",
            b"Bearer\x00",
            b"\xff",
            b"Bearer \t",
            b"\t",
            b"B",
            b"bearer kw_",
            b"AWS4-HMAC-SHA256",
        ];
        for a in samples {
            for b in samples {
                let _ = extract(&fmt(), Some(a), Some(b));
                let _ = extract(&fmt(), Some(a), None);
                let _ = extract(&fmt(), None, Some(b));
            }
        }
        let long = vec![b'a'; 1 << 16];
        assert_eq!(extract(&fmt(), Some(&long), None), Credential::NotOurs);
    }
}
