//! The key format: `<prefix>_<env>_<key_id>_<secret><check>`.
//!
//! Parsing is total and linear: any string yields a [`ParsedKey`] or a [`ParseError`], never a
//! panic, and strings longer than [`MAX_KEY_LEN`] are refused before they are looked at. The check
//! is six base62 characters of the CRC32 of everything before it: it lets the server (and secret
//! scanners) reject typos and junk without a store read. It is a filter, never a security boundary.

use std::fmt;
use std::str::FromStr;

use rand_core::TryCryptoRng;
use zeroize::Zeroizing;

/// Length of a key id, in base62 characters.
pub const KEY_ID_LEN: usize = 12;
/// Length of the secret that [`KeyFormat::generate`] produces (≈ 190 bits).
pub const SECRET_LEN: usize = 32;
/// Longest secret accepted when parsing.
pub const MAX_SECRET_LEN: usize = 64;
/// Length of the checksum suffix.
pub const CHECK_LEN: usize = 6;
/// Hard cap on the length of a presented key; longer input is rejected unread.
pub const MAX_KEY_LEN: usize = 16 + 1 + 8 + 1 + KEY_ID_LEN + 1 + MAX_SECRET_LEN + CHECK_LEN;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Why a string is not a well-formed key. Callers outside should see one "invalid key" answer;
/// the variant is for logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// Nothing was presented (empty or whitespace only).
    #[error("empty key")]
    Empty,
    /// Longer than [`MAX_KEY_LEN`].
    #[error("key longer than {MAX_KEY_LEN} bytes")]
    TooLong,
    /// Not four `_`-separated parts of the right alphabets and lengths.
    #[error("malformed key")]
    Malformed,
    /// The checksum does not match: a typo, a truncated key or junk.
    #[error("key checksum mismatch")]
    Checksum,
    /// Well-formed, but issued under another prefix.
    #[error("key has another prefix")]
    WrongPrefix,
    /// Well-formed, but issued for another environment.
    #[error("key belongs to another environment")]
    WrongEnv,
}

/// Why a prefix or environment marker was refused when configuring a [`KeyFormat`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// The prefix is not `[a-z][a-z0-9]{1,15}`.
    #[error("prefix must match [a-z][a-z0-9]{{1,15}}")]
    Prefix,
    /// The environment marker is not `[a-z0-9]{1,8}`.
    #[error("environment must match [a-z0-9]{{1,8}}")]
    Env,
}

/// The operating system's random source failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the operating system random source failed")]
pub struct RngError;

/// Fills `buf` from the OS CSPRNG.
///
/// # Errors
/// [`RngError`] when the operating system cannot provide randomness.
pub(crate) fn os_random(buf: &mut [u8]) -> Result<(), RngError> {
    getrandom::fill(buf).map_err(|_| RngError)
}

/// `len` characters of base62 from `rng`, without modulo bias.
pub(crate) fn random_base62<R: TryCryptoRng + ?Sized>(
    rng: &mut R,
    len: usize,
) -> Result<Zeroizing<String>, RngError> {
    let mut out = Zeroizing::new(String::with_capacity(len));
    let mut pool = Zeroizing::new([0u8; 64]);
    while out.len() < len {
        rng.try_fill_bytes(&mut pool[..]).map_err(|_| RngError)?;
        for &b in pool.iter() {
            // 248 = 4 * 62: values at or above it would bias the low digits.
            if b < 248 && out.len() < len {
                out.push(char::from(BASE62[usize::from(b % 62)]));
            }
        }
    }
    Ok(out)
}

