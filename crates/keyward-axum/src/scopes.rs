//! [`RequireScopes`]: a route-level scope requirement, as a tower layer.
//!
//! Put it inside a [`crate::KeywardLayer`] (with `route_layer` on the routes it guards, then
//! the `KeywardLayer` with `layer`): with a principal lacking scopes it answers `403
//! API_KEY_SCOPE_DENIED` listing them; behind an optional layer, without a principal, `401
//! API_KEY_MISSING`. Where no `KeywardLayer` ran first it answers `500 SERVER_MISCONFIGURED`
//! and logs the order to use.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::response::Response;
use futures::future::{Either, Ready, ready};
use http::Request;
use keyward_core::ScopeRequirement;
use tower_layer::Layer;
use tower_service::Service;

/// Requires scopes of the verified key:
/// `RequireScopes::new(ScopeRequirement::all_of_static(["reports:read"]))`. The check is on
/// the principal's effective scopes; to check scopes before a key's rate limit is charged,
/// give the requirement to the layer's [`Gate::require`](keyward_http::Gate::require) instead.
#[derive(Debug, Clone)]
pub struct RequireScopes(Arc<ScopeRequirement>);

impl RequireScopes {
    /// Requires `requirement`.
    #[must_use]
    pub fn new(requirement: ScopeRequirement) -> Self {
        Self(Arc::new(requirement))
    }
}

impl<S> Layer<S> for RequireScopes {
    type Service = RequireScopesService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireScopesService {
            inner,
            requirement: Arc::clone(&self.0),
        }
    }
}

/// The service [`RequireScopes`] builds.
#[derive(Debug, Clone)]
pub struct RequireScopesService<S> {
    inner: S,
    requirement: Arc<ScopeRequirement>,
}

impl<S, B> Service<Request<B>> for RequireScopesService<S>
where
    S: Service<Request<B>, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<Ready<Result<Response, Infallible>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        match crate::extract::require(req.extensions(), &self.requirement) {
            Ok(()) => Either::Right(self.inner.call(req)),
            Err(response) => Either::Left(ready(Ok(response))),
        }
    }
}
