//! [`SeaOrmKeyStore`]: the [`KeyStore`] on PostgreSQL, SQLite and MySQL/MariaDB.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use keyward_core::analytics::{UsageCount, UsageFilter, UsageRow};
use keyward_core::audit::{Event, EventCursor, EventFilter, EventPage};
use keyward_core::digest::KeyDigest;
use keyward_core::store::{
    Cursor, EventStore, KeyFilter, KeyStore, Page, StoreError, StoreErrorKind, UsageDelta,
};
use keyward_core::{KeyId, KeyRecord};
use sea_orm::sea_query::{Condition, Expr, ExprTrait, OnConflict, Order, Query, UpdateStatement};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend,
    DbErr, IsolationLevel, SqliteTransactionMode, TransactionOptions, TransactionTrait, Value,
};
use time::OffsetDateTime;

use crate::codec::{decode_row, digest_values, insert_values, instant, management_values};
use crate::entity::api_key::Column;
use crate::entity::api_key_owner;
use crate::error::{lost_connection, retryable, store_err};
use crate::lookup::{Held, Lookups};
use crate::replica::{HeldPair, Replica};
use crate::schema::Tables;
use crate::usage::apply_usage_in;

/// Most rows of one batch-create `INSERT`; fewer where the dialect's bound-parameter limit
/// ([`max_parameters`]) over the key table's columns says so (SQLite: 992).
const INSERT_CHUNK: usize = 1000;

/// The most bound parameters one statement may carry on `backend`.
fn max_parameters(backend: DbBackend) -> usize {
    match backend {
        DbBackend::Sqlite => 32_766,
        _ => 65_535,
    }
}

/// Owners one statement of a batch create's cap check names.
const OWNER_CHUNK: usize = 1000;

/// Attempts of a key read whose connection was lost (the database restarted or killed it):
/// each later one on a connection that answered a ping first.
const LOST_ATTEMPTS: u32 = 4;

/// Attempts of a transaction that failed on a deadlock, a serialization failure or SQLite's
/// busy lock, before giving up with `Unavailable`.
const MAX_ATTEMPTS: u32 = 8;

/// A [`KeyStore`] on a sea-orm connection pool.
///
/// - `get` is an indexed `SELECT` by `key_id` (joined with the key's usage row), shared by the
///   misses that arrive while another read is under way; its SQL is built
///   once per number of ids.
/// - `create` with a maximum is atomic per owner: PostgreSQL and MySQL lock the owner's row in
///   `<prefix>api_key_owners` (`INSERT … ON CONFLICT`/`ON DUPLICATE KEY` then
///   `SELECT … FOR UPDATE`) in a read-committed transaction; SQLite takes the write lock up front
///   (`BEGIN IMMEDIATE`).
/// - `record_usage` merges counters in SQL (`request_count + n`, `last_used_at` only forward)
///   into the narrow usage table, so several instances can flush concurrently; reads merge a
///   key's usage row with its own usage columns.
/// - Failures of the database are `Unavailable`, never "no such key".
#[derive(Clone)]
pub struct SeaOrmKeyStore {
    pub(crate) db: DatabaseConnection,
    tables: Tables,
    /// The SQL of a read of n keys at index n, each built once: a read binds its key ids and
    /// builds nothing (building the `SELECT` cost a miss about 45 µs, measured).
    read_sql: Arc<[OnceLock<Arc<str>>]>,
    /// Key ids waiting to be read, together ([`crate::lookup`]).
    lookups: Lookups,
    /// Whether events also go to the webhook outbox ([`SeaOrmKeyStore::with_outbox`]).
    outbox: bool,
    /// Where key lookups are read first ([`SeaOrmKeyStore::with_read_replica`]).
    replica: Option<Arc<Replica>>,
}

impl fmt::Debug for SeaOrmKeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SeaOrmKeyStore")
            .field("backend", &self.db.get_database_backend().as_str())
            .field("tables", &self.tables)
            .finish()
    }
}

/// How long a pooled connection may sit idle before the pool pings it when handing it out.
/// sqlx's default pings on every acquire, one round trip more for every statement; a connection
/// used a moment ago goes out untested, and a key read that finds its connection lost tries
/// another ([`LOST_ATTEMPTS`]).
pub(crate) const IDLE_PING: Duration = Duration::from_secs(1);

