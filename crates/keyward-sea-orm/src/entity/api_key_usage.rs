//! One row per key that verified since migration 0003: what usage flushes add, kept apart from
//! the wide key row so that a flush writes a narrow row (about 60 bytes) instead of rewriting
//! the key's whole row and its indexes. A key's usage is its own columns in `api_keys` (what
//! was recorded before 0003, and what a rotation carries over) merged with this row: counts
//! add, the later use and the later credit state win.

use sea_orm::entity::prelude::*;

/// A key's flushed usage.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "api_key_usage")]
pub struct Model {
    /// The key (`api_keys.key_id`).
    #[sea_orm(
        primary_key,
        auto_increment = false,
        column_type = "String(StringLen::N(12))"
    )]
    pub key_id: String,
    /// Verified requests flushed.
    pub request_count: i64,
    /// Latest use flushed.
    pub last_used_at: Option<TimeDateTimeWithTimeZone>,
    /// The client address of that use, when known (migration 0008).
    #[sea_orm(column_type = "String(StringLen::N(45))", nullable)]
    pub last_client_addr: Option<String>,
    /// Its user agent, cleaned, at most 256 bytes (migration 0008).
    #[sea_orm(column_type = "String(StringLen::N(256))", nullable)]
    pub last_user_agent: Option<String>,
    /// The latest credit period flushed.
    pub credits_period: i64,
    /// Credits used in it.
    pub credits_used: i64,
}

/// No relations (no foreign key: a flush never waits on the key table).
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
