//! Detection: samples in, verdicts out, with per-series state.
//!
//! [`Detector::step`] is pure (time comes with the sample): tiered thresholds ([`threshold`])
//! and the seasonal anomaly score ([`anomaly`]) over per-series state ([`series`]).
//! [`Detector::step_batch`] gives the same results for a batch, faster; `pipeline::detect` is
//! the thin task that feeds it batches from the sample channel.

pub mod anomaly;
pub mod backtest;
pub mod rules;
pub mod series;
pub mod threshold;

use std::collections::HashMap;
use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::config::{
    AnomalyConfig, Config, DeviceConfig, Directions, Profiles, ThresholdLevels, Thresholds,
};
use crate::message::Verdict;
use crate::model::{
    Category, Direction, Metric, MetricKind, Sample, SeriesKey, Severity, ThresholdInfo,
    ThresholdLevel, Timestamp, Watching,
};
pub use crate::telemetry::Rejection;
use anomaly::{AnomalyState, Bucket, Head, Observed, Score, Watch};
use series::{Fingerprint, SeriesTable};

/// What detection keeps per series: 48 bytes, kept in the order series first appeared, so the
/// series of one poll (which arrive together) sit together in memory.
#[derive(Debug, Clone)]
struct SeriesState {
    last_at: Timestamp,
    /// Since when the tier change in `pending` has held.
    pending_since: Timestamp,
    /// Which threshold rule applies: `None` until resolved, then `Some(None)` for the
    /// family's levels or `Some(Some(i))` for `[[thresholds.rule]]` number `i`.
    rule: Option<Option<u16>>,
    /// A tier change waiting out `for` / `clear-for`: up (true) or down.
    pending: Option<bool>,
    /// Which deviations the anomaly detector counts: `None` until resolved, then
    /// `Some(None)` if it does not watch the series.
    watch: Option<Option<Watch>>,
    tier: Severity,
    /// The anomaly detector's part, for the metrics it watches.
    anomaly: Option<AnomalySlot>,
}

const _: () = assert!(std::mem::size_of::<SeriesState>() <= 48);

impl SeriesState {
    /// A clear series first seen at `at`.
    fn new(at: Timestamp) -> Self {
        Self {
            last_at: at,
            pending_since: at,
            rule: None,
            pending: None,
            watch: None,
            tier: Severity::Cleared,
            anomaly: None,
        }
    }
}

/// A series' anomaly detector state besides its buckets.
#[derive(Debug, Clone, Copy)]
struct AnomalySlot {
    /// Which baseline in [`Baselines`].
    baseline: usize,
    /// Its run of anomalies (see [`anomaly::score`]).
    streak: i32,
    tier: Severity,
    /// Whether the standing alarm was raised above the baseline (else below).
    above: bool,
}

/// Every series' anomaly buckets, `stride` each, in one allocation, and their heads in
/// another: a sample finds its bucket by arithmetic, with no pointer to follow, and a baseline
/// costs its buckets and one head.
#[derive(Debug)]
struct Baselines {
    buckets: Vec<Bucket>,
    heads: Vec<Head>,
    stride: usize,
}

impl Baselines {
    fn new(stride: usize) -> Self {
        Self {
            buckets: Vec::new(),
            heads: Vec::new(),
            stride,
        }
    }

    /// A new, empty baseline's number.
    fn add(&mut self) -> usize {
        let index = self.heads.len();
        self.buckets
            .resize(self.buckets.len() + self.stride, Bucket::default());
        self.heads.push(Head::default());
        index
    }

    fn get(&self, index: usize) -> (&[Bucket], Head) {
        let start = index * self.stride;
        (
            self.buckets.get(start..start + self.stride).unwrap_or(&[]),
            self.heads.get(index).copied().unwrap_or_default(),
        )
    }

    fn get_mut(&mut self, index: usize) -> Option<(&mut [Bucket], &mut Head)> {
        let start = index * self.stride;
        Some((
            self.buckets.get_mut(start..start + self.stride)?,
            self.heads.get_mut(index)?,
        ))
    }

    /// Re-cuts every baseline into `stride` buckets (a reload changed `buckets`), keeping
    /// what each part of the season has learned.
    fn restride(&mut self, stride: usize) {
        if stride == self.stride {
            return;
        }
        let count = self.buckets.len() / self.stride;
        let mut next = vec![Bucket::default(); count * stride];
        for (old, new) in self
            .buckets
            .chunks_exact(self.stride)
            .zip(next.chunks_exact_mut(stride))
        {
            anomaly::rebin(old, new);
        }
        self.buckets = next;
        self.stride = stride;
    }
}

/// Version of [`StoredSeries`]. Version 1 (buckets only, before calibration) is migrated by
/// [`StoredSeriesV1`]; state of any other version is dropped (the series warms up again)
/// rather than misread.
const STATE_VERSION: u8 = 2;

