#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub mod analytics;
mod bus;
mod cache;
mod codec;
mod config;
mod events;
mod lease;
mod limits;
mod outbox;
mod scripts;
mod store;

use std::sync::Arc;

use keyward_core::store::StoreError;
use keyward_core::{Keyward, KeywardBuilder};

pub use crate::bus::{
    CLEAR_ALL, InvalidationListener, ListenerOptions, RedisInvalidationBus,
    spawn_invalidation_listener, spawn_invalidation_listener_with,
};
pub use crate::cache::{CacheFailure, RedisCachedStore};
pub use crate::config::RedisConfig;
pub use crate::lease::Leasing;
pub use crate::limits::{
    OnRedisLoss, RedisCreditLedger, RedisFailureLedger, RedisNonceStore, RedisRateLimiter,
};
pub use crate::store::RedisKeyStore;

use crate::config::Connections;

/// Every Redis role over one connection pool: what a server wires with one `--redis-url`.
#[derive(Debug, Clone)]
pub struct RedisBackend {
    shared: Connections,
    /// The key store.
    pub store: Arc<RedisKeyStore>,
    /// The per-key rate limiter.
    pub limiter: Arc<RedisRateLimiter>,
    /// The usage-credit ledger.
    pub ledger: Arc<RedisCreditLedger>,
    /// The replay-nonce store.
    pub nonces: Arc<RedisNonceStore>,
    /// The cache-invalidation publisher.
    pub bus: Arc<RedisInvalidationBus>,
    /// The shared count of failed verifications per client address.
    pub failures: Arc<RedisFailureLedger>,
}

impl RedisBackend {
    /// Builds the pool for `url` with keys under `prefix` and default timeouts (1 s). Does not
    /// connect: requests fail closed while Redis is down and succeed once it is back.
    ///
    /// # Errors
    /// `Other` for an invalid URL or prefix.
    pub fn connect(url: &str, prefix: &str) -> Result<Self, StoreError> {
        Self::with_config(&RedisConfig::new(url, prefix))
    }

    /// Builds the pool from `config`.
    ///
    /// # Errors
    /// `Other` for an invalid URL or prefix.
    pub fn with_config(config: &RedisConfig) -> Result<Self, StoreError> {
        let shared = Connections::new(config)?;
        Ok(Self {
            store: Arc::new(RedisKeyStore::from_shared(shared.clone())),
            limiter: Arc::new(RedisRateLimiter::from_shared(shared.clone())),
            ledger: Arc::new(RedisCreditLedger::from_shared(shared.clone())),
            nonces: Arc::new(RedisNonceStore::from_shared(shared.clone())),
            bus: Arc::new(RedisInvalidationBus::from_shared(shared.clone())),
            failures: Arc::new(RedisFailureLedger::from_shared(shared.clone())),
            shared,
        })
    }

    /// Sets how the rate limiter and credit ledger lease their budgets, and what the rate
    /// limiter does while Redis is lost.
    #[must_use]
    pub fn limits(mut self, leasing: Leasing, on_loss: OnRedisLoss) -> Self {
        self.limiter = Arc::new(
            RedisRateLimiter::from_shared(self.shared.clone())
                .leasing(leasing)
                .on_redis_loss(on_loss),
        );
        self.ledger =
            Arc::new(RedisCreditLedger::from_shared(self.shared.clone()).leasing(leasing));
        self
    }

    /// Wires the limiter, credit ledger, nonce store, invalidation bus and failure ledger into
    /// `builder` (the key store is the builder's own: Redis or any other).
    #[must_use]
    pub fn wire(&self, builder: KeywardBuilder) -> KeywardBuilder {
        builder
            .rate_limiter(self.limiter.clone())
            .credit_ledger(self.ledger.clone())
            .nonce_store(self.nonces.clone())
            .invalidation_bus(self.bus.clone())
            .failure_ledger(self.failures.clone())
    }

    /// A shared Redis record cache in front of `inner` (a SQL store, say), on this pool.
    /// Use it as the engine's store; reads that miss the in-process cache then cost one Redis
    /// read instead of a database query.
    #[must_use]
    pub fn cache_in_front(
        &self,
        inner: Arc<dyn keyward_core::KeyStore>,
        ttl: std::time::Duration,
    ) -> RedisCachedStore {
        RedisCachedStore::from_shared(inner, self.shared.clone(), ttl)
    }

    /// Spawns the invalidation subscriber for `keyward` (on the current tokio runtime).
    #[must_use]
    pub fn spawn_listener(&self, keyward: Keyward) -> InvalidationListener {
        bus::spawn_on(&self.shared, keyward, ListenerOptions::default())
    }

    /// [`RedisBackend::spawn_listener`] with explicit options.
    #[must_use]
    pub fn spawn_listener_with(
        &self,
        keyward: Keyward,
        options: ListenerOptions,
    ) -> InvalidationListener {
        bus::spawn_on(&self.shared, keyward, options)
    }
}