fn is_base62(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The six-character base62 checksum of `body`.
fn checksum(body: &str) -> [u8; CHECK_LEN] {
    encode_check(crc32fast::hash(body.as_bytes()))
}

/// A CRC32 as six base62 digits, most significant first.
fn encode_check(crc: u32) -> [u8; CHECK_LEN] {
    const HALF: u32 = 62 * 62 * 62;
    // Two independent three-digit halves: half the dependency chain of six divisions.
    let (mut hi, mut lo) = (crc / HALF, crc % HALF);
    let mut out = [b'0'; CHECK_LEN];
    for i in (0..CHECK_LEN / 2).rev() {
        out[i] = BASE62[(hi % 62) as usize];
        out[i + CHECK_LEN / 2] = BASE62[(lo % 62) as usize];
        hi /= 62;
        lo /= 62;
    }
    out
}

fn valid_prefix(s: &str) -> bool {
    let b = s.as_bytes();
    (2..=16).contains(&b.len())
        && b[0].is_ascii_lowercase()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
}

pub(crate) fn valid_env(s: &str) -> bool {
    (1..=8).contains(&s.len())
        && s.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
}

/// The public, unique lookup handle of a key: 12 base62 characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId([u8; KEY_ID_LEN]);

impl KeyId {
    /// The smallest key id, `000000000000` (for range bounds).
    pub const MIN: KeyId = KeyId([b'0'; KEY_ID_LEN]);

    /// A fresh random key id, from the OS CSPRNG.
    ///
    /// # Errors
    /// [`RngError`] when the OS random source fails.
    pub fn generate() -> Result<Self, RngError> {
        Self::generate_with(&mut rand_core::OsRng)
    }

    /// A fresh random key id from `rng` (any `rand_core` `CryptoRng`, or a fallible one).
    ///
    /// # Errors
    /// [`RngError`] when `rng` fails.
    pub fn generate_with<R: TryCryptoRng + ?Sized>(rng: &mut R) -> Result<Self, RngError> {
        let s = random_base62(rng, KEY_ID_LEN)?;
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(s.as_bytes());
        Ok(Self(id))
    }

    /// The key id as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        // Only base62 ASCII ever enters a KeyId.
        std::str::from_utf8(&self.0).unwrap_or("")
    }

    /// The key id as bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl FromStr for KeyId {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != KEY_ID_LEN || !is_base62(s) {
            return Err(ParseError::Malformed);
        }
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(s.as_bytes());
        Ok(Self(id))
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.as_str())
    }
}

impl serde::Serialize for KeyId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for KeyId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A raw API key, as shown to its holder once. Redacts itself in `Debug` and `Display` and is
/// wiped from memory on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(Zeroizing<String>);

impl ApiKey {
    /// Wraps a raw key string (for example one read from a file or a CLI flag).
    #[must_use]
    pub fn new(raw: String) -> Self {
        Self(Zeroizing::new(raw))
    }

    /// The whole key. Call it only to hand the key to its holder or to a signer.
    #[must_use]
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

/// `prefix_env_keyid…` for a key string, or `…` when it is not key-shaped: what logs may show of
/// a presented key.
#[must_use]
pub fn redacted(raw: &str) -> String {
    let mut parts = raw.splitn(4, '_');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(p), Some(e), Some(id), Some(_)) if p.len() <= 16 && e.len() <= 8 => {
            format!("{p}_{e}_{id}…")
        }
        _ => "…".to_owned(),
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKey({})", redacted(&self.0))
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redacted(&self.0))
    }
}

/// A borrowed secret: redacted in `Debug`, never `Display`ed.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SecretRef<'a>(&'a str);

impl<'a> SecretRef<'a> {
    /// The secret's characters.
    #[must_use]
    pub fn expose_secret(&self) -> &'a str {
        self.0
    }
}

impl fmt::Debug for SecretRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretRef(***)")
    }
}

/// A key string split into its parts, after its shape and checksum were checked. Borrows the
/// presented string; no allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedKey<'a> {
    /// The issuer prefix, e.g. `kw`.
    pub prefix: &'a str,
    /// The environment marker, e.g. `live`.
    pub env: &'a str,
    /// The public lookup handle.
    pub key_id: KeyId,
    /// The secret part (without the checksum).
    pub secret: SecretRef<'a>,
}

