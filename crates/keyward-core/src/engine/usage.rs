//! Usage batching: per-key request counters on the hot path, last-used times and credit states
//! queued, and the flush that writes them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError};

use chrono::{DateTime, Utc};

use crate::cache::Entry;
use crate::key::KeyId;
use crate::model::LastUsedStrategy;
use crate::store::{StoreError, UsageDelta};

use super::*;

impl Keyward {
    pub(super) fn counter(&self, key_id: &KeyId) -> Arc<AtomicU64> {
        let mut map = self
            .0
            .counters
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Arc::clone(map.entry(*key_id).or_default())
    }

    /// Counts the request and queues last-used (throttled) and credit states for the next
    /// [`Keyward::flush_usage`].
    pub(super) fn record_batched_use(
        &self,
        entry: &Entry,
        now_us: i64,
        precise: Option<DateTime<Utc>>,
        credits: Option<(u64, u64)>,
    ) {
        if self.0.count_requests {
            entry.requests.fetch_add(1, Ordering::Relaxed);
        }
        let last_used = match self.0.policy.last_used {
            LastUsedStrategy::Throttled(secs) => {
                let window = i64::try_from(secs)
                    .unwrap_or(i64::MAX)
                    .saturating_mul(1_000_000);
                let mark = entry.last_used_mark.load(Ordering::Relaxed);
                let due = now_us.saturating_sub(mark) >= window;
                (due && entry
                    .last_used_mark
                    .compare_exchange(mark, now_us, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok())
                .then(|| precise.unwrap_or_else(|| self.0.clock.now()))
            }
            LastUsedStrategy::Disabled | LastUsedStrategy::Immediate => None,
        };
        if last_used.is_some() || credits.is_some() {
            self.queue(UsageDelta {
                key_id: entry.record.key_id,
                last_used_at: last_used,
                requests: 0,
                credits,
            });
        }
    }

    pub(super) fn queue(&self, delta: UsageDelta) {
        let mut map = self.0.usage.lock().unwrap_or_else(PoisonError::into_inner);
        merge(
            map.entry(delta.key_id).or_insert(UsageDelta {
                requests: 0,
                ..delta
            }),
            &delta,
        );
    }

    /// Writes the batched usage counters and last-used times to the store. Call it
    /// periodically and on shutdown; on failure the batch is kept for the next call, so
    /// nothing acknowledged is lost while the process lives.
    ///
    /// # Errors
    /// The store's error; the batch stays queued.
    pub async fn flush_usage(&self) -> Result<usize, StoreError> {
        let mut pending: HashMap<KeyId, UsageDelta> = {
            let mut map = self.0.usage.lock().unwrap_or_else(PoisonError::into_inner);
            std::mem::take(&mut *map)
        };
        {
            let mut counters = self
                .0
                .counters
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            counters.retain(|key_id, counter| {
                let n = counter.swap(0, Ordering::AcqRel);
                if n > 0 {
                    let d = pending.entry(*key_id).or_insert(UsageDelta {
                        key_id: *key_id,
                        last_used_at: None,
                        requests: 0,
                        credits: None,
                    });
                    d.requests = d.requests.saturating_add(n);
                }
                // Keep counters a cache entry still holds; drop idle ones.
                n > 0 || Arc::strong_count(counter) > 1
            });
        }
        let batch: Vec<UsageDelta> = pending.into_values().collect();
        if batch.is_empty() {
            return Ok(0);
        }
        match self.0.store.record_usage(&batch).await {
            Ok(()) => Ok(batch.len()),
            Err(e) => {
                for d in batch {
                    self.queue(d);
                }
                Err(e)
            }
        }
    }

    /// Number of keys with usage waiting to be flushed.
    #[must_use]
    pub fn pending_usage(&self) -> usize {
        self.0
            .usage
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

pub(super) fn merge(into: &mut UsageDelta, d: &UsageDelta) {
    into.requests = into.requests.saturating_add(d.requests);
    if d.last_used_at > into.last_used_at {
        into.last_used_at = d.last_used_at;
    }
    if d.credits > into.credits {
        into.credits = d.credits;
    }
}
