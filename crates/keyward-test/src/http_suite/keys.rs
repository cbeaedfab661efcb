//! Cases about keys: creation shown once, credential forms, anonymous and open routes, management owners, foreign keys, revocation, scopes, expiry, the per-owner maximum, rotation.

use std::time::Duration;

use serde_json::{Value, json};

use super::*;

/// Create answers `201 {api_key, key}` once; list and get never show the secret or digest; the
/// key works on `/protected` and the principal is the owner's.
pub async fn case_create_shows_key_once(app: TestApp) {
    let alice = app.owner("alice");
    // Metadata is the administrator's to set (DESIGN.md §11).
    let c = app
        .admin_create(
            &alice,
            json!({"name": "ci", "scopes": ["reports:read"], "metadata": {"team": "x"}}),
        )
        .await;
    let key = &c.body["key"];
    assert_eq!(key["owner_id"], alice.as_str());
    assert_eq!(key["name"], "ci");
    assert_eq!(key["scopes"], json!(["reports:read"]));
    assert_eq!(key["is_active"], true);
    assert!(
        key["display"]
            .as_str()
            .unwrap_or("")
            .starts_with(&format!("kw_live_{}", c.id))
    );
    fields_free_of_secrets(key, secret_of(&c.api_key));

    let list: Value = app.list(&alice).await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(list["items"][0]["id"], c.id.as_str());
    fields_free_of_secrets(&list, secret_of(&c.api_key));

    let res = app
        .as_owner(reqwest::Method::GET, &format!("/api-keys/{}", c.id), &alice)
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 200);
    let one: Value = res.json().await.expect("json");
    assert_eq!(one["id"], c.id.as_str());
    fields_free_of_secrets(&one, secret_of(&c.api_key));

    let res = app.get_bearer("/protected", &c.api_key).await;
    assert_eq!(res.status(), 200);
    let p: Value = res.json().await.expect("principal json");
    assert_eq!(p["key_id"], c.id.as_str());
    assert_eq!(p["owner_id"], alice.as_str());
    fields_free_of_secrets(&p, secret_of(&c.api_key));
}

/// Every credential form: Bearer (any case), X-API-Key, Authorization wins, a foreign bearer
/// falls through.
pub async fn case_credential_forms(app: TestApp) {
    let owner = app.owner("forms");
    let c = app
        .create(&owner, json!({"name": "k", "scopes": ["reports:read"]}))
        .await;
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let res = app
            .client
            .get(app.url("/protected"))
            .header("authorization", format!("{scheme} {}", c.api_key))
            .send()
            .await
            .expect("sent");
        assert_eq!(res.status(), 200, "scheme {scheme}");
    }
    assert_eq!(app.get_header("/protected", &c.api_key).await.status(), 200);
    // Authorization wins when both carry a key.
    let res = app
        .client
        .get(app.url("/protected"))
        .header("authorization", format!("Bearer {}", c.api_key))
        .header("x-api-key", "kw_live_junk")
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 200);
    // Even a near miss of the good key in Authorization is refused, whatever X-API-Key holds.
    let mut near = c.api_key.clone();
    let last = near.pop().unwrap_or('0');
    near.push(if last == 'A' { 'B' } else { 'A' });
    for bearer in ["kw_live_junk", near.as_str()] {
        let res = app
            .client
            .get(app.url("/protected"))
            .header("authorization", format!("Bearer {bearer}"))
            .header("x-api-key", &c.api_key)
            .send()
            .await
            .expect("sent");
        assert_problem(res, 401, "API_KEY_INVALID").await;
    }
    // A JWT is not ours: it falls through, and the X-API-Key decides.
    let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln";
    let res = app
        .client
        .get(app.url("/protected"))
        .header("authorization", format!("Bearer {jwt}"))
        .header("x-api-key", &c.api_key)
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 200);
    let res = app.get_bearer("/protected", jwt).await;
    assert_problem(res, 401, "API_KEY_MISSING").await;
    let res = app
        .client
        .get(app.url("/protected"))
        .header("authorization", "Basic dTpw")
        .send()
        .await
        .expect("sent");
    assert_problem(res, 401, "API_KEY_MISSING").await;
}