/// A series' detection state as the store keeps it, so a restart neither re-enters warm-up nor
/// forgets which tier a series is in (and so can still clear its alarm).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredSeries {
    version: u8,
    tier: Severity,
    last_at: Timestamp,
    anomaly: Option<(AnomalyState, Severity, bool)>,
}

/// The store key of a series: device, object and metric name, separated by U+001F.
pub fn state_key(series: &SeriesKey) -> Vec<u8> {
    format!(
        "{}\u{1f}{}\u{1f}{}",
        series.device,
        series.object,
        series.metric.name()
    )
    .into_bytes()
}

impl StoredSeries {
    /// Whether this is state of the current version.
    pub fn is_current(&self) -> bool {
        self.version == STATE_VERSION
    }
}

/// A series' state as version 1 kept it: buckets of whole levels, no weekday offsets, local
/// level or tail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredSeriesV1 {
    version: u8,
    tier: Severity,
    last_at: Timestamp,
    anomaly: Option<(V1Baseline, Severity, bool)>,
}

/// Version 1's baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct V1Baseline {
    buckets: Vec<Bucket>,
    streak: i32,
    last_at: Option<Timestamp>,
}

impl StoredSeriesV1 {
    /// The same state in the current version: the buckets become the season's profile and
    /// the tail learns again ([`anomaly::TAIL_WARM`] samples before the series may alarm on
    /// an anomaly; its threshold tiers carry on).
    pub fn migrate(self, config: &AnomalyConfig) -> Option<StoredSeries> {
        (self.version == 1).then(|| StoredSeries {
            version: STATE_VERSION,
            tier: self.tier,
            last_at: self.last_at,
            anomaly: self.anomaly.map(|(b, tier, above)| {
                (
                    AnomalyState::from_buckets(b.buckets, b.streak, b.last_at, config),
                    tier,
                    above,
                )
            }),
        })
    }
}

/// The series a [`state_key`] names.
pub fn parse_state_key(key: &[u8]) -> Option<SeriesKey> {
    let text = std::str::from_utf8(key).ok()?;
    let mut parts = text.split('\u{1f}');
    let (device, object, metric) = (parts.next()?, parts.next()?, parts.next()?);
    Some(SeriesKey {
        device: device.to_owned(),
        object: object.to_owned(),
        metric: Metric::from_name(metric)?,
    })
}

/// What one sample led to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Evaluation {
    /// Tier changes (threshold and anomaly), usually none.
    pub verdicts: Vec<Verdict>,
    /// The anomaly score, for metrics the anomaly detector watches.
    pub anomaly: Option<Score>,
}

/// Per-series detection state for every series seen.
#[derive(Debug)]
pub struct Detector {
    thresholds: Thresholds,
    anomaly: AnomalyConfig,
    /// The anomaly score's tier levels, made once from `anomaly`.
    anomaly_levels: ThresholdLevels,
    devices: HashMap<String, DeviceConfig>,
    /// For profile KPIs' directions.
    profiles: Profiles,
    series: SeriesTable<SeriesState>,
    baselines: Baselines,
    /// Each sample of a batch's fingerprint and position, reused batch to batch.
    ahead: Vec<(Fingerprint, Option<usize>)>,
}

fn devices_of(config: &Config) -> HashMap<String, DeviceConfig> {
    config
        .devices
        .iter()
        .map(|d| (d.name.clone(), d.clone()))
        .collect()
}

/// Which deviations the anomaly detector counts on `series`; `None` if it does not watch it.
/// A profile KPI takes its profile metric's `direction`, else `[anomaly.direction] kpi`.
fn watch_of(
    d: &Directions,
    profiles: &Profiles,
    device: Option<&DeviceConfig>,
    series: &SeriesKey,
) -> Option<Watch> {
    match series.metric.kind() {
        _ if series.metric == Metric::Kpi => device
            .and_then(|device| profiles.of(device))
            .and_then(|profile| {
                profile.metrics.iter().find(|m| {
                    series.object == m.name
                        || (m.table
                            && series
                                .object
                                .strip_prefix(m.name.as_str())
                                .is_some_and(|row| row.starts_with('.')))
                })
            })
            .and_then(|m| m.direction)
            .unwrap_or(d.kpi),
        MetricKind::Latency => d.latency,
        MetricKind::Loss => d.loss,
        MetricKind::Utilisation => d.utilisation,
        MetricKind::Traffic => d.traffic,
        MetricKind::Flows => d.flows,
        // Up/down states and the security shares have their own rules.
        MetricKind::State | MetricKind::Flood | MetricKind::Sources => Watching(None),
    }
    .0
}

impl Detector {
    /// A detector with the rules of `config` and no history.
    pub fn new(config: &Config) -> Self {
        Self {
            thresholds: config.thresholds.clone(),
            anomaly: config.anomaly.clone(),
            anomaly_levels: config.anomaly.levels(),
            devices: devices_of(config),
            profiles: config.snmp.profiles.clone(),
            series: SeriesTable::default(),
            baselines: Baselines::new(anomaly::buckets(&config.anomaly)),
            ahead: Vec::new(),
        }
    }

