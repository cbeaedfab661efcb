//! Cases about requests and routes: pagination, validation, bodies, hostile input, rate limits, the admin routes, signed bodies refused before reading, the OpenAPI document, a store that is down.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use keyward_core::{KeyFormat, Keyward};
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::*;

/// Pagination: pages of `limit`, a cursor to the next, `null` at the end; bad parameters `422`.
pub async fn case_pagination(app: TestApp) {
    let owner = app.owner("pages");
    let mut ids = Vec::new();
    for i in 0..MAX_KEYS {
        ids.push(
            app.create(&owner, json!({"name": format!("k{i}")}))
                .await
                .id,
        );
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut path = "/api-keys?limit=2".to_owned();
        if let Some(c) = &cursor {
            path.push_str("&cursor=");
            path.push_str(c);
        }
        let res = app
            .as_owner(reqwest::Method::GET, &path, &owner)
            .send()
            .await
            .expect("sent");
        assert_eq!(res.status(), 200);
        let page: Value = res.json().await.expect("json");
        let items = page["items"].as_array().cloned().unwrap_or_default();
        assert!(items.len() <= 2);
        seen.extend(
            items
                .iter()
                .map(|i| i["id"].as_str().unwrap_or("").to_owned()),
        );
        pages += 1;
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
        assert!(pages < 10, "pagination does not end");
    }
    assert_eq!(seen, ids, "every key once, oldest first");
    // Another owner's list is empty.
    let other: Value = app.list(&app.owner("nobody")).await;
    assert_eq!(other["items"], json!([]));
    assert!(other["next_cursor"].is_null());
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=abc", "limit"),
        ("cursor=junk!", "cursor"),
    ] {
        let res = app
            .as_owner(reqwest::Method::GET, &format!("/api-keys?{query}"), &owner)
            .send()
            .await
            .expect("sent");
        let body = assert_problem(res, 422, "VALIDATION_FAILED").await;
        assert_eq!(body["errors"][0]["field"], field, "{query}");
    }
}

/// Bad bodies: `422` with field errors.
pub async fn case_validation(app: TestApp) {
    let owner = app.owner("val");
    let long = "n".repeat(129);
    for (body, field, code) in [
        (
            json!({"name": "x", "owner_id": "mallory"}),
            "owner_id",
            "unknown_field",
        ),
        (
            json!({"name": "x", "expires_at": "2001-01-01T00:00:00Z"}),
            "expires_at",
            "in_past",
        ),
        (json!({"name": long}), "name", "too_long"),
        (json!({"name": "   "}), "name", "required"),
        (
            json!({"name": "x", "scopes": ["billing:write"]}),
            "scopes",
            "not_in_catalog",
        ),
        (
            json!({"name": "x", "scopes": ["BAD SCOPE"]}),
            "scopes",
            "invalid",
        ),
        (
            json!({"name": "x", "ttl_seconds": 0}),
            "ttl_seconds",
            "invalid",
        ),
        (
            json!({"name": "x", "ttl_seconds": 60, "expires_at": "2099-01-01T00:00:00Z"}),
            "ttl_seconds",
            "conflict",
        ),
        (
            json!({"name": "x", "ip_allowlist": ["300.1.1.1"]}),
            "ip_allowlist",
            "invalid",
        ),
        (
            json!({"name": "x", "rate_limit": {"requests": 0, "window_seconds": 1}}),
            "rate_limit",
            "invalid",
        ),
        (json!({}), "name", "required"),
    ] {
        // Allowlists and limits are the administrator's to set (DESIGN.md §11): validated there.
        let res = if body.get("ip_allowlist").is_some() || body.get("rate_limit").is_some() {
            app.admin_create_raw(&owner, &body).await
        } else {
            app.create_raw(&owner, &body).await
        };
        let p = assert_problem(res, 422, "VALIDATION_FAILED").await;
        let errors = p["errors"].as_array().cloned().unwrap_or_default();
        assert!(
            errors
                .iter()
                .any(|e| e["field"] == field && e["code"] == code),
            "{body} → {p} (wanted {field}/{code})"
        );
    }
    let res = app.create_raw(&owner, &json!({"name": 5})).await;
    assert_problem(res, 422, "VALIDATION_FAILED").await;
    // Nothing was created.
    let list: Value = app.list(&owner).await;
    assert_eq!(list["items"], json!([]));
    // PATCH validates the same way.
    let c = app.create(&owner, json!({"name": "ok"})).await;
    let path = format!("/api-keys/{}", c.id);
    for (body, field) in [
        (json!({"scopes": ["billing:write"]}), "scopes"),
        (json!({"expires_at": "2001-01-01T00:00:00Z"}), "expires_at"),
        (json!({"name": "n".repeat(129)}), "name"),
        (json!({"owner_id": "mallory"}), "owner_id"),
    ] {
        let res = app
            .as_owner(reqwest::Method::PATCH, &path, &owner)
            .json(&body)
            .send()
            .await
            .expect("sent");
        let p = assert_problem(res, 422, "VALIDATION_FAILED").await;
        assert_eq!(p["errors"][0]["field"], field, "{body} → {p}");
    }
}

