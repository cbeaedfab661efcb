//! Usage analytics end to end: verifications through the server's `/v1/verify`, tagged, counted
//! by outcome, flushed at shutdown, and shown by `keyward keys usage` as a table with
//! sparklines, and as JSON.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use common::{Env, assert_one_line_error};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_usage_shows_outcomes_tags_and_sparklines() {
    let env = Env::sqlite();
    let server = env.serve(&[], &[]);
    let admin_key = server
        .bootstrap_key()
        .expect("first start bootstraps an admin key");
    let res = server
        .http
        .post(server.url("/admin/owners/acme/api-keys"))
        .bearer_auth(&admin_key)
        .json(&json!({"name": "reports", "scopes": ["reports:read"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let created: Value = res.json().await.unwrap();
    let (id, raw) = (
        created["key"]["id"].as_str().unwrap().to_owned(),
        created["api_key"].as_str().unwrap().to_owned(),
    );
    let verify = |body: Value| {
        server
            .http
            .post(server.url("/v1/verify"))
            .bearer_auth(&admin_key)
            .json(&body)
            .send()
    };
    // The sidecar's caller passes where the key's holder called from, recorded with the use.
    let origin = json!({"client_ip": "203.0.113.9", "user_agent": "partner-sdk/2.1\u{1b}[31m"});
    for (i, tags) in [
        json!(["path=/reports"]),
        json!(["path=/reports"]),
        json!([]),
    ]
    .into_iter()
    .enumerate()
    {
        let mut body = json!({"key": raw, "scopes": ["reports:read"], "tags": tags});
        if i == 0 {
            body["client_ip"] = origin["client_ip"].clone();
            body["user_agent"] = origin["user_agent"].clone();
        }
        let res = verify(body).await.unwrap();
        assert_eq!(res.json::<Value>().await.unwrap()["valid"], true);
    }
    let res = verify(json!({"key": raw, "scopes": ["billing:read"], "tags": ["path=/billing"]}))
        .await
        .unwrap();
    assert_eq!(
        res.json::<Value>().await.unwrap()["code"],
        "API_KEY_SCOPE_DENIED"
    );
    // Tags are held to their rules: a bad one is the caller's error, not a verdict.
    let res = verify(json!({"key": raw, "tags": ["\u{7}"]}))
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    let many: Vec<String> = (0..21).map(|i| format!("t{i}")).collect();
    let res = verify(json!({"key": raw, "tags": many})).await.unwrap();
    assert_eq!(res.status(), 422);
    // Shutdown flushes what is counted.
    server.terminate();

    let shown = env.cli_json(&["keys", "show", &id, "--json"]);
    assert_eq!(
        shown["last_used_from"],
        json!({"client_addr": "203.0.113.9", "user_agent": "partner-sdk/2.1[31m"}),
        "recorded, control characters dropped: {shown}"
    );
    let out = env.cli(&["keys", "show", &id]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("last used from  203.0.113.9 (partner-sdk/2.1[31m)"),
        "{text}"
    );

    let report = env.cli_json(&["keys", "usage", &id, "--json"]);
    assert_eq!(report["totals"]["valid"], 3, "{report}");
    assert_eq!(report["totals"]["scope_denied"], 1);
    let tags: Vec<(&str, &Value)> = report["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["tag"].as_str().unwrap(), &t["outcomes"]))
        .collect();
    assert_eq!(tags.len(), 2);
    assert_eq!(
        (tags[0].0, &tags[0].1["scope_denied"]),
        ("path=/billing", &json!(1))
    );
    assert_eq!(
        (tags[1].0, &tags[1].1["valid"]),
        ("path=/reports", &json!(2))
    );

    let out = env.cli(&["keys", "usage", &id]);
    assert!(out.status.success());
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(
        table.contains(&format!("key {id} of acme, by hour")),
        "{table}"
    );
    let valid = table
        .lines()
        .find(|l| l.starts_with("valid"))
        .unwrap_or_else(|| panic!("no valid row: {table}"));
    assert!(valid.contains(" 3 "), "{valid}");
    assert!(
        valid.ends_with('█'),
        "the current hour is the last bar: {valid}"
    );
    assert_eq!(
        valid.chars().filter(|c| "▁▂▃▄▅▆▇█".contains(*c)).count(),
        24
    );
    assert!(table.contains("path=/reports"), "{table}");

    // The owner's sum, by day, filtered by tag.
    let owner = env.cli_json(&[
        "keys",
        "usage",
        "--owner",
        "acme",
        "--by",
        "day",
        "--tag",
        "path=/reports",
        "--json",
    ]);
    assert_eq!(owner["granularity"], "day");
    assert_eq!(owner["totals"]["valid"], 2);
    assert_eq!(owner["buckets"].as_array().map(Vec::len), Some(30));

    assert_one_line_error(&env.cli(&["keys", "usage"]), "");
    assert_one_line_error(
        &env.cli(&["keys", "usage", &id, "--since", "soon"]),
        "--since",
    );
    assert_one_line_error(&env.cli(&["keys", "usage", "AAAAAAAAAAAA"]), "no such key");
}
