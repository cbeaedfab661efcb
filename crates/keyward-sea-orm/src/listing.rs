//! Listing keys: the statement that reads one page (by owner, environment and state, after a
//! cursor), over the keys table with each key's usage row merged in.

use keyward_core::model::KeyState;
use keyward_core::store::{Cursor, KeyFilter};
use sea_orm::sea_query::{
    Alias, Condition, Expr, ExprTrait, JoinType, Order, Query, SelectStatement,
};
use sea_orm::{DbBackend, Iterable};
use time::OffsetDateTime;

use crate::entity::api_key::Column;
use crate::schema::LAST_USE_COLUMNS;
use crate::store::SeaOrmKeyStore;
use crate::usage::usage_merge;

impl SeaOrmKeyStore {
    /// The `SELECT` of a page of at most `limit` keys `filter` names after `cursor`, by
    /// `(created_at, key_id)`, with one row more when more follow. Conditions narrow the read;
    /// the caller decides exactly ([`KeyFilter::matches`]).
    pub(crate) fn page_statement(
        &self,
        filter: &KeyFilter<'_>,
        cursor: Option<Cursor>,
        limit: u32,
    ) -> SelectStatement {
        let mut stmt = self.select();
        if let Some(owner_id) = filter.owner_id {
            stmt.cond_where(self.owner_is(owner_id));
        }
        if let Some(env) = filter.env {
            stmt.cond_where(Expr::col(Column::Env).eq(env));
        }
        if let Some(state) = filter.state {
            stmt.cond_where(self.in_state(state, filter.at));
        }
        if let Some(c) = cursor {
            stmt.cond_where(
                Condition::any()
                    .add(Expr::col(Column::CreatedAt).gt(self.at(c.created_at)))
                    .add(
                        Condition::all()
                            .add(Expr::col(Column::CreatedAt).eq(self.at(c.created_at)))
                            .add(Expr::col(Column::KeyId).gt(c.key_id.as_str())),
                    ),
            );
        }
        stmt.order_by(Column::CreatedAt, Order::Asc)
            .order_by(Column::KeyId, Order::Asc)
            .limit(u64::from(limit) + 1);
        stmt
    }

    /// Every column of the keys table, its usage merged with the key's usage row
    /// ([`usage_merge`]), then where the last use came from ([`LAST_USE_COLUMNS`]): a derived table under the keys table's name, so that conditions and
    /// orderings name its columns as they name the table's. The databases flatten it into a
    /// join, an index probe of the usage table per key.
    pub(crate) fn select(&self) -> SelectStatement {
        let usage = [
            "request_count",
            "last_used_at",
            "credits_period",
            "credits_used",
        ];
        let mut merged = Query::select();
        for c in Column::iter().filter(|c| !usage.contains(&sea_orm::IdenStatic::as_str(c))) {
            merged.column((Alias::new("k"), c));
        }
        // A key without a usage row reads as its own columns: `NULL` compares as false, and
        // the count is added as 0.
        let flushed = |c: &str| match c {
            "request_count" => "COALESCE(u.request_count, 0)".to_owned(),
            _ => format!("u.{c}"),
        };
        for (name, expr) in usage_merge(&|c| format!("k.{c}"), &flushed) {
            merged.expr_as(Expr::cust(expr), Alias::new(name));
        }
        // Where the last use came from: the usage row's, when its time is the one shown.
        for c in LAST_USE_COLUMNS {
            merged.expr_as(
                Expr::cust(format!(
                    "CASE WHEN u.last_used_at IS NOT NULL AND \
                     (k.last_used_at IS NULL OR k.last_used_at <= u.last_used_at) \
                     THEN u.{c} END"
                )),
                Alias::new(c),
            );
        }
        merged
            .from_as(self.tables().keys_iden(), Alias::new("k"))
            .join_as(
                JoinType::LeftJoin,
                self.tables().usage_iden(),
                Alias::new("u"),
                Expr::col((Alias::new("u"), Column::KeyId))
                    .equals((Alias::new("k"), Column::KeyId)),
            );
        Query::select()
            .columns(Column::iter())
            .columns(LAST_USE_COLUMNS.map(Alias::new))
            .from_subquery(merged, self.tables().keys_iden())
            .to_owned()
    }

    /// The keys in `state` at `at`, as [`KeyRecord::state`] decides it: revoked, inactive,
    /// expired, not yet valid, active, the first that holds.
    fn in_state(&self, state: KeyState, at: OffsetDateTime) -> Condition {
        let now = || self.at(at);
        let live = || {
            Condition::all()
                .add(Expr::col(Column::RevokedAt).is_null())
                .add(Expr::col(Column::IsActive).eq(true))
        };
        let unexpired = || {
            Condition::any()
                .add(Expr::col(Column::ExpiresAt).is_null())
                .add(Expr::col(Column::ExpiresAt).gt(now()))
        };
        match state {
            KeyState::Revoked => Condition::all().add(Expr::col(Column::RevokedAt).is_not_null()),
            KeyState::Inactive => Condition::all()
                .add(Expr::col(Column::RevokedAt).is_null())
                .add(Expr::col(Column::IsActive).eq(false)),
            KeyState::Expired => live().add(Expr::col(Column::ExpiresAt).lte(now())),
            KeyState::NotYetValid => live()
                .add(unexpired())
                .add(Expr::col(Column::NotBefore).gt(now())),
            KeyState::Active => live().add(unexpired()).add(
                Condition::any()
                    .add(Expr::col(Column::NotBefore).is_null())
                    .add(Expr::col(Column::NotBefore).lte(now())),
            ),
        }
    }

    /// `owner_id = ?`, exact: MySQL's `_bin` collations ignore trailing spaces, so there the
    /// length must match too.
    fn owner_is(&self, owner_id: &str) -> Condition {
        let mut c = Condition::all().add(Expr::col(Column::OwnerId).eq(owner_id));
        if self.backend() == DbBackend::MySql {
            let chars = i64::try_from(owner_id.chars().count()).unwrap_or(i64::MAX);
            c = c.add(Expr::cust_with_values(
                "CHAR_LENGTH(`owner_id`) = ?",
                [chars],
            ));
        }
        c
    }
}
