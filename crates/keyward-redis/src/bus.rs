//! Shared cache invalidation over Redis pub/sub: [`RedisInvalidationBus`] publishes, and
//! [`spawn_invalidation_listener`] runs the subscriber that every instance needs.
//!
//! The subscriber drops the named key from the local cache for each message. When the
//! subscription is lost it clears the whole local cache (messages may have been missed), keeps
//! serving with entries bounded by the cache TTL, and resubscribes with capped exponential
//! backoff; on every (re)subscription it clears the cache once more, because entries filled
//! while it was away may have missed an invalidation.

use std::fmt;
use std::time::Duration;

use deadpool_redis::redis::{self, AsyncCommands};
use futures::StreamExt as _;
use keyward_core::Keyward;
use keyward_core::key::KeyId;
use keyward_core::store::{InvalidationBus, StoreError};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{Connections, RedisConfig, redis_error};

/// Payload that clears every instance's whole cache.
pub const CLEAR_ALL: &str = "*";

/// Publishes invalidations on the `P:invalidate` channel.
#[derive(Debug, Clone)]
pub struct RedisInvalidationBus {
    shared: Connections,
}

impl RedisInvalidationBus {
    /// A bus with its own pool. Does not connect yet.
    ///
    /// # Errors
    /// `Other` for an invalid URL or prefix.
    pub fn new(config: &RedisConfig) -> Result<Self, StoreError> {
        Ok(Self {
            shared: Connections::new(config)?,
        })
    }

    pub(crate) fn from_shared(shared: Connections) -> Self {
        Self { shared }
    }

    /// Tells every instance to clear its whole cache.
    ///
    /// # Errors
    /// `Unavailable` when Redis does not answer.
    pub async fn publish_clear_all(&self) -> Result<(), StoreError> {
        self.send(CLEAR_ALL).await
    }

    async fn send(&self, payload: &str) -> Result<(), StoreError> {
        let mut c = self.shared.conn().await?;
        let _: i64 = c
            .publish(self.shared.keys.channel(), payload)
            .await
            .map_err(redis_error)?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl InvalidationBus for RedisInvalidationBus {
    async fn publish(&self, key_id: &KeyId) -> Result<(), StoreError> {
        self.send(key_id.as_str()).await
    }
}

/// Tuning of the subscriber. Start from [`ListenerOptions::default`] and adjust fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListenerOptions {
    /// How often the subscription is pinged, to notice a silently dead connection.
    pub ping_interval: Duration,
    /// First wait before resubscribing; doubled after each failure.
    pub min_backoff: Duration,
    /// Longest wait before resubscribing.
    pub max_backoff: Duration,
}

impl Default for ListenerOptions {
    /// Ping every 5 s; resubscribe after 50 ms, backing off to 2 s.
    fn default() -> Self {
        Self {
            ping_interval: Duration::from_secs(5),
            min_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(2),
        }
    }
}

/// The running subscriber. Dropping it (or calling [`InvalidationListener::shutdown`]) stops
/// the task.
pub struct InvalidationListener {
    task: JoinHandle<()>,
    state: watch::Receiver<bool>,
}

impl fmt::Debug for InvalidationListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InvalidationListener")
            .field("subscribed", &self.is_subscribed())
            .finish()
    }
}

impl InvalidationListener {
    /// Whether the subscription is up right now.
    #[must_use]
    pub fn is_subscribed(&self) -> bool {
        *self.state.borrow()
    }

