//! The seams: [`KeyStore`] and its [`EventStore`], [`NonceStore`], [`RateLimiter`], [`CreditLedger`],
//! [`InvalidationBus`], [`FailureLedger`] and [`ScopeAuthority`]. Backends live in their own crates; in-memory ones are in
//! [`crate::memory`].

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use time::OffsetDateTime;

use crate::analytics::{UsageCount, UsageFilter, UsageRow};
use crate::audit::{Event, EventCursor, EventFilter, EventPage};
use crate::digest::KeyDigest;
use crate::key::KeyId;
use crate::model::{Credits, KeyRecord, KeyState, RateLimit};
use crate::scope::ScopeSet;

/// What went wrong in a backend, in terms the engine can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreErrorKind {
    /// The backend cannot be reached or timed out: fail closed with 503, retry later.
    Unavailable,
    /// A key with this id already exists.
    Conflict,
    /// The key does not exist.
    NotFound,
    /// The owner already has the maximum number of keys.
    LimitReached,
    /// Stored data could not be decoded.
    Corrupt,
    /// A conditional write found the key changed (another `updated_at`) or revoked since it was
    /// read: read it again and decide again.
    Stale,
    /// Anything else.
    Other,
}

/// An opaque backend error. Foreign error types (database, pool, Redis) never appear in the
/// public API; their text is kept for logs as the `source`.
pub struct StoreError {
    kind: StoreErrorKind,
    message: Cow<'static, str>,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl StoreError {
    /// A new error of `kind`.
    #[must_use]
    pub fn new(kind: StoreErrorKind, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// Backend unreachable.
    #[must_use]
    pub fn unavailable(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StoreErrorKind::Unavailable, message)
    }

    /// Attaches the underlying error (kept for logs).
    #[must_use]
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// What kind of failure this is.
    #[must_use]
    pub fn kind(&self) -> StoreErrorKind {
        self.kind
    }
}

impl fmt::Debug for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreError")
            .field("kind", &self.kind)
            .field("message", &self.message)
            .field("source", &self.source.as_ref().map(ToString::to_string))
            .finish()
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(s) = &self.source {
            write!(f, ": {s}")?;
        }
        Ok(())
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// A position in a key list: keys are listed by `(created_at, key_id)` ascending, and
/// the cursor is the last one returned. Stable under inserts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor {
    /// Creation time of the last key returned.
    pub created_at: OffsetDateTime,
    /// Its id.
    pub key_id: KeyId,
}

/// What a list cursor looks like, for the OpenAPI document: every string it admits is a cursor
/// the store reads (it may name a position past every key: an empty page), or empty, which the
/// list routes read as "from the start". keyward-http's document writes it as a literal; tests
/// hold the two and the decoder together.
pub const CURSOR_PATTERN: &str = r"^([0-9]{1,18}\.[0-9A-Za-z]{12})?$";

/// A malformed cursor string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed cursor")]
pub(crate) struct CursorError;

impl Cursor {
    /// The cursor after `record`.
    #[must_use]
    pub fn after(record: &KeyRecord) -> Self {
        Self {
            created_at: record.created_at,
            key_id: record.key_id,
        }
    }

    /// The cursor as text: `<created_at in µs since the epoch>.<key_id>`, URL-safe and
    /// matching [`CURSOR_PATTERN`]. Clients pass it back as they got it.
    #[must_use]
    pub(crate) fn encode(&self) -> String {
        format!(
            "{}.{}",
            crate::clock::unix_micros(self.created_at),
            self.key_id
        )
    }

    /// Decodes [`Cursor::encode`]'s output.
    ///
    /// # Errors
    /// [`CursorError`] for anything else.
    pub(crate) fn decode(s: &str) -> Result<Self, CursorError> {
        let (t, id) = s.split_once('.').ok_or(CursorError)?;
        // Digits only (no sign), at most 18: every string CURSOR_PATTERN admits decodes.
        if t.is_empty() || t.len() > 18 || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CursorError);
        }
        let micros: i64 = t.parse().map_err(|_| CursorError)?;
        // Past the year 9999 no key was created: such a cursor is after every key.
        let created_at = crate::clock::from_unix_micros(micros).unwrap_or(crate::clock::LATEST);
        Ok(Self {
            created_at,
            key_id: id.parse().map_err(|_| CursorError)?,
        })
    }
}

