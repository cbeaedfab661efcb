//! Known-answer tests: the AWS Signature Version 4 test suite
//! (`testdata/aws-sig-v4-test-suite`, see its README.md for source, licence and exclusions).
//!
//! For every case directory holding `<case>.req`, the request is parsed with
//! the fixture reader (`tests/support`), signed with the suite's credentials, and the canonical request, string
//! to sign and `Authorization` value must equal `.creq`, `.sts` and `.authz` byte for byte. The
//! signed request must then pass `verify_signature` at the suite's date.

// Test helpers outside #[test] fns: failing loudly is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::fs;
use std::path::{Path, PathBuf};

use keyward_core::sigv4::{
    AccessKey, Authorization, Payload, SignableRequest, Signer, SigningOptions, parse_amz_date,
    verify_signature,
};
use support::Fixture;
use time::OffsetDateTime;

const ACCESS_KEY_ID: &str = "AKIDEXAMPLE";
const SECRET: &[u8] = b"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const DATE: &str = "20150830T123600Z";
const REGION: &str = "us-east-1";
const SERVICE: &str = "service";

/// Cases of the suite deliberately not run, with the reason. Keep in step with the README.
const EXCLUDED: &[(&str, &str)] = &[];

/// How many cases must run: a lost directory fails the test instead of shrinking it.
const EXPECTED_CASES: usize = 34;

fn suite_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/aws-sig-v4-test-suite")
}

fn suite_date() -> OffsetDateTime {
    parse_amz_date(DATE.as_bytes()).expect("suite date")
}

/// Every directory under `dir` that holds `<dirname>.req`, as (case name, dir).
fn cases(dir: &Path, out: &mut Vec<(String, PathBuf)>) {
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .expect("read test suite directory")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_dir())
        .collect();
    entries.sort();
    for path in entries {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .expect("utf-8 name")
            .to_owned();
        if path.join(format!("{name}.req")).is_file() {
            let case = path
                .strip_prefix(suite_dir())
                .expect("under suite")
                .to_string_lossy();
            out.push((case.replace('\\', "/"), path.clone()));
        }
        cases(&path, out);
    }
}

fn read(dir: &Path, ext: &str) -> Vec<u8> {
    let name = dir
        .file_name()
        .and_then(|n| n.to_str())
        .expect("utf-8 name");
    fs::read(dir.join(format!("{name}.{ext}"))).unwrap_or_else(|e| panic!("{name}.{ext}: {e}"))
}

fn read_string(dir: &Path, ext: &str) -> String {
    String::from_utf8(read(dir, ext)).expect("utf-8 fixture")
}

/// The session token a case signs with: present in the canonical request but not in the raw
/// request (the signer adds it), as botocore's own runner reads it.
fn session_token(creq: &str, raw_has_token: bool) -> Option<String> {
    if raw_has_token {
        return None;
    }
    creq.lines()
        .find_map(|l| l.strip_prefix("x-amz-security-token:"))
        .map(str::to_owned)
}

#[derive(Debug)]
struct Outcome {
    case: String,
    problems: Vec<String>,
}

fn run_case(case: &str, dir: &Path) -> Outcome {
    let mut problems = Vec::new();
    let raw = read(dir, "req");
    let creq = read_string(dir, "creq");
    let sts = read_string(dir, "sts");
    let authz = read_string(dir, "authz");

    let parsed = match Fixture::read(&raw) {
        Ok(p) => p,
        Err(e) => {
            problems.push(format!(".req does not parse: {e}"));
            return Outcome {
                case: case.to_owned(),
                problems,
            };
        }
    };
    let headers = parsed.header_pairs();
    let raw_has_token = headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("x-amz-security-token"));
    let token = session_token(&creq, raw_has_token);
    let mut credentials = AccessKey::new(ACCESS_KEY_ID, SECRET).expect("credentials");
    if let Some(token) = &token {
        credentials = credentials.with_session_token(token).expect("token");
    }
    let request = SignableRequest::new(
        parsed.method(),
        parsed.path(),
        parsed.query(),
        &headers,
        Payload::Bytes(parsed.body()),
    );
    let signer = Signer::new(REGION, SERVICE).expect("signer");
    let signed = match signer.sign(&credentials, &request, suite_date()) {
        Ok(s) => s,
        Err(e) => {
            problems.push(format!("signing failed: {e}"));
            return Outcome {
                case: case.to_owned(),
                problems,
            };
        }
    };
    if signed.canonical_request() != creq {
        problems.push(format!(
            "canonical request differs\n--- ours\n{}\n--- .creq\n{creq}",
            signed.canonical_request()
        ));
    }
    if signed.string_to_sign() != sts {
        problems.push(format!(
            "string to sign differs\n--- ours\n{}\n--- .sts\n{sts}",
            signed.string_to_sign()
        ));
    }
    if signed.authorization() != authz {
        problems.push(format!(
            "authorization differs\n--- ours\n{}\n--- .authz\n{authz}",
            signed.authorization()
        ));
    }

    // Server side: the request as sent, with the signer's headers set (replacing).
    let set = signed.headers();
    let mut received: Vec<(&str, &[u8])> = headers
        .iter()
        .copied()
        .filter(|(n, _)| !set.iter().any(|(s, _)| s.eq_ignore_ascii_case(n)))
        .collect();
    received.extend(set.iter().map(|(n, v)| (*n, v.as_bytes())));
    let request = SignableRequest::new(
        parsed.method(),
        parsed.path(),
        parsed.query(),
        &received,
        Payload::Bytes(parsed.body()),
    );
    let options = SigningOptions::new(REGION, SERVICE).expect("options");
    let outcome = request
        .authorization_value()
        .and_then(|v| Authorization::parse(v.expect("authorization header")))
        .and_then(|a| verify_signature(&request, &a, SECRET, &options, suite_date()));
    match outcome {
        Ok(verified) => {
            if verified.access_key_id() != ACCESS_KEY_ID {
                problems.push("verified access key id differs".to_owned());
            }
            let hex: String = verified
                .signature()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            if !authz.ends_with(&format!("Signature={hex}")) {
                problems.push("verified signature differs from .authz".to_owned());
            }
        }
        Err(e) => problems.push(format!(
            "verify_signature refused the signed request: {e:?}"
        )),
    }

    // The parsed Authorization prints back to the .authz value.
    match Authorization::parse(authz.as_bytes()) {
        Ok(a) if a.to_string() == authz => {}
        Ok(a) => problems.push(format!("Authorization round trip differs: {a}")),
        Err(e) => problems.push(format!(".authz does not parse: {e}")),
    }

    Outcome {
        case: case.to_owned(),
        problems,
    }
}

#[test]
fn aws_sigv4_test_suite() {
    let mut all = Vec::new();
    cases(&suite_dir(), &mut all);
    let mut ran = Vec::new();
    let mut failures = Vec::new();
    for (case, dir) in &all {
        if EXCLUDED.iter().any(|(c, _)| c == case) {
            continue;
        }
        let outcome = run_case(case, dir);
        if !outcome.problems.is_empty() {
            failures.push(outcome);
        }
        ran.push(case.clone());
    }
    for failure in &failures {
        eprintln!(
            "FAIL {}:\n  {}",
            failure.case,
            failure.problems.join("\n  ")
        );
    }
    eprintln!("{} suite cases run, {} failed", ran.len(), failures.len());
    assert!(
        failures.is_empty(),
        "{} of {} suite cases failed",
        failures.len(),
        ran.len()
    );
    assert_eq!(ran.len(), EXPECTED_CASES, "cases run: {ran:?}");
}
