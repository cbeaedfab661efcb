//! Test helpers: the shared Redis (skip locally, fail under `CI=true` when it is absent), a
//! random key prefix per test, a private `redis-server` child for outage tests, and engines.

#![allow(dead_code, unreachable_pub, unused_imports)]

use std::sync::Arc;
use std::time::Duration;

use keyward_core::clock::{Clock, ManualClock};
use keyward_core::key::KeyId;
use keyward_core::management::CreateKeyRequest;
use keyward_core::store::KeyStore;
use keyward_core::{ApiKey, CacheConfig, Keyring, Keyward};
use keyward_redis::{RedisBackend, RedisConfig};
use redis::AsyncCommands;

/// The shared Redis URL, or `None` (with a loud message) when it is absent locally; under
/// `CI=true` an absent Redis fails the test (`keyward_test::services`).
pub async fn shared_redis(test: &str) -> Option<String> {
    let url = keyward_test::services::redis_url().await;
    if url.is_none() {
        eprintln!("######## SKIPPED {test}: no Redis");
    }
    url
}

/// A key prefix nobody else uses.
pub fn unique_prefix() -> String {
    format!(
        "kwtest:{}",
        KeyId::generate().map(|k| k.to_string()).unwrap_or_default()
    )
}

/// Deletes every key under `prefix` (they all start with `{prefix:`).
pub async fn cleanup(url: &str, prefix: &str) {
    let Ok(client) = redis::Client::open(url) else {
        return;
    };
    let Ok(mut c) = client.get_multiplexed_async_connection().await else {
        return;
    };
    let keys: Vec<String> = match c.keys(format!("{{{prefix}:*")).await {
        Ok(k) => k,
        Err(_) => return,
    };
    for k in keys {
        let _: Result<i64, _> = c.del(k).await;
    }
}

pub use keyward_test::services::{RedisChild, free_port};

/// An engine over `store`, with every Redis role of `backend`, a long cache TTL (so only an
/// invalidation can explain a changed answer) and a clock.
pub fn engine(store: Arc<dyn KeyStore>, backend: &RedisBackend, clock: Arc<dyn Clock>) -> Keyward {
    backend
        .wire(Keyward::builder(store, Keyring::insecure_test_keyring()))
        .cache(CacheConfig {
            capacity: 1000,
            ttl: Duration::from_secs(3600),
            ..CacheConfig::default()
        })
        .clock(clock)
        .build()
        .expect("engine")
}

/// A manual clock at a fixed, microsecond-aligned instant.
pub fn manual_clock() -> Arc<ManualClock> {
    let t = time::OffsetDateTime::from_unix_timestamp(1_900_000_000).expect("time");
    Arc::new(ManualClock::new(t))
}

/// Creates a key through the management service.
pub async fn create(k: &Keyward, owner: &str, req: CreateKeyRequest) -> (ApiKey, KeyId) {
    let created = k.create_key(owner, req).await.expect("create key");
    (created.api_key, created.key.id)
}

/// A request with just a name.
pub fn named(name: &str) -> CreateKeyRequest {
    CreateKeyRequest {
        name: name.into(),
        ..CreateKeyRequest::default()
    }
}

/// `key` with its secret replaced (same key id, valid checksum, wrong secret).
pub fn wrong_secret(key: &ApiKey) -> String {
    const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let raw = key.expose_secret();
    let cut = raw.rfind('_').expect("key shape") + 1;
    let secret_len = raw.len() - cut - 6;
    let mut body = raw[..cut].to_owned();
    body.push_str(&"x".repeat(secret_len));
    let mut v = u64::from(crc32fast::hash(body.as_bytes()));
    let mut check = [b'0'; 6];
    for slot in check.iter_mut().rev() {
        *slot = BASE62[usize::try_from(v % 62).unwrap_or(0)];
        v /= 62;
    }
    body.push_str(std::str::from_utf8(&check).expect("ascii"));
    body
}

/// Config for `url` under `prefix` with the default timeouts.
pub fn config(url: &str, prefix: &str) -> RedisConfig {
    RedisConfig::new(url, prefix)
}
