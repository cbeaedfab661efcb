//! The verification engine.
//!
//! [`Keyward::verify`] runs, in this order: parse → checksum → env → cache by key id → store →
//! constant-time digest → state (revoked, inactive, expired, not yet valid) → IP allowlist →
//! scopes → rate limit → usage credits → last-used recording → [`Principal`]. A key's state is
//! only told after its secret was proven: a wrong secret on a revoked key is "wrong secret".
//! Side effects (limits, credits, usage) happen only once everything before them passed.

use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use time::OffsetDateTime;

use crate::analytics::Outcome;
use crate::cache::{CacheConfig, Entry, KeyCache};
use crate::clock::{Clock, SystemClock};
use crate::crypto::EncryptionKeyring;
use crate::digest::{DigestAlgorithm, DigestMatch, Keyring};
use crate::key::{KeyId, ParsedKey};
use crate::model::{KeyState, LastUsedStrategy, Policy, Principal};
use crate::scope::ScopeRequirement;
use crate::store::ScopeAuthority;
use crate::store::{
    CreditLedger, FailureLedger, InvalidationBus, KeyStore, NonceStore, RateLimiter, UsageDelta,
};
use crate::throttle::{FailureThrottle, Throttle};

mod builder;
mod cache;
mod errors;
mod limits;
mod signed;
mod usage;

pub use builder::KeywardBuilder;

/// A random source given to [`KeywardBuilder::rng`], behind a lock: keys are minted rarely.
pub(crate) struct KeyRng(Mutex<Box<RngFn>>);

type RngFn = dyn FnMut(&mut [u8]) -> Result<(), crate::key::RngError> + Send;

impl fmt::Debug for KeyRng {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyRng(..)")
    }
}

/// The locked source as `rand_core` sees it, for [`crate::key::KeyFormat::generate_with`].
struct LockedRng<'a>(std::sync::MutexGuard<'a, Box<RngFn>>);

impl rand_core::TryRngCore for LockedRng<'_> {
    type Error = crate::key::RngError;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut b = [0u8; 4];
        (self.0)(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut b = [0u8; 8];
        (self.0)(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        (self.0)(dst)
    }
}

/// Only `TryCryptoRng` sources are ever boxed ([`KeywardBuilder::rng`]).
impl rand_core::TryCryptoRng for LockedRng<'_> {}
pub use errors::{BuildError, InvalidReason, VerifyError};

/// Says once per process, at warn, why IP-allowlisted keys fail: the application passes no
/// client address.
fn warn_no_client_address() {
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        tracing::warn!(
            "a key with an IP allowlist was refused because the request carries no client \
             address: pass VerifyContext::client_ip (axum: serve with \
             into_make_service_with_connect_info::<SocketAddr>(); behind a proxy, set the \
             client-address function)"
        );
    }
}

/// Outages that every request, a made-up key's too, runs into: logged once a second with a
/// count ([`crate::clock::SampledLog`]), not once a request.
static SHARED_FAILURES_DOWN: crate::clock::SampledLog = crate::clock::SampledLog::new();
static STORE_DOWN: crate::clock::SampledLog = crate::clock::SampledLog::new();

/// Facts about the request that verification needs beyond the key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyContext<'a> {
    /// The caller's address, as the application trusts it (peer address or a vetted
    /// forwarded header). Keys with an allowlist fail without one.
    pub client_ip: Option<IpAddr>,
    /// Tags the verification is counted under in the key's usage analytics
    /// ([`crate::analytics`]): the route, a region, a plan. None by default.
    pub tags: crate::analytics::Tags,
    /// The request's `User-Agent` header value: recorded, cleaned and bounded, with the
    /// client address next to the key's `last_used_at` ([`crate::KeyRecord::last_used_from`]).
    pub user_agent: Option<&'a [u8]>,
    /// The credits this request spends of a key with credits; `None`: one. `Some(0)` spends
    /// none and checks none.
    pub cost: Option<u64>,
}

