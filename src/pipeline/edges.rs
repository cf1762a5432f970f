//! The edges around the pipeline, bound and spawned: northbound (HTTP with its live stream,
//! MQTT) and the sources (NetFlow/IPFIX, probes, SNMP traps, the SNMP poller). Every socket is
//! bound before anything is spawned, so a taken port fails the start with the config key that
//! named it; a listen address with port 0 gets a free port, and [`Bound`] says which.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use serde::Serialize;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{broadcast, mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cluster::FleetAlarms;
use crate::cluster::Ownership;
use crate::config::Config;
use crate::fleet::{self, FleetError, forward, membership, replicate, tail, templates};
use crate::impact::customers::CustomerKeys;
use crate::ingest::SampleSink;
use crate::ingest::{netflow, probe, snmp, trap};
use crate::message::InterfaceSpeeds;
use crate::model::{AlarmEvent, Timestamp};
use crate::northbound::state::{FleetView, HttpState};
use crate::northbound::{http, incident, mqtt};
use crate::pipeline::Pipeline;
use crate::pipeline::thread::on_own_thread;
use crate::store::{Store, StoreError, Tree};

/// Meta key of the SNMP engine id (see [`snmp_engine_id`]).
const SNMP_ENGINE_ID_KEY: &[u8] = b"snmp_engine_id";

/// Why the edges could not start.
#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    /// A listen address could not be bound.
    #[error("cannot listen on {addr} ({key}): {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The config key that set it.
        key: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// The store could not give the SNMP engine its id.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The NetFlow collector's thread could not be started.
    #[error(transparent)]
    Thread(#[from] crate::pipeline::thread::ThreadError),
    /// The cluster's settings could not be used.
    #[error(transparent)]
    Fleet(#[from] FleetError),
}

/// The addresses actually bound (a port 0 in the config is a free port here).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Bound {
    /// The HTTP API.
    pub http: SocketAddr,
    /// The NetFlow/IPFIX collector's sockets, if it runs.
    pub netflow: Vec<SocketAddr>,
    /// The trap receiver, if it runs.
    pub traps: Option<SocketAddr>,
}

/// What the edges share with the process: the readiness `/readyz` reports, and the token
/// that stops them.
pub struct Process<'a> {
    /// Set once everything runs; cleared when stopping.
    pub ready: Arc<AtomicBool>,
    /// Stops every edge.
    pub cancel: &'a CancellationToken,
    /// The daemon's starts so far, for the SNMP engine's boots.
    pub runs: u64,
}

