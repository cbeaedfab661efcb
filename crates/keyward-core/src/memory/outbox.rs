//! The memory store's webhook outbox: under the store's one lock, as its keys.

use std::time::Duration;

use time::OffsetDateTime;

use super::{MemoryKeyStore, lock};
use crate::audit::{EventCursor, EventId};
use crate::store::StoreError;
use crate::webhook::{
    Attempt, Delivery, DeliveryPage, DeliveryStatus, DisabledEndpoint, Settlement, WebhookOutbox,
};

#[async_trait::async_trait]
impl WebhookOutbox for MemoryKeyStore {
    async fn fan_out(
        &self,
        endpoints: &[String],
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<usize, StoreError> {
        let mut st = lock(&self.state);
        let taken: Vec<_> = st
            .outbox
            .iter()
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .copied()
            .collect();
        for key in &taken {
            st.outbox.remove(key);
            let Some(event) = st.events.get(key).cloned() else {
                continue;
            };
            for endpoint in endpoints {
                let id = EventId::generate().map_err(|e| StoreError::unavailable(e.to_string()))?;
                st.deliveries.insert(
                    id,
                    Delivery {
                        id,
                        endpoint: endpoint.clone(),
                        event: event.clone(),
                        status: DeliveryStatus::Pending,
                        attempts: 0,
                        next_attempt_at: now,
                        last_status: None,
                        last_error: None,
                        created_at: now,
                        settled_at: None,
                    },
                );
            }
        }
        Ok(taken.len())
    }

    async fn claim(
        &self,
        now: OffsetDateTime,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError> {
        let mut st = lock(&self.state);
        let mut due: Vec<&mut Delivery> = st
            .deliveries
            .values_mut()
            .filter(|d| d.status == DeliveryStatus::Pending && d.next_attempt_at <= now)
            .collect();
        due.sort_by_key(|d| (d.next_attempt_at, d.id));
        let until = now.checked_add(time::Duration::try_from(lease).unwrap_or(time::Duration::MAX));
        Ok(due
            .into_iter()
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .map(|d| {
                d.attempts = d.attempts.saturating_add(1);
                d.next_attempt_at = until.unwrap_or(crate::clock::LATEST);
                d.clone()
            })
            .collect())
    }

    async fn settle(
        &self,
        id: &EventId,
        settlement: &Settlement,
        attempt: &Attempt,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut st = lock(&self.state);
        if let Some(d) = st.deliveries.get_mut(id) {
            d.last_status = attempt.status;
            d.last_error = attempt.kept_error().map(str::to_owned);
            match settlement {
                Settlement::Delivered => {
                    d.status = DeliveryStatus::Delivered;
                    d.settled_at = Some(now);
                }
                Settlement::Retry(at) => d.next_attempt_at = *at,
                Settlement::Failed => {
                    d.status = DeliveryStatus::Failed;
                    d.settled_at = Some(now);
                }
            }
        }
        Ok(())
    }

    async fn deliveries(
        &self,
        status: Option<DeliveryStatus>,
        cursor: Option<EventCursor>,
        limit: u32,
    ) -> Result<DeliveryPage, StoreError> {
        let st = lock(&self.state);
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let mut all: Vec<&Delivery> = st
            .deliveries
            .values()
            .filter(|d| status.is_none_or(|s| d.status == s))
            .filter(|d| cursor.is_none_or(|c| (d.created_at, d.id) < (c.at, c.id)))
            .collect();
        all.sort_by_key(|d| std::cmp::Reverse((d.created_at, d.id)));
        let mut page: Vec<Delivery> = all.into_iter().take(limit + 1).cloned().collect();
        let next = if page.len() > limit {
            page.truncate(limit);
            page.last().map(|d| EventCursor {
                at: d.created_at,
                id: d.id,
            })
        } else {
            None
        };
        Ok((page, next))
    }

    async fn redeliver(&self, id: &EventId, now: OffsetDateTime) -> Result<bool, StoreError> {
        let mut st = lock(&self.state);
        Ok(st.deliveries.get_mut(id).is_some_and(|d| {
            d.status = DeliveryStatus::Pending;
            d.attempts = 0;
            d.next_attempt_at = now;
            d.settled_at = None;
            true
        }))
    }

    async fn disable_endpoint(&self, endpoint: &DisabledEndpoint) -> Result<(), StoreError> {
        lock(&self.state)
            .disabled
            .entry(endpoint.id.clone())
            .or_insert_with(|| endpoint.clone());
        Ok(())
    }

    async fn enable_endpoint(&self, id: &str) -> Result<bool, StoreError> {
        Ok(lock(&self.state).disabled.remove(id).is_some())
    }

    async fn disabled_endpoints(&self) -> Result<Vec<DisabledEndpoint>, StoreError> {
        Ok(lock(&self.state).disabled.values().cloned().collect())
    }
}
