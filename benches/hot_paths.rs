//! Per-sample detection, per-verdict alarm updates, and the store's per-transition cost.
//! Run with `cargo bench --bench hot_paths`; the README records the figures.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test or bench reports

use std::hint::black_box;

/// The same allocator as the `noctua` binary, so the figures are the daemon's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use noctua::alarm::AlarmManager;
use noctua::config::Config;
use noctua::detect::Detector;
use noctua::message::Verdict;
use noctua::model::{Category, Metric, Sample, SeriesKey, Severity, Timestamp};
use noctua::store::{Store, Tree, encode};

fn series(i: usize) -> SeriesKey {
    SeriesKey {
        device: format!("r{}", i / 48),
        object: format!("ifIndex={}", i % 48),
        metric: Metric::UtilisationInPct,
    }
}

fn detect(c: &mut Criterion) {
    // 10,000 series, steady values under every level: the common case is "no verdict".
    let samples: Vec<Sample> = (0..10_000)
        .map(|i| Sample {
            series: series(i),
            at: Timestamp::from_millis(0),
            value: 40.0 + (i % 20) as f64,
            context: None,
        })
        .collect();
    let mut g = c.benchmark_group("detect");
    g.throughput(Throughput::Elements(samples.len() as u64));
    g.bench_function("threshold_step_10k_series_quiet", |b| {
        let mut c = Config::default();
        c.anomaly.enabled = false;
        let mut d = Detector::new(&c);
        let mut samples = samples.clone();
        let mut t = 0;
        let mut out = Vec::with_capacity(256);
        b.iter(|| {
            // Each round is a new poll: later times, or every sample would be a duplicate.
            t += 1;
            for s in &mut samples {
                s.at = Timestamp::from_millis(t);
            }
            // In batches, as the detection stage feeds the detector.
            for chunk in samples.chunks(256) {
                let batch: Vec<&Sample> = chunk.iter().collect();
                d.step_batch(&batch, &mut out);
                black_box(&out);
                out.clear();
            }
        })
    });
    g.finish();
}

fn verdicts(n: usize) -> Vec<Verdict> {
    let tiers = [
        Severity::Warning,
        Severity::Major,
        Severity::Critical,
        Severity::Cleared,
    ];
    (0..n)
        .map(|i| Verdict {
            series: series(i % 500),
            at: Timestamp::from_millis(i as i64),
            condition: "utilisation_in_pct_threshold".into(),
            severity: tiers[(i / 500) % tiers.len()],
            category: Category::Performance,
            threshold: None,
            text: "utilisation_in_pct at 91 is above the major level 90".into(),
        })
        .collect()
}

fn alarm(c: &mut Criterion) {
    let input = verdicts(2_000);
    let mut g = c.benchmark_group("alarm");
    g.throughput(Throughput::Elements(input.len() as u64));
    g.bench_function("on_verdict_500_keys", |b| {
        b.iter_batched(
            || input.clone(),
            |vs| {
                let mut m = AlarmManager::new(&config());
                for v in vs {
                    black_box(m.on_verdict(v));
                }
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn store(c: &mut Criterion) {
    let mut m = AlarmManager::new(&config());
    let transitions: Vec<_> = verdicts(2_000)
        .into_iter()
        .flat_map(|v| m.on_verdict(v))
        .collect();
    let mut g = c.benchmark_group("store");
    g.throughput(Throughput::Elements(1));
    g.bench_function("encode_alarm_event", |b| {
        let e = &transitions[0].event;
        b.iter(|| black_box(encode(Tree::Journal, e)))
    });
    g.throughput(Throughput::Elements(transitions.len() as u64));
    g.bench_function("commit_one_per_transaction_no_flush", |b| {
        b.iter_batched(
            fresh_store,
            |(_dir, store)| {
                for t in &transitions {
                    store
                        .commit_transitions(std::slice::from_ref(t))
                        .expect("commit");
                }
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("commit_batches_of_1024_no_flush", |b| {
        b.iter_batched(
            fresh_store,
            |(_dir, store)| {
                for batch in transitions.chunks(1024) {
                    store.commit_transitions(batch).expect("commit");
                }
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

/// An alarm storm over 100,000 series: every series raises, then every series clears; verdicts
/// go through the manager and are committed in batches of 1,024, each batch flushed to disk
/// before the next (what the alarm stage does with group commit).
fn storm(c: &mut Criterion) {
    let n = 100_000;
    let mk = |i: usize, severity: Severity| Verdict {
        series: SeriesKey {
            device: format!("bs{}", i / 16),
            object: format!("cell={}", i % 16),
            metric: Metric::LatencyMs,
        },
        at: Timestamp::from_millis(i as i64),
        condition: "latency_ms_threshold".into(),
        severity,
        category: Category::Performance,
        threshold: None,
        text: "latency_ms at 612 is above the critical level 500".into(),
    };
    let input: Vec<Verdict> = (0..n)
        .map(|i| mk(i, Severity::Critical))
        .chain((0..n).map(|i| mk(i, Severity::Cleared)))
        .collect();
    let mut g = c.benchmark_group("storm");
    g.sample_size(10);
    g.throughput(Throughput::Elements(input.len() as u64));
    g.bench_function("durable_transitions_100k_series", |b| {
        b.iter_batched(
            || {
                let (dir, store) = fresh_store();
                (dir, store, input.clone())
            },
            |(dir, store, verdicts)| {
                let mut m = AlarmManager::new(&config());
                for chunk in verdicts.chunks(1024) {
                    let batch: Vec<_> =
                        chunk.iter().flat_map(|v| m.on_verdict(v.clone())).collect();
                    store.commit_transitions(&batch).expect("commit");
                    store.flush().expect("flush");
                }
                // Returned, so closing the store and deleting its directory happen outside
                // the timing (criterion drops outputs after measuring).
                (dir, store)
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("manager_only_100k_series", |b| {
        b.iter_batched(
            || input.clone(),
            |verdicts| {
                let mut m = AlarmManager::new(&config());
                let mut n = 0;
                for chunk in verdicts.chunks(1024) {
                    let batch: Vec<_> =
                        chunk.iter().flat_map(|v| m.on_verdict(v.clone())).collect();
                    n += batch.len();
                }
                n
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("commit_only_100k_series", |b| {
        let mut m = AlarmManager::new(&config());
        let batches: Vec<Vec<_>> = input
            .chunks(1024)
            .map(|c| c.iter().flat_map(|v| m.on_verdict(v.clone())).collect())
            .collect();
        b.iter_batched(
            fresh_store,
            |(dir, store)| {
                for batch in &batches {
                    store.commit_transitions(batch).expect("commit");
                }
                (dir, store)
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

/// An empty store in a directory that lives as long as the returned guard.
fn fresh_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("store");
    (dir, store)
}

/// Clears at once so every verdict is a transition.
fn config() -> Config {
    let mut c = Config::default();
    c.alarms.clear_hold_down = std::time::Duration::ZERO;
    c
}

criterion_group!(benches, detect, alarm, store, storm);
criterion_main!(benches);
