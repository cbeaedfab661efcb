//! The schema, built from the entities for each backend: used by the [`crate::Migrator`], by
//! `cargo xtask migrations` (which renders it into `migrations/<backend>/*.sql`), and by anyone
//! who wants the DDL for their own migration tool ([`render_sql`]).
//!
//! Per-backend adjustments to what `Schema::create_table_from_entity` gives:
//! - PostgreSQL: the key id columns (`key_id`, `rotated_from`, `rotated_to`, `lineage_root`) use
//!   the `"C"` collation, so keys list in byte order whatever the database's default collation.
//! - MySQL/MariaDB: timestamps are `DATETIME(6)` (microseconds, no 2038 limit), and the tables
//!   are `utf8mb4` with the binary collation, so key ids and owner ids compare case-sensitively.
//! - SQLite: as generated (text timestamps, binary collation by default).

use std::fmt;

use sea_orm::sea_query::{
    Alias, ColumnDef, ColumnType, Index, IndexCreateStatement, MysqlQueryBuilder,
    PostgresQueryBuilder, SqliteQueryBuilder, Table, TableCreateStatement, TableDropStatement,
};
use sea_orm::{DbBackend, EntityName, Schema};

mod altered;

pub use altered::{
    LAST_USE_COLUMNS, LINEAGE_COLUMNS, last_use_statements, lineage_statements,
    render_last_use_sql, render_lineage_sql,
};

use crate::entity::{
    api_key, api_key_delivery, api_key_event, api_key_outbox, api_key_owner, api_key_usage,
    api_key_usage_hour, api_key_webhook_endpoint,
};

/// Longest table prefix accepted.
pub const MAX_PREFIX_LEN: usize = 32;

/// A table prefix that is not `[a-z][a-z0-9_]*` (at most [`MAX_PREFIX_LEN`] characters).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("table prefix must match [a-z][a-z0-9_]* and be at most {MAX_PREFIX_LEN} characters")]
pub struct PrefixError;

/// The table and index names in use: the defaults with an optional prefix, for several
/// deployments (or tests) sharing one database.
#[derive(Clone, PartialEq, Eq)]
pub struct Tables {
    prefix: String,
    keys: String,
    owners: String,
    usage: String,
    events: String,
    outbox: String,
    deliveries: String,
    usage_hours: String,
    endpoints: String,
}

impl Default for Tables {
    /// `api_keys` and `api_key_owners`.
    fn default() -> Self {
        Self::build(String::new())
    }
}

impl fmt::Debug for Tables {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tables")
            .field("keys", &self.keys)
            .field("owners", &self.owners)
            .field("usage", &self.usage)
            .field("events", &self.events)
            .field("outbox", &self.outbox)
            .field("deliveries", &self.deliveries)
            .field("usage_hours", &self.usage_hours)
            .field("endpoints", &self.endpoints)
            .finish()
    }
}

