//! One black-box HTTP suite, written once and run over real sockets against every web adapter
//! (axum, actix-web) and every store: DESIGN.md §6 row by row.
//!
//! # The test app contract
//!
//! Each adapter's test builds an app over the [`Keyward`] the suite hands it (see
//! [`suite_keyward`] for its policy), binds it to `127.0.0.1:0` with the peer address available
//! for IP allowlists, serves it in the background and returns the bound address. The app must
//! expose exactly:
//!
//! | route | behaviour |
//! | --- | --- |
//! | management routes under `/api-keys` | the adapter's management routes, default prefix and body limit (64 KiB); the owner resolver reads header `x-test-owner` (absent or empty → `401` problem); API-key callers not allowed |
//! | admin routes `/admin/owners/{owner_id}/api-keys` | mounted, the admin check passes when header `x-test-admin` is `yes` (otherwise `403` problem) |
//! | `GET /protected` | requires a verified key with scope `reports:read` (all-of); answers `200` with the `Principal` as JSON (`key_id`, `owner_id`, `scopes`, …) |
//! | `GET /any` | requires any of `a:x`, `b:x`; answers `200` with the `Principal` as JSON |
//! | `POST` and `PUT /echo` | requires a verified key with scope `reports:read` (behind the same authentication as `/protected`); answers `200` with `{"principal": Principal, "body": "<the request body as the handler read it>"}` |
//! | `GET /open` | no authentication; answers `200` |
//! | `GET /openapi.json` | `keyward_core::openapi::document("/api-keys", true, keyward.signing_enabled())` as JSON |
//!
//! Credentials are `Authorization: Bearer <key>` and `X-API-Key: <key>` (default names), and
//! SigV4-signed requests (`Authorization: AWS4-HMAC-SHA256 …`, DESIGN.md §7): the suite's
//! [`Keyward`] has an [`EncryptionKeyring`] (signing enabled, default region and service, real
//! clock) and a signed-body limit of [`SIGNED_BODY_LIMIT`] bytes. The signing cases create
//! signing keys through the management route with `"signing": true`, sign with the core
//! [`Signer`] or live with botocore ([`crate::stock_signer`]), and need nothing more from the
//! app; `case_signing_disabled` starts a second app over an engine without a keyring.
//!
//! Management bodies over the limit get `413`; the adapter reads and discards an oversize body
//! up to 1 MiB before answering, so that a client still sending sees the `413` rather than a
//! reset connection (the suite sends ~200 KiB, with and without `Content-Length`).
//!
//! # Running it
//!
//! ```text
//! keyward_test::http_suite!(store = make_store, spawn = spawn_app);
//! ```
//!
//! generates one `#[tokio::test]` per case, where `make_store` is `async fn() -> S` with `S`
//! `Arc<dyn KeyStore>` or `Option<Arc<dyn KeyStore>>` (`None` skips, as the store suite) and
//! `spawn_app` is `async fn(Keyward) -> SocketAddr`. Cases use real time with short TTLs and
//! grace periods and poll for the change (no timed assertions); each case uses owners of its own,
//! so a shared database works.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::missing_panics_doc,
    reason = "test support: a case fails by panicking on a broken expectation"
)]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use keyward_core::crypto::EncryptionKeyring;
use keyward_core::key::KeyId;
use keyward_core::model::Policy;
use keyward_core::scope::ScopeCatalog;
use keyward_core::signing::SigningConfig;
use keyward_core::sigv4::{Credentials, Payload, SignableRequest, Signer};
use keyward_core::store::{Cursor, KeyStore, Page, StoreError, UsageDelta};
use keyward_core::{KeyFormat, KeyRecord, Keyring, Keyward};
use serde_json::{Value, json};

/// The maximum of keys per owner the suite's policy sets.
pub const MAX_KEYS: usize = 5;

/// What the suite grants from: `reports:*`, `a:x`, `b:x`.
pub const CATALOG: [&str; 3] = ["reports:*", "a:x", "b:x"];

/// The largest body the suite's engine buffers to verify a signed request.
pub const SIGNED_BODY_LIMIT: usize = 8 * 1024;

/// The longest the suite's engine waits for a signed body once its signer is known.
pub const SIGNED_BODY_TIME: Duration = Duration::from_secs(2);

/// A fixed test keyring for sealing signing secrets (never use outside tests).
#[must_use]
pub fn suite_encryption_keyring() -> EncryptionKeyring {
    EncryptionKeyring::new(vec![(1, zeroize::Zeroizing::new(vec![0x5a; 32]))])
        .expect("a 32-byte key is a valid keyring")
}

fn suite_builder(store: Arc<dyn KeyStore>) -> keyward_core::KeywardBuilder {
    let policy = Policy {
        max_keys_per_owner: Some(u32::try_from(MAX_KEYS).unwrap_or(5)),
        catalog: ScopeCatalog::only(CATALOG).expect("catalog scopes are well formed"),
        ..Policy::default()
    };
    Keyward::builder(store, Keyring::insecure_test_keyring()).policy(policy)
}

/// The [`Keyward`] every case runs over: default key format (`kw_live_…`), at most
/// [`MAX_KEYS`] keys per owner, scopes limited to [`CATALOG`], signing enabled with
/// [`suite_encryption_keyring`] and signed bodies up to [`SIGNED_BODY_LIMIT`].
#[must_use]
pub fn suite_keyward(store: Arc<dyn KeyStore>) -> Keyward {
    suite_builder(store)
        .encryption(suite_encryption_keyring())
        .signing(SigningConfig {
            max_body_bytes: SIGNED_BODY_LIMIT,
            max_body_time: SIGNED_BODY_TIME,
            ..SigningConfig::default()
        })
        .build()
        .expect("keyward builds")
}

/// As [`suite_keyward`] without an encryption keyring: signing is not enabled.
#[must_use]
pub fn suite_keyward_without_signing(store: Arc<dyn KeyStore>) -> Keyward {
    suite_builder(store).build().expect("keyward builds")
}

/// A store whose every call fails as unreachable: the app built over it must answer `503`.
#[derive(Debug, Default, Clone, Copy)]
pub struct FailingStore;

fn down() -> StoreError {
    StoreError::unavailable("test store is down")
}

#[async_trait::async_trait]
impl KeyStore for FailingStore {
    async fn create(
        &self,
        _: &KeyRecord,
        _: Option<u32>,
        _: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        Err(down())
    }
    async fn get(&self, _: &KeyId) -> Result<Option<KeyRecord>, StoreError> {
        Err(down())
    }
    async fn list_by_owner(&self, _: &str, _: Option<Cursor>, _: u32) -> Result<Page, StoreError> {
        Err(down())
    }
    async fn update(&self, _: &KeyRecord, _: DateTime<Utc>) -> Result<(), StoreError> {
        Err(down())
    }
    async fn set_digest(
        &self,
        _: &KeyId,
        _: &keyward_core::digest::KeyDigest,
    ) -> Result<(), StoreError> {
        Err(down())
    }
    async fn revoke(&self, _: &KeyId, _: DateTime<Utc>) -> Result<Option<KeyRecord>, StoreError> {
        Err(down())
    }
    async fn record_usage(&self, _: &[UsageDelta]) -> Result<(), StoreError> {
        Err(down())
    }
    async fn ping(&self) -> Result<(), StoreError> {
        Err(down())
    }
}

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
        at: DateTime<Utc>,
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
                &Credentials::new(&key.id, key.api_key.as_bytes()).expect("credentials"),
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
        let auth = self.sign(req, key, Utc::now());
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

