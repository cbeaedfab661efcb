//! Outages, against a `redis-server` this test starts on its own port (never the shared one):
//! verification works, fails closed with `Unavailable` while Redis is down (the store, the
//! limiter, the ledger and the nonce store never silently allow), and recovers by itself when
//! Redis is back, with the same pools. The invalidation listener notices the loss, clears the
//! local cache and resubscribes.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    clippy::print_stdout
)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use keyward_core::clock::SystemClock;
use keyward_core::management::CreateKeyRequest;
use keyward_core::memory::MemoryKeyStore;
use keyward_core::model::{Credits, RateLimit};
use keyward_core::store::{KeyStore, NonceStore, StoreErrorKind};
use keyward_core::{ErrorCode, ScopeRequirement, VerifyContext, VerifyError};
use keyward_redis::{ListenerOptions, RedisBackend};

async fn verify(
    k: &keyward_core::Keyward,
    key: &str,
) -> Result<keyward_core::Principal, VerifyError> {
    k.verify(key, &ScopeRequirement::none(), &VerifyContext::default())
        .await
}

/// Retries `verify` until Redis answers again (the pool reconnects lazily); returns the answer.
async fn until_answered(k: &keyward_core::Keyward, key: &str) -> Result<Duration, VerifyError> {
    let started = Instant::now();
    loop {
        match verify(k, key).await {
            Ok(_) => return Ok(started.elapsed()),
            Err(VerifyError::Unavailable(_)) => {}
            Err(e) => return Err(e),
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "never recovered"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_store_fails_closed_and_recovers() {
    let Some(mut server) = common::RedisChild::start("redis_store_fails_closed_and_recovers").await
    else {
        return;
    };
    let backend = RedisBackend::connect(&server.url(), "kwfault").unwrap();
    // Cache off: every verify reads the store.
    let k = backend
        .wire(keyward_core::Keyward::builder(
            backend.store.clone(),
            keyward_core::Keyring::insecure_test_keyring(),
        ))
        .cache(keyward_core::CacheConfig {
            capacity: 0,
            ttl: Duration::from_secs(1),
            ..keyward_core::CacheConfig::default()
        })
        .build()
        .unwrap();
    let (key, _) = common::create(&k, "owner", common::named("k")).await;
    let key = key.expose_secret();
    verify(&k, key).await.unwrap();

    server.kill();
    let started = Instant::now();
    let err = verify(&k, key).await.unwrap_err();
    println!(
        "verify with Redis down failed after {:?}",
        started.elapsed()
    );
    assert!(matches!(err, VerifyError::Unavailable(_)), "{err:?}");
    assert_eq!(err.code(), ErrorCode::AuthUnavailable);
    assert_eq!(err.code().status(), 503);
    assert_eq!(
        backend.store.ping().await.unwrap_err().kind(),
        StoreErrorKind::Unavailable
    );
    assert!(
        k.create_key("owner", common::named("during outage"))
            .await
            .is_err()
    );
    // A second call while down still fails closed (and does not hang on a dead connection).
    assert!(matches!(
        verify(&k, key).await,
        Err(VerifyError::Unavailable(_))
    ));

    server.restart().await;
    // This Redis keeps nothing on disk, so the key is gone: the store answers "unknown" (an
    // answer, not "unavailable") through the same pool, without rebuilding anything.
    let started = Instant::now();
    let err = until_answered(&k, key).await.unwrap_err();
    println!(
        "store answered again {:?} after Redis restarted",
        started.elapsed()
    );
    assert!(
        matches!(
            err,
            VerifyError::Invalid(keyward_core::engine::InvalidReason::Unknown)
        ),
        "{err:?}"
    );
    backend.store.ping().await.unwrap();
    let (key2, _) = common::create(&k, "owner", common::named("after")).await;
    verify(&k, key2.expose_secret()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limiter_ledger_and_nonces_never_allow_while_redis_is_down() {
    let Some(mut server) = common::RedisChild::start("limiter_ledger_and_nonces_never_allow").await
    else {
        return;
    };
    let backend = RedisBackend::connect(&server.url(), "kwfault").unwrap();
    // The key store stays up (in memory); only the Redis roles fail.
    let store: Arc<dyn KeyStore> = Arc::new(MemoryKeyStore::new());
    let k = common::engine(store, &backend, Arc::new(SystemClock));
    let limited = CreateKeyRequest {
        rate_limit: Some(RateLimit {
            requests: 1000,
            window_seconds: 1,
        }),
        ..common::named("limited")
    };
    let metered = CreateKeyRequest {
        credits: Some(Credits {
            limit: 1000,
            refill_seconds: None,
        }),
        ..common::named("m")
    };
    let (limited, _) = common::create(&k, "owner", limited).await;
    let (metered, _) = common::create(&k, "owner", metered).await;
    let (plain, _) = common::create(&k, "owner", common::named("plain")).await;
    verify(&k, limited.expose_secret()).await.unwrap();
    verify(&k, metered.expose_secret()).await.unwrap();

    server.kill();
    assert!(matches!(
        verify(&k, limited.expose_secret()).await,
        Err(VerifyError::Unavailable(_))
    ));
    assert!(matches!(
        verify(&k, metered.expose_secret()).await,
        Err(VerifyError::Unavailable(_))
    ));
    let nonce = backend
        .nonces
        .check_and_store(
            "KEYAAAAAAAAA",
            "n",
            Duration::from_secs(5),
            time::OffsetDateTime::now_utc(),
        )
        .await;
    assert_eq!(nonce.unwrap_err().kind(), StoreErrorKind::Unavailable);
    // A key without limits or credits needs no Redis role on the request path.
    verify(&k, plain.expose_secret()).await.unwrap();

    server.restart().await;
    until_answered(&k, limited.expose_secret()).await.unwrap();
    until_answered(&k, metered.expose_secret()).await.unwrap();
    assert!(
        backend
            .nonces
            .check_and_store(
                "KEYAAAAAAAAA",
                "n",
                Duration::from_secs(5),
                time::OffsetDateTime::now_utc()
            )
            .await
            .unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listener_clears_cache_on_loss_and_resubscribes() {
    let Some(mut server) = common::RedisChild::start("listener_clears_cache_on_loss").await else {
        return;
    };
    let url = server.url();
    let backend_a = RedisBackend::connect(&url, "kwfault").unwrap();
    let backend_b = RedisBackend::connect(&url, "kwfault").unwrap();
    // Both instances share an in-memory store, so verification itself survives the outage.
    let store: Arc<dyn KeyStore> = Arc::new(MemoryKeyStore::new());
    let a = common::engine(store.clone(), &backend_a, Arc::new(SystemClock));
    let b = common::engine(store, &backend_b, Arc::new(SystemClock));
    let mut options = ListenerOptions::default();
    options.ping_interval = Duration::from_millis(200);
    options.min_backoff = Duration::from_millis(20);
    options.max_backoff = Duration::from_millis(200);
    let listener = backend_b.spawn_listener_with(b.clone(), options);
    assert!(listener.wait_subscribed(Duration::from_secs(5)).await);
    let (key, id) = common::create(&a, "owner", common::named("k")).await;
    let key = key.expose_secret();
    // A create publishes an invalidation of the new id (other instances may remember it as
    // unknown); it may reach B after B cached the key, so verify until the entry stays.
    let started = Instant::now();
    loop {
        verify(&b, key).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        if b.cache_stats().entries == 1 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "B never kept the key cached"
        );
    }
    // Stays subscribed across several pings.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(listener.is_subscribed());

    server.kill();
    assert!(listener.wait_unsubscribed(Duration::from_secs(5)).await);
    assert_eq!(
        b.cache_stats().entries,
        0,
        "the cache is cleared when invalidations may be missed"
    );
    verify(&b, key).await.unwrap(); // refilled from the store, bounded by the TTL

    server.restart().await;
    assert!(
        listener.wait_subscribed(Duration::from_secs(10)).await,
        "resubscribed by itself"
    );
    assert_eq!(
        b.cache_stats().entries,
        0,
        "entries filled while unsubscribed are dropped on resubscribe"
    );
    verify(&b, key).await.unwrap();
    // Invalidations flow again: revoke through A reaches B.
    a.revoke_key(&keyward_core::Actor::admin_for("owner"), &id, None)
        .await
        .unwrap();
    let started = Instant::now();
    loop {
        match verify(&b, key).await {
            Err(VerifyError::Invalid(_)) => break,
            Ok(_) => {}
            Err(e) => panic!("unexpected {e:?}"),
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "invalidation lost after resubscribe"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    listener.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_redis_times_out_closed_and_recovers() {
    let Some(server) =
        common::RedisChild::start("a_hung_redis_times_out_closed_and_recovers").await
    else {
        return;
    };
    let mut config = keyward_redis::RedisConfig::new(server.url(), "kwfault");
    config.timeout = Duration::from_millis(300);
    let backend = RedisBackend::with_config(&config).unwrap();
    let k = backend
        .wire(keyward_core::Keyward::builder(
            backend.store.clone(),
            keyward_core::Keyring::insecure_test_keyring(),
        ))
        .cache(keyward_core::CacheConfig {
            capacity: 0,
            ttl: Duration::from_secs(1),
            ..keyward_core::CacheConfig::default()
        })
        .build()
        .unwrap();
    let (key, _) = common::create(&k, "owner", common::named("k")).await;
    let key = key.expose_secret();
    verify(&k, key).await.unwrap();

    server.signal("-STOP");
    let started = Instant::now();
    let err = verify(&k, key).await.unwrap_err();
    println!(
        "verify against a hung Redis failed after {:?} (timeout 300 ms)",
        started.elapsed()
    );
    assert!(matches!(err, VerifyError::Unavailable(_)), "{err:?}");
    assert!(matches!(
        verify(&k, key).await,
        Err(VerifyError::Unavailable(_))
    ));

    server.signal("-CONT");
    let took = until_answered(&k, key).await.unwrap();
    println!("recovered {took:?} after Redis resumed");
}
