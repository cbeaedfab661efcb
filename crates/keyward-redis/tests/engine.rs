//! The Redis roles through the engine: cross-instance revocation (two engines, each with its
//! own pool, cache and listener), per-key rate limits on verified ids only, usage credits with
//! refill, and the nonce store.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    clippy::print_stdout
)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use keyward_core::Actor;
use keyward_core::clock::SystemClock;
use keyward_core::engine::InvalidReason;
use keyward_core::management::CreateKeyRequest;
use keyward_core::model::{Credits, RateLimit};
use keyward_core::store::NonceStore;
use keyward_core::{ScopeRequirement, VerifyContext, VerifyError};
use keyward_redis::RedisBackend;

/// Verifies `key` on `k` until `k` keeps `entries` cache entries: a create publishes an
/// invalidation of the new id (for instances that remembered it as unknown), which may reach
/// `k` after it cached the key.
async fn cached_after_create(k: &keyward_core::Keyward, key: &str, entries: usize) {
    let started = Instant::now();
    loop {
        verify(k, key).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        if k.cache_stats().entries == entries {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the key never stayed cached"
        );
    }
}

async fn verify(
    k: &keyward_core::Keyward,
    key: &str,
) -> Result<keyward_core::Principal, VerifyError> {
    k.verify(key, &ScopeRequirement::none(), &VerifyContext::default())
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_through_a_reaches_b_within_a_second() {
    let Some(url) = common::shared_redis("revocation_through_a_reaches_b_within_a_second").await
    else {
        return;
    };
    let prefix = common::unique_prefix();
    // Two instances: separate pools, caches and listeners, one Redis.
    let backend_a = RedisBackend::connect(&url, &prefix).unwrap();
    let backend_b = RedisBackend::connect(&url, &prefix).unwrap();
    let a = common::engine(backend_a.store.clone(), &backend_a, Arc::new(SystemClock));
    let b = common::engine(backend_b.store.clone(), &backend_b, Arc::new(SystemClock));
    let listener_a = backend_a.spawn_listener(a.clone());
    let listener_b = backend_b.spawn_listener(b.clone());
    assert!(listener_a.wait_subscribed(Duration::from_secs(5)).await);
    assert!(listener_b.wait_subscribed(Duration::from_secs(5)).await);

    let (key, id) = common::create(&a, "owner", common::named("propagated")).await;
    let key = key.expose_secret().to_owned();
    verify(&a, &key).await.unwrap();
    // b serves the key from its cache (TTL one hour).
    cached_after_create(&b, &key, 1).await;

    // Measured from the start of the revoke call (store write + publish + delivery).
    let started = Instant::now();
    a.revoke_key(&Actor::admin_for("owner"), &id, None)
        .await
        .unwrap();
    let call = started.elapsed();
    let delay = loop {
        match verify(&b, &key).await {
            Ok(_) => {}
            Err(VerifyError::Invalid(InvalidReason::Revoked)) => break started.elapsed(),
            Err(e) => panic!("unexpected {e:?}"),
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "b never saw the revocation"
        );
        tokio::task::yield_now().await;
    };
    println!(
        "revocation propagation delay A -> B: {delay:?} from the start of the revoke call \
         (the call took {call:?}; {:?} after it returned)",
        delay.saturating_sub(call)
    );
    assert!(
        delay <= Duration::from_secs(1),
        "propagation took {delay:?}"
    );

    // Updates propagate the same way: deactivate a second key through A.
    let (key2, id2) = common::create(&a, "owner", common::named("deactivated")).await;
    let key2 = key2.expose_secret().to_owned();
    verify(&b, &key2).await.unwrap();
    let patch = serde_json::from_value(serde_json::json!({"is_active": false})).unwrap();
    a.update_key(&Actor::admin_for("owner"), &id2, patch, None)
        .await
        .unwrap();
    let started = Instant::now();
    loop {
        match verify(&b, &key2).await {
            Ok(_) => {}
            Err(VerifyError::Invalid(InvalidReason::Inactive)) => break,
            Err(e) => panic!("unexpected {e:?}"),
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "b never saw the update"
        );
        tokio::task::yield_now().await;
    }
    println!("update propagation delay A -> B: {:?}", started.elapsed());
    // Junk on the channel is ignored; `*` clears every instance's cache.
    let (key3, _) = common::create(&a, "owner", common::named("third")).await;
    let cached = b.cache_stats().entries;
    cached_after_create(&b, key3.expose_secret(), cached + 1).await;
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let _: i64 = redis::cmd("PUBLISH")
        .arg(format!("{prefix}:invalidate"))
        .arg("not a key id \u{0}")
        .query_async(&mut c)
        .await
        .unwrap();
    backend_a.bus.publish_clear_all().await.unwrap();
    let started = Instant::now();
    while b.cache_stats().entries > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "clear-all never arrived"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert!(listener_b.is_subscribed());
    drop((listener_a, listener_b));
    common::cleanup(&url, &prefix).await;
}

/// Two engines on their own pools under `prefix`, as two instances are, on one manual clock.
fn two_instances(
    url: &str,
    prefix: &str,
) -> (
    keyward_core::Keyward,
    keyward_core::Keyward,
    Arc<keyward_core::clock::ManualClock>,
) {
    let backend = RedisBackend::connect(url, prefix).unwrap();
    let other = RedisBackend::connect(url, prefix).unwrap();
    let clock = common::manual_clock();
    let a = common::engine(backend.store.clone(), &backend, clock.clone());
    let b = common::engine(other.store.clone(), &other, clock.clone());
    (a, b, clock)
}

#[tokio::test]
async fn rate_limit_counts_verified_requests_only() {
    let Some(url) = common::shared_redis("rate_limit_counts_verified_requests_only").await else {
        return;
    };
    let prefix = common::unique_prefix();
    let (a, b, clock) = two_instances(&url, &prefix);
    let req = CreateKeyRequest {
        rate_limit: Some(RateLimit {
            requests: 3,
            window_seconds: 60,
        }),
        ..common::named("limited")
    };
    let (key, _) = common::create(&a, "owner", req).await;
    // An attacker who knows the key id but not the secret cannot spend the budget.
    let forged = common::wrong_secret(&key);
    for _ in 0..20 {
        match verify(&a, &forged).await {
            Err(VerifyError::Invalid(InvalidReason::WrongSecret)) => {}
            other => panic!("forged key gave {other:?}"),
        }
    }
    let key = key.expose_secret();
    verify(&a, key).await.unwrap();
    verify(&b, key).await.unwrap(); // the budget is shared by every instance
    verify(&a, key).await.unwrap();
    let err = verify(&b, key).await.unwrap_err();
    assert!(matches!(err, VerifyError::RateLimited { .. }), "{err:?}");
    assert_eq!(err.code().status(), 429);
    let retry = err.retry_after().expect("retry-after");
    assert!(
        retry >= Duration::from_secs(1) && retry <= Duration::from_secs(20),
        "{retry:?}"
    );
    // One emission interval (60 s / 3) later, exactly one more request fits.
    clock.advance(time::Duration::seconds(20));
    verify(&a, key).await.unwrap();
    assert!(matches!(
        verify(&a, key).await,
        Err(VerifyError::RateLimited { .. })
    ));
    common::cleanup(&url, &prefix).await;
}

/// Two engines spending leases of one budget, in turn, with a stopped clock (nothing refills):
/// a rate limit of 500 admits exactly 500 however the leases fall, and credits of 300 on a key
/// that also has a rate limit admit exactly 300 (the rate tokens a deferred credit lease took
/// are given back, not counted twice).
#[tokio::test]
async fn leased_budgets_admit_exactly_their_size_across_engines() {
    let Some(url) =
        common::shared_redis("leased_budgets_admit_exactly_their_size_across_engines").await
    else {
        return;
    };
    let prefix = common::unique_prefix();
    let (a, b, _clock) = two_instances(&url, &prefix);
    let limit = RateLimit {
        requests: 500,
        window_seconds: 3600,
    };
    let (limited, _) = common::create(
        &a,
        "owner",
        CreateKeyRequest {
            rate_limit: Some(limit),
            ..common::named("limited")
        },
    )
    .await;
    let (both, _) = common::create(
        &a,
        "owner",
        CreateKeyRequest {
            rate_limit: Some(RateLimit {
                requests: 2_000,
                window_seconds: 3600,
            }),
            credits: Some(Credits {
                limit: 300,
                refill_seconds: None,
            }),
            ..common::named("both")
        },
    )
    .await;
    for (key, size) in [(&limited, 500), (&both, 300)] {
        let key = key.expose_secret();
        let mut admitted = 0;
        for i in 0..1_000 {
            let engine = if (i / 7) % 2 == 0 { &a } else { &b };
            match verify(engine, key).await {
                Ok(_) => admitted += 1,
                Err(VerifyError::RateLimited { .. } | VerifyError::UsageExhausted { .. }) => {}
                Err(e) => panic!("{e:?}"),
            }
            // Leases ahead run in the background.
            tokio::task::yield_now().await;
        }
        assert_eq!(admitted, size);
    }
    common::cleanup(&url, &prefix).await;
}

/// Requests costing 7 credits on two engines spend whole costs only, never past 1 000 credits;
/// the credits a lease left behind are then spent by requests costing 1, to exactly 1 000.
#[tokio::test]
async fn credits_cost_is_spent_whole_and_never_past_the_balance() {
    let Some(url) =
        common::shared_redis("credits_cost_is_spent_whole_and_never_past_the_balance").await
    else {
        return;
    };
    let prefix = common::unique_prefix();
    let (a, b, _clock) = two_instances(&url, &prefix);
    let (key, _) = common::create(
        &a,
        "owner",
        CreateKeyRequest {
            credits: Some(Credits {
                limit: 1_000,
                refill_seconds: None,
            }),
            ..common::named("priced")
        },
    )
    .await;
    let key = key.expose_secret();
    let mut spent = 0;
    for (cost, rounds) in [(7, 400), (1, 100)] {
        for i in 0..rounds {
            let engine = if (i / 5) % 2 == 0 { &a } else { &b };
            let ctx = VerifyContext::default().with_cost(cost);
            match engine.verify(key, &ScopeRequirement::none(), &ctx).await {
                Ok(_) => spent += cost,
                Err(VerifyError::UsageExhausted { .. }) => {}
                Err(e) => panic!("{e:?}"),
            }
            tokio::task::yield_now().await;
        }
        assert!(spent <= 1_000, "{spent} credits spent of 1 000");
    }
    assert_eq!(spent, 1_000);
    common::cleanup(&url, &prefix).await;
}

#[tokio::test]
async fn credits_are_exact_shared_and_refill() {
    let Some(url) = common::shared_redis("credits_are_exact_shared_and_refill").await else {
        return;
    };
    let prefix = common::unique_prefix();
    let (a, b, clock) = two_instances(&url, &prefix);
    let req = CreateKeyRequest {
        credits: Some(Credits {
            limit: 4,
            refill_seconds: Some(3600),
        }),
        ..common::named("metered")
    };
    let (key, id) = common::create(&a, "owner", req).await;
    let key = key.expose_secret();
    let forged = common::wrong_secret(&keyward_core::ApiKey::new(key.to_owned()));
    assert!(verify(&a, &forged).await.is_err());
    for i in 0..4 {
        let engine = if i % 2 == 0 { &a } else { &b };
        verify(engine, key).await.unwrap();
    }
    let err = verify(&a, key).await.unwrap_err();
    assert!(matches!(err, VerifyError::UsageExhausted { .. }), "{err:?}");
    assert_eq!(err.code().status(), 429);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(3600)));
    assert!(matches!(
        verify(&b, key).await,
        Err(VerifyError::UsageExhausted { .. })
    ));

    // Usage is recorded and visible in the key view.
    a.flush_usage().await.unwrap();
    b.flush_usage().await.unwrap();
    let view = a.get_key(&Actor::admin_for("owner"), &id).await.unwrap();
    assert_eq!(view.usage.request_count, 4);
    assert_eq!((view.usage.credits_period, view.usage.credits_used), (0, 4));

    // Next period: a full allowance again, exactly.
    clock.advance(time::Duration::seconds(3600));
    for _ in 0..4 {
        verify(&b, key).await.unwrap();
    }
    assert!(matches!(
        verify(&a, key).await,
        Err(VerifyError::UsageExhausted { .. })
    ));
    a.flush_usage().await.unwrap();
    b.flush_usage().await.unwrap();
    let view = a.get_key(&Actor::admin_for("owner"), &id).await.unwrap();
    assert_eq!(view.usage.request_count, 8);
    assert_eq!((view.usage.credits_period, view.usage.credits_used), (1, 4));
    common::cleanup(&url, &prefix).await;
}

