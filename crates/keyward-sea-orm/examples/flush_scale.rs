//! Measures two usage flushes of N distinct keys on PostgreSQL (the first gives each key its
//! usage row, the second updates them): their time, how much the tables grow and how many dead
//! rows they leave (the figures of docs/performance.md, "Usage flushes").
//!
//! ```text
//! cargo run --release -p keyward-sea-orm --example flush_scale --all-features -- 100000 [URL]
//! ```
//!
//! It works in tables of its own (prefix `flushscale_`), dropped before and after, in the `test`
//! database of the local server unless a URL is given.
#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs
)]

use std::time::Instant;

use keyward_core::store::{KeyStore, UsageDelta};
use keyward_sea_orm::{SeaOrmKeyStore, Tables};
use keyward_test::store_suite::event_for;
use sea_orm::{ConnectionTrait, Database, Statement};

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().map_or(100_000, |a| a.parse().expect("N"));
    let url = args
        .next()
        .unwrap_or_else(|| keyward_test::services::DEFAULT_PG_URL.to_owned());
    let db = Database::connect(&url).await.expect("connect");
    drop_tables(&db).await;
    let tables = Tables::with_prefix("flushscale_").expect("prefix");
    let store = SeaOrmKeyStore::with_tables(db.clone(), tables);
    store.migrate().await.expect("migrate");
    let template = keyward_test::store_suite::record("scale", time::OffsetDateTime::now_utc());
    store
        .create(
            &template,
            None,
            time::OffsetDateTime::now_utc(),
            &event_for(&template),
        )
        .await
        .expect("template");
    let started = Instant::now();
    db.execute_unprepared(&format!(
        "INSERT INTO flushscale_api_keys (key_id, owner_id, name, description, env, key_prefix, \
         digest, digest_algorithm, pepper_version, scopes, metadata, ip_allowlist, request_count, \
         credits_used, credits_period, is_active, created_at, updated_at) \
         SELECT lpad(i::text, 12, '0'), owner_id, name, description, env, key_prefix, digest, \
         digest_algorithm, pepper_version, scopes, metadata, ip_allowlist, 0, 0, 0, is_active, \
         created_at, updated_at FROM flushscale_api_keys, generate_series(1, {n}) AS i"
    ))
    .await
    .expect("fill");
    db.execute_unprepared("VACUUM ANALYZE flushscale_api_keys")
        .await
        .expect("vacuum");
    println!(
        "{n} keys inserted in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // Sizes of the key table and the usage table, and their dead rows.
    let size = |db: &sea_orm::DatabaseConnection| {
        let db = db.clone();
        async move {
            let row = db
                .query_one_raw(Statement::from_string(
                    sea_orm::DbBackend::Postgres,
                    "SELECT pg_table_size('flushscale_api_keys')::bigint AS k, \
                     pg_total_relation_size('flushscale_api_key_usage')::bigint AS u, \
                     (SELECT coalesce(sum(n_dead_tup), 0) FROM pg_stat_user_tables \
                      WHERE relname IN ('flushscale_api_keys', 'flushscale_api_key_usage'))::bigint AS d",
                ))
                .await
                .expect("size")
                .expect("row");
            let get = |c: &str| row.try_get::<i64>("", c).expect("column");
            (get("k"), get("u"), get("d"))
        }
    };
    let mib = |b: i64| b as f64 / (1024.0 * 1024.0);
    let (keys, _, _) = size(&db).await;
    println!("key table: {:.1} MiB", mib(keys));
    // Two flushes: the first gives every key its usage row, the second updates them all.
    for flush in ["first", "second"] {
        let now = time::OffsetDateTime::now_utc();
        let batch: Vec<UsageDelta> = (1..=n)
            .map(|i| UsageDelta {
                key_id: format!("{i:012}").parse().expect("id"),
                last_used_at: Some(now),
                last_used_from: None,
                requests: 3,
                credits: None,
            })
            .collect();
        let started = Instant::now();
        store.record_usage(&batch, &[]).await.expect("flush");
        let took = started.elapsed().as_secs_f64();
        // Statistics reach pg_stat_user_tables within a second.
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        let (k, u, dead) = size(&db).await;
        println!(
            "{flush} flush of {n} distinct keys: {took:.2} s; key table {:.1} MiB (+{:.1} %), \
             usage table {:.1} MiB with its index; {dead} dead rows (pg_stat_user_tables, which may lag)",
            mib(k),
            (k - keys) as f64 * 100.0 / keys as f64,
            mib(u),
        );
    }
    drop_tables(&db).await;
}

/// Drops the example's tables (before the run, and after it: nothing is left behind).
async fn drop_tables(db: &sea_orm::DatabaseConnection) {
    for t in [
        "flushscale_api_keys",
        "flushscale_api_key_owners",
        "flushscale_api_key_usage",
        "flushscale_seaql_migrations",
    ] {
        db.execute_unprepared(&format!("DROP TABLE IF EXISTS \"{t}\""))
            .await
            .expect("drop");
    }
}
