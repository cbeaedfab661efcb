//! `keyward serve`: the HTTP server.
//!
//! Routes (DESIGN.md §6): admin management under `/admin/owners/{owner_id}/api-keys…` for the
//! admin credential; self-service `/api-keys…` when `--owner-header` names a header a trusted
//! proxy sets; `GET /v1/whoami`; `POST /v1/verify` for sidecars; `GET /v1/authz` for nginx
//! `auth_request` and Traefik ForwardAuth; `/openapi.json`, `/healthz`, `/readyz`, `/metrics`.
//! Shutdown on SIGINT/SIGTERM drains connections, then flushes batched usage.

// Handlers answer with `Problem` documents by value; boxing them would only add noise.
#![allow(clippy::result_large_err)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, RawQuery, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use keyward_core::credentials::{Credential, extract};
use keyward_core::http as khttp;
use keyward_core::problem::CONTENT_TYPE as PROBLEM_JSON;
use keyward_core::scope::Mode;
use keyward_core::{
    ErrorCode, Keyward, Principal, Problem, ScopeRequirement, VerifyContext, VerifyError,
};
use serde::{Deserialize, Serialize};
use tower::ServiceExt as _;

use crate::admin::{self, AdminToken};
use crate::config::{ADMIN_SCOPE, Settings, VERIFY_SCOPE, redact_url};
use crate::error::AppError;
use crate::metrics::Metrics;
use crate::{backend, pepper};

const API_KEY_HEADER: &str = "x-api-key";

/// Shared state of every handler.
#[derive(Debug)]
struct App {
    kw: Keyward,
    /// The Redis invalidation subscriber, with `--redis-url`.
    redis: Option<keyward_redis::InvalidationListener>,
    admin_token: Option<AdminToken>,
    owner_header: Option<HeaderName>,
    client_ip_header: Option<HeaderName>,
    metrics: Metrics,
    openapi: Bytes,
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
    let backend = backend::open(url, true).await?;
    tracing::info!(backend = backend.kind, database = %redact_url(url), "key store ready");
    let redis = settings
        .redis_url
        .as_deref()
        .map(backend::redis)
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
        settings.throttle,
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

    let listener = tokio::net::TcpListener::bind(settings.bind)
        .await
        .map_err(|e| AppError::Io(format!("cannot listen on {}: {e}", settings.bind)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| AppError::Io(format!("cannot read the bound address: {e}")))?;
    let base_url = format!("http://{addr}");

    if admin_token.is_some() {
        tracing::info!("admin credential: KEYWARD_ADMIN_TOKEN (and keys with scope {ADMIN_SCOPE})");
    } else if let Some(created) = admin::bootstrap(&kw).await? {
        // Handed over outside the log stream: a 0600 file, and the terminal if there is one.
        let file = admin::key_file_for(settings.admin_key_file.as_deref(), url);
        admin::write_key_file(&file, &created)?;
        tracing::info!(
            key_id = %created.key.id,
            file = %file.display(),
            "created the admin key (scope {ADMIN_SCOPE}); it is in the file, readable by this user only"
        );
        if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            eprint!("{}", admin::banner(&created, &base_url));
        }
    } else {
        tracing::info!(
            "admin credential: keys with scope {ADMIN_SCOPE} (owner {})",
            admin::ADMIN_OWNER
        );
    }

    let app = Arc::new(App {
        redis: invalidations,
        openapi: openapi_document(settings.owner_header.is_some(), kw.signing_enabled()),
        kw: kw.clone(),
        admin_token,
        owner_header: settings.owner_header.clone(),
        client_ip_header: settings.client_ip_header.clone(),
        metrics: Metrics::default(),
    });
    let router = router(Arc::clone(&app)).layer(middleware::from_fn_with_state(
        crate::abuse::Guard::new(settings.max_concurrent_requests, settings.request_timeout),
        crate::abuse::guard,
    ));

    let signals = Signals::install()?;
    let flusher = tokio::spawn(flush_loop(kw.clone(), settings.flush_interval));
    tracing::info!(
        self_service = settings.owner_header.as_ref().map(HeaderName::as_str),
        "listening on {base_url}"
    );
    let served = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(signals.recv())
    .await;
    flusher.abort();
    final_flush(&kw).await;
    served.map_err(|e| AppError::Io(format!("server error: {e}")))?;
    tracing::info!("stopped");
    Ok(())
}

