//! The shared black-box HTTP suite against the actix test app over the SQL store
//! (`keyward-sea-orm`): SQLite (a fresh file per test) and PostgreSQL (skipped loudly when the
//! server is not there, failed under `CI=true`).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::sync::Arc;

use keyward_core::KeyStore;
use keyward_sea_orm::{SeaOrmKeyStore, Tables};

/// Each test gets its own SQLite file; the directory goes away with the process's temp files.
async fn sqlite() -> Arc<dyn KeyStore> {
    let dir = tempfile::Builder::new()
        .prefix("keyward-actix-")
        .tempdir()
        .expect("temp dir");
    let path = dir.keep().join("keys.db");
    let store = SeaOrmKeyStore::connect(&format!("sqlite://{}?mode=rwc", path.display()))
        .await
        .expect("sqlite connects");
    store.migrate().await.expect("sqlite migrates");
    Arc::new(store)
}

/// Tables with this adapter's own prefix in the shared `test` database; every case uses owners
/// of its own, so runs do not disturb each other.
static PG_MIGRATED: tokio::sync::Mutex<bool> = tokio::sync::Mutex::const_new(false);

async fn postgres() -> Option<Arc<dyn KeyStore>> {
    let url = keyward_test::services::postgres_url().await?;
    let store = SeaOrmKeyStore::connect(&url)
        .await
        .expect("postgres connects");
    let tables = Tables::with_prefix("kwactix_").expect("prefix");
    let store = SeaOrmKeyStore::with_tables(store.connection().clone(), tables);
    let mut migrated = PG_MIGRATED.lock().await;
    if !*migrated {
        store.migrate().await.expect("postgres migrates");
        *migrated = true;
    }
    Some(Arc::new(store))
}

mod sqlite {
    use super::*;
    keyward_test::http_suite!(store = sqlite, spawn = common::spawn_detached);

    mod management {
        use super::*;
        async fn app() -> Option<keyward_test::management_suite::MgmtApp> {
            Some(
                keyward_test::management_suite::MgmtApp::adapter(
                    sqlite().await,
                    common::spawn_detached,
                )
                .await,
            )
        }
        keyward_test::management_suite!(app = app);
    }
}

mod postgres {
    use super::*;
    keyward_test::http_suite!(store = postgres, spawn = common::spawn_detached);

    mod management {
        use super::*;
        async fn app() -> Option<keyward_test::management_suite::MgmtApp> {
            Some(
                keyward_test::management_suite::MgmtApp::adapter(
                    postgres().await?,
                    common::spawn_detached,
                )
                .await,
            )
        }
        keyward_test::management_suite!(app = app);
    }
}
