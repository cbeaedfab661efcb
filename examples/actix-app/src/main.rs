//! keyward on actix-web in one file: `GET /reports` needs the `reports:read` scope, the
//! management routes live under `/api-keys` (owner from the `x-user` header: demo only, use your
//! session or JWT), keys are stored in SQLite (`keys.db`), the pepper comes from `KEYWARD_PEPPER`.
//!
//! ```text
//! KEYWARD_PEPPER=$(head -c 32 /dev/urandom | base64) cargo run -p example-actix-app
//! curl -s -XPOST localhost:8080/api-keys -H 'x-user: alice' -H 'content-type: application/json' \
//!      -d '{"name":"ci","scopes":["reports:read"]}'
//! curl -s localhost:8080/reports -H "Authorization: Bearer <api_key from above>"
//! ```

use std::sync::Arc;
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use keyward_actix::{Authenticated, KeywardAuth, ManagementConfig, Rejection, RequireScopes};
use keyward_core::{Keyring, Keyward, Pepper, ScopeRequirement};
use keyward_sea_orm::SeaOrmKeyStore;

async fn reports_handler(caller: Authenticated) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "owner": caller.owner_id(), "reports": [] }))
}

/// Demo only: read your session or JWT here.
async fn current_user(req: &HttpRequest) -> Result<String, Rejection> {
    let user = req.headers().get("x-user").and_then(|v| v.to_str().ok());
    user.map(str::to_owned)
        .ok_or_else(Rejection::unauthenticated)
}

#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The pepper must outlive every key: load it from your secret store. The text is decoded
    // (base64 or hex, ≥ 32 bytes), as the keyward server reads KEYWARD_PEPPER.
    let pepper = std::env::var("KEYWARD_PEPPER").map_err(|_| "set KEYWARD_PEPPER (base64)")?;
    let keyring = Keyring::builder()
        .pepper(1, Pepper::from_encoded(&pepper)?)
        .build()?;
    let store = SeaOrmKeyStore::connect("sqlite://keys.db?mode=rwc").await?;
    store.migrate().await?;
    let keyward = Keyward::builder(Arc::new(store), keyring).build()?;
    let flusher = keyward_actix::spawn_usage_flusher(keyward.clone(), Duration::from_secs(10));

    let port: u16 = std::env::var("PORT").map_or(Ok(8080), |p| p.parse())?;
    let kw = keyward.clone();
    HttpServer::new(move || {
        // The factory runs once per worker and cannot use `?`: scope literals need none.
        // actix-web runs the last `wrap` first: the key is verified, then its scopes checked.
        let reports = web::resource("/reports")
            .wrap(RequireScopes::new(ScopeRequirement::all_of_static([
                "reports:read",
            ])))
            .wrap(KeywardAuth::new(kw.clone()));
        App::new()
            .configure(keyward_actix::management_routes(
                kw.clone(),
                ManagementConfig::new(current_user),
            ))
            .service(reports.route(web::get().to(reports_handler)))
            // Public: `KeywardAuth`, which refuses requests without a key, wraps `/reports`
            // only.
            .route("/health", web::get().to(|| async { "ok" }))
    })
    .bind(("127.0.0.1", port))?
    .run() // stops gracefully on Ctrl-C / SIGTERM
    .await?;
    // actix-web's runtime is single-threaded: write what is left here, while it still runs.
    flusher.shutdown().await;
    Ok(())
}
