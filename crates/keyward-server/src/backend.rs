//! Opening the key store named by a database URL, migrating it, and building the [`Keyward`]
//! handle over it. The rest of the binary only sees `Arc<dyn KeyStore>` and `Keyward`.

use std::sync::Arc;

use keyward_core::crypto::EncryptionKeyring;
use keyward_core::memory::MemoryKeyStore;
use keyward_core::sigv4::SigningOptions;
use keyward_core::{CacheConfig, KeyStore, Keyring, Keyward, Policy};
use keyward_redis::{Leasing, OnRedisLoss, RedisBackend};
use keyward_sea_orm::SeaOrmKeyStore;

use crate::error::AppError;

/// An open store.
#[derive(Debug, Clone)]
pub(crate) struct Backend {
    /// The store.
    pub(crate) store: Arc<dyn KeyStore>,
    /// `sqlite`, `postgres`, `mysql` or `memory`, for logs.
    pub(crate) kind: &'static str,
    /// The SQL store itself (not `memory:`), for maintenance that the `KeyStore` trait does not
    /// cover (`keyward keys re-encrypt`).
    pub(crate) sql: Option<SeaOrmKeyStore>,
    /// The store's webhook outbox: its deliveries, and (when opened with one) its events
    /// waiting to be delivered.
    pub(crate) outbox: Arc<dyn keyward_core::webhook::WebhookOutbox>,
}

/// What `migrate` did.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct MigrateReport {
    /// The backend kind.
    pub(crate) backend: &'static str,
    /// The database URL, password redacted.
    pub(crate) database: String,
}

/// The backend a URL names.
///
/// # Errors
/// A URL of no supported database.
pub(crate) fn kind_of(url: &str) -> Result<&'static str, AppError> {
    let scheme = url.split(':').next().unwrap_or("");
    match scheme {
        "sqlite" => Ok("sqlite"),
        "postgres" | "postgresql" => Ok("postgres"),
        "mysql" | "mariadb" => Ok("mysql"),
        "memory" => Ok("memory"),
        _ => Err(AppError::config(format!(
            "invalid --database-url {:?}: expected sqlite://PATH?mode=rwc, postgres://…, mysql://… or memory:",
            redact_url(url)
        ))),
    }
}

