//! Detection cost across 100,000 series (5,000 devices × 20), thresholds and the anomaly
//! detector both running, every series warm. Two access patterns, neither one hot series:
//! - `by_device`: devices in a shuffled order, each device's series together, as a poll or a
//!   flow interval delivers them (the daemon's case);
//! - `shuffled`: every series in a random order (the worst case: every sample a cache miss).
//!
//! Then the forecasts kept beside the detector, by device.
//!
//! Run with `cargo bench --bench detect`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test or bench reports

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use noctua::config::Config;
use noctua::detect::Detector;
use noctua::model::{Sample, Timestamp};
use noctua::pipeline::forecast::Forecasts;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "support/series.rs"]
mod series;
use series::{SERIES, by_device, sample, shuffled};

/// The detection stage's batch (`recv_many` limit in `pipeline::detect::run_stage`).
const BATCH: usize = 256;

fn every_series_shuffled() -> Vec<Sample> {
    shuffled(SERIES).into_iter().map(sample).collect()
}

fn run(c: &mut Criterion, name: &str, mut samples: Vec<Sample>) {
    // A two-hour season of 24 buckets, so every bucket sees a five-minute poll and the whole
    // anomaly path (profile, weekday offset, local level and the calibrated tail) is warm
    // after about 500 rounds instead of the two days a daily season takes; the work per
    // sample is the same.
    let mut config = Config::default();
    config.anomaly.season = std::time::Duration::from_secs(7200);
    let mut d = Detector::new(&config);
    let mut round = 0i64;
    let mut out = Vec::with_capacity(BATCH);
    for _ in 0..520 {
        round += 1;
        for s in &mut samples {
            s.at = Timestamp::from_millis(round * 300_000);
        }
        for chunk in samples.chunks(BATCH) {
            let batch: Vec<&Sample> = chunk.iter().collect();
            d.step_batch(&batch, &mut out);
            out.clear();
        }
    }
    round += 1;
    samples[0].at = Timestamp::from_millis(round * 300_000);
    let warm = d.step(&samples[0]).unwrap().anomaly.is_some_and(|a| a.warm);
    assert!(warm, "the bench must measure warm series");
    let mut g = c.benchmark_group("detect");
    g.throughput(Throughput::Elements(SERIES as u64));
    g.sample_size(20);
    g.bench_function(name, |b| {
        b.iter(|| {
            round += 1;
            for s in &mut samples {
                s.at = Timestamp::from_millis(round * 300_000);
                s.value += 0.001;
            }
            // As the daemon's detection stage: batches of what one channel receive returns.
            for chunk in samples.chunks(BATCH) {
                let batch: Vec<&Sample> = chunk.iter().collect();
                d.step_batch(&batch, &mut out);
                black_box(&out);
                out.clear();
            }
        })
    });
    g.finish();
}

/// The forecasts the detection stage keeps beside the detector (`pipeline::forecast`): one
/// busy-hour forecaster per series, a prediction judged once a series' day.
fn forecast(c: &mut Criterion) {
    let mut samples = by_device();
    let mut f = Forecasts::new(&Config::default());
    let mut out = Vec::with_capacity(BATCH);
    let mut round = 0i64;
    let mut g = c.benchmark_group("forecast");
    g.throughput(Throughput::Elements(SERIES as u64));
    g.sample_size(20);
    g.bench_function("step_100k_series_by_device", |b| {
        b.iter(|| {
            round += 1;
            for s in &mut samples {
                s.at = Timestamp::from_millis(round * 300_000);
            }
            for chunk in samples.chunks(BATCH) {
                let batch: Vec<&Sample> = chunk.iter().collect();
                f.step_batch(&batch, |_| true, &mut out);
                black_box(&out);
                out.clear();
            }
        })
    });
    g.finish();
}

fn detect(c: &mut Criterion) {
    run(c, "step_100k_series_by_device", by_device());
    run(c, "step_100k_series_shuffled", every_series_shuffled());
    forecast(c);
}

criterion_group!(benches, detect);
criterion_main!(benches);
