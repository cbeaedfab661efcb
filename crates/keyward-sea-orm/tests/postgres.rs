//! The store on a real PostgreSQL (`KEYWARD_TEST_PG_URL`, default the local `test` database):
//! the conformance suite in a database this test creates (ICU English collation) and drops, the
//! checked-in SQL applied with `psql`, an outage through a proxy, and a closed port. Skips
//! loudly when PostgreSQL is not running; fails under `CI=true`.
#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::process::Command;

use keyward_test::services;
use support::{Server, TempDb};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn suite_on_postgres() {
    let Some(url) = services::postgres_url().await else {
        return;
    };
    let tmp = TempDb::create(Server::Postgres, &url).await;
    let db = tmp.connect().await;
    tmp.run(async move {
        support::suite_on(db.clone()).await;
        db.close().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn checked_in_sql_applied_with_psql() {
    let Some(url) = services::postgres_url().await else {
        return;
    };
    let tmp = TempDb::create(Server::Postgres, &url).await;
    tmp.run(async {
        for file in support::migration_files("postgres") {
            support::run_cli(
                Command::new("psql")
                    .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", &tmp.url, "-f"])
                    .arg(&file),
            );
        }
        let db = tmp.connect().await;
        support::suite_on_existing_tables(db.clone()).await;
        db.close().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_and_recovery() {
    let Some(url) = services::postgres_url().await else {
        return;
    };
    let tmp = TempDb::create(Server::Postgres, &url).await;
    tmp.run(support::faults::outage_and_recovery(&tmp.url))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_closed_port_is_unavailable() {
    support::faults::closed_port_store(services::DEFAULT_PG_URL).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_migrations_from_several_processes_at_once() {
    let Some(url) = services::postgres_url().await else {
        return;
    };
    let tmp = TempDb::create(Server::Postgres, &url).await;
    tmp.run(support::concurrent_migrations(&tmp.url)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_upgrade_from_the_first_migration() {
    let Some(url) = services::postgres_url().await else {
        return;
    };
    let tmp = TempDb::create(Server::Postgres, &url).await;
    tmp.run(support::upgrade_from_first_migration(&tmp.url))
        .await;
}

/// SQL files (all, or the first only; default names and prefixed) then `migrate`: it recognises
/// what the files made and applies the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_sql_files_then_migrate() {
    let Some(url) = services::postgres_url().await else {
        return;
    };
    let tmp = TempDb::create(Server::Postgres, &url).await;
    tmp.run(async {
        let db = tmp.connect().await;
        support::sql_files_then_migrate(&db).await;
        db.close().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_killed_connections_are_replaced() {
    let Some(url) = services::postgres_url().await else {
        return;
    };
    let tmp = TempDb::create(Server::Postgres, &url).await;
    tmp.run(support::faults::killed_connections(&tmp.url)).await;
}
