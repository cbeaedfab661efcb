//! Failure throttling by client address (DESIGN.md §10: "rate-limit failures by client
//! address"). After [`FailureThrottle::max_failures`] failed verifications from one address
//! within [`FailureThrottle::window`], keys from that address that are not already cached are
//! refused at once, `429 RATE_LIMITED` with `Retry-After`, without a store read or a digest.
//! Keys already in the cache still verify, so a valid client behind the same address keeps
//! working while a flood of made-up keys from it costs a map lookup each.
//!
//! The bucket is the client address the application resolved ([`crate::VerifyContext`]), never
//! anything the client chose; IPv6 addresses count by their /64, the block one subscriber
//! usually holds. The counters live in a bounded concurrent map in this process; with a shared
//! [`crate::store::FailureLedger`] (Redis) the instances also add up their counts, so an
//! attacker spread over several instances gets one budget, not one per instance.

use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};
use std::time::Duration;

use crate::key::KeyId;

/// How failed verifications are throttled per client address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureThrottle {
    /// Failures from one address within `window` after which uncached keys are refused;
    /// `0` turns throttling off.
    pub max_failures: u32,
    /// The counting window; an address is free again once its window has passed.
    pub window: Duration,
    /// Most addresses counted at once (the least recently seen are forgotten first).
    pub capacity: usize,
}

impl Default for FailureThrottle {
    /// 50 failures a minute per address, 100 000 addresses.
    fn default() -> Self {
        Self {
            max_failures: 50,
            window: Duration::from_secs(60),
            capacity: 100_000,
        }
    }
}

impl FailureThrottle {
    /// No throttling.
    #[must_use]
    pub fn off() -> Self {
        Self {
            max_failures: 0,
            ..Self::default()
        }
    }
}

/// One address's window: when it started and the failures in it.
#[derive(Debug)]
struct Window {
    started_us: AtomicI64,
    failures: AtomicU32,
}

/// Failure windows by some key (an address bucket, a key id), bounded in number.
#[derive(Debug)]
struct Counters<K> {
    windows: quick_cache::sync::Cache<K, Arc<Window>>,
    window_us: i64,
    max_failures: u32,
}

impl<K: Eq + std::hash::Hash + Clone> Counters<K> {
    fn new(config: &FailureThrottle) -> Option<Self> {
        let on = config.max_failures > 0 && config.capacity > 0 && !config.window.is_zero();
        on.then(|| Self {
            windows: quick_cache::sync::Cache::new(config.capacity),
            window_us: i64::try_from(config.window.as_micros()).unwrap_or(i64::MAX),
            max_failures: config.max_failures,
        })
    }

    fn refused(&self, key: &K, now_us: i64) -> Option<Duration> {
        let w = self.windows.get(key)?;
        let elapsed = now_us.saturating_sub(w.started_us.load(Ordering::Relaxed));
        if elapsed >= self.window_us || w.failures.load(Ordering::Relaxed) < self.max_failures {
            return None;
        }
        let left_us = self.window_us.saturating_sub(elapsed).max(1);
        Some(Duration::from_micros(left_us.unsigned_abs()))
    }

    /// Marks `key` as over its failures until `until_us` (what a shared ledger said).
    fn block(&self, key: K, until_us: i64) {
        self.windows.insert(
            key,
            Arc::new(Window {
                started_us: AtomicI64::new(until_us.saturating_sub(self.window_us)),
                failures: AtomicU32::new(self.max_failures),
            }),
        );
    }

    fn failed(&self, key: K, now_us: i64) {
        let w = self.windows.get(&key).unwrap_or_else(|| {
            let fresh = Arc::new(Window {
                started_us: AtomicI64::new(now_us),
                failures: AtomicU32::new(0),
            });
            self.windows.insert(key, Arc::clone(&fresh));
            fresh
        });
        let started = w.started_us.load(Ordering::Relaxed);
        if now_us.saturating_sub(started) >= self.window_us
            && w.started_us
                .compare_exchange(started, now_us, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            // A new window: this failure is its first.
            w.failures.store(1, Ordering::Relaxed);
            return;
        }
        w.failures.fetch_add(1, Ordering::Relaxed);
    }
}

/// The failure counters: by client address, and by key id (consulted before a deliberately slow
/// digest, Argon2id, runs).
#[derive(Debug)]
pub(crate) struct Throttle {
    by_address: Option<Counters<IpAddr>>,
    by_key: Option<Counters<KeyId>>,
    window: Duration,
    max_failures: u32,
}

/// The bucket a client address is counted in: IPv4 as is, IPv6 by its /64 (one subscriber's
/// network; IPv4-mapped as IPv4), and the unspecified address
/// ([`VerifyContext::UNKNOWN_CLIENT`](crate::VerifyContext::UNKNOWN_CLIENT)) in one of its own.
#[must_use]
pub fn bucket(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) if v6.is_unspecified() => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(prefix))
            }
        },
    }
}

