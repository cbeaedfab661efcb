//! The management routes of DESIGN.md §6 as actix [`Scope`]s.
//!
//! - [`management_scope`]: self-service under a prefix (default `/api-keys`); the owner comes
//!   from the application's [`OwnerResolver`], never from the body.
//! - [`admin_scope`]: `/admin/owners/{owner_id}/api-keys…`, the same six routes (prefixes
//!   configurable); the caller must hold `keyward:admin` (a key, by name) or pass the
//!   application's [`AdminCheck`], and the owner comes from the path.
//! - [`management_routes`]: mounts both (the admin scope only when an admin check is set, the self-service scope unless [`ManagementConfig::admin_only`]).
//!
//! Requests that carry an API key are refused (403) unless the application opted in with
//! [`ManagementConfig::allow_api_key_callers`]: a leaked key must not be able to mint more.
//! What each actor may change is decided in keyward-core (DESIGN.md §11): refusals are
//! `403 MANAGEMENT_FORBIDDEN`. Answers about one key carry its version as `ETag`; `PATCH`,
//! `DELETE` and `rotate` honour `If-Match` (`412 PRECONDITION_FAILED`).
//! Every error, including malformed JSON, wrong content type, oversize bodies and bad query
//! strings, is an `application/problem+json` 4xx, never actix's plain-text default.

use std::future::Future;
use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::web::{self, Bytes};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, Scope};
use futures::StreamExt;
use keyward_core::error::ErrorCode;
use keyward_core::http as core_http;
use keyward_core::key::ApiKey;
use keyward_core::service::{CreateKeyRequest, KeyVersion, RotateKeyRequest, UpdateKeyRequest};
use keyward_core::{Actor, KeyId, Keyward, Principal, ScopeRequirement, VerifyContext};

use crate::credentials::{Credential, CredentialHeaders};
use crate::rejection::Rejection;

/// Resolves the owner of a self-service management request from the application's own
/// authentication (a session cookie, a JWT, a header set by a gateway).
///
/// Async closures `Fn(HttpRequest) -> impl Future<Output = Result<String, Rejection>>`
/// implement it (typically answering [`Rejection::unauthenticated`] when nobody is logged in).
#[async_trait::async_trait(?Send)]
pub trait OwnerResolver: Send + Sync + 'static {
    /// The owner id the request acts for.
    ///
    /// # Errors
    /// A [`Rejection`] to answer with, typically [`Rejection::unauthenticated`].
    async fn resolve(&self, req: &HttpRequest) -> Result<String, Rejection>;
}

#[async_trait::async_trait(?Send)]
impl<F, Fut> OwnerResolver for F
where
    F: Fn(HttpRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<String, Rejection>> + 'static,
{
    async fn resolve(&self, req: &HttpRequest) -> Result<String, Rejection> {
        self(req.clone()).await
    }
}

/// Decides whether a request may use the admin routes.
///
/// Async closures `Fn(HttpRequest) -> impl Future<Output = Result<(), Rejection>>` implement it.
#[async_trait::async_trait(?Send)]
pub trait AdminCheck: Send + Sync + 'static {
    /// `Ok(())` for administrators.
    ///
    /// # Errors
    /// A [`Rejection`] to answer with, typically [`Rejection::forbidden`].
    async fn check(&self, req: &HttpRequest) -> Result<(), Rejection>;
}

#[async_trait::async_trait(?Send)]
impl<F, Fut> AdminCheck for F
where
    F: Fn(HttpRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), Rejection>> + 'static,
{
    async fn check(&self, req: &HttpRequest) -> Result<(), Rejection> {
        self(req.clone()).await
    }
}

#[doc(inline)]
pub use keyward_core::http::DEFAULT_BODY_LIMIT;

/// How the management routes are mounted and who may call them.
#[derive(Clone)]
pub struct ManagementConfig {
    prefix: String,
    self_service: bool,
    admin_prefix: String,
    body_limit: usize,
    allow_api_key_callers: bool,
    headers: CredentialHeaders,
    owner: Arc<dyn OwnerResolver>,
    admin: Option<Arc<dyn AdminCheck>>,
}

impl std::fmt::Debug for ManagementConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagementConfig")
            .field("prefix", &self.prefix)
            .field("admin_prefix", &self.admin_prefix)
            .field("body_limit", &self.body_limit)
            .field("allow_api_key_callers", &self.allow_api_key_callers)
            .field("headers", &self.headers)
            .field("admin", &self.admin.is_some())
            .finish_non_exhaustive()
    }
}

