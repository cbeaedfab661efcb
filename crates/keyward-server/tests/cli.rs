//! End-to-end tests of the admin CLI (`keyward keys …`, `keyward migrate`) and of bad input:
//! every failure is one `error: …` line and a non-zero exit, never a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use common::{Env, assert_one_line_error};

fn stdout(o: &std::process::Output) -> String {
    assert!(
        o.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

#[test]
fn keys_commands_json_and_tables() {
    let env = Env::sqlite();
    let m = env.cli_json(&["migrate", "--json"]);
    assert_eq!(m["backend"], "sqlite");
    assert!(stdout(&env.cli(&["migrate"])).contains("up to date"));

    let created = env.cli_json(&[
        "keys",
        "create",
        "--owner",
        "acme",
        "--name",
        "ci deploy",
        "--scope",
        "deploy:write",
        "--scope",
        "logs:read",
        "--ttl",
        "30d",
        "--json",
    ]);
    let raw = created["api_key"].as_str().unwrap().to_owned();
    let id = created["key"]["id"].as_str().unwrap().to_owned();
    assert!(raw.starts_with("kw_live_"));
    assert_eq!(
        created["key"]["scopes"],
        serde_json::json!(["deploy:write", "logs:read"])
    );
    assert!(created["key"]["expires_at"].is_string());

    // Human create prints the key once, with a table.
    let human = stdout(&env.cli(&[
        "keys",
        "create",
        "--owner",
        "acme",
        "--name",
        "second",
        "--expires-at",
        "2099-01-01T00:00:00Z",
    ]));
    assert!(human.contains("shown only this once"));
    assert!(human.contains("2099-01-01 00:00:00Z"));
    assert_eq!(human.matches("kw_live_").count(), 1);

    // list: JSON and an aligned table; neither shows a raw key.
    let list = env.cli_json(&["keys", "list", "--owner", "acme", "--json"]);
    assert_eq!(list.as_array().unwrap().len(), 2);
    let table = stdout(&env.cli(&["keys", "list", "--owner", "acme"]));
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(lines[0].starts_with("ID  "));
    let col = lines[0].find("NAME").unwrap();
    assert!(
        lines[1..]
            .iter()
            .all(|l| l.char_indices().nth(col).is_some_and(|(_, c)| c != ' ')),
        "{table}"
    );
    assert!(!table.contains(&raw[20..]));
    assert!(stdout(&env.cli(&["keys", "list", "--owner", "nobody"])).contains("no keys"));

    // show, by id or by the display form.
    let shown = env.cli_json(&["keys", "show", &id, "--json"]);
    assert_eq!(shown["name"], "ci deploy");
    assert!(!shown.to_string().contains(&raw));
    let human = stdout(&env.cli(&["keys", "show", &format!("kw_live_{id}…")]));
    assert!(human.contains("ci deploy") && human.contains("deploy:write"));

    // rotate prints the successor once; revoke.
    let rotated = env.cli_json(&["keys", "rotate", &id, "--grace", "1h", "--json"]);
    assert_eq!(rotated["key"]["rotated_from"], id.as_str());
    assert!(rotated["api_key"].as_str().unwrap().starts_with("kw_live_"));
    let human = stdout(&env.cli(&["keys", "rotate", rotated["key"]["id"].as_str().unwrap()]));
    assert!(human.contains("keeps working until") && human.contains("shown only this once"));
    let revoked = env.cli_json(&["keys", "revoke", &id, "--json"]);
    assert!(revoked["revoked_at"].is_string());
    assert_eq!(revoked["state"], "revoked");
    assert!(stdout(&env.cli(&["keys", "revoke", &id])).contains("Revoked"));

    // Refusals are one line.
    assert_one_line_error(&env.cli(&["keys", "show", "AAAAAAAAAAAA"]), "no such key");
    assert_one_line_error(&env.cli(&["keys", "show", "nope"]), "not a key id");
    assert_one_line_error(
        &env.cli(&[
            "keys",
            "create",
            "--owner",
            "acme",
            "--name",
            "x",
            "--scope",
            "BAD SCOPE",
        ]),
        "scopes",
    );
    assert_one_line_error(
        &env.cli(&[
            "keys", "create", "--owner", "acme", "--name", "x", "--ttl", "soon",
        ]),
        "--ttl",
    );
    assert_one_line_error(
        &env.cli(&[
            "keys",
            "create",
            "--owner",
            "acme",
            "--name",
            "x",
            "--expires-at",
            "2001-01-01T00:00:00Z",
        ]),
        "expires_at",
    );
    assert_one_line_error(
        &env.cli(&[
            "keys",
            "create",
            "--owner",
            "acme",
            "--name",
            "x",
            "--expires-at",
            "tomorrow",
        ]),
        "--expires-at",
    );
}

#[test]
fn policy_flags_apply_to_the_cli() {
    let env = Env::sqlite();
    let args = [
        "--allowed-scopes",
        "reports:*",
        "--max-keys-per-owner",
        "1",
        "--prefix",
        "acme",
        "--env",
        "test",
    ];
    let mut ok = vec![
        "keys",
        "create",
        "--owner",
        "o",
        "--name",
        "a",
        "--scope",
        "reports:read",
        "--json",
    ];
    ok.extend(args);
    let created = env.cli_json(&ok);
    assert!(
        created["api_key"]
            .as_str()
            .unwrap()
            .starts_with("acme_test_")
    );
    let mut over = vec!["keys", "create", "--owner", "o", "--name", "b"];
    over.extend(args);
    assert_one_line_error(&env.cli(&over), "maximum");
    let mut outside = vec![
        "keys",
        "create",
        "--owner",
        "p",
        "--name",
        "b",
        "--scope",
        "billing:write",
    ];
    outside.extend(args);
    assert_one_line_error(&env.cli(&outside), "scopes");
}

/// 32 zero bytes, base64.
const ZEROS_B64: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
/// `keys list` lists every key without `--owner`, filters by owner, environment and state,
/// pages with `--limit` and `--after`, and prints a table or JSON.
#[test]
fn keys_list_filters_and_pages() {
    let env = Env::sqlite();
    let create = |owner: &str, extra: &[&str]| {
        let mut args = vec!["keys", "create", "--owner", owner, "--name", "k", "--json"];
        args.extend_from_slice(extra);
        env.cli_json(&args)["key"]["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let a1 = create("ann", &[]);
    let a2 = create("ann", &[]);
    let b1 = create("bob", &[]);
    let t1 = create("bob", &["--env", "test"]);
    env.cli_json(&["keys", "revoke", &a2, "--json"]);
    let ids = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["keys", "list", "--format", "json"];
        all.extend_from_slice(args);
        let v = env.cli_json(&all);
        v.as_array()
            .unwrap()
            .iter()
            .map(|k| k["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        ids(&[]),
        [a1.as_str(), a2.as_str(), b1.as_str(), t1.as_str()]
    );
    assert_eq!(ids(&["--owner", "ann"]), [a1.as_str(), a2.as_str()]);
    assert_eq!(ids(&["--state", "revoked"]), [a2.as_str()]);
    assert_eq!(ids(&["--state", "active", "--owner", "ann"]), [a1.as_str()]);
    assert_eq!(ids(&["--env", "test"]), [t1.as_str()]);
    // Paging: the cursor of what follows is on stderr, stdout stays the listing.
    let out = env.cli(&["keys", "list", "--limit", "3", "--json"]);
    let first: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(first.as_array().unwrap().len(), 3);
    let err = String::from_utf8_lossy(&out.stderr);
    let after = err
        .lines()
        .find_map(|l| l.strip_prefix("more keys follow: --after "))
        .unwrap_or_else(|| panic!("no cursor in {err}"));
    assert_eq!(ids(&["--after", after]), [t1.as_str()]);
    let out = env.cli(&["keys", "list", "--limit", "4"]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("more keys follow"));
    // The table: a header and one line per key.
    let table = stdout(&env.cli(&["keys", "list"]));
    assert_eq!(table.lines().count(), 5, "{table}");
    assert!(table.contains("revoked"));
    assert!(stdout(&env.cli(&["keys", "list", "--owner", "nobody"])).contains("no keys"));
}

/// 32 bytes of `abcd` repeated, hex.
const PATTERN_HEX: &str = "6162636461626364616263646162636461626364616263646162636461626364";
/// 32 random bytes, base64.
const RANDOM_B64: &str = "q3J0cZ8m1xVbL2Yw9eNfK4sTgH7uAoDpRjE6WiCkMzI=";

/// The pepper file of a SQLite database is refused once others may read it, with the fix in
/// the message; the database itself is created readable by its owner only.
#[cfg(unix)]
#[test]
fn secret_files_are_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let env = Env::sqlite();
    let out = env.cli(&["keys", "list", "--owner", "x"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mode = |name: &str| {
        std::fs::metadata(env.path().join(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("keyward.db"), 0o600, "the database");
    assert_eq!(mode("keyward.pepper"), 0o600, "the pepper file");
    let pepper = env.path().join("keyward.pepper");
    std::fs::set_permissions(&pepper, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = env.cli(&["keys", "list", "--owner", "x"]);
    assert_one_line_error(&out, "chmod 600");
    std::fs::set_permissions(&pepper, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = env.cli(&["keys", "list", "--owner", "x"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Arguments, environment, and what the error line must say.
type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, &'a str);

#[test]
fn bad_input_is_one_clear_line() {
    let env = Env::sqlite();
    let pepper = format!(
        "1:{}",
        "8f3a1c9e5b7d2f4a6c8e0b1d3f5a7c9e2b4d6f8a0c1e3b5d7f9a2c4e6b8d0f13"
    );
    let cases: Vec<Case<'_>> = vec![
        (vec!["serve", "--bogus"], vec![], "unexpected argument"),
        (vec!["frobnicate"], vec![], "unrecognized subcommand"),
        (vec!["serve", "--bind", "nowhere"], vec![], "--bind"),
        (vec!["serve", "--bind", "example.com:80"], vec![], "--bind"),
        (
            vec!["serve", "--database-url", "ftp://x"],
            vec![],
            "--database-url",
        ),
        (
            vec!["serve", "--redis-url", "http://x"],
            vec![],
            "--redis-url",
        ),
        (
            vec!["serve", "--default-ttl", "forever"],
            vec![],
            "--default-ttl",
        ),
        (
            vec!["serve", "--last-used", "sometimes"],
            vec![],
            "--last-used",
        ),
        (
            vec!["serve", "--cache-ttl", "1fortnight"],
            vec![],
            "--cache-ttl",
        ),
        (vec!["serve", "--prefix", "Not-Valid"], vec![], "--prefix"),
        (
            vec!["serve", "--allowed-scopes", "BAD SCOPE"],
            vec![],
            "--allowed-scopes",
        ),
        (vec!["serve", "--log-format", "xml"], vec![], "xml"),
        (
            vec!["serve", "--owner-header", "bad header"],
            vec![],
            "--owner-header",
        ),
        (
            vec!["serve", "--config", "/nonexistent/keyward.toml"],
            vec![],
            "cannot read config file",
        ),
        (
            vec![
                "serve",
                "--database-url",
                "postgres://u:hunter2@127.0.0.1:5432/x",
            ],
            vec![],
            "KEYWARD_PEPPER must be set",
        ),
        (
            vec!["serve"],
            vec![("KEYWARD_PEPPER", "c2hvcnQ=")],
            "too short",
        ),
        (
            vec!["serve"],
            vec![("KEYWARD_PEPPER_PREVIOUS", pepper.as_str())],
            "KEYWARD_PEPPER is not",
        ),
        (
            vec!["serve"],
            vec![("KEYWARD_ADMIN_TOKEN", "short")],
            "KEYWARD_ADMIN_TOKEN",
        ),
        (
            vec![
                "serve",
                "--database-url",
                "postgres://u:hunter2@127.0.0.1:1/x",
            ],
            vec![("KEYWARD_PEPPER", pepper.as_str())],
            "127.0.0.1:1",
        ),
        (vec!["keys", "list", "--limit", "0"], vec![], "--limit"),
        (vec!["keys", "list", "--state", "gone"], vec![], "--state"),
        (
            vec!["serve", "--config", "/"],
            vec![],
            "cannot read config file",
        ),
        (
            vec!["migrate", "--database-url", "sqlite:///?mode=rwc"],
            vec![],
            "sqlite",
        ),
        // Secrets that are not random, or one secret in two roles.
        (
            vec!["serve"],
            vec![("KEYWARD_PEPPER", ZEROS_B64)],
            "repeats one byte",
        ),
        (
            vec!["serve"],
            vec![("KEYWARD_PEPPER", PATTERN_HEX)],
            "too few distinct bytes",
        ),
        (
            vec!["serve"],
            vec![("KEYWARD_ENCRYPTION_KEY", ZEROS_B64)],
            "KEYWARD_ENCRYPTION_KEY: not a random key",
        ),
        (
            vec!["serve"],
            vec![
                ("KEYWARD_PEPPER", RANDOM_B64),
                ("KEYWARD_ENCRYPTION_KEY", RANDOM_B64),
            ],
            "must be different secrets",
        ),
        (
            vec!["serve", "--failure-throttle", "lots"],
            vec![],
            "--failure-throttle",
        ),
        (
            vec!["serve", "--request-timeout", "0s"],
            vec![],
            "--request-timeout",
        ),
        (
            vec!["serve", "--max-concurrent-requests", "0"],
            vec![],
            "--max-concurrent-requests",
        ),
        (
            vec!["serve", "--self-service-rate-limit", "fast"],
            vec![],
            "--self-service-rate-limit",
        ),
    ];
    for (args, vars, expect) in cases {
        let out = env.cli_env(&args, &vars);
        assert_one_line_error(&out, expect);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("hunter2"), "a password leaked: {err}");
    }
    // A bad config file names the file and the problem.
    let cfg = env.path().join("bad.toml");
    std::fs::write(&cfg, "bind = 5\n").unwrap();
    assert_one_line_error(
        &env.cli(&["serve", "--config", cfg.to_str().unwrap()]),
        "bad.toml",
    );
    std::fs::write(&cfg, "nonsense_key = 1\n").unwrap();
    assert_one_line_error(
        &env.cli(&["serve", "--config", cfg.to_str().unwrap()]),
        "nonsense_key",
    );
}

#[test]
fn occupied_port_and_unreadable_database() {
    let env = Env::sqlite();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    assert_one_line_error(&env.cli(&["serve", "--bind", &addr]), &addr);

    // A database path inside a missing directory.
    let url = format!(
        "sqlite://{}?mode=rwc",
        env.path().join("missing/dir/k.db").display()
    );
    let out = env.cli_env(&["migrate", "--database-url", &url], &[]);
    assert_one_line_error(&out, "error");
}

#[test]
fn config_file_supplies_settings() {
    let env = Env::sqlite();
    std::fs::write(
        env.path().join("keyward.toml"),
        "prefix = \"cfg\"\nenv = \"dev\"\nmax_keys_per_owner = 5\n",
    )
    .unwrap();
    let created = env.cli_json(&["keys", "create", "--owner", "o", "--name", "a", "--json"]);
    assert!(created["api_key"].as_str().unwrap().starts_with("cfg_dev_"));
    // Flags win over the file.
    let created = env.cli_json(&[
        "keys", "create", "--owner", "o", "--name", "b", "--env", "prod", "--json",
    ]);
    assert!(
        created["api_key"]
            .as_str()
            .unwrap()
            .starts_with("cfg_prod_")
    );
}

#[test]
fn help_documents_every_serve_flag() {
    let env = Env::sqlite();
    let out = env.cli_env(
        &["serve", "--help"],
        &[("KEYWARD_DATABASE_URL", "postgres://u:hunter2@db/k")],
    );
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--database-url",
        "--bind",
        "--redis-url",
        "--prefix",
        "--env",
        "--allowed-scopes",
        "--max-keys-per-owner",
        "--default-ttl",
        "--last-used",
        "--cache-size",
        "--cache-ttl",
        "--owner-header",
        "--log-format",
        "--config",
        "--sigv4-region",
        "--sigv4-service",
        "KEYWARD_DATABASE_URL",
        "KEYWARD_BIND",
        "KEYWARD_SIGV4_REGION",
    ] {
        assert!(help.contains(flag), "serve --help lacks {flag}");
    }
    assert!(
        !help.contains("hunter2"),
        "--help shows a secret from the environment"
    );
}

/// `keyward migrate --print-sql` prints exactly the checked-in files, in order; applied with
/// the sqlite3 client, they make a database `keyward migrate` recognises and the CLI uses.
#[test]
fn print_sql_is_the_checked_in_migrations() {
    let env = Env::sqlite();
    for (dialect, folder) in [
        ("postgres", "postgres"),
        ("mysql", "mysql"),
        ("sqlite", "sqlite"),
    ] {
        let out = env.cli(&["migrate", "--print-sql", dialect]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let printed = String::from_utf8(out.stdout).unwrap();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../migrations")
            .join(folder);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        let mut expected = String::new();
        for f in &files {
            let name = f.file_name().unwrap().to_string_lossy().into_owned();
            let sql = std::fs::read_to_string(f).unwrap();
            expected.push_str(&format!("-- file: {name}\n{sql}\n"));
        }
        assert_eq!(printed, expected, "{dialect}");
    }
    let out = env.cli(&["migrate", "--print-sql", "sqlite"]);
    let sql = env.path().join("schema.sql");
    std::fs::write(&sql, &out.stdout).unwrap();
    let db = env.path().join("keyward.db");
    let applied = std::process::Command::new("sqlite3")
        .arg("-bail")
        .arg(&db)
        .stdin(std::fs::File::open(&sql).unwrap())
        .output()
        .expect("sqlite3 (Debian package sqlite3)");
    assert!(
        applied.status.success(),
        "{}",
        String::from_utf8_lossy(&applied.stderr)
    );
    let out = env.cli(&["migrate"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created = env.cli_json(&["keys", "create", "--owner", "o", "--name", "n", "--json"]);
    assert!(
        created["api_key"]
            .as_str()
            .is_some_and(|k| k.starts_with("kw_live_"))
    );
    assert_one_line_error(
        &env.cli(&[
            "migrate",
            "--print-sql",
            "sqlite",
            "--table-prefix",
            "Bad-Prefix",
        ]),
        "--table-prefix",
    );
}

/// `keys create --count N --out FILE` (and `--owners-from`) writes every new key, raw key
/// included, to a new file only its owner can read, prints none of them, and each key works;
/// without `--out` it refuses, and it never writes over a file.
#[cfg(unix)]
#[test]
fn keys_create_many_writes_a_private_file() {
    use std::os::unix::fs::PermissionsExt as _;
    let env = Env::sqlite();
    std::fs::write(env.dir.path().join("owners.txt"), "# tenants\nann\n\nbob\n").unwrap();
    let out = env.cli(&[
        "keys",
        "create",
        "--owners-from",
        "owners.txt",
        "--count",
        "2",
        "--name",
        "bulk",
        "--scope",
        "reports:read",
        "--out",
        "new-keys.jsonl",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = format!("{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
    let summary: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(summary["created"], 4);
    let file = env.dir.path().join("new-keys.jsonl");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let owners: Vec<&str> = lines
        .iter()
        .map(|l| l["owner_id"].as_str().unwrap())
        .collect();
    assert_eq!(owners.iter().filter(|o| **o == "ann").count(), 2);
    assert_eq!(owners.iter().filter(|o| **o == "bob").count(), 2);
    for l in &lines {
        let raw = l["api_key"].as_str().unwrap();
        assert!(raw.starts_with("kw_live_"), "{raw}");
        assert!(!printed.contains(raw), "a raw key was printed");
    }
    // Each key works, as its owner's.
    let server = env.serve(&[], &[]);
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        for l in &lines {
            let res = server
                .http
                .get(server.url("/v1/whoami"))
                .bearer_auth(l["api_key"].as_str().unwrap())
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
            let who: serde_json::Value = res.json().await.unwrap();
            assert_eq!(who["owner_id"], l["owner_id"]);
        }
    });
    drop(server);
    // More than one key needs --out; an existing file is never overwritten.
    let out = env.cli(&[
        "keys", "create", "--owner", "ann", "--name", "x", "--count", "2",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--out"));
    let out = env.cli(&[
        "keys",
        "create",
        "--owner",
        "cid",
        "--name",
        "x",
        "--out",
        "new-keys.jsonl",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("exists"));
    assert_eq!(std::fs::read_to_string(&file).unwrap().lines().count(), 4);
    let cid = env.cli_json(&["keys", "list", "--owner", "cid", "--format", "json"]);
    assert_eq!(
        cid.as_array().unwrap().len(),
        0,
        "nothing created for a refused file"
    );
    // The owner cap holds for the whole run: ann has 2 of 3, so 2 more are refused together.
    let out = env.cli(&[
        "keys",
        "create",
        "--owner",
        "ann",
        "--name",
        "x",
        "--count",
        "2",
        "--max-keys-per-owner",
        "3",
        "--out",
        "more.jsonl",
    ]);
    assert!(!out.status.success());
    let ann = env.cli_json(&["keys", "list", "--owner", "ann", "--format", "json"]);
    assert_eq!(ann.as_array().unwrap().len(), 2);
    assert!(
        !env.dir.path().join("more.jsonl").exists(),
        "an empty key file is left"
    );
}

/// A create → update → rotate → revoke through the server, and a revoke at the command line,
/// all in `keyward audit`, newest first, with their actors and changes; the first start's
/// bootstrap too. Bad filters are one-line errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_shows_who_did_what() {
    use reqwest::Method;
    use serde_json::json;
    let env = Env::sqlite();
    let server = env.serve(&[], &[]);
    let admin_key = server
        .bootstrap_key()
        .expect("first start bootstraps an admin key");
    let call = |m: Method, path: &str, body: serde_json::Value| {
        server
            .http
            .request(m, server.url(path))
            .bearer_auth(&admin_key)
            .json(&body)
            .send()
    };
    let res = call(
        Method::POST,
        "/admin/owners/acme/api-keys",
        json!({"name": "web"}),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 201);
    let id = res.json::<serde_json::Value>().await.unwrap()["key"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let key_path = format!("/admin/owners/acme/api-keys/{id}");
    let res = call(Method::PATCH, &key_path, json!({"scopes": ["logs:read"]}))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = call(Method::POST, &format!("{key_path}/rotate"), json!({}))
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let successor = res.json::<serde_json::Value>().await.unwrap()["key"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = call(
        Method::DELETE,
        &format!("/admin/owners/acme/api-keys/{successor}"),
        json!({}),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 204);
    stdout(&env.cli(&["keys", "revoke", &id]));

    let events = env.cli_json(&["audit", "--owner", "acme", "--json"]);
    let events = events.as_array().unwrap();
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    // The rotation's two events (the old key marked, its successor created) are one instant:
    // either may come first.
    let mut rotation = [actions[2], actions[3]];
    rotation.sort_unstable();
    assert_eq!(
        (&actions[..2], rotation, &actions[4..]),
        (
            &["key.revoked", "key.revoked"][..],
            ["key.created", "key.rotated"],
            &["key.updated", "key.created"][..]
        )
    );
    assert_eq!(events[0]["actor"], json!({"type": "cli"}));
    assert_eq!(events[0]["key_id"], json!(id));
    let admin_key_id = admin_key.split('_').nth(2).unwrap();
    for e in &events[1..] {
        assert_eq!(
            e["actor"],
            json!({"type": "admin_key", "id": admin_key_id}),
            "{e}"
        );
        assert_eq!(e["origin"]["client_addr"], "127.0.0.1");
    }
    assert_eq!(events[4]["changes"][0]["field"], "scopes");
    assert_eq!(events[4]["changes"][0]["new"], json!(["logs:read"]));

    let boot = env.cli_json(&["audit", "--action", "admin.bootstrapped", "--json"]);
    assert_eq!(boot.as_array().unwrap().len(), 1);
    assert_eq!(boot[0]["owner_id"], "keyward-admin");
    let table = stdout(&env.cli(&["audit", "--key", &id, "--since", "1h"]));
    assert!(table.starts_with("TIME"), "{table}");
    assert!(
        table.contains("key.rotated") && table.contains("rotated_to"),
        "{table}"
    );
    assert_eq!(
        env.cli_json(&["audit", "--owner", "acme", "--limit", "2", "--json"])
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let none = stdout(&env.cli(&["audit", "--until", "2000-01-01T00:00:00Z"]));
    assert_eq!(none, "No events.\n");
    for (bad, says) in [
        (&["audit", "--since", "yesterday"][..], "--since"),
        (&["audit", "--action", "key.nope"], "--action"),
        (&["audit", "--actor", "robot"], "--actor"),
        (&["audit", "--key", "short"], "key id"),
    ] {
        assert_one_line_error(&env.cli(bad), says);
    }
    server.terminate();
}