fn fields_free_of_secrets(v: &Value, secret: &str) {
    let text = v.to_string();
    assert!(
        !text.contains(secret),
        "a view contains the raw key: {text}"
    );
    for banned in ["digest", "secret", "sealed", "pepper"] {
        assert!(
            !text.contains(&format!("\"{banned}")),
            "a view has a {banned} field: {text}"
        );
    }
}

/// The secret part of a raw key (everything after the key id).
fn secret_of(api_key: &str) -> &str {
    api_key.rsplit('_').next().unwrap_or(api_key)
}

// ---------------------------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------------------------

/// Create answers `201 {api_key, key}` once; list and get never show the secret or digest; the
/// key works on `/protected` and the principal is the owner's.
pub async fn case_create_shows_key_once(app: TestApp) {
    let alice = app.owner("alice");
    // Metadata is the administrator's to set (DESIGN.md §11).
    let c = app
        .admin_create(
            &alice,
            json!({"name": "ci", "scopes": ["reports:read"], "metadata": {"team": "x"}}),
        )
        .await;
    let key = &c.body["key"];
    assert_eq!(key["owner_id"], alice.as_str());
    assert_eq!(key["name"], "ci");
    assert_eq!(key["scopes"], json!(["reports:read"]));
    assert_eq!(key["is_active"], true);
    assert!(
        key["display"]
            .as_str()
            .unwrap_or("")
            .starts_with(&format!("kw_live_{}", c.id))
    );
    fields_free_of_secrets(key, secret_of(&c.api_key));

    let list: Value = app
        .as_owner(reqwest::Method::GET, "/api-keys", &alice)
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(list["items"][0]["id"], c.id.as_str());
    fields_free_of_secrets(&list, secret_of(&c.api_key));

    let res = app
        .as_owner(reqwest::Method::GET, &format!("/api-keys/{}", c.id), &alice)
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 200);
    let one: Value = res.json().await.expect("json");
    assert_eq!(one["id"], c.id.as_str());
    fields_free_of_secrets(&one, secret_of(&c.api_key));

    let res = app.get_bearer("/protected", &c.api_key).await;
    assert_eq!(res.status(), 200);
    let p: Value = res.json().await.expect("principal json");
    assert_eq!(p["key_id"], c.id.as_str());
    assert_eq!(p["owner_id"], alice.as_str());
    fields_free_of_secrets(&p, secret_of(&c.api_key));
}

/// Every credential form: Bearer (any case), X-API-Key, Authorization wins, a foreign bearer
/// falls through.
pub async fn case_credential_forms(app: TestApp) {
    let owner = app.owner("forms");
    let c = app
        .create(&owner, json!({"name": "k", "scopes": ["reports:read"]}))
        .await;
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let res = app
            .client
            .get(app.url("/protected"))
            .header("authorization", format!("{scheme} {}", c.api_key))
            .send()
            .await
            .expect("sent");
        assert_eq!(res.status(), 200, "scheme {scheme}");
    }
    assert_eq!(app.get_header("/protected", &c.api_key).await.status(), 200);
    // Authorization wins when both carry a key.
    let res = app
        .client
        .get(app.url("/protected"))
        .header("authorization", format!("Bearer {}", c.api_key))
        .header("x-api-key", "kw_live_junk")
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 200);
    let res = app
        .client
        .get(app.url("/protected"))
        .header("authorization", "Bearer kw_live_junk")
        .header("x-api-key", &c.api_key)
        .send()
        .await
        .expect("sent");
    assert_problem(res, 401, "API_KEY_INVALID").await;
    // A JWT is not ours: it falls through, and the X-API-Key decides.
    let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln";
    let res = app
        .client
        .get(app.url("/protected"))
        .header("authorization", format!("Bearer {jwt}"))
        .header("x-api-key", &c.api_key)
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 200);
    let res = app.get_bearer("/protected", jwt).await;
    assert_problem(res, 401, "API_KEY_MISSING").await;
    let res = app
        .client
        .get(app.url("/protected"))
        .header("authorization", "Basic dTpw")
        .send()
        .await
        .expect("sent");
    assert_problem(res, 401, "API_KEY_MISSING").await;
}

/// No credential: `401 API_KEY_MISSING` with `WWW-Authenticate: Bearer`; `/open` needs none.
pub async fn case_missing_and_open(app: TestApp) {
    let res = app
        .client
        .get(app.url("/protected"))
        .send()
        .await
        .expect("sent");
    assert_problem(res, 401, "API_KEY_MISSING").await;
    let res = app.client.get(app.url("/any")).send().await.expect("sent");
    assert_problem(res, 401, "API_KEY_MISSING").await;
    let res = app.client.get(app.url("/open")).send().await.expect("sent");
    assert_eq!(res.status(), 200);
}

/// Management needs an owner; API-key callers may not manage keys.
pub async fn case_management_needs_owner_not_key(app: TestApp) {
    let res = app
        .client
        .get(app.url("/api-keys"))
        .send()
        .await
        .expect("sent");
    let status = res.status().as_u16();
    assert_problem(res, status, "OWNER_UNAUTHENTICATED").await;
    assert_eq!(status, 401);
    let res = app
        .client
        .post(app.url("/api-keys"))
        .json(&json!({"name": "x"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 401);

    let owner = app.owner("mgr");
    let c = app
        .create(&owner, json!({"name": "k", "scopes": ["reports:read"]}))
        .await;
    let res = app
        .as_owner(reqwest::Method::POST, "/api-keys", &owner)
        .header("authorization", format!("Bearer {}", c.api_key))
        .json(&json!({"name": "minted"}))
        .send()
        .await
        .expect("sent");
    assert_problem(res, 403, "FORBIDDEN").await;
    let res = app
        .as_owner(reqwest::Method::GET, "/api-keys", &owner)
        .header("x-api-key", &c.api_key)
        .send()
        .await
        .expect("sent");
    assert_problem(res, 403, "FORBIDDEN").await;
}

/// Another owner's key is `404` on every route, as is a missing or malformed id.
pub async fn case_foreign_key_is_404(app: TestApp) {
    let alice = app.owner("alice");
    let bob = app.owner("bob");
    let c = app.create(&alice, json!({"name": "a"})).await;
    let path = format!("/api-keys/{}", c.id);
    use reqwest::Method;
    for (method, path, body) in [
        (Method::GET, path.clone(), None),
        (Method::PATCH, path.clone(), Some(json!({"name": "stolen"}))),
        (Method::DELETE, path.clone(), None),
        (Method::POST, format!("{path}/rotate"), Some(json!({}))),
    ] {
        let mut req = app.as_owner(method.clone(), &path, &bob);
        if let Some(b) = body {
            req = req.json(&b);
        }
        assert_problem(req.send().await.expect("sent"), 404, "API_KEY_NOT_FOUND").await;
    }
    for id in ["AAAAAAAAAAAA", "nope", "..%2F..%2Fetc", "%FF%FE"] {
        let res = app
            .as_owner(Method::GET, &format!("/api-keys/{id}"), &alice)
            .send()
            .await
            .expect("sent");
        assert_problem(res, 404, "API_KEY_NOT_FOUND").await;
    }
    // Alice's key is untouched.
    let res = app
        .as_owner(Method::GET, &path, &alice)
        .send()
        .await
        .expect("sent");
    let v: Value = res.json().await.expect("json");
    assert_eq!(v["name"], "a");
    assert!(v["revoked_at"].is_null());
}

/// Revoke answers `204` and the key gets `401` at once; revoking again is `204`.
pub async fn case_revoke_is_immediate(app: TestApp) {
    let owner = app.owner("rev");
    let c = app
        .create(&owner, json!({"name": "r", "scopes": ["reports:read"]}))
        .await;
    assert_eq!(app.protected_status(&c.api_key).await, 200);
    let path = format!("/api-keys/{}", c.id);
    let res = app
        .as_owner(reqwest::Method::DELETE, &path, &owner)
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 204);
    assert_problem(
        app.get_bearer("/protected", &c.api_key).await,
        401,
        "API_KEY_INVALID",
    )
    .await;
    assert_problem(
        app.get_header("/protected", &c.api_key).await,
        401,
        "API_KEY_INVALID",
    )
    .await;
    let res = app
        .as_owner(reqwest::Method::DELETE, &path, &owner)
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 204);
    let v: Value = app
        .as_owner(reqwest::Method::GET, &path, &owner)
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert!(v["revoked_at"].is_string());
    assert_eq!(v["state"], "revoked");
}

