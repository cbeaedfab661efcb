//! Usage batching: per-key request counters and last-used times on the hot path, credit states
//! queued, and the flush that writes them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use time::OffsetDateTime;

use crate::analytics::{Outcome, Tags, UsageCount};
use crate::audit::{Action, Change, Event, EventId};
use crate::cache::Entry;
use crate::key::KeyId;
use crate::model::LastUsedStrategy;
use crate::model::{Credits, RateLimit};
use crate::store::{StoreError, UsageDelta};

use super::Keyward;

/// An hour in microseconds.
const HOUR_US: i64 = 3_600_000_000;

/// Where a usage count goes: key, hour (since the epoch), outcome, tags.
type CountKey = (KeyId, i64, Outcome, Tags);

/// Counts by [`CountKey`], with the key's owner.
type Counts = HashMap<CountKey, (Arc<str>, u64)>;

/// Shards of the outcome counts, so that refusals on two cores rarely meet on one lock.
const SHARDS: usize = 16;

/// Most distinct counts a shard holds between flushes before tagged counts lose their tags:
/// an application tagging with unbounded values (a raw path) must not grow memory without end.
/// Untagged counts are bounded by the keys in use.
const MAX_SHARD_COUNTS: usize = 4096;

/// Most notices waiting for a flush; past it (nobody flushes) new ones are dropped.
const MAX_NOTICES: usize = 10_000;

/// Most notice ids remembered, so that a key refused all window long queues one notice, not
/// one a request; past it the memory starts over (the store keeps one per id regardless).
const MAX_NOTICED: usize = 65_536;

/// What verification leaves for the store to record, batched between flushes: request counts
/// and last-used times (in each cache entry, so the hot path is an atomic add; an entry's first
/// count since a flush puts it on the `counted` list, which keeps it until the flush reads it,
/// evicted or invalidated meanwhile or not), queued credit states (and last-used times when
/// requests are not counted), and the counts of other outcomes and tagged requests by hour
/// (usage analytics). The entries' counts belong to the hour `hour` says; the first count of
/// a new hour moves them to the outcome counts under the hour that ended.
#[derive(Debug)]
pub(crate) struct UsageBatcher {
    queued: Mutex<HashMap<KeyId, UsageDelta>>,
    counted: Mutex<Vec<Arc<Entry>>>,
    outcomes: [Mutex<Counts>; SHARDS],
    /// The hour (since the epoch) the entries' counts belong to.
    hour: AtomicI64,
    count_requests: bool,
    /// Notices (`key.rate_limited`, `key.credits_low`) waiting for the flush, and the ids
    /// queued lately.
    notices: Mutex<Vec<Event>>,
    noticed: Mutex<std::collections::HashSet<EventId>>,
}

/// What one flush writes.
#[derive(Debug, Default)]
pub(super) struct Batch {
    pub(super) deltas: Vec<UsageDelta>,
    pub(super) counts: Vec<UsageCount>,
    pub(super) notices: Vec<Event>,
}

/// Moves the counts and waiting last-used times of `entries` (read and reset) into `deltas`
/// (last-used times) and `counts` (valid untagged requests and wrong secrets of `hour`).
///
/// The order of the two reads matters: `record_batched_use` leaves the time before it counts,
/// and this reads the count before the time, so a time this misses belongs to a request whose
/// count found the counter at zero and listed the entry again (`Release` there, `Acquire` here).
fn add_counts(
    deltas: &mut HashMap<KeyId, UsageDelta>,
    counts: &mut Counts,
    hour: i64,
    entries: Vec<Arc<Entry>>,
) {
    for entry in entries {
        let invalid = entry.invalid.swap(0, Ordering::Relaxed);
        if invalid > 0 {
            add(
                counts,
                (entry.key_id(), hour, Outcome::Invalid, Tags::NONE),
                entry.principal.owner_id(),
                u64::from(invalid),
            );
        }
        let requests = entry.requests.swap(0, Ordering::Acquire);
        let used = entry
            .last_used_pending
            .swap(Entry::NO_LAST_USE, Ordering::Acquire);
        let last_used_at = (used != Entry::NO_LAST_USE)
            .then(|| crate::clock::from_unix_micros(used))
            .flatten();
        if requests > 0 {
            add(
                counts,
                (entry.key_id(), hour, Outcome::Valid, Tags::NONE),
                entry.principal.owner_id(),
                requests,
            );
        }
        if last_used_at.is_some() {
            merge(
                deltas,
                UsageDelta {
                    key_id: entry.key_id(),
                    last_used_at,
                    last_used_from: None,
                    requests: 0,
                    credits: None,
                },
            );
        }
    }
}

