//! Lifecycle webhooks: every audit event goes, signed per Standard Webhooks
//! (`keyward_core::webhook`), to each `--webhook-url`, at least once.
//!
//! The store writes each event into its outbox in the transaction of the change. Every second
//! this task moves what the outbox holds into a delivery per endpoint, claims the deliveries
//! that are due (leased for [`LEASE`], so one instance attempts each at a time and another takes
//! over from one that died), and posts them, [`IN_FLIGHT`] at a time. A 2xx delivers; `410 Gone`
//! fails the delivery and stops this process posting to that endpoint (the operator is told to
//! remove it); anything else is attempted again on the retry schedule (27.6 hours), then fails.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use keyward_core::webhook::{
    self, Attempt, Delivery, Settlement, WebhookOutbox, WebhookSecret, envelope, signature,
};
use time::OffsetDateTime;

use crate::error::AppError;
use crate::metrics::Metrics;

/// How long a claimed delivery is ours: longer than an attempt can take ([`TIMEOUT`]).
const LEASE: Duration = Duration::from_secs(60);
/// How long an attempt may take, connecting included.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(15);
/// How long a whole attempt may take, resolving the host included: within [`LEASE`].
const ATTEMPT_BOUND: Duration = Duration::from_secs(30);
/// Deliveries posted at once.
const IN_FLIGHT: u32 = 16;
/// How often the outbox and the due deliveries are looked at.
const TICK: Duration = Duration::from_secs(1);

/// What `--webhook-url`, `--webhook-secret` and `--webhook-allow-private` configure.
#[derive(Debug, Clone)]
pub(crate) struct WebhookSettings {
    /// The endpoints.
    pub(crate) urls: Vec<String>,
    /// The signing secrets, the newest first.
    pub(crate) secrets: Vec<WebhookSecret>,
    /// Whether private, loopback and link-local targets are allowed.
    pub(crate) allow_private: bool,
}