#[tokio::test]
async fn credits_resume_from_stored_usage_when_the_counter_is_gone() {
    let Some(url) = common::shared_redis("credits_resume_from_stored_usage").await else {
        return;
    };
    let prefix = common::unique_prefix();
    let backend = RedisBackend::connect(&url, &prefix).unwrap();
    let clock = common::manual_clock();
    let a = common::engine(backend.store.clone(), &backend, clock.clone());
    let req = CreateKeyRequest {
        credits: Some(Credits {
            limit: 3,
            refill_seconds: None,
        }),
        ..common::named("m")
    };
    let (key, id) = common::create(&a, "owner", req).await;
    let key = key.expose_secret();
    verify(&a, key).await.unwrap();
    verify(&a, key).await.unwrap();
    a.flush_usage().await.unwrap();
    // The Redis counter is lost (eviction, flush): the ledger re-seeds from the stored usage.
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let _: i64 = redis::cmd("DEL")
        .arg(format!("{{{prefix}:cr:{id}}}"))
        .query_async(&mut c)
        .await
        .unwrap();
    a.clear_cache();
    verify(&a, key).await.unwrap();
    assert!(matches!(
        verify(&a, key).await,
        Err(VerifyError::UsageExhausted { retry_after: None })
    ));
    common::cleanup(&url, &prefix).await;
}

