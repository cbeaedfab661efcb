//! Usage batching: per-key request counters on the hot path, last-used times and credit states
//! queued, and the flush that writes them.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};

use time::OffsetDateTime;

use crate::cache::Entry;
use crate::key::KeyId;
use crate::model::LastUsedStrategy;
use crate::store::{StoreError, UsageDelta};

use super::Keyward;

/// What verification leaves for the store to record, batched between flushes: request counts
/// (a counter in each cache entry, so the hot path is one atomic add; an entry's first count
/// since a flush puts it on the `counted` list, which keeps it until the flush reads it, evicted
/// or invalidated meanwhile or not) and queued last-used times and credit states.
#[derive(Debug)]
pub(super) struct UsageBatcher {
    queued: Mutex<HashMap<KeyId, UsageDelta>>,
    counted: Mutex<Vec<Arc<Entry>>>,
    count_requests: bool,
}

/// Moves the counts of `entries` (read and reset) into `deltas`, one delta per key.
fn add_counts(deltas: &mut HashMap<KeyId, UsageDelta>, entries: Vec<Arc<Entry>>) {
    for entry in entries {
        let n = entry.requests.swap(0, Ordering::AcqRel);
        if n > 0 {
            let key_id = entry.key_id();
            let d = deltas.entry(key_id).or_insert(UsageDelta {
                key_id,
                last_used_at: None,
                requests: 0,
                credits: None,
            });
            d.requests = d.requests.saturating_add(n);
        }
    }
}

/// Longest the list of counted entries grows before their counts move to the queue.
const MAX_COUNTED: usize = 65_536;

impl UsageBatcher {
    pub(super) fn new(count_requests: bool) -> Self {
        Self {
            queued: Mutex::new(HashMap::new()),
            counted: Mutex::new(Vec::new()),
            count_requests,
        }
    }

    /// Whether requests are counted per key.
    pub(super) fn counts_requests(&self) -> bool {
        self.count_requests
    }

    /// Counts one request of `entry`.
    pub(super) fn count(&self, entry: &Arc<Entry>) {
        if !self.count_requests || entry.requests.fetch_add(1, Ordering::Relaxed) != 0 {
            return;
        }
        let full = {
            let mut list = self.counted.lock().unwrap_or_else(PoisonError::into_inner);
            list.push(Arc::clone(entry));
            (list.len() >= MAX_COUNTED).then(|| std::mem::take(&mut *list))
        };
        // A list as long as this means entries come and go between flushes (a small or no
        // cache, or no flusher): their counts move to the queue, one delta per key, and the
        // entries are let go.
        if let Some(full) = full {
            let mut map = self.queued.lock().unwrap_or_else(PoisonError::into_inner);
            add_counts(&mut map, full);
        }
    }

    /// Queues `delta`, merged with what is queued for its key.
    pub(super) fn queue(&self, delta: UsageDelta) {
        let mut map = self.queued.lock().unwrap_or_else(PoisonError::into_inner);
        map.entry(delta.key_id)
            .or_insert(UsageDelta {
                requests: 0,
                ..delta
            })
            .absorb(&delta);
    }

    /// Takes everything batched: the queued deltas with the counted requests added. An entry
    /// counted again after its counter was read here is listed again by that count.
    pub(super) fn take(&self) -> Vec<UsageDelta> {
        let mut pending: HashMap<KeyId, UsageDelta> = {
            let mut map = self.queued.lock().unwrap_or_else(PoisonError::into_inner);
            std::mem::take(&mut *map)
        };
        let counted = {
            let mut list = self.counted.lock().unwrap_or_else(PoisonError::into_inner);
            std::mem::take(&mut *list)
        };
        add_counts(&mut pending, counted);
        pending.into_values().collect()
    }

    /// Keys with usage queued.
    pub(super) fn pending(&self) -> usize {
        self.queued
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

impl Keyward {
    /// Counts the request and queues last-used (throttled) and credit states for the next
    /// [`Keyward::flush_usage`].
    pub(super) fn record_batched_use(
        &self,
        entry: &Arc<Entry>,
        now_us: i64,
        precise: Option<OffsetDateTime>,
        credits: Option<(u64, u64)>,
    ) {
        self.0.usage.count(entry);
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
            self.0.usage.queue(UsageDelta {
                key_id: entry.key_id(),
                last_used_at: last_used,
                requests: 0,
                credits,
            });
        }
    }

    /// Writes the batched usage counters and last-used times to the store. Call it
    /// periodically and on shutdown; on failure the batch is kept for the next call, so
    /// nothing acknowledged is lost while the process lives.
    ///
    /// # Errors
    /// The store's error; the batch stays queued.
    pub async fn flush_usage(&self) -> Result<usize, StoreError> {
        let batch = self.0.usage.take();
        if batch.is_empty() {
            return Ok(0);
        }
        match self.0.store.record_usage(&batch).await {
            Ok(()) => Ok(batch.len()),
            Err(e) => {
                for d in batch {
                    self.0.usage.queue(d);
                }
                Err(e)
            }
        }
    }

    /// Number of keys with usage waiting to be flushed.
    #[must_use]
    pub fn pending_usage(&self) -> usize {
        self.0.usage.pending()
    }
}
