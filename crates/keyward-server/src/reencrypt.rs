//! `keyward keys re-encrypt`: re-seals every signing secret under the current version of the
//! encryption keyring, after `KEYWARD_ENCRYPTION_KEY` was rotated.
//!
//! The `KeyStore` trait has no operation for the sealed secret (its `update` writes management
//! fields only), so this works on the SQL store directly through keyward-sea-orm's public
//! entity and connection. Each row is updated with a compare-and-set on the old version, so a
//! concurrent change is skipped rather than overwritten, and the command can be re-run at any
//! time: secrets already under the current version are left alone.

use keyward_core::KeyId;
use keyward_core::crypto::{CryptoError, EncryptionKeyring};
use keyward_core::model::SealedSecret;
use keyward_sea_orm::SeaOrmKeyStore;
use keyward_sea_orm::entity::api_key::Column;
use keyward_sea_orm::sea_orm::sea_query::{Alias, Expr, ExprTrait as _, Order, Query};
use keyward_sea_orm::sea_orm::{ConnectionTrait as _, DbErr};
use serde::Serialize;

use crate::error::AppError;

/// Rows read per query.
const BATCH: u64 = 200;

/// A secret that could not be re-sealed.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Failure {
    /// The key id (or the stored text when it is not one).
    pub(crate) key_id: String,
    /// Why.
    pub(crate) reason: String,
}

/// What the command did.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Report {
    /// The encryption key version everything is now sealed under.
    pub(crate) current_version: u32,
    /// Signing keys found.
    pub(crate) signing_keys: u64,
    /// Secrets re-sealed by this run.
    pub(crate) resealed: u64,
    /// Secrets already under the current version.
    pub(crate) already_current: u64,
    /// Secrets changed by someone else while this ran (run again).
    pub(crate) skipped: u64,
    /// Secrets that could not be opened (their key version is not configured, or corrupt).
    pub(crate) failed: Vec<Failure>,
}

fn db_err(what: &str, e: &DbErr) -> AppError {
    AppError::Store(format!(
        "re-encrypt: cannot {what}: {}",
        e.to_string().replace(['\n', '\r'], " ")
    ))
}

/// Re-seals every signing secret in `store` under `keyring`'s current version, calling
/// `progress(done, total)` after each batch.
///
/// # Errors
/// A database failure (the work done so far is kept; run again to finish).
pub(crate) async fn run(
    store: &SeaOrmKeyStore,
    keyring: &EncryptionKeyring,
    mut progress: impl FnMut(u64, u64),
) -> Result<Report, AppError> {
    let db = store.connection();
    let table = Alias::new(store.tables().keys());
    let count = Query::select()
        .expr_as(Expr::col(Column::Id).count(), Alias::new("n"))
        .from(table.clone())
        .and_where(Expr::col(Column::SealedSecret).is_not_null())
        .to_owned();
    let total: i64 = match db
        .query_one(&count)
        .await
        .map_err(|e| db_err("count signing keys", &e))?
    {
        Some(row) => row
            .try_get("", "n")
            .map_err(|e| db_err("count signing keys", &e))?,
        None => 0,
    };
    let total = u64::try_from(total).unwrap_or(0);
    let mut report = Report {
        current_version: keyring.current_version(),
        ..Report::default()
    };
    let mut last_id: i64 = 0;
    loop {
        let select = Query::select()
            .columns([
                Column::Id,
                Column::KeyId,
                Column::SealedSecret,
                Column::SealedSecretVersion,
            ])
            .from(table.clone())
            .and_where(Expr::col(Column::SealedSecret).is_not_null())
            .and_where(Expr::col(Column::Id).gt(last_id))
            .order_by(Column::Id, Order::Asc)
            .limit(BATCH)
            .to_owned();
        let rows = db
            .query_all(&select)
            .await
            .map_err(|e| db_err("read signing keys", &e))?;
        if rows.is_empty() {
            break;
        }
        for row in &rows {
            let id: i64 = row
                .try_get("", "id")
                .map_err(|e| db_err("read a row", &e))?;
            last_id = Ord::max(last_id, id);
            let key_id: String = row
                .try_get("", "key_id")
                .map_err(|e| db_err("read a row", &e))?;
            let bytes: Option<Vec<u8>> = row
                .try_get("", "sealed_secret")
                .map_err(|e| db_err("read a row", &e))?;
            let version: Option<i64> = row
                .try_get("", "sealed_secret_version")
                .map_err(|e| db_err("read a row", &e))?;
            report.signing_keys += 1;
            let fail = |reason: &str| Failure {
                key_id: key_id.clone(),
                reason: reason.to_owned(),
            };
            let (Some(bytes), Some(stored_version)) = (bytes, version) else {
                report.failed.push(fail("sealed secret without a version"));
                continue;
            };
            let (Ok(id_parsed), Ok(key_version)) =
                (key_id.parse::<KeyId>(), u32::try_from(stored_version))
            else {
                report.failed.push(fail("malformed key id or version"));
                continue;
            };
            let sealed = SealedSecret { key_version, bytes };
            let fresh = match keyring.reseal(&id_parsed, &sealed) {
                Ok(None) => {
                    report.already_current += 1;
                    continue;
                }
                Ok(Some(fresh)) => fresh,
                Err(CryptoError::UnknownVersion(v)) => {
                    report.failed.push(fail(&format!(
                        "sealed under encryption key version {v}, which is not configured (add it to KEYWARD_ENCRYPTION_KEY_PREVIOUS)"
                    )));
                    continue;
                }
                Err(e) => {
                    report.failed.push(fail(&e.to_string()));
                    continue;
                }
            };
            let update = Query::update()
                .table(table.clone())
                .value(Column::SealedSecret, fresh.bytes.clone())
                .value(Column::SealedSecretVersion, i64::from(fresh.key_version))
                .and_where(Expr::col(Column::KeyId).eq(key_id.as_str()))
                .and_where(Expr::col(Column::SealedSecretVersion).eq(stored_version))
                .to_owned();
            let res = db
                .execute(&update)
                .await
                .map_err(|e| db_err("write a re-sealed secret", &e))?;
            if res.rows_affected() == 1 {
                report.resealed += 1;
            } else {
                report.skipped += 1;
            }
        }
        progress(report.signing_keys, Ord::max(total, report.signing_keys));
    }
    Ok(report)
}
