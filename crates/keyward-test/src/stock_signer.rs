//! A stock SigV4 signer nobody here wrote: botocore's `SigV4Auth` (the signer of boto3 and the
//! AWS CLI), run live through `scripts/botocore_sign.py`.
//!
//! End-to-end tests sign a request with it against a running server and send it with their own
//! HTTP client. botocore is found through `KEYWARD_BOTOCORE_PYTHON` (a Python with botocore
//! installed; `.ci/run` sets it to its venv), else `python3` on the `PATH`. When neither can
//! import botocore, a developer run skips with a loud message and a CI run (`CI=true`) fails,
//! as for the services in [`crate::services`].

use std::path::PathBuf;
use std::process::Command;

use crate::services::ci;

/// One request for botocore to sign.
#[derive(Debug, Clone, Default)]
pub struct StockRequest<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// Full URL, e.g. `http://127.0.0.1:8080/v1/protected?a=1` (botocore signs the `host`
    /// from it).
    pub url: &'a str,
    /// Extra headers to send and sign, `(name, value)`.
    pub headers: &'a [(&'a str, &'a str)],
    /// Body (UTF-8 text; empty for none).
    pub body: &'a str,
    /// Access key id (a keyward key id).
    pub access_key_id: &'a str,
    /// Secret (the raw keyward key).
    pub secret: &'a str,
    /// Credential-scope region.
    pub region: &'a str,
    /// Credential-scope service.
    pub service: &'a str,
    /// Signing time `YYYYMMDDTHHMMSSZ`; `None` for now.
    pub date: Option<&'a str>,
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/botocore_sign.py")
}

fn python() -> Option<String> {
    let candidates = std::env::var("KEYWARD_BOTOCORE_PYTHON")
        .ok()
        .into_iter()
        .chain(["python3".to_owned()]);
    for python in candidates {
        let ok = Command::new(&python)
            .args(["-c", "import botocore.auth"])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return Some(python);
        }
    }
    None
}

/// Whether botocore can sign here. `false` after a loud skip message on a developer machine.
///
/// # Panics
/// When botocore is missing and [`ci`] is true: CI must never pass by skipping.
#[must_use]
pub fn available() -> bool {
    if python().is_some() {
        return true;
    }
    let msg = "botocore is not importable (set KEYWARD_BOTOCORE_PYTHON to a Python with \
               `pip install botocore`)";
    assert!(!ci(), "CI=true: {msg}");
    eprintln!("\n!!!!!!!! SKIPPED: {msg} !!!!!!!!\n");
    false
}

/// The headers botocore adds to sign `request` (`Authorization`, `X-Amz-Date`, …), or `None`
/// when botocore is unavailable (see [`available`]).
///
/// # Panics
/// When botocore is missing under `CI=true`, or the script fails.
#[must_use]
#[allow(clippy::panic, reason = "test support: a broken signer fails the test")]
pub fn sign(request: &StockRequest<'_>) -> Option<Vec<(String, String)>> {
    if !available() {
        return None;
    }
    let python = python()?;
    let mut cmd = Command::new(python);
    cmd.arg(script())
        .args(["--method", request.method, "--url", request.url])
        .args(["--access-key-id", request.access_key_id])
        .args(["--secret", request.secret])
        .args(["--region", request.region, "--service", request.service])
        .args(["--format", "headers"]);
    for (name, value) in request.headers {
        cmd.args(["-H", &format!("{name}: {value}")]);
    }
    if !request.body.is_empty() {
        cmd.args(["--data", request.body]);
    }
    if let Some(date) = request.date {
        cmd.args(["--date", date]);
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("botocore_sign.py: {e}"));
    assert!(
        out.status.success(),
        "botocore_sign.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap_or_else(|e| panic!("botocore output: {e}"));
    Some(
        text.lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
            .collect(),
    )
}
