//! Failure modes of the store: a database behind a proxy that goes down and comes back, a
//! port nothing listens on, connections the database kills.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use keyward_core::KeyStore;
use keyward_sea_orm::sea_orm::{
    ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement,
};
use keyward_sea_orm::{SeaOrmKeyStore, Tables, connect_options};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use super::{parts, url_with_addr};
use keyward_test::store_suite::{event_about, event_for};

/// A port nothing listens on (bound, then released).
pub async fn closed_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap()
}

/// A TCP proxy in front of a database that the test takes down (listener closed, every
/// connection cut) and brings back on the same port.
pub struct Proxy {
    pub addr: SocketAddr,
    upstream: SocketAddr,
    tasks: Option<JoinSet<()>>,
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut p = Self {
            addr,
            upstream,
            tasks: None,
        };
        p.serve(listener);
        p
    }

    fn serve(&mut self, listener: TcpListener) {
        let upstream = self.upstream;
        let mut tasks = JoinSet::new();
        let conns = Arc::new(tokio::sync::Mutex::new(JoinSet::new()));
        let conns2 = conns.clone();
        tasks.spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    continue;
                };
                conns2.lock().await.spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        // Dropping the JoinSet aborts the accept loop; the connection set goes with it.
        tasks.spawn(async move {
            let _keep = conns;
            std::future::pending::<()>().await;
        });
        self.tasks = Some(tasks);
    }

    /// Closes the listener and cuts every connection.
    pub async fn down(&mut self) {
        if let Some(mut t) = self.tasks.take() {
            t.abort_all();
            while t.join_next().await.is_some() {}
        }
    }

    /// Listens again on the same port.
    pub async fn up(&mut self) {
        let mut listener = None;
        for _ in 0..50 {
            match TcpListener::bind(self.addr).await {
                Ok(l) => {
                    listener = Some(l);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
        self.serve(listener.expect("rebind the proxy port"));
    }
}

/// The socket address of `url`'s host and port.
pub async fn resolve(url: &str) -> SocketAddr {
    let (host, port, _) = parts(url);
    tokio::net::lookup_host((host.as_str(), port))
        .await
        .unwrap()
        .next()
        .unwrap()
}

fn engine(store: Arc<dyn KeyStore>) -> keyward_core::Keyward {
    keyward_core::Keyward::builder(store, keyward_core::Keyring::insecure_test_keyring())
        .cache(keyward_core::CacheConfig {
            capacity: 0,
            ttl: Duration::from_secs(30),
            ..keyward_core::CacheConfig::default()
        })
        .build()
        .unwrap()
}

fn assert_unavailable<T: std::fmt::Debug>(what: &str, r: Result<T, keyward_core::StoreError>) {
    match r {
        Err(e) => assert_eq!(
            e.kind(),
            keyward_core::store::StoreErrorKind::Unavailable,
            "{what}: {e}"
        ),
        Ok(v) => panic!("{what}: expected Unavailable, got Ok({v:?})"),
    }
}

/// Every store operation on a store whose database is unreachable is `Unavailable`, and the
/// engine answers 503, never "invalid key".
pub async fn assert_store_down(store: &Arc<dyn KeyStore>, presented_key: &str) {
    use keyward_core::store::UsageDelta;
    let id = keyward_core::KeyId::generate().unwrap();
    let record = keyward_test::store_suite::record("down", keyward_test::store_suite::at(0, 0));
    let now = keyward_test::store_suite::at(1, 0);
    assert_unavailable("get", store.get(&id).await);
    assert_unavailable(
        "create",
        store.create(&record, None, now, &event_for(&record)).await,
    );
    assert_unavailable(
        "create limited",
        store
            .create(&record, Some(5), now, &event_for(&record))
            .await,
    );
    assert_unavailable(
        "list",
        store
            .list(
                &keyward_core::store::KeyFilter::all(time::OffsetDateTime::now_utc()).owner("down"),
                None,
                10,
            )
            .await,
    );
    assert_unavailable(
        "update",
        store
            .update(&record, record.updated_at, &event_for(&record))
            .await,
    );
    assert_unavailable(
        "revoke",
        store.revoke(&id, now, None, &event_about(&id)).await,
    );
    assert_unavailable(
        "record_usage",
        store
            .record_usage(
                &[UsageDelta {
                    key_id: id,
                    last_used_at: None,
                    last_used_from: None,
                    requests: 1,
                    credits: None,
                }],
                &[],
            )
            .await,
    );
    assert_unavailable("ping", store.ping().await);
    let kw = engine(store.clone());
    let err = kw
        .verify(
            presented_key,
            &keyward_core::ScopeRequirement::none(),
            &keyward_core::VerifyContext::default(),
        )
        .await
        .expect_err("verify with the database down");
    assert!(
        matches!(err, keyward_core::VerifyError::Unavailable(_)),
        "verify: {err:?}"
    );
    assert_eq!(err.code().status(), 503);
    let created = kw
        .create_key(
            "down",
            keyward_core::management::CreateKeyRequest {
                name: "x".into(),
                ..Default::default()
            },
        )
        .await
        .expect_err("create_key with the database down");
    assert_eq!(created.code().status(), 503, "{created:?}");
}

/// A store behind a proxy: works, loses the database (503s), and recovers by itself on the
/// same pool when the database is back.
pub async fn outage_and_recovery(db_url: &str) {
    let mut proxy = Proxy::start(resolve(db_url).await).await;
    let url = url_with_addr(db_url, proxy.addr);
    let mut opts = connect_options(&url);
    opts.connect_timeout(Duration::from_secs(1))
        .acquire_timeout(Duration::from_secs(2))
        .max_connections(4);
    let db = Database::connect(opts)
        .await
        .expect("connect through the proxy");
    let store = SeaOrmKeyStore::with_tables(db, Tables::with_prefix("outage_").unwrap());
    store.migrate().await.expect("migrate");
    let store: Arc<dyn KeyStore> = Arc::new(store);
    let kw = engine(store.clone());
    let created = kw
        .create_key(
            "outage",
            keyward_core::management::CreateKeyRequest {
                name: "survivor".into(),
                ..Default::default()
            },
        )
        .await
        .expect("create_key");
    let raw = created.api_key.expose_secret().to_owned();
    let none = keyward_core::ScopeRequirement::none();
    let ctx = keyward_core::VerifyContext::default();
    kw.verify(&raw, &none, &ctx).await.expect("verify before");

    proxy.down().await;
    assert_store_down(&store, &raw).await;

    proxy.up().await;
    store.ping().await.expect("ping after recovery");
    let p = kw
        .verify(&raw, &none, &ctx)
        .await
        .expect("verify after recovery");
    assert_eq!(p.owner_id(), "outage");
    kw.flush_usage().await.expect("usage flush after recovery");
    proxy.down().await;
}

/// The database kills every connection of the store's pool (a restart, a failover,
/// `pg_terminate_backend`, `KILL`) right after a read used one: the next read of a key finds
/// its connection lost and reads again on a live one, so verification is not a 503.
pub async fn killed_connections(url: &str) {
    let db = Database::connect(connect_options(url)).await.unwrap();
    let store = SeaOrmKeyStore::with_tables(db.clone(), Tables::with_prefix("killed_").unwrap());
    store.migrate().await.unwrap();
    let kw = engine(Arc::new(store));
    let request = keyward_core::management::CreateKeyRequest {
        name: "survivor".into(),
        ..Default::default()
    };
    let created = kw.create_key("killed", request).await.unwrap();
    let raw = created.api_key.expose_secret().to_owned();
    let (none, ctx) = (
        keyward_core::ScopeRequirement::none(),
        keyward_core::VerifyContext::default(),
    );
    kw.verify(&raw, &none, &ctx).await.expect("verify before");
    // One connection, so that the one killing is the one the kills leave out.
    let mut one = keyward_sea_orm::sea_orm::ConnectOptions::new(url);
    one.max_connections(1);
    let admin = Database::connect(one).await.unwrap();
    kill_store_connections(&admin).await;
    let p = kw
        .verify(&raw, &none, &ctx)
        .await
        .expect("verify after the kill");
    assert_eq!(p.owner_id(), "killed");
    kill_store_connections(&admin).await;
    let request = keyward_core::management::CreateKeyRequest {
        name: "after".into(),
        ..Default::default()
    };
    kw.create_key("killed", request)
        .await
        .expect("create after the kill");
    admin.close().await.unwrap();
    db.close().await.unwrap();
}

/// Kills every connection to the test's database but `admin`'s own (a pool of one).
async fn kill_store_connections(admin: &DatabaseConnection) {
    let backend = admin.get_database_backend();
    let others = match backend {
        DbBackend::Postgres => {
            "SELECT pid::bigint FROM pg_stat_activity \
                                WHERE datname = current_database() AND pid <> pg_backend_pid()"
        }
        _ => {
            "SELECT CAST(id AS SIGNED) FROM information_schema.processlist \
              WHERE db = DATABASE() AND id <> CONNECTION_ID()"
        }
    };
    let rows = admin
        .query_all_raw(Statement::from_string(backend, others))
        .await
        .unwrap();
    assert!(!rows.is_empty(), "the store holds no connection to kill");
    for row in rows {
        let id: i64 = row.try_get_by_index(0).unwrap();
        let kill = match backend {
            DbBackend::Postgres => format!("SELECT pg_terminate_backend({id})"),
            _ => format!("KILL {id}"),
        };
        admin
            .execute_raw(Statement::from_string(backend, kill))
            .await
            .unwrap();
    }
}

/// A store on a port nothing listens on: every call is `Unavailable` and verify is a 503.
pub async fn closed_port_store(url: &str) {
    let addr = closed_port().await;
    let mut opts = connect_options(&url_with_addr(url, addr));
    opts.connect_lazy(true)
        .connect_timeout(Duration::from_secs(1))
        .acquire_timeout(Duration::from_secs(2));
    let db = Database::connect(opts).await.expect("lazy pool");
    let store: Arc<dyn KeyStore> = Arc::new(SeaOrmKeyStore::new(db));
    let key = keyward_core::KeyFormat::default().generate().unwrap();
    assert_store_down(&store, key.api_key.expose_secret()).await;
    let e = SeaOrmKeyStore::connect(&url_with_addr(url, addr))
        .await
        .expect_err("eager connect to a closed port");
    assert_eq!(e.kind(), keyward_core::store::StoreErrorKind::Unavailable);
}
