//! Migrations on sea-orm-migration: a [`Migrator`] for the default table names, and the
//! migration itself ([`CreateApiKeys`]) to add to an application's own `Migrator`.
//!
//! ```no_run
//! # async fn run(db: &sea_orm::DatabaseConnection) -> Result<(), sea_orm::DbErr> {
//! keyward_sea_orm::migrate(db).await?;
//! # Ok(()) }
//! ```
//!
//! An application that runs its own sea-orm `Migrator` lists
//! `Box::new(keyward_sea_orm::CreateApiKeys::new(Tables::default()))`, then [`AddKeyLineage`],
//! [`AddKeyUsage`], [`AddKeyEvents`], [`AddWebhooks`], [`AddUsageHours`],
//! [`AddWebhookEndpoints`] and [`AddLastUse`] likewise, among its migrations instead. One that uses another tool applies the checked-in SQL under `migrations/<backend>/`.

use std::future::Future;
use std::pin::Pin;

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    SqliteTransactionMode, Statement, TransactionOptions, TransactionTrait,
};
use sea_orm_migration::{MigrationName, MigrationTrait, MigratorTrait, SchemaManager};

use crate::schema::{
    LINEAGE_COLUMNS, Tables, drop_statements, events_statements, lineage_statements, statements,
    usage_hours_statements, usage_statements, webhook_statements,
};

/// Migration 0001: the keys table, its indexes and the owners table.
#[derive(Debug, Clone)]
pub struct CreateApiKeys {
    tables: Tables,
    name: String,
}

impl CreateApiKeys {
    /// The migration for `tables`. Its name is `m0001_create_api_keys`, followed by the prefix
    /// when there is one, so that several prefixes can be migrated in one database.
    #[must_use]
    pub fn new(tables: Tables) -> Self {
        let name = if tables.prefix().is_empty() {
            "m0001_create_api_keys".to_owned()
        } else {
            format!("m0001_create_api_keys_{}", tables.prefix())
        };
        Self { tables, name }
    }
}

impl MigrationName for CreateApiKeys {
    fn name(&self) -> &str {
        &self.name
    }
}

// `async_trait` expands `&SchemaManager<'_>` into a lifetime the trait declares differently.
#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for CreateApiKeys {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let s = statements(manager.get_database_backend(), &self.tables);
        manager.create_table(s.keys_table).await?;
        for index in s.indexes {
            manager.create_index(index).await?;
        }
        manager.create_table(s.owners_table).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for stmt in drop_statements(&self.tables) {
            manager.drop_table(stmt).await?;
        }
        Ok(())
    }
}

/// Migration 0002: the columns of [`LINEAGE_COLUMNS`] (rotation at most once, who deactivated a
/// key, the rotation chain whose rate limit and credits a successor shares).
#[derive(Debug, Clone)]
pub struct AddKeyLineage {
    tables: Tables,
    name: String,
}

impl AddKeyLineage {
    /// The migration for `tables`, named `m0002_key_lineage` (followed by the prefix when there
    /// is one).
    #[must_use]
    pub fn new(tables: Tables) -> Self {
        let name = if tables.prefix().is_empty() {
            "m0002_key_lineage".to_owned()
        } else {
            format!("m0002_key_lineage_{}", tables.prefix())
        };
        Self { tables, name }
    }
}

impl MigrationName for AddKeyLineage {
    fn name(&self) -> &str {
        &self.name
    }
}

