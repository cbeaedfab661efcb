//! Key reads from a read replica ([`SeaOrmKeyStore::with_read_replica`]): a lookup the
//! engine's cache missed goes to the replica; a key the replica does not have (it lags behind a
//! create) is read from the primary before it is called unknown, and so is a key that changed
//! within the replica's allowed lag (a revoke the replica has not replayed yet must not be
//! undone by reading it back from there). Writes, the owner cap, listings and usage go to the
//! primary.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use keyward_core::key::KeyId;
use sea_orm::DatabaseConnection;

use crate::lookup::Held;

/// Keys remembered as changed at once; past it, every key is read from the primary until the
/// lag has passed (as after a lost invalidation subscription).
const REMEMBERED: usize = 100_000;

/// A replica and what must not be read from it yet.
#[derive(Debug)]
pub(crate) struct Replica {
    pub(crate) db: DatabaseConnection,
    /// The longest the replica may lag behind the primary.
    lag: Duration,
    /// Keys changed, and when.
    changed: quick_cache::sync::Cache<KeyId, Instant>,
    /// Until when every key is read from the primary.
    all_until: Mutex<Option<Instant>>,
}

impl Replica {
    pub(crate) fn new(db: DatabaseConnection, lag: Duration) -> Self {
        Self {
            db,
            lag,
            changed: quick_cache::sync::Cache::new(REMEMBERED),
            all_until: Mutex::new(None),
        }
    }

    /// Notes that `key_id` (every key, for `None`) changed now.
    pub(crate) fn changed(&self, key_id: Option<&KeyId>) {
        let now = Instant::now();
        match key_id {
            Some(id) => self.changed.insert(*id, now),
            None => {
                *self
                    .all_until
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(now + self.lag);
            }
        }
    }

    /// Whether `key_id` may be read from the replica now.
    pub(crate) fn readable(&self, key_id: &KeyId, now: Instant) -> bool {
        let all = *self
            .all_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if all.is_some_and(|until| now < until) {
            return false;
        }
        self.changed
            .get(key_id)
            .is_none_or(|at| now.duration_since(at) >= self.lag)
    }
}

/// Held connections of a read through the replica: the replica's and the primary's.
#[derive(Default)]
pub(crate) struct HeldPair {
    pub(crate) replica: Option<Held>,
    pub(crate) primary: Option<Held>,
}
