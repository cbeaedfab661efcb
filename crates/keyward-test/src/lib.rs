//! Test support shared by keyward's crates (not published).
//!
//! - [`services`]: finds the real PostgreSQL, MariaDB and Redis the tests talk to; skips loudly
//!   when one is missing on a developer machine and fails under `CI=true`.
//! - [`store_suite`](mod@store_suite): one conformance suite for every [`keyward_core::KeyStore`]. Run it with
//!   [`store_suite::run_all`] or generate one test per case with [`store_suite!`].
//! - [`management_suite`](mod@management_suite): who may do what (DESIGN.md §11), over HTTP,
//!   for keyward-axum, keyward-actix and the `keyward` server alike ([`management_suite!`]).
//! - [`example_app`]: runs an example app as its user would and checks its story.
//! - [`stock_signer`]: botocore's SigV4 signer, run live, for end-to-end signing tests.
#![forbid(unsafe_code)]

pub mod example_app;
pub mod http_suite;
pub mod management_suite;
pub mod services;
pub mod sql_suites;
pub mod standby;
pub mod stock_signer;
pub mod store_suite;