impl<'a> ParsedKey<'a> {
    /// Parses any string: checks the length cap, the four parts and their alphabets, and the
    /// checksum. Leading and trailing ASCII whitespace is ignored.
    ///
    /// # Errors
    /// A [`ParseError`] naming the first rule the input breaks.
    pub fn parse(input: &'a str) -> Result<Self, ParseError> {
        if input.len() > MAX_KEY_LEN + 64 {
            return Err(ParseError::TooLong);
        }
        let s = input.trim_ascii();
        if s.is_empty() {
            return Err(ParseError::Empty);
        }
        if s.len() > MAX_KEY_LEN {
            return Err(ParseError::TooLong);
        }
        // Every byte is base62 or `_`. No early exit, so the compiler vectorises the scan.
        let b = s.as_bytes();
        let alphabet_ok = b.iter().fold(true, |ok, &c| {
            ok & (c.is_ascii_alphanumeric() | (c == b'_'))
        });
        if !alphabet_ok {
            return Err(ParseError::Malformed);
        }
        // Exactly three separators: the first three found by short scans, none after them.
        let mut seps = [0usize; 3];
        let mut from = 0;
        for slot in &mut seps {
            let Some(i) = b[from..].iter().position(|&c| c == b'_') else {
                return Err(ParseError::Malformed);
            };
            *slot = from + i;
            from += i + 1;
        }
        if b[from..].iter().fold(false, |any, &c| any | (c == b'_')) {
            return Err(ParseError::Malformed);
        }
        let (prefix, env) = (&s[..seps[0]], &s[seps[0] + 1..seps[1]]);
        let (id, tail) = (&b[seps[1] + 1..seps[2]], &s[seps[2] + 1..]);
        if !valid_prefix(prefix)
            || !valid_env(env)
            || id.len() != KEY_ID_LEN
            || tail.len() < SECRET_LEN + CHECK_LEN
            || tail.len() > MAX_SECRET_LEN + CHECK_LEN
        {
            return Err(ParseError::Malformed);
        }
        let split = s.len() - CHECK_LEN;
        if checksum(&s[..split]).as_slice() != &b[split..] {
            return Err(ParseError::Checksum);
        }
        let mut key_id = [0u8; KEY_ID_LEN];
        key_id.copy_from_slice(id);
        Ok(Self {
            prefix,
            env,
            key_id: KeyId(key_id),
            secret: SecretRef(&tail[..tail.len() - CHECK_LEN]),
        })
    }
}

/// The configured shape of keys: issuer prefix and environment marker.
#[derive(Debug, Clone)]
pub struct KeyFormat {
    prefix: String,
    env: String,
    /// `prefix_env_`: what every key of this format starts with.
    head: String,
    /// CRC32 after `head`, so parsing checksums only the rest (and the CPU feature detection
    /// is done once, not per key).
    head_crc: crc32fast::Hasher,
}

impl PartialEq for KeyFormat {
    fn eq(&self, other: &Self) -> bool {
        // `head` and `head_crc` follow from these two.
        self.prefix == other.prefix && self.env == other.env
    }
}

impl Eq for KeyFormat {}

impl Default for KeyFormat {
    /// `kw` / `live`.
    fn default() -> Self {
        Self::from_valid("kw", "live")
    }
}

/// A freshly generated key: the raw key for its holder, and the parts the store needs.
#[derive(Debug)]
pub struct GeneratedKey {
    /// The whole key, to show once.
    pub api_key: ApiKey,
    /// Its lookup handle.
    pub key_id: KeyId,
}

impl GeneratedKey {
    /// The secret part of the key (between the key id and the checksum).
    #[must_use]
    pub fn secret(&self) -> SecretRef<'_> {
        let raw = self.api_key.expose_secret();
        let start = raw.rfind('_').map_or(0, |i| i + 1);
        SecretRef(
            raw.get(start..raw.len().saturating_sub(CHECK_LEN))
                .unwrap_or(""),
        )
    }
}

impl KeyFormat {
    /// A format with the given prefix (`[a-z][a-z0-9]{1,15}`) and environment (`[a-z0-9]{1,8}`).
    ///
    /// # Errors
    /// [`FormatError`] when either does not match its pattern.
    pub fn new(prefix: &str, env: &str) -> Result<Self, FormatError> {
        if !valid_prefix(prefix) {
            return Err(FormatError::Prefix);
        }
        if !valid_env(env) {
            return Err(FormatError::Env);
        }
        Ok(Self::from_valid(prefix, env))
    }

