//! Wires the stages together and owns start-up, reload and shutdown.
//!
//! Start: open the store, bind every socket, restore alarm state, spawn the stages, then tell
//! systemd `READY=1`. Stop (SIGTERM/SIGINT): ingest stops, each stage ends when its input
//! channel closes (so the pipeline drains in order), the flusher makes the last commits durable,
//! and the run marker records a clean stop. SIGHUP re-reads the config; a bad one is refused and
//! the running one stays.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sd_notify::NotifyState;
use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, UdpSocket};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Config, ConfigError, ConfigSource};
use crate::message::{Clock, InterfaceSpeeds};
use crate::model::Timestamp;
use crate::northbound::http;
use crate::northbound::state::HttpState;
use crate::pipeline::Pipeline;
use crate::store::{Store, StoreError, Tree};
use crate::telemetry::Outcome;

/// Meta key of the [`RunRecord`].
pub const RUN_RECORD_KEY: &[u8] = b"last_run";
/// Meta key of the SNMP engine id (see `snmp_engine_id`).
const SNMP_ENGINE_ID_KEY: &[u8] = b"snmp_engine_id";

/// When the daemon last started and whether it stopped cleanly; read by the next start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Start time.
    pub started_at: Timestamp,
    /// Clean-stop time; `None` while running or after a crash.
    pub stopped_at: Option<Timestamp>,
    /// How many times this store has been started.
    pub runs: u64,
}

/// Why the daemon could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The store could not be opened or written.
    #[error(transparent)]
    Store(#[from] StoreError),
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
    /// Signal handlers could not be installed.
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
    /// The config is invalid (the message names file, line and key).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The async runtime could not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
}

/// `noctua run`: the config by the lookup order (`flag`, `$NOCTUA_CONFIG`, /etc, embedded),
/// then the daemon on a multi-threaded runtime until SIGTERM or SIGINT.
pub fn start(flag: Option<PathBuf>) -> Result<(), DaemonError> {
    let source = ConfigSource::from_environment(flag);
    let config = source.load()?;
    tracing::info!(config = %source, "config loaded");
    let runtime = tokio::runtime::Runtime::new().map_err(DaemonError::Runtime)?;
    let ran = runtime.block_on(run(source, config));
    ran.inspect_err(|e| tracing::error!("{e}"))
}

/// Runs the daemon until SIGTERM or SIGINT.
pub async fn run(source: ConfigSource, config: Config) -> Result<(), DaemonError> {
    let state_dir = std::env::var_os("STATE_DIRECTORY").map(PathBuf::from);
    let store_path = config.store.resolved_path(state_dir.as_deref());
    let store = Store::open(&store_path)?;
    let runs = mark_start(&store)?;
    tracing::info!(path = %store_path.display(), runs, "store open");

    let listen = config.http.listen;
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|source| DaemonError::Bind {
            addr: listen,
            key: "http.listen",
            source,
        })?;
    let bound = listener.local_addr().unwrap_or(listen);
    if config.http.token.is_none() {
        tracing::warn!("no http.token configured: write endpoints are disabled");
    }

    let mut sigterm = signal(SignalKind::terminate()).map_err(DaemonError::Signals)?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(DaemonError::Signals)?;
    let mut sighup = signal(SignalKind::hangup()).map_err(DaemonError::Signals)?;

    let config = Arc::new(config);
    let pipeline = Pipeline::start(config.clone(), store.clone(), Clock::Wall)?;
    let cancel = CancellationToken::new();
    let tasks = TaskTracker::new();
    let ready = Arc::new(AtomicBool::new(false));
    let http_state = HttpState {
        metrics: pipeline.metrics.clone(),
        store: store.clone(),
        ready: ready.clone(),
        commander: pipeline.commander.clone(),
        token: config.http.token.clone(),
        events: pipeline.events.clone(),
        first_seq: pipeline.first_seq,
        started_at: Timestamp::now(),
        stop: cancel.clone(),
        config: pipeline.config(),
    };
    tasks.spawn({
        let cancel = cancel.clone();
        async move {
            if let Err(e) = http::serve(listener, http_state, cancel).await {
                tracing::error!(error = %e, "http listener failed");
            }
        }
    });
    if config.mqtt.enabled {
        tasks.spawn(crate::northbound::mqtt::run(
            config.mqtt.clone(),
            store.clone(),
            pipeline.events.subscribe(),
            pipeline.metrics.clone(),
            cancel.clone(),
        ));
    }
    // What the SNMP poller learns about interface speeds, the NetFlow collector uses.
    let (speeds, learned_speeds) = watch::channel(InterfaceSpeeds::default());
    if config.netflow.enabled {
        let sockets = crate::ingest::netflow::bind(&config.netflow).map_err(|(addr, source)| {
            DaemonError::Bind {
                addr,
                key: "netflow.listen",
                source,
            }
        })?;
        tasks.spawn(crate::ingest::netflow::run(
            config.clone(),
            sockets,
            store.clone(),
            pipeline.samples.clone(),
            pipeline.metrics.clone(),
            learned_speeds,
            cancel.clone(),
        ));
    }
    if config.probes.enabled {
        tasks.spawn(crate::ingest::probe::run(
            config.clone(),
            pipeline.samples.clone(),
            pipeline.metrics.clone(),
            cancel.clone(),
        ));
    }
    let polls = crate::ingest::snmp::poll_triggers(&config);
    if config.traps.enabled {
        let listen = config.traps.listen;
        let socket = UdpSocket::bind(listen)
            .await
            .map_err(|source| DaemonError::Bind {
                addr: listen,
                key: "traps.listen",
                source,
            })?;
        let engine = crate::ingest::trap::engine::Engine::new(snmp_engine_id(&store)?, runs);
        tasks.spawn(crate::ingest::trap::run(
            config.clone(),
            engine,
            socket,
            pipeline.samples.clone(),
            pipeline.metrics.clone(),
            polls.clone(),
            cancel.clone(),
        ));
    }
    if !polls.is_empty() {
        tasks.spawn(crate::ingest::snmp::run(
            config.clone(),
            pipeline.samples.clone(),
            pipeline.metrics.clone(),
            polls,
            speeds,
            cancel.clone(),
        ));
    }
    if let Some(period) = sd_notify::watchdog_enabled() {
        tasks.spawn(watchdog(period / 2, cancel.clone()));
    }
    tasks.close();

    ready.store(true, Ordering::Relaxed);
    notify(&[NotifyState::Ready]);
    tracing::info!(http = %bound, config = %source, "noctua ready");

    let mut current = config;
    loop {
        tokio::select! {
            _ = sigterm.recv() => { tracing::info!("SIGTERM: stopping"); break; }
            _ = sigint.recv() => { tracing::info!("SIGINT: stopping"); break; }
            _ = sighup.recv() => {
                match NotifyState::monotonic_usec_now() {
                    Ok(now) => notify(&[NotifyState::Reloading, now]),
                    Err(_) => notify(&[NotifyState::Reloading]),
                }
                current = reload(&source, current, &pipeline);
                notify(&[NotifyState::Ready]);
            }
        }
    }

    notify(&[NotifyState::Stopping]);
    ready.store(false, Ordering::Relaxed);
    cancel.cancel();
    pipeline.drain().await?;
    mark_stop(&store)?;
    // HTTP clients get a moment to finish; a stuck one must not hold up the stop.
    if tokio::time::timeout(Duration::from_millis(500), tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!("http connections still open at shutdown; closing them");
    }
    tracing::info!("stopped cleanly");
    Ok(())
}