/// Which keys a list returns: every key, or those of one owner, of one environment, in one
/// state at an instant. Built with [`KeyFilter::all`] and narrowed; stores read its fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyFilter<'a> {
    /// Only this owner's keys.
    pub owner_id: Option<&'a str>,
    /// Only keys of this environment (`live`, `test`, …).
    pub env: Option<&'a str>,
    /// Only keys in this state at [`KeyFilter::at`] ([`KeyRecord::state`]).
    pub state: Option<KeyState>,
    /// The instant states are judged at.
    pub at: OffsetDateTime,
}

impl<'a> KeyFilter<'a> {
    /// Every key, states judged at `at`.
    #[must_use]
    pub fn all(at: OffsetDateTime) -> Self {
        Self {
            owner_id: None,
            env: None,
            state: None,
            at,
        }
    }

    /// Only `owner_id`'s keys.
    #[must_use]
    pub fn owner(mut self, owner_id: &'a str) -> Self {
        self.owner_id = Some(owner_id);
        self
    }

    /// Only keys of environment `env`.
    #[must_use]
    pub fn env(mut self, env: &'a str) -> Self {
        self.env = Some(env);
        self
    }

    /// Only keys in `state` at [`KeyFilter::at`].
    #[must_use]
    pub fn state(mut self, state: KeyState) -> Self {
        self.state = Some(state);
        self
    }

    /// Whether `record` is one of the keys this filter lists: what a store that cannot filter
    /// in its query checks on each record it reads.
    #[must_use]
    pub fn matches(&self, record: &KeyRecord) -> bool {
        self.owner_id.is_none_or(|o| record.owner_id == o)
            && self.env.is_none_or(|e| record.env == e)
            && self.state.is_none_or(|s| record.state(self.at) == s)
    }
}

/// Largest page a list may ask for.
pub const MAX_PAGE_SIZE: u32 = 100;

/// One page of a key list.
#[derive(Debug, Clone)]
pub struct Page {
    /// The keys, by `(created_at, key_id)` ascending.
    pub items: Vec<KeyRecord>,
    /// Where the next page starts; `None` on the last page.
    pub next_cursor: Option<Cursor>,
}

/// Counters accumulated for a key since the last flush.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageDelta {
    /// The key.
    pub key_id: KeyId,
    /// Latest use to record, if the last-used strategy asked for one.
    pub last_used_at: Option<OffsetDateTime>,
    /// Where that use came from (client address, user agent), when known: it goes with
    /// `last_used_at`, and is kept only when that time is.
    pub last_used_from: Option<crate::model::Origin>,
    /// Verified requests to add to `usage.request_count`.
    pub requests: u64,
    /// Credits used: the period and the absolute count used in it (the ledger is authoritative).
    pub credits: Option<(u64, u64)>,
}

impl UsageDelta {
    /// Adds `other` (a delta for the same key) to this one, as applying both would: counts add
    /// (saturating), the later use wins (with where it came from), and the later credit state
    /// `(period, used)`.
    pub fn absorb(&mut self, other: &UsageDelta) {
        self.requests = self.requests.saturating_add(other.requests);
        if other.last_used_at > self.last_used_at {
            self.last_used_from.clone_from(&other.last_used_from);
        }
        self.last_used_at = Ord::max(self.last_used_at, other.last_used_at);
        self.credits = Ord::max(self.credits, other.credits);
    }
}