/// Binds every socket the config asks for, then spawns the edges on `tasks`.
pub async fn start(
    config: &Arc<Config>,
    store: &Store,
    pipeline: &Pipeline,
    process: Process<'_>,
    tasks: &TaskTracker,
) -> Result<Bound, EdgeError> {
    let bind = |addr, key| move |source| EdgeError::Bind { addr, key, source };
    let listen = config.http.listen;
    let listener = listen_http(listen).map_err(bind(listen, "http.listen"))?;
    let netflow_sockets = match config.netflow.enabled {
        true => netflow::bind(&config.netflow)
            .map_err(|(addr, source)| bind(addr, "netflow.listen")(source))?,
        false => Vec::new(),
    };
    let trap_socket = match config.traps.enabled {
        true => {
            let listen = config.traps.listen;
            Some(
                UdpSocket::bind(listen)
                    .await
                    .map_err(bind(listen, "traps.listen"))?,
            )
        }
        false => None,
    };
    let bound = Bound {
        http: listener.local_addr().unwrap_or(listen),
        netflow: netflow_sockets
            .iter()
            .filter_map(|s| s.local_addr().ok())
            .collect(),
        traps: trap_socket.as_ref().and_then(|s| s.local_addr().ok()),
    };
    let cancel = process.cancel;

    // In a cluster, the fleet-wide view the API answers `scope=fleet` from.
    let (fleet_tx, fleet) = watch::channel(Arc::default());
    let (fleet_events, _) = broadcast::channel(FLEET_EVENTS);
    let http_state = HttpState {
        metrics: pipeline.metrics.clone(),
        store: store.clone(),
        ready: process.ready,
        commander: pipeline.commander.clone(),
        token: config.http.token.clone(),
        events: pipeline.events.clone(),
        first_seq: pipeline.first_seq,
        started_at: Timestamp::now(),
        stop: cancel.clone(),
        config: pipeline.config(),
        streams: Arc::new(tokio::sync::Semaphore::new(config.http.max_stream_clients)),
        services: pipeline.services.clone(),
        impact: pipeline.impact.clone(),
        customer_keys: CustomerKeys::from_config(&config.impact),
        imports: Arc::new(tokio::sync::Mutex::new(())),
        fleet: config.cluster.enabled.then(|| FleetView {
            alarms: fleet,
            events: fleet_events.clone(),
        }),
    };
    let (stop, http_config) = (cancel.clone(), config.http.clone());
    tasks.spawn(async move {
        if let Err(e) = http::serve(listener, http_state, &http_config, stop).await {
            tracing::error!(error = %e, "http listener failed");
        }
    });
    tasks.spawn(incident::run(
        store.clone(),
        pipeline.config(),
        pipeline.events.subscribe(),
        cancel.clone(),
    ));
    if config.mqtt.enabled {
        let events = pipeline.events.subscribe();
        let (metrics, stop) = (pipeline.metrics.clone(), cancel.clone());
        tasks.spawn(mqtt::run(
            config.mqtt.clone(),
            store.clone(),
            events,
            metrics,
            stop,
        ));
    }

    // The devices this instance works on: all of them, unless it is one of a cluster, where
    // it owns none until it has joined, and what its sources hear of other members' devices
    // goes on to them.
    let (ownership_tx, ownership) = watch::channel(Arc::new(Ownership::All));
    // In a cluster, the collector's templates are shared with the other members.
    let (template_share, templates) = match config.cluster.enabled && !netflow_sockets.is_empty() {
        false => (None, None),
        true => {
            let (learned_tx, learned) = mpsc::unbounded_channel();
            let (heard, heard_rx) = mpsc::channel(TEMPLATES_HEARD);
            let collector = netflow::TemplateShare {
                learned: learned_tx,
                heard: heard_rx,
            };
            (Some(collector), Some(templates::Share { learned, heard }))
        }
    };
    let sink = match config.cluster.enabled {
        false => pipeline.samples.clone(),
        true => {
            let doors = Doors {
                store,
                ownership: ownership_tx,
                fleet: fleet_tx,
                fleet_events,
                templates,
            };
            join_cluster(config, pipeline, doors, tasks, cancel).await?
        }
    };

    // What the SNMP poller learns about interface speeds, the NetFlow collector uses.
    let (speeds, learned_speeds) = watch::channel(InterfaceSpeeds::default());
    let (samples, metrics) = (&sink, &pipeline.metrics);
    if !netflow_sockets.is_empty() {
        let (config, store, samples, metrics) = (
            config.clone(),
            store.clone(),
            samples.clone(),
            metrics.clone(),
        );
        let cancel = cancel.clone();
        tasks.spawn(on_own_thread("netflow", move || {
            netflow::run(
                config,
                netflow_sockets,
                store,
                samples,
                metrics,
                learned_speeds,
                template_share,
                cancel,
            )
        })?);
    }
    if config.probes.enabled {
        let run = probe::run(
            config.clone(),
            ownership.clone(),
            samples.clone(),
            metrics.clone(),
            cancel.clone(),
        );
        tasks.spawn(run);
    }
    let polls = snmp::poll_triggers(config);
    if let Some(socket) = trap_socket {
        let engine = trap::engine::Engine::new(snmp_engine_id(store)?, process.runs);
        tasks.spawn(trap::run(
            config.clone(),
            engine,
            socket,
            samples.clone(),
            metrics.clone(),
            polls.clone(),
            cancel.clone(),
        ));
    }
    if !polls.is_empty() {
        let (config, samples, metrics) = (config.clone(), samples.clone(), metrics.clone());
        tasks.spawn(snmp::run(
            config,
            ownership,
            samples,
            metrics,
            polls,
            speeds,
            cancel.clone(),
        ));
    }
    Ok(bound)
}

