//! Lifecycle webhooks for `keyward serve`: the flags (`--webhook-url`, `--webhook-secret`,
//! `--webhook-allow-private`) make a [`WebhookConfig`], and [`spawn`] runs keyward-webhooks'
//! delivery task over the store's outbox, counting attempts in `/metrics`.

use std::sync::Arc;

use keyward_core::webhook::{WebhookOutbox, WebhookSecret};
use keyward_webhooks::{ResolveError, WebhookConfig, WebhookSender};

use crate::error::AppError;
use crate::metrics::Metrics;

pub(crate) use keyward_webhooks::shown;

/// What `--webhook-url`, `--webhook-secret` and `--webhook-allow-private` configure.
#[derive(Debug, Clone)]
pub(crate) struct WebhookSettings(pub(crate) WebhookConfig);

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
        // Blank URLs are skipped (by `WebhookConfig::new`, which trims them): none at all is
        // webhooks off.
        if urls.iter().all(|u| u.trim().is_empty()) {
            return Ok(None);
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
        let config = WebhookConfig::new(urls, secrets)
            .map_err(|e| AppError::config(format!("--webhook-url: {e}")))?
            .allow_private(allow_private);
        Ok(Some(Self(config)))
    }
}

/// Checks the endpoints now: one that resolves to a private address (and private targets are
/// not allowed) is a configuration error; one that does not resolve is only logged.
///
/// # Errors
/// The first endpoint that is not public.
pub(crate) async fn check(settings: &WebhookSettings) -> Result<(), AppError> {
    let config = &settings.0;
    for url in config.endpoints() {
        match keyward_webhooks::resolve(url, config.allows_private()).await {
            Ok(_) => {}
            Err(ResolveError::NotPublic(e)) => {
                return Err(AppError::config(format!(
                    "--webhook-url {}: {e} (--webhook-allow-private allows it)",
                    shown(url)
                )));
            }
            Err(e) => {
                tracing::warn!(url = %shown(url), error = %e, "webhook endpoint not reachable now; deliveries will be attempted on schedule");
            }
        }
    }
    Ok(())
}

/// Spawns the delivery task.
pub(crate) fn spawn(
    settings: WebhookSettings,
    outbox: Arc<dyn WebhookOutbox>,
    metrics: Arc<Metrics>,
) -> tokio::task::JoinHandle<()> {
    WebhookSender::new(settings.0, outbox)
        .on_attempt(move |outcome| metrics.webhook(outcome.as_str()))
        .spawn()
}