/// Persistent key storage, with its audit log ([`EventStore`]).
///
/// Every method maps backend failures to [`StoreErrorKind::Unavailable`] (or another kind), never
/// to "no such key": a store that cannot answer must not make a valid key look invalid.
///
/// Every write that changes a key takes the [`Event`] that records it, and stores it in the same
/// transaction (or script) as the change, when the change is made and only then: a change
/// without its record, or a record without its change, cannot happen.
#[async_trait::async_trait]
pub trait KeyStore: EventStore + Send + Sync + fmt::Debug {
    /// Inserts `record`. When `max_per_owner` is set, first counts the owner's keys that are
    /// neither revoked nor expired at `now` and refuses with [`StoreErrorKind::LimitReached`] when
    /// the count has reached it; the check and the insert are atomic with respect to other
    /// creates for the same owner. `event` is stored with it.
    ///
    /// # Errors
    /// `LimitReached`, `Conflict` for a duplicate key id, `Unavailable`.
    async fn create(
        &self,
        record: &KeyRecord,
        max_per_owner: Option<u32>,
        now: OffsetDateTime,
        event: &Event,
    ) -> Result<(), StoreError>;

    /// Inserts every record of `records`, or none: what [`KeyStore::create`] does for one,
    /// for a batch. When `max_per_owner` is set, each owner's live keys at `now` plus the
    /// batch's keys for it must not exceed it, checked atomically with the insert as `create`
    /// does. Records are new keys (no usage, not revoked). `events` (one for each record) are
    /// stored with them.
    ///
    /// # Errors
    /// `LimitReached` (nothing inserted), `Conflict` when a key id exists already (nothing
    /// inserted), `Unavailable`.
    async fn create_many(
        &self,
        records: &[&KeyRecord],
        max_per_owner: Option<u32>,
        now: OffsetDateTime,
        events: &[Event],
    ) -> Result<(), StoreError>;

    /// The key with this id, if any. One indexed lookup.
    ///
    /// # Errors
    /// `Unavailable`, `Corrupt`.
    async fn get(&self, key_id: &KeyId) -> Result<Option<KeyRecord>, StoreError>;

    /// The engine's word that `key_id` (every key, for `None`) changed, here or on another
    /// instance: its cache dropped it. A store that reads from a replica reads it from the
    /// primary until the replica has caught up. A store wrapper passes it on. By default
    /// nothing.
    fn invalidated(&self, key_id: Option<&KeyId>) {
        let _ = key_id;
    }

    /// Up to `limit` keys that `filter` admits after `cursor`, by `(created_at, key_id)`
    /// ascending. A store that filters after reading (Redis, for environment and state) may
    /// answer fewer than `limit`, even none, with a `next_cursor`: the listing ends only where
    /// `next_cursor` is `None`.
    ///
    /// # Errors
    /// `Unavailable`, `Corrupt`.
    async fn list(
        &self,
        filter: &KeyFilter<'_>,
        cursor: Option<Cursor>,
        limit: u32,
    ) -> Result<Page, StoreError>;

    /// Writes the management fields of `record` (name, description, scopes, metadata,
    /// ip_allowlist, rate_limit, credits, is_active, deactivated_by, not_before, expires_at,
    /// rotated_to, updated_at) to the stored key with the same id, *if* that key is not revoked
    /// and its `updated_at` is still `expected`: an optimistic version check, atomic with the
    /// write, so that two writers never silently overwrite each other. Usage counters,
    /// `last_used_at` and `revoked_at` are left alone. `event` is stored when the write is.
    ///
    /// # Errors
    /// `NotFound`, `Stale` when the stored key is revoked or its `updated_at` is not `expected`,
    /// `Unavailable`.
    async fn update(
        &self,
        record: &KeyRecord,
        expected: OffsetDateTime,
        event: &Event,
    ) -> Result<(), StoreError>;

    /// Replaces the stored digest (lazy re-digest under a newer pepper version). Nothing else
    /// changes. `event` is stored with it.
    ///
    /// # Errors
    /// `NotFound`, `Unavailable`.
    async fn set_digest(
        &self,
        key_id: &KeyId,
        digest: &KeyDigest,
        event: &Event,
    ) -> Result<(), StoreError>;

