//! Connection settings, the shared connection pool, key naming and error mapping.
//!
//! Every Redis failure (refused connection, timeout, pool exhaustion, script error) becomes a
//! [`StoreErrorKind::Unavailable`](keyward_core::store::StoreErrorKind::Unavailable) error, so
//! the engine fails closed with 503 and retries on the next request. Pool timeouts are short by
//! default so a dead Redis fails fast instead of stalling requests.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use deadpool_redis::redis::aio::{ConnectionLike, MultiplexedConnection};
use deadpool_redis::redis::{self, AsyncConnectionConfig, RedisError, RedisFuture};
use deadpool_redis::{Manager, Pool, PoolError, Runtime, Timeouts};
use keyward_core::key::KeyId;
use keyward_core::store::{StoreError, StoreErrorKind};

/// Settings shared by every Redis backend of this crate. Start from [`RedisConfig::new`] and
/// adjust fields.
#[derive(Clone)]
#[non_exhaustive]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port[/db]` (the password is never logged).
    pub url: String,
    /// Namespace for every key and channel, so several applications can share one Redis.
    /// Charset `[A-Za-z0-9_.:-]`, 1–64 characters.
    pub prefix: String,
    /// Multiplexed connections kept open and used round-robin (each carries many concurrent
    /// requests); the pool may hold twice as many while broken ones are replaced.
    pub pool_size: usize,
    /// Bound on waiting for a pooled connection, creating one, recycling one, and on each
    /// command's response. A dead Redis fails requests after about this long.
    pub timeout: Duration,
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &redact_url(&self.url))
            .field("prefix", &self.prefix)
            .field("pool_size", &self.pool_size)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl RedisConfig {
    /// Settings with the defaults: 16 connections, 1 second timeouts.
    #[must_use]
    pub fn new(url: impl Into<String>, prefix: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            prefix: prefix.into(),
            pool_size: 16,
            timeout: Duration::from_secs(1),
        }
    }
}

/// The URL with any password replaced, for logs and `Debug`.
pub(crate) fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***@{}", &url[..s], &url[at + 1..]),
        _ => url.to_owned(),
    }
}

/// Whether `prefix` is usable inside hash tags and channel names.
fn valid_prefix(prefix: &str) -> bool {
    (1..=64).contains(&prefix.len())
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
}

/// Connection pool plus key naming: what every backend of this crate holds. Cheap to clone.
///
/// A `deadpool-redis` pool creates, health-checks (PING on recycle) and replaces connections.
/// Because each connection is multiplexed, requests do not hold a pooled connection for their
/// duration: `lanes` keep a few checked-out connections and every request uses a clone of one
/// (one round trip, no PING per request, no waiting for a free slot under load). A lane whose
/// connection fails a request is emptied; its connection goes back to the pool, whose recycle
/// PING then discards it, and the next request on that lane checks out a healthy one. That is
/// how the backends recover by themselves once Redis is back.
#[derive(Clone)]
pub(crate) struct Connections {
    pub(crate) pool: Pool,
    pub(crate) keys: Keys,
    pub(crate) client: redis::Client,
    pub(crate) timeout: Duration,
    lanes: Arc<Lanes>,
}

struct Lanes {
    slots: Vec<Mutex<Option<deadpool_redis::Connection>>>,
    next: AtomicUsize,
}

impl Lanes {
    fn slot(&self, i: usize) -> std::sync::MutexGuard<'_, Option<deadpool_redis::Connection>> {
        self.slots[i % self.slots.len()]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Empties lane `i`; the dropped connection returns to the pool, which re-checks it.
    fn break_lane(&self, i: usize) {
        let old = self.slot(i).take();
        drop(old);
    }
}

/// A connection for one request: a clone of a lane's multiplexed connection that reports
/// failures so the lane is refilled.
pub(crate) struct Conn {
    inner: MultiplexedConnection,
    lanes: Arc<Lanes>,
    lane: usize,
}

impl Conn {
    fn check<T>(&self, r: redis::RedisResult<T>) -> redis::RedisResult<T> {
        if let Err(e) = &r
            && connection_suspect(e)
        {
            self.lanes.break_lane(self.lane);
        }
        r
    }
}

/// Whether an error may mean the connection is unusable (I/O, timeout, protocol trouble, or a
/// read-only replica after a failover). A server's answer to one command — `NOSCRIPT`, a
/// script error, a wrong type — leaves the connection fine.
fn connection_suspect(e: &RedisError) -> bool {
    use redis::{ErrorKind, ServerErrorKind};
    !matches!(
        e.kind(),
        ErrorKind::Extension | ErrorKind::UnexpectedReturnType | ErrorKind::Server(_)
    ) || matches!(e.kind(), ErrorKind::Server(ServerErrorKind::ReadOnly))
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a redis::Cmd) -> RedisFuture<'a, redis::Value> {
        Box::pin(async move {
            let r = self.inner.req_packed_command(cmd).await;
            self.check(r)
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<redis::Value>> {
        Box::pin(async move {
            let r = self.inner.req_packed_commands(cmd, offset, count).await;
            self.check(r)
        })
    }

    fn get_db(&self) -> i64 {
        self.inner.get_db()
    }
}

impl fmt::Debug for Connections {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisPool")
            .field("prefix", &self.keys.prefix)
            .field("status", &self.pool.status())
            .finish_non_exhaustive()
    }
}

