//! nginx `auth_request` in front of a static location, asking `keyward serve`'s `/v1/authz`.
//! Runs when nginx is installed; skipped loudly otherwise, and required under `CI=true`
//! (`.ci/run` installs nginx).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Env, rt};
use reqwest::StatusCode;
use serde_json::json;

fn nginx_binary() -> Option<PathBuf> {
    for p in ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"] {
        if Path::new(p).is_file() {
            return Some(PathBuf::from(p));
        }
    }
    let out = Command::new("sh")
        .args(["-c", "command -v nginx"])
        .output()
        .ok()?;
    let p = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!p.is_empty()).then(|| PathBuf::from(p))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Nginx(Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_nginx(bin: &Path, dir: &Path, keyward: &str) -> (Nginx, String) {
    let port = free_port();
    for sub in ["www/reports", "www/billing", "tmp", "logs"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    std::fs::write(dir.join("www/reports/index.txt"), "quarterly numbers\n").unwrap();
    std::fs::write(dir.join("www/billing/index.txt"), "invoices\n").unwrap();
    let d = dir.display();
    let upstream = keyward.trim_start_matches("http://");
    let conf = format!(
        r#"
daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/logs/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {d}/www;
        location = /_auth_reports {{
            internal;
            proxy_pass http://{upstream}/v1/authz?scope=reports:read;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
        }}
        location = /_auth_billing {{
            internal;
            proxy_pass http://{upstream}/v1/authz?scope=billing:write;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
        }}
        location = /_auth_signed {{
            internal;
            proxy_pass http://{upstream}/v1/authz?scope=reports:read;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            # what the client signed: its method, target and Host
            proxy_set_header X-Original-Method $request_method;
            proxy_set_header X-Original-URI $request_uri;
            proxy_set_header X-Forwarded-Host $http_host;
        }}
        location /signed/ {{
            auth_request /_auth_signed;
            alias {d}/www/reports/;
        }}
        location /reports/ {{
            auth_request /_auth_reports;
            auth_request_set $keyward_owner $upstream_http_x_keyward_owner;
            add_header X-Owner $keyward_owner always;
        }}
        location /billing/ {{
            auth_request /_auth_billing;
        }}
    }}
}}
"#
    );
    let conf_path = dir.join("nginx.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let child = Command::new(bin)
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(&conf_path)
        .arg("-e")
        .arg(dir.join("logs/error.log"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("nginx starts");
    let nginx = Nginx(child);
    // Wait until it accepts connections (a start-up guard, not a timing assertion).
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "nginx did not start: {}",
            std::fs::read_to_string(dir.join("logs/error.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (nginx, format!("http://127.0.0.1:{port}"))
}

#[test]
fn nginx_auth_request() {
    let Some(bin) = nginx_binary() else {
        assert!(
            !keyward_test::services::ci(),
            "nginx is required under CI=true (.ci/run installs it)"
        );
        eprintln!(
            "\n!!! SKIPPED nginx_auth_request: nginx is not installed (apt-get install nginx) !!!\n"
        );
        return;
    };
    let env = Env::sqlite();
    let s = env.serve(&[], &[]);
    let admin = s.bootstrap_key().unwrap();
    let nginx_dir = tempfile::tempdir().unwrap();
    let (_nginx, front) = start_nginx(&bin, nginx_dir.path(), &s.base);
    rt().block_on(async {
        let r = s
            .http
            .post(s.url("/admin/owners/alice/api-keys"))
            .bearer_auth(&admin)
            .json(&json!({"name": "reports", "scopes": ["reports:read"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let key = r.json::<serde_json::Value>().await.unwrap()["api_key"]
            .as_str()
            .unwrap()
            .to_owned();
        let page = format!("{front}/reports/index.txt");

        let r = s.http.get(&page).bearer_auth(&key).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["x-owner"], "alice");
        assert_eq!(r.text().await.unwrap(), "quarterly numbers\n");
        let r = s
            .http
            .get(&page)
            .header("X-API-Key", &key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);

        let r = s.http.get(&page).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "missing key");
        let r = s
            .http
            .get(&page)
            .bearer_auth("kw_live_AbCdEf012345_garbage")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "invalid key");

        let r = s
            .http
            .get(format!("{front}/billing/index.txt"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "wrong scope");
    });
    s.terminate();
}

/// SigV4-signed requests through `auth_request`, with the documented snippet: the proxy names
/// the original method, URI and Host; no body reaches keyward, so only requests that signed an
/// empty body pass.
#[test]
fn nginx_auth_request_signed() {
    use keyward_core::sigv4::{AccessKey, Payload, SignableRequest, Signer};
    let Some(bin) = nginx_binary() else {
        assert!(
            !keyward_test::services::ci(),
            "nginx is required under CI=true (.ci/run installs it)"
        );
        eprintln!(
            "\n!!! SKIPPED nginx_auth_request_signed: nginx is not installed (apt-get install nginx) !!!\n"
        );
        return;
    };
    let env = Env::sqlite();
    let s = env.serve(
        &["--forwarded-headers", "nginx"],
        &[(
            "KEYWARD_ENCRYPTION_KEY",
            "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
        )],
    );
    let admin = s.bootstrap_key().unwrap();
    let nginx_dir = tempfile::tempdir().unwrap();
    let (_nginx, front) = start_nginx(&bin, nginx_dir.path(), &s.base);
    let host = front.trim_start_matches("http://").to_owned();
    rt().block_on(async {
        let r = s
            .http
            .post(s.url("/admin/owners/alice/api-keys"))
            .bearer_auth(&admin)
            .json(&json!({"name": "signer", "scopes": ["reports:read"], "signing": true}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let v = r.json::<serde_json::Value>().await.unwrap();
        let raw = v["api_key"].as_str().unwrap().to_owned();
        let id = v["key"]["id"].as_str().unwrap().to_owned();
        let sign = |method: &str, path: &str, query: Option<&str>, body: &[u8]| {
            let headers: Vec<(&str, &[u8])> = vec![("host", host.as_bytes())];
            let req = SignableRequest::new(method, path, query, &headers, Payload::Bytes(body));
            Signer::new("us-east-1", "keyward")
                .unwrap()
                .sign(
                    &AccessKey::new(&id, raw.as_bytes()).unwrap(),
                    &req,
                    time::OffsetDateTime::now_utc(),
                )
                .unwrap()
                .headers()
                .into_iter()
                .map(|(n, v)| (n.to_owned(), v.to_owned()))
                .collect::<Vec<_>>()
        };
        let send = |method: &str, url: String, headers: Vec<(String, String)>, body: &[u8]| {
            let mut r = s
                .http
                .request(method.parse().unwrap(), url)
                .body(body.to_vec());
            for (n, v) in headers {
                r = r.header(n, v);
            }
            r.send()
        };

        let h = sign("GET", "/signed/index.txt", Some("v=1"), b"");
        let r = send(
            "GET",
            format!("{front}/signed/index.txt?v=1"),
            h.clone(),
            b"",
        )
        .await
        .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.text().await.unwrap(), "quarterly numbers\n");
        // Replayed.
        let r = send("GET", format!("{front}/signed/index.txt?v=1"), h, b"")
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "replay");
        // Sent to another path than signed.
        let h = sign("GET", "/signed/index.txt", None, b"");
        let r = send("GET", format!("{front}/signed/other.txt"), h, b"")
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "altered path");
        // A signed body is never seen by keyward behind auth_request: refused.
        let h = sign("POST", "/signed/index.txt", None, b"{}");
        let r = send("POST", format!("{front}/signed/index.txt"), h, b"{}")
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "signed body");
    });
    s.terminate();
}