/// Opens the store, creating (SQLite) and migrating the schema when `migrate` is set.
///
/// # Errors
/// A bad URL, an unreachable database, a failed migration.
/// Creates an empty SQLite database file readable by its owner only (0600) unless it exists:
/// SQLite then opens it, and gives its `-wal` and `-shm` files the same mode. Left to sqlx, the
/// file would get the umask's mode (0644 usually), readable by every local user.
fn create_private(path: &std::path::Path) -> std::io::Result<()> {
    match crate::secret_file::create_new_private(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Connects; on SQLite, a database another process is creating at this very moment ("database
/// is locked" while it switches the fresh file to WAL) is tried again for a few seconds, so that
/// instances starting together all start.
async fn connect(url: &str, sqlite: bool) -> Result<SeaOrmKeyStore, keyward_core::StoreError> {
    let mut attempt = 0u32;
    loop {
        match SeaOrmKeyStore::connect(url).await {
            Err(e) if sqlite && attempt < 50 && e.to_string().contains("database is locked") => {
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            other => return other,
        }
    }
}

/// Opens the store at `url`, migrating it when `migrate`; with `outbox`, every event it records
/// also goes to its webhook outbox, for the delivery task.
pub(crate) async fn open(url: &str, migrate: bool, outbox: bool) -> Result<Backend, AppError> {
    let kind = kind_of(url)?;
    if kind == "memory" {
        let store = Arc::new(if outbox {
            MemoryKeyStore::with_outbox()
        } else {
            MemoryKeyStore::new()
        });
        return Ok(Backend {
            store: Arc::clone(&store) as Arc<dyn KeyStore>,
            kind,
            sql: None,
            outbox: store,
        });
    }
    let shown = redact_url(url);
    if let Some(path) = crate::pepper::sqlite_path(url) {
        // sqlx's own message for a missing folder is "unable to open database file".
        if let Some(dir) = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty() && !d.is_dir())
        {
            return Err(AppError::Store(format!(
                "cannot open SQLite database {shown}: the folder {} does not exist",
                dir.display()
            )));
        }
        create_private(&path)
            .map_err(|e| AppError::Store(format!("cannot create SQLite database {shown}: {e}")))?;
    }
    let store = connect(url, kind == "sqlite").await.map_err(|e| {
        AppError::Store(format!(
            "cannot connect to {kind} database {shown}: {}",
            clean(&e)
        ))
    })?;
    if migrate {
        store.migrate().await.map_err(|e| {
            AppError::Store(format!(
                "cannot migrate {kind} database {shown}: {}",
                clean(&e)
            ))
        })?;
    }
    store.ping().await.map_err(|e| {
        AppError::Store(format!(
            "{kind} database {shown} does not answer: {}",
            clean(&e)
        ))
    })?;
    let store = store.with_outbox(outbox);
    Ok(Backend {
        store: Arc::new(store.clone()),
        kind,
        outbox: Arc::new(store.clone()),
        sql: Some(store),
    })
}

/// `backend` reading key lookups from the replica at `url`, which may lag by up to `max_lag`
/// (SQL databases only).
///
/// # Errors
/// A backend that is not SQL, or a replica that cannot be reached.
pub(crate) async fn with_read_replica(
    backend: Backend,
    url: &str,
    max_lag: std::time::Duration,
) -> Result<Backend, AppError> {
    let shown = redact_url(url);
    let Some(sql) = backend.sql else {
        return Err(AppError::config(format!(
            "--database-read-url {shown}: the {} store has no replicas",
            backend.kind
        )));
    };
    let store = sql.with_read_replica_at(url, max_lag).await.map_err(|e| {
        AppError::Store(format!(
            "cannot connect to the read replica {shown}: {}",
            clean(&e)
        ))
    })?;
    Ok(Backend {
        store: Arc::new(store.clone()),
        kind: backend.kind,
        outbox: Arc::new(store.clone()),
        sql: Some(store),
    })
}

/// A store error on one line, without anything that looks like a URL's password.
fn clean(e: &keyward_core::StoreError) -> String {
    let text = e.to_string().replace(['\n', '\r'], " ");
    text.split_whitespace()
        .map(|w| {
            if w.contains("://") {
                redact_url(w)
            } else {
                w.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Applies pending migrations.
///
/// # Errors
/// As [`open`].
pub(crate) async fn migrate(url: &str) -> Result<MigrateReport, AppError> {
    let b = open(url, true, false).await?;
    Ok(MigrateReport {
        backend: b.kind,
        database: redact_url(url),
    })
}

/// Request signing settings of the engine: the SigV4 scope and bounds, and the keyring that
/// seals signing secrets (`None`: signing disabled).
#[derive(Debug, Clone, Default)]
pub(crate) struct Signing {
    /// SigV4 region, service, skew and body bounds.
    pub(crate) config: SigningOptions,
    /// The encryption keyring.
    pub(crate) encryption: Option<EncryptionKeyring>,
}

/// Builds the engine over `backend`, with what `tune` sets on the builder besides (the failure
/// throttle, notices).
///
/// # Errors
/// An invalid keyring.
pub(crate) fn engine(
    backend: &Backend,
    keyring: Keyring,
    policy: Policy,
    cache: CacheConfig,
    redis: Option<&RedisBackend>,
    signing: Signing,
    tune: impl FnOnce(keyward_core::KeywardBuilder) -> keyward_core::KeywardBuilder,
) -> Result<Keyward, AppError> {
    let mut b = tune(Keyward::builder(Arc::clone(&backend.store), keyring))
        .policy(policy)
        .cache(cache)
        .signing(signing.config);
    if let Some(enc) = signing.encryption {
        b = b.encryption(enc);
    }
    if let Some(r) = redis {
        b = r.wire(b);
    }
    b.build()
        .map_err(|e| AppError::config(format!("cannot start the engine: {e}")))
}

/// The Redis roles (rate limits, credits, nonces, cache invalidation) for `--redis-url`, the
/// limits leasing `lease` of a key's traffic at once and doing `on_loss` while Redis is lost.
/// Does not connect yet: Redis being down fails requests closed until it answers.
///
/// # Errors
/// An invalid URL.
pub(crate) fn redis(
    url: &str,
    on_loss: OnRedisLoss,
    lease: std::time::Duration,
) -> Result<RedisBackend, AppError> {
    let backend = RedisBackend::connect(url, REDIS_PREFIX).map_err(|e| {
        AppError::config(format!(
            "invalid --redis-url {}: {}",
            redact_url(url),
            clean(&e)
        ))
    })?;
    let leasing = Leasing {
        horizon: lease,
        ..Leasing::default()
    };
    Ok(backend.limits(leasing, on_loss))
}

/// Namespace of keyward's Redis keys and channels.
const REDIS_PREFIX: &str = "keyward";

/// A URL with any password replaced, for messages.
pub(crate) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.chars().take(200).collect();
    };
    let (authority, tail) = rest
        .split_once('/')
        .map_or((rest, None), |(a, t)| (a, Some(t)));
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_owned(),
    };
    let mut out = format!("{scheme}://{authority}");
    if let Some(t) = tail {
        out.push('/');
        out.push_str(t);
    }
    out.chars().take(200).collect()
}
