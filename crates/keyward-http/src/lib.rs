//! keyward's framework-neutral HTTP layer: everything a caller of keyward's routes can observe
//! is decided here, so that keyward-axum, keyward-actix and any later adapter only translate
//! between their framework's request and response and these types (DESIGN.md §6, §9).
//! keyward-core holds the domain (keys, digests, scopes, SigV4, the engine, the management
//! service); this crate holds HTTP: credential headers, the authentication flow, body bounds,
//! the management routes, problem documents ([`problem`]) and the OpenAPI document
//! ([`openapi`], feature `openapi`).
//!
//! An adapter translates its framework's request into a [`RequestHead`] (and its body into a
//! stream of chunks), calls one of two entry points, and translates the answer back:
//!
//! - [`Gate::authenticate`] (with [`Gate::authenticate_now`] for what needs no waiting): the
//!   authentication middleware, signed requests and their bodies included ([`gate`]);
//! - [`ManagementConfig::serve`]: one management request, from the matched route to the
//!   [`Reply`] ([`management`]).
//!
//! Beside them: [`CredentialHeaders`], [`Rejection`] (what applications' owner resolvers and
//! admin checks refuse with), [`BodyBudget`] (sans-IO bounds for bodies, and the one body
//! loop), [`Reply`] (an answer as status, headers and body), and the problems a server
//! answers with ([`payload_too_large`], [`json_error`], …).

#![allow(
    clippy::result_large_err,
    reason = "a Problem is built once per rejected request, on the cold path"
)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod body;
mod config;
pub mod credentials;
pub mod gate;
mod head;
pub mod management;
#[cfg(feature = "openapi")]
pub mod openapi;
pub mod problem;
mod rejection;
mod reply;

use serde::de::DeserializeOwned;

pub use body::BodyBudget;
pub use config::{ClientIp, Hook, HookFutures, LocalHooks, ManagementConfig, SendHooks};
pub use gate::{Anonymous, Body, Gate, Observed, Outcome, Pass};
pub use head::{CredentialHeaders, RequestHead};
pub use management::{ManagementOptions, Matched, Operation};
pub use problem::Problem;
pub use rejection::Rejection;
pub use reply::Reply;

use keyward_core::error::ErrorCode;
use keyward_core::key::KeyId;
use keyward_core::management::{KeyQuery, KeyVersion};
use problem::validation;

/// Default limit on management request bodies, in bytes.
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;

/// `413`: the body exceeds the limit.
#[must_use]
pub fn payload_too_large(limit: usize) -> Problem {
    Problem::new(
        ErrorCode::PayloadTooLarge,
        Some(format!("the request body exceeds {limit} bytes")),
    )
}

/// `415`: the body is not `application/json`.
#[must_use]
pub fn unsupported_media_type() -> Problem {
    Problem::new(
        ErrorCode::UnsupportedMediaType,
        Some("the request body must be application/json".to_owned()),
    )
}

/// `400`: a request the adapter could not interpret at all.
#[must_use]
pub(crate) fn bad_request(detail: impl Into<String>) -> Problem {
    Problem::new(ErrorCode::BadRequest, Some(detail.into()))
}

/// Whether `content_type` is JSON: `application/json` or `application/<anything>+json`, any
/// parameters, case-insensitive.
#[must_use]
pub(crate) fn is_json(content_type: Option<&[u8]>) -> bool {
    let Some(raw) = content_type else {
        return false;
    };
    let Ok(s) = std::str::from_utf8(raw) else {
        return false;
    };
    let essence = s
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let Some(sub) = essence.strip_prefix("application/") else {
        return false;
    };
    sub == "json" || sub.ends_with("+json")
}

/// The backticked name in a serde message such as ``unknown field `foo`, expected …``.
fn backticked(msg: &str) -> Option<String> {
    let start = msg.find('`')? + 1;
    let len = msg[start..].find('`')?;
    Some(msg[start..start + len].chars().take(64).collect())
}

