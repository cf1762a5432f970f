//! MTTA and MTTR month by month (UTC calendar months): how the NOC does over time, each month
//! against the one before.

use std::fmt::Write as _;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::report::{Format, duration};
use super::{FaultRecord, Stats};
use crate::model::Timestamp;

/// One month's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MonthRow {
    /// `2026-11`.
    pub month: String,
    /// Faults raised in it.
    pub faults: usize,
    /// Time to acknowledge.
    pub mtta: Option<Stats>,
    /// Time to repair.
    pub mttr: Option<Stats>,
    /// Faults whose acknowledge target passed.
    pub ack_breaches: usize,
    /// Faults whose restore target passed.
    pub restore_breaches: usize,
    /// Faults of a device and condition that had one in the 30 days before.
    pub recurrences: usize,
    /// The median MTTR against the month before, in percent (`-12` is 12 % faster).
    pub mttr_change_pct: Option<i64>,
}

/// Days since 1970-01-01 to (year, month): Howard Hinnant's civil-from-days.
fn civil(days: i64) -> (i64, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month as u32)
}

fn month_of(t: Timestamp) -> (i64, u32) {
    civil(t.as_millis().div_euclid(86_400_000))
}

/// The last `months` calendar months up to `now`'s, oldest first.
pub fn monthly(faults: &[FaultRecord], months: usize, now: Timestamp) -> Vec<MonthRow> {
    let (mut year, mut month) = month_of(now);
    let mut wanted = Vec::with_capacity(months);
    for _ in 0..months.max(1) {
        wanted.push((year, month));
        (year, month) = if month == 1 {
            (year - 1, 12)
        } else {
            (year, month - 1)
        };
    }
    wanted.reverse();
    let recurs = |f: &FaultRecord| {
        let since = f.raised_at.minus(Duration::from_secs(30 * 86_400));
        faults.iter().any(|o| {
            o.id != f.id
                && o.device == f.device
                && o.condition == f.condition
                && o.raised_at >= since
                && o.raised_at < f.raised_at
        })
    };
    let mut previous: Option<f64> = None;
    wanted
        .into_iter()
        .map(|(y, m)| {
            let these: Vec<&FaultRecord> = faults
                .iter()
                .filter(|f| month_of(f.raised_at) == (y, m))
                .collect();
            let secs = |d: Duration| d.as_secs_f64();
            let mut mtta: Vec<f64> = these.iter().filter_map(|f| f.mtta()).map(secs).collect();
            let mut mttr: Vec<f64> = these.iter().filter_map(|f| f.mttr()).map(secs).collect();
            let mttr = Stats::of(&mut mttr);
            let median = mttr.as_ref().map(|s| s.median_secs);
            let change = match (previous, median) {
                (Some(p), Some(m)) if p > 0.0 => Some(((m - p) / p * 100.0).round() as i64),
                _ => None,
            };
            if median.is_some() {
                previous = median;
            }
            MonthRow {
                month: format!("{y:04}-{m:02}"),
                faults: these.len(),
                mtta: Stats::of(&mut mtta),
                mttr,
                ack_breaches: these.iter().filter(|f| f.ack_breached).count(),
                restore_breaches: these.iter().filter(|f| f.restore_breached).count(),
                recurrences: these.iter().filter(|f| recurs(f)).count(),
                mttr_change_pct: change,
            }
        })
        .collect()
}

/// Renders the months.
pub fn render_monthly(rows: &[MonthRow], format: Format) -> String {
    let median = |s: &Option<Stats>| s.as_ref().map(|s| s.median_secs);
    match format {
        Format::Json => serde_json::to_string_pretty(rows).unwrap_or_default() + "\n",
        Format::Csv => {
            let mut out = String::from(
                "month,faults,mtta_median_s,mttr_median_s,ack_breaches,restore_breaches,recurrences,mttr_change_pct\n",
            );
            for r in rows {
                let s = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.0}"));
                let _ = writeln!(
                    out,
                    "{},{},{},{},{},{},{},{}",
                    r.month,
                    r.faults,
                    s(median(&r.mtta)),
                    s(median(&r.mttr)),
                    r.ack_breaches,
                    r.restore_breaches,
                    r.recurrences,
                    r.mttr_change_pct.map_or(String::new(), |c| c.to_string())
                );
            }
            out
        }
        Format::Table => {
            let mut table = vec![
                [
                    "month",
                    "faults",
                    "MTTA p50",
                    "MTTR p50",
                    "vs month before",
                    "ack late",
                    "repair late",
                    "recurrences",
                ]
                .map(str::to_owned)
                .to_vec(),
            ];
            for r in rows {
                let d = |v: Option<f64>| v.map_or("-".to_owned(), duration);
                table.push(vec![
                    r.month.clone(),
                    r.faults.to_string(),
                    d(median(&r.mtta)),
                    d(median(&r.mttr)),
                    r.mttr_change_pct
                        .map_or("-".to_owned(), |c| format!("{c:+} %")),
                    r.ack_breaches.to_string(),
                    r.restore_breaches.to_string(),
                    r.recurrences.to_string(),
                ]);
            }
            super::report::columns(&table)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_fall_in_their_calendar_month() {
        assert_eq!(civil(0), (1970, 1));
        assert_eq!(civil(31), (1970, 2));
        // 2024 is a leap year: 29 February, then March.
        assert_eq!(civil(19_782), (2024, 2));
        assert_eq!(civil(19_783), (2024, 3));
        assert_eq!(
            month_of(Timestamp::from_millis(1_796_083_200_000)),
            (2026, 12)
        );
        assert_eq!(
            month_of(Timestamp::from_millis(1_796_083_199_999)),
            (2026, 11)
        );
    }
}
