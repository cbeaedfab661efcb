//! The admin CLI: `keyward keys …` and `keyward migrate`, straight against the database.
//! Human output is aligned tables; `--json` prints machine-readable JSON. The raw key is printed
//! on create and rotate only.

use keyward_core::management::{CreateKeyRequest, CreatedKey, KeyQuery, RotateKeyRequest};
use keyward_core::{Actor, KeyView, Keyward};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::config::{KeysArgs, KeysCommand, MigrateArgs};
use crate::duration::parse_duration;
use crate::error::AppError;
use crate::term::{out, parse_key_id, table, time};
use crate::{backend, config, pepper};

fn json<T: serde::Serialize>(v: &T) -> Result<String, AppError> {
    serde_json::to_string_pretty(v)
        .map(|s| s + "\n")
        .map_err(|e| AppError::Io(format!("cannot encode JSON: {e}")))
}

/// `keyward keys …`.
///
/// # Errors
/// Bad arguments, database failures, refused management calls.
pub(crate) async fn keys(args: KeysArgs) -> Result<(), AppError> {
    let file = config::FileConfig::load(args.store.config.as_deref())?;
    let store = config::resolve_store(&args.store, &file)?;
    let policy = config::resolve_policy(&args.policy, None, &file)?;
    let (keyring, source) = pepper::load_keyring(&store.database_url)?;
    crate::warn_pepper(&source);
    // Changes made here reach the webhooks when they are configured where the CLI runs too.
    let webhooks = !file.webhook_urls().is_empty()
        || std::env::var("KEYWARD_WEBHOOK_URL").is_ok_and(|v| !v.trim().is_empty());
    let backend = backend::open(&store.database_url, true, webhooks).await?;
    let redis_url = args
        .redis_url
        .clone()
        .or_else(|| file.redis_url.clone())
        .filter(|u| !u.trim().is_empty());
    let redis = redis_url
        .as_deref()
        .map(|url| {
            backend::redis(
                url,
                keyward_redis::OnRedisLoss::FailClosed,
                keyward_redis::Leasing::default().horizon,
            )
        })
        .transpose()?;
    let encryption = crate::encryption::keyring_from_env()?;
    if matches!(args.command, KeysCommand::ReEncrypt) {
        return re_encrypt(&backend, encryption.as_ref(), args.json).await;
    }
    let kw = backend::engine(
        &backend,
        keyring,
        policy,
        keyward_core::CacheConfig {
            capacity: 0,
            ..Default::default()
        },
        redis.as_ref(),
        backend::Signing {
            config: keyward_core::sigv4::SigningOptions::default(),
            encryption,
        },
        // The CLI verifies nothing: no client to throttle.
        |b| b.failure_throttle(keyward_core::throttle::FailureThrottle::off()),
    )?;
    match args.command {
        KeysCommand::ReEncrypt => Ok(()),
        KeysCommand::Create {
            owner,
            owners_from,
            count,
            out: out_file,
            name,
            scopes,
            description,
            ttl,
            expires_at,
            signing,
        } => {
            let ttl_seconds = match ttl {
                None => None,
                Some(t) => {
                    let d = parse_duration(&t)
                        .map_err(|e| AppError::config(format!("invalid --ttl {t:?}: {e}")))?;
                    Some(
                        i64::try_from(d.as_secs())
                            .map_err(|_| AppError::config("invalid --ttl: too long"))?,
                    )
                }
            };
            let expires_at = match expires_at {
                None => None,
                Some(t) => Some(OffsetDateTime::parse(t.trim(), &Rfc3339).map_err(|e| {
                    AppError::config(format!(
                        "invalid --expires-at {t:?}: {e} (use RFC 3339, e.g. 2027-01-31T00:00:00Z)"
                    ))
                })?),
            };
            let req = CreateKeyRequest {
                name,
                description,
                scopes,
                ttl_seconds,
                expires_at,
                signing,
                ..Default::default()
            };
            let owners = match (owner, owners_from) {
                (Some(owner), _) => vec![owner],
                (None, Some(file)) => crate::mint::owners_from(&file)?,
                (None, None) => return Err(AppError::config("give --owner or --owners-from")),
            };
            match (owners.as_slice(), count, out_file) {
                ([owner], 1, None) => {
                    let actor =
                        Actor::admin_for(owner).by(keyward_core::audit::ActorKind::Cli, None);
                    let created = kw.create_key_as(&actor, req).await?;
                    print_created(&created, args.json, "Created")
                }
                (_, _, None) => Err(AppError::config(
                    "more than one key: give --out FILE for their raw keys",
                )),
                (_, _, Some(file)) => out(&crate::mint::create_many(
                    &kw, &owners, count, &req, &file, args.json,
                )
                .await?),
            }
        }
        KeysCommand::List {
            owner,
            state,
            limit,
            after,
            format,
        } => {
            let query = KeyQuery {
                owner_id: owner.clone(),
                env: args.policy.key_env.clone(),
                state: state.map(Into::into),
                cursor: after,
                limit: None,
            };
            let (items, next) = list(&kw, query, limit).await?;
            if args.json || format == config::ListFormat::Json {
                out(&json(&items)?)?;
            } else if items.is_empty() {
                let whose = owner.map_or_else(String::new, |o| format!(" for owner {o}"));
                out(&format!("no keys{whose}\n"))?;
            } else {
                out(&list_table(&items))?;
            }
            if let Some(cursor) = next {
                eprintln!("more keys follow: --after {cursor}");
            }
            Ok(())
        }
        KeysCommand::Show { key_id } => {
            let id = parse_key_id(&key_id)?;
            let view = kw.get_key(&Actor::cli(), &id).await?;
            if args.json {
                out(&json(&view)?)
            } else {
                out(&details(&view))
            }
        }
        KeysCommand::Revoke { key_id } => {
            let id = parse_key_id(&key_id)?;
            let view = kw.revoke_key(&Actor::cli(), &id, None).await?;
            if args.json {
                out(&json(&view)?)
            } else {
                out(&format!(
                    "Revoked key {} ({}) at {}.\n",
                    view.id,
                    view.name,
                    time(view.revoked_at)
                ))
            }
        }
        KeysCommand::Usage(usage) => crate::usage::run(&kw, usage, args.json).await,
        KeysCommand::Credits { key_id, add } => {
            let id = parse_key_id(&key_id)?;
            let view = kw.add_credits(&Actor::cli(), &id, add, None).await?;
            if args.json {
                return out(&json(&view)?);
            }
            let limit = view.credits.map_or(0, |c| c.limit);
            out(&format!(
                "Key {} ({}): {add:+} credits, {limit} in all.\n",
                view.id, view.name
            ))
        }
        KeysCommand::Rotate { key_id, grace } => {
            let id = parse_key_id(&key_id)?;
            let grace_seconds = match grace {
                None => None,
                Some(g) => {
                    let d = parse_duration(&g)
                        .map_err(|e| AppError::config(format!("invalid --grace {g:?}: {e}")))?;
                    Some(
                        i64::try_from(d.as_secs())
                            .map_err(|_| AppError::config("invalid --grace: too long"))?,
                    )
                }
            };
            let created = kw
                .rotate_key(&Actor::cli(), &id, RotateKeyRequest { grace_seconds }, None)
                .await?;
            if !args.json {
                let old = kw.get_key(&Actor::cli(), &id).await?;
                out(&format!(
                    "Rotated key {}: it keeps working until {}.\n",
                    old.id,
                    time(old.expires_at)
                ))?;
            }
            print_created(&created, args.json, "New")
        }
    }
}

