//! Cache misses that arrive together read the database together: [`Lookups`] queues the key ids
//! asked for while [`MAX_READERS`] reads are under way, and the next read takes the queue (up
//! to [`MAX_BATCH`] ids) in one `SELECT … WHERE key_id IN (…)`. A lone miss is read at once.
//!
//! Measured reason (`cargo xtask scale`, PostgreSQL on this two-core machine): a miss cost
//! about 72 µs of server CPU, half of it in the kernel sending to and waking PostgreSQL; one
//! round trip for several misses pays that once, and a reader that holds its connection
//! ([`Held`]) pays no pings around it (docs/performance.md).
//!
//! A key id only ever joins a read that has not been sent yet, so every answer comes from a
//! read that started after the caller asked: the engine's rule that a read begun before an
//! invalidation never fills the cache still holds.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use keyward_core::store::StoreError;
use keyward_core::{KeyId, KeyRecord};
use sea_orm::sqlx::{self, pool::PoolConnection};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseConnectionType, DbErr, RuntimeErr, Value,
};
use time::OffsetDateTime;

use crate::codec::{Decoded, KeyRow, key_row, model_from_row};
use crate::entity::api_key;
use tokio::sync::oneshot;

/// Reads under way at once; more misses wait for the next and share it. One, measured: with
/// one, misses are answered at 17.1 k req/s for 51 µs of server CPU each, with two at 15.7 k
/// for 57 µs (`cargo xtask scale`, 10⁵ keys, PostgreSQL; before [`Held`]).
pub(crate) const MAX_READERS: usize = 1;

/// Most key ids one read names.
pub(crate) const MAX_BATCH: usize = 256;

type Answer = Result<Option<KeyRecord>, StoreError>;

/// What waits for a read.
#[derive(Debug, Default)]
struct Queue {
    /// Readers running.
    readers: usize,
    /// Key ids asked for and not yet in a read, each with whoever asked.
    waiting: Vec<(KeyId, oneshot::Sender<Answer>)>,
}

/// The queue of key ids to read, shared by a store's clones.
#[derive(Debug, Default, Clone)]
pub(crate) struct Lookups(Arc<Mutex<Queue>>);

impl Lookups {
    /// Queues `key_id`; `true` when the caller should start a reader (fewer than
    /// [`MAX_READERS`] run). The answer arrives on the returned receiver.
    pub(crate) fn ask(&self, key_id: KeyId) -> (oneshot::Receiver<Answer>, bool) {
        let (tx, rx) = oneshot::channel();
        let mut q = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        q.waiting.push((key_id, tx));
        let start = q.readers < MAX_READERS;
        if start {
            q.readers += 1;
        }
        (rx, start)
    }

    /// The next key ids to read (at most [`MAX_BATCH`]), or `None` when nothing waits, in which
    /// case the reader stops (and is no longer counted).
    pub(crate) fn next(&self) -> Option<Vec<(KeyId, oneshot::Sender<Answer>)>> {
        let mut q = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if q.waiting.is_empty() {
            q.readers -= 1;
            return None;
        }
        let n = q.waiting.len().min(MAX_BATCH);
        Some(q.waiting.drain(..n).collect())
    }
}

impl Lookups {
    /// A reader stopped before the queue was empty: it no longer counts.
    pub(crate) fn abandon(&self) {
        let mut q = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        q.readers = q.readers.saturating_sub(1);
    }
}

/// Sends each waiter (sorted by key id) its key's record (or `None`), or the read's error to
/// all of them. A record goes to its last waiter by move, to the others by clone.
pub(crate) fn answer(
    waiters: Vec<(KeyId, oneshot::Sender<Answer>)>,
    read: Result<Vec<KeyRecord>, StoreError>,
) {
    match read {
        Ok(records) => {
            let mut by_id: HashMap<KeyId, KeyRecord> =
                records.into_iter().map(|r| (r.key_id, r)).collect();
            let mut waiters = waiters.into_iter().peekable();
            while let Some((key_id, tx)) = waiters.next() {
                let record = if waiters.peek().is_some_and(|(next, _)| *next == key_id) {
                    by_id.get(&key_id).cloned()
                } else {
                    by_id.remove(&key_id)
                };
                // A waiter that gave up (its request was dropped) is not an error.
                let _ = tx.send(Ok(record));
            }
        }
        Err(e) => {
            for (_, tx) in waiters {
                let _ = tx.send(Err(StoreError::new(e.kind(), e.to_string())));
            }
        }
    }
}

/// The connection a reader holds while misses keep coming, so that its reads are one round trip
/// each. A statement on the pool acquires a connection and releases it, and sqlx pings a
/// connection on every release (and, unless told otherwise, on every acquire): three round
/// trips to PostgreSQL where one does (measured: docs/performance.md, "A cheaper miss").
///
/// A connection that is not one of sqlx's pools (sea-orm's mock or proxy connections), or a
/// pool of one, reads through `DatabaseConnection` as any other statement.
pub(crate) enum Held {
    /// A PostgreSQL connection.
    #[cfg(feature = "postgres")]
    Postgres(PoolConnection<sqlx::Postgres>),
    /// A MySQL or MariaDB connection.
    #[cfg(feature = "mysql")]
    MySql(PoolConnection<sqlx::MySql>),
    /// A SQLite connection.
    #[cfg(feature = "sqlite")]
    Sqlite(PoolConnection<sqlx::Sqlite>),
    /// Reads go through the `DatabaseConnection`.
    Shared,
}

