//! `--database-read-url`: key lookups read a PostgreSQL standby the test starts and makes lag
//! (its replay paused), against the primary for what the standby does not have yet and for
//! keys that changed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use common::{Db, Env, Server, rt};
use keyward_test::standby::Standby;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn create(s: &Server, admin: &str, name: &str) -> (String, String) {
    let r = s
        .http
        .post(s.url("/admin/owners/rio/api-keys"))
        .bearer_auth(admin)
        .json(&json!({"name": name}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let v: Value = r.json().await.unwrap();
    (
        v["api_key"].as_str().unwrap().to_owned(),
        v["key"]["id"].as_str().unwrap().to_owned(),
    )
}

async fn whoami(s: &Server, key: &str) -> StatusCode {
    let r = s.http.get(s.url("/v1/whoami")).bearer_auth(key).send();
    r.await.unwrap().status()
}

/// Lookups go to the standby: a key revoked on the primary behind keyward's back (no
/// invalidation) still verifies while the standby lags, which only a read of the standby
/// explains. A key created while it lags verifies at once (the miss falls back to the
/// primary), and a key revoked through keyward is refused at once (a changed key is read from
/// the primary for the allowed lag, 1 s here), though the standby still has both as they were.
#[test]
fn lookups_read_the_standby_and_fall_back_to_the_primary() {
    let Some(pg) = Standby::start("lookups_read_the_standby_and_fall_back_to_the_primary") else {
        return;
    };
    let env = Env::with(Db::postgres_at(Standby::url(pg.primary_port)));
    let standby = Standby::url(pg.standby_port);
    let s = env.serve(
        &[
            "--database-read-url",
            &standby,
            "--database-read-max-lag",
            "1s",
            "--cache-size",
            "0",
        ],
        &[],
    );
    let admin = s.bootstrap_key().unwrap();
    assert!(s.stderr().contains("key lookups read the replica first"));
    rt().block_on(async {
        let (old, old_id) = create(&s, &admin, "old").await;
        pg.caught_up().unwrap();
        pg.pause_replay(true).unwrap();
        // Past the allowed lag of its creation: read from the standby again.
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;

        // Behind keyward's back: only the primary knows.
        let revoked =
            format!("UPDATE api_keys SET revoked_at = now() WHERE key_id = '{old_id}' RETURNING 1");
        assert_eq!(pg.sql(pg.primary_port, "keyward", &revoked).unwrap(), "1");
        assert_eq!(
            whoami(&s, &old).await,
            StatusCode::OK,
            "read from the standby"
        );

        let (new, new_id) = create(&s, &admin, "new").await;
        let on_standby = format!("SELECT count(*) FROM api_keys WHERE key_id = '{new_id}'");
        assert_eq!(
            pg.sql(pg.standby_port, "keyward", &on_standby).unwrap(),
            "0"
        );
        assert_eq!(
            whoami(&s, &new).await,
            StatusCode::OK,
            "fell back to the primary"
        );

        let st = s
            .http
            .delete(s.url(&format!("/admin/owners/rio/api-keys/{new_id}")))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(st, StatusCode::NO_CONTENT);
        assert_eq!(
            whoami(&s, &new).await,
            StatusCode::UNAUTHORIZED,
            "a revoked key read back from a lagging standby"
        );
        pg.pause_replay(false).unwrap();
    });
    s.terminate();
}
