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
use tokio::sync::watch;

use crate::cluster::Ownership;
use crate::message::{Arrived, Ingest};
use crate::telemetry::{ForwardDrop, IngestDrop, Metrics};

/// The ingest end of the sample channel, shared by all sources.
#[derive(Clone)]
pub struct SampleSink {
    tx: mpsc::Sender<Arrived>,
    metrics: Arc<Metrics>,
    gate: Option<Gate>,
}

/// A cluster member's sink: what is of a device another member owns (a trap or a flow that
/// reached this one) goes to the forwarder, which sends it on to the owner.
#[derive(Clone)]
struct Gate {
    ownership: watch::Receiver<Arc<Ownership>>,
    forward: mpsc::Sender<Ingest>,
}

impl SampleSink {
    /// Wraps the sender of the bounded sample channel.
    pub fn new(tx: mpsc::Sender<Arrived>, metrics: Arc<Metrics>) -> Self {
        Self {
            tx,
            metrics,
            gate: None,
        }
    }

    /// This sink, for a cluster member: items of devices it does not own go to `forward`.
    pub fn gated(
        &self,
        ownership: watch::Receiver<Arc<Ownership>>,
        forward: mpsc::Sender<Ingest>,
    ) -> Self {
        Self {
            gate: Some(Gate { ownership, forward }),
            ..self.clone()
        }
    }

    /// Offers an item without waiting; returns false (and counts why) if it was dropped. In a
    /// cluster, an item of a device another member owns is forwarded instead.
    pub fn offer(&self, item: impl Into<Ingest>) -> bool {
        let item = item.into();
        if let Some(gate) = &self.gate
            && let Some(device) = item.device()
            && !gate.ownership.borrow().owns(device)
        {
            return self.forward(gate, item);
        }
        self.offer_here(item)
    }

    fn forward(&self, gate: &Gate, item: Ingest) -> bool {
        match gate.forward.try_send(item) {
            Ok(()) => true,
            Err(_) => {
                self.metrics.forward_drop(ForwardDrop::QueueFull).inc();
                false
            }
        }
    }

    /// Offers an item to this instance's own pipeline, whoever owns its device: what another
    /// member forwarded here.
    pub fn offer_here(&self, item: Ingest) -> bool {
        match self.tx.try_send(arrived(item)) {
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
