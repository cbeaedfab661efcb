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