/// Pool settings keyward recommends for `url`: short connect and acquire timeouts (a database
/// outage turns into a quick 503, not a hung request), a ping only for a connection that sat
/// idle in the pool for a second or more (sqlx's default pings on every acquire, a round trip
/// more for every statement), no per-statement logging, and on SQLite WAL journaling, a busy
/// timeout and `create if missing` for file URLs.
#[must_use]
pub fn connect_options(url: &str) -> ConnectOptions {
    let mut opts = ConnectOptions::new(url.to_owned());
    opts.connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(5))
        .test_before_acquire_if_idle_for(IDLE_PING)
        .sqlx_logging(false);
    #[cfg(feature = "sqlite")]
    if url.starts_with("sqlite:") {
        opts.map_sqlx_sqlite_opts(|o| {
            o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .busy_timeout(Duration::from_secs(10))
                .create_if_missing(true)
        });
    }
    opts
}

impl SeaOrmKeyStore {
    /// A store on `db` with the default table names. The tables must exist: see
    /// [`crate::migrate`].
    #[must_use]
    pub fn new(db: DatabaseConnection) -> Self {
        Self::with_tables(db, Tables::default())
    }

    /// A store on `db` using `tables` (for a table prefix).
    #[must_use]
    pub fn with_tables(db: DatabaseConnection, tables: Tables) -> Self {
        Self {
            db,
            tables,
            read_sql: (0..=crate::lookup::MAX_BATCH)
                .map(|_| OnceLock::new())
                .collect(),
            lookups: Lookups::default(),
            outbox: false,
            replica: None,
        }
    }

    /// The same store, reading key lookups from the read replica `db` (a PostgreSQL standby,
    /// say), which may lag the primary by up to `max_lag`: a key the replica does not have is
    /// read from the primary before it is called unknown, and a key the engine saw change is
    /// read from the primary for `max_lag`. Writes, the owner cap, listings, usage and events
    /// stay on the primary. A replica that fails is passed over.
    #[must_use]
    pub fn with_read_replica(mut self, db: DatabaseConnection, max_lag: Duration) -> Self {
        self.replica = Some(Arc::new(Replica::new(db, max_lag)));
        self
    }

    /// [`SeaOrmKeyStore::with_read_replica`], connecting to `url` with [`connect_options`].
    ///
    /// # Errors
    /// `Unavailable` when the replica cannot be reached, `Other` for a bad URL.
    pub async fn with_read_replica_at(
        self,
        url: &str,
        max_lag: Duration,
    ) -> Result<Self, StoreError> {
        let db = Database::connect(connect_options(url))
            .await
            .map_err(|e| store_err("connect", e))?;
        Ok(self.with_read_replica(db, max_lag))
    }

    /// The same store, putting every event it records in the webhook outbox as well
    /// (`api_key_outbox`, migration 0005), in the same transaction, for a
    /// [`keyward_core::webhook::WebhookOutbox`] consumer to deliver. Off by default: without a
    /// consumer the outbox would only grow.
    #[must_use]
    pub fn with_outbox(mut self, on: bool) -> Self {
        self.outbox = on;
        self
    }

