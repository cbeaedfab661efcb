//! `keyward serve`: the HTTP server.
//!
//! Routes (DESIGN.md §6): admin management under `/admin/owners/{owner_id}/api-keys…` for the
//! admin credential; self-service `/api-keys…` when `--owner-header` names a header a trusted
//! proxy sets; `GET /v1/whoami`; `POST /v1/verify` for sidecars; `GET /v1/authz` for nginx
//! `auth_request` and Traefik ForwardAuth; `/openapi.json`, `/healthz`, `/readyz`, `/metrics`.
//! Shutdown on SIGINT/SIGTERM drains connections, then flushes batched usage.
//!
//! This file holds the serve lifecycle and the routing. The management routes are
//! keyward-axum's own; the routes only a standalone service has live beside this file:
//! [`verify`](mod@verify) (`/v1/…`), [`auth`] (their authentication), [`ops`] (health, metrics, OpenAPI)
//! and [`reply`] (how they answer).

// Handlers answer with `Problem` documents by value; boxing them would only add noise.
#![allow(clippy::result_large_err)]

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::HeaderName;
use axum::http::request::Parts;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use keyward_core::{Keyward, ScopeRequirement};
use keyward_http as khttp;
use keyward_http::Gate;
use tower::ServiceExt as _;

use crate::admin::{self, AdminToken};
use crate::backend::redact_url;
use crate::config::{ADMIN_SCOPE, Settings, VERIFY_SCOPE};
use crate::error::AppError;
use crate::metrics::Metrics;
use crate::{backend, pepper};

mod auth;
mod deliveries;
mod listen;
mod ops;
mod reply;
mod verify;

use ops::{healthz, metrics, openapi, openapi_document, readyz};
use reply::problem;
use reply::{json, not_found};
use verify::{authz, verify, whoami};

/// Shared state of every handler.
#[derive(Debug)]
struct App {
    kw: Keyward,
    /// The Redis invalidation subscriber, with `--redis-url`.
    redis: Option<keyward_redis::InvalidationListener>,
    admin_token: Option<AdminToken>,
    owner_header: Option<HeaderName>,
    clients: auth::Clients,
    /// Where the proxy names the original request of a signed `/v1/authz` call.
    forwarded: Option<crate::config::ForwardedHeaders>,
    metrics: Arc<Metrics>,
    /// keyward-core's credential decision for `/v1/authz`, counted in the metrics.
    gate: Gate<Parts>,
    openapi: Bytes,
    /// The store's webhook deliveries.
    outbox: Arc<dyn keyward_core::webhook::WebhookOutbox>,
    /// The configured webhook endpoints (`--webhook-url`).
    webhook_endpoints: Vec<String>,
}

type Shared = Arc<App>;

