//! A background task that flushes batched usage counters ([`Keyward::flush_usage`]).

use std::time::Duration;

use actix_web::rt::task::JoinHandle;
use keyward_core::Keyward;

/// Spawns a task on the current actix (tokio) runtime that calls [`Keyward::flush_usage`] every
/// `every` (failures are logged and the batch is kept for the next tick). Call it inside
/// `#[actix_web::main]`; abort the handle on shutdown, then call `flush_usage` once more so
/// nothing counted is lost.
///
/// # Panics
/// When called outside an actix/tokio runtime (as `actix_web::rt::spawn`).
#[must_use = "abort the task on shutdown and flush once more"]
pub fn spawn_usage_flusher(keyward: Keyward, every: Duration) -> JoinHandle<()> {
    actix_web::rt::spawn(async move {
        let mut tick = actix_web::rt::time::interval(every.max(Duration::from_millis(10)));
        tick.tick().await;
        loop {
            tick.tick().await;
            match keyward.flush_usage().await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(keys = n, "usage flushed"),
                Err(e) => {
                    tracing::warn!(error = %e, pending = keyward.pending_usage(), "usage flush failed; kept for the next tick");
                }
            }
        }
    })
}
