//! [`Authenticated`]: the extractor for the [`Principal`] that [`crate::KeywardLayer`] verified.

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use http::request::Parts;
use keyward_core::{Principal, ScopeRequirement, VerifyError};

use crate::rejection::Rejection;

/// The verified caller. Extracting it answers `401 API_KEY_MISSING` when no
/// [`crate::KeywardLayer`] verified a key for this request; `Option<Authenticated>` never
/// rejects.
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
    pub fn require(&self, requirement: &ScopeRequirement) -> Result<(), Rejection> {
        requirement
            .check(self.0.scopes())
            .map_err(|missing| Rejection::from(VerifyError::ScopeDenied { missing }))
    }
}

impl std::ops::Deref for Authenticated {
    type Target = Principal;

    fn deref(&self) -> &Principal {
        &self.0
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Authenticated {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .map(Self)
            .ok_or_else(|| crate::signed::missing(&parts.extensions))
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
