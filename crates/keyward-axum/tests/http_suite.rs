//! The shared black-box HTTP suite (`keyward_test::http_suite`) against an axum app served on
//! a real 127.0.0.1 socket, over the in-memory store.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::sync::Arc;

use keyward_core::KeyStore;
use keyward_core::memory::MemoryKeyStore;

async fn memory() -> Arc<dyn KeyStore> {
    Arc::new(MemoryKeyStore::new())
}

keyward_test::http_suite!(store = memory, spawn = common::spawn);

/// Who may do what (DESIGN.md §11), the same cases as the actix-web/axum twin and the server.
mod management {
    use super::*;
    use keyward_test::management_suite::MgmtApp;

    async fn app() -> Option<MgmtApp> {
        Some(MgmtApp::adapter(memory().await, common::spawn).await)
    }

    keyward_test::management_suite!(app = app);
}
