//! `cargo xtask package`: `cargo package` for every published crate (`ci::PUBLISHED`), each
//! built from its `.crate` alone, as `cargo publish` would check it.
//!
//! `cargo package` of several crates serves the fresh ones to each other from a temporary local
//! registry, and unpacks them under `$CARGO_HOME/registry/src/<that registry>/`. It does not
//! unpack a version it finds there already, so a second run at the same version would verify
//! against the first run's sources. Those copies of keyward's own crates are removed first.

use std::path::PathBuf;
use std::process::{Command, ExitCode};

use crate::ci::PUBLISHED;

/// Runs `cargo xtask package`.
pub(crate) fn run(args: &[String]) -> Result<ExitCode, String> {
    if let Some(arg) = args.first() {
        return Err(format!(
            "unknown argument `{arg}` (cargo xtask package takes none)"
        ));
    }
    let removed = remove_stale_unpacked()?;
    if removed > 0 {
        println!("package: removed {removed} copies of keyward crates unpacked by an earlier run");
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(crate::workspace_root())
        .args(["package", "--allow-dirty"]);
    for name in PUBLISHED {
        cmd.args(["--package", name]);
    }
    let status = cmd
        .status()
        .map_err(|e| format!("could not run cargo package: {e}"))?;
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn cargo_home() -> Option<PathBuf> {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
}

/// Removes `$CARGO_HOME/registry/src/*/<published crate>-<version>` directories; returns how
/// many. Only keyward's own crate names are touched.
fn remove_stale_unpacked() -> Result<usize, String> {
    let Some(src) = cargo_home().map(|h| h.join("registry").join("src")) else {
        return Ok(0);
    };
    let Ok(registries) = std::fs::read_dir(&src) else {
        return Ok(0);
    };
    let mut removed = 0;
    for registry in registries.flatten() {
        let Ok(crates) = std::fs::read_dir(registry.path()) else {
            continue;
        };
        for entry in crates.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let ours = PUBLISHED.iter().any(|p| {
                name.strip_prefix(p)
                    .and_then(|rest| rest.strip_prefix('-'))
                    .is_some_and(|version| version.starts_with(|c: char| c.is_ascii_digit()))
            });
            if ours {
                std::fs::remove_dir_all(entry.path())
                    .map_err(|e| format!("{}: {e}", entry.path().display()))?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}
