//! [`RedisCachedStore`]: a shared record cache in Redis in front of any [`KeyStore`] (a SQL
//! store, typically), so a miss in an instance's in-process cache costs one Redis read instead
//! of a database query, and all instances share the warm entries.
//!
//! Entries are key-record hashes (the same encoding as [`crate::RedisKeyStore`]) under
//! `{P:c:<key_id>}` with a TTL. Every write through the wrapper goes to the inner store first,
//! then invalidates the entry. A generation counter `{P:c:<key_id>}:g` closes the race between
//! a slow read and an invalidation: a fill only lands if no invalidation happened since the
//! read began, so a revoked key can never be re-cached from a stale read. Unknown key ids are
//! never cached (an attacker cannot fill the cache with junk ids).

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use deadpool_redis::redis;
use keyward_core::digest::KeyDigest;
use keyward_core::key::KeyId;
use keyward_core::model::KeyRecord;
use keyward_core::store::{Cursor, KeyFilter, KeyStore, Page, StoreError, UsageDelta};
use time::OffsetDateTime;

use crate::codec;
use crate::config::{Connections, RedisConfig, redis_error};

/// What the cache does when Redis fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CacheFailure {
    /// Serve reads from the inner store (the default): Redis is only an accelerator.
    #[default]
    FallBackToStore,
    /// Fail reads with `Unavailable` (for deployments whose store cannot take the full load).
    FailClosed,
}

/// How long a generation counter outlives its last invalidation: far longer than any store
/// read can take, so a read that began before an invalidation always sees it changed.
const GENERATION_TTL_MS: i64 = 10 * 60 * 1000;

/// KEYS[1] entry, KEYS[2] generation. ARGV: generation seen before the store read ('' for
/// none), ttl (ms), then field/value pairs. Fills unless the generation moved.
static FILL: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local g = redis.call('GET', KEYS[2]) or ''
if g ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
",
    )
});

/// A Redis record cache in front of `inner`.
#[derive(Debug, Clone)]
pub struct RedisCachedStore {
    inner: Arc<dyn KeyStore>,
    shared: Connections,
    ttl: Duration,
    on_failure: CacheFailure,
}

impl RedisCachedStore {
    /// Caches `inner`'s records for `ttl` in the Redis of `config`, falling back to `inner`
    /// when Redis fails.
    ///
    /// # Errors
    /// `Other` for an invalid URL or prefix.
    pub fn new(
        inner: Arc<dyn KeyStore>,
        config: &RedisConfig,
        ttl: Duration,
    ) -> Result<Self, StoreError> {
        Ok(Self::from_shared(inner, Connections::new(config)?, ttl))
    }

    pub(crate) fn from_shared(
        inner: Arc<dyn KeyStore>,
        shared: Connections,
        ttl: Duration,
    ) -> Self {
        Self {
            inner,
            shared,
            ttl: ttl.max(Duration::from_millis(1)),
            on_failure: CacheFailure::default(),
        }
    }

    /// Sets what happens when Redis fails.
    #[must_use]
    pub fn on_failure(mut self, on_failure: CacheFailure) -> Self {
        self.on_failure = on_failure;
        self
    }

    fn entry(&self, key_id: &KeyId) -> String {
        format!("{{{}:c:{}}}", self.shared.keys.prefix, key_id)
    }

    fn generation(&self, key_id: &KeyId) -> String {
        format!("{{{}:c:{}}}:g", self.shared.keys.prefix, key_id)
    }

    /// The cached hash (empty on a miss) and the generation seen with it.
    async fn read(
        &self,
        key_id: &KeyId,
    ) -> Result<(HashMap<String, String>, Option<String>), StoreError> {
        let mut c = self.shared.conn().await?;
        redis::pipe()
            .hgetall(self.entry(key_id))
            .get(self.generation(key_id))
            .query_async(&mut c)
            .await
            .map_err(redis_error)
    }

    async fn fill(&self, record: &KeyRecord, generation: Option<String>) -> Result<(), StoreError> {
        let ttl_ms = u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX);
        let mut c = self.shared.conn().await?;
        let mut inv = FILL.key(self.entry(&record.key_id));
        inv.key(self.generation(&record.key_id))
            .arg(generation.unwrap_or_default())
            .arg(ttl_ms);
        for (k, v) in codec::encode(record)? {
            inv.arg(k).arg(v);
        }
        let _: i64 = inv.invoke_async(&mut c).await.map_err(redis_error)?;
        Ok(())
    }

    /// Drops the entries of `ids` from the shared cache.
    ///
    /// The generation is bumped *before* the entry is deleted: a fill racing the invalidation
    /// either sees the new generation (and is refused) or began its store read after the
    /// store was written (and caches the new record).
    ///
    /// # Errors
    /// `Unavailable` when Redis does not answer.
    pub async fn invalidate(&self, ids: &[KeyId]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut c = self.shared.conn().await?;
        for chunk in ids.chunks(256) {
            let mut pipe = redis::pipe();
            for id in chunk {
                let generation = self.generation(id);
                pipe.incr(&generation, 1)
                    .ignore()
                    .pexpire(&generation, GENERATION_TTL_MS)
                    .ignore()
                    .del(self.entry(id))
                    .ignore();
            }
            let () = pipe.query_async(&mut c).await.map_err(redis_error)?;
        }
        Ok(())
    }

    fn redis_failed(&self, e: StoreError) -> Result<(), StoreError> {
        match self.on_failure {
            CacheFailure::FallBackToStore => {
                static DOWN: keyward_core::clock::SampledLog =
                    keyward_core::clock::SampledLog::new();
                if let Some(times) = DOWN.note_now() {
                    tracing::warn!(error = %e, times, "Redis record cache unavailable; reading the store");
                }
                Ok(())
            }
            CacheFailure::FailClosed => Err(e),
        }
    }
}