impl<'a> VerifyContext<'a> {
    /// The address of a client the application expected to learn the address of and could
    /// not: a trusted proxy sent no usable client-address header. It is the unspecified
    /// address (`::`), which no packet comes from: an IP allowlist never admits it (not even
    /// `::/0`), and failures from all such clients are throttled together, in a bucket of
    /// their own (review finding 6).
    pub const UNKNOWN_CLIENT: IpAddr = IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED);

    /// A context with a client address.
    #[must_use]
    pub fn with_ip(ip: IpAddr) -> Self {
        Self {
            client_ip: Some(ip),
            tags: crate::analytics::Tags::NONE,
            user_agent: None,
            cost: None,
        }
    }

    /// This context with `tags` for the usage analytics.
    #[must_use]
    pub fn tagged(mut self, tags: crate::analytics::Tags) -> Self {
        self.tags = tags;
        self
    }

    /// This context with the request's `User-Agent` header value.
    #[must_use]
    pub fn with_user_agent(mut self, user_agent: &'a [u8]) -> Self {
        self.user_agent = Some(user_agent);
        self
    }

    /// This context for a request that spends `cost` credits (of a key with credits).
    #[must_use]
    pub fn with_cost(mut self, cost: u64) -> Self {
        self.cost = Some(cost);
        self
    }

    /// The credits this request spends.
    pub(crate) fn credits_cost(&self) -> u64 {
        self.cost.unwrap_or(1)
    }

    /// Where the request came from, as a key's last use records it: the client address (not
    /// [`Self::UNKNOWN_CLIENT`]) and the user agent, cleaned and bounded. `None` when neither
    /// is known.
    pub(crate) fn origin(&self) -> Option<crate::model::Origin> {
        let ip = self.client_ip.filter(|ip| *ip != Self::UNKNOWN_CLIENT);
        let origin = crate::model::Origin::new(ip, self.user_agent, None);
        (origin.client_addr.is_some() || origin.user_agent.is_some()).then_some(origin)
    }
}

pub(crate) struct Inner {
    pub(crate) policy: Policy,
    pub(crate) keyring: Keyring,
    pub(crate) store: Arc<dyn KeyStore>,
    pub(crate) cache: KeyCache,
    /// Failed verifications per client address.
    pub(crate) throttle: Throttle,
    /// The instances' shared count of them, if any.
    failures: Option<Arc<dyn FailureLedger>>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) limiter: Arc<dyn RateLimiter>,
    pub(crate) credits: Arc<dyn CreditLedger>,
    pub(crate) nonces: Arc<dyn NonceStore>,
    pub(crate) authority: Option<Arc<dyn ScopeAuthority>>,
    pub(crate) bus: Option<Arc<dyn InvalidationBus>>,
    pub(crate) encryption: Option<EncryptionKeyring>,
    pub(crate) signing: crate::sigv4::SigningOptions,
    /// Request counters, last-used times and credit states waiting for a flush.
    pub(crate) usage: usage::UsageBatcher,
    /// The share of a key's credits left at which `key.credits_low` is noticed (percent).
    pub(crate) credits_notice: Option<u8>,
    /// Where keys are minted from, when not the OS CSPRNG.
    rng: Option<KeyRng>,
    /// Invalidations the bus refused, to publish again.
    unpublished: Mutex<std::collections::HashSet<KeyId>>,
}

/// The keyward handle: verification engine and management service in one cheaply cloneable
/// value. Build it with [`Keyward::builder`].
#[derive(Clone)]
pub struct Keyward(pub(crate) Arc<Inner>);

impl fmt::Debug for Keyward {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyward")
            .field("format", &self.0.policy.format)
            .field("store", &self.0.store)
            .field("pepper_version", &self.0.keyring.current_version())
            .finish_non_exhaustive()
    }
}

/// The outcome of looking a key up, before its secret is checked.
pub(crate) enum Lookup {
    Found(Arc<Entry>),
    Unknown,
}

impl Keyward {
    /// Starts a builder over `store`, digesting with `keyring`.
    #[must_use]
    pub fn builder(store: Arc<dyn KeyStore>, keyring: Keyring) -> KeywardBuilder {
        KeywardBuilder {
            store,
            keyring,
            policy: Policy::default(),
            cache: CacheConfig::default(),
            throttle: FailureThrottle::default(),
            failures: None,
            clock: Arc::new(SystemClock),
            limiter: None,
            credits: None,
            nonces: None,
            authority: None,
            bus: None,
            encryption: None,
            signing: crate::sigv4::SigningOptions::default(),
            count_requests: true,
            credits_notice: None,
            rng: None,
        }
    }

