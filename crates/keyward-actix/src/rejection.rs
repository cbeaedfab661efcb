//! The adapter's error type: every refusal becomes an RFC 9457 `application/problem+json`
//! response built from [`keyward_core::Problem`], so this adapter and the axum one answer
//! byte-for-byte alike.

use std::fmt;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use keyward_core::error::ErrorCode;
use keyward_core::http::Reply;
use keyward_core::{Problem, ServiceError, VerifyError};

/// A refused request. Implements [`ResponseError`]: the response is `application/problem+json`
/// with `WWW-Authenticate: Bearer` on 401 and `Retry-After` on 429.
///
/// Return it from handlers (`Result<_, Rejection>`) to answer exactly as keyward does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    problem: Box<Problem>,
}

impl Rejection {
    /// A rejection carrying `problem` as its body.
    #[must_use]
    pub fn new(problem: Problem) -> Self {
        Self {
            problem: Box::new(problem),
        }
    }

    /// A rejection of `code` with a human `detail`.
    #[must_use]
    pub fn with_code(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self::new(Problem::new(code, Some(detail.into())))
    }

    /// `401 API_KEY_MISSING`: no credential was presented.
    #[must_use]
    pub fn missing() -> Self {
        Self::new(Problem::missing())
    }

    /// `401 API_KEY_INVALID`: the one answer for every kind of bad key.
    #[must_use]
    pub fn invalid() -> Self {
        Self::with_code(ErrorCode::ApiKeyInvalid, "the API key is not valid")
    }

    /// `401 OWNER_UNAUTHENTICATED`: the caller is not authenticated (the owner resolver found
    /// nobody).
    #[must_use]
    pub fn unauthenticated() -> Self {
        Self::with_code(
            ErrorCode::OwnerUnauthenticated,
            "no owner session: sign in to manage API keys",
        )
    }

    /// `403 FORBIDDEN` with a human `detail`.
    #[must_use]
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::with_code(ErrorCode::Forbidden, detail)
    }

    /// `404 API_KEY_NOT_FOUND`.
    #[must_use]
    pub fn not_found() -> Self {
        Self::from(ServiceError::NotFound)
    }

    /// `422 VALIDATION_FAILED` for one field.
    #[must_use]
    pub fn validation(field: &str, code: &str, message: impl Into<String>) -> Self {
        Self::new(keyward_core::problem::validation(field, code, message))
    }

    /// The stable code, e.g. `API_KEY_INVALID`.
    #[must_use]
    pub fn code(&self) -> keyward_core::ErrorCode {
        self.problem.code
    }

    /// The problem document sent as the body.
    #[must_use]
    pub fn problem(&self) -> &Problem {
        &self.problem
    }

    /// The problem document, by value.
    #[must_use]
    pub fn into_problem(self) -> Problem {
        *self.problem
    }

    /// The HTTP status.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.problem.detail {
            Some(d) => write!(f, "{} ({}): {d}", self.problem.title, self.problem.code),
            None => write!(f, "{} ({})", self.problem.title, self.problem.code),
        }
    }
}

impl std::error::Error for Rejection {}

impl From<Problem> for Rejection {
    fn from(problem: Problem) -> Self {
        Self::new(problem)
    }
}

impl From<&VerifyError> for Rejection {
    /// Every kind of bad key is the same `API_KEY_INVALID` outside.
    fn from(e: &VerifyError) -> Self {
        Self::new(Problem::from(e))
    }
}

impl From<VerifyError> for Rejection {
    fn from(e: VerifyError) -> Self {
        Self::from(&e)
    }
}

impl From<&ServiceError> for Rejection {
    fn from(e: &ServiceError) -> Self {
        Self::new(keyward_core::http::service_problem(e))
    }
}

impl From<ServiceError> for Rejection {
    fn from(e: ServiceError) -> Self {
        Self::from(&e)
    }
}

impl ResponseError for Rejection {
    fn status_code(&self) -> StatusCode {
        self.status()
    }

    fn error_response(&self) -> HttpResponse {
        problem_response(&self.problem)
    }
}

/// The HTTP response for `problem`: status, `application/problem+json` body, `Cache-Control:
/// no-store`, `WWW-Authenticate: Bearer` on 401 and `Retry-After` on 429.
#[must_use]
pub fn problem_response(problem: &Problem) -> HttpResponse {
    render(Reply::from(problem))
}

/// keyward-core's framework-neutral answer as an actix response.
pub(crate) fn render(reply: Reply) -> HttpResponse {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut res = HttpResponse::build(status);
    for (name, value) in reply.headers {
        res.insert_header((name, value));
    }
    res.body(reply.body)
}
