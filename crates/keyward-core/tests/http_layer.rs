//! The framework-neutral HTTP layer (`keyward_core::http`) on its own: who a management request
//! acts as and which of the adapter's futures are polled, the middleware's credential decision,
//! and a management call from head to `Reply`. The same rules are proven over real sockets in
//! every stack by `keyward_test::{http_suite, management_suite}`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::future::{Ready, ready};
use std::sync::Arc;

use keyward_core::authz::Role;
use keyward_core::credentials::Credential;
use keyward_core::http::management::{self, Call, Caller, Mount};
use keyward_core::http::{Decision, Gate, ManagementOptions, Operation, Reply};
use keyward_core::memory::MemoryKeyStore;
use keyward_core::service::CreateKeyRequest;
use keyward_core::{
    ErrorCode, Keyring, Keyward, Principal, Problem, ScopeRequirement, VerifyContext,
};

fn keyward() -> Keyward {
    Keyward::builder(
        Arc::new(MemoryKeyStore::new()),
        Keyring::insecure_test_keyring(),
    )
    .build()
    .unwrap()
}

/// A verified principal of a new key of `owner` with `scopes`.
async fn principal(kw: &Keyward, owner: &str, scopes: &[&str]) -> Principal {
    let req = CreateKeyRequest {
        name: "k".into(),
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        ..Default::default()
    };
    let created = kw.create_key(owner, req).await.unwrap();
    let none = ScopeRequirement::none();
    kw.verify(
        created.api_key.expose_secret(),
        &none,
        &VerifyContext::default(),
    )
    .await
    .unwrap()
}

/// A future that fails the test when polled: the decision must not have needed it.
async fn never<T>(what: &'static str) -> Result<T, Problem> {
    panic!("{what} was polled, but the decision did not need it")
}

fn ok<T>(v: T) -> Ready<Result<T, Problem>> {
    ready(Ok(v))
}

fn forbidden() -> Problem {
    Problem::new(ErrorCode::Forbidden, Some("no".into()))
}

fn allowing() -> ManagementOptions {
    let mut o = ManagementOptions::default();
    o.allow_api_key_callers = true;
    o
}

#[tokio::test]
async fn self_service_owner_comes_from_the_resolver_only() {
    let o = ManagementOptions::default();
    let caller = Caller::default();
    let no_check: Option<Ready<Result<(), Problem>>> = None;
    let a = management::actor(
        &o,
        Mount::SelfService,
        caller,
        no_check,
        never("verify"),
        ok("alice".to_owned()),
    )
    .await
    .unwrap();
    assert_eq!((a.role(), a.owner_id()), (Role::Owner, Some("alice")));
}

#[tokio::test]
async fn a_presented_key_is_refused_before_anything_runs_unless_allowed() {
    let kw = keyward();
    let p = principal(&kw, "bob", &["a:b"]).await;
    let no_check: Option<Ready<Result<(), Problem>>> = None;
    for caller in [
        Caller {
            presented: true,
            ..Caller::default()
        },
        Caller {
            verified: Some(&p),
            ..Caller::default()
        },
    ] {
        let e = management::actor(
            &ManagementOptions::default(),
            Mount::SelfService,
            caller,
            no_check.clone(),
            never("verify"),
            never("resolve"),
        )
        .await
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::Forbidden);
    }
    // Allowed: the verified key acts for its own owner; the resolver is never asked.
    let caller = Caller {
        presented: true,
        ..Caller::default()
    };
    let a = management::actor(
        &allowing(),
        Mount::SelfService,
        caller,
        no_check,
        ok(Some(p.clone())),
        never("resolve"),
    )
    .await
    .unwrap();
    assert_eq!((a.role(), a.owner_id()), (Role::Key, Some("bob")));
}

#[tokio::test]
async fn admin_routes_ask_the_check_before_verifying_a_key() {
    let kw = keyward();
    let admin = principal(&kw, "ops", &["keyward:admin"]).await;
    let plain = principal(&kw, "bob", &["a:b"]).await;
    let o = ManagementOptions::default();
    let at = |owner| Caller {
        owner_in_path: Some(owner),
        presented: true,
        ..Caller::default()
    };

    // The check passes: no key is verified.
    let a = management::actor(
        &o,
        Mount::Admin,
        at("carol"),
        Some(ok(())),
        never("verify"),
        never("resolve"),
    )
    .await
    .unwrap();
    assert_eq!((a.role(), a.owner_id()), (Role::Admin, Some("carol")));

    // The check refuses, an admin key passes.
    let a = management::actor(
        &o,
        Mount::Admin,
        at("carol"),
        Some(ready(Err(forbidden()))),
        ok(Some(admin.clone())),
        never("resolve"),
    )
    .await
    .unwrap();
    assert_eq!(a.role(), Role::Admin);

    // The check refuses, a plain key: 403 naming API keys (not the check's answer).
    let e = management::actor(
        &o,
        Mount::Admin,
        at("carol"),
        Some(ready(Err(forbidden()))),
        ok(Some(plain.clone())),
        never("resolve"),
    )
    .await
    .unwrap_err();
    assert_eq!(
        e.detail.as_deref(),
        Some("API keys cannot manage API keys on this server")
    );

    // No check configured and no key: the admin refusal.
    let no_check: Option<Ready<Result<(), Problem>>> = None;
    let e = management::actor(
        &o,
        Mount::Admin,
        at("carol"),
        no_check.clone(),
        ok(None),
        never("resolve"),
    )
    .await
    .unwrap_err();
    assert_eq!(
        e.detail.as_deref(),
        Some("administrator rights are required")
    );

    // A key verified by the middleware decides first.
    let caller = Caller {
        owner_in_path: Some("carol"),
        verified: Some(&admin),
        presented: true,
    };
    management::actor(
        &o,
        Mount::Admin,
        caller,
        Some(never("check")),
        never("verify"),
        never("resolve"),
    )
    .await
    .unwrap();
    let caller = Caller {
        verified: Some(&plain),
        ..caller
    };
    let e = management::actor(
        &o,
        Mount::Admin,
        caller,
        Some(never("check")),
        never("verify"),
        never("resolve"),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code, ErrorCode::Forbidden);

    // No owner in the path names no key.
    let e = management::actor(
        &o,
        Mount::Admin,
        Caller {
            owner_in_path: Some(""),
            ..Caller::default()
        },
        no_check,
        never("verify"),
        never("resolve"),
    )
    .await
    .unwrap_err();
    assert_eq!(e.status, 404);
}

