//! The pepper keyring, from `KEYWARD_PEPPER` (and `KEYWARD_PEPPER_PREVIOUS`) or, for SQLite
//! only, from a generated 0600 file beside the database.
//!
//! A pepper is `[VERSION:]SECRET`, the secret in hex or base64 (at least 32 bytes). Without an
//! explicit version the current pepper is version 1, or 2 when a previous one (version 1) is set.
//! Versions are stored with every digest, so a pepper must keep its version for life: from the
//! second rotation on, give versions explicitly (`KEYWARD_PEPPER=3:…`,
//! `KEYWARD_PEPPER_PREVIOUS=2:…`).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use keyward_core::digest::MIN_PEPPER_LEN;
use keyward_core::{Keyring, Pepper};

use crate::error::AppError;

/// Environment variable holding the current pepper.
pub(crate) const PEPPER_ENV: &str = "KEYWARD_PEPPER";
/// Environment variable holding the previous pepper, during a rotation.
pub(crate) const PEPPER_PREVIOUS_ENV: &str = "KEYWARD_PEPPER_PREVIOUS";

/// Where a SQLite URL keeps its file: `Some(path)`, or `None` for in-memory databases and
/// URLs of other databases.
pub(crate) fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let path = rest.split('?').next().unwrap_or("");
    if path.is_empty() || path == ":memory:" || path.starts_with(":memory:") {
        return None;
    }
    Some(PathBuf::from(path))
}

/// Whether `url` names a SQLite database (file or memory).
pub(crate) fn is_sqlite(url: &str) -> bool {
    url.starts_with("sqlite:")
}

/// The pepper file for a SQLite database file: `keyward.db` → `keyward.pepper`.
pub(crate) fn pepper_file_for(db: &Path) -> PathBuf {
    db.with_extension("pepper")
}

/// Parses `[VERSION:]SECRET` (hex or base64, ≥ 32 bytes).
fn parse_pepper(what: &str, raw: &str, default_version: u32) -> Result<(u32, Pepper), AppError> {
    let raw = raw.trim();
    let (version, secret) = match raw.split_once(':') {
        Some((v, s)) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => {
            let v: u32 = v.parse().ok().filter(|v| *v > 0).ok_or_else(|| {
                AppError::config(format!("{what}: version must be a number from 1"))
            })?;
            (v, s)
        }
        _ => (default_version, raw),
    };
    let pepper =
        Pepper::from_encoded(secret).map_err(|e| AppError::config(format!("{what}: {e}")))?;
    let len = pepper.expose_secret().len();
    if len < MIN_PEPPER_LEN {
        return Err(AppError::config(format!(
            "{what}: too short ({len} bytes; at least {MIN_PEPPER_LEN} are needed, e.g. `openssl rand -base64 32`)"
        )));
    }
    Ok((version, pepper))
}

/// Where the keyring came from, for the startup log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PepperSource {
    /// `KEYWARD_PEPPER` (and maybe `KEYWARD_PEPPER_PREVIOUS`).
    Environment,
    /// An existing pepper file.
    File(PathBuf),
    /// A pepper file generated just now.
    Generated(PathBuf),
    /// An in-memory SQLite database: a throwaway pepper.
    Ephemeral,
}

