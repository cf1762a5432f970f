//! `noctua backtest`: one series' history through the daemon's own [`Detector`], so rules can
//! be tuned on real data before they page anyone.
//!
//! Input: CSV `timestamp,value[,label]`, a header line optional. Timestamps: RFC 3339 (with `Z`
//! or an offset), `YYYY-MM-DD HH:MM:SS` or `YYYY-MM-DDTHH:MM:SS` without an offset (read in
//! `--timezone`, UTC unless given), or epoch seconds or milliseconds (numbers of 10^11 and
//! more are milliseconds). A third column is a label (1 anomalous, 0 not), passed through.
//! Output: CSV `timestamp,value,score,tier,expected,note[,label]`, one row per input row in
//! input order. Causal: a row's score uses only the rows before it. A rejected row keeps its
//! place with an empty score and the reason in `note`. With labels the summary adds precision,
//! recall and point-adjusted F1 of the rows in alarm at the configured levels.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{Config, ConfigError, ConfigSource};
use crate::detect::Detector;
use crate::model::{
    Metric, Offset, Sample, SeriesKey, Severity, Timestamp, Watching, named_enum,
    parse_history_time,
};

/// Which detector family a backtest's values are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Round-trip latency, ms.
    Latency,
    /// Packet loss, %.
    Loss,
    /// Link utilisation, %.
    Utilisation,
    /// Any other series (a profile KPI): no unit, negative values allowed.
    Kpi,
}

impl Family {
    /// Name, as in `--metric`.
    pub fn name(self) -> &'static str {
        match self {
            Family::Latency => "latency",
            Family::Loss => "loss",
            Family::Utilisation => "utilisation",
            Family::Kpi => "kpi",
        }
    }

    /// The metric its values are.
    pub fn metric(self) -> Metric {
        match self {
            Family::Latency => Metric::LatencyMs,
            Family::Loss => Metric::LossPct,
            Family::Utilisation => Metric::UtilisationInPct,
            Family::Kpi => Metric::Kpi,
        }
    }
}

named_enum!(
    Family,
    "metric",
    [
        Family::Latency,
        Family::Loss,
        Family::Utilisation,
        Family::Kpi
    ]
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

/// How a backtest runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// What the values are.
    pub family: Family,
    /// Which deviations the anomaly detector counts, over the config's for the family.
    pub direction: Option<Watching>,
    /// For timestamps written without an offset.
    pub timezone: Offset,
}

/// `noctua backtest`: the history in `file` through a detector built from the given config
/// (else the embedded default); the output CSV and a summary.
pub fn backtest(
    config: Option<PathBuf>,
    file: &Path,
    options: &Options,
) -> Result<(String, Summary), BacktestError> {
    let mut config = ConfigSource::given(config).load()?;
    if let Some(direction) = options.direction {
        let d = &mut config.anomaly.direction;
        *match options.family {
            Family::Latency => &mut d.latency,
            Family::Loss => &mut d.loss,
            Family::Utilisation => &mut d.utilisation,
            Family::Kpi => &mut d.kpi,
        } = direction;
    }
    let csv = std::fs::read_to_string(file).map_err(|source| BacktestError::Read {
        path: file.to_owned(),
        source,
    })?;
    Ok(run(
        &config,
        options.family.metric(),
        options.timezone,
        &csv,
    ))
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
    /// Against the labels, if the history has them.
    pub quality: Option<Quality>,
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
        )?;
        if let Some(q) = &self.quality {
            write!(f, "\n{q}")?;
        }
        Ok(())
    }
}

/// Rows after a labelled stretch ends within which a raise still counts as reporting it.
const LATE_ROWS: usize = 3;

/// How the rows in alarm match the labels, point-adjusted: a labelled stretch with any row in
/// alarm counts as found in every row (the corpus authors' scoring, Xu et al., WWW 2018).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Quality {
    /// Labelled stretches.
    pub anomalies: usize,
    /// Of them, found.
    pub found: usize,
    /// Point-adjusted precision.
    pub precision: f64,
    /// Point-adjusted recall.
    pub recall: f64,
    /// Their harmonic mean.
    pub f1: f64,
    /// Raises neither inside a labelled stretch nor within [`LATE_ROWS`] after one.
    pub false_raises: usize,
    /// Of them, per day of history.
    pub false_raises_per_day: f64,
}