/// A valid key without the route's scopes: `403` listing the missing ones; any-of routes.
pub async fn case_scope_denied(app: TestApp) {
    let owner = app.owner("scopes");
    let none = app.create(&owner, json!({"name": "none"})).await;
    let body = assert_problem(
        app.get_bearer("/protected", &none.api_key).await,
        403,
        "API_KEY_SCOPE_DENIED",
    )
    .await;
    assert_eq!(body["missing_scopes"], json!(["reports:read"]));
    let body = assert_problem(
        app.get_bearer("/any", &none.api_key).await,
        403,
        "API_KEY_SCOPE_DENIED",
    )
    .await;
    let missing = body["missing_scopes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        missing.contains(&json!("a:x")) && missing.contains(&json!("b:x")),
        "{body}"
    );

    let b = app
        .create(&owner, json!({"name": "b", "scopes": ["b:x"]}))
        .await;
    assert_eq!(app.get_bearer("/any", &b.api_key).await.status(), 200);
    assert_eq!(app.get_bearer("/protected", &b.api_key).await.status(), 403);

    let wild = app
        .create(&owner, json!({"name": "w", "scopes": ["reports:*"]}))
        .await;
    assert_eq!(app.protected_status(&wild.api_key).await, 200);

    // Granting the scope takes effect at once (the cache is invalidated on update).
    // Widening is the administrator's (DESIGN.md §11).
    let res = app
        .client
        .patch(app.url(&format!("/admin/owners/{owner}/api-keys/{}", none.id)))
        .header("x-test-admin", "yes")
        .json(&json!({"scopes": ["reports:read"]}))
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.expect("json");
    assert_eq!(v["scopes"], json!(["reports:read"]));
    assert_eq!(app.protected_status(&none.api_key).await, 200);
}

/// An expired or deactivated key is `401 API_KEY_INVALID`, like any bad key.
pub async fn case_expired_and_inactive(app: TestApp) {
    let owner = app.owner("exp");
    let c = app
        .create(
            &owner,
            json!({"name": "short", "scopes": ["reports:read"], "ttl_seconds": 1}),
        )
        .await;
    assert!(c.body["key"]["expires_at"].is_string());
    let expired = eventually(Duration::from_secs(15), || async {
        let s = app.protected_status(&c.api_key).await;
        assert!(s == 200 || s == 401, "status {s}");
        s == 401
    })
    .await;
    assert!(expired, "a key with ttl_seconds = 1 still works after 15 s");
    assert_problem(
        app.get_bearer("/protected", &c.api_key).await,
        401,
        "API_KEY_INVALID",
    )
    .await;

    let d = app
        .create(
            &owner,
            json!({"name": "toggle", "scopes": ["reports:read"]}),
        )
        .await;
    let path = format!("/api-keys/{}", d.id);
    let res = app
        .as_owner(reqwest::Method::PATCH, &path, &owner)
        .json(&json!({"is_active": false}))
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 200);
    assert_problem(
        app.get_bearer("/protected", &d.api_key).await,
        401,
        "API_KEY_INVALID",
    )
    .await;
    let res = app
        .as_owner(reqwest::Method::PATCH, &path, &owner)
        .json(&json!({"is_active": true}))
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 200);
    assert_eq!(app.protected_status(&d.api_key).await, 200);
}

/// Twenty concurrent creates for one owner: exactly [`MAX_KEYS`] succeed, the rest are `409`.
pub async fn case_max_keys_concurrent(app: TestApp) {
    let owner = app.owner("max");
    let body = json!({"name": "burst"});
    let results = futures::future::join_all((0..20).map(|_| {
        let app = &app;
        let owner = &owner;
        let body = &body;
        async move {
            let res = app.create_raw(owner, body).await;
            let status = res.status().as_u16();
            if status == 409 {
                assert_problem(res, 409, "API_KEY_LIMIT_REACHED").await;
            }
            status
        }
    }))
    .await;
    let ok = results.iter().filter(|s| **s == 201).count();
    let refused = results.iter().filter(|s| **s == 409).count();
    assert_eq!((ok, refused), (MAX_KEYS, 20 - MAX_KEYS), "{results:?}");
    // Revoking one makes room for one more.
    let list: Value = app
        .as_owner(reqwest::Method::GET, "/api-keys", &owner)
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    let id = list["items"][0]["id"].as_str().expect("id").to_owned();
    let res = app
        .as_owner(reqwest::Method::DELETE, &format!("/api-keys/{id}"), &owner)
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 204);
    assert_eq!(app.create_raw(&owner, &body).await.status(), 201);
    assert_problem(
        app.create_raw(&owner, &body).await,
        409,
        "API_KEY_LIMIT_REACHED",
    )
    .await;
}

/// Rotate: `201` with a new key; both work during the grace, the old one fails after it.
pub async fn case_rotate_grace(app: TestApp) {
    let owner = app.owner("rot");
    let old = app
        .create(&owner, json!({"name": "rot", "scopes": ["reports:read"]}))
        .await;
    let res = app
        .as_owner(
            reqwest::Method::POST,
            &format!("/api-keys/{}/rotate", old.id),
            &owner,
        )
        .json(&json!({"grace_seconds": 2}))
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 201);
    let new = created(res).await;
    assert_ne!(new.id, old.id);
    assert_eq!(new.body["key"]["rotated_from"], old.id.as_str());
    assert_eq!(new.body["key"]["scopes"], json!(["reports:read"]));
    assert_eq!(app.protected_status(&new.api_key).await, 200);
    let old_status = app.protected_status(&old.api_key).await;
    assert!(old_status == 200 || old_status == 401, "{old_status}");
    let died = eventually(Duration::from_secs(20), || async {
        app.protected_status(&old.api_key).await == 401
    })
    .await;
    assert!(died, "the old key still works 20 s after a 2 s grace");
    assert_problem(
        app.get_bearer("/protected", &old.api_key).await,
        401,
        "API_KEY_INVALID",
    )
    .await;
    assert_eq!(app.protected_status(&new.api_key).await, 200);

    // An empty body takes the default grace; bad grace is 422.
    let res = app
        .as_owner(
            reqwest::Method::POST,
            &format!("/api-keys/{}/rotate", new.id),
            &owner,
        )
        .json(&json!({"grace_seconds": -1}))
        .send()
        .await
        .expect("sent");
    let body = assert_problem(res, 422, "VALIDATION_FAILED").await;
    assert_eq!(body["errors"][0]["field"], "grace_seconds");
    let res = app
        .as_owner(
            reqwest::Method::POST,
            &format!("/api-keys/{}/rotate", new.id),
            &owner,
        )
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 201);
    let newer = created(res).await;
    assert_eq!(
        app.protected_status(&new.api_key).await,
        200,
        "default grace keeps the predecessor working"
    );
    assert_eq!(app.protected_status(&newer.api_key).await, 200);
}

