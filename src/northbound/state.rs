//! What every HTTP handler reads: one cloneable state, handed to axum.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use tokio::sync::{Semaphore, broadcast, watch};
use tokio_util::sync::CancellationToken;

use crate::cluster::FleetAlarms;
use crate::config::{Config, Secret};
use crate::impact::ImpactView;
use crate::impact::customers::CustomerKeys;
use crate::message::Commander;
use crate::model::{AlarmEvent, ServiceState, Timestamp};
use crate::store::Store;
use crate::telemetry::Metrics;

/// What the handlers read.
#[derive(Clone)]
pub struct HttpState {
    /// Metrics to expose.
    pub metrics: Arc<Metrics>,
    /// The store, for its size and health.
    pub store: Store,
    /// Set once every socket is bound and the pipeline runs; cleared when stopping.
    pub ready: Arc<AtomicBool>,
    /// Engineers' commands to the alarm stage.
    pub commander: Commander,
    /// Bearer token for writes; `None` disables them.
    pub token: Option<Secret>,
    /// Published alarm transitions, for the live stream.
    pub events: broadcast::Sender<AlarmEvent>,
    /// The first sequence number of this run: a stream resumed from before it is told the
    /// daemon restarted.
    pub first_seq: u64,
    /// When this run started.
    pub started_at: Timestamp,
    /// Fires at shutdown; live streams end on it.
    pub stop: CancellationToken,
    /// The running config (devices and config-defined maintenance windows).
    pub config: watch::Receiver<Arc<Config>>,
    /// Slots for live-stream clients (`http.max-stream-clients`, fixed at start).
    pub streams: Arc<Semaphore>,
    /// Committed service state changes, for the live stream.
    pub services: broadcast::Sender<ServiceState>,
    /// What the customer lookup reads.
    pub impact: watch::Receiver<Arc<ImpactView>>,
    /// How customer ids become store keys (`[impact] hash-key-file`, fixed at start).
    pub customer_keys: CustomerKeys,
    /// One customer import at a time.
    pub imports: Arc<tokio::sync::Mutex<()>>,
    /// In a cluster, what `scope=fleet` answers from.
    pub fleet: Option<FleetView>,
}

/// The fleet as this member sees it.
#[derive(Clone)]
pub struct FleetView {
    /// Every device's replicated active alarms.
    pub alarms: watch::Receiver<Arc<FleetAlarms>>,
    /// Every member's transitions as they land on the replicated stream.
    pub events: broadcast::Sender<AlarmEvent>,
}
