//! Who may do what (DESIGN.md §11), black-box over real sockets, once for every stack that
//! serves the management routes: keyward-axum, keyward-actix and the `keyward` server.
//!
//! Every case is an attack or a rule: self-service minting admin keys, wildcards passing for
//! `keyward:admin`, owners lifting limits an admin set, rotation multiplying keys, lost
//! concurrent writes, cacheable raw keys.
//!
//! # The app contract
//!
//! | what | adapters ([`MgmtApp::adapter`]) | server ([`MgmtApp::server`]) |
//! | --- | --- | --- |
//! | self-service routes under `/api-keys` | owner from `x-test-owner`, key callers refused | `--owner-header x-test-owner` |
//! | routes where keys manage their owner's keys | under [`KEY_ROUTES`], key callers only | none: key callers are refused everywhere |
//! | admin routes `/admin/owners/{owner_id}/api-keys…`, all seven | admin when `x-test-admin: yes`, or a key holding `keyward:admin` | the admin token as a bearer, or such a key |
//! | `/admin/api-keys`, `/admin/api-keys/batch`, `/admin/audit` | mounted, admin as above | mounted |
//! | policy | [`management_keyward`] | [`SERVER_FLAGS`] |
//!
//! Policy: at most [`MAX_KEYS`] keys per owner, any well-formed scope, and the self-service
//! defaults [`SELF_SERVICE_RATE`], [`SELF_SERVICE_CREDITS`], [`SELF_SERVICE_MAX_TTL_DAYS`].
//!
//! ```text
//! keyward_test::management_suite!(app = make_app);   // async fn make_app() -> Option<MgmtApp>
//! ```

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::missing_panics_doc,
    reason = "test support: a case fails by panicking on a broken expectation"
)]

use reqwest::Method;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::http_suite::{assert_problem, created};

mod app;
mod audit;
mod credits;
mod review;
mod usage;
pub use app::*;
pub use audit::*;
pub use credits::*;
pub use review::*;
pub use usage::*;

/// Most keys per owner in the suite's policy.
pub const MAX_KEYS: u32 = 4;
/// The self-service rate limit: `(requests, window_seconds)`.
pub const SELF_SERVICE_RATE: (u32, u32) = (50, 60);
/// The self-service credits.
pub const SELF_SERVICE_CREDITS: u64 = 500;
/// The self-service maximum lifetime, in days.
pub const SELF_SERVICE_MAX_TTL_DAYS: i64 = 30;

/// The flags that give `keyward serve` the suite's policy (with `KEYWARD_ADMIN_TOKEN` set).
pub const SERVER_FLAGS: &[&str] = &[
    "--owner-header",
    "x-test-owner",
    "--max-keys-per-owner",
    "4",
    "--self-service-rate-limit",
    "50/60s",
    "--self-service-credits",
    "500",
    "--self-service-max-ttl",
    "30d",
    "--flush-interval",
    "1s",
];

/// Asserts a `403 MANAGEMENT_FORBIDDEN` that names `field` among its refused fields.
pub async fn assert_refused(res: reqwest::Response, field: &str) -> Value {
    let body = assert_problem(res, 403, "MANAGEMENT_FORBIDDEN").await;
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["field"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        fields.contains(&field),
        "refused fields {fields:?} lack {field}: {body}"
    );
    body
}

fn time(v: &Value) -> OffsetDateTime {
    v.as_str()
        .and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok())
        .unwrap_or_else(|| panic!("not a timestamp: {v}"))
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339)
        .unwrap_or_else(|e| panic!("{t} has no RFC 3339 form: {e}"))
}

