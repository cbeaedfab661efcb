//! Leased budgets: how [`crate::RedisRateLimiter`] and [`crate::RedisCreditLedger`] admit most
//! requests without waiting for Redis.
//!
//! An instance leases a slice of a key's budget from Redis (tokens of its GCRA bucket, or
//! credits of its period) with one script call, and spends the slice here, an atomic decrement
//! per request. Redis only grants what it has, so every request admitted anywhere spends a token
//! Redis granted: the instances together never admit more than one exact limiter would have
//! admitted at the lease times (see docs/quotas.md for the bound this gives).
//!
//! - **Size.** A lease covers [`Leasing::horizon`] of this instance's recent rate for the key,
//!   at least 1 and at most [`Leasing::cap`] of the budget (1/100 by default), so an instance
//!   never sits on much of a budget another instance may need.
//! - **Ahead of need.** When a slice runs down to a quarter of its size, one background task
//!   leases the next, so a steady stream of requests never waits; a request that finds the
//!   slice empty leases itself, one at a time per key (the others wait for it).
//! - **Empty.** When Redis grants nothing it says until when; until then requests are refused
//!   here, without asking again.
//!
//! A zero horizon leases one token per request: every request waits for Redis, as an exact
//! limiter does.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use keyward_core::store::StoreError;

use crate::config::Connections;

/// How much of a budget an instance leases at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leasing {
    /// A lease covers this long of the key's recent rate here. Zero: one token at a time (a
    /// Redis round trip per request).
    pub horizon: Duration,
    /// The most of a budget one lease takes, as a divisor: 100 leases at most 1/100 of it.
    pub cap: u64,
}

impl Default for Leasing {
    /// 100 ms of traffic, at most 1/100 of the budget.
    fn default() -> Self {
        Self {
            horizon: Duration::from_millis(100),
            cap: 100,
        }
    }
}

impl Leasing {
    /// A token at a time: every request asks Redis.
    #[must_use]
    pub fn exact() -> Self {
        Self {
            horizon: Duration::ZERO,
            cap: 100,
        }
    }

    /// The largest lease of a budget of `size`.
    pub(crate) fn largest(&self, size: u64) -> u64 {
        if self.horizon.is_zero() {
            1
        } else {
            (size / self.cap.max(1)).max(1)
        }
    }
}

/// What Redis granted for a lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Grant {
    /// Tokens granted, at most what was asked.
    pub(crate) granted: u64,
    /// With nothing granted: until when (unix µs) the budget stays empty.
    pub(crate) empty_until_us: i64,
    /// The budget's state after the grant (credits used in the period), for the caller.
    pub(crate) state: u64,
}

/// The answer of [`Budget::spend`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Spent {
    /// A token was spent; the budget's state Redis reported when the spend took a new lease
    /// (a spend of a token held here changes nothing Redis knows).
    Allowed { state: Option<u64> },
    /// Nothing left until this time (unix µs).
    Empty { until_us: i64 },
}

/// Sizing state, changed only by whoever holds the lease lock.
#[derive(Debug, Default)]
struct Sizing {
    /// When the last lease was granted (unix µs; 0: never).
    leased_at_us: i64,
    /// Tokens held right after it.
    held_after: u64,
}

impl Sizing {
    /// The next lease's size: `horizon` of the rate spent since the last lease, in `1..=largest`.
    fn want(&self, held: u64, now_us: i64, leasing: &Leasing, largest: u64) -> u64 {
        if leasing.horizon.is_zero() || self.leased_at_us == 0 {
            return 1;
        }
        let spent = u128::from(self.held_after.saturating_sub(held));
        let elapsed = u128::from(
            now_us
                .saturating_sub(self.leased_at_us)
                .max(0)
                .unsigned_abs(),
        );
        if elapsed == 0 {
            return largest;
        }
        let horizon = leasing.horizon.as_micros();
        let want = (spent * horizon).div_ceil(elapsed);
        u64::try_from(want).unwrap_or(u64::MAX).clamp(1, largest)
    }
}

/// One key's leased slice on this instance.
#[derive(Debug, Default)]
pub(crate) struct Budget {
    /// Tokens held here, spendable without asking Redis.
    tokens: AtomicU64,
    /// Spending below this many tokens leases the next slice in the background.
    low_water: AtomicU64,
    /// A background lease is running.
    fetching: AtomicBool,
    /// Until when (unix µs) Redis said the budget is empty.
    empty_until_us: AtomicI64,
    /// Held while leasing: one lease per key at a time.
    sizing: tokio::sync::Mutex<Sizing>,
}

