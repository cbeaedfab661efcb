//! Redis rate limits and credits on the server: leased to each instance a slice at a time, they
//! stay within their bound across instances, and a lost Redis fails closed (or, opted into,
//! falls back to per-instance limits).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    clippy::print_stdout
)]

mod common;

use common::{Env, Server, rt};
use keyward_test::services::RedisChild;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Creates a key for `owner` with the JSON fields of `extra` (`rate_limit`, `credits`).
async fn create(s: &Server, admin: &str, owner: &str, extra: Value) -> String {
    let mut body = json!({"name": "limited"});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let r = s
        .http
        .post(s.url(&format!("/admin/owners/{owner}/api-keys")))
        .bearer_auth(admin)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let v: Value = r.json().await.unwrap();
    v["api_key"].as_str().unwrap().to_owned()
}

async fn whoami(s: &Server, key: &str) -> StatusCode {
    s.http
        .get(s.url("/v1/whoami"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .status()
}

/// Sends `per_instance` requests with `key` to each of `servers`, eight at a time on each;
/// the number answered 200. Any answer but 200 and 429 fails.
async fn hammer(servers: &[&Server], key: &str, per_instance: usize) -> usize {
    let mut tasks = Vec::new();
    for s in servers {
        for _ in 0..8 {
            let (http, url, key) = (s.http.clone(), s.url("/v1/whoami"), key.to_owned());
            tasks.push(tokio::spawn(async move {
                let mut admitted = 0;
                for _ in 0..per_instance / 8 {
                    let st = http
                        .get(&url)
                        .bearer_auth(&key)
                        .send()
                        .await
                        .unwrap()
                        .status();
                    match st {
                        StatusCode::OK => admitted += 1,
                        StatusCode::TOO_MANY_REQUESTS => {}
                        other => panic!("{other}"),
                    }
                }
                admitted
            }));
        }
    }
    let mut admitted = 0;
    for t in tasks {
        admitted += t.await.unwrap();
    }
    admitted
}

/// Two instances sharing Redis, both hammered: a key limited to N an hour admits N within the
/// bound docs/quotas.md states (at most N × 1.05 plus one lease per instance, at least
/// 0.95 × N), and a key with C credits is admitted exactly C times, never more.
#[test]
fn limits_hold_across_two_instances() {
    let Some(redis) = rt().block_on(keyward_test::services::redis_url()) else {
        return;
    };
    let env = Env::sqlite();
    let args = ["--redis-url", redis.as_str()];
    let a = env.serve(&args, &[]);
    let admin = a.bootstrap_key().unwrap();
    let b = env.serve(&args, &[]);
    rt().block_on(async {
        const N: usize = 400;
        let limited = create(
            &a,
            &admin,
            "ann",
            json!({"rate_limit": {"requests": N, "window_seconds": 3600}}),
        )
        .await;
        let admitted = hammer(&[&a, &b], &limited, 2 * N).await;
        // A lease is at most 1/100 of the budget.
        let lease = N / 100;
        println!("rate limit {N}/h: {admitted} of {} admitted", 4 * N);
        assert!(
            admitted as f64 <= N as f64 * 1.05 + 2.0 * lease as f64,
            "{admitted} admitted against a limit of {N}"
        );
        assert!(
            admitted as f64 >= N as f64 * 0.95,
            "only {admitted} admitted against a limit of {N}: starved"
        );

        const C: usize = 300;
        let metered = create(&a, &admin, "ann", json!({"credits": {"limit": C}})).await;
        let admitted = hammer(&[&a, &b], &metered, 2 * C).await;
        println!("credits {C}: {admitted} of {} admitted", 4 * C);
        assert!(admitted <= C, "{admitted} admitted on {C} credits");
        assert!(
            admitted as f64 >= C as f64 * 0.95,
            "only {admitted} admitted on {C} credits"
        );
    });
    b.terminate();
    a.terminate();
}

/// Redis lost mid-window: a rate-limited key is answered 503 once the lease this instance holds
/// is spent (fail closed), and with `--limits-on-redis-loss local` the instance limits it on its
/// own count instead; credits fail closed either way.
#[test]
fn a_lost_redis_fails_closed_unless_local_limits_are_chosen() {
    let Some(mut redis) = rt().block_on(RedisChild::start(
        "a_lost_redis_fails_closed_unless_local_limits_are_chosen",
    )) else {
        return;
    };
    let env = Env::sqlite();
    let closed = env.serve(&["--redis-url", &redis.url()], &[]);
    let admin = closed.bootstrap_key().unwrap();
    let local = env.serve(
        &[
            "--redis-url",
            &redis.url(),
            "--limits-on-redis-loss",
            "local",
        ],
        &[],
    );
    rt().block_on(async {
        let busy = create(
            &closed,
            &admin,
            "bo",
            json!({"rate_limit": {"requests": 1000, "window_seconds": 1}}),
        )
        .await;
        let few = create(
            &closed,
            &admin,
            "bo",
            json!({"rate_limit": {"requests": 5, "window_seconds": 3600}}),
        )
        .await;
        let metered = create(&closed, &admin, "bo", json!({"credits": {"limit": 1000}})).await;
        for _ in 0..20 {
            assert_eq!(whoami(&closed, &busy).await, StatusCode::OK);
        }
        redis.kill();

        // Closed: what this instance holds of the lease (at most 1/100 of 1000, and the
        // quarter it leases ahead at) is spent, then 503, and 503 from then on.
        let mut statuses = Vec::new();
        for _ in 0..40 {
            statuses.push(whoami(&closed, &busy).await);
        }
        let first = statuses
            .iter()
            .position(|s| *s == StatusCode::SERVICE_UNAVAILABLE)
            .unwrap_or_else(|| panic!("never 503 with Redis lost: {statuses:?}"));
        assert!(first <= 10 + 3, "{first} requests admitted with Redis lost");
        assert!(
            statuses[first..]
                .iter()
                .all(|s| *s == StatusCode::SERVICE_UNAVAILABLE),
            "{statuses:?}"
        );
        assert_eq!(
            whoami(&closed, &metered).await,
            StatusCode::SERVICE_UNAVAILABLE
        );

        // Local: this instance's own count of 5, then 429; credits still 503.
        let statuses: Vec<_> = statuses_of(&local, &few, 7).await;
        assert_eq!(
            statuses,
            [
                [StatusCode::OK; 5].as_slice(),
                &[StatusCode::TOO_MANY_REQUESTS; 2]
            ]
            .concat()
        );
        assert_eq!(
            whoami(&local, &metered).await,
            StatusCode::SERVICE_UNAVAILABLE
        );
    });
    local.terminate();
    closed.terminate();
}

/// `n` requests with `key`, one after another; their statuses.
async fn statuses_of(s: &Server, key: &str, n: usize) -> Vec<StatusCode> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(whoami(s, key).await);
    }
    out
}

