//! `RedisCachedStore` (a Redis record cache in front of another store): the conformance suite
//! over a memory store, visible caching, invalidation on writes, the stale-fill race, and the
//! per-role failure choice (fall back to the store, or fail closed).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use keyward_core::KeyStore;
use keyward_core::digest::KeyDigest;
use keyward_core::key::KeyId;
use keyward_core::memory::MemoryKeyStore;
use keyward_core::model::KeyRecord;
use keyward_core::store::{Cursor, Page, StoreError, StoreErrorKind, UsageDelta};
use keyward_redis::{CacheFailure, RedisCachedStore, RedisConfig};
use keyward_test::store_suite::{event_about, event_for};
use time::OffsetDateTime;

async fn make() -> Option<Arc<dyn KeyStore>> {
    let url = keyward_test::services::redis_url().await?;
    let config = RedisConfig::new(url, common::unique_prefix());
    let inner: Arc<dyn KeyStore> = Arc::new(MemoryKeyStore::new());
    Some(Arc::new(
        RedisCachedStore::new(inner, &config, Duration::from_secs(60)).unwrap(),
    ))
}

mod suite {
    keyward_test::store_suite!(super::make);
}

fn t(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_900_000_000 + secs).unwrap()
}

/// A store whose reads can be held back, to open the window between a read and a fill.
#[derive(Debug)]
struct Slow {
    inner: MemoryKeyStore,
    delay: std::sync::Mutex<Duration>,
}

