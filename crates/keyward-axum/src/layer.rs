//! [`KeywardLayer`]: a tower layer that authenticates the API key a request presents and
//! inserts the verified [`Principal`](keyward_core::Principal) into the request extensions.
//!
//! Split as tower-http's `async_require_authorization`: the [`KeywardLayer`] builds a
//! [`KeywardService`] around the inner service, whose futures are [`ResponseFuture`]s.
//!
//! What the layer does with each kind of credential (see [`keyward_core::credentials`]):
//!
//! | request presents | result |
//! | --- | --- |
//! | a valid key | `Principal` inserted, inner service called |
//! | a bad key (any reason), a blank or non-UTF-8 credential header | `401 API_KEY_INVALID` |
//! | a valid key lacking the layer's own requirement | `403 API_KEY_SCOPE_DENIED` |
//! | nothing, or someone else's bearer token (a JWT) | passed on without a principal (or `401 API_KEY_MISSING` with [`KeywardLayer::required`]) |
//! | a SigV4 signature, signing enabled | verified by [`crate::signed::verify_signed_request`] (body buffered and put back); `Principal` inserted, or `401 SIGNATURE_*`, `413`, … |
//! | a SigV4 signature, signing not enabled | passed on without a principal; where a key is required, `401 SIGNATURE_INVALID` |
//! | a store outage | `503 AUTH_UNAVAILABLE` |

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::{Bytes, HttpBody};
use axum::extract::ConnectInfo;
use axum::extract::connect_info::MockConnectInfo;
use axum::response::{IntoResponse, Response};
use http::header::AUTHORIZATION;
use http::{Extensions, HeaderMap, HeaderName, Request};
use keyward_core::credentials::{self, Credential};
use keyward_core::http::{Decision, Gate, Observed};
use keyward_core::{Keyward, ScopeRequirement, VerifyContext};
use tower_layer::Layer;
use tower_service::Service;

use crate::rejection::Rejection;
use crate::signed::{UnverifiedSignature, verify_signed_request};

/// The default name of the API-key header.
pub const DEFAULT_API_KEY_HEADER: HeaderName =
    HeaderName::from_static(keyward_core::credentials::API_KEY_HEADER);

/// Which headers carry credentials. Defaults: `Authorization` and `X-API-Key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialHeaders {
    /// The header read for `Bearer <key>` and SigV4 signatures (`AWS4-HMAC-SHA256 …`).
    pub authorization: HeaderName,
    /// The header whose whole value is a key.
    pub api_key: HeaderName,
}

impl Default for CredentialHeaders {
    fn default() -> Self {
        Self {
            authorization: AUTHORIZATION,
            api_key: DEFAULT_API_KEY_HEADER,
        }
    }
}

impl CredentialHeaders {
    /// What `headers` present. Only the first value of each header is read.
    #[must_use]
    pub fn extract<'a>(&self, keyward: &Keyward, headers: &'a HeaderMap) -> Credential<'a> {
        credentials::extract(
            &keyward.policy().format,
            headers
                .get(&self.authorization)
                .map(http::HeaderValue::as_bytes),
            headers.get(&self.api_key).map(http::HeaderValue::as_bytes),
        )
    }

    /// Marks every value of the credential headers sensitive, so that `Debug` output and
    /// tracing layers (tower-http's `SetSensitiveHeaders` convention) never show them.
    pub fn mark_sensitive(&self, headers: &mut HeaderMap) {
        // One pass over the (few) headers costs less than two hashed lookups through the entry
        // API, and reaches every value of a repeated header.
        for (name, value) in headers.iter_mut() {
            if *name == self.authorization || *name == self.api_key {
                value.set_sensitive(true);
            }
        }
    }
}

/// Decides the client address given to [`VerifyContext`] (for keys with an IP allowlist).
pub type ClientIpFn = Arc<dyn Fn(&HeaderMap, &Extensions) -> Option<IpAddr> + Send + Sync>;

