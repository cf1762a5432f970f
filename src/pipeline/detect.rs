//! The detection stage: restores the detector and the forecasts from the store, feeds them
//! batches of samples, forwards their verdicts and the sources' events, in order, to the alarm
//! stage, and saves their state now and then and when it ends.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{mpsc, watch};

use crate::config::Config;
use crate::detect::{Detector, StoredSeries, StoredSeriesV1};
use crate::message::{AlarmInput, Arrived, ComplaintCommand, Ingest};
use crate::model::{Alarm, Sample};
use crate::pipeline::forecast::Forecasts;
use crate::pipeline::precursor::Recurrences;
use crate::pipeline::trace::Traces;
use crate::store::{Store, StoreError, Tree};
use crate::telemetry::Metrics;

/// How often every series' detector and forecast state is saved (and once more, whole, when
/// the stage ends): what a crash can cost is this much learning.
const SAVE_EVERY: Duration = Duration::from_secs(300);
/// The save goes a slice at a time, `SAVE_EVERY / SAVE_SLICES` apart (5 s), each slice one
/// batch per tree: saved whole, 78,000 series held the stage up for seconds (every alarm
/// waiting behind it) and wrote tens of MB to sled's log at once.
pub const SAVE_SLICES: usize = 60;

/// Builds a detector from `config` and the state the store holds. Version 1 state is
/// migrated; state it cannot read (an unknown version, a damaged entry) is skipped, and those
/// series warm up again.
pub fn restore(config: &Config, store: &Store) -> Result<Detector, StoreError> {
    let mut detector = Detector::new(config);
    let (mut restored, mut skipped) = (0usize, 0usize);
    for (key, value) in store.scan_raw(Tree::DetectorState)? {
        let tree = Tree::DetectorState;
        let stored = crate::store::decode::<StoredSeries>(tree, &value)
            .ok()
            .filter(StoredSeries::is_current)
            .or_else(|| {
                crate::store::decode::<StoredSeriesV1>(tree, &value)
                    .ok()?
                    .migrate(&config.anomaly)
            });
        let ok = stored.is_some_and(|stored| detector.import(&key, stored));
        if ok {
            restored += 1;
        } else {
            skipped += 1;
        }
    }
    if restored + skipped > 0 {
        tracing::info!(restored, skipped, "detector state restored");
    }
    for alarm in store.scan::<Alarm>(Tree::ActiveAlarms)? {
        detector.reassert(&alarm);
    }
    Ok(detector)
}

/// Writes slice `slice` (of [`SAVE_SLICES`]) of the series' detector and forecast state, and
/// with the first slice the links' finished days and the precursor counts; failures are
/// logged, and the next round tries again.
pub fn save(
    slice: usize,
    detector: &Detector,
    forecasts: &mut Forecasts,
    recurrences: &mut Recurrences,
    store: &Store,
) {
    let part = |len: usize| len * slice / SAVE_SLICES..len * (slice + 1) / SAVE_SLICES;
    let mut failed = 0;
    if slice == 0 {
        failed += recurrences.save(store);
        for (key, day) in forecasts.take_finished() {
            if store.put_capacity_day(&key, &day).is_err() {
                failed += 1;
            }
        }
    }
    failed += write_states(
        store,
        Tree::DetectorState,
        detector.export(part(detector.series())),
    );
    failed += write_states(
        store,
        Tree::Forecasts,
        forecasts.export(part(forecasts.series())),
    );
    // A failed store has said so once already.
    if failed > 0 && store.failure().is_none() {
        tracing::error!(failed, "detector state not saved for some series");
    }
}

/// Writes `states` to `tree` in one batch; returns how many were not written.
fn write_states<T: Serialize>(
    store: &Store,
    tree: Tree,
    states: impl Iterator<Item = (Vec<u8>, T)>,
) -> usize {
    let (keys, values): (Vec<Vec<u8>>, Vec<T>) = states.unzip();
    match store.write_batch(tree, keys.into_iter().zip(values.iter().map(Some))) {
        Ok(_) => 0,
        Err(_) => values.len(),
    }
}

/// Every slice at once: when the stage ends.
fn save_all(
    detector: &Detector,
    forecasts: &mut Forecasts,
    recurrences: &mut Recurrences,
    store: &Store,
) {
    for slice in 0..SAVE_SLICES {
        save(slice, detector, forecasts, recurrences, store);
    }
}

