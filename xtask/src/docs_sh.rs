//! `cargo xtask docs-sh`: runs every `sh` block of README.md and docs/ as a reader pastes it,
//! and checks the answers their comments show.
//!
//! Each file's blocks run in order, in one bash session, in an empty directory of their own,
//! with the workspace's freshly built binaries (`keyward`, the examples) first on `PATH`. What a
//! block's info string says:
//!
//! | info string | the runner |
//! | --- | --- |
//! | `sh` | runs each command; one that exits non-zero fails the run, unless a `# → exit N` line below it expects that status |
//! | `sh server` (`sh server=3000`) | starts the block in the background as the server of the blocks below (stopping the one before), and waits until it answers on 127.0.0.1:8080 (or the port given) |
//! | `sh in-repo` | runs in the repository root instead (for blocks that read its test data) |
//! | `sh norun` | does not run it (the CI command itself, a benchmark, a deployment with your own hosts and secrets); the run lists each |
//!
//! A comment line `# → TEXT` right below a command is the answer it shows: the command's
//! standard output, trimmed, must match `TEXT`, where `…` stands for any text; several such lines
//! are the lines of the answer; `# → exit N` is its exit status.
//!
//! `cargo run [--release] [-q] -p PACKAGE --` in a block is the built `PACKAGE` binary (the
//! server's is `keyward`): the blocks run outside the workspace, as an installed binary does.
//! Tools the blocks use: bash, curl and jq (README says so).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

/// The packages whose binaries the blocks run, and each one's binary name.
const BINARIES: &[(&str, &str)] = &[
    ("keyward-server", "keyward"),
    ("example-signing-client", "example-signing-client"),
    ("example-axum-app", "example-axum-app"),
    ("example-actix-app", "example-actix-app"),
];

/// What the runner does with a block.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Run,
    Server(u16),
    InRepo,
    NoRun,
}

/// One fenced `sh` block.
#[derive(Debug)]
struct Block {
    line: usize,
    kind: Kind,
    text: Vec<String>,
}

/// A command whose answer is checked.
#[derive(Debug)]
struct Expect {
    at: String,
    output: Vec<String>,
}

