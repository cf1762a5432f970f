//! Detection cost across 100,000 series with realistic state access: each round polls every
//! series once, in a fixed shuffled order, so the state is spread over the whole map rather
//! than one hot series. Thresholds and the anomaly detector both run. Prints the state size.
//! Run with `cargo bench --bench detect`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use noctua::config::Config;
use noctua::detect::Detector;
use noctua::model::{Metric, Sample, SeriesKey, Timestamp};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SERIES: usize = 100_000;

fn samples() -> Vec<Sample> {
    let metrics = [Metric::LatencyMs, Metric::UtilisationInPct, Metric::LossPct];
    let mut order: Vec<usize> = (0..SERIES).collect();
    // A fixed permutation (multiplicative hashing), so access hops around the map.
    order.sort_by_key(|i| (i.wrapping_mul(2_654_435_761)) % 1_000_003);
    order
        .into_iter()
        .map(|i| Sample {
            series: SeriesKey {
                device: format!("bs{}", i / 20),
                object: format!("ifIndex={}", i % 20),
                metric: metrics[i % 3],
            },
            at: Timestamp::from_millis(0),
            value: 10.0 + (i % 7) as f64,
            context: None,
        })
        .collect()
}

fn detect(c: &mut Criterion) {
    let mut samples = samples();
    let mut d = Detector::new(&Config::default());
    let mut round = 0i64;
    // Warm the state: two days of five-minute polls would be 576 rounds; 30 are enough for
    // every bucket touched here to hold state.
    for _ in 0..30 {
        round += 1;
        for s in &mut samples {
            s.at = Timestamp::from_millis(round * 300_000);
            let _ = d.step(s);
        }
    }
    let mut g = c.benchmark_group("detect");
    g.throughput(Throughput::Elements(SERIES as u64));
    g.sample_size(20);
    g.bench_function("step_100k_series_thresholds_and_anomaly", |b| {
        b.iter(|| {
            round += 1;
            for s in &mut samples {
                s.at = Timestamp::from_millis(round * 300_000);
                s.value += 0.001;
                let _ = black_box(d.step(s));
            }
        })
    });
    g.finish();
}

criterion_group!(benches, detect);
criterion_main!(benches);
