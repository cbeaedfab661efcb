//! `cargo xtask migrations [--check] [--table-prefix P] [--out DIR]`: renders the SQL schema of
//! `keyward-sea-orm` from its entities into `migrations/{postgres,sqlite,mysql}/`.
//!
//! The rendering itself lives in `keyward-sea-orm` (`schema::render_sql`) and runs through its
//! `render_migrations` example, so that this binary stays plain `std`. `--check` renders into a
//! scratch directory and compares: any difference (or a stray `.sql` file) fails with the first
//! differing line of each file and the command that fixes it.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// The backend folders the renderer writes.
const BACKENDS: &[&str] = &["postgres", "sqlite", "mysql"];

struct Options {
    check: bool,
    prefix: String,
    out: Option<PathBuf>,
}

fn parse(args: &[String]) -> Result<Option<Options>, String> {
    let mut options = Options {
        check: false,
        prefix: String::new(),
        out: None,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--check" => options.check = true,
            "--table-prefix" => {
                options.prefix = it.next().ok_or("--table-prefix needs a value")?.clone();
            }
            "--out" => options.out = Some(PathBuf::from(it.next().ok_or("--out needs a value")?)),
            "-h" | "--help" => return Ok(None),
            other => {
                return Err(format!(
                    "unknown argument `{other}` (expected --check, --table-prefix P, --out DIR)"
                ));
            }
        }
    }
    Ok(Some(options))
}

fn usage() {
    println!(
        "Usage: cargo xtask migrations [--check] [--table-prefix P] [--out DIR]\n\n\
         Renders the keyward-sea-orm schema into <DIR>/{{postgres,sqlite,mysql}}/*.sql.\n  \
         --check            compare instead of writing; exit 1 when the files differ\n  \
         --table-prefix P   prefix table and index names (default: none)\n  \
         --out DIR          where the files go (default: migrations/, or\n                     \
         target/migrations/<P>/ with a prefix)"
    );
}

/// Runs `cargo xtask migrations`.
pub(crate) fn run(args: &[String]) -> Result<ExitCode, String> {
    let Some(options) = parse(args)? else {
        usage();
        return Ok(ExitCode::SUCCESS);
    };
    let root = crate::workspace_root();
    let out = options.out.clone().unwrap_or_else(|| {
        if options.prefix.is_empty() {
            root.join("migrations")
        } else {
            root.join("target").join("migrations").join(&options.prefix)
        }
    });
    let scratch = std::env::temp_dir().join(format!("keyward-migrations-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    let rendered = render(&root, &scratch, &options.prefix);
    let result = rendered.and_then(|()| {
        if options.check {
            check(&scratch, &out, &options.prefix)
        } else {
            write(&scratch, &out).map(|()| ExitCode::SUCCESS)
        }
    });
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

fn render(root: &Path, dir: &Path, prefix: &str) -> Result<(), String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root).args([
        "run",
        "--quiet",
        "--package",
        "keyward-sea-orm",
        "--all-features",
        "--example",
        "render_migrations",
        "--",
    ]);
    cmd.arg(dir);
    if !prefix.is_empty() {
        cmd.arg(prefix);
    }
    let output = cmd
        .output()
        .map_err(|e| format!("could not run the renderer: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "the renderer failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(())
}

fn sql_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".sql"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn write(from: &Path, to: &Path) -> Result<(), String> {
    for backend in BACKENDS {
        let src = from.join(backend);
        let dst = to.join(backend);
        std::fs::create_dir_all(&dst).map_err(|e| format!("{}: {e}", dst.display()))?;
        for name in sql_files(&src) {
            let text = std::fs::read_to_string(src.join(&name))
                .map_err(|e| format!("{}: {e}", src.join(&name).display()))?;
            let path = dst.join(&name);
            let unchanged = std::fs::read_to_string(&path).is_ok_and(|old| old == text);
            if !unchanged {
                std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
            }
            println!(
                "{} {}",
                if unchanged { "unchanged" } else { "wrote    " },
                path.display()
            );
        }
    }
    Ok(())
}

fn check(fresh: &Path, stored: &Path, prefix: &str) -> Result<ExitCode, String> {
    let mut problems = Vec::new();
    for backend in BACKENDS {
        let want = sql_files(&fresh.join(backend));
        let have = sql_files(&stored.join(backend));
        for name in &have {
            if !want.contains(name) {
                problems.push(format!(
                    "{}: not generated by the entities (stray or renamed file)",
                    stored.join(backend).join(name).display()
                ));
            }
        }
        for name in &want {
            let path = stored.join(backend).join(name);
            let expected = std::fs::read_to_string(fresh.join(backend).join(name))
                .map_err(|e| format!("{}: {e}", fresh.display()))?;
            match std::fs::read_to_string(&path) {
                Err(_) => problems.push(format!("{}: missing", path.display())),
                Ok(actual) if actual != expected => {
                    problems.push(format!(
                        "{}: {}",
                        path.display(),
                        first_difference(&expected, &actual)
                    ));
                }
                Ok(_) => {}
            }
        }
    }
    if problems.is_empty() {
        println!(
            "migrations: checked-in SQL matches the entities ({})",
            stored.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!("migrations: the checked-in SQL differs from what the entities generate:");
    for p in &problems {
        eprintln!("  {p}");
    }
    let fix = if prefix.is_empty() {
        "cargo xtask migrations".to_owned()
    } else {
        format!("cargo xtask migrations --table-prefix {prefix}")
    };
    eprintln!(
        "Regenerate with `{fix}` and commit the result (add a new numbered migration for a schema change that is already deployed)."
    );
    Ok(ExitCode::FAILURE)
}

fn first_difference(expected: &str, actual: &str) -> String {
    let mut e = expected.lines();
    let mut a = actual.lines();
    let mut line = 1;
    loop {
        match (e.next(), a.next()) {
            (Some(x), Some(y)) if x == y => line += 1,
            (x, y) => {
                return format!(
                    "line {line}:\n      generated:  {}\n      checked in: {}",
                    x.unwrap_or("<end of file>"),
                    y.unwrap_or("<end of file>")
                );
            }
        }
    }
}