/// Pagination: pages of `limit`, a cursor to the next, `null` at the end; bad parameters `422`.
pub async fn case_pagination(app: TestApp) {
    let owner = app.owner("pages");
    let mut ids = Vec::new();
    for i in 0..MAX_KEYS {
        ids.push(
            app.create(&owner, json!({"name": format!("k{i}")}))
                .await
                .id,
        );
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut path = "/api-keys?limit=2".to_owned();
        if let Some(c) = &cursor {
            path.push_str("&cursor=");
            path.push_str(c);
        }
        let res = app
            .as_owner(reqwest::Method::GET, &path, &owner)
            .send()
            .await
            .expect("sent");
        assert_eq!(res.status(), 200);
        let page: Value = res.json().await.expect("json");
        let items = page["items"].as_array().cloned().unwrap_or_default();
        assert!(items.len() <= 2);
        seen.extend(
            items
                .iter()
                .map(|i| i["id"].as_str().unwrap_or("").to_owned()),
        );
        pages += 1;
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
        assert!(pages < 10, "pagination does not end");
    }
    assert_eq!(seen, ids, "every key once, oldest first");
    // Another owner's list is empty.
    let other: Value = app
        .as_owner(reqwest::Method::GET, "/api-keys", &app.owner("nobody"))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(other["items"], json!([]));
    assert!(other["next_cursor"].is_null());
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=abc", "limit"),
        ("cursor=junk!", "cursor"),
    ] {
        let res = app
            .as_owner(reqwest::Method::GET, &format!("/api-keys?{query}"), &owner)
            .send()
            .await
            .expect("sent");
        let body = assert_problem(res, 422, "VALIDATION_FAILED").await;
        assert_eq!(body["errors"][0]["field"], field, "{query}");
    }
}

/// Bad bodies: `422` with field errors.
pub async fn case_validation(app: TestApp) {
    let owner = app.owner("val");
    let long = "n".repeat(129);
    for (body, field, code) in [
        (
            json!({"name": "x", "owner_id": "mallory"}),
            "owner_id",
            "unknown_field",
        ),
        (
            json!({"name": "x", "expires_at": "2001-01-01T00:00:00Z"}),
            "expires_at",
            "in_past",
        ),
        (json!({"name": long}), "name", "too_long"),
        (json!({"name": "   "}), "name", "required"),
        (
            json!({"name": "x", "scopes": ["billing:write"]}),
            "scopes",
            "not_in_catalog",
        ),
        (
            json!({"name": "x", "scopes": ["BAD SCOPE"]}),
            "scopes",
            "invalid",
        ),
        (
            json!({"name": "x", "ttl_seconds": 0}),
            "ttl_seconds",
            "invalid",
        ),
        (
            json!({"name": "x", "ttl_seconds": 60, "expires_at": "2099-01-01T00:00:00Z"}),
            "ttl_seconds",
            "conflict",
        ),
        (
            json!({"name": "x", "ip_allowlist": ["300.1.1.1"]}),
            "ip_allowlist",
            "invalid",
        ),
        (
            json!({"name": "x", "rate_limit": {"requests": 0, "window_seconds": 1}}),
            "rate_limit",
            "invalid",
        ),
        (json!({}), "name", "required"),
    ] {
        // Allowlists and limits are the administrator's to set (DESIGN.md §11): validated there.
        let res = if body.get("ip_allowlist").is_some() || body.get("rate_limit").is_some() {
            app.admin_create_raw(&owner, &body).await
        } else {
            app.create_raw(&owner, &body).await
        };
        let p = assert_problem(res, 422, "VALIDATION_FAILED").await;
        let errors = p["errors"].as_array().cloned().unwrap_or_default();
        assert!(
            errors
                .iter()
                .any(|e| e["field"] == field && e["code"] == code),
            "{body} → {p} (wanted {field}/{code})"
        );
    }
    let res = app.create_raw(&owner, &json!({"name": 5})).await;
    assert_problem(res, 422, "VALIDATION_FAILED").await;
    // Nothing was created.
    let list: Value = app
        .as_owner(reqwest::Method::GET, "/api-keys", &owner)
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(list["items"], json!([]));
    // PATCH validates the same way.
    let c = app.create(&owner, json!({"name": "ok"})).await;
    let path = format!("/api-keys/{}", c.id);
    for (body, field) in [
        (json!({"scopes": ["billing:write"]}), "scopes"),
        (json!({"expires_at": "2001-01-01T00:00:00Z"}), "expires_at"),
        (json!({"name": "n".repeat(129)}), "name"),
        (json!({"owner_id": "mallory"}), "owner_id"),
    ] {
        let res = app
            .as_owner(reqwest::Method::PATCH, &path, &owner)
            .json(&body)
            .send()
            .await
            .expect("sent");
        let p = assert_problem(res, 422, "VALIDATION_FAILED").await;
        assert_eq!(p["errors"][0]["field"], field, "{body} → {p}");
    }
}