async fn flush_loop(kw: Keyward, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        if kw.pending_invalidations() > 0 {
            let left = kw.retry_invalidations().await;
            if left > 0 {
                tracing::warn!(pending = left, "cache invalidations still not published");
            }
        }
        match kw.flush_usage().await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(keys = n, "usage flushed"),
            Err(e) => tracing::warn!(error = %e, "usage flush failed; kept for the next attempt"),
        }
    }
}

/// Flushes what is left, retrying a few times while the store recovers.
async fn final_flush(kw: &Keyward) {
    for attempt in 1..=5 {
        match kw.flush_usage().await {
            Ok(n) => {
                tracing::info!(keys = n, "usage flushed on shutdown");
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, attempt, "usage flush on shutdown failed");
                tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
            }
        }
    }
    tracing::error!(
        pending = kw.pending_usage(),
        "usage could not be flushed on shutdown; it is lost"
    );
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
    let own = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .route("/v1/whoami", get(whoami))
        .route("/v1/verify", post(verify))
        .route("/v1/authz", get(authz))
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(Arc::clone(&app));
    // The management routes are keyward-axum's, as in any axum application: the admin set
    // always, the self-service set with --owner-header. Keys (bearer or signed) are verified by
    // the adapter's layer in front; the static admin token is the adapter's admin check.
    let management =
        keyward_axum::management_router(app.kw.clone(), management_config(&app)).layer(
            middleware::from_fn_with_state(Arc::clone(&app), authenticate_management),
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
            Err(keyward_axum::Rejection::from(Problem::missing()))
        })
    };
    let config = match app.owner_header.clone() {
        Some(name) => {
            let resolver = move |parts: &Parts| {
                let owner = parts
                    .headers
                    .get(&name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::trim)
                    .filter(|v| !v.is_empty())
                    .map(str::to_owned);
                async move { owner.ok_or_else(keyward_axum::Rejection::unauthenticated) }
            };
            keyward_axum::ManagementConfig::new(resolver).admin(admin)
        }
        None => keyward_axum::ManagementConfig::admin_only(admin),
    };
    let ips = Arc::clone(app);
    config.client_ip(move |headers, extensions| ips.client_ip_of(headers, extensions))
}

/// keyward-axum's `KeywardLayer` in front of the management routes, except for requests that
/// carry the static admin token: that token is no API key, and the layer would refuse it.
async fn authenticate_management(State(app): State<Shared>, req: Request, next: Next) -> Response {
    if app.token_presented(req.headers()) {
        return next.run(req).await;
    }
    let ips = Arc::clone(&app);
    let layer = keyward_axum::KeywardLayer::new(app.kw.clone())
        .client_ip(move |headers, extensions| ips.client_ip_of(headers, extensions));
    match tower::Layer::layer(&layer, next).oneshot(req).await {
        Ok(res) => res,
        Err(never) => match never {},
    }
}

async fn method_not_allowed() -> Response {
    let mut p = khttp::bad_request("this method is not allowed on this route");
    p.status = 405;
    "METHOD_NOT_ALLOWED".clone_into(&mut p.code);
    "Method not allowed".clone_into(&mut p.title);
    "urn:keyward:problem:method-not-allowed".clone_into(&mut p.type_uri);
    problem(&p)
}

async fn count_requests(State(app): State<Shared>, req: Request, next: Next) -> Response {
    app.metrics.request();
    next.run(req).await
}

// --- responses ---------------------------------------------------------------------------------

