#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use keyward_core::StoreError;
use keyward_core::webhook::{
    self, Attempt, Delivery, DisabledEndpoint, Settlement, WebhookOutbox, WebhookSecret,
    endpoint_id, envelope, signature,
};
use time::OffsetDateTime;

/// How long a claimed delivery is this instance's: longer than an attempt can take.
pub const LEASE: Duration = Duration::from_secs(60);
/// How long one HTTP attempt may take, connecting included.
pub const TIMEOUT: Duration = Duration::from_secs(15);
/// How long a whole attempt may take, resolving the host included: within [`LEASE`].
const ATTEMPT_BOUND: Duration = Duration::from_secs(30);
/// Deliveries posted at once.
const IN_FLIGHT: u32 = 16;
/// How often the outbox and the due deliveries are looked at.
const TICK: Duration = Duration::from_secs(1);
/// Events fanned out per store call.
const FAN_OUT_BATCH: u32 = 500;

/// Where the webhooks go and how they are signed.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    endpoints: Vec<String>,
    secrets: Vec<WebhookSecret>,
    allow_private: bool,
}

/// Why a [`WebhookConfig`] was refused: names the bad URL, never a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl WebhookConfig {
    /// Posts to each of `endpoints` (blank ones are skipped), signed with `secrets`, the newest
    /// first (several while one rotates: receivers accept any of the signatures).
    ///
    /// # Errors
    /// An endpoint that is not an `http` or `https` URL with a host; no endpoint; no secret.
    pub fn new(endpoints: Vec<String>, secrets: Vec<WebhookSecret>) -> Result<Self, ConfigError> {
        let endpoints: Vec<String> = endpoints
            .into_iter()
            .map(|u| u.trim().to_owned())
            .filter(|u| !u.is_empty())
            .collect();
        if endpoints.is_empty() {
            return Err(ConfigError("no webhook endpoint".into()));
        }
        for u in &endpoints {
            let parsed = reqwest::Url::parse(u)
                .map_err(|e| ConfigError(format!("invalid webhook URL {:?}: {e}", shown(u))))?;
            if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
                return Err(ConfigError(format!(
                    "invalid webhook URL {:?}: an http or https URL with a host",
                    shown(u)
                )));
            }
        }
        if secrets.is_empty() {
            return Err(ConfigError(
                "webhooks need a signing secret (whsec_…)".into(),
            ));
        }
        Ok(Self {
            endpoints,
            secrets,
            allow_private: false,
        })
    }

    /// Allows endpoints that resolve to private, loopback or link-local addresses (tests, or a
    /// receiver inside the operator's own network). Off by default: a webhook must not reach
    /// the service's own network.
    #[must_use]
    pub fn allow_private(mut self, allow: bool) -> Self {
        self.allow_private = allow;
        self
    }

    /// The endpoints.
    #[must_use]
    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    /// Whether private targets are allowed.
    #[must_use]
    pub fn allows_private(&self) -> bool {
        self.allow_private
    }
}

/// Why an endpoint cannot be posted to.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResolveError {
    /// Its host resolves to a private, loopback or link-local address, and private targets are
    /// not allowed: a configuration error, not a passing failure.
    NotPublic(String),
    /// It cannot be resolved now (or its URL is malformed).
    Unreachable(String),
}

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotPublic(s) | Self::Unreachable(s) => f.write_str(s),
        }
    }
}

impl std::error::Error for ResolveError {}

/// The addresses `url`'s host resolves to, refused when one of them is not public (unless
/// `allow_private`): a webhook must not reach the service's own network.
///
/// # Errors
/// Why the URL cannot be posted to.
pub async fn resolve(url: &str, allow_private: bool) -> Result<Vec<SocketAddr>, ResolveError> {
    let unreachable = |s: String| ResolveError::Unreachable(s);
    let parsed = reqwest::Url::parse(url).map_err(|e| unreachable(e.to_string()))?;
    let host = parsed
        .host_str()
        .ok_or_else(|| unreachable("no host".into()))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = parsed
        .port_or_known_default()
        .ok_or_else(|| unreachable("no port".into()))?;
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| unreachable(format!("cannot resolve {host}: {e}")))?
        .collect();
    if addrs.is_empty() {
        return Err(unreachable(format!("{host} resolves to no address")));
    }
    if !allow_private && let Some(private) = addrs.iter().find(|a| !webhook::is_public(a.ip())) {
        return Err(ResolveError::NotPublic(format!(
            "{host} resolves to {}, a private, loopback or link-local address",
            private.ip()
        )));
    }
    Ok(addrs)
}

/// `url` as logs and listings show it: without user info, query and fragment, which may carry
/// credentials.
#[must_use]
pub fn shown(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.set_query(None);
            u.set_fragment(None);
            u.to_string()
        }
        Err(_) => "<invalid URL>".to_owned(),
    }
}

