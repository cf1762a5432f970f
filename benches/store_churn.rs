//! What the store grows to while the detection stage saves its state, as the daemon does
//! (`pipeline::detect::save`, a slice at a time, every series once per round), for 100,000
//! warm series (`support/series.rs`), `CHURN_ROUNDS` (36: three hours of 5-minute rounds)
//! rounds, each after one more sample per series. sled writes new versions of pages to its
//! log and reclaims old ones later, so the store grows at first; the question for an operator
//! is where it stops. Prints the store's size after each round and the live bytes it holds,
//! and first the memory the warm series take (the daemon's RSS at 100 k series, less the rest
//! of the daemon).
//!
//! `cargo bench --bench store_churn`; the README records the figures.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test or bench reports

#[path = "support/disk.rs"]
mod disk;
#[path = "support/series.rs"]
mod series;
use disk::dir_bytes;

use noctua::config::Config;
use noctua::detect::Detector;
use noctua::model::{Sample, Timestamp};
use noctua::pipeline::detect::{SAVE_SLICES, restore, save};
use noctua::pipeline::forecast::Forecasts;
use noctua::pipeline::precursor::Recurrences;
use noctua::store::{Store, Tree};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// This process's resident memory, in MB.
fn rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: f64 = status
        .lines()
        .find_map(|l| {
            l.strip_prefix("VmRSS:")?
                .trim()
                .strip_suffix(" kB")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap();
    kb / 1e3
}

fn main() {
    let rounds: usize = std::env::var("CHURN_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(36);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let store = Store::open(&path).unwrap();
    let config = Config::default();
    let mut detector = restore(&config, &store).unwrap();
    let mut forecasts = Forecasts::restore(&config, &store).unwrap();
    let mut recurrences = Recurrences::restore(&config, &store).unwrap();
    let mut samples = series::by_device();
    let before = rss_mb();
    let mut round = 0i64;
    let (mut evaluated, mut predicted) = (Vec::new(), Vec::new());
    let mut step = |detector: &mut Detector, forecasts: &mut Forecasts, round: i64| {
        for (i, s) in samples.iter_mut().enumerate() {
            s.at = Timestamp::from_millis(round * 300_000);
            s.value = 10.0 + ((i as i64 + round) % 7) as f64;
        }
        for chunk in samples.chunks(256) {
            let batch: Vec<&Sample> = chunk.iter().collect();
            detector.step_batch(&batch, &mut evaluated);
            forecasts.step_batch(&batch, |_| true, &mut predicted);
            evaluated.clear();
            predicted.clear();
        }
    };
    // A day of 5-minute samples: the forecasts' day and the detector's buckets are full.
    for _ in 0..288 {
        round += 1;
        step(&mut detector, &mut forecasts, round);
    }
    let with = rss_mb();
    println!(
        "store churn: {} series detected, {} forecast, {rounds} rounds of {SAVE_SLICES} slices",
        series::SERIES,
        forecasts.series()
    );
    println!(
        "RSS: {before:.0} MB with the samples alone, {with:.0} MB with every series warm \
         ({:.0} bytes a series for detection and forecasts)",
        (with - before) * 1e6 / series::SERIES as f64
    );
    for r in 1..=rounds {
        round += 1;
        step(&mut detector, &mut forecasts, round);
        for slice in 0..SAVE_SLICES {
            save(slice, &detector, &mut forecasts, &mut recurrences, &store);
        }
        if r == 1 || r % 6 == 0 {
            println!(
                "round {r:>3}: store {:6.1} MB",
                dir_bytes(&path) as f64 / 1e6
            );
        }
    }
    let live: usize = [Tree::DetectorState, Tree::Forecasts]
        .into_iter()
        .flat_map(|t| store.scan_raw(t).unwrap())
        .map(|(k, v)| k.len() + v.len())
        .sum();
    println!(
        "live state: {:.1} MB ({:.0} bytes a series)",
        live as f64 / 1e6,
        live as f64 / series::SERIES as f64
    );
    drop(store);
    println!("closed: store {:.1} MB", dir_bytes(&path) as f64 / 1e6);
}