/// Builds the keyring for `database_url` from the environment, or for SQLite from (or into)
/// the pepper file beside the database.
///
/// # Errors
/// A missing pepper for a non-SQLite database, a malformed or short pepper, an unreadable or
/// unwritable pepper file.
pub(crate) fn load_keyring(database_url: &str) -> Result<(Keyring, PepperSource), AppError> {
    let current = std::env::var(PEPPER_ENV)
        .ok()
        .filter(|s| !s.trim().is_empty());
    let previous = std::env::var(PEPPER_PREVIOUS_ENV)
        .ok()
        .filter(|s| !s.trim().is_empty());
    if let Some(cur) = current {
        let mut entries = Vec::new();
        let default_current = if previous.is_some() { 2 } else { 1 };
        entries.push(parse_pepper(PEPPER_ENV, &cur, default_current)?);
        if let Some(prev) = previous {
            entries.push(parse_pepper(PEPPER_PREVIOUS_ENV, &prev, 1)?);
        }
        return Ok((build(entries)?, PepperSource::Environment));
    }
    if previous.is_some() {
        return Err(AppError::config(format!(
            "{PEPPER_PREVIOUS_ENV} is set but {PEPPER_ENV} is not: set the new pepper in {PEPPER_ENV}"
        )));
    }
    if database_url.starts_with("memory:") {
        let pepper =
            Pepper::generate().map_err(|e| AppError::Io(format!("random source failed: {e}")))?;
        return Ok((build(vec![(1, pepper)])?, PepperSource::Ephemeral));
    }
    if !is_sqlite(database_url) {
        return Err(AppError::config(format!(
            "{PEPPER_ENV} must be set for this database (only SQLite generates a pepper file): \
             generate one with `openssl rand -base64 32` and keep it secret and stable"
        )));
    }
    let Some(db) = sqlite_path(database_url) else {
        let pepper =
            Pepper::generate().map_err(|e| AppError::Io(format!("random source failed: {e}")))?;
        return Ok((build(vec![(1, pepper)])?, PepperSource::Ephemeral));
    };
    let file = pepper_file_for(&db);
    crate::secret_file::refuse_open_directory(&file, "the pepper file")?;
    // Twice at most: when another instance publishes the file between our read and our write,
    // the second round reads theirs.
    for _ in 0..2 {
        if let Some(found) = read_or_create(&file)? {
            return Ok(found);
        }
    }
    Err(AppError::Io(format!(
        "pepper file {} appeared and vanished while starting",
        file.display()
    )))
}

/// Reads the pepper file, or creates it when missing. `None` when another process created it
/// first (read it again).
fn read_or_create(file: &Path) -> Result<Option<(Keyring, PepperSource)>, AppError> {
    let file = file.to_path_buf();
    match std::fs::read_to_string(&file) {
        Ok(text) => {
            refuse_shared(&file)?;
            let mut entries = Vec::new();
            for (i, line) in text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .enumerate()
            {
                let what = format!("pepper file {} line {}", file.display(), i + 1);
                entries.push(parse_pepper(&what, line, 1)?);
            }
            if entries.is_empty() {
                return Err(AppError::config(format!(
                    "pepper file {} is empty",
                    file.display()
                )));
            }
            Ok(Some((build(entries)?, PepperSource::File(file))))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let pepper = Pepper::generate()
                .map_err(|e| AppError::Io(format!("random source failed: {e}")))?;
            if !publish_pepper_file(&file, &pepper)? {
                return Ok(None);
            }
            Ok(Some((
                build(vec![(1, pepper)])?,
                PepperSource::Generated(file),
            )))
        }
        Err(e) => Err(AppError::Io(format!(
            "cannot read pepper file {}: {e}",
            file.display()
        ))),
    }
}

/// Refuses a pepper file that users other than its owner can read or write: the pepper is the
/// key to every digest in the database.
fn refuse_shared(file: &Path) -> Result<(), AppError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(file)
            .map_err(|e| AppError::Io(format!("cannot read pepper file {}: {e}", file.display())))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(AppError::config(format!(
                "pepper file {} is open to other users (mode {:o}): run `chmod 600 {}`",
                file.display(),
                mode & 0o777,
                file.display()
            )));
        }
    }
    Ok(())
}

/// Writes the pepper file whole, or not at all: the text goes to a private temporary file
/// beside it, which is then moved into place unless the file exists. Instances starting together never read a
/// half-written file, and only one of them publishes (`false`: another did first).
fn publish_pepper_file(path: &Path, pepper: &Pepper) -> Result<bool, AppError> {
    let encoded = zeroize::Zeroizing::new(
        base64::engine::general_purpose::STANDARD.encode(pepper.expose_secret()),
    );
    let body = zeroize::Zeroizing::new(format!(
        "# keyward pepper for the SQLite database beside this file. Keep it secret and keep it:\n\
         # without it no existing key verifies. Format: VERSION:BASE64 (one per line).\n1:{}\n",
        encoded.as_str()
    ));
    let io = |what: &str, e: std::io::Error| {
        AppError::Io(format!("cannot {what} pepper file {}: {e}", path.display()))
    };
    // A fresh name, created exclusively (`O_EXCL`, 0600): a link planted in the directory is
    // never followed (review finding 5; the name used to be predictable and truncated).
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let mut tmp = tempfile::Builder::new()
        .prefix(".keyward-pepper.")
        .tempfile_in(dir.unwrap_or(Path::new(".")))
        .map_err(|e| io("create", e))?;
    tmp.write_all(body.as_bytes())
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| io("write", e))?;
    match tmp.persist_noclobber(path) {
        Ok(_) => Ok(true),
        Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(io("create", e.error)),
    }
}

