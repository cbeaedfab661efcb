//! Who may do what (DESIGN.md §11): the shared management suite
//! (`keyward_test::management_suite`) against `keyward serve`, the same cases keyward-axum and
//! keyward-actix pass, over SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use common::{Db, Env, Server};
use keyward_test::management_suite::{MgmtApp, SERVER_FLAGS};

const ADMIN_TOKEN: &str = "management-suite-admin-token-0123456789";

/// Keeps the server and its database for as long as the case runs; drops a PostgreSQL
/// database after the server.
struct Running {
    server: Option<Server>,
    env: Env,
}

impl Drop for Running {
    fn drop(&mut self) {
        drop(self.server.take());
        if self.env.db.label == "postgres" {
            self.env.db.drop_postgres();
        }
    }
}

async fn serve(env: Env) -> MgmtApp {
    let running = tokio::task::spawn_blocking(move || {
        let server = env.serve(SERVER_FLAGS, &[("KEYWARD_ADMIN_TOKEN", ADMIN_TOKEN)]);
        Running {
            server: Some(server),
            env,
        }
    })
    .await
    .expect("server starts");
    let base = running.server.as_ref().map(|s| s.base.clone()).unwrap();
    MgmtApp::server(base, ADMIN_TOKEN, Arc::new(Mutex::new(running)))
}

async fn sqlite() -> Option<MgmtApp> {
    Some(serve(Env::sqlite()).await)
}

keyward_test::management_suite!(app = sqlite);

mod postgres {
    use super::*;

    static NEXT: AtomicU32 = AtomicU32::new(0);

    async fn postgres() -> Option<MgmtApp> {
        let name = format!("mgmt{}", NEXT.fetch_add(1, Ordering::Relaxed));
        let db = tokio::task::spawn_blocking(move || Db::postgres(&name))
            .await
            .expect("psql")?;
        Some(serve(Env::with(db)).await)
    }

    keyward_test::management_suite!(app = postgres);
}