impl ManagementConfig {
    /// Routes under `/api-keys`, owners from `owner`, no admin routes, 64 KiB bodies, API-key
    /// callers refused.
    #[must_use]
    pub fn new(owner: impl OwnerResolver) -> Self {
        Self {
            prefix: "/api-keys".into(),
            self_service: true,
            admin_prefix: "/admin".into(),
            body_limit: DEFAULT_BODY_LIMIT,
            allow_api_key_callers: false,
            headers: CredentialHeaders::default(),
            owner: Arc::new(owner),
            admin: None,
        }
    }

    /// Only the admin routes, guarded by `check` (a key holding `keyward:admin` passes too): for
    /// a service where owners never manage their own keys.
    #[must_use]
    pub fn admin_only(check: impl AdminCheck) -> Self {
        let nobody = |_: HttpRequest| std::future::ready(Err(Rejection::unauthenticated()));
        let mut config = Self::new(nobody).admin(check);
        config.self_service = false;
        config
    }

    /// Mounts the self-service routes under `prefix` (default `/api-keys`; a leading `/` is
    /// added and a trailing one dropped).
    #[must_use]
    pub fn prefix(mut self, prefix: &str) -> Self {
        self.prefix = normalize(prefix);
        self
    }

    /// Mounts the admin routes under `{admin_prefix}/owners/{owner_id}{prefix}` (default
    /// `/admin`).
    #[must_use]
    pub fn admin_prefix(mut self, prefix: &str) -> Self {
        self.admin_prefix = normalize(prefix);
        self
    }

    /// Enables the admin routes, guarded by `check`.
    #[must_use]
    pub fn admin(mut self, check: impl AdminCheck) -> Self {
        self.admin = Some(Arc::new(check));
        self
    }

    /// Largest accepted request body in bytes (default 64 KiB); larger ones get 413.
    #[must_use]
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// Lets requests that present an API key manage keys: the key is verified first (if no
    /// [`crate::KeywardAuth`] did already) and its [`Principal`] is in the request extensions
    /// for the [`OwnerResolver`]. Off by default: a leaked key must not mint more keys.
    #[must_use]
    pub fn allow_api_key_callers(mut self, allow: bool) -> Self {
        self.allow_api_key_callers = allow;
        self
    }

    /// The credential headers, to recognise API-key callers (match [`crate::KeywardAuth::headers`]).
    #[must_use]
    pub fn credential_headers(mut self, headers: CredentialHeaders) -> Self {
        self.headers = headers;
        self
    }

    /// The self-service prefix.
    #[must_use]
    pub fn self_prefix(&self) -> &str {
        &self.prefix
    }

    /// The full admin scope path, `{admin_prefix}/owners/{owner_id}/api-keys`.
    #[must_use]
    pub fn admin_path(&self) -> String {
        format!(
            "{}/owners/{{owner_id}}/api-keys",
            self.admin_prefix.trim_end_matches('/')
        )
    }

    /// Whether admin routes are enabled.
    #[must_use]
    pub fn has_admin(&self) -> bool {
        self.admin.is_some()
    }

    /// Whether the self-service routes are mounted (all but [`admin_only`](Self::admin_only)).
    #[must_use]
    pub fn has_self_service(&self) -> bool {
        self.self_service
    }
}

fn normalize(prefix: &str) -> String {
    let p = prefix.trim_end_matches('/');
    if p.starts_with('/') {
        p.to_owned()
    } else {
        format!("/{p}")
    }
}

#[derive(Clone)]
struct State {
    keyward: Keyward,
    config: ManagementConfig,
    admin: bool,
}

/// The self-service management routes (§6) under the configured prefix.
#[must_use]
pub fn management_scope(keyward: Keyward, config: ManagementConfig) -> Scope {
    let prefix = config.prefix.clone();
    six_routes(web::scope(&prefix).app_data(web::Data::new(State {
        keyward,
        config,
        admin: false,
    })))
}

