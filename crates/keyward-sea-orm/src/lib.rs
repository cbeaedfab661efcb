//! SQL key store for keyward on sea-orm 2: one [`KeyStore`](keyward_core::KeyStore) for
//! PostgreSQL, SQLite and MySQL/MariaDB (features `postgres`, `sqlite` (default), `mysql`).
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use keyward_sea_orm::SeaOrmKeyStore;
//!
//! let store = SeaOrmKeyStore::connect("sqlite:///var/lib/app/keys.db").await?;
//! store.migrate().await?; // or apply the SQL files of `MigrationFiles` with your own tool
//! let keyward = keyward_core::Keyward::builder(Arc::new(store), keyward_core::Keyring::insecure_test_keyring())
//!     .build()?;
//! # let _ = keyward; Ok(()) }
//! ```
//!
//! - [`entity`]: the sea-orm entities (`api_keys`, `api_key_owners`).
//! - [`schema`]: the DDL per backend, with an optional table prefix ([`Tables`]).
//! - [`migrate`] / [`Migrator`] / [`CreateApiKeys`]: sea-orm-migration.
//! - [`MigrationFiles`]: the migrations as SQL files, for your own `cargo xtask migrations`.
//! - [`SeaOrmKeyStore`]: the store. See `docs/databases.md` for choosing a database.
#![forbid(unsafe_code)]

#[cfg(not(any(feature = "sqlite", feature = "postgres", feature = "mysql")))]
compile_error!("keyward-sea-orm needs at least one of the features `sqlite`, `postgres`, `mysql`");

mod codec;
pub mod entity;
mod error;
pub mod files;
pub mod migration;
pub mod schema;
mod store;

#[doc(inline)]
pub use crate::files::MigrationFiles;
#[doc(inline)]
pub use crate::migration::{
    AddKeyLineage, CreateApiKeys, Migrator, drop_tables, migrate, migrate_tables,
};
#[doc(inline)]
pub use crate::schema::{PrefixError, Tables, render_lineage_sql, render_migrations, render_sql};
#[doc(inline)]
pub use crate::store::{SeaOrmKeyStore, connect_options};

/// sea-orm, re-exported so that applications use the same version.
pub use sea_orm;
/// sea-orm-migration, re-exported so that an application's own `Migrator` that lists
/// [`CreateApiKeys`] and [`AddKeyLineage`] uses the same version.
pub use sea_orm_migration;
