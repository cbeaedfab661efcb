//! [`RedisRateLimiter`] (GCRA), [`RedisCreditLedger`], [`RedisNonceStore`] and
//! [`RedisFailureLedger`]: the per-request state every instance must share. Each is one atomic
//! command or script on one key.
//!
//! All three use the `now` the engine passes (its clock), never Redis' `TIME`, so they agree
//! with the engine's other decisions and tests can drive them with a manual clock. Instances
//! should run NTP; a skew of a few milliseconds only shifts the GCRA schedule by as much.
//! Every failure is `Unavailable`: the engine refuses the request (fails closed), it never
//! lets a request through unlimited. (The failure ledger is the exception the engine makes: it
//! is a defence in front of the store, so its outage falls back to each instance's own count.)

use std::sync::Arc;

use futures::future::BoxFuture;
use std::time::Duration;

use keyward_core::clock::unix_micros;
use keyward_core::key::KeyId;
use keyward_core::memory::MemoryRateLimiter;
use keyward_core::model::{Credits, RateLimit};
use keyward_core::store::{
    Admission, Consumed, CreditAccount, CreditLedger, FailureLedger, NonceStore, RateLimiter,
    StoreError, StoreErrorKind, credit_period, credit_refill_in,
};
use time::OffsetDateTime;

use crate::config::{Connections, RedisConfig, redis_error};
use crate::lease::{Budget, Grant, Leases, Leasing, Spent};
use crate::scripts;

/// Longest nonce stored verbatim; longer ones are stored as their BLAKE3 hash.
const MAX_NONCE_LEN: usize = 128;

/// What the Redis limits do when Redis does not answer and this instance holds no lease for
/// the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnRedisLoss {
    /// Refuse: the engine answers `503` (fail closed).
    #[default]
    FailClosed,
    /// Rate limits fall back to this instance's own count
    /// ([`keyward_core::memory::MemoryRateLimiter`]) until Redis answers again, so n instances
    /// admit up to n times a limit. Credits stay closed: they are never spent past the balance.
    LocalLimits,
}

/// GCRA rate limiting in Redis, keyed on the id of a *verified* key (the engine only calls it
/// after the secret matched). Same algorithm and answers as `keyward_core::memory::gcra`, with
/// the tokens leased to each instance a slice at a time ([`Leasing`]): most requests spend a
/// token held here and never wait for Redis.
#[derive(Debug, Clone)]
pub struct RedisRateLimiter {
    leases: Leases<(KeyId, u32, u32)>,
    on_loss: OnRedisLoss,
    local: Arc<MemoryRateLimiter>,
}

impl RedisRateLimiter {
    /// A limiter with its own pool. Does not connect yet.
    ///
    /// # Errors
    /// `Other` for an invalid URL or prefix.
    pub fn new(config: &RedisConfig) -> Result<Self, StoreError> {
        Ok(Self::from_shared(Connections::new(config)?))
    }

    pub(crate) fn from_shared(shared: Connections) -> Self {
        Self {
            leases: Leases::new(shared),
            on_loss: OnRedisLoss::default(),
            local: Arc::new(MemoryRateLimiter::new()),
        }
    }

    /// How much of a budget this instance leases at once ([`Leasing::exact`]: a Redis round
    /// trip per request).
    #[must_use]
    pub fn leasing(mut self, leasing: Leasing) -> Self {
        self.leases.leasing = leasing;
        self
    }

    /// What happens while Redis is lost ([`OnRedisLoss::FailClosed`] by default).
    #[must_use]
    pub fn on_redis_loss(mut self, on_loss: OnRedisLoss) -> Self {
        self.on_loss = on_loss;
        self
    }
}

/// Notes the fallback to local limits, once a second at most.
static LOCAL_LIMITS: keyward_core::clock::SampledLog = keyward_core::clock::SampledLog::new();

/// A lease request: the number of tokens wanted to what Redis granted.
type Leaser = Box<dyn Fn(u64) -> BoxFuture<'static, Result<Grant, StoreError>> + Send + Sync>;

impl RedisRateLimiter {
    /// `key_id`'s budget under `limit` on this instance.
    fn budget(&self, key_id: &KeyId, limit: &RateLimit) -> Arc<Budget> {
        self.leases
            .of(&(*key_id, limit.requests, limit.window_seconds))
    }