    /// Connects with [`connect_options`] and the default table names. Does not migrate.
    ///
    /// # Errors
    /// `Unavailable` when the database cannot be reached, `Other` for a bad URL.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let db = Database::connect(connect_options(url))
            .await
            .map_err(|e| store_err("connect", e))?;
        Ok(Self::new(db))
    }

    /// Creates the tables when they are missing ([`crate::migrate_tables`]).
    ///
    /// # Errors
    /// The database's error, as a [`StoreError`].
    pub async fn migrate(&self) -> Result<(), StoreError> {
        crate::migration::migrate_tables(&self.db, &self.tables)
            .await
            .map_err(|e| store_err("migrate", e))
    }

    /// The connection pool.
    #[must_use]
    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// The table names in use.
    #[must_use]
    pub fn tables(&self) -> &Tables {
        &self.tables
    }

    pub(crate) fn backend(&self) -> DbBackend {
        self.db.get_database_backend()
    }

    /// `t` bound as this backend stores instants ([`instant`]).
    pub(crate) fn at(&self, t: OffsetDateTime) -> Value {
        instant(self.backend(), Some(t))
    }

    /// Writes `events` (and their outbox rows) in `txn`; with `skip_existing`, an event whose
    /// id is stored already is skipped.
    async fn log_in(
        &self,
        txn: &DatabaseTransaction,
        events: &[Event],
        skip_existing: bool,
    ) -> Result<(), DbErr> {
        let (backend, tables) = (self.backend(), &self.tables);
        crate::events::insert_in(txn, backend, tables, events, self.outbox, skip_existing).await
    }

    /// A write transaction: immediate on SQLite (the write lock at once), read committed on the
    /// others.
    pub(crate) async fn begin_write(&self) -> Result<DatabaseTransaction, DbErr> {
        match self.backend() {
            DbBackend::Sqlite => {
                self.db
                    .begin_with_options(TransactionOptions {
                        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                        ..TransactionOptions::default()
                    })
                    .await
            }
            _ => {
                self.db
                    .begin_with_config(Some(IsolationLevel::ReadCommitted), None)
                    .await
            }
        }
    }

    /// Runs `write` in a write transaction, again (after a short backoff) while the database
    /// answers with a conflict worth retrying (a serialization failure, a deadlock, a locked
    /// SQLite) or the connection was found lost when beginning, at most [`MAX_ATTEMPTS`]
    /// times. A refusal (`Ok(Err(kind))`: the owner cap, a duplicate id) is rolled back, not
    /// retried, and answered with its kind.
    async fn in_write_txn(&self, op: &'static str, write: Write<'_>) -> Result<(), StoreError> {
        let mut attempt = 1;
        loop {
            let mut began = false;
            let result = async {
                let txn = self.begin_write().await?;
                began = true;
                let done = match write {
                    Write::CreateMany(records, max, now, events) => {
                        self.create_many_in(&txn, records, max, now, events).await
                    }
                    Write::Key(stmt, event) => {
                        // Only a write that changed the key is recorded: a revoke of a revoked
                        // key, an update that lost the version check, change nothing.
                        let changed = txn.execute(stmt).await?.rows_affected() > 0;
                        if changed {
                            self.log_in(&txn, std::slice::from_ref(event), false)
                                .await?;
                        }
                        Ok(if changed {
                            Ok(())
                        } else {
                            Err(StoreErrorKind::Stale)
                        })
                    }
                    Write::Events(events) => self.log_in(&txn, events, true).await.map(Ok),
                    Write::Usage(batch, counts) => {
                        apply_usage_in(&txn, self.backend(), &self.tables, batch, counts)
                            .await
                            .map(Ok)
                    }
                };
                match done {
                    Ok(Ok(())) => txn.commit().await.map(Ok),
                    Ok(Err(kind)) => txn.rollback().await.map(|()| Err(kind)),
                    Err(e) => {
                        // The rollback's own failure adds nothing to `e`.
                        let _ = txn.rollback().await;
                        Err(e)
                    }
                }
            }
            .await;
            match result {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(StoreErrorKind::LimitReached)) => {
                    return Err(StoreError::new(
                        StoreErrorKind::LimitReached,
                        "owner key limit reached",
                    ));
                }
                Ok(Err(kind @ StoreErrorKind::Stale)) => {
                    return Err(StoreError::new(kind, "the key changed since it was read"));
                }
                Ok(Err(kind)) => return Err(StoreError::new(kind, "duplicate key id")),
                // A connection lost before the transaction began wrote nothing: go again (on
                // another one; the pool pings those idle for longer than IDLE_PING).
                Err(e)
                    if (retryable(&e) || !began && lost_connection(&e))
                        && attempt < MAX_ATTEMPTS =>
                {
                    tracing::debug!(attempt, op, error = %e, "retrying transaction");
                    backoff(attempt).await;
                    attempt += 1;
                }
                Err(e) => return Err(store_err(op, e)),
            }
        }
    }

    /// Reads what [`Lookups`] queued, batch after batch, until nothing waits, on one connection
    /// held for the whole run ([`Held`]).
    async fn read_waiting(&self) {
        // Should this task stop early (a panic, a runtime shutting down), it is no longer
        // counted, and the next miss starts another reader for whatever still waits.
        struct Counted<'a>(&'a Lookups, bool);
        impl Drop for Counted<'_> {
            fn drop(&mut self) {
                if !self.1 {
                    self.0.abandon();
                }
            }
        }
        let mut reader = Counted(&self.lookups, false);
        let mut held = None;
        let mut through = HeldPair::default();
        loop {
            // Requests that are ready run first (tokio wakes a yielded task after polling for
            // I/O), so that their misses join this read: 7.4 ids a read instead of 4.9, a
            // miss-heavy request 1–2 µs cheaper and 10 % more of them (`cargo xtask scale`).
            tokio::task::yield_now().await;
            let Some(mut waiters) = self.lookups.next() else {
                break;
            };
            waiters.sort_unstable_by_key(|(k, _)| *k);
            let mut ids: Vec<KeyId> = waiters.iter().map(|(k, _)| *k).collect();
            ids.dedup();
            let read = match &self.replica {
                Some(replica) => self.read_through(replica, &mut through, &ids).await,
                None => self.read_keys(&self.db, &mut held, &ids).await,
            };
            crate::lookup::answer(waiters, read);
        }
        reader.1 = true;
    }

    /// The keys of `ids` (at most [`crate::lookup::MAX_BATCH`]) that exist in `db`: one
    /// `SELECT`, whose only parameters are the key ids, on `held` (acquired from `db` when
    /// `None`, dropped after an error). A connection found lost (the database restarted or
    /// killed it) is replaced by one that answers a ping, at most [`LOST_ATTEMPTS`] times.
    pub(crate) async fn read_keys(
        &self,
        db: &DatabaseConnection,
        held: &mut Option<Held>,
        ids: &[KeyId],
    ) -> Result<Vec<KeyRecord>, StoreError> {
        let build = || -> Arc<str> {
            let stmt = self
                .select()
                .and_where(Expr::col(Column::KeyId).is_in(vec![""; ids.len()]))
                .to_owned();
            self.backend().build(&stmt).sql.into()
        };
        let sql = match self.read_sql.get(ids.len()) {
            Some(cell) => Arc::clone(cell.get_or_init(build)),
            None => build(),
        };
        let mut attempt = 1;
        let rows = loop {
            let read = match held {
                Some(conn) => conn.fetch(db, &sql, ids).await,
                None => match Held::acquire(db, attempt > 1).await {
                    Ok(conn) => held.insert(conn).fetch(db, &sql, ids).await,
                    Err(e) => Err(e),
                },
            };
            match read {
                Ok(rows) => break rows,
                Err(e) => {
                    *held = None;
                    if attempt >= LOST_ATTEMPTS || !lost_connection(&e) {
                        return Err(store_err("get", e));
                    }
                    tracing::debug!(attempt, error = %e, "key read on a lost connection, again");
                    attempt += 1;
                }
            }
        };
        rows.into_iter().map(decode_row).collect()
    }

    /// Creates `records` (one key or a batch) under the owner cap: each owner's row of the
    /// owners table is upserted and locked, in owner order, so that creates for one owner
    /// serialize and creates for several never deadlock (SQLite's write transaction serializes
    /// them all); then the owners' live keys are counted, and the records inserted,
    /// at most [`INSERT_CHUNK`] rows a statement. A duplicate key id fails its insert (the unique
    /// `key_id`), and with it the transaction.
    async fn create_many_in(
        &self,
        txn: &DatabaseTransaction,
        records: &[&KeyRecord],
        max: Option<u32>,
        now: OffsetDateTime,
        events: &[Event],
    ) -> Result<Result<(), StoreErrorKind>, DbErr> {
        let backend = self.backend();
        if let Some(max) = max {
            let mut counts: std::collections::BTreeMap<&str, u64> = Default::default();
            for r in records {
                *counts.entry(r.owner_id.as_str()).or_default() += 1;
            }
            let owners: Vec<&str> = counts.keys().copied().collect();
            for chunk in owners.chunks(OWNER_CHUNK) {
                if backend != DbBackend::Sqlite {
                    let mut upsert = Query::insert();
                    upsert
                        .into_table(self.tables.owners_iden())
                        .columns([api_key_owner::Column::OwnerId]);
                    for owner in chunk {
                        upsert
                            .values([Expr::val(*owner)])
                            .map_err(|e| DbErr::Custom(e.to_string()))?;
                    }
                    upsert.on_conflict(
                        OnConflict::column(api_key_owner::Column::OwnerId)
                            .update_column(api_key_owner::Column::OwnerId)
                            .to_owned(),
                    );
                    txn.execute(&upsert).await?;
                    let lock = Query::select()
                        .column(api_key_owner::Column::OwnerId)
                        .from(self.tables.owners_iden())
                        .and_where(
                            Expr::col(api_key_owner::Column::OwnerId).is_in(chunk.iter().copied()),
                        )
                        .order_by(api_key_owner::Column::OwnerId, Order::Asc)
                        .lock_exclusive()
                        .to_owned();
                    txn.query_all(&lock).await?;
                }
                let live = Query::select()
                    .columns([Column::OwnerId, Column::ExpiresAt])
                    .from(self.tables.keys_iden())
                    .and_where(Expr::col(Column::OwnerId).is_in(chunk.iter().copied()))
                    .and_where(Expr::col(Column::RevokedAt).is_null())
                    .cond_where(
                        Condition::any()
                            .add(Expr::col(Column::ExpiresAt).is_null())
                            .add(Expr::col(Column::ExpiresAt).gt(self.at(now))),
                    )
                    .to_owned();
                for row in txn.query_all(&live).await? {
                    let o: String = row.try_get("", "owner_id")?;
                    let e: Option<OffsetDateTime> = row.try_get("", "expires_at")?;
                    // Exact: MySQL's comparison folds case and trailing spaces.
                    if let Some(n) = counts.get_mut(o.as_str())
                        && e.is_none_or(|e| now < e)
                    {
                        *n += 1;
                    }
                }
            }
            if counts.values().any(|n| *n > u64::from(max)) {
                return Ok(Err(StoreErrorKind::LimitReached));
            }
        }
        let columns = records
            .first()
            .map_or(1, |r| insert_values(r, backend).len());
        let rows = (max_parameters(backend) / columns).clamp(1, INSERT_CHUNK);
        for chunk in records.chunks(rows) {
            let mut insert = Query::insert();
            insert.into_table(self.tables.keys_iden());
            for (i, record) in chunk.iter().enumerate() {
                let (cols, vals): (Vec<Column>, Vec<Value>) =
                    insert_values(record, backend).into_iter().unzip();
                if i == 0 {
                    insert.columns(cols);
                }
                insert
                    .values(vals.into_iter().map(Expr::val))
                    .map_err(|e| DbErr::Custom(e.to_string()))?;
            }
            txn.execute(&insert).await?;
        }
        self.log_in(txn, events, false).await?;
        Ok(Ok(()))
    }
}