/// Adds `n` to the count of `key`.
fn add(counts: &mut Counts, key: CountKey, owner: &str, n: u64) {
    let slot = counts.entry(key).or_insert_with(|| (owner.into(), 0));
    slot.1 = slot.1.saturating_add(n);
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
            outcomes: std::array::from_fn(|_| Mutex::new(HashMap::new())),
            hour: AtomicI64::new(i64::MIN),
            count_requests,
            notices: Mutex::new(Vec::new()),
            noticed: Mutex::new(std::collections::HashSet::new()),
        }
    }

    /// Whether no notice of `id` was queued lately (and remembers it now).
    pub(crate) fn first_notice(&self, id: EventId) -> bool {
        let mut seen = self.noticed.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.len() >= MAX_NOTICED {
            seen.clear();
        }
        seen.insert(id)
    }

    /// Queues `event`, a notice, unless one of its id was queued lately.
    pub(super) fn notice(&self, event: Event) {
        if !self.first_notice(event.id) {
            return;
        }
        let mut queue = self.notices.lock().unwrap_or_else(PoisonError::into_inner);
        if queue.len() < MAX_NOTICES {
            queue.push(event);
        }
    }

    /// Puts back notices a flush could not write.
    pub(super) fn requeue_notices(&self, events: Vec<Event>) {
        let mut queue = self.notices.lock().unwrap_or_else(PoisonError::into_inner);
        queue.extend(events);
        queue.truncate(MAX_NOTICES);
    }

    fn shard(&self, key_id: &KeyId) -> std::sync::MutexGuard<'_, Counts> {
        let i = usize::from(key_id.as_str().as_bytes()[0]) % SHARDS;
        self.outcomes[i]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts a verification of `entry` with `outcome` and `tags` at `now_us` (a valid one adds
    /// to the key's requests at the flush). Without tags, a valid request and a wrong secret
    /// are an atomic add in the entry; the rest goes to the shards. Not counted when requests
    /// are not.
    pub(super) fn count_outcome(
        &self,
        entry: &Arc<Entry>,
        outcome: Outcome,
        tags: &Tags,
        now_us: i64,
    ) {
        match outcome {
            _ if !self.count_requests => return,
            Outcome::Valid if tags.is_empty() => return self.count(entry, now_us),
            Outcome::Invalid if tags.is_empty() => return self.count_invalid(entry, now_us),
            _ => {}
        }
        let key_id = entry.key_id();
        let hour = now_us.div_euclid(HOUR_US);
        let mut shard = self.shard(&key_id);
        let mut key = (key_id, hour, outcome, tags.clone());
        if !tags.is_empty() && shard.len() >= MAX_SHARD_COUNTS && !shard.contains_key(&key) {
            key.3 = Tags::NONE;
        }
        add(&mut shard, key, entry.principal.owner_id(), 1);
    }

    /// The entries' counts belong to the hour of `now_us` from now on: when that is a new
    /// hour, the counts of the one that ended move to the outcome counts under it (once an
    /// hour, by the first request that sees it).
    fn roll(&self, now_us: i64) {
        let hour = now_us.div_euclid(HOUR_US);
        let current = self.hour.load(Ordering::Relaxed);
        if current >= hour
            || self
                .hour
                .compare_exchange(current, hour, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let entries = {
            let mut list = self.counted.lock().unwrap_or_else(PoisonError::into_inner);
            std::mem::take(&mut *list)
        };
        if !entries.is_empty() {
            self.park(current, entries);
        }
    }

    /// Moves the counts of `entries` to the outcome counts under `hour`, and their last-used
    /// times to the queue.
    fn park(&self, hour: i64, entries: Vec<Arc<Entry>>) {
        let mut counts = Counts::new();
        let mut deltas = HashMap::new();
        add_counts(&mut deltas, &mut counts, hour, entries);
        self.merge_counts(counts);
        let mut map = self.queued.lock().unwrap_or_else(PoisonError::into_inner);
        for d in deltas.into_values() {
            merge(&mut map, d);
        }
    }

    fn merge_counts(&self, counts: Counts) {
        for ((key_id, hour, outcome, tags), (owner, n)) in counts {
            add(
                &mut self.shard(&key_id),
                (key_id, hour, outcome, tags),
                &owner,
                n,
            );
        }
    }

    /// Puts back counts a flush could not write.
    pub(super) fn requeue_counts(&self, counts: Vec<UsageCount>) {
        for c in counts {
            let hour = c.hour.unix_timestamp().div_euclid(3600);
            add(
                &mut self.shard(&c.key_id),
                (c.key_id, hour, c.outcome, c.tags),
                &c.owner_id,
                c.count,
            );
        }
    }

    /// Whether requests are counted per key.
    pub(super) fn counts_requests(&self) -> bool {
        self.count_requests
    }

    /// Counts one valid request of `entry`, without tags, at `now_us`.
    fn count(&self, entry: &Arc<Entry>, now_us: i64) {
        if now_us.div_euclid(HOUR_US) != self.hour.load(Ordering::Relaxed) {
            self.roll(now_us);
        }
        if entry.requests.fetch_add(1, Ordering::Release) == 0 {
            self.list(entry);
        }
    }

    /// Counts one wrong secret presented for `entry`, without tags, at `now_us`: in the entry,
    /// as a request.
    fn count_invalid(&self, entry: &Arc<Entry>, now_us: i64) {
        if now_us.div_euclid(HOUR_US) != self.hour.load(Ordering::Relaxed) {
            self.roll(now_us);
        }
        if entry.invalid.fetch_add(1, Ordering::Relaxed) == 0 {
            self.list(entry);
        }
    }

    /// Lists `entry` for the next flush (its first count since one).
    fn list(&self, entry: &Arc<Entry>) {
        let full = {
            let mut list = self.counted.lock().unwrap_or_else(PoisonError::into_inner);
            list.push(Arc::clone(entry));
            (list.len() >= MAX_COUNTED).then(|| std::mem::take(&mut *list))
        };
        // A list as long as this means entries come and go between flushes (a small or no
        // cache, or no flusher): their counts move to the queue, one delta per key, and the
        // entries are let go.
        if let Some(full) = full {
            self.park(self.hour.load(Ordering::Relaxed), full);
        }
    }

    /// Queues `delta`, merged with what is queued for its key.
    pub(super) fn queue(&self, delta: UsageDelta) {
        merge(
            &mut self.queued.lock().unwrap_or_else(PoisonError::into_inner),
            delta,
        );
    }

    /// Takes everything batched: the queued deltas with the valid requests added, and the
    /// usage counts. An entry counted again after its counter was read here is listed again by
    /// that count.
    pub(super) fn take(&self) -> Batch {
        let mut pending: HashMap<KeyId, UsageDelta> = {
            let mut map = self.queued.lock().unwrap_or_else(PoisonError::into_inner);
            std::mem::take(&mut *map)
        };
        let counted = {
            let mut list = self.counted.lock().unwrap_or_else(PoisonError::into_inner);
            std::mem::take(&mut *list)
        };
        let mut counts = Counts::new();
        add_counts(
            &mut pending,
            &mut counts,
            self.hour.load(Ordering::Relaxed),
            counted,
        );
        for shard in &self.outcomes {
            let taken = std::mem::take(&mut *shard.lock().unwrap_or_else(PoisonError::into_inner));
            for (key, (owner, n)) in taken {
                add(&mut counts, key, &owner, n);
            }
        }
        let mut out = Vec::with_capacity(counts.len());
        for ((key_id, hour, outcome, tags), (owner_id, count)) in counts {
            if outcome == Outcome::Valid {
                merge(
                    &mut pending,
                    UsageDelta {
                        key_id,
                        last_used_at: None,
                        last_used_from: None,
                        requests: count,
                        credits: None,
                    },
                );
            }
            let Some(hour) = OffsetDateTime::from_unix_timestamp(hour.saturating_mul(3600)).ok()
            else {
                continue;
            };
            out.push(UsageCount {
                key_id,
                owner_id,
                hour,
                outcome,
                tags,
                count,
            });
        }
        let notices =
            std::mem::take(&mut *self.notices.lock().unwrap_or_else(PoisonError::into_inner));
        Batch {
            deltas: pending.into_values().collect(),
            counts: out,
            notices,
        }
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
        let outcomes: usize = self
            .outcomes
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).len())
            .sum();
        queued + counted + outcomes
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
        ctx: &crate::VerifyContext<'_>,
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
        // Where the use came from, only when its time is recorded (once a throttle window).
        let from = last_used.and_then(|_| ctx.origin());
        // With requests counted, a time without an origin waits in the entry, which the count
        // lists for the next flush (the time first: see `add_counts`); with an origin (which
        // an atomic cannot hold), without counts, and for credit states, in the queue.
        let queued = match last_used {
            Some(at) if self.0.usage.counts_requests() && from.is_none() => {
                entry
                    .last_used_pending
                    .fetch_max(crate::clock::unix_micros(at), Ordering::Relaxed);
                None
            }
            other => other,
        };
        self.0
            .usage
            .count_outcome(entry, Outcome::Valid, &ctx.tags, now_us);
        if queued.is_some() || credits.is_some() {
            self.0.usage.queue(UsageDelta {
                key_id: entry.key_id(),
                last_used_at: queued,
                last_used_from: from,
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
        let Batch {
            deltas,
            counts,
            notices,
        } = self.0.usage.take();
        if !(deltas.is_empty() && counts.is_empty())
            && let Err(e) = self.0.store.record_usage(&deltas, &counts).await
        {
            for d in deltas {
                // The valid requests in it go back as counts.
                self.0.usage.queue(UsageDelta { requests: 0, ..d });
            }
            self.0.usage.requeue_counts(counts);
            self.0.usage.requeue_notices(notices);
            return Err(e);
        }
        if !notices.is_empty()
            && let Err(e) = self.0.store.append(&notices).await
        {
            self.0.usage.requeue_notices(notices);
            return Err(e);
        }
        Ok(deltas.len())
    }

    /// Queues `key.rate_limited` for `entry`'s key, refused by `limit` at `at`: once per key
    /// and window (the window the refusal falls in, counted from the epoch).
    pub(super) fn notice_rate_limited(&self, entry: &Entry, limit: &RateLimit, at: OffsetDateTime) {
        let window = i64::from(limit.window_seconds.max(1));
        let start = at.unix_timestamp().div_euclid(window) * window;
        let Ok(start_at) = OffsetDateTime::from_unix_timestamp(start) else {
            return;
        };
        let facts = vec![
            Change::fact(
                "rate_limit",
                serde_json::json!({
                    "requests": limit.requests,
                    "window_seconds": limit.window_seconds,
                }),
            ),
            Change::fact(
                "window_start",
                serde_json::Value::String(crate::clock::utc_text(start_at, "Z")),
            ),
        ];
        self.0.usage.notice(Event::notice(
            Action::KeyRateLimited,
            entry.principal.owner_id(),
            entry.key_id(),
            at,
            &format!("{window}:{start}"),
            facts,
        ));
    }

    /// Queues `key.credits_low` for `entry`'s key when `used` of `credits` in `period` leaves
    /// `percent` of the limit or less: once per key and period.
    pub(super) fn notice_credits(
        &self,
        entry: &Entry,
        credits: &Credits,
        (period, used): (u64, u64),
        percent: u8,
        at: OffsetDateTime,
    ) {
        let remaining = credits.limit.saturating_sub(used);
        let threshold = u128::from(credits.limit) * u128::from(percent) / 100;
        if u128::from(remaining) > threshold {
            return;
        }
        let facts = vec![
            Change::fact("credits_remaining", remaining.into()),
            Change::fact("credits_limit", credits.limit.into()),
            Change::fact("credits_period", period.into()),
        ];
        self.0.usage.notice(Event::notice(
            Action::KeyCreditsLow,
            entry.principal.owner_id(),
            entry.key_id(),
            at,
            &period.to_string(),
            facts,
        ));
    }

    /// Number of things waiting to be flushed: keys with request counts, last-used times or
    /// credit states, and usage counts by hour, outcome and tags (a key with a queued
    /// last-used time and a count of refusals is two).
    #[must_use]
    pub fn pending_usage(&self) -> usize {
        self.0.usage.pending()
    }
}