/// Wrong content type `415`, malformed JSON `400`, oversize body `413`: problem documents all.
pub async fn case_body_transport_errors(app: TestApp) {
    let owner = app.owner("body");
    let post = || app.as_owner(reqwest::Method::POST, "/api-keys", &owner);
    let res = post()
        .header("content-type", "text/plain")
        .body(r#"{"name":"x"}"#)
        .send()
        .await
        .expect("sent");
    assert_problem(res, 415, "UNSUPPORTED_MEDIA_TYPE").await;
    let res = post().body(r#"{"name":"x"}"#).send().await.expect("sent");
    assert_problem(res, 415, "UNSUPPORTED_MEDIA_TYPE").await;
    for bad in [
        &b"{"[..],
        b"{\"name\":",
        b"not json",
        b"",
        b"{\"name\":\"\xff\"}",
    ] {
        let res = post()
            .header("content-type", "application/json")
            .body(bad.to_vec())
            .send()
            .await
            .expect("sent");
        assert_problem(res, 400, "BAD_REQUEST").await;
    }
    let big = json!({"name": "x", "description": "d".repeat(200 * 1024)});
    let res = post().json(&big).send().await.expect("sent");
    assert_problem(res, 413, "PAYLOAD_TOO_LARGE").await;
    // Chunked, without a Content-Length.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        std::iter::once(Ok(b"{\"name\":\"x\",\"description\":\"".to_vec()))
            .chain((0..100).map(|_| Ok(vec![b'd'; 2048])))
            .chain(std::iter::once(Ok(b"\"}".to_vec())))
            .collect();
    let res = post()
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .expect("sent");
    assert_problem(res, 413, "PAYLOAD_TOO_LARGE").await;
    // The app still works.
    assert_eq!(
        app.create_raw(&owner, &json!({"name": "after"}))
            .await
            .status(),
        201
    );
}

/// Junk keys, huge and non-UTF-8 headers: a clear 4xx, never a 5xx.
pub async fn case_hostile_input(app: TestApp) {
    let owner = app.owner("hostile");
    let c = app
        .create(&owner, json!({"name": "h", "scopes": ["reports:read"]}))
        .await;
    let mut typo = c.api_key.clone();
    let last = typo.pop().unwrap_or('0');
    typo.push(if last == 'A' { 'B' } else { 'A' });
    let other_env = c.api_key.replacen("kw_live_", "kw_test_", 1);
    let junk = [
        "kw_live_x".to_owned(),
        "kw_".to_owned(),
        format!("kw_live_{}", "A".repeat(5000)),
        typo,
        other_env,
        "' OR 1=1 --".to_owned(),
        "kw_live_AAAAAAAAAAAA_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_owned(),
        "   ".to_owned(),
        "kw_live_\u{e9}\u{e9}".to_owned(),
    ];
    for k in &junk {
        let res = app
            .client
            .get(app.url("/protected"))
            .header("x-api-key", k.as_bytes())
            .send()
            .await
            .expect("sent");
        assert_problem(res, 401, "API_KEY_INVALID").await;
        if k.starts_with("kw_") && k.is_ascii() {
            assert_problem(
                app.get_bearer("/protected", k).await,
                401,
                "API_KEY_INVALID",
            )
            .await;
        }
    }
    assert_problem(
        app.client
            .get(app.url("/protected"))
            .header("authorization", "Bearer")
            .send()
            .await
            .expect("sent"),
        401,
        "API_KEY_INVALID",
    )
    .await;
    // An 8 KiB header.
    let big = format!("kw_live_{}", "x".repeat(8 * 1024));
    assert_problem(
        app.get_header("/protected", &big).await,
        401,
        "API_KEY_INVALID",
    )
    .await;
    assert_problem(
        app.get_bearer("/protected", &big).await,
        401,
        "API_KEY_INVALID",
    )
    .await;
    // Non-UTF-8 bytes, over a raw socket.
    for header in [
        &b"X-API-Key: kw_live_\xff\xfe"[..],
        b"Authorization: Bearer kw_live_\xc3\x28",
        b"X-API-Key: \x80",
    ] {
        let mut req =
            b"GET /protected HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n".to_vec();
        req.extend_from_slice(header);
        req.extend_from_slice(b"\r\n\r\n");
        let status = raw_status(app.addr, req).await;
        assert_eq!(status, Some(401), "{}", String::from_utf8_lossy(header));
    }
    // A header far beyond any sane size: refused (4xx) or the connection closed, never 5xx.
    let mut req =
        b"GET /protected HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nX-API-Key: ".to_vec();
    req.extend(std::iter::repeat_n(b'a', 1 << 20));
    req.extend_from_slice(b"\r\n\r\n");
    if let Some(s) = raw_status(app.addr, req).await {
        assert!((400..500).contains(&s), "a 1 MiB header got {s}");
    }
    // Malformed management paths and queries.
    for path in [
        "/api-keys/%00",
        "/api-keys/%",
        "/api-keys?limit=%zz",
        "/api-keys?cursor=%ff%fe",
    ] {
        let res = app
            .as_owner(reqwest::Method::GET, path, &owner)
            .send()
            .await
            .expect("sent");
        let s = res.status().as_u16();
        assert!((400..500).contains(&s), "{path} got {s}");
    }
    // The good key still works.
    assert_eq!(app.protected_status(&c.api_key).await, 200);
}

/// A key with a rate limit of 2 per minute: the third request is `429` with `Retry-After`.
pub async fn case_rate_limited(app: TestApp) {
    let owner = app.owner("rl");
    let c = app
        .admin_create(&owner, json!({"name": "rl", "scopes": ["reports:read"], "rate_limit": {"requests": 2, "window_seconds": 60}}))
        .await;
    assert_eq!(app.protected_status(&c.api_key).await, 200);
    assert_eq!(app.protected_status(&c.api_key).await, 200);
    let body = assert_problem(
        app.get_bearer("/protected", &c.api_key).await,
        429,
        "RATE_LIMITED",
    )
    .await;
    assert!(
        body["retry_after"].as_u64().is_some_and(|s| s >= 1),
        "{body}"
    );
}

/// Admin routes: refused without the admin check; the owner comes from the path.
pub async fn case_admin_routes(app: TestApp) {
    let carol = app.owner("carol");
    let dave = app.owner("dave");
    let base = format!("/admin/owners/{carol}/api-keys");
    let res = app
        .client
        .post(app.url(&base))
        .json(&json!({"name": "x"}))
        .send()
        .await
        .expect("sent");
    assert_problem(res, 403, "FORBIDDEN").await;
    let admin = |m: reqwest::Method, p: &str| {
        app.client
            .request(m, app.url(p))
            .header("x-test-admin", "yes")
    };
    let res = admin(reqwest::Method::POST, &base)
        .json(&json!({"name": "by-admin", "scopes": ["reports:read"]}))
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 201);
    let c = created(res).await;
    assert_eq!(c.body["key"]["owner_id"], carol.as_str());
    let list: Value = admin(reqwest::Method::GET, &base)
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(list["items"][0]["id"], c.id.as_str());
    // Carol sees it as her own.
    let res = app
        .as_owner(reqwest::Method::GET, &format!("/api-keys/{}", c.id), &carol)
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 200);
    // The key must belong to the owner in the path.
    let res = admin(
        reqwest::Method::DELETE,
        &format!("/admin/owners/{dave}/api-keys/{}", c.id),
    )
    .send()
    .await
    .expect("sent");
    assert_problem(res, 404, "API_KEY_NOT_FOUND").await;
    let res = admin(reqwest::Method::POST, &base)
        .json(&json!({"name": "x", "owner_id": dave}))
        .send()
        .await
        .expect("sent");
    assert_problem(res, 422, "VALIDATION_FAILED").await;
    assert_eq!(app.protected_status(&c.api_key).await, 200);
    let res = admin(reqwest::Method::DELETE, &format!("{base}/{}", c.id))
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 204);
    assert_eq!(app.protected_status(&c.api_key).await, 401);
}

/// Starts a signed upload that declares a body within the limit and sends only its first bytes,
/// then waits (at most 10 s) for the answer: `Some(status)` when the app answered without the
/// rest of the body.
async fn drip(addr: SocketAddr, authorization: String) -> Option<u16> {
    let head = format!(
        "POST /echo HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {authorization}\r\n\
         X-Amz-Date: 20260101T000000Z\r\nContent-Length: {}\r\n\r\nfirst-bytes",
        SIGNED_BODY_LIMIT - 1
    );
    raw_status(addr, head.into_bytes()).await
}

