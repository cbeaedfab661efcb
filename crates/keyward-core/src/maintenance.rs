//! The engine's background work, in one place for every stack: [`Keyward::maintain`] does one
//! round (cache invalidations that failed to publish, then batched usage), and with the `tokio`
//! feature [`spawn_usage_flusher`] runs it every few seconds. keyward-axum and keyward-actix
//! re-export the task, and the `keyward` server runs the same one.

#[cfg(feature = "tokio")]
use std::time::Duration;

use crate::engine::Keyward;

/// What one round of [`Keyward::maintain`] left undone, for the next round.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Backlog {
    /// Cache invalidations still not published to the other instances.
    pub invalidations: usize,
    /// Keys whose batched usage could not be written (the store refused).
    pub usage: usize,
}

impl Keyward {
    /// One round of background work: publishes the cache invalidations that failed before
    /// (so that a revocation reaches every instance once the bus is back), then writes the
    /// batched usage counters. Failures are logged, never returned: what could not be done
    /// stays queued, and the [`Backlog`] says how much.
    pub async fn maintain(&self) -> Backlog {
        let mut backlog = Backlog::default();
        if self.pending_invalidations() > 0 {
            backlog.invalidations = self.retry_invalidations().await;
            if backlog.invalidations > 0 {
                tracing::warn!(
                    pending = backlog.invalidations,
                    "cache invalidations still not published"
                );
            }
        }
        match self.flush_usage().await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(keys = n, "usage flushed"),
            Err(e) => {
                backlog.usage = self.pending_usage();
                tracing::warn!(error = %e, pending = backlog.usage, "usage flush failed; kept for the next round");
            }
        }
        backlog
    }
}

/// Spawns a task on the current tokio runtime (actix-web's included) that runs
/// [`Keyward::maintain`] every `every` (at least 10 ms). Abort the handle on shutdown, then
/// call [`Keyward::flush_usage`] once more so that nothing counted is lost.
///
/// # Panics
/// When called outside a tokio runtime (as `tokio::spawn`).
#[cfg(feature = "tokio")]
#[must_use = "abort the task on shutdown and flush once more"]
pub fn spawn_usage_flusher(keyward: Keyward, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every.max(Duration::from_millis(10)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            keyward.maintain().await;
        }
    })
}
