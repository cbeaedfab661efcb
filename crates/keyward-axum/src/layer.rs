//! [`KeywardLayer`]: a tower layer that authenticates the API key a request presents and
//! inserts the verified [`Principal`](keyward_core::Principal) into the request extensions.
//!
//! Split as tower-http's `async_require_authorization`: the [`KeywardLayer`] builds a
//! [`KeywardService`] around the inner service. What happens to each kind of credential is
//! keyward-core's [`Gate`] ([`keyward_http::gate`]): a valid key passes with its
//! principal; a bad one is `401 API_KEY_INVALID`; nothing (or someone else's bearer token)
//! is `401 API_KEY_MISSING`, or passes on without a principal with [`Gate::optional`]; a
//! SigV4-signed request has its body read within the signing bounds, verified and put back.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::{Bytes, HttpBody};
use axum::response::Response;
use futures::future::{BoxFuture, Either};
use http::request::Parts;
use http::{HeaderName, Request};
use http_body_util::BodyExt;
use keyward_http::{Anonymous, Gate, Outcome};
use tower_layer::Layer;
use tower_service::Service;

use crate::head::Head;
use crate::rejection::respond;

/// Authenticates API keys and inserts the [`Principal`](keyward_core::Principal) into the
/// request extensions. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct KeywardLayer {
    gate: Arc<Gate<Parts>>,
    /// The credential headers, parsed once, whose values are marked sensitive.
    sensitive: Arc<[HeaderName]>,
}

impl KeywardLayer {
    /// A layer authenticating with `gate`: a [`Keyward`](keyward_core::Keyward) for the
    /// defaults (every request must present a valid key; the client address is
    /// [`crate::head::peer_ip`]), or a [`Gate`] with its requirement, observer, credential
    /// headers, client address, or [`Gate::optional`] to pass requests without a key on.
    #[must_use]
    pub fn new(gate: impl Into<Gate<Parts>>) -> Self {
        let gate: Gate<Parts> = gate.into();
        let names = [&gate.headers().authorization, &gate.headers().api_key];
        let parsed = names.map(|n| HeaderName::from_bytes(n.as_bytes()));
        let sensitive = parsed.into_iter().flatten().collect();
        let gate = Arc::new(gate);
        Self { gate, sensitive }
    }
}

impl<S> Layer<S> for KeywardLayer {
    type Service = KeywardService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        let (gate, sensitive) = (Arc::clone(&self.gate), Arc::clone(&self.sensitive));
        KeywardService {
            inner,
            gate,
            sensitive,
        }
    }
}

/// The service [`KeywardLayer`] builds.
///
/// It serves any request body that can be rebuilt from the bytes of a read signed body
/// (`From<Bytes>`), such as axum's `Body`, which every axum `Router` uses.
#[derive(Debug, Clone)]
pub struct KeywardService<S> {
    inner: S,
    gate: Arc<Gate<Parts>>,
    sensitive: Arc<[HeaderName]>,
}

/// The response future of [`KeywardService`]: the inner service's own future when the key was
/// settled without waiting, a boxed one otherwise.
pub type ResponseFuture<F, E> = Either<F, BoxFuture<'static, Result<Response, E>>>;

impl<S, B> Service<Request<B>> for KeywardService<S>
where
    S: Service<Request<B>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: HttpBody + From<Bytes> + Send + 'static,
    B::Data: AsRef<[u8]> + Send,
    B::Error: fmt::Display,
{
    type Response = Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let gate = &self.gate;
        let (mut parts, body) = req.into_parts();
        // One pass over the (few) headers reaches every value of a repeated one.
        for (name, value) in &mut parts.headers {
            if self.sensitive.contains(name) {
                value.set_sensitive(true);
            }
        }
        // Nothing to check, or a key the engine settles without waiting (cached, no backends):
        // the inner service, driven to readiness by `poll_ready`, is called right here, and its
        // future returned as is: no clone of it, no future of ours.
        match gate.authenticate_now(&Head::new(&parts, gate.client_ip_finder())) {
            Some(Ok(principal)) => {
                if let Some(p) = principal {
                    parts.extensions.insert(p);
                } else {
                    parts.extensions.insert(Anonymous::NoKey);
                }
                return Either::Left(self.inner.call(Request::from_parts(parts, body)));
            }
            Some(Err(problem)) => {
                let response = respond(problem);
                return Either::Right(Box::pin(async move { Ok(response) }));
            }
            None => {}
        }
        // Take the service that was driven to readiness; leave a fresh clone in its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let gate = Arc::clone(&self.gate);
        Either::Right(Box::pin(async move {
            let head = Head::new(&parts, gate.client_ip_finder());
            let stream = BodyExt::into_data_stream;
            let outcome = gate.authenticate(&head, body, stream, tokio::time::sleep);
            let pass = match outcome.await {
                Outcome::Pass(pass) => pass,
                Outcome::Reject(problem) => return Ok(respond(problem)),
            };
            if let Some(mark) = pass.anonymous() {
                parts.extensions.insert(mark);
            }
            if let Some(p) = pass.principal {
                parts.extensions.insert(p);
            }
            let body = pass.body.or_read(|bytes| B::from(Bytes::from(bytes)));
            inner.call(Request::from_parts(parts, body)).await
        }))
    }
}