/// Signed uploads with junk or with unknown credentials are refused from their headers alone,
/// before the body arrives, so slow-drip uploads pin no buffers; other requests are served
/// meanwhile.
pub async fn case_signed_refused_before_body(app: TestApp) {
    let owner = app.owner("drip");
    let valid = app
        .create(&owner, json!({"name": "v", "scopes": ["reports:read"]}))
        .await;
    let unknown = KeyFormat::default().generate().expect("os random").key_id;
    let bearer_only = app
        .create(&owner, json!({"name": "b", "scopes": ["reports:read"]}))
        .await;
    let forms = [
        "AWS4-HMAC-SHA256 junk".to_owned(),
        format!(
            "AWS4-HMAC-SHA256 Credential={unknown}/20260101/us-east-1/keyward/aws4_request, \
             SignedHeaders=host;x-amz-date, Signature={}",
            "0".repeat(64)
        ),
        format!(
            "AWS4-HMAC-SHA256 Credential={}/20260101/us-east-1/keyward/aws4_request, \
             SignedHeaders=host;x-amz-date, Signature={}",
            bearer_only.id,
            "0".repeat(64)
        ),
    ];
    let drips: Vec<_> = (0..30)
        .map(|i| tokio::spawn(drip(app.addr, forms[i % forms.len()].clone())))
        .collect();
    assert_eq!(
        app.protected_status(&valid.api_key).await,
        200,
        "served while the uploads hang"
    );
    for d in drips {
        assert_eq!(
            d.await.expect("task"),
            Some(401),
            "refused before its body was sent"
        );
    }
    // A real signer's upload that stops half-way: buffered, but only for SIGNED_BODY_TIME.
    let signer = app.create_signing(&owner, &["reports:read"]).await;
    let body = vec![b'a'; 1000];
    let req = ToSign {
        body: &body,
        ..ToSign::new("POST", "/echo")
    };
    let mut head = format!(
        "POST /echo HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n",
        app.addr,
        body.len()
    );
    for (n, v) in app.sign(&req, &signer, Utc::now()) {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(&body[..100]);
    assert_eq!(
        raw_status(app.addr, bytes).await,
        Some(408),
        "a body slower than the bound is cut off"
    );
}

/// `GET /openapi.json`: the management routes, their schemas and the bearer scheme.
pub async fn case_openapi(app: TestApp) {
    let res = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"))
    );
    let doc: Value = res.json().await.expect("json");
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    for path in [
        "/api-keys",
        "/api-keys/{key_id}",
        "/api-keys/{key_id}/rotate",
        "/admin/owners/{owner_id}/api-keys",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} missing");
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["apiKeyAuth"]["scheme"],
        "bearer"
    );
    // The suite's engine has signing enabled: the SigV4 scheme is described.
    assert!(app.keyward.signing_enabled());
    assert!(
        doc["components"]["securitySchemes"]["apiKeyHmacAuth"].is_object(),
        "no apiKeyHmacAuth: {}",
        doc["components"]["securitySchemes"]
    );
    assert!(doc["components"]["schemas"]["Problem"].is_object());
}

/// A store that does not answer: `503 AUTH_UNAVAILABLE`, on verification and management.
pub async fn case_store_down<A, AFut>(spawn: A)
where
    A: FnOnce(Keyward) -> AFut,
    AFut: Future<Output = SocketAddr>,
{
    let app = TestApp::start(Arc::new(FailingStore), spawn).await;
    let key = KeyFormat::default().generate().expect("os random");
    let raw = key.api_key.expose_secret().to_owned();
    assert_problem(
        app.get_bearer("/protected", &raw).await,
        503,
        "AUTH_UNAVAILABLE",
    )
    .await;
    assert_problem(app.get_header("/any", &raw).await, 503, "AUTH_UNAVAILABLE").await;
    let owner = app.owner("down");
    assert_problem(
        app.create_raw(&owner, &json!({"name": "x"})).await,
        503,
        "AUTH_UNAVAILABLE",
    )
    .await;
    let res = app
        .as_owner(reqwest::Method::GET, "/api-keys", &owner)
        .send()
        .await
        .expect("sent");
    assert_problem(res, 503, "AUTH_UNAVAILABLE").await;
    let res = app
        .as_owner(
            reqwest::Method::DELETE,
            &format!("/api-keys/{}", key.key_id),
            &owner,
        )
        .send()
        .await
        .expect("sent");
    assert_problem(res, 503, "AUTH_UNAVAILABLE").await;
    // Junk is still rejected without the store.
    assert_problem(
        app.get_bearer("/protected", "kw_live_junk").await,
        401,
        "API_KEY_INVALID",
    )
    .await;
    assert_eq!(
        app.client
            .get(app.url("/open"))
            .send()
            .await
            .expect("sent")
            .status(),
        200
    );
}

// ---------------------------------------------------------------------------------------------
// Signed requests (DESIGN.md §7)
// ---------------------------------------------------------------------------------------------

/// Headers that sign a request, as [`TestApp::sign`] returns them.
type SignedHeaders = Vec<(String, String)>;

/// A nonce unique to this process and call, for `x-keyward-nonce`.
fn nonce() -> String {
    KeyId::generate().expect("os random").to_string()
}

/// Signed with the core `Signer`: `200` with the principal, on a GET and on a POST or PUT whose
/// body the handler reads unchanged. A signing-only key presented as a bearer is `401`.
pub async fn case_signed_round_trip(app: TestApp) {
    let owner = app.owner("signed");
    let k = app.create_signing(&owner, &["reports:read"]).await;
    assert_eq!(k.body["key"]["owner_id"], owner.as_str());
    let res = app
        .signed(&ToSign::new("GET", "/protected?b=2&a=1"), &k)
        .await;
    let text = res.text().await.expect("body");
    let principal: Value = serde_json::from_str(&text).expect(&text);
    assert_eq!(principal["key_id"], k.id.as_str(), "{text}");
    assert_eq!(principal["owner_id"], owner.as_str(), "{text}");
    let body = br#"{"report":"q3","rows":[1,2,3]}"#;
    for method in ["POST", "PUT"] {
        let req = ToSign {
            method,
            path: "/echo?x=%2Fy",
            headers: &[("content-type", "application/json")],
            body,
        };
        let res = app.signed(&req, &k).await;
        assert_eq!(res.status(), 200, "{method}");
        let v: Value = res.json().await.expect("json");
        assert_eq!(v["principal"]["key_id"], k.id.as_str());
        assert_eq!(v["body"].as_str().map(str::as_bytes), Some(&body[..]));
    }
    // An empty body.
    let res = app.signed(&ToSign::new("POST", "/echo"), &k).await;
    let v: Value = res.json().await.expect("json");
    assert_eq!(v["body"], "");
    // A signing-only key is not a bearer key.
    assert_problem(
        app.get_bearer("/protected", &k.api_key).await,
        401,
        "API_KEY_INVALID",
    )
    .await;
    assert_problem(
        app.get_header("/protected", &k.api_key).await,
        401,
        "API_KEY_INVALID",
    )
    .await;
}

/// Anything altered after signing: method, path, query, a signed header, the body →
/// `401 SIGNATURE_INVALID` (with `WWW-Authenticate`).
pub async fn case_signed_tampering(app: TestApp) {
    let owner = app.owner("tamper");
    let k = app.create_signing(&owner, &["reports:read", "a:x"]).await;
    let now = Utc::now();
    let body = b"amount=10";
    let signed_put = ToSign {
        method: "PUT",
        path: "/echo",
        headers: &[],
        body,
    };
    let n1 = nonce();
    let n2 = nonce();
    let tampered: [(ToSign<'_>, ToSign<'_>, &str); 6] = [
        (
            signed_put,
            ToSign {
                method: "POST",
                ..signed_put
            },
            "method",
        ),
        (
            ToSign::new("GET", "/protected"),
            ToSign::new("GET", "/any"),
            "path",
        ),
        (
            ToSign::new("GET", "/protected?a=1"),
            ToSign::new("GET", "/protected?a=2"),
            "query",
        ),
        (
            ToSign::new("GET", "/protected?a=1"),
            ToSign::new("GET", "/protected"),
            "query removed",
        ),
        (
            ToSign {
                headers: &[("x-keyward-nonce", n1.as_str())],
                ..ToSign::new("GET", "/protected")
            },
            ToSign {
                headers: &[("x-keyward-nonce", n2.as_str())],
                ..ToSign::new("GET", "/protected")
            },
            "signed header",
        ),
        (
            signed_put,
            ToSign {
                body: b"amount=99",
                ..signed_put
            },
            "body",
        ),
    ];
    for (signed, sent, what) in tampered {
        let auth = app.sign(&signed, &k, now);
        let res = app.send_signed(&sent, &auth).await;
        assert_eq!(res.status(), 401, "{what}");
        assert_problem(res, 401, "SIGNATURE_INVALID").await;
    }
    // A signature that is not hex, and a key id nobody has.
    let auth = app.sign(&ToSign::new("GET", "/protected"), &k, now);
    let broken: Vec<(String, String)> = auth
        .iter()
        .map(|(n, v)| {
            if n.eq_ignore_ascii_case("authorization") {
                (n.clone(), format!("{}zz", &v[..v.len() - 2]))
            } else {
                (n.clone(), v.clone())
            }
        })
        .collect();
    assert_problem(
        app.send_signed(&ToSign::new("GET", "/protected"), &broken)
            .await,
        401,
        "SIGNATURE_INVALID",
    )
    .await;
    let stranger = Created {
        id: KeyId::generate().expect("os random").to_string(),
        ..k.clone()
    };
    assert_problem(
        app.signed(&ToSign::new("GET", "/protected"), &stranger)
            .await,
        401,
        "SIGNATURE_INVALID",
    )
    .await;
    // The untampered request still passes.
    assert_eq!(
        app.signed(&ToSign::new("GET", "/protected"), &k)
            .await
            .status(),
        200
    );
}

