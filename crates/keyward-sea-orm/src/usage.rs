//! Usage flushes on SQL: the merge of usage deltas into the usage table (migration 0003), as
//! one statement per chunk, and the expressions that merge a key row's own usage with its usage
//! row when keys are read.

use keyward_core::KeyId;
use keyward_core::clock::{micros, utc_text};
use keyward_core::store::UsageDelta;
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, Value};

use crate::codec::{clamp, instant};
use crate::schema::LAST_USE_COLUMNS;

/// Usage deltas written per statement: 7 bound values each, within every dialect's limit on
/// bound parameters (SQLite's 32 766, MySQL's 65 535).
const USAGE_CHUNK: usize = 1000;

/// Usage deltas written per PostgreSQL statement, as one JSON parameter.
const USAGE_CHUNK_JSON: usize = 10_000;

/// The largest count a column holds (`i64::MAX`): counts saturate there.
const MAX_COUNT: &str = "9223372036854775807";

/// The merge of usage `new` into usage `old` (each a prefix of the usage columns, as `"t."`,
/// `"EXCLUDED."` or `"VALUES("` … `")"` give them): counts add (saturating), the later use wins,
/// and the later credit state `(period, used)` wins. `(col, expression)` pairs in the order
/// MySQL needs, which assigns left to right: the credit count before its period.
pub(crate) fn usage_merge(
    old: &dyn Fn(&str) -> String,
    new: &dyn Fn(&str) -> String,
) -> [(&'static str, String); 4] {
    let (req, lu, cp, cu) = (
        "request_count",
        "last_used_at",
        "credits_period",
        "credits_used",
    );
    let later_credit = format!(
        "{new_cp} > {old_cp} OR ({new_cp} = {old_cp} AND {new_cu} > {old_cu})",
        new_cp = new(cp),
        old_cp = old(cp),
        new_cu = new(cu),
        old_cu = old(cu),
    );
    [
        (
            req,
            format!(
                "CASE WHEN {o} > {MAX_COUNT} - {n} THEN {MAX_COUNT} ELSE {o} + {n} END",
                o = old(req),
                n = new(req)
            ),
        ),
        (lu, later_use(old, new, lu)),
        (
            cu,
            format!(
                "CASE WHEN {later_credit} THEN {} ELSE {} END",
                new(cu),
                old(cu)
            ),
        ),
        (
            cp,
            format!(
                "CASE WHEN {n} > {o} THEN {n} ELSE {o} END",
                o = old(cp),
                n = new(cp)
            ),
        ),
    ]
}

/// `column` of `new` when its use is the later one, else of `old`.
fn later_use(old: &dyn Fn(&str) -> String, new: &dyn Fn(&str) -> String, column: &str) -> String {
    format!(
        "CASE WHEN {n} IS NOT NULL AND ({o} IS NULL OR {o} < {n}) THEN {nc} ELSE {oc} END",
        o = old("last_used_at"),
        n = new("last_used_at"),
        nc = new(column),
        oc = old(column),
    )
}

/// [`usage_merge`] for the usage table's upsert: where the last use came from
/// ([`LAST_USE_COLUMNS`]) goes with its time, and is assigned before it (MySQL assigns left to
/// right).
fn upsert_merge(
    old: &dyn Fn(&str) -> String,
    new: &dyn Fn(&str) -> String,
) -> Vec<(&'static str, String)> {
    let mut merge: Vec<(&str, String)> = LAST_USE_COLUMNS
        .iter()
        .map(|c| (*c, later_use(old, new, c)))
        .collect();
    merge.extend(usage_merge(old, new));
    merge
}

/// The upsert of `rows` usage deltas into the usage table `table`: PostgreSQL reads them from
/// one JSON parameter (`{id, req, lu, la, ua, cp, cu}` objects), SQLite and MySQL from bound
/// `(key_id, requests, last_used_at, last_client_addr, last_user_agent, credits_period,
/// credits_used)` rows. A key without a usage row gets one; a key with one has the delta merged
/// in ([`upsert_merge`]).
fn usage_upsert_sql(backend: DbBackend, table: &str, rows: usize) -> String {
    let columns = "(key_id, request_count, last_used_at, last_client_addr, last_user_agent, \
                   credits_period, credits_used)";
    let row = "(?, ?, ?, ?, ?, ?, ?)";
    let assign = |merge: Vec<(&str, String)>| {
        merge
            .iter()
            .map(|(c, e)| format!("{c} = {e}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match backend {
        DbBackend::Postgres => format!(
            "INSERT INTO \"{table}\" AS t {columns} SELECT v.id, v.req, v.lu, v.la, v.ua, v.cp, v.cu \
             FROM jsonb_to_recordset($1::jsonb) \
             AS v(id text, req bigint, lu timestamptz, la text, ua text, cp bigint, cu bigint) \
             ON CONFLICT (key_id) DO UPDATE SET {}",
            assign(upsert_merge(&|c| format!("t.{c}"), &|c| format!(
                "EXCLUDED.{c}"
            )))
        ),
        DbBackend::MySql => format!(
            "INSERT INTO `{table}` {columns} VALUES {} ON DUPLICATE KEY UPDATE {}",
            vec![row; rows].join(", "),
            assign(upsert_merge(&|c| c.to_owned(), &|c| format!("VALUES({c})")))
        ),
        _ => format!(
            "INSERT INTO \"{table}\" AS t {columns} VALUES {} \
             ON CONFLICT (key_id) DO UPDATE SET {}",
            vec![row; rows].join(", "),
            assign(upsert_merge(&|c| format!("t.{c}"), &|c| format!(
                "excluded.{c}"
            )))
        ),
    }
}

/// Where a delta's use came from, as the usage table's two columns hold it.
fn origin_columns(d: &UsageDelta) -> (Option<String>, Option<String>) {
    d.last_used_from.as_ref().map_or((None, None), |o| {
        (o.client_addr.map(|a| a.to_string()), o.user_agent.clone())
    })
}

/// A delta's credit state as `(credits_period, credits_used)` columns: `(0, 0)` without one,
/// which no stored state is behind (a consumed credit makes `used` at least 1).
fn credit_columns(d: &UsageDelta) -> (i64, i64) {
    d.credits.map_or((0, 0), |(p, u)| (clamp(p), clamp(u)))
}

/// `batch` with one delta per key: an upsert may write a row once per statement (PostgreSQL
/// refuses a second). Merging first gives what applying the deltas one
/// after another would: counts add, the latest use wins, and the credit count of the latest
/// `(period, used)`.
fn merged(batch: &[UsageDelta]) -> Vec<UsageDelta> {
    let mut at: std::collections::HashMap<KeyId, usize> =
        std::collections::HashMap::with_capacity(batch.len());
    let mut out: Vec<UsageDelta> = Vec::with_capacity(batch.len());
    for d in batch {
        match at.get(&d.key_id).and_then(|&i| out.get_mut(i)) {
            Some(m) => m.absorb(d),
            None => {
                at.insert(d.key_id, out.len());
                out.push(d.clone());
            }
        }
    }
    out
}

/// Upserts `batch` into the usage table and adds `counts` to the usage analytics
/// ([`crate::analytics::record_in`]): the usage flush. The deltas go one statement per chunk of
/// [`USAGE_CHUNK_JSON`] keys on PostgreSQL and [`USAGE_CHUNK`] elsewhere ([`usage_upsert_sql`]):
/// counts add (saturating), `last_used_at` only moves forward, a credit count is taken only for
/// a later period or a higher count in the same one. A chunk costs one round trip and one plan,
/// not one per key, and writes narrow rows: the key table is not touched.
pub(crate) async fn apply_usage_in(
    txn: &DatabaseTransaction,
    backend: DbBackend,
    tables: &crate::Tables,
    batch: &[UsageDelta],
    counts: &[keyward_core::analytics::UsageCount],
) -> Result<(), DbErr> {
    crate::analytics::record_in(txn, backend, tables.usage_hours(), counts).await?;
    let table = tables.usage();
    let batch = merged(batch);
    if backend == DbBackend::Postgres {
        // One JSON parameter per chunk: a short statement that parses and plans once, and
        // chunks ten times larger than bound parameters allow.
        for chunk in batch.chunks(USAGE_CHUNK_JSON) {
            let rows: Vec<serde_json::Value> = chunk
                .iter()
                .map(|d| {
                    let (cp, cu) = credit_columns(d);
                    let lu = d.last_used_at.map(|t| utc_text(micros(t), "Z"));
                    let (la, ua) = origin_columns(d);
                    serde_json::json!({
                        "id": d.key_id.as_str(),
                        "req": clamp(d.requests),
                        "lu": lu,
                        "la": la,
                        "ua": ua,
                        "cp": cp,
                        "cu": cu,
                    })
                })
                .collect();
            let json = serde_json::Value::Array(rows).to_string();
            let stmt = sea_orm::Statement::from_sql_and_values(
                backend,
                usage_upsert_sql(backend, table, chunk.len()),
                [Value::from(json)],
            );
            txn.execute_raw(stmt).await?;
        }
        return Ok(());
    }
    for chunk in batch.chunks(USAGE_CHUNK) {
        let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * 7);
        for d in chunk {
            let (period, used) = credit_columns(d);
            let (addr, agent) = origin_columns(d);
            values.push(d.key_id.as_str().into());
            values.push(clamp(d.requests).into());
            values.push(instant(backend, d.last_used_at));
            values.push(addr.into());
            values.push(agent.into());
            values.push(period.into());
            values.push(used.into());
        }
        let sql = usage_upsert_sql(backend, table, chunk.len());
        txn.execute_raw(sea_orm::Statement::from_sql_and_values(
            backend, sql, values,
        ))
        .await?;
    }
    Ok(())
}