#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for AddKeyLineage {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for stmt in lineage_statements(manager.get_database_backend(), &self.tables) {
            manager.alter_table(stmt).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in LINEAGE_COLUMNS {
            manager
                .alter_table(
                    sea_orm::sea_query::Table::alter()
                        .table(self.tables.keys_iden())
                        .drop_column(sea_orm::sea_query::Alias::new(column))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

/// Migration 0003: the usage table, where usage flushes write ([`crate::entity::api_key_usage`]).
#[derive(Debug, Clone)]
pub struct AddKeyUsage {
    tables: Tables,
    name: String,
}

impl AddKeyUsage {
    /// The migration for `tables`, named `m0003_key_usage` (followed by the prefix when there
    /// is one).
    #[must_use]
    pub fn new(tables: Tables) -> Self {
        let name = if tables.prefix().is_empty() {
            "m0003_key_usage".to_owned()
        } else {
            format!("m0003_key_usage_{}", tables.prefix())
        };
        Self { tables, name }
    }
}

impl MigrationName for AddKeyUsage {
    fn name(&self) -> &str {
        &self.name
    }
}

#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for AddKeyUsage {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let (table, storage) = usage_statements(manager.get_database_backend(), &self.tables);
        manager.create_table(table).await?;
        if let Some(sql) = storage {
            manager.get_connection().execute_unprepared(&sql).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                sea_orm::sea_query::Table::drop()
                    .table(self.tables.usage_iden())
                    .to_owned(),
            )
            .await
    }
}

/// Migration 0004: the audit log table ([`crate::entity::api_key_event`]) and its indexes.
#[derive(Debug, Clone)]
pub struct AddKeyEvents {
    tables: Tables,
    name: String,
}

impl AddKeyEvents {
    /// The migration for `tables`: `m0004_key_events`, followed by the prefix when there is
    /// one.
    #[must_use]
    pub fn new(tables: Tables) -> Self {
        let name = if tables.prefix().is_empty() {
            "m0004_key_events".to_owned()
        } else {
            format!("m0004_key_events_{}", tables.prefix())
        };
        Self { tables, name }
    }
}

impl MigrationName for AddKeyEvents {
    fn name(&self) -> &str {
        &self.name
    }
}

#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for AddKeyEvents {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let (table, indexes) = events_statements(manager.get_database_backend(), &self.tables);
        manager.create_table(table).await?;
        for index in indexes {
            manager.create_index(index).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                sea_orm::sea_query::Table::drop()
                    .table(self.tables.events_iden())
                    .to_owned(),
            )
            .await
    }
}

/// Migration 0005: the webhook outbox and deliveries ([`crate::entity::api_key_outbox`],
/// [`crate::entity::api_key_delivery`]).
#[derive(Debug, Clone)]
pub struct AddWebhooks {
    tables: Tables,
    name: String,
}

impl AddWebhooks {
    /// The migration for `tables`: `m0005_webhooks`, followed by the prefix when there is one.
    #[must_use]
    pub fn new(tables: Tables) -> Self {
        let name = if tables.prefix().is_empty() {
            "m0005_webhooks".to_owned()
        } else {
            format!("m0005_webhooks_{}", tables.prefix())
        };
        Self { tables, name }
    }
}

impl MigrationName for AddWebhooks {
    fn name(&self) -> &str {
        &self.name
    }
}

#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for AddWebhooks {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let (created, indexes) = webhook_statements(manager.get_database_backend(), &self.tables);
        for table in created {
            manager.create_table(table).await?;
        }
        for index in indexes {
            manager.create_index(index).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [self.tables.deliveries_iden(), self.tables.outbox_iden()] {
            manager
                .drop_table(sea_orm::sea_query::Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

/// Migration 0006: usage analytics ([`crate::entity::api_key_usage_hour`]).
#[derive(Debug, Clone)]
pub struct AddUsageHours {
    tables: Tables,
    name: String,
}

impl AddUsageHours {
    /// The migration for `tables`: `m0006_usage_hours`, followed by the prefix when there is
    /// one.
    #[must_use]
    pub fn new(tables: Tables) -> Self {
        let name = if tables.prefix().is_empty() {
            "m0006_usage_hours".to_owned()
        } else {
            format!("m0006_usage_hours_{}", tables.prefix())
        };
        Self { tables, name }
    }
}

impl MigrationName for AddUsageHours {
    fn name(&self) -> &str {
        &self.name
    }
}

#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for AddUsageHours {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let (table, indexes) = usage_hours_statements(manager.get_database_backend(), &self.tables);
        manager.create_table(table).await?;
        for index in indexes {
            manager.create_index(index).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                sea_orm::sea_query::Table::drop()
                    .table(self.tables.usage_hours_iden())
                    .to_owned(),
            )
            .await
    }
}

/// Migration 0007: the disabled webhook endpoints
/// ([`crate::entity::api_key_webhook_endpoint`]).
#[derive(Debug, Clone)]
pub struct AddWebhookEndpoints {
    tables: Tables,
    name: String,
}

impl AddWebhookEndpoints {
    /// The migration for `tables`: `m0007_webhook_endpoints`, followed by the prefix when there
    /// is one.
    #[must_use]
    pub fn new(tables: Tables) -> Self {
        let name = if tables.prefix().is_empty() {
            "m0007_webhook_endpoints".to_owned()
        } else {
            format!("m0007_webhook_endpoints_{}", tables.prefix())
        };
        Self { tables, name }
    }
}

impl MigrationName for AddWebhookEndpoints {
    fn name(&self) -> &str {
        &self.name
    }
}

#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for AddWebhookEndpoints {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(crate::schema::webhook_endpoints_statement(
                manager.get_database_backend(),
                &self.tables,
            ))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                sea_orm::sea_query::Table::drop()
                    .table(self.tables.webhook_endpoints_iden())
                    .to_owned(),
            )
            .await
    }
}

