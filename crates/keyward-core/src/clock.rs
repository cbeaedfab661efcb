//! Time, behind a trait so tests control it; and the instants a store keeps: in UTC
//! ([`utc`]), to the microsecond ([`micros`], [`unix_micros`], [`from_unix_micros`]), between
//! [`EARLIEST`] and [`LATEST`], written as [`utc_text`] writes them. A store of its own uses
//! these to keep what keyward's stores keep (the store suite checks it).

use std::fmt;
use std::sync::Mutex;

use time::OffsetDateTime;

/// A source of the current time.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Now, in UTC.
    fn now(&self) -> OffsetDateTime;

    /// Now, in microseconds since the Unix epoch, possibly a few milliseconds behind
    /// [`Clock::now`].
    ///
    /// Verification reads it once per call for the checks where such lag cannot matter: key
    /// expiry, the not-before time and the cache TTL. Rate limits and signature dates use
    /// [`Clock::now`]. The default is [`Clock::now`] in microseconds, so a test clock that only
    /// implements `now` controls both.
    fn coarse_micros(&self) -> i64 {
        unix_micros(self.now())
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
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
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
pub struct ManualClock(Mutex<OffsetDateTime>);

impl ManualClock {
    /// A clock standing at `at`.
    #[must_use]
    pub fn new(at: OffsetDateTime) -> Self {
        Self(Mutex::new(at))
    }

    /// Moves the clock forward (or back, with a negative duration).
    pub fn advance(&self, by: time::Duration) {
        let mut t = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *t += by;
    }

    /// Sets the clock.
    pub fn set(&self, at: OffsetDateTime) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = at;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// `t` in UTC; an instant with no UTC form inside `time`'s range (`9999-12-31T23:00:00-05:00`)
/// is clamped to [`LATEST`] or [`EARLIEST`], so that no store's encoder (which converts to UTC
/// and would panic) ever sees it.
#[must_use]
pub fn utc(t: OffsetDateTime) -> OffsetDateTime {
    t.checked_to_offset(time::UtcOffset::UTC)
        .unwrap_or(if t.year() > 0 { LATEST } else { EARLIEST })
}

/// `t` in UTC ([`utc`]), truncated to microseconds: the precision every store keeps.
#[must_use]
pub fn micros(t: OffsetDateTime) -> OffsetDateTime {
    let t = utc(t);
    // `microsecond()` is below 10^6, so the replacement cannot fail.
    t.replace_microsecond(t.microsecond()).unwrap_or(t)
}

/// `t` in UTC as RFC 3339 with the fraction in 0, 3, 6 or 9 digits (the fewest of those that
/// hold it) and `zone` after it (`Z` in JSON, `+00:00` in SQLite): the form keyward has always
/// written, which sorts like the instants within a year of four digits.
#[must_use]
pub fn utc_text(t: OffsetDateTime, zone: &str) -> String {
    let t = utc(t);
    let nanos = t.nanosecond();
    let fraction = if nanos == 0 {
        String::new()
    } else if nanos.is_multiple_of(1_000_000) {
        format!(".{:03}", nanos / 1_000_000)
    } else if nanos.is_multiple_of(1_000) {
        format!(".{:06}", nanos / 1_000)
    } else {
        format!(".{nanos:09}")
    };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{fraction}{zone}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// `t` in microseconds since the Unix epoch (sub-microseconds dropped, toward the past).
///
/// Written from the seconds and the microsecond field rather than through
/// `unix_timestamp_nanos`: no 128-bit division on the verification path.
#[must_use]
pub fn unix_micros(t: OffsetDateTime) -> i64 {
    t.unix_timestamp() * 1_000_000 + i64::from(t.microsecond())
}

/// The instant `us` microseconds after the Unix epoch, in UTC; `None` outside years
/// -9999..=9999.
#[must_use]
pub fn from_unix_micros(us: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1_000).ok()
}

/// The latest instant every store keeps (the last microsecond of year 9999, UTC): where a sum
/// saturates.
pub const LATEST: OffsetDateTime = time::macros::datetime!(9999-12-31 23:59:59.999_999 UTC);

/// The earliest instant `time` represents (the start of year -9999, UTC).
pub const EARLIEST: OffsetDateTime = time::PrimitiveDateTime::MIN.assume_utc();

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_coarse_system_clock_lags_by_a_few_milliseconds_at_most() {
        let clock = SystemClock;
        for _ in 0..100 {
            let before = unix_micros(clock.now());
            let coarse = clock.coarse_micros();
            let after = unix_micros(clock.now());
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
        let at = from_unix_micros(1_700_000_000_123_456).unwrap();
        let clock = ManualClock::new(at);
        assert_eq!(clock.coarse_micros(), 1_700_000_000_123_456);
        clock.advance(time::Duration::seconds(5));
        assert_eq!(clock.coarse_micros(), 1_700_000_005_123_456);
    }

    #[test]
    fn microseconds_round_trip_on_both_sides_of_the_epoch() {
        for us in [
            0,
            1,
            -1,
            -1_000_001,
            1_732_876_543_123_456,
            -62_135_596_800_000_000,
        ] {
            let t = from_unix_micros(us).unwrap();
            assert_eq!(unix_micros(t), us, "{us}");
            assert_eq!(micros(t), t);
        }
        let t = from_unix_micros(5).unwrap() + time::Duration::nanoseconds(999);
        assert_eq!(unix_micros(t), 5);
        assert_eq!(micros(t), from_unix_micros(5).unwrap());
        assert!(from_unix_micros(i64::MAX).is_none());
        assert_eq!(unix_micros(LATEST), 253_402_300_799_999_999);
    }

    #[test]
    fn instants_without_a_utc_form_are_clamped_not_panicked_on() {
        use time::macros::datetime;
        assert_eq!(utc(datetime!(9999-12-31 23:00 -5)), LATEST);
        assert_eq!(utc(datetime!(-9999-01-01 0:00 +1)), EARLIEST);
        let t = datetime!(2030-01-01 02:00:00.5 +2);
        assert_eq!(utc(t), datetime!(2030-01-01 00:00:00.5 UTC));
        assert_eq!(utc(t).offset(), time::UtcOffset::UTC);
        assert_eq!(utc_text(t, "Z"), "2030-01-01T00:00:00.500Z");
        assert_eq!(micros(datetime!(9999-12-31 23:00 -5)), LATEST);
    }

    #[test]
    fn sampled_logs_once_a_second_with_the_count() {
        let log = SampledLog::new();
        assert_eq!(log.note(10_000_000), Some(1));
        for us in 0..99 {
            assert_eq!(log.note(10_000_001 + us), None);
        }
        assert_eq!(log.note(11_000_000), Some(100));
        assert_eq!(log.note(11_000_001), None);
    }
}

/// A warning an unauthenticated client can cause on every request (the store or Redis down
/// while junk keys arrive), logged at most once a second with the number of times it happened:
/// each site keeps one in a `static`.
#[derive(Debug, Default)]
pub struct SampledLog {
    last_us: std::sync::atomic::AtomicI64,
    pending: std::sync::atomic::AtomicU64,
}

impl SampledLog {
    /// A site that has logged nothing yet.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            last_us: std::sync::atomic::AtomicI64::new(i64::MIN),
            pending: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Counts one occurrence at `now_us`; `Some(n)` when it is to be logged now, standing for
    /// `n` occurrences (this one and those held back since the last line).
    pub fn note(&self, now_us: i64) -> Option<u64> {
        use std::sync::atomic::Ordering::Relaxed;
        self.pending.fetch_add(1, Relaxed);
        let last = self.last_us.load(Relaxed);
        if now_us.saturating_sub(last) < 1_000_000
            || self
                .last_us
                .compare_exchange(last, now_us, Relaxed, Relaxed)
                .is_err()
        {
            return None;
        }
        Some(self.pending.swap(0, Relaxed).max(1))
    }

    /// [`SampledLog::note`] at the system clock's now.
    pub fn note_now(&self) -> Option<u64> {
        self.note(unix_micros(OffsetDateTime::now_utc()))
    }
}
