//! The audit log in SQL ([`crate::entity::api_key_event`]): rows written inside the key write's
//! transaction, read newest first by `(at, event_id)`, pruned oldest first.

use keyward_core::KeyId;
use keyward_core::audit::{
    Action, ActorKind, Change, Event, EventActor, EventCursor, EventFilter, EventPage, Origin,
};
use keyward_core::store::StoreError;
use sea_orm::sea_query::IntoIden;
use sea_orm::sea_query::{Condition, Expr, ExprTrait, Order, Query};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, FromQueryResult,
    TransactionTrait, Value,
};
use time::OffsetDateTime;

use crate::codec::instant;
use crate::entity::api_key_event::{Column, Model};
use crate::error::{corrupt, store_err};
use crate::schema::Tables;

/// Most events one `INSERT` carries (11 parameters each: under every dialect's limit).
const INSERT_CHUNK: usize = 1000;

/// Writes `events` in `txn`, and with `outbox` their rows in the webhook outbox; with
/// `skip_existing`, an event (and outbox row) whose id is stored already is skipped, as
/// instances that notice the same thing store it once.
pub(crate) async fn insert_in(
    txn: &DatabaseTransaction,
    backend: DbBackend,
    tables: &Tables,
    events: &[Event],
    outbox: bool,
    skip_existing: bool,
) -> Result<(), DbErr> {
    use sea_orm::sea_query::OnConflict;
    let skip = |column: sea_orm::sea_query::DynIden| {
        OnConflict::column(column.clone())
            .do_nothing_on([column])
            .to_owned()
    };
    for chunk in events.chunks(INSERT_CHUNK) {
        let mut insert = Query::insert();
        insert.into_table(tables.events_iden()).columns([
            Column::EventId,
            Column::At,
            Column::Action,
            Column::ActorType,
            Column::ActorId,
            Column::OwnerId,
            Column::KeyId,
            Column::Changes,
            Column::ClientAddr,
            Column::UserAgent,
            Column::RequestId,
        ]);
        for e in chunk {
            let changes = (!e.changes.is_empty())
                .then(|| serde_json::to_string(&e.changes).unwrap_or_else(|_| "[]".to_owned()));
            let values: [Value; 11] = [
                e.id.as_str().into(),
                instant(backend, Some(e.at)),
                e.action.as_str().into(),
                e.actor.kind.as_str().into(),
                e.actor.id.clone().into(),
                e.owner_id.clone().into(),
                e.key_id.map(|k| k.as_str().to_owned()).into(),
                changes.into(),
                e.origin.client_addr.map(|a| a.to_string()).into(),
                e.origin.user_agent.clone().into(),
                e.origin.request_id.clone().into(),
            ];
            insert
                .values(values.into_iter().map(Expr::val))
                .map_err(|e| DbErr::Custom(e.to_string()))?;
        }
        if skip_existing {
            insert.on_conflict(skip(Column::EventId.into_iden()));
        }
        txn.execute(&insert).await?;
        if outbox {
            use crate::entity::api_key_outbox::Column as O;
            let mut queued = Query::insert();
            queued
                .into_table(tables.outbox_iden())
                .columns([O::EventId, O::At]);
            for e in chunk {
                queued
                    .values([
                        Expr::val(e.id.as_str()),
                        Expr::val(instant(backend, Some(e.at))),
                    ])
                    .map_err(|e| DbErr::Custom(e.to_string()))?;
            }
            if skip_existing {
                queued.on_conflict(skip(O::EventId.into_iden()));
            }
            txn.execute(&queued).await?;
        }
    }
    Ok(())
}

/// The events of `ids` that exist, in no order.
pub(crate) async fn by_ids(
    db: &DatabaseConnection,
    tables: &Tables,
    ids: &[String],
) -> Result<Vec<Event>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let stmt = Query::select()
        .columns(<Column as sea_orm::Iterable>::iter())
        .from(tables.events_iden())
        .and_where(Expr::col(Column::EventId).is_in(ids.iter().cloned()))
        .to_owned();
    let rows = db
        .query_all(&stmt)
        .await
        .map_err(|e| store_err("events", e))?;
    rows.iter()
        .map(|row| {
            let model = Model::from_query_result(row, "").map_err(|e| store_err("events", e))?;
            decode(model)
        })
        .collect()
}