    /// Waits until the subscription is up, at most `timeout`. Returns whether it is.
    pub async fn wait_subscribed(&self, timeout: Duration) -> bool {
        let mut rx = self.state.clone();
        tokio::time::timeout(timeout, rx.wait_for(|up| *up))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Waits until the subscription is down, at most `timeout`. Returns whether it is.
    pub async fn wait_unsubscribed(&self, timeout: Duration) -> bool {
        let mut rx = self.state.clone();
        tokio::time::timeout(timeout, rx.wait_for(|up| !*up))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Stops the subscriber.
    pub fn shutdown(self) {
        self.task.abort();
    }
}

impl Drop for InvalidationListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Spawns the subscriber for `keyward` on the current tokio runtime with default options.
///
/// # Errors
/// `Other` for an invalid URL or prefix. An unreachable Redis is not an error: the task keeps
/// retrying, and the cache TTL bounds staleness meanwhile.
pub fn spawn_invalidation_listener(
    config: &RedisConfig,
    keyward: Keyward,
) -> Result<InvalidationListener, StoreError> {
    spawn_invalidation_listener_with(config, keyward, ListenerOptions::default())
}

/// [`spawn_invalidation_listener`] with explicit options.
///
/// # Errors
/// `Other` for an invalid URL or prefix.
pub fn spawn_invalidation_listener_with(
    config: &RedisConfig,
    keyward: Keyward,
    options: ListenerOptions,
) -> Result<InvalidationListener, StoreError> {
    let shared = Connections::new(config)?;
    Ok(spawn_on(&shared, keyward, options))
}

pub(crate) fn spawn_on(
    shared: &Connections,
    keyward: Keyward,
    options: ListenerOptions,
) -> InvalidationListener {
    let (tx, rx) = watch::channel(false);
    let client = shared.client.clone();
    let channel = shared.keys.channel();
    let timeout = shared.timeout;
    let task = tokio::spawn(run(client, channel, timeout, keyward, options, tx));
    InvalidationListener { task, state: rx }
}

async fn run(
    client: redis::Client,
    channel: String,
    timeout: Duration,
    keyward: Keyward,
    options: ListenerOptions,
    state: watch::Sender<bool>,
) {
    let mut backoff = options.min_backoff;
    let mut failures: u32 = 0;
    loop {
        match subscribe(&client, &channel, timeout).await {
            Ok((sink, stream)) => {
                // Entries cached while unsubscribed may have missed an invalidation.
                keyward.clear_cache();
                state.send_replace(true);
                if failures > 0 {
                    tracing::info!(channel = %channel, "cache invalidation subscription restored");
                }
                failures = 0;
                backoff = options.min_backoff;
                let why = listen(sink, stream, &keyward, timeout, options.ping_interval).await;
                keyward.clear_cache();
                state.send_replace(false);
                tracing::warn!(channel = %channel, reason = why, "cache invalidation subscription lost; cache cleared, resubscribing");
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                // One warning per outage, not per retry.
                if failures == 1 {
                    tracing::warn!(channel = %channel, error = %e, "cannot subscribe to cache invalidations; retrying");
                }
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(options.max_backoff);
    }
}

async fn subscribe(
    client: &redis::Client,
    channel: &str,
    timeout: Duration,
) -> Result<(redis::aio::PubSubSink, redis::aio::PubSubStream), redis::RedisError> {
    let timed_out = || redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut));
    let pubsub = tokio::time::timeout(timeout, client.get_async_pubsub())
        .await
        .map_err(|_| timed_out())??;
    let (mut sink, stream) = pubsub.split();
    tokio::time::timeout(timeout, sink.subscribe(channel))
        .await
        .map_err(|_| timed_out())??;
    Ok((sink, stream))
}

async fn listen(
    mut sink: redis::aio::PubSubSink,
    mut stream: redis::aio::PubSubStream,
    keyward: &Keyward,
    timeout: Duration,
    ping_interval: Duration,
) -> &'static str {
    let mut ticker = tokio::time::interval(ping_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        tokio::select! {
            msg = stream.next() => {
                let Some(msg) = msg else { return "connection closed" };
                apply(keyward, msg.get_payload_bytes());
            }
            _ = ticker.tick() => {
                match tokio::time::timeout(timeout, sink.ping::<redis::Value>()).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(_)) => return "ping failed",
                    Err(_) => return "ping timed out",
                }
            }
        }
    }
}

fn apply(keyward: &Keyward, payload: &[u8]) {
    let text = std::str::from_utf8(payload).unwrap_or("");
    if text == CLEAR_ALL {
        keyward.clear_cache();
        return;
    }
    match text.parse::<KeyId>() {
        Ok(id) => keyward.invalidate_local(&id),
        Err(_) => tracing::warn!(
            len = payload.len(),
            "ignored a malformed cache invalidation message"
        ),
    }
}
