//! Cache misses that arrive together read the database together: [`Lookups`] queues the key ids
//! asked for while [`MAX_READERS`] reads are under way, and the next read takes the queue (up
//! to [`MAX_BATCH`] ids) in one `SELECT … WHERE key_id IN (…)`. A lone miss is read at once.
//!
//! Measured reason (`cargo xtask scale`, PostgreSQL on this two-core machine): a miss cost
//! about 72 µs of server CPU, half of it in the kernel sending to and waking PostgreSQL; one
//! round trip for several misses pays that once (docs/performance.md).
//!
//! A key id only ever joins a read that has not been sent yet, so every answer comes from a
//! read that started after the caller asked: the engine's rule that a read begun before an
//! invalidation never fills the cache still holds.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use keyward_core::store::StoreError;
use keyward_core::{KeyId, KeyRecord};
use tokio::sync::oneshot;

/// Reads under way at once; more misses wait for the next and share it. One, measured: with
/// one, misses are answered at 17.1 k req/s for 51 µs of server CPU each, with two at 15.7 k
/// for 57 µs (`cargo xtask scale`, 10⁵ keys, PostgreSQL).
pub(crate) const MAX_READERS: usize = 1;

/// Most key ids one read names.
pub(crate) const MAX_BATCH: usize = 256;

type Answer = Result<Option<KeyRecord>, StoreError>;

/// What waits for a read.
#[derive(Debug, Default)]
struct Queue {
    /// Readers running.
    readers: usize,
    /// Key ids asked for and not yet in a read, each with whoever asked.
    waiting: Vec<(KeyId, oneshot::Sender<Answer>)>,
}

/// The queue of key ids to read, shared by a store's clones.
#[derive(Debug, Default, Clone)]
pub(crate) struct Lookups(Arc<Mutex<Queue>>);

impl Lookups {
    /// Queues `key_id`; `true` when the caller should start a reader (fewer than
    /// [`MAX_READERS`] run). The answer arrives on the returned receiver.
    pub(crate) fn ask(&self, key_id: KeyId) -> (oneshot::Receiver<Answer>, bool) {
        let (tx, rx) = oneshot::channel();
        let mut q = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        q.waiting.push((key_id, tx));
        let start = q.readers < MAX_READERS;
        if start {
            q.readers += 1;
        }
        (rx, start)
    }

    /// The next key ids to read (at most [`MAX_BATCH`]), or `None` when nothing waits, in which
    /// case the reader stops (and is no longer counted).
    pub(crate) fn next(&self) -> Option<Vec<(KeyId, oneshot::Sender<Answer>)>> {
        let mut q = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if q.waiting.is_empty() {
            q.readers -= 1;
            return None;
        }
        let n = q.waiting.len().min(MAX_BATCH);
        Some(q.waiting.drain(..n).collect())
    }
}

impl Lookups {
    /// A reader stopped before the queue was empty: it no longer counts.
    pub(crate) fn abandon(&self) {
        let mut q = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        q.readers = q.readers.saturating_sub(1);
    }
}

/// Sends each waiter its key's record (or `None`), or the read's error to all of them.
pub(crate) fn answer(
    waiters: Vec<(KeyId, oneshot::Sender<Answer>)>,
    read: Result<Vec<KeyRecord>, StoreError>,
) {
    match read {
        Ok(records) => {
            let by_id: HashMap<KeyId, KeyRecord> =
                records.into_iter().map(|r| (r.key_id, r)).collect();
            for (key_id, tx) in waiters {
                // A waiter that gave up (its request was dropped) is not an error.
                let _ = tx.send(Ok(by_id.get(&key_id).cloned()));
            }
        }
        Err(e) => {
            for (_, tx) in waiters {
                let _ = tx.send(Err(StoreError::new(e.kind(), e.to_string())));
            }
        }
    }
}
