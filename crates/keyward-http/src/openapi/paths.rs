//! The seven management routes and the audit log of every owner, described by utoipa derives on fixed template paths under
//! `/api-keys`. [`super::document`] re-keys them under the configured prefix, and derives the
//! admin routes from them (the same operations for a named owner).
//!
//! The functions are never called: each is the anchor of one `#[utoipa::path]`. Statuses are
//! literals here; `tests::documented_statuses_are_the_error_table_s` holds them to
//! [`ErrorCode::status`](keyward_core::error::ErrorCode::status).

#![allow(dead_code)] // the anchors of the `#[utoipa::path]` derives are never called

use utoipa::openapi::Required;
use utoipa::{IntoParams, IntoResponses, OpenApi};

use crate::problem::Problem;
use keyward_core::analytics::{
    Granularity, Outcome, OutcomeCounts, TagUsage, UsageBucket, UsageReport,
};
use keyward_core::audit::{Action, ActorKind, Change, Event, EventActor, Origin};
use keyward_core::management::{
    AddCreditsRequest, CreateKeyRequest, CreateKeysRequest, CreatedKey, CreatedKeys, EventList,
    FieldError, KeyPage, RotateKeyRequest, UpdateKeyRequest,
};
use keyward_core::model::{KeyState, KeyView};

/// Where the template paths sit; [`super::document`] replaces it with the mounted prefix.
pub(super) const TEMPLATE_PREFIX: &str = "/api-keys";

/// The batch create's path after the prefix: mounted for administrators of every owner only.
pub(super) const BATCH_PATH: &str = "/batch";

/// The audit log of every owner's path, after the admin prefix (not under the key prefix).
pub(super) const AUDIT_PATH: &str = "/audit";

/// The errors every management route may answer with.
#[derive(IntoResponses)]
pub(super) enum CommonErrors {
    /// 401
    #[response(
        status = 401,
        description = "No owner could be resolved for the request (`OWNER_UNAUTHENTICATED`); on \
                       the admin routes, a bad administrator key (`API_KEY_INVALID`)",
        content_type = "application/problem+json",
        headers(("WWW-Authenticate" = String, description = "`Bearer`"))
    )]
    Unauthenticated(Problem),
    /// 403
    #[response(
        status = 403,
        description = "Not allowed: `FORBIDDEN` for API-key callers or a failed admin check; \
                       `MANAGEMENT_FORBIDDEN` when this caller may not make this change or act \
                       on this owner (owner ids starting `keyward` are for administrators), with \
                       the refused fields (and scopes) in `errors`",
        content_type = "application/problem+json"
    )]
    Forbidden(Problem),
    /// 429
    #[response(
        status = 429,
        description = "An API key presented to these routes (an administrator's, or a key \
                       caller's where keys may manage keys) is over its rate limit or credits \
                       (`RATE_LIMITED`, `USAGE_EXHAUSTED`), or its address is throttled after \
                       failed attempts",
        content_type = "application/problem+json",
        headers(("Retry-After" = u64, description = "seconds to wait"))
    )]
    Throttled(Problem),
    /// 503
    #[response(
        status = 503,
        description = "The key store is unavailable",
        content_type = "application/problem+json"
    )]
    Unavailable(Problem),
}

/// The answers of a change of one key.
#[derive(IntoResponses)]
#[allow(clippy::large_enum_variant, reason = "a schema, never built")]
pub(super) enum KeyChanged {
    /// 200
    #[response(
        status = 200,
        description = "The changed key",
        headers(("ETag" = String, description = "The key's version, for `If-Match`"))
    )]
    Changed(KeyView),
    /// 409
    #[response(
        status = 409,
        description = "The key is revoked: it cannot be changed; a top-up of a key without \
                       credits, with refilling ones, or that would take its balance below 0",
        content_type = "application/problem+json"
    )]
    Revoked(Problem),
}

/// The errors of a route that reads a JSON body.
#[derive(IntoResponses)]
pub(super) enum BodyErrors {
    /// 400
    #[response(
        status = 400,
        description = "The body is not valid JSON",
        content_type = "application/problem+json"
    )]
    Malformed(Problem),
    /// 413
    #[response(
        status = 413,
        description = "The body exceeds the limit",
        content_type = "application/problem+json"
    )]
    TooLarge(Problem),
    /// 415
    #[response(
        status = 415,
        description = "The body is not application/json",
        content_type = "application/problem+json"
    )]
    NotJson(Problem),
    /// 422
    #[response(
        status = 422,
        description = "The body is invalid (field-level detail in `errors`)",
        content_type = "application/problem+json"
    )]
    Invalid(Problem),
}