/// The admin routes under `{admin_prefix}/owners/{owner_id}{prefix}`: the same six routes as
/// [`management_scope`], for the owner in the path. The caller must hold `keyward:admin` (a
/// key, by name) or pass the [`AdminCheck`] in `config`; without one, only such keys get in.
#[must_use]
pub fn admin_scope(keyward: Keyward, config: ManagementConfig) -> Scope {
    let path = config.admin_path();
    six_routes(web::scope(&path).app_data(web::Data::new(State {
        keyward,
        config,
        admin: true,
    })))
}

/// Create, list, get, update, revoke and rotate under `scope`.
fn six_routes(scope: Scope) -> Scope {
    scope
        .service(
            web::resource("")
                .route(web::post().to(create))
                .route(web::get().to(list))
                .default_service(web::to(method_not_allowed)),
        )
        .service(
            web::resource("/{key_id}")
                .route(web::get().to(get))
                .route(web::patch().to(update))
                .route(web::delete().to(revoke))
                .default_service(web::to(method_not_allowed)),
        )
        .service(
            web::resource("/{key_id}/rotate")
                .route(web::post().to(rotate))
                .default_service(web::to(method_not_allowed)),
        )
        .default_service(web::to(not_found))
}

/// Mounts [`management_scope`] and, when an admin check is set, [`admin_scope`]:
/// `App::new().configure(keyward_actix::management_routes(keyward, config))` (the same name and
/// arguments as keyward-axum's `management_routes`).
pub fn management_routes(
    keyward: Keyward,
    config: ManagementConfig,
) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        if config.has_admin() {
            cfg.service(admin_scope(keyward.clone(), config.clone()));
        }
        if config.self_service {
            cfg.service(management_scope(keyward, config));
        }
    }
}

/// The OpenAPI document of the routes `config` mounts, with the SigV4 scheme when `keyward`
/// verifies signed requests (the same name and arguments as keyward-axum's).
#[cfg(feature = "openapi")]
#[must_use]
pub fn openapi_document(
    config: &ManagementConfig,
    keyward: &Keyward,
) -> keyward_core::openapi::OpenApi {
    keyward_core::openapi::document(&keyward_core::openapi::Mounted {
        prefix: &config.prefix,
        self_service: config.self_service,
        admin: config.has_admin(),
        signing: keyward.signing_enabled(),
    })
}

/// A `GET` resource at `path` serving `document` (from [`openapi_document`]) as JSON.
#[cfg(feature = "openapi")]
#[must_use]
pub fn openapi_route(path: &str, document: &keyward_core::openapi::OpenApi) -> actix_web::Resource {
    let body = Bytes::from(serde_json::to_vec(document).unwrap_or_default());
    web::resource(path).route(web::get().to(move || {
        let body = body.clone();
        async move {
            HttpResponse::Ok()
                .insert_header((
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                ))
                .body(body)
        }
    }))
}

/// A [`web::JsonConfig`] for the application's own JSON routes that answers like keyward:
/// problem documents for oversize bodies (413), wrong content types (415), malformed JSON
/// (400) and JSON of the wrong shape (422 with the field), instead of actix's plain text.
#[must_use]
pub fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit)
        .error_handler(|e, _| json_payload_error(&e).into())
}

/// Maps actix's [`actix_web::error::JsonPayloadError`] to the problem keyward would answer.
#[must_use]
pub fn json_payload_error(e: &actix_web::error::JsonPayloadError) -> Rejection {
    use actix_web::error::JsonPayloadError as E;
    match e {
        E::OverflowKnownLength { limit, .. } | E::Overflow { limit } => {
            Rejection::new(core_http::payload_too_large(*limit))
        }
        E::ContentType => Rejection::new(core_http::unsupported_media_type()),
        E::Deserialize(err) => {
            // Re-run the shared classification on the error's category: core names the field.
            use serde_json::error::Category;
            match err.classify() {
                Category::Data => {
                    let msg = err.to_string();
                    let field = |lead: &str| {
                        msg.strip_prefix(lead)
                            .and_then(|r| r.split('`').nth(1))
                            .map(|f| f.chars().take(64).collect::<String>())
                    };
                    let (name, code) = if let Some(f) = field("unknown field") {
                        (f, "unknown_field")
                    } else if let Some(f) = field("missing field") {
                        (f, "required")
                    } else {
                        ("body".to_owned(), "invalid")
                    };
                    let message: String =
                        msg.chars().take(200).filter(|c| !c.is_control()).collect();
                    Rejection::validation(&name, code, message)
                }
                _ => Rejection::new(core_http::bad_request("the request body is not valid JSON")),
            }
        }
        _ => Rejection::new(core_http::bad_request("the request body could not be read")),
    }
}

