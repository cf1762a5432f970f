//! Wires the stages together and owns start-up, reload and shutdown.
//!
//! Start: open the store, bind every socket, restore alarm state, spawn the stages, then tell
//! systemd `READY=1`. Stop (SIGTERM/SIGINT): ingest stops, each stage ends when its input
//! channel closes (so the pipeline drains in order), the flusher makes the last commits durable,
//! and the run marker records a clean stop. SIGHUP re-reads the config; a bad one is refused and
//! the running one stays.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sd_notify::NotifyState;
use serde::{Deserialize, Serialize};
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Config, ConfigError, ConfigSource};
use crate::message::Clock;
use crate::model::Timestamp;
use crate::pipeline::Pipeline;
use crate::pipeline::edges::{self, EdgeError};
use crate::pipeline::replay::Speed;
use crate::store::{Store, StoreError, Tree};
use crate::telemetry::Outcome;

/// Exit status when the store has failed (EX_TEMPFAIL): the service manager restarts noctua,
/// which reopens the store and carries on from what was flushed.
pub const EXIT_STORE_FAILED: u8 = 75;
/// How long a stop may take from the signal: the pipeline drains and the store is flushed
/// inside it, or what is still queued is left (uncommitted, so nothing was published of it).
const STOP_WITHIN: Duration = Duration::from_millis(1500);
/// What HTTP clients get after that to finish their request.
const HTTP_GRACE: Duration = Duration::from_millis(300);

/// Meta key of the [`RunRecord`].
pub const RUN_RECORD_KEY: &[u8] = b"last_run";

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
    /// An edge (a listener, a source) could not start.
    #[error(transparent)]
    Edge(#[from] EdgeError),
    /// The ready file could not be written.
    #[error("cannot write the ready file: {0}")]
    ReadyFile(std::io::Error),
    /// Signal handlers could not be installed.
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
    /// The config is invalid (the message names file, line and key).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The async runtime could not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    /// The demo's history could not be replayed into its store.
    #[error("cannot replay the demo's history: {0}")]
    DemoHistory(#[from] crate::pipeline::replay::ReplayError),
    /// A stage's thread could not be started.
    #[error(transparent)]
    Thread(#[from] crate::pipeline::thread::ThreadError),
    /// The stop did not finish within [`STOP_WITHIN`].
    #[error("the pipeline did not drain within {STOP_WITHIN:?}; stopped with work still queued")]
    StopTimeout,
}

/// A store failure stays a store failure (its exit code says a restart recovers).
impl From<crate::pipeline::PipelineError> for DaemonError {
    fn from(e: crate::pipeline::PipelineError) -> Self {
        match e {
            crate::pipeline::PipelineError::Store(e) => Self::Store(e),
            crate::pipeline::PipelineError::Thread(e) => Self::Thread(e),
        }
    }
}

impl DaemonError {
    /// The exit status: [`EXIT_STORE_FAILED`] when the store cannot be written (a restart
    /// recovers once there is space), 2 for a bad config, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            DaemonError::Store(StoreError::Sled { .. } | StoreError::Failed { .. }) => {
                EXIT_STORE_FAILED
            }
            DaemonError::Config(_) => 2,
            _ => 1,
        }
    }
}

/// No transparent huge pages for the daemon. mimalloc asks for them on its arenas, and a 2 MB
/// page holding a few live objects counts whole in the resident set: at 10,000 devices half of
/// the daemon's RSS was huge pages (README, "The whole daemon at fleet scale").
#[allow(unsafe_code)] // one system call
fn no_huge_pages() {
    // SAFETY: PR_SET_THP_DISABLE takes integers only and touches no memory of ours.
    let refused = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) } != 0;
    if refused {
        tracing::debug!(error = %std::io::Error::last_os_error(), "transparent huge pages stay on");
    }
}

/// `noctua run`: the config by the lookup order (`flag`, `$NOCTUA_CONFIG`, /etc, embedded),
/// then the daemon on a multi-threaded runtime until SIGTERM or SIGINT.
pub fn start(flag: Option<PathBuf>, ready_file: Option<&Path>) -> Result<(), DaemonError> {
    no_huge_pages();
    let source = ConfigSource::from_environment(flag);
    let config = source.load()?;
    tracing::info!(config = %source, "config loaded");
    let runtime = tokio::runtime::Runtime::new().map_err(DaemonError::Runtime)?;
    let ran = runtime.block_on(run(source, config, ready_file));
    ran.inspect_err(|e| tracing::error!("{e}"))
}

/// `noctua demo`: the daemon on the embedded default plus the simulated network, with a
/// fresh store and token in a temporary directory (removed at the end) unless `store` is
/// given. Prints where to look; the token goes to a 0600 file, never to the log.
pub fn demo(
    store: Option<PathBuf>,
    listen: std::net::SocketAddr,
    ready_file: Option<&Path>,
) -> Result<(), DaemonError> {
    let scratch = tempfile::Builder::new()
        .prefix("noctua-demo-")
        .tempdir()
        .map_err(DaemonError::Runtime)?;
    let token_file = scratch.path().join("http.token");
    write_token(&token_file).map_err(DaemonError::Runtime)?;
    let setup = crate::config::DemoSetup {
        store: store.unwrap_or_else(|| scratch.path().join("store")),
        token_file: token_file.clone(),
        listen,
    };
    let source = ConfigSource::Demo(setup);
    let config = source.load()?;
    let http = config.http.listen;
    println!(
        "noctua demo: a simulated network of {} devices; the first alarms come within 20 s.\n\
         console    http://{http}/   (dashboard: /dashboard, capacity: /capacity)\n\
         token      {} (paste it into the console to ack and clear)\n\
         alarms     noctua alarms tail --server http://{http}\n\
         metrics    curl -s http://{http}/metrics\n\
         Ctrl-C stops it{}.",
        config.devices.len(),
        token_file.display(),
        if config.store.path.starts_with(scratch.path()) {
            " and removes the temporary store"
        } else {
            ""
        },
    );
    let runtime = tokio::runtime::Runtime::new().map_err(DaemonError::Runtime)?;
    let ran = runtime.block_on(run(source, config, ready_file));
    ran.inspect_err(|e| tracing::error!("{e}"))
}

