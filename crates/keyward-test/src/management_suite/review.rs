//! Cases from the outside security review of 2026-12-06 (issue 29), each a demonstrated hole
//! that must stay closed on every stack.

use reqwest::Method;
use serde_json::json;

use super::MgmtApp;
use super::app::send;
use crate::http_suite::assert_problem;

/// Review finding 4: one owner-id grammar on every path. An id with whitespace at either end
/// (which header parsers trim), inside, or a comma, is refused by the admin routes and by
/// self-service alike, so that no two spellings of one owner exist in a store.
pub async fn case_owner_ids_follow_one_grammar(app: MgmtApp) {
    let owner = app.owner("grammar");
    for bad in [
        format!("{owner}%20"),
        format!("%20{owner}"),
        format!("{owner}%09"),
        format!("al%20{owner}"),
        format!("a%2C{owner}"),
        format!("%C3%A9{owner}"),
    ] {
        let path = format!("/admin/owners/{bad}/api-keys");
        let res = send(
            app.as_admin(Method::POST, &path)
                .json(&json!({"name": "k"})),
        )
        .await;
        assert_problem(res, 422, "VALIDATION_FAILED").await;
        let res = send(app.as_admin(Method::GET, &path)).await;
        assert_problem(res, 422, "VALIDATION_FAILED").await;
    }
    for bad in [format!("al {owner}"), format!("a,{owner}")] {
        let res = send(
            app.as_owner(Method::POST, "/api-keys", &bad)
                .json(&json!({"name": "k"})),
        )
        .await;
        assert_problem(res, 422, "VALIDATION_FAILED").await;
    }
    // The grammar's own characters pass.
    let fancy = format!("{owner}:org@x.example%7Ca=c~d+e_f.g");
    let made = app.admin_create(&fancy, json!({"name": "k"})).await;
    assert_eq!(
        made.body["key"]["owner_id"],
        format!("{owner}:org@x.example|a=c~d+e_f.g")
    );
}