async fn method_not_allowed() -> Result<HttpResponse, Rejection> {
    Err(Rejection::new(core_http::method_not_allowed()))
}

async fn not_found() -> Result<HttpResponse, Rejection> {
    Err(Rejection::not_found())
}

/// The principal of a presented API key, verified here unless a middleware did already;
/// `None` when no key was presented.
async fn presented_key(state: &State, req: &HttpRequest) -> Result<Option<Principal>, Rejection> {
    if let Some(p) = req.extensions().get::<Principal>() {
        return Ok(Some(p.clone()));
    }
    let principal = match state.config.headers.extract(&state.keyward, req.headers()) {
        Credential::Key(k) => {
            let key = ApiKey::new(k.to_owned());
            let ctx = VerifyContext {
                client_ip: req.peer_addr().map(|a| a.ip()),
            };
            state.keyward.verify(key.expose_secret(), &ScopeRequirement::none(), &ctx).await.map_err(|e| {
                tracing::debug!(reason = e.reason(), code = %e.code(), key = %key, "API key rejected");
                Rejection::from(&e)
            })?
        }
        Credential::Invalid(reason) => {
            tracing::debug!(
                reason = reason.as_str(),
                code = "API_KEY_INVALID",
                "API key rejected"
            );
            return Err(Rejection::invalid());
        }
        // Signed requests are verified by KeywardAuth's SignatureVerifier, not here.
        Credential::Signed(_) | Credential::NotOurs | Credential::None => return Ok(None),
    };
    req.extensions_mut().insert(principal.clone());
    Ok(Some(principal))
}

/// Who the request acts as (DESIGN.md §11). Self-service: the verified key when key callers are
/// allowed, else the resolver's owner. Admin routes: an administrator of the path's owner, by a
/// key holding `keyward:admin` or by the application's admin check.
async fn actor(state: &State, req: &HttpRequest) -> Result<Actor, Rejection> {
    let forbidden = || Rejection::new(core_http::api_key_management_forbidden());
    if state.admin {
        let owner = req
            .match_info()
            .get("owner_id")
            .filter(|o| !o.is_empty())
            .map(str::to_owned)
            .ok_or_else(Rejection::not_found)?;
        let check = async || match &state.config.admin {
            Some(check) => check.check(req).await,
            None => Err(Rejection::new(core_http::admin_forbidden())),
        };
        // A key the middleware verified already decides first; otherwise the application's
        // check runs before a presented key is verified, so that its own credential (a session,
        // a static token) may ride in a header that also carries API keys.
        let verified = req.extensions().get::<Principal>().cloned();
        if let Some(p) = verified {
            if p.is_admin() {
                return Ok(Actor::admin_for(owner));
            }
            if !state.config.allow_api_key_callers {
                return Err(forbidden());
            }
            check().await?;
            return Ok(Actor::admin_for(owner));
        }
        let refused = match check().await {
            Ok(()) => return Ok(Actor::admin_for(owner)),
            Err(r) => r,
        };
        return match presented_key(state, req).await? {
            Some(p) if p.is_admin() => Ok(Actor::admin_for(owner)),
            Some(_) if !state.config.allow_api_key_callers => Err(forbidden()),
            _ => Err(refused),
        };
    }
    let presented = req.extensions().contains::<Principal>()
        || state
            .config
            .headers
            .extract(&state.keyward, req.headers())
            .is_presented();
    if presented && !state.config.allow_api_key_callers {
        return Err(forbidden());
    }
    match presented_key(state, req).await? {
        Some(p) => Ok(Actor::key(&p)),
        None => Ok(Actor::owner(state.config.owner.resolve(req).await?)),
    }
}

fn key_id(req: &HttpRequest) -> Result<KeyId, Rejection> {
    core_http::path_key_id(req.match_info().get("key_id").unwrap_or("")).map_err(Rejection::new)
}

