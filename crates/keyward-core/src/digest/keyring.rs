//! The pepper keyring: several pepper versions at once, the newest for new keys.

use std::sync::Arc;

use subtle::ConstantTimeEq;

use crate::key::KeyId;

use super::*;

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
pub(super) struct Version {
    pub(super) version: u32,
    pub(super) digester: Box<dyn Digester>,
    /// What [`Keyring::burn`] spends for this version when its digester is slow on purpose
    /// (Argon2id): the fast keyed hash, so that made-up key ids never buy an Argon2 run.
    pub(super) burner: Option<Box<dyn Digester>>,
}

/// The pepper keyring: several versions at once, the newest used for new keys.
#[derive(Debug, Clone)]
pub struct Keyring(pub(super) Arc<[Version]>);

/// Builds a [`Keyring`].
#[derive(Debug, Default)]
pub struct KeyringBuilder {
    pub(super) entries: Vec<(u32, DigestAlgorithm, Pepper)>,
    pub(super) insecure: bool,
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

    pub(super) fn current(&self) -> &Version {
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
    pub(crate) fn burn(&self, key_id: &KeyId, secret: &str) {
        let v = self.current();
        let d = v
            .burner
            .as_deref()
            .unwrap_or(&*v.digester)
            .digest(key_id, secret.as_bytes());
        std::hint::black_box(d);
    }
}
