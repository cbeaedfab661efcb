//! The store conformance suite on SQLite: a real file database per case, a pool of several
//! connections (so the 50-concurrent-creates case really races), tables created by the
//! `Migrator` or under a table prefix.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use keyward_core::KeyStore;
use keyward_sea_orm::sea_orm::Database;
use keyward_sea_orm::{SeaOrmKeyStore, Tables, connect_options};
use keyward_test::store_suite::event_for;

static N: AtomicU32 = AtomicU32::new(0);

fn fresh_path() -> PathBuf {
    let n = N.fetch_add(1, Ordering::Relaxed);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("keyward-sea-orm-sqlite");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("suite-{}-{n}.db", std::process::id()));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    path
}

async fn store_at(path: &std::path::Path, tables: Tables) -> SeaOrmKeyStore {
    let mut opts = connect_options(&format!("sqlite://{}", path.display()));
    opts.max_connections(8).min_connections(2);
    let db = Database::connect(opts).await.expect("open sqlite");
    let store = SeaOrmKeyStore::with_tables(db, tables);
    store.migrate().await.expect("migrate");
    store
}

async fn make() -> Arc<dyn KeyStore> {
    Arc::new(store_at(&fresh_path(), Tables::default()).await)
}

async fn make_prefixed() -> Arc<dyn KeyStore> {
    Arc::new(store_at(&fresh_path(), Tables::with_prefix("tenant_a_").unwrap()).await)
}

keyward_test::store_suite!(make);

mod prefixed {
    use super::*;
    keyward_test::store_suite!(make_prefixed);
}

/// The webhook outbox cases on SQLite (its write transaction serializes the claims).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn webhook_outbox_on_sqlite() {
    let store = store_at(&fresh_path(), Tables::default()).await;
    support::outbox_on(store.connection().clone()).await;
}