impl std::fmt::Display for Quality {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "labels: {} of {} anomalies found; point-adjusted precision {:.3}, recall {:.3}, F1 {:.3}; {} false raises ({:.2} a day)",
            self.found,
            self.anomalies,
            self.precision,
            self.recall,
            self.f1,
            self.false_raises,
            self.false_raises_per_day
        )
    }
}

/// One accepted, labelled row: whether it was anomalous, in alarm, and raised an alarm.
#[derive(Debug, Clone, Copy)]
struct Row {
    label: bool,
    in_alarm: bool,
    raised: bool,
}

/// Scores `rows` (in order) over a history of `days`.
fn quality(rows: &[Row], days: f64) -> Quality {
    let mut adjusted: Vec<bool> = rows.iter().map(|r| r.in_alarm).collect();
    let (mut anomalies, mut found) = (0, 0);
    let mut start = 0;
    while start < rows.len() {
        if !rows[start].label {
            start += 1;
            continue;
        }
        let end = (start..rows.len())
            .find(|i| !rows[*i].label)
            .unwrap_or(rows.len());
        anomalies += 1;
        let hit = rows[start..end].iter().any(|r| r.in_alarm);
        found += usize::from(hit);
        adjusted[start..end].fill(hit);
        start = end;
    }
    let tp = (0..rows.len())
        .filter(|i| adjusted[*i] && rows[*i].label)
        .count();
    let flagged = adjusted.iter().filter(|a| **a).count();
    let labelled = rows.iter().filter(|r| r.label).count();
    let precision = tp as f64 / flagged.max(1) as f64;
    let recall = tp as f64 / labelled.max(1) as f64;
    let f1 = if precision + recall > 0.0 {
        2.0 * precision * recall / (precision + recall)
    } else {
        0.0
    };
    let false_raises = (0..rows.len())
        .filter(|i| {
            rows[*i].raised
                && !rows[i.saturating_sub(LATE_ROWS)..=*i]
                    .iter()
                    .any(|r| r.label)
        })
        .count();
    Quality {
        anomalies,
        found,
        precision,
        recall,
        f1,
        false_raises,
        false_raises_per_day: false_raises as f64 / days.max(1.0 / 24.0),
    }
}