impl Budget {
    /// Takes `n` held tokens; the tokens left, or `None` when fewer are held.
    fn take(&self, n: u64) -> Option<u64> {
        self.tokens
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| t.checked_sub(n))
            .ok()
            .map(|t| t - n)
    }

    /// Spends `n` tokens held here, if that needs no waiting: `Some` when they were held (leasing
    /// the next slice in the background, with the leaser `make` builds, when few are left) or
    /// Redis said the budget is empty until after `now_us`; `None`, having changed nothing,
    /// when a lease is needed first.
    pub(crate) fn try_spend<M, F, Fut>(
        self: &Arc<Self>,
        n: u64,
        now_us: i64,
        leasing: &Leasing,
        largest: u64,
        make: M,
    ) -> Option<Spent>
    where
        M: FnOnce() -> F,
        F: Fn(u64) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Grant, StoreError>> + Send + 'static,
    {
        if let Some(left) = self.take(n) {
            if left < self.low_water.load(Ordering::Relaxed) {
                self.lease_ahead(now_us, *leasing, largest, make());
            }
            return Some(Spent::Allowed { state: None });
        }
        let until_us = self.empty_until_us.load(Ordering::Acquire);
        (now_us < until_us).then_some(Spent::Empty { until_us })
    }

    /// Gives back a token [`Budget::try_spend`] just spent.
    pub(crate) fn refund(&self) {
        self.tokens.fetch_add(1, Ordering::AcqRel);
    }

    /// Spends `n` tokens of this budget: [`Budget::try_spend`], else a lease from the leaser
    /// `make` builds (called with the number of tokens wanted, at least `n`; it grants at
    /// least `n` or none), one lease per key at a time. `largest` bounds a lease unless `n` is
    /// larger. Held tokens cost no allocation: `make` runs only to lease.
    ///
    /// # Errors
    /// What the lease returned, when no token was held.
    pub(crate) async fn spend<M, F, Fut>(
        self: &Arc<Self>,
        n: u64,
        now_us: i64,
        leasing: &Leasing,
        largest: u64,
        make: M,
    ) -> Result<Spent, StoreError>
    where
        M: Fn() -> F,
        F: Fn(u64) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Grant, StoreError>> + Send + 'static,
    {
        if let Some(spent) = self.try_spend(n, now_us, leasing, largest, &make) {
            return Ok(spent);
        }
        let mut sizing = self.sizing.lock().await;
        // Whoever held the lock before may have leased for us.
        if self.take(n).is_some() {
            return Ok(Spent::Allowed { state: None });
        }
        let until_us = self.empty_until_us.load(Ordering::Acquire);
        if now_us < until_us {
            return Ok(Spent::Empty { until_us });
        }
        let held = self.tokens.load(Ordering::Acquire);
        let want = sizing.want(held, now_us, leasing, largest).max(n);
        let grant = make()(want).await?;
        if grant.granted < n {
            self.empty_until_us
                .store(grant.empty_until_us, Ordering::Release);
            return Ok(Spent::Empty {
                until_us: grant.empty_until_us,
            });
        }
        // `n` tokens are this request's; the rest are held.
        self.granted(&mut sizing, now_us, n, grant);
        Ok(Spent::Allowed {
            state: Some(grant.state),
        })
    }

    /// Records a grant of which the caller spent `taken` tokens at once and holds the rest.
    fn granted(&self, sizing: &mut Sizing, now_us: i64, taken: u64, grant: Grant) {
        let held = grant.granted.saturating_sub(taken);
        // The tokens taken at once count as spent since this lease, as those spent later do.
        let total = self.tokens.fetch_add(held, Ordering::AcqRel) + grant.granted;
        self.low_water
            .store(grant.granted.saturating_add(1) / 4, Ordering::Relaxed);
        sizing.leased_at_us = now_us;
        sizing.held_after = total;
    }

    /// Leases the next slice in a background task, unless one is running (or there is no
    /// tokio runtime to run it on: then the next request that finds the slice empty leases).
    fn lease_ahead<F, Fut>(self: &Arc<Self>, now_us: i64, leasing: Leasing, largest: u64, lease: F)
    where
        F: Fn(u64) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Grant, StoreError>> + Send + 'static,
    {
        if self.fetching.load(Ordering::Relaxed) || self.fetching.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.fetching.store(false, Ordering::Release);
            return;
        };
        let budget = Arc::clone(self);
        runtime.spawn(async move {
            let mut sizing = budget.sizing.lock().await;
            let held = budget.tokens.load(Ordering::Acquire);
            if held < budget.low_water.load(Ordering::Relaxed) {
                match lease(sizing.want(held, now_us, &leasing, largest)).await {
                    Ok(grant) if grant.granted > 0 => {
                        budget.granted(&mut sizing, now_us, 0, grant);
                    }
                    Ok(grant) => {
                        budget
                            .empty_until_us
                            .store(grant.empty_until_us, Ordering::Release);
                        budget.low_water.store(0, Ordering::Relaxed);
                    }
                    // The request that finds the slice empty leases, and answers the error.
                    Err(e) => tracing::debug!(error = %e, "leasing ahead failed"),
                }
            }
            drop(sizing);
            budget.fetching.store(false, Ordering::Release);
        });
    }
}

