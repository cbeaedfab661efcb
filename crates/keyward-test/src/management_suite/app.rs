//! The app contract of the suite: the engine the adapters run, and [`MgmtApp`], a running stack
//! and how to talk to it as an owner and as an administrator.

use std::any::Any;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use keyward_core::key::KeyId;
use keyward_core::model::{Credits, Policy, RateLimit, SelfServiceDefaults};
use keyward_core::{KeyStore, Keyring, Keyward};
use reqwest::Method;
use serde_json::Value;

use super::{MAX_KEYS, SELF_SERVICE_CREDITS, SELF_SERVICE_MAX_TTL_DAYS, SELF_SERVICE_RATE};
use crate::http_suite::{Created, created};

/// The engine the adapters' apps run over: the suite's policy, the in-process test keyring.
#[must_use]
pub fn management_keyward(store: Arc<dyn KeyStore>) -> Keyward {
    let policy = Policy {
        max_keys_per_owner: Some(MAX_KEYS),
        self_service: SelfServiceDefaults {
            rate_limit: Some(RateLimit {
                requests: SELF_SERVICE_RATE.0,
                window_seconds: SELF_SERVICE_RATE.1,
            }),
            credits: Some(Credits {
                limit: SELF_SERVICE_CREDITS,
                refill_seconds: None,
            }),
            max_ttl: Some(time::Duration::days(SELF_SERVICE_MAX_TTL_DAYS)),
        },
        ..Policy::default()
    };
    Keyward::builder(store, Keyring::insecure_test_keyring())
        .policy(policy)
        .build()
        .expect("keyward builds")
}

/// Where the adapters' apps mount a second set of self-service routes on which API keys (and
/// only they) manage their owner's keys (`allow_api_key_callers`).
pub const KEY_ROUTES: &str = "/by-key";

/// A running stack and how to talk to it as an owner and as an administrator.
#[derive(Clone)]
pub struct MgmtApp {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// An HTTP client.
    pub client: reqwest::Client,
    admin: (&'static str, String),
    /// A `GET` route that answers `200` for a valid key holding `reports:read`.
    probe: &'static str,
    /// Where API keys may manage their owner's keys (`None`: nowhere, as on the server).
    pub key_routes: Option<&'static str>,
    tag: String,
    /// The adapters' engine, to flush usage; the server flushes on its own.
    keyward: Option<Keyward>,
    _guard: Option<Arc<dyn Any + Send + Sync>>,
}

impl std::fmt::Debug for MgmtApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MgmtApp")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client builds")
}

fn tag() -> String {
    KeyId::generate().expect("os random").to_string()
}

impl MgmtApp {
    /// An adapter's app (the [`mod@crate::http_suite`] contract) over [`management_keyward`].
    pub async fn adapter<A, AFut>(store: Arc<dyn KeyStore>, spawn: A) -> Self
    where
        A: FnOnce(Keyward) -> AFut,
        AFut: Future<Output = SocketAddr>,
    {
        let keyward = management_keyward(store);
        let addr = spawn(keyward.clone()).await;
        Self {
            base: format!("http://{addr}"),
            client: client(),
            admin: ("x-test-admin", "yes".to_owned()),
            probe: "/protected",
            key_routes: Some(KEY_ROUTES),
            tag: tag(),
            keyward: Some(keyward),
            _guard: None,
        }
    }

    /// A `keyward serve` at `base`, started with [`SERVER_FLAGS`](super::SERVER_FLAGS) and `admin_token`;
    /// `guard` keeps it running as long as the app lives.
    #[must_use]
    pub fn server(base: String, admin_token: &str, guard: Arc<dyn Any + Send + Sync>) -> Self {
        Self {
            base,
            client: client(),
            admin: ("authorization", format!("Bearer {admin_token}")),
            probe: "/v1/whoami",
            key_routes: None,
            tag: tag(),
            keyward: None,
            _guard: Some(guard),
        }
    }

    /// Writes the usage counted so far to the store: the adapters' engine flushes now; the
    /// server flushes every [`SERVER_FLAGS`](super::SERVER_FLAGS)' interval by itself.
    pub async fn flush_usage(&self) {
        if let Some(kw) = &self.keyward {
            kw.flush_usage().await.expect("usage flushes");
        }
    }

    /// An owner id unique to this run.
    #[must_use]
    pub fn owner(&self, name: &str) -> String {
        format!("{name}-{}", self.tag)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A self-service request as `owner`.
    pub fn as_owner(&self, method: Method, path: &str, owner: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(path))
            .header("x-test-owner", owner)
    }

    /// An admin request.
    pub fn as_admin(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(path))
            .header(self.admin.0, &self.admin.1)
    }

    /// The route [`Self::probe`] calls: any verified key passes it.
    pub fn probe_path(&self) -> &'static str {
        self.probe
    }

    /// A request with `key` as the bearer credential, nothing else.
    pub fn with_key(&self, method: Method, path: &str, key: &str) -> reqwest::RequestBuilder {
        self.client.request(method, self.url(path)).bearer_auth(key)
    }

    /// The status a verified request with `key` gets (the adapters' `/protected`, the server's
    /// `/v1/whoami`).
    pub async fn probe(&self, key: &str) -> u16 {
        send(self.with_key(Method::GET, self.probe, key))
            .await
            .status()
            .as_u16()
    }

    /// Creates a key as `owner` through self-service, asserting `201`.
    pub async fn owner_create(&self, owner: &str, body: Value) -> Created {
        let res = send(self.as_owner(Method::POST, "/api-keys", owner).json(&body)).await;
        assert_eq!(res.status(), 201, "owner create {body}");
        created(res).await
    }

    /// Creates a key for `owner` through the admin routes, asserting `201`.
    pub async fn admin_create(&self, owner: &str, body: Value) -> Created {
        let res = send(
            self.as_admin(Method::POST, &format!("/admin/owners/{owner}/api-keys"))
                .json(&body),
        )
        .await;
        assert_eq!(res.status(), 201, "admin create {body}");
        created(res).await
    }

    /// `PATCH /api-keys/{id}` as `owner`.
    pub async fn owner_patch(&self, owner: &str, id: &str, body: Value) -> reqwest::Response {
        send(
            self.as_owner(Method::PATCH, &format!("/api-keys/{id}"), owner)
                .json(&body),
        )
        .await
    }

    /// `PATCH /admin/owners/{owner}/api-keys/{id}`.
    pub async fn admin_patch(&self, owner: &str, id: &str, body: Value) -> reqwest::Response {
        send(
            self.as_admin(
                Method::PATCH,
                &format!("/admin/owners/{owner}/api-keys/{id}"),
            )
            .json(&body),
        )
        .await
    }

    /// The key as its owner sees it.
    pub async fn owner_get(&self, owner: &str, id: &str) -> Value {
        let res = send(self.as_owner(Method::GET, &format!("/api-keys/{id}"), owner)).await;
        assert_eq!(res.status(), 200, "get {id}");
        res.json().await.expect("json")
    }
}

pub(super) async fn send(req: reqwest::RequestBuilder) -> reqwest::Response {
    req.send().await.expect("request sent")
}