#[tokio::test]
async fn nonces_are_single_use_per_namespace_and_expire() {
    let Some(url) = common::shared_redis("nonces_are_single_use").await else {
        return;
    };
    let prefix = common::unique_prefix();
    let backend = RedisBackend::connect(&url, &prefix).unwrap();
    let now = time::OffsetDateTime::now_utc();
    let ttl = Duration::from_millis(300);
    let n = &backend.nonces;
    assert!(
        n.check_and_store("KEYAAAAAAAAA", "nonce-1", ttl, now)
            .await
            .unwrap()
    );
    assert!(
        !n.check_and_store("KEYAAAAAAAAA", "nonce-1", ttl, now)
            .await
            .unwrap()
    );
    assert!(
        n.check_and_store("KEYBBBBBBBBB", "nonce-1", ttl, now)
            .await
            .unwrap()
    );
    assert!(
        n.check_and_store("KEYAAAAAAAAA", "nonce-2", ttl, now)
            .await
            .unwrap()
    );
    // Long nonces are kept as their hash: still single use, and distinct from each other.
    let long = "x".repeat(300);
    assert!(
        n.check_and_store("KEYAAAAAAAAA", &long, ttl, now)
            .await
            .unwrap()
    );
    assert!(
        !n.check_and_store("KEYAAAAAAAAA", &long, ttl, now)
            .await
            .unwrap()
    );
    assert!(
        n.check_and_store("KEYAAAAAAAAA", &format!("{long}y"), ttl, now)
            .await
            .unwrap()
    );
    // Concurrent replays: exactly one wins.
    let wins = futures::future::join_all(
        (0..20).map(|_| n.check_and_store("KEYCCCCCCCCC", "race", ttl, now)),
    )
    .await;
    assert_eq!(
        wins.into_iter().filter(|r| matches!(r, Ok(true))).count(),
        1
    );
    // After the TTL, Redis has forgotten it.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        n.check_and_store("KEYAAAAAAAAA", "nonce-1", ttl, now)
            .await
            .unwrap()
    );
    common::cleanup(&url, &prefix).await;
}