/// A route about one key that the caller may not see.
#[derive(IntoResponses)]
#[response(
    status = 404,
    description = "No such key for this owner (missing and foreign keys alike)",
    content_type = "application/problem+json"
)]
pub(super) struct KeyNotFound(Problem);

/// `If-Match` names another version.
#[derive(IntoResponses)]
#[response(
    status = 412,
    description = "`If-Match` names another version than the key's current one",
    content_type = "application/problem+json"
)]
pub(super) struct VersionChanged(Problem);

/// The key a route acts on.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub(super) struct KeyPath {
    /// The key id (12 base62 characters)
    key_id: String,
}

/// The owner an admin route acts on; [`super::document`] puts it first on every admin route.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub(super) struct OwnerPath {
    /// The owner whose keys are managed
    #[param(pattern = r"^[A-Za-z0-9][A-Za-z0-9._:@+/=|~-]{0,254}$")]
    owner_id: String,
}

/// The optional precondition of the routes that change a key.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
pub(super) struct IfMatch {
    /// Act only if the key is still at this version (its `ETag`); `*` for any. Which version
    /// is current depends on the key's history: a well-formed tag of another version is `412`
    #[param(rename = "If-Match", value_type = String, required = false)]
    if_match: Option<String>,
}

/// The list route's query. The derive takes literals only; `tests::list_query_states_the_
/// store_s_rules` holds them to `MAX_PAGE_SIZE` and `CURSOR_PATTERN`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct ListQuery {
    /// Page size, 1–100 (default 50)
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page
    #[param(pattern = r"^([0-9]{1,18}\.[0-9A-Za-z]{12})?$")]
    cursor: Option<String>,
    /// Only keys of this environment
    #[param(pattern = r"^[a-z0-9]{1,8}$")]
    env: Option<String>,
    /// Only keys in this state now
    #[param(inline)]
    state: Option<KeyState>,
}

/// The audit log's query, on every route that reads it. The derive takes literals only;
/// `tests::event_query_states_the_store_s_rules` holds them to `MAX_EVENT_PAGE` and
/// `EVENT_CURSOR_PATTERN`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct EventsQuery {
    /// Page size, 1–100 (default 50)
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page
    #[param(pattern = r"^([0-9]{1,18}\.[0-9A-Za-z]{20})?$")]
    cursor: Option<String>,
    /// Only this action
    #[param(inline)]
    action: Option<Action>,
    /// Only this actor: a kind (`admin`, `admin_key`, `owner`, `key`, `cli`, `application`,
    /// `system`), or a kind and its id (`owner:alice`)
    #[param(pattern = r"^(application|admin|admin_key|owner|key|cli|system)(:.+)?$")]
    actor: Option<String>,
    /// Only events at or after this instant (RFC 3339)
    #[param(format = DateTime)]
    since: Option<String>,
    /// Only events before this instant (RFC 3339)
    #[param(format = DateTime)]
    until: Option<String>,
}

/// The usage routes' query.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct UsageParams {
    /// The first instant (RFC 3339), moved back to its bucket's start (default: 24 hours, or
    /// 30 days, before `to`)
    #[param(format = DateTime)]
    from: Option<String>,
    /// The end (RFC 3339, exclusive), moved on to a bucket's start (default: the end of the
    /// current bucket); at most 744 hourly or 400 daily buckets after `from`
    #[param(format = DateTime)]
    to: Option<String>,
    /// The bucket size (default `hour`)
    #[param(inline)]
    granularity: Option<Granularity>,
    /// Only verifications carrying this tag
    #[param(pattern = r"^[^\u0000-\u001F\u007F-\u009F]{1,64}$")]
    tag: Option<String>,
}

/// The audit log of every owner's own filters.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct AuditQuery {
    /// Only events of this owner's keys
    #[param(pattern = r"^[A-Za-z0-9][A-Za-z0-9._:@+/=|~-]{0,254}$")]
    owner_id: Option<String>,
    /// Only events of this key
    #[param(pattern = r"^[0-9A-Za-z]{12}$")]
    key_id: Option<String>,
}

