//! Maps database errors to [`StoreErrorKind`]s.
//!
//! Connection, pool, timeout, lock and shutdown errors are `Unavailable` (the engine answers 503
//! and the store recovers when the database does); a unique violation is `Conflict`; rows that
//! cannot be decoded are `Corrupt`. Nothing maps to "not found".

use keyward_core::store::{StoreError, StoreErrorKind};
use sea_orm::{DbErr, RuntimeErr, SqlErr};

/// The kind of a database error.
pub(crate) fn kind_of(e: &DbErr) -> StoreErrorKind {
    if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) {
        return StoreErrorKind::Conflict;
    }
    match e {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => StoreErrorKind::Unavailable,
        DbErr::Exec(rt) | DbErr::Query(rt) => match rt {
            RuntimeErr::SqlxError(s) => sqlx_kind(s),
            _ => StoreErrorKind::Other,
        },
        DbErr::Type(_) | DbErr::Json(_) | DbErr::TryIntoErr { .. } | DbErr::ConvertFromU64(_) => {
            StoreErrorKind::Corrupt
        }
        _ => StoreErrorKind::Other,
    }
}

fn sqlx_kind(e: &sea_orm::sqlx::Error) -> StoreErrorKind {
    use sea_orm::sqlx::Error as E;
    match e {
        E::Io(_)
        | E::Tls(_)
        | E::Protocol(_)
        | E::PoolTimedOut
        | E::PoolClosed
        | E::WorkerCrashed => StoreErrorKind::Unavailable,
        E::Database(db) => {
            if transient_database_error(db.as_ref()) {
                StoreErrorKind::Unavailable
            } else {
                StoreErrorKind::Other
            }
        }
        E::ColumnNotFound(_)
        | E::ColumnDecode { .. }
        | E::Decode(_)
        | E::TypeNotFound { .. }
        | E::ColumnIndexOutOfBounds { .. } => StoreErrorKind::Corrupt,
        _ => StoreErrorKind::Other,
    }
}

/// Whether a server-reported error is about load or availability rather than the statement:
/// connection exceptions, deadlocks and serialization failures, lock and statement timeouts,
/// too many connections, shutdowns, SQLite's busy and locked.
fn transient_database_error(db: &dyn sea_orm::sqlx::error::DatabaseError) -> bool {
    #[cfg(feature = "mysql")]
    if let Some(my) = db.try_downcast_ref::<sea_orm::sqlx::mysql::MySqlDatabaseError>() {
        // 1040 too many connections, 1053 shutdown in progress, 1205 lock wait timeout,
        // 1213 deadlock, 1927 connection killed, 2006/2013 server gone, 3024/1969 query timeout.
        return matches!(
            my.number(),
            1040 | 1053 | 1205 | 1213 | 1927 | 2006 | 2013 | 3024 | 1969
        );
    }
    let code = db.code();
    let code = code.as_deref().unwrap_or("");
    // SQLite result codes: 5 BUSY (and extended 261, 517, 773), 6 LOCKED (262, 518), 10 IOERR,
    // 13 FULL, 14 CANTOPEN.
    if matches!(
        code,
        "5" | "261" | "517" | "773" | "6" | "262" | "518" | "10" | "13" | "14"
    ) {
        return true;
    }
    // SQLSTATE (PostgreSQL): connection exceptions, transaction rollbacks (serialization,
    // deadlock), insufficient resources, operator intervention (shutdown, timeouts), lock not
    // available.
    code.starts_with("08")
        || code.starts_with("40")
        || code.starts_with("53")
        || code.starts_with("57")
        || code == "55P03"
}

/// Whether retrying the whole transaction may succeed (deadlock, serialization, busy).
pub(crate) fn retryable(e: &DbErr) -> bool {
    let (DbErr::Exec(RuntimeErr::SqlxError(s)) | DbErr::Query(RuntimeErr::SqlxError(s))) = e else {
        return false;
    };
    let sea_orm::sqlx::Error::Database(db) = s.as_ref() else {
        return false;
    };
    #[cfg(feature = "mysql")]
    if let Some(my) = db.try_downcast_ref::<sea_orm::sqlx::mysql::MySqlDatabaseError>() {
        return matches!(my.number(), 1205 | 1213);
    }
    matches!(
        db.code().as_deref().unwrap_or(""),
        "40001" | "40P01" | "5" | "261" | "517" | "6" | "262"
    )
}

/// Whether `e` says the connection itself is gone: the server closed it, shut down or killed
/// it (a read may go again on another connection; a write may not know whether it committed).
pub(crate) fn lost_connection(e: &DbErr) -> bool {
    let (DbErr::Exec(RuntimeErr::SqlxError(s)) | DbErr::Query(RuntimeErr::SqlxError(s))) = e else {
        return false;
    };
    let db = match s.as_ref() {
        sea_orm::sqlx::Error::Io(_) | sea_orm::sqlx::Error::Protocol(_) => return true,
        sea_orm::sqlx::Error::Database(db) => db,
        _ => return false,
    };
    #[cfg(feature = "mysql")]
    if let Some(my) = db.try_downcast_ref::<sea_orm::sqlx::mysql::MySqlDatabaseError>() {
        // 1053 shutdown in progress, 1927 connection killed, 2006/2013 server gone.
        return matches!(my.number(), 1053 | 1927 | 2006 | 2013);
    }
    // SQLSTATE 08: connection exceptions; 57P01-57P03: administrator or crash shutdown, cannot
    // connect now (PostgreSQL's answer to `pg_terminate_backend` and to a restart).
    let code = db.code();
    let code = code.as_deref().unwrap_or("");
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03")
}

/// A [`StoreError`] for `e` during `op`. The database's text is kept as the source (for logs);
/// it never contains a secret: keyward stores digests only.
pub(crate) fn store_err(op: &'static str, e: DbErr) -> StoreError {
    let kind = kind_of(&e);
    let message = match kind {
        StoreErrorKind::Unavailable => format!("SQL store unavailable during {op}"),
        StoreErrorKind::Conflict => format!("duplicate key id during {op}"),
        StoreErrorKind::Corrupt => format!("undecodable row during {op}"),
        _ => format!("SQL store error during {op}"),
    };
    StoreError::new(kind, message).with_source(e)
}

/// A [`StoreError`] for a row whose content does not decode.
pub(crate) fn corrupt(what: &'static str) -> StoreError {
    StoreError::new(StoreErrorKind::Corrupt, what)
}
