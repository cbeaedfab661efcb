//! `cargo xtask public-api [--bless]`: the public API of keyward-core and keyward-http (the
//! crates every adapter and store builds on), each compared with the listing checked in at
//! `crates/<crate>/public-api.txt`, so that every change to them is deliberate: a change fails
//! until the listing is updated with `--bless` and committed beside the code.
//!
//! The listing comes from rustdoc's JSON output, which is unstable: it is built on the stable
//! toolchain with `RUSTC_BOOTSTRAP=1` (in its own target directory, so the main build's cache
//! is untouched), and read by `tools/public-api` (the `public-api` crate, pinned to a version
//! that reads what this toolchain writes). `cargo semver-checks` was the other candidate; it
//! only reports semver-breaking changes (not additions) and needs a baseline build, while a
//! listing shows a reviewer every change in the diff.

use std::path::Path;
use std::process::{Command, ExitCode};

/// The crates whose API is listed, and where each listing lives.
const CRATES: &[(&str, &str)] = &[
    ("keyward-core", "crates/keyward-core/public-api.txt"),
    ("keyward-http", "crates/keyward-http/public-api.txt"),
];

/// Runs `cargo xtask public-api [--bless]`.
pub(crate) fn run(args: &[String]) -> Result<ExitCode, String> {
    let bless = match args {
        [] => false,
        [flag] if flag == "--bless" => true,
        [other, ..] => return Err(format!("unknown argument `{other}` (takes --bless)")),
    };
    let mut code = ExitCode::SUCCESS;
    for (krate, listing) in CRATES {
        if check(krate, listing, bless)? != ExitCode::SUCCESS {
            code = ExitCode::FAILURE;
        }
    }
    Ok(code)
}

/// Lists `krate`'s API and compares it with the file `listing` (or writes it there, with `bless`).
fn check(krate: &str, listing: &str, bless: bool) -> Result<ExitCode, String> {
    let root = crate::workspace_root();
    let target = root.join("target").join("public-api");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(&cargo)
        .current_dir(&root)
        .env("RUSTC_BOOTSTRAP", "1")
        .args([
            "rustdoc",
            "--quiet",
            "--lib",
            "--all-features",
            "--package",
            krate,
        ])
        .arg("--target-dir")
        .arg(&target)
        .args(["--", "-Z", "unstable-options", "--output-format", "json"])
        .status()
        .map_err(|e| format!("could not run cargo rustdoc: {e}"))?;
    if !status.success() {
        return Err("cargo rustdoc (JSON output) failed".into());
    }
    let json = target
        .join("doc")
        .join(format!("{}.json", krate.replace('-', "_")));
    let out = Command::new(&cargo)
        .current_dir(&root)
        .args([
            "run",
            "--quiet",
            "--locked",
            "--manifest-path",
            "tools/public-api/Cargo.toml",
        ])
        .arg("--target-dir")
        .arg(&target)
        .arg("--")
        .arg(&json)
        .output()
        .map_err(|e| format!("could not run tools/public-api: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "tools/public-api failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let current = String::from_utf8(out.stdout).map_err(|_| "the listing is not UTF-8")?;
    let path = root.join(listing);
    if bless {
        std::fs::write(&path, &current).map_err(|e| format!("cannot write {listing}: {e}"))?;
        println!(
            "public-api: wrote {listing} ({} items)",
            current.lines().count()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let recorded = read(&path)?;
    let (removed, added) = difference(&recorded, &current);
    if removed.is_empty() && added.is_empty() {
        println!(
            "public-api: {krate} matches {listing} ({} items)",
            current.lines().count()
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!("public-api: {krate}'s public API differs from {listing}:");
    for line in &removed {
        println!("- {line}");
    }
    for line in &added {
        println!("+ {line}");
    }
    println!(
        "\n{} removed, {} added. If the change is deliberate, run `cargo xtask public-api --bless` \
         and commit the listing (and say it in CHANGELOG.md).",
        removed.len(),
        added.len()
    );
    Ok(ExitCode::FAILURE)
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| {
        format!(
            "cannot read {}: {e} (create it with `cargo xtask public-api --bless`)",
            path.display()
        )
    })
}

/// The lines only in `recorded`, and those only in `current` (both listings are sorted).
fn difference<'a>(recorded: &'a str, current: &'a str) -> (Vec<&'a str>, Vec<&'a str>) {
    let old: std::collections::BTreeSet<&str> = recorded.lines().collect();
    let new: std::collections::BTreeSet<&str> = current.lines().collect();
    (
        old.difference(&new).copied().collect(),
        new.difference(&old).copied().collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_both_ways() {
        let (removed, added) = difference("a\nb\nc\n", "a\nc\nd\n");
        assert_eq!((removed, added), (vec!["b"], vec!["d"]));
        let (removed, added) = difference("a\n", "a\n");
        assert!(removed.is_empty() && added.is_empty());
    }
}