    /// The management policy in force.
    #[must_use]
    pub fn policy(&self) -> &Policy {
        &self.0.policy
    }

    /// A new key of the policy's format, from the builder's random source or the OS CSPRNG.
    pub(crate) fn generate_key(&self) -> Result<crate::key::GeneratedKey, crate::key::RngError> {
        let format = &self.0.policy.format;
        match &self.0.rng {
            None => format.generate(),
            Some(KeyRng(lock)) => {
                let guard = lock
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                format.generate_with(&mut LockedRng(guard))
            }
        }
    }

    /// The keyring sealing signing secrets, when signing is enabled.
    pub(crate) fn encryption(&self) -> Option<&EncryptionKeyring> {
        self.0.encryption.as_ref()
    }

    /// How signed requests are checked (adapters read the body bounds from here).
    #[must_use]
    pub fn signing_config(&self) -> &crate::sigv4::SigningOptions {
        &self.0.signing
    }

    /// Whether signing keys can be created and verified (an encryption keyring is set).
    #[must_use]
    pub fn signing_enabled(&self) -> bool {
        self.0.encryption.is_some()
    }

    /// The store behind the engine.
    #[must_use]
    pub fn store(&self) -> &Arc<dyn KeyStore> {
        &self.0.store
    }

    /// The clock.
    #[must_use]
    pub fn now(&self) -> OffsetDateTime {
        self.0.clock.now()
    }

    /// Verifies a presented bearer key against `required`.
    ///
    /// # Errors
    /// A [`VerifyError`]; map it to HTTP with [`VerifyError::code`].
    pub async fn verify(
        &self,
        presented: &str,
        required: &ScopeRequirement,
        ctx: &VerifyContext<'_>,
    ) -> Result<Principal, VerifyError> {
        let parsed = self.parse_presented(presented)?;
        let now_us = self.0.clock.coarse_micros();
        let secret = parsed.secret.expose_secret();
        // `lookup` inlined: its future nested in this one costs a cache hit 85 instructions.
        let entry = match self.0.cache.get(&parsed.key_id, now_us) {
            Some(e) => e,
            None => match Box::pin(self.load_uncached(&parsed.key_id, now_us, ctx)).await? {
                Lookup::Found(e) => e,
                Lookup::Unknown => {
                    self.0.keyring.burn(&parsed.key_id, secret);
                    self.0.throttle.failed(ctx.client_ip, None, now_us);
                    if self.0.failures.is_some() {
                        Box::pin(self.share_failure(ctx, now_us)).await;
                    }
                    return Err(VerifyError::Invalid(InvalidReason::Unknown));
                }
            },
        };
        match self.check_secret(&parsed, &entry, ctx, now_us) {
            Ok(true) => {
                let owner = entry.principal.owner_id();
                Box::pin(self.redigest(&parsed.key_id, owner, secret)).await;
            }
            Ok(false) => {}
            Err(e) => {
                self.note_refusal(&entry, &e, ctx, now_us);
                // Only with a shared ledger: the wrong-secret path must cost what the right one
                // does, and a boxed future is an allocation.
                if self.0.failures.is_some()
                    && matches!(e, VerifyError::Invalid(InvalidReason::WrongSecret))
                {
                    Box::pin(self.share_failure(ctx, now_us)).await;
                }
                return Err(e);
            }
        }
        if entry.is_signing() {
            let e = VerifyError::Invalid(InvalidReason::SigningOnly);
            self.note_refusal(&entry, &e, ctx, now_us);
            return Err(e);
        }
        if self.admits_without_waiting()
            && let Some(admitted) = self.admit_now(&entry, required, ctx, now_us)
        {
            return admitted;
        }
        Box::pin(self.admit(&entry, required, ctx, now_us, None, None)).await
    }