/// Owners and key-less callers never grant `keyward:` scopes; nobody grants them by wildcard.
pub async fn case_reserved_scopes_need_an_admin(app: MgmtApp) {
    let o = app.owner("reserved");
    for scopes in [
        json!(["keyward:admin"]),
        json!(["keyward:verify"]),
        json!(["reports:read", "keyward:admin"]),
    ] {
        let res = send(
            app.as_owner(Method::POST, "/api-keys", &o)
                .json(&json!({"name": "mint", "scopes": scopes})),
        )
        .await;
        let body = assert_refused(res, "scopes").await;
        assert!(
            body.to_string().contains("keyward:"),
            "names the scope: {body}"
        );
    }
    for (who, res) in [
        (
            "owner",
            send(
                app.as_owner(Method::POST, "/api-keys", &o)
                    .json(&json!({"name": "w", "scopes": ["keyward:*"]})),
            )
            .await,
        ),
        (
            "admin",
            send(
                app.as_admin(Method::POST, &format!("/admin/owners/{o}/api-keys"))
                    .json(&json!({"name": "w", "scopes": ["keyward:*"]})),
            )
            .await,
        ),
    ] {
        let body = assert_problem(res, 422, "VALIDATION_FAILED").await;
        assert_eq!(
            body["errors"][0]["code"], "reserved_wildcard",
            "{who}: {body}"
        );
    }
    // An owner cannot widen a key of its own into the namespace either.
    let c = app
        .owner_create(&o, json!({"name": "k", "scopes": ["reports:read"]}))
        .await;
    let res = app
        .owner_patch(
            &o,
            &c.id,
            json!({"scopes": ["reports:read", "keyward:admin"]}),
        )
        .await;
    assert_refused(res, "scopes").await;
    // An administrator grants them, by name.
    let a = app
        .admin_create(&o, json!({"name": "ops", "scopes": ["keyward:verify"]}))
        .await;
    assert_eq!(a.body["key"]["scopes"], json!(["keyward:verify"]));
}

/// A `*` key is not an administrator; a `keyward:admin` key is.
pub async fn case_wildcards_make_no_admin(app: MgmtApp) {
    let o = app.owner("wild");
    let other = app.owner("victim");
    let star = app
        .admin_create(&o, json!({"name": "everything", "scopes": ["*"]}))
        .await;
    let res = send(app.with_key(
        Method::GET,
        &format!("/admin/owners/{o}/api-keys"),
        &star.api_key,
    ))
    .await;
    assert_eq!(
        res.status(),
        403,
        "a `*` key lists through the admin routes"
    );
    let res = send(
        app.with_key(
            Method::POST,
            &format!("/admin/owners/{other}/api-keys"),
            &star.api_key,
        )
        .json(&json!({"name": "stolen", "scopes": ["*"]})),
    )
    .await;
    assert_eq!(res.status(), 403, "a `*` key mints keys for another owner");
    let admin = app
        .admin_create(&o, json!({"name": "ops", "scopes": ["keyward:admin"]}))
        .await;
    let res = send(app.with_key(
        Method::GET,
        &format!("/admin/owners/{other}/api-keys"),
        &admin.api_key,
    ))
    .await;
    assert_eq!(res.status(), 200, "a keyward:admin key is an administrator");
}

/// Owner ids starting `keyward` are for administrators only.
pub async fn case_reserved_owners_closed_to_self_service(app: MgmtApp) {
    let reserved = format!("keyward-{}", app.owner("x"));
    let admin_key = app
        .admin_create(
            &reserved,
            json!({"name": "held", "scopes": ["keyward:admin"]}),
        )
        .await;
    for owner in ["keyward-admin", "keyward", reserved.as_str()] {
        let res = send(app.as_owner(Method::GET, "/api-keys", owner)).await;
        assert_refused(res, "owner_id").await;
        let res = send(
            app.as_owner(Method::POST, "/api-keys", owner)
                .json(&json!({"name": "mine"})),
        )
        .await;
        assert_refused(res, "owner_id").await;
    }
    for (method, path) in [
        (Method::GET, format!("/api-keys/{}", admin_key.id)),
        (Method::POST, format!("/api-keys/{}/rotate", admin_key.id)),
        (Method::DELETE, format!("/api-keys/{}", admin_key.id)),
    ] {
        let res = send(app.as_owner(method, &path, &reserved)).await;
        assert_refused(res, "owner_id").await;
    }
    let res = send(app.as_admin(Method::GET, &format!("/admin/owners/{reserved}/api-keys"))).await;
    assert_eq!(res.status(), 200);
    let list: Value = res.json().await.unwrap();
    assert_eq!(list["items"][0]["id"], admin_key.id.as_str());
    assert!(list["items"][0]["revoked_at"].is_null(), "untouched");
}

