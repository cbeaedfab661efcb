//! Source hygiene, after rust-analyzer's `xtask/src/tidy.rs`: checked by `cargo test` (the
//! `workspace_is_tidy` test), by `cargo xtask tidy`, and early in `cargo xtask ci`.
//!
//! - every `.rs` file under `crates/*/src` (and `xtask/src`) opens with `//!` module docs (or
//!   `#![doc = …]`, for a crate that includes its README);
//! - no `TODO`, `FIXME` or `dbg!` in any `.rs` file under `crates/`: file an issue instead;
//! - every crate's `Cargo.toml` (`crates/*` and `xtask`) has `[lints] workspace = true`;
//! - no import loop between the top-level modules of any crate (`cycles`);
//! - no file under `crates/*/src` is over 800 lines, and each web adapter's `src/` stays under
//!   400 lines of code (comments and blank lines left out): what decides an answer, and every
//!   step of the flow, belongs in `keyward_http` (issues 15 and 23, docs/architecture.md);
//! - no `macro_rules!` under `crates/*/src` but keyward-test's (whose macros expand the shared
//!   suites into test cases): a macro that expands in another crate hides code from the count
//!   above (issue 23).

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The longest file under `crates/*/src`.
const MAX_FILE_LINES: usize = 800;
/// The web adapters, and the lines of code each `src/` stays under.
const ADAPTERS: &[&str] = &["keyward-axum", "keyward-actix"];
const MAX_ADAPTER_CODE: usize = 400;

/// Lines that are neither blank nor comments (`//`, `///`, `//!`), as docs/architecture.md
/// counts them.
fn lines_of_code(text: &str) -> usize {
    text.lines()
        .map(str::trim_start)
        .filter(|l| !l.is_empty() && !l.starts_with("//"))
        .count()
}

/// One broken rule, with where it is.
#[derive(Debug, PartialEq, Eq)]
struct Violation {
    path: PathBuf,
    line: Option<usize>,
    message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.path.display(), self.message),
            None => write!(f, "{}: {}", self.path.display(), self.message),
        }
    }
}

