//! The [`TestApp`] handle every case drives: a started app over a store, its HTTP client, and the helpers that create, sign and send.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use keyward_core::Keyward;
use keyward_core::key::KeyId;
use keyward_core::sigv4::{AccessKey, Payload, SignableRequest, Signer};
use keyward_core::store::KeyStore;
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::*;

/// A running app and a client for it.
#[derive(Debug, Clone)]
pub struct TestApp {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The bound address.
    pub addr: SocketAddr,
    /// The handle the app was built over.
    pub keyward: Keyward,
    /// An HTTP client.
    pub client: reqwest::Client,
    tag: String,
}

/// A created key: the raw key and its safe view.
#[derive(Debug, Clone)]
pub struct Created {
    /// The raw key.
    pub api_key: String,
    /// The key's id.
    pub id: String,
    /// The whole response body.
    pub body: Value,
}

impl TestApp {
    /// Builds the suite's [`Keyward`] over `store` and starts an app with `spawn`.
    pub async fn start<A, AFut>(store: Arc<dyn KeyStore>, spawn: A) -> Self
    where
        A: FnOnce(Keyward) -> AFut,
        AFut: Future<Output = SocketAddr>,
    {
        Self::start_with(suite_keyward(store), spawn).await
    }

    /// Starts an app over `keyward` with `spawn`.
    pub async fn start_with<A, AFut>(keyward: Keyward, spawn: A) -> Self
    where
        A: FnOnce(Keyward) -> AFut,
        AFut: Future<Output = SocketAddr>,
    {
        let addr = spawn(keyward.clone()).await;
        let tag = KeyId::generate().expect("os random").to_string();
        Self {
            base: format!("http://{addr}"),
            addr,
            keyward,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client builds"),
            tag,
        }
    }

    /// An owner id unique to this run.
    #[must_use]
    pub fn owner(&self, name: &str) -> String {
        format!("{name}-{}", self.tag)
    }

    /// `base` + `path`.
    #[must_use]
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request as `owner` (the `x-test-owner` header).
    pub fn as_owner(
        &self,
        method: reqwest::Method,
        path: &str,
        owner: &str,
    ) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(path))
            .header("x-test-owner", owner)
    }

    /// `POST /api-keys` with `body` as `owner`.
    pub async fn create_raw(&self, owner: &str, body: &Value) -> reqwest::Response {
        self.as_owner(reqwest::Method::POST, "/api-keys", owner)
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    /// `GET /api-keys` as `owner`: the first page of the owner's keys, as JSON.
    pub async fn list(&self, owner: &str) -> Value {
        self.as_owner(reqwest::Method::GET, "/api-keys", owner)
            .send()
            .await
            .expect("sent")
            .json()
            .await
            .expect("json")
    }

    /// Creates a key, asserting `201`.
    pub async fn create(&self, owner: &str, body: Value) -> Created {
        let res = self.create_raw(owner, &body).await;
        assert_eq!(res.status(), 201, "create {body}: {:?}", res.text().await);
        created(res).await
    }

    /// `POST /admin/owners/{owner}/api-keys` with `body` as the administrator (`x-test-admin`):
    /// the way to give a key what only administrators set (limits, credits, allowlists,
    /// metadata).
    pub async fn admin_create_raw(&self, owner: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(&format!("/admin/owners/{owner}/api-keys")))
            .header("x-test-admin", "yes")
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    /// Creates a key as the administrator, asserting `201`.
    pub async fn admin_create(&self, owner: &str, body: Value) -> Created {
        let res = self.admin_create_raw(owner, &body).await;
        assert_eq!(
            res.status(),
            201,
            "admin create {body}: {:?}",
            res.text().await
        );
        created(res).await
    }

    /// `GET path` with `Authorization: Bearer key`.
    pub async fn get_bearer(&self, path: &str, key: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .header("authorization", format!("Bearer {key}"))
            .send()
            .await
            .expect("request sent")
    }

    /// `GET path` with `X-API-Key: key`.
    pub async fn get_header(&self, path: &str, key: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .header("x-api-key", key)
            .send()
            .await
            .expect("request sent")
    }

    /// The status `GET /protected` answers for `key`.
    pub async fn protected_status(&self, key: &str) -> u16 {
        self.get_bearer("/protected", key).await.status().as_u16()
    }
}

/// A request to sign and send: `path` may carry a query (`/protected?a=1`).
#[derive(Debug, Clone, Copy)]
pub struct ToSign<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// Path and optional query, as sent.
    pub path: &'a str,
    /// Headers to send and sign besides `host` (e.g. `x-keyward-nonce`).
    pub headers: &'a [(&'a str, &'a str)],
    /// The body.
    pub body: &'a [u8],
}

impl<'a> ToSign<'a> {
    /// `method path` with no extra header and no body.
    #[must_use]
    pub fn new(method: &'a str, path: &'a str) -> Self {
        Self {
            method,
            path,
            headers: &[],
            body: b"",
        }
    }
}

