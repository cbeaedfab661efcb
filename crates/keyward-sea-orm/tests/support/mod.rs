//! Shared by the PostgreSQL and MariaDB tests: throwaway databases created and dropped by the
//! test itself, the checked-in SQL applied with the real CLI clients, and a TCP proxy the test
//! can take down and bring back to simulate an outage.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

pub mod faults;

use std::future::Future;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use futures::FutureExt as _;
use keyward_core::KeyStore;
use keyward_sea_orm::sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbBackend};
use keyward_sea_orm::{SeaOrmKeyStore, Tables, connect_options};

/// Which server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    Postgres,
    MariaDb,
}

impl Server {
    fn prefix(self) -> &'static str {
        match self {
            Self::Postgres => "kw_test_pg_",
            Self::MariaDb => "kw_test_my_",
        }
    }
}

/// `url` with its database (path) replaced by `db`.
pub fn url_with_db(url: &str, db: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("scheme");
    let (before_query, query) = match rest.split_once('?') {
        Some((a, q)) => (a, Some(q)),
        None => (rest, None),
    };
    let authority = before_query.split('/').next().unwrap_or(before_query);
    let mut out = format!("{scheme}://{authority}/{db}");
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// `url` with its host and port replaced by `addr`.
pub fn url_with_addr(url: &str, addr: SocketAddr) -> String {
    let (scheme, rest) = url.split_once("://").expect("scheme");
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(split);
    let user = authority.rsplit_once('@').map(|(u, _)| format!("{u}@"));
    format!("{scheme}://{}{addr}{tail}", user.unwrap_or_default())
}

/// A database created for this test and dropped by [`TempDb::drop_now`] (or, after a crash, by
/// the next run's [`TempDb::create`], which drops databases whose creating process is gone).
pub struct TempDb {
    pub server: Server,
    pub admin: DatabaseConnection,
    pub name: String,
    pub url: String,
}

static SEQ: AtomicU32 = AtomicU32::new(0);

impl TempDb {
    pub async fn create(server: Server, admin_url: &str) -> Self {
        let admin = Database::connect(connect_options(admin_url))
            .await
            .expect("connect to the admin database");
        drop_stale(server, &admin).await;
        let name = format!(
            "{}{}_{}",
            server.prefix(),
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        match server {
            Server::Postgres => {
                // An ICU English collation sorts `a` before `B`: the schema must still list key
                // ids in byte order (its `COLLATE "C"`).
                let icu = format!(
                    "CREATE DATABASE {name} TEMPLATE template0 LOCALE_PROVIDER icu \
                     ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"
                );
                if admin.execute_unprepared(&icu).await.is_err() {
                    admin
                        .execute_unprepared(&format!("CREATE DATABASE {name}"))
                        .await
                        .expect("create database");
                }
            }
            Server::MariaDb => {
                // A case-insensitive server default: the schema must still be case-sensitive.
                admin
                    .execute_unprepared(&format!(
                        "CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci"
                    ))
                    .await
                    .expect("create database");
            }
        }
        let url = url_with_db(admin_url, &name);
        Self {
            server,
            admin,
            name,
            url,
        }
    }

    /// A pool on the database.
    pub async fn connect(&self) -> DatabaseConnection {
        let mut opts = connect_options(&self.url);
        opts.max_connections(10);
        Database::connect(opts)
            .await
            .expect("connect to the test database")
    }

    pub async fn drop_now(&self) {
        let sql = match self.server {
            Server::Postgres => format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            Server::MariaDb => format!("DROP DATABASE IF EXISTS {}", self.name),
        };
        if let Err(e) = self.admin.execute_unprepared(&sql).await {
            eprintln!("could not drop test database {}: {e}", self.name);
        }
    }

    /// Runs `body`, then drops the database whether `body` passed or panicked.
    pub async fn run<F: Future<Output = ()>>(&self, body: F) {
        let result = AssertUnwindSafe(body).catch_unwind().await;
        self.drop_now().await;
        if let Err(panic) = result {
            std::panic::resume_unwind(panic);
        }
    }
}

/// Drops test databases left by runs that crashed (their process no longer exists).
async fn drop_stale(server: Server, admin: &DatabaseConnection) {
    let list = match server {
        Server::Postgres => "SELECT datname AS name FROM pg_database",
        Server::MariaDb => "SELECT schema_name AS name FROM information_schema.schemata",
    };
    let Ok(rows) = admin
        .query_all_raw(keyward_sea_orm::sea_orm::Statement::from_string(
            admin.get_database_backend(),
            list,
        ))
        .await
    else {
        return;
    };
    for row in rows {
        let Ok(name) = row.try_get::<String>("", "name") else {
            continue;
        };
        let Some(rest) = name.strip_prefix(server.prefix()) else {
            continue;
        };
        let Some(pid) = rest.split('_').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let sql = match server {
                Server::Postgres => format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                Server::MariaDb => format!("DROP DATABASE IF EXISTS {name}"),
            };
            let _ = admin.execute_unprepared(&sql).await;
        }
    }
}

/// Runs the whole suite on `db`: the first case on the default table names created by the
/// `Migrator`, every other case on its own table prefix.
pub async fn suite_on(db: DatabaseConnection) {
    let n = AtomicU32::new(0);
    keyward_test::store_suite::run_all(|| {
        let db = db.clone();
        let i = n.fetch_add(1, Ordering::Relaxed);
        async move {
            let store = if i == 0 {
                keyward_sea_orm::migrate(&db).await.expect("Migrator::up");
                SeaOrmKeyStore::new(db)
            } else {
                let tables = Tables::with_prefix(&format!("c{i}_")).unwrap();
                let store = SeaOrmKeyStore::with_tables(db, tables);
                store.migrate().await.expect("migrate prefixed");
                store
            };
            Arc::new(store) as Arc<dyn KeyStore>
        }
    })
    .await;
    outbox_on(db).await;
}

/// The webhook outbox cases, each on fresh prefixed tables of a store that keeps an outbox.
pub async fn outbox_on(db: DatabaseConnection) {
    let fresh = |i: u32| {
        let db = db.clone();
        async move {
            let tables = Tables::with_prefix(&format!("wh{i}_")).unwrap();
            let store = SeaOrmKeyStore::with_tables(db, tables).with_outbox(true);
            store.migrate().await.expect("migrate prefixed");
            let store = Arc::new(store);
            let outbox: Arc<dyn keyward_core::webhook::WebhookOutbox> = store.clone();
            (store as Arc<dyn KeyStore>, outbox)
        }
    };
    let (keys, outbox) = fresh(0).await;
    keyward_test::store_suite::case_webhook_outbox(keys, outbox).await;
    let (keys, outbox) = fresh(1).await;
    keyward_test::store_suite::case_webhook_claims_are_exclusive(keys, outbox).await;
    let (keys, outbox) = fresh(2).await;
    keyward_test::store_suite::case_webhook_retention(keys, outbox).await;
}

/// `migrate` on tables the checked-in SQL created: it recognises them (records every
/// migration) instead of creating them again, and is a no-op after.
pub async fn migrate_adopts(db: &DatabaseConnection) {
    keyward_sea_orm::migrate(db)
        .await
        .expect("migrate on tables made from the SQL files");
    keyward_sea_orm::migrate(db).await.expect("and again");
    assert_eq!(
        recorded_migrations(db).await,
        4,
        "every migration recorded once"
    );
}

/// How many of keyward's migrations `seaql_migrations` records for the default names.
async fn recorded_migrations(db: &DatabaseConnection) -> i64 {
    db.query_one_raw(keyward_sea_orm::sea_orm::Statement::from_string(
        db.get_database_backend(),
        "SELECT COUNT(*) FROM seaql_migrations \
         WHERE version IN ('m0001_create_api_keys', 'm0002_key_lineage', 'm0003_key_usage', \
         'm0004_key_events')",
    ))
    .await
    .unwrap()
    .unwrap()
    .try_get_by_index::<i64>(0)
    .unwrap()
}

/// Runs the suite on tables someone else created (the checked-in SQL), after checking that
/// `migrate` recognises them; each case starts from emptied tables.
pub async fn suite_on_existing_tables(db: DatabaseConnection) {
    migrate_adopts(&db).await;
    keyward_test::store_suite::run_all(|| {
        let db = db.clone();
        async move {
            let tables = Tables::default();
            for t in [tables.keys(), tables.owners(), tables.events()] {
                db.execute_unprepared(&format!("DELETE FROM {t}"))
                    .await
                    .expect("empty the table");
            }
            Arc::new(SeaOrmKeyStore::new(db)) as Arc<dyn KeyStore>
        }
    })
    .await;
}

/// The checked-in migration files for `folder`, in order.
pub fn migration_files(folder: &str) -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../migrations")
        .join(folder);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no migrations in {}", dir.display());
    files
}