/// The detection task: runs until the sample channel closes, then saves its state and drops its
/// verdict sender so the alarm stage drains and ends in turn.
pub async fn run_stage(
    (mut detector, mut forecasts, mut recurrences): (Detector, Forecasts, Recurrences),
    mut samples: mpsc::Receiver<Arrived>,
    verdicts: mpsc::Sender<AlarmInput>,
    mut config: watch::Receiver<Arc<Config>>,
    store: Store,
    metrics: Arc<Metrics>,
) {
    let mut batch = Vec::with_capacity(256);
    let mut results = Vec::with_capacity(256);
    let mut predictions = Vec::with_capacity(256);
    let mut traces = Traces::new(&config.borrow().anomaly);
    let mut save_timer = tokio::time::interval(SAVE_EVERY / SAVE_SLICES as u32);
    save_timer.tick().await;
    let mut slice = 0;
    loop {
        let n = tokio::select! {
            n = samples.recv_many(&mut batch, 256) => n,
            _ = save_timer.tick() => {
                save(slice, &detector, &mut forecasts, &mut recurrences, &store);
                slice = (slice + 1) % SAVE_SLICES;
                continue;
            }
        };
        if n == 0 {
            save_all(&detector, &mut forecasts, &mut recurrences, &store);
            return;
        }
        if config.has_changed().unwrap_or(false) {
            let config = config.borrow_and_update();
            detector.reconfigure(&config);
            forecasts.reconfigure(&config);
            recurrences.reconfigure(&config);
            traces.reconfigure(&config.anomaly);
        }
        let samples: Vec<&Sample> = batch
            .iter()
            .filter_map(|a| match &a.item {
                Ingest::Sample(sample) => Some(sample),
                _ => None,
            })
            .collect();
        metrics.detect_samples.inc_by(samples.len() as u64);
        detector.step_batch(&samples, &mut results);
        metrics.detect_series.set(detector.series() as i64);
        let ok = |i: usize| results.get(i).is_some_and(Result::is_ok);
        forecasts.step_batch(&samples, ok, &mut predictions);
        drop(samples);
        let mut evaluated = results.drain(..);
        let mut predicted = predictions.drain(..);
        for Arrived { item, at: arrived } in batch.drain(..) {
            let out = match item {
                Ingest::Sample(sample) => {
                    // One result and one prediction per sample.
                    let said = predicted.next().into_iter().flatten().flatten();
                    match evaluated.next() {
                        Some(Ok(evaluation)) => {
                            if let Some(score) = &evaluation.anomaly {
                                traces.note(&sample.series, sample.at, score.score);
                            }
                            for mut v in evaluation.verdicts.into_iter().chain(said) {
                                traces.attach(&mut v);
                                metrics
                                    .detect_verdicts
                                    .with_label_values(&[v.severity.name()])
                                    .inc();
                                // Inside the pipeline we wait rather than drop: only ingest
                                // may shed load.
                                if verdicts
                                    .send(AlarmInput::Verdict(v, arrived))
                                    .await
                                    .is_err()
                                {
                                    return;
                                }
                            }
                        }
                        Some(Err(reason)) => {
                            metrics.rejection(reason).inc();
                        }
                        None => {}
                    }
                    continue;
                }
                Ingest::Event(e) => {
                    let degraded = recurrences.on_event(&e);
                    if verdicts.send(AlarmInput::Event(e, arrived)).await.is_err() {
                        return;
                    }
                    match degraded {
                        Some(v) => AlarmInput::Verdict(v, arrived),
                        None => continue,
                    }
                }
                Ingest::Tick(t) => {
                    traces.sweep(t);
                    for v in recurrences.on_tick(t) {
                        if verdicts
                            .send(AlarmInput::Verdict(v, arrived))
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                    AlarmInput::Tick(t)
                }
                Ingest::Ack(a) => AlarmInput::Ack(a),
                Ingest::Complaint(c) => {
                    // Nobody waits for a replayed complaint's answer; a refused one (a
                    // duplicate id, an unknown customer) is logged by the alarm stage.
                    let (reply, _) = tokio::sync::oneshot::channel();
                    let at = c.received_at;
                    AlarmInput::Complaint(ComplaintCommand::Receive(c, at), reply)
                }
            };
            if verdicts.send(out).await.is_err() {
                return;
            }
        }
    }
}