/// What an administrator set, an owner cannot lift or set.
pub async fn case_admin_limits_stay(app: MgmtApp) {
    let o = app.owner("limits");
    let c = app
        .admin_create(
            &o,
            json!({
                "name": "metered",
                "rate_limit": {"requests": 5, "window_seconds": 60},
                "credits": {"limit": 100},
                "ip_allowlist": ["10.0.0.0/8"],
                "metadata": {"plan": "free"}
            }),
        )
        .await;
    for (field, value) in [
        ("rate_limit", Value::Null),
        (
            "rate_limit",
            json!({"requests": 1_000_000, "window_seconds": 1}),
        ),
        ("credits", Value::Null),
        ("credits", json!({"limit": 1_000_000_000})),
        ("ip_allowlist", json!([])),
        ("metadata", json!({"plan": "enterprise"})),
    ] {
        let res = app
            .owner_patch(&o, &c.id, json!({ field: value.clone() }))
            .await;
        assert_refused(res, field).await;
    }
    let now = app.owner_get(&o, &c.id).await;
    for field in ["rate_limit", "credits", "ip_allowlist", "metadata"] {
        assert_eq!(now[field], c.body["key"][field], "{field} unchanged");
    }
    for body in [
        json!({"name": "x", "rate_limit": {"requests": 9, "window_seconds": 1}}),
        json!({"name": "x", "credits": {"limit": 9}}),
        json!({"name": "x", "ip_allowlist": ["192.0.2.1"]}),
        json!({"name": "x", "metadata": {"tier": "gold"}}),
    ] {
        let res = send(app.as_owner(Method::POST, "/api-keys", &o).json(&body)).await;
        let field = body
            .as_object()
            .and_then(|m| m.keys().find(|k| *k != "name").cloned())
            .unwrap();
        assert_refused(res, &field).await;
    }
    let res = app
        .owner_patch(&o, &c.id, json!({"name": "renamed", "description": "mine"}))
        .await;
    assert_eq!(res.status(), 200);
    // An administrator changes them.
    let res = app.admin_patch(&o, &c.id, json!({"credits": null})).await;
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    assert!(v["credits"].is_null());
}