/// Deserializes a JSON body, as the management routes do: for a server's own routes that read
/// JSON, so that bad bodies are answered alike.
///
/// # Errors
/// - `415` when the content type is not JSON ([`unsupported_media_type`]);
/// - `400` `BAD_REQUEST` for bytes that are not JSON (syntax errors, truncation, bad UTF-8);
/// - `422` `VALIDATION_FAILED` for JSON of the wrong shape, with one field error: unknown
///   fields (`unknown_field`), missing fields (`required`), wrong types (`invalid`).
pub fn json_body<T: DeserializeOwned>(
    content_type: Option<&[u8]>,
    body: &[u8],
) -> Result<T, Problem> {
    if !is_json(content_type) {
        return Err(unsupported_media_type());
    }
    // Every body keyward reads is an object: serde would also fill a struct from an array.
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| json_error(&e))?;
    if !value.is_object() {
        return Err(validation(
            "body",
            "invalid",
            "the request body must be a JSON object",
        ));
    }
    serde_json::from_value(value).map_err(|e| json_error(&e))
}

/// The problem for a body serde could not deserialize: `400 BAD_REQUEST` for bytes that are not
/// JSON, `422 VALIDATION_FAILED` with one field error for JSON of the wrong shape (unknown
/// fields: `unknown_field`, missing ones: `required`, wrong types: `invalid`). Adapters whose
/// framework deserializes bodies itself (actix-web's `JsonConfig`) map its error here.
#[must_use]
pub fn json_error(e: &serde_json::Error) -> Problem {
    use serde_json::error::Category;
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => bad_request(format!(
            "the request body is not valid JSON (line {}, column {})",
            e.line(),
            e.column()
        )),
        Category::Data => {
            let msg = e.to_string();
            let (field, code) = if msg.starts_with("unknown field") {
                (
                    backticked(&msg).unwrap_or_else(|| "body".into()),
                    "unknown_field",
                )
            } else if msg.starts_with("missing field") {
                (
                    backticked(&msg).unwrap_or_else(|| "body".into()),
                    "required",
                )
            } else {
                ("body".to_owned(), "invalid")
            };
            // serde's message may quote input; cut it short and keep it on one line.
            let message: String = msg.chars().take(200).filter(|c| !c.is_control()).collect();
            validation(&field, code, message)
        }
    }
}

/// Like [`json_body`], but an empty body (no bytes at all) is `T::default()` whatever the
/// content type: for bodies whose every field is optional (`POST …/rotate`).
///
/// # Errors
/// As [`json_body`] for a non-empty body.
pub(crate) fn json_body_or_default<T: DeserializeOwned + Default>(
    content_type: Option<&[u8]>,
    body: &[u8],
) -> Result<T, Problem> {
    if body.is_empty() {
        Ok(T::default())
    } else {
        json_body(content_type, body)
    }
}

/// The query of `GET /api-keys?owner_id=&env=&state=&cursor=&limit=`. Unknown parameters are
/// ignored.
///
/// # Errors
/// `422` with a field error for a `limit` that is not a number or a `state` that is not one
/// (range and owner checks happen in [`keyward_core::Keyward::list_keys`]), and for a query
/// that is not valid percent-encoding.
pub(crate) fn list_query(query: Option<&str>) -> Result<KeyQuery, Problem> {
    let mut q = KeyQuery::default();
    for (k, v) in query_pairs(query)? {
        match k {
            "limit" => {
                q.limit =
                    Some(v.trim().parse::<u32>().map_err(|_| {
                        validation("limit", "invalid", "must be a positive integer")
                    })?);
            }
            "cursor" => q.cursor = Some(v),
            "owner_id" => q.owner_id = Some(v),
            "env" => q.env = Some(v),
            "state" => {
                let state = serde_json::from_value(serde_json::Value::String(v));
                q.state = Some(state.map_err(|_| {
                    validation(
                        "state",
                        "invalid",
                        "one of active, revoked, inactive, expired, not_yet_valid",
                    )
                })?);
            }
            _ => {}
        }
    }
    Ok(q)
}

