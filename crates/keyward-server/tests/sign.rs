//! `keyward sign` against the AWS SigV4 test suite: the built binary, fed each case's `.req` on
//! stdin with the suite's own credentials, must print the case's `.creq`, `.sts` and `.authz`
//! byte for byte (`crates/keyward-core/testdata/aws-sig-v4-test-suite`, attribution in its
//! README).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_keyward");
const SUITE_CREDENTIALS: &[&str] = &[
    "--access-key-id",
    "AKIDEXAMPLE",
    "--secret",
    "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    "--date",
    "20150830T123600Z",
    "--region",
    "us-east-1",
    "--service",
    "service",
];
/// Every case of the suite; a lost directory fails the test instead of shrinking it.
const EXPECTED_CASES: usize = 34;

fn suite() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../keyward-core/testdata/aws-sig-v4-test-suite")
}

/// Directories holding `<dirname>.req`, recursively.
fn cases(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    entries.sort();
    for d in entries {
        let name = d.file_name().unwrap().to_str().unwrap().to_owned();
        if d.join(format!("{name}.req")).is_file() {
            out.push(d.clone());
        }
        cases(&d, out);
    }
}

fn file(dir: &Path, ext: &str) -> Vec<u8> {
    let name = dir.file_name().unwrap().to_str().unwrap();
    std::fs::read(dir.join(format!("{name}.{ext}"))).unwrap()
}

/// Runs `keyward sign ARGS` with `stdin`; returns stdout, panicking with stderr on failure.
fn sign(args: &[&str], stdin: &[u8]) -> Vec<u8> {
    let mut child = Command::new(BIN)
        .arg("sign")
        .args(args)
        .env_remove("KEYWARD_SIGV4_REGION")
        .env_remove("KEYWARD_SIGV4_SERVICE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "keyward sign {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The session token a case signs with when `.req` lacks it (read from `.creq`, as botocore's
/// runner does; see the suite README).
fn token(dir: &Path, req: &[u8]) -> Option<String> {
    let req = String::from_utf8_lossy(req).to_ascii_lowercase();
    if req.contains("x-amz-security-token:") {
        return None;
    }
    String::from_utf8(file(dir, "creq"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("x-amz-security-token:"))
        .map(str::to_owned)
}

#[test]
fn reproduces_the_aws_suite_byte_for_byte() {
    let mut dirs = Vec::new();
    cases(&suite(), &mut dirs);
    assert_eq!(dirs.len(), EXPECTED_CASES, "suite cases found: {dirs:?}");
    let mut problems = Vec::new();
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_str().unwrap().to_owned();
        let req = file(dir, "req");
        let mut args: Vec<String> = SUITE_CREDENTIALS.iter().map(|s| (*s).to_owned()).collect();
        if let Some(t) = token(dir, &req) {
            args.push("--session-token".into());
            args.push(t);
        }
        let with = |extra: &str| {
            let mut a: Vec<&str> = args.iter().map(String::as_str).collect();
            if !extra.is_empty() {
                a.push(extra);
            }
            sign(&a, &req)
        };
        if with("--canonical") != file(dir, "creq") {
            problems.push(format!("{name}: canonical request differs"));
        }
        if with("--string-to-sign") != file(dir, "sts") {
            problems.push(format!("{name}: string to sign differs"));
        }
        let signed = String::from_utf8(with("")).unwrap();
        let authz = String::from_utf8(file(dir, "authz")).unwrap();
        let got: Vec<&str> = signed
            .split("\r\n")
            .take_while(|l| !l.is_empty())
            .filter_map(|l| l.strip_prefix("Authorization: "))
            .collect();
        if got != [authz.as_str()] {
            problems.push(format!("{name}: Authorization {got:?} != {authz:?}"));
        }
        if !signed.contains("\r\nX-Amz-Date: 20150830T123600Z\r\n") {
            problems.push(format!("{name}: X-Amz-Date not set"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn bad_input_is_one_line_and_never_echoes_the_key() {
    let out = Command::new(BIN)
        .args(["sign", "--key", "kw_live_notakey", "--canonical"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("error: "), "{err}");
    let req = b"GET / HTTP/1.1\nHost: example.com\n\n";
    let out = {
        let mut child = Command::new(BIN)
            .args(["sign", "--key", "kw_live_notakey"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(req).unwrap();
        child.wait_with_output().unwrap()
    };
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--key is not a keyward key"), "{err}");
    assert!(
        !err.contains("notakey"),
        "the key must not be echoed: {err}"
    );
}