/// A write [`SeaOrmKeyStore::in_write_txn`] runs (and retries) in one transaction.
#[derive(Clone, Copy)]
enum Write<'a> {
    /// A create with the owner cap, of one key or a batch, and their events (`create_many_in`).
    CreateMany(
        &'a [&'a KeyRecord],
        Option<u32>,
        OffsetDateTime,
        &'a [Event],
    ),
    /// A conditional `UPDATE` of one key and, when it changed a row, its event; `Stale` when
    /// it changed none.
    Key(&'a UpdateStatement, &'a Event),
    /// Events that record no change (`EventStore::append`), each skipped when stored already.
    Events(&'a [Event]),
    /// A usage flush (`apply_usage_in`) and its analytics (`analytics::record_in`).
    Usage(&'a [UsageDelta], &'a [UsageCount]),
}

async fn backoff(attempt: u32) {
    tokio::time::sleep(Duration::from_millis(u64::from(attempt) * 3 + 1)).await;
}

/// A failing replica, logged once a second at most.
static REPLICA_DOWN: keyward_core::clock::SampledLog = keyward_core::clock::SampledLog::new();

impl SeaOrmKeyStore {
    /// The records of `ids` that exist: from the replica where that may be read, from the
    /// primary for the rest and for what the replica does not have. A replica that fails is
    /// passed over (its reads go to the primary), so it never makes a key unavailable.
    pub(crate) async fn read_through(
        &self,
        replica: &Replica,
        held: &mut HeldPair,
        ids: &[KeyId],
    ) -> Result<Vec<KeyRecord>, StoreError> {
        let now = std::time::Instant::now();
        let readable: Vec<KeyId> = ids
            .iter()
            .copied()
            .filter(|id| replica.readable(id, now))
            .collect();
        let mut found = if readable.is_empty() {
            Vec::new()
        } else {
            match self
                .read_keys(&replica.db, &mut held.replica, &readable)
                .await
            {
                Ok(found) => found,
                Err(e) => {
                    if let Some(times) = REPLICA_DOWN.note_now() {
                        tracing::warn!(error = %e, times, "read replica failed; reading the primary");
                    }
                    Vec::new()
                }
            }
        };
        let rest: Vec<KeyId> = ids
            .iter()
            .copied()
            .filter(|id| !found.iter().any(|r| r.key_id == *id))
            .collect();
        if !rest.is_empty() {
            found.extend(self.read_keys(&self.db, &mut held.primary, &rest).await?);
        }
        Ok(found)
    }
}