/// Runs the server until SIGINT/SIGTERM.
///
/// # Errors
/// Bad pepper, unreachable database, occupied port, …: anything that stops it from starting.
pub(crate) async fn run(settings: Settings) -> Result<(), AppError> {
    let url = &settings.store.database_url;
    let admin_token = AdminToken::from_env()?;
    let (keyring, source) = pepper::load_keyring(url)?;
    crate::warn_pepper(&source);
    let mut backend = backend::open(url, true, settings.webhooks.is_some()).await?;
    if let Some((read_url, max_lag)) = &settings.read_replica {
        backend = backend::with_read_replica(backend, read_url, *max_lag).await?;
        tracing::info!(replica = %redact_url(read_url), max_lag = ?max_lag, "key lookups read the replica first");
    }
    tracing::info!(backend = backend.kind, database = %redact_url(url), "key store ready");
    let redis = settings
        .redis_url
        .as_deref()
        .map(|url| backend::redis(url, settings.limits_on_redis_loss, settings.redis_lease))
        .transpose()?;
    let kw = backend::engine(
        &backend,
        keyring,
        settings.policy.clone(),
        settings.cache,
        redis.as_ref(),
        backend::Signing {
            config: settings.signing.clone(),
            encryption: settings.encryption.clone(),
        },
        |b| {
            b.failure_throttle(settings.throttle)
                .credits_notice(settings.credits_notice)
        },
    )?;
    match &settings.encryption {
        Some(enc) => tracing::info!(
            region = %settings.signing.region,
            service = %settings.signing.service,
            encryption_key_version = enc.current_version(),
            "request signing (SigV4) enabled"
        ),
        None => tracing::info!(
            "request signing disabled: set KEYWARD_ENCRYPTION_KEY (`openssl rand -base64 32`) to enable it"
        ),
    }
    let invalidations = match &redis {
        None => None,
        Some(r) => {
            let listener = r.spawn_listener(kw.clone());
            if listener.wait_subscribed(Duration::from_secs(3)).await {
                tracing::info!(
                    "redis: rate limits, credits and cache invalidation shared across instances"
                );
            } else {
                tracing::warn!(
                    "redis does not answer yet: rate-limited and credit-bearing keys fail closed (503) until it does"
                );
            }
            Some(listener)
        }
    };

    let open_files = listen::raise_open_file_limit();
    let limits = listen::ConnectionLimits {
        header_read_timeout: settings.header_read_timeout,
        max_connections: listen::effective_max_connections(settings.max_connections, open_files),
        max_per_client: settings.max_connections_per_client,
        trusted: settings.trusted_proxies.clone(),
    };
    let listener = tokio::net::TcpListener::bind(settings.bind)
        .await
        .map_err(|e| AppError::Io(format!("cannot listen on {}: {e}", settings.bind)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| AppError::Io(format!("cannot read the bound address: {e}")))?;
    let base_url = format!("http://{addr}");

    if admin_token.is_some() {
        tracing::info!("admin credential: KEYWARD_ADMIN_TOKEN (and keys with scope {ADMIN_SCOPE})");
    } else {
        let file = admin::key_file_for(settings.admin_key_file.as_deref(), url);
        // Checked before a key exists: a write refused after it would lose the key.
        crate::secret_file::refuse_open_directory(&file, "the admin key file")?;
        match admin::bootstrap(&kw).await? {
            Some(created) => {
                // Handed over outside the log stream: a 0600 file, and the terminal if any.
                admin::write_key_file(&file, &created)?;
                tracing::info!(
                    key_id = %created.key.id,
                    file = %file.display(),
                    "created the admin key (scope {ADMIN_SCOPE}); it is in the file, readable by this user only"
                );
                if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
                    eprint!("{}", admin::banner(&created, &base_url));
                }
            }
            None => tracing::info!(
                "admin credential: keys with scope {ADMIN_SCOPE} (owner {})",
                admin::ADMIN_OWNER
            ),
        }
    }

    let app = Arc::new({
        let metrics = Arc::new(Metrics::new(kw.clone()));
        let clients = auth::Clients {
            client_ip_header: settings.client_ip_header.clone(),
            trusted_proxies: settings.trusted_proxies.clone(),
        };
        // Every gate (the layers', `/v1/authz`'s) finds the client address as this server
        // decides it and reports to the metrics.
        let gate = Gate::new(kw.clone())
            .observe(auth::observer(&metrics))
            .client_ip(client_ip_fn(&clients));
        App {
            redis: invalidations,
            openapi: openapi_document(settings.owner_header.is_some(), &kw),
            kw: kw.clone(),
            admin_token,
            owner_header: settings.owner_header.clone(),
            clients,
            forwarded: settings.forwarded_headers.clone(),
            metrics,
            gate,
            outbox: Arc::clone(&backend.outbox),
            webhook_endpoints: settings
                .webhooks
                .as_ref()
                .map(|w| w.0.endpoints().to_vec())
                .unwrap_or_default(),
        }
    });

    let router = router(Arc::clone(&app)).layer(middleware::from_fn_with_state(
        crate::abuse::Guard::new(settings.max_concurrent_requests, settings.request_timeout),
        crate::abuse::guard,
    ));

    let signals = Signals::install()?;
    let flusher =
        keyward_core::maintenance::spawn_usage_flusher(kw.clone(), settings.flush_interval);
    let retention = crate::audit::spawn_retention(
        kw.clone(),
        settings.audit_retention,
        settings.usage_retention,
        settings.expiry_notice.clone(),
    );
    let webhooks = match &settings.webhooks {
        Some(hooks) => {
            crate::webhooks::check(hooks).await?;
            tracing::info!(
                endpoints = hooks.0.endpoints().len(),
                "lifecycle webhooks on"
            );
            Some(crate::webhooks::spawn(
                hooks.clone(),
                Arc::clone(&backend.outbox),
                Arc::clone(&app.metrics),
            ))
        }
        None => None,
    };
    tracing::info!(
        self_service = settings.owner_header.as_ref().map(HeaderName::as_str),
        "listening on {base_url}"
    );
    if let Some(header) = &settings.client_ip_header {
        let proxies: Vec<String> = limits.trusted.iter().map(ToString::to_string).collect();
        tracing::info!(
            header = %header,
            trusted_proxies = %proxies.join(","),
            "client addresses from the header, when the peer is a trusted proxy (--trusted-proxy); from other peers, the peer's"
        );
    }
    tracing::info!(
        header_read_timeout = ?limits.header_read_timeout,
        max_connections = limits.max_connections,
        max_connections_per_client = limits.max_per_client,
        "connection limits"
    );
    let served = listen::serve(
        listener,
        router,
        limits,
        settings.request_timeout,
        signals.recv(),
    )
    .await;
    retention.abort();
    if let Some(w) = webhooks {
        w.abort();
    }
    flusher.shutdown().await;
    served.map_err(|e| AppError::Io(format!("server error: {e}")))?;
    tracing::info!("stopped");
    Ok(())
}

