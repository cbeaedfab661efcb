//! Cases from the outside security review of 2026-12-06 (issue 29), each a demonstrated hole
//! that must stay closed on every stack.

use reqwest::Method;
use serde_json::json;
use time::OffsetDateTime;

use super::MgmtApp;
use super::app::send;
use crate::http_suite::assert_problem;

/// Review finding 4: one owner-id grammar on every path. An id with whitespace at either end
/// (which header parsers trim), inside, or a comma, is refused by the admin routes and by
/// self-service alike, so that no two spellings of one owner exist in a store.
pub async fn case_owner_ids_follow_one_grammar(app: MgmtApp) {
    let owner = app.owner("grammar");
    for bad in [
        format!("{owner}%20"),
        format!("%20{owner}"),
        format!("{owner}%09"),
        format!("al%20{owner}"),
        format!("a%2C{owner}"),
        format!("%C3%A9{owner}"),
    ] {
        let path = format!("/admin/owners/{bad}/api-keys");
        let res = send(
            app.as_admin(Method::POST, &path)
                .json(&json!({"name": "k"})),
        )
        .await;
        assert_problem(res, 422, "VALIDATION_FAILED").await;
        let res = send(app.as_admin(Method::GET, &path)).await;
        assert_problem(res, 422, "VALIDATION_FAILED").await;
    }
    for bad in [format!("al {owner}"), format!("a,{owner}")] {
        let res = send(
            app.as_owner(Method::POST, "/api-keys", &bad)
                .json(&json!({"name": "k"})),
        )
        .await;
        assert_problem(res, 422, "VALIDATION_FAILED").await;
    }
    // The grammar's own characters pass.
    let fancy = format!("{owner}:org@x.example%7Ca=c~d+e_f.g");
    let made = app.admin_create(&fancy, json!({"name": "k"})).await;
    assert_eq!(
        made.body["key"]["owner_id"],
        format!("{owner}:org@x.example|a=c~d+e_f.g")
    );
}

/// Review finding 7: a key that may manage its owner's keys cannot shed its own restrictions by
/// minting a fresh key: the child gets at most its allowlist, rate limit, credits and expiry,
/// and asking for a longer life is refused. Where key callers are refused altogether (the
/// server), minting with a key is refused.
pub async fn case_key_callers_pass_on_their_restrictions(app: MgmtApp) {
    let owner = app.owner("caller");
    let expiry = OffsetDateTime::now_utc() + time::Duration::days(2);
    let expiry = super::rfc3339(expiry.replace_nanosecond(0).unwrap());
    let parent = app
        .admin_create(
            &owner,
            json!({
                "name": "restricted",
                "scopes": ["reports:read"],
                "ip_allowlist": ["127.0.0.0/8", "::1/128"],
                "rate_limit": {"requests": 5, "window_seconds": 60},
                "credits": {"limit": 10},
                "expires_at": expiry,
            }),
        )
        .await;
    let Some(routes) = app.key_routes else {
        let res = send(
            app.as_owner(Method::POST, "/api-keys", &owner)
                .bearer_auth(&parent.api_key)
                .json(&json!({"name": "child"})),
        )
        .await;
        assert_eq!(
            res.status(),
            403,
            "a key minted a key where key callers are refused"
        );
        return;
    };
    let mint = |body: serde_json::Value| {
        send(
            app.with_key(Method::POST, routes, &parent.api_key)
                .json(&body),
        )
    };
    let res = mint(json!({"name": "child", "scopes": ["reports:read"]})).await;
    assert_eq!(res.status(), 201);
    let child: serde_json::Value = res.json().await.expect("json");
    let key = &child["key"];
    assert_eq!(
        key["ip_allowlist"],
        json!(["127.0.0.0/8", "::1/128"]),
        "{key}"
    );
    assert_eq!(
        key["rate_limit"],
        json!({"requests": 5, "window_seconds": 60}),
        "{key}"
    );
    assert_eq!(key["credits"]["limit"], json!(10), "{key}");
    assert_eq!(
        super::time(&key["expires_at"]),
        super::time(&json!(expiry)),
        "{key}"
    );
    let res = mint(json!({"name": "longer", "ttl_seconds": 3 * 86_400})).await;
    super::assert_refused(res, "expires_at").await;
    // Nor by rotating a less restricted sibling, whose successor would be a fresh raw key.
    let sibling = app
        .admin_create(&owner, json!({"name": "free", "scopes": ["reports:read"]}))
        .await;
    let res = send(app.with_key(
        Method::POST,
        &format!("{routes}/{}/rotate", sibling.id),
        &parent.api_key,
    ))
    .await;
    super::assert_refused(res, "ip_allowlist").await;
}