/// Review: a key holder could fill Redis with nonces. One namespace (key) holds a bounded
/// number of live nonces; past it that key is refused (`LimitReached`, answered `429`), while a
/// replay is still a replay and other keys are untouched.
#[tokio::test]
async fn nonces_are_bounded_per_namespace() {
    use keyward_core::store::StoreErrorKind;
    let Some(url) = common::shared_redis("nonces_are_bounded_per_namespace").await else {
        return;
    };
    let prefix = common::unique_prefix();
    let n = keyward_redis::RedisNonceStore::new(&keyward_redis::RedisConfig::new(&url, &prefix))
        .unwrap()
        .max_per_namespace(3);
    let now = time::OffsetDateTime::now_utc();
    let ttl = Duration::from_millis(400);
    for i in 0..3 {
        assert!(
            n.check_and_store("KEYAAAAAAAAA", &format!("n{i}"), ttl, now)
                .await
                .unwrap()
        );
    }
    let full = n.check_and_store("KEYAAAAAAAAA", "n3", ttl, now).await;
    assert_eq!(full.unwrap_err().kind(), StoreErrorKind::LimitReached);
    assert!(
        !n.check_and_store("KEYAAAAAAAAA", "n0", ttl, now)
            .await
            .unwrap(),
        "a replay"
    );
    assert!(
        n.check_and_store("KEYBBBBBBBBB", "n0", ttl, now)
            .await
            .unwrap()
    );
    // The window passes: room again.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        n.check_and_store("KEYAAAAAAAAA", "n3", ttl, now)
            .await
            .unwrap()
    );
    common::cleanup(&url, &prefix).await;
}

