//! Detection's sections: `[thresholds]` (family levels and rules), `[anomaly]` and
//! `[forecast]`.

use std::time::Duration;

use serde::Deserialize;

use crate::model::{Direction, MetricKind, Role, Severity, Watch, Watching};

/// `[thresholds]`: one rule per metric family. Families left out keep their defaults.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct Thresholds {
    /// Utilisation in percent.
    pub utilisation: Option<ThresholdLevels>,
    /// Packet loss in percent.
    pub loss: Option<ThresholdLevels>,
    /// Latency in milliseconds.
    pub latency: Option<ThresholdLevels>,
    /// Share of single-packet SYN-only flows of an exporter, in percent (NetFlow; security).
    pub flood: Option<ThresholdLevels>,
    /// Distinct sources toward one destination per interval (NetFlow; security).
    pub sources: Option<ThresholdLevels>,
    /// An exporter's flows per second (NetFlow; security). None by default: what is normal
    /// differs too much between exporters; the anomaly detector watches for spikes instead.
    pub flows: Option<ThresholdLevels>,
    /// Rules for particular devices or objects (`[[thresholds.rule]]`); the first that
    /// matches a series wins over the family's levels above.
    pub rule: Vec<ThresholdRule>,
}

/// `[[thresholds.rule]]`: levels for the series that match every matcher given.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ThresholdRule {
    /// Name, for logs.
    pub name: String,
    /// `latency`, `loss`, `utilisation`, `flood`, `sources` or `flows`.
    pub metric: MetricKind,
    /// Devices of this role.
    #[serde(default)]
    pub role: Option<Role>,
    /// Devices of this site.
    #[serde(default)]
    pub site: Option<String>,
    /// Devices with this tag.
    #[serde(default)]
    pub tag: Option<String>,
    /// Objects matching this pattern (`*` matches any run of characters), e.g. `ifIndex=*`.
    #[serde(default)]
    pub object: Option<String>,
    /// The levels.
    pub levels: ThresholdLevels,
}

impl Default for Thresholds {
    fn default() -> Self {
        let rising = |w, mi, ma, c, h| {
            Some(ThresholdLevels {
                direction: Direction::Rising,
                warning: Some(w),
                minor: Some(mi),
                major: Some(ma),
                critical: Some(c),
                hysteresis: h,
                hold: None,
                clear_hold: None,
            })
        };
        Self {
            utilisation: rising(70.0, 80.0, 90.0, 95.0, 5.0),
            loss: rising(1.0, 2.0, 5.0, 10.0, 0.5),
            latency: rising(50.0, 100.0, 200.0, 500.0, 10.0),
            flood: rising(30.0, 50.0, 70.0, 90.0, 10.0),
            sources: rising(500.0, 1_000.0, 5_000.0, 20_000.0, 100.0),
            flows: None,
            rule: Vec::new(),
        }
    }
}

impl Thresholds {
    /// The rule for a metric family, if any.
    pub fn for_kind(&self, kind: MetricKind) -> Option<&ThresholdLevels> {
        match kind {
            MetricKind::Utilisation => self.utilisation.as_ref(),
            MetricKind::Loss => self.loss.as_ref(),
            MetricKind::Latency => self.latency.as_ref(),
            MetricKind::Flood => self.flood.as_ref(),
            MetricKind::Sources => self.sources.as_ref(),
            MetricKind::Flows => self.flows.as_ref(),
            MetricKind::Traffic | MetricKind::State => None,
        }
    }
}

/// Tiered levels of one threshold rule. A level left out is not used.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ThresholdLevels {
    /// Rising raises above a level; falling raises below it.
    #[serde(default)]
    pub direction: Direction,
    /// Warning level.
    #[serde(default)]
    pub warning: Option<f64>,
    /// Minor level.
    #[serde(default)]
    pub minor: Option<f64>,
    /// Major level.
    #[serde(default)]
    pub major: Option<f64>,
    /// Critical level.
    #[serde(default)]
    pub critical: Option<f64>,
    /// How far back past a level the value must come before the tier drops.
    #[serde(default)]
    pub hysteresis: f64,
    /// A higher tier must hold this long before it is raised (`for` in config).
    #[serde(default, rename = "for", with = "humantime_serde")]
    pub hold: Option<Duration>,
    /// A lower tier must hold this long before the tier drops.
    #[serde(default, rename = "clear-for", with = "humantime_serde")]
    pub clear_hold: Option<Duration>,
}

impl ThresholdLevels {
    /// Configured levels from lowest to highest tier.
    pub fn levels(&self) -> impl Iterator<Item = (Severity, f64)> + '_ {
        [
            (Severity::Warning, self.warning),
            (Severity::Minor, self.minor),
            (Severity::Major, self.major),
            (Severity::Critical, self.critical),
        ]
        .into_iter()
        .filter_map(|(s, v)| v.map(|v| (s, v)))
    }
}

