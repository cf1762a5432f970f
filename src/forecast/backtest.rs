//! `noctua backtest --forecast`: a history through the forecaster, day by day, with when it
//! predicted the level would be crossed against when it was, and the predictive alarms the
//! guards would have let through. The daemon's predictive alarms follow the same rules.

use std::fmt::Write as _;

use super::predict::{Horizons, MARGIN_DAYS, Predictor, date};
use super::{Crossing, Forecaster};
use crate::model::{Offset, Severity, parse_history_time};

/// The rules a forecast backtest runs with.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// The level whose crossing is predicted.
    pub level: f64,
    /// Days of history before anything is predicted.
    pub min_days: u32,
    /// Nothing is predicted while the busy hour is under this.
    pub floor: f64,
    /// A predictive alarm needs this many days in a row predicting a crossing within
    /// `within_days`.
    pub agree: u32,
    /// How far ahead a crossing raises a predictive alarm.
    pub within_days: u32,
    /// For timestamps written without an offset.
    pub timezone: Offset,
}

/// What the run found.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Found {
    /// Rows read, and rows refused (not a time and a number).
    pub rows: usize,
    /// Rows refused.
    pub refused: usize,
    /// Days learned.
    pub days: usize,
    /// The first day the busy hour reached the level to stay (three days of seven), if it did.
    pub crossed: Option<i64>,
    /// Days with a predicted crossing before the actual one.
    pub predictions: usize,
    /// Median |predicted − actual| over those, in days.
    pub median_error_days: Option<f64>,
    /// Predictive alarms raised.
    pub alarms: usize,
    /// Of those, not followed by a crossing within `within_days` + a week.
    pub false_alarms: usize,
}

impl Found {
    /// False predictive alarms per series-month (30 days).
    pub fn false_per_month(&self) -> f64 {
        self.false_alarms as f64 / (self.days.max(1) as f64 / 30.0)
    }

    /// One line for people.
    pub fn line(&self) -> String {
        let crossed = self
            .crossed
            .map_or("never".to_owned(), |d| format!("on {}", date(d)));
        let error = self
            .median_error_days
            .map_or("-".to_owned(), |e| format!("{e:.1} days"));
        format!(
            "{} rows ({} refused), {} days; crossed {crossed}; {} days predicted it, median error {error}; {} predictive alarms, {} false ({:.2} per series-month)",
            self.rows,
            self.refused,
            self.days,
            self.predictions,
            self.alarms,
            self.false_alarms,
            self.false_per_month()
        )
    }
}

/// One learned day.
struct Row {
    day: i64,
    busy: f64,
    now: f64,
    per_week: f64,
    crossing: Option<Crossing>,
}

/// Runs `csv` (`timestamp,value` rows, header optional) under `rules`: a CSV row per learned
/// day, and what was found.
pub fn run(csv: &str, rules: &Rules) -> (String, Found) {
    let mut f = Forecaster::default();
    let mut found = Found::default();
    let mut rows = Vec::new();
    for (i, line) in csv.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let mut fields = line.split(',').map(str::trim);
        let (ts, value) = (fields.next().unwrap_or(""), fields.next().unwrap_or(""));
        let Some((at, v)) = parse_history_time(ts, rules.timezone).zip(value.parse::<f64>().ok())
        else {
            if i > 0 {
                found.refused += 1;
            }
            continue;
        };
        found.rows += 1;
        if let Some(day) = f.step(at, v) {
            rows.push(Row {
                day: day.day,
                busy: day.busy,
                now: f.now(),
                per_week: f.per_week(),
                crossing: f.crossing(rules.level, rules.min_days, rules.floor),
            });
        }
    }
    found.days = rows.len();
    // Crossed for good, not by a burst: the first day from which at least three of seven days
    // are at or above the level.
    found.crossed = (0..rows.len())
        .find(|&i| {
            rows[i].busy >= rules.level
                && rows[i..]
                    .iter()
                    .take_while(|r| r.day < rows[i].day + 7)
                    .filter(|r| r.busy >= rules.level)
                    .count()
                    >= 3
        })
        .map(|i| rows[i].day);
    let mut out = String::from(
        "day,busy_hour,level,growth_per_week_pct,predicted,earliest,latest,actual,error_days,alarm\n",
    );
    let mut errors = Vec::new();
    let mut predictor = Predictor::default();
    // One tier stands for "raised": only whether the crossing is within `within_days` counts.
    let horizons = Horizons {
        major: 0,
        minor: 0,
        warning: rules.within_days,
    };
    for r in &rows {
        let predicted = r.crossing.map(|c| r.day + i64::from(c.days));
        let error = match (predicted, found.crossed) {
            (Some(p), Some(a)) if r.day < a => Some(p - a),
            _ => None,
        };
        if let Some(e) = error {
            errors.push(e.unsigned_abs() as f64);
        }
        let soonest = r.crossing.map(|c| c.days);
        let alarm = match predictor.day(soonest, &horizons, rules.agree) {
            Some(Severity::Cleared) => "cleared",
            Some(_) => {
                found.alarms += 1;
                let real = found
                    .crossed
                    .is_some_and(|a| a - r.day <= i64::from(rules.within_days + MARGIN_DAYS));
                if !real {
                    found.false_alarms += 1;
                }
                "raised"
            }
            None if predictor.tier != Severity::Cleared => "active",
            None => "",
        };
        let day_or = |d: Option<i64>| d.map_or(String::new(), date);
        let _ = writeln!(
            out,
            "{},{:.2},{:.2},{:.2},{},{},{},{},{},{alarm}",
            date(r.day),
            r.busy,
            r.now,
            r.per_week * 100.0,
            day_or(predicted),
            day_or(r.crossing.map(|c| r.day + i64::from(c.earliest))),
            day_or(
                r.crossing
                    .and_then(|c| c.latest)
                    .map(|l| r.day + i64::from(l))
            ),
            day_or(found.crossed),
            error.map_or(String::new(), |e| e.to_string()),
        );
    }
    found.predictions = errors.len();
    errors.sort_by(f64::total_cmp);
    found.median_error_days = (!errors.is_empty()).then(|| {
        let n = errors.len();
        if n % 2 == 1 {
            errors[n / 2]
        } else {
            (errors[n / 2 - 1] + errors[n / 2]) / 2.0
        }
    });
    (out, found)
}