    /// The part of [`Keyward::verify`] that needs no waiting, for adapters that can then skip
    /// building a future: `Some` with exactly what `verify` would answer, or `None` when the
    /// answer needs a backend (the key is not cached, it has a rate limit or credits, a scope
    /// authority or immediate last-used writes are configured, or its digest is due for the
    /// current pepper); then call [`Keyward::verify`].
    ///
    /// Junk, a wrong secret on a cached key, and a cached valid key without backends are all
    /// answered here, in the same order as `verify`.
    #[must_use]
    pub fn verify_cached(
        &self,
        presented: &str,
        required: &ScopeRequirement,
        ctx: &VerifyContext<'_>,
    ) -> Option<Result<Principal, VerifyError>> {
        let parsed = match self.parse_presented(presented) {
            Ok(p) => p,
            Err(e) => return Some(Err(e)),
        };
        let now_us = self.0.clock.coarse_micros();
        // Counted only when answered here: on `None`, `verify` counts its own lookup.
        let entry = self.0.cache.peek(&parsed.key_id, now_us)?;
        if !self.admits_without_waiting() {
            return None;
        }
        let result = match self.check_secret(&parsed, &entry, ctx, now_us) {
            Err(e) => {
                self.note_refusal(&entry, &e, ctx, now_us);
                Err(e)
            }
            // Due for the current pepper: `verify` re-digests.
            Ok(true) => return None,
            Ok(false) if entry.is_signing() => {
                let e = VerifyError::Invalid(InvalidReason::SigningOnly);
                self.note_refusal(&entry, &e, ctx, now_us);
                Err(e)
            }
            Ok(false) => self.admit_now(&entry, required, ctx, now_us)?,
        };
        self.0.cache.count_hit();
        Some(result)
    }

