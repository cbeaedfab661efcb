//! Prometheus metrics, written by hand in the text exposition format. Every name starts with
//! `keyward_`: verifications by outcome, a verification latency histogram, cache hits and
//! misses, pending usage.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use keyward_core::Keyward;

/// Outcomes of a verification, as label values.
pub(crate) const OUTCOMES: [&str; 9] = [
    "ok",
    "missing",
    "invalid",
    "scope_denied",
    "ip_denied",
    "rate_limited",
    "usage_exhausted",
    "unavailable",
    "other",
];

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0,
];

/// The counters. Lock-free; one per process.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    outcomes: [AtomicU64; OUTCOMES.len()],
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_nanos: AtomicU64,
    http_requests: AtomicU64,
}

impl Metrics {
    /// Counts one verification with its outcome label (one of [`OUTCOMES`]) and latency.
    pub(crate) fn verify(&self, outcome: &str, took: Duration) {
        let i = OUTCOMES
            .iter()
            .position(|o| *o == outcome)
            .unwrap_or(OUTCOMES.len() - 1);
        if let Some(c) = self.outcomes.get(i) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        let secs = took.as_secs_f64();
        for (b, bound) in self.buckets.iter().zip(BUCKETS) {
            if secs <= bound {
                b.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(
            u64::try_from(took.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// Counts one HTTP request.
    pub(crate) fn request(&self) {
        self.http_requests.fetch_add(1, Ordering::Relaxed);
    }

    /// The exposition text.
    pub(crate) fn render(&self, kw: &Keyward) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "# HELP keyward_verify_total Key verifications on the /v1 routes, by outcome."
        );
        let _ = writeln!(s, "# TYPE keyward_verify_total counter");
        for (o, c) in OUTCOMES.iter().zip(&self.outcomes) {
            let _ = writeln!(
                s,
                "keyward_verify_total{{outcome=\"{o}\"}} {}",
                c.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            s,
            "# HELP keyward_verify_duration_seconds Time to verify a key."
        );
        let _ = writeln!(s, "# TYPE keyward_verify_duration_seconds histogram");
        for (b, bound) in self.buckets.iter().zip(BUCKETS) {
            let _ = writeln!(
                s,
                "keyward_verify_duration_seconds_bucket{{le=\"{bound}\"}} {}",
                b.load(Ordering::Relaxed)
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(
            s,
            "keyward_verify_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        #[allow(clippy::cast_precision_loss)]
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(s, "keyward_verify_duration_seconds_sum {sum}");
        let _ = writeln!(s, "keyward_verify_duration_seconds_count {count}");
        let stats = kw.cache_stats();
        let _ = writeln!(
            s,
            "# HELP keyward_cache_hits_total Key lookups answered from the in-process cache."
        );
        let _ = writeln!(s, "# TYPE keyward_cache_hits_total counter");
        let _ = writeln!(s, "keyward_cache_hits_total {}", stats.hits);
        let _ = writeln!(
            s,
            "# HELP keyward_cache_misses_total Key lookups that went to the store."
        );
        let _ = writeln!(s, "# TYPE keyward_cache_misses_total counter");
        let _ = writeln!(s, "keyward_cache_misses_total {}", stats.misses);
        let _ = writeln!(
            s,
            "# HELP keyward_cache_entries Key records in the in-process cache."
        );
        let _ = writeln!(s, "# TYPE keyward_cache_entries gauge");
        let _ = writeln!(s, "keyward_cache_entries {}", stats.entries);
        let _ = writeln!(
            s,
            "# HELP keyward_usage_pending Keys with usage waiting to be flushed."
        );
        let _ = writeln!(s, "# TYPE keyward_usage_pending gauge");
        let _ = writeln!(s, "keyward_usage_pending {}", kw.pending_usage());
        let _ = writeln!(
            s,
            "# HELP keyward_http_requests_total HTTP requests served."
        );
        let _ = writeln!(s, "# TYPE keyward_http_requests_total counter");
        let _ = writeln!(
            s,
            "keyward_http_requests_total {}",
            self.http_requests.load(Ordering::Relaxed)
        );
        s
    }
}