/// Wrong content type `415`, malformed JSON `400`, oversize body `413`: problem documents all.
pub async fn case_body_transport_errors(app: TestApp) {
    let owner = app.owner("body");
    let post = || app.as_owner(reqwest::Method::POST, "/api-keys", &owner);
    let res = post()
        .header("content-type", "text/plain")
        .body(r#"{"name":"x"}"#)
        .send()
        .await
        .expect("sent");
    assert_problem(res, 415, "UNSUPPORTED_MEDIA_TYPE").await;
    let res = post().body(r#"{"name":"x"}"#).send().await.expect("sent");
    assert_problem(res, 415, "UNSUPPORTED_MEDIA_TYPE").await;
    for bad in [
        &b"{"[..],
        b"{\"name\":",
        b"not json",
        b"",
        b"{\"name\":\"\xff\"}",
        b"\xff\xfe",
    ] {
        let res = post()
            .header("content-type", "application/json")
            .body(bad.to_vec())
            .send()
            .await
            .expect("sent");
        assert_problem(res, 400, "BAD_REQUEST").await;
    }
    let big = json!({"name": "x", "description": "d".repeat(200 * 1024)});
    let res = post().json(&big).send().await.expect("sent");
    assert_problem(res, 413, "PAYLOAD_TOO_LARGE").await;
    // Chunked, without a Content-Length.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        std::iter::once(Ok(b"{\"name\":\"x\",\"description\":\"".to_vec()))
            .chain((0..100).map(|_| Ok(vec![b'd'; 2048])))
            .chain(std::iter::once(Ok(b"\"}".to_vec())))
            .collect();
    let res = post()
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .expect("sent");
    assert_problem(res, 413, "PAYLOAD_TOO_LARGE").await;
    // A method the route does not have.
    let res = app
        .as_owner(reqwest::Method::PUT, "/api-keys", &owner)
        .json(&json!({"name": "x"}))
        .send()
        .await
        .expect("sent");
    assert_problem(res, 405, "METHOD_NOT_ALLOWED").await;
    // None of the refused bodies made a key.
    let list: Value = app.list(&owner).await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(0), "{list}");
    // The app still works.
    assert_eq!(
        app.create_raw(&owner, &json!({"name": "after"}))
            .await
            .status(),
        201
    );
}

/// Junk keys, huge and non-UTF-8 headers: a clear 4xx, never a 5xx.
pub async fn case_hostile_input(app: TestApp) {
    let owner = app.owner("hostile");
    let c = app
        .create(&owner, json!({"name": "h", "scopes": ["reports:read"]}))
        .await;
    let mut typo = c.api_key.clone();
    let last = typo.pop().unwrap_or('0');
    typo.push(if last == 'A' { 'B' } else { 'A' });
    let other_env = c.api_key.replacen("kw_live_", "kw_test_", 1);
    let junk = [
        "kw_live_x".to_owned(),
        "kw_".to_owned(),
        format!("kw_live_{}", "A".repeat(5000)),
        typo,
        other_env,
        "' OR 1=1 --".to_owned(),
        "kw_live_AAAAAAAAAAAA_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_owned(),
        "   ".to_owned(),
        "kw_live_\u{e9}\u{e9}".to_owned(),
    ];
    for k in &junk {
        let res = app
            .client
            .get(app.url("/protected"))
            .header("x-api-key", k.as_bytes())
            .send()
            .await
            .expect("sent");
        assert_problem(res, 401, "API_KEY_INVALID").await;
        if k.starts_with("kw_") && k.is_ascii() {
            assert_problem(
                app.get_bearer("/protected", k).await,
                401,
                "API_KEY_INVALID",
            )
            .await;
        }
    }
    assert_problem(
        app.client
            .get(app.url("/protected"))
            .header("authorization", "Bearer")
            .send()
            .await
            .expect("sent"),
        401,
        "API_KEY_INVALID",
    )
    .await;
    // An 8 KiB header.
    let big = format!("kw_live_{}", "x".repeat(8 * 1024));
    assert_problem(
        app.get_header("/protected", &big).await,
        401,
        "API_KEY_INVALID",
    )
    .await;
    assert_problem(
        app.get_bearer("/protected", &big).await,
        401,
        "API_KEY_INVALID",
    )
    .await;
    // Non-UTF-8 bytes in either header: the whole problem, never a 5xx.
    for bytes in [&b"\x80\x81"[..], b"Bearer \xc3\x28", b"kw_live_\xff\xfe"] {
        for name in ["x-api-key", "authorization"] {
            let Ok(value) = reqwest::header::HeaderValue::from_bytes(bytes) else {
                continue;
            };
            let res = app
                .client
                .get(app.url("/protected"))
                .header(name, value)
                .send()
                .await
                .expect("sent");
            assert_problem(res, 401, "API_KEY_INVALID").await;
        }
    }
    // The same, over a raw socket.
    for header in [
        &b"X-API-Key: kw_live_\xff\xfe"[..],
        b"Authorization: Bearer kw_live_\xc3\x28",
        b"X-API-Key: \x80",
    ] {
        let mut req =
            b"GET /protected HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n".to_vec();
        req.extend_from_slice(header);
        req.extend_from_slice(b"\r\n\r\n");
        let status = raw_status(app.addr, req).await;
        assert_eq!(status, Some(401), "{}", String::from_utf8_lossy(header));
    }
    // A header far beyond any sane size: refused (4xx) or the connection closed, never 5xx.
    let mut req =
        b"GET /protected HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nX-API-Key: ".to_vec();
    req.extend(std::iter::repeat_n(b'a', 1 << 20));
    req.extend_from_slice(b"\r\n\r\n");
    if let Some(s) = raw_status(app.addr, req).await {
        assert!((400..500).contains(&s), "a 1 MiB header got {s}");
    }
    // Malformed management paths and queries.
    for path in [
        "/api-keys/%00",
        "/api-keys/%",
        "/api-keys?limit=%zz",
        "/api-keys?cursor=%ff%fe",
        "/api-keys?cursor=%%%",
    ] {
        let res = app
            .as_owner(reqwest::Method::GET, path, &owner)
            .send()
            .await
            .expect("sent");
        let s = res.status().as_u16();
        assert!((400..500).contains(&s), "{path} got {s}");
        if path.contains('?') {
            let ct = res.headers().get("content-type").cloned();
            assert_eq!(
                ct.as_ref().and_then(|v| v.to_str().ok()),
                Some("application/problem+json"),
                "{path}"
            );
        }
    }
    // The good key still works.
    assert_eq!(app.protected_status(&c.api_key).await, 200);
}

/// A key with a rate limit of 2 per minute: the third request is `429` with `Retry-After`.
pub async fn case_rate_limited(app: TestApp) {
    let owner = app.owner("rl");
    let c = app
        .admin_create(&owner, json!({"name": "rl", "scopes": ["reports:read"], "rate_limit": {"requests": 2, "window_seconds": 60}}))
        .await;
    assert_eq!(app.protected_status(&c.api_key).await, 200);
    assert_eq!(app.protected_status(&c.api_key).await, 200);
    let body = assert_problem(
        app.get_bearer("/protected", &c.api_key).await,
        429,
        "RATE_LIMITED",
    )
    .await;
    assert!(
        body["retry_after"].as_u64().is_some_and(|s| s >= 1),
        "{body}"
    );
}

/// Admin routes: refused without the admin check; the owner comes from the path.
pub async fn case_admin_routes(app: TestApp) {
    let carol = app.owner("carol");
    let dave = app.owner("dave");
    let base = format!("/admin/owners/{carol}/api-keys");
    let res = app
        .client
        .post(app.url(&base))
        .json(&json!({"name": "x"}))
        .send()
        .await
        .expect("sent");
    assert_problem(res, 403, "FORBIDDEN").await;
    for check in [None, Some("no")] {
        let mut req = app.client.get(app.url(&base));
        if let Some(v) = check {
            req = req.header("x-test-admin", v);
        }
        assert_problem(req.send().await.expect("sent"), 403, "FORBIDDEN").await;
    }
    let admin = |m: reqwest::Method, p: &str| {
        app.client
            .request(m, app.url(p))
            .header("x-test-admin", "yes")
    };
    let res = admin(reqwest::Method::POST, &base)
        .json(&json!({"name": "by-admin", "scopes": ["reports:read"]}))
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 201);
    let c = created(res).await;
    assert_eq!(c.body["key"]["owner_id"], carol.as_str());
    let list: Value = admin(reqwest::Method::GET, &base)
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(list["items"][0]["id"], c.id.as_str());
    // Carol sees it as her own.
    let res = app
        .as_owner(reqwest::Method::GET, &format!("/api-keys/{}", c.id), &carol)
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 200);
    // The key must belong to the owner in the path.
    let res = admin(
        reqwest::Method::DELETE,
        &format!("/admin/owners/{dave}/api-keys/{}", c.id),
    )
    .send()
    .await
    .expect("sent");
    assert_problem(res, 404, "API_KEY_NOT_FOUND").await;
    let res = admin(reqwest::Method::POST, &base)
        .json(&json!({"name": "x", "owner_id": dave}))
        .send()
        .await
        .expect("sent");
    assert_problem(res, 422, "VALIDATION_FAILED").await;
    assert_eq!(app.protected_status(&c.api_key).await, 200);
    let other = app
        .create(&carol, json!({"name": "hers", "scopes": ["reports:read"]}))
        .await;
    let res = admin(reqwest::Method::DELETE, &format!("{base}/{}", c.id))
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
    // Only that key: the owner's other key still works.
    assert_eq!(app.protected_status(&other.api_key).await, 200);
}