/// Migration 0008: the columns of [`crate::schema::LAST_USE_COLUMNS`] in the usage table (where a
/// key's last recorded use came from).
#[derive(Debug, Clone)]
pub struct AddLastUse {
    tables: Tables,
    name: String,
}

impl AddLastUse {
    /// The migration for `tables`: `m0008_last_use`, followed by the prefix when there is one.
    #[must_use]
    pub fn new(tables: Tables) -> Self {
        let name = if tables.prefix().is_empty() {
            "m0008_last_use".to_owned()
        } else {
            format!("m0008_last_use_{}", tables.prefix())
        };
        Self { tables, name }
    }
}

impl MigrationName for AddLastUse {
    fn name(&self) -> &str {
        &self.name
    }
}

#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for AddLastUse {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for stmt in crate::schema::last_use_statements(manager.get_database_backend(), &self.tables)
        {
            manager.alter_table(stmt).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in crate::schema::LAST_USE_COLUMNS {
            manager
                .alter_table(
                    sea_orm::sea_query::Table::alter()
                        .table(self.tables.usage_iden())
                        .drop_column(sea_orm::sea_query::Alias::new(column))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

/// The migrator for the default table names (`api_keys`, `api_key_owners`), recording what it
/// applied in sea-orm's `seaql_migrations` table.
#[derive(Debug, Clone, Copy, Default)]
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(CreateApiKeys::new(Tables::default())),
            Box::new(AddKeyLineage::new(Tables::default())),
            Box::new(AddKeyUsage::new(Tables::default())),
            Box::new(AddKeyEvents::new(Tables::default())),
            Box::new(AddWebhooks::new(Tables::default())),
            Box::new(AddUsageHours::new(Tables::default())),
            Box::new(AddWebhookEndpoints::new(Tables::default())),
            Box::new(AddLastUse::new(Tables::default())),
        ]
    }
}

/// Applies every pending migration for the default table names. Safe to call from several
/// processes at once (instances starting together): see [`migrate_tables`]. Tables made from the
/// checked-in SQL (or another tool) are recognised: the migrations whose work is there are
/// recorded, not run again.
///
/// # Errors
/// The database's error.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    serialized(db, |txn| {
        Box::pin(async move {
            adopt_existing(txn).await?;
            Migrator::up(txn, None).await
        })
    })
    .await
}