/// A date 10 minutes off either way is beyond the 300 s skew: `401 SIGNATURE_EXPIRED`.
pub async fn case_signed_expired(app: TestApp) {
    let owner = app.owner("skew");
    let k = app.create_signing(&owner, &["reports:read"]).await;
    let req = ToSign::new("GET", "/protected");
    for off in [-600i64, 600] {
        let auth = app.sign(&req, &k, Utc::now() + chrono::Duration::seconds(off));
        assert_problem(app.send_signed(&req, &auth).await, 401, "SIGNATURE_EXPIRED").await;
    }
    assert_eq!(app.signed(&req, &k).await.status(), 200);
}

/// The same signed request twice: `401 SIGNATURE_REPLAYED`; signed nonces make otherwise
/// identical requests distinct; a refused request does not burn its signature.
pub async fn case_signed_replay(app: TestApp) {
    let owner = app.owner("replay");
    let k = app.create_signing(&owner, &["reports:read"]).await;
    let req = ToSign::new("GET", "/protected?r=1");
    let auth = app.sign(&req, &k, Utc::now());
    assert_eq!(app.send_signed(&req, &auth).await.status(), 200);
    assert_problem(
        app.send_signed(&req, &auth).await,
        401,
        "SIGNATURE_REPLAYED",
    )
    .await;
    // Same instant, same everything but the signed nonce: both accepted, each once.
    let at = Utc::now();
    let (n1, n2) = (nonce(), nonce());
    let (h1, h2) = (
        [("x-keyward-nonce", n1.as_str())],
        [("x-keyward-nonce", n2.as_str())],
    );
    let r1 = ToSign {
        headers: &h1,
        ..ToSign::new("GET", "/protected")
    };
    let r2 = ToSign { headers: &h2, ..r1 };
    let (a1, a2) = (app.sign(&r1, &k, at), app.sign(&r2, &k, at));
    assert_eq!(app.send_signed(&r1, &a1).await.status(), 200);
    assert_eq!(app.send_signed(&r2, &a2).await.status(), 200);
    assert_problem(app.send_signed(&r2, &a2).await, 401, "SIGNATURE_REPLAYED").await;
    // A tampered copy is refused as invalid and does not consume the original.
    let r3 = ToSign::new("GET", "/protected?r=3");
    let a3 = app.sign(&r3, &k, Utc::now());
    assert_problem(
        app.send_signed(&ToSign::new("GET", "/protected?r=4"), &a3)
            .await,
        401,
        "SIGNATURE_INVALID",
    )
    .await;
    assert_eq!(app.send_signed(&r3, &a3).await.status(), 200);
}

/// Signed bodies over the limit: `413 PAYLOAD_TOO_LARGE`, with and without `Content-Length`,
/// and in more chunks than `max_body_frames`; the limit itself passes.
pub async fn case_signed_body_limit(app: TestApp) {
    let owner = app.owner("big");
    let k = app.create_signing(&owner, &["reports:read"]).await;
    let exact = vec![b'a'; SIGNED_BODY_LIMIT];
    let req = ToSign {
        body: &exact,
        ..ToSign::new("POST", "/echo")
    };
    let res = app.signed(&req, &k).await;
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.expect("json");
    assert_eq!(v["body"].as_str().map(str::len), Some(SIGNED_BODY_LIMIT));
    let over = vec![b'a'; SIGNED_BODY_LIMIT + 1];
    let req = ToSign {
        body: &over,
        ..ToSign::new("POST", "/echo")
    };
    assert_problem(app.signed(&req, &k).await, 413, "PAYLOAD_TOO_LARGE").await;
    // Chunked, no Content-Length: refused while reading.
    let auth = app.sign(&req, &k, Utc::now());
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        over.chunks(1024).map(|c| Ok(c.to_vec())).collect();
    let mut b = app
        .client
        .post(app.url("/echo"))
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)));
    for (n, v) in &auth {
        b = b.header(n.as_str(), v.as_str());
    }
    let res = b.send().await.expect("sent");
    assert_problem(res, 413, "PAYLOAD_TOO_LARGE").await;
    // Small in bytes, but more chunks than `max_body_frames`.
    let frames = app.keyward.signing_config().max_body_frames;
    let few = vec![b'a'; frames + 1];
    assert!(few.len() < SIGNED_BODY_LIMIT);
    let req = ToSign {
        body: &few,
        ..ToSign::new("POST", "/echo")
    };
    let auth = app.sign(&req, &k, Utc::now());
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        few.chunks(1).map(|c| Ok(c.to_vec())).collect();
    let mut b = app
        .client
        .post(app.url("/echo"))
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)));
    for (n, v) in &auth {
        b = b.header(n.as_str(), v.as_str());
    }
    assert_problem(b.send().await.expect("sent"), 413, "PAYLOAD_TOO_LARGE").await;
    // Still serving.
    assert_eq!(
        app.signed(&ToSign::new("GET", "/protected"), &k)
            .await
            .status(),
        200
    );
}