/// Owners narrow scopes and shorten the expiry; widening and extending are an admin's.
pub async fn case_owners_narrow_and_shorten(app: MgmtApp) {
    let o = app.owner("narrow");
    let c = app
        .owner_create(
            &o,
            json!({"name": "k", "scopes": ["reports:read", "reports:write"]}),
        )
        .await;
    let res = app
        .owner_patch(&o, &c.id, json!({"scopes": ["reports:read"]}))
        .await;
    assert_eq!(res.status(), 200);
    for widen in [
        json!(["reports:read", "reports:write"]),
        json!(["reports:*"]),
        json!(["*"]),
    ] {
        let res = app.owner_patch(&o, &c.id, json!({ "scopes": widen })).await;
        assert_refused(res, "scopes").await;
    }
    let expires = time(&c.body["key"]["expires_at"]);
    let res = app
        .owner_patch(&o, &c.id, json!({"expires_at": null}))
        .await;
    assert_refused(res, "expires_at").await;
    let later = rfc3339(expires + time::Duration::days(1));
    let res = app
        .owner_patch(&o, &c.id, json!({"expires_at": later}))
        .await;
    assert_refused(res, "expires_at").await;
    let sooner = OffsetDateTime::now_utc() + time::Duration::days(1);
    let res = app
        .owner_patch(&o, &c.id, json!({"expires_at": rfc3339(sooner)}))
        .await;
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    assert!((time(&v["expires_at"]) - sooner).whole_seconds().abs() <= 1);
    // The administrator widens and extends.
    let res = app
        .admin_patch(
            &o,
            &c.id,
            json!({"scopes": ["reports:*"], "expires_at": null}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["scopes"], json!(["reports:*"]));
    assert!(v["expires_at"].is_null());
}

/// Self-service keys get the operator's limits and lifetime; admin keys do not.
pub async fn case_self_service_defaults(app: MgmtApp) {
    let o = app.owner("defaults");
    let c = app.owner_create(&o, json!({"name": "k"})).await;
    let key = &c.body["key"];
    assert_eq!(
        key["rate_limit"],
        json!({"requests": SELF_SERVICE_RATE.0, "window_seconds": SELF_SERVICE_RATE.1})
    );
    assert_eq!(key["credits"]["limit"], SELF_SERVICE_CREDITS);
    let lives = time(&key["expires_at"]) - time(&key["created_at"]);
    assert_eq!(lives.whole_days(), SELF_SERVICE_MAX_TTL_DAYS, "{key}");
    let res = send(app.as_owner(Method::POST, "/api-keys", &o).json(&json!({
        "name": "long",
        "ttl_seconds": (SELF_SERVICE_MAX_TTL_DAYS + 1) * 86_400
    })))
    .await;
    let body = assert_problem(res, 422, "VALIDATION_FAILED").await;
    assert_eq!(body["errors"][0]["code"], "too_far", "{body}");
    let short = app
        .owner_create(&o, json!({"name": "short", "ttl_seconds": 3600}))
        .await;
    let lives = time(&short.body["key"]["expires_at"]) - time(&short.body["key"]["created_at"]);
    assert_eq!(lives.whole_seconds(), 3600);
    let a = app.admin_create(&o, json!({"name": "by-admin"})).await;
    for field in ["rate_limit", "credits", "expires_at"] {
        assert!(
            a.body["key"][field].is_null(),
            "admin key {field}: {}",
            a.body
        );
    }
}

/// Owners reactivate what they deactivated, never what an administrator deactivated.
pub async fn case_reactivation_by_whom(app: MgmtApp) {
    let o = app.owner("react");
    let c = app.owner_create(&o, json!({"name": "k"})).await;
    for active in [false, true] {
        let res = app
            .owner_patch(&o, &c.id, json!({"is_active": active}))
            .await;
        assert_eq!(res.status(), 200, "owner sets is_active {active}");
    }
    let res = app
        .admin_patch(&o, &c.id, json!({"is_active": false}))
        .await;
    assert_eq!(res.status(), 200);
    let res = app.owner_patch(&o, &c.id, json!({"is_active": true})).await;
    assert_refused(res, "is_active").await;
    // Deactivating again does not make it the owner's to reactivate.
    let res = app
        .owner_patch(&o, &c.id, json!({"is_active": false}))
        .await;
    assert_eq!(res.status(), 200);
    let res = app.owner_patch(&o, &c.id, json!({"is_active": true})).await;
    assert_refused(res, "is_active").await;
    assert_eq!(app.owner_get(&o, &c.id).await["is_active"], false);
    let res = app.admin_patch(&o, &c.id, json!({"is_active": true})).await;
    assert_eq!(res.status(), 200);
}

fn rotate_path(id: &str) -> String {
    format!("/api-keys/{id}/rotate")
}

/// A key rotates once; rotating a successor ends its predecessor's grace, so a chain never has
/// more than two live keys; successors keep the limits.
pub async fn case_rotation_cannot_multiply(app: MgmtApp) {
    let o = app.owner("rotate");
    let first = app.owner_create(&o, json!({"name": "k"})).await;
    let rotate = |id: String| {
        let req = app.as_owner(Method::POST, &rotate_path(&id), &o);
        async move { send(req).await }
    };
    let res = rotate(first.id.clone()).await;
    assert_eq!(res.status(), 201);
    let mut latest = created(res).await;
    assert_eq!(
        latest.body["key"]["rate_limit"],
        first.body["key"]["rate_limit"]
    );
    assert_eq!(latest.body["key"]["credits"], first.body["key"]["credits"]);
    assert_eq!(latest.body["key"]["rotated_from"], first.id.as_str());
    let res = rotate(first.id.clone()).await;
    assert_problem(res, 409, "API_KEY_ALREADY_ROTATED").await;
    let old = app.owner_get(&o, &first.id).await;
    assert_eq!(old["rotated_to"], latest.id.as_str());
    assert_eq!(old["state"], "active", "in its grace");
    for _ in 0..(MAX_KEYS as usize + 4) {
        let res = rotate(latest.id.clone()).await;
        assert_eq!(res.status(), 201);
        latest = created(res).await;
    }
    assert_eq!(app.owner_get(&o, &first.id).await["state"], "expired");
    let list: Value = send(app.as_owner(Method::GET, "/api-keys?limit=100", &o))
        .await
        .json()
        .await
        .unwrap();
    let live = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["state"] == "active")
        .count();
    assert_eq!(
        live, 2,
        "the chain has the latest key and its predecessor in grace"
    );
    // A revoked key's state forbids a rotation or a change: a conflict, not a bad request.
    let gone = app.owner_create(&o, json!({"name": "gone"})).await;
    let res = send(app.as_owner(Method::DELETE, &format!("/api-keys/{}", gone.id), &o)).await;
    assert_eq!(res.status(), 204);
    assert_problem(rotate(gone.id.clone()).await, 409, "API_KEY_STATE_CONFLICT").await;
    let res = app
        .owner_patch(&o, &gone.id, json!({"name": "again"}))
        .await;
    assert_problem(res, 409, "API_KEY_STATE_CONFLICT").await;
    // Concurrent rotations of one key: exactly one wins.
    let c = app.owner_create(&o, json!({"name": "race"})).await;
    let answers = futures::future::join_all((0..6).map(|_| rotate(c.id.clone()))).await;
    let statuses: Vec<u16> = answers.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 409),
        "{statuses:?}"
    );
}

