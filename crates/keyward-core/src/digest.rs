//! Keyed digests of secrets and the pepper keyring.
//!
//! The store keeps `digest = HMAC-SHA256(pepper[v], key_id ‖ 0x00 ‖ secret)` and the pepper version
//! `v`; never the secret. Keyed BLAKE3 is the alternative fast digest, and Argon2id (feature
//! `argon2`) is there for deployments that demand a memory-hard hash (keep the cache in front).
//!
//! A [`Keyring`] holds several pepper versions at once: new keys use the newest, and a key that
//! verifies under an older version is reported as obsolete so the engine re-digests it.

use std::fmt;
use std::sync::Arc;

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

use crate::key::KeyId;

/// Shortest pepper accepted outside insecure test mode.
pub const MIN_PEPPER_LEN: usize = 32;
/// Length of every digest.
pub const DIGEST_LEN: usize = 32;

/// The digest function a pepper version uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DigestAlgorithm {
    /// HMAC-SHA256: the default.
    HmacSha256,
    /// Keyed BLAKE3, with the key derived from the pepper.
    Blake3,
    /// Argon2id with the pepper as its secret input (feature `argon2`).
    Argon2id,
}

impl DigestAlgorithm {
    /// Stable name stored beside the digest.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HmacSha256 => "hmac-sha256",
            Self::Blake3 => "blake3",
            Self::Argon2id => "argon2id",
        }
    }

    /// Parses a stored name.
    #[must_use]
    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "hmac-sha256" => Some(Self::HmacSha256),
            "blake3" => Some(Self::Blake3),
            "argon2id" => Some(Self::Argon2id),
            _ => None,
        }
    }
}

/// Why a keyring could not be built. Startup fails closed on each of these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyringError {
    /// No pepper was configured.
    #[error("no pepper configured")]
    Missing,
    /// A pepper is shorter than [`MIN_PEPPER_LEN`] bytes.
    #[error("pepper version {version} is {len} bytes; at least {MIN_PEPPER_LEN} are required")]
    TooShort {
        /// Pepper version.
        version: u32,
        /// Its length.
        len: usize,
    },
    /// The same pepper bytes appear under two versions.
    #[error("pepper version {version} reuses the bytes of another version")]
    Reused {
        /// The version that repeats an earlier one.
        version: u32,
    },
    /// Two peppers claim the same version number.
    #[error("pepper version {version} is configured twice")]
    DuplicateVersion {
        /// The repeated version.
        version: u32,
    },
    /// The algorithm is not compiled in (Argon2id needs the `argon2` feature).
    #[error("digest algorithm {0:?} is not available in this build")]
    Unavailable(DigestAlgorithm),
    /// A pepper does not look random: see [`weakness`].
    #[error("pepper version {version} is not a random secret: it {why}")]
    Weak {
        /// Pepper version.
        version: u32,
        /// What is wrong with it.
        why: &'static str,
    },
}

/// The pepper of [`Keyring::insecure_test_keyring`]: public, so refused everywhere else.
const INSECURE_TEST_PEPPER: &[u8] = b"keyward insecure test pepper, never use in production!";

/// Fewest distinct byte values a secret of 32 bytes or more must have. 32 random bytes have
/// about 30; fewer than 12 happens by chance with a probability far below 2^-60.
const MIN_DISTINCT_BYTES: usize = 12;

/// Why `secret` cannot be a random secret (a pepper or an encryption key), or `None` when it
/// may be one: a single repeated byte, too few distinct bytes (a short pattern repeated), or a
/// value published in keyward's own code. A check against mistakes, not a randomness test.
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
pub struct Pepper(Zeroizing<Vec<u8>>);

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

/// Decodes secret text: hex (an even number of hex digits) or base64 in any common alphabet.
/// Shared by peppers and the server's encryption keys.
#[doc(hidden)]
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

/// A stored digest: algorithm, pepper version and the 32 bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyDigest {
    /// The digest function.
    pub algorithm: DigestAlgorithm,
    /// Which pepper version produced it.
    pub pepper_version: u32,
    /// The digest bytes.
    pub bytes: [u8; DIGEST_LEN],
}