/// Up to `limit` keys (all without one) that `query` names, page by page, with the cursor
/// after the last one when more follow. Long listings report their progress on stderr.
async fn list(
    kw: &Keyward,
    mut query: KeyQuery,
    limit: Option<u32>,
) -> Result<(Vec<KeyView>, Option<String>), AppError> {
    // The largest page the engine serves.
    const PAGE: u32 = keyward_core::store::MAX_PAGE_SIZE;
    let mut items = Vec::new();
    let want = limit.map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX));
    let mut pages = 0_u32;
    loop {
        let room = u32::try_from(want - items.len()).unwrap_or(PAGE).min(PAGE);
        query.limit = Some(room);
        let page = kw.list_keys(&Actor::cli(), &query).await?;
        items.extend(page.items);
        pages += 1;
        if pages.is_multiple_of(100) {
            eprintln!("keys list: {} keys so far…", items.len());
        }
        match page.next_cursor {
            Some(c) if items.len() >= want => return Ok((items, Some(c))),
            Some(c) => query.cursor = Some(c),
            None => return Ok((items, None)),
        }
    }
}

fn print_created(created: &CreatedKey, as_json: bool, verb: &str) -> Result<(), AppError> {
    if as_json {
        return out(&json(created)?);
    }
    let k = &created.key;
    let mut s = format!(
        "{verb} key {} \"{}\" for owner {}.\n\n",
        k.id, k.name, k.owner_id
    );
    s.push_str("API key (shown only this once; store it now):\n\n");
    s.push_str("    ");
    s.push_str(created.api_key.expose_secret());
    s.push_str("\n\n");
    if k.signing {
        s.push_str(&format!(
            "A signing key: sign requests with SigV4 (access key id {}, secret the whole key above);\nit is refused as a bearer token.\n\n",
            k.id
        ));
    }
    s.push_str(&table(
        &["SCOPES", "EXPIRES"],
        &[vec![scopes(k), time(k.expires_at)]],
    ));
    out(&s)
}