/// A request's price in credits: `cost` in `POST /v1/verify`'s body and `?cost=` on
/// `/v1/authz`, spent whole or refused with `USAGE_EXHAUSTED` (verify answers `valid: false`
/// and `retry_after`, authz `429`); 0 is free; a cost that is not a whole number is `422`.
#[test]
fn verify_and_authz_charge_the_cost_they_are_given() {
    let env = Env::sqlite();
    let s = env.serve(&[], &[]);
    let admin = s.bootstrap_key().unwrap();
    rt().block_on(async {
        let key = create(&s, &admin, "cy", json!({"credits": {"limit": 10}})).await;
        let verify = |cost: Value| {
            let req = s
                .http
                .post(s.url("/v1/verify"))
                .bearer_auth(&admin)
                .json(&json!({"key": key, "cost": cost}));
            async move {
                let v: Value = req.send().await.unwrap().json().await.unwrap();
                (v["valid"].as_bool().unwrap(), v["code"].clone())
            }
        };
        assert_eq!(verify(json!(4)).await, (true, Value::Null));
        assert_eq!(verify(json!(4)).await, (true, Value::Null));
        assert_eq!(
            verify(json!(4)).await,
            (false, json!("USAGE_EXHAUSTED")),
            "4 credits of 2 left"
        );
        let authz = |cost: &str| {
            let req = s
                .http
                .get(s.url(&format!("/v1/authz?cost={cost}")))
                .bearer_auth(&key);
            async move { req.send().await.unwrap().status() }
        };
        assert_eq!(authz("2").await, StatusCode::NO_CONTENT);
        assert_eq!(authz("1").await, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(authz("0").await, StatusCode::NO_CONTENT);
        assert_eq!(verify(json!(0)).await, (true, Value::Null));
        assert_eq!(authz("-1").await, StatusCode::UNPROCESSABLE_ENTITY);
        let st = s
            .http
            .post(s.url("/v1/verify"))
            .bearer_auth(&admin)
            .json(&json!({"key": key, "cost": -1}))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    });
    s.terminate();
}

/// `keyward keys credits KEY_ID --add N`: the CLI's top-up, as the admin route's; a balance
/// that would fall below 0 is one line on stderr and a failure.
#[test]
fn the_cli_tops_up_credits() {
    let env = Env::sqlite();
    let s = env.serve(&[], &[]);
    let admin = s.bootstrap_key().unwrap();
    let (key, id) = rt().block_on(async {
        let key = create(&s, &admin, "di", json!({"credits": {"limit": 1}})).await;
        assert_eq!(whoami(&s, &key).await, StatusCode::OK);
        assert_eq!(whoami(&s, &key).await, StatusCode::TOO_MANY_REQUESTS);
        let id = key.split('_').nth(2).unwrap().to_owned();
        (key, id)
    });
    let view = env.cli_json(&["keys", "credits", &id, "--add", "2", "--json"]);
    assert_eq!(view["credits"]["limit"], 3, "{view}");
    let text = env.cli(&["keys", "credits", &id, "--add", "-1"]);
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    assert!(text.contains("-1 credits, 2 in all"), "{text}");
    let refused = env.cli(&["keys", "credits", &id, "--add", "-5"]);
    common::assert_one_line_error(&refused, "below 0");
    s.terminate();
    // The server was told nothing: it reads the new balance once its cache entry expires or on
    // restart; a fresh server admits what is left.
    let s = env.serve(&[], &[]);
    rt().block_on(async {
        assert_eq!(whoami(&s, &key).await, StatusCode::OK);
    });
    s.terminate();
}