/// No credential: `401 API_KEY_MISSING` with `WWW-Authenticate: Bearer`; `/open` needs none.
pub async fn case_missing_and_open(app: TestApp) {
    let res = app
        .client
        .get(app.url("/protected"))
        .send()
        .await
        .expect("sent");
    assert_problem(res, 401, "API_KEY_MISSING").await;
    let res = app.client.get(app.url("/any")).send().await.expect("sent");
    assert_problem(res, 401, "API_KEY_MISSING").await;
    let res = app.client.get(app.url("/open")).send().await.expect("sent");
    assert_eq!(res.status(), 200);
}

/// The authentication refuses a request without a key even where the handler would serve
/// one (it fails closed); a scope check or an extractor that no authentication ran before is
/// the application's wiring error, `500 SERVER_MISCONFIGURED`, never a `401` that blames the
/// client, and never a pass.
pub async fn case_fails_closed_and_miswired(app: TestApp) {
    let res = app
        .client
        .get(app.url("/plain"))
        .send()
        .await
        .expect("sent");
    assert_problem(res, 401, "API_KEY_MISSING").await;
    let owner = app.owner("wiring");
    let c = app
        .create(&owner, json!({"name": "w", "scopes": ["reports:read"]}))
        .await;
    assert_eq!(app.get_bearer("/plain", &c.api_key).await.status(), 200);
    for path in ["/miswired", "/no-layer"] {
        let res = app.get_bearer(path, &c.api_key).await;
        assert_problem(res, 500, "SERVER_MISCONFIGURED").await;
        let res = app.client.get(app.url(path)).send().await.expect("sent");
        assert_problem(res, 500, "SERVER_MISCONFIGURED").await;
    }
}

/// Management needs an owner; API-key callers may not manage keys.
pub async fn case_management_needs_owner_not_key(app: TestApp) {
    let res = app
        .client
        .get(app.url("/api-keys"))
        .send()
        .await
        .expect("sent");
    let status = res.status().as_u16();
    assert_problem(res, status, "OWNER_UNAUTHENTICATED").await;
    assert_eq!(status, 401);
    let res = app
        .client
        .post(app.url("/api-keys"))
        .json(&json!({"name": "x"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 401);

    let owner = app.owner("mgr");
    let c = app
        .create(&owner, json!({"name": "k", "scopes": ["reports:read"]}))
        .await;
    let res = app
        .as_owner(reqwest::Method::POST, "/api-keys", &owner)
        .header("authorization", format!("Bearer {}", c.api_key))
        .json(&json!({"name": "minted"}))
        .send()
        .await
        .expect("sent");
    assert_problem(res, 403, "FORBIDDEN").await;
    let res = app
        .as_owner(reqwest::Method::GET, "/api-keys", &owner)
        .header("x-api-key", &c.api_key)
        .send()
        .await
        .expect("sent");
    assert_problem(res, 403, "FORBIDDEN").await;
}

/// Another owner's key is `404` on every route, as is a missing or malformed id.
pub async fn case_foreign_key_is_404(app: TestApp) {
    let alice = app.owner("alice");
    let bob = app.owner("bob");
    let c = app
        .create(&alice, json!({"name": "a", "scopes": ["reports:read"]}))
        .await;
    let path = format!("/api-keys/{}", c.id);
    use reqwest::Method;
    for (method, path, body) in [
        (Method::GET, path.clone(), None),
        (Method::PATCH, path.clone(), Some(json!({"name": "stolen"}))),
        (Method::DELETE, path.clone(), None),
        (Method::POST, format!("{path}/rotate"), Some(json!({}))),
    ] {
        let mut req = app.as_owner(method.clone(), &path, &bob);
        if let Some(b) = body {
            req = req.json(&b);
        }
        assert_problem(req.send().await.expect("sent"), 404, "API_KEY_NOT_FOUND").await;
    }
    for id in ["AAAAAAAAAAAA", "nope", "..%2F..%2Fetc", "%FF%FE"] {
        let res = app
            .as_owner(Method::GET, &format!("/api-keys/{id}"), &alice)
            .send()
            .await
            .expect("sent");
        assert_problem(res, 404, "API_KEY_NOT_FOUND").await;
    }
    // Alice's key is untouched.
    let res = app
        .as_owner(Method::GET, &path, &alice)
        .send()
        .await
        .expect("sent");
    let v: Value = res.json().await.expect("json");
    assert_eq!(v["name"], "a");
    assert!(v["revoked_at"].is_null());
    assert_eq!(app.protected_status(&c.api_key).await, 200);
}

/// Revoke answers `204` and the key gets `401` at once; revoking again is `204`.
pub async fn case_revoke_is_immediate(app: TestApp) {
    let owner = app.owner("rev");
    let c = app
        .create(&owner, json!({"name": "r", "scopes": ["reports:read"]}))
        .await;
    assert_eq!(app.protected_status(&c.api_key).await, 200);
    let path = format!("/api-keys/{}", c.id);
    let res = app
        .as_owner(reqwest::Method::DELETE, &path, &owner)
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 204);
    assert_problem(
        app.get_bearer("/protected", &c.api_key).await,
        401,
        "API_KEY_INVALID",
    )
    .await;
    assert_problem(
        app.get_header("/protected", &c.api_key).await,
        401,
        "API_KEY_INVALID",
    )
    .await;
    let res = app
        .as_owner(reqwest::Method::DELETE, &path, &owner)
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 204);
    let v: Value = app
        .as_owner(reqwest::Method::GET, &path, &owner)
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert!(v["revoked_at"].is_string());
    assert_eq!(v["state"], "revoked");
}

