//! Usage analytics (migration 0006): verifications of one key in one hour with one outcome and
//! tag set, added to by the usage flushes, deleted only by retention.

use sea_orm::entity::prelude::*;

/// One count.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "api_key_usage_hours")]
pub struct Model {
    /// The key.
    #[sea_orm(
        primary_key,
        auto_increment = false,
        column_type = "String(StringLen::N(12))"
    )]
    pub key_id: String,
    /// The start of the hour.
    #[sea_orm(primary_key, auto_increment = false)]
    pub hour: TimeDateTimeWithTimeZone,
    /// `valid`, `invalid`, `scope_denied`, …
    #[sea_orm(
        primary_key,
        auto_increment = false,
        column_type = "String(StringLen::N(24))"
    )]
    pub outcome: String,
    /// The tag set's fingerprint: empty for none, else 32 hex digits.
    #[sea_orm(
        primary_key,
        auto_increment = false,
        column_type = "String(StringLen::N(32))"
    )]
    pub tag_set: String,
    /// The key's owner.
    #[sea_orm(column_type = "String(StringLen::N(255))")]
    pub owner_id: String,
    /// The tags, as a JSON array.
    #[sea_orm(column_type = "Text")]
    pub tags: String,
    /// How many verifications.
    pub verifications: i64,
}

/// No relations (no foreign key: counts outlive the keys they name until retention).
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
