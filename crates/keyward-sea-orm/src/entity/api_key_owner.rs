//! One row per owner that ever created a key. PostgreSQL and MySQL lock it (`SELECT … FOR
//! UPDATE`) to serialize the max-keys check of concurrent creates for the same owner.

use sea_orm::entity::prelude::*;

/// An owner's lock row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "api_key_owners")]
pub struct Model {
    /// The opaque owner id.
    #[sea_orm(
        primary_key,
        auto_increment = false,
        column_type = "String(StringLen::N(255))"
    )]
    pub owner_id: String,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