impl Held {
    /// A connection of `db`'s pool; after a lost connection (`tested`), one that answered a
    /// ping: the pool hands out a connection it used a moment ago untested
    /// ([`crate::store::IDLE_PING`]), and when the database restarted, every such one is dead.
    ///
    /// A pool of one connection (sea-orm's for an in-memory SQLite database) is not held from:
    /// a steady stream of misses would keep every other statement waiting.
    pub(crate) async fn acquire(db: &DatabaseConnection, tested: bool) -> Result<Self, DbErr> {
        async fn from<DB: sqlx::Database>(
            pool: &sqlx::Pool<DB>,
            tested: bool,
        ) -> Result<Option<PoolConnection<DB>>, DbErr> {
            if pool.options().get_max_connections() < 2 {
                return Ok(None);
            }
            let mut conn = pool.acquire().await.map_err(sqlx_err)?;
            if tested {
                sqlx::Connection::ping(&mut *conn).await.map_err(sqlx_err)?;
            }
            Ok(Some(conn))
        }
        let held = match &db.inner {
            #[cfg(feature = "postgres")]
            DatabaseConnectionType::SqlxPostgresPoolConnection(_) => {
                from(db.get_postgres_connection_pool(), tested)
                    .await?
                    .map(Self::Postgres)
            }
            #[cfg(feature = "mysql")]
            DatabaseConnectionType::SqlxMySqlPoolConnection(_) => {
                from(db.get_mysql_connection_pool(), tested)
                    .await?
                    .map(Self::MySql)
            }
            #[cfg(feature = "sqlite")]
            DatabaseConnectionType::SqlxSqlitePoolConnection(_) => {
                from(db.get_sqlite_connection_pool(), tested)
                    .await?
                    .map(Self::Sqlite)
            }
            _ => None,
        };
        Ok(held.unwrap_or(Self::Shared))
    }

    /// The key rows of `sql` (the store's `SELECT`) with `ids` bound in order, each with the
    /// two columns after the key's (where its last use came from: address, user agent).
    pub(crate) async fn fetch(
        &mut self,
        db: &DatabaseConnection,
        sql: &Arc<str>,
        ids: &[KeyId],
    ) -> Result<Vec<KeyRow>, DbErr> {
        async fn on<DB>(
            conn: &mut PoolConnection<DB>,
            sql: &Arc<str>,
            ids: &[KeyId],
        ) -> Result<Vec<KeyRow>, DbErr>
        where
            DB: sqlx::Database,
            usize: sqlx::ColumnIndex<DB::Row>,
            for<'r> i64: Decoded<'r, DB>,
            for<'r> bool: Decoded<'r, DB>,
            for<'r> String: Decoded<'r, DB>,
            for<'r> Vec<u8>: Decoded<'r, DB>,
            for<'r> OffsetDateTime: Decoded<'r, DB>,
            for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
            for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
            DB::Arguments: sqlx::IntoArguments<DB>,
        {
            let mut query = sqlx::query::<DB>(sqlx::AssertSqlSafe(Arc::clone(sql)));
            for id in ids {
                query = query.bind(id.as_str());
            }
            let rows = query.fetch_all(&mut **conn).await.map_err(sqlx_err)?;
            let n = <api_key::Column as sea_orm::Iterable>::iter().count();
            rows.iter()
                .map(|row| {
                    let model = model_from_row(row).map_err(sqlx_err)?;
                    let addr = sqlx::Row::try_get(row, n).map_err(sqlx_err)?;
                    let agent = sqlx::Row::try_get(row, n + 1).map_err(sqlx_err)?;
                    Ok((model, addr, agent))
                })
                .collect()
        }
        match self {
            #[cfg(feature = "postgres")]
            Self::Postgres(conn) => on(conn, sql, ids).await,
            #[cfg(feature = "mysql")]
            Self::MySql(conn) => on(conn, sql, ids).await,
            #[cfg(feature = "sqlite")]
            Self::Sqlite(conn) => on(conn, sql, ids).await,
            Self::Shared => {
                let stmt = sea_orm::Statement::from_sql_and_values(
                    db.get_database_backend(),
                    sql.as_ref(),
                    ids.iter().map(|id| Value::from(id.as_str())),
                );
                let rows = db.query_all_raw(stmt).await?;
                rows.iter().map(key_row).collect()
            }
        }
    }
}

fn sqlx_err(e: sqlx::Error) -> DbErr {
    DbErr::Query(RuntimeErr::SqlxError(Arc::new(e)))
}