fn build(entries: Vec<(u32, Pepper)>) -> Result<Keyring, AppError> {
    let encryption = crate::encryption::configured_key_bytes();
    for (v, p) in &entries {
        if encryption.iter().any(|k| k.as_slice() == p.expose_secret()) {
            return Err(AppError::config(format!(
                "pepper version {v} is also an encryption key: {PEPPER_ENV} and \
                 KEYWARD_ENCRYPTION_KEY must be different secrets (`openssl rand -base64 32` each)"
            )));
        }
    }
    let mut b = Keyring::builder();
    for (v, p) in entries {
        b = b.pepper(v, p);
    }
    b.build()
        .map_err(|e| AppError::config(format!("invalid pepper keyring: {e}")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sqlite_paths() {
        assert_eq!(
            sqlite_path("sqlite://keyward.db?mode=rwc"),
            Some(PathBuf::from("keyward.db"))
        );
        assert_eq!(
            sqlite_path("sqlite:///tmp/x.db"),
            Some(PathBuf::from("/tmp/x.db"))
        );
        assert_eq!(
            sqlite_path("sqlite:data.db"),
            Some(PathBuf::from("data.db"))
        );
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("postgres://x"), None);
        assert_eq!(
            pepper_file_for(Path::new("keyward.db")),
            PathBuf::from("keyward.pepper")
        );
    }

    #[test]
    fn pepper_parsing() {
        let hex = "ab".repeat(32);
        let (v, p) = parse_pepper("t", &hex, 1).unwrap();
        assert_eq!((v, p.expose_secret().len()), (1, 32));
        let b64 = base64::engine::general_purpose::STANDARD.encode([7u8; 40]);
        let (v, p) = parse_pepper("t", &format!("3:{b64}"), 1).unwrap();
        assert_eq!((v, p.expose_secret().len()), (3, 40));
        assert!(parse_pepper("t", "c2hvcnQ=", 1).is_err());
        assert!(parse_pepper("t", "not base64 !!", 1).is_err());
        assert!(parse_pepper("t", &format!("0:{hex}"), 1).is_err());
    }

    /// Review finding 5: a link planted where the pepper is written (the old temporary name
    /// was `<file>.<pid>.tmp`, opened with create+truncate) does not capture the pepper.
    #[cfg(unix)]
    #[test]
    fn a_planted_link_does_not_capture_the_pepper() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("keyward.pepper");
        let capture = dir.path().join("captured");
        std::fs::write(&capture, "").unwrap();
        let planted = file.with_extension(format!("pepper.{}.tmp", std::process::id()));
        std::os::unix::fs::symlink(&capture, &planted).unwrap();
        let (_, source) = read_or_create(&file).unwrap().unwrap();
        assert_eq!(source, PepperSource::Generated(file.clone()));
        assert_eq!(std::fs::read_to_string(&capture).unwrap(), "", "captured");
        assert!(std::fs::read_to_string(&file).unwrap().contains("1:"));
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers.len(), 3, "no temporary file left: {leftovers:?}");
    }

    /// Review finding 5: a pepper file in a directory others can write to is refused.
    #[cfg(unix)]
    #[test]
    fn a_pepper_in_a_directory_others_can_write_is_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("keyward.pepper");
        crate::secret_file::refuse_open_directory(&file, "the pepper file").unwrap();
        for mode in [0o777, 0o1777, 0o770] {
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(mode)).unwrap();
            let err = crate::secret_file::refuse_open_directory(&file, "the pepper file")
                .unwrap_err()
                .to_string();
            assert!(err.contains("other users can write"), "{mode:o}: {err}");
        }
    }
}