#[async_trait::async_trait]
impl keyward_core::store::EventStore for RedisCachedStore {
    async fn events(
        &self,
        filter: &keyward_core::audit::EventFilter<'_>,
        cursor: Option<keyward_core::audit::EventCursor>,
        limit: u32,
    ) -> Result<keyward_core::audit::EventPage, StoreError> {
        self.inner.events(filter, cursor, limit).await
    }
    async fn prune_events(&self, before: OffsetDateTime, limit: u32) -> Result<u64, StoreError> {
        self.inner.prune_events(before, limit).await
    }
    async fn append(&self, events: &[keyward_core::audit::Event]) -> Result<(), StoreError> {
        self.inner.append(events).await
    }
    async fn usage(
        &self,
        filter: &keyward_core::analytics::UsageFilter<'_>,
    ) -> Result<Vec<keyward_core::analytics::UsageRow>, StoreError> {
        self.inner.usage(filter).await
    }
    async fn prune_usage(&self, before: OffsetDateTime, limit: u32) -> Result<u64, StoreError> {
        self.inner.prune_usage(before, limit).await
    }
}

#[async_trait::async_trait]
impl KeyStore for RedisCachedStore {
    async fn create(
        &self,
        record: &KeyRecord,
        max_per_owner: Option<u32>,
        now: OffsetDateTime,
        event: &keyward_core::audit::Event,
    ) -> Result<(), StoreError> {
        // Unknown ids are never cached, so there is nothing to invalidate.
        self.inner.create(record, max_per_owner, now, event).await
    }

    async fn create_many(
        &self,
        records: &[&KeyRecord],
        max_per_owner: Option<u32>,
        now: OffsetDateTime,
        events: &[keyward_core::audit::Event],
    ) -> Result<(), StoreError> {
        self.inner
            .create_many(records, max_per_owner, now, events)
            .await
    }

    async fn get(&self, key_id: &KeyId) -> Result<Option<KeyRecord>, StoreError> {
        let generation = match self.read(key_id).await {
            Ok((h, generation)) => {
                if let Some(record) = codec::decode(*key_id, &h)? {
                    return Ok(Some(record));
                }
                Some(generation)
            }
            Err(e) => {
                self.redis_failed(e)?;
                None
            }
        };
        let record = self.inner.get(key_id).await?;
        if let (Some(r), Some(generation)) = (&record, generation)
            && let Err(e) = self.fill(r, generation).await
        {
            tracing::warn!(error = %e, "Redis record cache fill failed");
        }
        Ok(record)
    }

    fn invalidated(&self, key_id: Option<&KeyId>) {
        self.inner.invalidated(key_id);
    }

    async fn list(
        &self,
        filter: &KeyFilter<'_>,
        cursor: Option<Cursor>,
        limit: u32,
    ) -> Result<Page, StoreError> {
        self.inner.list(filter, cursor, limit).await
    }

    /// Updates the store, then drops the cached entry. When Redis cannot be told, the change
    /// is stored but this returns `Unavailable`, so the caller retries (and the entry expires
    /// by TTL meanwhile).
    async fn update(
        &self,
        record: &KeyRecord,
        expected: OffsetDateTime,
        event: &keyward_core::audit::Event,
    ) -> Result<(), StoreError> {
        self.inner.update(record, expected, event).await?;
        self.invalidate(&[record.key_id]).await
    }

    async fn set_digest(
        &self,
        key_id: &KeyId,
        digest: &KeyDigest,
        event: &keyward_core::audit::Event,
    ) -> Result<(), StoreError> {
        self.inner.set_digest(key_id, digest, event).await?;
        self.invalidate(&[*key_id]).await
    }

    /// Revokes in the store, then drops the cached entry (`Unavailable` if Redis cannot be
    /// told; revoking again is idempotent and retries the invalidation).
    async fn revoke(
        &self,
        key_id: &KeyId,
        at: OffsetDateTime,
        expected: Option<OffsetDateTime>,
        event: &keyward_core::audit::Event,
    ) -> Result<Option<KeyRecord>, StoreError> {
        let record = self.inner.revoke(key_id, at, expected, event).await?;
        if record.is_some() {
            self.invalidate(&[*key_id]).await?;
        }
        Ok(record)
    }

    /// Records usage in the store, then drops the entries (best effort: stale usage counters
    /// in a cached record are harmless, and failing here would make the engine re-send, and
    /// double count, a batch the store already applied).
    async fn record_usage(
        &self,
        batch: &[UsageDelta],
        counts: &[keyward_core::analytics::UsageCount],
    ) -> Result<(), StoreError> {
        self.inner.record_usage(batch, counts).await?;
        let ids: Vec<KeyId> = batch.iter().map(|d| d.key_id).collect();
        if let Err(e) = self.invalidate(&ids).await {
            tracing::warn!(error = %e, "Redis record cache not invalidated after a usage flush; entries expire by TTL");
        }
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await?;
        if self.on_failure == CacheFailure::FailClosed {
            let mut c = self.shared.conn().await?;
            let _: String = redis::cmd("PING")
                .query_async(&mut c)
                .await
                .map_err(redis_error)?;
        }
        Ok(())
    }
}
