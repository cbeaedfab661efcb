//! The webhook outbox in SQL ([`WebhookOutbox`]): `api_key_outbox` rows are written with their
//! events when the store keeps an outbox ([`SeaOrmKeyStore::with_outbox`]); a fan-out moves them
//! into `api_key_deliveries`, a claim leases due deliveries. PostgreSQL and MySQL/MariaDB take
//! their rows with `FOR UPDATE SKIP LOCKED`, so that instances claiming together take different
//! rows; SQLite's write transaction (`BEGIN IMMEDIATE`) serializes them.

use std::collections::HashMap;
use std::time::Duration;

use keyward_core::audit::{Event, EventCursor, EventId};
use keyward_core::store::StoreError;
use keyward_core::webhook::{
    Attempt, Delivery, DeliveryPage, DeliveryStatus, DisabledEndpoint, Settlement, WebhookOutbox,
};
use sea_orm::sea_query::{Condition, Expr, ExprTrait, LockBehavior, LockType, Order, Query};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, FromQueryResult, Value};
use time::OffsetDateTime;

use crate::SeaOrmKeyStore;
use crate::codec::instant;
use crate::entity::api_key_delivery::{Column, Model};
use crate::entity::api_key_outbox;
use crate::error::{corrupt, store_err};

impl SeaOrmKeyStore {
    fn instant(&self, t: OffsetDateTime) -> Value {
        instant(self.connection().get_database_backend(), Some(t))
    }

    /// The deliveries of `rows`, each with its event.
    async fn with_events(&self, rows: Vec<Model>) -> Result<Vec<Delivery>, StoreError> {
        let ids: Vec<String> = rows.iter().map(|r| r.event_id.clone()).collect();
        let events: HashMap<String, Event> =
            crate::events::by_ids(self.connection(), self.tables(), &ids)
                .await?
                .into_iter()
                .map(|e| (e.id.to_string(), e))
                .collect();
        rows.into_iter()
            .filter_map(|r| {
                // A delivery whose event retention deleted has nothing left to deliver.
                let event = events.get(&r.event_id)?.clone();
                Some(decode(r, event))
            })
            .collect()
    }

    async fn delivery_rows(
        &self,
        condition: Condition,
        order: Order,
        limit: u64,
    ) -> Result<Vec<Model>, StoreError> {
        let stmt = Query::select()
            .columns(<Column as sea_orm::Iterable>::iter())
            .from(self.tables().deliveries_iden())
            .cond_where(condition)
            .order_by(Column::CreatedAt, order.clone())
            .order_by(Column::DeliveryId, order)
            .limit(limit)
            .to_owned();
        let rows = self
            .connection()
            .query_all(&stmt)
            .await
            .map_err(|e| store_err("deliveries", e))?;
        rows.iter()
            .map(|r| Model::from_query_result(r, "").map_err(|e| store_err("deliveries", e)))
            .collect()
    }
}

impl SeaOrmKeyStore {
    /// Deletes the settled deliveries made before `before`, `limit` at a time, until none is
    /// left (retention, beside the events').
    pub(crate) async fn prune_deliveries(
        &self,
        before: OffsetDateTime,
        limit: u32,
    ) -> Result<(), StoreError> {
        if limit == 0 {
            return Ok(());
        }
        let backend = self.connection().get_database_backend();
        let settled = Condition::all()
            .add(Expr::col(Column::CreatedAt).lt(self.instant(before)))
            .add(Expr::col(Column::Status).ne(DeliveryStatus::Pending.as_str()));
        loop {
            let mut stmt = Query::delete();
            stmt.from_table(self.tables().deliveries_iden());
            if backend == DbBackend::MySql {
                stmt.cond_where(settled.clone()).limit(u64::from(limit));
            } else {
                let some = Query::select()
                    .column(Column::DeliveryId)
                    .from(self.tables().deliveries_iden())
                    .cond_where(settled.clone())
                    .limit(u64::from(limit))
                    .to_owned();
                stmt.and_where(Expr::col(Column::DeliveryId).in_subquery(some));
            }
            let done = self
                .connection()
                .execute(&stmt)
                .await
                .map_err(|e| store_err("prune_deliveries", e))?;
            if done.rows_affected() < u64::from(limit) {
                return Ok(());
            }
        }
    }
}

