//! Renders MTTR reports and fault records as a table for people, JSON or CSV for tools.

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use crate::fault::{Report, ReportRow, Stats};
use crate::model::{ActionRecord, FaultRecord, named_enum};

/// Output format of the report and fault commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Aligned columns.
    Table,
    /// JSON (one document).
    Json,
    /// CSV with a header row.
    Csv,
}

impl Format {
    /// Name, as in `--format`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Table => "table",
            Format::Json => "json",
            Format::Csv => "csv",
        }
    }
}

named_enum!(Format, "format", [Format::Table, Format::Json, Format::Csv]);

/// Renders MTTR reports.
pub fn render_reports(reports: &[Report], format: Format) -> String {
    match format {
        Format::Json => json(reports),
        Format::Csv => {
            let mut out = String::from(
                "window,since,until,by,group,faults,open,mtta_count,mtta_mean_s,mtta_median_s,mtta_p90_s,mttr_count,mttr_mean_s,mttr_median_s,mttr_p90_s,ack_breaches,restore_breaches,customers,customer_minutes\n",
            );
            for r in reports {
                for row in r.rows.iter().chain(std::iter::once(&r.total)) {
                    let by = r.by.name();
                    let _ = writeln!(
                        out,
                        "{},{},{},{},{},{},{},{},{},{},{},{},{}",
                        r.window,
                        r.since,
                        r.until,
                        by,
                        csv_field(&row.group),
                        row.faults,
                        row.open,
                        csv_stats(&row.mtta),
                        csv_stats(&row.mttr),
                        row.ack_breaches,
                        row.restore_breaches,
                        row.customers,
                        row.customer_minutes
                    );
                }
            }
            out
        }
        Format::Table => {
            let mut out = String::new();
            for r in reports {
                let _ = writeln!(out, "window {} ({} .. {})", r.window, r.since, r.until);
                let mut rows = vec![vec![
                    "group".to_owned(),
                    "faults".into(),
                    "open".into(),
                    "MTTA mean".into(),
                    "MTTA p50".into(),
                    "MTTA p90".into(),
                    "MTTR mean".into(),
                    "MTTR p50".into(),
                    "MTTR p90".into(),
                    "ack breaches".into(),
                    "restore breaches".into(),
                    "customers".into(),
                    "customer-min".into(),
                ]];
                for row in r.rows.iter().chain(std::iter::once(&r.total)) {
                    rows.push(table_row(row));
                }
                out.push_str(&columns(&rows));
                out.push('\n');
            }
            out
        }
    }
}

fn table_row(row: &ReportRow) -> Vec<String> {
    let stat = |s: &Option<Stats>, f: fn(&Stats) -> f64| {
        s.as_ref().map_or("-".to_owned(), |s| duration(f(s)))
    };
    vec![
        row.group.clone(),
        row.faults.to_string(),
        row.open.to_string(),
        stat(&row.mtta, |s| s.mean_secs),
        stat(&row.mtta, |s| s.median_secs),
        stat(&row.mtta, |s| s.p90_secs),
        stat(&row.mttr, |s| s.mean_secs),
        stat(&row.mttr, |s| s.median_secs),
        stat(&row.mttr, |s| s.p90_secs),
        row.ack_breaches.to_string(),
        row.restore_breaches.to_string(),
        row.customers.to_string(),
        row.customer_minutes.to_string(),
    ]
}

/// One fault as `faults show` prints it: JSON, in a list of one like `faults list`, with the
/// actions taken on it (its automated-handling audit trail).
pub fn render_fault_shown(fault: &FaultRecord, actions: &[ActionRecord]) -> String {
    let mut v = serde_json::to_value(fault).unwrap_or_default();
    v["actions"] = serde_json::to_value(actions).unwrap_or_default();
    json(&[v])
}