pub(crate) fn problem(p: &Problem) -> Response {
    let status = StatusCode::from_u16(p.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut res = (status, p.to_json()).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    if p.needs_www_authenticate() {
        h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    if let Some(v) = p
        .retry_after_header()
        .and_then(|v| HeaderValue::from_str(&v).ok())
    {
        h.insert(header::RETRY_AFTER, v);
    }
    res
}

fn json<T: Serialize>(status: StatusCode, v: &T) -> Response {
    match serde_json::to_vec(v) {
        Ok(body) => (status, [(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(_) => problem(&Problem::new(
            ErrorCode::AuthUnavailable,
            Some("response encoding failed".to_owned()),
        )),
    }
}

async fn not_found() -> Response {
    let mut p = khttp::bad_request("no such route");
    p.status = 404;
    "NOT_FOUND".clone_into(&mut p.code);
    "Not found".clone_into(&mut p.title);
    "urn:keyward:problem:not-found".clone_into(&mut p.type_uri);
    problem(&p)
}

// --- authentication ----------------------------------------------------------------------------

fn outcome(e: &VerifyError) -> &'static str {
    outcome_of_code(e.code().as_str())
}

/// The metrics label of an error code.
fn outcome_of_code(code: &str) -> &'static str {
    const LABELS: &[(ErrorCode, &str)] = &[
        (ErrorCode::ApiKeyInvalid, "invalid"),
        (ErrorCode::ApiKeyScopeDenied, "scope_denied"),
        (ErrorCode::ApiKeyIpDenied, "ip_denied"),
        (ErrorCode::RateLimited, "rate_limited"),
        (ErrorCode::UsageExhausted, "usage_exhausted"),
        (ErrorCode::AuthUnavailable, "unavailable"),
        (ErrorCode::SignatureInvalid, "signature_invalid"),
        (ErrorCode::SignatureExpired, "signature_expired"),
        (ErrorCode::SignatureReplayed, "signature_replayed"),
        (ErrorCode::PayloadTooLarge, "payload_too_large"),
    ];
    LABELS
        .iter()
        .find(|(c, _)| c.as_str() == code)
        .map_or("other", |(_, label)| label)
}

impl App {
    /// Verifies `key`, counting the outcome and latency.
    async fn verify_key(
        &self,
        key: &str,
        req: &ScopeRequirement,
        ip: SocketAddr,
    ) -> Result<Principal, VerifyError> {
        let started = Instant::now();
        let r = self
            .kw
            .verify(key, req, &VerifyContext::with_ip(ip.ip()))
            .await;
        let label = match &r {
            Ok(_) => "ok",
            Err(e) => {
                tracing::debug!(reason = e.reason(), "verification refused");
                outcome(e)
            }
        };
        self.metrics.verify(label, started.elapsed());
        r
    }

    /// Authenticates the request's own credential against `req`: a key (bearer or
    /// `X-API-Key`), or a SigV4 signature over the request as received. A signature covers the
    /// body, so for a signed request the body is buffered here (within the bounds of
    /// `SigningConfig`, else `413`) and handed back in `body` for the handler to read.
    async fn authenticate(
        &self,
        parts: &Parts,
        body: &mut Pending,
        req: &ScopeRequirement,
        ip: SocketAddr,
    ) -> Result<Principal, Problem> {
        let ip = self.client_ip(&parts.headers, ip);
        let headers = &parts.headers;
        let cred = extract(
            &self.kw.policy().format,
            headers
                .get(header::AUTHORIZATION)
                .map(HeaderValue::as_bytes),
            headers.get(API_KEY_HEADER).map(HeaderValue::as_bytes),
        );
        match cred {
            Credential::Key(k) => self
                .verify_key(k, req, ip)
                .await
                .map_err(|e| Problem::from(&e)),
            Credential::Invalid(reason) => {
                tracing::debug!(reason = %reason, "unusable credential header");
                self.metrics.verify("invalid", Duration::ZERO);
                Err(Problem::new(
                    ErrorCode::ApiKeyInvalid,
                    Some("the API key is not valid".to_owned()),
                ))
            }
            Credential::Signed(_) => self.verify_signed(parts, body, req, ip).await,
            Credential::None | Credential::NotOurs => {
                self.metrics.verify("missing", Duration::ZERO);
                Err(Problem::missing())
            }
        }
    }

    /// Verifies a SigV4-signed request with keyward-axum's helper (body bounds, `413`, the
    /// request rebuilt as received), counting the outcome and latency.
    async fn verify_signed(
        &self,
        parts: &Parts,
        body: &mut Pending,
        req: &ScopeRequirement,
        ip: SocketAddr,
    ) -> Result<Principal, Problem> {
        let started = Instant::now();
        let unread = std::mem::replace(body, Pending::Read(Bytes::new()));
        let raw = match unread {
            Pending::Unread(b) => b,
            Pending::Read(bytes) => Body::from(bytes),
        };
        let ctx = VerifyContext::with_ip(ip.ip());
        let r = keyward_axum::signed::verify_signed_request(&self.kw, parts, raw, req, &ctx).await;
        match r {
            Ok((principal, bytes)) => {
                *body = Pending::Read(bytes);
                self.metrics.verify("ok", started.elapsed());
                Ok(principal)
            }
            Err(rejection) => {
                let p = rejection.into_problem();
                self.metrics
                    .verify(outcome_of_code(&p.code), started.elapsed());
                Err(p)
            }
        }
    }

    /// The client address: from the trusted header when configured and well formed (the last
    /// entry of a list, the one the nearest proxy added), else the peer.
    fn client_ip(&self, headers: &HeaderMap, peer: SocketAddr) -> SocketAddr {
        let from_header = self.client_ip_header.as_ref().and_then(|name| {
            let v = headers.get_all(name).iter().next_back()?.to_str().ok()?;
            v.rsplit(',')
                .next()?
                .trim()
                .parse::<std::net::IpAddr>()
                .ok()
        });
        from_header.map_or(peer, |ip| SocketAddr::new(ip, 0))
    }

    /// The client address from a request's headers and its `ConnectInfo`, as
    /// [`client_ip`](Self::client_ip) decides it; `None` without a peer address.
    fn client_ip_of(
        &self,
        headers: &HeaderMap,
        extensions: &axum::http::Extensions,
    ) -> Option<std::net::IpAddr> {
        let peer = extensions.get::<ConnectInfo<SocketAddr>>()?.0;
        Some(self.client_ip(headers, peer).ip())
    }

    /// The static admin token, if configured and presented.
    fn token_presented(&self, headers: &HeaderMap) -> bool {
        let Some(token) = &self.admin_token else {
            return false;
        };
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let v = v.trim();
                let (scheme, rest) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then_some(rest.trim())
            });
        let api_key = headers.get(API_KEY_HEADER).and_then(|v| v.to_str().ok());
        // Evaluate both so the timing does not reveal which header carried it.
        let a = bearer.is_some_and(|b| token.matches(b));
        let b = api_key.is_some_and(|k| token.matches(k));
        a | b
    }
}

// --- operational routes ------------------------------------------------------------------------

#[derive(Serialize)]
struct Status {
    status: &'static str,
}

async fn healthz() -> Response {
    json(StatusCode::OK, &Status { status: "ok" })
}

async fn readyz(State(app): State<Shared>) -> Response {
    if app.redis.as_ref().is_some_and(|l| !l.is_subscribed()) {
        return problem(&Problem::new(
            ErrorCode::AuthUnavailable,
            Some("Redis is unreachable".to_owned()),
        ));
    }
    let pending = app.kw.pending_invalidations();
    if pending > 0 {
        // Revocations or changes other instances have not heard of: they may still accept a
        // key this one refuses, until their cache TTL ends.
        return problem(&Problem::new(
            ErrorCode::AuthUnavailable,
            Some(format!(
                "{pending} cache invalidations not yet published to the other instances"
            )),
        ));
    }
    match app.kw.store().ping().await {
        Ok(()) => json(StatusCode::OK, &Status { status: "ready" }),
        Err(e) => {
            tracing::warn!(error = %e, "readiness: key store unreachable");
            problem(&Problem::new(
                ErrorCode::AuthUnavailable,
                Some("the key store is unreachable".to_owned()),
            ))
        }
    }
}

async fn metrics(State(app): State<Shared>) -> Response {
    let body = app.metrics.render(&app.kw);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

async fn openapi(State(app): State<Shared>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        app.openapi.clone(),
    )
        .into_response()
}

/// The management document from core, plus the server's own routes.
fn openapi_document(self_service: bool, signing: bool) -> Bytes {
    let doc = keyward_core::openapi::document("/api-keys", true, signing);
    let mut v = serde_json::to_value(&doc).unwrap_or_default();
    if let Some(paths) = v
        .get_mut("paths")
        .and_then(serde_json::Value::as_object_mut)
    {
        if !self_service {
            paths.retain(|k, _| !k.starts_with("/api-keys"));
        }
        let problem = serde_json::json!({
            "description": "Problem document",
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
        });
        let bearer = if signing {
            serde_json::json!([{"apiKeyAuth": []}, {"apiKeyHmacAuth": []}])
        } else {
            serde_json::json!([{"apiKeyAuth": []}])
        };
        paths.insert("/v1/whoami".into(), serde_json::json!({"get": {
            "operationId": "whoami", "summary": "The principal of the presented key", "tags": ["verify"],
            "security": bearer,
            "responses": {"200": {"description": "The key's principal", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Principal"}}}},
                          "401": problem, "403": problem, "429": problem, "503": problem}}}));
        paths.insert("/v1/verify".into(), serde_json::json!({"post": {
            "operationId": "verifyKey", "summary": "Verify a key for a sidecar (admin credential or a key with keyward:verify)", "tags": ["verify"],
            "security": bearer,
            "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/VerifyRequest"}}}},
            "responses": {"200": {"description": "The verdict", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/VerifyResponse"}}}},
                          "400": problem, "401": problem, "403": problem, "415": problem, "422": problem, "503": problem}}}));
        paths.insert("/v1/authz".into(), serde_json::json!({"get": {
            "operationId": "authz", "summary": "Forward-auth check for nginx auth_request and Traefik ForwardAuth", "tags": ["verify"],
            "security": bearer,
            "parameters": [
                {"name": "scope", "in": "query", "required": false, "description": "Required scopes, comma-separated or repeated", "schema": {"type": "string"}},
                {"name": "mode", "in": "query", "required": false, "schema": {"type": "string", "enum": ["all_of", "any_of"]}}],
            "responses": {"204": {"description": "Allowed", "headers": {
                    "X-Keyward-Owner": {"schema": {"type": "string"}},
                    "X-Keyward-Key-Id": {"schema": {"type": "string"}},
                    "X-Keyward-Scopes": {"schema": {"type": "string"}, "description": "comma-separated"}}},
                "401": problem, "403": problem, "422": problem, "429": problem, "503": problem}}}));
        for (path, id, summary) in [
            ("/healthz", "healthz", "Liveness"),
            ("/readyz", "readyz", "Readiness: the key store answers"),
        ] {
            paths.insert(path.into(), serde_json::json!({"get": {"operationId": id, "summary": summary, "tags": ["operations"],
                "responses": {"200": {"description": "OK"}, "503": problem}}}));
        }
        paths.insert("/metrics".into(), serde_json::json!({"get": {"operationId": "metrics", "summary": "Prometheus metrics", "tags": ["operations"],
            "responses": {"200": {"description": "Prometheus text format", "content": {"text/plain": {"schema": {"type": "string"}}}}}}}));
    }
    if let Some(schemas) = v
        .pointer_mut("/components/schemas")
        .and_then(serde_json::Value::as_object_mut)
    {
        schemas.insert("Principal".into(), serde_json::json!({"type": "object", "required": ["key_id", "owner_id", "scopes", "env", "metadata"], "properties": {
            "key_id": {"type": "string"}, "owner_id": {"type": "string"}, "scopes": {"type": "array", "items": {"type": "string"}},
            "env": {"type": "string"}, "metadata": {"type": "object"}}}));
        schemas.insert("VerifyRequest".into(), serde_json::json!({"type": "object", "required": ["key"], "additionalProperties": false, "properties": {
            "key": {"type": "string"}, "scopes": {"type": "array", "items": {"type": "string"}},
            "mode": {"type": "string", "enum": ["all_of", "any_of"]}, "client_ip": {"type": "string"}}}));
        schemas.insert(
            "VerifyResponse".into(),
            serde_json::json!({"type": "object", "required": ["valid"], "properties": {
            "valid": {"type": "boolean"}, "code": {"type": "string"},
            "missing_scopes": {"type": "array", "items": {"type": "string"}},
            "retry_after": {"type": "integer"},
            "key": {"$ref": "#/components/schemas/Principal"}}}),
        );
    }
    Bytes::from(serde_json::to_vec(&v).unwrap_or_default())
}