/// Runs a CLI client and fails the test on a non-zero exit.
pub fn run_cli(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Host, port, user of a URL like `scheme://user[:pass]@host:port/db`.
pub fn parts(url: &str) -> (String, u16, String) {
    let (_, rest) = url.split_once("://").unwrap();
    let authority = rest.split(['/', '?']).next().unwrap();
    let (user, hostport) = authority.rsplit_once('@').unwrap_or(("root", authority));
    let user = user.split(':').next().unwrap().to_owned();
    let (host, port) = hostport.rsplit_once(':').unwrap();
    (host.to_owned(), port.parse().unwrap(), user)
}

/// The backend of a connection, for messages.
pub fn backend_name(db: &DatabaseConnection) -> &'static str {
    match db.get_database_backend() {
        DbBackend::Postgres => "postgres",
        DbBackend::MySql => "mysql",
        _ => "sqlite",
    }
}

/// Several pools, as several processes starting together would have, migrate one fresh
/// database at once: the default tables through the `Migrator`, then a prefixed set. Every
/// migration succeeds, the `Migrator` records itself once, and the tables answer queries.
pub async fn concurrent_migrations(url: &str) {
    const POOLS: usize = 6;
    let mut pools = Vec::new();
    for _ in 0..POOLS {
        let mut opts = connect_options(url);
        opts.max_connections(2);
        pools.push(Database::connect(opts).await.expect("connect"));
    }
    let tables = Tables::with_prefix("race_").unwrap();
    let migrated = futures::future::join_all(pools.iter().map(keyward_sea_orm::migrate)).await;
    for (i, r) in migrated.into_iter().enumerate() {
        r.unwrap_or_else(|e| panic!("Migrator::up in pool {i} of {POOLS} running at once: {e}"));
    }
    let prefixed = futures::future::join_all(pools.iter().map(|db| {
        let store = SeaOrmKeyStore::with_tables(db.clone(), tables.clone());
        async move { store.migrate().await }
    }))
    .await;
    for (i, r) in prefixed.into_iter().enumerate() {
        r.unwrap_or_else(|e| panic!("migrate_tables in pool {i} of {POOLS} running at once: {e}"));
    }
    let db = &pools[0];
    let count = |sql: &'static str| async move {
        let row = db
            .query_one_raw(keyward_sea_orm::sea_orm::Statement::from_string(
                db.get_database_backend(),
                sql,
            ))
            .await
            .expect(sql)
            .expect("a row");
        row.try_get_by_index::<i64>(0).expect("a count")
    };
    assert_eq!(
        count("SELECT COUNT(*) FROM seaql_migrations WHERE version = 'm0001_create_api_keys'")
            .await,
        1
    );
    assert_eq!(count("SELECT COUNT(*) FROM api_keys").await, 0);
    assert_eq!(count("SELECT COUNT(*) FROM race_api_keys").await, 0);
    for db in pools {
        db.close().await.unwrap();
    }
}