    /// The state of the series at `positions` (in first-seen order, clamped to
    /// [`Detector::series`]), for the store.
    pub fn export(
        &self,
        positions: Range<usize>,
    ) -> impl Iterator<Item = (Vec<u8>, StoredSeries)> + '_ {
        self.series.range(positions).map(|(name, s)| {
            let anomaly = s.anomaly.map(|a| {
                let (buckets, head) = self.baselines.get(a.baseline);
                let baseline = AnomalyState {
                    buckets: buckets.to_vec(),
                    head,
                    streak: a.streak,
                    last_at: Some(s.last_at),
                };
                (baseline, a.tier, a.above)
            });
            let stored = StoredSeries {
                version: STATE_VERSION,
                tier: s.tier,
                last_at: s.last_at,
                anomaly,
            };
            (state_key(name), stored)
        })
    }

    /// Takes back a series' state from the store; returns false (and ignores it) if the key or
    /// the version is not understood.
    pub fn import(&mut self, key: &[u8], stored: StoredSeries) -> bool {
        let Some(series) = parse_state_key(key) else {
            return false;
        };
        if stored.version != STATE_VERSION {
            return false;
        }
        let id = self.series.fingerprint(&series);
        let (state, _) = self
            .series
            .get_or_insert_with(&series, id, None, || SeriesState::new(stored.last_at));
        state.tier = stored.tier;
        state.last_at = stored.last_at;
        state.rule = None;
        state.pending = None;
        state.anomaly = stored.anomaly.map(|(baseline, tier, above)| {
            let index = state
                .anomaly
                .map_or_else(|| self.baselines.add(), |a| a.baseline);
            if let Some((buckets, head)) = self.baselines.get_mut(index) {
                anomaly::rebin(&baseline.buckets, buckets);
                *head = baseline.head;
            }
            AnomalySlot {
                baseline: index,
                streak: baseline.streak,
                tier,
                above,
            }
        });
        true
    }

    /// Makes the detector agree with an alarm the store still has active: if the alarm's
    /// condition is one of detection's and the series is clear here (its clear was waiting out
    /// the hold-down when the daemon stopped), the series goes back to the alarm's tier, so the
    /// next normal sample clears the alarm instead of leaving it standing.
    pub fn reassert(&mut self, alarm: &crate::model::Alarm) {
        let (name, anomaly, above) = if let Some(m) = alarm.condition.strip_suffix("_threshold") {
            (m, false, true)
        } else if let Some(m) = alarm.condition.strip_suffix("_anomaly_high") {
            (m, true, true)
        } else if let Some(m) = alarm.condition.strip_suffix("_anomaly_low") {
            (m, true, false)
        } else {
            return;
        };
        let Some(metric) = Metric::from_name(name) else {
            return;
        };
        let key = SeriesKey {
            device: alarm.device.clone(),
            object: alarm.object.clone(),
            metric,
        };
        let Some(state) = self.series.get_mut(&key) else {
            return;
        };
        let severity = alarm.perceived_severity;
        if !anomaly {
            if state.tier == Severity::Cleared {
                state.tier = severity;
            }
        } else if let Some(slot) = state.anomaly.as_mut()
            && slot.tier == Severity::Cleared
        {
            slot.tier = severity;
            slot.above = above;
        }
    }

    /// How many series it follows.
    pub fn series(&self) -> usize {
        self.series.len()
    }

    /// Takes new rules (config reload) and keeps every series' state.
    pub fn reconfigure(&mut self, config: &Config) {
        self.thresholds = config.thresholds.clone();
        self.anomaly = config.anomaly.clone();
        self.anomaly_levels = config.anomaly.levels();
        self.baselines.restride(anomaly::buckets(&config.anomaly));
        self.devices = devices_of(config);
        self.profiles = config.snmp.profiles.clone();
        for state in self.series.values_mut() {
            state.rule = None;
            state.watch = None;
        }
    }

    /// Feeds one sample: the tier changes it causes and its anomaly score, or why it was
    /// refused (it then changes nothing).
    pub fn step(&mut self, sample: &Sample) -> Result<Evaluation, Rejection> {
        let id = self.series.fingerprint(&sample.series);
        self.step_found(sample, id, None)
    }

    /// Feeds `samples` in order, with the same results as [`Self::step`] on each in turn (one
    /// result per sample into `out`). With many series the state is not in cache and a
    /// sample's cost is its cache misses; here every series is looked up before the first is
    /// evaluated, and the CPU is asked for each index slot, then each state, while the other
    /// lookups proceed, so the waits overlap instead of adding up.
    pub fn step_batch(
        &mut self,
        samples: &[&Sample],
        out: &mut Vec<Result<Evaluation, Rejection>>,
    ) {
        let mut ahead = std::mem::take(&mut self.ahead);
        ahead.clear();
        for sample in samples {
            let id = self.series.fingerprint(&sample.series);
            self.series.prefetch(id);
            ahead.push((id, None));
        }
        for (id, position) in &mut ahead {
            *position = self.series.find(*id);
            if let Some(p) = *position {
                self.series.prefetch_at(p);
            }
        }

        for (sample, (id, position)) in samples.iter().zip(&ahead) {
            out.push(self.step_found(sample, *id, *position));
        }
        self.ahead = ahead;
    }

    /// [`Self::step`] for a series whose fingerprint (and perhaps position) is known.
    fn step_found(
        &mut self,
        sample: &Sample,
        id: Fingerprint,
        found: Option<usize>,
    ) -> Result<Evaluation, Rejection> {
        let v = sample.value;
        let metric = sample.series.metric;
        if !v.is_finite() {
            return Err(Rejection::NotFinite);
        }
        if v < metric.info().floor {
            return Err(Rejection::Negative);
        }
        if v > metric.info().ceiling {
            return Err(Rejection::Absurd);
        }
        let (state, new) = self
            .series
            .get_or_insert_with(&sample.series, id, found, || SeriesState::new(sample.at));
        let previous = (!new).then_some(state.last_at);
        if !new {
            if sample.at < state.last_at {
                return Err(Rejection::OutOfOrder);
            }
            if sample.at == state.last_at {
                return Err(Rejection::Duplicate);
            }
            state.last_at = sample.at;
        }
        let mut out = Evaluation::default();
        let kind = metric.kind();
        if state.rule.is_none() || state.watch.is_none() {
            let device = self.devices.get(&sample.series.device);
            state.rule = Some(
                rules::matching_rule(&self.thresholds, kind, device, &sample.series.object)
                    .and_then(|i| u16::try_from(i).ok()),
            );
            state.watch = Some(watch_of(
                &self.anomaly.direction,
                &self.profiles,
                device,
                &sample.series,
            ));
        }
        let index = state.rule.flatten().map(usize::from);
        let rule = rules::levels_of(&self.thresholds, kind, index);
        if let Some(rule) = rule {
            let current = state.tier;
            let next = threshold::next_tier(rule, current, v);
            if next == current {
                state.pending = None;
            } else {
                let up = next > current;
                if state.pending != Some(up) {
                    state.pending = Some(up);
                    state.pending_since = sample.at;
                }
                let since = state.pending_since;
                let wait = if up { rule.hold } else { rule.clear_hold };
                if wait.is_none_or(|w| sample.at.since(since) >= w) {
                    state.tier = next;
                    state.pending = None;
                    out.verdicts
                        .push(threshold_verdict(sample, rule, current, next));
                }
            }
        }
        if let (true, Some(Some(watch))) = (self.anomaly.enabled, state.watch) {
            let baselines = &mut self.baselines;
            let slot = state.anomaly.get_or_insert_with(|| AnomalySlot {
                baseline: baselines.add(),
                streak: 0,
                tier: Severity::Cleared,
                above: true,
            });
            let observed = Observed {
                kind,
                watch,
                value: v,
                at: sample.at,
                previous,
            };
            let Some((buckets, head)) = baselines.get_mut(slot.baseline) else {
                return Ok(out);
            };
            let score = anomaly::score(&self.anomaly, buckets, head, &mut slot.streak, &observed);
            let next = threshold::next_tier(&self.anomaly_levels, slot.tier, score.score);
            if next != slot.tier {
                if slot.tier == Severity::Cleared {
                    // The side is fixed when the alarm is raised, so its condition (and
                    // category) stays the same until it clears.
                    slot.above = score.above;
                }
                out.verdicts
                    .push(anomaly_verdict(sample, &score, slot.tier, next, slot.above));
                slot.tier = next;
            }
            out.anomaly = Some(score);
        }
        Ok(out)
    }
}