/// Tables made from the checked-in SQL (or by any other tool) carry no record in
/// `seaql_migrations`, and `Migrator::up` would try to create them again: record the
/// migrations whose work is already there (the keys table for 0001, 0002's first column for
/// 0002), so that `migrate` applies only what is missing.
async fn adopt_existing(txn: &DatabaseTransaction) -> Result<(), DbErr> {
    use sea_orm::{ActiveModelTrait, EntityTrait, Set};
    use sea_orm_migration::seaql_migrations;

    let tables = Tables::default();
    let manager = SchemaManager::new(txn);
    if !manager.has_table(tables.keys()).await? {
        return Ok(());
    }
    Migrator::install(txn).await?;
    let applied: Vec<String> = seaql_migrations::Entity::find()
        .all(txn)
        .await?
        .into_iter()
        .map(|m| m.version)
        .collect();
    let mut present = vec![CreateApiKeys::new(tables.clone()).name.clone()];
    if manager
        .has_column(tables.keys(), LINEAGE_COLUMNS[0])
        .await?
    {
        present.push(AddKeyLineage::new(tables.clone()).name);
    }
    if manager.has_table(tables.usage()).await? {
        present.push(AddKeyUsage::new(tables.clone()).name);
    }
    if manager.has_table(tables.events()).await? {
        present.push(AddKeyEvents::new(tables.clone()).name);
    }
    if manager.has_table(tables.deliveries()).await? {
        present.push(AddWebhooks::new(tables.clone()).name);
    }
    if manager.has_table(tables.usage_hours()).await? {
        present.push(AddUsageHours::new(tables.clone()).name);
    }
    if manager.has_table(tables.webhook_endpoints()).await? {
        present.push(AddWebhookEndpoints::new(tables.clone()).name);
    }
    if manager.has_table(tables.usage()).await?
        && manager
            .has_column(tables.usage(), crate::schema::LAST_USE_COLUMNS[0])
            .await?
    {
        present.push(AddLastUse::new(tables).name);
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    for version in present {
        if !applied.contains(&version) {
            tracing::info!(%version, "keyward tables found without a migration record: recorded as applied");
            seaql_migrations::ActiveModel {
                version: Set(version),
                applied_at: Set(now),
            }
            .insert(txn)
            .await?;
        }
    }
    Ok(())
}

/// The lock that serialises keyward's migrations across processes: a PostgreSQL advisory lock
/// key (`"keyward\0"` as a number) and a MySQL/MariaDB named lock.
const MIGRATE_LOCK_ID: i64 = 0x6b65_7977_6172_6400;
const MIGRATE_LOCK_NAME: &str = "keyward_migrate";

/// How long a MySQL/MariaDB process waits for another's migration, in seconds.
const MYSQL_LOCK_WAIT_SECS: u32 = 60;

/// Creates the tables under `tables`' names unless the keys table already exists, then adds the
/// columns of migration 0002 and the tables of 0003 to 0007 and the columns of 0008 unless they exist. For table prefixes, which the static
/// [`Migrator`] cannot carry; no bookkeeping table is written.
///
/// Processes that migrate the same database at once (several instances starting together) take
/// turns, so that one creates the tables and the others find them, rather than all racing on
/// `CREATE TABLE`: a transaction-scoped advisory lock on PostgreSQL, a named lock on
/// MySQL/MariaDB, an immediate (write-locking) transaction on SQLite.
///
/// # Errors
/// The database's error.
pub async fn migrate_tables(db: &DatabaseConnection, tables: &Tables) -> Result<(), DbErr> {
    if tables.prefix().is_empty() {
        return migrate(db).await;
    }
    let lineage_column = LINEAGE_COLUMNS[0];
    // The common case, schema up to date, takes no lock.
    let manager = SchemaManager::new(db);
    if manager.has_table(tables.keys()).await?
        && manager.has_column(tables.keys(), lineage_column).await?
        && manager.has_table(tables.usage()).await?
        && manager.has_table(tables.events()).await?
        && manager.has_table(tables.deliveries()).await?
        && manager.has_table(tables.usage_hours()).await?
        && manager.has_table(tables.webhook_endpoints()).await?
        && manager
            .has_column(tables.usage(), crate::schema::LAST_USE_COLUMNS[0])
            .await?
    {
        return Ok(());
    }
    let create = CreateApiKeys::new(tables.clone());
    let lineage = AddKeyLineage::new(tables.clone());
    let usage = AddKeyUsage::new(tables.clone());
    let events = AddKeyEvents::new(tables.clone());
    let webhooks = AddWebhooks::new(tables.clone());
    let usage_hours = AddUsageHours::new(tables.clone());
    let endpoints = AddWebhookEndpoints::new(tables.clone());
    let last_use = AddLastUse::new(tables.clone());
    serialized(db, move |txn| {
        Box::pin(async move {
            let manager = SchemaManager::new(txn);
            // Checked again under the lock: another process may have migrated meanwhile.
            if !manager.has_table(create.tables.keys()).await? {
                create.up(&manager).await?;
            }
            if !manager
                .has_column(lineage.tables.keys(), lineage_column)
                .await?
            {
                lineage.up(&manager).await?;
            }
            if !manager.has_table(usage.tables.usage()).await? {
                usage.up(&manager).await?;
            }
            if !manager.has_table(events.tables.events()).await? {
                events.up(&manager).await?;
            }
            if !manager.has_table(webhooks.tables.deliveries()).await? {
                webhooks.up(&manager).await?;
            }
            if !manager.has_table(usage_hours.tables.usage_hours()).await? {
                usage_hours.up(&manager).await?;
            }
            if !manager
                .has_table(endpoints.tables.webhook_endpoints())
                .await?
            {
                endpoints.up(&manager).await?;
            }
            if !manager
                .has_column(last_use.tables.usage(), crate::schema::LAST_USE_COLUMNS[0])
                .await?
            {
                last_use.up(&manager).await?;
            }
            Ok(())
        })
    })
    .await
}

/// Runs `f` in a transaction that holds keyward's migration lock, so that migrations from
/// several processes run one after the other.
///
/// - PostgreSQL: `pg_advisory_xact_lock`, released with the transaction. DDL is transactional
///   there, so a failure leaves nothing half-made.
/// - MySQL/MariaDB: `GET_LOCK`, released explicitly (it belongs to the session, and the
///   connection goes back to the pool). DDL commits implicitly there; the transaction only pins
///   the connection.
/// - SQLite: `BEGIN IMMEDIATE`, which takes the write lock at once (waiting as the connection's
///   busy timeout allows) instead of at the first write, when two readers would deadlock.
async fn serialized<F>(db: &DatabaseConnection, f: F) -> Result<(), DbErr>
where
    F: for<'t> FnOnce(
        &'t DatabaseTransaction,
    ) -> Pin<Box<dyn Future<Output = Result<(), DbErr>> + Send + 't>>,
{
    let backend = db.get_database_backend();
    let txn = db
        .begin_with_options(TransactionOptions {
            sqlite_transaction_mode: (backend == DbBackend::Sqlite)
                .then_some(SqliteTransactionMode::Immediate),
            ..TransactionOptions::default()
        })
        .await?;
    match backend {
        DbBackend::Postgres => {
            txn.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({MIGRATE_LOCK_ID})"))
                .await?;
        }
        DbBackend::MySql => {
            let got = txn
                .query_one_raw(Statement::from_string(
                    DbBackend::MySql,
                    format!(
                        "SELECT GET_LOCK('{MIGRATE_LOCK_NAME}', {MYSQL_LOCK_WAIT_SECS}) AS got"
                    ),
                ))
                .await?
                .map(|row| row.try_get::<Option<i64>>("", "got"))
                .transpose()?
                .flatten();
            if got != Some(1) {
                return Err(DbErr::Migration(format!(
                    "another process held the migration lock `{MIGRATE_LOCK_NAME}` for \
                     {MYSQL_LOCK_WAIT_SECS} s"
                )));
            }
        }
        // SQLite: the immediate transaction is the lock. A backend sea-orm adds later: a plain
        // transaction, no lock.
        _ => {}
    }
    let mut result = f(&txn).await;
    if backend == DbBackend::MySql {
        // Released whatever `f` answered: the lock outlives the transaction on its connection.
        let released = txn
            .execute_unprepared(&format!("DO RELEASE_LOCK('{MIGRATE_LOCK_NAME}')"))
            .await;
        result = result.and(released.map(drop));
    }
    result?;
    txn.commit().await
}

/// Drops the tables under `tables`' names (tests, uninstall).
///
/// # Errors
/// The database's error.
pub async fn drop_tables(db: &DatabaseConnection, tables: &Tables) -> Result<(), DbErr> {
    for stmt in drop_statements(tables) {
        db.execute(&stmt).await?;
    }
    Ok(())
}
