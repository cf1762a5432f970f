//! A stage on a thread of its own, with a runtime of its own.
//!
//! The NetFlow collector, detection, the alarm stage and the store's flusher each get one
//! (`netflow`, `detect`, `alarm`, `flush`). At 50,000 datagrams a second a socket buffer holds
//! milliseconds, and the shared workers can be busy for longer (a round of polls, 50 live-stream
//! clients serialising a storm): a stage on its own thread waits only for the kernel's
//! scheduler, not behind other tasks. It also makes each stage's CPU its thread's, which
//! `top -H` and the fleet bench show by name.

use std::future::Future;

/// Runs the future `make` builds on a thread named `name`, on a current-thread runtime of its
/// own (timers and I/O enabled); ends when it does. `make` runs on that thread, so whatever must
/// be registered with the runtime that polls it (a socket) is registered there.
pub async fn on_own_thread<F, Fut>(name: &'static str, make: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let (done, finished) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime.block_on(make()),
                Err(e) => tracing::error!(stage = name, error = %e, "cannot start a runtime"),
            }
            let _ = done.send(());
        });
    if let Err(e) = thread {
        tracing::error!(stage = name, error = %e, "cannot start a thread");
        return;
    }
    let _ = finished.await;
}