/// The audit routes' query (`?owner_id=&key_id=&action=&actor=&since=&until=&cursor=&limit=`),
/// as text: the service checks each field
/// ([`keyward_core::Keyward::list_events`]).
///
/// # Errors
/// `422` for a `limit` that is not a number, and for a query that is not valid
/// percent-encoding.
pub(crate) fn events_query(
    query: Option<&str>,
) -> Result<keyward_core::management::EventQuery, Problem> {
    let mut q = keyward_core::management::EventQuery::default();
    for (k, v) in query_pairs(query)? {
        match k {
            "limit" => {
                q.limit =
                    Some(v.trim().parse::<u32>().map_err(|_| {
                        validation("limit", "invalid", "must be a positive integer")
                    })?);
            }
            "cursor" => q.cursor = Some(v),
            "owner_id" => q.owner_id = Some(v),
            "key_id" => q.key_id = Some(v),
            "action" => q.action = Some(v),
            "actor" => q.actor = Some(v),
            "since" => q.since = Some(v),
            "until" => q.until = Some(v),
            _ => {}
        }
    }
    Ok(q)
}

/// The usage routes' query (`?from=&to=&granularity=&tag=`), as text: the service checks each
/// field ([`keyward_core::Keyward::usage`]).
///
/// # Errors
/// `422` for a query that is not valid percent-encoding.
pub(crate) fn usage_query(
    query: Option<&str>,
) -> Result<keyward_core::management::UsageQuery, Problem> {
    let mut q = keyward_core::management::UsageQuery::default();
    for (k, v) in query_pairs(query)? {
        match k {
            "from" => q.from = Some(v),
            "to" => q.to = Some(v),
            "granularity" => q.granularity = Some(v),
            "tag" => q.tag = Some(v),
            _ => {}
        }
    }
    Ok(q)
}

/// The `key=value` pairs of a query, values percent-decoded (`+` as a space).
///
/// # Errors
/// `422` naming the field whose value is not UTF-8.
fn query_pairs(query: Option<&str>) -> Result<Vec<(&str, String)>, Problem> {
    query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = percent_encoding::percent_decode_str(&v.replace('+', " "))
                .decode_utf8()
                .map_err(|_| {
                    validation(
                        k.chars().take(32).collect::<String>().as_str(),
                        "invalid",
                        "not UTF-8",
                    )
                })?
                .into_owned();
            Ok((k, v))
        })
        .collect()
}

/// A key id from a path segment. A malformed id cannot name a key: `404`.
///
/// # Errors
/// `API_KEY_NOT_FOUND` for anything that is not a key id.
pub(crate) fn path_key_id(segment: &str) -> Result<KeyId, Problem> {
    segment.parse().map_err(|_| key_not_found())
}

/// `404 API_KEY_NOT_FOUND`: what a missing key, a foreign key and a malformed id all get.
#[must_use]
pub(crate) fn key_not_found() -> Problem {
    Problem::new(
        ErrorCode::ApiKeyNotFound,
        Some("API key not found".to_owned()),
    )
}

/// The version an `If-Match` header asks for: `None` without the header or for `*` (any
/// version), else the one entity tag it names ([`KeyVersion::etag`]).
///
/// # Errors
/// `412 PRECONDITION_FAILED` for a header that names no version keyward issued (a malformed or
/// weak tag, several tags): it cannot match the key's current version.
pub(crate) fn if_match(value: Option<&[u8]>) -> Result<Option<KeyVersion>, Problem> {
    let Some(raw) = value else {
        return Ok(None);
    };
    let failed = || {
        Problem::new(
            ErrorCode::PreconditionFailed,
            Some("If-Match names no current version of this key".to_owned()),
        )
    };
    let text = std::str::from_utf8(raw).map_err(|_| failed())?.trim();
    if text == "*" {
        return Ok(None);
    }
    KeyVersion::parse_etag(text).map(Some).ok_or_else(failed)
}