/// Starts a signed upload that declares a body within the limit and sends only its first bytes,
/// then waits (at most 10 s) for the answer: `Some(status)` when the app answered without the
/// rest of the body.
pub(crate) async fn drip(addr: SocketAddr, authorization: String) -> Option<u16> {
    let head = format!(
        "POST /echo HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {authorization}\r\n\
         X-Amz-Date: 20260101T000000Z\r\nContent-Length: {}\r\n\r\nfirst-bytes",
        SIGNED_BODY_LIMIT - 1
    );
    raw_status(addr, head.into_bytes()).await
}

/// Signed uploads with junk or with unknown credentials are refused from their headers alone,
/// before the body arrives, so slow-drip uploads pin no buffers; other requests are served
/// meanwhile.
pub async fn case_signed_refused_before_body(app: TestApp) {
    let owner = app.owner("drip");
    let valid = app
        .create(&owner, json!({"name": "v", "scopes": ["reports:read"]}))
        .await;
    let unknown = KeyFormat::default().generate().expect("os random").key_id;
    let bearer_only = app
        .create(&owner, json!({"name": "b", "scopes": ["reports:read"]}))
        .await;
    let forms = [
        "AWS4-HMAC-SHA256 junk".to_owned(),
        format!(
            "AWS4-HMAC-SHA256 Credential={unknown}/20260101/us-east-1/keyward/aws4_request, \
             SignedHeaders=host;x-amz-date, Signature={}",
            "0".repeat(64)
        ),
        format!(
            "AWS4-HMAC-SHA256 Credential={}/20260101/us-east-1/keyward/aws4_request, \
             SignedHeaders=host;x-amz-date, Signature={}",
            bearer_only.id,
            "0".repeat(64)
        ),
    ];
    let drips: Vec<_> = (0..30)
        .map(|i| tokio::spawn(drip(app.addr, forms[i % forms.len()].clone())))
        .collect();
    assert_eq!(
        app.protected_status(&valid.api_key).await,
        200,
        "served while the uploads hang"
    );
    for d in drips {
        assert_eq!(
            d.await.expect("task"),
            Some(401),
            "refused before its body was sent"
        );
    }
    // A real signer's upload that stops half-way: buffered, but only for SIGNED_BODY_TIME.
    let signer = app.create_signing(&owner, &["reports:read"]).await;
    let body = vec![b'a'; 1000];
    let req = ToSign {
        body: &body,
        ..ToSign::new("POST", "/echo")
    };
    let mut head = format!(
        "POST /echo HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n",
        app.addr,
        body.len()
    );
    for (n, v) in app.sign(&req, &signer, OffsetDateTime::now_utc()) {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(&body[..100]);
    assert_eq!(
        raw_status(app.addr, bytes).await,
        Some(408),
        "a body slower than the bound is cut off"
    );
}

/// `GET /openapi.json`: the management routes, their schemas and the bearer scheme.
pub async fn case_openapi(app: TestApp) {
    let res = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"))
    );
    let doc: Value = res.json().await.expect("json");
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    for path in [
        "/api-keys",
        "/api-keys/{key_id}",
        "/api-keys/{key_id}/rotate",
        "/admin/owners/{owner_id}/api-keys",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} missing");
    }
    for (path, method) in [
        ("/api-keys", "post"),
        ("/api-keys", "get"),
        ("/api-keys/{key_id}", "patch"),
        ("/api-keys/{key_id}/rotate", "post"),
        ("/admin/owners/{owner_id}/api-keys", "get"),
    ] {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} missing"
        );
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["apiKeyAuth"]["scheme"],
        "bearer"
    );
    // The suite's engine has signing enabled: the SigV4 scheme is described.
    assert!(app.keyward.signing_enabled());
    assert!(
        doc["components"]["securitySchemes"]["apiKeyHmacAuth"].is_object(),
        "no apiKeyHmacAuth: {}",
        doc["components"]["securitySchemes"]
    );
    assert!(doc["components"]["schemas"]["Problem"].is_object());
}

