//! The framework-neutral HTTP layer (`keyward_http`) on its own, through its two entry
//! points as an adapter calls them: who a management request acts as and which of the
//! application's hooks are polled, the middleware's credential decision, and a management call
//! from head to `Reply`. The same rules are proven over real sockets in every stack by
//! `keyward_test::{http_suite, management_suite}`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use keyward_core::management::CreateKeyRequest;
use keyward_core::memory::MemoryKeyStore;
use keyward_core::{ErrorCode, Keyring, Keyward, Principal, ScopeRequirement, VerifyContext};
use keyward_http::management::{Matched, Mount};
use keyward_http::{
    Body, Gate, ManagementConfig, ManagementOptions, Operation, Outcome, Rejection, Reply,
    RequestHead,
};
use serde_json::Value;

/// The configuration under test: `Send` hooks over the test request.
type Config = ManagementConfig<Req>;

fn keyward() -> Keyward {
    Keyward::builder(
        Arc::new(MemoryKeyStore::new()),
        Keyring::insecure_test_keyring(),
    )
    .build()
    .unwrap()
}

/// A request as a test adapter holds it.
#[derive(Debug, Default, Clone)]
struct Req {
    method: &'static str,
    query: Option<&'static str>,
    headers: Vec<(&'static str, Vec<u8>)>,
}

impl Req {
    fn get() -> Self {
        Self {
            method: "GET",
            ..Self::default()
        }
    }

    fn with(mut self, name: &'static str, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

impl RequestHead for Req {
    fn method(&self) -> &str {
        self.method
    }
    fn path(&self) -> &str {
        "/api-keys"
    }
    fn query(&self) -> Option<&str> {
        self.query
    }
    fn header(&self, name: &str) -> Option<&[u8]> {
        let found = self
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name));
        found.map(|(_, v)| v.as_slice())
    }
    fn headers(&self) -> Vec<(&str, &[u8])> {
        self.headers
            .iter()
            .map(|(n, v)| (*n, v.as_slice()))
            .collect()
    }
    fn authority(&self) -> Option<&str> {
        None
    }
    fn client_ip(&self) -> Option<IpAddr> {
        None
    }
}

/// A raw key of `owner` with `scopes`, and its verified principal.
async fn key(kw: &Keyward, owner: &str, scopes: &[&str]) -> (String, Principal) {
    let req = CreateKeyRequest {
        name: "k".into(),
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        ..Default::default()
    };
    let created = kw.create_key(owner, req).await.unwrap();
    let raw = created.api_key.expose_secret().to_owned();
    let none = ScopeRequirement::none();
    let p = kw
        .verify(&raw, &none, &VerifyContext::default())
        .await
        .unwrap();
    (raw, p)
}

/// A hook that fails the test when its future is polled: the decision must not need it.
fn never<T>(what: &'static str) -> impl Fn(&Req) -> Ready<Result<T, Rejection>> {
    move |_| panic!("{what} was called, but the decision did not need it")
}

fn body(bytes: &[u8]) -> impl futures::Stream<Item = Result<Vec<u8>, Infallible>> {
    futures::stream::iter([Ok(bytes.to_vec())])
}

fn list(mount: Mount, owner_id: Option<&str>) -> Matched<'_> {
    Matched {
        mount,
        operation: Operation::List,
        owner_id,
        key_id: None,
    }
}

async fn serve(
    kw: &Keyward,
    cfg: &ManagementConfig<Req>,
    route: Matched<'_>,
    req: &Req,
    verified: Option<&Principal>,
) -> Reply {
    cfg.serve(kw, route, req, req, verified, body(b"")).await
}

fn code(reply: &Reply) -> String {
    let v: Value = serde_json::from_slice(&reply.body).unwrap();
    v["code"].as_str().unwrap_or_default().to_owned()
}

fn detail(reply: &Reply) -> String {
    let v: Value = serde_json::from_slice(&reply.body).unwrap();
    v["detail"].as_str().unwrap_or_default().to_owned()
}

fn allowing() -> ManagementOptions {
    ManagementOptions::default().allow_api_key_callers(true)
}