/// A valid key without the route's scopes: `403` listing the missing ones; any-of routes.
pub async fn case_scope_denied(app: TestApp) {
    let owner = app.owner("scopes");
    let none = app.create(&owner, json!({"name": "none"})).await;
    let body = assert_problem(
        app.get_bearer("/protected", &none.api_key).await,
        403,
        "API_KEY_SCOPE_DENIED",
    )
    .await;
    assert_eq!(body["missing_scopes"], json!(["reports:read"]));
    let body = assert_problem(
        app.get_bearer("/any", &none.api_key).await,
        403,
        "API_KEY_SCOPE_DENIED",
    )
    .await;
    let missing = body["missing_scopes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        missing.contains(&json!("a:x")) && missing.contains(&json!("b:x")),
        "{body}"
    );

    let b = app
        .create(&owner, json!({"name": "b", "scopes": ["b:x"]}))
        .await;
    assert_eq!(app.get_bearer("/any", &b.api_key).await.status(), 200);
    assert_eq!(app.get_bearer("/protected", &b.api_key).await.status(), 403);

    let wild = app
        .create(&owner, json!({"name": "w", "scopes": ["reports:*"]}))
        .await;
    assert_eq!(app.protected_status(&wild.api_key).await, 200);

    // Granting the scope takes effect at once (the cache is invalidated on update).
    // Widening is the administrator's (DESIGN.md §11).
    let res = app
        .client
        .patch(app.url(&format!("/admin/owners/{owner}/api-keys/{}", none.id)))
        .header("x-test-admin", "yes")
        .json(&json!({"scopes": ["reports:read"]}))
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.expect("json");
    assert_eq!(v["scopes"], json!(["reports:read"]));
    assert_eq!(app.protected_status(&none.api_key).await, 200);
}

