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
//! `Box::new(keyward_sea_orm::CreateApiKeys::new(Tables::default()))` among its migrations
//! instead. One that uses another tool applies the checked-in SQL under `migrations/<backend>/`.

use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr};
use sea_orm_migration::{MigrationName, MigrationTrait, MigratorTrait, SchemaManager};

use crate::schema::{Tables, drop_statements, statements};

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

/// The migrator for the default table names (`api_keys`, `api_key_owners`), recording what it
/// applied in sea-orm's `seaql_migrations` table.
#[derive(Debug, Clone, Copy, Default)]
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateApiKeys::new(Tables::default()))]
    }
}

/// Applies every pending migration for the default table names.
///
/// # Errors
/// The database's error.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    Migrator::up(db, None).await
}

/// The PostgreSQL advisory lock taken while creating prefixed tables (`"keyward\0"` as a number).
const MIGRATE_LOCK_ID: i64 = 0x6b65_7977_6172_6400;

/// Creates the tables under `tables`' names unless the keys table already exists. For table
/// prefixes, which the static [`Migrator`] cannot carry; no bookkeeping table is written.
///
/// # Errors
/// The database's error.
pub async fn migrate_tables(db: &DatabaseConnection, tables: &Tables) -> Result<(), DbErr> {
    if tables.prefix().is_empty() {
        return migrate(db).await;
    }
    let manager = SchemaManager::new(db);
    if manager.has_table(tables.keys()).await? {
        return Ok(());
    }
    let migration = CreateApiKeys::new(tables.clone());
    if db.get_database_backend() == sea_orm::DbBackend::Postgres {
        // DDL is transactional on PostgreSQL: all or nothing. Instances (or test processes)
        // starting together would race on `CREATE TABLE` and fail on PostgreSQL's catalog
        // index; a transaction-scoped advisory lock lets one create and the others find it.
        let manager = manager.begin().await?;
        manager
            .get_connection()
            .execute_unprepared(&format!("SELECT pg_advisory_xact_lock({MIGRATE_LOCK_ID})"))
            .await?;
        if !manager.has_table(tables.keys()).await? {
            migration.up(&manager).await?;
        }
        manager.commit().await
    } else {
        migration.up(&manager).await
    }
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
