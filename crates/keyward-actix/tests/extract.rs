//! In-process tests (`actix_web::test`) of credential extraction edge cases, the extractor,
//! the scope wrapper and the client address handed to verification.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::net::SocketAddr;

use actix_web::http::StatusCode;
use actix_web::http::header::HeaderValue;
use actix_web::{App, HttpResponse, test, web};
use keyward_actix::{Authenticated, CredentialHeaders, Gate, Head, KeywardAuth, RequireScopes};
use keyward_core::management::CreateKeyRequest;
use keyward_core::{Keyward, Policy, ScopeRequirement};
use keyward_http::credentials::Credential;
use serde_json::Value;

async fn key(kw: &Keyward, scopes: &[&str], ips: &[&str]) -> String {
    let req = CreateKeyRequest {
        name: "t".into(),
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        ip_allowlist: ips.iter().map(|s| (*s).to_owned()).collect(),
        ..CreateKeyRequest::default()
    };
    kw.create_key("owner", req)
        .await
        .unwrap()
        .api_key
        .expose_secret()
        .to_owned()
}

async fn hello(caller: Authenticated) -> HttpResponse {
    HttpResponse::Ok().body(caller.owner_id().to_owned())
}

/// What `h` finds in a request with these headers, read through the adapter's [`Head`].
fn extract(kw: &Keyward, h: &CredentialHeaders, pairs: &[(&str, &[u8])]) -> String {
    let mut req = test::TestRequest::get();
    for (k, v) in pairs {
        req = req.append_header((*k, HeaderValue::from_bytes(v).unwrap()));
    }
    let req = req.to_http_request();
    match h.extract(&kw.policy().format, &Head::new(&req, None)) {
        Credential::Key(k) => format!("Key({k})"),
        Credential::Signed(_) => "Signed".to_owned(),
        other => format!("{other:?}"),
    }
}

#[test]
async fn credential_finding_rules() {
    let (kw, _) = common::memory_keyward(Policy::default());
    let h = CredentialHeaders::default();
    let find = |pairs: &[(&str, &[u8])]| extract(&kw, &h, pairs);
    assert_eq!(find(&[]), "None");
    assert_eq!(
        find(&[("authorization", b"Bearer kw_live_a")]),
        "Key(kw_live_a)"
    );
    assert_eq!(
        find(&[("authorization", b"bearer   kw_live_a  ")]),
        "Key(kw_live_a)"
    );
    assert_eq!(
        find(&[("authorization", b"BEARER\tkw_live_a")]),
        "Key(kw_live_a)"
    );
    // Foreign bearer, Basic: not ours, fall through.
    assert_eq!(
        find(&[("authorization", b"Bearer eyJhbGciOi.x.y")]),
        "NotOurs"
    );
    assert_eq!(find(&[("authorization", b"Basic dXNlcjpwYXNz")]), "NotOurs");
    assert_eq!(find(&[("authorization", b"Bearer kwx_live_a")]), "NotOurs");
    assert_eq!(
        find(&[
            ("authorization", b"Bearer eyJ"),
            ("x-api-key", b"kw_live_b")
        ]),
        "Key(kw_live_b)"
    );
    // Bare "Bearer" and blank API-key headers are invalid.
    assert_eq!(find(&[("authorization", b"Bearer")]), "Invalid(blank)");
    assert_eq!(find(&[("x-api-key", b"  ")]), "Invalid(blank)");
    // Authorization wins.
    assert_eq!(
        find(&[
            ("authorization", b"Bearer kw_live_a"),
            ("x-api-key", b"kw_live_b")
        ]),
        "Key(kw_live_a)"
    );
    // Non-UTF-8: invalid, whichever header.
    assert_eq!(
        find(&[("authorization", b"Bearer kw_\xff")]),
        "Invalid(not_utf8)"
    );
    assert_eq!(find(&[("x-api-key", b"kw_\xff")]), "Invalid(not_utf8)");
    // SigV4 seam.
    assert_eq!(
        find(&[("authorization", b"aws4-hmac-sha256 Credential=x")]),
        "Signed"
    );
    // Custom header names, in any case.
    let custom = CredentialHeaders::new("X-Auth", "x-token");
    assert_eq!(
        extract(&kw, &custom, &[("x-api-key", b"kw_live_b")]),
        "None"
    );
    assert_eq!(
        extract(&kw, &custom, &[("x-token", b"kw_live_b")]),
        "Key(kw_live_b)"
    );
}

