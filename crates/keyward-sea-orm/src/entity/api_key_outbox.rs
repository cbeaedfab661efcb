//! The webhook outbox (migration 0005): one row per audit event not yet handed to the webhook
//! endpoints, written with the event, in the same transaction, when the store keeps an outbox
//! ([`crate::SeaOrmKeyStore::with_outbox`]).

use sea_orm::entity::prelude::*;

/// An event waiting to be fanned out to the endpoints.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "api_key_outbox")]
pub struct Model {
    /// The event (`api_key_events.event_id`).
    #[sea_orm(
        primary_key,
        auto_increment = false,
        column_type = "String(StringLen::N(20))"
    )]
    pub event_id: String,
    /// When it happened: the outbox is taken oldest first.
    pub at: TimeDateTimeWithTimeZone,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