/// The default: the peer address from axum's `ConnectInfo<SocketAddr>` (serve with
/// `into_make_service_with_connect_info::<SocketAddr>()`), or `MockConnectInfo` in tests.
#[must_use]
pub fn peer_ip(_headers: &HeaderMap, extensions: &Extensions) -> Option<IpAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .or_else(|| {
            extensions
                .get::<MockConnectInfo<SocketAddr>>()
                .map(|m| m.0.ip())
        })
}

#[derive(Clone)]
pub(crate) struct LayerConfig {
    pub(crate) gate: Gate,
    pub(crate) headers: CredentialHeaders,
    pub(crate) client_ip: ClientIpFn,
}

/// Authenticates API keys and inserts the [`Principal`](keyward_core::Principal) into the request extensions. See the
/// [module docs](self) for what happens to each kind of credential.
#[derive(Clone)]
pub struct KeywardLayer {
    shared: Arc<LayerConfig>,
}

impl fmt::Debug for KeywardLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeywardLayer")
            .field("headers", &self.shared.headers)
            .field("gate", &self.shared.gate)
            .finish_non_exhaustive()
    }
}

impl KeywardLayer {
    /// A layer verifying keys with `keyward`. By default a request without a keyward credential
    /// passes on without a principal (the [`crate::Authenticated`] extractor and
    /// [`crate::RequireScopes`] answer `401` where one is needed), and no scope is required here.
    #[must_use]
    pub fn new(keyward: Keyward) -> Self {
        Self {
            shared: Arc::new(LayerConfig {
                gate: Gate::new(keyward),
                headers: CredentialHeaders::default(),
                client_ip: Arc::new(peer_ip),
            }),
        }
    }

    fn edit(mut self, f: impl FnOnce(&mut LayerConfig)) -> Self {
        f(Arc::make_mut(&mut self.shared));
        self
    }

    /// Checks `requirement` during verification, in the engine's order: scopes before the key's
    /// rate limit and credits are charged. Implies [`KeywardLayer::required`].
    #[must_use]
    pub fn require(self, requirement: ScopeRequirement) -> Self {
        self.edit(|s| s.gate.set_requirement(requirement))
    }

    /// Answers `401 API_KEY_MISSING` when the request presents no keyward credential, instead of
    /// passing it on.
    #[must_use]
    pub fn required(self) -> Self {
        self.edit(|s| s.gate.set_required())
    }

    /// Calls `observer` with the outcome and duration of every verification the layer settles
    /// (for metrics; requests without a credential that pass on are not observed).
    #[must_use]
    pub fn observe(self, observer: impl Fn(Observed) + Send + Sync + 'static) -> Self {
        self.edit(|s| s.gate.set_observer(Arc::new(observer)))
    }

    /// Reads credentials from other headers.
    #[must_use]
    pub fn credential_headers(self, headers: CredentialHeaders) -> Self {
        self.edit(|s| s.headers = headers)
    }

    /// Decides the client address for IP allowlists (default: [`peer_ip`]). Behind a proxy,
    /// read a forwarded header here — only one the proxy sets, and only when the peer is the
    /// proxy; answer [`VerifyContext::UNKNOWN_CLIENT`](keyward_core::VerifyContext::UNKNOWN_CLIENT)
    /// when it is missing or malformed, never the proxy's own address.
    #[must_use]
    pub fn client_ip(
        self,
        f: impl Fn(&HeaderMap, &Extensions) -> Option<IpAddr> + Send + Sync + 'static,
    ) -> Self {
        self.edit(|s| s.client_ip = Arc::new(f))
    }
}

impl<S> Layer<S> for KeywardLayer {
    type Service = KeywardService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        KeywardService {
            inner,
            shared: Arc::clone(&self.shared),
        }
    }
}

/// The service [`KeywardLayer`] builds.
///
/// It serves any request body that can be rebuilt from the bytes of a buffered signed body
/// (`From<Bytes>`), such as axum's `Body`, which every axum `Router` uses.
#[derive(Clone)]
pub struct KeywardService<S> {
    inner: S,
    shared: Arc<LayerConfig>,
}

