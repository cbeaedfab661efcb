//! Usage analytics in SQL ([`crate::entity::api_key_usage_hour`]): counts added in the usage
//! flush's transaction, one statement per chunk; read summed over an owner's keys (or one key)
//! for each hour, outcome and tag set; pruned an hour at a time.

use std::collections::HashMap;

use keyward_core::analytics::{Outcome, Tags, UsageCount, UsageFilter, UsageRow};
use keyward_core::clock::{micros, utc_text};
use keyward_core::store::StoreError;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Order, Query};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, Value,
    prelude::TimeDateTimeWithTimeZone,
};
use time::OffsetDateTime;

use crate::codec::{clamp, instant};
use crate::entity::api_key_usage_hour::Column;
use crate::error::{corrupt, store_err};
use crate::schema::Tables;

/// Counts written per statement: 7 bound values each, within every dialect's limit.
const CHUNK: usize = 1000;

/// Counts written per PostgreSQL statement, as one JSON parameter.
const CHUNK_JSON: usize = 10_000;

/// The largest count a column holds (`i64::MAX`): counts saturate there.
const MAX_COUNT: &str = "9223372036854775807";

/// The upsert of `rows` counts into `table`: a new key, hour, outcome and tag set gets a row,
/// an existing one has the count added (saturating).
fn upsert_sql(backend: DbBackend, table: &str, rows: usize) -> String {
    let columns = "(key_id, hour, outcome, tag_set, owner_id, tags, verifications)";
    let key = "(key_id, hour, outcome, tag_set)";
    let add = |old: &str, new: &str| {
        format!("CASE WHEN {old} > {MAX_COUNT} - {new} THEN {MAX_COUNT} ELSE {old} + {new} END")
    };
    let values = || vec!["(?, ?, ?, ?, ?, ?, ?)"; rows].join(", ");
    match backend {
        DbBackend::Postgres => format!(
            "INSERT INTO \"{table}\" AS t {columns} SELECT v.k, v.h, v.o, v.s, v.w, v.t, v.n \
             FROM jsonb_to_recordset($1::jsonb) \
             AS v(k text, h timestamptz, o text, s text, w text, t text, n bigint) \
             ON CONFLICT {key} DO UPDATE SET verifications = {}",
            add("t.verifications", "EXCLUDED.verifications")
        ),
        DbBackend::MySql => format!(
            "INSERT INTO `{table}` {columns} VALUES {} ON DUPLICATE KEY UPDATE verifications = {}",
            values(),
            add("verifications", "VALUES(verifications)")
        ),
        _ => format!(
            "INSERT INTO \"{table}\" AS t {columns} VALUES {} \
             ON CONFLICT {key} DO UPDATE SET verifications = {}",
            values(),
            add("t.verifications", "excluded.verifications")
        ),
    }
}

/// Adds `counts` to `table` in `txn`, one statement per chunk. Counts for the same key, hour,
/// outcome and tags are merged first: an upsert may write a row once per statement.
pub(crate) async fn record_in(
    txn: &DatabaseTransaction,
    backend: DbBackend,
    table: &str,
    counts: &[UsageCount],
) -> Result<(), DbErr> {
    let mut merged: HashMap<(&str, OffsetDateTime, Outcome, &Tags), (&UsageCount, u64)> =
        HashMap::with_capacity(counts.len());
    for c in counts {
        let slot = merged
            .entry((c.key_id.as_str(), c.hour, c.outcome, &c.tags))
            .or_insert((c, 0));
        slot.1 = slot.1.saturating_add(c.count);
    }
    let rows: Vec<(&UsageCount, u64)> = merged.into_values().collect();
    if backend == DbBackend::Postgres {
        for chunk in rows.chunks(CHUNK_JSON) {
            let json: Vec<serde_json::Value> = chunk
                .iter()
                .map(|(c, n)| {
                    serde_json::json!({
                        "k": c.key_id.as_str(),
                        "h": utc_text(micros(c.hour), "Z"),
                        "o": c.outcome.as_str(),
                        "s": c.tags.fingerprint(),
                        "w": &*c.owner_id,
                        "t": c.tags.to_json(),
                        "n": clamp(*n),
                    })
                })
                .collect();
            let stmt = sea_orm::Statement::from_sql_and_values(
                backend,
                upsert_sql(backend, table, chunk.len()),
                [Value::from(serde_json::Value::Array(json).to_string())],
            );
            txn.execute_raw(stmt).await?;
        }
        return Ok(());
    }
    for chunk in rows.chunks(CHUNK) {
        let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * 7);
        for (c, n) in chunk {
            values.push(c.key_id.as_str().into());
            values.push(instant(backend, Some(c.hour)));
            values.push(c.outcome.as_str().into());
            values.push(c.tags.fingerprint().into());
            values.push(c.owner_id.to_string().into());
            values.push(c.tags.to_json().into());
            values.push(clamp(*n).into());
        }
        txn.execute_raw(sea_orm::Statement::from_sql_and_values(
            backend,
            upsert_sql(backend, table, chunk.len()),
            values,
        ))
        .await?;
    }
    Ok(())
}

