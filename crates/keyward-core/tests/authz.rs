//! Who may do what (DESIGN.md §11), rule by rule, through the management service on the
//! in-memory store. The same rules are proven over HTTP in every stack by
//! `keyward_test::management_suite`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::Arc;

use keyward_core::clock::ManualClock;
use keyward_core::management::{
    CreateKeyRequest, CreatedKey, KeyVersion, RotateKeyRequest, UpdateKeyRequest,
};
use keyward_core::memory::MemoryKeyStore;
use keyward_core::model::{Credits, RateLimit, SelfServiceDefaults};
use keyward_core::{
    Actor, Keyring, Keyward, Policy, ScopeRequirement, ServiceError, VerifyContext, VerifyError,
};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

fn t0() -> OffsetDateTime {
    datetime!(2026-06-01 00:00:00 UTC)
}

struct Fixture {
    kw: Keyward,
    clock: Arc<ManualClock>,
}

fn fixture_with(self_service: SelfServiceDefaults) -> Fixture {
    let clock = Arc::new(ManualClock::new(t0()));
    let kw = Keyward::builder(
        Arc::new(MemoryKeyStore::new()),
        Keyring::insecure_test_keyring(),
    )
    .policy(Policy {
        max_keys_per_owner: Some(3),
        self_service,
        ..Policy::default()
    })
    .clock(clock.clone())
    .build()
    .unwrap();
    Fixture { kw, clock }
}

fn fixture() -> Fixture {
    fixture_with(SelfServiceDefaults::default())
}

fn req(scopes: &[&str]) -> CreateKeyRequest {
    CreateKeyRequest {
        name: "k".into(),
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        ..Default::default()
    }
}

/// The refused fields of a `Forbidden`, as `field:code`.
fn refused<T: std::fmt::Debug>(r: Result<T, ServiceError>) -> Vec<String> {
    match r {
        Err(ServiceError::Forbidden(fields)) => fields
            .into_iter()
            .map(|f| format!("{}:{}", f.field, f.code))
            .collect(),
        other => panic!("expected Forbidden, got {other:?}"),
    }
}

async fn verify(kw: &Keyward, key: &CreatedKey, scopes: &[&str]) -> Result<(), VerifyError> {
    kw.verify(
        key.api_key.expose_secret(),
        &ScopeRequirement::all_of(scopes).unwrap(),
        &VerifyContext::default(),
    )
    .await
    .map(drop)
}

#[tokio::test]
async fn reserved_scopes_only_from_admins_and_only_by_name() {
    let f = fixture();
    let owner = Actor::owner("alice");
    assert_eq!(
        refused(f.kw.create_key_as(&owner, req(&["keyward:admin"])).await),
        ["scopes:not_grantable"]
    );
    match f
        .kw
        .create_key_as(&Actor::admin_for("alice"), req(&["keyward:*"]))
        .await
    {
        Err(ServiceError::Validation(v)) => assert_eq!(v[0].code, "reserved_wildcard"),
        other => panic!("{other:?}"),
    }
    let admin =
        f.kw.create_key_as(&Actor::admin_for("ops"), req(&["keyward:admin"]))
            .await
            .unwrap();
    verify(&f.kw, &admin, &["keyward:admin"]).await.unwrap();
    // `*` covers everything but the reserved namespace.
    let star = f.kw.create_key("alice", req(&["*"])).await.unwrap();
    verify(&f.kw, &star, &["reports:read"]).await.unwrap();
    assert!(matches!(
        verify(&f.kw, &star, &["keyward:admin"]).await,
        Err(VerifyError::ScopeDenied { .. })
    ));
}

