//! [`RequireScopes`]: a route-level scope requirement, as a tower layer.
//!
//! Put it inside a [`crate::KeywardLayer`] (with `route_layer` on the routes it guards):
//! without a principal it answers `401 API_KEY_MISSING`, with a principal lacking scopes
//! `403 API_KEY_SCOPE_DENIED` listing them.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::response::{IntoResponse, Response};
use futures::future::{Either, Ready, ready};
use http::Request;
use keyward_core::scope::ScopeError;
use keyward_core::{Principal, ScopeRequirement, VerifyError};
use tower_layer::Layer;
use tower_service::Service;

use crate::rejection::Rejection;

/// Requires scopes of the verified key. The check is on the principal's effective scopes;
/// to check scopes before a key's rate limit is charged, give the requirement to
/// [`crate::KeywardLayer::require`] instead.
#[derive(Debug, Clone)]
pub struct RequireScopes {
    requirement: Arc<ScopeRequirement>,
}

impl RequireScopes {
    /// Requires `requirement`.
    #[must_use]
    pub fn new(requirement: ScopeRequirement) -> Self {
        Self {
            requirement: Arc::new(requirement),
        }
    }

    /// Requires every one of `scopes`.
    ///
    /// # Errors
    /// A [`ScopeError`] for a malformed scope.
    pub fn all_of<I: IntoIterator<Item = S>, S: AsRef<str>>(scopes: I) -> Result<Self, ScopeError> {
        ScopeRequirement::all_of(scopes).map(Self::new)
    }

    /// Requires at least one of `scopes`.
    ///
    /// # Errors
    /// A [`ScopeError`] for a malformed scope.
    pub fn any_of<I: IntoIterator<Item = S>, S: AsRef<str>>(scopes: I) -> Result<Self, ScopeError> {
        ScopeRequirement::any_of(scopes).map(Self::new)
    }

    /// Requires all of `scopes`, written as literals: no `?` where the layer is built.
    ///
    /// # Panics
    /// When a literal is not a well-formed scope (see [`ScopeRequirement::all_of_static`]).
    #[must_use]
    #[track_caller]
    pub fn all_of_static<const N: usize>(scopes: [&'static str; N]) -> Self {
        Self::new(ScopeRequirement::all_of_static(scopes))
    }

    /// Requires at least one of `scopes`, written as literals.
    ///
    /// # Panics
    /// When a literal is not a well-formed scope (see [`ScopeRequirement::any_of_static`]).
    #[must_use]
    #[track_caller]
    pub fn any_of_static<const N: usize>(scopes: [&'static str; N]) -> Self {
        Self::new(ScopeRequirement::any_of_static(scopes))
    }

    /// The requirement.
    #[must_use]
    pub fn requirement(&self) -> &ScopeRequirement {
        &self.requirement
    }
}

impl<S> Layer<S> for RequireScopes {
    type Service = RequireScopesService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireScopesService {
            inner,
            requirement: Arc::clone(&self.requirement),
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
        let verdict = match req.extensions().get::<Principal>() {
            None => Err(crate::signed::missing(req.extensions())),
            Some(p) => self
                .requirement
                .check(p.scopes())
                .map_err(|missing| Rejection::from(VerifyError::ScopeDenied { missing })),
        };
        match verdict {
            Ok(()) => Either::Right(self.inner.call(req)),
            Err(r) => Either::Left(ready(Ok(r.into_response()))),
        }
    }
}