    /// Soft-revokes: sets `revoked_at = at` (and `updated_at`) unless already set (the first
    /// time is kept), and, with `expected`, only if `updated_at` is still `expected`: the
    /// version check of `DELETE` with `If-Match`, atomic with the write. Returns the record as
    /// stored afterwards (unrevoked when the check failed); `None` when there is no such key.
    /// `event` is stored when this call revokes the key, and only then.
    ///
    /// # Errors
    /// `Unavailable`.
    async fn revoke(
        &self,
        key_id: &KeyId,
        at: OffsetDateTime,
        expected: Option<OffsetDateTime>,
        event: &Event,
    ) -> Result<Option<KeyRecord>, StoreError>;

    /// Applies usage deltas: adds requests, moves `last_used_at` forward (never back), and
    /// stores the credit counters (unknown ids are skipped); and adds `counts`, the usage
    /// analytics of the same flush, to what the store holds for each key, hour, outcome and tag
    /// set ([`EventStore::usage`] reads them). Several instances flush at once: both merge.
    ///
    /// # Errors
    /// `Unavailable`.
    async fn record_usage(
        &self,
        batch: &[UsageDelta],
        counts: &[UsageCount],
    ) -> Result<(), StoreError>;

    /// Whether the backend answers (for readiness probes).
    ///
    /// # Errors
    /// `Unavailable`.
    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Most events a read of the audit log may ask for.
pub const MAX_EVENT_PAGE: u32 = 100;

/// The audit log of a [`KeyStore`]: the events its writes stored, read newest first, and pruned.
#[async_trait::async_trait]
pub trait EventStore: Send + Sync {
    /// Up to `limit` events that `filter` admits, older than `cursor`, by `(at, id)`
    /// descending. A store that filters after reading may answer fewer than `limit`, even none,
    /// with a `next_cursor`: the listing ends only where `next_cursor` is `None`.
    ///
    /// # Errors
    /// `Unavailable`, `Corrupt`.
    async fn events(
        &self,
        filter: &EventFilter<'_>,
        cursor: Option<EventCursor>,
        limit: u32,
    ) -> Result<EventPage, StoreError>;

    /// Deletes up to `limit` events older than `before`, the oldest first, and says how many
    /// it deleted: retention, run in batches until it deletes fewer than `limit`. A store with
    /// a webhook outbox also deletes those events' deliveries and outbox rows, and the settled
    /// deliveries made before `before`.
    ///
    /// # Errors
    /// `Unavailable`.
    async fn prune_events(&self, before: OffsetDateTime, limit: u32) -> Result<u64, StoreError>;

    /// Stores `events` that record no change of a key (the notices: `key.expiring`,
    /// `key.credits_low`, `key.rate_limited`), with their webhook outbox rows where the store
    /// keeps an outbox. An event whose id the store holds already is skipped: notices derive
    /// their ids from what they are about ([`crate::audit::EventId::derived`]), so instances
    /// that notice the same thing store it once.
    ///
    /// # Errors
    /// `Unavailable`.
    async fn append(&self, events: &[Event]) -> Result<(), StoreError>;

    /// The usage counts `filter` names, summed over its keys for each hour, outcome and tag set,
    /// in no particular order.
    ///
    /// # Errors
    /// `Unavailable`, `Corrupt`.
    async fn usage(&self, filter: &UsageFilter<'_>) -> Result<Vec<UsageRow>, StoreError>;

    /// Deletes some usage counts of hours before `before` (up to `limit`, or the oldest hour's,
    /// as suits the store) and says how many: usage retention, run in rounds until one deletes
    /// none. A store that lets counts expire by themselves answers 0.
    ///
    /// # Errors
    /// `Unavailable`.
    async fn prune_usage(&self, before: OffsetDateTime, limit: u32) -> Result<u64, StoreError>;
}

/// Remembers nonces (or signatures) for a while, to reject replays.
#[async_trait::async_trait]
pub trait NonceStore: Send + Sync + fmt::Debug {
    /// Records `nonce` under `namespace` for `ttl` if it is not there yet. Returns `true` when it
    /// was fresh, `false` for a replay. Atomic.
    ///
    /// # Errors
    /// `Unavailable`: callers fail closed.
    async fn check_and_store(
        &self,
        namespace: &str,
        nonce: &str,
        ttl: Duration,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError>;
}

/// The answer of a rate limiter or credit ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Go ahead.
    Allowed,
    /// Refused; retry after this long (when known).
    Refused {
        /// Suggested wait.
        retry_after: Option<Duration>,
    },
}

/// Per-key rate limiting, keyed on the id of a *verified* key.
#[async_trait::async_trait]
pub trait RateLimiter: Send + Sync + fmt::Debug {
    /// Takes one request from `key_id`'s budget under `limit`, atomically.
    ///
    /// # Errors
    /// `Unavailable`: callers fail closed.
    async fn acquire(
        &self,
        key_id: &KeyId,
        limit: &RateLimit,
        now: OffsetDateTime,
    ) -> Result<Admission, StoreError>;