    /// Leases of `key_id`'s GCRA tokens under `limit` at `now_us`.
    fn leaser(&self, key_id: KeyId, limit: RateLimit, now_us: i64) -> Leaser {
        let shared = Arc::clone(&self.leases.shared);
        let period = i64::from(limit.window_seconds.max(1)) * 1_000_000;
        let emission = (period / i64::from(limit.requests.max(1))).max(1);
        Box::new(move |want| {
            let shared = Arc::clone(&shared);
            Box::pin(async move {
                let mut c = shared.conn().await?;
                let (granted, wait_us): (u64, i64) = scripts::LEASE_GCRA
                    .key(shared.keys.rate(&key_id))
                    .arg(now_us)
                    .arg(period)
                    .arg(emission)
                    .arg(want)
                    .invoke_async(&mut c)
                    .await
                    .map_err(redis_error)?;
                Ok(Grant {
                    granted,
                    empty_until_us: now_us.saturating_add(wait_us.max(1)),
                    state: 0,
                })
            })
        })
    }
}

/// A spend as the limiter's answer at `now_us`.
fn admission(spent: Spent, now_us: i64) -> Admission {
    match spent {
        Spent::Allowed { .. } => Admission::Allowed,
        Spent::Empty { until_us } => Admission::Refused {
            retry_after: Some(until(now_us, until_us).max(Duration::from_secs(1))),
        },
    }
}

#[async_trait::async_trait]
impl RateLimiter for RedisRateLimiter {
    async fn acquire(
        &self,
        key_id: &KeyId,
        limit: &RateLimit,
        now: OffsetDateTime,
    ) -> Result<Admission, StoreError> {
        let now_us = unix_micros(now);
        let largest = self.leases.leasing.largest(u64::from(limit.requests));
        let spent = self
            .budget(key_id, limit)
            .spend(1, now_us, &self.leases.leasing, largest, || {
                self.leaser(*key_id, *limit, now_us)
            })
            .await;
        match spent {
            Ok(spent) => Ok(admission(spent, now_us)),
            Err(e) if self.on_loss == OnRedisLoss::LocalLimits => {
                if let Some(times) = LOCAL_LIMITS.note(now_us) {
                    tracing::warn!(error = %e, times, "redis lost: rate limits are per instance until it answers");
                }
                self.local.acquire(key_id, limit, now).await
            }
            Err(e) => Err(e),
        }
    }

    fn try_acquire(
        &self,
        key_id: &KeyId,
        limit: &RateLimit,
        now: OffsetDateTime,
    ) -> Option<Result<Admission, StoreError>> {
        let now_us = unix_micros(now);
        let largest = self.leases.leasing.largest(u64::from(limit.requests));
        let spent = self.budget(key_id, limit).try_spend(
            1,
            now_us,
            &self.leases.leasing,
            largest,
            || self.leaser(*key_id, *limit, now_us),
        )?;
        Some(Ok(admission(spent, now_us)))
    }

    fn refund(&self, key_id: &KeyId, limit: &RateLimit) {
        self.budget(key_id, limit).refund();
    }
}

/// The wait from `now_us` to `until_us`.
fn until(now_us: i64, until_us: i64) -> Duration {
    Duration::from_micros(until_us.saturating_sub(now_us).max(0).unsigned_abs())
}

/// Usage credits in Redis: one counter per key and period, seeded from the record's stored
/// usage, reset when a new refill period starts (periods from [`credit_period`]). Each instance
/// leases credits a slice at a time ([`Leasing`]) from what is really left, so no request is
/// admitted past the balance; a lease not spent when its instance stops is counted as used.
#[derive(Debug, Clone)]
pub struct RedisCreditLedger {
    leases: Leases<(KeyId, u64, u64)>,
}

impl RedisCreditLedger {
    /// A ledger with its own pool. Does not connect yet.
    ///
    /// # Errors
    /// `Other` for an invalid URL or prefix.
    pub fn new(config: &RedisConfig) -> Result<Self, StoreError> {
        Ok(Self::from_shared(Connections::new(config)?))
    }

    pub(crate) fn from_shared(shared: Connections) -> Self {
        Self {
            leases: Leases::new(shared),
        }
    }

    /// How many credits this instance leases at once ([`Leasing::exact`]: a Redis round trip
    /// per request).
    #[must_use]
    pub fn leasing(mut self, leasing: Leasing) -> Self {
        self.leases.leasing = leasing;
        self
    }
}