/// An expired or deactivated key is `401 API_KEY_INVALID`, like any bad key.
pub async fn case_expired_and_inactive(app: TestApp) {
    let owner = app.owner("exp");
    let c = app
        .create(
            &owner,
            json!({"name": "short", "scopes": ["reports:read"], "ttl_seconds": 1}),
        )
        .await;
    assert!(c.body["key"]["expires_at"].is_string());
    let expired = eventually(Duration::from_secs(15), || async {
        let s = app.protected_status(&c.api_key).await;
        assert!(s == 200 || s == 401, "status {s}");
        s == 401
    })
    .await;
    assert!(expired, "a key with ttl_seconds = 1 still works after 15 s");
    assert_problem(
        app.get_bearer("/protected", &c.api_key).await,
        401,
        "API_KEY_INVALID",
    )
    .await;

    let d = app
        .create(
            &owner,
            json!({"name": "toggle", "scopes": ["reports:read"]}),
        )
        .await;
    let path = format!("/api-keys/{}", d.id);
    let res = app
        .as_owner(reqwest::Method::PATCH, &path, &owner)
        .json(&json!({"is_active": false}))
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 200);
    assert_problem(
        app.get_bearer("/protected", &d.api_key).await,
        401,
        "API_KEY_INVALID",
    )
    .await;
    let res = app
        .as_owner(reqwest::Method::PATCH, &path, &owner)
        .json(&json!({"is_active": true}))
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 200);
    assert_eq!(app.protected_status(&d.api_key).await, 200);
}

/// Twenty concurrent creates for one owner: exactly [`MAX_KEYS`] succeed, the rest are `409`.
pub async fn case_max_keys_concurrent(app: TestApp) {
    let owner = app.owner("max");
    let body = json!({"name": "burst"});
    let results = futures::future::join_all((0..20).map(|_| {
        let app = &app;
        let owner = &owner;
        let body = &body;
        async move {
            let res = app.create_raw(owner, body).await;
            let status = res.status().as_u16();
            if status == 409 {
                assert_problem(res, 409, "API_KEY_LIMIT_REACHED").await;
            }
            status
        }
    }))
    .await;
    let ok = results.iter().filter(|s| **s == 201).count();
    let refused = results.iter().filter(|s| **s == 409).count();
    assert_eq!((ok, refused), (MAX_KEYS, 20 - MAX_KEYS), "{results:?}");
    // Revoking one makes room for one more.
    let list: Value = app.list(&owner).await;
    let id = list["items"][0]["id"].as_str().expect("id").to_owned();
    let res = app
        .as_owner(reqwest::Method::DELETE, &format!("/api-keys/{id}"), &owner)
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 204);
    assert_eq!(app.create_raw(&owner, &body).await.status(), 201);
    assert_problem(
        app.create_raw(&owner, &body).await,
        409,
        "API_KEY_LIMIT_REACHED",
    )
    .await;
}

/// Rotate: `201` with a new key; both work during the grace, the old one fails after it.
pub async fn case_rotate_grace(app: TestApp) {
    let owner = app.owner("rot");
    let old = app
        .create(&owner, json!({"name": "rot", "scopes": ["reports:read"]}))
        .await;
    let res = app
        .as_owner(
            reqwest::Method::POST,
            &format!("/api-keys/{}/rotate", old.id),
            &owner,
        )
        .json(&json!({"grace_seconds": 2}))
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 201);
    let new = created(res).await;
    assert_ne!(new.id, old.id);
    assert_eq!(new.body["key"]["rotated_from"], old.id.as_str());
    assert_eq!(new.body["key"]["scopes"], json!(["reports:read"]));
    assert_eq!(app.protected_status(&new.api_key).await, 200);
    let old_status = app.protected_status(&old.api_key).await;
    assert!(old_status == 200 || old_status == 401, "{old_status}");
    let died = eventually(Duration::from_secs(20), || async {
        app.protected_status(&old.api_key).await == 401
    })
    .await;
    assert!(died, "the old key still works 20 s after a 2 s grace");
    assert_problem(
        app.get_bearer("/protected", &old.api_key).await,
        401,
        "API_KEY_INVALID",
    )
    .await;
    assert_eq!(app.protected_status(&new.api_key).await, 200);

    // An empty body takes the default grace; bad grace is 422.
    let res = app
        .as_owner(
            reqwest::Method::POST,
            &format!("/api-keys/{}/rotate", new.id),
            &owner,
        )
        .json(&json!({"grace_seconds": -1}))
        .send()
        .await
        .expect("sent");
    let body = assert_problem(res, 422, "VALIDATION_FAILED").await;
    assert_eq!(body["errors"][0]["field"], "grace_seconds");
    let res = app
        .as_owner(
            reqwest::Method::POST,
            &format!("/api-keys/{}/rotate", new.id),
            &owner,
        )
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 201);
    let newer = created(res).await;
    assert_eq!(
        app.protected_status(&new.api_key).await,
        200,
        "default grace keeps the predecessor working"
    );
    assert_eq!(app.protected_status(&newer.api_key).await, 200);
}