/// What became of one attempt, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Outcome {
    /// The endpoint answered 2xx.
    Delivered,
    /// Not delivered; attempted again later.
    Retried,
    /// Given up: the schedule is spent, or the endpoint is disabled.
    Failed,
}

impl Outcome {
    /// `delivered`, `retried` or `failed`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Retried => "retried",
            Self::Failed => "failed",
        }
    }
}

type Observer = Arc<dyn Fn(Outcome) + Send + Sync>;

/// The delivery task: fans the outbox out to the endpoints and posts what is due, at least once,
/// on every instance that runs it (they share the work through the store).
pub struct WebhookSender {
    config: WebhookConfig,
    outbox: Arc<dyn WebhookOutbox>,
    observer: Option<Observer>,
    /// The endpoints disabled, as of the last round (their ids).
    disabled: Mutex<HashSet<String>>,
}

impl fmt::Debug for WebhookSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookSender")
            .field("endpoints", &self.config.endpoints.len())
            .field("outbox", &self.outbox)
            .finish_non_exhaustive()
    }
}

impl WebhookSender {
    /// A sender of `outbox`'s events to `config`'s endpoints.
    #[must_use]
    pub fn new(config: WebhookConfig, outbox: Arc<dyn WebhookOutbox>) -> Self {
        Self {
            config,
            outbox,
            observer: None,
            disabled: Mutex::new(HashSet::new()),
        }
    }

    /// Calls `observe` after every attempt (metrics).
    #[must_use]
    pub fn on_attempt(mut self, observe: impl Fn(Outcome) + Send + Sync + 'static) -> Self {
        self.observer = Some(Arc::new(observe));
        self
    }

    /// Runs [`Self::round`] every second, for good. Abort the handle to stop it: a delivery cut
    /// short is attempted again when its lease ends.
    pub fn spawn(self) -> tokio::task::JoinHandle<()> {
        let me = Arc::new(self);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(TICK);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                if let Err(e) = me.round().await {
                    tracing::warn!(error = %e, "webhook round failed; trying again");
                }
            }
        })
    }

    /// One round: reads which endpoints are disabled, fans out what the outbox holds to the
    /// others, then posts what is due until nothing is.
    ///
    /// # Errors
    /// The store's.
    pub async fn round(self: &Arc<Self>) -> Result<(), StoreError> {
        let off: HashSet<String> = self
            .outbox
            .disabled_endpoints()
            .await?
            .into_iter()
            .map(|d| d.id)
            .collect();
        let live: Vec<String> = self
            .config
            .endpoints
            .iter()
            .filter(|u| !off.contains(&endpoint_id(u)))
            .cloned()
            .collect();
        *self.disabled.lock().unwrap_or_else(PoisonError::into_inner) = off;
        while self
            .outbox
            .fan_out(&live, OffsetDateTime::now_utc(), FAN_OUT_BATCH)
            .await?
            == usize::try_from(FAN_OUT_BATCH).unwrap_or(usize::MAX)
        {}
        loop {
            let due = self
                .outbox
                .claim(OffsetDateTime::now_utc(), LEASE, IN_FLIGHT)
                .await?;
            if due.is_empty() {
                return Ok(());
            }
            let tasks: Vec<_> = due
                .into_iter()
                .map(|d| {
                    let me = Arc::clone(self);
                    tokio::spawn(async move { me.deliver(d).await })
                })
                .collect();
            for t in tasks {
                let _ = t.await;
            }
        }
    }

    fn is_disabled(&self, endpoint: &str) -> bool {
        self.disabled
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&endpoint_id(endpoint))
    }

    /// Records that `endpoint` answered `410 Gone`: disabled for every instance.
    async fn disable(&self, endpoint: &str) {
        let id = endpoint_id(endpoint);
        self.disabled
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id.clone());
        let off = DisabledEndpoint {
            id,
            endpoint: shown(endpoint),
            disabled_at: OffsetDateTime::now_utc(),
            reason: "answered 410 Gone".into(),
        };
        tracing::error!(endpoint = %off.endpoint, endpoint_id = %off.id, "webhook endpoint answered 410 Gone: disabled for every instance until an administrator enables it again");
        if let Err(e) = self.outbox.disable_endpoint(&off).await {
            // This instance keeps it disabled until its next round; the next 410 tries again.
            tracing::warn!(error = %e, "could not record the disabled webhook endpoint");
        }
    }

    async fn deliver(&self, d: Delivery) {
        let (settlement, attempt, outcome) = if self.is_disabled(&d.endpoint) {
            let attempt = Attempt {
                status: None,
                error: Some(
                    "the endpoint is disabled (it answered 410 Gone): not posted to".into(),
                ),
            };
            (Settlement::Failed, attempt, Outcome::Failed)
        } else {
            // The whole attempt, name resolution included, ends well within the lease.
            let attempt = tokio::time::timeout(ATTEMPT_BOUND, self.post(&d)).await;
            match attempt.unwrap_or_else(|_| Err("timed out".to_owned())) {
                Ok(status) if (200..300).contains(&status) => {
                    let ok = Attempt {
                        status: Some(status),
                        error: None,
                    };
                    (Settlement::Delivered, ok, Outcome::Delivered)
                }
                Ok(410) => {
                    self.disable(&d.endpoint).await;
                    let attempt = Attempt {
                        status: Some(410),
                        error: Some("410 Gone: the endpoint is disabled".into()),
                    };
                    (Settlement::Failed, attempt, Outcome::Failed)
                }
                answer => {
                    let attempt = match answer {
                        Ok(status) => Attempt {
                            status: Some(status),
                            error: Some(format!("HTTP {status}")),
                        },
                        Err(e) => Attempt {
                            status: None,
                            error: Some(e),
                        },
                    };
                    match webhook::retry_delay(d.attempts, jitter()) {
                        Some(wait) => {
                            let at = OffsetDateTime::now_utc()
                                + time::Duration::try_from(wait).unwrap_or(time::Duration::HOUR);
                            (Settlement::Retry(at), attempt, Outcome::Retried)
                        }
                        None => (Settlement::Failed, attempt, Outcome::Failed),
                    }
                }
            }
        };
        if outcome == Outcome::Failed {
            tracing::warn!(endpoint = %shown(&d.endpoint), event = %d.event.id, attempts = d.attempts, error = ?attempt.error, "webhook delivery failed for good");
        }
        if let Some(observe) = &self.observer {
            observe(outcome);
        }
        if let Err(e) = self
            .outbox
            .settle(&d.id, &settlement, &attempt, OffsetDateTime::now_utc())
            .await
        {
            // The lease ends and the delivery is attempted again: at least once.
            tracing::warn!(error = %e, delivery = %d.id, "could not record a webhook attempt");
        }
    }

    /// One attempt: the HTTP status, or why there was none.
    async fn post(&self, d: &Delivery) -> Result<u16, String> {
        let addrs = resolve(&d.endpoint, self.config.allow_private)
            .await
            .map_err(|e| e.to_string())?;
        let host = reqwest::Url::parse(&d.endpoint)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_default();
        // Connect to the addresses just checked, not to a second answer of the resolver.
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(TIMEOUT)
            .resolve_to_addrs(&host, &addrs)
            .build()
            .map_err(|e| e.to_string())?;
        let body = envelope(&d.event);
        let timestamp = OffsetDateTime::now_utc().unix_timestamp();
        let id = d.event.id.to_string();
        let signed = signature(&self.config.secrets, &id, timestamp, &body);
        let res = client
            .post(&d.endpoint)
            .header("content-type", "application/json")
            .header("user-agent", concat!("keyward/", env!("CARGO_PKG_VERSION")))
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signed)
            .body(body)
            .send()
            .await
            .map_err(|e| without_url(&e))?;
        Ok(res.status().as_u16())
    }
}