#[tokio::test]
async fn reserved_owners_are_closed_to_self_service() {
    let f = fixture();
    let held =
        f.kw.create_key("keyward-admin", req(&["keyward:admin"]))
            .await
            .unwrap();
    for actor in [Actor::owner("keyward-admin"), Actor::owner("keywardx")] {
        assert_eq!(
            refused(f.kw.list_keys(&actor, &page(None, None)).await),
            ["owner_id:reserved_owner"]
        );
        assert_eq!(
            refused(f.kw.create_key_as(&actor, req(&[])).await),
            ["owner_id:reserved_owner"]
        );
    }
    let actor = Actor::owner("keyward-admin");
    refused(f.kw.get_key(&actor, &held.key.id).await);
    refused(
        f.kw.rotate_key(&actor, &held.key.id, RotateKeyRequest::default(), None)
            .await,
    );
    refused(f.kw.revoke_key(&actor, &held.key.id, None).await);
    let page =
        f.kw.list_keys(&Actor::admin_for("keyward-admin"), &page(None, None))
            .await
            .unwrap();
    assert_eq!(page.items.len(), 1);
    assert!(page.items[0].revoked_at.is_none());
}

#[tokio::test]
async fn key_callers_grant_at_most_what_they_hold() {
    let f = fixture();
    let caller = f.kw.create_key("bob", req(&["reports:*"])).await.unwrap();
    let principal =
        f.kw.verify(
            caller.api_key.expose_secret(),
            &ScopeRequirement::none(),
            &VerifyContext::default(),
        )
        .await
        .unwrap();
    let actor = Actor::key(&principal);
    assert_eq!(actor.owner_id(), Some("bob"));
    let made =
        f.kw.create_key_as(&actor, req(&["reports:read"]))
            .await
            .unwrap();
    assert_eq!(made.key.owner_id, "bob");
    assert_eq!(
        refused(f.kw.create_key_as(&actor, req(&["billing:read"])).await),
        ["scopes:not_grantable"]
    );
    assert_eq!(
        refused(f.kw.create_key_as(&actor, req(&["*"])).await),
        ["scopes:not_grantable"]
    );
    // Nor may it reach another owner's keys.
    let other = f.kw.create_key("carol", req(&[])).await.unwrap();
    assert!(matches!(
        f.kw.get_key(&actor, &other.key.id).await,
        Err(ServiceError::NotFound)
    ));
}