impl fmt::Debug for KeyDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyDigest")
            .field("algorithm", &self.algorithm)
            .field("pepper_version", &self.pepper_version)
            .finish_non_exhaustive()
    }
}

/// A digest function with its pepper bound in.
pub trait Digester: Send + Sync + fmt::Debug {
    /// Which algorithm this is.
    fn algorithm(&self) -> DigestAlgorithm;
    /// The digest of `key_id ‖ 0x00 ‖ secret`.
    fn digest(&self, key_id: &KeyId, secret: &[u8]) -> [u8; DIGEST_LEN];
}

/// HMAC-SHA256 with the pepper as key. The inner and outer pads are hashed once, here; each
/// digest starts from a copy of that state (RustCrypto's `hmac` and `sha2`, which use the SHA
/// instructions where the CPU has them, and wipe their state and buffer on drop).
pub struct HmacSha256Digester(Hmac<Sha256>);

/// SHA-256's block, which is also the length HMAC brings every key to.
const SHA256_BLOCK: usize = 64;

impl HmacSha256Digester {
    /// Binds `pepper`.
    #[must_use]
    pub fn new(pepper: &Pepper) -> Self {
        // HMAC's own preparation of the key (RFC 2104 §2): one longer than a block is hashed,
        // and the key is zero-padded to a block. Done here so that the constructor taking a
        // block-sized key, which cannot fail, is the one called.
        let secret = pepper.expose_secret();
        let mut block = Zeroizing::new([0u8; SHA256_BLOCK]);
        if secret.len() > SHA256_BLOCK {
            let mut hashed = Sha256::digest(secret);
            block[..hashed.len()].copy_from_slice(&hashed);
            hashed.zeroize();
        } else {
            block[..secret.len()].copy_from_slice(secret);
        }
        let mut key = hmac::digest::Key::<Hmac<Sha256>>::from(*block);
        let mac = Hmac::new(&key);
        key.zeroize();
        Self(mac)
    }
}

impl fmt::Debug for HmacSha256Digester {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HmacSha256Digester")
    }
}

impl Digester for HmacSha256Digester {
    fn algorithm(&self) -> DigestAlgorithm {
        DigestAlgorithm::HmacSha256
    }

    fn digest(&self, key_id: &KeyId, secret: &[u8]) -> [u8; DIGEST_LEN] {
        let mut mac = self.0.clone();
        mac.update(key_id.as_bytes());
        mac.update(&[0]);
        mac.update(secret);
        mac.finalize().into_bytes().into()
    }
}

/// Keyed BLAKE3; the 32-byte key is derived from the pepper with BLAKE3's KDF mode.
pub struct Blake3Digester(blake3::Hasher);

impl Blake3Digester {
    /// Binds `pepper`.
    #[must_use]
    pub fn new(pepper: &Pepper) -> Self {
        let key = Zeroizing::new(blake3::derive_key(
            "keyward 2026 pepper",
            pepper.expose_secret(),
        ));
        Self(blake3::Hasher::new_keyed(&key))
    }
}

impl fmt::Debug for Blake3Digester {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Blake3Digester")
    }
}

impl Digester for Blake3Digester {
    fn algorithm(&self) -> DigestAlgorithm {
        DigestAlgorithm::Blake3
    }

    fn digest(&self, key_id: &KeyId, secret: &[u8]) -> [u8; DIGEST_LEN] {
        let mut h = self.0.clone();
        h.update(key_id.as_bytes());
        h.update(&[0]);
        h.update(secret);
        *h.finalize().as_bytes()
    }
}

/// Argon2id with the pepper as Argon2's secret input and the key id as salt.
#[cfg(feature = "argon2")]
pub struct Argon2idDigester {
    pepper: Pepper,
    params: argon2::Params,
}

#[cfg(feature = "argon2")]
impl Argon2idDigester {
    /// Binds `pepper`, with OWASP's recommended parameters (19 MiB, 2 passes, 1 lane).
    #[must_use]
    pub fn new(pepper: &Pepper) -> Self {
        Self {
            pepper: pepper.clone(),
            params: argon2::Params::default(),
        }
    }

