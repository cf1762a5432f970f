//! Ingest: every source turns what it hears into [`Ingest`] items and hands them to detection.
//!
//! Live sources cannot slow a UDP sender down, so they never wait: [`SampleSink::offer`] uses
//! `try_send` and counts what it had to drop. Replay reads a file and can wait, so it uses
//! [`SampleSink::send`] and loses nothing.

pub mod demo;
pub mod netflow;
pub mod pcap;
pub mod probe;
pub mod scenario;
pub mod snmp;
pub mod socket;
pub mod trap;
pub mod usm;

use std::sync::Arc;

use tokio::sync::mpsc::{self, error::TrySendError};

use crate::message::{Arrived, Ingest};
use crate::telemetry::{IngestDrop, Metrics};

/// The ingest end of the sample channel, shared by all sources.
#[derive(Clone)]
pub struct SampleSink {
    tx: mpsc::Sender<Arrived>,
    metrics: Arc<Metrics>,
}

impl SampleSink {
    /// Wraps the sender of the bounded sample channel.
    pub fn new(tx: mpsc::Sender<Arrived>, metrics: Arc<Metrics>) -> Self {
        Self { tx, metrics }
    }

    /// Offers an item without waiting; returns false (and counts why) if it was dropped.
    pub fn offer(&self, item: impl Into<Ingest>) -> bool {
        match self.tx.try_send(arrived(item.into())) {
            Ok(()) => {
                self.metrics.ingest_samples.inc();
                true
            }
            Err(TrySendError::Full(_)) => {
                self.metrics.ingest_drop(IngestDrop::QueueFull).inc();
                false
            }
            Err(TrySendError::Closed(_)) => {
                self.metrics.ingest_drop(IngestDrop::Shutdown).inc();
                false
            }
        }
    }

    /// Sends an item, waiting for room; false if the pipeline has stopped.
    pub async fn send(&self, item: impl Into<Ingest>) -> bool {
        let ok = self.tx.send(arrived(item.into())).await.is_ok();
        if ok {
            self.metrics.ingest_samples.inc();
        }
        ok
    }
}

fn arrived(item: Ingest) -> Arrived {
    Arrived {
        item,
        at: std::time::Instant::now(),
    }
}
