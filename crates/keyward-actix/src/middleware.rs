//! [`KeywardAuth`]: the actix-web middleware that authenticates API keys.
//!
//! Modelled on actix-web-httpauth's bearer middleware: a [`Transform`] that builds one
//! [`KeywardAuthMiddleware`] per worker. For each request it finds the credential (see
//! [`CredentialHeaders`]), verifies it with [`Keyward::verify`] and stores the
//! [`Principal`](keyward_core::Principal) in the request extensions, where
//! [`crate::Authenticated`] and [`crate::RequireScopes`] find it.
//!
//! - No keyward credential (none at all, or a bearer token that is not a keyward key): the
//!   request goes on unauthenticated, so open routes and other authentication still work.
//! - A keyward credential that fails: the request is answered here with the problem document
//!   (401 `API_KEY_INVALID` for every kind of bad key, 403, 429 or 503); the reason goes to
//!   `tracing`, never the key.
//! - `Authorization: AWS4-HMAC-SHA256 …` (a SigV4-signed request): when
//!   [`Keyward::signing_enabled`], the body is buffered within `SigningOptions`'s bounds (over:
//!   `413`), the signature verified with [`Keyward::verify_signed`] (`401 SIGNATURE_INVALID`,
//!   `SIGNATURE_EXPIRED`, `SIGNATURE_REPLAYED`, or the bearer path's 403/429/503) and the body
//!   put back for the handler. Without signing, the request goes on without a principal and
//!   where a key is required the answer is `401 SIGNATURE_INVALID`.

use std::net::IpAddr;
use std::rc::Rc;
use std::sync::Arc;

use actix_web::body::EitherBody;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::{Error, HttpMessage};
use futures::FutureExt as _;
use futures::future::{Either, LocalBoxFuture, Map, Ready, ready};
use keyward_core::http::{Decision, Gate, Observed};
use keyward_core::{Keyward, ScopeRequirement, VerifyContext};

use crate::credentials::CredentialHeaders;
use crate::rejection::Rejection;
use crate::signed;

/// Finds the client address the application trusts (peer address, or a vetted forwarded
/// header behind a proxy).
pub type ClientIpFn = dyn Fn(&ServiceRequest) -> Option<IpAddr> + Send + Sync;

#[derive(Clone)]
struct Config {
    gate: Gate,
    headers: CredentialHeaders,
    client_ip: Option<Arc<ClientIpFn>>,
}

/// The authentication middleware. Wrap an `App`, a `Scope` or a `Resource` with it:
///
/// ```no_run
/// # fn demo(keyward: keyward_core::Keyward) {
/// use actix_web::App;
/// use keyward_actix::KeywardAuth;
///
/// let app = App::new().wrap(KeywardAuth::new(keyward));
/// # }
/// ```
///
/// | request presents | result |
/// | --- | --- |
/// | a valid key | `Principal` inserted, inner service called |
/// | a bad key (any reason), a blank or non-UTF-8 credential header | `401 API_KEY_INVALID` |
/// | a valid key lacking the middleware's own requirement ([`KeywardAuth::require`]) | `403 API_KEY_SCOPE_DENIED` |
/// | nothing, or someone else's bearer token (a JWT) | passed on without a principal (or `401 API_KEY_MISSING` with [`KeywardAuth::required`]) |
/// | a SigV4 signature, signing enabled | body buffered and put back, signature verified: `Principal` inserted, or `401 SIGNATURE_*`, `413`, … |
/// | a SigV4 signature, signing not enabled | passed on without a principal (or `401 SIGNATURE_INVALID` where a key is required) |
/// | a store outage | `503 AUTH_UNAVAILABLE` |
#[derive(Clone)]
pub struct KeywardAuth {
    config: Arc<Config>,
}

impl std::fmt::Debug for KeywardAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeywardAuth")
            .field("gate", &self.config.gate)
            .field("headers", &self.config.headers)
            .field("custom_client_ip", &self.config.client_ip.is_some())
            .finish()
    }
}

impl KeywardAuth {
    /// Authenticates with `keyward`, reading `Authorization` and `X-API-Key`, taking the client
    /// address from the TCP peer. A request without a keyward credential passes on without a
    /// principal ([`crate::Authenticated`] and [`crate::RequireScopes`] answer 401 where one is
    /// needed).
    #[must_use]
    pub fn new(keyward: Keyward) -> Self {
        Self {
            config: Arc::new(Config {
                gate: Gate::new(keyward),
                headers: CredentialHeaders::default(),
                client_ip: None,
            }),
        }
    }

    fn edit(mut self, f: impl FnOnce(&mut Config)) -> Self {
        f(Arc::make_mut(&mut self.config));
        self
    }

    /// Checks `requirement` during verification, in the engine's order: scopes before the
    /// key's rate limit and credits are charged. Implies [`KeywardAuth::required`].
    #[must_use]
    pub fn require(self, requirement: ScopeRequirement) -> Self {
        self.edit(|c| c.gate.set_requirement(requirement))
    }

    /// Answers `401 API_KEY_MISSING` when the request presents no keyward credential, instead
    /// of passing it on.
    #[must_use]
    pub fn required(self) -> Self {
        self.edit(|c| c.gate.set_required())
    }

