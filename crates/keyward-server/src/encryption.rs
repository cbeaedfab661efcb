//! The encryption keyring that seals the secrets of signing keys, from `KEYWARD_ENCRYPTION_KEY`
//! (and `KEYWARD_ENCRYPTION_KEY_PREVIOUS` during a rotation).
//!
//! A key is `[VERSION:]KEY`, the key exactly 32 bytes in base64 (`openssl rand -base64 32`) or
//! hex. Every sealed secret records the version that sealed it, so a key keeps its version for
//! life. Without explicit versions the lone current key is version 1; with one previous key
//! (version 1) the current one is version 2. `KEYWARD_ENCRYPTION_KEY_PREVIOUS` may list several
//! keys separated by commas; with more than one, each needs its version. New secrets are sealed
//! under the highest version; `keyward keys re-encrypt` re-seals older ones.
//!
//! Values are never echoed in messages, only the variable's name and what is wrong with it.

use keyward_core::crypto::{ENCRYPTION_KEY_LEN, EncryptionKeyring};
use zeroize::Zeroizing;

use crate::error::AppError;
use keyward_core::digest::decode_secret;

/// Environment variable holding the current encryption key.
pub(crate) const ENCRYPTION_KEY_ENV: &str = "KEYWARD_ENCRYPTION_KEY";
/// Environment variable holding previous encryption keys, comma-separated.
pub(crate) const ENCRYPTION_KEY_PREVIOUS_ENV: &str = "KEYWARD_ENCRYPTION_KEY_PREVIOUS";

/// One `[VERSION:]KEY` entry, the version if given.
fn parse_entry(what: &str, raw: &str) -> Result<(Option<u32>, Zeroizing<Vec<u8>>), AppError> {
    let raw = raw.trim();
    let (version, secret) = match raw.split_once(':') {
        Some((v, s)) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => {
            let v: u32 = v.parse().ok().filter(|v| *v > 0).ok_or_else(|| {
                AppError::config(format!("{what}: the version must be a number from 1"))
            })?;
            (Some(v), s.trim())
        }
        _ => (None, raw),
    };
    let bytes = decode_secret(secret).ok_or_else(|| {
        AppError::config(format!(
            "{what}: not base64 or hex (generate a key with `openssl rand -base64 32`)"
        ))
    })?;
    if bytes.len() != ENCRYPTION_KEY_LEN {
        return Err(AppError::config(format!(
            "{what}: must be exactly {ENCRYPTION_KEY_LEN} bytes, got {} (generate a key with `openssl rand -base64 32`)",
            bytes.len()
        )));
    }
    if let Some(why) = keyward_core::digest::weakness(&bytes) {
        return Err(AppError::config(format!(
            "{what}: not a random key, it {why} (generate one with `openssl rand -base64 32`)"
        )));
    }
    Ok((version, bytes))
}

/// Builds the keyring from the values of the two variables (`None` or blank = unset).
///
/// # Errors
/// A malformed, short or long key, a missing version where several previous keys are given, a
/// version or key used twice, or previous keys without a current one.
pub(crate) fn keyring_from(
    current: Option<&str>,
    previous: Option<&str>,
) -> Result<Option<EncryptionKeyring>, AppError> {
    let current = current.filter(|s| !s.trim().is_empty());
    let previous = previous.filter(|s| !s.trim().is_empty());
    let Some(current) = current else {
        if previous.is_some() {
            return Err(AppError::config(format!(
                "{ENCRYPTION_KEY_PREVIOUS_ENV} is set but {ENCRYPTION_KEY_ENV} is not: set the new key in {ENCRYPTION_KEY_ENV}"
            )));
        }
        return Ok(None);
    };
    let mut old = Vec::new();
    if let Some(list) = previous {
        let items: Vec<&str> = list.split(',').filter(|s| !s.trim().is_empty()).collect();
        for (i, item) in items.iter().enumerate() {
            let what = format!("{ENCRYPTION_KEY_PREVIOUS_ENV} entry {}", i + 1);
            let (v, bytes) = parse_entry(&what, item)?;
            let v = match (v, items.len()) {
                (Some(v), _) => v,
                (None, 1) => 1,
                (None, _) => {
                    return Err(AppError::config(format!(
                        "{what}: with several previous keys each needs its version (`2:KEY,1:KEY`)"
                    )));
                }
            };
            old.push((v, bytes));
        }
    }
    let (v, bytes) = parse_entry(ENCRYPTION_KEY_ENV, current)?;
    let v = v.unwrap_or_else(|| old.iter().map(|(v, _)| *v).max().map_or(1, |m| m + 1));
    let mut all = vec![(v, bytes)];
    all.extend(old);
    for (i, (va, ka)) in all.iter().enumerate() {
        for (vb, kb) in all.iter().skip(i + 1) {
            if va == vb {
                return Err(AppError::config(format!(
                    "encryption keys: version {va} is used twice ({ENCRYPTION_KEY_ENV} and {ENCRYPTION_KEY_PREVIOUS_ENV} must name distinct versions)"
                )));
            }
            if ka == kb {
                return Err(AppError::config(format!(
                    "encryption keys: versions {va} and {vb} are the same key"
                )));
            }
        }
    }
    EncryptionKeyring::new(all)
        .map(Some)
        .map_err(|e| AppError::config(format!("invalid encryption keyring: {e}")))
}

