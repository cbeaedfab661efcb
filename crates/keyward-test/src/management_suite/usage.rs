//! Usage analytics over HTTP: what verifications count, who may read a key's and an owner's
//! counts, and what a bad query gets.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use super::MgmtApp;
use super::app::send;
use crate::http_suite::assert_problem;

/// Reads `path` as `owner` (flushing first) until `done` holds for its totals, for up to ten
/// seconds (the server flushes on its own interval), and gives the last answer.
async fn usage(app: &MgmtApp, path: &str, owner: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        app.flush_usage().await;
        let res = send(app.as_owner(Method::GET, path, owner)).await;
        assert_eq!(res.status(), 200, "GET {path}");
        let report: Value = res.json().await.expect("json");
        if done(&report["totals"]) || Instant::now() > deadline {
            return report;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Three admitted requests, one with a revoked key (scope refusals are counted where the
/// engine checks the scopes, which differs between the stacks' probe routes: the engine's
/// tests cover them):
/// the key's counts and the owner's sum show them by outcome, in the current hour's bucket;
/// another owner reads neither; the admin mount reads the same by day; a bad query is `422`.
pub async fn case_usage_analytics(app: MgmtApp) {
    let (owner, stranger) = (app.owner("metered"), app.owner("metered-other"));
    let reader = app
        .admin_create(
            &owner,
            json!({"name": "reader", "scopes": ["reports:read"]}),
        )
        .await;
    let gone = app
        .admin_create(&owner, json!({"name": "gone", "scopes": ["reports:read"]}))
        .await;
    let res = send(app.as_owner(Method::DELETE, &format!("/api-keys/{}", gone.id), &owner)).await;
    assert_eq!(res.status(), 204);
    // The first use is the one recorded as the key's last (the throttle holds the others).
    let res = send(
        app.with_key(Method::GET, app.probe_path(), &reader.api_key)
            .header("user-agent", "suite-agent/1.0 (probe)"),
    )
    .await;
    assert_eq!(res.status(), 200);
    for _ in 0..2 {
        assert_eq!(app.probe(&reader.api_key).await, 200);
    }
    assert_eq!(app.probe(&gone.api_key).await, 401);

    let path = format!("/api-keys/{}/usage", reader.id);
    let report = usage(&app, &path, &owner, |t| t["valid"] == 3).await;
    assert_eq!(report["granularity"], "hour");
    assert_eq!(report["totals"]["valid"], 3, "{report}");
    assert_eq!(report["totals"]["revoked"], 0, "another key's refusal");
    let buckets = report["buckets"].as_array().expect("buckets");
    assert_eq!(buckets.len(), 24, "a day of hours by default");
    assert_eq!(buckets[23]["outcomes"]["valid"], 3, "in the current hour");

    let all = usage(&app, "/api-keys/usage", &owner, |t| {
        t["valid"] == 3 && t["revoked"] == 1
    })
    .await;
    let totals = &all["totals"];
    assert_eq!(
        (&totals["valid"], &totals["revoked"], &totals["invalid"]),
        (&json!(3), &json!(1), &json!(0)),
        "the owner's keys summed: {all}"
    );

    // The key shows when it was last used, and from where.
    let res = send(app.as_owner(Method::GET, &format!("/api-keys/{}", reader.id), &owner)).await;
    assert_eq!(res.status(), 200);
    let view: Value = res.json().await.unwrap();
    assert!(view["last_used_at"].is_string(), "{view}");
    assert_eq!(
        view["last_used_from"]["user_agent"], "suite-agent/1.0 (probe)",
        "{view}"
    );
    assert_eq!(view["last_used_from"]["client_addr"], "127.0.0.1", "{view}");

    // Another owner: not found for the key, nothing of it in its own sum.
    let res = send(app.as_owner(Method::GET, &path, &stranger)).await;
    assert_problem(res, 404, "API_KEY_NOT_FOUND").await;
    let res = send(app.as_owner(Method::GET, "/api-keys/usage", &stranger)).await;
    assert_eq!(res.status(), 200);
    let theirs: Value = res.json().await.unwrap();
    assert_eq!(theirs["totals"]["valid"], 0);

    // Administrators read any owner's, here by day.
    let res = send(app.as_admin(
        Method::GET,
        &format!(
            "/admin/owners/{owner}/api-keys/{}/usage?granularity=day",
            reader.id
        ),
    ))
    .await;
    assert_eq!(res.status(), 200);
    let daily: Value = res.json().await.unwrap();
    assert_eq!(daily["buckets"].as_array().map(Vec::len), Some(30));
    assert_eq!(daily["totals"]["valid"], 3);

    // Bad queries name their field.
    for (query, field) in [
        ("granularity=minute", "granularity"),
        ("from=yesterday", "from"),
        ("from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", "from"),
        ("from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z", "from"),
        ("tag=%07bell", "tag"),
    ] {
        let res = send(app.as_owner(Method::GET, &format!("{path}?{query}"), &owner)).await;
        let body = assert_problem(res, 422, "VALIDATION_FAILED").await;
        assert_eq!(body["errors"][0]["field"], field, "{query}: {body}");
    }
    let res = send(app.as_owner(Method::GET, "/api-keys/not-a-key/usage", &owner)).await;
    assert_problem(res, 404, "API_KEY_NOT_FOUND").await;
}
