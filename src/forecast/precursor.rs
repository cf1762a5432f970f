//! Precursors of failure: evidence, over the last few days, that a link or a device is wearing
//! out before it fails, each raised as a `degradation:*` warning that says what a person can
//! check. Pure, time passed in.
//!
//! - **A rising trend** of interface errors or discards, of loss (each a day's mean), or of a
//!   probe's latency (a day's p95) on one series ([`Trend`]): over the window, most pairs of
//!   days later-higher (Kendall's τ at least [`TAU`]), the last three days' median at least
//!   `rise` times the first three's, and above a floor (so a rise from nothing to next to
//!   nothing, or noise, is not a trend).
//! - **Recurring events** on one device or interface ([`Recurring`]): reboots, or a link going
//!   down, at least so many times within the window.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::message::Verdict;
use crate::model::{Category, Metric, MetricKind, PROBE_OBJECT, SeriesKey, Severity, Timestamp};

const DAY_MS: i64 = 86_400_000;
/// The most days a trend keeps (the longest window allowed).
pub const MAX_DAYS: usize = 30;
/// Kendall's τ a trend needs: 0.6 is 80 % of the pairs of days later-higher.
pub const TAU: f64 = 0.6;
/// Latency bins: 64 of ×2^(1/4) from 0.25 ms (up to about 16 s), so a day's p95 is known to
/// within 10 %.
const LATENCY_BINS: usize = 64;
const LATENCY_FROM_MS: f64 = 0.25;

/// The rules, from `[precursors]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rules {
    /// The window, in days.
    pub days: u32,
    /// How many times the first days' level the last days' must be (errors, discards, loss).
    pub rise: f64,
    /// The same for a probe's latency p95.
    pub latency_rise: f64,
    /// Reboots within the window that make a precursor.
    pub reboots: u32,
    /// Link downs of one interface within the window that make a precursor.
    pub link_flaps: u32,
}

/// Whether a metric's trend is watched, and the floor its last days must reach: errors and
/// discards 0.1 a second, loss 0.5 %, latency 10 ms.
pub fn floor(metric: Metric) -> Option<f64> {
    match metric {
        Metric::ErrorsPerSec | Metric::DiscardsPerSec => Some(0.1),
        Metric::LossPct => Some(0.5),
        Metric::LatencyMs => Some(10.0),
        _ => None,
    }
}

/// Whether a series' trend is watched: errors, discards and loss anywhere, latency of probes
/// (`icmp`) only, as a probe's p95 is what the rule is about.
pub fn watched(series: &SeriesKey) -> bool {
    floor(series.metric).is_some()
        && (series.metric.kind() != MetricKind::Latency || series.object == PROBE_OBJECT)
}

/// The day being gathered: kept inline in the series' slot, so a sample costs no pointer
/// chase (the [`Trend`] is touched at the day's end, and for latency per sample).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Today {
    day: i64,
    sum: f64,
    n: u32,
}

/// One series' last [`MAX_DAYS`] days' values, and for latency the day's bins.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Trend {
    bins: Vec<u16>,
    days: VecDeque<(i64, f32)>,
    /// Whether its precursor is raised.
    pub raised: bool,
}

/// Takes a sample of a watched series: `today` inline, `trend` made at its first need. True
/// when the sample ended a day (then judge the trend).
pub fn step(
    today: &mut Today,
    trend: &mut Option<Box<Trend>>,
    metric: Metric,
    at: Timestamp,
    value: f64,
) -> bool {
    if !value.is_finite() {
        return false;
    }
    let latency = metric.kind() == MetricKind::Latency;
    let day = at.as_millis().div_euclid(DAY_MS);
    let mut ended = false;
    if today.n == 0 {
        today.day = day;
    } else if day > today.day {
        let t = trend.get_or_insert_default();
        let value = if latency {
            p95(&t.bins, today.n)
        } else {
            today.sum / f64::from(today.n)
        };
        t.days.push_back((today.day, value as f32));
        if t.days.len() > MAX_DAYS {
            t.days.pop_front();
        }
        t.bins.iter_mut().for_each(|b| *b = 0);
        *today = Today {
            day,
            sum: 0.0,
            n: 0,
        };
        ended = true;
    } else if day < today.day {
        return false;
    }
    today.n += 1;
    if latency {
        let t = trend.get_or_insert_default();
        t.bins.resize(LATENCY_BINS, 0);
        let bin = ((value.max(LATENCY_FROM_MS) / LATENCY_FROM_MS).log2() * 4.0) as usize;
        if let Some(b) = t.bins.get_mut(bin.min(LATENCY_BINS - 1)) {
            *b = b.saturating_add(1);
        }
    } else {
        today.sum += value;
    }
    ended
}