/// How long an idle counter is kept: a week past its period, far longer than any usage flush
/// interval, after which it is re-seeded from the stored usage.
fn counter_ttl(credits: &Credits) -> u64 {
    7 * 86_400 + credits.refill_seconds.unwrap_or(0).min(365 * 86_400)
}

/// How long an instance takes Redis' word that a key's credits are spent before asking again
/// (a top-up shows within this long).
const EMPTY_RECHECK: Duration = Duration::from_secs(1);

impl RedisCreditLedger {
    /// The budget a request costing `cost` spends of `account`'s credits at `now`, and
    /// `(now_us, period, cost, largest lease)`.
    fn spend_of(
        &self,
        account: &CreditAccount,
        credits: &Credits,
        cost: u64,
        now: OffsetDateTime,
    ) -> (Arc<Budget>, (i64, u64, u64, u64)) {
        let period = credit_period(credits, account.since, now);
        let budget = self.leases.of(&(account.key, credits.limit, period));
        let largest = self.leases.leasing.largest(credits.limit);
        (budget, (unix_micros(now), period, cost.max(1), largest))
    }

    /// Leases of `account`'s credits in `period` at `now_us`, for a request that needs `need`.
    fn leaser(
        &self,
        account: CreditAccount,
        credits: &Credits,
        (period, need): (u64, u64),
        now_us: i64,
    ) -> Leaser {
        let shared = Arc::clone(&self.leases.shared);
        let (limit, ttl) = (credits.limit, counter_ttl(credits));
        let recheck = i64::try_from(EMPTY_RECHECK.as_micros()).unwrap_or(i64::MAX);
        Box::new(move |want| {
            let shared = Arc::clone(&shared);
            Box::pin(async move {
                let mut c = shared.conn().await?;
                let (granted, _, used): (u64, u64, u64) = scripts::LEASE_CREDITS
                    .key(shared.keys.credits(&account.key))
                    .arg(period)
                    .arg(limit)
                    .arg(account.stored_period)
                    .arg(account.stored_used)
                    .arg(ttl)
                    .arg(want)
                    .arg(need)
                    .invoke_async(&mut c)
                    .await
                    .map_err(redis_error)?;
                Ok(Grant {
                    granted,
                    // Refused for want of credits: all spent, or fewer left than this request
                    // costs (then a cheaper request may still fit: no wait).
                    empty_until_us: if used >= limit {
                        now_us.saturating_add(recheck)
                    } else {
                        now_us
                    },
                    state: used,
                })
            })
        })
    }
}

/// A spend of credits in `period` as the ledger's answer.
fn consumed(
    spent: Spent,
    period: u64,
    account: &CreditAccount,
    credits: &Credits,
    now: OffsetDateTime,
) -> (Admission, Option<(u64, u64)>) {
    match spent {
        Spent::Allowed { state } => (Admission::Allowed, state.map(|used| (period, used))),
        Spent::Empty { .. } => (
            Admission::Refused {
                retry_after: credit_refill_in(credits, account.since, now),
            },
            None,
        ),
    }
}

#[async_trait::async_trait]
impl CreditLedger for RedisCreditLedger {
    async fn consume(
        &self,
        account: &CreditAccount,
        credits: &Credits,
        cost: u64,
        now: OffsetDateTime,
    ) -> Result<Consumed, StoreError> {
        let (budget, (now_us, period, cost, largest)) = self.spend_of(account, credits, cost, now);
        let leasing = &self.leases.leasing;
        let spent = budget
            .spend(cost, now_us, leasing, largest, || {
                self.leaser(*account, credits, (period, cost), now_us)
            })
            .await?;
        Ok(consumed(spent, period, account, credits, now))
    }

    fn try_consume(
        &self,
        account: &CreditAccount,
        credits: &Credits,
        cost: u64,
        now: OffsetDateTime,
    ) -> Option<Result<Consumed, StoreError>> {
        let (budget, (now_us, period, cost, largest)) = self.spend_of(account, credits, cost, now);
        let leasing = &self.leases.leasing;
        let spent = budget.try_spend(cost, now_us, leasing, largest, || {
            self.leaser(*account, credits, (period, cost), now_us)
        })?;
        Some(Ok(consumed(spent, period, account, credits, now)))
    }
}