fn threshold_verdict(
    sample: &Sample,
    rule: &ThresholdLevels,
    current: Severity,
    next: Severity,
) -> Verdict {
    let metric = sample.series.metric;
    // The level the value is now judged against: the new tier's, or on clear the old one's.
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
            metric.show(sample.value),
            current.name(),
            metric.show(level),
            rule.hysteresis
        )
    } else {
        format!(
            "{} at {} is {word} the {} level {}",
            metric.name(),
            metric.show(sample.value),
            next.name(),
            metric.show(level)
        )
    };
    let text = with_context(text, sample, next);
    Verdict {
        series: sample.series.clone(),
        at: sample.at,
        condition: format!("{}_threshold", metric.name()),
        severity: next,
        category: metric.info().category,
        threshold: Some(ThresholdInfo {
            observed_measurement: metric.name().to_owned(),
            observed_value: sample.value,
            threshold_level,
            threshold_value: level,
            hysteresis: rule.hysteresis,
        }),
        text,
    }
}

fn anomaly_verdict(
    sample: &Sample,
    score: &Score,
    current: Severity,
    next: Severity,
    above: bool,
) -> Verdict {
    let metric = sample.series.metric;
    let (condition, category, word, level) = if above {
        (
            "anomaly_high",
            metric.info().category,
            "above",
            ThresholdLevel::Up,
        )
    } else {
        (
            "anomaly_low",
            Category::Service,
            "below",
            ThresholdLevel::Down,
        )
    };
    let text = if next == Severity::Cleared {
        format!(
            "{} at {} is back near its usual {} (score {:.3}, was {})",
            metric.name(),
            metric.show(sample.value),
            metric.show(score.expected),
            score.score,
            current.name()
        )
    } else {
        format!(
            "{} at {} is far {word} its usual {} for this time (anomaly score {:.3})",
            metric.name(),
            metric.show(sample.value),
            metric.show(score.expected),
            score.score
        )
    };
    let text = with_context(text, sample, next);
    Verdict {
        series: sample.series.clone(),
        at: sample.at,
        condition: format!("{}_{condition}", metric.name()),
        severity: next,
        category,
        threshold: Some(ThresholdInfo {
            observed_measurement: metric.name().to_owned(),
            observed_value: sample.value,
            threshold_level: level,
            threshold_value: score.expected,
            hysteresis: 0.0,
        }),
        text,
    }
}

