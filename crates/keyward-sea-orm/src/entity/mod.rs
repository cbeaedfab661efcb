//! The sea-orm entities: [`api_key`] (one row per key), [`api_key_owner`] (one row per owner,
//! locked to serialize the max-keys check on PostgreSQL and MySQL) and [`api_key_usage`] (the
//! usage flushes write, one narrow row per key), [`api_key_event`] (the audit log) and
//! [`api_key_usage_hour`] (usage analytics), the webhook outbox and deliveries
//! ([`api_key_outbox`], [`api_key_delivery`]) and the disabled webhook endpoints
//! ([`api_key_webhook_endpoint`]).
//!
//! The table names here are the unprefixed defaults; the store and the migrations use the
//! configured prefix (see [`crate::Tables`]).

pub mod api_key;
pub mod api_key_delivery;
pub mod api_key_event;
pub mod api_key_outbox;
pub mod api_key_owner;
pub mod api_key_usage;
pub mod api_key_usage_hour;
pub mod api_key_webhook_endpoint;