/// Runs `csv` through a detector built from `config` as series of `metric`; returns the output
/// CSV and a summary.
pub fn run(config: &Config, metric: Metric, timezone: Offset, csv: &str) -> (String, Summary) {
    let mut detector = Detector::new(config);
    let series = SeriesKey {
        device: "backtest".to_owned(),
        object: "series".to_owned(),
        metric,
    };
    let mut header = true;
    let mut labelled = false;
    let mut out = String::new();
    let mut summary = Summary::default();
    // Tier per condition, so several conditions (threshold, anomaly) combine into one tier.
    let mut conditions: Vec<(String, Severity)> = Vec::new();
    // The previous accepted row: its time and the tier it left the series in.
    let mut previous: Option<(Timestamp, Severity)> = None;
    let mut rows: Vec<Row> = Vec::new();
    let mut span: Option<(Timestamp, Timestamp)> = None;
    for line in csv.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let mut fields = line.split(',').map(str::trim);
        let (ts, value) = (fields.next().unwrap_or(""), fields.next().unwrap_or(""));
        let label = fields.next();
        let parsed = parse_history_time(ts, timezone).zip(value.parse::<f64>().ok());
        if std::mem::take(&mut header) {
            labelled = label.is_some();
            out.push_str("timestamp,value,score,tier,expected,note");
            out.push_str(if labelled { ",label\n" } else { "\n" });
            if parsed.is_none() {
                continue; // a header
            }
        }
        let label_text = label.unwrap_or("");
        let end = if labelled {
            format!(",{label_text}")
        } else {
            String::new()
        };
        summary.rows += 1;
        let Some((at, value)) = parsed else {
            summary.rejected += 1;
            let _ = writeln!(out, "{ts},{value},,,,unparsable{end}");
            continue;
        };
        let sample = Sample {
            series: series.clone(),
            at,
            value,
            context: None,
        };
        match detector.step(&sample) {
            Err(reason) => {
                summary.rejected += 1;
                let _ = writeln!(out, "{at},{value},,,,{}{end}", reason.as_str());
            }
            Ok(e) => {
                let mut raised = false;
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
                        raised = true;
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
                span = Some((span.map_or(at, |s| s.0), at));
                if labelled {
                    rows.push(Row {
                        label: label_text == "1",
                        in_alarm: tier != Severity::Cleared,
                        raised,
                    });
                }
                let (score, expected) = e.anomaly.map_or((String::new(), String::new()), |s| {
                    (s.score.to_string(), s.expected.to_string())
                });
                let _ = writeln!(out, "{at},{value},{score},{},{expected},{end}", tier.name());
            }
        }
    }
    if labelled {
        let days = span.map_or(0.0, |(a, b)| b.since(a).as_secs_f64() / 86_400.0);
        summary.quality = Some(quality(&rows, days));
    }
    (out, summary)
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
        let (out, summary) = run(
            &quiet_config(),
            Metric::UtilisationInPct,
            Offset::default(),
            csv,
        );
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
        for i in 0..800 {
            csv.push_str(&format!("{},{}\n", i * 300, 12.0 + (i % 3) as f64 * 0.3));
        }
        csv.push_str("240000,12.9\n");
        let mut c = Config::default();
        c.thresholds.latency = None;
        let (out, summary) = run(&c, Metric::LatencyMs, Offset::default(), &csv);
        let last = out.lines().last().unwrap();
        let fields: Vec<&str> = last.split(',').collect();
        let score: f64 = fields[2].parse().unwrap();
        assert!(score > c.anomaly.warning && score < 0.999, "{last}");
        assert_ne!(fields[3], "cleared");
        assert!(fields[2].len() > 6, "full precision: {last}");
        assert_eq!(summary.alarms, 1);
    }

    #[test]
    fn a_kpi_may_be_negative_and_labels_are_passed_through_and_scored() {
        let csv = "timestamp,value,label\n2014-04-01 00:00:00,-85.5,0\n2014-04-01 00:05:00,-86,1\n";
        let (out, summary) = run(&Config::default(), Metric::Kpi, Offset::default(), csv);
        let rows: Vec<&str> = out.lines().collect();
        assert_eq!(rows[0], "timestamp,value,score,tier,expected,note,label");
        assert_eq!(rows[1], "2014-04-01T00:00:00.000Z,-85.5,0,cleared,-85.5,,0");
        assert!(rows[2].ends_with(",1"), "{}", rows[2]);
        assert_eq!(summary.rejected, 0);
        let q = summary.quality.expect("labelled");
        assert_eq!((q.anomalies, q.found), (1, 0));
        // Latency cannot be negative.
        let (out, _) = run(
            &Config::default(),
            Metric::LatencyMs,
            Offset::default(),
            csv,
        );
        assert!(
            out.lines().nth(1).unwrap().ends_with(",,,,negative,0"),
            "{out}"
        );
    }

    #[test]
    fn point_adjustment_credits_a_whole_stretch_for_one_row_in_alarm() {
        let row = |label: u8, in_alarm: u8, raised: u8| Row {
            label: label == 1,
            in_alarm: in_alarm == 1,
            raised: raised == 1,
        };
        // Two labelled stretches; the first is found late in it, the second missed; one alarm
        // well away from both.
        let rows = [
            row(0, 0, 0),
            row(1, 0, 0),
            row(1, 1, 1),
            row(0, 0, 0),
            row(0, 0, 0),
            row(0, 0, 0),
            row(0, 0, 0),
            row(0, 1, 1),
            row(1, 0, 0),
            row(0, 0, 0),
        ];
        let q = quality(&rows, 2.0);
        assert_eq!((q.anomalies, q.found, q.false_raises), (2, 1, 1));
        assert!((q.precision - 2.0 / 3.0).abs() < 1e-9, "{q:?}");
        assert!((q.recall - 2.0 / 3.0).abs() < 1e-9, "{q:?}");
        assert!((q.f1 - 2.0 / 3.0).abs() < 1e-9, "{q:?}");
        assert!((q.false_raises_per_day - 0.5).abs() < 1e-9);
    }
}
