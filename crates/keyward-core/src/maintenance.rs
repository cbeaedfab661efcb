//! The engine's background work, in one place for every stack: [`Keyward::maintain`] does one
//! round (cache invalidations that failed to publish, then batched usage), and with the `tokio`
//! feature [`spawn_usage_flusher`] runs it every few seconds, and its guard ([`UsageFlusher`])
//! writes what is left at shutdown. keyward-axum and keyward-actix
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
/// [`Keyward::maintain`] every `every` (at least 10 ms), and gives its guard. Keep the guard
/// for as long as the application serves: when it is shut down ([`UsageFlusher::shutdown`])
/// or dropped, the task stops and what is still batched is written, so that a graceful
/// shutdown loses no last-used time or counter.
///
/// # Panics
/// When called outside a tokio runtime (as `tokio::spawn`).
#[cfg(feature = "tokio")]
pub fn spawn_usage_flusher(keyward: Keyward, every: Duration) -> UsageFlusher {
    let background = keyward.clone();
    let stop = std::sync::Arc::new(tokio::sync::Notify::new());
    let stopped = std::sync::Arc::clone(&stop);
    let task = tokio::spawn(async move {
        let mut tick = tokio::time::interval(every.max(Duration::from_millis(10)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            // A stop ends the loop between rounds, never inside one: a round that has taken
            // the batch writes it (or puts it back) before the guard's last flush.
            tokio::select! {
                _ = tick.tick() => {}
                () = stopped.notified() => return,
            }
            background.maintain().await;
        }
    });
    UsageFlusher {
        keyward,
        stop,
        task: Some(task),
    }
}

/// The guard of the background task [`spawn_usage_flusher`] starts: it stops the task and
/// writes what is still batched when shut down or dropped.
///
/// Dropping it is enough where the application runs on a multi-threaded tokio runtime (axum's
/// `#[tokio::main]`): the last flush blocks the dropping thread, never the runtime, for at
/// most [`UsageFlusher::LAST_FLUSH`] (and the round in progress, if any). On a current-thread
/// runtime (actix-web's `#[actix_web::main]`), where the dropping thread is the one that would
/// have to drive the store's I/O, a drop cannot wait: call [`UsageFlusher::shutdown`] after the
/// server stops (a drop there says so in the log, at warn).
#[cfg(feature = "tokio")]
#[derive(Debug)]
#[must_use = "dropping the guard stops the task: keep it while the application serves"]
pub struct UsageFlusher {
    keyward: Keyward,
    stop: std::sync::Arc<tokio::sync::Notify>,
    task: Option<tokio::task::JoinHandle<()>>,
}

#[cfg(feature = "tokio")]
impl UsageFlusher {
    /// How long the last flush retries a store that refuses or does not answer.
    pub const LAST_FLUSH: Duration = Duration::from_secs(5);

    /// Stops the task (letting a round in progress finish) and writes what is still batched,
    /// retrying a store that refuses for up to [`UsageFlusher::LAST_FLUSH`]; gives the number
    /// of keys whose usage it wrote. What still cannot be written is logged at error, with the
    /// number of keys it concerns.
    pub async fn shutdown(mut self) -> usize {
        if let Some(task) = self.task.take() {
            stop_task(&self.stop, task).await;
        }
        last_flush(&self.keyward).await
    }
}

/// Ends the background loop between rounds and waits for it (a round in progress finishes).
#[cfg(feature = "tokio")]
async fn stop_task(stop: &tokio::sync::Notify, task: tokio::task::JoinHandle<()>) {
    stop.notify_one();
    let _ = task.await;
}

#[cfg(feature = "tokio")]
impl Drop for UsageFlusher {
    fn drop(&mut self) {
        let Some(task) = self.task.take() else {
            return;
        };
        let runtime = tokio::runtime::Handle::try_current().ok();
        if let Some(handle) = runtime
            .as_ref()
            .filter(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread)
        {
            // Blocks this thread only; a worker hands its other tasks on first. Never lets a
            // panic out of a drop (block_in_place refuses inside some runtime contexts).
            let (keyward, stop) = (&self.keyward, &self.stop);
            let flushed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                tokio::task::block_in_place(|| {
                    handle.block_on(async {
                        stop_task(stop, task).await;
                        last_flush(keyward).await
                    })
                })
            }));
            if flushed.is_ok() {
                return;
            }
            tracing::error!(
                "the usage flusher could not flush when dropped: usage counted since the last \
                 flush is lost; call `UsageFlusher::shutdown().await` once the server has stopped"
            );
            return;
        }
        task.abort();
        tracing::warn!(
            pending = self.keyward.pending_usage(),
            "the usage flusher was dropped where it cannot wait (a current-thread runtime, or \
             none): usage counted since the last flush is lost; call \
             `UsageFlusher::shutdown().await` once the server has stopped"
        );
    }
}

/// Writes what is batched, retrying a store that refuses, each attempt bounded, for up to
/// [`UsageFlusher::LAST_FLUSH`] in all.
#[cfg(feature = "tokio")]
async fn last_flush(keyward: &Keyward) -> usize {
    let deadline = tokio::time::Instant::now() + UsageFlusher::LAST_FLUSH;
    let mut pause = Duration::from_millis(100);
    loop {
        let attempt = tokio::time::timeout_at(deadline, keyward.flush_usage()).await;
        match attempt {
            Ok(Ok(n)) => {
                tracing::info!(keys = n, "usage flushed on shutdown");
                return n;
            }
            Ok(Err(e)) if tokio::time::Instant::now() + pause < deadline => {
                tracing::warn!(error = %e, "usage flush on shutdown failed; retrying");
                tokio::time::sleep(pause).await;
                pause = pause.saturating_mul(2);
            }
            outcome => {
                let error = outcome.map_or_else(
                    |_| "the store did not answer in time".to_owned(),
                    |r| r.err().map(|e| e.to_string()).unwrap_or_default(),
                );
                tracing::error!(
                    error,
                    pending = keyward.pending_usage(),
                    "usage could not be flushed on shutdown; it is lost"
                );
                return 0;
            }
        }
    }
}
