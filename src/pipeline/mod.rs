//! Wiring: the stage tasks and the channels between them, as in the data-flow picture.
//!
//! [`Pipeline::start`] restores detection, the alarm manager and the action planner from the
//! store and spawns detect → alarm → action runner with the store's flusher (detect, alarm
//! and the flusher each on a thread of its own, [`thread`]); the daemon adds the live sources and northbound
//! around it, replay feeds it from files. Each stage ends when its input channel closes, so
//! [`Pipeline::drain`] stops in data order.

pub mod action;
pub mod alarm;
pub mod demo;
pub mod detect;
pub mod edges;
pub mod forecast;
pub mod precursor;
pub mod replay;
pub mod thread;
pub mod trace;

use std::sync::Arc;

use tokio::sync::{broadcast, mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::impact::ImpactView;
use crate::ingest::SampleSink;
use crate::message::{AlarmInput, Arrived, Clock, Commander};
use crate::model::{AlarmEvent, ServiceState, Timestamp};
use crate::store::{Store, StoreError};
use crate::telemetry::{Metrics, Outcome};

/// The running stages' shared handles, for callers that feed or watch the pipeline (tests,
/// and the ingest sources of later issues).
pub struct Pipeline {
    /// Where ingest offers samples.
    pub samples: SampleSink,
    /// Committed, durable alarm transitions, suppressed ones (`notified: false`) included.
    pub events: broadcast::Sender<AlarmEvent>,
    /// Committed, durable service state changes.
    pub services: broadcast::Sender<ServiceState>,
    /// What the customer lookup reads, as of the last committed batch.
    pub impact: watch::Receiver<Arc<ImpactView>>,
    /// Metrics of every stage.
    pub metrics: Arc<Metrics>,
    /// Engineers' commands (the HTTP API).
    pub commander: Commander,
    /// The first sequence number this pipeline can hand out.
    pub first_seq: u64,
    alarm_inputs: mpsc::Sender<AlarmInput>,
    config: watch::Sender<Arc<Config>>,
    stages: TaskTracker,
    flusher: tokio::task::JoinHandle<()>,
    flush_stop: CancellationToken,
    store: Store,
}

/// Why the pipeline did not start.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The store could not give a stage its state.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stage's thread could not be started.
    #[error(transparent)]
    Thread(#[from] thread::ThreadError),
}

impl Pipeline {
    /// Starts detection, the alarm manager and the store flusher on `store`.
    pub fn start(config: Arc<Config>, store: Store, clock: Clock) -> Result<Self, PipelineError> {
        let metrics = Arc::new(Metrics::new());
        store.count_errors_in(metrics.store_errors.clone());
        let manager = alarm::load_manager(&config, &store, Timestamp::now())?;
        let detector = detect::restore(&config, &store)?;
        let forecasts = forecast::Forecasts::restore(&config, &store)?;
        let recurrences = precursor::Recurrences::restore(&config, &store)?;
        let engine = alarm::load_impact(&config, &store, &manager)?;
        // A replay (the data clock) plans every action as a dry run: it never runs anything.
        let (order_tx, order_rx) = mpsc::unbounded_channel();
        let (report_tx, report_rx) = mpsc::channel(64);
        let handling = action::Handling::load(
            &config,
            &store,
            &manager,
            clock == Clock::Wall,
            order_tx,
            report_rx,
        )?;
        let (impact_tx, impact) = watch::channel(Arc::new(engine.view()));
        let first_seq = manager.last_seq() + 1;
        let (sample_tx, sample_rx) = mpsc::channel::<Arrived>(config.pipeline.sample_queue);
        let (alarm_tx, alarm_rx) = mpsc::channel::<AlarmInput>(config.pipeline.verdict_queue);
        let (events, _) = broadcast::channel(1024);
        let (services, _) = broadcast::channel(256);
        let (config_tx, config_rx) = watch::channel(config.clone());
        let flush_stop = CancellationToken::new();
        // Its own thread too: every commit waits for it, and on the shared workers a burst of
        // polls and live-stream fan-out held it up for seconds after a storm.
        let flusher = {
            let m = metrics.clone();
            let flush = store.clone().run_flusher(
                config.store.flush_interval,
                flush_stop.clone(),
                move |r| {
                    let outcome = if r.ok { Outcome::Ok } else { Outcome::Error };
                    m.store_flush(outcome).inc();
                    m.store_flush_seconds.observe(r.took.as_secs_f64());
                },
            );
            tokio::spawn(thread::on_own_thread("flush", || flush)?)
        };
        let stages = TaskTracker::new();
        let detect = detect::run_stage(
            (detector, forecasts, recurrences),
            sample_rx,
            alarm_tx.clone(),
            config_rx.clone(),
            store.clone(),
            metrics.clone(),
        );
        stages.spawn(thread::on_own_thread("detect", || detect)?);
        stages.spawn(action::run(
            order_rx,
            report_tx,
            config_rx.clone(),
            metrics.clone(),
        ));
        let alarm = alarm::run_stage(
            manager,
            engine,
            handling,
            alarm_rx,
            store.clone(),
            alarm::Published {
                events: events.clone(),
                services: services.clone(),
                impact: impact_tx,
            },
            config_rx,
            metrics.clone(),
            clock,
        );
        stages.spawn(thread::on_own_thread("alarm", || alarm)?);
        stages.close();
        Ok(Self {
            samples: SampleSink::new(sample_tx, metrics.clone()),
            commander: Commander::new(&alarm_tx),
            first_seq,
            alarm_inputs: alarm_tx,
            events,
            services,
            impact,
            metrics,
            config: config_tx,
            stages,
            flusher,
            flush_stop,
            store,
        })
    }

    /// Hands a new config to the stages that can take it live.
    pub fn reconfigure(&self, config: Arc<Config>) {
        self.config.send_replace(config);
    }

    /// Follows the config the stages run on.
    pub fn config(&self) -> watch::Receiver<Arc<Config>> {
        self.config.subscribe()
    }

    /// Where the alarm stage takes its inputs (the cluster's handovers); a holder must let go
    /// when the daemon stops, or the stage never drains.
    pub fn alarm_inputs(&self) -> mpsc::Sender<AlarmInput> {
        self.alarm_inputs.clone()
    }

    /// Stops accepting samples, lets every stage drain in order, then makes everything durable.
    pub async fn drain(self) -> Result<(), StoreError> {
        drop(self.samples);
        drop(self.alarm_inputs);
        self.stages.wait().await;
        self.flush_stop.cancel();
        // The flusher only ends by itself; a panic in it would already have aborted the process.
        let _ = self.flusher.await;
        self.store.flush()
    }
}
