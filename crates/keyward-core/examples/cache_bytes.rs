//! Bytes of resident memory per cached key: N keys with five scopes and no metadata are created
//! in the in-memory store, then each is verified once, filling the engine's cache; the RSS
//! growth over the verifications, divided by N, is what a cached key costs: its entry and its
//! place in the cache's maps. Usage is not recorded here: the usage batch (a last-used time and
//! a request count per key used since the last flush, about 100 B a key) is not the cache, and
//! a flush empties it. Linux only (`/proc/self/statm`).
//!
//! ```text
//! cargo run --release -p keyward-core --example cache_bytes -- 100000
//! ```
#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs
)]

use std::sync::Arc;
use std::time::Duration;

use keyward_core::management::CreateKeyRequest;
use keyward_core::memory::MemoryKeyStore;
use keyward_core::model::{LastUsedStrategy, Policy};
use keyward_core::{CacheConfig, Keyring, Keyward, ScopeRequirement, VerifyContext};

/// Resident set size in bytes.
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("resident pages");
    pages * 4096
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map_or(100_000, |a| a.parse().expect("N"));
    let cache = CacheConfig {
        capacity: n + 1,
        ttl: Duration::from_secs(3600),
        ..CacheConfig::default()
    };
    let kw = Keyward::builder(
        Arc::new(MemoryKeyStore::new()),
        Keyring::insecure_test_keyring(),
    )
    .cache(cache)
    .policy(Policy {
        last_used: LastUsedStrategy::Disabled,
        ..Policy::default()
    })
    .count_requests(false)
    .build()
    .expect("keyward");
    let scopes: Vec<String> = [
        "reports:read",
        "reports:write",
        "billing:read",
        "users:read",
        "audit:read",
    ]
    .map(str::to_owned)
    .to_vec();
    let mut keys = Vec::with_capacity(n);
    for i in 0..n {
        let req = CreateKeyRequest {
            name: format!("k{i}"),
            scopes: scopes.clone(),
            ..Default::default()
        };
        let created = kw
            .create_key(&format!("owner-{i}"), req)
            .await
            .expect("create");
        keys.push(created.api_key.expose_secret().to_owned());
    }
    let before = rss();
    let ctx = VerifyContext::default();
    for k in &keys {
        kw.verify(k, &ScopeRequirement::none(), &ctx)
            .await
            .expect("verify");
    }
    let after = rss();
    let stats = kw.cache_stats();
    println!(
        "{n} keys cached ({} entries): RSS {:.1} → {:.1} MiB, {} B per cached key (five scopes, no metadata)",
        stats.entries,
        before as f64 / 1048576.0,
        after as f64 / 1048576.0,
        after.saturating_sub(before) / n as u64,
    );
}
