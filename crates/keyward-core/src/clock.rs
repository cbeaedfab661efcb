//! Time, behind a trait so tests control it.

use std::fmt;
use std::sync::Mutex;

use chrono::{DateTime, SubsecRound, Utc};

/// A source of the current time.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Now, in UTC.
    fn now(&self) -> DateTime<Utc>;

    /// Now, in microseconds since the Unix epoch, possibly a few milliseconds behind
    /// [`Clock::now`].
    ///
    /// Verification reads it once per call for the checks where such lag cannot matter: key
    /// expiry, the not-before time and the cache TTL. Rate limits and signature dates use
    /// [`Clock::now`]. The default is [`Clock::now`] in microseconds, so a test clock that only
    /// implements `now` controls both.
    fn coarse_micros(&self) -> i64 {
        self.now().timestamp_micros()
    }
}

/// The system clock.
///
/// [`Clock::coarse_micros`] reads the kernel's coarse real-time clock where there is one
/// (Linux: `CLOCK_REALTIME_COARSE`, one tick behind at most, 1–4 ms), which costs a tenth of a
/// full clock read; elsewhere it reads the full clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn coarse_micros(&self) -> i64 {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::RealtimeCoarse);
        t.tv_sec
            .saturating_mul(1_000_000)
            .saturating_add(t.tv_nsec / 1_000)
    }
}

/// A clock that only moves when told to. For tests.
#[derive(Debug)]
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    /// A clock standing at `at`.
    #[must_use]
    pub fn new(at: DateTime<Utc>) -> Self {
        Self(Mutex::new(at))
    }

    /// Moves the clock forward (or back, with a negative duration).
    pub fn advance(&self, by: chrono::Duration) {
        let mut t = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *t += by;
    }

    /// Sets the clock.
    pub fn set(&self, at: DateTime<Utc>) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = at;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// `t` truncated to microseconds, the precision every store keeps.
#[must_use]
#[doc(hidden)] // shared with keyward's own crates; not part of the everyday API
pub fn micros(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_coarse_system_clock_lags_by_a_few_milliseconds_at_most() {
        let clock = SystemClock;
        for _ in 0..100 {
            let before = clock.now().timestamp_micros();
            let coarse = clock.coarse_micros();
            let after = clock.now().timestamp_micros();
            // Behind by a tick (1–4 ms) at most, never ahead of the full clock.
            assert!(coarse <= after, "coarse {coarse} ahead of {after}");
            assert!(
                before - coarse < 50_000,
                "coarse {coarse} lags {before} by 50 ms or more"
            );
        }
    }

    #[test]
    fn a_test_clock_controls_the_coarse_reading_too() {
        let at = DateTime::from_timestamp(1_700_000_000, 123_456_000).unwrap();
        let clock = ManualClock::new(at);
        assert_eq!(clock.coarse_micros(), at.timestamp_micros());
        clock.advance(chrono::Duration::seconds(5));
        assert_eq!(clock.coarse_micros(), at.timestamp_micros() + 5_000_000);
    }
}
