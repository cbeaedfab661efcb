//! The bounded in-process cache of key records, in front of any store.
//!
//! Entries are keyed by key id but a hit never authenticates by itself: the engine always
//! recomputes the digest of the presented secret and compares it with the cached record's. Every
//! entry carries a TTL bound; revocation, update and rotation invalidate explicitly, and an
//! [`crate::store::InvalidationBus`] carries those invalidations to other instances.
//!
//! Beside the records, the cache remembers key ids the store did not know, for
//! [`CacheConfig::unknown_ttl`]: a flood that repeats a made-up (well-formed, checksummed) id
//! costs one store read per id and period, not one per request. Creating a key drops its id
//! from this list here and, through the bus, everywhere.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use crate::key::KeyId;
use crate::model::{KeyRecord, KeyState, Principal, ValidityWindow};

/// Cache sizing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheConfig {
    /// Most entries kept; 0 disables the cache.
    pub capacity: usize,
    /// Longest an entry is trusted without a store read.
    pub ttl: Duration,
    /// How long an id the store did not know is answered "unknown" without asking the store
    /// again (at most `capacity` such ids); zero disables it.
    pub unknown_ttl: Duration,
}

impl Default for CacheConfig {
    /// 10 000 entries, 30 seconds; unknown ids remembered for 5 seconds.
    fn default() -> Self {
        Self {
            capacity: 10_000,
            ttl: Duration::from_secs(30),
            unknown_ttl: Duration::from_secs(5),
        }
    }
}

/// A cached record with what the hot path derives from it once.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) record: KeyRecord,
    /// The principal with the key's own scopes (used when no scope authority is configured).
    pub(crate) principal: Principal,
    /// The record's validity window in microseconds.
    window: ValidityWindow,
    /// When this entry stops being trusted without a store read (microseconds).
    cached_until_us: i64,
    /// Last time a `last_used_at` was queued for this key (microseconds), for throttling.
    pub(crate) last_used_mark: AtomicI64,
    /// Verified requests not yet flushed; shared with the engine's counter registry so that
    /// eviction or invalidation of this entry loses nothing.
    pub(crate) requests: Arc<AtomicU64>,
}

impl Entry {
    pub(crate) fn new(
        record: KeyRecord,
        now_us: i64,
        ttl: Duration,
        requests: Arc<AtomicU64>,
    ) -> Self {
        let ttl_us = i64::try_from(ttl.as_micros()).unwrap_or(i64::MAX);
        let mark = record
            .last_used_at
            .map_or(i64::MIN, crate::clock::unix_micros);
        Self {
            principal: Principal::new(&record, record.scopes.clone()),
            window: ValidityWindow::of(&record),
            record,
            cached_until_us: now_us.saturating_add(ttl_us),
            last_used_mark: AtomicI64::new(mark),
            requests,
        }
    }

    /// The key's state at `now_us`.
    pub(crate) fn state(&self, now_us: i64) -> KeyState {
        self.record.state_at(now_us, &self.window)
    }
}

/// The cache. Cheap to share by reference; clones of the engine share one cache.
#[derive(Debug)]
pub(crate) struct KeyCache {
    inner: Option<quick_cache::sync::Cache<KeyId, Arc<Entry>>>,
    ttl: Duration,
    /// Ids the store did not know, with the microsecond until which that answer stands.
    unknown: Option<quick_cache::sync::Cache<KeyId, i64>>,
    unknown_ttl_us: i64,
    /// Bumped by every invalidation; a fill that started before a bump is not inserted, so a
    /// concurrent revoke can never be overwritten by the stale record a slow read returned.
    epoch: AtomicU64,
    /// Lookups answered from the cache.
    hits: AtomicU64,
    /// Lookups that went to the store (including all lookups when the cache is disabled).
    misses: AtomicU64,
}

/// Cache counters since the engine was built, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Lookups that went to the store.
    pub misses: u64,
    /// Entries currently cached.
    pub entries: usize,
}

