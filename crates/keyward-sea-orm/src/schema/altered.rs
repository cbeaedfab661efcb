//! The migrations that add columns to a table an earlier one made: 0002 (the keys table's
//! lineage) and 0008 (where a key's last use came from, in the usage table). The entities hold
//! every column; the `CREATE TABLE` of the earlier migration leaves these out.

use sea_orm::DbBackend;
use sea_orm::Schema;
use sea_orm::sea_query::{
    Alias, MysqlQueryBuilder, PostgresQueryBuilder, SqliteQueryBuilder, Table, TableAlterStatement,
    TableCreateStatement,
};

use super::{Tables, adapt_column, header};
use crate::entity::{api_key, api_key_usage};

/// The columns migration 0002 adds to the keys table (rotation once, who deactivated, the
/// rotation chain); migration 0001 creates the table without them.
pub const LINEAGE_COLUMNS: [&str; 4] = [
    "rotated_to",
    "deactivated_by",
    "lineage_root",
    "lineage_started_at",
];

/// The columns migration 0008 adds to the usage table: where the key's last recorded use came
/// from; migration 0003 creates the table without them.
pub const LAST_USE_COLUMNS: [&str; 2] = ["last_client_addr", "last_user_agent"];

/// One `ALTER TABLE … ADD COLUMN` per column of `columns` in `entity` (SQLite takes one column
/// per statement), on the table `table`.
fn added(
    backend: DbBackend,
    table: &str,
    entity: &TableCreateStatement,
    columns: &[&str],
) -> Vec<TableAlterStatement> {
    entity
        .get_columns()
        .iter()
        .filter(|c| columns.contains(&c.get_column_name().as_str()))
        .map(|c| {
            Table::alter()
                .table(Alias::new(table))
                .add_column(adapt_column(backend, c))
                .to_owned()
        })
        .collect()
}

/// `statements` as a migration file: a header saying `what`, then each statement.
fn render(
    backend: DbBackend,
    tables: &Tables,
    what: &str,
    statements: &[TableAlterStatement],
) -> String {
    let mut out = header(tables, what);
    for stmt in statements {
        out.push('\n');
        out.push_str(&match backend {
            DbBackend::Postgres => stmt.to_string(PostgresQueryBuilder),
            DbBackend::MySql => stmt.to_string(MysqlQueryBuilder),
            _ => stmt.to_string(SqliteQueryBuilder),
        });
        out.push_str(";\n");
    }
    out
}

/// Migration 0002: the columns of [`LINEAGE_COLUMNS`] added to the keys table.
#[must_use]
pub fn lineage_statements(backend: DbBackend, tables: &Tables) -> Vec<TableAlterStatement> {
    let entity = Schema::new(backend).create_table_from_entity(api_key::Entity);
    added(backend, tables.keys(), &entity, &LINEAGE_COLUMNS)
}

/// Migration 0002 as SQL for `backend`: what `migrations/<backend>/0002_key_lineage.sql` holds
/// for the default names.
#[must_use]
pub fn render_lineage_sql(backend: DbBackend, tables: &Tables) -> String {
    render(
        backend,
        tables,
        "rotation at most once, who deactivated a key, the rotation chain.",
        &lineage_statements(backend, tables),
    )
}

/// Migration 0008: the columns of [`LAST_USE_COLUMNS`] added to the usage table.
#[must_use]
pub fn last_use_statements(backend: DbBackend, tables: &Tables) -> Vec<TableAlterStatement> {
    let entity = Schema::new(backend).create_table_from_entity(api_key_usage::Entity);
    added(backend, tables.usage(), &entity, &LAST_USE_COLUMNS)
}

/// Migration 0008 as SQL for `backend`: what `migrations/<backend>/0008_last_use.sql` holds
/// for the default names.
#[must_use]
pub fn render_last_use_sql(backend: DbBackend, tables: &Tables) -> String {
    render(
        backend,
        tables,
        "where a key's last recorded use came from (client address, user agent).",
        &last_use_statements(backend, tables),
    )
}