/// SIGINT/SIGTERM handlers, installed before the server announces its address so that a signal
/// sent right after start-up is never met by the default action (exit without a flush).
struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> Result<Self, AppError> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let err =
                |e: std::io::Error| AppError::Io(format!("cannot install signal handlers: {e}"));
            Ok(Self {
                term: signal(SignalKind::terminate()).map_err(err)?,
                int: signal(SignalKind::interrupt()).map_err(err)?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    async fn recv(mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.int.recv() => tracing::info!("SIGINT: shutting down"),
            _ = self.term.recv() => tracing::info!("SIGTERM: shutting down"),
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("Ctrl-C: shutting down");
        }
    }
}

fn router(app: Shared) -> Router {
    // keyward-axum's layer verifies keys (bearer or signed) in front of the routes that take
    // them, each verification counted in the metrics.
    // Optional: a self-service request (owner header, no key) and a bad admin token are the
    // management routes' own to answer.
    let keys = keyward_axum::KeywardLayer::new(app.gate.clone().optional());
    // The webhook deliveries and endpoints: the admin token, or a key holding keyward:admin by
    // name.
    let admins = keyward_axum::KeywardLayer::new(match ScopeRequirement::all_of([ADMIN_SCOPE]) {
        Ok(need) => app.gate.clone().require(need),
        Err(_) => app.gate.clone(),
    });
    let sidecar = keyward_axum::KeywardLayer::new(
        match ScopeRequirement::any_of([VERIFY_SCOPE, ADMIN_SCOPE]) {
            Ok(need) => app.gate.clone().require(need),
            Err(_) => app.gate.clone(),
        },
    );
    let own = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .route(
            "/v1/whoami",
            get(whoami).route_layer(keyward_axum::KeywardLayer::new(app.gate.clone())),
        )
        .route(
            "/v1/verify",
            post(verify).route_layer(middleware::from_fn_with_state(
                (Arc::clone(&app), sidecar),
                token_or_key,
            )),
        )
        .route("/v1/authz", get(authz))
        .merge(
            Router::new()
                .route("/admin/webhooks/deliveries", get(deliveries::list))
                .route(
                    "/admin/webhooks/deliveries/{delivery_id}/redeliver",
                    post(deliveries::redeliver),
                )
                .route("/admin/webhooks/endpoints", get(deliveries::endpoints))
                .route(
                    "/admin/webhooks/endpoints/{endpoint_id}/enable",
                    post(deliveries::enable),
                )
                .route_layer(middleware::from_fn_with_state(
                    (Arc::clone(&app), admins),
                    token_or_key,
                )),
        )
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(Arc::clone(&app));
    // The management routes are keyward-axum's, as in any axum application: the admin set
    // always, the self-service set with --owner-header. The static admin token is the
    // adapter's admin check.
    let management =
        keyward_axum::management_routes(app.kw.clone(), management_config(&app)).layer(
            middleware::from_fn_with_state((Arc::clone(&app), keys), token_or_key),
        );
    own.merge(management)
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(app, count_requests))
}