#[tokio::test]
async fn self_service_owner_comes_from_the_resolver_only() {
    let kw = keyward();
    key(&kw, "alice", &[]).await;
    let cfg = Config::new(|_: &Req| ready(Ok("alice".to_owned())));
    let reply = serve(&kw, &cfg, list(Mount::SelfService, None), &Req::get(), None).await;
    assert_eq!(reply.status, 200);
    let page: Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(page["items"][0]["owner_id"], "alice");
}

#[tokio::test]
async fn a_presented_key_is_refused_before_anything_runs_unless_allowed() {
    let kw = keyward();
    let (raw, p) = key(&kw, "bob", &["a:b"]).await;
    let cfg = Config::new(never("resolve"));
    let presented = Req::get().with("authorization", format!("Bearer {raw}"));
    for (req, verified) in [(&presented, None), (&Req::get(), Some(&p))] {
        let reply = serve(&kw, &cfg, list(Mount::SelfService, None), req, verified).await;
        assert_eq!((reply.status, code(&reply).as_str()), (403, "FORBIDDEN"));
    }
    // Allowed: the verified key acts for its own owner; the resolver is never asked.
    let cfg = cfg.options(allowing());
    let reply = serve(&kw, &cfg, list(Mount::SelfService, None), &presented, None).await;
    assert_eq!(reply.status, 200);
    let page: Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(page["items"][0]["owner_id"], "bob");
}

#[tokio::test]
async fn admin_routes_ask_the_check_before_verifying_a_key() {
    let kw = keyward();
    let (admin_raw, admin) = key(&kw, "ops", &["keyward:admin"]).await;
    let (plain_raw, plain) = key(&kw, "bob", &["a:b"]).await;
    let at = list(Mount::Admin, Some("carol"));
    let bearer = |raw: &str| Req::get().with("authorization", format!("Bearer {raw}"));
    let passes = Config::admin_only(|_: &Req| ready(Ok(())));
    let refuses = Config::admin_only(|_: &Req| ready(Err(Rejection::forbidden("not an operator"))));

    // The check passes: the key is not verified (a junk one would be 401).
    let junk = bearer("kw_live_AbCdEf012345_junk");
    assert_eq!(serve(&kw, &passes, at, &junk, None).await.status, 200);
    // The check refuses, an admin key passes.
    assert_eq!(
        serve(&kw, &refuses, at, &bearer(&admin_raw), None)
            .await
            .status,
        200
    );
    // The check refuses, a plain key: 403 naming API keys (not the check's answer).
    let reply = serve(&kw, &refuses, at, &bearer(&plain_raw), None).await;
    assert_eq!(
        (reply.status, detail(&reply).as_str()),
        (403, "API keys cannot manage API keys on this server")
    );
    // The check refuses and no key: the check's answer.
    let reply = serve(&kw, &refuses, at, &Req::get(), None).await;
    assert_eq!(detail(&reply), "not an operator");
    // No check configured and no key: the admin refusal.
    let none = Config::new(never("resolve"));
    let reply = serve(&kw, &none, at, &Req::get(), None).await;
    assert_eq!(detail(&reply), "administrator rights are required");

    // A key verified by the middleware decides first: the check is not asked.
    let unasked = Config::admin_only(never("check"));
    assert_eq!(
        serve(&kw, &unasked, at, &Req::get(), Some(&admin))
            .await
            .status,
        200
    );
    let reply = serve(&kw, &unasked, at, &Req::get(), Some(&plain)).await;
    assert_eq!(reply.status, 403);

    // No owner in the path names no key.
    let nobody = list(Mount::Admin, Some(""));
    assert_eq!(
        serve(&kw, &passes, nobody, &Req::get(), None).await.status,
        404
    );
}

/// `Gate::authenticate` with an empty body and a timer that never fires.
async fn authenticate(gate: &Gate<Req>, req: &Req) -> Outcome<()> {
    let sleep = |_: Duration| std::future::pending::<()>();
    gate.authenticate(req, (), |()| body(b""), sleep).await
}

