//! Lifecycle webhooks end to end: `keyward serve --webhook-url` posts every audit event to a
//! receiver that verifies each delivery with the official Standard Webhooks library (PyPI
//! `standardwebhooks`, in the venv of `KEYWARD_BOTOCORE_PYTHON`; without it the tests skip
//! loudly, and fail under `CI=true`); a server killed between a change and its delivery loses
//! nothing; private targets are refused; `410 Gone` disables an endpoint until enabled again.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Env, Server};
use reqwest::Method;
use serde_json::{Value, json};

const ADMIN: &str = "admin-token-for-webhooks";
/// The secret the receiver knows.
const OLD: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// A newer one, signing first while the receiver still has the old one.
const NEW: &str = "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0";

fn python() -> Option<PathBuf> {
    let found = std::env::var_os("KEYWARD_BOTOCORE_PYTHON")
        .map(PathBuf::from)
        .filter(|p| {
            Command::new(p)
                .args(["-c", "import standardwebhooks"])
                .status()
                .is_ok_and(|s| s.success())
        });
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "KEYWARD_BOTOCORE_PYTHON (a python with standardwebhooks) is required under CI=true"
        );
        eprintln!("SKIPPED: set KEYWARD_BOTOCORE_PYTHON to a python with `standardwebhooks`");
    }
    found
}

/// The receiver script, running; killed on drop.
struct Receiver {
    child: Child,
    url: String,
    out: PathBuf,
}

