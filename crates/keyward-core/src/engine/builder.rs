//! [`KeywardBuilder`]: the store and keyring, and in-process defaults for everything else.

use std::sync::{Arc, Mutex};

use crate::cache::{CacheConfig, KeyCache};
use crate::clock::Clock;
use crate::crypto::EncryptionKeyring;
use crate::digest::Keyring;
use crate::memory::{MemoryCreditLedger, MemoryNonceStore, MemoryRateLimiter};
use crate::model::Policy;
use crate::store::ScopeAuthority;
use crate::store::{
    CreditLedger, FailureLedger, InvalidationBus, KeyStore, NonceStore, RateLimiter,
};
use crate::throttle::{FailureThrottle, Throttle};

use super::*;

/// Builds a [`Keyward`]. Only the store and the keyring are required; everything else has an
/// in-process default.
#[derive(Debug)]
pub struct KeywardBuilder {
    pub(super) store: Arc<dyn KeyStore>,
    pub(super) keyring: Keyring,
    pub(super) policy: Policy,
    pub(super) cache: CacheConfig,
    pub(super) throttle: FailureThrottle,
    pub(super) failures: Option<Arc<dyn FailureLedger>>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) limiter: Option<Arc<dyn RateLimiter>>,
    pub(super) credits: Option<Arc<dyn CreditLedger>>,
    pub(super) nonces: Option<Arc<dyn NonceStore>>,
    pub(super) authority: Option<Arc<dyn ScopeAuthority>>,
    pub(super) bus: Option<Arc<dyn InvalidationBus>>,
    pub(super) encryption: Option<EncryptionKeyring>,
    pub(super) signing: crate::sigv4::SigningOptions,
    pub(super) count_requests: bool,
    pub(super) credits_notice: Option<u8>,
    pub(super) rng: Option<super::KeyRng>,
}

impl KeywardBuilder {
    /// Management policy and key format.
    #[must_use]
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// Cache size and TTL.
    #[must_use]
    pub fn cache(mut self, cache: CacheConfig) -> Self {
        self.cache = cache;
        self
    }

    /// The clock (tests use [`crate::clock::ManualClock`]).
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The rate limiter (default: in memory, per process).
    #[must_use]
    pub fn rate_limiter(mut self, limiter: Arc<dyn RateLimiter>) -> Self {
        self.limiter = Some(limiter);
        self
    }

    /// The credit ledger (default: in memory, per process).
    #[must_use]
    pub fn credit_ledger(mut self, ledger: Arc<dyn CreditLedger>) -> Self {
        self.credits = Some(ledger);
        self
    }

    /// The nonce store for signed requests (default: in memory, per process).
    #[must_use]
    pub fn nonce_store(mut self, nonces: Arc<dyn NonceStore>) -> Self {
        self.nonces = Some(nonces);
        self
    }

    /// Downscopes keys at verify time from their owner's rights.
    #[must_use]
    pub fn scope_authority(mut self, authority: Arc<dyn ScopeAuthority>) -> Self {
        self.authority = Some(authority);
        self
    }

    /// Carries cache invalidations to other instances.
    #[must_use]
    pub fn invalidation_bus(mut self, bus: Arc<dyn InvalidationBus>) -> Self {
        self.bus = Some(bus);
        self
    }

    /// Enables signing keys: their secret is sealed under this keyring.
    #[must_use]
    pub fn encryption(mut self, keyring: EncryptionKeyring) -> Self {
        self.encryption = Some(keyring);
        self
    }

    /// SigV4 region, service, skew and body bounds for signed requests.
    #[must_use]
    pub fn signing(mut self, config: crate::sigv4::SigningOptions) -> Self {
        self.signing = config;
        self
    }

    /// Failure throttling by client address (default: [`FailureThrottle::default`];
    /// [`FailureThrottle::off`] turns it off).
    #[must_use]
    pub fn failure_throttle(mut self, throttle: FailureThrottle) -> Self {
        self.throttle = throttle;
        self
    }

    /// Shares the failure counts of [`KeywardBuilder::failure_throttle`] between instances
    /// (for example through Redis), so that an attacker spread over several instances gets one
    /// budget. Without it each instance counts alone.
    #[must_use]
    pub fn failure_ledger(mut self, ledger: Arc<dyn FailureLedger>) -> Self {
        self.failures = Some(ledger);
        self
    }

    /// Mints keys from `rng` instead of the OS CSPRNG: any `rand_core` `CryptoRng` (or fallible
    /// `TryCryptoRng`), such as a seeded generator in tests or a hardware source.
    #[must_use]
    pub fn rng<R: rand_core::TryCryptoRng + Send + 'static>(mut self, mut rng: R) -> Self {
        self.rng = Some(super::KeyRng(std::sync::Mutex::new(Box::new(move |buf| {
            rng.try_fill_bytes(buf).map_err(|_| crate::key::RngError)
        }))));
        self
    }

    /// Whether to count verified requests per key (default on; batched).
    #[must_use]
    pub fn count_requests(mut self, on: bool) -> Self {
        self.count_requests = on;
        self
    }

    /// Records a `key.credits_low` notice ([`crate::audit::Action::KeyCreditsLow`]) once per
    /// key and credit period when a key's remaining credits fall to `percent` of its limit or
    /// below (0 turns it off, the default; above 100 counts as 100). Written with the usage
    /// flush.
    #[must_use]
    pub fn credits_notice(mut self, percent: u8) -> Self {
        self.credits_notice = (percent > 0).then_some(percent.min(100));
        self
    }

    /// Builds the handle.
    ///
    /// # Errors
    /// [`BuildError::Signing`] for a region or service SigV4 cannot carry.
    pub fn build(self) -> Result<Keyward, BuildError> {
        self.signing.check()?;
        Ok(Keyward(Arc::new(Inner {
            cache: KeyCache::new(self.cache),
            throttle: Throttle::new(self.throttle),
            failures: self.failures,
            policy: self.policy,
            keyring: self.keyring,
            store: self.store,
            clock: self.clock,
            limiter: self
                .limiter
                .unwrap_or_else(|| Arc::new(MemoryRateLimiter::new())),
            credits: self
                .credits
                .unwrap_or_else(|| Arc::new(MemoryCreditLedger::new())),
            nonces: self
                .nonces
                .unwrap_or_else(|| Arc::new(MemoryNonceStore::default())),
            authority: self.authority,
            bus: self.bus,
            encryption: self.encryption,
            signing: self.signing,
            usage: super::usage::UsageBatcher::new(self.count_requests),
            credits_notice: self.credits_notice,
            rng: self.rng,
            unpublished: Mutex::new(std::collections::HashSet::new()),
        })))
    }
}
