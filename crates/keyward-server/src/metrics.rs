//! Metrics in the OpenMetrics text format (which Prometheus scrapes), on `prometheus-client`,
//! the official Rust client. Every name starts with `keyward_`: key verifications by outcome
//! and their latency (reported by keyward-core's gates), HTTP requests, and the engine's cache and usage figures,
//! read at scrape time.

use std::time::Duration;

use keyward_core::Keyward;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

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

/// The media type of [`Metrics::render`]'s text.
pub(crate) const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    outcome: &'static str,
    /// `hit`: answered from the engine's memory (a cached key, or junk refused before any
    /// read); `miss`: it waited for the store or Redis.
    cache: &'static str,
}

/// The server's metrics. One per process.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    /// Every `keyward_verify_total` series, by [`OUTCOMES`] index and `[miss, hit]`: taken
    /// once, so that counting a verification takes no lock.
    verify: Vec<[Counter; 2]>,
    latency: Histogram,
    http_requests: Counter,
    /// `keyward_webhook_deliveries_total`, by [`WEBHOOK_OUTCOMES`] index.
    webhooks: Vec<Counter>,
}

/// The outcomes of a webhook attempt.
pub(crate) const WEBHOOK_OUTCOMES: [&str; 3] = ["delivered", "retried", "failed"];

/// The label of `keyward_webhook_deliveries_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WebhookOutcome {
    /// `delivered`, `retried` (attempted again later) or `failed` (for good).
    outcome: &'static str,
}

impl Metrics {
    /// The metrics of a server over `keyward`, every outcome present from the start (at 0).
    pub(crate) fn new(keyward: Keyward) -> Self {
        let family = Family::<Outcome, Counter>::default();
        let verify = OUTCOMES
            .into_iter()
            .map(|outcome| {
                ["miss", "hit"]
                    .map(|cache| family.get_or_create(&Outcome { outcome, cache }).clone())
            })
            .collect();
        let latency = Histogram::new(BUCKETS);
        let http_requests = Counter::default();
        let mut registry = Registry::default();
        registry.register(
            "keyward_verify",
            "Key verifications, by outcome and whether the engine's memory answered",
            family,
        );
        registry.register(
            "keyward_verify_duration_seconds",
            "Time to verify a key",
            latency.clone(),
        );
        registry.register(
            "keyward_http_requests",
            "HTTP requests served",
            http_requests.clone(),
        );
        let hooks = Family::<WebhookOutcome, Counter>::default();
        let webhooks = WEBHOOK_OUTCOMES
            .into_iter()
            .map(|outcome| hooks.get_or_create(&WebhookOutcome { outcome }).clone())
            .collect();
        registry.register(
            "keyward_webhook_deliveries",
            "Webhook delivery attempts, by outcome",
            hooks,
        );
        registry.register_collector(Box::new(Engine(keyward)));
        Self {
            registry,
            verify,
            latency,
            http_requests,
            webhooks,
        }
    }

    /// Counts one verification with its outcome label (one of [`OUTCOMES`], else `other`),
    /// whether it was answered from the engine's memory, and its latency.
    pub(crate) fn verify(&self, outcome: &str, cached: bool, took: Duration) {
        let i = OUTCOMES
            .iter()
            .position(|o| *o == outcome)
            .unwrap_or(OUTCOMES.len() - 1);
        if let Some(series) = self.verify.get(i) {
            series[usize::from(cached)].inc();
        }
        self.latency.observe(took.as_secs_f64());
    }

    /// Counts one webhook attempt by its outcome (one of [`WEBHOOK_OUTCOMES`]).
    pub(crate) fn webhook(&self, outcome: &str) {
        if let Some(c) = WEBHOOK_OUTCOMES
            .iter()
            .position(|o| *o == outcome)
            .and_then(|i| self.webhooks.get(i))
        {
            c.inc();
        }
    }

    /// Counts one HTTP request.
    pub(crate) fn request(&self) {
        self.http_requests.inc();
    }

    /// The exposition text.
    pub(crate) fn render(&self) -> String {
        let mut text = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::error!(error = %e, "could not encode the metrics");
        }
        text
    }
}

/// The engine's own figures, read on each scrape.
#[derive(Debug)]
struct Engine(Keyward);

impl Collector for Engine {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let stats = self.0.cache_stats();
        let counters = [
            (
                "keyward_cache_hits",
                "Key lookups answered from the in-process cache.",
                stats.hits,
            ),
            (
                "keyward_cache_misses",
                "Key lookups that went to the store.",
                stats.misses,
            ),
        ];
        for (name, help, value) in counters {
            let counter = ConstCounter::new(value);
            counter.encode(encoder.encode_descriptor(
                name,
                help,
                None,
                counter.metric_type(),
            )?)?;
        }
        let gauges = [
            (
                "keyward_cache_entries",
                "Key records in the in-process cache.",
                stats.entries,
            ),
            (
                "keyward_usage_pending",
                "Keys with usage waiting to be flushed.",
                self.0.pending_usage(),
            ),
        ];
        for (name, help, value) in gauges {
            let gauge = ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX));
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        Ok(())
    }
}