/// Runs `cargo xtask docs-sh [--keep]`.
///
/// # Errors
/// When a block cannot be prepared or the binaries do not build.
pub(crate) fn run(args: &[String]) -> Result<ExitCode, String> {
    let flags = crate::parse_flags(args, &["--keep"])?;
    let keep = flags.contains(&"--keep");
    let root = crate::workspace_root();
    let mut files = vec![root.join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .map_err(|e| format!("docs/: {e}"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    files.extend(docs);

    let mut build = Command::new(cargo());
    build.current_dir(&root).args(["build", "--quiet"]);
    for (package, _) in BINARIES {
        build.args(["--package", package]);
    }
    let built = build.status().map_err(|e| format!("cargo build: {e}"))?;
    if !built.success() {
        return Err("the binaries the blocks run did not build".to_owned());
    }
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    let bin_dir = root.join(target).join("debug");

    let mut failed = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
        let name = file
            .strip_prefix(&root)
            .unwrap_or(file)
            .display()
            .to_string();
        let blocks = blocks(&text)?;
        for b in blocks.iter().filter(|b| b.kind == Kind::NoRun) {
            println!("docs-sh: {name}:{}: not run (norun)", b.line);
        }
        if blocks.iter().all(|b| b.kind == Kind::NoRun) {
            continue;
        }
        match run_file(&name, &blocks, &root, &bin_dir, keep) {
            Ok(n) => println!("docs-sh: {name}: ran, {n} answers checked"),
            Err(e) => {
                failed += 1;
                eprintln!("docs-sh: {name}: FAILED\n{e}");
            }
        }
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn cargo() -> std::ffi::OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// The `sh` blocks of a Markdown text.
fn blocks(text: &str) -> Result<Vec<Block>, String> {
    let mut out = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((i, line)) = lines.next() {
        let Some(info) = line.strip_prefix("```sh") else {
            continue;
        };
        let info = info.trim();
        let kind = match info {
            "" => Kind::Run,
            "in-repo" => Kind::InRepo,
            "norun" => Kind::NoRun,
            "server" => Kind::Server(8080),
            other => match other.strip_prefix("server=").map(str::parse) {
                Some(Ok(port)) => Kind::Server(port),
                _ => return Err(format!("line {}: unknown block kind `sh {other}`", i + 1)),
            },
        };
        let mut body = Vec::new();
        for (_, l) in lines.by_ref() {
            if l.starts_with("```") {
                break;
            }
            body.push(l.to_owned());
        }
        out.push(Block {
            line: i + 1,
            kind,
            text: body,
        });
    }
    Ok(out)
}

/// `cargo run … -p PACKAGE --` replaced by the binary.
fn substitute(line: &str) -> String {
    let mut line = line.to_owned();
    for (package, binary) in BINARIES {
        for flags in ["--release -q ", "--release ", "-q ", ""] {
            for tail in [" --", ""] {
                let from = format!("cargo run {flags}-p {package}{tail}");
                if line.contains(&from) {
                    line = line.replace(&from, binary);
                }
            }
        }
    }
    line
}

/// Writes one file's script, runs it, checks the answers; the number checked.
fn run_file(
    name: &str,
    blocks: &[Block],
    root: &Path,
    bin_dir: &Path,
    keep: bool,
) -> Result<usize, String> {
    // The blocks' directory holds only what they make; the runner's files sit beside it.
    let base = std::env::temp_dir().join(format!(
        "keyward-docs-sh-{}-{}",
        std::process::id(),
        name.replace(['/', '.'], "-")
    ));
    let _ = std::fs::remove_dir_all(&base);
    let (work, out_dir) = (base.join("work"), base.join("runner"));
    for dir in [&work, &out_dir] {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let mut script = String::from(
        "set -uo pipefail\n\
         __fail() { echo \"docs-sh: $1: exited $2 (expected $3)\" >&2; exit 1; }\n\
         __stop() { if [ -n \"${__SERVER:-}\" ]; then kill \"$__SERVER\" 2>/dev/null; wait \"$__SERVER\" 2>/dev/null; __SERVER=; fi; }\n\
         trap __stop EXIT\n\
         __wait() { for _ in $(seq 600); do curl -s -o /dev/null \"127.0.0.1:$1\" && return 0; \
         kill -0 \"$__SERVER\" 2>/dev/null || { echo \"docs-sh: $2: the server exited\" >&2; cat \"$3\" >&2; exit 1; }; \
         sleep 0.1; done; echo \"docs-sh: $2: nothing answers on port $1\" >&2; exit 1; }\n",
    );
    let mut expects = Vec::new();
    for (n, b) in blocks.iter().enumerate() {
        let at = format!("{name}:{}", b.line);
        match b.kind {
            Kind::NoRun => {}
            Kind::Server(port) => {
                let log = out_dir.join(format!("server-{n}.log"));
                let body: Vec<String> = b.text.iter().map(|l| substitute(l)).collect();
                let _ = write!(
                    script,
                    "__stop\n! curl -s -o /dev/null 127.0.0.1:{port} || {{ echo 'docs-sh: {at}: port {port} is taken' >&2; exit 1; }}\n(\n{}\n) > '{}' 2>&1 &\n__SERVER=$!\n__wait {port} '{at}' '{}'\n",
                    body.join("\n"),
                    log.display(),
                    log.display()
                );
            }
            Kind::Run | Kind::InRepo => {
                if b.kind == Kind::InRepo {
                    let _ = writeln!(script, "pushd '{}' > /dev/null", root.display());
                }
                commands(&b.text, &at, &out_dir, &mut script, &mut expects)?;
                if b.kind == Kind::InRepo {
                    script.push_str("popd > /dev/null\n");
                }
            }
        }
    }
    let path = out_dir.join("script.sh");
    std::fs::write(&path, &script).map_err(|e| e.to_string())?;
    let mut paths = vec![bin_dir.to_path_buf()];
    paths.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    let run = Command::new("bash")
        .arg(&path)
        .current_dir(&work)
        .env(
            "PATH",
            std::env::join_paths(paths).map_err(|e| e.to_string())?,
        )
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("bash: {e}"))?;
    let transcript = format!(
        "--- stdout\n{}--- stderr\n{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    let result = if run.status.success() {
        check(&expects, &out_dir).map_err(|e| format!("{e}\n{transcript}"))
    } else {
        Err(transcript)
    };
    if !keep && result.is_ok() {
        let _ = std::fs::remove_dir_all(&base);
    } else {
        println!("docs-sh: {name}: kept {}", base.display());
    }
    result
}

/// Appends a block's commands to `script`: each logical command (continuation lines joined)
/// checked for its exit status, its output captured where an answer is shown below it.
///
/// # Errors
/// An answer line (`# → …`) that is not right below a command: it would never be checked.
fn commands(
    lines: &[String],
    at: &str,
    out_dir: &Path,
    script: &mut String,
    expects: &mut Vec<Expect>,
) -> Result<(), String> {
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim_end();
        if line.trim_start().starts_with("# → ") {
            return Err(format!(
                "{at} (line {}): an answer must sit right below its command",
                i + 1
            ));
        }
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            i += 1;
            continue;
        }
        let start = i;
        let mut cmd = vec![substitute(line)];
        while cmd.last().is_some_and(|l| l.ends_with('\\')) && i + 1 < lines.len() {
            i += 1;
            cmd.push(substitute(lines[i].trim_end()));
        }
        i += 1;
        let mut output = Vec::new();
        let mut status = 0;
        while let Some(answer) = lines
            .get(i)
            .and_then(|l| l.trim_start().strip_prefix("# → "))
        {
            match answer.strip_prefix("exit ").map(str::parse) {
                Some(Ok(n)) => status = n,
                _ => output.push(answer.to_owned()),
            }
            i += 1;
        }
        let here = format!("{at} (line {})", start + 1);
        let n = expects.len();
        let file = out_dir.join(format!("out-{n}"));
        let _ = write!(
            script,
            "{{\n{}\n}} > '{}'\n__rc=$?\ncat '{}'\n[ \"$__rc\" -eq {status} ] || __fail '{here}' \"$__rc\" {status}\n",
            cmd.join("\n"),
            file.display(),
            file.display()
        );
        expects.push(Expect { at: here, output });
    }
    Ok(())
}

/// Compares each captured output with its answer.
fn check(expects: &[Expect], out_dir: &Path) -> Result<usize, String> {
    let mut checked = 0;
    for (n, e) in expects.iter().enumerate() {
        if e.output.is_empty() {
            continue;
        }
        let got = std::fs::read_to_string(out_dir.join(format!("out-{n}"))).unwrap_or_default();
        let want = e.output.join("\n");
        if !matches(want.trim(), got.trim()) {
            return Err(format!(
                "{}: the answer differs\n  shown:  {want}\n  got:    {}",
                e.at,
                got.trim()
            ));
        }
        checked += 1;
    }
    Ok(checked)
}

/// Whether `text` matches `pattern` as a whole, where `…` in the pattern matches any text.
fn matches(pattern: &str, text: &str) -> bool {
    let pieces: Vec<&str> = pattern.split('…').collect();
    let (first, rest) = match pieces.split_first() {
        Some(x) => x,
        None => return text.is_empty(),
    };
    let Some(mut left) = text.strip_prefix(first) else {
        return false;
    };
    let Some((last, middle)) = rest.split_last() else {
        return left.is_empty();
    };
    for piece in middle {
        match left.find(piece) {
            Some(at) => left = &left[at + piece.len()..],
            None => return false,
        }
    }
    left.len() >= last.len() && left.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ellipsis_matches_any_text() {
        assert!(matches("a…c", "abbbc"));
        assert!(matches("{\"k\":\"…\",…}", "{\"k\":\"v\",\"x\":1}"));
        assert!(matches("exact", "exact"));
        assert!(!matches("exact", "exactly"));
        assert!(!matches("a…c", "abd"));
        assert!(matches("…", "anything\nat all"));
        assert!(!matches("ab…ba", "aba"));
    }

    #[test]
    fn blocks_and_commands() {
        let md = "x\n```sh server=3000\nrun\n```\n```sh\necho a \\\n  b\n# → a b\nfalse\n# → exit 1\n```\n```sh norun\nnope\n```\n```rust\nfn f(){}\n```\n";
        let b = blocks(md).unwrap();
        assert_eq!(
            b.iter().map(|b| b.kind.clone()).collect::<Vec<_>>(),
            [Kind::Server(3000), Kind::Run, Kind::NoRun]
        );
        let (mut script, mut expects) = (String::new(), Vec::new());
        commands(
            &b[1].text,
            "f:5",
            Path::new("/o"),
            &mut script,
            &mut expects,
        )
        .unwrap();
        assert_eq!(expects.len(), 2);
        let stray = ["echo a".to_owned(), String::new(), "# → a".to_owned()];
        let (mut s2, mut e2) = (String::new(), Vec::new());
        assert!(commands(&stray, "f:9", Path::new("/o"), &mut s2, &mut e2).is_err());
        assert_eq!(expects[0].output, ["a b"]);
        assert!(script.contains("-eq 1 ]"));
        assert!(script.contains("echo a \\\n  b\n}"));
        assert!(blocks("```sh weird\n```\n").is_err());
    }

    #[test]
    fn cargo_run_is_the_built_binary() {
        assert_eq!(
            substitute("cargo run --release -p keyward-server -- serve"),
            "keyward serve"
        );
        assert_eq!(
            substitute("KEYWARD_KEY=k cargo run -q -p example-signing-client -- http://x"),
            "KEYWARD_KEY=k example-signing-client http://x"
        );
        assert_eq!(
            substitute("X=1 cargo run -p example-axum-app"),
            "X=1 example-axum-app"
        );
    }
}
