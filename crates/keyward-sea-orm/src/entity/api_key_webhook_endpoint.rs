//! The disabled webhook endpoints (migration 0007): one row per endpoint that answered
//! `410 Gone`, which no instance posts to until an operator enables it again.

use sea_orm::entity::prelude::*;

/// A disabled endpoint.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "api_key_webhook_endpoints")]
pub struct Model {
    /// `keyward_core::webhook::endpoint_id` of its URL.
    #[sea_orm(
        primary_key,
        auto_increment = false,
        column_type = "String(StringLen::N(32))"
    )]
    pub endpoint_id: String,
    /// Its URL without user info, query and fragment.
    #[sea_orm(column_type = "String(StringLen::N(2048))")]
    pub endpoint: String,
    /// When it was disabled.
    pub disabled_at: TimeDateTimeWithTimeZone,
    /// Why.
    #[sea_orm(column_type = "String(StringLen::N(512))")]
    pub reason: String,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
