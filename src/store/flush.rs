//! Group commit: writers get a [`Ticket`] and wait for it; one flusher task flushes sled at
//! most once per interval for all of them, so durability costs one fsync per batch of writers.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::{Store, StoreError, Ticket};

/// Result of one flush, for metrics.
#[derive(Debug, Clone, Copy)]
pub struct FlushReport {
    /// How long the flush took.
    pub took: Duration,
    /// Whether it succeeded.
    pub ok: bool,
}

impl Store {
    pub(super) fn written(&self) -> Ticket {
        let t = self.inner.written.fetch_add(1, Ordering::AcqRel) + 1;
        self.inner.wake.notify_one();
        Ticket(t)
    }

    /// Waits until the write behind `ticket` is on disk, or the store fails (then it never
    /// will be, and the writer answers at once). Needs [`Store::run_flusher`] running.
    pub async fn durable(&self, ticket: Ticket) -> Result<(), StoreError> {
        let mut rx = self.inner.flushed.subscribe();
        let failed = self.inner.failed.clone();
        tokio::select! {
            // The sender lives in `inner`, which `self` keeps alive, so this cannot see a
            // closed channel.
            _ = rx.wait_for(|f| *f >= ticket.0) => Ok(()),
            () = failed.cancelled() => self.writable(),
        }
    }

    /// Waits until every transition through `seq` is on disk (or the store fails).
    pub async fn durable_through(&self, seq: u64) -> Result<(), StoreError> {
        let mut rx = self.inner.flushed.subscribe();
        let failed = self.inner.failed.clone();
        tokio::select! {
            // `durable_seq` is raised before `flushed` is advanced, so each flush wakes this.
            _ = rx.wait_for(|_| self.durable_seq() >= seq) => Ok(()),
            () = failed.cancelled() => self.writable(),
        }
    }

    /// Flushes everything written so far, now, on the calling thread.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.writable()?;
        let target = self.flush_db()?;
        self.advance_flushed(target);
        Ok(())
    }

    /// Flushes sled; returns the ticket number everything up to which is now durable.
    fn flush_db(&self) -> Result<u64, StoreError> {
        let target = self.inner.written.load(Ordering::Acquire);
        // Every commit that has set `committed_seq` finished its transaction before the flush
        // below starts, so everything up to this sequence number is on disk after it.
        let seq = self.inner.committed_seq.load(Ordering::Acquire);
        self.inner.db.flush().map_err(|e| self.sled_err(e))?;
        self.inner.durable_seq.fetch_max(seq, Ordering::AcqRel);
        Ok(target)
    }

    /// The highest sequence number on disk. Publishers (MQTT, the live stream, the API's
    /// history) read only up to it, so nothing is shown that a crash could still take back.
    pub fn durable_seq(&self) -> u64 {
        self.inner.durable_seq.load(Ordering::Acquire)
    }

    fn advance_flushed(&self, target: u64) {
        self.inner.flushed.send_if_modified(|f| {
            let advance = target > *f;
            *f = (*f).max(target);
            advance
        });
    }

    /// Group commit: flushes pending writes at most once per `interval`, until `stop` fires,
    /// then once more. `report` sees each flush (for metrics).
    pub async fn run_flusher(
        self,
        interval: Duration,
        stop: CancellationToken,
        report: impl Fn(FlushReport) + Send,
    ) {
        loop {
            let stopping = tokio::select! {
                () = self.inner.wake.notified() => false,
                () = stop.cancelled() => true,
            };
            if self.inner.written.load(Ordering::Acquire) > *self.inner.flushed.borrow() {
                let store = self.clone();
                let started = Instant::now();
                let result = tokio::task::spawn_blocking(move || store.flush_db()).await;
                // A failed flush has failed the store (logged once, in `sled_err`); there is
                // no retrying that, so the flusher idles until the daemon stops.
                let flushed = match result {
                    Ok(Ok(target)) => Some(target),
                    Ok(Err(_)) => None,
                    Err(e) => {
                        tracing::error!(error = %e, "store flush task failed");
                        None
                    }
                };
                let ok = flushed.is_some();
                // Report before releasing the waiters, so whatever they publish is already
                // accounted for in the metrics.
                report(FlushReport {
                    took: started.elapsed(),
                    ok,
                });
                if let Some(target) = flushed {
                    self.advance_flushed(target);
                }
            }
            if stopping {
                return;
            }
            // Writers arriving during this pause share the next flush.
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                () = stop.cancelled() => {}
            }
        }
    }
}
