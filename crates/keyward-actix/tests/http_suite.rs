//! The shared black-box HTTP suite (`keyward_test::http_suite`) against the actix test app
//! served on a real 127.0.0.1 socket (actix `HttpServer` in a thread of its own), over the
//! in-memory store.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::sync::Arc;

use keyward_core::KeyStore;
use keyward_core::memory::MemoryKeyStore;

async fn memory() -> Arc<dyn KeyStore> {
    Arc::new(MemoryKeyStore::new())
}

keyward_test::http_suite!(store = memory, spawn = common::spawn_detached);
