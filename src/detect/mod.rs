//! Detection: samples in, verdicts out, with per-series state.
//!
//! [`Detector::step`] is pure (time comes with the sample); [`run_stage`] is the thin task that
//! feeds it from the sample channel. This engine is tiered thresholds; the anomaly
//! detector joins it here.

pub mod threshold;

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::{mpsc, watch};

use crate::alarm::stage::AlarmInput;
use crate::config::{Config, Thresholds};
use crate::ingest::Ingest;
use crate::model::{
    Category, Direction, Metric, MetricKind, Sample, SeriesKey, Severity, ThresholdInfo,
    ThresholdLevel, Timestamp,
};
use crate::northbound::metrics::Metrics;

/// What detection concluded about a series: a tier change, with the evidence for the alarm.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// The series.
    pub series: SeriesKey,
    /// When (the sample's time).
    pub at: Timestamp,
    /// Which rule fired; the third part of the alarm's reduction key.
    pub condition: String,
    /// The new tier; `Cleared` ends the condition.
    pub severity: Severity,
    /// Fault category.
    pub category: Category,
    /// What was compared with what.
    pub threshold: Option<ThresholdInfo>,
    /// Why, in words, for `additionalText`.
    pub text: String,
}

/// Why a sample was not evaluated. Each is counted; none stops the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// NaN or infinite.
    NotFinite,
    /// Below zero for a metric that cannot be.
    Negative,
    /// Beyond what the metric can physically be (loss over 100 %, a state other than 0/1, ...).
    Absurd,
    /// Older than a sample already seen for the series.
    OutOfOrder,
    /// The same time as the last sample of the series.
    Duplicate,
}

impl Rejection {
    /// Label value for `noctua_detect_samples_rejected_total{reason}`.
    pub fn name(self) -> &'static str {
        match self {
            Rejection::NotFinite => "not_finite",
            Rejection::Negative => "negative",
            Rejection::Absurd => "absurd",
            Rejection::OutOfOrder => "out_of_order",
            Rejection::Duplicate => "duplicate",
        }
    }

    /// Every reason, to pre-create the metric's series.
    pub const ALL: [Rejection; 5] = [
        Rejection::NotFinite,
        Rejection::Negative,
        Rejection::Absurd,
        Rejection::OutOfOrder,
        Rejection::Duplicate,
    ];
}

/// The largest value a metric can sensibly take; above it a sample is a bug or an attack.
fn ceiling(metric: Metric) -> f64 {
    match metric {
        Metric::LossPct => 100.0,
        // Counter timing can overshoot 100 % a little; ten times is not a measurement.
        Metric::UtilisationInPct | Metric::UtilisationOutPct => 1000.0,
        // Ten minutes of round trip is a lost probe, not latency.
        Metric::LatencyMs => 600_000.0,
        Metric::OperStatus | Metric::Reachability => 1.0,
        Metric::BitsPerSec
        | Metric::PacketsPerSec
        | Metric::FlowsPerSec
        | Metric::ErrorsPerSec
        | Metric::DiscardsPerSec => 1e15,
    }
}

/// What detection keeps per series.
#[derive(Debug, Clone, Copy)]
struct SeriesState {
    tier: Severity,
    last_at: Timestamp,
}

/// Per-series detection state for every series seen.
#[derive(Debug, Default)]
pub struct Detector {
    thresholds: Thresholds,
    series: HashMap<SeriesKey, SeriesState>,
}

impl Detector {
    /// A detector with the given rules and no history.
    pub fn new(thresholds: Thresholds) -> Self {
        Self {
            thresholds,
            series: HashMap::new(),
        }
    }

    /// Swaps the rules (config reload) and keeps every series' current tier.
    pub fn set_thresholds(&mut self, thresholds: Thresholds) {
        self.thresholds = thresholds;
    }