/// Review finding 7: a key caller's keys inherit at most its own allowlist, credits, rate
/// limit and expiry, the ceiling its scopes already follow; a key cannot shed its restrictions
/// by minting a fresh one.
#[tokio::test]
async fn key_callers_pass_on_their_restrictions() {
    let f = fixture_with(SelfServiceDefaults {
        rate_limit: Some(RateLimit {
            requests: 100,
            window_seconds: 60,
        }),
        credits: Some(Credits {
            limit: 1000,
            refill_seconds: Some(3600),
        }),
        max_ttl: None,
    });
    let expiry = t0() + Duration::days(2);
    let mut restricted = req(&["reports:*"]);
    restricted.ip_allowlist = vec!["10.0.0.0/8".into()];
    restricted.rate_limit = Some(RateLimit {
        requests: 5,
        window_seconds: 60,
    });
    restricted.credits = Some(Credits {
        limit: 10,
        refill_seconds: None,
    });
    restricted.expires_at = Some(expiry);
    let caller = f.kw.create_key("erin", restricted).await.unwrap();
    let principal =
        f.kw.verify(
            caller.api_key.expose_secret(),
            &ScopeRequirement::none(),
            &VerifyContext::with_ip("10.1.2.3".parse().unwrap()),
        )
        .await
        .unwrap();
    let actor = Actor::key(&principal);

    let child =
        f.kw.create_key_as(&actor, req(&["reports:read"]))
            .await
            .unwrap();
    assert_eq!(
        child.key.ip_allowlist,
        ["10.0.0.0/8"],
        "the allowlist is passed on"
    );
    assert_eq!(
        child.key.rate_limit,
        Some(RateLimit {
            requests: 5,
            window_seconds: 60
        }),
        "the tighter rate limit"
    );
    assert_eq!(
        child.key.credits,
        Some(Credits {
            limit: 10,
            refill_seconds: None
        }),
        "at most the caller's credits"
    );
    assert_eq!(
        child.key.expires_at,
        Some(expiry),
        "no longer than the caller"
    );
    // A child with the caller's restrictions verifies only where the caller does.
    assert!(
        f.kw.verify(
            child.api_key.expose_secret(),
            &ScopeRequirement::none(),
            &VerifyContext::with_ip("192.0.2.1".parse().unwrap()),
        )
        .await
        .is_err()
    );
    // Its quota is the caller's: the caller spent 1 of its 10 credits, the child gets the 9 left
    // between them, not 10 of its own.
    let office = VerifyContext::with_ip("10.1.2.3".parse().unwrap());
    let mut served = 0;
    for _ in 0..40 {
        match f
            .kw
            .verify(
                child.api_key.expose_secret(),
                &ScopeRequirement::none(),
                &office,
            )
            .await
        {
            Ok(_) => served += 1,
            Err(VerifyError::RateLimited { .. }) => f.clock.advance(Duration::seconds(61)),
            Err(VerifyError::UsageExhausted { .. }) => break,
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(served, 9, "the child had a budget of its own");
    // Asking for a longer life than the caller's is refused, like a wider scope.
    let mut longer = req(&["reports:read"]);
    longer.ttl_seconds = Some(Duration::days(3).whole_seconds());
    assert_eq!(
        refused(f.kw.create_key_as(&actor, longer).await),
        ["expires_at:beyond_caller"]
    );
    let mut shorter = req(&["reports:read"]);
    shorter.ttl_seconds = Some(3600);
    let made = f.kw.create_key_as(&actor, shorter).await.unwrap();
    assert_eq!(made.key.expires_at, Some(f.kw.now() + Duration::hours(1)));

    // Nor by rotating a less restricted sibling: the successor would be a fresh raw key
    // without the caller's restrictions. Its own children it may rotate.
    f.kw.revoke_key(&Actor::admin(), &made.key.id, None)
        .await
        .unwrap();
    let sibling =
        f.kw.create_key("erin", req(&["reports:read"]))
            .await
            .unwrap();
    let mut wider = refused(
        f.kw.rotate_key(&actor, &sibling.key.id, RotateKeyRequest::default(), None)
            .await,
    );
    wider.sort();
    assert_eq!(
        wider,
        [
            "credits:beyond_caller",
            "expires_at:beyond_caller",
            "ip_allowlist:beyond_caller",
            "rate_limit:beyond_caller"
        ]
    );
    f.kw.rotate_key(&actor, &child.key.id, RotateKeyRequest::default(), None)
        .await
        .unwrap();
}

#[tokio::test]
async fn owners_set_no_limits_and_lift_none() {
    let f = fixture();
    let owner = Actor::owner("dana");
    let mut r = req(&[]);
    r.rate_limit = Some(RateLimit {
        requests: 1,
        window_seconds: 1,
    });
    r.credits = Some(Credits {
        limit: 1,
        refill_seconds: None,
    });
    r.ip_allowlist = vec!["10.0.0.1".into()];
    r.metadata = Some(serde_json::from_str(r#"{"a":1}"#).unwrap());
    assert_eq!(
        refused(f.kw.create_key_as(&owner, r.clone()).await),
        [
            "rate_limit:admin_only",
            "credits:admin_only",
            "ip_allowlist:admin_only",
            "metadata:admin_only"
        ]
    );
    let k = f.kw.create_key("dana", r).await.unwrap();
    let lifts: [UpdateKeyRequest; 4] = [
        UpdateKeyRequest {
            rate_limit: Some(None),
            ..Default::default()
        },
        UpdateKeyRequest {
            credits: Some(None),
            ..Default::default()
        },
        UpdateKeyRequest {
            ip_allowlist: Some(Vec::new()),
            ..Default::default()
        },
        UpdateKeyRequest {
            metadata: Some(serde_json::Map::new()),
            ..Default::default()
        },
    ];
    for lift in lifts {
        let r = f.kw.update_key(&owner, &k.key.id, lift, None).await;
        assert!(refused(r)[0].ends_with(":admin_only"));
    }
    let view = f.kw.get_key(&owner, &k.key.id).await.unwrap();
    assert!(view.rate_limit.is_some() && view.credits.is_some());
    assert_eq!(view.ip_allowlist.len(), 1);
}

#[tokio::test]
async fn owners_narrow_scopes_and_shorten_expiry() {
    let f = fixture();
    let owner = Actor::owner("erin");
    let mut r = req(&["a:read", "a:write"]);
    r.ttl_seconds = Some(3600);
    let k = f.kw.create_key_as(&owner, r).await.unwrap();
    let id = k.key.id;
    let upd = |scopes: Option<&[&str]>, expires: Option<Option<OffsetDateTime>>| UpdateKeyRequest {
        scopes: scopes.map(|s| s.iter().map(|x| (*x).to_owned()).collect()),
        expires_at: expires,
        ..Default::default()
    };
    f.kw.update_key(&owner, &id, upd(Some(&["a:read"]), None), None)
        .await
        .unwrap();
    assert_eq!(
        refused(
            f.kw.update_key(&owner, &id, upd(Some(&["a:read", "a:write"]), None), None)
                .await
        ),
        ["scopes:not_grantable"]
    );
    assert_eq!(
        refused(
            f.kw.update_key(&owner, &id, upd(None, Some(None)), None)
                .await
        ),
        ["expires_at:extending"]
    );
    let later = t0() + Duration::hours(2);
    assert_eq!(
        refused(
            f.kw.update_key(&owner, &id, upd(None, Some(Some(later))), None)
                .await
        ),
        ["expires_at:extending"]
    );
    let sooner = t0() + Duration::minutes(30);
    let v =
        f.kw.update_key(&owner, &id, upd(None, Some(Some(sooner))), None)
            .await
            .unwrap();
    assert_eq!(v.expires_at, Some(sooner));
    // An administrator may do both.
    let admin = Actor::admin_for("erin");
    let v =
        f.kw.update_key(&admin, &id, upd(Some(&["a:*"]), Some(None)), None)
            .await
            .unwrap();
    assert_eq!(v.expires_at, None);
    assert_eq!(v.scopes, ["a:*"]);
}

#[tokio::test]
async fn self_service_defaults_apply_to_owners_only() {
    let f = fixture_with(SelfServiceDefaults {
        rate_limit: Some(RateLimit {
            requests: 10,
            window_seconds: 60,
        }),
        credits: Some(Credits {
            limit: 100,
            refill_seconds: Some(86_400),
        }),
        max_ttl: Some(Duration::days(7)),
    });
    let k =
        f.kw.create_key_as(&Actor::owner("fay"), req(&[]))
            .await
            .unwrap();
    assert_eq!(k.key.rate_limit.unwrap().requests, 10);
    assert_eq!(k.key.credits.unwrap().limit, 100);
    assert_eq!(k.key.expires_at, Some(t0() + Duration::days(7)));
    let mut long = req(&[]);
    long.expires_at = Some(t0() + Duration::days(8));
    match f.kw.create_key_as(&Actor::owner("fay"), long.clone()).await {
        Err(ServiceError::Validation(v)) => assert_eq!(v[0].code, "too_far"),
        other => panic!("{other:?}"),
    }
    let a = f.kw.create_key("fay", long).await.unwrap();
    assert!(a.key.rate_limit.is_none() && a.key.credits.is_none());
}

#[tokio::test]
async fn reactivation_belongs_to_whoever_deactivated() {
    let f = fixture();
    let owner = Actor::owner("gus");
    let admin = Actor::admin_for("gus");
    let k = f.kw.create_key_as(&owner, req(&[])).await.unwrap();
    let active = |a: bool| UpdateKeyRequest {
        is_active: Some(a),
        ..Default::default()
    };
    f.kw.update_key(&owner, &k.key.id, active(false), None)
        .await
        .unwrap();
    f.kw.update_key(&owner, &k.key.id, active(true), None)
        .await
        .unwrap();
    f.kw.update_key(&admin, &k.key.id, active(false), None)
        .await
        .unwrap();
    assert_eq!(
        refused(f.kw.update_key(&owner, &k.key.id, active(true), None).await),
        ["is_active:admin_deactivated"]
    );
    f.kw.update_key(&owner, &k.key.id, active(false), None)
        .await
        .unwrap();
    assert_eq!(
        refused(f.kw.update_key(&owner, &k.key.id, active(true), None).await),
        ["is_active:admin_deactivated"]
    );
    let v =
        f.kw.update_key(&admin, &k.key.id, active(true), None)
            .await
            .unwrap();
    assert!(v.is_active && v.deactivated_by.is_none());
}

#[tokio::test]
async fn a_key_rotates_once_and_a_chain_keeps_two_live_keys() {
    let f = fixture();
    let owner = Actor::owner("hal");
    let first = f.kw.create_key_as(&owner, req(&[])).await.unwrap();
    let rotate = |id: keyward_core::KeyId| {
        let (kw, owner) = (f.kw.clone(), owner.clone());
        async move {
            kw.rotate_key(&owner, &id, RotateKeyRequest::default(), None)
                .await
        }
    };
    let second = rotate(first.key.id).await.unwrap();
    match rotate(first.key.id).await {
        Err(ServiceError::AlreadyRotated(s)) => assert_eq!(s, second.key.id),
        other => panic!("{other:?}"),
    }
    verify(&f.kw, &first, &[]).await.expect("in its grace");
    f.clock.advance(Duration::seconds(1));
    let third = rotate(second.key.id).await.unwrap();
    assert!(
        matches!(
            verify(&f.kw, &first, &[]).await,
            Err(VerifyError::Invalid(_))
        ),
        "rotating the successor ended the first key's grace"
    );
    verify(&f.kw, &second, &[])
        .await
        .expect("second in its grace");
    verify(&f.kw, &third, &[]).await.unwrap();
    let mut latest = third;
    for _ in 0..20 {
        f.clock.advance(Duration::seconds(1));
        let id = latest.key.id;
        latest = rotate(id).await.unwrap();
    }
    let now = f.kw.now();
    let live =
        f.kw.list_keys(&owner, &page(None, Some(100)))
            .await
            .unwrap()
            .items
            .iter()
            .filter(|k| k.expires_at.is_none_or(|e| e > now) && k.revoked_at.is_none())
            .count();
    assert_eq!(live, 2);
}

/// Creates `r` for an admin, uses it twice, rotates it as its owner: `(old, successor)`.
async fn used_twice_then_rotated(f: &Fixture, r: CreateKeyRequest) -> (CreatedKey, CreatedKey) {
    let old = f.kw.create_key("ida", r).await.unwrap();
    verify(&f.kw, &old, &[]).await.unwrap();
    verify(&f.kw, &old, &[]).await.unwrap();
    let actor = Actor::owner("ida");
    let new =
        f.kw.rotate_key(&actor, &old.key.id, RotateKeyRequest::default(), None)
            .await
            .unwrap();
    (old, new)
}

#[tokio::test]
async fn successors_share_credits_and_the_rate_limit() {
    let f = fixture();
    let mut r = req(&[]);
    r.credits = Some(Credits {
        limit: 3,
        refill_seconds: None,
    });
    let (old, new) = used_twice_then_rotated(&f, r).await;
    verify(&f.kw, &new, &[]).await.unwrap();
    assert!(matches!(
        verify(&f.kw, &new, &[]).await,
        Err(VerifyError::UsageExhausted { .. })
    ));
    assert!(
        matches!(
            verify(&f.kw, &old, &[]).await,
            Err(VerifyError::UsageExhausted { .. })
        ),
        "the old key in its grace spends the same credits"
    );

    let mut r = req(&[]);
    r.rate_limit = Some(RateLimit {
        requests: 2,
        window_seconds: 3600,
    });
    let (_, new) = used_twice_then_rotated(&f, r).await;
    assert!(matches!(
        verify(&f.kw, &new, &[]).await,
        Err(VerifyError::RateLimited { .. })
    ));
}

#[tokio::test]
async fn versions_guard_writes() {
    let f = fixture();
    let owner = Actor::owner("jo");
    let k = f.kw.create_key_as(&owner, req(&[])).await.unwrap();
    let v1 = KeyVersion::of_view(&k.key);
    let rename = |n: &str| UpdateKeyRequest {
        name: Some(n.into()),
        ..Default::default()
    };
    let after =
        f.kw.update_key(&owner, &k.key.id, rename("a"), Some(v1))
            .await
            .unwrap();
    let v2 = KeyVersion::of_view(&after);
    assert_ne!(v1, v2, "even within one microsecond");
    for r in [
        f.kw.update_key(&owner, &k.key.id, rename("b"), Some(v1))
            .await
            .map(drop),
        f.kw.revoke_key(&owner, &k.key.id, Some(v1)).await.map(drop),
        f.kw.rotate_key(&owner, &k.key.id, RotateKeyRequest::default(), Some(v1))
            .await
            .map(drop),
    ] {
        assert!(matches!(r, Err(ServiceError::PreconditionFailed)), "{r:?}");
    }
    assert_eq!(KeyVersion::parse_etag(&v2.etag()), Some(v2));
    f.kw.revoke_key(&owner, &k.key.id, Some(v2)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_updates_of_different_fields_both_land() {
    let f = fixture();
    let owner = Actor::owner("kim");
    let k = f.kw.create_key_as(&owner, req(&[])).await.unwrap();
    for i in 0..50 {
        let name = UpdateKeyRequest {
            name: Some(format!("n{i}")),
            ..Default::default()
        };
        let description = UpdateKeyRequest {
            description: Some(Some(format!("d{i}"))),
            ..Default::default()
        };
        let spawn = |req: UpdateKeyRequest| {
            let (kw, owner, id) = (f.kw.clone(), owner.clone(), k.key.id);
            tokio::spawn(async move { kw.update_key(&owner, &id, req, None).await })
        };
        let (a, b) = tokio::join!(spawn(name), spawn(description));
        a.unwrap().unwrap();
        b.unwrap().unwrap();
        let v = f.kw.get_key(&owner, &k.key.id).await.unwrap();
        assert_eq!(v.name, format!("n{i}"));
        assert_eq!(v.description.as_deref(), Some(format!("d{i}").as_str()));
    }
}

#[tokio::test]
async fn rotation_grants_nothing_the_caller_could_not() {
    let f = fixture();
    // A key caller cannot rotate a sibling wider than itself into a fresh credential.
    let narrow =
        f.kw.create_key("lea", req(&["reports:read"]))
            .await
            .unwrap();
    let wide = f.kw.create_key("lea", req(&["*"])).await.unwrap();
    let principal =
        f.kw.verify(
            narrow.api_key.expose_secret(),
            &ScopeRequirement::none(),
            &VerifyContext::default(),
        )
        .await
        .unwrap();
    let caller = Actor::key(&principal);
    assert_eq!(
        refused(
            f.kw.rotate_key(&caller, &wide.key.id, RotateKeyRequest::default(), None)
                .await
        ),
        ["scopes:not_grantable"]
    );
    f.kw.rotate_key(&caller, &narrow.key.id, RotateKeyRequest::default(), None)
        .await
        .expect("its own scopes");
    // Keys holding reserved scopes are rotated by administrators only.
    let ops =
        f.kw.create_key("leo", req(&["keyward:verify"]))
            .await
            .unwrap();
    assert_eq!(
        refused(
            f.kw.rotate_key(
                &Actor::owner("leo"),
                &ops.key.id,
                RotateKeyRequest::default(),
                None
            )
            .await
        ),
        ["key_id:admin_only"]
    );
    f.kw.rotate_key(
        &Actor::admin_for("leo"),
        &ops.key.id,
        RotateKeyRequest::default(),
        None,
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn rotation_does_not_undo_a_shortened_expiry() {
    let f = fixture();
    let mut r = req(&[]);
    r.ttl_seconds = Some(365 * 86_400);
    let k = f.kw.create_key("max", r).await.unwrap();
    let tomorrow = t0() + Duration::days(1);
    f.kw.update_key(
        &Actor::admin_for("max"),
        &k.key.id,
        UpdateKeyRequest {
            expires_at: Some(Some(tomorrow)),
            ..Default::default()
        },
        None,
    )
    .await
    .unwrap();
    f.clock.advance(Duration::hours(1));
    let s =
        f.kw.rotate_key(
            &Actor::owner("max"),
            &k.key.id,
            RotateKeyRequest::default(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(s.key.expires_at, Some(tomorrow), "not a fresh year");
}

#[tokio::test]
async fn huge_durations_are_refused_not_a_panic() {
    let f = fixture();
    let mut r = req(&[]);
    r.ttl_seconds = Some(i64::MAX);
    match f.kw.create_key_as(&Actor::owner("ned"), r).await {
        Err(ServiceError::Validation(v)) => assert_eq!(v[0].field, "ttl_seconds"),
        other => panic!("{other:?}"),
    }
    let k = f.kw.create_key("ned", req(&[])).await.unwrap();
    for grace in [i64::MAX, i64::MIN, -1] {
        match f
            .kw
            .rotate_key(
                &Actor::owner("ned"),
                &k.key.id,
                RotateKeyRequest {
                    grace_seconds: Some(grace),
                },
                None,
            )
            .await
        {
            Err(ServiceError::Validation(v)) => assert_eq!(v[0].field, "grace_seconds"),
            other => panic!("{grace}: {other:?}"),
        }
    }
}

/// A key that expires at the end of time still has an expiry after rotation: the successor's
/// lifetime saturates at the last representable instant instead of overflowing into "never".
#[tokio::test]
async fn a_successor_of_a_key_near_the_end_of_time_still_expires() {
    let f = fixture();
    let mut r = req(&[]);
    r.expires_at = Some(datetime!(9999-12-31 00:00 UTC));
    let k = f.kw.create_key_as(&Actor::owner("zed"), r).await.unwrap();
    f.clock.advance(Duration::days(30));
    let s =
        f.kw.rotate_key(
            &Actor::admin_for("zed"),
            &k.key.id,
            RotateKeyRequest::default(),
            None,
        )
        .await
        .unwrap();
    let expires = s.key.expires_at.expect("the successor expires");
    assert_eq!(expires, keyward_core::clock::LATEST);
}

/// An expiry given in an offset that has no UTC form inside the representable years (a library
/// caller's request; HTTP refuses it at parsing) is clamped, not handed to a store that would
/// panic converting it.
#[tokio::test]
async fn an_expiry_past_the_representable_range_in_utc_is_clamped() {
    let f = fixture();
    let mut r = req(&[]);
    r.expires_at = Some(datetime!(9999-12-31 23:00 -5));
    let k = f.kw.create_key("amy", r).await.unwrap();
    assert_eq!(k.key.expires_at, Some(keyward_core::clock::LATEST));
    assert!(serde_json::to_string(&k.key).is_ok());
}

/// The list query of one page.
fn page(cursor: Option<&str>, limit: Option<u32>) -> keyward_core::management::KeyQuery {
    keyward_core::management::KeyQuery {
        cursor: cursor.map(str::to_owned),
        limit,
        ..Default::default()
    }
}
