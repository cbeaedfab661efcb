#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

#[cfg(not(any(feature = "sqlite", feature = "postgres", feature = "mysql")))]
compile_error!("keyward-sea-orm needs at least one of the features `sqlite`, `postgres`, `mysql`");

mod analytics;
mod codec;
pub mod entity;
mod error;
mod events;
pub mod files;
mod listing;
mod lookup;
pub mod migration;
mod outbox;
mod replica;
pub mod schema;
mod store;
mod usage;

pub use crate::codec::instant;
#[doc(inline)]
pub use crate::files::MigrationFiles;
#[doc(inline)]
pub use crate::migration::{
    AddKeyEvents, AddKeyLineage, AddKeyUsage, AddLastUse, AddUsageHours, AddWebhookEndpoints,
    AddWebhooks, CreateApiKeys, Migrator, drop_tables, migrate, migrate_tables,
};
#[doc(inline)]
pub use crate::schema::{
    PrefixError, Tables, render_events_sql, render_last_use_sql, render_lineage_sql,
    render_migrations, render_sql, render_usage_hours_sql, render_usage_sql,
    render_webhook_endpoints_sql, render_webhooks_sql,
};
#[doc(inline)]
pub use crate::store::{SeaOrmKeyStore, connect_options};

/// sea-orm, re-exported so that applications use the same version.
pub use sea_orm;
/// sea-orm-migration, re-exported so that an application's own `Migrator` that lists
/// [`CreateApiKeys`], [`AddKeyLineage`], [`AddKeyUsage`], [`AddKeyEvents`], [`AddWebhooks`],
/// [`AddUsageHours`], [`AddWebhookEndpoints`] and [`AddLastUse`] uses the same version.
pub use sea_orm_migration;