/// The checked-in SQL, applied with the `sqlite3` CLI, gives tables the store (which does not
/// migrate) passes the whole suite on.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn checked_in_sql_applied_with_sqlite3() {
    let path = fresh_path();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../migrations/sqlite");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty());
    for file in files {
        let out = std::process::Command::new("sqlite3")
            .arg("-bail")
            .arg(&path)
            .stdin(std::fs::File::open(&file).unwrap())
            .output()
            .expect("run sqlite3 (Debian package sqlite3)");
        assert!(
            out.status.success(),
            "sqlite3 < {}: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut opts = connect_options(&format!("sqlite://{}", path.display()));
    opts.max_connections(8);
    let db = Database::connect(opts).await.unwrap();
    support::migrate_adopts(&db).await;
    keyward_test::store_suite::run_all(|| {
        let db = db.clone();
        async move {
            use keyward_sea_orm::sea_orm::ConnectionTrait;
            for t in ["api_keys", "api_key_owners", "api_key_events"] {
                db.execute_unprepared(&format!("DELETE FROM {t}"))
                    .await
                    .unwrap();
            }
            Arc::new(SeaOrmKeyStore::new(db)) as Arc<dyn KeyStore>
        }
    })
    .await;
}

/// Missing tables are an error, never "no such key".
#[tokio::test]
async fn missing_tables_are_not_unknown_keys() {
    let path = fresh_path();
    let store = SeaOrmKeyStore::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let id = keyward_core::KeyId::generate().unwrap();
    let err = store.get(&id).await.expect_err("no table");
    assert_ne!(err.kind(), keyward_core::store::StoreErrorKind::NotFound);
    let kw = keyward_core::Keyward::builder(
        Arc::new(store),
        keyward_core::Keyring::insecure_test_keyring(),
    )
    .build()
    .unwrap();
    let key = keyward_core::KeyFormat::default().generate().unwrap();
    let e = kw
        .verify(
            key.api_key.expose_secret(),
            &keyward_core::ScopeRequirement::none(),
            &keyward_core::VerifyContext::default(),
        )
        .await
        .expect_err("verify");
    assert!(
        matches!(e, keyward_core::VerifyError::Unavailable(_)),
        "{e:?}"
    );
}

/// A database file that cannot be opened (its directory is missing) is `Unavailable`; once
/// the directory exists, connecting works.
#[tokio::test]
async fn unopenable_file_is_unavailable() {
    let base = fresh_path().with_extension("d");
    let _ = std::fs::remove_dir_all(&base);
    let url = format!("sqlite://{}", base.join("keys.db").display());
    let err = SeaOrmKeyStore::connect(&url)
        .await
        .expect_err("cannot open");
    assert_eq!(
        err.kind(),
        keyward_core::store::StoreErrorKind::Unavailable,
        "{err}"
    );
    std::fs::create_dir_all(&base).unwrap();
    let store = SeaOrmKeyStore::connect(&url).await.expect("opens now");
    store.migrate().await.unwrap();
    let id = keyward_core::KeyId::generate().unwrap();
    assert!(store.get(&id).await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn migrations_from_several_processes_at_once() {
    let path = fresh_path();
    support::concurrent_migrations(&format!("sqlite://{}", path.display())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn upgrade_from_the_first_migration() {
    let path = fresh_path();
    support::upgrade_from_first_migration(&format!("sqlite://{}", path.display())).await;
}

/// Tables made from the first SQL file only: `migrate` records 0001 and applies 0002 on top.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn migrate_applies_later_migrations_on_tables_from_the_sql_files() {
    let path = fresh_path();
    let first = support::migration_files("sqlite")
        .into_iter()
        .next()
        .expect("0001");
    support::run_cli(
        std::process::Command::new("sqlite3")
            .arg("-bail")
            .arg(&path)
            .stdin(std::fs::File::open(&first).unwrap()),
    );
    let db = Database::connect(connect_options(&format!("sqlite://{}", path.display())))
        .await
        .unwrap();
    support::migrate_adopts(&db).await;
    keyward_test::store_suite::case_round_trip_full(Arc::new(SeaOrmKeyStore::new(db))).await;
}

/// SQL files (all, or the first only; default names and prefixed) then `migrate`: it recognises
/// what the files made and applies the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_sql_files_then_migrate() {
    let path = fresh_path();
    let db = Database::connect(connect_options(&format!("sqlite://{}", path.display())))
        .await
        .unwrap();
    support::sql_files_then_migrate(&db).await;
}

/// Instants are stored as the text keyward has always written (RFC 3339, `+00:00`, a fraction
/// of 0, 3 or 6 digits), so databases written before the move from chrono to `time` keep
/// working: `update` matches `updated_at` by text, and the listing cursor and the live-key
/// count compare instants as text.
#[tokio::test]
async fn instants_are_stored_in_the_text_form_older_databases_hold() {
    use keyward_core::store::Cursor;
    use keyward_sea_orm::sea_orm::{ConnectionTrait, Statement};
    use keyward_test::store_suite::{at, record};

    let store = store_at(&fresh_path(), Tables::default()).await;
    // One second, three fractions: with `Z` and the shortest fraction, `…:08Z` would sort
    // after `…:08.5Z`.
    let (whole, millis, micros) = (at(1, 0), at(1, 500_000), at(1, 123_456));
    let mut expiring = record("owner-a", whole);
    expiring.expires_at = Some(at(2, 0));
    for r in [
        expiring.clone(),
        record("owner-a", millis),
        record("owner-a", micros),
    ] {
        store
            .create(&r, Some(3), whole, &event_for(&r))
            .await
            .unwrap();
    }
    let rows = store
        .connection()
        .query_all_raw(Statement::from_string(
            store.connection().get_database_backend(),
            "SELECT created_at, expires_at FROM api_keys ORDER BY created_at",
        ))
        .await
        .unwrap();
    let text: Vec<(String, Option<String>)> = rows
        .iter()
        .map(|r| {
            (
                r.try_get("", "created_at").unwrap(),
                r.try_get("", "expires_at").unwrap(),
            )
        })
        .collect();
    assert_eq!(
        text,
        [
            (
                "2026-03-04T05:06:08+00:00".to_owned(),
                Some("2026-03-04T05:06:09+00:00".to_owned())
            ),
            ("2026-03-04T05:06:08.123456+00:00".to_owned(), None),
            ("2026-03-04T05:06:08.500+00:00".to_owned(), None),
        ]
    );

    // The cursor after the first key, in that same second, finds the other two in order.
    let page = store
        .list(
            &keyward_core::store::KeyFilter::all(time::OffsetDateTime::now_utc()).owner("owner-a"),
            Some(Cursor::after(&expiring)),
            10,
        )
        .await
        .unwrap();
    let created: Vec<_> = page.items.iter().map(|r| r.created_at).collect();
    assert_eq!(created, [micros, millis]);

    // The key expiring at 05:06:09 no longer counts toward the cap from then on.
    let fourth = record("owner-a", at(2, 0));
    store
        .create(&fourth, Some(3), at(2, 0), &event_for(&fourth))
        .await
        .unwrap();

    // `update` finds the row by its stored `updated_at` text.
    let mut changed = store.get(&expiring.key_id).await.unwrap().unwrap();
    let expected = changed.updated_at;
    changed.name = "renamed".to_owned();
    changed.updated_at = at(3, 120_000);
    store
        .update(&changed, expected, &event_for(&changed))
        .await
        .unwrap();
    assert_eq!(
        store.get(&expiring.key_id).await.unwrap().unwrap().name,
        "renamed"
    );
}

/// A pool of one connection (what sea-orm makes for an in-memory database): misses that keep
/// coming do not hold it, and a create gets its turn between them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn misses_leave_a_pool_of_one_to_others() {
    use keyward_test::store_suite::{at, record};
    let mut opts = connect_options(&format!("sqlite://{}", fresh_path().display()));
    opts.max_connections(1)
        .acquire_timeout(std::time::Duration::from_secs(2));
    let store = SeaOrmKeyStore::new(Database::connect(opts).await.unwrap());
    store.migrate().await.unwrap();
    let store = Arc::new(store);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut readers = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (store, stop) = (store.clone(), stop.clone());
        readers.spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let id = keyward_core::KeyId::generate().unwrap();
                assert!(store.get(&id).await.unwrap().is_none());
            }
        });
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let r = record("one", at(0, 0));
    let created = store.create(&r, None, at(1, 0), &event_for(&r)).await;
    stop.store(true, Ordering::Relaxed);
    while let Some(done) = readers.join_next().await {
        done.unwrap();
    }
    created.expect("a create between the misses");
    assert_eq!(store.get(&r.key_id).await.unwrap(), Some(r));
}
