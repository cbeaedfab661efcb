//! [`Rejection`]: every error this crate answers with, as an RFC 9457 problem document.

use std::fmt;

use axum::response::{IntoResponse, Response};
use http::{HeaderName, HeaderValue, StatusCode};
use keyward_core::error::ErrorCode;
use keyward_core::http::Reply;
use keyward_core::problem::Problem;
use keyward_core::{ServiceError, VerifyError};

/// A refused request: an `application/problem+json` response with keyward's stable `code`,
/// `WWW-Authenticate: Bearer` on 401 and `Retry-After` on 429.
///
/// Build one from a [`Problem`], a [`VerifyError`] or a [`ServiceError`]; applications use the
/// constructors in their [`crate::OwnerResolver`] and [`crate::AdminCheck`].
#[derive(Clone, PartialEq, Eq)]
pub struct Rejection(Box<Problem>);

impl Rejection {
    /// `401 API_KEY_MISSING`: no credential.
    #[must_use]
    pub fn missing() -> Self {
        Self::from(Problem::missing())
    }

    /// `401 API_KEY_INVALID`: the one answer for every kind of bad key.
    #[must_use]
    pub fn invalid() -> Self {
        Self::from(Problem::new(
            ErrorCode::ApiKeyInvalid,
            Some("the API key is not valid".to_owned()),
        ))
    }

    /// `401 OWNER_UNAUTHENTICATED`: the application could not authenticate the caller (no
    /// session, for an owner resolver).
    #[must_use]
    pub fn unauthenticated() -> Self {
        Self::from(Problem::new(
            ErrorCode::OwnerUnauthenticated,
            Some("no owner session: sign in to manage API keys".to_owned()),
        ))
    }

    /// `403 FORBIDDEN` with a detail.
    #[must_use]
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::from(Problem::new(ErrorCode::Forbidden, Some(detail.into())))
    }

    /// The HTTP status.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The stable code, e.g. `API_KEY_INVALID`.
    #[must_use]
    pub fn code(&self) -> keyward_core::ErrorCode {
        self.0.code
    }

    /// The problem document.
    #[must_use]
    pub fn problem(&self) -> &Problem {
        &self.0
    }

    /// Consumes the rejection, returning its problem document.
    #[must_use]
    pub fn into_problem(self) -> Problem {
        *self.0
    }
}

impl fmt::Debug for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rejection")
            .field("status", &self.0.status)
            .field("code", &self.0.code)
            .field("detail", &self.0.detail)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.0.status, self.0.code)?;
        if let Some(d) = &self.0.detail {
            write!(f, ": {d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Rejection {}

impl From<Problem> for Rejection {
    fn from(p: Problem) -> Self {
        Self(Box::new(p))
    }
}

impl From<&VerifyError> for Rejection {
    fn from(e: &VerifyError) -> Self {
        Self::from(Problem::from(e))
    }
}

impl From<VerifyError> for Rejection {
    fn from(e: VerifyError) -> Self {
        Self::from(&e)
    }
}

impl From<&ServiceError> for Rejection {
    fn from(e: &ServiceError) -> Self {
        Self::from(keyward_core::http::service_problem(e))
    }
}

impl From<ServiceError> for Rejection {
    fn from(e: ServiceError) -> Self {
        Self::from(&e)
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        render(Reply::from(&*self.0))
    }
}

/// keyward-core's framework-neutral answer as an axum response.
pub(crate) fn render(reply: Reply) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut res = Response::new(axum::body::Body::from(reply.body));
    *res.status_mut() = status;
    for (name, value) in reply.headers {
        if let Ok(v) = HeaderValue::from_str(&value) {
            res.headers_mut().insert(HeaderName::from_static(name), v);
        }
    }
    res
}