/// What a leased Redis limit holds: the pool it leases over, how it leases, and this
/// instance's budgets by what they budget (a key and its limit, say), bounded in number: a
/// budget pushed out takes its held tokens with it, which only ever admits less.
#[derive(Debug)]
pub(crate) struct Leases<K> {
    pub(crate) shared: Arc<Connections>,
    pub(crate) leasing: Leasing,
    budgets: Arc<quick_cache::sync::Cache<K, Arc<Budget>>>,
}

impl<K> Clone for Leases<K> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
            leasing: self.leasing,
            budgets: Arc::clone(&self.budgets),
        }
    }
}

impl<K: Eq + std::hash::Hash + Clone> Leases<K> {
    /// Budgets kept at once.
    const CAPACITY: usize = 100_000;

    pub(crate) fn new(shared: Connections) -> Self {
        Self {
            shared: Arc::new(shared),
            leasing: Leasing::default(),
            budgets: Arc::new(quick_cache::sync::Cache::new(Self::CAPACITY)),
        }
    }

    /// `key`'s budget, a new one when it has none.
    pub(crate) fn of(&self, key: &K) -> Arc<Budget> {
        if let Some(b) = self.budgets.get(key) {
            return b;
        }
        let fresh = Arc::new(Budget::default());
        let got: Result<_, std::convert::Infallible> = self
            .budgets
            .get_or_insert_with(key, || Ok(Arc::clone(&fresh)));
        got.unwrap_or(fresh)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// Tokens left in a source, and the leases asked of it.
    type Source = Arc<Mutex<(u64, Vec<u64>)>>;

    /// A budget source of `left` tokens, recording what was asked.
    fn source(
        left: u64,
    ) -> (
        Source,
        impl Fn(u64) -> std::future::Ready<Result<Grant, StoreError>> + Send + Sync + 'static,
    ) {
        let state = Arc::new(Mutex::new((left, Vec::new())));
        let s = Arc::clone(&state);
        let lease = move |want: u64| {
            let mut s = s.lock().unwrap();
            let granted = want.min(s.0);
            s.0 -= granted;
            s.1.push(want);
            std::future::ready(Ok(Grant {
                granted,
                empty_until_us: 5_000_000,
                state: 0,
            }))
        };
        (state, lease)
    }

    #[tokio::test]
    async fn never_spends_more_than_was_granted_and_grows_its_leases() {
        let b = Arc::new(Budget::default());
        let (state, lease) = source(1_000);
        let lease = Arc::new(lease);
        let leasing = Leasing::default();
        let mut allowed = 0;
        for i in 0..2_000_i64 {
            let l = Arc::clone(&lease);
            match b
                .spend(1, 1_000_000 + i * 10, &leasing, 10, || {
                    let l = Arc::clone(&l);
                    move |w| l(w)
                })
                .await
                .unwrap()
            {
                Spent::Allowed { .. } => allowed += 1,
                Spent::Empty { until_us } => assert_eq!(until_us, 5_000_000),
            }
            tokio::task::yield_now().await;
        }
        let (left, asked) = state.lock().unwrap().clone();
        assert_eq!((allowed, left), (1_000, 0), "exactly the budget");
        assert_eq!(asked[0], 1, "the first lease is one token");
        assert!(
            asked.iter().all(|w| *w <= 10),
            "no lease above the cap: {asked:?}"
        );
        assert!(asked.len() < 300, "leases grew: {} of them", asked.len());
    }

    #[tokio::test]
    async fn a_zero_horizon_asks_for_every_token() {
        let b = Arc::new(Budget::default());
        let (state, lease) = source(5);
        let lease = Arc::new(lease);
        for i in 0..7 {
            let l = Arc::clone(&lease);
            let spent = b
                .spend(
                    1,
                    1_000_000 + i,
                    &Leasing::exact(),
                    Leasing::exact().largest(500),
                    || {
                        let l = Arc::clone(&l);
                        move |w| l(w)
                    },
                )
                .await
                .unwrap();
            assert_eq!(matches!(spent, Spent::Allowed { .. }), i < 5);
        }
        assert_eq!(
            state.lock().unwrap().1,
            vec![1; 6],
            "one token per request, then one refusal from Redis"
        );
    }
}