    fn from_valid(prefix: &str, env: &str) -> Self {
        let head = format!("{prefix}_{env}_");
        Self {
            prefix: prefix.to_owned(),
            env: env.to_owned(),
            head_crc: {
                let mut crc = crc32fast::Hasher::new();
                crc.update(head.as_bytes());
                crc
            },
            head,
        }
    }

    /// The issuer prefix.
    #[must_use]
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The environment marker.
    #[must_use]
    pub fn env(&self) -> &str {
        &self.env
    }

    /// Generates a new key of this format from the OS CSPRNG.
    ///
    /// # Errors
    /// [`RngError`] when the OS random source fails.
    pub fn generate(&self) -> Result<GeneratedKey, RngError> {
        self.generate_with(&mut rand_core::OsRng)
    }

    /// Generates a new key of this format from `rng`: any `rand_core` `CryptoRng` (tests inject
    /// a seeded one; an HSM-backed source fits too), or a fallible `TryCryptoRng`.
    ///
    /// # Errors
    /// [`RngError`] when `rng` fails.
    pub fn generate_with<R: TryCryptoRng + ?Sized>(
        &self,
        rng: &mut R,
    ) -> Result<GeneratedKey, RngError> {
        let key_id = KeyId::generate_with(rng)?;
        let secret = random_base62(rng, SECRET_LEN)?;
        let mut raw = String::with_capacity(
            self.prefix.len() + self.env.len() + KEY_ID_LEN + SECRET_LEN + CHECK_LEN + 3,
        );
        raw.push_str(&self.prefix);
        raw.push('_');
        raw.push_str(&self.env);
        raw.push('_');
        raw.push_str(key_id.as_str());
        raw.push('_');
        raw.push_str(&secret);
        let check = checksum(&raw);
        raw.extend(check.iter().map(|&b| char::from(b)));
        Ok(GeneratedKey {
            api_key: ApiKey::new(raw),
            key_id,
        })
    }

    /// Parses `input` and checks that it carries this format's prefix and environment.
    ///
    /// # Errors
    /// See [`ParsedKey::parse`]; also [`ParseError::WrongPrefix`] and [`ParseError::WrongEnv`].
    #[inline]
    pub fn parse<'a>(&self, input: &'a str) -> Result<ParsedKey<'a>, ParseError> {
        if input.len() > MAX_KEY_LEN + 64 {
            return Err(ParseError::TooLong);
        }
        match self.parse_own(input) {
            Some(result) => result,
            None => self.parse_any(input),
        }
    }

    /// The verification hot path: a key that starts with this format's head and has the
    /// shape of one is judged here, its checksum taken from the precomputed head state. `None`
    /// sends everything else to [`KeyFormat::parse_any`], which gives the same answer for every
    /// input this accepts or refuses, and finds out what is wrong with the rest.
    #[inline]
    fn parse_own<'a>(&self, input: &'a str) -> Option<Result<ParsedKey<'a>, ParseError>> {
        let s = input.trim_ascii();
        let rest = s.strip_prefix(self.head.as_str())?;
        let b = rest.as_bytes();
        let fixed = KEY_ID_LEN + 1 + CHECK_LEN;
        if b.len() < fixed + SECRET_LEN || b.len() > fixed + MAX_SECRET_LEN {
            return None;
        }
        // Base62 but for one `_`, after the key id. One pass without early exit, so it
        // vectorises.
        let (base62_or_sep, seps) = b.iter().fold((true, 0u8), |(ok, n), &c| {
            let sep = c == b'_';
            (
                ok & (c.is_ascii_alphanumeric() | sep),
                n.wrapping_add(u8::from(sep)),
            )
        });
        if !base62_or_sep || seps != 1 || b[KEY_ID_LEN] != b'_' {
            return None;
        }
        let id = &b[..KEY_ID_LEN];
        let split = b.len() - CHECK_LEN;
        let mut crc = self.head_crc.clone();
        crc.update(&b[..split]);
        if b[split..] != encode_check(crc.finalize()) {
            return Some(Err(ParseError::Checksum));
        }
        let mut key_id = [0u8; KEY_ID_LEN];
        key_id.copy_from_slice(id);
        Some(Ok(ParsedKey {
            prefix: &s[..self.prefix.len()],
            env: &s[self.prefix.len() + 1..self.head.len() - 1],
            key_id: KeyId(key_id),
            secret: SecretRef(&rest[KEY_ID_LEN + 1..split]),
        }))
    }

    /// Any well-formed key, then this format's prefix and environment.
    fn parse_any<'a>(&self, input: &'a str) -> Result<ParsedKey<'a>, ParseError> {
        let parsed = ParsedKey::parse(input)?;
        if parsed.prefix != self.prefix {
            return Err(ParseError::WrongPrefix);
        }
        if parsed.env != self.env {
            return Err(ParseError::WrongEnv);
        }
        Ok(parsed)
    }

    /// The safe display form of a key id under this format: `prefix_env_keyid…`.
    #[must_use]
    pub fn display(&self, key_id: &KeyId) -> String {
        format!("{}_{}_{}…", self.prefix, self.env, key_id)
    }
}

