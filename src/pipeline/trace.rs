//! The anomaly score's recent trace, for the alarm it raises: detection judges each sample
//! alone, but an engineer (and the post-incident report, which quotes the raise) wants to see
//! how the score climbed. Only scores at or above half the warning level are kept, so the
//! common case (a calm series) costs a comparison and nothing else; at most [`KEEP`] points of
//! the last hour for at most [`MAX_SERIES`] series, swept as they age.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;

use crate::config::AnomalyConfig;
use crate::message::Verdict;
use crate::model::{SeriesKey, Severity, Timestamp};

/// Points kept per series.
pub const KEEP: usize = 12;
/// Series traced at once; beyond it, new ones are not (the alarm then has no trace).
pub const MAX_SERIES: usize = 10_000;
const WINDOW_MS: i64 = 3_600_000;

/// The elevated series' recent scores.
#[derive(Debug)]
pub struct Traces {
    elevated: f64,
    traces: HashMap<SeriesKey, VecDeque<(Timestamp, f32)>>,
    swept: Timestamp,
}

impl Traces {
    /// Traces scores from half of `config`'s warning level.
    pub fn new(config: &AnomalyConfig) -> Self {
        Self {
            elevated: config.warning / 2.0,
            traces: HashMap::new(),
            swept: Timestamp::from_millis(0),
        }
    }

    /// Takes new levels (config reload).
    pub fn reconfigure(&mut self, config: &AnomalyConfig) {
        self.elevated = config.warning / 2.0;
    }

    /// Notes a sample's score, if elevated.
    pub fn note(&mut self, series: &SeriesKey, at: Timestamp, score: f64) {
        if score < self.elevated {
            return;
        }
        if !self.traces.contains_key(series) && self.traces.len() >= MAX_SERIES {
            return;
        }
        let trace = self.traces.entry(series.clone()).or_default();
        trace.push_back((at, score as f32));
        if trace.len() > KEEP {
            trace.pop_front();
        }
    }

    /// Appends the series' trace to an anomaly verdict that raises or changes a tier.
    pub fn attach(&self, v: &mut Verdict) {
        let anomaly =
            v.condition.ends_with("_anomaly_high") || v.condition.ends_with("_anomaly_low");
        if !anomaly || v.severity == Severity::Cleared {
            return;
        }
        let Some(trace) = self.traces.get(&v.series) else {
            return;
        };
        let from = v.at.as_millis() - WINDOW_MS;
        let mut points = trace
            .iter()
            .filter(|(t, _)| t.as_millis() > from)
            .peekable();
        if points.peek().is_none() {
            return;
        }
        v.text.push_str("; score trace:");
        for (t, s) in points {
            let t = t.to_string();
            let _ = write!(v.text, " {} {s:.2}", t.get(11..19).unwrap_or(&t));
        }
    }

    /// Drops what is older than the hour, at most once a minute of data time.
    pub fn sweep(&mut self, now: Timestamp) {
        if now.since(self.swept).as_secs() < 60 {
            return;
        }
        self.swept = now;
        let from = now.as_millis() - WINDOW_MS;
        self.traces.retain(|_, t| {
            while t.front().is_some_and(|(at, _)| at.as_millis() <= from) {
                t.pop_front();
            }
            !t.is_empty()
        });
    }
}
