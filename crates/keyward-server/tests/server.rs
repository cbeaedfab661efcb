//! End-to-end tests of `keyward serve`: the real binary on a free port, against a temporary
//! SQLite database (and a fresh PostgreSQL database when PostgreSQL answers; required under
//! `CI=true`), driven over HTTP with reqwest and through the CLI.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::{Db, Env, Server, rt};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn create(
    s: &Server,
    admin: &str,
    owner: &str,
    name: &str,
    scopes: &[&str],
) -> (String, Value) {
    let r = s
        .http
        .post(s.url(&format!("/admin/owners/{owner}/api-keys")))
        .bearer_auth(admin)
        .json(&json!({"name": name, "scopes": scopes}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let v: Value = r.json().await.unwrap();
    (v["api_key"].as_str().unwrap().to_owned(), v["key"].clone())
}

/// Creates a key for owner `kim` that may be used from `nets` only: its raw key.
async fn allowlisted_key(s: &Server, admin: &str, nets: &[&str]) -> String {
    let r = s
        .http
        .post(s.url("/admin/owners/kim/api-keys"))
        .bearer_auth(admin)
        .json(&json!({"name": "office", "ip_allowlist": nets}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    r.json::<Value>().await.unwrap()["api_key"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn status_of(r: reqwest::RequestBuilder) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let r = r.send().await.unwrap();
    let status = r.status();
    let headers = r.headers().clone();
    let body = r.bytes().await.unwrap();
    let v = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body).unwrap_or(Value::Null)
    };
    (status, headers, v)
}

/// Every route, first-start bootstrap, restart keeping keys: the whole life of a deployment.
fn full_flow(env: &Env) {
    let s = env.serve(&[], &[]);
    let admin = s
        .bootstrap_key()
        .expect("first start writes the admin key to its file");
    let (alice_key, alice_view, verifier) = rt().block_on(async {
        // Operations.
        let (st, _, v) = status_of(s.http.get(s.url("/healthz"))).await;
        assert_eq!((st, v["status"].as_str()), (StatusCode::OK, Some("ok")));
        let (st, _, v) = status_of(s.http.get(s.url("/readyz"))).await;
        assert_eq!((st, v["status"].as_str()), (StatusCode::OK, Some("ready")));
        let (st, _, doc) = status_of(s.http.get(s.url("/openapi.json"))).await;
        assert_eq!(st, StatusCode::OK);
        for p in [
            "/admin/owners/{owner_id}/api-keys",
            "/v1/whoami",
            "/v1/verify",
            "/v1/authz",
            "/readyz",
        ] {
            assert!(doc["paths"].get(p).is_some(), "openapi lacks {p}");
        }
        assert!(
            doc["paths"].get("/api-keys").is_none(),
            "self-service is off by default"
        );
        let admin_key = &doc["paths"]["/admin/owners/{owner_id}/api-keys/{key_id}"];
        for m in ["get", "patch", "delete"] {
            assert!(admin_key[m].is_object(), "openapi lacks admin {m}");
        }
        assert!(
            doc["paths"]["/admin/owners/{owner_id}/api-keys/{key_id}/rotate"]["post"].is_object()
        );
        let text = doc.to_string();
        for part in text.split("#/components/schemas/").skip(1) {
            let name: String = part
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            assert!(
                doc["components"]["schemas"].get(&name).is_some(),
                "dangling $ref {name}"
            );
        }

        // Admin routes need the admin credential.
        let url = s.url("/admin/owners/alice/api-keys");
        let (st, h, v) = status_of(s.http.post(&url).json(&json!({"name": "x"}))).await;
        assert_eq!(
            (st, v["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("API_KEY_MISSING"))
        );
        assert_eq!(h["www-authenticate"], "Bearer");
        assert_eq!(h["content-type"], "application/problem+json");
        let (st, _, v) = status_of(s.http.get(&url).bearer_auth("kw_live_junk")).await;
        assert_eq!(
            (st, v["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("API_KEY_INVALID"))
        );

        let (alice_key, alice_view) =
            create(&s, &admin, "alice", "reports", &["reports:read"]).await;
        assert_eq!(alice_view["owner_id"], "alice");
        // A valid key without `keyward:admin` is refused as a failed admin check.
        let (st, _, v) = status_of(s.http.get(&url).bearer_auth(&alice_key)).await;
        assert_eq!(
            (st, v["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("FORBIDDEN"))
        );

        // Bad bodies are 4xx problems, never 500.
        let (st, _, v) = status_of(
            s.http
                .post(&url)
                .bearer_auth(&admin)
                .json(&json!({"name": "x", "bogus": 1})),
        )
        .await;
        assert_eq!(
            (st, v["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("VALIDATION_FAILED"))
        );
        let (st, _, _) = status_of(
            s.http
                .post(&url)
                .bearer_auth(&admin)
                .header("content-type", "application/json")
                .body("{"),
        )
        .await;
        assert_eq!(st, StatusCode::BAD_REQUEST);
        let (st, _, v) = status_of(
            s.http
                .post(&url)
                .bearer_auth(&admin)
                .json(&json!({"name": "x", "expires_at": "2001-01-01T00:00:00Z"})),
        )
        .await;
        assert_eq!(
            (st, v["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("VALIDATION_FAILED"))
        );

        // List, get, patch; a foreign owner's path is 404.
        let (st, _, v) = status_of(s.http.get(&url).bearer_auth(&admin)).await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(v["items"].as_array().unwrap().len(), 1);
        let id = alice_view["id"].as_str().unwrap().to_owned();
        let (st, _, v) = status_of(s.http.get(format!("{url}/{id}")).bearer_auth(&admin)).await;
        assert_eq!((st, v["name"].as_str()), (StatusCode::OK, Some("reports")));
        assert!(v.get("digest").is_none() && !v.to_string().contains(&alice_key));
        let (st, _, v) = status_of(
            s.http
                .get(s.url(&format!("/admin/owners/bob/api-keys/{id}")))
                .bearer_auth(&admin),
        )
        .await;
        assert_eq!(
            (st, v["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("API_KEY_NOT_FOUND"))
        );
        let (st, _, v) =
            status_of(s.http.get(format!("{url}/not-an-id")).bearer_auth(&admin)).await;
        assert_eq!(
            (st, v["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("API_KEY_NOT_FOUND"))
        );
        let (st, _, v) = status_of(
            s.http
                .patch(format!("{url}/{id}"))
                .bearer_auth(&admin)
                .json(&json!({"description": "daily"})),
        )
        .await;
        assert_eq!(
            (st, v["description"].as_str()),
            (StatusCode::OK, Some("daily"))
        );

        // whoami with both credential headers.
        for req in [
            s.http.get(s.url("/v1/whoami")).bearer_auth(&alice_key),
            s.http
                .get(s.url("/v1/whoami"))
                .header("X-API-Key", &alice_key),
        ] {
            let (st, _, v) = status_of(req).await;
            assert_eq!(st, StatusCode::OK);
            assert_eq!(v["owner_id"], "alice");
            assert_eq!(v["key_id"], id.as_str());
            assert_eq!(v["scopes"], json!(["reports:read"]));
        }
        let (st, _, v) = status_of(s.http.get(s.url("/v1/whoami"))).await;
        assert_eq!(
            (st, v["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("API_KEY_MISSING"))
        );
        let (st, _, v) =
            status_of(s.http.get(s.url("/v1/whoami")).header("X-API-Key", "   ")).await;
        assert_eq!(
            (st, v["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("API_KEY_INVALID"))
        );

        // authz for reverse proxies.
        let (st, h, _) = status_of(
            s.http
                .get(s.url("/v1/authz?scope=reports:read"))
                .bearer_auth(&alice_key),
        )
        .await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        assert_eq!(h["x-keyward-owner"], "alice");
        assert_eq!(h["x-keyward-key-id"], id.as_str());
        assert_eq!(h["x-keyward-scopes"], "reports:read");
        let (st, _, v) = status_of(
            s.http
                .get(s.url("/v1/authz?scope=billing:write"))
                .header("X-API-Key", &alice_key),
        )
        .await;
        assert_eq!(
            (st, v["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("API_KEY_SCOPE_DENIED"))
        );
        assert_eq!(v["missing_scopes"], json!(["billing:write"]));
        let (st, _, _) = status_of(
            s.http
                .get(s.url("/v1/authz?scope=billing:write,reports:read&mode=any_of"))
                .bearer_auth(&alice_key),
        )
        .await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        let (st, _, _) = status_of(s.http.get(s.url("/v1/authz?scope=reports:read"))).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED);
        let (st, _, _) = status_of(
            s.http
                .get(s.url("/v1/authz?scope=NOT%20A%20SCOPE"))
                .bearer_auth(&alice_key),
        )
        .await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);

        // verify for sidecars: admin credential or keyward:verify.
        let verify = s.url("/v1/verify");
        let body = json!({"key": alice_key, "scopes": ["reports:read"]});
        let (st, _, v) = status_of(s.http.post(&verify).bearer_auth(&admin).json(&body)).await;
        assert_eq!((st, &v["valid"]), (StatusCode::OK, &json!(true)));
        assert_eq!(v["key"]["owner_id"], "alice");
        let (st, _, v) = status_of(
            s.http
                .post(&verify)
                .bearer_auth(&admin)
                .json(&json!({"key": alice_key, "scopes": ["x:y"], "mode": "any_of"})),
        )
        .await;
        assert_eq!(
            (st, &v["valid"], v["code"].as_str()),
            (StatusCode::OK, &json!(false), Some("API_KEY_SCOPE_DENIED"))
        );
        let (st, _, v) = status_of(
            s.http
                .post(&verify)
                .bearer_auth(&admin)
                .json(&json!({"key": "kw_live_nope"})),
        )
        .await;
        assert_eq!(
            (st, &v["valid"], v["code"].as_str()),
            (StatusCode::OK, &json!(false), Some("API_KEY_INVALID"))
        );
        assert!(v.get("key").is_none());
        let (st, _, _) = status_of(s.http.post(&verify).bearer_auth(&alice_key).json(&body)).await;
        assert_eq!(st, StatusCode::FORBIDDEN);
        let (verifier, _) = create(&s, &admin, "gateway", "sidecar", &["keyward:verify"]).await;
        let (st, _, v) = status_of(
            s.http
                .post(&verify)
                .header("X-API-Key", &verifier)
                .json(&body),
        )
        .await;
        assert_eq!((st, &v["valid"]), (StatusCode::OK, &json!(true)));
        let (st, _, _) = status_of(
            s.http
                .post(&verify)
                .bearer_auth(&verifier)
                .json(&json!({"key": 5})),
        )
        .await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);

        // Metrics.
        let text = metrics(&s).await;
        assert_ne!(verified(&text, "ok", None), 0);
        for name in [
            "keyward_verify_duration_seconds_bucket",
            "keyward_cache_hits_total",
            "keyward_verify_total{outcome=\"missing\",cache=\"miss\"}",
        ] {
            assert!(text.contains(name), "metrics lack {name}");
        }

        // Oversize bodies: 413, seen by a client that is still sending.
        let big = json!({"name": "x".repeat(200 * 1024)});
        let (st, _, v) = status_of(s.http.post(&url).bearer_auth(&admin).json(&big)).await;
        assert_eq!(
            (st, v["code"].as_str()),
            (StatusCode::PAYLOAD_TOO_LARGE, Some("PAYLOAD_TOO_LARGE"))
        );
        // Wrong methods and unknown routes are problem documents too.
        let (st, h, v) = status_of(s.http.put(s.url("/v1/whoami"))).await;
        assert_eq!(
            (st, v["code"].as_str()),
            (StatusCode::METHOD_NOT_ALLOWED, Some("METHOD_NOT_ALLOWED"))
        );
        assert_eq!(h["content-type"], "application/problem+json");
        let (st, h, _) = status_of(s.http.get(s.url("/nope"))).await;
        assert_eq!(
            (st, h["content-type"].to_str().unwrap()),
            (StatusCode::NOT_FOUND, "application/problem+json")
        );
        (alice_key, alice_view, verifier)
    });
    let log = s.terminate();
    assert!(!log.contains(&alice_key), "a raw key leaked into the log");

    // Restart: no new admin key, every key still works.
    let s = env.serve(&[], &[]);
    assert_eq!(
        s.bootstrap_key(),
        None,
        "the admin key is created only on the first start"
    );
    rt().block_on(async {
        let (st, _, _) = status_of(s.http.get(s.url("/v1/whoami")).bearer_auth(&alice_key)).await;
        assert_eq!(st, StatusCode::OK);
        let (st, _, _) = status_of(
            s.http
                .get(s.url("/admin/owners/alice/api-keys"))
                .bearer_auth(&admin),
        )
        .await;
        assert_eq!(st, StatusCode::OK);

        // Rotate: the successor works, the old key still works during the grace period.
        let id = alice_view["id"].as_str().unwrap();
        let base = s.url("/admin/owners/alice/api-keys");
        let (st, _, v) = status_of(
            s.http
                .post(format!("{base}/{id}/rotate"))
                .bearer_auth(&admin)
                .json(&json!({"grace_seconds": 3600})),
        )
        .await;
        assert_eq!(st, StatusCode::CREATED);
        let successor = v["api_key"].as_str().unwrap().to_owned();
        assert_eq!(v["key"]["rotated_from"], id);
        for k in [&successor, &alice_key] {
            let (st, _, _) = status_of(s.http.get(s.url("/v1/whoami")).bearer_auth(k)).await;
            assert_eq!(st, StatusCode::OK);
        }

        // Revoke: 204, then 401 at once.
        let (st, _, _) = status_of(s.http.delete(format!("{base}/{id}")).bearer_auth(&admin)).await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        let (st, _, v) = status_of(s.http.get(s.url("/v1/whoami")).bearer_auth(&alice_key)).await;
        assert_eq!(
            (st, v["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("API_KEY_INVALID"))
        );
        let (st, _, v) = status_of(
            s.http
                .post(s.url("/v1/verify"))
                .bearer_auth(&verifier)
                .json(&json!({"key": alice_key})),
        )
        .await;
        assert_eq!((st, &v["valid"]), (StatusCode::OK, &json!(false)));
    });
    s.terminate();
    let s = env.serve(&[], &[]);
    assert_eq!(s.bootstrap_key(), None);
    s.terminate();
}

#[test]
fn sqlite_full_flow() {
    let env = Env::sqlite();
    full_flow(&env);
    let pepper = env.path().join("keyward.pepper");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&pepper).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "the generated pepper file is private");
}

#[test]
fn postgres_full_flow() {
    let Some(db) = common::Db::postgres("full") else {
        return;
    };
    full_flow(&Env::with(db));
}

#[test]
fn mysql_full_flow() {
    let Some(db) = common::Db::mysql("full") else {
        return;
    };
    full_flow(&Env::with(db));
}

/// The database goes away: readiness and verification fail closed with 503, never 200 or 500.
#[test]
fn store_outage_fails_closed() {
    let Some(db) = common::Db::postgres("outage") else {
        return;
    };
    let env = Env::with(db.clone());
    let s = env.serve(&["--cache-size", "0", "--log-format", "json"], &[]);
    // JSON logs: every log line is an object.
    let log = s.stderr();
    let json_line = log.lines().find(|l| l.contains("listening on")).unwrap();
    let v: Value = serde_json::from_str(json_line).unwrap();
    assert_eq!(v["level"], "INFO");
    let admin = s.bootstrap_key().unwrap();
    rt().block_on(async {
        let (key, _) = create(&s, &admin, "jack", "k", &[]).await;
        let (st, _, _) = status_of(s.http.get(s.url("/v1/whoami")).bearer_auth(&key)).await;
        assert_eq!(st, StatusCode::OK);
        db.drop_postgres();
        let (st, _, v) = status_of(s.http.get(s.url("/readyz"))).await;
        assert_eq!(
            (st, v["code"].as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, Some("AUTH_UNAVAILABLE"))
        );
        let (st, _, v) = status_of(s.http.get(s.url("/v1/whoami")).bearer_auth(&key)).await;
        assert_eq!(
            (st, v["code"].as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, Some("AUTH_UNAVAILABLE"))
        );
        let (st, _, _) = status_of(s.http.get(s.url("/v1/authz")).header("X-API-Key", &key)).await;
        assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE);
        let (st, _, _) = status_of(
            s.http
                .post(s.url("/v1/verify"))
                .bearer_auth(&admin)
                .json(&json!({"key": key})),
        )
        .await;
        assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE);
        let (st, _, _) = status_of(s.http.get(s.url("/healthz"))).await;
        assert_eq!(st, StatusCode::OK, "the process itself is alive");
    });
    s.terminate();
}

#[test]
fn admin_token_replaces_the_bootstrap_key() {
    let env = Env::sqlite();
    let token = "a-long-static-admin-token-0123456789";
    let s = env.serve(&[], &[("KEYWARD_ADMIN_TOKEN", token)]);
    assert_eq!(s.bootstrap_key(), None);
    rt().block_on(async {
        let url = s.url("/admin/owners/carol/api-keys");
        let (st, _, _) = status_of(
            s.http
                .post(&url)
                .bearer_auth(token)
                .json(&json!({"name": "k"})),
        )
        .await;
        assert_eq!(st, StatusCode::CREATED);
        let (st, _, _) = status_of(s.http.get(&url).header("X-API-Key", token)).await;
        assert_eq!(st, StatusCode::OK);
        let (st, _, _) = status_of(
            s.http
                .get(&url)
                .bearer_auth("a-long-static-admin-token-012345678"),
        )
        .await;
        assert_eq!(st, StatusCode::UNAUTHORIZED);
        let (st, _, v) = status_of(
            s.http
                .post(s.url("/v1/verify"))
                .bearer_auth(token)
                .json(&json!({"key": "kw_live_x"})),
        )
        .await;
        assert_eq!((st, &v["valid"]), (StatusCode::OK, &json!(false)));
    });
    s.terminate();
}

#[test]
fn self_service_routes_trust_the_owner_header() {
    let env = Env::sqlite();
    let s = env.serve(&["--owner-header", "X-Owner-Id"], &[]);
    let admin = s.bootstrap_key().unwrap();
    rt().block_on(async {
        let url = s.url("/api-keys");
        let (st, _, v) = status_of(
            s.http
                .post(&url)
                .header("X-Owner-Id", "dave")
                .json(&json!({"name": "mine", "scopes": ["a:b"]})),
        )
        .await;
        assert_eq!(st, StatusCode::CREATED);
        let key = v["api_key"].as_str().unwrap().to_owned();
        let id = v["key"]["id"].as_str().unwrap().to_owned();
        let (st, _, v) = status_of(s.http.get(&url).header("X-Owner-Id", "dave")).await;
        assert_eq!(
            (st, v["items"].as_array().map(Vec::len)),
            (StatusCode::OK, Some(1))
        );
        let (st, _, _) = status_of(
            s.http
                .get(format!("{url}/{id}"))
                .header("X-Owner-Id", "erin"),
        )
        .await;
        assert_eq!(
            st,
            StatusCode::NOT_FOUND,
            "another owner's key is not found"
        );
        let (st, _, v) = status_of(s.http.get(&url)).await;
        assert_eq!(
            (st, v["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("OWNER_UNAUTHENTICATED"))
        );
        let (st, _, _) = status_of(
            s.http
                .get(&url)
                .header("X-Owner-Id", "dave")
                .bearer_auth(&key),
        )
        .await;
        assert_eq!(st, StatusCode::FORBIDDEN, "API keys cannot manage keys");
        let (st, _, v) = status_of(
            s.http
                .post(format!("{url}/{id}/rotate"))
                .header("X-Owner-Id", "dave"),
        )
        .await;
        assert_eq!(st, StatusCode::CREATED);
        let successor = v["api_key"].as_str().unwrap().to_owned();
        let (st, _, _) = status_of(
            s.http
                .delete(format!("{url}/{id}"))
                .header("X-Owner-Id", "dave"),
        )
        .await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        let (st, _, _) = status_of(s.http.get(s.url("/v1/whoami")).bearer_auth(&key)).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED);
        let (st, _, v) = status_of(s.http.get(s.url("/v1/whoami")).bearer_auth(&successor)).await;
        assert_eq!((st, v["owner_id"].as_str()), (StatusCode::OK, Some("dave")));
        let (st, _, doc) = status_of(s.http.get(s.url("/openapi.json"))).await;
        assert_eq!(st, StatusCode::OK);
        assert!(doc["paths"].get("/api-keys").is_some());
        // The admin routes are still there.
        let (st, _, _) = status_of(
            s.http
                .get(s.url("/admin/owners/dave/api-keys"))
                .bearer_auth(&admin),
        )
        .await;
        assert_eq!(st, StatusCode::OK);
    });
    s.terminate();
}

/// The server's `/metrics` text.
async fn metrics(s: &Server) -> String {
    let res = s.http.get(s.url("/metrics")).send().await.unwrap();
    res.text().await.unwrap()
}

/// `keyward_verify_total{outcome, cache}` from a metrics text: one series, or with `cache`
/// `None` the sum over both.
fn verified(text: &str, outcome: &str, cache: Option<&str>) -> u64 {
    text.lines()
        .filter_map(|l| l.strip_prefix("keyward_verify_total{"))
        .filter(|l| l.contains(&format!("outcome=\"{outcome}\"")))
        .filter(|l| cache.is_none_or(|c| l.contains(&format!("cache=\"{c}\""))))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// `/metrics` counts every check: cache hits, misses, junk, wrong secrets and missing keys, each
/// as many times as it was sent, with hits told from misses.
#[test]
fn metrics_count_every_check() {
    const N: u64 = 25;
    let env = Env::sqlite();
    let created = env.cli_json(&[
        "keys", "create", "--owner", "metered", "--name", "m", "--json",
    ]);
    let key = created["api_key"].as_str().unwrap().to_owned();
    let s = env.serve(&[], &[]);
    rt().block_on(async {
        let whoami = s.url("/v1/whoami");
        let send = |bearer: Option<String>| {
            let mut req = s.http.get(&whoami);
            if let Some(b) = bearer {
                req = req.bearer_auth(b);
            }
            async move { req.send().await.unwrap().status() }
        };
        let secret_wrong = {
            // The key with one secret character changed (its checksum no longer holds).
            let mut k: Vec<char> = key.chars().collect();
            let at = k.len() - 10;
            k[at] = if k[at] == 'x' { 'y' } else { 'x' };
            k.into_iter().collect::<String>()
        };
        for _ in 0..N {
            assert_eq!(send(Some(key.clone())).await, StatusCode::OK);
            assert_eq!(
                send(Some("kw_live_junk".into())).await,
                StatusCode::UNAUTHORIZED
            );
            assert_eq!(
                send(Some(secret_wrong.clone())).await,
                StatusCode::UNAUTHORIZED
            );
            assert_eq!(send(None).await, StatusCode::UNAUTHORIZED);
        }
        let text = metrics(&s).await;
        assert_eq!(verified(&text, "ok", None), N, "{text}");
        assert_eq!(
            verified(&text, "ok", Some("miss")),
            1,
            "the first check reads the store"
        );
        assert_eq!(verified(&text, "ok", Some("hit")), N - 1, "{text}");
        assert_eq!(verified(&text, "invalid", None), 2 * N, "{text}");
        assert_eq!(verified(&text, "missing", None), N, "{text}");
        assert_eq!(
            verified(&text, "missing", Some("hit")),
            N,
            "no key is refused without a read: {text}"
        );
        let histogram = text
            .lines()
            .find_map(|l| l.strip_prefix("keyward_verify_duration_seconds_count "))
            .and_then(|n| n.parse::<u64>().ok());
        assert_eq!(histogram, Some(4 * N), "{text}");
    });
    s.terminate();
}

/// SIGTERM flushes batched last-used times and counters: nothing acknowledged is lost.
#[test]
fn sigterm_flushes_usage() {
    let env = Env::sqlite();
    let created = env.cli_json(&[
        "keys", "create", "--owner", "frank", "--name", "batch", "--json",
    ]);
    let key = created["api_key"].as_str().unwrap().to_owned();
    let id = created["key"]["id"].as_str().unwrap().to_owned();
    // A flush interval far beyond the test: only the shutdown flush can write.
    let s = env.serve(
        &["--last-used", "throttled:300s", "--flush-interval", "1h"],
        &[],
    );
    rt().block_on(async {
        for _ in 0..3 {
            let (st, _, _) = status_of(s.http.get(s.url("/v1/whoami")).bearer_auth(&key)).await;
            assert_eq!(st, StatusCode::OK);
        }
    });
    let before = env.cli_json(&["keys", "show", &id, "--json"]);
    assert_eq!(
        before["last_used_at"],
        Value::Null,
        "nothing written before shutdown"
    );
    s.terminate();
    let after = env.cli_json(&["keys", "show", &id, "--json"]);
    assert!(
        after["last_used_at"].is_string(),
        "last_used_at flushed on SIGTERM: {after}"
    );
    assert_eq!(after["usage"]["request_count"], 3);
}

/// SIGTERM in the middle of a load: every key that was answered `200` has its last-used time
/// written and at least as many requests counted as were answered (a request verified while
/// the connection closed may count without an answer). Nothing acknowledged is lost.
#[test]
fn sigterm_under_load_loses_no_usage() {
    const KEYS: usize = 12;
    let env = Env::sqlite();
    let keys: Vec<(String, String)> = (0..KEYS)
        .map(|i| {
            let c = env.cli_json(&[
                "keys",
                "create",
                "--owner",
                "load",
                "--name",
                &format!("k{i}"),
                "--json",
            ]);
            let raw = c["api_key"].as_str().unwrap().to_owned();
            (raw, c["key"]["id"].as_str().unwrap().to_owned())
        })
        .collect();
    let s = env.serve(
        &["--last-used", "throttled:300s", "--flush-interval", "1h"],
        &[],
    );
    let url = s.url("/v1/whoami");
    let acked: Arc<Vec<AtomicU64>> = Arc::new((0..KEYS).map(|_| AtomicU64::new(0)).collect());
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (acked, stop, keys) = (Arc::clone(&acked), Arc::clone(&stop), keys.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let http = reqwest::Client::new();
                let mut tasks = Vec::new();
                for worker in 0..8 {
                    let (http, url, keys) = (http.clone(), url.clone(), keys.clone());
                    let (acked, stop) = (Arc::clone(&acked), Arc::clone(&stop));
                    tasks.push(tokio::spawn(async move {
                        let mut i = worker;
                        // Until the server is gone (refused) or the test says stop.
                        while !stop.load(Ordering::Relaxed) {
                            let k = i % KEYS;
                            i += 1;
                            match http.get(&url).bearer_auth(&keys[k].0).send().await {
                                Ok(r) if r.status() == StatusCode::OK => {
                                    acked[k].fetch_add(1, Ordering::SeqCst);
                                }
                                Ok(_) => {}
                                Err(_) => break,
                            }
                        }
                    }));
                }
                for t in tasks {
                    let _ = t.await;
                }
            });
        })
    };
    // Every key answered at least once, then SIGTERM while the load goes on.
    for _ in 0..500 {
        if acked.iter().all(|a| a.load(Ordering::SeqCst) > 0) {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        acked.iter().all(|a| a.load(Ordering::SeqCst) > 0),
        "load never got going"
    );
    s.terminate();
    stop.store(true, Ordering::Relaxed);
    load.join().unwrap();
    for (k, (_, id)) in keys.iter().enumerate() {
        let shown = env.cli_json(&["keys", "show", id, "--json"]);
        let answered = acked[k].load(Ordering::SeqCst);
        assert!(shown["last_used_at"].is_string(), "{id}: {shown}");
        let counted = shown["usage"]["request_count"].as_u64().unwrap();
        assert!(
            counted >= answered,
            "{id}: {counted} counted, {answered} answered"
        );
    }
}

#[test]
fn immediate_last_used_is_written_at_once() {
    let env = Env::sqlite();
    let created = env.cli_json(&[
        "keys", "create", "--owner", "gina", "--name", "now", "--json",
    ]);
    let key = created["api_key"].as_str().unwrap().to_owned();
    let id = created["key"]["id"].as_str().unwrap().to_owned();
    let s = env.serve(&["--last-used", "immediate"], &[]);
    rt().block_on(async {
        let (st, _, _) = status_of(s.http.get(s.url("/v1/whoami")).header("X-API-Key", &key)).await;
        assert_eq!(st, StatusCode::OK);
    });
    let shown = env.cli_json(&["keys", "show", &id, "--json"]);
    assert!(shown["last_used_at"].is_string(), "{shown}");
    s.terminate();
}

/// Two instances on one database with `--redis-url`: a revocation on one (or from the CLI)
/// evicts the key from the other's cache at once, although its cache TTL is an hour.
#[test]
fn redis_invalidation_across_instances() {
    let Some(redis) = rt().block_on(keyward_test::services::redis_url()) else {
        return;
    };
    let env = Env::sqlite();
    let args = ["--redis-url", redis.as_str(), "--cache-ttl", "1h"];
    let a = env.serve(&args, &[]);
    let admin = a.bootstrap_key().unwrap();
    let b = env.serve(&args, &[]);
    assert_eq!(b.bootstrap_key(), None);
    rt().block_on(async {
        let (st, _, v) = status_of(b.http.get(b.url("/readyz"))).await;
        assert_eq!((st, v["status"].as_str()), (StatusCode::OK, Some("ready")));
        let (key, view) = create(&a, &admin, "henry", "shared", &["x:y"]).await;
        let id = view["id"].as_str().unwrap().to_owned();
        // Warm b's cache.
        let (st, _, _) = status_of(b.http.get(b.url("/v1/whoami")).bearer_auth(&key)).await;
        assert_eq!(st, StatusCode::OK);
        let (st, _, _) = status_of(
            a.http
                .delete(a.url(&format!("/admin/owners/henry/api-keys/{id}")))
                .bearer_auth(&admin),
        )
        .await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        // The invalidation travels through Redis pub/sub: poll briefly (a delivery guard, not a
        // timing assertion; without the bus the key would stay cached for an hour).
        let mut revoked = false;
        for _ in 0..100 {
            let (st, _, _) = status_of(b.http.get(b.url("/v1/whoami")).bearer_auth(&key)).await;
            if st == StatusCode::UNAUTHORIZED {
                revoked = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(
            revoked,
            "instance b still accepts a key revoked on instance a"
        );

        // The CLI with --redis-url evicts too.
        let (key2, view2) = create(&a, &admin, "henry", "second", &["x:y"]).await;
        let (st, _, _) = status_of(b.http.get(b.url("/v1/whoami")).bearer_auth(&key2)).await;
        assert_eq!(st, StatusCode::OK);
        let out = env.cli(&[
            "keys",
            "revoke",
            view2["id"].as_str().unwrap(),
            "--redis-url",
            redis.as_str(),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut revoked = false;
        for _ in 0..100 {
            let (st, _, _) = status_of(b.http.get(b.url("/v1/whoami")).bearer_auth(&key2)).await;
            if st == StatusCode::UNAUTHORIZED {
                revoked = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(revoked, "a CLI revocation did not reach instance b");
    });
    b.terminate();
    a.terminate();
}

/// Per-key rate limits answer 429 with `Retry-After`, on authz as on every route.
#[test]
fn rate_limited_keys_get_429() {
    let env = Env::sqlite();
    let s = env.serve(&[], &[]);
    let admin = s.bootstrap_key().unwrap();
    rt().block_on(async {
        let r = s
            .http
            .post(s.url("/admin/owners/ivy/api-keys"))
            .bearer_auth(&admin)
            .json(
                &json!({"name": "limited", "rate_limit": {"requests": 1, "window_seconds": 3600}}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let key = r.json::<Value>().await.unwrap()["api_key"]
            .as_str()
            .unwrap()
            .to_owned();
        let (st, _, _) = status_of(s.http.get(s.url("/v1/authz")).bearer_auth(&key)).await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        let (st, h, v) = status_of(s.http.get(s.url("/v1/authz")).bearer_auth(&key)).await;
        assert_eq!(
            (st, v["code"].as_str()),
            (StatusCode::TOO_MANY_REQUESTS, Some("RATE_LIMITED"))
        );
        assert!(h["retry-after"].to_str().unwrap().parse::<u64>().unwrap() > 0);
        let text = metrics(&s).await;
        assert_eq!(verified(&text, "rate_limited", None), 1, "{text}");
    });
    s.terminate();
}

/// IP allowlists: the peer address by default; `--client-ip-header` trusts a proxy's header.
#[test]
fn ip_allowlists_and_the_client_ip_header() {
    let env = Env::sqlite();
    let office = ["10.1.2.0/24"];
    let s = env.serve(&[], &[]);
    let admin = s.bootstrap_key().unwrap();
    rt().block_on(async {
        let key = allowlisted_key(&s, &admin, &office).await;
        // Without the flag the header is ignored: the peer is 127.0.0.1.
        let (st, _, v) = status_of(
            s.http
                .get(s.url("/v1/authz"))
                .bearer_auth(&key)
                .header("X-Real-IP", "10.1.2.3"),
        )
        .await;
        assert_eq!(
            (st, v["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("API_KEY_IP_DENIED"))
        );
    });
    s.terminate();
    let s = env.serve(&["--client-ip-header", "X-Forwarded-For"], &[]);
    rt().block_on(async {
        let key = allowlisted_key(&s, &admin, &office).await;
        let (st, _, _) = status_of(
            s.http
                .get(s.url("/v1/authz"))
                .bearer_auth(&key)
                .header("X-Forwarded-For", "192.0.2.1, 10.1.2.3"),
        )
        .await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        let (st, _, _) = status_of(
            s.http
                .get(s.url("/v1/authz"))
                .bearer_auth(&key)
                .header("X-Forwarded-For", "10.1.2.3, 192.0.2.1"),
        )
        .await;
        assert_eq!(
            st,
            StatusCode::FORBIDDEN,
            "only the entry the nearest proxy added counts"
        );
        let (st, _, _) = status_of(s.http.get(s.url("/v1/authz")).bearer_auth(&key)).await;
        assert_eq!(st, StatusCode::FORBIDDEN);
        // /v1/verify takes the holder's address in the body.
        let (st, _, v) = status_of(
            s.http
                .post(s.url("/v1/verify"))
                .bearer_auth(&admin)
                .json(&json!({"key": key, "client_ip": "10.1.2.200"})),
        )
        .await;
        assert_eq!((st, &v["valid"]), (StatusCode::OK, &json!(true)));
        let (st, _, v) = status_of(
            s.http
                .post(s.url("/v1/verify"))
                .bearer_auth(&admin)
                .json(&json!({"key": key})),
        )
        .await;
        assert_eq!(
            (st, v["code"].as_str()),
            (StatusCode::OK, Some("API_KEY_IP_DENIED"))
        );
    });
    s.terminate();
}

/// Review finding 6: with `--client-ip-header`, a missing or malformed header is no client
/// address, never the proxy's own; `ip:port` and `[v6]:port` are read; and the header counts
/// only from `--trusted-proxy` peers.
#[test]
fn a_client_ip_header_never_falls_back_to_the_proxy() {
    let env = Env::sqlite();
    let s = env.serve(&["--client-ip-header", "X-Forwarded-For"], &[]);
    let admin = s.bootstrap_key().unwrap();
    let authz = |key: &str, xff: Option<&str>| {
        let mut req = s.http.get(s.url("/v1/authz")).bearer_auth(key);
        if let Some(v) = xff {
            req = req.header("X-Forwarded-For", v);
        }
        async move { status_of(req).await.0 }
    };
    rt().block_on(async {
        // Allowlisted to the proxy's own network (the test client is the proxy, 127.0.0.1).
        let proxy_net = allowlisted_key(&s, &admin, &["127.0.0.0/8", "::/0"]).await;
        for junk in [
            None,
            Some("unknown"),
            Some(""),
            Some("_hidden"),
            Some("127.0.0.1:x"),
        ] {
            assert_eq!(
                authz(&proxy_net, junk).await,
                StatusCode::FORBIDDEN,
                "{junk:?} passed as the proxy's address"
            );
        }
        let office = allowlisted_key(&s, &admin, &["10.1.2.0/24", "2001:db8::/32"]).await;
        for form in [
            "10.1.2.3",
            "10.1.2.3:4711",
            "[2001:db8::7]",
            "[2001:db8::7]:443",
        ] {
            assert_eq!(
                authz(&office, Some(form)).await,
                StatusCode::NO_CONTENT,
                "{form}"
            );
        }
    });
    s.terminate();
    // A peer outside --trusted-proxy is the client itself: its header is not believed.
    let s = env.serve(
        &[
            "--client-ip-header",
            "X-Forwarded-For",
            "--trusted-proxy",
            "192.0.2.0/24",
        ],
        &[],
    );
    rt().block_on(async {
        let key = allowlisted_key(&s, &admin, &["10.1.2.0/24"]).await;
        let (st, _, _) = status_of(
            s.http
                .get(s.url("/v1/authz"))
                .bearer_auth(&key)
                .header("X-Forwarded-For", "10.1.2.3"),
        )
        .await;
        assert_eq!(
            st,
            StatusCode::FORBIDDEN,
            "an untrusted peer chose its address"
        );
    });
    s.terminate();
}

/// The owner header is a proxy's word: from a peer outside `--trusted-proxy` it names no one,
/// or anyone who reaches the port could act as any owner.
#[test]
fn the_owner_header_counts_only_from_a_trusted_proxy() {
    let env = Env::sqlite();
    for (trusted, status) in [
        ("127.0.0.1", StatusCode::OK),
        ("192.0.2.1/32", StatusCode::UNAUTHORIZED),
    ] {
        let s = env.serve(
            &["--owner-header", "x-user", "--trusted-proxy", trusted],
            &[],
        );
        let (st, _, v) = rt().block_on(status_of(
            s.http.get(s.url("/api-keys")).header("x-user", "alice"),
        ));
        assert_eq!(st, status, "trusted {trusted}: {v}");
        s.terminate();
    }
}

/// Review: during a Redis outage every failed verification logged a WARN line, so any client
/// with made-up keys wrote the log as fast as it liked. The line comes once a second, with the
/// number of times it stands for.
#[test]
fn a_redis_outage_is_logged_once_a_second_not_once_a_request() {
    let env = Env::sqlite();
    // Nothing listens on the discard port: every Redis call fails at once.
    let s = env.serve(&["--redis-url", "redis://127.0.0.1:9/0"], &[]);
    let started = std::time::Instant::now();
    rt().block_on(async {
        for _ in 0..60 {
            let made_up = keyward_core::KeyFormat::default().generate().unwrap();
            let _ = s
                .http
                .get(s.url("/v1/whoami"))
                .bearer_auth(made_up.api_key.expose_secret())
                .send()
                .await
                .unwrap();
        }
    });
    let seconds = started.elapsed().as_secs();
    let log = s.terminate();
    let lines = log
        .lines()
        .filter(|l| l.contains("shared failure count unavailable"))
        .count();
    assert!(lines >= 1, "the outage was not logged at all:\n{log}");
    assert!(
        u64::try_from(lines).unwrap() <= seconds + 2,
        "{lines} lines in {seconds}s:\n{log}"
    );
    assert!(log.contains("times="), "no count on the line:\n{log}");
}

/// The periodic flush writes batched usage while the server runs.
#[test]
fn periodic_flush_writes_usage() {
    let env = Env::sqlite();
    let created = env.cli_json(&[
        "keys", "create", "--owner", "lena", "--name", "tick", "--json",
    ]);
    let key = created["api_key"].as_str().unwrap().to_owned();
    let id = created["key"]["id"].as_str().unwrap().to_owned();
    let s = env.serve(&["--flush-interval", "1s"], &[]);
    rt().block_on(async {
        let (st, _, _) = status_of(s.http.get(s.url("/v1/whoami")).bearer_auth(&key)).await;
        assert_eq!(st, StatusCode::OK);
    });
    // Poll the database through the CLI (a delivery guard of 30 s, not a timing assertion).
    let mut flushed = false;
    for _ in 0..300 {
        let shown = env.cli_json(&["keys", "show", &id, "--json"]);
        if shown["last_used_at"].is_string() && shown["usage"]["request_count"] == 1 {
            flushed = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(flushed, "usage not flushed while the server runs");
    s.terminate();
}

/// Instances starting together on one database create one admin key between them, and none of
/// them writes it into its log stream, whatever the log format.
fn one_bootstrap_among(env: &Env) {
    let servers: Vec<Server> = std::thread::scope(|scope| {
        let starts: Vec<_> = (0..4)
            .map(|i| {
                scope.spawn(move || {
                    let format = if i % 2 == 0 { "json" } else { "human" };
                    env.serve(&["--log-format", format], &[])
                })
            })
            .collect();
        starts.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let keys: Vec<String> = servers.iter().filter_map(Server::bootstrap_key).collect();
    assert_eq!(keys.len(), 1, "one instance bootstraps");
    rt().block_on(async {
        let s = &servers[0];
        let (st, _, v) = status_of(
            s.http
                .get(s.url("/admin/owners/keyward-admin/api-keys"))
                .bearer_auth(&keys[0]),
        )
        .await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(v["items"].as_array().map(Vec::len), Some(1), "{v}");
    });
    for s in servers {
        s.terminate();
    }
}

#[test]
fn instances_starting_together_bootstrap_once_sqlite() {
    one_bootstrap_among(&Env::sqlite());
}

#[test]
fn instances_starting_together_bootstrap_once_postgres() {
    let Some(db) = Db::postgres("boot") else {
        return;
    };
    let env = Env::with(db);
    one_bootstrap_among(&env);
    env.db.drop_postgres();
}

#[test]
fn admin_key_file_flag_puts_it_elsewhere() {
    let env = Env::sqlite();
    let elsewhere = env.path().join("secrets");
    std::fs::create_dir(&elsewhere).unwrap();
    let file = elsewhere.join("admin.key");
    let s = env.serve(&["--admin-key-file", file.to_str().unwrap()], &[]);
    assert!(s.stderr().contains("created the admin key"));
    let key = std::fs::read_to_string(&file).unwrap();
    assert!(key.starts_with("kw_live_"));
    assert!(!env.path().join("keyward.admin-key").exists());
    s.terminate();
}

/// Uploads that never finish hold a request slot until `--request-timeout` answers them `408`;
/// beyond `--max-concurrent-requests` in flight, requests get `503` at once instead of queueing.
#[test]
fn slow_uploads_time_out_and_excess_is_refused() {
    let env = Env::sqlite();
    let s = env.serve(
        &[
            "--request-timeout",
            "3s",
            "--max-concurrent-requests",
            "2",
            "--owner-header",
            "x-owner",
        ],
        &[],
    );
    let addr: std::net::SocketAddr = s.base.trim_start_matches("http://").parse().unwrap();
    rt().block_on(async {
        let drip = || {
            let head = format!(
                "POST /api-keys HTTP/1.1\r\nHost: {addr}\r\nX-Owner: dave\r\n\
                 Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"name\":"
            );
            tokio::spawn(keyward_test::http_suite::raw_status(
                addr,
                head.into_bytes(),
            ))
        };
        let drips = [drip(), drip()];
        let shed =
            keyward_test::http_suite::eventually(std::time::Duration::from_secs(2), || async {
                s.http.get(s.url("/healthz")).send().await.is_ok_and(|r| {
                    r.status() == StatusCode::SERVICE_UNAVAILABLE
                        && r.headers().get("retry-after").is_some_and(|v| v == "1")
                })
            })
            .await;
        assert!(
            shed,
            "a third request while two hang is refused, with Retry-After: 1"
        );
        for d in drips {
            assert_eq!(d.await.unwrap(), Some(408), "the hanging upload times out");
        }
        let (st, _, _) = status_of(s.http.get(s.url("/healthz"))).await;
        assert_eq!(st, StatusCode::OK);
    });
    s.terminate();
}