/// Key kinds and checks: a bearer-only key cannot sign; a signing key lacking the route's scope
/// is `403`, outside its IP allowlist `403`, over its rate limit `429`; malformed paths, queries
/// and header values on signed requests are `4xx`, never `5xx`.
pub async fn case_signed_keys_and_scopes(app: TestApp) {
    let owner = app.owner("kinds");
    let bearer = app
        .create(&owner, json!({"name": "b", "scopes": ["reports:read"]}))
        .await;
    assert_eq!(app.protected_status(&bearer.api_key).await, 200);
    assert_problem(
        app.signed(&ToSign::new("GET", "/protected"), &bearer).await,
        401,
        "SIGNATURE_INVALID",
    )
    .await;
    let k = app.create_signing(&owner, &["a:x"]).await;
    let body = assert_problem(
        app.signed(&ToSign::new("GET", "/protected"), &k).await,
        403,
        "API_KEY_SCOPE_DENIED",
    )
    .await;
    assert_eq!(body["missing_scopes"], json!(["reports:read"]));
    assert_eq!(
        app.signed(&ToSign::new("GET", "/any"), &k).await.status(),
        200
    );
    // The IP allowlist and rate limit apply as for bearer keys.
    let fenced = app
        .admin_create(
            &owner,
            json!({"name": "f", "scopes": ["reports:read"], "signing": true, "ip_allowlist": ["10.9.8.0/24"]}),
        )
        .await;
    assert_problem(
        app.signed(&ToSign::new("GET", "/protected"), &fenced).await,
        403,
        "API_KEY_IP_DENIED",
    )
    .await;
    let limited = app
        .admin_create(
            &owner,
            json!({"name": "l", "scopes": ["reports:read"], "signing": true, "rate_limit": {"requests": 1, "window_seconds": 60}}),
        )
        .await;
    assert_eq!(
        app.signed(&ToSign::new("GET", "/protected?n=1"), &limited)
            .await
            .status(),
        200
    );
    assert_problem(
        app.signed(&ToSign::new("GET", "/protected?n=2"), &limited)
            .await,
        429,
        "RATE_LIMITED",
    )
    .await;
    // Malformed and non-UTF-8 paths, queries and signed header values, over a raw socket.
    let plain = app.sign(&ToSign::new("GET", "/protected"), &k, Utc::now());
    let with_nonce = app.sign(
        &ToSign {
            headers: &[("x-keyward-nonce", "x")],
            ..ToSign::new("GET", "/protected")
        },
        &k,
        Utc::now(),
    );
    let cases: [(&[u8], &[u8], &SignedHeaders); 7] = [
        (b"/protected?%zz=%ff", b"", &plain),
        (b"/protected?a=%", b"", &plain),
        (b"/protected?\xff\xfe=1", b"", &plain),
        (b"/protected/%", b"", &plain),
        (b"/prot%ected", b"", &plain),
        (b"/protected?a=1&&&==&", b"", &plain),
        (b"/protected", b"x-keyward-nonce: \xff\xfe\r\n", &with_nonce),
    ];
    for (target, extra, auth) in cases {
        let mut req = b"GET ".to_vec();
        req.extend_from_slice(target);
        req.extend_from_slice(
            format!(" HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n", app.addr).as_bytes(),
        );
        req.extend_from_slice(extra);
        for (n, v) in auth {
            req.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
        }
        req.extend_from_slice(b"\r\n");
        if let Some(s) = raw_status(app.addr, req).await {
            assert!(
                (400..500).contains(&s),
                "{} {} got {s}",
                String::from_utf8_lossy(target),
                String::from_utf8_lossy(extra)
            );
        }
    }
}

/// A request signed live by botocore (a stock SigV4 signer nobody here wrote): accepted, then
/// refused when replayed or altered. Skips loudly without botocore (fails under `CI=true`).
pub async fn case_signed_by_botocore(app: TestApp) {
    let owner = app.owner("boto");
    let k = app.create_signing(&owner, &["reports:read"]).await;
    let config = app.keyward.signing_config().clone();
    let n = nonce();
    let url = app.url("/echo?q=a%20b&x=1");
    let headers = [
        ("x-keyward-nonce", n.as_str()),
        ("content-type", "application/json"),
    ];
    let body = r#"{"signed":"by botocore"}"#;
    let Some(auth) = crate::stock_signer::sign(&crate::stock_signer::StockRequest {
        method: "POST",
        url: &url,
        headers: &headers,
        body,
        access_key_id: &k.id,
        secret: &k.api_key,
        region: &config.region,
        service: &config.service,
        date: None,
    }) else {
        return;
    };
    let send = |body: &'static str| {
        let mut b = app.client.post(&url).body(body);
        for (name, value) in headers.iter().map(|(a, b)| (*a, *b)) {
            b = b.header(name, value);
        }
        for (name, value) in &auth {
            b = b.header(name.as_str(), value.as_str());
        }
        b.send()
    };
    let res = send(body).await.expect("sent");
    assert_eq!(res.status(), 200, "botocore's request refused");
    let v: Value = res.json().await.expect("json");
    assert_eq!(v["principal"]["key_id"], k.id.as_str());
    assert_eq!(v["body"], body);
    assert_problem(send(body).await.expect("sent"), 401, "SIGNATURE_REPLAYED").await;
    assert_problem(
        send(r#"{"signed":"by someone else"}"#).await.expect("sent"),
        401,
        "SIGNATURE_INVALID",
    )
    .await;
}

/// An engine without an encryption keyring: signing keys cannot be created, and a signed
/// request where a key is required is `401 SIGNATURE_INVALID`; open routes still answer; the
/// OpenAPI document has no `apiKeyHmacAuth`.
pub async fn case_signing_disabled<A, AFut>(store: Arc<dyn KeyStore>, spawn: A)
where
    A: FnOnce(Keyward) -> AFut,
    AFut: Future<Output = SocketAddr>,
{
    let app = TestApp::start_with(suite_keyward_without_signing(store), spawn).await;
    assert!(!app.keyward.signing_enabled());
    let owner = app.owner("nosign");
    let res = app
        .create_raw(&owner, &json!({"name": "s", "signing": true}))
        .await;
    assert_problem(res, 422, "VALIDATION_FAILED").await;
    let c = app
        .create(&owner, json!({"name": "b", "scopes": ["reports:read"]}))
        .await;
    for path in ["/protected", "/any"] {
        let body = assert_problem(
            app.signed(&ToSign::new("GET", path), &c).await,
            401,
            "SIGNATURE_INVALID",
        )
        .await;
        assert_eq!(body["detail"], "signed requests are not enabled");
    }
    assert_problem(
        app.signed(&ToSign::new("POST", "/echo"), &c).await,
        401,
        "SIGNATURE_INVALID",
    )
    .await;
    assert_eq!(
        app.signed(&ToSign::new("GET", "/open"), &c).await.status(),
        200
    );
    assert_eq!(app.protected_status(&c.api_key).await, 200);
    let doc: Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert!(doc["components"]["securitySchemes"]["apiKeyHmacAuth"].is_null());
}

/// Generates one `#[tokio::test]` per case in the calling module:
///
/// ```text
/// keyward_test::http_suite!(store = make_store, spawn = spawn_app);
/// ```
///
/// `make_store`: `() -> impl Future<Output = S>`, `S` an `Arc<dyn KeyStore>` or
/// `Option<Arc<dyn KeyStore>>` (`None` skips); `spawn_app`: `Fn(Keyward) -> impl
/// Future<Output = SocketAddr>` (see the module docs for the app). The caller needs `tokio` as a
/// dev-dependency.
#[macro_export]
macro_rules! http_suite {
    (store = $make:expr, spawn = $spawn:expr $(,)?) => {
        $crate::http_suite!(@cases $make, $spawn;
            case_create_shows_key_once, case_credential_forms, case_missing_and_open,
            case_management_needs_owner_not_key, case_foreign_key_is_404, case_revoke_is_immediate,
            case_scope_denied, case_expired_and_inactive, case_max_keys_concurrent,
            case_rotate_grace, case_pagination, case_validation, case_body_transport_errors,
            case_hostile_input, case_rate_limited, case_admin_routes, case_openapi,
            case_signed_round_trip, case_signed_tampering, case_signed_expired,
            case_signed_replay, case_signed_body_limit, case_signed_refused_before_body,
            case_signed_keys_and_scopes, case_signed_by_botocore);

        #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn case_signing_disabled() {
            let store = $crate::store_suite::IntoStore::into_store(($make)().await);
            if let Some(store) = store {
                $crate::http_suite::case_signing_disabled(store, $spawn).await;
            }
        }

        #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn case_store_down() {
            $crate::http_suite::case_store_down($spawn).await;
        }
    };
    (@cases $make:expr, $spawn:expr; $($case:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let store = $crate::store_suite::IntoStore::into_store(($make)().await);
                if let Some(store) = store {
                    let app = $crate::http_suite::TestApp::start(store, $spawn).await;
                    $crate::http_suite::$case(app).await;
                }
            }
        )*
    };
}