/// A database left by a keyward that had only migration 0001 (default tables through the
/// `Migrator`, and a prefixed set) is brought up to date by `migrate` and `migrate_tables`: the
/// columns of 0002 appear, and the stores pass the round-trip and version-check cases on it.
pub async fn upgrade_from_first_migration(url: &str) {
    use keyward_sea_orm::schema::LINEAGE_COLUMNS;
    use keyward_sea_orm::{AddKeyLineage, CreateApiKeys};
    use sea_orm_migration::{MigrationTrait, MigratorTrait, SchemaManager};

    struct FirstOnly;
    impl MigratorTrait for FirstOnly {
        fn migrations() -> Vec<Box<dyn MigrationTrait>> {
            vec![Box::new(CreateApiKeys::new(Tables::default()))]
        }
    }

    let db = Database::connect(connect_options(url))
        .await
        .expect("connect");
    let prefixed = Tables::with_prefix("old_").unwrap();
    FirstOnly::up(&db, None)
        .await
        .expect("migration 0001 alone");
    let manager = SchemaManager::new(&db);
    CreateApiKeys::new(prefixed.clone())
        .up(&manager)
        .await
        .expect("migration 0001 alone, prefixed");
    for table in [Tables::default().keys(), prefixed.keys()] {
        assert!(
            !manager.has_column(table, LINEAGE_COLUMNS[0]).await.unwrap(),
            "{table} starts without the 0002 columns"
        );
    }

    keyward_sea_orm::migrate(&db)
        .await
        .expect("migrate on top of 0001");
    SeaOrmKeyStore::with_tables(db.clone(), prefixed.clone())
        .migrate()
        .await
        .expect("migrate_tables on top of 0001");
    for tables in [Tables::default(), prefixed.clone()] {
        let table = tables.keys();
        for column in LINEAGE_COLUMNS {
            assert!(
                manager.has_column(table, column).await.unwrap(),
                "{table}.{column} after the upgrade"
            );
        }
        assert!(
            manager.has_table(tables.usage()).await.unwrap(),
            "{} after the upgrade",
            tables.usage()
        );
    }
    // Migrating again is a no-op.
    keyward_sea_orm::migrate(&db).await.expect("migrate twice");
    SeaOrmKeyStore::with_tables(db.clone(), prefixed.clone())
        .migrate()
        .await
        .expect("migrate_tables twice");
    let name = AddKeyLineage::new(Tables::default());
    let recorded = db
        .query_one_raw(keyward_sea_orm::sea_orm::Statement::from_string(
            db.get_database_backend(),
            format!(
                "SELECT COUNT(*) FROM seaql_migrations WHERE version = '{}'",
                sea_orm_migration::MigrationName::name(&name)
            ),
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get_by_index::<i64>(0)
        .unwrap();
    assert_eq!(recorded, 1, "the Migrator records 0002 once");

    keyward_test::store_suite::case_round_trip_full(Arc::new(SeaOrmKeyStore::new(db.clone())))
        .await;
    keyward_test::store_suite::case_update_version_check(Arc::new(SeaOrmKeyStore::with_tables(
        db.clone(),
        prefixed,
    )))
    .await;
    db.close().await.unwrap();
}

/// Tables made from the first `count` SQL files under `tables`' names, as
/// `MigrationFiles`/`keyward migrate --print-sql` render them (applied over `db`, statement by
/// statement): the store's `migrate` recognises what is there, applies the rest, is a no-op
/// when run again, and the store works on the result. With the default names, the
/// `seaql_migrations` table then records every migration once.
pub async fn migrate_over_sql_files(db: &DatabaseConnection, tables: &Tables, count: usize) {
    use keyward_sea_orm::schema::LINEAGE_COLUMNS;
    use sea_orm_migration::SchemaManager;

    let backend = db.get_database_backend();
    let files = keyward_sea_orm::render_migrations(backend, tables);
    assert!(count >= 1 && count <= files.len());
    for (name, sql) in files.iter().take(count) {
        for stmt in sql.split(";\n") {
            let code: Vec<&str> = stmt
                .lines()
                .filter(|l| !l.trim_start().starts_with("--") && !l.trim().is_empty())
                .collect();
            if code.is_empty() {
                continue;
            }
            db.execute_unprepared(&code.join("\n"))
                .await
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
    let manager = SchemaManager::new(db);
    assert_eq!(
        manager
            .has_column(tables.keys(), LINEAGE_COLUMNS[0])
            .await
            .unwrap(),
        count >= 2,
        "{}: 0002's columns exactly when its file was applied",
        tables.keys()
    );
    let store = SeaOrmKeyStore::with_tables(db.clone(), tables.clone());
    store.migrate().await.expect("migrate over the SQL files");
    store.migrate().await.expect("and again");
    for column in LINEAGE_COLUMNS {
        assert!(
            manager.has_column(tables.keys(), column).await.unwrap(),
            "{}.{column} after migrate",
            tables.keys()
        );
    }
    for table in [tables.usage(), tables.events()] {
        assert!(
            manager.has_table(table).await.unwrap(),
            "{table} after migrate"
        );
    }
    if tables.prefix().is_empty() {
        assert_eq!(
            recorded_migrations(db).await,
            4,
            "every migration recorded once"
        );
    }
    keyward_test::store_suite::case_round_trip_full(Arc::new(store.clone())).await;
    keyward_test::store_suite::case_update_version_check(Arc::new(store)).await;
}

/// The combinations the checked-in-SQL tests don't cover, in one fresh database: default names
/// from the first file only, and prefixes from every file, from the first two and from the
/// first.
pub async fn sql_files_then_migrate(db: &DatabaseConnection) {
    migrate_over_sql_files(db, &Tables::default(), 1).await;
    migrate_over_sql_files(db, &Tables::with_prefix("sqlall_").unwrap(), 3).await;
    migrate_over_sql_files(db, &Tables::with_prefix("sqltwo_").unwrap(), 2).await;
    migrate_over_sql_files(db, &Tables::with_prefix("sqlfirst_").unwrap(), 1).await;
}
