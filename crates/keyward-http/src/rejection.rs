//! [`Rejection`]: a refused request, as applications build one in their owner resolvers and
//! admin checks, and as every adapter answers it.

use std::fmt;

use crate::problem::{self, Problem};
use keyward_core::error::ErrorCode;
use keyward_core::{ServiceError, VerifyError};

/// A refused request: an `application/problem+json` answer with keyward's stable `code`
/// ([`super::Reply`] decides its headers: `no-store`, `WWW-Authenticate: Bearer` on `401`,
/// `Retry-After` on `429`). Each adapter turns it into its framework's response.
#[derive(Clone, PartialEq, Eq)]
pub struct Rejection(Box<Problem>);

impl Rejection {
    /// A rejection answering with `problem`.
    #[must_use]
    pub fn new(problem: Problem) -> Self {
        Self(Box::new(problem))
    }

    /// A rejection of `code` with a human `detail`.
    #[must_use]
    pub fn with_code(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self::new(Problem::new(code, Some(detail.into())))
    }

    /// `401 API_KEY_MISSING`: no credential.
    #[must_use]
    pub fn missing() -> Self {
        Self::new(Problem::missing())
    }

    /// `401 API_KEY_INVALID`: the one answer for every kind of bad key.
    #[must_use]
    pub fn invalid() -> Self {
        Self::with_code(ErrorCode::ApiKeyInvalid, "the API key is not valid")
    }

    /// `401 OWNER_UNAUTHENTICATED`: the application could not authenticate the caller (no
    /// session, for an owner resolver).
    #[must_use]
    pub fn unauthenticated() -> Self {
        Self::with_code(
            ErrorCode::OwnerUnauthenticated,
            "no owner session: sign in to manage API keys",
        )
    }

    /// `403 FORBIDDEN` with a detail.
    #[must_use]
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::with_code(ErrorCode::Forbidden, detail)
    }

    /// `404 API_KEY_NOT_FOUND`.
    #[must_use]
    pub fn not_found() -> Self {
        Self::new(super::key_not_found())
    }

    /// `422 VALIDATION_FAILED` with one field error.
    #[must_use]
    pub fn validation(field: &str, code: &str, message: impl Into<String>) -> Self {
        Self::new(problem::validation(field, code, message))
    }

    /// The stable code, e.g. `API_KEY_INVALID`.
    #[must_use]
    pub fn code(&self) -> ErrorCode {
        self.0.code
    }

    /// The HTTP status.
    #[must_use]
    pub fn status(&self) -> u16 {
        self.0.status
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

/// `403 FORBIDDEN: detail`.
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
        Self::new(p)
    }
}

impl From<Rejection> for Problem {
    fn from(r: Rejection) -> Self {
        r.into_problem()
    }
}

/// Every kind of bad key is the same `API_KEY_INVALID` outside.
impl From<&VerifyError> for Rejection {
    fn from(e: &VerifyError) -> Self {
        Self::new(Problem::from(e))
    }
}

impl From<VerifyError> for Rejection {
    fn from(e: VerifyError) -> Self {
        Self::from(&e)
    }
}

/// Store outages and internal errors are logged at `warn`; their detail never reaches the
/// client.
impl From<&ServiceError> for Rejection {
    fn from(e: &ServiceError) -> Self {
        Self::new(super::reply::service_problem(e))
    }
}

impl From<ServiceError> for Rejection {
    fn from(e: ServiceError) -> Self {
        Self::from(&e)
    }
}

/// The answer: the problem document with its headers.
impl From<&Rejection> for super::Reply {
    fn from(r: &Rejection) -> Self {
        Self::from(r.problem())
    }
}

impl From<Rejection> for super::Reply {
    fn from(r: Rejection) -> Self {
        Self::from(r.problem())
    }
}