impl KeyCache {
    pub(crate) fn new(config: CacheConfig) -> Self {
        Self {
            inner: (config.capacity > 0).then(|| quick_cache::sync::Cache::new(config.capacity)),
            ttl: config.ttl,
            unknown: (config.capacity > 0 && !config.unknown_ttl.is_zero())
                .then(|| quick_cache::sync::Cache::new(config.capacity)),
            unknown_ttl_us: i64::try_from(config.unknown_ttl.as_micros()).unwrap_or(i64::MAX),
            epoch: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    pub(crate) fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            entries: self.len(),
        }
    }

    pub(crate) fn ttl(&self) -> Duration {
        self.ttl
    }

    pub(crate) fn get(&self, key_id: &KeyId, now_us: i64) -> Option<Arc<Entry>> {
        let found = self.lookup(key_id, now_us);
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// [`KeyCache::get`] without counting; pair a use of the entry with [`KeyCache::count_hit`].
    pub(crate) fn peek(&self, key_id: &KeyId, now_us: i64) -> Option<Arc<Entry>> {
        self.lookup(key_id, now_us)
    }

    pub(crate) fn count_hit(&self) {
        self.hits.fetch_add(1, Ordering::Relaxed);
    }

    fn lookup(&self, key_id: &KeyId, now_us: i64) -> Option<Arc<Entry>> {
        let cache = self.inner.as_ref()?;
        let e = cache.get(key_id)?;
        // An expired entry is not trusted, but it stays until it is refilled, invalidated or
        // evicted: it says the id is a real key ([`KeyCache::knows`]).
        (now_us < e.cached_until_us).then_some(e)
    }

    /// Whether the store had a key with this id when it was last read (fresh or expired
    /// entry): such an id is never one a client made up, so a throttled address may still
    /// have it read again (a valid client behind that address keeps working when its entry
    /// expires mid-flood).
    pub(crate) fn knows(&self, key_id: &KeyId) -> bool {
        self.inner
            .as_ref()
            .is_some_and(|c| c.peek(key_id).is_some())
    }

    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Inserts unless an invalidation happened since `epoch` was read.
    pub(crate) fn fill(&self, key_id: KeyId, entry: Arc<Entry>, epoch: u64) {
        if let Some(cache) = &self.inner
            && self.epoch() == epoch
        {
            cache.insert(key_id, entry);
            // Re-check: an invalidation racing the insert removes what we just put.
            if self.epoch() != epoch {
                cache.remove(&key_id);
            }
        }
    }

    /// Whether the store said, less than `unknown_ttl` ago, that it has no key `key_id`.
    pub(crate) fn known_unknown(&self, key_id: &KeyId, now_us: i64) -> bool {
        let Some(unknown) = &self.unknown else {
            return false;
        };
        match unknown.get(key_id) {
            Some(until) if now_us < until => true,
            Some(_) => {
                unknown.remove(key_id);
                false
            }
            None => false,
        }
    }

    /// Remembers that the store has no key `key_id`, unless an invalidation (a create, on this
    /// instance or through the bus) happened since `epoch` was read.
    pub(crate) fn fill_unknown(&self, key_id: KeyId, now_us: i64, epoch: u64) {
        if let Some(unknown) = &self.unknown
            && self.epoch() == epoch
        {
            unknown.insert(key_id, now_us.saturating_add(self.unknown_ttl_us));
            if self.epoch() != epoch {
                unknown.remove(&key_id);
            }
        }
    }

    pub(crate) fn invalidate(&self, key_id: &KeyId) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        if let Some(cache) = &self.inner {
            cache.remove(key_id);
        }
        if let Some(unknown) = &self.unknown {
            unknown.remove(key_id);
        }
    }

    pub(crate) fn clear(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        if let Some(cache) = &self.inner {
            cache.clear();
        }
        if let Some(unknown) = &self.unknown {
            unknown.clear();
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.inner.as_ref().map_or(0, quick_cache::sync::Cache::len)
    }
}