/// Replay protection: each namespace (the engine's is the key id) keeps its live nonces in one
/// sorted set under its own hash tag, checked and written by one script. A namespace holds at
/// most [`RedisNonceStore::DEFAULT_MAX_PER_NAMESPACE`] live nonces (or what
/// [`RedisNonceStore::max_per_namespace`] sets): a key that signs more within the replay window
/// is refused for itself ([`StoreErrorKind::LimitReached`], which the engine answers `429`), and
/// no key holder can fill Redis.
#[derive(Debug, Clone)]
pub struct RedisNonceStore {
    shared: Connections,
    max_per_namespace: u64,
}

impl RedisNonceStore {
    /// Live nonces one namespace may hold by default: as the in-memory store.
    pub const DEFAULT_MAX_PER_NAMESPACE: u64 = 100_000;

    /// A nonce store with its own pool. Does not connect yet.
    ///
    /// # Errors
    /// `Other` for an invalid URL or prefix.
    pub fn new(config: &RedisConfig) -> Result<Self, StoreError> {
        Ok(Self::from_shared(Connections::new(config)?))
    }

    pub(crate) fn from_shared(shared: Connections) -> Self {
        Self {
            shared,
            max_per_namespace: Self::DEFAULT_MAX_PER_NAMESPACE,
        }
    }

    /// The most live nonces one namespace (key) may hold (at least 1).
    #[must_use]
    pub fn max_per_namespace(mut self, max: u64) -> Self {
        self.max_per_namespace = max.max(1);
        self
    }
}

#[async_trait::async_trait]
impl NonceStore for RedisNonceStore {
    async fn check_and_store(
        &self,
        namespace: &str,
        nonce: &str,
        ttl: Duration,
        _now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let hashed;
        let nonce = if nonce.len() > MAX_NONCE_LEN {
            hashed = format!("h:{}", blake3::hash(nonce.as_bytes()).to_hex());
            hashed.as_str()
        } else {
            nonce
        };
        let namespace_hashed;
        let namespace = if namespace.len() > MAX_NONCE_LEN {
            namespace_hashed = format!("h:{}", blake3::hash(namespace.as_bytes()).to_hex());
            namespace_hashed.as_str()
        } else {
            namespace
        };
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut c = self.shared.conn().await?;
        let answer: i64 = scripts::CHECK_NONCE
            .key(self.shared.keys.nonces(namespace))
            .arg(nonce)
            .arg(ttl_ms)
            .arg(self.max_per_namespace)
            .invoke_async(&mut c)
            .await
            .map_err(redis_error)?;
        match answer {
            1 => Ok(true),
            0 => Ok(false),
            _ => Err(StoreError::new(
                StoreErrorKind::LimitReached,
                "replay state for this key is full",
            )),
        }
    }
}

/// Failed verifications per client address, counted in Redis so that every instance throttles
/// on the sum (`keyward_core::throttle`): one counter per address bucket and window, `INCR`
/// and `PEXPIRE` in one script.
#[derive(Debug, Clone)]
pub struct RedisFailureLedger {
    shared: Connections,
}

impl RedisFailureLedger {
    /// A ledger with its own pool. Does not connect yet.
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
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX).max(1)
}

#[async_trait::async_trait]
impl FailureLedger for RedisFailureLedger {
    async fn add_failure(
        &self,
        bucket: &str,
        window: Duration,
    ) -> Result<(u32, Duration), StoreError> {
        let mut c = self.shared.conn().await?;
        let (n, left_ms): (i64, i64) = scripts::ADD_FAILURE
            .key(self.shared.keys.failures(bucket))
            .arg(millis(window))
            .invoke_async(&mut c)
            .await
            .map_err(redis_error)?;
        Ok((
            u32::try_from(n).unwrap_or(u32::MAX),
            Duration::from_millis(left_ms.max(0).unsigned_abs()),
        ))
    }

    async fn failures(&self, bucket: &str) -> Result<Option<(u32, Duration)>, StoreError> {
        let mut c = self.shared.conn().await?;
        let answer: Option<(i64, i64)> = scripts::FAILURES
            .key(self.shared.keys.failures(bucket))
            .invoke_async(&mut c)
            .await
            .map_err(redis_error)?;
        Ok(answer.and_then(|(n, left_ms)| {
            (left_ms > 0).then(|| {
                (
                    u32::try_from(n).unwrap_or(u32::MAX),
                    Duration::from_millis(left_ms.unsigned_abs()),
                )
            })
        }))
    }
}