#[test]
async fn credential_headers_are_marked_sensitive() {
    let (kw, _) = common::memory_keyward(Policy::default());
    let shown = |req: actix_web::HttpRequest| async move {
        let h = req.headers();
        let all = h.get_all("x-api-key").all(HeaderValue::is_sensitive);
        let sensitive = all
            && h.get("authorization")
                .is_some_and(HeaderValue::is_sensitive);
        format!("{sensitive} {} {:?}", h.get_all("x-api-key").count(), h)
    };
    let good = key(&kw, &[], &[]).await;
    let app = test::init_service(
        App::new()
            .wrap(KeywardAuth::new(kw))
            .route("/", web::get().to(shown)),
    )
    .await;
    // Someone else's bearer token, and a key sent twice (the first one counts).
    let req = test::TestRequest::get()
        .append_header(("authorization", "Bearer eyJhbGciOi.x.y"))
        .append_header(("x-api-key", good.as_str()))
        .append_header(("x-api-key", "k2"))
        .to_request();
    let shown = String::from_utf8(test::call_and_read_body(&app, req).await.to_vec()).unwrap();
    assert!(shown.starts_with("true 2 "), "{shown}");
    assert!(
        !shown.contains("eyJhbGciOi") && !shown.contains(&good) && !shown.contains("k2"),
        "{shown}"
    );
}

#[test]
async fn required_and_require_answer_in_the_middleware() {
    let (kw, _) = common::memory_keyward(Policy::default());
    let good = key(&kw, &["a:read"], &[]).await;
    let app = test::init_service(
        App::new()
            .wrap(KeywardAuth::new(
                Gate::new(kw.clone()).require(ScopeRequirement::all_of(["a:write"]).unwrap()),
            ))
            .route("/me", web::get().to(hello)),
    )
    .await;
    let res = test::call_service(&app, test::TestRequest::get().uri("/me").to_request()).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let body: Value = test::read_body_json(res).await;
    assert_eq!(body["code"], "API_KEY_MISSING");
    let req = test::TestRequest::get()
        .uri("/me")
        .insert_header(("x-api-key", good.as_str()))
        .to_request();
    let body: Value = test::read_body_json(test::call_service(&app, req).await).await;
    assert_eq!(body["code"], "API_KEY_SCOPE_DENIED");
}