#[async_trait::async_trait]
impl KeyStore for SeaOrmKeyStore {
    async fn create(
        &self,
        record: &KeyRecord,
        max_per_owner: Option<u32>,
        now: OffsetDateTime,
        event: &Event,
    ) -> Result<(), StoreError> {
        let events = std::slice::from_ref(event);
        let write = Write::CreateMany(&[record], max_per_owner, now, events);
        self.in_write_txn("create", write).await
    }

    async fn create_many(
        &self,
        records: &[&KeyRecord],
        max_per_owner: Option<u32>,
        now: OffsetDateTime,
        events: &[Event],
    ) -> Result<(), StoreError> {
        self.in_write_txn(
            "create_many",
            Write::CreateMany(records, max_per_owner, now, events),
        )
        .await
    }

    async fn get(&self, key_id: &KeyId) -> Result<Option<KeyRecord>, StoreError> {
        let (answer, start) = self.lookups.ask(*key_id);
        if start {
            // A task of its own: a caller that gives up must not strand the others.
            let store = self.clone();
            tokio::spawn(async move { store.read_waiting().await });
        }
        answer
            .await
            .unwrap_or_else(|_| Err(StoreError::unavailable("the key lookup stopped")))
    }

    fn invalidated(&self, key_id: Option<&KeyId>) {
        if let Some(replica) = &self.replica {
            replica.changed(key_id);
        }
    }