/// A JSON answer; responses carrying a raw key are never cached, answers about one key carry
/// its version as `ETag`.
fn json_response<T: serde::Serialize>(
    status: StatusCode,
    body: &T,
    secret: bool,
    version: Option<KeyVersion>,
) -> HttpResponse {
    match serde_json::to_vec(body) {
        Ok(bytes) => {
            let mut res = HttpResponse::build(status);
            res.insert_header((
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ));
            if secret {
                res.insert_header((
                    header::CACHE_CONTROL,
                    HeaderValue::from_static(core_http::NO_STORE),
                ));
            }
            if let Some(v) = version {
                res.insert_header((header::ETAG, v.etag()));
            }
            res.body(bytes)
        }
        Err(_) => actix_web::ResponseError::error_response(&Rejection::with_code(
            ErrorCode::AuthUnavailable,
            "the response could not be encoded",
        )),
    }
}

fn if_match(req: &HttpRequest) -> Result<Option<KeyVersion>, Rejection> {
    core_http::if_match(
        req.headers()
            .get(header::IF_MATCH)
            .map(HeaderValue::as_bytes),
    )
    .map_err(Rejection::new)
}

/// Reads at most `limit` bytes of body.
///
/// # Errors
/// 413 `PAYLOAD_TOO_LARGE` past the limit (checked on `Content-Length` first), 400 on a broken
/// stream.
async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<Bytes, Rejection> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(Rejection::new(core_http::payload_too_large(limit)));
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| {
            Rejection::new(core_http::bad_request("the request body could not be read"))
        })?;
        if body.len().saturating_add(chunk.len()) > limit {
            return Err(Rejection::new(core_http::payload_too_large(limit)));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

fn content_type(req: &HttpRequest) -> Option<&[u8]> {
    req.headers()
        .get(header::CONTENT_TYPE)
        .map(HeaderValue::as_bytes)
}

async fn create(
    state: web::Data<State>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, Rejection> {
    let actor = actor(&state, &req).await?;
    let bytes = read_body(&req, payload, state.config.body_limit).await?;
    let body: CreateKeyRequest = core_http::json_body(content_type(&req), &bytes)?;
    let created = state.keyward.create_key_as(&actor, body).await?;
    let version = KeyVersion::of_view(&created.key);
    Ok(json_response(
        StatusCode::CREATED,
        &created,
        true,
        Some(version),
    ))
}

async fn list(state: web::Data<State>, req: HttpRequest) -> Result<HttpResponse, Rejection> {
    let actor = actor(&state, &req).await?;
    let query = Some(req.query_string()).filter(|q| !q.is_empty());
    let (cursor, limit) = core_http::list_query(query)?;
    let page = state
        .keyward
        .list_keys(&actor, cursor.as_deref(), limit)
        .await?;
    Ok(json_response(StatusCode::OK, &page, false, None))
}

async fn get(state: web::Data<State>, req: HttpRequest) -> Result<HttpResponse, Rejection> {
    let actor = actor(&state, &req).await?;
    let id = key_id(&req)?;
    let view = state.keyward.get_key(&actor, &id).await?;
    let version = KeyVersion::of_view(&view);
    Ok(json_response(StatusCode::OK, &view, false, Some(version)))
}

async fn update(
    state: web::Data<State>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, Rejection> {
    let actor = actor(&state, &req).await?;
    let id = key_id(&req)?;
    let expected = if_match(&req)?;
    let bytes = read_body(&req, payload, state.config.body_limit).await?;
    let body: UpdateKeyRequest = core_http::json_body(content_type(&req), &bytes)?;
    let view = state
        .keyward
        .update_key(&actor, &id, body, expected)
        .await?;
    let version = KeyVersion::of_view(&view);
    Ok(json_response(StatusCode::OK, &view, false, Some(version)))
}

async fn revoke(state: web::Data<State>, req: HttpRequest) -> Result<HttpResponse, Rejection> {
    let actor = actor(&state, &req).await?;
    let id = key_id(&req)?;
    let expected = if_match(&req)?;
    state.keyward.revoke_key(&actor, &id, expected).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn rotate(
    state: web::Data<State>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, Rejection> {
    let actor = actor(&state, &req).await?;
    let id = key_id(&req)?;
    let expected = if_match(&req)?;
    let bytes = read_body(&req, payload, state.config.body_limit).await?;
    let body: RotateKeyRequest = core_http::json_body_or_default(content_type(&req), &bytes)?;
    let created = state
        .keyward
        .rotate_key(&actor, &id, body, expected)
        .await?;
    let version = KeyVersion::of_view(&created.key);
    Ok(json_response(
        StatusCode::CREATED,
        &created,
        true,
        Some(version),
    ))
}
