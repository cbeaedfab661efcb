//! The usage flusher's guard writes what is batched when the application stops: dropped on a
//! multi-threaded runtime (on a worker or on the thread that runs `block_on`, as at the end of
//! `#[tokio::main]`), or shut down explicitly on a current-thread runtime.
#![cfg(feature = "tokio")]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use keyward_core::management::CreateKeyRequest;
use keyward_core::memory::MemoryKeyStore;
use keyward_core::store::KeyStore;
use keyward_core::{Keyring, Keyward, ScopeRequirement, VerifyContext};

/// A keyward over a store the test reads, one key created, and the key used once: its
/// last-used time and count are batched, not yet written.
async fn used() -> (Keyward, Arc<MemoryKeyStore>, keyward_core::KeyId, String) {
    let store = Arc::new(MemoryKeyStore::new());
    let kw = Keyward::builder(store.clone(), Keyring::insecure_test_keyring())
        .build()
        .unwrap();
    let req = CreateKeyRequest {
        name: "k".into(),
        ..Default::default()
    };
    let created = kw.create_key("o", req).await.unwrap();
    let key = created.api_key.expose_secret().to_owned();
    kw.verify(&key, &ScopeRequirement::none(), &VerifyContext::default())
        .await
        .unwrap();
    assert_eq!(kw.pending_usage(), 1);
    (kw, store, created.key.id, key)
}

async fn written(store: &MemoryKeyStore, id: &keyward_core::KeyId) -> bool {
    let r = store.get(id).await.unwrap().unwrap();
    r.last_used_at.is_some() && r.usage.request_count == 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_on_a_worker_it_flushes() {
    let (kw, store, id, _) = used().await;
    let flusher =
        keyward_core::maintenance::spawn_usage_flusher(kw.clone(), Duration::from_secs(3600));
    drop(flusher);
    assert_eq!(kw.pending_usage(), 0);
    assert!(written(&store, &id).await);
}

/// A request counted after the last flush, with its last-used time still fresh, leaves only
/// its count: the drop writes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_count_alone_is_flushed_too() {
    let (kw, store, id, raw) = used().await;
    kw.flush_usage().await.unwrap();
    assert_eq!(
        store.get(&id).await.unwrap().unwrap().usage.request_count,
        1
    );
    let flusher =
        keyward_core::maintenance::spawn_usage_flusher(kw.clone(), Duration::from_secs(3600));
    kw.verify(&raw, &ScopeRequirement::none(), &VerifyContext::default())
        .await
        .unwrap();
    assert_eq!(kw.pending_usage(), 1, "only a count");
    drop(flusher);
    assert_eq!(
        store.get(&id).await.unwrap().unwrap().usage.request_count,
        2
    );
}

#[test]
fn dropped_at_the_end_of_main_it_flushes() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    // As `#[tokio::main]`: the guard dies with main's future, on the thread that runs it.
    let (kw, store, id) = rt.block_on(async {
        let (kw, store, id, _) = used().await;
        let _flusher =
            keyward_core::maintenance::spawn_usage_flusher(kw.clone(), Duration::from_secs(3600));
        (kw, store, id)
    });
    assert_eq!(kw.pending_usage(), 0);
    assert!(rt.block_on(written(&store, &id)));
}

#[tokio::test(flavor = "current_thread")]
async fn on_a_current_thread_runtime_shutdown_flushes_and_a_drop_does_not_hang() {
    let (kw, store, id, _) = used().await;
    let flusher =
        keyward_core::maintenance::spawn_usage_flusher(kw.clone(), Duration::from_secs(3600));
    assert_eq!(flusher.shutdown().await, 1);
    assert!(written(&store, &id).await);
    // A drop here cannot wait for the store: it logs what it loses and returns.
    let req = CreateKeyRequest {
        name: "k2".into(),
        ..Default::default()
    };
    let other = kw.create_key("o", req).await.unwrap();
    kw.verify(
        other.api_key.expose_secret(),
        &ScopeRequirement::none(),
        &VerifyContext::default(),
    )
    .await
    .unwrap();
    drop(keyward_core::maintenance::spawn_usage_flusher(
        kw.clone(),
        Duration::from_secs(3600),
    ));
    assert_eq!(kw.pending_usage(), 1, "kept, for a later shutdown or flush");
}