    /// [`RateLimiter::acquire`] when it needs no waiting: `Some` with its answer (the request
    /// taken from the budget when allowed), or `None`, having changed nothing, when it needs a
    /// backend. The engine then skips building a future for the request. By default `None`.
    fn try_acquire(
        &self,
        key_id: &KeyId,
        limit: &RateLimit,
        now: OffsetDateTime,
    ) -> Option<Result<Admission, StoreError>> {
        let _ = (key_id, limit, now);
        None
    }

    /// Gives back the request [`RateLimiter::try_acquire`] just allowed, when a later check
    /// could not be settled without waiting and the engine asks again with
    /// [`RateLimiter::acquire`]. A limiter that answers `try_acquire` must give back here, or
    /// that request counts twice. By default nothing.
    fn refund(&self, key_id: &KeyId, limit: &RateLimit) {
        let _ = (key_id, limit);
    }
}

/// A [`CreditLedger`]'s answer: the admission and, when allowed, the `(period, used)` to
/// record.
pub type Consumed = (Admission, Option<(u64, u64)>);

/// Usage credits, consumed by verified requests: one each, or the request's cost
/// ([`crate::VerifyContext::cost`]).
#[async_trait::async_trait]
pub trait CreditLedger: Send + Sync + fmt::Debug {
    /// Consumes `cost` credits (at least 1) of `account`'s allowance atomically, all or none: a
    /// request costing more than is left is refused. Returns the admission and, when
    /// allowed, `(period, used)` after the consumption, for the usage batch (a ledger whose
    /// count did not change in the store's sense, one spending a lease it holds, may say
    /// `None`).
    ///
    /// # Errors
    /// `Unavailable`: callers fail closed.
    async fn consume(
        &self,
        account: &CreditAccount,
        credits: &Credits,
        cost: u64,
        now: OffsetDateTime,
    ) -> Result<Consumed, StoreError>;

