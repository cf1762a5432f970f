//! 100,000 series as 5,000 devices × 20 (latency, utilisation and loss in turn), shared by
//! the detection bench and the store-churn bench.

use noctua::model::{Metric, Sample, SeriesKey, Timestamp};

pub const SERIES: usize = 100_000;
pub const PER_DEVICE: usize = 20;

/// A fixed permutation (multiplicative hashing) of `0..n`.
pub fn shuffled(n: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|i| (i.wrapping_mul(2_654_435_761)) % 1_000_003);
    order
}

pub fn sample(i: usize) -> Sample {
    let metrics = [Metric::LatencyMs, Metric::UtilisationInPct, Metric::LossPct];
    Sample {
        series: SeriesKey {
            device: format!("bs{}", i / PER_DEVICE),
            object: format!("ifIndex={}", i % PER_DEVICE),
            metric: metrics[i % 3],
        },
        at: Timestamp::from_millis(0),
        value: 10.0 + (i % 7) as f64,
        context: None,
    }
}

/// Every series once, devices in a shuffled order, each device's series together (as a poll
/// or a flow interval delivers them).
pub fn by_device() -> Vec<Sample> {
    shuffled(SERIES / PER_DEVICE)
        .into_iter()
        .flat_map(|d| (d * PER_DEVICE..(d + 1) * PER_DEVICE).map(sample))
        .collect()
}