impl Tables {
    /// Names with `prefix` in front (`""` for the defaults). A prefix like `myapp_` gives
    /// `myapp_api_keys`.
    ///
    /// # Errors
    /// [`PrefixError`] unless the prefix is empty or `[a-z][a-z0-9_]*`, at most
    /// [`MAX_PREFIX_LEN`] characters: it goes into SQL identifiers.
    pub fn with_prefix(prefix: &str) -> Result<Self, PrefixError> {
        let ok = prefix.is_empty()
            || (prefix.len() <= MAX_PREFIX_LEN
                && prefix.starts_with(|c: char| c.is_ascii_lowercase())
                && prefix
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
        if ok {
            Ok(Self::build(prefix.to_owned()))
        } else {
            Err(PrefixError)
        }
    }

    fn build(prefix: String) -> Self {
        Self {
            keys: format!("{prefix}{}", api_key::Entity.table_name()),
            owners: format!("{prefix}{}", api_key_owner::Entity.table_name()),
            usage: format!("{prefix}{}", api_key_usage::Entity.table_name()),
            events: format!("{prefix}{}", api_key_event::Entity.table_name()),
            outbox: format!("{prefix}{}", api_key_outbox::Entity.table_name()),
            deliveries: format!("{prefix}{}", api_key_delivery::Entity.table_name()),
            usage_hours: format!("{prefix}{}", api_key_usage_hour::Entity.table_name()),
            endpoints: format!("{prefix}{}", api_key_webhook_endpoint::Entity.table_name()),
            prefix,
        }
    }

    /// The prefix.
    #[must_use]
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The keys table.
    #[must_use]
    pub fn keys(&self) -> &str {
        &self.keys
    }

    /// The owners table.
    #[must_use]
    pub fn owners(&self) -> &str {
        &self.owners
    }

    /// The usage table (migration 0003).
    #[must_use]
    pub fn usage(&self) -> &str {
        &self.usage
    }

    /// The audit log (migration 0004).
    #[must_use]
    pub fn events(&self) -> &str {
        &self.events
    }

    /// The webhook outbox (migration 0005).
    #[must_use]
    pub fn outbox(&self) -> &str {
        &self.outbox
    }

    /// The webhook deliveries (migration 0005).
    #[must_use]
    pub fn deliveries(&self) -> &str {
        &self.deliveries
    }

    /// The unique index on `key_id`.
    #[must_use]
    pub fn key_id_index(&self) -> String {
        format!("{}_key_id_key", self.keys)
    }

    /// The listing index on `(owner_id, created_at, key_id)`.
    #[must_use]
    pub fn owner_index(&self) -> String {
        format!("{}_owner_idx", self.keys)
    }

    pub(crate) fn keys_iden(&self) -> Alias {
        Alias::new(self.keys.as_str())
    }

    pub(crate) fn owners_iden(&self) -> Alias {
        Alias::new(self.owners.as_str())
    }

    pub(crate) fn usage_iden(&self) -> Alias {
        Alias::new(self.usage.as_str())
    }

    pub(crate) fn events_iden(&self) -> Alias {
        Alias::new(self.events.as_str())
    }

    pub(crate) fn outbox_iden(&self) -> Alias {
        Alias::new(self.outbox.as_str())
    }

    /// Usage analytics, by key and hour (migration 0006).
    #[must_use]
    pub fn usage_hours(&self) -> &str {
        &self.usage_hours
    }

    pub(crate) fn usage_hours_iden(&self) -> Alias {
        Alias::new(self.usage_hours.as_str())
    }

    pub(crate) fn deliveries_iden(&self) -> Alias {
        Alias::new(self.deliveries.as_str())
    }

    /// The disabled webhook endpoints (migration 0007).
    #[must_use]
    pub fn webhook_endpoints(&self) -> &str {
        &self.endpoints
    }

    pub(crate) fn webhook_endpoints_iden(&self) -> Alias {
        Alias::new(self.endpoints.as_str())
    }
}

/// Every statement that creates the schema, in order.
#[derive(Debug, Clone)]
pub struct SchemaStatements {
    /// `CREATE TABLE <prefix>api_keys`.
    pub keys_table: TableCreateStatement,
    /// The unique `key_id` index and the owner listing index.
    pub indexes: Vec<IndexCreateStatement>,
    /// `CREATE TABLE <prefix>api_key_owners`.
    pub owners_table: TableCreateStatement,
}

/// Columns holding a key id or an event id, compared bytewise.
const KEY_ID_COLUMNS: [&str; 6] = [
    "key_id",
    "rotated_from",
    "rotated_to",
    "lineage_root",
    "event_id",
    "delivery_id",
];

/// A column of the entity as `backend` wants it.
fn adapt_column(backend: DbBackend, column: &ColumnDef) -> ColumnDef {
    let mut column = column.clone();
    let col_name = column.get_column_name();
    let timestamp = matches!(
        column.get_column_type(),
        Some(ColumnType::TimestampWithTimeZone)
    );
    match backend {
        DbBackend::MySql if timestamp => {
            column.custom(Alias::new("DATETIME(6)"));
        }
        DbBackend::Postgres if KEY_ID_COLUMNS.contains(&col_name.as_str()) => {
            column.extra("COLLATE \"C\"");
        }
        _ => {}
    }
    column
}

fn adapt(backend: DbBackend, name: &str, from: &TableCreateStatement) -> TableCreateStatement {
    let mut table = Table::create();
    table.table(Alias::new(name));
    for column in from.get_columns() {
        let name = column.get_column_name();
        if LINEAGE_COLUMNS.contains(&name.as_str()) || LAST_USE_COLUMNS.contains(&name.as_str()) {
            continue;
        }
        table.col(adapt_column(backend, column));
    }
    if backend == DbBackend::MySql {
        table
            .engine("InnoDB")
            .character_set("utf8mb4")
            .collate("utf8mb4_bin");
    }
    table
}

/// The statements creating the schema on `backend` under `tables`' names.
#[must_use]
pub fn statements(backend: DbBackend, tables: &Tables) -> SchemaStatements {
    let schema = Schema::new(backend);
    let keys_table = adapt(
        backend,
        tables.keys(),
        &schema.create_table_from_entity(api_key::Entity),
    );
    let owners_table = adapt(
        backend,
        tables.owners(),
        &schema.create_table_from_entity(api_key_owner::Entity),
    );
    let indexes = vec![
        Index::create()
            .name(tables.key_id_index())
            .table(tables.keys_iden())
            .col(api_key::Column::KeyId)
            .unique()
            .to_owned(),
        Index::create()
            .name(tables.owner_index())
            .table(tables.keys_iden())
            .col(api_key::Column::OwnerId)
            .col(api_key::Column::CreatedAt)
            .col(api_key::Column::KeyId)
            .to_owned(),
    ];
    SchemaStatements {
        keys_table,
        indexes,
        owners_table,
    }
}

/// Every migration as SQL for `backend` under `tables`' names, in order: `(file name, SQL)`, the
/// files `migrations/<backend>/` holds for the default names (`0001_create_api_keys.sql`,
/// `0002_key_lineage.sql`, …). Feed them to any migration tool, in order.
#[must_use]
pub fn render_migrations(backend: DbBackend, tables: &Tables) -> Vec<(&'static str, String)> {
    vec![
        ("0001_create_api_keys.sql", render_sql(backend, tables)),
        ("0002_key_lineage.sql", render_lineage_sql(backend, tables)),
        ("0003_key_usage.sql", render_usage_sql(backend, tables)),
        ("0004_key_events.sql", render_events_sql(backend, tables)),
        ("0005_webhooks.sql", render_webhooks_sql(backend, tables)),
        (
            "0006_usage_hours.sql",
            render_usage_hours_sql(backend, tables),
        ),
        (
            "0007_webhook_endpoints.sql",
            render_webhook_endpoints_sql(backend, tables),
        ),
        ("0008_last_use.sql", render_last_use_sql(backend, tables)),
    ]
}

/// Migration 0006: the usage analytics table ([`api_key_usage_hour`], keyed by key, hour,
/// outcome and tag set) and its index by owner and hour, which owner-wide reads and retention
/// take.
#[must_use]
pub fn usage_hours_statements(
    backend: DbBackend,
    tables: &Tables,
) -> (TableCreateStatement, Vec<IndexCreateStatement>) {
    use api_key_usage_hour::Column;
    let mut table = adapt(
        backend,
        tables.usage_hours(),
        &Schema::new(backend).create_table_from_entity(api_key_usage_hour::Entity),
    );
    // `adapt` keeps columns only: the composite key, the upserts' conflict target, again.
    table.primary_key(
        Index::create()
            .col(Column::KeyId)
            .col(Column::Hour)
            .col(Column::Outcome)
            .col(Column::TagSet),
    );
    let index = Index::create()
        .name(format!("{}_owner_idx", tables.usage_hours()))
        .table(tables.usage_hours_iden())
        .col(Column::OwnerId)
        .col(Column::Hour)
        .to_owned();
    let by_hour = Index::create()
        .name(format!("{}_hour_idx", tables.usage_hours()))
        .table(tables.usage_hours_iden())
        .col(Column::Hour)
        .to_owned();
    (table, vec![index, by_hour])
}

/// Migration 0007: the disabled webhook endpoints ([`api_key_webhook_endpoint`]).
#[must_use]
pub fn webhook_endpoints_statement(backend: DbBackend, tables: &Tables) -> TableCreateStatement {
    adapt(
        backend,
        tables.webhook_endpoints(),
        &Schema::new(backend).create_table_from_entity(api_key_webhook_endpoint::Entity),
    )
}

/// Migration 0007 as SQL for `backend`: what `migrations/<backend>/0007_webhook_endpoints.sql`
/// holds for the default names.
#[must_use]
pub fn render_webhook_endpoints_sql(backend: DbBackend, tables: &Tables) -> String {
    render_created(
        backend,
        tables,
        "the disabled webhook endpoints.",
        &[webhook_endpoints_statement(backend, tables)],
        &[],
    )
}

/// Migration 0006 as SQL for `backend`: what `migrations/<backend>/0006_usage_hours.sql` holds
/// for the default names.
#[must_use]
pub fn render_usage_hours_sql(backend: DbBackend, tables: &Tables) -> String {
    let (table, indexes) = usage_hours_statements(backend, tables);
    render_created(
        backend,
        tables,
        "usage analytics, verifications by key, hour, outcome and tags.",
        &[table],
        &indexes,
    )
}

/// Migration 0004: the audit log table and its three indexes, each ending in the event's time
/// (the order every read of the log takes): by owner, by key, and by time alone.
#[must_use]
pub fn events_statements(
    backend: DbBackend,
    tables: &Tables,
) -> (TableCreateStatement, Vec<IndexCreateStatement>) {
    use api_key_event::Column;
    let table = adapt(
        backend,
        tables.events(),
        &Schema::new(backend).create_table_from_entity(api_key_event::Entity),
    );
    let index = |suffix: &str, lead: Option<Column>| {
        let mut i = Index::create();
        i.name(format!("{}_{suffix}", tables.events()))
            .table(tables.events_iden());
        if let Some(lead) = lead {
            i.col(lead);
        }
        i.col(Column::At).col(Column::EventId).to_owned()
    };
    let indexes = vec![
        index("owner_idx", Some(Column::OwnerId)),
        index("key_idx", Some(Column::KeyId)),
        index("at_idx", None),
    ];
    (table, indexes)
}

/// Migration 0004 as SQL for `backend`: what `migrations/<backend>/0004_key_events.sql` holds
/// for the default names.
#[must_use]
pub fn render_events_sql(backend: DbBackend, tables: &Tables) -> String {
    let (table, indexes) = events_statements(backend, tables);
    render_created(
        backend,
        tables,
        "the audit log, one row per management action or security-relevant change.",
        &[table],
        &indexes,
    )
}

/// Migration 0005: the webhook outbox (events not yet handed to the endpoints, oldest first)
/// and the deliveries, indexed by what a claim reads (pending, by due time) and by what the
/// delivery list reads (newest first).
#[must_use]
pub fn webhook_statements(
    backend: DbBackend,
    tables: &Tables,
) -> (Vec<TableCreateStatement>, Vec<IndexCreateStatement>) {
    use crate::entity::{api_key_delivery as delivery, api_key_outbox as outbox};
    let schema = Schema::new(backend);
    let created = vec![
        adapt(
            backend,
            tables.outbox(),
            &schema.create_table_from_entity(outbox::Entity),
        ),
        adapt(
            backend,
            tables.deliveries(),
            &schema.create_table_from_entity(delivery::Entity),
        ),
    ];
    let indexes = vec![
        Index::create()
            .name(format!("{}_at_idx", tables.outbox()))
            .table(tables.outbox_iden())
            .col(outbox::Column::At)
            .col(outbox::Column::EventId)
            .to_owned(),
        Index::create()
            .name(format!("{}_due_idx", tables.deliveries()))
            .table(tables.deliveries_iden())
            .col(delivery::Column::Status)
            .col(delivery::Column::NextAttemptAt)
            .to_owned(),
        Index::create()
            .name(format!("{}_created_idx", tables.deliveries()))
            .table(tables.deliveries_iden())
            .col(delivery::Column::CreatedAt)
            .col(delivery::Column::DeliveryId)
            .to_owned(),
    ];
    (created, indexes)
}

/// Migration 0005 as SQL for `backend`: what `migrations/<backend>/0005_webhooks.sql` holds
/// for the default names.
#[must_use]
pub fn render_webhooks_sql(backend: DbBackend, tables: &Tables) -> String {
    let (created, indexes) = webhook_statements(backend, tables);
    render_created(
        backend,
        tables,
        "the webhook outbox and deliveries.",
        &created,
        &indexes,
    )
}

/// The header of a migration file: what it holds, that it is generated, and the prefix.
fn header(tables: &Tables, what: &str) -> String {
    let mut out = format!(
        "-- keyward: {what}\n\
         -- Generated from the keyward-sea-orm entities by `cargo xtask migrations`; do not edit.\n"
    );
    if !tables.prefix().is_empty() {
        out.push_str(&format!("-- Table prefix: {}\n", tables.prefix()));
    }
    out
}

/// A migration that creates tables and indexes, as SQL for `backend`, under a header that says
/// what it holds.
fn render_created(
    backend: DbBackend,
    tables: &Tables,
    what: &str,
    created: &[TableCreateStatement],
    indexes: &[IndexCreateStatement],
) -> String {
    let mut out = header(tables, what);
    let sql = |stmt: String| format!("\n{};\n", one_column_a_line(&stmt));
    for t in created {
        out.push_str(&sql(match backend {
            DbBackend::Postgres => t.to_string(PostgresQueryBuilder),
            DbBackend::MySql => t.to_string(MysqlQueryBuilder),
            _ => t.to_string(SqliteQueryBuilder),
        }));
    }
    for i in indexes {
        out.push_str(&sql(match backend {
            DbBackend::Postgres => i.to_string(PostgresQueryBuilder),
            DbBackend::MySql => i.to_string(MysqlQueryBuilder),
            _ => i.to_string(SqliteQueryBuilder),
        }));
    }
    out
}

/// Migration 0003: the usage table, and on PostgreSQL its fill factor (half of each page kept
/// free, so that a flush updates a key's row in its own page, a heap-only update that leaves
/// no index entry behind and whose old version the next reader of the page prunes).
#[must_use]
pub fn usage_statements(
    backend: DbBackend,
    tables: &Tables,
) -> (TableCreateStatement, Option<String>) {
    let table = adapt(
        backend,
        tables.usage(),
        &Schema::new(backend).create_table_from_entity(api_key_usage::Entity),
    );
    let storage = (backend == DbBackend::Postgres)
        .then(|| format!("ALTER TABLE \"{}\" SET (fillfactor = 50)", tables.usage()));
    (table, storage)
}

/// Migration 0003 as SQL for `backend`: what `migrations/<backend>/0003_key_usage.sql` holds
/// for the default names.
#[must_use]
pub fn render_usage_sql(backend: DbBackend, tables: &Tables) -> String {
    let mut out = header(
        tables,
        "the usage flushes write, one narrow row per key, apart from the key row.",
    );
    let (table, storage) = usage_statements(backend, tables);
    out.push('\n');
    out.push_str(&one_column_a_line(&match backend {
        DbBackend::Postgres => table.to_string(PostgresQueryBuilder),
        DbBackend::MySql => table.to_string(MysqlQueryBuilder),
        _ => table.to_string(SqliteQueryBuilder),
    }));
    out.push_str(";\n");
    if let Some(storage) = storage {
        out.push('\n');
        out.push_str(&storage);
        out.push_str(";\n");
    }
    out
}

/// The statements dropping the schema (for tests and `down` migrations).
#[must_use]
pub fn drop_statements(tables: &Tables) -> Vec<TableDropStatement> {
    vec![
        Table::drop()
            .table(tables.webhook_endpoints_iden())
            .if_exists()
            .to_owned(),
        Table::drop()
            .table(tables.usage_hours_iden())
            .if_exists()
            .to_owned(),
        Table::drop()
            .table(tables.deliveries_iden())
            .if_exists()
            .to_owned(),
        Table::drop()
            .table(tables.outbox_iden())
            .if_exists()
            .to_owned(),
        Table::drop()
            .table(tables.events_iden())
            .if_exists()
            .to_owned(),
        Table::drop()
            .table(tables.usage_iden())
            .if_exists()
            .to_owned(),
        Table::drop()
            .table(tables.keys_iden())
            .if_exists()
            .to_owned(),
        Table::drop()
            .table(tables.owners_iden())
            .if_exists()
            .to_owned(),
    ]
}

/// The first migration as SQL for `backend`: what `migrations/<backend>/0001_create_api_keys.sql`
/// holds for the default names. Feed it to any migration tool.
#[must_use]
pub fn render_sql(backend: DbBackend, tables: &Tables) -> String {
    let s = statements(backend, tables);
    let mut out = header(tables, "API keys and owner lock rows.");
    out.push('\n');
    let mut push = |sql: String| {
        out.push_str(&one_column_a_line(&sql));
        out.push_str(";\n\n");
    };
    match backend {
        DbBackend::Postgres => {
            push(s.keys_table.to_string(PostgresQueryBuilder));
            for i in &s.indexes {
                push(i.to_string(PostgresQueryBuilder));
            }
            push(s.owners_table.to_string(PostgresQueryBuilder));
        }
        DbBackend::MySql => {
            push(s.keys_table.to_string(MysqlQueryBuilder));
            for i in &s.indexes {
                push(i.to_string(MysqlQueryBuilder));
            }
            push(s.owners_table.to_string(MysqlQueryBuilder));
        }
        _ => {
            push(s.keys_table.to_string(SqliteQueryBuilder));
            for i in &s.indexes {
                push(i.to_string(SqliteQueryBuilder));
            }
            push(s.owners_table.to_string(SqliteQueryBuilder));
        }
    }
    out.truncate(out.trim_end().len());
    out.push('\n');
    out
}

/// Puts each column of a `CREATE TABLE` on its own line (top-level commas inside the column
/// list); other statements pass through.
fn one_column_a_line(sql: &str) -> String {
    if !sql.starts_with("CREATE TABLE") {
        return sql.to_owned();
    }
    let mut out = String::with_capacity(sql.len() + 64);
    let mut depth = 0usize;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '(' => {
                depth += 1;
                if depth == 1 {
                    out.push_str("(\n    ");
                    if chars.peek() == Some(&' ') {
                        chars.next();
                    }
                    continue;
                }
            }
            ')' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    let trimmed = out.trim_end().len();
                    out.truncate(trimmed);
                    out.push_str("\n)");
                    continue;
                }
            }
            ',' if depth == 1 => {
                out.push_str(",\n    ");
                if chars.peek() == Some(&' ') {
                    chars.next();
                }
                continue;
            }
            _ => {}
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        assert_eq!(Tables::default().keys(), "api_keys");
        let t = Tables::with_prefix("app1_").unwrap_or_default();
        assert_eq!(t.keys(), "app1_api_keys");
        assert_eq!(t.owners(), "app1_api_key_owners");
        for bad in ["1x", "A", "x-y", "x;drop", "x y", &"a".repeat(33)] {
            assert_eq!(Tables::with_prefix(bad), Err(PrefixError), "{bad}");
        }
    }

    #[test]
    fn render_each_backend() {
        for b in [DbBackend::Postgres, DbBackend::MySql, DbBackend::Sqlite] {
            let sql = render_sql(b, &Tables::default());
            assert!(sql.contains("api_keys_key_id_key"), "{sql}");
            assert!(sql.contains("api_key_owners"), "{sql}");
        }
        assert!(render_sql(DbBackend::MySql, &Tables::default()).contains("DATETIME(6)"));
        assert!(render_sql(DbBackend::Postgres, &Tables::default()).contains("COLLATE \"C\""));
    }
}
