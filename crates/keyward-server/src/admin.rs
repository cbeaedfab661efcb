//! The admin credential: `KEYWARD_ADMIN_TOKEN` when set (compared in constant time), and any
//! key holding `keyward:admin`. Without a token, the first start creates such a key for owner
//! `keyward-admin` (once per database, even when several instances start together) and hands it
//! to the operator outside the log stream: in a 0600 file ([`write_key_file`]), and on stderr
//! only when stderr is a terminal. Later starts see that the owner has a key and stay quiet.

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use keyward_core::Keyward;
use keyward_core::management::{CreateKeyRequest, CreatedKey};
use subtle::ConstantTimeEq as _;

use crate::config::ADMIN_SCOPE;
use crate::error::AppError;

/// Environment variable with a static admin token.
pub(crate) const ADMIN_TOKEN_ENV: &str = "KEYWARD_ADMIN_TOKEN";
/// Owner of the bootstrapped admin key.
pub(crate) const ADMIN_OWNER: &str = "keyward-admin";
/// Shortest admin token accepted.
const MIN_TOKEN_LEN: usize = 16;

/// A static admin token, kept as a keyed hash so that comparisons take the same time whatever
/// the presented length.
pub(crate) struct AdminToken([u8; 32]);

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminToken(***)")
    }
}

const HASH_CONTEXT: &str = "keyward-server admin token comparison v1";

impl AdminToken {
    /// Reads `KEYWARD_ADMIN_TOKEN`.
    ///
    /// # Errors
    /// A token shorter than 16 characters.
    pub(crate) fn from_env() -> Result<Option<Self>, AppError> {
        let Some(raw) = std::env::var(ADMIN_TOKEN_ENV).ok() else {
            return Ok(None);
        };
        let raw = raw.trim();
        if raw.is_empty() {
            return Ok(None);
        }
        if raw.len() < MIN_TOKEN_LEN {
            return Err(AppError::config(format!(
                "{ADMIN_TOKEN_ENV} is too short: use at least {MIN_TOKEN_LEN} random characters (`openssl rand -base64 32`)"
            )));
        }
        Ok(Some(Self(blake3::derive_key(HASH_CONTEXT, raw.as_bytes()))))
    }

    /// Whether `presented` is the token. Constant time in the token.
    pub(crate) fn matches(&self, presented: &str) -> bool {
        let h = blake3::derive_key(HASH_CONTEXT, presented.trim().as_bytes());
        bool::from(h.ct_eq(&self.0))
    }
}

/// Creates the admin key unless `keyward-admin` already has one (bootstrapped earlier).
///
/// # Errors
/// The store is unreachable or refuses the key.
pub(crate) async fn bootstrap(kw: &Keyward) -> Result<Option<CreatedKey>, AppError> {
    let existing = kw
        .list_keys(
            &keyward_core::Actor::admin_for(ADMIN_OWNER),
            &keyward_core::management::KeyQuery {
                limit: Some(1),
                ..Default::default()
            },
        )
        .await?;
    if !existing.items.is_empty() {
        return Ok(None);
    }
    let req = CreateKeyRequest {
        name: "admin (bootstrap)".into(),
        description: Some("Created by `keyward serve` on first start".into()),
        scopes: vec![ADMIN_SCOPE.into()],
        ..Default::default()
    };
    // The owner cap of one, atomic in every store, settles a race between instances starting
    // together: one creates the key, the others find it there.
    Ok(kw.create_first_key(ADMIN_OWNER, req).await?)
}

/// Where the bootstrapped admin key is written: `--admin-key-file`, else beside a SQLite
/// database (`keyward.db` → `keyward.admin-key`), else `keyward.admin-key` in the working
/// directory.
pub(crate) fn key_file_for(explicit: Option<&Path>, database_url: &str) -> PathBuf {
    if let Some(p) = explicit {
        return p.to_path_buf();
    }
    crate::pepper::sqlite_path(database_url).map_or_else(
        || PathBuf::from("keyward.admin-key"),
        |db| db.with_extension("admin-key"),
    )
}

/// Writes the raw admin key to `path`, readable by its owner only (0600), replacing any older
/// file atomically (a temporary file in the same folder, then a rename).
///
/// # Errors
/// The file cannot be written.
pub(crate) fn write_key_file(path: &Path, created: &CreatedKey) -> Result<(), AppError> {
    let io = |e: std::io::Error| {
        AppError::Io(format!(
            "cannot write the admin key file {}: {e}",
            path.display()
        ))
    };
    // A fresh name created exclusively (0600), then moved into place: a link planted in the
    // directory is never followed.
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let mut tmp = tempfile::Builder::new()
        .prefix(".keyward-admin-key.")
        .tempfile_in(dir.unwrap_or(Path::new(".")))
        .map_err(io)?;
    let body = zeroize::Zeroizing::new(format!(
        "{key}\n# keyward admin key {id} (owner {owner}, scope {scope}). Store it in a secret \
         manager, then delete this file.\n",
        key = created.api_key.expose_secret(),
        id = created.key.id,
        owner = ADMIN_OWNER,
        scope = ADMIN_SCOPE,
    ));
    tmp.write_all(body.as_bytes())
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

/// The one-time banner with the bootstrapped key and how to use it.
pub(crate) fn banner(created: &CreatedKey, base_url: &str) -> String {
    let key = created.api_key.expose_secret();
    let rule = "=".repeat(78);
    format!(
        "{rule}\n\
         keyward: created the admin key. It is shown ONCE and never printed again:\n\n    \
         {key}\n\n\
         Store it in your secret manager now. Use it as a bearer token on the admin routes:\n\n    \
         export KEYWARD_ADMIN_KEY='{key}'\n    \
         curl -X POST {base_url}/admin/owners/alice/api-keys \\\n        \
         -H \"Authorization: Bearer $KEYWARD_ADMIN_KEY\" -H 'Content-Type: application/json' \\\n        \
         -d '{{\"name\": \"first key\", \"scopes\": [\"reports:read\"]}}'\n\n\
         Lost it? Revoke it with `keyward keys revoke {id}` and create another with\n\
         `keyward keys create --owner {owner} --name admin --scope {scope}`, or set\n\
         KEYWARD_ADMIN_TOKEN to a secret of your own.\n\
         {rule}\n",
        id = created.key.id,
        owner = ADMIN_OWNER,
        scope = ADMIN_SCOPE,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_matches_only_itself() {
        let t = AdminToken(blake3::derive_key(HASH_CONTEXT, b"0123456789abcdef0123"));
        assert!(t.matches("0123456789abcdef0123"));
        assert!(t.matches(" 0123456789abcdef0123 "));
        assert!(!t.matches("0123456789abcdef012"));
        assert!(!t.matches(""));
        assert_eq!(format!("{t:?}"), "AdminToken(***)");
    }
}
