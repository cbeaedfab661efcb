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

use std::collections::HashSet;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::digest::KeyDigest;
use crate::key::KeyId;
use crate::model::{
    Credits, IpNet, KeyRecord, KeyState, Lifecycle, Principal, RateLimit, SealedSecret,
};
use crate::scope::ScopeSet;
use crate::store::CreditAccount;

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

/// What verification needs of a key, derived once per cache fill: no name, description, usage
/// or timestamps, and the parts most keys share (scopes, environment, prefix) interned. A key
/// with five scopes and no metadata costs about 340 bytes cached (docs/performance.md).
#[derive(Debug)]
pub(crate) struct Entry {
    /// What a verification with the key's own scopes hands out: key id, owner, scopes,
    /// metadata and environment.
    pub(crate) principal: Principal,
    pub(crate) digest: KeyDigest,
    /// The issuer prefix the key was issued with.
    pub(crate) prefix: Arc<str>,
    lifecycle: Lifecycle,
    /// What few keys have, boxed so that a plain key does not pay for it.
    rare: Option<Box<Rare>>,
    /// When this entry stops being trusted without a store read (microseconds).
    cached_until_us: i64,
    /// Last time a `last_used_at` was recorded for this key (microseconds), for throttling.
    pub(crate) last_used_mark: AtomicI64,
    /// The `last_used_at` waiting for the next flush (microseconds), or
    /// [`Entry::NO_LAST_USE`]: kept here rather than in a map by key, as the count is.
    pub(crate) last_used_pending: AtomicI64,
    /// Verified requests not yet flushed. The usage batch holds the entry from its first
    /// counted request to the next flush, so eviction or invalidation loses nothing.
    pub(crate) requests: AtomicU64,
    /// Wrong secrets presented for the key and not yet flushed (usage analytics' `invalid`):
    /// counted here, as requests are, so that a wrong secret costs what a right one does.
    pub(crate) invalid: std::sync::atomic::AtomicU32,
}

/// The parts of a key most keys lack.
#[derive(Debug)]
struct Rare {
    ip_allowlist: Box<[IpNet]>,
    rate_limit: Option<RateLimit>,
    credits: Option<Credits>,
    account: CreditAccount,
    sealed_secret: Option<SealedSecret>,
}

impl Entry {
    pub(crate) fn new(record: &KeyRecord, now_us: i64, ttl: Duration, interner: &Interner) -> Self {
        let ttl_us = i64::try_from(ttl.as_micros()).unwrap_or(i64::MAX);
        let mark = record
            .last_used_at
            .map_or(i64::MIN, crate::clock::unix_micros);
        let rare = (!record.ip_allowlist.is_empty()
            || record.rate_limit.is_some()
            || record.credits.is_some()
            || record.sealed_secret.is_some())
        .then(|| {
            Box::new(Rare {
                ip_allowlist: record.ip_allowlist.as_slice().into(),
                rate_limit: record.rate_limit,
                credits: record.credits,
                account: CreditAccount::of(record),
                sealed_secret: record.sealed_secret.clone(),
            })
        });
        Self {
            principal: Principal::new(
                record,
                interner.scopes(&record.scopes),
                interner.name(&record.env),
            ),
            digest: record.digest.clone(),
            prefix: interner.name(&record.prefix),
            lifecycle: Lifecycle::of(record),
            rare,
            cached_until_us: now_us.saturating_add(ttl_us),
            last_used_mark: AtomicI64::new(mark),
            last_used_pending: AtomicI64::new(Self::NO_LAST_USE),
            requests: AtomicU64::new(0),
            invalid: std::sync::atomic::AtomicU32::new(0),
        }
    }

    /// `last_used_pending` when no use waits to be written.
    pub(crate) const NO_LAST_USE: i64 = i64::MIN;

    /// The key's state at `now_us`.
    pub(crate) fn state(&self, now_us: i64) -> KeyState {
        self.lifecycle.state(now_us)
    }

    pub(crate) fn key_id(&self) -> KeyId {
        self.principal.key_id()
    }

    pub(crate) fn env(&self) -> &str {
        self.principal.env()
    }