/// `keyward keys re-encrypt`.
async fn re_encrypt(
    backend: &backend::Backend,
    encryption: Option<&keyward_core::crypto::EncryptionKeyring>,
    as_json: bool,
) -> Result<(), AppError> {
    let Some(keyring) = encryption else {
        return Err(AppError::config(
            "KEYWARD_ENCRYPTION_KEY is not set: set the new key there and the old one in KEYWARD_ENCRYPTION_KEY_PREVIOUS",
        ));
    };
    let Some(sql) = &backend.sql else {
        return Err(AppError::config(
            "re-encrypt needs a database (memory: keeps nothing to re-encrypt)",
        ));
    };
    let version = keyring.current_version();
    let report = crate::reencrypt::run(sql, keyring, |done, total| {
        eprintln!("re-encrypt: {done}/{total} signing keys checked");
    })
    .await?;
    if as_json {
        out(&json(&report)?)?;
    } else {
        let plural = if report.signing_keys == 1 { "" } else { "s" };
        let mut s = format!(
            "{} signing key{plural}: {} re-sealed under encryption key version {version}, {} already current",
            report.signing_keys, report.resealed, report.already_current
        );
        if report.skipped > 0 {
            s.push_str(&format!(
                ", {} changed meanwhile (run again)",
                report.skipped
            ));
        }
        s.push_str(".\n");
        if !report.failed.is_empty() {
            let rows: Vec<Vec<String>> = report
                .failed
                .iter()
                .map(|f| vec![f.key_id.clone(), f.reason.clone()])
                .collect();
            s.push_str("\nNot re-sealed:\n");
            s.push_str(&table(&["ID", "REASON"], &rows));
        }
        out(&s)?;
    }
    if report.failed.is_empty() {
        Ok(())
    } else {
        Err(AppError::config(format!(
            "{} signing secrets could not be re-sealed; keep the encryption keys they need configured",
            report.failed.len()
        )))
    }
}

fn scopes(k: &KeyView) -> String {
    if k.scopes.is_empty() {
        "-".to_owned()
    } else {
        k.scopes.join(",")
    }
}