/// `GET /admin/api-keys` lists every owner's keys to an administrator, filtered by owner,
/// environment and state and paged; nobody else may call it, and an owner cannot widen its own
/// list to another owner with `?owner_id=`.
pub async fn case_admin_lists_every_owner(app: TestApp) {
    let (ann, bob) = (app.owner("list-ann"), app.owner("list-bob"));
    let a = app.create(&ann, json!({"name": "a"})).await;
    let b1 = app.create(&bob, json!({"name": "b1"})).await;
    let b2 = app.create(&bob, json!({"name": "b2"})).await;
    let res = app
        .as_owner(
            reqwest::Method::DELETE,
            &format!("/api-keys/{}", b2.id),
            &bob,
        )
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 204);
    let admin_list = |query: String| {
        let req = app.client.get(app.url(&format!("/admin/api-keys?{query}")));
        async move {
            let res = req
                .header("x-test-admin", "yes")
                .send()
                .await
                .expect("sent");
            assert_eq!(res.status(), 200);
            res.json::<Value>().await.expect("json")
        }
    };
    let ids = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|k| k["id"].as_str().expect("id").to_owned())
            .collect()
    };
    assert_eq!(
        ids(&admin_list(format!("owner_id={bob}")).await),
        [b1.id.as_str(), b2.id.as_str()]
    );
    assert_eq!(
        ids(&admin_list(format!("owner_id={bob}&state=revoked")).await),
        [b2.id.as_str()]
    );
    assert_eq!(
        ids(&admin_list(format!("owner_id={bob}&state=active&env=live")).await),
        [b1.id.as_str()]
    );
    assert!(ids(&admin_list(format!("owner_id={bob}&env=test")).await).is_empty());
    // Every owner, page by page: both owners' keys, in order, among the others'.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    for _ in 0..10_000 {
        let page = admin_list(format!("limit=2&cursor={cursor}")).await;
        seen.extend(ids(&page));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = c.to_owned(),
            None => break,
        }
    }
    let mine: Vec<&String> = seen
        .iter()
        .filter(|id| [&a.id, &b1.id, &b2.id].contains(id))
        .collect();
    assert_eq!(mine, [&a.id, &b1.id, &b2.id]);
    // Only administrators; bad filters are 422.
    let res = app
        .client
        .get(app.url("/admin/api-keys"))
        .send()
        .await
        .expect("sent");
    assert_problem(res, 403, "FORBIDDEN").await;
    let res = app
        .client
        .get(app.url("/admin/api-keys?state=gone"))
        .header("x-test-admin", "yes")
        .send()
        .await
        .expect("sent");
    assert_problem(res, 422, "VALIDATION_FAILED").await;
    let res = app
        .as_owner(
            reqwest::Method::GET,
            &format!("/api-keys?owner_id={bob}"),
            &ann,
        )
        .send()
        .await
        .expect("sent");
    assert_problem(res, 422, "VALIDATION_FAILED").await;
    let own = app
        .as_owner(reqwest::Method::GET, "/api-keys?state=active", &ann)
        .send()
        .await
        .expect("sent")
        .json::<Value>()
        .await
        .expect("json");
    assert_eq!(ids(&own), [a.id.as_str()]);
}