/// What joining the cluster feeds.
struct Doors<'a> {
    store: &'a Store,
    ownership: watch::Sender<Arc<Ownership>>,
    fleet: watch::Sender<Arc<FleetAlarms>>,
    fleet_events: broadcast::Sender<AlarmEvent>,
    templates: Option<templates::Share>,
}

/// Batches of other members' templates waiting for the collector.
const TEMPLATES_HEARD: usize = 64;

/// Fleet transitions a slow live-stream client may fall behind by before it gets a fresh
/// snapshot instead.
const FLEET_EVENTS: usize = 1024;

/// Connects to the cluster and starts membership, forwarding and replication; returns the
/// sources' sink, which forwards what is of another member's device.
async fn join_cluster(
    config: &Arc<Config>,
    pipeline: &Pipeline,
    doors: Doors<'_>,
    tasks: &TaskTracker,
    cancel: &CancellationToken,
) -> Result<SampleSink, EdgeError> {
    let Doors {
        store,
        ownership: ownership_tx,
        fleet,
        fleet_events,
        templates,
    } = doors;
    let client = fleet::connect(&config.cluster).await?;
    ownership_tx.send_replace(Arc::new(Ownership::Owned(Default::default())));
    let ownership = ownership_tx.subscribe();
    let (owners_tx, owners) = watch::channel(Arc::default());
    let views = membership::Views {
        owned: ownership_tx,
        owners: owners_tx,
        alarms: pipeline.alarm_inputs(),
    };
    let metrics = pipeline.metrics.clone();
    tasks.spawn(membership::run(
        config.clone(),
        client.clone(),
        views,
        metrics.clone(),
        cancel.clone(),
    ));
    let (outgoing_tx, outgoing) = tokio::sync::mpsc::channel(forward::QUEUE);
    let forwarder = forward::Forwarder {
        me: config.cluster.name.clone(),
        outgoing,
        owners: owners.clone(),
        ownership: ownership.clone(),
        here: pipeline.samples.clone(),
    };
    tasks.spawn(forward::run(
        client.clone(),
        forwarder,
        metrics.clone(),
        cancel.clone(),
    ));
    let replicator = replicate::Replicator {
        me: config.cluster.name.clone(),
        store: store.clone(),
        ownership: ownership.clone(),
        owners,
        events: pipeline.events.subscribe(),
        fleet,
    };
    if let Some(share) = templates {
        let run = templates::run(
            client.clone(),
            config.cluster.clone(),
            share,
            cancel.clone(),
        );
        tasks.spawn(run);
    }
    tasks.spawn(tail::run(
        client.clone(),
        fleet_events,
        config.cluster.heartbeat,
        cancel.clone(),
    ));
    tasks.spawn(replicate::run(
        client,
        config.cluster.clone(),
        replicator,
        metrics,
        cancel.clone(),
    ));
    Ok(pipeline.samples.gated(ownership, outgoing_tx))
}

/// The id of noctua's SNMP engine (the one v3 informs are sent to): made at the first start
/// and kept, because senders remember it and the keys they localised to it.
fn snmp_engine_id(store: &Store) -> Result<Vec<u8>, StoreError> {
    if let Some(id) = store.get::<Vec<u8>>(Tree::Meta, SNMP_ENGINE_ID_KEY)? {
        return Ok(id);
    }
    let id = trap::engine::Engine::new_id();
    store.put(Tree::Meta, SNMP_ENGINE_ID_KEY, &id)?;
    store.flush()?;
    Ok(id)
}

/// Connections the kernel queues for the HTTP accept loop: a burst of a thousand clients
/// (a wall of consoles reconnecting) waits there instead of in SYN retries of a second each.
const HTTP_BACKLOG: u32 = 4096;

/// Binds the HTTP listener with [`HTTP_BACKLOG`] (the kernel caps it at `somaxconn`).
fn listen_http(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(HTTP_BACKLOG)
}