// --- verification routes -----------------------------------------------------------------------

async fn whoami(
    State(app): State<Shared>,
    ConnectInfo(ip): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let (parts, body) = req.into_parts();
    let mut body = Pending::Unread(body);
    match app
        .authenticate(&parts, &mut body, &ScopeRequirement::none(), ip)
        .await
    {
        Ok(p) => json(StatusCode::OK, &p),
        Err(p) => problem(&p),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyRequest {
    key: String,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    mode: Option<Mode>,
    /// The address the key's holder called from, for keys with an IP allowlist.
    #[serde(default)]
    client_ip: Option<std::net::IpAddr>,
}

#[derive(Serialize)]
struct VerifyResponse {
    valid: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    missing_scopes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<Principal>,
}

fn requirement(scopes: &[String], mode: Mode) -> Result<ScopeRequirement, Problem> {
    let r = match mode {
        Mode::AllOf => ScopeRequirement::all_of(scopes),
        Mode::AnyOf => ScopeRequirement::any_of(scopes),
    };
    r.map_err(|e| keyward_core::problem::validation("scopes", "invalid", e.to_string()))
}

async fn verify(
    State(app): State<Shared>,
    ConnectInfo(ip): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let (parts, body) = req.into_parts();
    let mut body = Pending::Unread(body);
    let caller_ok = if app.token_presented(&parts.headers) {
        Ok(())
    } else {
        match ScopeRequirement::any_of([VERIFY_SCOPE, ADMIN_SCOPE]) {
            Ok(need) => app
                .authenticate(&parts, &mut body, &need, ip)
                .await
                .map(|_| ()),
            Err(_) => Err(khttp::admin_forbidden()),
        }
    };
    if let Err(p) = caller_ok {
        return problem(&p);
    }
    let body: VerifyRequest = match read_json(&parts.headers, body).await {
        Ok(b) => b,
        Err(p) => return problem(&p),
    };
    let need = match requirement(&body.scopes, body.mode.unwrap_or_default()) {
        Ok(n) => n,
        Err(p) => return problem(&p),
    };
    // The key under test was presented to the caller, not to us: its holder's address is what
    // the caller says it is (keys with an allowlist fail without one).
    let ctx = VerifyContext {
        client_ip: body.client_ip,
    };
    let started = Instant::now();
    let r = app.kw.verify(&body.key, &need, &ctx).await;
    app.metrics
        .verify(r.as_ref().map_or_else(outcome, |_| "ok"), started.elapsed());
    match r {
        Ok(p) => json(
            StatusCode::OK,
            &VerifyResponse {
                valid: true,
                code: None,
                missing_scopes: Vec::new(),
                retry_after: None,
                key: Some(p),
            },
        ),
        Err(e @ VerifyError::Unavailable(_)) => problem(&Problem::from(&e)),
        Err(e) => {
            let p = Problem::from(&e);
            json(
                StatusCode::OK,
                &VerifyResponse {
                    valid: false,
                    code: Some(e.code().as_str()),
                    missing_scopes: p.missing_scopes,
                    retry_after: p.retry_after,
                    key: None,
                },
            )
        }
    }
}

/// `scope` (comma-separated or repeated) and `mode` from a query string.
fn authz_query(q: Option<&str>) -> Result<ScopeRequirement, Problem> {
    let mut scopes = Vec::new();
    let mut mode = Mode::AllOf;
    for pair in q.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = percent_decode(v)
            .ok_or_else(|| keyward_core::problem::validation("scope", "invalid", "not UTF-8"))?;
        match k {
            "scope" | "scopes" => scopes.extend(
                v.split([',', ' '])
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned),
            ),
            "mode" => {
                mode = match v.as_str() {
                    "all_of" => Mode::AllOf,
                    "any_of" => Mode::AnyOf,
                    _ => {
                        return Err(keyward_core::problem::validation(
                            "mode",
                            "invalid",
                            "all_of or any_of",
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    requirement(&scopes, mode)
}

fn percent_decode(v: &str) -> Option<String> {
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let s = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(s, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// Headers naming the original method, target and host of a forward-auth request, in order of
/// preference: nginx snippets conventionally set `X-Original-*`, Traefik sends `X-Forwarded-*`.
const ORIGINAL_METHOD: [&str; 2] = ["x-original-method", "x-forwarded-method"];
const ORIGINAL_URI: [&str; 2] = ["x-original-uri", "x-forwarded-uri"];
const ORIGINAL_HOST: &str = "x-forwarded-host";

/// The request a forward-auth call stands for, to check a signature against: the method, path
/// and query the proxy names in [`ORIGINAL_METHOD`] / [`ORIGINAL_URI`] (else those of the call
/// itself, which no client signed), and the host of [`ORIGINAL_HOST`] (else `Host`). The other
/// headers are the call's own: the proxy forwards the client's.
fn original_request(parts: &Parts) -> Result<Parts, Problem> {
    let first = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| parts.headers.get(*n))
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let bad = |what: &str| {
        Problem::new(
            ErrorCode::SignatureInvalid,
            Some(format!(
                "the forwarded {what} of the signed request is malformed"
            )),
        )
    };
    let method = match first(&ORIGINAL_METHOD) {
        Some(m) => axum::http::Method::from_bytes(m.as_bytes()).map_err(|_| bad("method"))?,
        None => parts.method.clone(),
    };
    let uri = match first(&ORIGINAL_URI) {
        Some(u) if u.starts_with('/') => u.parse::<axum::http::Uri>().map_err(|_| bad("URI"))?,
        Some(_) => return Err(bad("URI")),
        None => parts.uri.clone(),
    };
    let mut headers = parts.headers.clone();
    if let Some(host) = parts.headers.get(ORIGINAL_HOST).cloned() {
        headers.insert(header::HOST, host);
    }
    let mut builder = axum::http::Request::builder()
        .method(method)
        .uri(uri)
        .version(parts.version);
    if let Some(h) = builder.headers_mut() {
        *h = headers;
    }
    builder
        .body(())
        .map(|r| r.into_parts().0)
        .map_err(|_| bad("request"))
}

async fn authz(
    State(app): State<Shared>,
    ConnectInfo(ip): ConnectInfo<SocketAddr>,
    RawQuery(q): RawQuery,
    req: Request,
) -> Response {
    let need = match authz_query(q.as_deref()) {
        Ok(n) => n,
        Err(p) => return problem(&p),
    };
    let (parts, body) = req.into_parts();
    let signed = parts
        .headers
        .get(header::AUTHORIZATION)
        .is_some_and(|v| keyward_core::sigv4::Authorization::is_sigv4(v.as_bytes()));
    // A signed request is checked as the client sent it, which the proxy describes in headers;
    // its body is whatever the proxy forwards (with the documented snippets: none).
    let parts = if signed {
        match original_request(&parts) {
            Ok(p) => p,
            Err(p) => return problem(&p),
        }
    } else {
        parts
    };
    let mut body = Pending::Unread(body);
    match app.authenticate(&parts, &mut body, &need, ip).await {
        Ok(p) => {
            let mut res = StatusCode::NO_CONTENT.into_response();
            let h = res.headers_mut();
            if let Ok(v) = HeaderValue::from_bytes(p.owner_id().as_bytes()) {
                h.insert("x-keyward-owner", v);
            }
            if let Ok(v) = HeaderValue::from_str(p.key_id().as_str()) {
                h.insert("x-keyward-key-id", v);
            }
            let scopes: Vec<&str> = p.scopes().iter().map(keyward_core::Scope::as_str).collect();
            if let Ok(v) = HeaderValue::from_str(&scopes.join(",")) {
                h.insert("x-keyward-scopes", v);
            }
            res
        }
        Err(p) => problem(&p),
    }
}

// --- management routes -------------------------------------------------------------------------

/// A request body: not read yet, or already buffered to verify a signature.
enum Pending {
    /// Still on the connection.
    Unread(Body),
    /// Buffered (and verified) by a signature check.
    Read(Bytes),
}

/// Reads a body of at most [`khttp::DEFAULT_BODY_LIMIT`] bytes, with the bounds and answers of
/// keyward-axum's management routes.
async fn read_body(headers: &HeaderMap, body: Pending) -> Result<Bytes, Problem> {
    let limit = khttp::DEFAULT_BODY_LIMIT;
    match body {
        Pending::Read(bytes) if bytes.len() > limit => Err(khttp::payload_too_large(limit)),
        Pending::Read(bytes) => Ok(bytes),
        Pending::Unread(body) => keyward_axum::routes::read_bounded_body(headers, body, limit)
            .await
            .map_err(keyward_axum::Rejection::into_problem),
    }
}

fn content_type(headers: &HeaderMap) -> Option<&[u8]> {
    headers.get(header::CONTENT_TYPE).map(HeaderValue::as_bytes)
}

async fn read_json<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: Pending,
) -> Result<T, Problem> {
    let bytes = read_body(headers, body).await?;
    khttp::json_body(content_type(headers), &bytes)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn authz_queries() {
        assert!(authz_query(None).unwrap().scopes().is_empty());
        let r = authz_query(Some("scope=reports%3Aread,billing:write&mode=any_of")).unwrap();
        assert_eq!(r.scopes().len(), 2);
        assert_eq!(r.mode(), Mode::AnyOf);
        assert_eq!(
            authz_query(Some("scope=a:b&scope=c:d"))
                .unwrap()
                .scopes()
                .len(),
            2
        );
        assert_eq!(
            authz_query(Some("scope=BAD SCOPE")).unwrap_err().status,
            422
        );
        assert_eq!(authz_query(Some("mode=some")).unwrap_err().status, 422);
        assert_eq!(authz_query(Some("scope=%ff")).unwrap_err().status, 422);
        assert_eq!(authz_query(Some("scope=%4")).unwrap_err().status, 422);
    }
}
