//! Keyed digests of secrets and the pepper keyring.
//!
//! The store keeps `digest = HMAC-SHA256(pepper[v], key_id ‖ 0x00 ‖ secret)` and the pepper version
//! `v`; never the secret. Keyed BLAKE3 is the alternative fast digest, and Argon2id (feature
//! `argon2`) is there for deployments that demand a memory-hard hash (keep the cache in front).
//!
//! A [`Keyring`] holds several pepper versions at once: new keys use the newest, and a key that
//! verifies under an older version is reported as obsolete so the engine re-digests it.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

use crate::key::KeyId;

mod keyring;
mod pepper;
#[cfg(test)]
mod tests;

pub use keyring::{DigestMatch, Keyring, KeyringBuilder, KeyringError};
use pepper::INSECURE_TEST_PEPPER;
pub use pepper::{Pepper, PepperDecodeError, decode_secret, weakness};

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

/// A digest function with its pepper bound in. The [`Keyring`] builds these itself; they are
/// public so that a digest can be measured or checked on its own (keyward-core's benchmark does).
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

/// Compares two digests in time that depends only on their length (which is public: it is the
/// algorithm's output size). Eight bytes per step, differences OR-ed together without a branch,
/// and one `subtle` comparison at the end: a tenth of the instructions of a byte-wise
/// `ConstantTimeEq` on 32 bytes, with the same guarantee.
pub(super) fn digests_equal(a: &[u8], b: &[u8]) -> bool {
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