/// keyward-axum's management configuration for this server: the admin check accepts the
/// static token (a key holding `keyward:admin` is an administrator in the adapter itself); the
/// owner of a self-service request is the `--owner-header` a trusted proxy sets, and requests
/// that present an API key there are refused (a leaked key must not mint keys).
fn management_config(app: &Shared) -> keyward_axum::ManagementConfig {
    let token = Arc::clone(app);
    let admin = move |parts: &Parts| {
        let ok = token.token_presented(&parts.headers);
        std::future::ready(if ok {
            Ok(())
        } else {
            Err(keyward_axum::Rejection::missing())
        })
    };
    let config = match app.owner_header.clone() {
        Some(name) => {
            // Only from a trusted proxy (anyone else who reaches the port could name any
            // owner); exactly one value, taken as the proxy sent it: keyward-core judges its
            // grammar, and two values (the client's and the proxy's) name no one owner.
            let proxies = Arc::clone(app);
            let resolver = move |parts: &Parts| {
                let mut values = parts.headers.get_all(&name).iter();
                let owner = match (values.next(), values.next()) {
                    (Some(v), None) if proxies.clients.peer_is_trusted_proxy(&parts.extensions) => {
                        v.to_str().ok().map(str::to_owned)
                    }
                    _ => None,
                };
                async move { owner.ok_or_else(keyward_axum::Rejection::unauthenticated) }
            };
            keyward_axum::ManagementConfig::new(resolver).admin(admin)
        }
        None => keyward_axum::ManagementConfig::admin_only(admin),
    };
    // The server's administrators are administrators of every owner: the list of all keys
    // is theirs too.
    let options = keyward_axum::ManagementOptions::default()
        .admin_list_all(true)
        .admin_batch_create(true)
        .admin_audit(true);
    config
        .options(options)
        .client_ip(client_ip_fn(&app.clients))
}

/// The client address as this server decides it (`--client-ip-header`, else the peer), in the
/// form keyward-core's gates and management routes take.
fn client_ip_fn(
    clients: &auth::Clients,
) -> impl Fn(&Parts) -> Option<std::net::IpAddr> + Send + Sync + 'static {
    let clients = clients.clone();
    move |parts| clients.client_ip_of(&parts.headers, &parts.extensions)
}

/// keyward-axum's `KeywardLayer` (built once in [`router`]) in front of the management routes
/// and `/v1/verify`, except for requests that carry the static admin token: that token is no
/// API key, and the layer would refuse it.
async fn token_or_key(
    State((app, keys)): State<(Shared, keyward_axum::KeywardLayer)>,
    req: Request,
    next: Next,
) -> Response {
    if app.token_presented(req.headers()) {
        return next.run(req).await;
    }
    match tower::Layer::layer(&keys, next).oneshot(req).await {
        Ok(res) => res,
        Err(never) => match never {},
    }
}

async fn method_not_allowed() -> Response {
    problem(&khttp::method_not_allowed())
}

async fn count_requests(State(app): State<Shared>, req: Request, next: Next) -> Response {
    app.metrics.request();
    next.run(req).await
}
