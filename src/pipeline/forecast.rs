//! Forecasts inside the detection stage: every utilisation, loss and latency series' busy-hour
//! forecaster ([`Forecaster`]) and predictive alarm ([`Predictor`]), fed the samples detection
//! accepted. Once a day per series the forecast is held against the series' major and critical
//! levels (the levels detection judges it by, `detect::rules`), and a change of the prediction
//! becomes a verdict that flows through the alarm manager like any other: dedup, maintenance,
//! targets, MQTT. Errors, discards, loss and latency series also keep their last days for a
//! precursor's trend (`forecast::precursor`), judged at the same day's end and raised as a
//! `degradation:{metric}` warning. State is kept in the store (`forecast_state`) with the
//! detector's.

use std::collections::HashMap;
use std::ops::Range;

use crate::config::{
    Config, DeviceConfig, ForecastConfig, PrecursorsConfig, ThresholdLevels, Thresholds,
};
use crate::detect::series::{Fingerprint, SeriesTable};
use crate::detect::{parse_state_key, rules, state_key};
use crate::forecast::capacity::DayUse;
use crate::forecast::precursor::{self, Today, Trend};
use crate::forecast::predict::{Horizons, Outlook, Predictor};
use crate::forecast::{Day, Forecaster, STATE_VERSION, StoredForecast};
use crate::message::Verdict;
use crate::model::{
    Alarm, Category, Direction, Metric, MetricKind, Sample, SeriesKey, Severity, ThresholdInfo,
    ThresholdLevel,
};
use crate::store::{Store, StoreError, Tree};

/// The suffix of a predictive alarm's condition: `utilisation_in_pct_predicted_threshold`, so
/// each metric of an object has its own, as `_threshold` alarms do.
pub const CONDITION: &str = "_predicted_threshold";

/// One series: 168 bytes, and a link's day of utilisation (about 250 bytes) or a precursor's
/// days (up to 30 values, and for latency 64 bins).
#[derive(Debug, Clone, Default)]
struct Slot {
    forecaster: Forecaster,
    predictor: Predictor,
    today: Option<Box<DayUse>>,
    trend: Option<Box<Trend>>,
    trend_day: Today,
    /// Which threshold rule judges the series (`None` until resolved, as in detection).
    rule: Option<Option<u16>>,
}

const _: () = assert!(std::mem::size_of::<Slot>() <= 168);

/// The series forecast: whose crossing of a level means trouble coming.
pub fn forecast_kind(metric: Metric) -> bool {
    matches!(
        metric.kind(),
        MetricKind::Utilisation | MetricKind::Loss | MetricKind::Latency
    )
}

/// Whether a series has a slot: forecast, or watched for a precursor's trend.
fn watched(metric: Metric) -> bool {
    forecast_kind(metric) || precursor::floor(metric).is_some()
}

/// The precursors' rules from their config.
pub fn precursor_rules(c: &PrecursorsConfig) -> precursor::Rules {
    precursor::Rules {
        days: ForecastConfig::days(c.window),
        rise: c.rise,
        latency_rise: c.latency_rise,
        reboots: c.reboots,
        link_flaps: c.link_flaps,
    }
}

/// What one sample led to: a predictive alarm's change, a precursor's, both or neither.
pub type Said = [Option<Verdict>; 2];

/// Every forecast series, and the rules their predictions follow.
#[derive(Debug)]
pub struct Forecasts {
    config: ForecastConfig,
    precursors: precursor::Rules,
    /// Off: standing precursor warnings clear at their series' next day.
    precursors_on: bool,
    thresholds: Thresholds,
    devices: HashMap<String, DeviceConfig>,
    series: SeriesTable<Slot>,
    /// Links' days that ended since the last save, by series key.
    finished: Vec<(Vec<u8>, DayUse)>,
    /// Each sample of a batch's fingerprint (if forecast) and position, reused.
    ahead: Vec<(Option<Fingerprint>, Option<usize>)>,
}

impl Forecasts {
    /// No history, the rules of `config`.
    pub fn new(config: &Config) -> Self {
        Self {
            config: config.forecast.clone(),
            precursors: precursor_rules(&config.precursors),
            precursors_on: config.precursors.enabled,
            thresholds: config.thresholds.clone(),
            devices: config
                .devices
                .iter()
                .map(|d| (d.name.clone(), d.clone()))
                .collect(),
            series: SeriesTable::default(),
            finished: Vec::new(),
            ahead: Vec::new(),
        }
    }