/// Reads the keyring from the environment; `None` when `KEYWARD_ENCRYPTION_KEY` is unset
/// (request signing is then disabled).
///
/// # Errors
/// As [`keyring_from`].
pub(crate) fn keyring_from_env() -> Result<Option<EncryptionKeyring>, AppError> {
    let current = std::env::var(ENCRYPTION_KEY_ENV).ok();
    let previous = std::env::var(ENCRYPTION_KEY_PREVIOUS_ENV).ok();
    keyring_from(current.as_deref(), previous.as_deref())
}

/// The encryption key bytes configured in the environment, as far as they parse (for the
/// check that no pepper is also an encryption key; errors are reported where the keyring is
/// built).
pub(crate) fn configured_key_bytes() -> Vec<Zeroizing<Vec<u8>>> {
    let mut out = Vec::new();
    for var in [ENCRYPTION_KEY_ENV, ENCRYPTION_KEY_PREVIOUS_ENV] {
        let Ok(value) = std::env::var(var) else {
            continue;
        };
        for item in value.split(',').filter(|s| !s.trim().is_empty()) {
            if let Ok((_, bytes)) = parse_entry(var, item) {
                out.push(bytes);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use base64::Engine as _;

    use super::*;

    /// 32 distinct bytes per `seed`, base64: a key that passes the randomness check.
    fn b64(seed: u8) -> String {
        let bytes: Vec<u8> = (0u8..32)
            .map(|i| seed.wrapping_mul(53).wrapping_add(i.wrapping_mul(11)))
            .collect();
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    #[test]
    fn versions() {
        assert!(keyring_from(None, None).unwrap().is_none());
        assert!(keyring_from(Some("  "), None).unwrap().is_none());
        let k = keyring_from(Some(&b64(1)), None).unwrap().unwrap();
        assert_eq!(k.current_version(), 1);
        let k = keyring_from(Some(&b64(2)), Some(&b64(1))).unwrap().unwrap();
        assert_eq!(k.current_version(), 2);
        let prev = format!("3:{},1:{}", b64(3), b64(1));
        let k = keyring_from(Some(&b64(4)), Some(&prev)).unwrap().unwrap();
        assert_eq!(k.current_version(), 4);
        let hex = "8f3a1c9e5b7d2f4a6c8e0b1d3f5a7c9e2b4d6f8a0c1e3b5d7f9a2c4e6b8d0f13";
        let k = keyring_from(Some(&format!("7:{hex}")), None)
            .unwrap()
            .unwrap();
        assert_eq!(k.current_version(), 7);
        let e = keyring_from(Some(&format!("7:{}", "ab".repeat(32))), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("repeats one byte"), "{e}");
    }

    #[test]
    fn refusals_never_echo_the_key() {
        let short = base64::engine::general_purpose::STANDARD.encode([9u8; 16]);
        let cases = [
            (Some(short.as_str()), None, "exactly 32 bytes"),
            (Some("not base64 !!"), None, "not base64"),
            (None, Some(short.as_str()), "is not"),
        ];
        for (cur, prev, msg) in cases {
            let e = keyring_from(cur, prev).unwrap_err().to_string();
            assert!(e.contains(msg), "{e}");
            assert!(!e.contains(&short) && !e.contains("!!"), "{e}");
        }
        let two = format!("{},{}", b64(1), b64(2));
        let e = keyring_from(Some(&b64(3)), Some(&two))
            .unwrap_err()
            .to_string();
        assert!(e.contains("needs its version"), "{e}");
        let e = keyring_from(Some(&format!("1:{}", b64(1))), Some(&b64(2)))
            .unwrap_err()
            .to_string();
        assert!(e.contains("used twice"), "{e}");
        let e = keyring_from(Some(&b64(1)), Some(&b64(1)))
            .unwrap_err()
            .to_string();
        assert!(e.contains("same key"), "{e}");
        assert!(!e.contains(&b64(1)));
    }
}
