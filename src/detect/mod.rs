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

/// Per-series detection state for every series seen.
#[derive(Debug, Default)]
pub struct Detector {
    thresholds: Thresholds,
    tiers: HashMap<SeriesKey, Severity>,
}

impl Detector {
    /// A detector with the given rules and no history.
    pub fn new(thresholds: Thresholds) -> Self {
        Self {
            thresholds,
            tiers: HashMap::new(),
        }
    }

    /// Swaps the rules (config reload) and keeps every series' current tier.
    pub fn set_thresholds(&mut self, thresholds: Thresholds) {
        self.thresholds = thresholds;
    }

    /// Feeds one sample; returns a verdict when the series changes tier.
    pub fn step(&mut self, sample: &Sample) -> Option<Verdict> {
        if !sample.value.is_finite() {
            return None;
        }
        let kind = sample.series.metric.kind();
        let rule = self.thresholds.for_kind(kind)?;
        let current = self.tiers.get(&sample.series).copied().unwrap_or_default();
        let next = threshold::next_tier(rule, current, sample.value);
        if next == current {
            return None;
        }
        if next == Severity::Cleared {
            self.tiers.remove(&sample.series);
        } else {
            self.tiers.insert(sample.series.clone(), next);
        }
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
        let metric = sample.series.metric;
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
        Some(Verdict {
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
        })
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
                    let Some(v) = detector.step(&sample) else {
                        continue;
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
            .filter_map(|(i, v)| d.step(&sample(*v, i as i64)).map(|v| v.severity))
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
        let v = d.step(&sample(97.0, 10)).expect("raise");
        let info = v.threshold.expect("threshold info");
        assert_eq!(info.threshold_value, 95.0);
        assert_eq!(info.observed_value, 97.0);
        assert_eq!(v.condition, "utilisation_in_pct_threshold");
        assert_eq!(v.category, Category::Performance);
    }

    #[test]
    fn ignores_non_finite_values_and_unruled_metrics() {
        let mut d = Detector::new(Thresholds::default());
        assert_eq!(d.step(&sample(f64::NAN, 0)), None);
        let mut s = sample(1e12, 0);
        s.series.metric = Metric::BitsPerSec;
        assert_eq!(d.step(&s), None);
    }
}