impl Trend {
    /// The finished days' values, oldest first: (day since the epoch, value).
    pub fn days(&self) -> impl Iterator<Item = (i64, f64)> + '_ {
        self.days.iter().map(|(d, v)| (*d, f64::from(*v)))
    }

    /// The evidence of a rising trend over the window ending with the last finished day, in
    /// words; `None` if there is none.
    pub fn evidence(&self, metric: Metric, rules: &Rules) -> Option<String> {
        let floor = floor(metric)?;
        let &(last, _) = self.days.back()?;
        let window: Vec<f64> = self
            .days
            .iter()
            .filter(|(d, _)| *d > last - i64::from(rules.days))
            .map(|(_, v)| f64::from(*v))
            .collect();
        // A missing day is allowed; more than one and the window says too little.
        if window.len() + 1 < rules.days as usize || window.len() < 4 {
            return None;
        }
        let median3 = |v: &[f64]| {
            let mut v = v.to_vec();
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let (first, end) = (median3(&window[..3]), median3(&window[window.len() - 3..]));
        let rise = if metric.kind() == MetricKind::Latency {
            rules.latency_rise
        } else {
            rules.rise
        };
        if end < floor || end < rise * first || tau(&window) < TAU {
            return None;
        }
        let up = window.windows(2).filter(|w| w[1] > w[0]).count();
        let what = if metric.kind() == MetricKind::Latency {
            "daily p95"
        } else {
            "daily mean"
        };
        Some(format!(
            "{} rising for {} days: {what} from {} to {} (higher than the day before on {up} of {} days)",
            metric.name(),
            window.len(),
            metric.show(first),
            metric.show(end),
            window.len() - 1
        ))
    }
}

/// The `p95` of log bins, at the bin's middle.
fn p95(bins: &[u16], n: u32) -> f64 {
    let target = (0.95 * f64::from(n)).ceil();
    let mut seen = 0.0;
    for (i, c) in bins.iter().enumerate() {
        seen += f64::from(*c);
        if seen >= target {
            return LATENCY_FROM_MS * 2f64.powf((i as f64 + 0.5) / 4.0);
        }
    }
    0.0
}

/// Kendall's τ of a sequence against its order: +1 when every later day is higher.
fn tau(v: &[f64]) -> f64 {
    let mut s = 0i64;
    for i in 0..v.len() {
        for j in i + 1..v.len() {
            s += match v[j].partial_cmp(&v[i]) {
                Some(std::cmp::Ordering::Greater) => 1,
                Some(std::cmp::Ordering::Less) => -1,
                _ => 0,
            };
        }
    }
    let pairs = (v.len() * v.len().saturating_sub(1) / 2).max(1);
    s as f64 / pairs as f64
}

/// When an event recurred: the last times, at most as many as the rule counts.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Recurring {
    at: VecDeque<Timestamp>,
    /// Whether its precursor is raised.
    pub raised: bool,
}

impl Recurring {
    /// Records one more at `at`; keeps the last `threshold`.
    pub fn record(&mut self, at: Timestamp, threshold: u32) {
        self.at.push_back(at);
        while self.at.len() > threshold as usize {
            self.at.pop_front();
        }
    }

    /// How many fell within `days` before `now`.
    pub fn within(&self, now: Timestamp, days: u32) -> usize {
        let from = now.as_millis() - i64::from(days) * DAY_MS;
        self.at.iter().filter(|t| t.as_millis() > from).count()
    }

    /// The times, oldest first, for the text.
    pub fn times(&self) -> impl Iterator<Item = Timestamp> + '_ {
        self.at.iter().copied()
    }
}

/// A precursor's verdict: raised (a warning) or cleared, with its evidence.
pub fn verdict(
    series: SeriesKey,
    at: Timestamp,
    what: &str,
    raised: bool,
    text: String,
) -> Verdict {
    let category = match series.metric.kind() {
        MetricKind::State => Category::Equipment,
        _ => Category::Performance,
    };
    Verdict {
        series,
        at,
        condition: format!("degradation:{what}"),
        severity: if raised {
            Severity::Warning
        } else {
            Severity::Cleared
        },
        category,
        threshold: None,
        text,
    }
}