/// `[anomaly]`: the calibrated seasonal anomaly detector (`detect/anomaly.rs`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct AnomalyConfig {
    /// Whether to run it.
    pub enabled: bool,
    /// Length of the daily season (`"0s"` for none).
    #[serde(with = "humantime_serde")]
    pub season: Duration,
    /// Buckets per season, each with its own level and spread.
    pub buckets: u16,
    /// Whether each weekday also learns its own offset (a quiet weekend is not an anomaly).
    pub weekly: bool,
    /// Samples a bucket must have seen before it may alarm.
    pub warm_up: u32,
    /// Weight of each new sample in a bucket's level and spread.
    pub learning_rate: f32,
    /// Consecutive samples three deviations off on one side after which the new level is
    /// taken whole.
    pub shift_after: u32,
    /// Which deviations count, per metric family.
    pub direction: Directions,
    /// Score for a warning: a score `s` is a deviation seen once in `10^(10 s)` samples of
    /// the series (0.35: one in 3,000).
    pub warning: f64,
    /// Score for minor.
    pub minor: f64,
    /// Score for major.
    pub major: f64,
    /// Score for critical.
    pub critical: f64,
    /// How far under a level the score must fall before the tier drops.
    pub hysteresis: f64,
}

/// `[anomaly.direction]`: which deviations count, per metric family; `off` to not watch it.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct Directions {
    /// Latency: rises.
    pub latency: Watching,
    /// Loss: rises.
    pub loss: Watching,
    /// Utilisation: both (a collapse is a fault; sudden growth is news).
    pub utilisation: Watching,
    /// Traffic rates, errors and discards: both.
    pub traffic: Watching,
    /// An exporter's flows: rises (a flood or a scan).
    pub flows: Watching,
    /// Profile KPIs (`feeds = "other"`): both, unless the profile metric says otherwise.
    pub kpi: Watching,
}

impl Default for Directions {
    fn default() -> Self {
        let (rising, both) = (Watching(Some(Watch::Rising)), Watching(Some(Watch::Both)));
        Self {
            latency: rising,
            loss: rising,
            utilisation: both,
            traffic: both,
            flows: rising,
            kpi: both,
        }
    }
}

impl Default for AnomalyConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            season: Duration::from_secs(86_400),
            buckets: 24,
            weekly: true,
            warm_up: 12,
            learning_rate: 0.05,
            shift_after: 30,
            direction: Directions::default(),
            warning: 0.35,
            minor: 0.45,
            major: 0.55,
            critical: 0.7,
            hysteresis: 0.05,
        }
    }
}

impl AnomalyConfig {
    /// The score levels as a rising threshold rule, so tiers and hysteresis work exactly as
    /// for thresholds.
    pub fn levels(&self) -> ThresholdLevels {
        ThresholdLevels {
            direction: Direction::Rising,
            warning: Some(self.warning),
            minor: Some(self.minor),
            major: Some(self.major),
            critical: Some(self.critical),
            hysteresis: self.hysteresis,
            hold: None,
            clear_hold: None,
        }
    }
}

/// `[forecast]`: predictive alarms, raised on a series whose busy-hour forecast crosses its
/// major or critical level (`forecast/`, `pipeline/forecast.rs`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct ForecastConfig {
    /// Whether predictive alarms are raised (forecasts are kept either way, for capacity).
    pub enabled: bool,
    /// No prediction before this much history (whole days).
    #[serde(with = "humantime_serde")]
    pub min_history: Duration,
    /// No prediction while the busy hour is under this share of the series' warning level.
    pub floor: f64,
    /// A prediction is raised (or cleared) only after this many daily updates in a row agree.
    pub agree: u32,
    /// A crossing this near is major.
    #[serde(with = "humantime_serde")]
    pub major_within: Duration,
    /// This near, minor.
    #[serde(with = "humantime_serde")]
    pub minor_within: Duration,
    /// This near, warning; further off raises nothing.
    #[serde(with = "humantime_serde")]
    pub warning_within: Duration,
}

impl Default for ForecastConfig {
    fn default() -> Self {
        let day = Duration::from_secs(86_400);
        Self {
            enabled: true,
            min_history: 7 * day,
            floor: 0.5,
            agree: 3,
            major_within: day,
            minor_within: 7 * day,
            warning_within: 30 * day,
        }
    }
}

impl ForecastConfig {
    /// A duration in whole days, rounded up (a crossing "within 24 h" is within 1 day).
    pub fn days(d: Duration) -> u32 {
        u32::try_from(d.as_secs().div_ceil(86_400)).unwrap_or(u32::MAX)
    }
}

/// `[precursors]`: degradation warnings from trends and recurring events over a window
/// (`forecast/precursor.rs`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct PrecursorsConfig {
    /// Whether precursors raise warnings.
    pub enabled: bool,
    /// The window, in whole days.
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// Errors, discards or loss: the last days at least this many times the first.
    pub rise: f64,
    /// A probe's latency p95: the same.
    pub latency_rise: f64,
    /// Reboots of one device within the window.
    pub reboots: u32,
    /// Link downs of one interface within the window.
    pub link_flaps: u32,
}

impl Default for PrecursorsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            window: Duration::from_secs(7 * 86_400),
            rise: 2.0,
            latency_rise: 1.5,
            reboots: 3,
            link_flaps: 10,
        }
    }
}