/// A page of the log, newest first. Conditions narrow the read in SQL; [`EventFilter::matches`]
/// decides exactly (MySQL's collations compare owner ids loosely), and the cursor is the last
/// row read, so a row dropped there neither ends the listing early nor repeats.
pub(crate) async fn list(
    db: &DatabaseConnection,
    tables: &Tables,
    filter: &EventFilter<'_>,
    cursor: Option<EventCursor>,
    limit: u32,
) -> Result<EventPage, StoreError> {
    let backend = db.get_database_backend();
    let at = |t: OffsetDateTime| instant(backend, Some(t));
    let mut stmt = Query::select();
    stmt.columns(<Column as sea_orm::Iterable>::iter())
        .from(tables.events_iden());
    if let Some(o) = filter.owner_id {
        stmt.and_where(Expr::col(Column::OwnerId).eq(o));
    }
    if let Some(k) = filter.key_id {
        stmt.and_where(Expr::col(Column::KeyId).eq(k.as_str()));
    }
    if let Some(a) = filter.action {
        stmt.and_where(Expr::col(Column::Action).eq(a.as_str()));
    }
    if let Some(k) = filter.actor_kind {
        stmt.and_where(Expr::col(Column::ActorType).eq(k.as_str()));
    }
    if let Some(i) = filter.actor_id {
        stmt.and_where(Expr::col(Column::ActorId).eq(i));
    }
    if let Some(s) = filter.since {
        stmt.and_where(Expr::col(Column::At).gte(at(s)));
    }
    if let Some(u) = filter.until {
        stmt.and_where(Expr::col(Column::At).lt(at(u)));
    }
    if let Some(c) = cursor {
        stmt.cond_where(
            Condition::any()
                .add(Expr::col(Column::At).lt(at(c.at)))
                .add(
                    Condition::all()
                        .add(Expr::col(Column::At).eq(at(c.at)))
                        .add(Expr::col(Column::EventId).lt(c.id.as_str())),
                ),
        );
    }
    stmt.order_by(Column::At, Order::Desc)
        .order_by(Column::EventId, Order::Desc)
        .limit(u64::from(limit) + 1);
    let rows = db
        .query_all(&stmt)
        .await
        .map_err(|e| store_err("events", e))?;
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let has_more = rows.len() > limit;
    let mut items = Vec::with_capacity(rows.len().min(limit));
    let mut last = None;
    for row in rows.into_iter().take(limit) {
        let model = Model::from_query_result(&row, "").map_err(|e| store_err("events", e))?;
        let event = decode(model)?;
        last = Some(EventCursor::after(&event));
        if filter.matches(&event) {
            items.push(event);
        }
    }
    Ok(EventPage {
        items,
        next_cursor: if has_more { last } else { None },
    })
}

/// Deletes up to `limit` events older than `before`, oldest first, with their webhook
/// deliveries and outbox rows, in one transaction.
pub(crate) async fn prune(
    db: &DatabaseConnection,
    tables: &Tables,
    before: OffsetDateTime,
    limit: u32,
) -> Result<u64, StoreError> {
    use crate::entity::{api_key_delivery as delivery, api_key_outbox as outbox};
    let backend = db.get_database_backend();
    let oldest = Query::select()
        .column(Column::EventId)
        .from(tables.events_iden())
        .and_where(Expr::col(Column::At).lt(instant(backend, Some(before))))
        .order_by(Column::At, Order::Asc)
        .limit(u64::from(limit))
        .to_owned();
    let ids: Vec<String> = db
        .query_all(&oldest)
        .await
        .map_err(|e| store_err("prune_events", e))?
        .iter()
        .map(|r| r.try_get::<String>("", "event_id"))
        .collect::<Result<_, _>>()
        .map_err(|e| store_err("prune_events", e))?;
    if ids.is_empty() {
        return Ok(0);
    }
    let txn = db.begin().await.map_err(|e| store_err("prune_events", e))?;
    let deleted: Result<u64, DbErr> = async {
        let of = |table, column: sea_orm::sea_query::DynIden| {
            Query::delete()
                .from_table(table)
                .and_where(Expr::col(column).is_in(ids.iter().cloned()))
                .to_owned()
        };
        txn.execute(&of(
            tables.deliveries_iden(),
            delivery::Column::EventId.into_iden(),
        ))
        .await?;
        txn.execute(&of(
            tables.outbox_iden(),
            outbox::Column::EventId.into_iden(),
        ))
        .await?;
        let done = txn
            .execute(&of(tables.events_iden(), Column::EventId.into_iden()))
            .await?;
        Ok(done.rows_affected())
    }
    .await;
    match deleted {
        Ok(n) => {
            txn.commit()
                .await
                .map_err(|e| store_err("prune_events", e))?;
            Ok(n)
        }
        Err(e) => {
            let _ = txn.rollback().await;
            Err(store_err("prune_events", e))
        }
    }
}

fn decode(m: Model) -> Result<Event, StoreError> {
    let changes: Vec<Change> = match m.changes.as_deref() {
        Some(text) => serde_json::from_str(text).map_err(|_| corrupt("event changes"))?,
        None => Vec::new(),
    };
    Ok(Event {
        id: m.event_id.parse().map_err(|_| corrupt("event id"))?,
        at: keyward_core::clock::utc(m.at),
        action: Action::parse(&m.action).ok_or_else(|| corrupt("event action"))?,
        actor: EventActor {
            kind: ActorKind::parse(&m.actor_type).ok_or_else(|| corrupt("event actor"))?,
            id: m.actor_id,
        },
        owner_id: m.owner_id,
        key_id: match m.key_id {
            Some(k) => Some(k.parse::<KeyId>().map_err(|_| corrupt("event key id"))?),
            None => None,
        },
        changes,
        origin: Origin {
            client_addr: m.client_addr.and_then(|a| a.parse().ok()),
            user_agent: m.user_agent,
            request_id: m.request_id,
        },
    })
}