/// An error's text without its URL (which may carry credentials in its query).
fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    format!(
        "{kind}: {}",
        std::error::Error::source(e).map_or_else(String::new, ToString::to_string)
    )
}

/// A number in `[0, 1)` for the retry jitter.
fn jitter() -> f64 {
    let mut b = [0u8; 2];
    let _ = getrandom::fill(&mut b);
    f64::from(u16::from_le_bytes(b)) / 65_536.0
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn logged_urls_carry_no_credentials() {
        assert_eq!(
            shown("https://u:p@hooks.example:8443/k?token=s3cret#x"),
            "https://hooks.example:8443/k"
        );
        assert_eq!(shown("not a url"), "<invalid URL>");
    }

    #[test]
    fn config_checks_urls_and_secrets() {
        let (secret, _) = WebhookSecret::generate().unwrap();
        let ok = WebhookConfig::new(
            vec![" https://a.example/h ".into(), String::new()],
            vec![secret.clone()],
        )
        .unwrap();
        assert_eq!(ok.endpoints(), ["https://a.example/h"]);
        assert!(!ok.allows_private());
        for bad in ["ftp://a.example/h", "https://", "not a url"] {
            assert!(
                WebhookConfig::new(vec![bad.into()], vec![secret.clone()]).is_err(),
                "{bad}"
            );
        }
        let leaky = WebhookConfig::new(
            vec!["ftp://u:pw@a.example/?t=s3cret".into()],
            vec![secret.clone()],
        );
        assert!(
            !leaky.unwrap_err().to_string().contains("s3cret"),
            "no credentials in errors"
        );
        assert!(WebhookConfig::new(vec![], vec![secret]).is_err());
        assert!(WebhookConfig::new(vec!["https://a.example/h".into()], vec![]).is_err());
    }
}
