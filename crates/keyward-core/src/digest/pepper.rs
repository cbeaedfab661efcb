//! Peppers: the secret bytes, decoding them from text, and refusing weak ones.

use std::fmt;

use zeroize::Zeroizing;

use super::*;

/// The pepper of [`Keyring::insecure_test_keyring`]: public, so refused everywhere else.
pub(super) const INSECURE_TEST_PEPPER: &[u8] =
    b"keyward insecure test pepper, never use in production!";

/// Fewest distinct byte values a secret of 32 bytes or more must have. 32 random bytes have
/// about 30; fewer than 12 happens by chance with a probability far below 2^-60.
pub(super) const MIN_DISTINCT_BYTES: usize = 12;

/// Why `secret` cannot be a random secret (a pepper or an encryption key), or `None` when it
/// may be one: a single repeated byte, too few distinct bytes (a short pattern repeated), or a
/// value published in keyward's own code. A check against mistakes, not a randomness test:
/// [`Pepper`] applies it, and so should every other secret of this kind (the server's encryption
/// keys).
#[must_use]
pub fn weakness(secret: &[u8]) -> Option<&'static str> {
    let mut seen = [false; 256];
    let mut distinct = 0usize;
    for b in secret {
        let slot = &mut seen[usize::from(*b)];
        if !*slot {
            *slot = true;
            distinct += 1;
        }
    }
    if distinct <= 1 {
        Some("repeats one byte")
    } else if distinct < MIN_DISTINCT_BYTES.min(secret.len()) {
        Some("has too few distinct bytes (a pattern, not random bytes)")
    } else if secret == INSECURE_TEST_PEPPER {
        Some("is keyward's public test pepper")
    } else {
        None
    }
}

/// Pepper bytes: a server-side secret mixed into every digest. Redacted and zeroized.
#[derive(Clone)]
pub struct Pepper(pub(super) Zeroizing<Vec<u8>>);

impl Pepper {
    /// Wraps raw pepper bytes.
    #[must_use]
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// Decodes a pepper kept as text, the way the `keyward` server reads `KEYWARD_PEPPER`: hex
    /// (an even number of hex digits) or base64 (standard or URL-safe alphabet, padded or not),
    /// surrounding whitespace ignored. The text itself is never used as the bytes, so one
    /// secret (`openssl rand -base64 32`) gives the same digests in the server and in an
    /// application. [`Keyring`] refuses peppers shorter than 32 bytes.
    ///
    /// ```
    /// let pepper = keyward_core::Pepper::from_encoded("q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80=")?;
    /// assert_eq!(pepper.expose_secret().len(), 32);
    /// # Ok::<(), keyward_core::digest::PepperDecodeError>(())
    /// ```
    ///
    /// # Errors
    /// [`PepperDecodeError`] when the text is empty or neither hex nor base64.
    pub fn from_encoded(text: &str) -> Result<Self, PepperDecodeError> {
        decode_secret(text.trim())
            .map(Self)
            .ok_or(PepperDecodeError)
    }

    /// 32 fresh bytes from the OS CSPRNG.
    ///
    /// # Errors
    /// [`crate::key::RngError`] when the OS random source fails.
    pub fn generate() -> Result<Self, crate::key::RngError> {
        let mut b = vec![0u8; MIN_PEPPER_LEN];
        crate::key::os_random(&mut b)?;
        Ok(Self::new(b))
    }

    /// The pepper bytes.
    #[must_use]
    pub fn expose_secret(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Pepper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pepper({} bytes)", self.0.len())
    }
}

/// A pepper's text was empty, or neither hex nor base64 (see [`Pepper::from_encoded`]). The
/// text is not part of the error: it is a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a pepper must be hex or base64 (generate one with `openssl rand -base64 32`)")]
pub struct PepperDecodeError;

/// Decodes secret text: hex (an even number of hex digits) or base64 in any common alphabet, as
/// [`Pepper::from_encoded`] reads it; for other secrets read the same way (the server's
/// encryption keys).
#[must_use]
pub fn decode_secret(s: &str) -> Option<Zeroizing<Vec<u8>>> {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

    if s.is_empty() {
        return None;
    }
    if s.len().is_multiple_of(2) && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        let mut out = Zeroizing::new(Vec::with_capacity(s.len() / 2));
        for pair in s.as_bytes().chunks(2) {
            let digit = |b: u8| {
                char::from(b)
                    .to_digit(16)
                    .and_then(|d| u8::try_from(d).ok())
            };
            out.push(digit(pair[0])? << 4 | digit(pair[1])?);
        }
        return Some(out);
    }
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|e| e.decode(s).ok())
        .map(Zeroizing::new)
}
