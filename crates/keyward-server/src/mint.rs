//! `keyward keys create --count N | --owners-from FILE --out FILE`: many keys through the
//! engine's batch path ([`Keyward::create_keys`]), [`MAX_BATCH`] to a transaction, their raw
//! keys written once to a new file only its owner can read, never printed or logged.

use std::io::Write as _;
use std::path::Path;
use std::time::Instant;

use keyward_core::management::{CreateKeyRequest, CreateKeysRequest, MAX_BATCH, NewKey};
use keyward_core::{Actor, Keyward};
use zeroize::Zeroizing;

use crate::error::AppError;

/// The owner ids of `file`, one a line; blank lines and `#` comments are skipped.
///
/// # Errors
/// `Io` when the file cannot be read, `Config` when it names no owner.
pub(crate) fn owners_from(file: &Path) -> Result<Vec<String>, AppError> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| AppError::Io(format!("cannot read {}: {e}", file.display())))?;
    let owners: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect();
    if owners.is_empty() {
        return Err(AppError::config(format!(
            "{} names no owner",
            file.display()
        )));
    }
    Ok(owners)
}

/// A new file for raw keys: created here (never an existing one), mode 0600.
fn create_key_file(path: &Path) -> Result<std::fs::File, AppError> {
    crate::secret_file::refuse_open_directory(path, "the key file")?;
    crate::secret_file::create_new_private(path).map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::AlreadyExists {
            " (it exists: keyward writes raw keys to a new file only)"
        } else {
            ""
        };
        AppError::Io(format!("cannot create {}: {e}{hint}", path.display()))
    })
}

/// Batches in flight at once. Measured (100,000 keys into PostgreSQL 15 on loopback, this
/// machine's two cores, three runs each): one at a time makes 37–41 k keys/s, the client busy
/// 0.9 s of 2.7 s and the rest waiting on the database; two make 52–55 k; three 55–59 k.
const IN_FLIGHT: usize = 3;

/// Creates `count` keys like `req` for each of `owners`, in batches of [`MAX_BATCH`], each
/// batch all or nothing, [`IN_FLIGHT`] at a time. Each batch's keys are written to `path` (a
/// JSON object a line: `owner_id`, `key_id`, `name`, `api_key`) as it completes; after a
/// failure, the batches in flight finish and are written, so that the file holds exactly the
/// keys that exist.
///
/// Answers the summary to print.
///
/// # Errors
/// The file cannot be created or written; a batch is refused (the error says how many keys
/// were created before it).
pub(crate) async fn create_many(
    kw: &Keyward,
    owners: &[String],
    count: u32,
    req: &CreateKeyRequest,
    path: &Path,
    as_json: bool,
) -> Result<String, AppError> {
    let per_owner = usize::try_from(count).unwrap_or(usize::MAX);
    let total = owners.len().saturating_mul(per_owner);
    let mut file = create_key_file(path)?;
    let started = Instant::now();
    let mut pending = owners
        .iter()
        .flat_map(|o| std::iter::repeat_n(o, per_owner))
        .peekable();
    let mut done = 0_usize;
    let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut running = tokio::task::JoinSet::new();
    let mut failure: Option<AppError> = None;
    // Keys created after the file could no longer be written.
    let mut unwritten = 0_usize;
    loop {
        while failure.is_none() && running.len() < IN_FLIGHT && pending.peek().is_some() {
            let keys: Vec<NewKey> = pending
                .by_ref()
                .take(MAX_BATCH)
                .map(|owner| NewKey {
                    owner_id: owner.clone(),
                    key: req.clone(),
                })
                .collect();
            let kw = kw.clone();
            running.spawn(async move {
                kw.create_keys(&Actor::cli(), CreateKeysRequest { keys })
                    .await
            });
        }
        let Some(joined) = running.join_next().await else {
            break;
        };
        let batch = match joined {
            Ok(Ok(batch)) => batch,
            // The batches in flight still finish, and their keys are written.
            Ok(Err(e)) => {
                failure.get_or_insert(e.into());
                continue;
            }
            Err(e) => {
                failure.get_or_insert(AppError::Io(format!("a batch stopped: {e}")));
                continue;
            }
        };
        if unwritten > 0 {
            // A write failed: what follows it in the file could not be trusted.
            unwritten += batch.items.len();
            continue;
        }
        // The raw key goes into a buffer wiped on drop, never through a JSON value (a raw key
        // is base62 and `_`: nothing to escape).
        let mut lines = Zeroizing::new(String::with_capacity(batch.items.len() * 160));
        for c in &batch.items {
            let text = |s: &str| serde_json::to_string(s).unwrap_or_default();
            lines.push_str(&format!(
                "{{\"owner_id\":{},\"key_id\":\"{}\",\"name\":{},\"api_key\":\"",
                text(&c.key.owner_id),
                c.key.id,
                text(&c.key.name)
            ));
            lines.push_str(c.api_key.expose_secret());
            lines.push_str("\"}\n");
        }
        if let Err(e) = file.write_all(lines.as_bytes()) {
            unwritten = batch.items.len();
            failure.get_or_insert(AppError::Io(format!(
                "cannot write {}: {e}",
                path.display()
            )));
            continue;
        }
        done += batch.items.len();
        if tty && total > MAX_BATCH && !as_json {
            eprint!("\rkeys create: {done} / {total}");
        }
    }
    file.sync_all()
        .map_err(|e| AppError::Io(format!("cannot sync {}: {e}", path.display())))?;
    match failure {
        None => {}
        Some(e) if done == 0 => {
            // Nothing was created: no empty key file is left behind.
            drop(file);
            let _ = std::fs::remove_file(path);
            return Err(e);
        }
        Some(e) => {
            let lost = if unwritten > 0 {
                format!(
                    ", and {unwritten} more created and not written: revoke them (`keyward keys \
                     list --owner …` finds them)"
                )
            } else {
                String::new()
            };
            return Err(AppError::Io(format!(
                "{e}; {done} keys were created and written to {} before it{lost}",
                path.display()
            )));
        }
    }
    if tty && total > MAX_BATCH && !as_json {
        eprintln!();
    }
    let seconds = started.elapsed().as_secs_f64();
    if as_json {
        let summary = serde_json::json!({
            "created": done,
            "out": path.display().to_string(),
            "seconds": seconds,
        });
        return Ok(format!("{summary}\n"));
    }
    Ok(format!(
        "Created {done} keys in {seconds:.1} s ({:.0} keys/s); their raw keys are in {} \
         (readable by you only; keyward cannot show them again).\n",
        done as f64 / seconds.max(1e-9),
        path.display()
    ))
}