/// `408`: a request (or its body) took longer than a server allows it (a server's own request
/// deadline; the adapters' signed bodies use `gate::signed_body_timeout`).
#[must_use]
pub fn request_timeout(detail: impl Into<String>) -> Problem {
    Problem::new(ErrorCode::RequestTimeout, Some(detail.into()))
}

/// `503 AUTH_UNAVAILABLE`, titled `Overloaded`, with `Retry-After: 1`: more requests in flight
/// than a server serves at once.
#[must_use]
pub fn overloaded() -> Problem {
    Problem {
        title: "Overloaded".to_owned(),
        retry_after: Some(1),
        ..Problem::new(
            ErrorCode::AuthUnavailable,
            Some("too many requests in flight; retry shortly".to_owned()),
        )
    }
}

/// `405`: the route exists, but not for this method.
#[must_use]
pub fn method_not_allowed() -> Problem {
    Problem::new(
        ErrorCode::MethodNotAllowed,
        Some("this method is not allowed on this route".to_owned()),
    )
}

/// The `Cache-Control` value of every answer that carries a raw key (DESIGN.md §11).
pub(crate) const NO_STORE: &str = "no-store";

/// `403`: the request presents an API key, and the application did not allow API keys to
/// manage keys.
#[must_use]
pub(crate) fn api_key_management_forbidden() -> Problem {
    Problem::new(
        ErrorCode::Forbidden,
        Some("API keys cannot manage API keys on this server".to_owned()),
    )
}