impl TestApp {
    /// The headers the core [`Signer`] adds to sign `req` with `key` at `at` for the suite's
    /// region and service (`Authorization`, `X-Amz-Date`). The `host` signed is the one
    /// reqwest sends for [`TestApp::base`].
    #[must_use]
    pub fn sign(
        &self,
        req: &ToSign<'_>,
        key: &Created,
        at: OffsetDateTime,
    ) -> Vec<(String, String)> {
        let host = self.addr.to_string();
        let mut headers: Vec<(&str, &[u8])> = vec![("host", host.as_bytes())];
        headers.extend(req.headers.iter().map(|(n, v)| (*n, v.as_bytes())));
        let (path, query) = match req.path.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (req.path, None),
        };
        let request =
            SignableRequest::new(req.method, path, query, &headers, Payload::Bytes(req.body));
        let config = self.keyward.signing_config();
        let out = Signer::new(&config.region, &config.service)
            .expect("suite region and service are valid")
            .sign(
                &AccessKey::new(&key.id, key.api_key.as_bytes()).expect("credentials"),
                &request,
                at,
            )
            .expect("the suite's requests can be signed");
        out.headers()
            .into_iter()
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect()
    }

    /// Sends `req` (its extra headers and body) with `auth` headers added.
    pub async fn send_signed(
        &self,
        req: &ToSign<'_>,
        auth: &[(String, String)],
    ) -> reqwest::Response {
        let method = reqwest::Method::from_bytes(req.method.as_bytes()).expect("method");
        let mut b = self
            .client
            .request(method, self.url(req.path))
            .body(req.body.to_vec());
        for (n, v) in req.headers {
            b = b.header(*n, *v);
        }
        for (n, v) in auth {
            b = b.header(n.as_str(), v.as_str());
        }
        b.send().await.expect("request sent")
    }

    /// Signs `req` with `key` now and sends it.
    pub async fn signed(&self, req: &ToSign<'_>, key: &Created) -> reqwest::Response {
        let auth = self.sign(req, key, OffsetDateTime::now_utc());
        self.send_signed(req, &auth).await
    }

    /// Creates a signing key (`"signing": true`) with `scopes` for `owner`.
    pub async fn create_signing(&self, owner: &str, scopes: &[&str]) -> Created {
        self.create(
            owner,
            json!({"name": "signing", "scopes": scopes, "signing": true}),
        )
        .await
    }
}

/// Reads a `201 {api_key, key}` body.
pub async fn created(res: reqwest::Response) -> Created {
    assert_eq!(
        res.headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store"),
        "responses with a raw key must not be cached"
    );
    let body: Value = res.json().await.expect("json body");
    let api_key = body["api_key"].as_str().expect("api_key").to_owned();
    let id = body["key"]["id"].as_str().expect("key.id").to_owned();
    assert!(api_key.starts_with("kw_live_"), "{api_key}");
    assert!(api_key.contains(&id));
    Created { api_key, id, body }
}

/// Asserts a problem document of `status` and `code`; returns its body.
pub async fn assert_problem(res: reqwest::Response, status: u16, code: &str) -> Value {
    let got = res.status().as_u16();
    let ct = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let www = res
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap_or("").to_owned());
    let retry = res
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap_or("").to_owned());
    let text = res.text().await.expect("body");
    assert_eq!(got, status, "status; body: {text}");
    assert!(
        ct.starts_with("application/problem+json"),
        "content type {ct:?}; body: {text}"
    );
    let body: Value = serde_json::from_str(&text).expect("problem body is JSON");
    assert_eq!(body["status"], status, "{text}");
    assert_eq!(body["code"], code, "{text}");
    assert!(
        body["type"].is_string() && body["title"].is_string(),
        "{text}"
    );
    if status == 401 {
        assert!(
            www.as_deref().is_some_and(|v| v.starts_with("Bearer")),
            "401 without WWW-Authenticate: Bearer"
        );
    }
    if status == 429 {
        let secs: u64 = retry
            .as_deref()
            .and_then(|v| v.parse().ok())
            .expect("429 with a numeric Retry-After");
        assert!(secs >= 1);
    }
    body
}

/// Polls `probe` every 100 ms until it returns `true`, for at most `limit`.
pub async fn eventually<F, Fut>(limit: Duration, mut probe: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = std::time::Instant::now();
    loop {
        if probe().await {
            return true;
        }
        if start.elapsed() > limit {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Sends raw bytes over TCP and returns the status code of the answer (`None` when the
/// server closed the connection without one).
pub async fn raw_status(addr: SocketAddr, request: Vec<u8>) -> Option<u16> {
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(addr).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        s.write_all(&request).ok()?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        while !buf.windows(2).any(|w| w == b"\r\n") {
            match s.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let line = String::from_utf8_lossy(&buf);
        line.split_whitespace().nth(1)?.parse().ok()
    })
    .await
    .ok()
    .flatten()
}

/// A view (of a key, a page, a principal) shows no secret: not the raw key, no field that could
/// hold one. The raw key's own field, `api_key`, is only in create and rotate answers.
pub(crate) fn fields_free_of_secrets(v: &Value, secret: &str) {
    let text = v.to_string();
    assert!(
        !text.contains(secret),
        "a view contains the raw key: {text}"
    );
    for banned in ["digest", "secret", "sealed", "pepper", "api_key"] {
        assert!(
            !text.contains(&format!("\"{banned}")),
            "a view has a {banned} field: {text}"
        );
    }
}

/// The secret part of a raw key (everything after the key id).
pub(crate) fn secret_of(api_key: &str) -> &str {
    api_key.rsplit('_').next().unwrap_or(api_key)
}