    /// The presented string as a key of this deployment's format.
    #[inline]
    fn parse_presented<'a>(&self, presented: &'a str) -> Result<ParsedKey<'a>, VerifyError> {
        self.0
            .policy
            .format
            .parse(presented)
            .map_err(|e| VerifyError::Invalid(InvalidReason::Parse(e)))
    }

    /// The constant-time digest check of the presented secret against `entry`'s record.
    /// `Ok(true)` when it matched under an old pepper and should be redone. A mismatch counts
    /// against the caller's address.
    #[inline]
    fn check_secret(
        &self,
        parsed: &ParsedKey<'_>,
        entry: &Entry,
        ctx: &VerifyContext<'_>,
        now_us: i64,
    ) -> Result<bool, VerifyError> {
        let secret = parsed.secret.expose_secret();
        let slow = entry.digest.algorithm == DigestAlgorithm::Argon2id;
        if slow {
            // A deliberately slow digest is the lever to pin a core: an address or a key id
            // over its failures waits before Argon2 runs again (a key's holder too, for the
            // window: the price of the lever, docs/security.md).
            let wait = self
                .0
                .throttle
                .refused(ctx.client_ip, now_us)
                .or_else(|| self.0.throttle.key_refused(&parsed.key_id, now_us));
            if let Some(wait) = wait {
                return Err(VerifyError::Throttled {
                    retry_after: Some(wait),
                });
            }
        }
        match self.0.keyring.verify(&parsed.key_id, secret, &entry.digest) {
            DigestMatch::Mismatch => {
                // Per key id only where it is consulted: before a slow digest.
                self.0
                    .throttle
                    .failed(ctx.client_ip, slow.then_some(&parsed.key_id), now_us);
                Err(VerifyError::Invalid(InvalidReason::WrongSecret))
            }
            // The digest covers key id and secret only: the head presented must also be the
            // one the key was issued under (review finding 3).
            DigestMatch::Match { .. }
                if entry.env() != parsed.env || *entry.prefix != *parsed.prefix =>
            {
                Err(VerifyError::Invalid(InvalidReason::OtherDeployment))
            }
            DigestMatch::Match { obsolete } => Ok(obsolete),
        }
    }

    /// Whether `entry`'s key was issued under this deployment's prefix and environment: what a
    /// signed request, which presents no head, is held to.
    pub(crate) fn issued_here(&self, entry: &Entry) -> bool {
        let format = &self.0.policy.format;
        entry.env() == format.env() && *entry.prefix == *format.prefix()
    }

    /// Cache, then store. Store failures are `Unavailable`, never "unknown". The store read is
    /// boxed, so that the future of every verification (which adapters keep in theirs) holds
    /// only what a cache hit needs.
    pub(crate) async fn lookup(
        &self,
        key_id: &KeyId,
        now_us: i64,
        ctx: &VerifyContext<'_>,
    ) -> Result<Lookup, VerifyError> {
        match self.0.cache.get(key_id, now_us) {
            Some(e) => Ok(Lookup::Found(e)),
            None => Box::pin(self.load_uncached(key_id, now_us, ctx)).await,
        }
    }

    /// Counts a failed verification (an unknown id, a wrong secret or signature) against the
    /// caller's address.
    pub(crate) async fn count_failure(&self, ctx: &VerifyContext<'_>, now_us: i64) {
        self.0.throttle.failed(ctx.client_ip, None, now_us);
        self.share_failure(ctx, now_us).await;
    }

    /// Adds a failure to the instances' shared count, if there is one, and takes its verdict.
    async fn share_failure(&self, ctx: &VerifyContext<'_>, now_us: i64) {
        let (Some(ledger), Some(bucket)) = (
            &self.0.failures,
            self.0.throttle.shared_bucket(ctx.client_ip),
        ) else {
            return;
        };
        match ledger.add_failure(&bucket, self.0.throttle.window()).await {
            Ok((failures, left)) => {
                self.0
                    .throttle
                    .apply_shared(ctx.client_ip, failures, left, now_us);
            }
            Err(e) => {
                if let Some(times) = SHARED_FAILURES_DOWN.note(now_us) {
                    tracing::warn!(error = %e, times, "shared failure count unavailable; counting locally");
                }
            }
        }
    }

    /// Whether the instances' shared count refuses `ctx`'s address (asked on cache misses, and
    /// only while this instance does not refuse it already).
    async fn shared_refusal(&self, ctx: &VerifyContext<'_>, now_us: i64) -> Option<Duration> {
        let ledger = self.0.failures.as_ref()?;
        let bucket = self.0.throttle.shared_bucket(ctx.client_ip)?;
        match ledger.failures(&bucket).await {
            Ok(Some((failures, left))) => {
                self.0
                    .throttle
                    .apply_shared(ctx.client_ip, failures, left, now_us)
            }
            Ok(None) => None,
            Err(e) => {
                if let Some(times) = SHARED_FAILURES_DOWN.note(now_us) {
                    tracing::warn!(error = %e, times, "shared failure count unavailable; counting locally");
                }
                None
            }
        }
    }

    /// A cache miss: an address over its failures is refused, an id the store did not know a
    /// moment ago is unknown again, and only then is the store asked. Neither refusal reads the
    /// store or computes a digest.
    async fn load_uncached(
        &self,
        key_id: &KeyId,
        now_us: i64,
        ctx: &VerifyContext<'_>,
    ) -> Result<Lookup, VerifyError> {
        if !self.0.cache.knows(key_id) {
            let wait = match self.0.throttle.refused(ctx.client_ip, now_us) {
                Some(wait) => Some(wait),
                None => self.shared_refusal(ctx, now_us).await,
            };
            if let Some(wait) = wait {
                return Err(VerifyError::Throttled {
                    retry_after: Some(wait),
                });
            }
        }
        if self.0.cache.known_unknown(key_id, now_us) {
            return Ok(Lookup::Unknown);
        }
        self.load(key_id, now_us).await
    }

    /// The store read behind a cache miss; fills the cache (with the record, or with the fact
    /// that there is none).
    async fn load(&self, key_id: &KeyId, now_us: i64) -> Result<Lookup, VerifyError> {
        let epoch = self.0.cache.epoch();
        match self.0.store.get(key_id).await {
            Ok(Some(record)) => {
                let entry = Arc::new(Entry::new(
                    &record,
                    now_us,
                    self.0.cache.ttl(),
                    &self.0.cache.interner,
                ));
                self.0.cache.fill(*key_id, Arc::clone(&entry), epoch);
                Ok(Lookup::Found(entry))
            }
            Ok(None) => {
                self.0.cache.fill_unknown(*key_id, now_us, epoch);
                Ok(Lookup::Unknown)
            }
            Err(e) => {
                if let Some(times) = STORE_DOWN.note(now_us) {
                    tracing::warn!(error = %e, times, "key store unavailable during verification");
                }
                Err(VerifyError::Unavailable(e))
            }
        }
    }

    /// Whether this engine may admit a bearer key without a backend: no scope authority, no immediate
    /// last-used write. Then [`Keyward::admit_now`] tries all of [`Keyward::admit`]'s work
    /// without building its future (it needs the limiter and the ledger to answer at once).
    fn admits_without_waiting(&self) -> bool {
        self.0.authority.is_none() && self.0.policy.last_used != LastUsedStrategy::Immediate
    }

    /// State, then the IP allowlist: the checks before scopes, none of which waits.
    fn screen(entry: &Entry, ctx: &VerifyContext<'_>, now_us: i64) -> Result<(), VerifyError> {
        match entry.state(now_us) {
            KeyState::Active => {}
            KeyState::Revoked => return Err(VerifyError::Invalid(InvalidReason::Revoked)),
            KeyState::Inactive => return Err(VerifyError::Invalid(InvalidReason::Inactive)),
            KeyState::Expired => return Err(VerifyError::Invalid(InvalidReason::Expired)),
            KeyState::NotYetValid => return Err(VerifyError::Invalid(InvalidReason::NotYetValid)),
        }
        let allowlist = entry.ip_allowlist();
        if !allowlist.is_empty() {
            let Some(ip) = ctx.client_ip.filter(|ip| !ip.is_unspecified()) else {
                if ctx.client_ip.is_none() {
                    warn_no_client_address();
                }
                return Err(VerifyError::IpUnknown);
            };
            if !allowlist.iter().any(|net| net.contains(ip)) {
                return Err(VerifyError::IpDenied);
            }
        }
        Ok(())
    }

    /// Counts a refusal of a found key in its usage analytics ([`crate::analytics::Outcome`]).
    #[cold]
    pub(crate) fn note_refusal(
        &self,
        entry: &Arc<Entry>,
        error: &VerifyError,
        ctx: &VerifyContext<'_>,
        now_us: i64,
    ) {
        if let Some(outcome) = error.outcome() {
            self.0
                .usage
                .count_outcome(entry, outcome, &ctx.tags, now_us);
        }
    }

    /// [`Keyward::admit`] for a key that [`Keyward::admits_without_waiting`]: `None`, having
    /// changed nothing, when its rate limit or credits need a backend.
    fn admit_now(
        &self,
        entry: &Arc<Entry>,
        required: &ScopeRequirement,
        ctx: &VerifyContext<'_>,
        now_us: i64,
    ) -> Option<Result<Principal, VerifyError>> {
        let checked = Self::screen(entry, ctx, now_us).and_then(|()| {
            required
                .check(entry.principal.scopes())
                .map_err(|missing| VerifyError::ScopeDenied { missing })
        });
        let (precise, credits) = match checked {
            Ok(()) if entry.rate_limit().is_none() && entry.credits().is_none() => (None, None),
            Ok(()) => {
                let now = self.0.clock.now();
                match self.limits_now(entry, ctx, now)? {
                    Ok(credits) => (Some(now), credits),
                    Err(e) => {
                        self.note_refusal(entry, &e, ctx, now_us);
                        return Some(Err(e));
                    }
                }
            }
            Err(e) => {
                self.note_refusal(entry, &e, ctx, now_us);
                return Some(Err(e));
            }
        };
        self.record_batched_use(entry, now_us, precise, credits, ctx);
        Some(Ok(entry.principal.clone()))
    }

    /// Everything after the secret (or signature) was proven: state, IP, scopes, replay,
    /// limits, credits, usage. Side effects only once the checks before them passed; a
    /// refusal is counted in the key's usage analytics.
    ///
    /// State is judged at `now_us` (which may be the coarse clock); the replay store, the rate
    /// limiter and the credit ledger get `precise`, or a fresh [`Clock::now`] when that is
    /// `None` and the key needs one.
    pub(crate) async fn admit(
        &self,
        entry: &Arc<Entry>,
        required: &ScopeRequirement,
        ctx: &VerifyContext<'_>,
        now_us: i64,
        precise: Option<OffsetDateTime>,
        nonce: Option<(&str, Duration)>,
    ) -> Result<Principal, VerifyError> {
        let admitted = self
            .admit_checked(entry, required, ctx, now_us, precise, nonce)
            .await;
        if let Err(e) = &admitted {
            self.note_refusal(entry, e, ctx, now_us);
        }
        admitted
    }

    async fn admit_checked(
        &self,
        entry: &Arc<Entry>,
        required: &ScopeRequirement,
        ctx: &VerifyContext<'_>,
        now_us: i64,
        precise: Option<OffsetDateTime>,
        nonce: Option<(&str, Duration)>,
    ) -> Result<Principal, VerifyError> {
        Self::screen(entry, ctx, now_us)?;
        let principal = match &self.0.authority {
            None => entry.principal.clone(),
            Some(authority) => {
                let effective = authority
                    .effective_scopes(entry.principal.owner_id(), entry.scopes())
                    .await
                    .map_err(VerifyError::Unavailable)?;
                // The authority may only narrow what the key was granted.
                entry
                    .principal
                    .with_scopes(entry.scopes().intersect(&effective))
            }
        };
        required
            .check(principal.scopes())
            .map_err(|missing| VerifyError::ScopeDenied { missing })?;
        let needs_precise =
            nonce.is_some() || entry.rate_limit().is_some() || entry.credits().is_some();
        let precise = precise.or_else(|| needs_precise.then(|| self.0.clock.now()));
        let now = || precise.unwrap_or_else(|| self.0.clock.now());
        if let Some((value, ttl)) = nonce {
            let fresh = self
                .0
                .nonces
                .check_and_store(entry.key_id().as_str(), value, ttl, now())
                .await
                .map_err(|e| match e.kind() {
                    // This key used up its share of the replay state: it waits, others don't.
                    crate::store::StoreErrorKind::LimitReached => VerifyError::RateLimited {
                        retry_after: Some(ttl),
                    },
                    _ => VerifyError::Unavailable(e),
                })?;
            if !fresh {
                return Err(VerifyError::SignatureReplayed);
            }
        }
        let credits_state = self.limits(entry, ctx, now()).await?;
        if self.0.policy.last_used == LastUsedStrategy::Immediate {
            // The time (and credit state) now; the request is counted as batched ones are.
            let delta = UsageDelta {
                key_id: entry.key_id(),
                last_used_at: Some(now()),
                last_used_from: ctx.origin(),
                requests: 0,
                credits: credits_state,
            };
            if let Err(e) = self
                .0
                .store
                .record_usage(std::slice::from_ref(&delta), &[])
                .await
            {
                tracing::warn!(error = %e, "immediate last-used write failed; queued instead");
                self.0.usage.queue(delta);
            }
            self.0
                .usage
                .count_outcome(entry, Outcome::Valid, &ctx.tags, now_us);
        } else {
            self.record_batched_use(entry, now_us, precise, credits_state, ctx);
        }
        Ok(principal)
    }

    async fn redigest(&self, key_id: &KeyId, owner_id: &str, secret: &str) {
        let digest = self.0.keyring.digest(key_id, secret);
        let event = crate::audit::Event::about(
            crate::audit::Action::KeyRedigested,
            &crate::Actor::system(),
            owner_id,
            *key_id,
            crate::clock::micros(self.now()),
        );
        let written = match event {
            Ok(event) => self.0.store.set_digest(key_id, &digest, &event).await,
            Err(e) => Err(crate::store::StoreError::new(
                crate::store::StoreErrorKind::Other,
                e.to_string(),
            )),
        };
        match written {
            Ok(()) => {
                tracing::info!(key_id = %key_id, version = digest.pepper_version, "key re-digested under the current pepper");
                self.0.cache.invalidate(key_id);
            }
            Err(e) => {
                tracing::warn!(key_id = %key_id, error = %e, "lazy re-digest failed; will retry on next use")
            }
        }
    }
}
