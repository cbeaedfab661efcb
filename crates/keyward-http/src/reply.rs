//! [`Reply`]: an answer as status, headers and body, so that every adapter writes the same
//! bytes and headers for the same outcome and only copies them into its framework's response.

use serde::Serialize;

use crate::problem::{self, Problem};
use keyward_core::management::{KeyVersion, ServiceError};

/// An HTTP answer in framework-neutral form. Header names are lowercase and every value is
/// visible ASCII, so adapters copy them without checks that could fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// Headers, in order; at most one of each name.
    pub headers: Vec<(&'static str, String)>,
    /// The body (empty for `204`).
    pub body: Vec<u8>,
}

impl Reply {
    /// A bodiless answer.
    #[must_use]
    pub(crate) fn empty(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// `value` as `application/json`. A value that cannot be serialized (none of keyward's
    /// can fail) is logged and answered `500 INTERNAL`-style as an unavailable service.
    #[must_use]
    pub fn json<T: Serialize + ?Sized>(status: u16, value: &T) -> Self {
        match serde_json::to_vec(value) {
            Ok(body) => Self {
                status,
                headers: vec![("content-type", "application/json".to_owned())],
                body,
            },
            Err(e) => {
                tracing::error!(error = %e, "could not serialize a response");
                Self::from(&ServiceError::Internal("serialization".into()))
            }
        }
    }

    /// Adds `Cache-Control: no-store`: every answer carrying a raw key has it (DESIGN.md §11).
    #[must_use]
    pub(crate) fn no_store(self) -> Self {
        self.header("cache-control", super::NO_STORE.to_owned())
    }

    /// Adds the key's version as `ETag`.
    #[must_use]
    pub(crate) fn etag(self, version: KeyVersion) -> Self {
        self.header("etag", version.etag())
    }

    fn header(mut self, name: &'static str, value: String) -> Self {
        self.headers.retain(|(n, _)| *n != name);
        self.headers.push((name, value));
        self
    }

    /// The value of header `name`, if set.
    #[must_use]
    pub fn header_value(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The problem document as `application/problem+json`, never cached, with
/// `WWW-Authenticate: Bearer` on `401` and `Retry-After` when the problem has one.
impl From<&Problem> for Reply {
    fn from(p: &Problem) -> Self {
        let mut headers = vec![
            ("content-type", problem::CONTENT_TYPE.to_owned()),
            ("cache-control", super::NO_STORE.to_owned()),
        ];
        if p.needs_www_authenticate() {
            headers.push(("www-authenticate", "Bearer".to_owned()));
        }
        if let Some(v) = p.retry_after_header() {
            headers.push(("retry-after", v));
        }
        Self {
            status: p.status,
            headers,
            body: p.to_json(),
        }
    }
}

impl From<Problem> for Reply {
    fn from(p: Problem) -> Self {
        Self::from(&p)
    }
}

/// Logs outages (`warn`), then answers with the service error's problem.
impl From<&ServiceError> for Reply {
    fn from(e: &ServiceError) -> Self {
        Self::from(&service_problem(e))
    }
}

/// The problem for a management error; store outages and internal errors are logged at `warn`
/// (their detail never reaches the client).
#[must_use]
pub(crate) fn service_problem(e: &ServiceError) -> Problem {
    if matches!(e, ServiceError::Unavailable(_) | ServiceError::Internal(_)) {
        tracing::warn!(error = %e, "key management failed");
    }
    Problem::from(e)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use keyward_core::engine::VerifyError;
    use keyward_core::error::ErrorCode;

    #[test]
    fn problems_carry_their_headers() {
        let r = Reply::from(Problem::missing());
        assert_eq!(r.status, 401);
        assert_eq!(r.header_value("www-authenticate"), Some("Bearer"));
        assert_eq!(r.header_value("content-type"), Some(problem::CONTENT_TYPE));
        assert_eq!(r.header_value("cache-control"), Some("no-store"));

        let r = Reply::from(Problem::from(VerifyError::RateLimited {
            retry_after: Some(Duration::from_millis(1500)),
        }));
        assert_eq!(r.status, 429);
        assert_eq!(r.header_value("retry-after"), Some("2"));
        assert_eq!(r.header_value("www-authenticate"), None);

        let r = Reply::from(Problem::new(ErrorCode::Forbidden, Some("no".into())));
        let back: Problem = serde_json::from_slice(&r.body).unwrap();
        assert_eq!((back.status, back.code), (403, ErrorCode::Forbidden));
    }

    #[test]
    fn json_answers() {
        let v = KeyVersion::parse_etag("\"v17\"").unwrap();
        let r = Reply::json(201, &serde_json::json!({"a": 1}))
            .no_store()
            .etag(v);
        assert_eq!(r.status, 201);
        assert_eq!(r.body, br#"{"a":1}"#);
        assert_eq!(r.header_value("etag"), Some("\"v17\""));
        assert_eq!(r.header_value("cache-control"), Some("no-store"));
        assert_eq!(Reply::empty(204).headers.len(), 0);
    }
}