/// A random token in a file only its owner reads.
fn write_token(path: &Path) -> std::io::Result<()> {
    use std::io::{Read as _, Write as _};
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut bytes = [0u8; 24];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    writeln!(f, "{token}")
}

/// Runs the daemon until SIGTERM or SIGINT; once every socket is bound and the pipeline runs,
/// the bound addresses go to the log and, if given, to `ready_file` as JSON.
pub async fn run(
    source: ConfigSource,
    config: Config,
    ready_file: Option<&Path>,
) -> Result<(), DaemonError> {
    let state_dir = std::env::var_os("STATE_DIRECTORY").map(PathBuf::from);
    let store_path = config.store.resolved_path(state_dir.as_deref());
    let store = Store::open(&store_path)?;
    let runs = mark_start(&store)?;
    tracing::info!(path = %store_path.display(), runs, "store open");

    if config.http.token.is_none() {
        tracing::warn!("no http.token configured: write endpoints are disabled");
    }

    let mut sigterm = signal(SignalKind::terminate()).map_err(DaemonError::Signals)?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(DaemonError::Signals)?;
    let mut sighup = signal(SignalKind::hangup()).map_err(DaemonError::Signals)?;

    let config = Arc::new(config);
    if matches!(source, ConfigSource::Demo(_)) && store.is_empty(Tree::Forecasts) {
        // The demo starts with a month of its links' history, replayed on the data clock
        // as `noctua replay` would, so capacity and forecasts have something to show.
        let history = crate::ingest::demo::history(Timestamp::now());
        crate::pipeline::replay::run(config.clone(), store.clone(), history, Speed::Max).await?;
    }
    let pipeline = Pipeline::start(config.clone(), store.clone(), Clock::Wall)?;
    let cancel = CancellationToken::new();
    let tasks = TaskTracker::new();
    let ready = Arc::new(AtomicBool::new(false));
    let process = edges::Process {
        ready: ready.clone(),
        cancel: &cancel,
        runs,
    };
    // A failure once the pipeline runs (a socket, the ready file) still stops in order, so
    // the store is drained, flushed and marked; the error is the exit status.
    let mut failed = match edges::start(&config, &store, &pipeline, process, &tasks).await {
        Err(e) => Some(DaemonError::from(e)),
        Ok(bound) => {
            if matches!(source, ConfigSource::Demo(_)) {
                let doors = crate::pipeline::demo::Doors {
                    samples: pipeline.samples.clone(),
                    netflow: bound.netflow.first().copied(),
                    http: bound.http,
                    token: config.http.token.as_ref().map(|t| t.expose().to_owned()),
                };
                tasks.spawn(crate::pipeline::demo::run(doors, cancel.clone()));
            }
            let netflow: Vec<String> = bound.netflow.iter().map(ToString::to_string).collect();
            let traps = bound.traps.map(|t| t.to_string());
            tracing::info!(http = %bound.http, netflow = ?netflow, traps = ?traps, config = %source, "noctua ready");
            ready_file
                .and_then(|path| write_ready_file(path, &bound).err())
                .map(DaemonError::ReadyFile)
        }
    };
    if let Some(period) = sd_notify::watchdog_enabled() {
        tasks.spawn(watchdog(period / 2, cancel.clone()));
    }
    tasks.close();

    let store_failed = store.failed();
    if failed.is_none() {
        ready.store(true, Ordering::Relaxed);
        notify(&[NotifyState::Ready]);
        let mut current = config;
        loop {
            tokio::select! {
                _ = sigterm.recv() => { tracing::info!("SIGTERM: stopping"); break; }
                _ = sigint.recv() => { tracing::info!("SIGINT: stopping"); break; }
                () = store_failed.cancelled() => {
                    let reason = store.failure().unwrap_or_default().to_owned();
                    failed = Some(StoreError::Failed { reason }.into());
                    break;
                }
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
    }

    notify(&[NotifyState::Stopping]);
    ready.store(false, Ordering::Relaxed);
    cancel.cancel();
    let stopped = match tokio::time::timeout(STOP_WITHIN, pipeline.drain()).await {
        Ok(drained) => drained
            .and_then(|()| mark_stop(&store))
            .map_err(DaemonError::from),
        Err(_) => Err(DaemonError::StopTimeout),
    };
    // HTTP clients get a moment to finish; a stuck one must not hold up the stop.
    if tokio::time::timeout(HTTP_GRACE, tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!("http connections still open at shutdown; closing them");
    }
    // The first failure is the one to report: a failed store also fails the drain's flush.
    match failed.map_or(stopped, Err) {
        Err(e) => Err(e),
        Ok(()) => {
            tracing::info!("stopped cleanly");
            Ok(())
        }
    }
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

/// Writes the bound addresses as JSON, all at once (a reader never sees half a file).
fn write_ready_file(path: &Path, bound: &edges::Bound) -> std::io::Result<()> {
    let temp = path.with_extension("tmp");
    std::fs::write(&temp, serde_json::to_vec(bound)?)?;
    std::fs::rename(&temp, path)
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
