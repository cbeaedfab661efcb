//! The local cache and its invalidation across instances.

use std::sync::PoisonError;

use crate::key::KeyId;

use super::*;

impl Keyward {
    /// Drops `key_id` from this instance's cache (what an invalidation subscriber calls).
    pub fn invalidate_local(&self, key_id: &KeyId) {
        self.0.cache.invalidate(key_id);
        self.0.store.invalidated(Some(key_id));
    }

    /// Drops every cached entry (after a lost invalidation subscription, for example).
    pub fn clear_cache(&self) {
        self.0.cache.clear();
        self.0.store.invalidated(None);
    }

    /// Cache hits, misses and size since the engine was built (for metrics).
    #[must_use]
    pub fn cache_stats(&self) -> crate::cache::CacheStats {
        self.0.cache.stats()
    }

    /// Invalidates locally and on every other instance through the bus.
    /// Drops `key_id` from this instance's cache first (nothing before it can fail), then tells
    /// the other instances. A publish that fails is kept and retried by
    /// [`Keyward::retry_invalidations`]; meanwhile the other instances rely on their cache TTL,
    /// and [`Keyward::pending_invalidations`] says so to readiness probes.
    pub(crate) async fn invalidate_everywhere(&self, key_id: &KeyId) {
        self.0.cache.invalidate(key_id);
        self.0.store.invalidated(Some(key_id));
        if let Some(bus) = &self.0.bus
            && let Err(e) = bus.publish(key_id).await
        {
            tracing::warn!(key_id = %key_id, error = %e, "cache invalidation not published; kept for a retry, other instances rely on the TTL meanwhile");
            self.0
                .unpublished
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(*key_id);
        }
    }

    /// Publishes the invalidations that failed before. Call it periodically (the server does,
    /// with its usage flush); returns how many are still pending.
    pub async fn retry_invalidations(&self) -> usize {
        let Some(bus) = &self.0.bus else {
            return 0;
        };
        let pending: Vec<KeyId> = self
            .0
            .unpublished
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .copied()
            .collect();
        for key_id in pending {
            match bus.publish(&key_id).await {
                Ok(()) => {
                    self.0
                        .unpublished
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .remove(&key_id);
                    tracing::info!(key_id = %key_id, "cache invalidation published on retry");
                }
                Err(e) => {
                    tracing::warn!(key_id = %key_id, error = %e, "cache invalidation still not published");
                    break;
                }
            }
        }
        self.pending_invalidations()
    }

    /// Invalidations that could not be published to the other instances yet (for readiness).
    #[must_use]
    pub fn pending_invalidations(&self) -> usize {
        self.0
            .unpublished
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}