/// `cargo xtask tidy`.
///
/// # Errors
///
/// Bad arguments.
pub(crate) fn run(args: &[String]) -> Result<ExitCode, String> {
    crate::parse_flags(args, &[])?;
    match check() {
        Ok(()) => {
            println!("tidy: ok");
            Ok(ExitCode::SUCCESS)
        }
        Err(report) => {
            println!("{report}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Runs every rule on the workspace.
///
/// # Errors
///
/// A report listing every violation, one a line.
pub(crate) fn check() -> Result<(), String> {
    let violations = violations(&crate::workspace_root());
    if violations.is_empty() {
        return Ok(());
    }
    let mut report = format!("tidy: {} problem(s):\n", violations.len());
    for v in &violations {
        report.push_str(&format!("  {v}\n"));
    }
    Err(report)
}

fn violations(root: &Path) -> Vec<Violation> {
    let mut found = Vec::new();
    let mut crate_dirs = sorted_dirs(&root.join("crates"));

    let mut documented = Vec::new();
    for dir in &crate_dirs {
        documented.extend(rust_files(&dir.join("src")));
    }
    documented.extend(rust_files(&root.join("xtask/src")));
    for file in documented {
        if let Some(text) = read(root, &file, &mut found)
            && !has_module_docs(&text)
        {
            found.push(Violation::new(
                root,
                &file,
                Some(1),
                "does not open with `//!` module docs",
            ));
        }
    }

    for dir in &crate_dirs {
        for file in rust_files(dir) {
            let Some(text) = read(root, &file, &mut found) else {
                continue;
            };
            for (line, marker) in stray_markers(&text) {
                let message = format!("`{marker}` left in the source (file an issue instead)");
                found.push(Violation::new(root, &file, Some(line), &message));
            }
            let in_src = file.starts_with(dir.join("src")) && !dir.ends_with("keyward-test");
            for (i, l) in text.lines().enumerate().filter(|_| in_src) {
                if l.trim_start().starts_with("macro_rules!") {
                    let message = "a `macro_rules!` macro: write the code it would expand to";
                    found.push(Violation::new(root, &file, Some(i + 1), message));
                }
            }
        }
    }

    for dir in &crate_dirs {
        let mut code = 0;
        for file in rust_files(&dir.join("src")) {
            let Some(text) = read(root, &file, &mut found) else {
                continue;
            };
            let lines = text.lines().count();
            if lines > MAX_FILE_LINES {
                let message = format!("{lines} lines: split it (at most {MAX_FILE_LINES})");
                found.push(Violation::new(root, &file, None, &message));
            }
            code += lines_of_code(&text);
        }
        let adapter = dir
            .file_name()
            .is_some_and(|n| ADAPTERS.iter().any(|a| n == *a));
        if adapter && code >= MAX_ADAPTER_CODE {
            let message = format!(
                "{code} lines of code in src/ (under {MAX_ADAPTER_CODE}): move what decides an \
                 answer, or a step of the flow, into keyward_http"
            );
            found.push(Violation::new(root, &dir.join("src"), None, &message));
        }
    }

    for dir in &crate_dirs {
        let src = dir.join("src");
        let files: Vec<(PathBuf, String)> = rust_files(&src)
            .into_iter()
            .filter_map(|f| read(root, &f, &mut found).map(|text| (f, text)))
            .collect();
        for cycle in crate::cycles::module_loops(&src, &files) {
            let message = format!("modules import each other: {cycle}");
            found.push(Violation::new(root, &src, None, &message));
        }
    }

    crate_dirs.push(root.join("xtask"));
    for dir in crate_dirs {
        let manifest = dir.join("Cargo.toml");
        if manifest.is_file()
            && let Some(text) = read(root, &manifest, &mut found)
            && !uses_workspace_lints(&text)
        {
            found.push(Violation::new(
                root,
                &manifest,
                None,
                "lacks `[lints] workspace = true`",
            ));
        }
    }
    found
}

impl Violation {
    fn new(root: &Path, path: &Path, line: Option<usize>, message: &str) -> Self {
        Self {
            path: path.strip_prefix(root).unwrap_or(path).to_path_buf(),
            line,
            message: message.to_owned(),
        }
    }
}

fn read(root: &Path, path: &Path, found: &mut Vec<Violation>) -> Option<String> {
    match fs::read_to_string(path) {
        Ok(text) => Some(text),
        Err(e) => {
            found.push(Violation::new(
                root,
                path,
                None,
                &format!("unreadable: {e}"),
            ));
            None
        }
    }
}

/// Subdirectories of `dir`, sorted; none if `dir` is missing.
fn sorted_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

/// Every `.rs` file under `dir`, sorted, skipping `target` and hidden directories.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if path.is_dir() {
                if name != "target" && !name.starts_with('.') {
                    pending.push(path);
                }
            } else if name.ends_with(".rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The first non-blank line is `//!` docs or a `#![doc …]` attribute.
fn has_module_docs(text: &str) -> bool {
    text.lines()
        .map(str::trim_start)
        .find(|l| !l.is_empty())
        .is_some_and(|l| l.starts_with("//!") || l.starts_with("#![doc"))
}

/// `(line number, marker)` for every `TODO`, `FIXME` (as words) and `dbg!` in `text`.
fn stray_markers(text: &str) -> Vec<(usize, &'static str)> {
    let mut found = Vec::new();
    for (i, line) in text.lines().enumerate() {
        for marker in ["TODO", "FIXME"] {
            if contains_word(line, marker) {
                found.push((i + 1, marker));
            }
        }
        if line
            .match_indices("dbg!")
            .any(|(at, _)| !line[..at].ends_with(is_ident_char))
        {
            found.push((i + 1, "dbg!"));
        }
    }
    found
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// `word` stands alone: no identifier character before it, and no capital, digit or `_` after it
/// (so `TODOs` and `TODO:` count, `MASTODON` does not).
fn contains_word(line: &str, word: &str) -> bool {
    line.match_indices(word).any(|(at, _)| {
        let before_ok = !line[..at].ends_with(is_ident_char);
        let after_ok = !line[at + word.len()..]
            .starts_with(|c: char| c.is_uppercase() || c.is_ascii_digit() || c == '_');
        before_ok && after_ok
    })
}

/// The manifest opts into `[workspace.lints]`: `[lints]` + `workspace = true`, or the dotted or
/// inline-table forms at the top level.
fn uses_workspace_lints(manifest: &str) -> bool {
    let mut section: Option<String> = None;
    for raw in manifest.lines() {
        let line: String = raw
            .split('#')
            .next()
            .unwrap_or_default()
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        if line.starts_with('[') {
            section = Some(line.trim_matches(|c| c == '[' || c == ']').to_owned());
            continue;
        }
        let hit = match section.as_deref() {
            Some("lints") => line == "workspace=true",
            None => line == "lints.workspace=true" || line == "lints={workspace=true}",
            Some(_) => false,
        };
        if hit {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_is_tidy() {
        if let Err(report) = check() {
            panic!("{report}");
        }
    }

    #[test]
    fn module_docs_rule() {
        assert!(has_module_docs("//! Docs.\nfn f() {}"));
        assert!(has_module_docs("\n\n//! Docs after blank lines."));
        assert!(has_module_docs(
            "#![doc = include_str!(\"../README.md\")]\n"
        ));
        assert!(!has_module_docs("// plain comment\n//! too late"));
        assert!(!has_module_docs("use std::fmt;\n"));
        assert!(!has_module_docs(""));
    }

    #[test]
    fn stray_marker_rule() {
        let text = "fn a() {}\n// TODO: later\nlet x = dbg!(1);\n// FIXME\n// TODOs here";
        assert_eq!(
            stray_markers(text),
            vec![(2, "TODO"), (3, "dbg!"), (4, "FIXME"), (5, "TODO")]
        );
        assert!(stray_markers("const MASTODON: u8 = 1; // todo in lower case is prose").is_empty());
        assert!(stray_markers("my_dbg!(x); TODO_LIST; XFIXME").is_empty());
    }

    #[test]
    fn lines_of_code_leave_out_comments_and_blanks() {
        let text = "//! Module.\n\nuse x;\n    /// Doc.\n    fn f() {} // trailing\n\n";
        assert_eq!(lines_of_code(text), 2);
        assert_eq!(lines_of_code(""), 0);
    }

    #[test]
    fn workspace_lints_rule() {
        assert!(uses_workspace_lints(
            "[package]\nname = \"a\"\n\n[lints]\nworkspace = true\n"
        ));
        assert!(uses_workspace_lints("[lints]\nworkspace=true # inherit\n"));
        assert!(uses_workspace_lints("lints.workspace = true\n[package]\n"));
        assert!(!uses_workspace_lints("[package]\nworkspace = true\n"));
        assert!(!uses_workspace_lints(
            "[lints.rust]\nunsafe_code = \"forbid\"\n"
        ));
        assert!(!uses_workspace_lints("[lints]\nworkspace = false\n"));
    }
}