    /// Feeds one sample; returns a verdict when the series changes tier, or why the sample was
    /// refused (it then changes nothing).
    pub fn step(&mut self, sample: &Sample) -> Result<Option<Verdict>, Rejection> {
        let v = sample.value;
        let metric = sample.series.metric;
        if !v.is_finite() {
            return Err(Rejection::NotFinite);
        }
        if v < 0.0 {
            return Err(Rejection::Negative);
        }
        if v > ceiling(metric) {
            return Err(Rejection::Absurd);
        }
        let state = match self.series.get_mut(&sample.series) {
            Some(state) => {
                if sample.at < state.last_at {
                    return Err(Rejection::OutOfOrder);
                }
                if sample.at == state.last_at {
                    return Err(Rejection::Duplicate);
                }
                state.last_at = sample.at;
                state
            }
            None => self
                .series
                .entry(sample.series.clone())
                .or_insert(SeriesState {
                    tier: Severity::Cleared,
                    last_at: sample.at,
                }),
        };
        let Some(rule) = self.thresholds.for_kind(metric.kind()) else {
            return Ok(None);
        };
        let current = state.tier;
        let next = threshold::next_tier(rule, current, v);
        if next == current {
            return Ok(None);
        }
        state.tier = next;
        // The level the value is now judged against: the new tier's, or on clear the lowest.
        let shown = if next == Severity::Cleared {
            current
        } else {
            next
        };
        let level = rule
            .levels()
            .find(|(s, _)| *s == shown)
            .map_or(0.0, |(_, v)| v);
        let (word, threshold_level) = match rule.direction {
            Direction::Rising => ("above", ThresholdLevel::Up),
            Direction::Falling => ("below", ThresholdLevel::Down),
        };
        let text = if next == Severity::Cleared {
            format!(
                "{} back to {} (cleared past {} level {} with hysteresis {})",
                metric.name(),
                sample.value,
                current.name(),
                level,
                rule.hysteresis
            )
        } else {
            format!(
                "{} at {} is {word} the {} level {}",
                metric.name(),
                sample.value,
                next.name(),
                level
            )
        };
        Ok(Some(Verdict {
            series: sample.series.clone(),
            at: sample.at,
            condition: format!("{}_threshold", metric.name()),
            severity: next,
            category: category_of(metric),
            threshold: Some(ThresholdInfo {
                observed_measurement: metric.name().to_owned(),
                observed_value: sample.value,
                threshold_level,
                threshold_value: level,
                hysteresis: rule.hysteresis,
            }),
            text,
        }))
    }
}

/// Latency, loss and utilisation problems degrade performance; states are equipment faults.
fn category_of(metric: Metric) -> Category {
    match metric.kind() {
        MetricKind::Latency | MetricKind::Loss | MetricKind::Utilisation => Category::Performance,
        MetricKind::Traffic => Category::Service,
        MetricKind::State => Category::Equipment,
    }
}

