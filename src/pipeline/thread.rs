//! A stage on a thread of its own, with a runtime of its own.
//!
//! The NetFlow collector, detection, the alarm stage and the store's flusher each get one
//! (`netflow`, `detect`, `alarm`, `flush`). At 50,000 datagrams a second a socket buffer holds
//! milliseconds, and the shared workers can be busy for longer (a round of polls, 50 live-stream
//! clients serialising a storm): a stage on its own thread waits only for the kernel's
//! scheduler, not behind other tasks. It also makes each stage's CPU its thread's, which
//! `top -H` and the fleet bench show by name.

use std::future::Future;

/// A stage's thread or runtime could not be started (the system is out of threads or memory):
/// the daemon does not run without one of its stages.
#[derive(Debug, thiserror::Error)]
#[error("cannot start the {stage} stage's thread: {source}")]
pub struct ThreadError {
    /// The stage (its thread's name).
    pub stage: &'static str,
    /// What the system said.
    #[source]
    pub source: std::io::Error,
}

/// Starts the future `make` builds on a thread named `name`, on a current-thread runtime of its
/// own (timers and I/O enabled); the returned future ends when the stage does. `make` runs on
/// that thread, so whatever must be registered with the runtime that polls it (a socket) is
/// registered there. Both the runtime and the thread are made before this returns, so a
/// failure is the caller's error, not a stage silently missing.
pub fn on_own_thread<F, Fut>(
    name: &'static str,
    make: F,
) -> Result<impl Future<Output = ()> + Send + 'static, ThreadError>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let failed = |source| ThreadError {
        stage: name,
        source,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(failed)?;
    let (done, finished) = tokio::sync::oneshot::channel::<()>();
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            runtime.block_on(make());
            let _ = done.send(());
        })
        .map_err(failed)?;
    Ok(async move {
        let _ = finished.await;
    })
}
