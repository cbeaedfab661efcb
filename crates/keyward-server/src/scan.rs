//! `keyward scan`: finds keyward keys in files and folders, for pre-commit hooks and CI.
//!
//! Tokens shaped like `<prefix>_<env>_<key_id>_<secret><check>` (any prefix, any env) count only
//! when their checksum holds, so look-alikes and typos are not reported. Folders are walked
//! recursively, skipping `.git`, `target` and `node_modules`, symbolic links, binary files (a NUL
//! byte in the first 8 KiB) and files over the size limit. Exit status: 0 nothing found, 1 keys
//! found, 2 some path could not be read.

use std::io::{IsTerminal as _, Read as _, Write as _};
use std::path::{Path, PathBuf};

use keyward_core::key::{find_keys, redacted};
use serde::Serialize;

use crate::config::ScanArgs;
use crate::error::AppError;
use crate::term::out;

const SKIP_DIRS: [&str; 3] = [".git", "target", "node_modules"];
const PROGRESS_EVERY: u64 = 500;

/// One key found.
#[derive(Debug, Serialize)]
struct Finding {
    path: String,
    line: usize,
    column: usize,
    key: String,
}

/// What could not be scanned.
#[derive(Debug, Serialize)]
struct ScanError {
    path: String,
    error: String,
}

#[derive(Debug, Serialize)]
struct Report {
    findings: Vec<Finding>,
    files_scanned: u64,
    files_skipped: u64,
    errors: Vec<ScanError>,
}

struct Scanner {
    max_size: u64,
    progress: bool,
    tty: bool,
    report: Report,
}

/// The outcome of a scan: the exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Nothing found.
    Clean,
    /// Keys found.
    Found,
    /// Some path could not be read.
    Incomplete,
}

/// Runs `keyward scan`.
///
/// # Errors
/// Only when the report cannot be written.
pub(crate) fn run(args: &ScanArgs) -> Result<Outcome, AppError> {
    let tty = std::io::stderr().is_terminal();
    let mut s = Scanner {
        max_size: args.max_file_size,
        progress: args.progress || tty,
        tty,
        report: Report {
            findings: Vec::new(),
            files_scanned: 0,
            files_skipped: 0,
            errors: Vec::new(),
        },
    };
    for p in &args.paths {
        match std::fs::metadata(p) {
            Ok(m) if m.is_dir() => s.walk(p),
            Ok(_) => s.file(p),
            Err(e) => s.error(p, &e.to_string()),
        }
    }
    if s.progress && s.tty {
        eprint!("\r\x1b[K");
    }
    let r = &s.report;
    if args.json {
        out(&(serde_json::to_string_pretty(r).map_err(|e| AppError::Io(e.to_string()))? + "\n"))?;
    } else {
        let mut text = String::new();
        for f in &r.findings {
            text.push_str(&format!("{}:{}: {}", f.path, f.line, f.key));
            if is_admin_key_file(&f.path) {
                text.push_str(
                    "  (the admin key the server wrote at its first start: move it to your \
                     secret manager, then delete the file)",
                );
            }
            text.push('\n');
        }
        out(&text)?;
        let mut err = std::io::stderr().lock();
        let _ = writeln!(
            err,
            "keyward scan: {} file(s) scanned, {} skipped, {} key(s) found{}",
            r.files_scanned,
            r.files_skipped,
            r.findings.len(),
            if r.errors.is_empty() {
                String::new()
            } else {
                format!(", {} error(s)", r.errors.len())
            }
        );
    }
    Ok(if !r.errors.is_empty() {
        Outcome::Incomplete
    } else if r.findings.is_empty() {
        Outcome::Clean
    } else {
        Outcome::Found
    })
}

impl Scanner {
    fn error(&mut self, path: &Path, e: &str) {
        let p = path.display().to_string();
        eprintln!("error: cannot read {p}: {e}");
        self.report.errors.push(ScanError {
            path: p,
            error: e.to_owned(),
        });
    }

    fn walk(&mut self, dir: &Path) {
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) => return self.error(dir, &e.to_string()),
        };
        let mut paths: Vec<(PathBuf, std::fs::FileType)> = Vec::new();
        for entry in entries {
            match entry.and_then(|e| Ok((e.path(), e.file_type()?))) {
                Ok(x) => paths.push(x),
                Err(e) => self.error(dir, &e.to_string()),
            }
        }
        paths.sort_by(|a, b| a.0.cmp(&b.0));
        for (path, ty) in paths {
            if ty.is_symlink() {
                continue;
            }
            if ty.is_dir() {
                let skip = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| SKIP_DIRS.contains(&n));
                if !skip {
                    self.walk(&path);
                }
            } else if ty.is_file() {
                self.file(&path);
            }
        }
    }

    fn file(&mut self, path: &Path) {
        let f = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) => return self.error(path, &e.to_string()),
        };
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        if len > self.max_size {
            self.report.files_skipped += 1;
            return;
        }
        let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        if let Err(e) =
            std::io::Read::take(f, self.max_size.saturating_add(1)).read_to_end(&mut bytes)
        {
            return self.error(path, &e.to_string());
        }
        if bytes.len() as u64 > self.max_size || bytes.iter().take(8192).any(|&b| b == 0) {
            self.report.files_skipped += 1;
            return;
        }
        self.report.files_scanned += 1;
        let text = String::from_utf8_lossy(&bytes);
        let ranges = find_keys(&text);
        if !ranges.is_empty() {
            let mut line = 1;
            let mut line_start = 0;
            let mut pos = 0;
            for r in ranges {
                for (i, b) in text.as_bytes()[pos..r.start].iter().enumerate() {
                    if *b == b'\n' {
                        line += 1;
                        line_start = pos + i + 1;
                    }
                }
                pos = r.start;
                let column = text[line_start..r.start].chars().count() + 1;
                self.report.findings.push(Finding {
                    path: path.display().to_string(),
                    line,
                    column,
                    key: mask_key(&text[r]),
                });
            }
        }
        if self.progress && self.report.files_scanned.is_multiple_of(PROGRESS_EVERY) {
            let n = self.report.files_scanned;
            let k = self.report.findings.len();
            if self.tty {
                eprint!("\r\x1b[Kscanning: {n} files, {k} key(s) found");
            } else {
                eprintln!("scanning: {n} files, {k} key(s) found");
            }
        }
    }
}

/// A found key for display, its secret masked: `prefix_env_keyid_****`.
fn mask_key(raw: &str) -> String {
    let mut s = redacted(raw);
    s.pop(); // the `…`
    s.push_str("_****");
    s
}

/// Whether `path` is the file `keyward serve` writes its bootstrapped admin key to (by its
/// default name, `keyward.admin-key`, or a database's `<name>.admin-key`).
fn is_admin_key_file(path: &str) -> bool {
    Path::new(path)
        .extension()
        .is_some_and(|e| e == "admin-key")
}
