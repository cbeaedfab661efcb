//! The OpenAPI document is true: schemathesis (PyPI) runs every route of `keyward serve` with
//! requests generated from `/openapi.json`, valid and invalid, and finds no 5xx, no schema-valid
//! request refused, no schema-violating request accepted, and no answer outside the document.
//!
//! Not yet in CI: schemathesis still finds mismatches that need the document to carry the
//! deployment's policy limits (name and scope-list lengths), an IP-or-CIDR schema for
//! `ip_allowlist`, integers written as `13.0`, and `409` for changing a revoked key (issue 15,
//! D3). Run it with `KEYWARD_SCHEMATHESIS=/path/to/st cargo nextest run -p keyward-server
//! --test schemathesis --run-ignored all`.
//!
//! Bounded (a fixed seed, 20 examples per operation). What JSON Schema cannot state is
//! in `tests/schemathesis/`: the config (state-dependent `412`, soft revoke) and the hooks (an
//! expiry in the past), each with its reason. schemathesis is found through
//! `KEYWARD_SCHEMATHESIS` (the `st` executable, e.g. `/opt/keyward-venv/bin/st`); without it the
//! test skips loudly, and fails under `CI=true`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::path::Path;
use std::process::Command;

use common::Env;

const ADMIN: &str = "admin-token-for-schemathesis";

#[test]
#[ignore = "schemathesis still finds mismatches (issue 15, D3); see the module docs"]
fn the_openapi_document_is_what_the_server_does() {
    let Some(st) = std::env::var_os("KEYWARD_SCHEMATHESIS") else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "KEYWARD_SCHEMATHESIS (the schemathesis `st` executable) is required under CI=true"
        );
        eprintln!("SKIPPED: set KEYWARD_SCHEMATHESIS to schemathesis's `st` to run this test");
        return;
    };
    let env = Env::sqlite();
    let server = env.serve(
        &["--owner-header", "x-user"],
        &[("KEYWARD_ADMIN_TOKEN", ADMIN)],
    );
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schemathesis");
    let out = Command::new(st)
        .current_dir(&here)
        .env("PYTHONPATH", &here)
        .env("SCHEMATHESIS_HOOKS", "keyward_hooks")
        .env("NO_COLOR", "1")
        .args(["--config-file", "schemathesis.toml", "run"])
        .arg(server.url("/openapi.json"))
        .args(["--header", &format!("Authorization: Bearer {ADMIN}")])
        .args(["--header", "x-user: alice"])
        .args(["--checks", "all", "--max-examples", "20", "--seed", "1"])
        .args(["--request-timeout", "10"])
        .output()
        .expect("schemathesis runs");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found mismatches between /openapi.json and the server:\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    server.terminate();
}
