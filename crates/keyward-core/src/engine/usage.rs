//! Usage batching: per-key request counters and last-used times on the hot path, credit states
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
/// and last-used times (in each cache entry, so the hot path is an atomic add; an entry's first
/// count since a flush puts it on the `counted` list, which keeps it until the flush reads it,
/// evicted or invalidated meanwhile or not) and queued credit states (and last-used times when
/// requests are not counted).
#[derive(Debug)]
pub(super) struct UsageBatcher {
    queued: Mutex<HashMap<KeyId, UsageDelta>>,
    counted: Mutex<Vec<Arc<Entry>>>,
    count_requests: bool,
}

/// Moves the counts and waiting last-used times of `entries` (read and reset) into `deltas`,
/// one delta per key.
///
/// The order of the two reads matters: `record_batched_use` leaves the time before it counts,
/// and this reads the count before the time, so a time this misses belongs to a request whose
/// count found the counter at zero and listed the entry again (`Release` there, `Acquire` here).
fn add_counts(deltas: &mut HashMap<KeyId, UsageDelta>, entries: Vec<Arc<Entry>>) {
    for entry in entries {
        let requests = entry.requests.swap(0, Ordering::Acquire);
        let used = entry
            .last_used_pending
            .swap(Entry::NO_LAST_USE, Ordering::Acquire);
        let last_used_at = (used != Entry::NO_LAST_USE)
            .then(|| crate::clock::from_unix_micros(used))
            .flatten();
        if requests > 0 || last_used_at.is_some() {
            merge(
                deltas,
                UsageDelta {
                    key_id: entry.key_id(),
                    last_used_at,
                    requests,
                    credits: None,
                },
            );
        }
    }
}

/// Merges `delta` into what `deltas` holds for its key.
fn merge(deltas: &mut HashMap<KeyId, UsageDelta>, delta: UsageDelta) {
    deltas
        .entry(delta.key_id)
        .and_modify(|d| d.absorb(&delta))
        .or_insert(delta);
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
        if !self.count_requests || entry.requests.fetch_add(1, Ordering::Release) != 0 {
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
        merge(
            &mut self.queued.lock().unwrap_or_else(PoisonError::into_inner),
            delta,
        );
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

    /// Keys with usage waiting: queued deltas and entries counted since the last flush (a key
    /// with both is two).
    pub(super) fn pending(&self) -> usize {
        let queued = self
            .queued
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        let counted = self
            .counted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        queued + counted
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
        // With requests counted, the time waits in the entry, which the count lists for the
        // next flush (the time first: see `add_counts`); without, and for credit states, in
        // the queue.
        let queued = match last_used {
            Some(at) if self.0.usage.counts_requests() => {
                entry
                    .last_used_pending
                    .fetch_max(crate::clock::unix_micros(at), Ordering::Relaxed);
                None
            }
            other => other,
        };
        self.0.usage.count(entry);
        if queued.is_some() || credits.is_some() {
            self.0.usage.queue(UsageDelta {
                key_id: entry.key_id(),
                last_used_at: queued,
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

    /// Number of keys with usage waiting to be flushed: request counts, last-used times and
    /// credit states (a key whose credit state is queued and whose requests are counted is
    /// two).
    #[must_use]
    pub fn pending_usage(&self) -> usize {
        self.0.usage.pending()
    }
}