    /// [`CreditLedger::consume`] when it needs no waiting: `Some` with its answer, or `None`,
    /// having changed nothing, when it needs a backend. By default `None`.
    fn try_consume(
        &self,
        account: &CreditAccount,
        credits: &Credits,
        cost: u64,
        now: OffsetDateTime,
    ) -> Option<Result<Consumed, StoreError>> {
        let _ = (account, credits, cost, now);
        None
    }
}

/// What a [`CreditLedger`] counts a key's credits under: the key its rotation chain started
/// with, when the chain's periods start, and the usage the store last recorded (a ledger that
/// lost its counters starts again from there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreditAccount {
    /// The rotation chain's first key ([`KeyRecord::quota_key`]).
    pub key: KeyId,
    /// Where credit periods start ([`KeyRecord::quota_since`]).
    pub since: OffsetDateTime,
    /// The credit period the store last recorded.
    pub stored_period: u64,
    /// Credits used in that period, as the store last recorded.
    pub stored_used: u64,
}

impl CreditAccount {
    /// The account of `record`.
    #[must_use]
    pub fn of(record: &KeyRecord) -> Self {
        Self {
            key: *record.quota_key(),
            since: record.quota_since(),
            stored_period: record.usage.credits_period,
            stored_used: record.usage.credits_used,
        }
    }
}

/// The credit period `now` falls in for a key created at `created_at`: what a
/// [`CreditLedger`] counts credits under.
#[must_use]
pub fn credit_period(credits: &Credits, created_at: OffsetDateTime, now: OffsetDateTime) -> u64 {
    match credits.refill_seconds {
        Some(r) if r > 0 => {
            let elapsed = (now - created_at).whole_seconds().max(0).unsigned_abs();
            elapsed / r
        }
        _ => 0,
    }
}

/// How long until the next credit period starts (a [`CreditLedger`]'s `Retry-After`), if
/// credits refill.
#[must_use]
pub fn credit_refill_in(
    credits: &Credits,
    created_at: OffsetDateTime,
    now: OffsetDateTime,
) -> Option<Duration> {
    let r = credits.refill_seconds.filter(|r| *r > 0)?;
    let elapsed = (now - created_at).whole_seconds().max(0).unsigned_abs();
    Some(Duration::from_secs(r - elapsed % r))
}

/// Carries cache invalidations to every instance (for example over Redis pub/sub).
#[async_trait::async_trait]
pub trait InvalidationBus: Send + Sync + fmt::Debug {
    /// Tells every instance to drop `key_id` from its cache.
    ///
    /// # Errors
    /// `Unavailable` when the message could not be sent (entries still expire by TTL).
    async fn publish(&self, key_id: &KeyId) -> Result<(), StoreError>;
}

/// Failed verifications per client address, shared by every instance (for example in Redis),
/// for [`crate::throttle`]. Without one, each instance counts alone.
///
/// The engine asks it only on cache misses and after failures, and remembers locally when an
/// address is over its budget, so a flood costs one shared call per address and window, not one
/// per request. Errors fail *open* (the local counters still apply): throttling is a defence in
/// front of the store, not an authority.
#[async_trait::async_trait]
pub trait FailureLedger: Send + Sync + fmt::Debug {
    /// Counts one failure for `bucket` (an address) in its current window, opening a window of
    /// `window` when there is none. Returns the failures in the window and the time it has left.
    ///
    /// # Errors
    /// `Unavailable`.
    async fn add_failure(
        &self,
        bucket: &str,
        window: Duration,
    ) -> Result<(u32, Duration), StoreError>;

    /// The failures of `bucket` in its current window and the time it has left; `None` when it
    /// has no open window.
    ///
    /// # Errors
    /// `Unavailable`.
    async fn failures(&self, bucket: &str) -> Result<Option<(u32, Duration)>, StoreError>;
}

/// Downscopes a key at verify time from its owner's current rights, so a key never outlives
/// them. Called with the owner and the key's granted scopes; returns the effective scopes.
#[async_trait::async_trait]
pub trait ScopeAuthority: Send + Sync + fmt::Debug {
    /// The scopes the key may use now; typically `key_scopes.intersect(&owner_rights)`.
    ///
    /// # Errors
    /// A [`StoreError`] when the owner's rights cannot be read (the request then
    /// fails closed with 503).
    async fn effective_scopes(
        &self,
        owner_id: &str,
        key_scopes: &ScopeSet,
    ) -> Result<ScopeSet, StoreError>;
}

#[cfg(test)]
mod cursor_tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// Cursors round-trip, match the documented pattern, and what the pattern admits decodes.
    #[test]
    fn cursors_and_their_pattern() {
        let re = regex::Regex::new(CURSOR_PATTERN).unwrap();
        let c = Cursor {
            created_at: crate::clock::from_unix_micros(1_732_876_543_123_456).unwrap(),
            key_id: "AbCdEf012345".parse().unwrap(),
        };
        let text = c.encode();
        assert_eq!(text, "1732876543123456.AbCdEf012345");
        assert!(re.is_match(&text));
        assert_eq!(Cursor::decode(&text).unwrap(), c);
        for admitted in ["0.AAAAAAAAAAAA", "999999999999999999.zzzzzzzzzzzz"] {
            assert!(re.is_match(admitted));
            assert!(Cursor::decode(admitted).is_ok(), "{admitted}");
        }
        for refused in [
            "-1.AbCdEf012345",
            "1.AbCdEf01234",
            "x.AbCdEf012345",
            "1",
            "1.",
            ".a",
        ] {
            assert!(!re.is_match(refused), "{refused}");
            assert!(Cursor::decode(refused).is_err(), "{refused}");
        }
    }
}