#[async_trait::async_trait]
impl keyward_core::store::EventStore for Slow {
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
impl KeyStore for Slow {
    async fn create(
        &self,
        r: &KeyRecord,
        m: Option<u32>,
        now: OffsetDateTime,
        event: &keyward_core::audit::Event,
    ) -> Result<(), StoreError> {
        self.inner.create(r, m, now, event).await
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
    async fn get(&self, id: &KeyId) -> Result<Option<KeyRecord>, StoreError> {
        let read = self.inner.get(id).await;
        let delay = *self.delay.lock().unwrap();
        tokio::time::sleep(delay).await;
        read
    }
    async fn list(
        &self,
        f: &keyward_core::store::KeyFilter<'_>,
        c: Option<Cursor>,
        l: u32,
    ) -> Result<Page, StoreError> {
        self.inner.list(f, c, l).await
    }
    async fn update(
        &self,
        r: &KeyRecord,
        expected: OffsetDateTime,
        event: &keyward_core::audit::Event,
    ) -> Result<(), StoreError> {
        self.inner.update(r, expected, event).await
    }
    async fn set_digest(
        &self,
        id: &KeyId,
        d: &KeyDigest,
        event: &keyward_core::audit::Event,
    ) -> Result<(), StoreError> {
        self.inner.set_digest(id, d, event).await
    }
    async fn revoke(
        &self,
        id: &KeyId,
        at: OffsetDateTime,
        expected: Option<OffsetDateTime>,
        event: &keyward_core::audit::Event,
    ) -> Result<Option<KeyRecord>, StoreError> {
        self.inner.revoke(id, at, expected, event).await
    }
    async fn record_usage(
        &self,
        b: &[UsageDelta],
        counts: &[keyward_core::analytics::UsageCount],
    ) -> Result<(), StoreError> {
        self.inner.record_usage(b, counts).await
    }
}

#[tokio::test]
async fn reads_are_cached_and_writes_invalidate() {
    let Some(url) = common::shared_redis("reads_are_cached_and_writes_invalidate").await else {
        return;
    };
    let prefix = common::unique_prefix();
    let inner = Arc::new(MemoryKeyStore::new());
    let cached = RedisCachedStore::new(
        inner.clone(),
        &common::config(&url, &prefix),
        Duration::from_secs(60),
    )
    .unwrap();
    let mut r = keyward_test::store_suite::full_record("owner", t(0));
    r.revoked_at = None;
    cached.create(&r, None, t(0), &event_for(&r)).await.unwrap();
    assert_eq!(cached.get(&r.key_id).await.unwrap(), Some(r.clone()));
    // Change the inner store behind the cache's back: the cache still answers.
    inner
        .revoke(&r.key_id, t(5), None, &event_about(&r.key_id))
        .await
        .unwrap();
    assert_eq!(
        cached.get(&r.key_id).await.unwrap().unwrap().revoked_at,
        None,
        "served from Redis"
    );
    // A write through the wrapper invalidates.
    let revoked = cached
        .revoke(&r.key_id, t(6), None, &event_about(&r.key_id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(revoked.revoked_at, Some(t(5)));
    assert_eq!(
        cached.get(&r.key_id).await.unwrap().unwrap().revoked_at,
        Some(t(5))
    );
    // Unknown ids are not cached.
    let unknown = KeyId::generate().unwrap();
    assert_eq!(cached.get(&unknown).await.unwrap(), None);
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let exists: bool = redis::cmd("EXISTS")
        .arg(format!("{{{prefix}:c:{unknown}}}"))
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(!exists);
    common::cleanup(&url, &prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_racing_a_revoke_never_caches_the_stale_record() {
    let Some(url) = common::shared_redis("a_read_racing_a_revoke").await else {
        return;
    };
    let prefix = common::unique_prefix();
    let slow = Arc::new(Slow {
        inner: MemoryKeyStore::new(),
        delay: std::sync::Mutex::new(Duration::ZERO),
    });
    let cached = Arc::new(
        RedisCachedStore::new(
            slow.clone(),
            &common::config(&url, &prefix),
            Duration::from_secs(60),
        )
        .unwrap(),
    );
    let r = keyward_test::store_suite::record("owner", t(0));
    cached.create(&r, None, t(0), &event_for(&r)).await.unwrap();
    // The read sees the live record, then stalls; the revoke lands meanwhile.
    *slow.delay.lock().unwrap() = Duration::from_millis(300);
    let reader = {
        let cached = Arc::clone(&cached);
        let id = r.key_id;
        tokio::spawn(async move { cached.get(&id).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    cached
        .revoke(&r.key_id, t(1), None, &event_about(&r.key_id))
        .await
        .unwrap();
    let stale = reader.await.unwrap().unwrap().unwrap();
    assert_eq!(
        stale.revoked_at, None,
        "the racing read itself returns what it read"
    );
    *slow.delay.lock().unwrap() = Duration::ZERO;
    // ...but it did not put that stale record into the shared cache.
    assert_eq!(
        cached.get(&r.key_id).await.unwrap().unwrap().revoked_at,
        Some(t(1))
    );
    common::cleanup(&url, &prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_failure_falls_back_or_fails_closed_as_configured() {
    let Some(mut server) =
        common::RedisChild::start("redis_failure_falls_back_or_fails_closed").await
    else {
        return;
    };
    let inner: Arc<dyn KeyStore> = Arc::new(MemoryKeyStore::new());
    let mut config = RedisConfig::new(server.url(), "kwcache");
    config.timeout = Duration::from_millis(300);
    let lenient = RedisCachedStore::new(inner.clone(), &config, Duration::from_secs(60)).unwrap();
    let strict = RedisCachedStore::new(inner.clone(), &config, Duration::from_secs(60))
        .unwrap()
        .on_failure(CacheFailure::FailClosed);
    let r = keyward_test::store_suite::record("owner", t(0));
    lenient
        .create(&r, None, t(0), &event_for(&r))
        .await
        .unwrap();
    assert!(lenient.get(&r.key_id).await.unwrap().is_some());
    assert!(strict.get(&r.key_id).await.unwrap().is_some());

    server.kill();
    assert!(
        lenient.get(&r.key_id).await.unwrap().is_some(),
        "falls back to the store"
    );
    assert_eq!(
        strict.get(&r.key_id).await.unwrap_err().kind(),
        StoreErrorKind::Unavailable
    );
    lenient.ping().await.unwrap();
    assert!(strict.ping().await.is_err());
    // A revoke is stored, but reported unavailable so the caller retries the invalidation.
    assert_eq!(
        lenient
            .revoke(&r.key_id, t(1), None, &event_about(&r.key_id))
            .await
            .unwrap_err()
            .kind(),
        StoreErrorKind::Unavailable
    );
    assert_eq!(
        inner.get(&r.key_id).await.unwrap().unwrap().revoked_at,
        Some(t(1))
    );
    // Usage flushes are not re-sent (no double counting) when only the cache is down.
    let delta = UsageDelta {
        key_id: r.key_id,
        last_used_at: None,
        last_used_from: None,
        requests: 1,
        credits: None,
    };
    lenient.record_usage(&[delta], &[]).await.unwrap();

    server.restart().await;
    // This Redis kept nothing, and the strict cache recovers by itself.
    for _ in 0..100 {
        if strict.get(&r.key_id).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let got = strict.get(&r.key_id).await.unwrap().unwrap();
    assert_eq!(got.revoked_at, Some(t(1)));
    assert_eq!(got.usage.request_count, 1);
}