    /// Calls `observer` with the outcome and duration of every verification the middleware
    /// settles (for metrics; requests without a credential that pass on are not observed).
    #[must_use]
    pub fn observe(self, observer: impl Fn(Observed) + Send + Sync + 'static) -> Self {
        self.edit(|c| c.gate.set_observer(Arc::new(observer)))
    }

    /// Reads credentials from these headers instead of `Authorization` / `X-API-Key`.
    #[must_use]
    pub fn credential_headers(self, headers: CredentialHeaders) -> Self {
        self.edit(|c| c.headers = headers)
    }

    /// Takes the client address (for IP allowlists) from `f` instead of the TCP peer address.
    /// Behind a reverse proxy, read a forwarded header *that the proxy sets*, only when the
    /// peer is the proxy; answer
    /// [`VerifyContext::UNKNOWN_CLIENT`](keyward_core::VerifyContext::UNKNOWN_CLIENT) when it
    /// is missing or malformed, never the proxy's own address.
    #[must_use]
    pub fn client_ip(
        self,
        f: impl Fn(&ServiceRequest) -> Option<IpAddr> + Send + Sync + 'static,
    ) -> Self {
        self.edit(|c| c.client_ip = Some(Arc::new(f)))
    }

    /// The credential headers in use.
    #[must_use]
    pub fn headers(&self) -> &CredentialHeaders {
        &self.config.headers
    }
}

impl<S, B> Transform<S, ServiceRequest> for KeywardAuth
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Transform = KeywardAuthMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(KeywardAuthMiddleware {
            service: Rc::new(service),
            config: Arc::clone(&self.config),
        }))
    }
}

/// The per-worker service built by [`KeywardAuth`].
pub struct KeywardAuthMiddleware<S> {
    service: Rc<S>,
    config: Arc<Config>,
}

impl<S> std::fmt::Debug for KeywardAuthMiddleware<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeywardAuthMiddleware")
            .finish_non_exhaustive()
    }
}

impl<S, B> Service<ServiceRequest> for KeywardAuthMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    /// The inner service's own future when the key was settled without waiting, a boxed one
    /// otherwise.
    type Future = Either<
        Map<S::Future, fn(Result<ServiceResponse<B>, Error>) -> Result<Self::Response, Error>>,
        LocalBoxFuture<'static, Result<Self::Response, Self::Error>>,
    >;

    forward_ready!(service);

    fn call(&self, mut req: ServiceRequest) -> Self::Future {
        let config = &self.config;
        config.headers.mark_sensitive(req.headers_mut());
        // Nothing to check, or a key the engine settles without waiting (cached, no backends):
        // the inner service is called right here and its future returned as is.
        let credential = config.headers.extract(config.gate.keyward(), req.headers());
        let now = config.gate.decide_now(credential, || VerifyContext {
            client_ip: client_ip(config, &req),
        });
        match now {
            Some(Decision::Pass(principal)) => {
                if let Some(p) = principal {
                    req.extensions_mut().insert(p);
                }
                return Either::Left(self.service.call(req).map(into_left));
            }
            Some(Decision::Reject(problem)) => {
                let response = req.error_response(Rejection::new(problem));
                return Either::Right(Box::pin(ready(Ok(response.map_into_right_body()))));
            }
            _ => {}
        }
        let config = Arc::clone(&self.config);
        let service = Rc::clone(&self.service);
        Either::Right(Box::pin(async move {
            let ctx = VerifyContext {
                client_ip: client_ip(&config, &req),
            };
            // The key is borrowed from the request's own header while it is verified: no copy.
            let credential = config.headers.extract(config.gate.keyward(), req.headers());
            let outcome = match config.gate.decide(credential, &ctx).await {
                Decision::Pass(principal) => Ok(principal),
                Decision::PassUnverifiedSignature => {
                    req.extensions_mut().insert(signed::UnverifiedSignature);
                    Ok(None)
                }
                Decision::Reject(problem) => Err(Rejection::new(problem)),
                // Boxed: the buffering state stays out of every bearer request's future.
                Decision::Signed => {
                    let started = config.gate.start();
                    let verified = Box::pin(signed::verify(&config.gate, &mut req, &ctx)).await;
                    Gate::observe_result(&config.gate, started, &verified, Rejection::code);
                    verified.map(Some)
                }
            };
            match outcome {
                Ok(principal) => {
                    if let Some(p) = principal {
                        req.extensions_mut().insert(p);
                    }
                    service
                        .call(req)
                        .await
                        .map(ServiceResponse::map_into_left_body)
                }
                Err(rejection) => Ok(req.error_response(rejection).map_into_right_body()),
            }
        }))
    }
}

/// What the inner service answered, in the left arm of the middleware's body.
fn into_left<B>(
    r: Result<ServiceResponse<B>, Error>,
) -> Result<ServiceResponse<EitherBody<B>>, Error> {
    r.map(ServiceResponse::map_into_left_body)
}

/// The client address for [`VerifyContext`]: the configured extractor, or the peer address.
fn client_ip(config: &Config, req: &ServiceRequest) -> Option<IpAddr> {
    match &config.client_ip {
        Some(f) => f(req),
        None => req.peer_addr().map(|a| a.ip()),
    }
}