/// The detection task: runs until the sample channel closes, then drops its verdict sender so
/// the alarm stage drains and ends in turn.
pub async fn run_stage(
    mut samples: mpsc::Receiver<Ingest>,
    verdicts: mpsc::Sender<AlarmInput>,
    mut config: watch::Receiver<Arc<Config>>,
    metrics: Arc<Metrics>,
) {
    let mut detector = Detector::new(config.borrow_and_update().thresholds.clone());
    let mut batch = Vec::with_capacity(256);
    while samples.recv_many(&mut batch, 256).await > 0 {
        if config.has_changed().unwrap_or(false) {
            detector.set_thresholds(config.borrow_and_update().thresholds.clone());
        }
        for item in batch.drain(..) {
            let out = match item {
                Ingest::Sample(sample) => {
                    metrics.detect_samples.inc();
                    let v = match detector.step(&sample) {
                        Ok(Some(v)) => v,
                        Ok(None) => continue,
                        Err(reason) => {
                            metrics
                                .detect_rejected
                                .with_label_values(&[reason.name()])
                                .inc();
                            continue;
                        }
                    };
                    metrics
                        .detect_verdicts
                        .with_label_values(&[v.severity.name()])
                        .inc();
                    AlarmInput::Verdict(v)
                }
                Ingest::Event(e) => AlarmInput::Event(e),
                Ingest::Tick(t) => AlarmInput::Tick(t),
            };
            // Inside the pipeline we wait rather than drop: only ingest may shed load.
            if verdicts.send(out).await.is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(value: f64, at: i64) -> Sample {
        Sample {
            series: SeriesKey {
                device: "core-r1".into(),
                object: "ifIndex=3".into(),
                metric: Metric::UtilisationInPct,
            },
            at: Timestamp::from_millis(at),
            value,
        }
    }

    #[test]
    fn emits_only_on_tier_changes_with_threshold_info() {
        let mut d = Detector::new(Thresholds::default());
        let tiers: Vec<_> = [50.0, 91.0, 92.0, 96.0, 88.0, 60.0, 61.0]
            .iter()
            .enumerate()
            .filter_map(|(i, v)| d.step(&sample(*v, i as i64)).unwrap().map(|v| v.severity))
            .collect();
        assert_eq!(
            tiers,
            [
                Severity::Major,
                Severity::Critical,
                Severity::Major,
                Severity::Cleared
            ]
        );
        let v = d.step(&sample(97.0, 10)).unwrap().expect("raise");
        let info = v.threshold.expect("threshold info");
        assert_eq!(info.threshold_value, 95.0);
        assert_eq!(info.observed_value, 97.0);
        assert_eq!(v.condition, "utilisation_in_pct_threshold");
        assert_eq!(v.category, Category::Performance);
    }

    #[test]
    fn bad_samples_are_rejected_with_a_reason_and_change_nothing() {
        let mut d = Detector::new(Thresholds::default());
        assert_eq!(d.step(&sample(f64::NAN, 0)), Err(Rejection::NotFinite));
        assert_eq!(d.step(&sample(f64::INFINITY, 0)), Err(Rejection::NotFinite));
        assert_eq!(d.step(&sample(-1.0, 0)), Err(Rejection::Negative));
        assert_eq!(d.step(&sample(5000.0, 0)), Err(Rejection::Absurd));
        assert_eq!(
            d.step(&sample(96.0, 10)).unwrap().map(|v| v.severity),
            Some(Severity::Critical)
        );
        assert_eq!(d.step(&sample(10.0, 5)), Err(Rejection::OutOfOrder));
        assert_eq!(d.step(&sample(10.0, 10)), Err(Rejection::Duplicate));
        // The rejected samples did not clear the alarm.
        assert_eq!(d.step(&sample(96.0, 11)), Ok(None));
        let mut s = sample(1e12, 20);
        s.series.metric = Metric::BitsPerSec;
        assert_eq!(d.step(&s), Ok(None), "no rule for traffic rates");
    }

    proptest::proptest! {
        #[test]
        fn any_input_is_either_evaluated_or_rejected_never_a_panic(
            values in proptest::collection::vec(proptest::num::f64::ANY, 1..100),
            times in proptest::collection::vec(-5i64..5, 1..100),
        ) {
            let mut d = Detector::new(Thresholds::default());
            let mut at = 0;
            for (v, dt) in values.iter().zip(times.iter().cycle()) {
                at += dt;
                match d.step(&sample(*v, at)) {
                    Ok(Some(verdict)) => proptest::prop_assert!(v.is_finite() && *v >= 0.0 && *v <= 1000.0, "{verdict:?}"),
                    Ok(None) => {}
                    Err(Rejection::NotFinite) => proptest::prop_assert!(!v.is_finite()),
                    Err(Rejection::Negative) => proptest::prop_assert!(*v < 0.0),
                    Err(Rejection::Absurd) => proptest::prop_assert!(*v > 1000.0),
                    Err(Rejection::OutOfOrder | Rejection::Duplicate) => {}
                }
            }
        }
    }
}