#[tokio::test]
async fn the_gate_settles_what_it_can_without_waiting() {
    let kw = keyward();
    let gate: Gate<Req> = Gate::new(kw.clone()).optional();
    let jwt = Req::get().with("authorization", "Bearer eyJhbGciOi.x.y");
    assert!(matches!(gate.authenticate_now(&Req::get()), Some(Ok(None))));
    assert!(matches!(gate.authenticate_now(&jwt), Some(Ok(None))));
    // Not cached yet: the store must be asked.
    let req = CreateKeyRequest {
        name: "k".into(),
        ..Default::default()
    };
    let created = kw.create_key("o", req).await.unwrap();
    let keyed = Req::get().with("x-api-key", created.api_key.expose_secret());
    assert!(gate.authenticate_now(&keyed).is_none());
    match authenticate(&gate, &keyed).await {
        Outcome::Pass(pass) => {
            assert!(pass.principal.is_some() && !pass.unverified_signature);
            assert!(matches!(pass.body, Body::Unread(())));
        }
        Outcome::Reject(p) => panic!("{p:?}"),
    }
    // Now it is.
    assert!(matches!(gate.authenticate_now(&keyed), Some(Ok(Some(_)))));

    // Without signing, a signature passes on marked, or is refused where a key is required.
    let signed = Req::get().with("authorization", "AWS4-HMAC-SHA256 Credential=x");
    match authenticate(&gate, &signed).await {
        Outcome::Pass(pass) => assert!(pass.principal.is_none() && pass.unverified_signature),
        Outcome::Reject(p) => panic!("{p:?}"),
    }
    let gate: Gate<Req> = Gate::new(kw.clone());
    // Nothing presented where a key is required: refused now, as `authenticate` refuses it.
    match gate.authenticate_now(&Req::get()) {
        Some(Err(p)) => assert_eq!(p.code, ErrorCode::ApiKeyMissing),
        other => panic!("{other:?}"),
    }
    for (req, want) in [
        (Req::get(), ErrorCode::ApiKeyMissing),
        (signed, ErrorCode::SignatureInvalid),
    ] {
        match authenticate(&gate, &req).await {
            Outcome::Reject(p) => assert_eq!(p.code, want),
            Outcome::Pass(_) => panic!("{req:?} passed"),
        }
    }
    // A requirement the key lacks is refused from the cache, before any limit is charged.
    let gate = gate.require(ScopeRequirement::all_of_static(["reports:read"]));
    match gate.authenticate_now(&keyed) {
        Some(Err(p)) => assert_eq!(p.code, ErrorCode::ApiKeyScopeDenied),
        other => panic!("{other:?}"),
    }
}