    async fn list(
        &self,
        filter: &KeyFilter<'_>,
        cursor: Option<Cursor>,
        limit: u32,
    ) -> Result<Page, StoreError> {
        let stmt = self.page_statement(filter, cursor, limit);
        let rows = self
            .db
            .query_all(&stmt)
            .await
            .map_err(|e| store_err("list", e))?;
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        // More follow when the query found more rows than the page holds; the cursor is the
        // last row examined, so a row the exact check below drops can neither end the listing
        // early nor repeat.
        let has_more = rows.len() > limit;
        let mut items = Vec::with_capacity(rows.len().min(limit));
        let mut last = None;
        for row in rows.into_iter().take(limit) {
            let record =
                decode_row(crate::codec::key_row(&row).map_err(|e| store_err("list", e))?)?;
            last = Some(Cursor::after(&record));
            // Exact, where a collation compares loosely (MySQL's trailing spaces).
            if filter.matches(&record) {
                items.push(record);
            }
        }
        let next_cursor = if has_more { last } else { None };
        Ok(Page { items, next_cursor })
    }

    async fn update(
        &self,
        record: &KeyRecord,
        expected: OffsetDateTime,
        event: &Event,
    ) -> Result<(), StoreError> {
        let stmt = Query::update()
            .table(self.tables.keys_iden())
            .values(
                management_values(record, self.backend())
                    .into_iter()
                    .map(|(c, v)| (c, Expr::val(v))),
            )
            .and_where(Expr::col(Column::KeyId).eq(record.key_id.as_str()))
            .and_where(Expr::col(Column::UpdatedAt).eq(self.at(expected)))
            .and_where(Expr::col(Column::RevokedAt).is_null())
            .to_owned();
        match self.in_write_txn("update", Write::Key(&stmt, event)).await {
            // Nothing matched: tell a missing key from one that changed or was revoked.
            Err(e) if e.kind() == StoreErrorKind::Stale => match self.get(&record.key_id).await? {
                None => Err(StoreError::new(StoreErrorKind::NotFound, "no such key")),
                Some(_) => Err(e),
            },
            done => done,
        }
    }