/// Two instances share one failure budget per client address through Redis: failures split
/// between them throttle the address on both, and a key each has cached still verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_on_two_instances_share_one_budget() {
    use keyward_core::throttle::FailureThrottle;
    let Some(url) = common::shared_redis("failures_on_two_instances_share_one_budget").await else {
        return;
    };
    let prefix = common::unique_prefix();
    let engine = |backend: &RedisBackend| {
        backend
            .wire(keyward_core::Keyward::builder(
                backend.store.clone(),
                keyward_core::Keyring::insecure_test_keyring(),
            ))
            .failure_throttle(FailureThrottle {
                max_failures: 10,
                window: Duration::from_secs(60),
                capacity: 1000,
            })
            .build()
            .unwrap()
    };
    let (backend_a, backend_b) = (
        RedisBackend::connect(&url, &prefix).unwrap(),
        RedisBackend::connect(&url, &prefix).unwrap(),
    );
    let (a, b) = (engine(&backend_a), engine(&backend_b));
    let (valid, _) = common::create(&a, "owner", common::named("shared-budget")).await;
    let valid = valid.expose_secret().to_owned();
    let ctx = VerifyContext::with_ip("198.51.100.77".parse().unwrap());
    let none = ScopeRequirement::none();
    a.verify(&valid, &none, &ctx).await.unwrap();
    b.verify(&valid, &none, &ctx).await.unwrap();
    let made_up = || {
        keyward_core::KeyFormat::default()
            .generate()
            .unwrap()
            .api_key
            .expose_secret()
            .to_owned()
    };
    // Five failures on each: neither alone is over ten.
    for k in [&a, &b] {
        for _ in 0..5 {
            assert!(matches!(
                k.verify(&made_up(), &none, &ctx).await,
                Err(VerifyError::Invalid(InvalidReason::Unknown))
            ));
        }
    }
    for k in [&a, &b] {
        assert!(
            matches!(
                k.verify(&made_up(), &none, &ctx).await,
                Err(VerifyError::Throttled { .. })
            ),
            "the shared count is over the budget"
        );
        k.verify(&valid, &none, &ctx)
            .await
            .expect("a cached key still verifies");
    }
    let elsewhere = VerifyContext::with_ip("198.51.100.78".parse().unwrap());
    assert!(matches!(
        a.verify(&made_up(), &none, &elsewhere).await,
        Err(VerifyError::Invalid(InvalidReason::Unknown))
    ));
    common::cleanup(&url, &prefix).await;
}