/// The owner filter of the list of every owner's keys; [`super::document`] adds it there.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct OwnerQuery {
    /// Only this owner's keys
    #[param(pattern = r"^[A-Za-z0-9][A-Za-z0-9._:@+/=|~-]{0,254}$")]
    owner_id: Option<String>,
}

#[utoipa::path(
    post,
    path = "/api-keys",
    operation_id = "createApiKey",
    tag = "api-keys",
    summary = "Create an API key; the raw key is in the response, this once",
    request_body(content = CreateKeyRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "The key was created", body = CreatedKey,
         headers(
             ("ETag" = String, description = "The key's version, for `If-Match`"),
             ("Cache-Control" = String, description = "`no-store`: the answer carries a raw key"),
         )),
        BodyErrors,
        (status = 409, description = "The owner has the maximum number of keys", body = Problem,
         content_type = "application/problem+json"),
        CommonErrors,
    )
)]
fn create() {}

#[utoipa::path(
    get,
    path = "/api-keys",
    operation_id = "listApiKeys",
    tag = "api-keys",
    summary = "List keys, oldest first",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of keys", body = KeyPage),
        (status = 422, description = "Bad `limit` or `cursor`", body = Problem,
         content_type = "application/problem+json"),
        CommonErrors,
    )
)]
fn list() {}

#[utoipa::path(
    get,
    path = "/api-keys/{key_id}",
    operation_id = "getApiKey",
    tag = "api-keys",
    summary = "One key's safe view",
    params(KeyPath),
    responses(
        (status = 200, description = "The key", body = KeyView,
         headers(("ETag" = String, description = "The key's version, for `If-Match`"))),
        KeyNotFound,
        CommonErrors,
    )
)]
fn get() {}

#[utoipa::path(
    patch,
    path = "/api-keys/{key_id}",
    operation_id = "updateApiKey",
    tag = "api-keys",
    summary = "Change the fields the body names (owners: name, description, narrower scopes, \
               shorter expiry, deactivate, reactivate what they deactivated; the rest is for \
               administrators)",
    params(KeyPath, IfMatch),
    request_body(content = UpdateKeyRequest, content_type = "application/json"),
    responses(KeyChanged, BodyErrors, VersionChanged, KeyNotFound, CommonErrors)
)]
fn update() {}

#[utoipa::path(
    delete,
    path = "/api-keys/{key_id}",
    operation_id = "revokeApiKey",
    tag = "api-keys",
    summary = "Revoke a key (soft, final, effective at once)",
    params(KeyPath, IfMatch),
    responses(
        (status = 204, description = "Revoked"),
        VersionChanged,
        KeyNotFound,
        CommonErrors,
    )
)]
fn revoke() {}

#[utoipa::path(
    post,
    path = "/api-keys/{key_id}/rotate",
    operation_id = "rotateApiKey",
    tag = "api-keys",
    summary = "Issue a successor with the key's usage, credits and limits; the old key keeps \
               working for the grace period (a key is rotated once; rotating a successor ends \
               its predecessor's grace)",
    params(KeyPath, IfMatch),
    // Every field of the body is optional, and so is the body: `routes` says so.
    request_body(content = RotateKeyRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "The successor, with its raw key this once",
         body = CreatedKey,
         headers(
             ("ETag" = String, description = "The key's version, for `If-Match`"),
             ("Cache-Control" = String, description = "`no-store`: the answer carries a raw key"),
         )),
        BodyErrors,
        VersionChanged,
        (status = 409, description = "The key was rotated already (`API_KEY_ALREADY_ROTATED`), \
                                      or it is revoked or expired (`API_KEY_STATE_CONFLICT`)",
         body = Problem, content_type = "application/problem+json"),
        KeyNotFound,
        CommonErrors,
    )
)]
fn rotate() {}

#[utoipa::path(
    post,
    path = "/api-keys/{key_id}/credits",
    operation_id = "addApiKeyCredits",
    tag = "api-keys",
    summary = "Top up a key's credits: its balance moves by `add` (administrators; a key whose \
               credits refill changes its allowance with PATCH)",
    params(KeyPath, IfMatch),
    request_body(content = AddCreditsRequest, content_type = "application/json"),
    responses(KeyChanged, BodyErrors, VersionChanged, KeyNotFound, CommonErrors)
)]
fn add_credits() {}