/// Renders fault records as a list.
pub fn render_faults(faults: &[FaultRecord], format: Format) -> String {
    match format {
        Format::Json => json(faults),
        Format::Csv => {
            let mut out = String::from(
                "id,alarm_id,device,object,condition,category,peak_severity,raised_at,acked_at,acked_by,cleared_at,cleared_by,mtta_s,mttr_s,reopened,ack_breached,restore_breached\n",
            );
            for f in faults {
                let opt = |t: Option<String>| t.unwrap_or_default();
                let _ = writeln!(
                    out,
                    "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                    f.id.0,
                    f.alarm_id,
                    csv_field(&f.device),
                    csv_field(&f.object),
                    csv_field(&f.condition),
                    f.category.name(),
                    f.peak_severity.name(),
                    f.raised_at,
                    opt(f.acked_at.map(|t| t.to_string())),
                    csv_field(f.acked_by.as_deref().unwrap_or("")),
                    opt(f.cleared_at.map(|t| t.to_string())),
                    csv_field(f.cleared_by.as_deref().unwrap_or("")),
                    opt(f.mtta().map(|d| whole_secs(d.as_secs_f64()).to_string())),
                    opt(f.mttr().map(|d| whole_secs(d.as_secs_f64()).to_string())),
                    f.reopened,
                    f.ack_breached,
                    f.restore_breached
                );
            }
            out
        }
        Format::Table => {
            let mut rows = vec![vec![
                "id".to_owned(),
                "device".into(),
                "object".into(),
                "condition".into(),
                "peak".into(),
                "raised".into(),
                "acked by".into(),
                "MTTA".into(),
                "MTTR".into(),
                "notes".into(),
            ]];
            for f in faults {
                let d =
                    |d: Option<Duration>| d.map_or("-".to_owned(), |d| duration(d.as_secs_f64()));
                rows.push(vec![
                    f.id.0.to_string(),
                    f.device.clone(),
                    f.object.clone(),
                    f.condition.clone(),
                    f.peak_severity.name().to_owned(),
                    f.raised_at.to_string(),
                    f.acked_by.clone().unwrap_or_else(|| "-".into()),
                    d(f.mtta()),
                    if f.cleared_at.is_some() {
                        d(f.mttr())
                    } else {
                        "open".into()
                    },
                    f.notes.len().to_string(),
                ]);
            }
            columns(&rows)
        }
    }
}

fn json<T: Serialize + ?Sized>(value: &T) -> String {
    // Serialising plain data with string keys cannot fail.
    serde_json::to_string_pretty(value).unwrap_or_default() + "\n"
}

fn csv_stats(s: &Option<Stats>) -> String {
    match s {
        None => ",,,".to_owned(),
        Some(s) => format!(
            "{},{},{},{}",
            s.count,
            whole_secs(s.mean_secs),
            whole_secs(s.median_secs),
            whole_secs(s.p90_secs)
        ),
    }
}

/// Quotes a CSV field when it needs it.
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// `4h12m`, `3m05s`, `42s`: compact and sortable by eye.
/// Seconds as every format shows them: rounded to the nearest (half away from zero), so a
/// table's `10s` is a CSV's `10`, never `9`.
fn whole_secs(secs: f64) -> u64 {
    secs.max(0.0).round() as u64
}

/// Seconds humanised for tables, from [`whole_secs`].
pub(super) fn duration(secs: f64) -> String {
    let s = whole_secs(secs);
    let (d, h, m, s) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m{s:02}s"),
        (0, _, _) => format!("{h}h{m:02}m"),
        _ => format!("{d}d{h:02}h"),
    }
}

/// Rows of cells as aligned columns, the first row the header.
pub fn columns(rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..rows.first().map_or(0, Vec::len))
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_and_csv_round_seconds_alike() {
        for (secs, whole, shown) in [
            (9.6, 10, "10s"),
            (9.4, 9, "9s"),
            (2.5, 3, "3s"),
            (0.5, 1, "1s"),
        ] {
            assert_eq!(whole_secs(secs), whole);
            assert_eq!(duration(secs), shown);
        }
    }

    #[test]
    fn durations_are_compact() {
        assert_eq!(duration(42.4), "42s");
        assert_eq!(duration(185.0), "3m05s");
        assert_eq!(duration(4.0 * 3600.0 + 720.0), "4h12m");
        assert_eq!(duration(2.0 * 86400.0 + 3600.0), "2d01h");
    }

    #[test]
    fn csv_quotes_only_when_needed() {
        assert_eq!(csv_field("ge-0/0/1"), "ge-0/0/1");
        assert_eq!(csv_field("a,\"b\""), "\"a,\"\"b\"\"\"");
    }
}