fn state(k: &KeyView) -> String {
    serde_json::to_value(k.state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn list_table(items: &[KeyView]) -> String {
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|k| {
            vec![
                k.id.to_string(),
                k.name.clone(),
                state(k),
                scopes(k),
                time(Some(k.created_at)),
                time(k.expires_at),
                time(k.last_used_at),
            ]
        })
        .collect();
    table(
        &[
            "ID",
            "NAME",
            "STATE",
            "SCOPES",
            "CREATED",
            "EXPIRES",
            "LAST USED",
        ],
        &rows,
    )
}

/// Where the last use came from: `203.0.113.9 (curl/8.5)`, `-` when unknown.
fn last_used_from(k: &KeyView) -> String {
    let Some(from) = &k.last_used_from else {
        return "-".into();
    };
    match (&from.client_addr, &from.user_agent) {
        (Some(ip), Some(ua)) => format!("{ip} ({ua})"),
        (Some(ip), None) => ip.to_string(),
        (None, Some(ua)) => format!("({ua})"),
        (None, None) => "-".into(),
    }
}

fn details(k: &KeyView) -> String {
    let rows = [
        ("id", k.id.to_string()),
        ("display", k.display.clone()),
        ("name", k.name.clone()),
        (
            "description",
            k.description.clone().unwrap_or_else(|| "-".into()),
        ),
        ("owner", k.owner_id.clone()),
        ("env", k.env.clone()),
        ("state", state(k)),
        ("signing", if k.signing { "yes" } else { "no" }.to_owned()),
        ("scopes", scopes(k)),
        ("created", time(Some(k.created_at))),
        ("updated", time(Some(k.updated_at))),
        ("expires", time(k.expires_at)),
        ("last used", time(k.last_used_at)),
        ("last used from", last_used_from(k)),
        ("revoked", time(k.revoked_at)),
        (
            "rotated from",
            k.rotated_from.map_or_else(|| "-".into(), |r| r.to_string()),
        ),
        ("requests", k.usage.request_count.to_string()),
    ];
    let w = rows.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    rows.iter()
        .map(|(n, v)| format!("{n:<w$}  {v}\n"))
        .collect()
}

/// `keyward migrate`.
///
/// # Errors
/// Bad URL, unreachable database, failed migration.
pub(crate) async fn migrate(args: MigrateArgs) -> Result<(), AppError> {
    if let Some(dialect) = args.print_sql {
        return print_sql(
            dialect,
            args.table_prefix.as_deref().unwrap_or(""),
            args.json,
        );
    }
    let file = config::FileConfig::load(args.store.config.as_deref())?;
    let store = config::resolve_store(&args.store, &file)?;
    let report = backend::migrate(&store.database_url).await?;
    if args.json {
        out(&json(&report)?)
    } else {
        out(&format!(
            "{} database {} is up to date.\n",
            report.backend, report.database
        ))
    }
}

/// `keyward migrate --print-sql DIALECT [--table-prefix P] [--json]`: every migration's SQL, in
/// order, each under a `-- file: NAME` line (or as JSON `[{file, sql}]`).
fn print_sql(dialect: config::SqlDialect, prefix: &str, as_json: bool) -> Result<(), AppError> {
    use keyward_sea_orm::sea_orm::DbBackend;
    let tables = keyward_sea_orm::Tables::with_prefix(prefix)
        .map_err(|e| AppError::config(format!("invalid --table-prefix {prefix:?}: {e}")))?;
    let backend = match dialect {
        config::SqlDialect::Postgres => DbBackend::Postgres,
        config::SqlDialect::Mysql => DbBackend::MySql,
        config::SqlDialect::Sqlite => DbBackend::Sqlite,
    };
    let files = keyward_sea_orm::render_migrations(backend, &tables);
    if as_json {
        let list: Vec<serde_json::Value> = files
            .iter()
            .map(|(file, sql)| serde_json::json!({"file": file, "sql": sql}))
            .collect();
        return out(&json(&list)?);
    }
    let mut text = String::new();
    for (file, sql) in files {
        text.push_str(&format!("-- file: {file}\n{sql}\n"));
    }
    out(&text)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn tables_align() {
        let t = table(
            &["A", "LONGER"],
            &[
                vec!["xxxx".into(), "y".into()],
                vec!["z".into(), "w\nv".into()],
            ],
        );
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "A     LONGER");
        assert_eq!(lines[1], "xxxx  y");
        assert_eq!(lines[2], "z     w v");
    }

    #[test]
    fn key_ids() {
        assert!(parse_key_id("AbCdEf012345").is_ok());
        assert_eq!(
            parse_key_id("kw_live_AbCdEf012345…").unwrap().as_str(),
            "AbCdEf012345"
        );
        assert!(parse_key_id("nope").is_err());
    }
}