#[tokio::test]
async fn the_gate_settles_what_it_can_without_waiting() {
    let kw = keyward();
    let mut gate = Gate::new(kw.clone());
    let ctx = VerifyContext::default;
    assert!(matches!(
        gate.decide_now(Credential::None, ctx),
        Some(Decision::Pass(None))
    ));
    assert!(matches!(
        gate.decide_now(Credential::NotOurs, ctx),
        Some(Decision::Pass(None))
    ));
    // Not cached yet: the store must be asked.
    let created = kw
        .create_key(
            "o",
            CreateKeyRequest {
                name: "k".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let key = created.api_key.expose_secret();
    assert!(gate.decide_now(Credential::Key(key), ctx).is_none());
    assert!(matches!(
        gate.decide(Credential::Key(key), &ctx()).await,
        Decision::Pass(Some(_))
    ));
    // Now it is.
    assert!(matches!(
        gate.decide_now(Credential::Key(key), ctx),
        Some(Decision::Pass(Some(_)))
    ));

    // Without signing, a signature passes on marked, or is refused where a key is required.
    let signed = Credential::Signed("AWS4-HMAC-SHA256 …");
    assert!(matches!(
        gate.decide(signed, &ctx()).await,
        Decision::PassUnverifiedSignature
    ));
    gate.set_required();
    assert!(gate.decide_now(Credential::None, ctx).is_none());
    match gate.decide(Credential::None, &ctx()).await {
        Decision::Reject(p) => assert_eq!(p.code, ErrorCode::ApiKeyMissing),
        other => panic!("{other:?}"),
    }
    match gate.decide(signed, &ctx()).await {
        Decision::Reject(p) => assert_eq!(p.code, ErrorCode::SignatureInvalid),
        other => panic!("{other:?}"),
    }
    // A requirement the key lacks is refused from the cache, before any limit is charged.
    gate.set_requirement(ScopeRequirement::all_of_static(["reports:read"]));
    match gate.decide_now(Credential::Key(key), ctx) {
        Some(Decision::Reject(p)) => assert_eq!(p.code, ErrorCode::ApiKeyScopeDenied),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_call_from_head_to_reply() {
    let kw = keyward();
    let actor = keyward_core::Actor::owner("alice");
    let json = Some(&b"application/json"[..]);
    let call = Call::parse(Operation::Create, None, None, None).unwrap();
    let reply: Reply = call.run(&kw, &actor, json, br#"{"name":"ci"}"#).await;
    assert_eq!(reply.status, 201);
    assert_eq!(reply.header_value("cache-control"), Some("no-store"));
    let etag = reply.header_value("etag").unwrap().to_owned();
    let body: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    let id = body["key"]["id"].as_str().unwrap().to_owned();

    // Reading it back: the same version, no no-store (no raw key in it).
    let call = Call::parse(Operation::Get, Some(&id), None, None).unwrap();
    let reply = call.run(&kw, &actor, None, b"").await;
    assert_eq!(
        (reply.status, reply.header_value("etag")),
        (200, Some(etag.as_str()))
    );
    assert_eq!(reply.header_value("cache-control"), None);

    // Head errors come before anything runs; body errors from the run.
    assert_eq!(
        Call::parse(Operation::Get, Some("../x"), None, None)
            .unwrap_err()
            .status,
        404
    );
    assert_eq!(
        Call::parse(Operation::List, None, Some("limit=x"), None)
            .unwrap_err()
            .status,
        422
    );
    // A malformed body is answered before the precondition; then the precondition.
    let weak = Some(&b"W/\"v1\""[..]);
    let call = Call::parse(Operation::Update, Some(&id), None, weak).unwrap();
    assert_eq!(call.run(&kw, &actor, json, b"{").await.status, 400);
    let call = Call::parse(Operation::Revoke, Some(&id), None, weak).unwrap();
    assert_eq!(call.run(&kw, &actor, None, b"").await.status, 412);
    let call = Call::parse(Operation::Update, Some(&id), None, None).unwrap();
    let reply = call.run(&kw, &actor, Some(b"text/plain"), b"{}").await;
    assert_eq!(reply.status, 415);
    assert_eq!(
        reply.header_value("content-type"),
        Some("application/problem+json")
    );

    let call = Call::parse(Operation::Revoke, Some(&id), None, Some(etag.as_bytes())).unwrap();
    let reply = call.run(&kw, &actor, None, b"").await;
    assert_eq!((reply.status, reply.body.len()), (204, 0));

    // Someone else's key does not exist for this owner.
    let call = Call::parse(Operation::Get, Some(&id), None, None).unwrap();
    let reply = call
        .run(&kw, &keyward_core::Actor::owner("mallory"), None, b"")
        .await;
    assert_eq!(reply.status, 404);
}