impl Throttle {
    pub(crate) fn new(config: FailureThrottle) -> Self {
        Self {
            by_address: Counters::new(&config),
            by_key: Counters::new(&config),
            window: config.window,
            max_failures: config.max_failures,
        }
    }

    /// The shared ledger's name for `ip`'s bucket, when throttling is on.
    pub(crate) fn shared_bucket(&self, ip: Option<IpAddr>) -> Option<String> {
        self.by_address.as_ref()?;
        Some(bucket(ip?).to_string())
    }

    /// The counting window.
    pub(crate) fn window(&self) -> Duration {
        self.window
    }

    /// Takes a shared ledger's count for `ip`: over the budget, the address is refused here
    /// until the window it reported ends. Returns the wait when it is refused.
    pub(crate) fn apply_shared(
        &self,
        ip: Option<IpAddr>,
        failures: u32,
        left: Duration,
        now_us: i64,
    ) -> Option<Duration> {
        let (Some(c), Some(ip)) = (&self.by_address, ip) else {
            return None;
        };
        if failures < self.max_failures || left.is_zero() {
            return None;
        }
        let left_us = i64::try_from(left.as_micros()).unwrap_or(i64::MAX);
        c.block(bucket(ip), now_us.saturating_add(left_us));
        Some(left)
    }

    /// How long `ip` must wait when it is over its failures, else `None`.
    pub(crate) fn refused(&self, ip: Option<IpAddr>, now_us: i64) -> Option<Duration> {
        self.by_address.as_ref()?.refused(&bucket(ip?), now_us)
    }

    /// How long attempts on `key_id` must wait when it is over its failures, else `None`.
    pub(crate) fn key_refused(&self, key_id: &KeyId, now_us: i64) -> Option<Duration> {
        self.by_key.as_ref()?.refused(key_id, now_us)
    }

    /// Counts a failed verification from `ip`, and against `key_id` when the failure was a wrong
    /// secret or signature for it.
    pub(crate) fn failed(&self, ip: Option<IpAddr>, key_id: Option<&KeyId>, now_us: i64) {
        if let (Some(c), Some(ip)) = (&self.by_address, ip) {
            c.failed(bucket(ip), now_us);
        }
        if let (Some(c), Some(id)) = (&self.by_key, key_id) {
            c.failed(*id, now_us);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000;

    fn throttle(max: u32) -> Throttle {
        Throttle::new(FailureThrottle {
            max_failures: max,
            window: Duration::from_secs(10),
            capacity: 100,
        })
    }

    #[test]
    fn refuses_after_the_limit_until_the_window_ends() {
        let t = throttle(3);
        let ip = Some("192.0.2.7".parse().unwrap());
        for _ in 0..3 {
            assert_eq!(t.refused(ip, 0), None);
            t.failed(ip, None, 0);
        }
        assert_eq!(t.refused(ip, S), Some(Duration::from_secs(9)));
        assert_eq!(t.refused(Some("192.0.2.8".parse().unwrap()), S), None);
        assert_eq!(t.refused(ip, 10 * S), None, "the window has passed");
        t.failed(ip, None, 10 * S);
        assert_eq!(t.refused(ip, 10 * S), None, "a new window starts at one");
    }

    #[test]
    fn ipv6_counts_by_slash_64_and_mapped_v4_as_v4() {
        let t = throttle(2);
        t.failed(Some("2001:db8:1:2::1".parse().unwrap()), None, 0);
        t.failed(Some("2001:db8:1:2:ffff::9".parse().unwrap()), None, 0);
        assert!(
            t.refused(Some("2001:db8:1:2::77".parse().unwrap()), 0)
                .is_some()
        );
        assert!(
            t.refused(Some("2001:db8:1:3::1".parse().unwrap()), 0)
                .is_none()
        );
        t.failed(Some("::ffff:198.51.100.1".parse().unwrap()), None, 0);
        t.failed(Some("198.51.100.1".parse().unwrap()), None, 0);
        assert!(
            t.refused(Some("198.51.100.1".parse().unwrap()), 0)
                .is_some()
        );
    }

    #[test]
    fn off_and_without_an_address_nothing_is_counted() {
        let t = Throttle::new(FailureThrottle::off());
        let ip = Some("192.0.2.7".parse().unwrap());
        for _ in 0..100 {
            t.failed(ip, None, 0);
        }
        assert_eq!(t.refused(ip, 0), None);
        let t = throttle(1);
        t.failed(None, None, 0);
        assert_eq!(t.refused(None, 0), None);
    }
}
