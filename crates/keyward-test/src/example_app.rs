//! Runs one of the example apps (`examples/axum-app`, `examples/actix-app`) as its user would,
//! and drives it over HTTP: the examples are documentation, and this proves they work.
//!
//! The contract both examples share: `PORT` picks the port, `KEYWARD_PEPPER` the pepper, keys go
//! to `keys.db` in the working directory, `POST /api-keys` with `x-user` creates a key for that
//! user, `GET /reports` needs scope `reports:read`, `GET /health` is public.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Kills the child when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// Starts `binary` in a fresh directory and checks the example's whole story: create a key as
/// `alice`, call the protected route with it (200, owner alice), without it (401), and with a key
/// lacking the scope (403).
///
/// # Panics
/// When the example does not start or does not behave as documented.
#[allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test support: a failure is the test's verdict"
)]
pub async fn smoke(binary: &Path) {
    let dir = std::env::temp_dir().join(format!("keyward-example-{}", free_port()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let port = free_port();
    let child = Command::new(binary)
        .current_dir(&dir)
        .env("PORT", port.to_string())
        .env(
            "KEYWARD_PEPPER",
            "DA2AHcTAP6VB4lkhg3M3eOZ2a+qTubZujx8KO/afhxo=", // openssl rand -base64 32
        )
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
    let _running = Running(child);
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();

    let started = Instant::now();
    loop {
        if http.get(format!("{base}/reports")).send().await.is_ok() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{} did not listen on {port}",
            binary.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let create = |scopes: Value| {
        let http = http.clone();
        let url = format!("{base}/api-keys");
        async move {
            let res = http
                .post(url)
                .header("x-user", "alice")
                .json(&json!({ "name": "smoke", "scopes": scopes }))
                .send()
                .await
                .expect("create");
            assert_eq!(res.status(), 201, "create a key");
            let body: Value = res.json().await.expect("json");
            body["api_key"].as_str().expect("api_key").to_owned()
        }
    };
    let reader = create(json!(["reports:read"])).await;
    let other = create(json!(["billing:read"])).await;

    let res = http
        .get(format!("{base}/reports"))
        .bearer_auth(&reader)
        .send()
        .await
        .expect("reports");
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["owner"], "alice");

    let res = http.get(format!("{base}/reports")).send().await.expect("r");
    assert_eq!(res.status(), 401, "no key");
    let res = http
        .get(format!("{base}/reports"))
        .header("x-api-key", &other)
        .send()
        .await
        .expect("r");
    assert_eq!(res.status(), 403, "key without reports:read");

    // The public route needs no key, and no scope from a key that lacks it.
    for key in [None, Some(&other)] {
        let mut req = http.get(format!("{base}/health"));
        if let Some(key) = key {
            req = req.header("x-api-key", key);
        }
        let res = req.send().await.expect("health");
        assert_eq!(
            res.status(),
            200,
            "public /health with key {:?}",
            key.is_some()
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