    /// Binds `pepper` with explicit parameters.
    #[must_use]
    pub fn with_params(pepper: &Pepper, params: argon2::Params) -> Self {
        Self {
            pepper: pepper.clone(),
            params,
        }
    }
}

#[cfg(feature = "argon2")]
impl fmt::Debug for Argon2idDigester {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Argon2idDigester")
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "argon2")]
impl Digester for Argon2idDigester {
    fn algorithm(&self) -> DigestAlgorithm {
        DigestAlgorithm::Argon2id
    }

    fn digest(&self, key_id: &KeyId, secret: &[u8]) -> [u8; DIGEST_LEN] {
        let mut out = [0u8; DIGEST_LEN];
        let mut input = Zeroizing::new(Vec::with_capacity(
            key_id.as_bytes().len() + 1 + secret.len(),
        ));
        input.extend_from_slice(key_id.as_bytes());
        input.push(0);
        input.extend_from_slice(secret);
        let hashed = argon2::Argon2::new_with_secret(
            self.pepper.expose_secret(),
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            self.params.clone(),
        )
        .and_then(|a| a.hash_password_into(&input, key_id.as_bytes(), &mut out));
        if hashed.is_err() {
            // Parameters are validated at construction and the key id is a valid salt; a failure
            // here leaves an all-zero digest, which never equals a stored one.
            tracing::error!("argon2id digest failed");
        }
        out
    }
}

/// What [`Keyring::verify`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestMatch {
    /// The secret matches; `obsolete` says it was digested under an older pepper version.
    Match {
        /// Re-digest under the newest version.
        obsolete: bool,
    },
    /// The secret does not match (or the stored version is unknown).
    Mismatch,
}

#[derive(Debug)]
struct Version {
    version: u32,
    digester: Box<dyn Digester>,
    /// What [`Keyring::burn`] spends for this version when its digester is slow on purpose
    /// (Argon2id): the fast keyed hash, so that made-up key ids never buy an Argon2 run.
    burner: Option<Box<dyn Digester>>,
}

/// The pepper keyring: several versions at once, the newest used for new keys.
#[derive(Debug, Clone)]
pub struct Keyring(Arc<[Version]>);

/// Builds a [`Keyring`].
#[derive(Debug, Default)]
pub struct KeyringBuilder {
    entries: Vec<(u32, DigestAlgorithm, Pepper)>,
    insecure: bool,
}

impl KeyringBuilder {
    /// Adds a pepper version with the default algorithm (HMAC-SHA256).
    #[must_use]
    pub fn pepper(self, version: u32, pepper: Pepper) -> Self {
        self.pepper_with(version, DigestAlgorithm::HmacSha256, pepper)
    }

    /// Adds a pepper version with an explicit algorithm.
    #[must_use]
    pub fn pepper_with(mut self, version: u32, algorithm: DigestAlgorithm, pepper: Pepper) -> Self {
        self.entries.push((version, algorithm, pepper));
        self
    }

    /// Accepts short and patterned peppers. For tests only: never in production.
    #[must_use]
    pub fn insecure_allow_weak_peppers(mut self) -> Self {
        self.insecure = true;
        self
    }

