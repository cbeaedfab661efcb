//! Verification throughput with Redis on the request path (shared Redis at 127.0.0.1:6379, or
//! `KEYWARD_TEST_REDIS_URL`): cache hits with no Redis role, with the Redis rate limiter, with
//! limiter + credits, and cache misses served by `RedisKeyStore`. Prints requests per second
//! for 32 concurrent callers; skips (exit 0) when Redis is absent.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    clippy::print_stdout
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use keyward_core::key::KeyId;
use keyward_core::management::CreateKeyRequest;
use keyward_core::model::{Credits, RateLimit};
use keyward_core::{CacheConfig, Keyring, Keyward, ScopeRequirement, VerifyContext};
use keyward_redis::RedisBackend;

const CALLERS: usize = 32;

fn run_for() -> Duration {
    std::env::var("KEYWARD_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(Duration::from_secs(2), Duration::from_secs_f64)
}

async fn measure(name: &str, k: &Keyward, key: &str) {
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + run_for();
    let started = Instant::now();
    let tasks: Vec<_> = (0..CALLERS)
        .map(|_| {
            let (k, key, done) = (k.clone(), key.to_owned(), Arc::clone(&done));
            tokio::spawn(async move {
                let req = ScopeRequirement::none();
                let ctx = VerifyContext::default();
                while Instant::now() < deadline {
                    k.verify(&key, &req, &ctx).await.expect("verify");
                    done.fetch_add(1, Ordering::Relaxed);
                    // A cache hit never awaits anything pending; yield as a server's socket
                    // reads would, so the Redis connection tasks get to run.
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let n = done.load(Ordering::Relaxed);
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{name:<44} {:>10.0} verifies/s  ({n} in {secs:.2} s, {CALLERS} callers)",
        n as f64 / secs
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let Some(url) = keyward_test::services::redis_url().await else {
            println!("verify_redis: skipped, no Redis");
            return;
        };
        let prefix = format!("kwbench:{}", KeyId::generate().unwrap());
        let redis = RedisBackend::connect(&url, &prefix).unwrap();
        let build = |cache: CacheConfig| {
            redis
                .wire(Keyward::builder(
                    redis.store.clone(),
                    Keyring::insecure_test_keyring(),
                ))
                .cache(cache)
                .build()
                .unwrap()
        };
        let cached = build(CacheConfig::default());
        let uncached = build(CacheConfig {
            capacity: 0,
            ttl: Duration::from_secs(1),
            ..CacheConfig::default()
        });
        let _listener = redis.spawn_listener(cached.clone());
        let make = |req: CreateKeyRequest| {
            let cached = cached.clone();
            async move {
                cached
                    .create_key("bench", req)
                    .await
                    .unwrap()
                    .api_key
                    .expose_secret()
                    .to_owned()
            }
        };
        let named = || CreateKeyRequest {
            name: "bench".into(),
            ..CreateKeyRequest::default()
        };
        let plain = make(named()).await;
        let huge = RateLimit {
            requests: u32::MAX,
            window_seconds: 1,
        };
        let limited = make(CreateKeyRequest {
            rate_limit: Some(huge),
            ..named()
        })
        .await;
        let both = make(CreateKeyRequest {
            rate_limit: Some(huge),
            credits: Some(Credits {
                limit: u64::MAX / 2,
                refill_seconds: None,
            }),
            ..named()
        })
        .await;

        measure("cache hit, no Redis on the path", &cached, &plain).await;
        measure("cache hit + Redis rate limiter", &cached, &limited).await;
        measure("cache hit + Redis limiter + credits", &cached, &both).await;
        measure("no cache: RedisKeyStore get per verify", &uncached, &plain).await;
        measure("no cache: store + limiter + credits", &uncached, &both).await;
        let fronted = redis.cache_in_front(
            Arc::new(keyward_core::memory::MemoryKeyStore::new()),
            Duration::from_secs(60),
        );
        let fronted = Keyward::builder(Arc::new(fronted), Keyring::insecure_test_keyring())
            .cache(CacheConfig {
                capacity: 0,
                ttl: Duration::from_secs(1),
                ..CacheConfig::default()
            })
            .count_requests(false)
            .build()
            .unwrap();
        let fronted_key = fronted.create_key("bench", named()).await.unwrap();
        measure(
            "no cache: RedisCachedStore hit per verify",
            &fronted,
            fronted_key.api_key.expose_secret(),
        )
        .await;
        let _ = cached.flush_usage().await;
        let _ = uncached.flush_usage().await;
    });
}
