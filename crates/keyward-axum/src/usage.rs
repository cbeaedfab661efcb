//! A background task that flushes batched usage counters ([`Keyward::flush_usage`]).

use std::time::Duration;

use keyward_core::Keyward;
use tokio::task::JoinHandle;

/// Spawns a task on the current tokio runtime that calls [`Keyward::flush_usage`] every
/// `every` (failures are logged and the batch is kept for the next tick). Abort the handle on
/// shutdown, then call `flush_usage` once more so nothing counted is lost.
///
/// # Panics
/// When called outside a tokio runtime (as `tokio::spawn`).
#[must_use = "abort the task on shutdown and flush once more"]
pub fn spawn_usage_flusher(keyward: Keyward, every: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every.max(Duration::from_millis(10)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            match keyward.flush_usage().await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(keys = n, "usage flushed"),
                Err(e) => {
                    tracing::warn!(error = %e, pending = keyward.pending_usage(), "usage flush failed; kept for the next tick")
                }
            }
        }
    })
}