/// Re-reads the config; keeps the running one if the new one is invalid.
fn reload(source: &ConfigSource, current: Arc<Config>, pipeline: &Pipeline) -> Arc<Config> {
    match source.load() {
        Ok(new) => {
            let restart_needed = [
                ("store", new.store != current.store),
                ("http", new.http.listen != current.http.listen),
                ("pipeline", new.pipeline != current.pipeline),
                // The collector's exporters, speeds and sockets are fixed at start.
                (
                    "netflow",
                    new.netflow != current.netflow || new.devices != current.devices,
                ),
            ];
            for (section, changed) in restart_needed {
                if changed {
                    tracing::warn!(
                        section,
                        "config reload: [{section}] changes take effect after a restart"
                    );
                }
            }
            let new = Arc::new(new);
            pipeline.reconfigure(new.clone());
            pipeline.metrics.config_reload(Outcome::Ok).inc();
            tracing::info!(config = %source, "config reloaded");
            new
        }
        Err(e) => {
            pipeline.metrics.config_reload(Outcome::Error).inc();
            tracing::error!(config = %source, "config reload refused, keeping the running config:\n{e}");
            current
        }
    }
}

fn mark_start(store: &Store) -> Result<u64, StoreError> {
    let previous: Option<RunRecord> = store.get(Tree::Meta, RUN_RECORD_KEY)?;
    if let Some(p) = &previous
        && p.stopped_at.is_none()
    {
        tracing::warn!(started_at = %p.started_at, "previous run did not stop cleanly; records committed before it ended are intact");
    }
    let runs = previous.map_or(0, |p| p.runs) + 1;
    let record = RunRecord {
        started_at: Timestamp::now(),
        stopped_at: None,
        runs,
    };
    store.put(Tree::Meta, RUN_RECORD_KEY, &record)?;
    store.flush()?;
    Ok(runs)
}

/// The id of noctua's SNMP engine (the one v3 informs are sent to): made at the first start
/// and kept, because senders remember it and the keys they localised to it.
fn snmp_engine_id(store: &Store) -> Result<Vec<u8>, StoreError> {
    if let Some(id) = store.get::<Vec<u8>>(Tree::Meta, SNMP_ENGINE_ID_KEY)? {
        return Ok(id);
    }
    let id = crate::ingest::trap::engine::Engine::new_id();
    store.put(Tree::Meta, SNMP_ENGINE_ID_KEY, &id)?;
    store.flush()?;
    Ok(id)
}

fn mark_stop(store: &Store) -> Result<(), StoreError> {
    if let Some(mut record) = store.get::<RunRecord>(Tree::Meta, RUN_RECORD_KEY)? {
        record.stopped_at = Some(Timestamp::now());
        store.put(Tree::Meta, RUN_RECORD_KEY, &record)?;
    }
    store.flush()
}

async fn watchdog(every: Duration, stop: CancellationToken) {
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = tick.tick() => notify(&[NotifyState::Watchdog]),
            () = stop.cancelled() => return,
        }
    }
}

/// Tells systemd; outside systemd (`NOTIFY_SOCKET` unset) this does nothing.
fn notify(state: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(state) {
        tracing::warn!(error = %e, "cannot notify systemd");
    }
}