impl Connections {
    /// Builds the pool. Does not touch the network: connections are made on first use, so an
    /// application can start while Redis is down (and fail closed until it returns).
    pub(crate) fn new(config: &RedisConfig) -> Result<Self, StoreError> {
        if !valid_prefix(&config.prefix) {
            return Err(StoreError::new(
                StoreErrorKind::Other,
                "invalid Redis key prefix",
            ));
        }
        let timeout = config.timeout.max(Duration::from_millis(10));
        let conn_config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout));
        let bad_url = |e: RedisError| {
            StoreError::new(StoreErrorKind::Other, "invalid Redis URL").with_source(e)
        };
        let client = redis::Client::open(config.url.as_str()).map_err(bad_url)?;
        let manager =
            Manager::new_with_config(config.url.as_str(), conn_config).map_err(bad_url)?;
        let lanes = config.pool_size.clamp(1, 256);
        let pool = Pool::builder(manager)
            .max_size(lanes * 2)
            .timeouts(Timeouts {
                wait: Some(timeout),
                create: Some(timeout),
                recycle: Some(timeout),
            })
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| {
                StoreError::new(StoreErrorKind::Other, "cannot build Redis pool").with_source(e)
            })?;
        let lanes = Arc::new(Lanes {
            slots: (0..lanes).map(|_| Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
        });
        Ok(Self {
            pool,
            keys: Keys {
                prefix: config.prefix.clone(),
            },
            client,
            timeout,
            lanes,
        })
    }

    /// A connection for one request (see the type's docs).
    pub(crate) async fn conn(&self) -> Result<Conn, StoreError> {
        let lane = self.lanes.next.fetch_add(1, Ordering::Relaxed) % self.lanes.slots.len();
        if let Some(c) = self.lanes.slot(lane).as_ref() {
            return Ok(Conn {
                inner: (**c).clone(),
                lanes: Arc::clone(&self.lanes),
                lane,
            });
        }
        let pooled = self.pool.get().await.map_err(pool_error)?;
        let inner = (*pooled).clone();
        // Should two requests refill the lane at once, the loser's connection returns to the
        // pool.
        let replaced = self.lanes.slot(lane).replace(pooled);
        drop(replaced);
        Ok(Conn {
            inner,
            lanes: Arc::clone(&self.lanes),
            lane,
        })
    }
}

/// Maps a Redis error to `Unavailable`, keeping the source for logs.
pub(crate) fn redis_error(e: RedisError) -> StoreError {
    StoreError::unavailable("redis error").with_source(e)
}

/// Maps a pool error to `Unavailable`.
pub(crate) fn pool_error(e: PoolError) -> StoreError {
    StoreError::unavailable("redis connection unavailable").with_source(e)
}

/// Key and channel names. Keys that one script touches share a hash tag (`{…}`), so every
/// script runs on one slot of a Redis Cluster.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    pub(crate) prefix: String,
}

impl Keys {
    /// The record hash: `{P:k:<key_id>}`.
    pub(crate) fn record(&self, key_id: &KeyId) -> String {
        format!("{{{}:k:{}}}", self.prefix, key_id)
    }

    /// The owner's list index (sorted set, lexicographic members): `{P:o:<owner>}:idx`.
    pub(crate) fn owner_index(&self, owner: &str) -> String {
        format!("{{{}:o:{}}}:idx", self.prefix, escape_owner(owner))
    }

    /// Every key's list index (sorted set, lexicographic members as the owners'):
    /// `{P:all}:idx`.
    pub(crate) fn all_index(&self) -> String {
        format!("{{{}:all}}:idx", self.prefix)
    }

    /// A key's audit log (sorted set, lexicographic members, [`crate::events`]):
    /// `{P:k:<key_id>}:ev`, on the record's slot so that the record's scripts write both.
    pub(crate) fn key_events(&self, key_id: &KeyId) -> String {
        format!("{{{}:k:{}}}:ev", self.prefix, key_id)
    }

    /// The marker of a notice in a key's audit log, on the log's slot:
    /// `{P:k:<key_id>}:nt:<event_id>`, expiring after [`crate::events::NOTICE_MARK_TTL`].
    pub(crate) fn notice_mark(&self, key_id: &KeyId, event_id: &str) -> String {
        format!("{{{}:k:{}}}:nt:{event_id}", self.prefix, key_id)
    }

    /// Every key's audit log, as the keys' own: `{P:all}:ev`.
    pub(crate) fn all_events(&self) -> String {
        format!("{{{}:all}}:ev", self.prefix)
    }

    /// A key's usage counts of one UTC day (hash, [`crate::analytics`]):
    /// `{P:k:<key_id>}:use:<day>`, the day as days since the epoch.
    pub(crate) fn key_usage(&self, key_id: &KeyId, day: i64) -> String {
        format!("{{{}:k:{}}}:use:{day}", self.prefix, key_id)
    }