/// A gate's cost is what each request through it spends of a key's credits: a route priced at
/// 4 takes a key with 10 credits twice, then refuses it (`USAGE_EXHAUSTED`) while a route priced
/// at 2 still lets it through once, and a free route (0) always.
#[tokio::test]
async fn a_gate_charges_its_cost_in_credits() {
    let kw = keyward();
    let req = CreateKeyRequest {
        name: "metered".into(),
        credits: Some(keyward_core::model::Credits {
            limit: 10,
            refill_seconds: None,
        }),
        ..Default::default()
    };
    let created = kw.create_key("o", req).await.unwrap();
    let keyed = Req::get().with("x-api-key", created.api_key.expose_secret());
    let gate = |cost| Gate::<Req>::new(kw.clone()).cost(cost);
    let passes =
        |outcome: &Outcome<()>| matches!(outcome, Outcome::Pass(p) if p.principal.is_some());
    for cost in [4, 4] {
        assert!(passes(&authenticate(&gate(cost), &keyed).await));
    }
    match authenticate(&gate(4), &keyed).await {
        Outcome::Reject(p) => assert_eq!(p.code, ErrorCode::UsageExhausted),
        Outcome::Pass(_) => panic!("4 credits spent of 2 left"),
    }
    assert!(passes(&authenticate(&gate(2), &keyed).await));
    assert!(passes(&authenticate(&gate(0), &keyed).await));
    match gate(1).authenticate_now(&keyed) {
        Some(Err(p)) => assert_eq!(p.code, ErrorCode::UsageExhausted),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_call_from_head_to_reply() {
    let kw = keyward();
    let cfg = Config::new(|req: &Req| {
        let owner = req
            .header("x-owner")
            .map(|o| String::from_utf8_lossy(o).into_owned());
        ready(Ok(owner.unwrap_or_else(|| "alice".to_owned())))
    });
    let run = |operation, key_id: Option<String>, req: Req, bytes: &'static [u8]| {
        let cfg = cfg.clone();
        let kw = kw.clone();
        async move {
            let route = Matched {
                mount: Mount::SelfService,
                operation,
                owner_id: None,
                key_id: key_id.as_deref(),
            };
            cfg.serve(&kw, route, &req, &req, None, body(bytes)).await
        }
    };
    let json = || Req::get().with("content-type", "application/json");
    let reply = run(Operation::Create, None, json(), br#"{"name":"ci"}"#).await;
    assert_eq!(reply.status, 201);
    assert_eq!(reply.header_value("cache-control"), Some("no-store"));
    let etag = reply.header_value("etag").unwrap().to_owned();
    let created: Value = serde_json::from_slice(&reply.body).unwrap();
    let id = created["key"]["id"].as_str().map(str::to_owned);

    // Reading it back: the same version, no no-store (no raw key in it).
    let reply = run(Operation::Get, id.clone(), Req::get(), b"").await;
    assert_eq!(
        (reply.status, reply.header_value("etag")),
        (200, Some(etag.as_str()))
    );
    assert_eq!(reply.header_value("cache-control"), None);

    // Head errors come before anything runs; body errors from the run.
    let bad_id = Some("../x".to_owned());
    assert_eq!(
        run(Operation::Get, bad_id, Req::get(), b"").await.status,
        404
    );
    let bad_query = Req {
        query: Some("limit=x"),
        ..Req::get()
    };
    assert_eq!(run(Operation::List, None, bad_query, b"").await.status, 422);
    // A malformed body is answered before the precondition; then the precondition.
    let weak = || json().with("if-match", "W/\"v1\"");
    assert_eq!(
        run(Operation::Update, id.clone(), weak(), b"{")
            .await
            .status,
        400
    );
    assert_eq!(
        run(Operation::Revoke, id.clone(), weak(), b"").await.status,
        412
    );
    let text = Req::get().with("content-type", "text/plain");
    let reply = run(Operation::Update, id.clone(), text, b"{}").await;
    assert_eq!(reply.status, 415);
    assert_eq!(
        reply.header_value("content-type"),
        Some("application/problem+json")
    );
    // Over the body limit: 413, before anything runs.
    let small = cfg
        .clone()
        .options(ManagementOptions::default().body_limit(4));
    let route = Matched {
        mount: Mount::SelfService,
        operation: Operation::Create,
        owner_id: None,
        key_id: None,
    };
    let reply = small
        .serve(
            &kw,
            route,
            &json(),
            &json(),
            None,
            body(b"{\"name\":\"x\"}"),
        )
        .await;
    assert_eq!(reply.status, 413);

    // Someone else's key does not exist for this owner.
    let mallory = Req::get().with("x-owner", "mallory");
    assert_eq!(
        run(Operation::Get, id.clone(), mallory, b"").await.status,
        404
    );

    let if_match = Req::get().with("if-match", etag.as_str());
    let reply = run(Operation::Revoke, id, if_match, b"").await;
    assert_eq!((reply.status, reply.body.len()), (204, 0));
}

/// The list of every owner's keys is mounted only when asked for: an admin check sees no owner
/// in its path, and one written for per-owner administrators must not pass it by accident.
#[test]
fn the_list_of_every_key_is_opt_in() {
    let check = |_: &Req| ready(Ok::<(), Rejection>(()));
    let paths = |cfg: &Config| -> Vec<String> { cfg.paths().into_iter().map(|p| p.0).collect() };
    let default = Config::admin_only(check);
    assert!(!paths(&default).contains(&"/admin/api-keys".to_owned()));
    let all = Config::admin_only(check).options(ManagementOptions::default().admin_list_all(true));
    assert!(paths(&all).contains(&"/admin/api-keys".to_owned()));
}
