//! Verification against the SQL store: a cache miss (cache capacity 0: every verify is one
//! indexed `SELECT` by key id plus the digest) on SQLite and PostgreSQL, and verify with the
//! in-process cache in front (the usual hot path).
//!
//! Rerun: `cargo bench -p keyward-sea-orm --all-features --bench verify_sql`. PostgreSQL is
//! skipped (with a message) when it does not answer; it uses tables with a throwaway prefix in
//! the `test` database and drops them afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use keyward_core::management::CreateKeyRequest;
use keyward_core::{CacheConfig, KeyStore, Keyring, Keyward, ScopeRequirement, VerifyContext};
use keyward_sea_orm::sea_orm::Database;
use keyward_sea_orm::{SeaOrmKeyStore, Tables, connect_options};
use tokio::runtime::Runtime;

fn engine(store: Arc<dyn KeyStore>, cache: usize) -> Keyward {
    Keyward::builder(store, Keyring::insecure_test_keyring())
        .cache(CacheConfig {
            capacity: cache,
            ttl: Duration::from_secs(30),
            ..CacheConfig::default()
        })
        .build()
        .unwrap()
}

/// Creates 200 keys (so the index is not trivially small) and returns one raw key.
async fn seed(kw: &Keyward) -> String {
    let mut raw = String::new();
    for i in 0..200 {
        let created = kw
            .create_key(
                &format!("bench-owner-{}", i % 20),
                CreateKeyRequest {
                    name: format!("bench {i}"),
                    scopes: vec!["reports:read".to_owned()],
                    ..CreateKeyRequest::default()
                },
            )
            .await
            .unwrap();
        raw = created.api_key.expose_secret().to_owned();
    }
    raw
}

fn bench_verify(c: &mut Criterion, rt: &Runtime, name: &str, kw: &Keyward, raw: &str) {
    let need = ScopeRequirement::all_of(["reports:read"]).unwrap();
    let ctx = VerifyContext::default();
    rt.block_on(async { kw.verify(raw, &need, &ctx).await.expect("verify") });
    c.bench_function(name, |b| {
        b.to_async(rt)
            .iter(|| async { kw.verify(raw, &need, &ctx).await.unwrap() });
    });
}

fn sqlite(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let store: Arc<dyn KeyStore> = rt.block_on(async {
        let store = SeaOrmKeyStore::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        Arc::new(store)
    });
    let seeding = engine(store.clone(), 0);
    let raw = rt.block_on(seed(&seeding));
    bench_verify(
        c,
        &rt,
        "verify/sqlite/cache_miss",
        &engine(store.clone(), 0),
        &raw,
    );
    bench_verify(c, &rt, "verify/sqlite/cached", &engine(store, 10_000), &raw);
}

fn postgres(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let url = std::env::var("KEYWARD_TEST_PG_URL")
        .unwrap_or_else(|_| keyward_test::services::DEFAULT_PG_URL.to_owned());
    let tables = Tables::with_prefix(&format!("kw_bench_{}_", std::process::id())).unwrap();
    let Some(store) = rt.block_on(async {
        let mut opts = connect_options(&url);
        opts.connect_timeout(Duration::from_secs(2));
        let db = Database::connect(opts).await.ok()?;
        let store = SeaOrmKeyStore::with_tables(db, tables.clone());
        store.migrate().await.ok()?;
        Some(store)
    }) else {
        eprintln!("verify/postgres: SKIPPED, PostgreSQL does not answer at {url}");
        return;
    };
    let db = store.connection().clone();
    let store: Arc<dyn KeyStore> = Arc::new(store);
    let raw = rt.block_on(seed(&engine(store.clone(), 0)));
    bench_verify(
        c,
        &rt,
        "verify/postgres/cache_miss",
        &engine(store.clone(), 0),
        &raw,
    );
    bench_verify(
        c,
        &rt,
        "verify/postgres/cached",
        &engine(store, 10_000),
        &raw,
    );
    rt.block_on(keyward_sea_orm::drop_tables(&db, &tables))
        .unwrap();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = sqlite, postgres
}
criterion_main!(benches);
