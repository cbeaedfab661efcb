//! The audit log (migration 0004): one row per [`keyward_core::audit::Event`], written in the
//! same transaction as the change it records, never updated, deleted only by retention.

use sea_orm::entity::prelude::*;

/// One audit record.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "api_key_events")]
pub struct Model {
    /// The event id (20 base62 characters).
    #[sea_orm(
        primary_key,
        auto_increment = false,
        column_type = "String(StringLen::N(20))"
    )]
    pub event_id: String,
    /// When it happened.
    pub at: TimeDateTimeWithTimeZone,
    /// `key.created`, `key.updated`, …
    #[sea_orm(column_type = "String(StringLen::N(32))")]
    pub action: String,
    /// `admin`, `admin_key`, `owner`, `key`, `cli`, `application`, `system`.
    #[sea_orm(column_type = "String(StringLen::N(16))")]
    pub actor_type: String,
    /// The actor's owner id or key id, for the kinds that have one.
    #[sea_orm(column_type = "String(StringLen::N(255))", nullable)]
    pub actor_id: Option<String>,
    /// The key's owner.
    #[sea_orm(column_type = "String(StringLen::N(255))")]
    pub owner_id: String,
    /// The key.
    #[sea_orm(column_type = "String(StringLen::N(12))", nullable)]
    pub key_id: Option<String>,
    /// The changed fields, old → new, as a JSON array.
    #[sea_orm(column_type = "Text", nullable)]
    pub changes: Option<String>,
    /// The client address.
    #[sea_orm(column_type = "String(StringLen::N(45))", nullable)]
    pub client_addr: Option<String>,
    /// The `User-Agent`, cleaned and bounded.
    #[sea_orm(column_type = "String(StringLen::N(256))", nullable)]
    pub user_agent: Option<String>,
    /// The `X-Request-Id`.
    #[sea_orm(column_type = "String(StringLen::N(128))", nullable)]
    pub request_id: Option<String>,
}

/// No relations (no foreign key: the log outlives the keys it names).
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