/// The counts `filter` names, summed over its keys for each hour, outcome and tag set.
pub(crate) async fn read(
    db: &DatabaseConnection,
    tables: &Tables,
    filter: &UsageFilter<'_>,
) -> Result<Vec<UsageRow>, StoreError> {
    let backend = db.get_database_backend();
    let sum = match backend {
        DbBackend::Postgres => "CAST(SUM(\"verifications\") AS BIGINT)",
        DbBackend::MySql => "CAST(SUM(`verifications`) AS SIGNED)",
        _ => "SUM(\"verifications\")",
    };
    let mut stmt = Query::select();
    stmt.columns([Column::Hour, Column::Outcome, Column::TagSet])
        .expr_as(Expr::col(Column::Tags).max(), Alias::new("tags"))
        .expr_as(Expr::cust(sum), Alias::new("n"))
        .from(tables.usage_hours_iden())
        .and_where(Expr::col(Column::OwnerId).eq(filter.owner_id))
        .and_where(Expr::col(Column::Hour).gte(instant(backend, Some(filter.from))))
        .and_where(Expr::col(Column::Hour).lt(instant(backend, Some(filter.to))))
        .group_by_columns([Column::Hour, Column::Outcome, Column::TagSet]);
    if let Some(k) = filter.key_id {
        stmt.and_where(Expr::col(Column::KeyId).eq(k.as_str()));
    }
    let rows = db
        .query_all(&stmt)
        .await
        .map_err(|e| store_err("usage", e))?;
    rows.iter()
        .map(|row| {
            let get = |e: DbErr| store_err("usage", e);
            let hour: TimeDateTimeWithTimeZone = row.try_get("", "hour").map_err(get)?;
            let outcome: String = row.try_get("", "outcome").map_err(get)?;
            let tags: String = row.try_get("", "tags").map_err(get)?;
            let n: i64 = row.try_get("", "n").map_err(get)?;
            Ok(UsageRow {
                hour: keyward_core::clock::utc(hour),
                outcome: Outcome::parse(&outcome).ok_or_else(|| corrupt("usage outcome"))?,
                tags: Tags::from_json(&tags).ok_or_else(|| corrupt("usage tags"))?,
                count: u64::try_from(n).map_err(|_| corrupt("usage count"))?,
            })
        })
        .collect()
}

/// Deletes the counts of the oldest hour before `before`, and says how many rows went.
pub(crate) async fn prune(
    db: &DatabaseConnection,
    tables: &Tables,
    before: OffsetDateTime,
) -> Result<u64, StoreError> {
    let backend = db.get_database_backend();
    let oldest = Query::select()
        .column(Column::Hour)
        .from(tables.usage_hours_iden())
        .and_where(Expr::col(Column::Hour).lt(instant(backend, Some(before))))
        .order_by(Column::Hour, Order::Asc)
        .limit(1)
        .to_owned();
    let Some(row) = db
        .query_one(&oldest)
        .await
        .map_err(|e| store_err("prune_usage", e))?
    else {
        return Ok(0);
    };
    let hour: TimeDateTimeWithTimeZone = row
        .try_get("", "hour")
        .map_err(|e| store_err("prune_usage", e))?;
    let delete = Query::delete()
        .from_table(tables.usage_hours_iden())
        .and_where(Expr::col(Column::Hour).eq(instant(backend, Some(hour))))
        .to_owned();
    let done = db
        .execute(&delete)
        .await
        .map_err(|e| store_err("prune_usage", e))?;
    Ok(done.rows_affected())
}