    /// The owner's usage counts of one UTC day, summed over its keys:
    /// `{P:o:<owner>}:use:<day>`.
    pub(crate) fn owner_usage(&self, owner: &str, day: i64) -> String {
        format!("{{{}:o:{}}}:use:{day}", self.prefix, escape_owner(owner))
    }

    /// The owner's live keys scored by expiry: `{P:o:<owner>}:live`.
    pub(crate) fn owner_live(&self, owner: &str) -> String {
        format!("{{{}:o:{}}}:live", self.prefix, escape_owner(owner))
    }

    /// A key's rate-limit state: `{P:rl:<key_id>}`.
    pub(crate) fn rate(&self, key_id: &KeyId) -> String {
        format!("{{{}:rl:{}}}", self.prefix, key_id)
    }

    /// A key's credit counter: `{P:cr:<key_id>}`.
    pub(crate) fn credits(&self, key_id: &KeyId) -> String {
        format!("{{{}:cr:{}}}", self.prefix, key_id)
    }

    /// A namespace's seen nonces, a sorted set: `{P:n:<namespace>}`.
    pub(crate) fn nonces(&self, namespace: &str) -> String {
        format!("{{{}:n:{}}}", self.prefix, escape_owner(namespace))
    }

    /// A client address's failed verifications in the current window: `{P:f:<bucket>}`.
    pub(crate) fn failures(&self, bucket: &str) -> String {
        format!("{{{}:f:{}}}", self.prefix, escape_owner(bucket))
    }

    /// The webhook outbox, a stream ([`crate::outbox`]): `{P:wh}:out`.
    pub(crate) fn outbox(&self) -> String {
        format!("{{{}:wh}}:out", self.prefix)
    }

    /// One webhook delivery, a hash: `{P:wh}:d:<id>`.
    pub(crate) fn delivery(&self, id: &str) -> String {
        format!("{{{}:wh}}:d:{id}", self.prefix)
    }

    /// Pending deliveries by when they are due: `{P:wh}:due`.
    pub(crate) fn deliveries_due(&self) -> String {
        format!("{{{}:wh}}:due", self.prefix)
    }

    /// The deliveries listing, all or of one status: `{P:wh}:ls`, `{P:wh}:ls:<status>`.
    pub(crate) fn deliveries(
        &self,
        status: Option<keyward_core::webhook::DeliveryStatus>,
    ) -> String {
        match status {
            Some(s) => format!("{{{}:wh}}:ls:{}", self.prefix, s.as_str()),
            None => format!("{{{}:wh}}:ls", self.prefix),
        }
    }

    /// Deliveries by their event's time (µs), for retention: `{P:wh}:byev`.
    pub(crate) fn deliveries_by_event(&self) -> String {
        format!("{{{}:wh}}:byev", self.prefix)
    }

    /// The disabled webhook endpoints, a hash by endpoint id: `{P:wh}:off`.
    pub(crate) fn disabled_endpoints(&self) -> String {
        format!("{{{}:wh}}:off", self.prefix)
    }

    /// The invalidation channel: `P:invalidate`.
    pub(crate) fn channel(&self) -> String {
        format!("{}:invalidate", self.prefix)
    }
}

/// Escapes `%`, `{` and `}` so an owner id can never end or open a hash tag early.
fn escape_owner(owner: &str) -> String {
    let mut out = String::with_capacity(owner.len());
    for c in owner.chars() {
        match c {
            '%' => out.push_str("%25"),
            '{' => out.push_str("%7B"),
            '}' => out.push_str("%7D"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_cannot_break_the_hash_tag() {
        let k = Keys {
            prefix: "kw".into(),
        };
        assert_eq!(k.owner_index("a}b{c%"), "{kw:o:a%7Db%7Bc%25}:idx");
        assert_eq!(k.owner_index("a%7Db"), "{kw:o:a%257Db}:idx");
    }

    #[test]
    fn only_connection_level_errors_empty_a_lane() {
        use redis::{ErrorKind, ServerErrorKind};
        let io = RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut));
        assert!(connection_suspect(&io));
        assert!(connection_suspect(&RedisError::from((
            ErrorKind::Parse,
            "desync"
        ))));
        let readonly = RedisError::from((ErrorKind::Server(ServerErrorKind::ReadOnly), "replica"));
        assert!(connection_suspect(&readonly));
        let noscript = RedisError::from((ErrorKind::Server(ServerErrorKind::NoScript), "load it"));
        assert!(!connection_suspect(&noscript));
        let ty = RedisError::from((ErrorKind::UnexpectedReturnType, "not an int"));
        assert!(!connection_suspect(&ty));
    }

    #[test]
    fn url_password_is_redacted() {
        assert_eq!(redact_url("redis://u:secret@h:1/0"), "redis://***@h:1/0");
        assert_eq!(redact_url("redis://h:1"), "redis://h:1");
    }

    #[test]
    fn prefix_charset() {
        assert!(valid_prefix("kw:app-1"));
        assert!(!valid_prefix("kw{x}"));
        assert!(!valid_prefix(""));
    }
}
