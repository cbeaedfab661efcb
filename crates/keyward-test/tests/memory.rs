//! The store conformance suite on the in-memory store: the reference the other stores match.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;

use keyward_core::KeyStore;
use keyward_core::memory::MemoryKeyStore;

async fn make() -> Arc<dyn KeyStore> {
    Arc::new(MemoryKeyStore::new())
}

keyward_test::store_suite!(make);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_all_on_memory() {
    keyward_test::store_suite::run_all(make).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_outbox_on_memory() {
    use keyward_core::webhook::WebhookOutbox;
    let store = Arc::new(MemoryKeyStore::with_outbox());
    let outbox: Arc<dyn WebhookOutbox> = store.clone();
    keyward_test::store_suite::case_webhook_outbox(store as Arc<dyn KeyStore>, outbox).await;
    let store = Arc::new(MemoryKeyStore::with_outbox());
    let outbox: Arc<dyn WebhookOutbox> = store.clone();
    keyward_test::store_suite::case_webhook_claims_are_exclusive(
        store as Arc<dyn KeyStore>,
        outbox,
    )
    .await;
    let store = Arc::new(MemoryKeyStore::with_outbox());
    let outbox: Arc<dyn WebhookOutbox> = store.clone();
    keyward_test::store_suite::case_webhook_retention(store as Arc<dyn KeyStore>, outbox).await;
}
