//! [`Authenticated`]: the extractor for the [`Principal`] that [`crate::KeywardLayer`] verified.

#![allow(
    clippy::result_large_err,
    reason = "axum's own error currency, built once per refused request"
)]

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::response::Response;
use http::Extensions;
use http::request::Parts;
use keyward_core::{Principal, ScopeRequirement};
use keyward_http::{Anonymous, gate};

use crate::rejection::respond;

/// The verified caller, put into the request by [`crate::KeywardLayer`]:
///
/// ```no_run
/// use keyward_axum::Authenticated;
///
/// async fn whoami(caller: Authenticated) -> String {
///     caller.owner_id().to_owned()
/// }
/// ```
///
/// Behind an [`optional`](keyward_http::Gate::optional) layer, extracting it answers `401
/// API_KEY_MISSING` for a request without a key (`401 SIGNATURE_INVALID` for a signature
/// nothing could verify); use `Option<Authenticated>`, which never rejects, where a key is
/// optional. On a route no layer covers it answers `500 SERVER_MISCONFIGURED` and logs why.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Principal);

impl Authenticated {
    /// The principal.
    #[must_use]
    pub fn into_inner(self) -> Principal {
        self.0
    }

    /// Checks a requirement inside a handler (for scopes that depend on the request).
    ///
    /// # Errors
    /// `403 API_KEY_SCOPE_DENIED` listing the missing scopes.
    pub fn require(&self, requirement: &ScopeRequirement) -> Result<(), Response> {
        gate::require_scopes(Some(&self.0), None, requirement, WIRING).map_err(respond)
    }
}

impl std::ops::Deref for Authenticated {
    type Target = Principal;

    fn deref(&self) -> &Principal {
        &self.0
    }
}

/// Where the layers go, for the log line of a route no [`crate::KeywardLayer`] ran before.
const WIRING: &str = "a `KeywardLayer` must run before `RequireScopes` and the `Authenticated` \
    extractor: add it with `.layer(KeywardLayer::new(…))` after the routes and their \
    `.route_layer(RequireScopes::new(…))`, so that it wraps them";

/// Checks `requirement` on the principal the layer left in `extensions`.
pub(crate) fn require(ext: &Extensions, requirement: &ScopeRequirement) -> Result<(), Response> {
    let anonymous = ext.get::<Anonymous>().copied();
    gate::require_scopes(ext.get::<Principal>(), anonymous, requirement, WIRING).map_err(respond)
}

impl<S: Send + Sync> FromRequestParts<S> for Authenticated {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Response> {
        require(&parts.extensions, &ScopeRequirement::none())?;
        let principal = parts.extensions.get::<Principal>().cloned();
        principal
            .map(Self)
            .ok_or_else(|| respond(keyward_http::Problem::missing()))
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for Authenticated {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<Principal>().cloned().map(Self))
    }
}