    /// Validates the peppers and builds the keyring. The highest version is the current one.
    ///
    /// # Errors
    /// A [`KeyringError`] for a missing, short, reused or duplicated pepper, or an algorithm this
    /// build does not have.
    pub fn build(self) -> Result<Keyring, KeyringError> {
        if self.entries.is_empty() {
            return Err(KeyringError::Missing);
        }
        let mut versions: Vec<Version> = Vec::with_capacity(self.entries.len());
        for (i, (version, algorithm, pepper)) in self.entries.iter().enumerate() {
            let len = pepper.expose_secret().len();
            if len == 0 || (!self.insecure && len < MIN_PEPPER_LEN) {
                return Err(KeyringError::TooShort {
                    version: *version,
                    len,
                });
            }
            if !self.insecure
                && let Some(why) = weakness(pepper.expose_secret())
            {
                return Err(KeyringError::Weak {
                    version: *version,
                    why,
                });
            }
            for (other_v, _, other) in &self.entries[..i] {
                if other_v == version {
                    return Err(KeyringError::DuplicateVersion { version: *version });
                }
                if bool::from(other.expose_secret().ct_eq(pepper.expose_secret())) {
                    return Err(KeyringError::Reused { version: *version });
                }
            }
            let digester: Box<dyn Digester> = match algorithm {
                DigestAlgorithm::HmacSha256 => Box::new(HmacSha256Digester::new(pepper)),
                DigestAlgorithm::Blake3 => Box::new(Blake3Digester::new(pepper)),
                #[cfg(feature = "argon2")]
                DigestAlgorithm::Argon2id => Box::new(Argon2idDigester::new(pepper)),
                #[cfg(not(feature = "argon2"))]
                DigestAlgorithm::Argon2id => {
                    return Err(KeyringError::Unavailable(DigestAlgorithm::Argon2id));
                }
            };
            let burner: Option<Box<dyn Digester>> = match algorithm {
                DigestAlgorithm::Argon2id => Some(Box::new(HmacSha256Digester::new(pepper))),
                DigestAlgorithm::HmacSha256 | DigestAlgorithm::Blake3 => None,
            };
            versions.push(Version {
                version: *version,
                digester,
                burner,
            });
        }
        versions.sort_by_key(|v| std::cmp::Reverse(v.version));
        Ok(Keyring(versions.into()))
    }
}

impl Keyring {
    /// Starts a builder.
    #[must_use]
    pub fn builder() -> KeyringBuilder {
        KeyringBuilder::default()
    }

    /// A keyring with one fixed, public pepper. **Insecure**: for tests and examples only.
    #[must_use]
    pub fn insecure_test_keyring() -> Self {
        let v = Version {
            version: 1,
            digester: Box::new(HmacSha256Digester::new(&Pepper::new(
                INSECURE_TEST_PEPPER.to_vec(),
            ))),
            burner: None,
        };
        Self(Arc::from(vec![v]))
    }

    fn current(&self) -> &Version {
        // A keyring is never empty: the builder refuses that.
        &self.0[0]
    }

    /// The version new keys are digested under.
    #[must_use]
    pub fn current_version(&self) -> u32 {
        self.current().version
    }

    /// The digest of a secret under the current pepper.
    #[must_use]
    pub fn digest(&self, key_id: &KeyId, secret: &str) -> KeyDigest {
        let v = self.current();
        KeyDigest {
            algorithm: v.digester.algorithm(),
            pepper_version: v.version,
            bytes: v.digester.digest(key_id, secret.as_bytes()),
        }
    }

    /// Checks `secret` against `stored` in constant time.
    #[must_use]
    pub fn verify(&self, key_id: &KeyId, secret: &str, stored: &KeyDigest) -> DigestMatch {
        let Some(v) = self.0.iter().find(|v| v.version == stored.pepper_version) else {
            // Unknown version: spend the same work, then refuse.
            self.burn(key_id, secret);
            return DigestMatch::Mismatch;
        };
        if v.digester.algorithm() != stored.algorithm {
            self.burn(key_id, secret);
            return DigestMatch::Mismatch;
        }
        let computed = v.digester.digest(key_id, secret.as_bytes());
        if digests_equal(&computed, &stored.bytes) {
            DigestMatch::Match {
                obsolete: v.version != self.current_version(),
            }
        } else {
            DigestMatch::Mismatch
        }
    }

    /// Computes and discards one digest, so that an unknown key id costs what a wrong secret
    /// costs. Under Argon2id it is the fast keyed hash instead: an unknown id then answers
    /// sooner than a wrong secret on a known one (key ids are public, the lever of making
    /// every made-up id cost an Argon2 run is not; see docs/security.md).
    pub fn burn(&self, key_id: &KeyId, secret: &str) {
        let v = self.current();
        let d = v
            .burner
            .as_deref()
            .unwrap_or(&*v.digester)
            .digest(key_id, secret.as_bytes());
        std::hint::black_box(d);
    }
}

