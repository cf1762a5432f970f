//! Samples where they belong: a trap or a flow can reach any member (behind a UDP load
//! balancer, say); what the gated [`SampleSink`] finds is of a device another member owns comes
//! here and goes on to that owner over core NATS, on subject `noctua.samples.<member>`, in
//! batches. What other members send here is taken into this member's pipeline if the device is
//! still its own. Every item is counted: forwarded, received, or dropped with a reason.
//!
//! Core NATS is at most once: a batch sent while the owner is away is lost, and counted by
//! nobody but the NATS server. Samples are measurements that come again next interval; an
//! event (a trap) lost this way is the same as a trap lost on the wire, which SNMP allows.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::membership::Owners;
use crate::cluster::Ownership;
use crate::ingest::SampleSink;
use crate::message::Ingest;
use crate::model::{DeviceEvent, Sample};
use crate::telemetry::{ForwardDrop, Metrics};

/// Items per message at most.
const BATCH: usize = 256;
/// How long an item may wait for its batch to fill.
const LINGER: Duration = Duration::from_millis(10);
/// Items waiting for the forwarder; past it the gated sink drops and counts.
pub const QUEUE: usize = 65_536;

/// An item on the wire (JSON: the model's types skip empty fields, which only a
/// self-describing format allows).
#[derive(Debug, Serialize, Deserialize)]
enum Forwarded {
    Sample(Sample),
    Event(DeviceEvent),
}

impl Forwarded {
    fn of(item: Ingest) -> Option<Self> {
        match item {
            Ingest::Sample(s) => Some(Self::Sample(s)),
            Ingest::Event(e) => Some(Self::Event(e)),
            Ingest::Tick(_) | Ingest::Complaint(_) | Ingest::Ack(_) => None,
        }
    }

    fn device(&self) -> &str {
        match self {
            Self::Sample(s) => &s.series.device,
            Self::Event(e) => &e.device,
        }
    }

    fn into_ingest(self) -> Ingest {
        match self {
            Self::Sample(s) => Ingest::Sample(s),
            Self::Event(e) => Ingest::Event(e),
        }
    }
}

/// The subject member `name` receives forwarded items on.
fn subject(name: &str) -> String {
    format!("noctua.samples.{name}")
}

/// What the forwarder works with.
pub struct Forwarder {
    /// This member's name.
    pub me: String,
    /// What the gated sink hands over.
    pub outgoing: mpsc::Receiver<Ingest>,
    /// Each device's owner.
    pub owners: watch::Receiver<Arc<Owners>>,
    /// What this member owns.
    pub ownership: watch::Receiver<Arc<Ownership>>,
    /// This member's own pipeline, ungated.
    pub here: SampleSink,
}

/// Forwards and receives until `cancel`.
pub async fn run(
    client: async_nats::Client,
    f: Forwarder,
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
) {
    let Forwarder {
        me,
        mut outgoing,
        owners,
        ownership,
        here,
    } = f;
    let mut incoming = match client.subscribe(subject(&me)).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot subscribe to forwarded samples; none will be taken");
            return;
        }
    };
    let mut batches: HashMap<String, Vec<Forwarded>> = HashMap::new();
    let mut tick = tokio::time::interval(LINGER);
    loop {
        tokio::select! {
            () = cancel.cancelled() => break,
            item = outgoing.recv() => {
                let Some(item) = item else { break };
                let Some(item) = Forwarded::of(item) else { continue };
                let owner = owners.borrow().get(item.device()).cloned();
                let Some(owner) = owner else {
                    tracing::debug!(device = item.device(), known = owners.borrow().len(), "no owner to forward to");
                    metrics.forward_drop(ForwardDrop::NoOwner).inc();
                    continue;
                };
                let batch = batches.entry(owner.clone()).or_default();
                batch.push(item);
                if batch.len() >= BATCH {
                    let full = std::mem::take(batch);
                    send(&client, &owner, full, &metrics).await;
                }
            }
            message = incoming.next() => {
                let Some(message) = message else { break };
                take(&message.payload, &ownership, &here, &metrics);
            }
            _ = tick.tick() => {
                for (owner, batch) in batches.iter_mut().filter(|(_, b)| !b.is_empty()) {
                    let batch = std::mem::take(batch);
                    send(&client, owner, batch, &metrics).await;
                }
            }
        }
    }
    for (owner, batch) in batches {
        if !batch.is_empty() {
            send(&client, &owner, batch, &metrics).await;
        }
    }
    let _ = client.flush().await;
}

async fn send(client: &async_nats::Client, owner: &str, batch: Vec<Forwarded>, metrics: &Metrics) {
    let n = batch.len() as u64;
    let sent = match serde_json::to_vec(&batch) {
        Ok(body) => client.publish(subject(owner), body.into()).await.is_ok(),
        Err(_) => false,
    };
    match sent {
        true => metrics.cluster_forwarded.inc_by(n),
        false => metrics.forward_drop(ForwardDrop::Publish).inc_by(n),
    }
}

/// Takes a received batch into this member's pipeline, item by item, if still its own.
fn take(
    payload: &[u8],
    ownership: &watch::Receiver<Arc<Ownership>>,
    here: &SampleSink,
    metrics: &Metrics,
) {
    let Ok(batch) = serde_json::from_slice::<Vec<Forwarded>>(payload) else {
        metrics.forward_drop(ForwardDrop::Malformed).inc();
        return;
    };
    for item in batch {
        // A device that moved on since the sender looked is dropped, not bounced back.
        if !ownership.borrow().owns(item.device()) {
            metrics.forward_drop(ForwardDrop::NotOwner).inc();
            continue;
        }
        if here.offer_here(item.into_ingest()) {
            metrics.cluster_forward_received.inc();
        }
    }
}