    pub(crate) fn scopes(&self) -> &ScopeSet {
        self.principal.scopes()
    }

    /// A signing-only key's sealed secret.
    pub(crate) fn sealed_secret(&self) -> Option<&SealedSecret> {
        self.rare.as_ref()?.sealed_secret.as_ref()
    }

    pub(crate) fn is_signing(&self) -> bool {
        self.sealed_secret().is_some()
    }

    /// Networks the key may be used from; empty means anywhere.
    pub(crate) fn ip_allowlist(&self) -> &[IpNet] {
        self.rare.as_ref().map_or(&[], |r| &r.ip_allowlist)
    }

    pub(crate) fn rate_limit(&self) -> Option<&RateLimit> {
        self.rare.as_ref()?.rate_limit.as_ref()
    }

    /// The key's credits and the account they are counted under.
    pub(crate) fn credits(&self) -> Option<(&Credits, &CreditAccount)> {
        let rare = self.rare.as_ref()?;
        Some((rare.credits.as_ref()?, &rare.account))
    }

    /// The id its rate limit and credits are counted under.
    pub(crate) fn quota_key(&self) -> KeyId {
        self.rare
            .as_ref()
            .map_or_else(|| self.key_id(), |r| r.account.key)
    }
}

/// Shares the values most keys have in common between cache entries: scope sets and short
/// names (environments, prefixes). Bounded: past [`Interner::MAX`] distinct values a value is
/// kept unshared, so records a store hands back cannot grow it without limit.
#[derive(Debug, Default)]
pub(crate) struct Interner {
    scopes: Mutex<HashSet<ScopeSet>>,
    names: Mutex<HashSet<Arc<str>>>,
}

impl Interner {
    const MAX: usize = 4096;

    fn scopes(&self, set: &ScopeSet) -> ScopeSet {
        let mut known = self.scopes.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(shared) = known.get(set) {
            return shared.clone();
        }
        if known.len() < Self::MAX {
            known.insert(set.clone());
        }
        set.clone()
    }

    fn name(&self, name: &str) -> Arc<str> {
        let mut known = self.names.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(shared) = known.get(name) {
            return Arc::clone(shared);
        }
        let fresh: Arc<str> = name.into();
        if known.len() < Self::MAX {
            known.insert(Arc::clone(&fresh));
        }
        fresh
    }
}

/// The cache. Cheap to share by reference; clones of the engine share one cache.
#[derive(Debug)]
pub(crate) struct KeyCache {
    inner: Option<quick_cache::sync::Cache<KeyId, Arc<Entry>>>,
    /// Shares scope sets and names between entries.
    pub(crate) interner: Interner,
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
            interner: Interner::default(),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The fixed part of a cached plain key: the entry and its principal, each behind an `Arc`
    /// (two counters). The owner id, the cache's own slot and the shared scope set come on top;
    /// `examples/cache_bytes.rs` measures the whole (issue 30: at most 400 B).
    #[test]
    fn a_plain_key_s_entry_stays_small() {
        let arc = 2 * size_of::<usize>();
        let fixed = size_of::<Entry>() + arc + crate::model::Principal::INNER_SIZE + arc;
        assert!(fixed <= 240, "{fixed} B");
    }

    #[test]
    fn keys_with_one_grant_share_one_scope_set() {
        let interner = Interner::default();
        let a = ScopeSet::parse(["b:read", "a:read"]).unwrap();
        let b = ScopeSet::parse(["a:read", "b:read"]).unwrap();
        let (a, b) = (interner.scopes(&a), interner.scopes(&b));
        assert!(std::ptr::eq(a.as_slice(), b.as_slice()));
        assert!(Arc::ptr_eq(&interner.name("live"), &interner.name("live")));
    }

    #[test]
    fn the_interner_stops_growing_at_its_bound() {
        let interner = Interner::default();
        for i in 0..Interner::MAX + 10 {
            interner.name(&format!("e{i}"));
        }
        let first = interner.name("e0");
        assert!(Arc::ptr_eq(&first, &interner.name("e0")));
        let past = format!("e{}", Interner::MAX + 5);
        assert!(!Arc::ptr_eq(&interner.name(&past), &interner.name(&past)));
    }
}
