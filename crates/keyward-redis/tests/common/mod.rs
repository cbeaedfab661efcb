//! Test helpers: the shared Redis (skip locally, fail under `CI=true` when it is absent), a
//! random key prefix per test, a private `redis-server` child for outage tests, and engines.

#![allow(dead_code, unreachable_pub)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use keyward_core::clock::{Clock, ManualClock};
use keyward_core::key::KeyId;
use keyward_core::management::CreateKeyRequest;
use keyward_core::store::KeyStore;
use keyward_core::{ApiKey, CacheConfig, Keyring, Keyward};
use keyward_redis::{RedisBackend, RedisConfig};
use redis::AsyncCommands;

fn in_ci() -> bool {
    keyward_test::services::ci()
}

async fn answers(url: &str) -> bool {
    let Ok(client) = redis::Client::open(url) else {
        return false;
    };
    let ping = async {
        let mut c = client.get_multiplexed_async_connection().await?;
        redis::cmd("PING").query_async::<String>(&mut c).await
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(2), ping).await,
        Ok(Ok(_))
    )
}

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

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A `redis-server` child of this test, on its own port, never the shared one.
pub struct RedisChild {
    pub port: u16,
    child: Option<Child>,
}

impl RedisChild {
    /// Starts one on a free port, or `None` (loudly; a failure under CI) without the binary.
    pub async fn start(test: &str) -> Option<Self> {
        let mut me = Self {
            port: free_port(),
            child: None,
        };
        match me.spawn().await {
            Ok(()) => Some(me),
            Err(e) => {
                assert!(
                    !in_ci(),
                    "{test}: cannot start redis-server ({e}) and CI=true"
                );
                eprintln!("######## SKIPPED {test}: cannot start redis-server: {e}");
                None
            }
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    async fn spawn(&mut self) -> Result<(), String> {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(["--daemonize", "no", "--loglevel", "warning"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| e.to_string())?;
        self.child = Some(child);
        for _ in 0..200 {
            if answers(&self.url()).await {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        Err("redis-server did not answer".into())
    }

    /// Kills the server (like a crash) and waits until the port is closed.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Freezes (`SIGSTOP`) or thaws (`SIGCONT`) the server: a Redis that accepts connections
    /// but never answers.
    pub fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().expect("running").id().to_string();
        let status = Command::new("kill")
            .args([sig, &pid])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Starts it again on the same port.
    pub async fn restart(&mut self) {
        self.spawn().await.expect("restart redis-server");
    }
}

impl Drop for RedisChild {
    fn drop(&mut self) {
        self.kill();
    }
}

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
