//! End-to-end tests of `keyward scan` on a temporary tree with real keys, keys with a broken
//! checksum, and look-alikes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::BIN;
use keyward_core::KeyFormat;

fn scan(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("scan")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn real_key(prefix: &str, env: &str) -> String {
    KeyFormat::new(prefix, env)
        .unwrap()
        .generate()
        .unwrap()
        .api_key
        .expose_secret()
        .to_owned()
}

/// The key with its last checksum character changed.
fn broken(key: &str) -> String {
    let mut k = key.to_owned();
    let last = k.pop().unwrap();
    k.push(if last == 'A' { 'B' } else { 'A' });
    k
}

#[test]
fn finds_real_keys_only() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let live = real_key("kw", "live");
    let other = real_key("acme", "test");
    let in_git = real_key("kw", "live");
    std::fs::create_dir_all(root.join("src/deep")).unwrap();
    std::fs::create_dir_all(root.join(".git")).unwrap();
    std::fs::create_dir_all(root.join("target")).unwrap();
    std::fs::write(
        root.join("src/config.env"),
        format!("# settings\nNAME=x\nAPI_KEY={live}\n"),
    )
    .unwrap();
    std::fs::write(
        root.join("src/deep/client.py"),
        format!("headers = {{\"Authorization\": \"Bearer {other}\"}}\n"),
    )
    .unwrap();
    std::fs::write(
        root.join("src/lookalikes.txt"),
        format!(
            "{}\nkw_live_AbCdEf012345_notarealsecretnotarealsecret12345678\nkw_live_short\nkw_live_{}\nsk_live_{}\n",
            broken(&live),
            "x".repeat(50),
            "y".repeat(40)
        ),
    )
    .unwrap();
    std::fs::write(root.join(".git/config"), format!("token={in_git}\n")).unwrap();
    std::fs::write(root.join("target/build.log"), format!("{in_git}\n")).unwrap();
    let mut binary = vec![0u8, 1, 2, 3];
    binary.extend_from_slice(in_git.as_bytes());
    std::fs::write(root.join("src/blob.bin"), binary).unwrap();

    let out = scan(root, &["."]);
    assert_eq!(out.status.code(), Some(1), "keys found → exit 1");
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "exactly the two real keys:\n{text}");
    assert!(
        lines.iter().any(|l| l.contains("config.env:3: kw_live_")),
        "{text}"
    );
    assert!(
        lines.iter().any(|l| l.contains("client.py:1: acme_test_")),
        "{text}"
    );
    // The secrets are masked.
    assert!(!text.contains(&live) && !text.contains(&other));
    assert!(!text.contains(&live[20..]));
    assert!(text.contains("****"));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("2 key(s) found"), "{err}");

    // JSON output.
    let out = scan(root, &["--json", "src"]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let findings = v["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 2);
    let env_finding = findings
        .iter()
        .find(|f| f["path"].as_str().unwrap().ends_with("config.env"))
        .unwrap();
    assert_eq!(
        (env_finding["line"].as_u64(), env_finding["column"].as_u64()),
        (Some(3), Some(9))
    );
    assert_eq!(v["files_skipped"], 1, "the binary file is skipped");

    // A single clean file: exit 0.
    let out = scan(root, &["src/lookalikes.txt"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn progress_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for i in 0..1200 {
        std::fs::write(root.join(format!("f{i}.txt")), format!("line {i}\n")).unwrap();
    }
    let out = scan(root, &["--progress", "."]);
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("scanning: 500 files") && err.contains("scanning: 1000 files"),
        "{err}"
    );
    assert!(err.contains("1200 file(s) scanned"));

    // A missing path: exit 2 with a clear line.
    let out = scan(root, &["does-not-exist"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.lines()
            .next()
            .unwrap()
            .starts_with("error: cannot read does-not-exist"),
        "{err}"
    );

    // Oversized files are skipped, not read.
    std::fs::write(
        root.join("big.txt"),
        "a".repeat(4096) + "\n" + &real_key("kw", "live"),
    )
    .unwrap();
    let out = scan(root, &["--max-file-size", "1024", "big.txt"]);
    assert_eq!(out.status.code(), Some(0));
    let out = scan(root, &["big.txt"]);
    assert_eq!(out.status.code(), Some(1));

    // No paths: a usage error.
    let out = scan(root, &[]);
    assert_eq!(out.status.code(), Some(2));
}

/// Run where the server was started, the scan finds the admin key file the server wrote, and
/// says what that file is and what to do with it; `--help` states the size default once.
#[test]
fn the_admin_key_file_is_named_for_what_it_is() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("keyward.admin-key"),
        format!("{}\n", real_key("kw", "live")),
    )
    .unwrap();
    let out = scan(dir.path(), &["."]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("keyward.admin-key:1:")
            && text.contains("the admin key the server wrote at its first start"),
        "{text}"
    );
    let help = String::from_utf8(scan(dir.path(), &["--help"]).stdout).unwrap();
    assert_eq!(help.matches("default").count(), 1, "{help}");
}