fn decode(m: Model, event: Event) -> Result<Delivery, StoreError> {
    Ok(Delivery {
        id: m.delivery_id.parse().map_err(|_| corrupt("delivery id"))?,
        endpoint: m.endpoint,
        event,
        status: DeliveryStatus::parse(&m.status).ok_or_else(|| corrupt("delivery status"))?,
        attempts: u32::try_from(m.attempts).unwrap_or(0),
        next_attempt_at: keyward_core::clock::utc(m.next_attempt_at),
        last_status: m.last_status.and_then(|s| u16::try_from(s).ok()),
        last_error: m.last_error,
        created_at: keyward_core::clock::utc(m.created_at),
        settled_at: m.settled_at.map(keyward_core::clock::utc),
    })
}

/// `FOR UPDATE SKIP LOCKED` where the database has it.
fn skip_locked(backend: DbBackend, stmt: &mut sea_orm::sea_query::SelectStatement) {
    if backend != DbBackend::Sqlite {
        stmt.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
    }
}

#[async_trait::async_trait]
impl WebhookOutbox for SeaOrmKeyStore {
    async fn fan_out(
        &self,
        endpoints: &[String],
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<usize, StoreError> {
        let backend = self.connection().get_database_backend();
        let tables = self.tables();
        let now = keyward_core::clock::micros(now);
        let txn = self
            .begin_write()
            .await
            .map_err(|e| store_err("fan_out", e))?;
        let done: Result<usize, DbErr> = async {
            let mut take = Query::select()
                .column(api_key_outbox::Column::EventId)
                .from(tables.outbox_iden())
                .order_by(api_key_outbox::Column::At, Order::Asc)
                .order_by(api_key_outbox::Column::EventId, Order::Asc)
                .limit(u64::from(limit))
                .to_owned();
            skip_locked(backend, &mut take);
            let ids: Vec<String> = txn
                .query_all(&take)
                .await?
                .iter()
                .map(|r| r.try_get::<String>("", "event_id"))
                .collect::<Result<_, _>>()?;
            if ids.is_empty() {
                return Ok(0);
            }
            for chunk in ids.chunks(500) {
                if endpoints.is_empty() {
                    break;
                }
                let mut insert = Query::insert();
                insert.into_table(tables.deliveries_iden()).columns([
                    Column::DeliveryId,
                    Column::Endpoint,
                    Column::EventId,
                    Column::Status,
                    Column::Attempts,
                    Column::NextAttemptAt,
                    Column::CreatedAt,
                ]);
                for event_id in chunk {
                    for endpoint in endpoints {
                        let id = EventId::generate().map_err(|e| DbErr::Custom(e.to_string()))?;
                        let values: [Value; 7] = [
                            id.as_str().into(),
                            endpoint.as_str().into(),
                            event_id.as_str().into(),
                            DeliveryStatus::Pending.as_str().into(),
                            0_i32.into(),
                            self.instant(now),
                            self.instant(now),
                        ];
                        insert
                            .values(values.into_iter().map(Expr::val))
                            .map_err(|e| DbErr::Custom(e.to_string()))?;
                    }
                }
                txn.execute(&insert).await?;
            }
            let delete = Query::delete()
                .from_table(tables.outbox_iden())
                .and_where(Expr::col(api_key_outbox::Column::EventId).is_in(ids.iter().cloned()))
                .to_owned();
            txn.execute(&delete).await?;
            Ok(ids.len())
        }
        .await;
        match done {
            Ok(n) => {
                txn.commit().await.map_err(|e| store_err("fan_out", e))?;
                Ok(n)
            }
            Err(e) => {
                let _ = txn.rollback().await;
                Err(store_err("fan_out", e))
            }
        }
    }

    async fn claim(
        &self,
        now: OffsetDateTime,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError> {
        let backend = self.connection().get_database_backend();
        let tables = self.tables();
        // Stored at microseconds: the lease end is compared for equality below.
        let now = keyward_core::clock::micros(now);
        let until = keyward_core::clock::micros(
            now.checked_add(time::Duration::try_from(lease).unwrap_or(time::Duration::MAX))
                .unwrap_or(keyward_core::clock::LATEST),
        );
        let txn = self
            .begin_write()
            .await
            .map_err(|e| store_err("claim", e))?;
        let claimed: Result<Vec<String>, DbErr> = async {
            let mut due = Query::select()
                .column(Column::DeliveryId)
                .from(tables.deliveries_iden())
                .and_where(Expr::col(Column::Status).eq(DeliveryStatus::Pending.as_str()))
                .and_where(Expr::col(Column::NextAttemptAt).lte(self.instant(now)))
                .order_by(Column::NextAttemptAt, Order::Asc)
                .limit(u64::from(limit))
                .to_owned();
            skip_locked(backend, &mut due);
            let ids: Vec<String> = txn
                .query_all(&due)
                .await?
                .iter()
                .map(|r| r.try_get::<String>("", "delivery_id"))
                .collect::<Result<_, _>>()?;
            if !ids.is_empty() {
                let lease = Query::update()
                    .table(tables.deliveries_iden())
                    .value(Column::Attempts, Expr::col(Column::Attempts).add(1))
                    .value(Column::NextAttemptAt, self.instant(until))
                    .and_where(Expr::col(Column::DeliveryId).is_in(ids.iter().cloned()))
                    .and_where(Expr::col(Column::NextAttemptAt).lte(self.instant(now)))
                    .to_owned();
                txn.execute(&lease).await?;
            }
            Ok(ids)
        }
        .await;
        let ids = match claimed {
            Ok(ids) => {
                txn.commit().await.map_err(|e| store_err("claim", e))?;
                ids
            }
            Err(e) => {
                let _ = txn.rollback().await;
                return Err(store_err("claim", e));
            }
        };
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // Ours: those leased until `until` (a settle may have moved on meanwhile).
        let mine = Condition::all()
            .add(Expr::col(Column::DeliveryId).is_in(ids))
            .add(Expr::col(Column::NextAttemptAt).eq(self.instant(until)));
        let rows = self
            .delivery_rows(mine, Order::Asc, u64::from(limit))
            .await?;
        self.with_events(rows).await
    }

    async fn settle(
        &self,
        id: &EventId,
        settlement: &Settlement,
        attempt: &Attempt,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let error = attempt.kept_error().map(str::to_owned);
        let mut stmt = Query::update();
        stmt.table(self.tables().deliveries_iden())
            .value(Column::LastStatus, attempt.status.map(i32::from))
            .value(Column::LastError, error)
            .and_where(Expr::col(Column::DeliveryId).eq(id.as_str()));
        match settlement {
            Settlement::Delivered | Settlement::Failed => {
                let status = if *settlement == Settlement::Delivered {
                    DeliveryStatus::Delivered
                } else {
                    DeliveryStatus::Failed
                };
                stmt.value(Column::Status, status.as_str())
                    .value(Column::SettledAt, self.instant(now));
            }
            Settlement::Retry(at) => {
                stmt.value(Column::NextAttemptAt, self.instant(*at));
            }
        }
        self.connection()
            .execute(&stmt)
            .await
            .map_err(|e| store_err("settle", e))?;
        Ok(())
    }

    async fn deliveries(
        &self,
        status: Option<DeliveryStatus>,
        cursor: Option<EventCursor>,
        limit: u32,
    ) -> Result<DeliveryPage, StoreError> {
        let mut cond = Condition::all();
        if let Some(s) = status {
            cond = cond.add(Expr::col(Column::Status).eq(s.as_str()));
        }
        if let Some(c) = cursor {
            cond = cond.add(
                Condition::any()
                    .add(Expr::col(Column::CreatedAt).lt(self.instant(c.at)))
                    .add(
                        Condition::all()
                            .add(Expr::col(Column::CreatedAt).eq(self.instant(c.at)))
                            .add(Expr::col(Column::DeliveryId).lt(c.id.as_str())),
                    ),
            );
        }
        let mut rows = self
            .delivery_rows(cond, Order::Desc, u64::from(limit) + 1)
            .await?;
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next = if more {
            match rows.last() {
                Some(last) => Some(EventCursor {
                    at: keyward_core::clock::utc(last.created_at),
                    id: last
                        .delivery_id
                        .parse()
                        .map_err(|_| corrupt("delivery id"))?,
                }),
                None => None,
            }
        } else {
            None
        };
        Ok((self.with_events(rows).await?, next))
    }

    async fn redeliver(&self, id: &EventId, now: OffsetDateTime) -> Result<bool, StoreError> {
        let stmt = Query::update()
            .table(self.tables().deliveries_iden())
            .value(Column::Status, DeliveryStatus::Pending.as_str())
            .value(Column::Attempts, 0_i32)
            .value(Column::NextAttemptAt, self.instant(now))
            .value(
                Column::SettledAt,
                instant(self.connection().get_database_backend(), None),
            )
            .and_where(Expr::col(Column::DeliveryId).eq(id.as_str()))
            .to_owned();
        let done = self
            .connection()
            .execute(&stmt)
            .await
            .map_err(|e| store_err("redeliver", e))?;
        Ok(done.rows_affected() > 0)
    }

    async fn disable_endpoint(&self, endpoint: &DisabledEndpoint) -> Result<(), StoreError> {
        use crate::entity::api_key_webhook_endpoint::Column as E;
        use sea_orm::sea_query::OnConflict;
        let mut insert = Query::insert();
        insert
            .into_table(self.tables().webhook_endpoints_iden())
            .columns([E::EndpointId, E::Endpoint, E::DisabledAt, E::Reason])
            .values([
                Expr::val(endpoint.id.as_str()),
                Expr::val(endpoint.endpoint.as_str()),
                Expr::val(self.instant(keyward_core::clock::micros(endpoint.disabled_at))),
                Expr::val(endpoint.reason.as_str()),
            ])
            .map_err(|e| store_err("disable_endpoint", DbErr::Custom(e.to_string())))?
            .on_conflict(
                OnConflict::column(E::EndpointId)
                    .do_nothing_on([E::EndpointId])
                    .to_owned(),
            );
        self.connection()
            .execute(&insert)
            .await
            .map_err(|e| store_err("disable_endpoint", e))?;
        Ok(())
    }

    async fn enable_endpoint(&self, id: &str) -> Result<bool, StoreError> {
        use crate::entity::api_key_webhook_endpoint::Column as E;
        let stmt = Query::delete()
            .from_table(self.tables().webhook_endpoints_iden())
            .and_where(Expr::col(E::EndpointId).eq(id))
            .to_owned();
        let done = self
            .connection()
            .execute(&stmt)
            .await
            .map_err(|e| store_err("enable_endpoint", e))?;
        Ok(done.rows_affected() > 0)
    }

    async fn disabled_endpoints(&self) -> Result<Vec<DisabledEndpoint>, StoreError> {
        use crate::entity::api_key_webhook_endpoint::{Column as E, Model as M};
        let stmt = Query::select()
            .columns(<E as sea_orm::Iterable>::iter())
            .from(self.tables().webhook_endpoints_iden())
            .order_by(E::EndpointId, Order::Asc)
            .to_owned();
        let rows = self
            .connection()
            .query_all(&stmt)
            .await
            .map_err(|e| store_err("disabled_endpoints", e))?;
        rows.iter()
            .map(|r| {
                let m =
                    M::from_query_result(r, "").map_err(|e| store_err("disabled_endpoints", e))?;
                Ok(DisabledEndpoint {
                    id: m.endpoint_id,
                    endpoint: m.endpoint,
                    disabled_at: keyward_core::clock::utc(m.disabled_at),
                    reason: m.reason,
                })
            })
            .collect()
    }
}