/// A store that does not answer: `503 AUTH_UNAVAILABLE`, on verification and management.
pub async fn case_store_down<A, AFut>(spawn: A)
where
    A: FnOnce(Keyward) -> AFut,
    AFut: Future<Output = SocketAddr>,
{
    let app = TestApp::start(Arc::new(FailingStore), spawn).await;
    let key = KeyFormat::default().generate().expect("os random");
    let raw = key.api_key.expose_secret().to_owned();
    assert_problem(
        app.get_bearer("/protected", &raw).await,
        503,
        "AUTH_UNAVAILABLE",
    )
    .await;
    assert_problem(app.get_header("/any", &raw).await, 503, "AUTH_UNAVAILABLE").await;
    let owner = app.owner("down");
    assert_problem(
        app.create_raw(&owner, &json!({"name": "x"})).await,
        503,
        "AUTH_UNAVAILABLE",
    )
    .await;
    let res = app
        .as_owner(reqwest::Method::GET, "/api-keys", &owner)
        .send()
        .await
        .expect("sent");
    assert_problem(res, 503, "AUTH_UNAVAILABLE").await;
    let res = app
        .as_owner(
            reqwest::Method::DELETE,
            &format!("/api-keys/{}", key.key_id),
            &owner,
        )
        .send()
        .await
        .expect("sent");
    assert_problem(res, 503, "AUTH_UNAVAILABLE").await;
    // Junk is still rejected without the store.
    assert_problem(
        app.get_bearer("/protected", "kw_live_junk").await,
        401,
        "API_KEY_INVALID",
    )
    .await;
    assert_eq!(
        app.client
            .get(app.url("/open"))
            .send()
            .await
            .expect("sent")
            .status(),
        200
    );
}
