//! The audit log over HTTP: what each management call records, who may read it, and that no
//! secret is in it.

use reqwest::Method;
use serde_json::{Value, json};

use super::MgmtApp;
use super::app::send;
use crate::http_suite::assert_problem;

async fn events(req: reqwest::RequestBuilder) -> Vec<Value> {
    let res = send(req).await;
    assert_eq!(res.status(), 200, "events");
    let page: Value = res.json().await.expect("json");
    page["items"].as_array().expect("items").clone()
}

fn actions(items: &[Value]) -> Vec<&str> {
    items
        .iter()
        .map(|e| e["action"].as_str().unwrap_or(""))
        .collect()
}

fn change<'a>(event: &'a Value, field: &str) -> &'a Value {
    event["changes"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["field"] == field))
        .unwrap_or_else(|| panic!("no change of {field} in {event}"))
}

/// Create (admin), update (owner), update (an administrator key), rotate (owner), revoke
/// (owner): each is in the key's log, newest first, with its actor, its changes old → new and
/// the request's origin; the owner reads its own keys' logs only, administrators every log,
/// filtered and paged; no raw key is anywhere in it.
pub async fn case_audit_trail(app: MgmtApp) {
    let (owner, stranger) = (app.owner("audit"), app.owner("audit-other"));
    let key = app
        .admin_create(
            &owner,
            json!({"name": "audited", "scopes": ["reports:read", "reports:write"]}),
        )
        .await;
    let id = key.id.clone();
    let res = send(
        app.as_owner(Method::PATCH, &format!("/api-keys/{id}"), &owner)
            .header("user-agent", "audit-test/1")
            .header("x-request-id", "req-update-1")
            .json(&json!({"name": "renamed", "scopes": ["reports:read"]})),
    )
    .await;
    assert_eq!(res.status(), 200);
    let ops = app.owner("audit-ops");
    let admin_key = app
        .admin_create(&ops, json!({"name": "ops", "scopes": ["keyward:admin"]}))
        .await;
    let admin_key_id = admin_key.id.clone();
    let res = send(
        app.with_key(
            Method::PATCH,
            &format!("/admin/owners/{owner}/api-keys/{id}"),
            &admin_key.api_key,
        )
        .json(&json!({"description": "seen by ops"})),
    )
    .await;
    assert_eq!(res.status(), 200, "an administrator key updates");
    let res = send(
        app.as_owner(Method::POST, &format!("/api-keys/{id}/rotate"), &owner)
            .json(&json!({"grace_seconds": 60})),
    )
    .await;
    assert_eq!(res.status(), 201);
    let successor: Value = res.json().await.unwrap();
    let next = successor["key"]["id"].as_str().unwrap().to_owned();
    let raw_successor = successor["api_key"].as_str().unwrap().to_owned();
    let res = send(app.as_owner(Method::DELETE, &format!("/api-keys/{next}"), &owner)).await;
    assert_eq!(res.status(), 204);

    // The key's log, as its owner reads it.
    let log = events(app.as_owner(Method::GET, &format!("/api-keys/{id}/events"), &owner)).await;
    assert_eq!(
        actions(&log),
        ["key.rotated", "key.updated", "key.updated", "key.created"],
        "{log:?}"
    );
    let (rotated, by_key, by_owner, created) = (&log[0], &log[1], &log[2], &log[3]);
    // The operator's side, to a tenant: what was done, not by which administrator key, nor
    // from which address.
    assert_eq!(created["actor"], json!({"type": "admin"}));
    assert_eq!(created["origin"], json!({}), "{created}");
    assert_eq!(by_key["actor"], json!({"type": "admin_key"}));
    assert_eq!(created["owner_id"], json!(owner));
    assert_eq!(change(created, "name")["new"], "audited");
    assert_eq!(by_owner["actor"], json!({"type": "owner", "id": owner}));
    assert_eq!(change(by_owner, "name")["old"], "audited");
    assert_eq!(change(by_owner, "name")["new"], "renamed");
    assert_eq!(
        change(by_owner, "scopes")["old"],
        json!(["reports:read", "reports:write"])
    );
    assert_eq!(change(by_owner, "scopes")["new"], json!(["reports:read"]));
    assert_eq!(by_owner["origin"]["user_agent"], "audit-test/1");
    assert_eq!(by_owner["origin"]["request_id"], "req-update-1");
    assert_eq!(by_owner["origin"]["client_addr"], "127.0.0.1");
    assert_eq!(rotated["actor"]["type"], "owner");
    assert_eq!(change(rotated, "rotated_to")["new"], json!(next));
    assert!(change(rotated, "expires_at")["new"].is_string());
    let successor_log =
        events(app.as_owner(Method::GET, &format!("/api-keys/{next}/events"), &owner)).await;
    assert_eq!(actions(&successor_log), ["key.revoked", "key.created"]);
    assert_eq!(change(&successor_log[1], "rotated_from")["new"], json!(id));

    // Another owner's key is not found, on either mount.
    let res = send(app.as_owner(Method::GET, &format!("/api-keys/{id}/events"), &stranger)).await;
    assert_problem(res, 404, "API_KEY_NOT_FOUND").await;
    let res = send(app.as_admin(
        Method::GET,
        &format!("/admin/owners/{stranger}/api-keys/{id}/events"),
    ))
    .await;
    assert_problem(res, 404, "API_KEY_NOT_FOUND").await;
    let as_admin = events(app.as_admin(
        Method::GET,
        &format!("/admin/owners/{owner}/api-keys/{id}/events"),
    ))
    .await;
    assert_eq!(actions(&as_admin), actions(&log));
    assert_eq!(as_admin[0], log[0], "the owner's own actions, whole");
    assert_eq!(as_admin[2], log[2]);
    assert_eq!(
        as_admin[1]["actor"],
        json!({"type": "admin_key", "id": admin_key_id}),
        "administrators see which key"
    );
    assert_eq!(as_admin[3]["origin"]["client_addr"], "127.0.0.1");

    // Every owner's log: administrators only, filtered and paged.
    let audit = |query: &str| app.as_admin(Method::GET, &format!("/admin/audit?{query}"));
    let all = events(audit(&format!("owner_id={owner}"))).await;
    assert_eq!(all.len(), 6, "{all:?}");
    let revoked = events(audit(&format!("owner_id={owner}&action=key.revoked"))).await;
    assert_eq!(actions(&revoked), ["key.revoked"]);
    let mine = events(audit(&format!("owner_id={owner}&actor=owner:{owner}"))).await;
    assert_eq!(mine.len(), 4, "update, rotate, successor, revoke");
    let by_admin_key = events(audit(&format!("actor=admin_key:{admin_key_id}"))).await;
    assert_eq!(by_admin_key, vec![as_admin[1].clone()]);
    let future = events(audit(&format!(
        "owner_id={owner}&since=2999-01-01T00:00:00Z"
    )))
    .await;
    assert!(future.is_empty());
    let mut paged = Vec::new();
    let mut cursor = String::new();
    loop {
        let res = send(audit(&format!("owner_id={owner}&limit=4&cursor={cursor}"))).await;
        assert_eq!(res.status(), 200);
        let page: Value = res.json().await.unwrap();
        paged.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = c.to_owned(),
            None => break,
        }
    }
    assert_eq!(paged, all, "pages walk the log once, in order");
    for bad in [
        "action=key.nope",
        "limit=0",
        "since=yesterday",
        "actor=robot",
        "key_id=short",
    ] {
        let res = send(audit(bad)).await;
        assert_problem(res, 422, "VALIDATION_FAILED").await;
    }
    let res = send(app.as_owner(Method::GET, "/admin/audit", &owner)).await;
    let status = res.status().as_u16();
    assert!(
        matches!(status, 401 | 403),
        "an owner reads every log: {status}"
    );
    let plain = app.owner_create(&stranger, json!({"name": "plain"})).await;
    let res = send(app.with_key(Method::GET, "/admin/audit", &plain.api_key)).await;
    assert_eq!(res.status(), 403, "an ordinary key reads every log");

    // No raw key, and no secret part of one, is in any of it.
    let text = serde_json::to_string(&all).unwrap();
    for raw in [&key.api_key, &raw_successor, &admin_key.api_key] {
        let secret = raw.rsplit('_').next().unwrap();
        assert!(!text.contains(secret), "a secret in the audit log");
    }
}
