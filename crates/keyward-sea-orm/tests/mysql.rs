//! The store on a real MariaDB or MySQL (`KEYWARD_TEST_MYSQL_URL`, default the local `test` database):
//! the conformance suite in a database this test creates (case-insensitive default collation) and drops, the
//! checked-in SQL applied with the `mariadb` client, an outage through a proxy, and a closed port. Skips
//! loudly when MariaDB is not running; fails under `CI=true`.
#![cfg(feature = "mysql")]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::process::Command;

use keyward_test::services;
use support::{Server, TempDb};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn suite_on_mariadb() {
    let Some(url) = services::mysql_url().await else {
        return;
    };
    let tmp = TempDb::create(Server::MariaDb, &url).await;
    let db = tmp.connect().await;
    tmp.run(async move {
        support::suite_on(db.clone()).await;
        db.close().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn checked_in_sql_applied_with_mariadb_client() {
    let Some(url) = services::mysql_url().await else {
        return;
    };
    let tmp = TempDb::create(Server::MariaDb, &url).await;
    tmp.run(async {
        let (host, port, user) = support::parts(&tmp.url);
        for file in support::migration_files("mysql") {
            support::run_cli(
                Command::new("mariadb")
                    .args([
                        "--protocol=TCP",
                        "-h",
                        &host,
                        "-P",
                        &port.to_string(),
                        "-u",
                        &user,
                    ])
                    .arg(&tmp.name)
                    .stdin(std::fs::File::open(&file).unwrap()),
            );
        }
        let db = tmp.connect().await;
        support::suite_on_existing_tables(db.clone()).await;
        db.close().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_outage_and_recovery() {
    let Some(url) = services::mysql_url().await else {
        return;
    };
    let tmp = TempDb::create(Server::MariaDb, &url).await;
    tmp.run(support::faults::outage_and_recovery(&tmp.url))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_closed_port_is_unavailable() {
    support::faults::closed_port_store(services::DEFAULT_MYSQL_URL).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mariadb_migrations_from_several_processes_at_once() {
    let Some(url) = services::mysql_url().await else {
        return;
    };
    let tmp = TempDb::create(Server::MariaDb, &url).await;
    tmp.run(support::concurrent_migrations(&tmp.url)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mariadb_upgrade_from_the_first_migration() {
    let Some(url) = services::mysql_url().await else {
        return;
    };
    let tmp = TempDb::create(Server::MariaDb, &url).await;
    tmp.run(support::upgrade_from_first_migration(&tmp.url))
        .await;
}

/// SQL files (all, or the first only; default names and prefixed) then `migrate`: it recognises
/// what the files made and applies the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mysql_sql_files_then_migrate() {
    let Some(url) = services::mysql_url().await else {
        return;
    };
    let tmp = TempDb::create(Server::MariaDb, &url).await;
    tmp.run(async {
        let db = tmp.connect().await;
        support::sql_files_then_migrate(&db).await;
        db.close().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_killed_connections_are_replaced() {
    let Some(url) = services::mysql_url().await else {
        return;
    };
    let tmp = TempDb::create(Server::MariaDb, &url).await;
    tmp.run(support::faults::killed_connections(&tmp.url)).await;
}
