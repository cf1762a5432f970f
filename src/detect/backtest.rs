//! `noctua backtest`: one series' history through the daemon's own [`Detector`], so rules can
//! be tuned on real data before they page anyone.
//!
//! Input: CSV `timestamp,value` (RFC 3339 or epoch seconds; a header line is optional).
//! Output: CSV `timestamp,value,score,tier,expected,note`, one row per input row in input order.
//! Causal: a row's score uses only the rows before it. A rejected row keeps its place with an
//! empty score and the reason in `note`.

use std::fmt::Write as _;
use std::time::Duration;

use std::path::{Path, PathBuf};

use crate::config::{Config, ConfigError, ConfigSource};
use crate::detect::Detector;
use crate::model::{Metric, Sample, SeriesKey, Severity, Timestamp, named_enum};

/// Which detector family a backtest's values are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Round-trip latency, ms.
    Latency,
    /// Packet loss, %.
    Loss,
    /// Link utilisation, %.
    Utilisation,
}

impl Family {
    /// Name, as in `--metric`.
    pub fn name(self) -> &'static str {
        match self {
            Family::Latency => "latency",
            Family::Loss => "loss",
            Family::Utilisation => "utilisation",
        }
    }

    /// The metric its values are.
    pub fn metric(self) -> Metric {
        match self {
            Family::Latency => Metric::LatencyMs,
            Family::Loss => Metric::LossPct,
            Family::Utilisation => Metric::UtilisationInPct,
        }
    }
}

named_enum!(
    Family,
    "metric",
    [Family::Latency, Family::Loss, Family::Utilisation]
);

/// Why a backtest could not run.
#[derive(Debug, thiserror::Error)]
pub enum BacktestError {
    /// The config is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The history could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// `noctua backtest`: the history in `file` through a detector built from the given config
/// (else the embedded default); the output CSV and a summary.
pub fn backtest(
    config: Option<PathBuf>,
    file: &Path,
    family: Family,
) -> Result<(String, Summary), BacktestError> {
    let config = ConfigSource::given(config).load()?;
    let csv = std::fs::read_to_string(file).map_err(|source| BacktestError::Read {
        path: file.to_owned(),
        source,
    })?;
    Ok(run(&config, family.metric(), &csv))
}

/// What the run found.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Summary {
    /// Input rows.
    pub rows: usize,
    /// Rows refused (unparsable or rejected by detection).
    pub rejected: usize,
    /// Alarms raised (a condition going from clear to a tier).
    pub alarms: usize,
    /// Time the series spent in any tier.
    pub in_alarm: Duration,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} rows, {} rejected, {} alarms raised, {} in alarm",
            self.rows,
            self.rejected,
            self.alarms,
            humantime::format_duration(self.in_alarm)
        )
    }
}