#[test]
async fn extractor_and_scope_wrapper_in_process() {
    let (kw, _) = common::memory_keyward(Policy::default());
    let good = key(&kw, &["reports:read"], &[]).await;
    let app = test::init_service(
        App::new()
            .wrap(KeywardAuth::new(kw.clone()))
            .route("/me", web::get().to(hello))
            .service(
                web::resource("/admin")
                    .wrap(RequireScopes::new(
                        ScopeRequirement::all_of(["admin:write"]).unwrap(),
                    ))
                    .route(web::get().to(hello)),
            ),
    )
    .await;
    let res = test::call_service(
        &app,
        test::TestRequest::get()
            .uri("/me")
            .insert_header(("authorization", format!("Bearer {good}")))
            .to_request(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(test::read_body(res).await, "owner");

    let res = test::call_service(&app, test::TestRequest::get().uri("/me").to_request()).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.headers().get("www-authenticate").unwrap(), "Bearer");
    assert_eq!(
        res.headers().get("content-type").unwrap(),
        "application/problem+json"
    );
    let body: Value = test::read_body_json(res).await;
    assert_eq!(body["code"], "API_KEY_MISSING");

    let res = test::call_service(
        &app,
        test::TestRequest::get()
            .uri("/admin")
            .insert_header(("x-api-key", good.as_str()))
            .to_request(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let body: Value = test::read_body_json(res).await;
    assert_eq!(body["code"], "API_KEY_SCOPE_DENIED");
    assert_eq!(body["missing_scopes"][0], "admin:write");
    assert!(!body.to_string().contains(&good));
}

#[test]
async fn custom_headers_are_honoured() {
    let (kw, _) = common::memory_keyward(Policy::default());
    let good = key(&kw, &[], &[]).await;
    let auth = KeywardAuth::new(
        Gate::new(kw.clone()).credential_headers(CredentialHeaders::new("x-auth", "x-token")),
    );
    let app = test::init_service(App::new().wrap(auth).route("/me", web::get().to(hello))).await;
    let res = test::call_service(
        &app,
        test::TestRequest::get()
            .uri("/me")
            .insert_header(("x-token", good.as_str()))
            .to_request(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = test::call_service(
        &app,
        test::TestRequest::get()
            .uri("/me")
            .insert_header(("x-auth", format!("Bearer {good}")))
            .to_request(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    // The default header is not read any more.
    let res = test::call_service(
        &app,
        test::TestRequest::get()
            .uri("/me")
            .insert_header(("x-api-key", good.as_str()))
            .to_request(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[test]
async fn client_ip_comes_from_the_peer_or_the_app() {
    let (kw, _) = common::memory_keyward(Policy::default());
    let fenced = key(&kw, &[], &["10.0.0.0/8"]).await;
    let app = test::init_service(
        App::new()
            .wrap(KeywardAuth::new(kw.clone()))
            .route("/me", web::get().to(hello)),
    )
    .await;
    let inside: SocketAddr = "10.1.2.3:5555".parse().unwrap();
    let outside: SocketAddr = "192.0.2.1:5555".parse().unwrap();
    let call = |peer: Option<SocketAddr>| {
        let mut r = test::TestRequest::get()
            .uri("/me")
            .insert_header(("x-api-key", fenced.as_str()));
        if let Some(p) = peer {
            r = r.peer_addr(p);
        }
        r.to_request()
    };
    assert_eq!(
        test::call_service(&app, call(Some(inside))).await.status(),
        StatusCode::OK
    );
    let res = test::call_service(&app, call(Some(outside))).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let body: Value = test::read_body_json(res).await;
    assert_eq!(body["code"], "API_KEY_IP_DENIED");
    assert_eq!(
        test::call_service(&app, call(None)).await.status(),
        StatusCode::FORBIDDEN
    );

    // Behind a proxy the application decides.
    let proxied = KeywardAuth::new(Gate::new(kw.clone()).client_ip(
        |req: &actix_web::HttpRequest| {
            req.headers()
                .get("x-real-ip")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
        },
    ));
    let app = test::init_service(App::new().wrap(proxied).route("/me", web::get().to(hello))).await;
    let req = test::TestRequest::get()
        .uri("/me")
        .peer_addr(outside)
        .insert_header(("x-api-key", fenced.as_str()))
        .insert_header(("x-real-ip", "10.9.9.9"))
        .to_request();
    assert_eq!(test::call_service(&app, req).await.status(), StatusCode::OK);
}

#[test]
async fn rate_limits_answer_429_with_retry_after() {
    let (kw, _) = common::memory_keyward(Policy::default());
    let req = CreateKeyRequest {
        name: "t".into(),
        rate_limit: Some(keyward_core::model::RateLimit {
            requests: 1,
            window_seconds: 60,
        }),
        ..CreateKeyRequest::default()
    };
    let raw = kw
        .create_key("owner", req)
        .await
        .unwrap()
        .api_key
        .expose_secret()
        .to_owned();
    let app = test::init_service(
        App::new()
            .wrap(KeywardAuth::new(kw.clone()))
            .route("/me", web::get().to(hello)),
    )
    .await;
    let call = || {
        test::TestRequest::get()
            .uri("/me")
            .insert_header(("x-api-key", raw.as_str()))
            .to_request()
    };
    assert_eq!(
        test::call_service(&app, call()).await.status(),
        StatusCode::OK
    );
    let res = test::call_service(&app, call()).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let secs: u64 = res
        .headers()
        .get("retry-after")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(secs >= 1);
    let body: Value = test::read_body_json(res).await;
    assert_eq!(body["code"], "RATE_LIMITED");
    assert_eq!(body["retry_after"], secs);
}

#[test]
async fn api_key_callers_may_manage_keys_only_when_allowed() {
    use keyward_actix::{ManagementConfig, Rejection};
    let (kw, _) = common::memory_keyward(Policy::default());
    let raw = key(&kw, &[], &[]).await;
    // The owner comes from the verified key when the application opts in.
    let by_key = |allow: bool| {
        ManagementConfig::new(|req: &actix_web::HttpRequest| {
            use actix_web::HttpMessage;
            let owner = req
                .extensions()
                .get::<keyward_core::Principal>()
                .map(|p| p.owner_id().to_owned());
            std::future::ready(owner.ok_or_else(Rejection::unauthenticated))
        })
        .options(keyward_actix::ManagementOptions::default().allow_api_key_callers(allow))
    };
    // No KeywardAuth: the routes verify the key themselves.
    let app = test::init_service(
        App::new().configure(keyward_actix::management_routes(kw.clone(), by_key(true))),
    )
    .await;
    let res = test::call_service(
        &app,
        test::TestRequest::get()
            .uri("/api-keys")
            .insert_header(("x-api-key", raw.as_str()))
            .to_request(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let page: Value = test::read_body_json(res).await;
    assert_eq!(page["items"][0]["owner_id"], "owner");
    let res = test::call_service(
        &app,
        test::TestRequest::get()
            .uri("/api-keys")
            .insert_header(("x-api-key", "kw_live_junk"))
            .to_request(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let body: Value = test::read_body_json(res).await;
    assert_eq!(body["code"], "API_KEY_INVALID");

    let app = test::init_service(
        App::new().configure(keyward_actix::management_routes(kw.clone(), by_key(false))),
    )
    .await;
    let res = test::call_service(
        &app,
        test::TestRequest::get()
            .uri("/api-keys")
            .insert_header(("x-api-key", raw.as_str()))
            .to_request(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    // Admin routes are not mounted without an admin check.
    let res = test::call_service(
        &app,
        test::TestRequest::get()
            .uri("/admin/owners/owner/api-keys")
            .to_request(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

fn signing_keyward() -> Keyward {
    let enc = keyward_test::http_suite::suite_encryption_keyring();
    Keyward::builder(
        std::sync::Arc::new(keyward_core::memory::MemoryKeyStore::new()),
        keyward_core::Keyring::insecure_test_keyring(),
    )
    .encryption(enc)
    .build()
    .unwrap()
}

/// Signs `POST /echo` with `body` for `host`, as the core client `Signer` does.
fn signed_post(key_id: &str, secret: &str, body: &'static str) -> actix_web::test::TestRequest {
    use keyward_core::sigv4::{AccessKey, Payload, SignableRequest, Signer};
    let headers: [(&str, &[u8]); 1] = [("host", b"example.test")];
    let request = SignableRequest::new(
        "POST",
        "/echo",
        Some("x=1"),
        &headers,
        Payload::Bytes(body.as_bytes()),
    );
    let out = Signer::new("us-east-1", "keyward")
        .unwrap()
        .sign(
            &AccessKey::new(key_id, secret.as_bytes()).unwrap(),
            &request,
            time::OffsetDateTime::now_utc(),
        )
        .unwrap();
    let mut req = test::TestRequest::post()
        .uri("/echo?x=1")
        .insert_header(("host", "example.test"))
        .set_payload(body);
    for (name, value) in out.headers() {
        req = req.insert_header((name, value.to_owned()));
    }
    req
}

#[test]
async fn signed_requests_are_verified_and_the_body_is_put_back() {
    async fn echo(caller: Authenticated, body: String) -> HttpResponse {
        HttpResponse::Ok().body(format!("{}:{body}", caller.owner_id()))
    }
    let kw = signing_keyward();
    let created = kw
        .create_key(
            "owner",
            CreateKeyRequest {
                name: "s".into(),
                signing: true,
                ..CreateKeyRequest::default()
            },
        )
        .await
        .unwrap();
    let raw = created.api_key.expose_secret().to_owned();
    let key_id = created.key.id.to_string();
    let app = test::init_service(
        App::new()
            .wrap(KeywardAuth::new(kw.clone()))
            .route("/echo", web::post().to(echo)),
    )
    .await;
    let res = test::call_service(&app, signed_post(&key_id, &raw, "hello").to_request()).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(test::read_body(res).await, "owner:hello");
    // The same request again: replayed.
    let res = test::call_service(&app, signed_post(&key_id, &raw, "hello").to_request()).await;
    let body: Value = test::read_body_json(res).await;
    assert_eq!(body["code"], "SIGNATURE_REPLAYED", "{body}");
    // A body other than the one signed.
    let res = test::call_service(
        &app,
        signed_post(&key_id, &raw, "other")
            .set_payload("tampered")
            .to_request(),
    )
    .await;
    let body: Value = test::read_body_json(res).await;
    assert_eq!(body["code"], "SIGNATURE_INVALID");
}

#[test]
async fn signed_requests_without_signing_are_signature_invalid_where_a_key_is_needed() {
    async fn open(caller: Option<Authenticated>) -> HttpResponse {
        HttpResponse::Ok().body(if caller.is_some() { "yes" } else { "no" })
    }
    let (kw, _) = common::memory_keyward(Policy::default());
    let sig = "AWS4-HMAC-SHA256 Credential=AbCdEf123456/20260101/us-east-1/keyward/aws4_request, SignedHeaders=host, Signature=00";
    let app = test::init_service(
        App::new()
            .wrap(KeywardAuth::new(Gate::new(kw.clone()).optional()))
            .route("/me", web::get().to(hello))
            .route("/open", web::get().to(open)),
    )
    .await;
    let req = test::TestRequest::get()
        .uri("/me")
        .insert_header(("authorization", sig))
        .to_request();
    let res = test::call_service(&app, req).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let body: Value = test::read_body_json(res).await;
    assert_eq!(body["code"], "SIGNATURE_INVALID");
    assert_eq!(body["detail"], "signed requests are not enabled");
    let req = test::TestRequest::get()
        .uri("/open")
        .insert_header(("authorization", sig))
        .to_request();
    assert_eq!(
        test::read_body(test::call_service(&app, req).await).await,
        "no"
    );
    // Where the middleware itself requires a key, it answers the same.
    let required = test::init_service(
        App::new()
            .wrap(KeywardAuth::new(kw))
            .route("/open", web::get().to(open)),
    )
    .await;
    let req = test::TestRequest::get()
        .uri("/open")
        .insert_header(("authorization", sig))
        .to_request();
    let body: Value = test::read_body_json(test::call_service(&required, req).await).await;
    assert_eq!(body["code"], "SIGNATURE_INVALID");
}

#[test]
async fn json_config_answers_like_keyward_on_app_routes() {
    async fn echo(body: web::Json<CreateKeyRequest>) -> HttpResponse {
        HttpResponse::Ok().body(body.into_inner().name)
    }
    let app = test::init_service(
        App::new()
            .app_data(keyward_actix::json_config(64))
            .route("/echo", web::post().to(echo)),
    )
    .await;
    let call = |ct: &'static str, body: &'static str| {
        test::TestRequest::post()
            .uri("/echo")
            .insert_header(("content-type", ct))
            .set_payload(body)
            .to_request()
    };
    let cases = [
        ("application/json", r#"{"name":"ok"}"#, 200, ""),
        (
            "application/json",
            r#"{"name":"a","owner_id":"x"}"#,
            422,
            "VALIDATION_FAILED",
        ),
        ("application/json", r#"{"name":"#, 400, "BAD_REQUEST"),
        (
            "text/plain",
            r#"{"name":"a"}"#,
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        (
            "application/json",
            r#"{"name":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}"#,
            413,
            "PAYLOAD_TOO_LARGE",
        ),
    ];
    for (ct, body, status, code) in cases {
        let res = test::call_service(&app, call(ct, body)).await;
        assert_eq!(res.status().as_u16(), status, "{body}");
        if status != 200 {
            assert_eq!(
                res.headers().get("content-type").unwrap(),
                "application/problem+json"
            );
            let v: Value = test::read_body_json(res).await;
            assert_eq!(v["code"], code, "{body}");
            if status == 422 {
                assert_eq!(v["errors"][0]["field"], "owner_id");
            }
        }
    }
}

/// `Option<Authenticated>` on an open route: the caller when one is present, nobody for a
/// foreign bearer token (a JWT falls through to other authentication).
#[test]
async fn optional_caller_on_open_routes() {
    async fn open(caller: Option<Authenticated>) -> HttpResponse {
        HttpResponse::Ok().body(if caller.is_some() { "yes" } else { "no" })
    }
    let (kw, _) = common::memory_keyward(Policy::default());
    let good = key(&kw, &["reports:read"], &[]).await;
    let app = test::init_service(
        App::new()
            .wrap(KeywardAuth::new(Gate::new(kw.clone()).optional()))
            .route("/open", web::get().to(open)),
    )
    .await;
    let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln";
    for (bearer, expected) in [(jwt, "no"), (good.as_str(), "yes")] {
        let req = test::TestRequest::get()
            .uri("/open")
            .insert_header(("authorization", format!("Bearer {bearer}")))
            .to_request();
        let res = test::call_service(&app, req).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(test::read_body(res).await, expected);
    }
}