/// `403`: the admin check refused.
#[must_use]
pub(crate) fn admin_forbidden() -> Problem {
    Problem::new(
        ErrorCode::Forbidden,
        Some("administrator rights are required".to_owned()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyward_core::management::{CreateKeyRequest, RotateKeyRequest, UpdateKeyRequest};

    const JSON: Option<&[u8]> = Some(b"application/json");

    #[test]
    fn if_match_headers() {
        let v = KeyVersion::parse_etag("\"v1732876543123456\"").unwrap();
        assert_eq!(v.etag(), "\"v1732876543123456\"");
        assert_eq!(if_match(None).unwrap(), None);
        assert_eq!(if_match(Some(b"*")).unwrap(), None);
        assert_eq!(if_match(Some(b" \"v1732876543123456\" ")).unwrap(), Some(v));
        for bad in [
            &b"W/\"v1\""[..],
            b"\"v1\", \"v2\"",
            b"\"x1\"",
            b"v1",
            b"\"v\"",
            b"\"v-1\"",
            b"\"v99999999999999999999999\"",
            b"\xff",
        ] {
            let e = if_match(Some(bad)).unwrap_err();
            assert_eq!(e.status, 412, "{bad:?}");
        }
    }

    #[test]
    fn content_types() {
        assert!(is_json(Some(b"application/json")));
        assert!(is_json(Some(b"Application/JSON; charset=utf-8")));
        assert!(is_json(Some(b"application/merge-patch+json")));
        assert!(!is_json(Some(b"text/plain")));
        assert!(!is_json(Some(b"application/jsonx")));
        assert!(!is_json(Some(b"\xff")));
        assert!(!is_json(None));
    }

    #[test]
    fn wrong_content_type_is_415() {
        let e = json_body::<CreateKeyRequest>(Some(b"text/plain"), br#"{"name":"a"}"#).unwrap_err();
        assert_eq!(e.status, 415);
        assert_eq!(e.code, ErrorCode::UnsupportedMediaType);
    }

    #[test]
    fn malformed_json_is_400() {
        for body in [&b"{"[..], b"not json", b"", b"{\"name\":\"\xff\"}"] {
            let e = json_body::<CreateKeyRequest>(JSON, body).unwrap_err();
            assert_eq!(e.status, 400, "{body:?}");
        }
    }

    #[test]
    fn unknown_field_is_422_naming_it() {
        let e = json_body::<CreateKeyRequest>(JSON, br#"{"name":"a","owner_id":"x"}"#).unwrap_err();
        assert_eq!(e.status, 422);
        assert_eq!(e.errors[0].field, "owner_id");
        assert_eq!(e.errors[0].code, "unknown_field");
    }

    #[test]
    fn missing_and_wrong_types_are_422() {
        let e = json_body::<CreateKeyRequest>(JSON, br"{}").unwrap_err();
        assert_eq!(
            (
                e.status,
                e.errors[0].field.as_str(),
                e.errors[0].code.as_str()
            ),
            (422, "name", "required")
        );
        let e = json_body::<CreateKeyRequest>(JSON, br#"{"name":5}"#).unwrap_err();
        assert_eq!((e.status, e.errors[0].code.as_str()), (422, "invalid"));
        let e = json_body::<RotateKeyRequest>(JSON, br#""x""#).unwrap_err();
        assert_eq!(e.status, 422);
        // serde fills a struct from an array too; a body must be an object.
        let e = json_body::<UpdateKeyRequest>(JSON, b"[null, null]").unwrap_err();
        assert_eq!((e.status, e.errors[0].field.as_str()), (422, "body"));
    }

    #[test]
    fn empty_body_is_default_where_allowed() {
        let r: RotateKeyRequest = json_body_or_default(None, b"").unwrap();
        assert_eq!(r.grace_seconds, None);
        let r: RotateKeyRequest = json_body_or_default(JSON, br#"{"grace_seconds":5}"#).unwrap();
        assert_eq!(r.grace_seconds, Some(5));
        assert_eq!(
            json_body_or_default::<RotateKeyRequest>(None, b"{}")
                .unwrap_err()
                .status,
            415
        );
    }

    #[test]
    fn good_body_parses() {
        let r: CreateKeyRequest = json_body(JSON, br#"{"name":"ci","scopes":["a:b"]}"#).unwrap();
        assert_eq!(r.name, "ci");
    }

    #[test]
    fn queries() {
        assert_eq!(list_query(None).unwrap(), KeyQuery::default());
        let q = list_query(Some(
            "limit=5&cursor=abc&x=1&env=test&state=not_yet_valid&owner_id=a%40b",
        ));
        let q = q.unwrap();
        assert_eq!((q.cursor.as_deref(), q.limit), (Some("abc"), Some(5)));
        assert_eq!(
            (q.env.as_deref(), q.owner_id.as_deref()),
            (Some("test"), Some("a@b"))
        );
        assert_eq!(q.state, Some(keyward_core::model::KeyState::NotYetValid));
        assert_eq!(
            list_query(Some("cursor=a%2Db")).unwrap().cursor.as_deref(),
            Some("a-b")
        );
        assert_eq!(
            list_query(Some("state=gone")).unwrap_err().errors[0].field,
            "state"
        );
        assert_eq!(list_query(Some("limit=-1")).unwrap_err().status, 422);
        assert_eq!(
            list_query(Some("limit=abc")).unwrap_err().errors[0].field,
            "limit"
        );
        assert_eq!(list_query(Some("cursor=%ff")).unwrap_err().status, 422);
        assert_eq!(list_query(Some("&&limit")).unwrap_err().status, 422);
    }

    #[test]
    fn path_ids() {
        assert!(path_key_id("AbCdEf012345").is_ok());
        assert_eq!(path_key_id("../etc").unwrap_err().status, 404);
        assert_eq!(path_key_id("").unwrap_err().code, ErrorCode::ApiKeyNotFound);
    }
}