#[utoipa::path(
    post,
    path = "/api-keys/batch",
    operation_id = "adminCreateApiKeys",
    tag = "admin",
    summary = "Create up to 1,000 keys of any owners, all or none; the raw keys are in the \
               response, this once",
    request_body(content = CreateKeysRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "Every key was created, in the order asked for",
         body = CreatedKeys,
         headers(
             ("Cache-Control" = String, description = "`no-store`: the answer carries raw keys"),
         )),
        BodyErrors,
        (status = 409, description = "The batch would take an owner over the maximum number \
                                      of keys: none was created", body = Problem,
         content_type = "application/problem+json"),
        CommonErrors,
    )
)]
fn create_batch() {}

#[utoipa::path(
    get,
    path = "/api-keys/{key_id}/events",
    operation_id = "listApiKeyEvents",
    tag = "api-keys",
    summary = "The key's audit log, newest first: who changed what, when, from where",
    params(KeyPath, EventsQuery),
    responses(
        (status = 200, description = "A page of events", body = EventList),
        (status = 422, description = "A bad filter, `limit` or `cursor`", body = Problem,
         content_type = "application/problem+json"),
        KeyNotFound,
        CommonErrors,
    )
)]
fn events() {}

#[utoipa::path(
    get,
    path = "/api-keys/{key_id}/usage",
    operation_id = "getApiKeyUsage",
    tag = "api-keys",
    summary = "The key's usage analytics: verifications by outcome, in hourly or daily buckets, \
               and by tag",
    params(KeyPath, UsageParams),
    responses(
        (status = 200, description = "The key's verifications", body = UsageReport),
        (status = 422, description = "A bad range, granularity or tag", body = Problem,
         content_type = "application/problem+json"),
        KeyNotFound,
        CommonErrors,
    )
)]
fn usage() {}

#[utoipa::path(
    get,
    path = "/api-keys/usage",
    operation_id = "getOwnerUsage",
    tag = "api-keys",
    summary = "The usage analytics of every key of the owner, summed",
    params(UsageParams),
    responses(
        (status = 200, description = "The owner's verifications", body = UsageReport),
        (status = 422, description = "A bad range, granularity or tag", body = Problem,
         content_type = "application/problem+json"),
        CommonErrors,
    )
)]
fn owner_usage() {}

#[utoipa::path(
    get,
    path = "/audit",
    operation_id = "adminListEvents",
    tag = "admin",
    summary = "The audit log of every owner's keys, newest first",
    params(AuditQuery, EventsQuery),
    responses(
        (status = 200, description = "A page of events", body = EventList),
        (status = 422, description = "A bad filter, `limit` or `cursor`", body = Problem,
         content_type = "application/problem+json"),
        CommonErrors,
    )
)]
fn audit() {}

/// The routes and the schemas they name.
#[derive(OpenApi)]
#[openapi(
    paths(
        create,
        list,
        get,
        update,
        revoke,
        rotate,
        add_credits,
        create_batch,
        events,
        audit,
        usage,
        owner_usage
    ),
    components(schemas(
        KeyState,
        FieldError,
        Event,
        EventActor,
        ActorKind,
        Change,
        Origin,
        UsageReport,
        UsageBucket,
        TagUsage,
        OutcomeCounts,
        Granularity,
        Outcome
    ))
)]
struct ManagementRoutes;