/// Compares two digests in time that depends only on their length (which is public: it is the
/// algorithm's output size). Eight bytes per step, differences OR-ed together without a branch,
/// and one `subtle` comparison at the end: a tenth of the instructions of a byte-wise
/// `ConstantTimeEq` on 32 bytes, with the same guarantee.
fn digests_equal(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut diff = 0u64;
    let (a8, a_rest) = a.as_chunks::<8>();
    let (b8, b_rest) = b.as_chunks::<8>();
    for (x, y) in a8.iter().zip(b8) {
        diff |= u64::from_ne_bytes(*x) ^ u64::from_ne_bytes(*y);
    }
    for (x, y) in a_rest.iter().zip(b_rest) {
        diff |= u64::from(x ^ y);
    }
    bool::from(diff.ct_eq(&0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{MAX_SECRET_LEN, SECRET_LEN};

    fn pepper(b: u8) -> Pepper {
        Pepper::new(vec![b; 32])
    }

    #[test]
    fn peppers_from_text_are_decoded_never_taken_as_bytes() {
        let bytes: Vec<u8> = (0u8..32).collect();
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let b64 = {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.encode(&bytes)
        };
        for text in [
            hex.clone(),
            hex.to_uppercase(),
            b64.clone(),
            format!(" {b64}\n"),
        ] {
            let p = Pepper::from_encoded(&text).map_err(|e| format!("{text}: {e}"));
            assert_eq!(
                p.as_ref().map(Pepper::expose_secret),
                Ok(&bytes[..]),
                "{text}"
            );
        }
        for junk in ["", "   ", "not base64 !!", "é"] {
            assert_eq!(
                Pepper::from_encoded(junk).err(),
                Some(PepperDecodeError),
                "{junk:?}"
            );
        }
    }

    fn id() -> KeyId {
        "ABCDEFGHIJKL".parse().unwrap()
    }

    /// 32 distinct bytes, different for each `seed`: a pepper the builder accepts.
    fn varied(seed: u8) -> Pepper {
        Pepper::new(
            (0u8..32)
                .map(|i| seed.wrapping_mul(31).wrapping_add(i.wrapping_mul(7)))
                .collect(),
        )
    }

    #[test]
    fn weak_secrets_are_named() {
        assert_eq!(weakness(&[0; 32]), Some("repeats one byte"));
        assert!(weakness(&b"ab".repeat(16)).is_some());
        assert!(weakness(&b"0123456789".repeat(4)).is_some());
        assert!(weakness(INSECURE_TEST_PEPPER).is_some());
        assert_eq!(weakness(varied(1).expose_secret()), None);
        let random = Pepper::generate().unwrap();
        assert_eq!(weakness(random.expose_secret()), None);
        let err = Keyring::builder().pepper(1, pepper(0)).build().unwrap_err();
        assert!(
            matches!(err, KeyringError::Weak { version: 1, .. }),
            "{err}"
        );
        assert!(
            Keyring::builder()
                .pepper(1, pepper(0))
                .insecure_allow_weak_peppers()
                .build()
                .is_ok()
        );
    }

    #[test]
    fn hmac_input_is_key_id_zero_secret_for_every_secret_length() {
        let d = HmacSha256Digester::new(&pepper(9));
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &[9; 32]);
        for len in [
            0,
            1,
            31,
            SECRET_LEN,
            33,
            MAX_SECRET_LEN,
            MAX_SECRET_LEN + 1,
            200,
        ] {
            let secret: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            let mut ctx = ring::hmac::Context::with_key(&key);
            ctx.update(id().as_bytes());
            ctx.update(&[0]);
            ctx.update(&secret);
            assert_eq!(
                d.digest(&id(), &secret).as_slice(),
                ctx.sign().as_ref(),
                "secret of {len} bytes"
            );
        }
    }

    proptest::proptest! {
        /// Against ring's HMAC, for peppers shorter and longer than a SHA-256 block (a longer
        /// one is hashed first) and secrets that end in every part of a block.
        #[test]
        fn hmac_matches_ring_for_any_pepper_and_secret(
            pepper in proptest::collection::vec(proptest::num::u8::ANY, 0..150),
            secret in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
        ) {
            let ours = HmacSha256Digester::new(&Pepper::new(pepper.clone())).digest(&id(), &secret);
            let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &pepper);
            let mut ctx = ring::hmac::Context::with_key(&key);
            ctx.update(id().as_bytes());
            ctx.update(&[0]);
            ctx.update(&secret);
            let theirs = ctx.sign();
            proptest::prop_assert_eq!(ours.as_slice(), theirs.as_ref());
        }
    }

    #[test]
    fn digests_equal_sees_every_byte_and_the_length() {
        for len in [0usize, 7, 8, 31, 32, 33, 64] {
            let a: Vec<u8> = (0..len).map(|i| i as u8).collect();
            assert!(digests_equal(&a, &a.clone()));
            for i in 0..len {
                for bit in 0..8 {
                    let mut b = a.clone();
                    b[i] ^= 1 << bit;
                    assert!(!digests_equal(&a, &b), "len {len} byte {i} bit {bit}");
                }
            }
            let mut longer = a.clone();
            longer.push(0);
            assert!(!digests_equal(&a, &longer));
        }
    }

    #[test]
    fn startup_fails_closed() {
        assert_eq!(
            Keyring::builder().build().unwrap_err(),
            KeyringError::Missing
        );
        assert!(matches!(
            Keyring::builder()
                .pepper(1, Pepper::new(vec![1; 31]))
                .build(),
            Err(KeyringError::TooShort {
                version: 1,
                len: 31
            })
        ));
        assert!(matches!(
            Keyring::builder()
                .pepper(1, varied(1))
                .pepper(2, varied(1))
                .build(),
            Err(KeyringError::Reused { version: 2 })
        ));
        assert!(matches!(
            Keyring::builder()
                .pepper(1, varied(1))
                .pepper(1, varied(2))
                .build(),
            Err(KeyringError::DuplicateVersion { version: 1 })
        ));
        assert!(
            Keyring::builder()
                .pepper(1, Pepper::new(vec![1; 4]))
                .insecure_allow_weak_peppers()
                .build()
                .is_ok()
        );
    }

    #[test]
    fn verify_and_lazy_rotation() {
        let old = Keyring::builder().pepper(1, varied(1)).build().unwrap();
        let d = old.digest(&id(), "secret");
        assert_eq!(d.pepper_version, 1);
        assert_eq!(
            old.verify(&id(), "secret", &d),
            DigestMatch::Match { obsolete: false }
        );
        assert_eq!(old.verify(&id(), "secreT", &d), DigestMatch::Mismatch);

        let both = Keyring::builder()
            .pepper(1, varied(1))
            .pepper(2, varied(2))
            .build()
            .unwrap();
        assert_eq!(both.current_version(), 2);
        assert_eq!(
            both.verify(&id(), "secret", &d),
            DigestMatch::Match { obsolete: true }
        );
        let new = both.digest(&id(), "secret");
        assert_eq!(new.pepper_version, 2);
        assert_ne!(new.bytes, d.bytes);

        let only_new = Keyring::builder().pepper(2, varied(2)).build().unwrap();
        assert_eq!(only_new.verify(&id(), "secret", &d), DigestMatch::Mismatch);
    }

    #[test]
    fn blake3_differs_and_verifies() {
        let k = Keyring::builder()
            .pepper_with(1, DigestAlgorithm::Blake3, varied(1))
            .build()
            .unwrap();
        let d = k.digest(&id(), "secret");
        assert_eq!(d.algorithm, DigestAlgorithm::Blake3);
        assert_eq!(
            k.verify(&id(), "secret", &d),
            DigestMatch::Match { obsolete: false }
        );
        let h = Keyring::builder().pepper(1, varied(1)).build().unwrap();
        assert_eq!(h.verify(&id(), "secret", &d), DigestMatch::Mismatch);
    }

    #[test]
    fn debug_never_shows_bytes() {
        let p = Pepper::new(b"super-secret-pepper-bytes-0123456789".to_vec());
        assert!(!format!("{p:?}").contains("super"));
        let k = Keyring::builder().pepper(1, p).build().unwrap();
        let d = k.digest(&id(), "secret");
        let dbg = format!("{d:?} {k:?}");
        assert!(!dbg.contains("super"));
        assert!(!dbg.contains("bytes:"), "{dbg}");
        assert!(!dbg.contains(&format!("{:?}", d.bytes)), "{dbg}");
    }
}