/// Runs `csv` through a detector built from `config` as series of `metric`; returns the output
/// CSV and a summary.
pub fn run(config: &Config, metric: Metric, csv: &str) -> (String, Summary) {
    let mut detector = Detector::new(config);
    let series = SeriesKey {
        device: "backtest".to_owned(),
        object: "series".to_owned(),
        metric,
    };
    let mut out = String::from("timestamp,value,score,tier,expected,note\n");
    let mut summary = Summary::default();
    // Tier per condition, so several conditions (threshold, anomaly) combine into one tier.
    let mut conditions: Vec<(String, Severity)> = Vec::new();
    // The previous accepted row: its time and the tier it left the series in.
    let mut previous: Option<(Timestamp, Severity)> = None;
    for (n, line) in csv.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let (ts, value) = line.split_once(',').unwrap_or((line, ""));
        let (ts, value) = (ts.trim(), value.trim());
        let parsed = parse_time(ts).zip(value.parse::<f64>().ok());
        let Some((at, value)) = parsed else {
            if n == 0 {
                continue; // a header
            }
            summary.rows += 1;
            summary.rejected += 1;
            let _ = writeln!(out, "{ts},{value},,,,unparsable");
            continue;
        };
        summary.rows += 1;
        let sample = Sample {
            series: series.clone(),
            at,
            value,
            context: None,
        };
        match detector.step(&sample) {
            Err(reason) => {
                summary.rejected += 1;
                let _ = writeln!(out, "{at},{value},,,,{}", reason.as_str());
            }
            Ok(e) => {
                for v in &e.verdicts {
                    let at = match conditions.iter().position(|(c, _)| *c == v.condition) {
                        Some(at) => at,
                        None => {
                            conditions.push((v.condition.clone(), Severity::Cleared));
                            conditions.len() - 1
                        }
                    };
                    let slot = &mut conditions[at];
                    if slot.1 == Severity::Cleared && v.severity != Severity::Cleared {
                        summary.alarms += 1;
                    }
                    slot.1 = v.severity;
                }
                let tier = conditions.iter().map(|(_, s)| *s).max().unwrap_or_default();
                if let Some((prev_at, prev_tier)) = previous
                    && prev_tier != Severity::Cleared
                {
                    summary.in_alarm += at.since(prev_at);
                }
                previous = Some((at, tier));
                let (score, expected) = e.anomaly.map_or((String::new(), String::new()), |s| {
                    (s.score.to_string(), s.expected.to_string())
                });
                let _ = writeln!(out, "{at},{value},{score},{},{expected},", tier.name());
            }
        }
    }
    (out, summary)
}

/// RFC 3339, or Unix epoch seconds (fractions allowed).
fn parse_time(s: &str) -> Option<Timestamp> {
    if let Ok(t) = Timestamp::parse_rfc3339(s) {
        return Some(t);
    }
    let secs: f64 = s.parse().ok()?;
    (secs.is_finite() && secs.abs() < 1e12)
        .then(|| Timestamp::from_millis((secs * 1000.0).round() as i64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quiet_config() -> Config {
        let mut c = Config::default();
        c.anomaly.enabled = false;
        c
    }

    #[test]
    fn one_row_out_per_row_in_with_reasons_for_rejects() {
        let csv = "timestamp,value\n0,10\n60,96\n120,nan\n30,5\n2026-11-29T10:00:00Z,50\noops,1\n";
        let (out, summary) = run(&quiet_config(), Metric::UtilisationInPct, csv);
        let rows: Vec<&str> = out.lines().collect();
        assert_eq!(rows[0], "timestamp,value,score,tier,expected,note");
        assert_eq!(rows.len(), 7, "{out}");
        assert_eq!(rows[1], "1970-01-01T00:00:00.000Z,10,,cleared,,");
        assert_eq!(rows[2], "1970-01-01T00:01:00.000Z,96,,critical,,");
        assert!(rows[3].ends_with(",,,,not_finite"), "{}", rows[3]);
        assert!(rows[4].ends_with(",,,,out_of_order"), "{}", rows[4]);
        assert!(
            rows[5].starts_with("2026-11-29T10:00:00.000Z,50,,cleared"),
            "{}",
            rows[5]
        );
        assert_eq!(rows[6], "oops,1,,,,unparsable");
        assert_eq!((summary.rows, summary.rejected, summary.alarms), (6, 3, 1));
    }

    #[test]
    fn scores_are_written_with_full_precision_once_warm() {
        let mut csv = String::new();
        for i in 0..400 {
            csv.push_str(&format!("{},{}\n", i * 300, 12.0 + (i % 3) as f64 * 0.3));
        }
        csv.push_str("120000,45\n");
        let mut c = Config::default();
        c.thresholds.latency = None;
        let (out, summary) = run(&c, Metric::LatencyMs, &csv);
        let last = out.lines().last().unwrap();
        let fields: Vec<&str> = last.split(',').collect();
        let score: f64 = fields[2].parse().unwrap();
        assert!(score > 0.8, "{last}");
        assert_eq!(fields[3], "critical");
        assert!(fields[2].len() > 6, "full precision: {last}");
        assert_eq!(summary.alarms, 1);
    }
}
