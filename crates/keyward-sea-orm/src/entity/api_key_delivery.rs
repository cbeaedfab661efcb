//! Webhook deliveries (migration 0005): one row per event and endpoint, from the outbox until
//! it is delivered or has failed for good.

use sea_orm::entity::prelude::*;

/// One delivery of one event to one endpoint.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "api_key_deliveries")]
pub struct Model {
    /// The delivery's id (20 base62 characters).
    #[sea_orm(
        primary_key,
        auto_increment = false,
        column_type = "String(StringLen::N(20))"
    )]
    pub delivery_id: String,
    /// The endpoint's URL.
    #[sea_orm(column_type = "String(StringLen::N(2048))")]
    pub endpoint: String,
    /// The event (`api_key_events.event_id`).
    #[sea_orm(column_type = "String(StringLen::N(20))")]
    pub event_id: String,
    /// `pending`, `delivered` or `failed`.
    #[sea_orm(column_type = "String(StringLen::N(16))")]
    pub status: String,
    /// Attempts made (or under way).
    pub attempts: i32,
    /// When the next attempt is due; while one is under way, when its lease ends.
    pub next_attempt_at: TimeDateTimeWithTimeZone,
    /// The HTTP status the last attempt got.
    pub last_status: Option<i32>,
    /// Why the last attempt failed.
    #[sea_orm(column_type = "String(StringLen::N(512))", nullable)]
    pub last_error: Option<String>,
    /// When the delivery was made (fanned out).
    pub created_at: TimeDateTimeWithTimeZone,
    /// When it was delivered, or failed for good.
    pub settled_at: Option<TimeDateTimeWithTimeZone>,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