impl Receiver {
    fn start(python: &Path, out: &Path, port: u16, answer: u16) -> Self {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/webhooks/receiver.py");
        let mut child = Command::new(python)
            .arg(&script)
            .arg(out)
            .env("WEBHOOK_SECRET", OLD)
            .env("PORT", port.to_string())
            .env("ANSWER", answer.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the receiver starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port: u16 = line.trim().parse().expect("the receiver prints its port");
        Self {
            child,
            url: format!("http://127.0.0.1:{port}/hooks/keyward"),
            out: out.to_owned(),
        }
    }

    /// What it received, once `done` says it is enough (or after 40 s).
    fn received(&self, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let start = Instant::now();
        loop {
            let lines: Vec<Value> = std::fs::read_to_string(&self.out)
                .unwrap_or_default()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            if done(&lines) || start.elapsed() > Duration::from_secs(40) {
                return lines;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn serve(env: &Env, url: &str) -> Server {
    env.serve(
        &["--webhook-url", url, "--webhook-allow-private"],
        &[
            ("KEYWARD_ADMIN_TOKEN", ADMIN),
            ("KEYWARD_WEBHOOK_SECRET", &format!("{NEW},{OLD}")),
        ],
    )
}

async fn call(server: &Server, method: Method, path: &str, body: Value) -> (u16, Value) {
    let res = server
        .http
        .request(method, server.url(path))
        .bearer_auth(ADMIN)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

fn of_owner<'a>(got: &'a [Value], owner: &str) -> Vec<&'a Value> {
    got.iter()
        .filter(|r| r["data"]["owner_id"] == owner)
        .collect()
}

/// The notices, delivered as every event is: a key that expires within the notice period (made
/// before the server starts; its first scan finds it), a key refused by its rate limit, a key
/// that spent its credits: `key.expiring`, `key.rate_limited` and `key.credits_low`, once each
/// however often noticed, and in the audit log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notices_are_delivered_once() {
    let Some(python) = python() else { return };
    let env = Env::sqlite();
    let rx = Receiver::start(&python, &env.path().join("got.jsonl"), 0, 204);
    let out = env.cli(&[
        "keys", "create", "--owner", "noticed", "--name", "soon", "--ttl", "12h", "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let soon: Value = serde_json::from_slice(&out.stdout).unwrap();
    let soon = soon["key"]["id"].as_str().unwrap().to_owned();
    let server = env.serve(
        &[
            "--webhook-url",
            &rx.url,
            "--webhook-allow-private",
            "--expiry-notice",
            "30d,1d",
            "--credits-notice",
            "50%",
            "--flush-interval",
            "1s",
        ],
        &[
            ("KEYWARD_ADMIN_TOKEN", ADMIN),
            ("KEYWARD_WEBHOOK_SECRET", OLD),
        ],
    );
    let create = |body: Value| {
        call(
            &server,
            Method::POST,
            "/admin/owners/noticed/api-keys",
            body,
        )
    };
    let (s, limited) = create(json!({"name": "limited",
        "rate_limit": {"requests": 1, "window_seconds": 3600}}))
    .await;
    assert_eq!(s, 201);
    let (s, metered) = create(json!({"name": "metered", "credits": {"limit": 4}})).await;
    assert_eq!(s, 201);
    for _ in 0..4 {
        for key in [&limited, &metered] {
            let (s, _) = call(
                &server,
                Method::POST,
                "/v1/verify",
                json!({"key": key["api_key"]}),
            )
            .await;
            assert_eq!(s, 200);
        }
    }

    let notices = ["key.credits_low", "key.expiring", "key.rate_limited"];
    rx.received(|g| {
        of_owner(g, "noticed")
            .iter()
            .filter(|r| notices.contains(&r["type"].as_str().unwrap_or("")))
            .count()
            >= 3
    });
    // A moment more: a second delivery of one would show now.
    std::thread::sleep(Duration::from_secs(2));
    let got = rx.received(|_| true);
    let mut seen: Vec<(&str, &Value)> = of_owner(&got, "noticed")
        .into_iter()
        .filter(|r| notices.contains(&r["type"].as_str().unwrap_or("")))
        .map(|r| (r["type"].as_str().unwrap(), &r["data"]["key_id"]))
        .collect();
    seen.sort_by_key(|(t, _)| *t);
    assert_eq!(
        seen,
        [
            ("key.credits_low", &metered["key"]["id"]),
            ("key.expiring", &json!(soon)),
            ("key.rate_limited", &limited["key"]["id"]),
        ],
        "each once: {got:?}"
    );
    assert!(got.iter().all(|r| r["ok"] == true), "{got:?}");

    let out = env.cli(&["audit", "--owner", "noticed", "--actor", "system", "--json"]);
    let events: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut actions: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    actions.sort_unstable();
    assert_eq!(actions, notices);
    server.terminate();
}

/// A create → update → rotate → revoke: five events, each delivered, signed with both secrets
/// (the receiver knows the older one only), `webhook-id` the event id; the deliveries route and
/// the metrics say so; a revoke at the command line is delivered too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_is_delivered_signed() {
    let Some(python) = python() else { return };
    let env = Env::sqlite();
    let rx = Receiver::start(&python, &env.path().join("got.jsonl"), 0, 204);
    let server = serve(&env, &rx.url);
    let (s, created) = call(
        &server,
        Method::POST,
        "/admin/owners/hooked/api-keys",
        json!({"name": "hooked"}),
    )
    .await;
    assert_eq!(s, 201);
    let id = created["key"]["id"].as_str().unwrap().to_owned();
    let path = format!("/admin/owners/hooked/api-keys/{id}");
    assert_eq!(
        call(&server, Method::PATCH, &path, json!({"name": "renamed"}))
            .await
            .0,
        200
    );
    let (s, successor) = call(&server, Method::POST, &format!("{path}/rotate"), json!({})).await;
    assert_eq!(s, 201);
    let next = successor["key"]["id"].as_str().unwrap().to_owned();
    let (s, _) = call(
        &server,
        Method::DELETE,
        &format!("/admin/owners/hooked/api-keys/{next}"),
        Value::Null,
    )
    .await;
    assert_eq!(s, 204);

    let got = rx.received(|g| of_owner(g, "hooked").len() >= 5);
    assert!(got.iter().all(|r| r["ok"] == true), "{got:?}");
    let mine = of_owner(&got, "hooked");
    let mut types: Vec<&str> = mine.iter().map(|r| r["type"].as_str().unwrap()).collect();
    types.sort_unstable();
    assert_eq!(
        types,
        [
            "key.created",
            "key.created",
            "key.revoked",
            "key.rotated",
            "key.updated"
        ]
    );
    for r in &mine {
        assert_eq!(r["webhook_id"], r["data"]["id"]);
        assert_eq!(r["signatures"], 2, "both secrets sign while one rotates");
        assert_eq!(r["data"]["actor"]["type"], "admin");
    }

    // The receiver answers before the server records the attempt: wait for the last record.
    let start = Instant::now();
    let page = loop {
        let (s, page) = call(
            &server,
            Method::GET,
            "/admin/webhooks/deliveries?status=delivered&limit=100",
            Value::Null,
        )
        .await;
        assert_eq!(s, 200);
        if page["items"].as_array().is_some_and(|d| d.len() >= 5)
            || start.elapsed() > Duration::from_secs(10)
        {
            break page;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let delivered = page["items"].as_array().unwrap();
    assert!(delivered.len() >= 5, "{page}");
    assert!(
        delivered
            .iter()
            .all(|d| d["status"] == "delivered" && d["attempts"] == 1)
    );
    assert_eq!(
        call(
            &server,
            Method::GET,
            "/admin/webhooks/deliveries?status=nope",
            Value::Null
        )
        .await
        .0,
        422
    );
    let anonymous = server
        .http
        .get(server.url("/admin/webhooks/deliveries"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let metrics = server
        .http
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let delivered_total: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("keyward_webhook_deliveries_total{outcome=\"delivered\"} "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no delivered counter in {metrics}"));
    assert!(delivered_total >= 5.0, "{metrics}");
    // A change at the command line, where the webhooks are configured too, is delivered by
    // the server.
    let out = env.cli_env(
        &["keys", "revoke", &id],
        &[("KEYWARD_WEBHOOK_URL", &rx.url)],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let by_cli = |g: &[Value]| {
        g.iter().any(|r| {
            r["type"] == "key.revoked"
                && r["data"]["key_id"] == json!(id)
                && r["data"]["actor"]["type"] == "cli"
        })
    };
    assert!(
        by_cli(&rx.received(by_cli)),
        "the CLI's revoke was delivered"
    );
    server.terminate();
}

/// The server is killed (SIGKILL) right after a change, with the endpoint down; started again
/// with the endpoint up, it delivers that event and the next: nothing is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_loses_no_event() {
    let Some(python) = python() else { return };
    let env = Env::sqlite();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/hooks/keyward");
    let server = serve(&env, &url);
    let (s, first) = call(
        &server,
        Method::POST,
        "/admin/owners/crash/api-keys",
        json!({"name": "before the crash"}),
    )
    .await;
    assert_eq!(s, 201);
    let first = first["key"]["id"].as_str().unwrap().to_owned();
    // Give the first attempt time to fail (connection refused), then kill.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    drop(server);

    let rx = Receiver::start(&python, &env.path().join("got.jsonl"), port, 204);
    let server = serve(&env, &url);
    let (s, second) = call(
        &server,
        Method::POST,
        "/admin/owners/crash/api-keys",
        json!({"name": "after the crash"}),
    )
    .await;
    assert_eq!(s, 201);
    let second = second["key"]["id"].as_str().unwrap().to_owned();
    let got = rx.received(|g| {
        let keys: Vec<&Value> = of_owner(g, "crash")
            .iter()
            .map(|r| &r["data"]["key_id"])
            .collect();
        keys.contains(&&json!(first)) && keys.contains(&&json!(second))
    });
    let keys: Vec<&str> = of_owner(&got, "crash")
        .iter()
        .map(|r| r["data"]["key_id"].as_str().unwrap())
        .collect();
    assert!(
        keys.contains(&first.as_str()) && keys.contains(&second.as_str()),
        "both events delivered: {got:?}"
    );
    assert!(got.iter().all(|r| r["ok"] == true));
    server.terminate();
}

/// An endpoint answering `410 Gone` gets no more deliveries, from any instance and across
/// restarts, until enabled again; the failed ones are listed with their status and can be sent
/// again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gone_endpoints_are_dropped() {
    let Some(python) = python() else { return };
    let env = Env::sqlite();
    let rx = Receiver::start(&python, &env.path().join("got.jsonl"), 0, 410);
    let server = serve(&env, &rx.url);
    for name in ["one", "two"] {
        let (s, _) = call(
            &server,
            Method::POST,
            "/admin/owners/gone/api-keys",
            json!({ "name": name }),
        )
        .await;
        assert_eq!(s, 201);
    }
    let start = Instant::now();
    let failed = loop {
        let (_, page) = call(
            &server,
            Method::GET,
            "/admin/webhooks/deliveries?status=failed",
            Value::Null,
        )
        .await;
        let items = page["items"].as_array().cloned().unwrap_or_default();
        if items.len() >= 2 || start.elapsed() > Duration::from_secs(20) {
            break items;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(failed.len() >= 2, "{failed:?}");
    assert!(failed.iter().any(|d| d["last_status"] == 410));
    // At most one post per endpoint reached it: the first 410 ended them.
    let posts = std::fs::read_to_string(env.path().join("got.jsonl"))
        .unwrap_or_default()
        .lines()
        .count();
    assert!(posts <= 2, "{posts} posts to a gone endpoint");
    let id = failed[0]["id"].as_str().unwrap();
    let (s, _) = call(
        &server,
        Method::POST,
        &format!("/admin/webhooks/deliveries/{id}/redeliver"),
        Value::Null,
    )
    .await;
    assert_eq!(s, 202);
    let (s, _) = call(
        &server,
        Method::POST,
        "/admin/webhooks/deliveries/AAAAAAAAAAAAAAAAAAAA/redeliver",
        Value::Null,
    )
    .await;
    assert_eq!(s, 404);
    let (s, listed) = call(
        &server,
        Method::GET,
        "/admin/webhooks/endpoints",
        Value::Null,
    )
    .await;
    assert_eq!(s, 200);
    let listed = listed["items"].as_array().cloned().unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["enabled"], false);
    assert_eq!(listed[0]["configured"], true);
    assert_eq!(listed[0]["disabled"]["reason"], "answered 410 Gone");
    let endpoint_id = listed[0]["id"].as_str().unwrap().to_owned();
    assert!(server.terminate().contains("410 Gone"));

    // The endpoint stays disabled across a restart, though it answers again now, until an
    // administrator enables it; then it gets the events made after.
    let port: u16 = rx
        .url
        .split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let url = rx.url.clone();
    drop(rx);
    let rx = Receiver::start(&python, &env.path().join("back.jsonl"), port, 204);
    let server = serve(&env, &url);
    let create = |name: &'static str| {
        let server = &server;
        async move {
            let (s, created) = call(
                server,
                Method::POST,
                "/admin/owners/gone/api-keys",
                json!({ "name": name }),
            )
            .await;
            assert_eq!(s, 201);
            created["key"]["id"].as_str().unwrap().to_owned()
        }
    };
    let while_off = create("while disabled").await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (s, _) = call(
        &server,
        Method::POST,
        "/admin/webhooks/endpoints/00000000000000000000000000000000/enable",
        Value::Null,
    )
    .await;
    assert_eq!(s, 404);
    let (s, _) = call(
        &server,
        Method::POST,
        &format!("/admin/webhooks/endpoints/{endpoint_id}/enable"),
        Value::Null,
    )
    .await;
    assert_eq!(s, 204);
    let after = create("after enabling").await;
    let got = rx.received(|g| g.iter().any(|r| r["data"]["key_id"] == after.as_str()));
    assert!(
        got.iter().any(|r| r["data"]["key_id"] == after.as_str()),
        "delivered once enabled: {got:?}"
    );
    assert!(
        !got.iter()
            .any(|r| r["data"]["key_id"] == while_off.as_str()),
        "nothing kept for a disabled endpoint: {got:?}"
    );
    let (_, listed) = call(
        &server,
        Method::GET,
        "/admin/webhooks/endpoints",
        Value::Null,
    )
    .await;
    assert_eq!(listed["items"][0]["enabled"], true);
    server.terminate();
}

/// A private target without `--webhook-allow-private`, or a URL without a secret, stops the
/// server at start with one line saying why.
#[test]
fn bad_webhook_settings_stop_the_start() {
    let env = Env::sqlite();
    let out = env.cli_env(
        &[
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--webhook-url",
            "http://127.0.0.1:9/x",
        ],
        &[
            ("KEYWARD_WEBHOOK_SECRET", OLD),
            ("KEYWARD_ADMIN_TOKEN", ADMIN),
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("--webhook-allow-private"), "{err}");
    let out = env.cli_env(
        &[
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--webhook-url",
            "https://example.com/x",
        ],
        &[("KEYWARD_ADMIN_TOKEN", ADMIN)],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("KEYWARD_WEBHOOK_SECRET"), "{err}");
    assert!(!err.contains(OLD));
}