/// Rotation resets no quota: the successor (and the old key in its grace) spend the credits
/// the old key left.
pub async fn case_rotation_keeps_credits(app: MgmtApp) {
    let o = app.owner("credits");
    let k = app
        .admin_create(
            &o,
            json!({"name": "metered", "scopes": ["reports:read"], "credits": {"limit": 3}}),
        )
        .await;
    assert_eq!(app.probe(&k.api_key).await, 200);
    assert_eq!(app.probe(&k.api_key).await, 200);
    let res = send(app.as_owner(Method::POST, &rotate_path(&k.id), &o)).await;
    let successor = created(res).await;
    assert_eq!(app.probe(&successor.api_key).await, 200, "the third credit");
    assert_eq!(app.probe(&successor.api_key).await, 429, "no fresh credits");
    assert_eq!(app.probe(&k.api_key).await, 429, "the old key shares them");
}

/// Answers about a key carry its version; `If-Match` guards every write.
pub async fn case_if_match(app: MgmtApp) {
    let o = app.owner("etag");
    let c = app.owner_create(&o, json!({"name": "k"})).await;
    let path = format!("/api-keys/{}", c.id);
    let etag = |res: &reqwest::Response| {
        res.headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .expect("an ETag")
    };
    let res = send(app.as_owner(Method::GET, &path, &o)).await;
    let v1 = etag(&res);
    let res = send(
        app.as_owner(Method::PATCH, &path, &o)
            .header("if-match", &v1)
            .json(&json!({"name": "a"})),
    )
    .await;
    assert_eq!(res.status(), 200);
    let v2 = etag(&res);
    assert_ne!(v1, v2, "a write makes a new version");
    for req in [
        app.as_owner(Method::PATCH, &path, &o)
            .json(&json!({"name": "b"})),
        app.as_owner(Method::DELETE, &path, &o),
        app.as_owner(Method::POST, &rotate_path(&c.id), &o),
    ] {
        let res = send(req.header("if-match", &v1)).await;
        assert_problem(res, 412, "PRECONDITION_FAILED").await;
    }
    let res = send(
        app.as_owner(Method::PATCH, &path, &o)
            .header("if-match", "\"not-a-version\"")
            .json(&json!({"name": "b"})),
    )
    .await;
    assert_problem(res, 412, "PRECONDITION_FAILED").await;
    assert_eq!(app.owner_get(&o, &c.id).await["name"], "a");
    let res = send(
        app.as_owner(Method::PATCH, &path, &o)
            .header("if-match", "*")
            .json(&json!({"name": "c"})),
    )
    .await;
    assert_eq!(res.status(), 200);
    let admin_path = format!("/admin/owners/{o}{path}");
    let res = send(app.as_admin(Method::GET, &admin_path)).await;
    let v3 = etag(&res);
    let res = send(
        app.as_admin(Method::DELETE, &admin_path)
            .header("if-match", &v3),
    )
    .await;
    assert_eq!(res.status(), 204);
}