/// Finds key-shaped tokens in text whose checksum holds (for secret scanning). Returns byte
/// ranges into `text`. Look-alikes with a wrong checksum are not returned.
#[must_use]
pub fn find_keys(text: &str) -> Vec<std::ops::Range<usize>> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let is_tok = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
        if is_tok(bytes[i]) && (i == 0 || !is_tok(bytes[i - 1])) {
            let mut j = i;
            while j < bytes.len() && is_tok(bytes[j]) {
                j += 1;
            }
            if j - i <= MAX_KEY_LEN && ParsedKey::parse(&text[i..j]).is_ok() {
                found.push(i..j);
            }
            i = j;
        } else {
            i += 1;
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Variants of a valid key around the fast path's edges: each character replaced, removed
    /// or doubled, whitespace around it, the secret shortened or grown, the head changed.
    fn near_misses(f: &KeyFormat) -> Vec<String> {
        let raw = f.generate().unwrap().api_key.expose_secret().to_owned();
        let mut out = vec![
            raw.clone(),
            format!(" {raw}\t"),
            format!("{raw}_"),
            raw.to_uppercase(),
        ];
        for i in 0..raw.len() {
            for c in ['_', 'a', '0', '-', ' '] {
                let mut m = raw.clone();
                m.replace_range(i..=i, &c.to_string());
                out.push(m);
            }
            let mut m = raw.clone();
            m.remove(i);
            out.push(m);
            let mut m = raw.clone();
            m.insert(i, raw.as_bytes()[i].into());
            out.push(m);
        }
        let head = &raw[..raw.len() - CHECK_LEN - SECRET_LEN];
        for n in [
            0,
            1,
            SECRET_LEN - 1,
            MAX_SECRET_LEN,
            MAX_SECRET_LEN + 1,
            200,
        ] {
            let body = format!("{head}{}", "x".repeat(n));
            let check = checksum(&body);
            out.push(format!("{body}{}", std::str::from_utf8(&check).unwrap()));
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn fast_path_agrees_with_the_general_parser(
            prefix in "[a-z][a-z0-9]{1,15}",
            env in "[a-z0-9]{1,8}",
            junk in "[a-z0-9_]{0,30}_[A-Za-z0-9_ ]{0,90}",
        ) {
            let f = KeyFormat::new(&prefix, &env).unwrap();
            let mut inputs = near_misses(&f);
            inputs.push(format!("{prefix}_{env}_{junk}"));
            inputs.push(junk);
            for s in &inputs {
                prop_assert_eq!(f.parse(s), f.parse_any(s), "{:?}", s);
            }
        }
    }

    #[test]
    fn check_digits_are_the_base62_crc32_of_the_body() {
        // Known answers computed independently (Python's zlib.crc32, base62 by repeated
        // division): a change here would invalidate every key already issued.
        assert_eq!(
            &checksum("kw_live_ABCDEFGHIJKL_abcdefghijklmnopqrstuvwxyzABCDEF"),
            b"2GGOW6"
        );
        assert_eq!(&checksum(""), b"000000");
        assert_eq!(&encode_check(0xffff_ff00), b"4gfF7w");
        assert_eq!(&encode_check(u32::MAX), b"4gfFC3");
    }

    #[test]
    fn head_state_continues_the_checksum() {
        let f = KeyFormat::new("acme", "test").unwrap();
        let mut h = f.head_crc.clone();
        h.update(b"ABCDEFGHIJKL_secret");
        assert_eq!(
            h.finalize(),
            crc32fast::hash(b"acme_test_ABCDEFGHIJKL_secret")
        );
    }

    #[test]
    fn generated_keys_parse_back() {
        let f = KeyFormat::new("kw", "test").unwrap();
        let k = f.generate().unwrap();
        let raw = k.api_key.expose_secret().to_owned();
        let p = f.parse(&raw).unwrap();
        assert_eq!(p.key_id, k.key_id);
        assert_eq!(p.secret.expose_secret(), k.secret().expose_secret());
        assert_eq!(p.secret.expose_secret().len(), SECRET_LEN);
        assert!(raw.starts_with("kw_test_"));
    }

    #[test]
    fn format_validation() {
        assert!(KeyFormat::new("k", "live").is_err());
        assert!(KeyFormat::new("1kw", "live").is_err());
        assert!(KeyFormat::new("kw", "LIVE").is_err());
        assert!(KeyFormat::new("kw", "toolongenv").is_err());
        assert!(KeyFormat::new("abcdefghijklmnop", "a1").is_ok());
    }

    #[test]
    fn wrong_env_and_prefix() {
        let live = KeyFormat::new("kw", "live").unwrap();
        let test = KeyFormat::new("kw", "test").unwrap();
        let other = KeyFormat::new("zz", "live").unwrap();
        let k = test.generate().unwrap();
        assert_eq!(
            live.parse(k.api_key.expose_secret()),
            Err(ParseError::WrongEnv)
        );
        let k = other.generate().unwrap();
        assert_eq!(
            live.parse(k.api_key.expose_secret()),
            Err(ParseError::WrongPrefix)
        );
    }

    #[test]
    fn junk_is_rejected() {
        for junk in [
            "",
            "   ",
            "kw",
            "kw_live",
            "a_b_c_d",
            "kw_live_ABCDEFGHIJKL_short",
            "é_é_é_é",
        ] {
            assert!(ParsedKey::parse(junk).is_err(), "{junk:?}");
        }
        assert_eq!(
            ParsedKey::parse(&"x".repeat(10_000)),
            Err(ParseError::TooLong)
        );
        assert_eq!(ParsedKey::parse(" \t "), Err(ParseError::Empty));
    }

    #[test]
    fn debug_and_display_redact() {
        let k = KeyFormat::default().generate().unwrap();
        let secret = k.secret().expose_secret().to_owned();
        for s in [
            format!("{k:?}"),
            format!("{}", k.api_key),
            format!("{:?}", k.api_key),
        ] {
            assert!(!s.contains(&secret), "{s}");
        }
        let raw = k.api_key.expose_secret().to_owned();
        let p = ParsedKey::parse(&raw).unwrap();
        assert!(!format!("{p:?}").contains(&secret));
    }

    #[test]
    fn scanner_finds_only_real_keys() {
        let k = KeyFormat::default().generate().unwrap();
        let raw = k.api_key.expose_secret();
        let mut broken = raw.to_owned();
        broken.pop();
        broken.push(if raw.ends_with('a') { 'b' } else { 'a' });
        let text = format!("token = \"{raw}\"\nfake = {broken}\n");
        let found = find_keys(&text);
        assert_eq!(found.len(), 1);
        assert_eq!(&text[found[0].clone()], raw);
        assert!(!redacted(raw).contains(k.secret().expose_secret()));
    }
}