impl<S: fmt::Debug> fmt::Debug for KeywardService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeywardService")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, B> Service<Request<B>> for KeywardService<S>
where
    S: Service<Request<B>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: HttpBody + From<Bytes> + Send + 'static,
    B::Data: Send,
    B::Error: fmt::Display,
{
    type Response = Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let shared = &self.shared;
        shared.headers.mark_sensitive(req.headers_mut());
        // Nothing to check, or a key the engine settles without waiting (cached, no backends):
        // the inner service, driven to readiness by `poll_ready`, is called right here, and its
        // future returned as is: no clone of it, no future of ours.
        let credential = shared.headers.extract(shared.gate.keyward(), req.headers());
        let now = shared.gate.decide_now(credential, || VerifyContext {
            client_ip: (shared.client_ip)(req.headers(), req.extensions()),
        });
        match now {
            Some(Decision::Pass(principal)) => {
                if let Some(p) = principal {
                    req.extensions_mut().insert(p);
                }
                return ResponseFuture::inner(self.inner.call(req));
            }
            Some(Decision::Reject(problem)) => {
                let response = Rejection::from(problem).into_response();
                return ResponseFuture::boxed(Box::pin(async move { Ok(response) }));
            }
            _ => {}
        }
        // Take the service that was driven to readiness; leave a fresh clone in its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let shared = Arc::clone(&self.shared);
        ResponseFuture::boxed(Box::pin(async move {
            let ctx = VerifyContext {
                client_ip: (shared.client_ip)(req.headers(), req.extensions()),
            };
            let credential = shared.headers.extract(shared.gate.keyward(), req.headers());
            match shared.gate.decide(credential, &ctx).await {
                Decision::Pass(principal) => {
                    if let Some(p) = principal {
                        req.extensions_mut().insert(p);
                    }
                    inner.call(req).await
                }
                Decision::PassUnverifiedSignature => {
                    req.extensions_mut().insert(UnverifiedSignature);
                    inner.call(req).await
                }
                Decision::Reject(problem) => Ok(Rejection::from(problem).into_response()),
                Decision::Signed => {
                    let (mut parts, body) = req.into_parts();
                    let gate = &shared.gate;
                    let started = gate.start();
                    // Boxed: the buffering state stays out of every bearer request's future.
                    let verified = Box::pin(verify_signed_request(
                        gate.keyward(),
                        &parts,
                        body,
                        gate.requirement(),
                        &ctx,
                    ))
                    .await;
                    gate.observe(
                        started,
                        verified.as_ref().map(|_| ()).map_err(Rejection::code),
                    );
                    match verified {
                        Ok((principal, bytes)) => {
                            parts.extensions.insert(principal);
                            inner.call(Request::from_parts(parts, B::from(bytes))).await
                        }
                        Err(rejection) => Ok(rejection.into_response()),
                    }
                }
            }
        }))
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`KeywardService`]: the inner service's own future when the key
    /// was settled without waiting, a boxed one otherwise.
    pub struct ResponseFuture<F, E> {
        #[pin]
        kind: Kind<F, E>,
    }
}

pin_project_lite::pin_project! {
    #[project = KindProj]
    enum Kind<F, E> {
        Inner { #[pin] future: F },
        Boxed { future: Pin<Box<dyn Future<Output = Result<Response, E>> + Send>> },
    }
}

impl<F, E> ResponseFuture<F, E> {
    fn inner(future: F) -> Self {
        Self {
            kind: Kind::Inner { future },
        }
    }

    fn boxed(future: Pin<Box<dyn Future<Output = Result<Response, E>> + Send>>) -> Self {
        Self {
            kind: Kind::Boxed { future },
        }
    }
}

impl<F, E> fmt::Debug for ResponseFuture<F, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F, E> Future for ResponseFuture<F, E>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Inner { future } => future.poll(cx),
            KindProj::Boxed { future } => future.as_mut().poll(cx),
        }
    }
}
