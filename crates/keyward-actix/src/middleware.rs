//! [`KeywardAuth`]: the actix-web middleware that authenticates API keys.
//!
//! Modelled on actix-web-httpauth's bearer middleware: a [`Transform`] that builds one
//! [`KeywardAuthMiddleware`] per worker. For each request it hands a [`Head`] of the request
//! and its payload to keyward-http's [`Gate`], which decides everything ([`keyward_http::gate`]),
//! and stores the [`Principal`](keyward_core::Principal) in the request extensions, where
//! [`crate::Authenticated`] and [`crate::RequireScopes`] find it, and puts a signed body back
//! with `ServiceRequest::set_payload` for the handler.

use std::rc::Rc;
use std::sync::Arc;

use actix_web::body::EitherBody;
use actix_web::dev::{Payload, Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::header::HeaderName;
use actix_web::{Error, HttpMessage, HttpRequest};
use futures::FutureExt as _;
use futures::future::{Either, LocalBoxFuture, Map, Ready, ready};
use keyward_http::{Anonymous, Gate, Outcome};

use crate::head::Head;
use crate::rejection::respond;

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
/// What happens to each kind of credential is keyward-core's [`Gate`]
/// ([`keyward_http::gate`]).
#[derive(Debug, Clone)]
pub struct KeywardAuth {
    gate: Arc<Gate<HttpRequest>>,
    /// The credential headers, parsed once, whose values are marked sensitive.
    sensitive: Arc<[HeaderName]>,
}

impl KeywardAuth {
    /// Authenticates with `gate`: a [`Keyward`](keyward_core::Keyward) for the defaults (a
    /// request without a keyward credential passes on without a principal, and
    /// [`crate::Authenticated`] and [`crate::RequireScopes`] answer 401 where one is needed;
    /// the client address is the TCP peer's), or a [`Gate`] with its requirement, observer,
    /// credential headers and client address.
    #[must_use]
    pub fn new(gate: impl Into<Gate<HttpRequest>>) -> Self {
        let gate: Gate<HttpRequest> = gate.into();
        let names = [&gate.headers().authorization, &gate.headers().api_key];
        let parsed = names.map(|n| HeaderName::from_bytes(n.as_bytes()));
        let sensitive = parsed.into_iter().flatten().collect();
        let gate = Arc::new(gate);
        Self { gate, sensitive }
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
            auth: self.clone(),
        }))
    }
}

/// The per-worker service built by [`KeywardAuth`].
#[derive(Debug)]
pub struct KeywardAuthMiddleware<S> {
    service: Rc<S>,
    auth: KeywardAuth,
}

type Answer<B> = Result<ServiceResponse<EitherBody<B>>, Error>;

/// What the inner service answered, in the left arm of the middleware's body.
pub(crate) fn into_left<B>(r: Result<ServiceResponse<B>, Error>) -> Answer<B> {
    r.map(ServiceResponse::map_into_left_body)
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
        Map<S::Future, fn(Result<ServiceResponse<B>, Error>) -> Answer<B>>,
        LocalBoxFuture<'static, Answer<B>>,
    >;

    forward_ready!(service);

    fn call(&self, mut req: ServiceRequest) -> Self::Future {
        let gate = &self.auth.gate;
        let headers = req.headers_mut();
        for name in self.auth.sensitive.iter() {
            if headers.get_all(name).len() > 1 {
                // actix's map has no `get_all_mut`: take every value out and put it back marked.
                let values: Vec<_> = headers.get_all(name).cloned().collect();
                headers.remove(name);
                for mut v in values {
                    v.set_sensitive(true);
                    headers.append(name.clone(), v);
                }
            } else if let Some(v) = headers.get_mut(name) {
                v.set_sensitive(true);
            }
        }
        // Nothing to check, or a key the engine settles without waiting (cached, no backends):
        // the inner service is called right here and its future returned as is.
        match gate.authenticate_now(&Head::new(req.request(), gate.client_ip_finder())) {
            Some(Ok(principal)) => {
                if let Some(p) = principal {
                    req.extensions_mut().insert(p);
                } else {
                    req.extensions_mut().insert(Anonymous::NoKey);
                }
                return Either::Left(self.service.call(req).map(into_left));
            }
            Some(Err(problem)) => {
                let response = req.into_response(respond(problem)).map_into_right_body();
                return Either::Right(Box::pin(ready(Ok(response))));
            }
            None => {}
        }
        let gate = Arc::clone(gate);
        let service = Rc::clone(&self.service);
        Either::Right(Box::pin(async move {
            let payload = req.take_payload();
            let head = Head::new(req.request(), gate.client_ip_finder());
            let sleep = actix_web::rt::time::sleep;
            let outcome = gate.authenticate(&head, payload, |p| p, sleep).await;
            let pass = match outcome {
                Outcome::Pass(pass) => pass,
                Outcome::Reject(problem) => {
                    return Ok(req.into_response(respond(problem)).map_into_right_body());
                }
            };
            if let Some(mark) = pass.anonymous() {
                req.extensions_mut().insert(mark);
            }
            if let Some(p) = pass.principal {
                req.extensions_mut().insert(p);
            }
            let payload = pass
                .body
                .or_read(|b| Payload::from(actix_web::web::Bytes::from(b)));
            req.set_payload(payload);
            let response = service.call(req).await;
            response.map(ServiceResponse::map_into_left_body)
        }))
    }
}