/// The routes and the batch create ([`BATCH_PATH`]) under [`TEMPLATE_PREFIX`], and the audit
/// log of every owner at [`AUDIT_PATH`].
pub(super) fn routes() -> utoipa::openapi::OpenApi {
    let mut doc = ManagementRoutes::openapi();
    // utoipa writes an optional body (`Option<T>`) as "`T` or `null`", but the rotate body may
    // only be absent: `null`, like any JSON that is not an object, is refused.
    if let Some(body) = doc
        .paths
        .paths
        .get_mut("/api-keys/{key_id}/rotate")
        .and_then(|item| item.post.as_mut())
        .and_then(|op| op.request_body.as_mut())
    {
        body.required = Some(Required::False);
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyward_core::error::ErrorCode::{self, *};

    #[test]
    fn list_query_states_the_store_s_rules() {
        let doc = serde_json::to_value(routes()).unwrap();
        let params = &doc["paths"]["/api-keys"]["get"]["parameters"];
        assert_eq!(params[0]["name"], "limit");
        assert_eq!(params[0]["schema"]["minimum"], 1);
        assert_eq!(
            params[0]["schema"]["maximum"],
            keyward_core::store::MAX_PAGE_SIZE
        );
        assert_eq!(params[1]["name"], "cursor");
        assert_eq!(
            params[1]["schema"]["pattern"],
            keyward_core::store::CURSOR_PATTERN
        );
        let rotate = &doc["paths"]["/api-keys/{key_id}/rotate"]["post"]["requestBody"];
        assert_eq!(rotate["required"], false);
        assert_eq!(
            rotate["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/RotateKeyRequest"
        );
    }

    #[test]
    fn event_query_states_the_store_s_rules() {
        let doc = serde_json::to_value(routes()).unwrap();
        let params = &doc["paths"]["/api-keys/{key_id}/events"]["get"]["parameters"];
        assert_eq!(params[1]["name"], "limit");
        assert_eq!(
            params[1]["schema"]["maximum"],
            keyward_core::store::MAX_EVENT_PAGE
        );
        assert_eq!(params[2]["name"], "cursor");
        assert_eq!(
            params[2]["schema"]["pattern"],
            keyward_core::audit::EVENT_CURSOR_PATTERN
        );
    }

    /// The documented owner-id pattern is the grammar the service enforces.
    #[test]
    fn owner_path_states_the_owner_id_grammar() {
        let params = <OwnerPath as IntoParams>::into_params(|| None);
        let param = serde_json::to_value(&params[0]).unwrap();
        assert_eq!(
            param["schema"]["pattern"],
            keyward_core::authz::OWNER_ID_PATTERN
        );
    }

    /// Each route's documented error statuses are exactly those of the codes it answers with,
    /// as the error table ([`ErrorCode::status`]) gives them.
    #[test]
    fn documented_statuses_are_the_error_table_s() {
        let common = [
            OwnerUnauthenticated,
            ManagementForbidden,
            RateLimited,
            AuthUnavailable,
        ];
        let body = [
            BadRequest,
            PayloadTooLarge,
            UnsupportedMediaType,
            ValidationFailed,
        ];
        let changes = [PreconditionFailed, ApiKeyNotFound];
        let expected_by_route: [(&str, &str, u16, Vec<ErrorCode>); 9] = [
            (
                "/api-keys/{key_id}/credits",
                "post",
                200,
                [&body[..], &changes, &[ApiKeyStateConflict]].concat(),
            ),
            (
                "/api-keys/{key_id}/events",
                "get",
                200,
                vec![ValidationFailed, ApiKeyNotFound],
            ),
            ("/audit", "get", 200, vec![ValidationFailed]),
            (
                "/api-keys",
                "post",
                201,
                [&body[..], &[ApiKeyLimitReached]].concat(),
            ),
            ("/api-keys", "get", 200, vec![ValidationFailed]),
            ("/api-keys/{key_id}", "get", 200, vec![ApiKeyNotFound]),
            (
                "/api-keys/{key_id}",
                "patch",
                200,
                [&body[..], &changes, &[ApiKeyStateConflict]].concat(),
            ),
            ("/api-keys/{key_id}", "delete", 204, changes.to_vec()),
            (
                "/api-keys/{key_id}/rotate",
                "post",
                201,
                [
                    &body[..],
                    &changes,
                    &[ApiKeyAlreadyRotated, ApiKeyStateConflict],
                ]
                .concat(),
            ),
        ];
        let doc = serde_json::to_value(routes()).unwrap();
        for (path, method, ok, codes) in expected_by_route {
            let responses = doc["paths"][path][method]["responses"].as_object().unwrap();
            let mut documented: Vec<u16> = responses.keys().map(|s| s.parse().unwrap()).collect();
            let mut expected: Vec<u16> = codes
                .iter()
                .chain(&common)
                .map(|c| c.status())
                .chain([ok])
                .collect();
            documented.sort_unstable();
            expected.sort_unstable();
            expected.dedup();
            assert_eq!(documented, expected, "{method} {path}");
            for (status, response) in responses {
                if status.as_str() != ok.to_string() {
                    assert!(
                        response["content"][crate::problem::CONTENT_TYPE].is_object(),
                        "{method} {path} {status} is a problem document"
                    );
                }
            }
        }
    }
}