    /// With the state the store holds, agreeing with its active predictive alarms; entries it
    /// cannot read are skipped (those series gather again).
    pub fn restore(config: &Config, store: &Store) -> Result<Self, StoreError> {
        let mut me = Self::new(config);
        let stored = store.forecasts()?;
        let skipped = store.len(Tree::Forecasts).saturating_sub(stored.len());
        for (key, s) in stored {
            let Some(series) = parse_state_key(&key) else {
                continue;
            };
            let slot = slot(&mut me.series, &series);
            (slot.forecaster, slot.predictor) = (s.forecaster, s.predictor);
            slot.today = s.today.map(Box::new);
            slot.trend = s.trend.map(Box::new);
            slot.trend_day = s.trend_day;
        }
        if skipped > 0 {
            tracing::warn!(skipped, "forecast state not understood for some series");
        }
        for alarm in store.scan::<Alarm>(Tree::ActiveAlarms)? {
            me.reassert(&alarm);
        }
        Ok(me)
    }

    /// Agrees with an active predictive or trend alarm (saved state is a few minutes old at
    /// worst), so a restart neither raises it again nor forgets to clear it.
    fn reassert(&mut self, alarm: &Alarm) {
        let c = &alarm.condition;
        let (predicted, metric) = match c.strip_suffix(CONDITION) {
            Some(m) => (true, Metric::from_name(m)),
            None => (
                false,
                c.strip_prefix(DEGRADATION).and_then(Metric::from_name),
            ),
        };
        let Some(metric) = metric else {
            return;
        };
        let series = SeriesKey {
            device: alarm.device.clone(),
            object: alarm.object.clone(),
            metric,
        };
        let slot = slot(&mut self.series, &series);
        if predicted {
            slot.predictor.reassert(alarm.perceived_severity);
        } else {
            slot.trend.get_or_insert_default().raised = true;
        }
    }

    /// How many series are forecast.
    pub fn series(&self) -> usize {
        self.series.len()
    }

    /// The state of the series at `positions` (in first-seen order, clamped to
    /// [`Forecasts::series`]), for the store.
    pub fn export(
        &self,
        positions: Range<usize>,
    ) -> impl Iterator<Item = (Vec<u8>, StoredForecast)> + '_ {
        self.series.range(positions).map(|(series, s)| {
            let stored = StoredForecast {
                version: STATE_VERSION,
                forecaster: s.forecaster,
                predictor: s.predictor,
                today: s.today.as_deref().cloned(),
                trend: s.trend.as_deref().cloned(),
                trend_day: s.trend_day,
            };
            (state_key(series), stored)
        })
    }

    /// The links' days that ended since this was last asked, for the store.
    pub fn take_finished(&mut self) -> Vec<(Vec<u8>, DayUse)> {
        std::mem::take(&mut self.finished)
    }

    /// Takes new rules (config reload), keeping every forecast.
    pub fn reconfigure(&mut self, config: &Config) {
        let (series, finished) = (
            std::mem::take(&mut self.series),
            std::mem::take(&mut self.finished),
        );
        *self = Self {
            series,
            finished,
            ..Self::new(config)
        };
        for slot in self.series.values_mut() {
            slot.rule = None;
        }
    }

    /// Feeds a batch, `accepted` saying which samples detection took: one entry per sample
    /// into `out`, the predictive alarm's change at the end of a series' day. As in detection,
    /// every series is looked up before the first is stepped, asking the CPU for each index
    /// slot and state ahead of its turn, so the cache misses overlap.
    pub fn step_batch(
        &mut self,
        samples: &[&Sample],
        accepted: impl Fn(usize) -> bool,
        out: &mut Vec<Said>,
    ) {
        let mut ahead = std::mem::take(&mut self.ahead);
        ahead.clear();
        for (i, sample) in samples.iter().enumerate() {
            let id = (accepted(i) && watched(sample.series.metric))
                .then(|| self.series.fingerprint(&sample.series));
            if let Some(id) = id {
                self.series.prefetch(id);
            }
            ahead.push((id, None));
        }
        for (id, position) in &mut ahead {
            if let Some(id) = id {
                *position = self.series.find(*id);
                if let Some(p) = *position {
                    self.series.prefetch_at(p);
                }
            }
        }
        for (sample, (id, found)) in samples.iter().zip(&ahead) {
            out.push(id.map_or([None, None], |id| self.step_found(sample, id, *found)));
        }
        self.ahead = ahead;
    }

    fn step_found(&mut self, sample: &Sample, id: Fingerprint, found: Option<usize>) -> Said {
        let (slot, _) = self
            .series
            .get_or_insert_with(&sample.series, id, found, Slot::default);
        let series = &sample.series;
        let degraded = trend(slot, &self.precursors, self.precursors_on, sample);
        if !forecast_kind(series.metric) {
            return [None, degraded];
        }
        let day = slot.forecaster.step(sample.at, sample.value);
        if series.metric.kind() == MetricKind::Utilisation
            && let Some(mut done) = DayUse::step(&mut slot.today, sample.at, sample.value)
        {
            done.busy = day.filter(|d| d.day == done.day).map(|d| d.busy as f32);
            self.finished.push((state_key(series), *done));
        }
        let Some(day) = day else {
            return [None, degraded];
        };
        let kind = series.metric.kind();
        let rule = *slot.rule.get_or_insert_with(|| {
            rules::matching_rule(
                &self.thresholds,
                kind,
                self.devices.get(&series.device),
                &series.object,
            )
            .and_then(|i| u16::try_from(i).ok())
        });
        let levels = rules::levels_of(&self.thresholds, kind, rule.map(usize::from));
        [judge(&self.config, slot, levels, sample, day), degraded]
    }
}

