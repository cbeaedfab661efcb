//! Credit top-ups over HTTP (`POST …/{key_id}/credits {"add": n}`): who may, what they change,
//! and what the audit log says.

use reqwest::Method;
use serde_json::{Value, json};

use super::app::send;
use super::{MgmtApp, assert_refused};
use crate::http_suite::assert_problem;

/// A top-up moves a spent balance at once; only an administrator may make one (an owner is
/// refused on the `credits` field, as a PATCH of credits is); a malformed body is refused, and
/// so (`409`, the key's state) are a balance below zero, refilling credits and a key without
/// credits; the audit log records the change of `credits` with its administrator.
pub async fn case_credit_top_ups(app: MgmtApp) {
    let o = app.owner("topup");
    let k = app
        .admin_create(
            &o,
            json!({"name": "metered", "scopes": ["reports:read"], "credits": {"limit": 1}}),
        )
        .await;
    assert_eq!(app.probe(&k.api_key).await, 200);
    assert_eq!(app.probe(&k.api_key).await, 429, "spent");
    let path = format!("/api-keys/{}/credits", k.id);
    let res = send(
        app.as_owner(Method::POST, &path, &o)
            .json(&json!({"add": 2})),
    )
    .await;
    assert_refused(res, "credits").await;
    let admin_path = format!("/admin/owners/{o}{path}");
    let top_up = |body: Value| send(app.as_admin(Method::POST, &admin_path).json(&body));
    let res = top_up(json!({"add": 2})).await;
    assert_eq!(res.status(), 200);
    assert!(res.headers().get("etag").is_some());
    let view: Value = res.json().await.expect("json");
    assert_eq!(view["credits"]["limit"], 3);
    assert_eq!(app.probe(&k.api_key).await, 200, "topped up");
    assert_eq!(app.probe(&k.api_key).await, 200);
    assert_eq!(app.probe(&k.api_key).await, 429, "spent again");

    let res = top_up(json!({"add": -4})).await;
    assert_problem(res, 409, "API_KEY_STATE_CONFLICT").await;
    for body in [json!({"add": "2"}), json!({}), json!({"add": 1, "more": 1})] {
        let res = top_up(body.clone()).await;
        assert!(
            [400, 422].contains(&res.status().as_u16()),
            "{body}: {}",
            res.status()
        );
    }
    let refilling = app
        .admin_create(
            &o,
            json!({"name": "monthly", "credits": {"limit": 10, "refill_seconds": 2_592_000}}),
        )
        .await;
    let plain = app.admin_create(&o, json!({"name": "plain"})).await;
    for id in [&refilling.id, &plain.id] {
        let res = send(
            app.as_admin(
                Method::POST,
                &format!("/admin/owners/{o}/api-keys/{id}/credits"),
            )
            .json(&json!({"add": 5})),
        )
        .await;
        assert_problem(res, 409, "API_KEY_STATE_CONFLICT").await;
    }

    let res = send(app.as_owner(Method::GET, &format!("/api-keys/{}/events", k.id), &o)).await;
    let page: Value = res.json().await.expect("json");
    let updated = page["items"]
        .as_array()
        .and_then(|items| items.iter().find(|e| e["action"] == "key.updated"))
        .cloned()
        .unwrap_or_else(|| panic!("no key.updated in {page}"));
    assert_eq!(updated["actor"]["type"], "admin", "{updated}");
    let change = updated["changes"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["field"] == "credits"))
        .cloned()
        .unwrap_or_else(|| panic!("no change of credits in {updated}"));
    assert_eq!(change["old"]["limit"], 1, "{change}");
    assert_eq!(change["new"]["limit"], 3, "{change}");
}
