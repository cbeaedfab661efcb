//! Black-box tests of the actix adapter over real HTTP on 127.0.0.1 (reqwest client), memory
//! store. Covers the rows of DESIGN.md §6 and the hostile inputs of §9.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use keyward_core::Policy;
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};

fn client() -> Client {
    Client::builder().build().unwrap()
}

async fn problem(res: Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(res.status(), status);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status.as_u16());
    assert!(body["type"].is_string() && body["title"].is_string());
    body
}

async fn create(c: &Client, s: &common::TestServer, owner: &str, body: Value) -> (String, String) {
    let res = c
        .post(s.url("/api-keys"))
        .header("x-test-owner", owner)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let v: Value = res.json().await.unwrap();
    (
        v["api_key"].as_str().unwrap().to_owned(),
        v["key"]["id"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn create_shows_the_key_once_and_it_authenticates() {
    let (kw, _) = common::memory_keyward(Policy::default());
    let s = common::spawn(kw);
    let c = client();
    let res = c
        .post(s.url("/api-keys"))
        .header("x-test-owner", "alice")
        .json(&json!({"name": "ci", "scopes": ["reports:read"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let v: Value = res.json().await.unwrap();
    let raw = v["api_key"].as_str().unwrap().to_owned();
    let id = v["key"]["id"].as_str().unwrap().to_owned();
    assert!(raw.starts_with("kw_live_"));
    assert_eq!(v["key"]["owner_id"], "alice");

    let list = c
        .get(s.url("/api-keys"))
        .header("x-test-owner", "alice")
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), StatusCode::OK);
    let text = list.text().await.unwrap();
    let secret_tail = &raw[raw.len() - 20..];
    assert!(
        !text.contains(secret_tail) && !text.contains("digest"),
        "{text}"
    );
    let page: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 1);

    let one = c
        .get(s.url(&format!("/api-keys/{id}")))
        .header("x-test-owner", "alice")
        .send()
        .await
        .unwrap();
    assert_eq!(one.status(), StatusCode::OK);
    let text = one.text().await.unwrap();
    assert!(!text.contains(secret_tail) && !text.contains("digest") && !text.contains("api_key"));

    let ok = c
        .get(s.url("/protected"))
        .bearer_auth(&raw)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let who: Value = ok.json().await.unwrap();
    assert_eq!(who["owner_id"], "alice");
    assert_eq!(who["key_id"], id.as_str());
}

#[tokio::test]
async fn credentials_missing_invalid_scheme_and_precedence() {
    let (kw, _) = common::memory_keyward(Policy::default());
    let s = common::spawn(kw);
    let c = client();
    let (good, _) = create(
        &c,
        &s,
        "bob",
        json!({"name": "k", "scopes": ["reports:read", "b:x"]}),
    )
    .await;

    let res = c.get(s.url("/protected")).send().await.unwrap();
    assert_eq!(res.headers()["www-authenticate"], "Bearer");
    problem(res, StatusCode::UNAUTHORIZED, "API_KEY_MISSING").await;

    // Scheme is case-insensitive; X-API-Key works.
    for scheme in ["bearer", "BEARER", "Bearer", "bEaReR"] {
        let res = c
            .get(s.url("/protected"))
            .header("authorization", format!("{scheme} {good}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{scheme}");
    }
    let res = c
        .get(s.url("/protected"))
        .header("x-api-key", &good)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    // Authorization wins when both carry a key.
    let bad = format!("{}x", &good[..good.len() - 1]);
    let res = c
        .get(s.url("/protected"))
        .bearer_auth(&good)
        .header("x-api-key", "kw_live_junk")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = c
        .get(s.url("/protected"))
        .bearer_auth(&bad)
        .header("x-api-key", &good)
        .send()
        .await
        .unwrap();
    let res_headers = res.headers().clone();
    problem(res, StatusCode::UNAUTHORIZED, "API_KEY_INVALID").await;
    assert_eq!(res_headers["www-authenticate"], "Bearer");

    // A JWT bearer is not keyward's: it falls through (to X-API-Key, or to anonymous).
    let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl";
    let res = c
        .get(s.url("/protected"))
        .bearer_auth(jwt)
        .header("x-api-key", &good)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = c.get(s.url("/open")).bearer_auth(jwt).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap()["authenticated"], false);
    problem(
        c.get(s.url("/protected"))
            .bearer_auth(jwt)
            .send()
            .await
            .unwrap(),
        StatusCode::UNAUTHORIZED,
        "API_KEY_MISSING",
    )
    .await;

    // Open route sees the caller when one is present.
    let res = c
        .get(s.url("/open"))
        .bearer_auth(&good)
        .send()
        .await
        .unwrap();
    assert_eq!(res.json::<Value>().await.unwrap()["authenticated"], true);
}

#[tokio::test]
async fn scopes_all_of_and_any_of() {
    let (kw, _) = common::memory_keyward(Policy::default());
    let s = common::spawn(kw);
    let c = client();
    let (none, _) = create(&c, &s, "carol", json!({"name": "k"})).await;
    let (bx, _) = create(&c, &s, "carol", json!({"name": "k", "scopes": ["b:x"]})).await;
    let (wild, _) = create(
        &c,
        &s,
        "carol",
        json!({"name": "k", "scopes": ["reports:*"]}),
    )
    .await;

    let body = problem(
        c.get(s.url("/protected"))
            .bearer_auth(&none)
            .send()
            .await
            .unwrap(),
        StatusCode::FORBIDDEN,
        "API_KEY_SCOPE_DENIED",
    )
    .await;
    assert_eq!(body["missing_scopes"], json!(["reports:read"]));
    assert_eq!(
        c.get(s.url("/any"))
            .bearer_auth(&bx)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    problem(
        c.get(s.url("/any"))
            .bearer_auth(&none)
            .send()
            .await
            .unwrap(),
        StatusCode::FORBIDDEN,
        "API_KEY_SCOPE_DENIED",
    )
    .await;
    assert_eq!(
        c.get(s.url("/protected"))
            .bearer_auth(&wild)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn foreign_keys_are_not_found_and_revoke_is_immediate() {
    let (kw, _) = common::memory_keyward(Policy::default());
    let s = common::spawn(kw);
    let c = client();
    let (raw, id) = create(
        &c,
        &s,
        "dave",
        json!({"name": "k", "scopes": ["reports:read"]}),
    )
    .await;
    for req in [
        c.get(s.url(&format!("/api-keys/{id}"))),
        c.delete(s.url(&format!("/api-keys/{id}"))),
        c.patch(s.url(&format!("/api-keys/{id}")))
            .json(&json!({"name": "x"})),
        c.post(s.url(&format!("/api-keys/{id}/rotate"))),
        c.get(s.url("/api-keys/not-a-key-id")),
    ] {
        problem(
            req.header("x-test-owner", "eve").send().await.unwrap(),
            StatusCode::NOT_FOUND,
            "API_KEY_NOT_FOUND",
        )
        .await;
    }
    assert_eq!(
        c.get(s.url("/protected"))
            .bearer_auth(&raw)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let res = c
        .delete(s.url(&format!("/api-keys/{id}")))
        .header("x-test-owner", "dave")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    problem(
        c.get(s.url("/protected"))
            .bearer_auth(&raw)
            .send()
            .await
            .unwrap(),
        StatusCode::UNAUTHORIZED,
        "API_KEY_INVALID",
    )
    .await;
    let view: Value = c
        .get(s.url(&format!("/api-keys/{id}")))
        .header("x-test-owner", "dave")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(view["revoked_at"].is_string());
}

#[tokio::test]
async fn patch_updates_and_expired_keys_are_invalid() {
    let (kw, clock) = common::memory_keyward(Policy::default());
    let s = common::spawn(kw);
    let c = client();
    let (raw, id) = create(
        &c,
        &s,
        "fay",
        json!({"name": "k", "ttl_seconds": 60, "scopes": ["reports:read"]}),
    )
    .await;
    let res = c
        .patch(s.url(&format!("/api-keys/{id}")))
        .header("x-test-owner", "fay")
        .json(&json!({"name": "renamed", "description": "d"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["name"], "renamed");
    assert_eq!(
        c.get(s.url("/protected"))
            .bearer_auth(&raw)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    clock.advance(chrono::Duration::seconds(61));
    problem(
        c.get(s.url("/protected"))
            .bearer_auth(&raw)
            .send()
            .await
            .unwrap(),
        StatusCode::UNAUTHORIZED,
        "API_KEY_INVALID",
    )
    .await;
}

#[tokio::test]
async fn rotate_keeps_both_during_grace_then_only_the_new() {
    let (kw, clock) = common::memory_keyward(Policy::default());
    let s = common::spawn(kw);
    let c = client();
    let (old, id) = create(
        &c,
        &s,
        "gus",
        json!({"name": "k", "scopes": ["reports:read"]}),
    )
    .await;
    let res = c
        .post(s.url(&format!("/api-keys/{id}/rotate")))
        .header("x-test-owner", "gus")
        .json(&json!({"grace_seconds": 30}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let v: Value = res.json().await.unwrap();
    let new = v["api_key"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    for k in [&old, &new] {
        assert_eq!(
            c.get(s.url("/protected"))
                .bearer_auth(k)
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::OK
        );
    }
    clock.advance(chrono::Duration::seconds(31));
    problem(
        c.get(s.url("/protected"))
            .bearer_auth(&old)
            .send()
            .await
            .unwrap(),
        StatusCode::UNAUTHORIZED,
        "API_KEY_INVALID",
    )
    .await;
    assert_eq!(
        c.get(s.url("/protected"))
            .bearer_auth(&new)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );

    // Empty body: default grace.
    let new_id = v["key"]["id"].as_str().unwrap();
    let res = c
        .post(s.url(&format!("/api-keys/{new_id}/rotate")))
        .header("x-test-owner", "gus")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = c
        .post(s.url(&format!("/api-keys/{new_id}/rotate")))
        .header("x-test-owner", "gus")
        .json(&json!({"grace_seconds": -1}))
        .send()
        .await
        .unwrap();
    let body = problem(res, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    assert_eq!(body["errors"][0]["field"], "grace_seconds");
}

#[tokio::test]
async fn max_keys_is_atomic_under_concurrent_creates() {
    let policy = Policy {
        max_keys_per_owner: Some(3),
        ..Policy::default()
    };
    let (kw, _) = common::memory_keyward(policy);
    let s = common::spawn(kw);
    let c = client();
    let mut tasks = Vec::new();
    for i in 0..12 {
        let c = c.clone();
        let url = s.url("/api-keys");
        tasks.push(tokio::spawn(async move {
            c.post(url)
                .header("x-test-owner", "hal")
                .json(&json!({"name": format!("k{i}")}))
                .send()
                .await
                .unwrap()
        }));
    }
    let mut created = 0;
    let mut refused = 0;
    for t in tasks {
        let res = t.await.unwrap();
        match res.status() {
            StatusCode::CREATED => created += 1,
            StatusCode::CONFLICT => {
                problem(res, StatusCode::CONFLICT, "API_KEY_LIMIT_REACHED").await;
                refused += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!((created, refused), (3, 9));
}

#[tokio::test]
async fn pagination_walks_every_key_once() {
    let (kw, _) = common::memory_keyward(Policy::default());
    let s = common::spawn(kw);
    let c = client();
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            create(&c, &s, "ivy", json!({"name": format!("k{i}")}))
                .await
                .1,
        );
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = s.url("/api-keys?limit=2");
        if let Some(cur) = &cursor {
            url.push_str(&format!("&cursor={cur}"));
        }
        let page: Value = c
            .get(url)
            .header("x-test-owner", "ivy")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|k| k["id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(n) => cursor = Some(n.to_owned()),
            None => break,
        }
    }
    // Every key exactly once (keys created in the same instant have no defined order).
    seen.sort();
    ids.sort();
    assert_eq!(seen, ids);
    for q in [
        "limit=abc",
        "limit=0",
        "limit=100000",
        "cursor=%%%",
        "cursor=bogus",
    ] {
        let res = c
            .get(s.url(&format!("/api-keys?{q}")))
            .header("x-test-owner", "ivy")
            .send()
            .await
            .unwrap();
        assert!(res.status().is_client_error(), "{q}: {}", res.status());
        assert_eq!(
            res.headers()["content-type"],
            "application/problem+json",
            "{q}"
        );
    }
}

#[tokio::test]
async fn bad_bodies_are_problem_4xx_with_field_detail() {
    let (kw, _) = common::memory_keyward(Policy::default());
    let s = common::spawn(kw);
    let c = client();
    let post = |body: Value| {
        c.post(s.url("/api-keys"))
            .header("x-test-owner", "jo")
            .json(&body)
            .send()
    };

    let b = problem(
        post(json!({"name": "k", "owner_id": "mallory"}))
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "VALIDATION_FAILED",
    )
    .await;
    assert_eq!(b["errors"][0]["field"], "owner_id");
    let b = problem(
        post(json!({"scopes": []})).await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "VALIDATION_FAILED",
    )
    .await;
    assert_eq!(b["errors"][0]["field"], "name");
    let b = problem(
        post(json!({"name": "x".repeat(500)})).await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "VALIDATION_FAILED",
    )
    .await;
    assert_eq!(b["errors"][0]["field"], "name");
    let b = problem(
        post(json!({"name": "   "})).await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "VALIDATION_FAILED",
    )
    .await;
    assert_eq!(b["errors"][0]["field"], "name");
    let b = problem(
        post(json!({"name": "k", "expires_at": "2001-01-01T00:00:00Z"}))
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "VALIDATION_FAILED",
    )
    .await;
    assert_eq!(b["errors"][0]["field"], "expires_at");
    let b = problem(
        post(json!({"name": "k", "scopes": ["Bad Scope!"]}))
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "VALIDATION_FAILED",
    )
    .await;
    assert_eq!(b["errors"][0]["field"], "scopes");
    problem(
        post(json!({"name": 5})).await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "VALIDATION_FAILED",
    )
    .await;

    let raw = |ct: Option<&str>, body: Vec<u8>| {
        let mut r = c
            .post(s.url("/api-keys"))
            .header("x-test-owner", "jo")
            .body(body);
        if let Some(ct) = ct {
            r = r.header("content-type", ct);
        }
        r.send()
    };
    problem(
        raw(Some("application/json"), b"{\"name\": ".to_vec())
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
        "BAD_REQUEST",
    )
    .await;
    problem(
        raw(Some("application/json"), b"\xff\xfe".to_vec())
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
        "BAD_REQUEST",
    )
    .await;
    let res = raw(Some("text/plain"), b"{\"name\":\"k\"}".to_vec())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let res = raw(None, b"{\"name\":\"k\"}".to_vec()).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let mut big = b"{\"name\":\"k\",\"description\":\"".to_vec();
    big.extend(std::iter::repeat_n(b'a', 100 * 1024));
    big.extend(b"\"}");
    problem(
        raw(Some("application/json"), big).await.unwrap(),
        StatusCode::PAYLOAD_TOO_LARGE,
        "PAYLOAD_TOO_LARGE",
    )
    .await;
    // Nothing above created a key.
    let page: Value = c
        .get(s.url("/api-keys"))
        .header("x-test-owner", "jo")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"], json!([]));
    // Unknown methods are problems too.
    let res = c
        .put(s.url("/api-keys"))
        .header("x-test-owner", "jo")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
}

#[tokio::test]
async fn hostile_credentials_get_4xx_and_the_server_survives() {
    let (kw, _) = common::memory_keyward(Policy::default());
    let s = common::spawn(kw);
    let c = client();
    let junk = [
        "kw_live_".to_owned(),
        "kw_live_x_y".to_owned(),
        "kw_live_AAAAAAAAAAAA_".to_owned() + &"A".repeat(40),
        "kw_test_AAAAAAAAAAAA_".to_owned() + &"A".repeat(40),
        "kw_".to_owned() + &"\u{7f}".repeat(3),
        "kw_live_".to_owned() + &"z".repeat(8 * 1024),
        " ".to_owned(),
        "'; DROP TABLE api_keys; --".to_owned(),
    ];
    for j in &junk {
        if let Ok(v) = HeaderValue::from_str(j) {
            let res = c
                .get(s.url("/protected"))
                .header("x-api-key", v.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{j:.40}");
            let mut h = HeaderMap::new();
            h.insert(
                "authorization",
                HeaderValue::from_str(&format!("Bearer {j}")).unwrap(),
            );
            let res = c.get(s.url("/protected")).headers(h).send().await.unwrap();
            assert!(res.status() == StatusCode::UNAUTHORIZED, "{j:.40}");
        }
    }
    for bytes in [&b"kw_live_\xff\xfe"[..], b"\x80\x81", b"Bearer \xc3\x28"] {
        let v = HeaderValue::from_bytes(bytes).unwrap();
        let res = c
            .get(s.url("/protected"))
            .header("x-api-key", v.clone())
            .send()
            .await
            .unwrap();
        problem(res, StatusCode::UNAUTHORIZED, "API_KEY_INVALID").await;
        let res = c
            .get(s.url("/protected"))
            .header("authorization", v)
            .send()
            .await
            .unwrap();
        problem(res, StatusCode::UNAUTHORIZED, "API_KEY_INVALID").await;
    }
    // A huge header set: actix refuses it (4xx or closed connection), never a 5xx.
    let res = c
        .get(s.url("/protected"))
        .header("x-api-key", "a".repeat(128 * 1024))
        .send()
        .await;
    if let Ok(res) = res {
        assert!(res.status().is_client_error(), "{}", res.status());
    }
    // A signed request while signing is not enabled: no key can have signed it.
    let res = c
        .get(s.url("/protected"))
        .header("authorization", "AWS4-HMAC-SHA256 Credential=x/20260101/us-east-1/keyward/aws4_request, SignedHeaders=host, Signature=00")
        .send()
        .await
        .unwrap();
    problem(res, StatusCode::UNAUTHORIZED, "SIGNATURE_INVALID").await;
    // Still serving.
    assert_eq!(
        c.get(s.url("/open")).send().await.unwrap().status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn api_keys_cannot_manage_keys_and_admin_routes_need_admin() {
    let (kw, _) = common::memory_keyward(Policy::default());
    let s = common::spawn(kw);
    let c = client();
    let (raw, id) = create(&c, &s, "kim", json!({"name": "k", "scopes": ["*"]})).await;
    let res = c
        .get(s.url("/api-keys"))
        .header("x-test-owner", "kim")
        .bearer_auth(&raw)
        .send()
        .await
        .unwrap();
    problem(res, StatusCode::FORBIDDEN, "FORBIDDEN").await;
    let res = c
        .post(s.url("/api-keys"))
        .header("x-test-owner", "kim")
        .header("x-api-key", &raw)
        .json(&json!({"name": "n"}))
        .send()
        .await
        .unwrap();
    problem(res, StatusCode::FORBIDDEN, "FORBIDDEN").await;
    // No owner: 401, naming the missing session rather than a key.
    let res = c.get(s.url("/api-keys")).send().await.unwrap();
    problem(res, StatusCode::UNAUTHORIZED, "OWNER_UNAUTHENTICATED").await;

    let admin = s.url("/admin/owners/kim/api-keys");
    problem(
        c.get(&admin).send().await.unwrap(),
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    )
    .await;
    problem(
        c.get(&admin)
            .header("x-test-admin", "no")
            .send()
            .await
            .unwrap(),
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    )
    .await;
    let page: Value = c
        .get(&admin)
        .header("x-test-admin", "yes")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"][0]["id"], id.as_str());
    let res = c
        .post(&admin)
        .header("x-test-admin", "yes")
        .json(&json!({"name": "by-admin", "scopes": ["reports:read"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["key"]["owner_id"], "kim");
    let admin_raw = v["api_key"].as_str().unwrap().to_owned();
    let res = c
        .delete(s.url(&format!("/admin/owners/someone-else/api-keys/{id}")))
        .header("x-test-admin", "yes")
        .send()
        .await
        .unwrap();
    problem(res, StatusCode::NOT_FOUND, "API_KEY_NOT_FOUND").await;
    let res = c
        .delete(format!("{admin}/{id}"))
        .header("x-test-admin", "yes")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    problem(
        c.get(s.url("/protected"))
            .bearer_auth(&raw)
            .send()
            .await
            .unwrap(),
        StatusCode::UNAUTHORIZED,
        "API_KEY_INVALID",
    )
    .await;
    assert_eq!(
        c.get(s.url("/protected"))
            .bearer_auth(&admin_raw)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn openapi_document_is_served() {
    let (kw, _) = common::memory_keyward(Policy::default());
    let s = common::spawn(kw);
    let res = client().get(s.url("/openapi.json")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "application/json");
    let doc: Value = res.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert!(doc["paths"]["/api-keys"]["post"].is_object());
    assert!(doc["paths"]["/api-keys/{key_id}/rotate"]["post"].is_object());
    assert!(doc["paths"]["/admin/owners/{owner_id}/api-keys"]["get"].is_object());
    assert!(doc["components"]["securitySchemes"]["apiKeyAuth"].is_object());
}