/// The condition prefix of a precursor: `degradation:errors_per_sec`.
const DEGRADATION: &str = "degradation:";

/// Steps a series' precursor trend; at a day's end, its warning's change.
fn trend(slot: &mut Slot, rules: &precursor::Rules, on: bool, sample: &Sample) -> Option<Verdict> {
    let metric = sample.series.metric;
    if !precursor::watched(&sample.series)
        || !precursor::step(
            &mut slot.trend_day,
            &mut slot.trend,
            metric,
            sample.at,
            sample.value,
        )
    {
        return None;
    }
    let t = slot.trend.get_or_insert_default();
    let evidence = t.evidence(metric, rules).filter(|_| on);
    if evidence.is_some() == t.raised {
        return None;
    }
    t.raised = evidence.is_some();
    let text = evidence.unwrap_or_else(|| {
        format!(
            "{} no longer rising over {} days",
            metric.name(),
            rules.days
        )
    });
    Some(precursor::verdict(
        sample.series.clone(),
        sample.at,
        metric.name(),
        t.raised,
        text,
    ))
}

/// A series' slot, made if new.
fn slot<'a>(table: &'a mut SeriesTable<Slot>, series: &SeriesKey) -> &'a mut Slot {
    let id = table.fingerprint(series);
    let found = table.find(id);
    table.get_or_insert_with(series, id, found, Slot::default).0
}

/// A day's prediction for one series against its levels.
fn judge(
    config: &ForecastConfig,
    slot: &mut Slot,
    levels: Option<&ThresholdLevels>,
    sample: &Sample,
    day: Day,
) -> Option<Verdict> {
    let f = slot.forecaster;
    let horizons = Horizons {
        major: ForecastConfig::days(config.major_within),
        minor: ForecastConfig::days(config.minor_within),
        warning: ForecastConfig::days(config.warning_within),
    };
    // Rising levels only: a busy hour is a day's highest, and it is the rise to a level that
    // capacity and trouble come from. The level forecast is the lowest of major and critical
    // not yet reached.
    let levels = levels.filter(|l| l.direction == Direction::Rising);
    let target = levels.and_then(|l| {
        [(Severity::Major, l.major), (Severity::Critical, l.critical)]
            .into_iter()
            .find_map(|(s, v)| v.filter(|v| f.now() < *v).map(|v| (s, v)))
    });
    let floor = levels
        .and_then(|l| l.levels().next())
        .map_or(0.0, |(_, lowest)| config.floor * lowest);
    let min_days = ForecastConfig::days(config.min_history);
    let crossing = target.and_then(|(_, v)| f.crossing(v, min_days, floor));
    // Turned off: a standing prediction clears at its series' next day.
    let soonest = crossing.map(|c| c.days).filter(|_| config.enabled);
    let agree = if config.enabled { config.agree } else { 1 };
    let next = slot.predictor.day(soonest, &horizons, agree)?;
    let shown = target.or_else(|| {
        levels.and_then(|l| {
            l.critical
                .map(|v| (Severity::Critical, v))
                .or(l.major.map(|v| (Severity::Major, v)))
        })
    });
    let (tier, value) = shown.unwrap_or((Severity::Major, 0.0));
    let outlook = Outlook {
        metric: sample.series.metric,
        level: (tier, value),
        crossing,
        day: day.day,
        forecaster: f,
    };
    let text = if next == Severity::Cleared {
        outlook.cleared_text(horizons.warning)
    } else {
        outlook.raised_text(horizons.warning)
    };
    Some(Verdict {
        series: sample.series.clone(),
        at: sample.at,
        condition: format!("{}{CONDITION}", sample.series.metric.name()),
        severity: next,
        category: Category::Performance,
        threshold: Some(ThresholdInfo {
            observed_measurement: sample.series.metric.name().to_owned(),
            observed_value: f.now(),
            threshold_level: ThresholdLevel::Up,
            threshold_value: value,
            hysteresis: 0.0,
        }),
        text,
    })
}
