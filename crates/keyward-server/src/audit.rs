//! `keyward audit`: the audit log, newest first, straight from the database: every management
//! action and security-relevant change of a key, who made it, from where, and what changed.

use keyward_core::audit::{Action, ActorKind, Change, Event, EventCursor, EventFilter};
use keyward_core::store::MAX_EVENT_PAGE;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::config::AuditArgs;
use crate::duration::parse_duration;
use crate::error::AppError;
use crate::term::{out, table, time};
use crate::{backend, config};

/// How often the retention task deletes what has aged out.
const RETENTION_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// Now and every hour, until the task is aborted: records `key.expiring` for the keys that
/// expire within `expiry_notice` ([`keyward_core::Keyward::notice_expiring`]), and deletes the
/// audit events older than `audit` and the usage counts older than `usage`, in batches
/// ([`keyward_core::Keyward::prune_events`], [`keyward_core::Keyward::prune_usage`]). A failed
/// round is logged and tried again the next hour.
pub(crate) fn spawn_retention(
    kw: keyward_core::Keyward,
    audit: std::time::Duration,
    usage: std::time::Duration,
    expiry_notice: Vec<std::time::Duration>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(RETENTION_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let before = |kw: &keyward_core::Keyward, keep: std::time::Duration| {
            let age = time::Duration::try_from(keep).unwrap_or(time::Duration::MAX);
            kw.now()
                .checked_sub(age)
                .unwrap_or(keyward_core::clock::EARLIEST)
        };
        loop {
            every.tick().await;
            match kw.notice_expiring(&expiry_notice).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(keys = n, "key.expiring noticed"),
                Err(e) => {
                    tracing::warn!(error = %e, "expiry notices failed; trying again in an hour")
                }
            }
            match kw.prune_events(before(&kw, audit)).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(events = n, "audit events past the retention deleted"),
                Err(e) => {
                    tracing::warn!(error = %e, "audit retention failed; trying again in an hour")
                }
            }
            match kw.prune_usage(before(&kw, usage)).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(counts = n, "usage counts past the retention deleted"),
                Err(e) => {
                    tracing::warn!(error = %e, "usage retention failed; trying again in an hour")
                }
            }
        }
    })
}

/// An instant given as RFC 3339, or as a duration back from now (`24h`, `7d`).
pub(crate) fn instant(
    flag: &str,
    text: &str,
    now: OffsetDateTime,
) -> Result<OffsetDateTime, AppError> {
    if let Ok(t) = OffsetDateTime::parse(text.trim(), &Rfc3339) {
        return Ok(t);
    }
    let ago = parse_duration(text).map_err(|e| {
        AppError::config(format!(
            "invalid {flag} {text:?}: {e} (an RFC 3339 time, or a duration back from now such as 24h)"
        ))
    })?;
    let ago = time::Duration::try_from(ago)
        .map_err(|_| AppError::config(format!("invalid {flag}: too long")))?;
    Ok(now
        .checked_sub(ago)
        .unwrap_or(keyward_core::clock::EARLIEST))
}

/// `keyward audit`.
///
/// # Errors
/// Bad arguments, database failures.
pub(crate) async fn run(args: AuditArgs) -> Result<(), AppError> {
    let file = config::FileConfig::load(args.store.config.as_deref())?;
    let store = config::resolve_store(&args.store, &file)?;
    let backend = backend::open(&store.database_url, true, false).await?;
    let now = OffsetDateTime::now_utc();
    let mut filter = EventFilter::default();
    filter.owner_id = args.owner.as_deref();
    filter.key_id = match &args.key {
        Some(k) => Some(crate::term::parse_key_id(k)?),
        None => None,
    };
    filter.action = match &args.action {
        Some(a) => Some(Action::parse(a).ok_or_else(|| {
            let names: Vec<&str> = Action::ALL.iter().map(|a| a.as_str()).collect();
            AppError::config(format!(
                "invalid --action {a:?}: one of {}",
                names.join(", ")
            ))
        })?),
        None => None,
    };
    if let Some(a) = &args.actor {
        let (kind, id) = a
            .split_once(':')
            .map_or((a.as_str(), None), |(k, i)| (k, Some(i)));
        filter.actor_kind = Some(ActorKind::parse(kind).ok_or_else(|| {
            AppError::config(format!(
                "invalid --actor {a:?}: a kind (admin, admin_key, owner, key, cli, application, system), optionally :ID"
            ))
        })?);
        filter.actor_id = id;
    }
    filter.since = args
        .since
        .as_deref()
        .map(|s| instant("--since", s, now))
        .transpose()?;
    filter.until = args
        .until
        .as_deref()
        .map(|s| instant("--until", s, now))
        .transpose()?;
    let want = usize::try_from(args.limit).unwrap_or(usize::MAX);
    let mut events: Vec<Event> = Vec::new();
    let mut cursor: Option<EventCursor> = None;
    loop {
        let room = u32::try_from(want - events.len()).unwrap_or(MAX_EVENT_PAGE);
        let page = backend
            .store
            .events(&filter, cursor, room.min(MAX_EVENT_PAGE))
            .await
            .map_err(|e| AppError::Store(e.to_string()))?;
        events.extend(page.items);
        match page.next_cursor {
            Some(c) if events.len() < want => cursor = Some(c),
            _ => break,
        }
    }
    events.truncate(want);
    if args.json {
        let text = serde_json::to_string_pretty(&events)
            .map_err(|e| AppError::Io(format!("cannot encode JSON: {e}")))?;
        return out(&(text + "\n"));
    }
    if events.is_empty() {
        return out("No events.\n");
    }
    let rows: Vec<Vec<String>> = events
        .iter()
        .map(|e| {
            vec![
                time(Some(e.at)),
                e.action.as_str().to_owned(),
                e.key_id.map_or_else(|| "-".to_owned(), |k| k.to_string()),
                e.owner_id.clone(),
                match &e.actor.id {
                    Some(id) => format!("{}:{id}", e.actor.kind.as_str()),
                    None => e.actor.kind.as_str().to_owned(),
                },
                e.origin
                    .client_addr
                    .map_or_else(|| "-".to_owned(), |a| a.to_string()),
                changes(&e.changes),
            ]
        })
        .collect();
    out(&table(
        &["TIME", "ACTION", "KEY", "OWNER", "ACTOR", "FROM", "CHANGES"],
        &rows,
    ))
}

/// `name: "a" → "b"; scopes` — each change in one cell, values as JSON, long ones cut.
fn changes(changes: &[Change]) -> String {
    if changes.is_empty() {
        return "-".to_owned();
    }
    let value = |v: &Option<serde_json::Value>| {
        let text = v
            .as_ref()
            .map_or_else(|| "-".to_owned(), ToString::to_string);
        if text.chars().count() > 40 {
            text.chars().take(39).chain(['…']).collect()
        } else {
            text
        }
    };
    changes
        .iter()
        .map(|c| match (&c.old, &c.new) {
            (None, None) => c.field.clone(),
            _ => format!("{}: {} → {}", c.field, value(&c.old), value(&c.new)),
        })
        .collect::<Vec<_>>()
        .join("; ")
}