impl WebhookSettings {
    /// Checks the URLs (`http`/`https`, a host) and reads the secrets.
    ///
    /// # Errors
    /// A configuration error naming the bad value (never a secret).
    pub(crate) fn new(
        urls: Vec<String>,
        secrets: &[String],
        allow_private: bool,
    ) -> Result<Option<Self>, AppError> {
        let urls: Vec<String> = urls
            .into_iter()
            .map(|u| u.trim().to_owned())
            .filter(|u| !u.is_empty())
            .collect();
        if urls.is_empty() {
            return Ok(None);
        }
        for u in &urls {
            let parsed = reqwest::Url::parse(u)
                .map_err(|e| AppError::config(format!("invalid --webhook-url {u:?}: {e}")))?;
            if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
                return Err(AppError::config(format!(
                    "invalid --webhook-url {u:?}: an http or https URL with a host"
                )));
            }
        }
        let secrets = secrets
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .map(|s| {
                WebhookSecret::parse(s).map_err(|e| {
                    AppError::config(format!(
                        "invalid --webhook-secret / KEYWARD_WEBHOOK_SECRET: {e}"
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if secrets.is_empty() {
            return Err(AppError::config(
                "--webhook-url needs a signing secret: set KEYWARD_WEBHOOK_SECRET to whsec_… \
                 (several, comma-separated, the newest first, while one rotates)",
            ));
        }
        Ok(Some(Self {
            urls,
            secrets,
            allow_private,
        }))
    }
}

/// The addresses `url`'s host resolves to, refused when one of them is not public (unless
/// private targets are allowed): a webhook must not reach the service's own network.
///
/// # Errors
/// Why the URL cannot be posted to.
pub(crate) async fn resolve(url: &str, allow_private: bool) -> Result<Vec<SocketAddr>, String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| e.to_string())?;
    let host = parsed.host_str().ok_or("no host")?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = parsed.port_or_known_default().ok_or("no port")?;
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .collect();
    if addrs.is_empty() {
        return Err(format!("{host} resolves to no address"));
    }
    if !allow_private && let Some(private) = addrs.iter().find(|a| !webhook::is_public(a.ip())) {
        return Err(format!(
            "{host} resolves to {}, a private, loopback or link-local address (--webhook-allow-private allows it)",
            private.ip()
        ));
    }
    Ok(addrs)
}

/// The running delivery task's state.
#[derive(Debug)]
struct Sender {
    settings: WebhookSettings,
    outbox: Arc<dyn WebhookOutbox>,
    metrics: Arc<Metrics>,
    /// Endpoints that answered `410 Gone`: no more posts from this process.
    gone: Mutex<HashSet<String>>,
}

/// Spawns the delivery task.
pub(crate) fn spawn(
    settings: WebhookSettings,
    outbox: Arc<dyn WebhookOutbox>,
    metrics: Arc<Metrics>,
) -> tokio::task::JoinHandle<()> {
    let sender = Arc::new(Sender {
        settings,
        outbox,
        metrics,
        gone: Mutex::new(HashSet::new()),
    });
    tokio::spawn(async move {
        let mut every = tokio::time::interval(TICK);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            if let Err(e) = sender.round().await {
                tracing::warn!(error = %e, "webhook round failed; trying again");
            }
        }
    })
}

impl Sender {
    /// Fans out what the outbox holds, then posts what is due until nothing is.
    async fn round(self: &Arc<Self>) -> Result<(), keyward_core::StoreError> {
        let live: Vec<String> = {
            let gone = self.gone.lock().unwrap_or_else(PoisonError::into_inner);
            self.settings
                .urls
                .iter()
                .filter(|u| !gone.contains(*u))
                .cloned()
                .collect()
        };
        while self
            .outbox
            .fan_out(&live, OffsetDateTime::now_utc(), 500)
            .await?
            == 500
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

    async fn deliver(&self, d: Delivery) {
        let gone = self
            .gone
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&d.endpoint);
        let (settlement, attempt, outcome) = if gone {
            let attempt = Attempt {
                status: None,
                error: Some("the endpoint answered 410 Gone before: not posted to".into()),
            };
            (Settlement::Failed, attempt, "failed")
        } else {
            // The whole attempt, name resolution included, ends well within the lease.
            let attempt = tokio::time::timeout(ATTEMPT_BOUND, self.post(&d)).await;
            match attempt.unwrap_or_else(|_| Err("timed out".to_owned())) {
                Ok(status) if (200..300).contains(&status) => {
                    let ok = Attempt {
                        status: Some(status),
                        error: None,
                    };
                    (Settlement::Delivered, ok, "delivered")
                }
                Ok(410) => {
                    self.gone
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .insert(d.endpoint.clone());
                    tracing::error!(endpoint = %shown(&d.endpoint), "webhook endpoint answered 410 Gone: no more deliveries to it from this process; remove it from --webhook-url");
                    let attempt = Attempt {
                        status: Some(410),
                        error: Some("410 Gone: the endpoint is disabled".into()),
                    };
                    (Settlement::Failed, attempt, "failed")
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
                            (Settlement::Retry(at), attempt, "retried")
                        }
                        None => (Settlement::Failed, attempt, "failed"),
                    }
                }
            }
        };
        if outcome == "failed" {
            tracing::warn!(endpoint = %shown(&d.endpoint), event = %d.event.id, attempts = d.attempts, error = ?attempt.error, "webhook delivery failed for good");
        }
        self.metrics.webhook(outcome);
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
        let addrs = resolve(&d.endpoint, self.settings.allow_private).await?;
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
        let signed = signature(&self.settings.secrets, &id, timestamp, &body);
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

/// `url` as logs show it: without user info, query and fragment, which may carry credentials.
pub(crate) fn shown(url: &str) -> String {
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
    #[test]
    fn logged_urls_carry_no_credentials() {
        assert_eq!(
            super::shown("https://u:p@hooks.example:8443/k?token=s3cret#x"),
            "https://hooks.example:8443/k"
        );
        assert_eq!(super::shown("not a url"), "<invalid URL>");
    }
}