/// Appends what the source said explains the value (top talkers, the flooded host) to the text
/// of a raise or change, so the engineer sees the likely cause in the alarm itself.
fn with_context(mut text: String, sample: &Sample, next: Severity) -> String {
    if let Some(context) = sample.context.as_deref()
        && next != Severity::Cleared
    {
        text.push_str("; ");
        text.push_str(context);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Thresholds only, so their tests are about thresholds.
    fn detector() -> Detector {
        let mut c = Config::default();
        c.anomaly.enabled = false;
        Detector::new(&c)
    }

    fn tiers(e: Result<Evaluation, Rejection>) -> Vec<Severity> {
        e.unwrap().verdicts.iter().map(|v| v.severity).collect()
    }

    fn sample(value: f64, at: i64) -> Sample {
        Sample {
            series: SeriesKey {
                device: "core-r1".into(),
                object: "ifIndex=3".into(),
                metric: Metric::UtilisationInPct,
            },
            at: Timestamp::from_millis(at),
            value,
            context: None,
        }
    }

    #[test]
    fn emits_only_on_tier_changes_with_threshold_info() {
        let mut d = detector();
        let tiers: Vec<_> = [50.0, 91.0, 92.0, 96.0, 88.0, 60.0, 61.0]
            .iter()
            .enumerate()
            .flat_map(|(i, v)| tiers(d.step(&sample(*v, i as i64))))
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
        let v = d.step(&sample(97.0, 10)).unwrap().verdicts.remove(0);
        let info = v.threshold.expect("threshold info");
        assert_eq!(info.threshold_value, 95.0);
        assert_eq!(info.observed_value, 97.0);
        assert_eq!(v.condition, "utilisation_in_pct_threshold");
        assert_eq!(v.category, Category::Performance);
    }

    #[test]
    fn a_spike_in_an_exporters_flows_is_a_security_anomaly() {
        let mut c = Config::default();
        c.anomaly.season = Duration::ZERO;
        let mut d = Detector::new(&c);
        let flows = |value: f64, at: i64| Sample {
            series: SeriesKey {
                device: "edge-r1".into(),
                object: "device".into(),
                metric: Metric::FlowsPerSec,
            },
            at: Timestamp::from_millis(at * 10_000),
            value,
            context: None,
        };
        // A steady 40–50 flows/s, then a scan at 2,000 flows/s.
        for i in 0..400 {
            let e = d.step(&flows(40.0 + (i % 11) as f64, i)).unwrap();
            assert!(e.verdicts.is_empty(), "quiet traffic alarmed at {i}");
        }
        let e = d.step(&flows(2_000.0, 400)).unwrap();
        let v = e.verdicts.first().expect("the spike is an anomaly");
        assert_eq!(v.category, Category::Security);
        assert!(v.severity > Severity::Warning);
        // A drop in flows is no news.
        let mut d2 = Detector::new(&c);
        for i in 0..400 {
            d2.step(&flows(40.0 + (i % 11) as f64, i)).unwrap();
        }
        assert!(d2.step(&flows(0.0, 400)).unwrap().verdicts.is_empty());
    }

    #[test]
    fn bad_samples_are_rejected_with_a_reason_and_change_nothing() {
        let mut d = detector();
        assert_eq!(d.step(&sample(f64::NAN, 0)), Err(Rejection::NotFinite));
        assert_eq!(d.step(&sample(f64::INFINITY, 0)), Err(Rejection::NotFinite));
        assert_eq!(d.step(&sample(-1.0, 0)), Err(Rejection::Negative));
        assert_eq!(d.step(&sample(5000.0, 0)), Err(Rejection::Absurd));
        assert_eq!(tiers(d.step(&sample(96.0, 10))), [Severity::Critical]);
        assert_eq!(d.step(&sample(10.0, 5)), Err(Rejection::OutOfOrder));
        assert_eq!(d.step(&sample(10.0, 10)), Err(Rejection::Duplicate));
        // The rejected samples did not clear the alarm.
        assert_eq!(tiers(d.step(&sample(96.0, 11))), []);
        let mut s = sample(1e12, 20);
        s.series.metric = Metric::BitsPerSec;
        assert_eq!(
            d.step(&s),
            Ok(Evaluation::default()),
            "no rule for traffic rates"
        );
    }

    #[test]
    fn a_latency_spike_after_warm_up_raises_an_anomaly_alarm_below_every_threshold() {
        let mut d = Detector::new(&Config::default());
        let mut s = sample(0.0, 0);
        s.series.metric = Metric::LatencyMs;
        // A quiet 12 ms for two days, every five minutes.
        for i in 0..576 {
            s.at = Timestamp::from_millis(i * 300_000);
            s.value = 12.0 + (i % 3) as f64 * 0.3;
            assert_eq!(d.step(&s).unwrap().verdicts, [], "sample {i}");
        }
        // 45 ms: under the 50 ms warning threshold, but far from this link's normal.
        s.at = Timestamp::from_millis(576 * 300_000);
        s.value = 45.0;
        let e = d.step(&s).unwrap();
        let score = e.anomaly.expect("scored");
        assert!(score.score > 0.8, "{score:?}");
        assert_eq!(e.verdicts.len(), 1);
        assert_eq!(e.verdicts[0].condition, "latency_ms_anomaly_high");
        assert_eq!(e.verdicts[0].severity, Severity::Critical);
        // Back to normal: the anomaly clears.
        s.at = Timestamp::from_millis(577 * 300_000);
        s.value = 12.1;
        let e = d.step(&s).unwrap();
        assert_eq!(e.verdicts[0].severity, Severity::Cleared);
    }

    #[test]
    fn rules_match_devices_and_objects_and_hold_for_their_time() {
        let c: Config = toml::from_str(
            r#"
[[device]]
name = "enb-1"
address = "198.51.100.1"
role = "base-station"
site = "east"
tags = ["rural"]

[[thresholds.rule]]
name = "rural backhaul"
metric = "utilisation"
role = "base-station"
tag = "rural"
object = "ifIndex=*"
levels = { warning = 50.0, critical = 80.0, hysteresis = 5.0, for = "2m", clear-for = "5m" }
"#,
        )
        .unwrap();
        let mut d = Detector::new(&c);
        let at = |m: i64| Timestamp::from_millis(m * 60_000);
        let mut s = sample(0.0, 0);
        s.series.device = "enb-1".into();
        let mut step = |s: &mut Sample, v: f64, m: i64| {
            s.value = v;
            s.at = at(m);
            tiers(d.step(s))
        };
        // 60 % is a warning under the rule (50), not under the family default (70)...
        assert_eq!(step(&mut s, 60.0, 0), []);
        assert_eq!(step(&mut s, 61.0, 1), [], "for = 2m not yet held");
        assert_eq!(step(&mut s, 62.0, 2), [Severity::Warning]);
        // ...and it takes five minutes of calm to drop.
        assert_eq!(step(&mut s, 10.0, 3), []);
        assert_eq!(step(&mut s, 10.0, 6), []);
        assert_eq!(step(&mut s, 10.0, 8), [Severity::Cleared]);
        // Another device, or an object the pattern does not match, gets the family default.
        let mut other = sample(60.0, 0);
        other.series.device = "core-r1".into();
        assert_eq!(tiers(d.step(&other)), []);
        let mut cpu = sample(60.0, 0);
        cpu.series.device = "enb-1".into();
        cpu.series.object = "device".into();
        assert_eq!(tiers(d.step(&cpu)), []);
    }

    #[test]
    /// Through postcard, the store's value codec (the store only adds its format byte).
    fn state_survives_export_and_import_through_the_store_encoding() {
        let mut d = Detector::new(&Config::default());
        let mut s = sample(0.0, 0);
        s.series.metric = Metric::LatencyMs;
        s.series.object = "ifIndex=3\u{1f}odd".replace('\u{1f}', "/");
        for i in 0..800 {
            s.at = Timestamp::from_millis(i * 300_000);
            s.value = 12.0 + (i % 3) as f64 * 0.3;
            d.step(&s).unwrap();
        }
        let mut restored = Detector::new(&Config::default());
        for (key, stored) in d.export(0..usize::MAX) {
            let bytes = postcard::to_allocvec(&stored).unwrap();
            let back: StoredSeries = postcard::from_bytes(&bytes).unwrap();
            assert!(restored.import(&key, back));
        }
        s.at = Timestamp::from_millis(800 * 300_000);
        s.value = 13.4;
        // Warm, same baseline: the same score as the detector that never stopped.
        assert_eq!(restored.step(&s).unwrap(), d.step(&s).unwrap());
        // A state of another version is skipped, not misread.
        let (key, mut stored) = d.export(0..usize::MAX).next().unwrap();
        stored.version = 99;
        assert!(!Detector::new(&Config::default()).import(&key, stored));
        assert!(
            !Detector::new(&Config::default())
                .import(b"no separators", d.export(0..usize::MAX).next().unwrap().1)
        );
    }

    /// A profile KPI is watched in its profile metric's direction (a table column's rows too),
    /// else in `[anomaly.direction] kpi`'s; families in theirs.
    #[test]
    fn each_series_is_watched_in_its_own_direction() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("p")).unwrap();
        std::fs::write(
            dir.path().join("p/enb.toml"),
            "[[metric]]\nname = \"rrc_setup_success\"\noid = \"1.3.6.1.4.1.32473.1\"\ntable = true\nkind = \"gauge\"\nfeeds = \"other\"\ndirection = \"falling\"\n\n[[metric]]\nname = \"temperature\"\noid = \"1.3.6.1.4.1.32473.2\"\nkind = \"gauge\"\nfeeds = \"other\"\ndirection = \"off\"\n\n[[metric]]\nname = \"prb_use\"\noid = \"1.3.6.1.4.1.32473.3\"\nkind = \"gauge\"\nfeeds = \"other\"\n",
        )
        .unwrap();
        let text = "[snmp]\nprofile-dir = \"p\"\n[snmp.credentials.lab]\nversion = \"v2c\"\ncommunity = \"public\"\n\n[[device]]\nname = \"enb1\"\naddress = \"192.0.2.1\"\nrole = \"base-station\"\ncredentials = \"lab\"\nprofile = \"enb\"\n";
        let c = crate::config::parse("t.toml", text, dir.path()).unwrap();
        let d = Detector::new(&c);
        let watch = |object: &str, metric: Metric| {
            let series = SeriesKey {
                device: "enb1".into(),
                object: object.into(),
                metric,
            };
            watch_of(
                &d.anomaly.direction,
                &d.profiles,
                d.devices.get("enb1"),
                &series,
            )
        };
        assert_eq!(
            watch("rrc_setup_success.3", Metric::Kpi),
            Some(Watch::Falling)
        );
        assert_eq!(
            watch("rrc_setup_success", Metric::Kpi),
            Some(Watch::Falling)
        );
        // Not a row of the column: another metric's name that merely starts the same way.
        assert_eq!(watch("rrc_setup_success_x", Metric::Kpi), Some(Watch::Both));
        assert_eq!(watch("temperature", Metric::Kpi), None);
        assert_eq!(watch("prb_use", Metric::Kpi), Some(Watch::Both));
        assert_eq!(watch("ifIndex=3", Metric::LatencyMs), Some(Watch::Rising));
        assert_eq!(
            watch("ifIndex=3", Metric::UtilisationInPct),
            Some(Watch::Both)
        );
        assert_eq!(watch("ifIndex=3", Metric::OperStatus), None);
    }

    /// Version 1 state (buckets only) keeps its tier and profile: an alarm it raised can still
    /// clear, the season counts as seen, and anomaly scores come back once the tail has learned.
    #[test]
    fn version_1_state_is_migrated() {
        let c = Config::default();
        let mut s = sample(0.0, 0);
        s.series.metric = Metric::LatencyMs;
        s.at = Timestamp::from_millis(800 * 300_000);
        let key = state_key(&s.series);
        let buckets = vec![Bucket::learned(20.3, 0.2, 100); 24];
        let old = StoredSeriesV1 {
            version: 1,
            tier: Severity::Major,
            last_at: s.at,
            anomaly: Some((
                V1Baseline {
                    buckets,
                    streak: 0,
                    last_at: Some(s.at),
                },
                Severity::Cleared,
                true,
            )),
        };
        let bytes = postcard::to_allocvec(&old).unwrap();
        // The current decoder does not take it for its own.
        let misread: Option<StoredSeries> = postcard::from_bytes(&bytes).ok();
        assert!(!misread.is_some_and(|m| m.is_current()));
        let old: StoredSeriesV1 = postcard::from_bytes(&bytes).unwrap();
        let migrated = old.migrate(&c.anomaly).expect("version 1");
        assert!(migrated.is_current());
        let mut d = Detector::new(&c);
        assert!(d.import(&key, migrated));
        let mut warm_after = None;
        for i in 1..300 {
            s.at = Timestamp::from_millis((800 + i) * 300_000);
            s.value = 20.0 + (i % 3) as f64 * 0.3;
            let e = d.step(&s).unwrap();
            if i == 1 {
                assert_eq!(e.verdicts[0].condition, "latency_ms_threshold");
                assert_eq!(
                    e.verdicts[0].severity,
                    Severity::Cleared,
                    "the old tier clears"
                );
            }
            let score = e.anomaly.unwrap();
            assert!(
                (score.expected - 20.3).abs() < 1.0,
                "the profile is kept: {score:?}"
            );
            if score.warm && warm_after.is_none() {
                warm_after = Some(i);
            }
        }
        assert_eq!(warm_after, Some(1 + i64::from(anomaly::TAIL_WARM)));
    }

    /// A reload (or a stored state) with another number of buckets re-cuts the baselines
    /// instead of forgetting them: still warm, still knowing the usual level.
    #[test]
    fn a_new_bucket_count_keeps_what_the_baselines_learned() {
        let mut d = Detector::new(&Config::default());
        let mut s = sample(0.0, 0);
        s.series.metric = Metric::LatencyMs;
        for i in 0..800 {
            s.at = Timestamp::from_millis(i * 300_000);
            s.value = 20.0 + (i % 3) as f64 * 0.3;
            d.step(&s).unwrap();
        }
        let mut fewer = Config::default();
        fewer.anomaly.buckets = 6;
        d.reconfigure(&fewer);
        let (key, stored) = d.export(0..usize::MAX).next().unwrap();
        let (baseline, _, _) = stored.anomaly.clone().unwrap();
        assert_eq!(baseline.buckets.len(), 6);
        s.at = Timestamp::from_millis(800 * 300_000);
        s.value = 20.3;
        let usual = d.step(&s).unwrap().anomaly.unwrap();
        assert!(usual.warm && usual.score < 0.2, "{usual:?}");
        assert!((usual.expected - 20.3).abs() < 1.0, "{usual:?}");
        // A stored 6-bucket state into a 24-bucket detector: re-cut on import, warm at once.
        let mut more = Detector::new(&Config::default());
        assert!(more.import(&key, stored));
        s.at = Timestamp::from_millis(801 * 300_000);
        let after = more.step(&s).unwrap().anomaly.unwrap();
        assert!(after.warm && after.score < 0.2, "{after:?}");
        let (_, restored) = more.export(0..usize::MAX).next().unwrap();
        assert_eq!(restored.anomaly.unwrap().0.buckets.len(), 24);
    }

    proptest::proptest! {
        #[test]
        fn any_input_is_either_evaluated_or_rejected_never_a_panic(
            values in proptest::collection::vec(proptest::num::f64::ANY, 1..100),
            times in proptest::collection::vec(-5i64..5, 1..100),
        ) {
            let mut d = detector();
            let mut at = 0;
            for (v, dt) in values.iter().zip(times.iter().cycle()) {
                at += dt;
                match d.step(&sample(*v, at)) {
                    Ok(e) => proptest::prop_assert!(e.verdicts.is_empty() || (v.is_finite() && *v >= 0.0 && *v <= 1000.0), "{e:?}"),
                    Err(Rejection::NotFinite) => proptest::prop_assert!(!v.is_finite()),
                    Err(Rejection::Negative) => proptest::prop_assert!(*v < 0.0),
                    Err(Rejection::Absurd) => proptest::prop_assert!(*v > 1000.0),
                    Err(Rejection::OutOfOrder | Rejection::Duplicate) => {}
                }
            }
        }

        /// A batch gives exactly what the same samples one at a time give: the same results in
        /// the same order, and the same state after (a series may come twice in a batch, or
        /// first appear in it).
        #[test]
        fn a_batch_is_the_same_as_one_at_a_time(
            rows in proptest::collection::vec((0usize..6, 0i64..40, 0.0f64..120.0), 1..400),
            cuts in proptest::collection::vec(1usize..70, 1..20),
        ) {
            let metrics = [Metric::UtilisationInPct, Metric::LatencyMs, Metric::LossPct];
            let samples: Vec<Sample> = rows
                .iter()
                .map(|(series, minute, value)| Sample {
                    series: SeriesKey {
                        device: format!("d{}", series % 2),
                        object: "ifIndex=1".into(),
                        metric: metrics[series % 3],
                    },
                    at: Timestamp::from_millis(minute * 300_000),
                    value: *value,
                    context: None,
                })
                .collect();
            let config = Config::default();
            let (mut one, mut batched) = (Detector::new(&config), Detector::new(&config));
            let singly: Vec<_> = samples.iter().map(|s| one.step(s)).collect();
            let mut together = Vec::new();
            let mut rest = &samples[..];
            for cut in cuts.iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let (now, later) = rest.split_at((*cut).min(rest.len()));
                let refs: Vec<&Sample> = now.iter().collect();
                batched.step_batch(&refs, &mut together);
                rest = later;
            }
            proptest::prop_assert_eq!(&singly, &together);
            let state = |d: &Detector| {
                let mut v: Vec<_> = d.export(0..usize::MAX).collect();
                v.sort_by(|a, b| a.0.cmp(&b.0));
                v
            };
            proptest::prop_assert_eq!(state(&one), state(&batched));
        }
    }
}
