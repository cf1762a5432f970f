//! Ingest: every source turns what it hears into [`Sample`]s and hands them to detection.
//!
//! Sources cannot slow a UDP sender down, so they never wait on detection: [`SampleSink`] uses
//! `try_send` and counts what it had to drop.

use std::sync::Arc;

use tokio::sync::mpsc::{self, error::TrySendError};

use crate::model::Sample;
use crate::northbound::metrics::Metrics;

/// The ingest end of the sample channel, shared by all sources.
#[derive(Clone)]
pub struct SampleSink {
    tx: mpsc::Sender<Sample>,
    metrics: Arc<Metrics>,
}

impl SampleSink {
    /// Wraps the sender of the bounded sample channel.
    pub fn new(tx: mpsc::Sender<Sample>, metrics: Arc<Metrics>) -> Self {
        Self { tx, metrics }
    }

    /// Offers a sample; returns false (and counts why) if it was dropped.
    pub fn offer(&self, sample: Sample) -> bool {
        match self.tx.try_send(sample) {
            Ok(()) => {
                self.metrics.ingest_samples.inc();
                true
            }
            Err(TrySendError::Full(_)) => {
                self.metrics
                    .ingest_dropped
                    .with_label_values(&["queue_full"])
                    .inc();
                false
            }
            Err(TrySendError::Closed(_)) => {
                self.metrics
                    .ingest_dropped
                    .with_label_values(&["shutdown"])
                    .inc();
                false
            }
        }
    }
}