/// Every answer with a raw key is `Cache-Control: no-store`, in every route that gives one.
pub async fn case_raw_keys_not_cacheable(app: MgmtApp) {
    let o = app.owner("nostore");
    // `created` asserts the header.
    let c = app.owner_create(&o, json!({"name": "k"})).await;
    created(send(app.as_owner(Method::POST, &rotate_path(&c.id), &o)).await).await;
    let a = app.admin_create(&o, json!({"name": "a"})).await;
    created(
        send(app.as_admin(
            Method::POST,
            &format!("/admin/owners/{o}/api-keys/{}/rotate", a.id),
        ))
        .await,
    )
    .await;
}

/// Concurrent updates of different fields both land.
pub async fn case_concurrent_updates_keep_both(app: MgmtApp) {
    let o = app.owner("race");
    let c = app.owner_create(&o, json!({"name": "k"})).await;
    for i in 0..8 {
        let (a, b) = tokio::join!(
            app.owner_patch(&o, &c.id, json!({"name": format!("n{i}")})),
            app.owner_patch(&o, &c.id, json!({"description": format!("d{i}")})),
        );
        assert_eq!(
            (a.status().as_u16(), b.status().as_u16()),
            (200, 200),
            "round {i}"
        );
        let v = app.owner_get(&o, &c.id).await;
        assert_eq!(
            (v["name"].as_str(), v["description"].as_str()),
            (
                Some(format!("n{i}").as_str()),
                Some(format!("d{i}").as_str())
            ),
            "round {i}: a write was lost"
        );
    }
}

