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

use std::time::Duration;

use keyward_core::clock::unix_micros;
use keyward_core::key::KeyId;
use keyward_core::model::{Credits, RateLimit};
use keyward_core::store::{
    Admission, CreditAccount, CreditLedger, FailureLedger, NonceStore, RateLimiter, StoreError,
    StoreErrorKind, credit_period, credit_refill_in,
};
use time::OffsetDateTime;

use crate::config::{Connections, RedisConfig, redis_error};
use crate::scripts;

/// Longest nonce stored verbatim; longer ones are stored as their BLAKE3 hash.
const MAX_NONCE_LEN: usize = 128;

/// GCRA rate limiting in Redis, keyed on the id of a *verified* key (the engine only calls it
/// after the secret matched). Same algorithm and answers as `keyward_core::memory::gcra`.
#[derive(Debug, Clone)]
pub struct RedisRateLimiter {
    shared: Connections,
}

impl RedisRateLimiter {
    /// A limiter with its own pool. Does not connect yet.
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

#[async_trait::async_trait]
impl RateLimiter for RedisRateLimiter {
    async fn acquire(
        &self,
        key_id: &KeyId,
        limit: &RateLimit,
        now: OffsetDateTime,
    ) -> Result<Admission, StoreError> {
        let period = i64::from(limit.window_seconds.max(1)) * 1_000_000;
        let emission = (period / i64::from(limit.requests.max(1))).max(1);
        let mut c = self.shared.conn().await?;
        let (allowed, wait_us): (i64, i64) = scripts::GCRA
            .key(self.shared.keys.rate(key_id))
            .arg(unix_micros(now))
            .arg(period)
            .arg(emission)
            .invoke_async(&mut c)
            .await
            .map_err(redis_error)?;
        if allowed == 1 {
            Ok(Admission::Allowed)
        } else {
            let wait = Duration::from_micros(wait_us.max(0).unsigned_abs());
            Ok(Admission::Refused {
                retry_after: Some(wait.max(Duration::from_secs(1))),
            })
        }
    }
}

/// Usage credits in Redis: one counter per key and period, seeded from the record's stored
/// usage, consumed atomically, reset when a new refill period starts (periods from
/// [`credit_period`]).
#[derive(Debug, Clone)]
pub struct RedisCreditLedger {
    shared: Connections,
}

impl RedisCreditLedger {
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

/// How long an idle counter is kept: a week past its period, far longer than any usage flush
/// interval, after which it is re-seeded from the stored usage.
fn counter_ttl(credits: &Credits) -> u64 {
    7 * 86_400 + credits.refill_seconds.unwrap_or(0).min(365 * 86_400)
}

#[async_trait::async_trait]
impl CreditLedger for RedisCreditLedger {
    async fn consume(
        &self,
        account: &CreditAccount,
        credits: &Credits,
        now: OffsetDateTime,
    ) -> Result<(Admission, Option<(u64, u64)>), StoreError> {
        let period = credit_period(credits, account.since, now);
        let mut c = self.shared.conn().await?;
        let (allowed, p, used): (i64, u64, u64) = scripts::CONSUME_CREDIT
            .key(self.shared.keys.credits(&account.key))
            .arg(period)
            .arg(credits.limit)
            .arg(account.stored_period)
            .arg(account.stored_used)
            .arg(counter_ttl(credits))
            .invoke_async(&mut c)
            .await
            .map_err(redis_error)?;
        if allowed == 1 {
            Ok((Admission::Allowed, Some((p, used))))
        } else {
            Ok((
                Admission::Refused {
                    retry_after: credit_refill_in(credits, account.since, now),
                },
                None,
            ))
        }
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
