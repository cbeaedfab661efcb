//! Sealing the secrets of signing keys with AES-256-GCM under a versioned encryption keyring.
//!
//! Only signing-enabled keys store anything reversible; bearer keys store a digest alone. The
//! key id is bound as associated data, so a sealed secret cannot be moved to another key.

use std::fmt;
use std::sync::Arc;

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use zeroize::Zeroizing;

use crate::key::{KeyId, os_random};
use crate::model::SealedSecret;

/// Length of an encryption key.
pub const ENCRYPTION_KEY_LEN: usize = 32;

/// Why sealing or opening failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// An encryption key is not 32 bytes.
    #[error("encryption key version {0} must be exactly 32 bytes")]
    KeyLength(u32),
    /// Two keys share a version, or no key was given.
    #[error("encryption keyring is empty or has a duplicate version")]
    Keyring,
    /// The sealed secret names a key version this keyring does not have.
    #[error("no encryption key with version {0}")]
    UnknownVersion(u32),
    /// Authentication of the sealed data failed (tampered, or wrong key).
    #[error("sealed secret failed authentication")]
    Open,
    /// The OS random source failed.
    #[error("random source failed")]
    Rng,
}

struct Version {
    version: u32,
    key: LessSafeKey,
}

/// Versioned AES-256-GCM keys; the highest version seals, any version opens.
#[derive(Clone)]
pub struct EncryptionKeyring(Arc<[Version]>);

impl fmt::Debug for EncryptionKeyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptionKeyring")
            .field(
                "versions",
                &self.0.iter().map(|v| v.version).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl EncryptionKeyring {
    /// Builds a keyring from `(version, 32-byte key)` pairs.
    ///
    /// # Errors
    /// [`CryptoError::KeyLength`] or [`CryptoError::Keyring`].
    pub fn new(keys: Vec<(u32, Zeroizing<Vec<u8>>)>) -> Result<Self, CryptoError> {
        if keys.is_empty() {
            return Err(CryptoError::Keyring);
        }
        let mut out: Vec<Version> = Vec::with_capacity(keys.len());
        for (version, bytes) in keys {
            if out.iter().any(|v| v.version == version) {
                return Err(CryptoError::Keyring);
            }
            let unbound = UnboundKey::new(&AES_256_GCM, &bytes)
                .map_err(|_| CryptoError::KeyLength(version))?;
            out.push(Version {
                version,
                key: LessSafeKey::new(unbound),
            });
        }
        out.sort_by_key(|v| std::cmp::Reverse(v.version));
        Ok(Self(out.into()))
    }

    /// The version that seals new secrets.
    #[must_use]
    pub fn current_version(&self) -> u32 {
        self.0[0].version
    }

    /// Seals `secret` for `key_id` under the current key.
    ///
    /// # Errors
    /// [`CryptoError::Rng`] when no nonce could be drawn.
    pub fn seal(&self, key_id: &KeyId, secret: &[u8]) -> Result<SealedSecret, CryptoError> {
        let v = &self.0[0];
        let mut nonce = [0u8; NONCE_LEN];
        os_random(&mut nonce).map_err(|_| CryptoError::Rng)?;
        let mut buf = secret.to_vec();
        v.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(key_id.as_bytes()),
                &mut buf,
            )
            .map_err(|_| CryptoError::Open)?;
        let mut bytes = Vec::with_capacity(NONCE_LEN + buf.len());
        bytes.extend_from_slice(&nonce);
        bytes.extend_from_slice(&buf);
        Ok(SealedSecret {
            key_version: v.version,
            bytes,
        })
    }

    /// Opens a sealed secret of `key_id`.
    ///
    /// # Errors
    /// [`CryptoError::UnknownVersion`] or [`CryptoError::Open`].
    pub fn open(
        &self,
        key_id: &KeyId,
        sealed: &SealedSecret,
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let v = self
            .0
            .iter()
            .find(|v| v.version == sealed.key_version)
            .ok_or(CryptoError::UnknownVersion(sealed.key_version))?;
        if sealed.bytes.len() < NONCE_LEN {
            return Err(CryptoError::Open);
        }
        let (nonce, ct) = sealed.bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError::Open)?;
        let mut buf = Zeroizing::new(ct.to_vec());
        let plain = v
            .key
            .open_in_place(nonce, Aad::from(key_id.as_bytes()), &mut buf)
            .map_err(|_| CryptoError::Open)?;
        Ok(Zeroizing::new(plain.to_vec()))
    }

    /// Re-seals under the current version when `sealed` uses an older one.
    ///
    /// # Errors
    /// As [`EncryptionKeyring::open`] and [`EncryptionKeyring::seal`].
    pub fn reseal(
        &self,
        key_id: &KeyId,
        sealed: &SealedSecret,
    ) -> Result<Option<SealedSecret>, CryptoError> {
        if sealed.key_version == self.current_version() {
            return Ok(None);
        }
        let plain = self.open(key_id, sealed)?;
        self.seal(key_id, &plain).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(v: &[(u32, u8)]) -> EncryptionKeyring {
        EncryptionKeyring::new(
            v.iter()
                .map(|(n, b)| (*n, Zeroizing::new(vec![*b; 32])))
                .collect(),
        )
        .unwrap()
    }

    #[test]
    fn seal_open_reseal() {
        let id: KeyId = "ABCDEFGHIJKL".parse().unwrap();
        let other: KeyId = "ABCDEFGHIJKM".parse().unwrap();
        let old = ring(&[(1, 1)]);
        let sealed = old.seal(&id, b"kw_live_secret").unwrap();
        assert!(!sealed.bytes.windows(6).any(|w| w == b"secret"));
        assert_eq!(&old.open(&id, &sealed).unwrap()[..], b"kw_live_secret");
        assert_eq!(old.open(&other, &sealed), Err(CryptoError::Open));
        let both = ring(&[(1, 1), (2, 2)]);
        let new = both.reseal(&id, &sealed).unwrap().unwrap();
        assert_eq!(new.key_version, 2);
        assert_eq!(&both.open(&id, &new).unwrap()[..], b"kw_live_secret");
        assert!(both.reseal(&id, &new).unwrap().is_none());
        let mut tampered = new.clone();
        let last = tampered.bytes.len() - 1;
        tampered.bytes[last] ^= 1;
        assert_eq!(both.open(&id, &tampered), Err(CryptoError::Open));
        assert!(EncryptionKeyring::new(vec![(1, Zeroizing::new(vec![0; 31]))]).is_err());
    }
}