/// `POST /admin/api-keys/batch`: administrators only; every key or none (an owner the batch
/// would take over the cap, an invalid item: nothing is created, and the refused item is
/// named `keys[i].field`); the raw keys in the order asked for, each working, never cached.
pub async fn case_batch_create(app: MgmtApp) {
    let (ann, bob, cid) = (
        app.owner("batch-ann"),
        app.owner("batch-bob"),
        app.owner("batch-cid"),
    );
    let path = "/admin/api-keys/batch";
    let one = |owner: &str, name: &str| json!({"owner_id": owner, "key": {"name": name, "scopes": ["reports:read"]}});
    let body = json!({"keys": [one(&ann, "a1"), one(&bob, "b1"), one(&ann, "a2")]});
    // Not an administrator: an owner, an ordinary key.
    let res = send(app.as_owner(Method::POST, path, &ann).json(&body)).await;
    // The adapters' admin check answers 403, the server's (no admin token) 401.
    let status = res.status().as_u16();
    assert!(
        matches!(status, 401 | 403),
        "an owner mints in batches: {status}"
    );
    let plain = app.owner_create(&cid, json!({"name": "plain"})).await;
    let res = send(app.with_key(Method::POST, path, &plain.api_key).json(&body)).await;
    assert_eq!(res.status(), 403, "a key mints in batches");
    // An administrator.
    let res = send(app.as_admin(Method::POST, path).json(&body)).await;
    assert_eq!(res.status(), 201);
    let cache = res
        .headers()
        .get("cache-control")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    assert!(cache.contains("no-store"), "cache-control {cache:?}");
    let made: Value = res.json().await.unwrap();
    let items = made["items"].as_array().unwrap();
    let names: Vec<&str> = items
        .iter()
        .map(|i| i["key"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a1", "b1", "a2"]);
    assert_eq!(items[1]["key"]["owner_id"], json!(bob));
    for item in items {
        assert_eq!(app.probe(item["api_key"].as_str().unwrap()).await, 200);
    }
    // ann holds 2 of MAX_KEYS: 3 more are refused, and so is cid's key beside them.
    let over = json!({"keys": [one(&cid, "c"), one(&ann, "a3"), one(&ann, "a4"), one(&ann, "a5")]});
    let res = send(app.as_admin(Method::POST, path).json(&over)).await;
    assert_problem(res, 409, "API_KEY_LIMIT_REACHED").await;
    let keys_of = |owner: String| {
        let req = app.as_admin(Method::GET, &format!("/admin/owners/{owner}/api-keys"));
        async move {
            let page: Value = send(req).await.json().await.unwrap();
            page["items"].as_array().unwrap().len()
        }
    };
    assert_eq!(
        keys_of(cid.clone()).await,
        1,
        "a refused batch created nothing"
    );
    assert_eq!(keys_of(ann.clone()).await, 2);
    // An invalid item refuses the batch and is named.
    let bad = json!({"keys": [one(&cid, "ok"), one(&cid, " ")]});
    let res = send(app.as_admin(Method::POST, path).json(&bad)).await;
    let problem = assert_problem(res, 422, "VALIDATION_FAILED").await;
    assert_eq!(
        problem["errors"][0]["field"],
        json!("keys[1].name"),
        "{problem}"
    );
    let res = send(
        app.as_admin(Method::POST, path)
            .json(&json!({"keys": [one("no owner", "x")]})),
    )
    .await;
    assert_eq!(res.status(), 422, "an owner id outside the grammar");
    assert_eq!(keys_of(cid.clone()).await, 1);
    // Between 1 and 1,000 keys.
    let res = send(app.as_admin(Method::POST, path).json(&json!({"keys": []}))).await;
    assert_problem(res, 422, "VALIDATION_FAILED").await;
    let many: Vec<Value> = (0..1001).map(|i| one(&cid, &format!("k{i}"))).collect();
    let res = send(
        app.as_admin(Method::POST, path)
            .json(&json!({ "keys": many })),
    )
    .await;
    assert_problem(res, 422, "VALIDATION_FAILED").await;
}

/// Generates one `#[tokio::test]` per case; `$app` is `async fn() -> Option<MgmtApp>` (`None`
/// skips, having said why).
#[macro_export]
macro_rules! management_suite {
    (app = $app:expr $(,)?) => {
        $crate::management_suite!(@cases $app;
            case_reserved_scopes_need_an_admin, case_wildcards_make_no_admin,
            case_reserved_owners_closed_to_self_service, case_owner_ids_follow_one_grammar,
            case_key_callers_pass_on_their_restrictions,
            case_admin_limits_stay,
            case_owners_narrow_and_shorten, case_self_service_defaults,
            case_reactivation_by_whom, case_rotation_cannot_multiply, case_rotation_keeps_credits,
            case_if_match,
            case_raw_keys_not_cacheable, case_concurrent_updates_keep_both, case_batch_create,
            case_audit_trail, case_usage_analytics, case_credit_top_ups);
    };
    (@cases $app:expr; $($case:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                if let Some(app) = ($app)().await {
                    $crate::management_suite::$case(app).await;
                }
            }
        )*
    };
}