    async fn set_digest(
        &self,
        key_id: &KeyId,
        digest: &KeyDigest,
        event: &Event,
    ) -> Result<(), StoreError> {
        let stmt = Query::update()
            .table(self.tables.keys_iden())
            .values(
                digest_values(digest)
                    .into_iter()
                    .map(|(c, v)| (c, Expr::val(v))),
            )
            .and_where(Expr::col(Column::KeyId).eq(key_id.as_str()))
            .to_owned();
        match self
            .in_write_txn("set_digest", Write::Key(&stmt, event))
            .await
        {
            Err(e) if e.kind() == StoreErrorKind::Stale => {
                Err(StoreError::new(StoreErrorKind::NotFound, "no such key"))
            }
            done => done,
        }
    }

    async fn revoke(
        &self,
        key_id: &KeyId,
        at: OffsetDateTime,
        expected: Option<OffsetDateTime>,
        event: &Event,
    ) -> Result<Option<KeyRecord>, StoreError> {
        let mut stmt = Query::update()
            .table(self.tables.keys_iden())
            .value(Column::RevokedAt, self.at(at))
            .value(Column::UpdatedAt, self.at(at))
            .and_where(Expr::col(Column::KeyId).eq(key_id.as_str()))
            .and_where(Expr::col(Column::RevokedAt).is_null())
            .to_owned();
        if let Some(expected) = expected {
            stmt.and_where(Expr::col(Column::UpdatedAt).eq(self.at(expected)));
        }
        match self.in_write_txn("revoke", Write::Key(&stmt, event)).await {
            // Revoked already, or changed since `expected`: answered with the key as it is.
            Ok(()) => {}
            Err(e) if e.kind() == StoreErrorKind::Stale => {}
            Err(e) => return Err(e),
        }
        self.get(key_id).await
    }

    async fn record_usage(
        &self,
        batch: &[UsageDelta],
        counts: &[UsageCount],
    ) -> Result<(), StoreError> {
        if batch.is_empty() && counts.is_empty() {
            return Ok(());
        }
        self.in_write_txn("record_usage", Write::Usage(batch, counts))
            .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.db.ping().await.map_err(|e| store_err("ping", e))
    }
}

#[async_trait::async_trait]
impl EventStore for SeaOrmKeyStore {
    async fn events(
        &self,
        filter: &EventFilter<'_>,
        cursor: Option<EventCursor>,
        limit: u32,
    ) -> Result<EventPage, StoreError> {
        crate::events::list(&self.db, &self.tables, filter, cursor, limit).await
    }

    async fn prune_events(&self, before: OffsetDateTime, limit: u32) -> Result<u64, StoreError> {
        let pruned = crate::events::prune(&self.db, &self.tables, before, limit).await?;
        self.prune_deliveries(before, limit).await?;
        Ok(pruned)
    }

    async fn append(&self, events: &[Event]) -> Result<(), StoreError> {
        self.in_write_txn("append", Write::Events(events)).await
    }

    async fn usage(&self, filter: &UsageFilter<'_>) -> Result<Vec<UsageRow>, StoreError> {
        crate::analytics::read(&self.db, &self.tables, filter).await
    }

    /// An hour's counts at a time, whatever `limit`.
    async fn prune_usage(&self, before: OffsetDateTime, _limit: u32) -> Result<u64, StoreError> {
        crate::analytics::prune(&self.db, &self.tables, before).await
    }
}
