//! The shared black-box HTTP suite against the actix test app over the SQL store
//! (`keyward-sea-orm`): SQLite (a fresh file per test) and PostgreSQL (skipped loudly when the
//! server is not there, failed under `CI=true`).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

keyward_test::sql_suites!(spawn = crate::common::spawn_detached, prefix = "kwactix_");
