//! Fault records and the MTTA/MTTR tracker.
//!
//! The alarm manager writes a [`FaultRecord`] with every transition; this module reads them back
//! and reports time to acknowledge and time to repair (maintenance time excluded) by severity,
//! category, device, site or role, with response-target breach counts.

pub mod actions;
pub mod complaints;
pub mod incident;
pub mod monthly;
pub mod report;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::{FaultRecord, Timestamp, named_enum};

/// What to group a report by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    /// Peak severity.
    Severity,
    /// Fault category.
    Category,
    /// Device name.
    Device,
    /// Device site.
    Site,
    /// Device role.
    Role,
    /// Each service the fault touched (a fault in two services counts in both).
    Service,
    /// Each fault on its own.
    Fault,
}

impl GroupBy {
    /// snake_case name, as in the API and the CLI.
    pub fn name(self) -> &'static str {
        match self {
            GroupBy::Severity => "severity",
            GroupBy::Category => "category",
            GroupBy::Device => "device",
            GroupBy::Site => "site",
            GroupBy::Role => "role",
            GroupBy::Service => "service",
            GroupBy::Fault => "fault",
        }
    }
}

named_enum!(
    GroupBy,
    "grouping",
    [
        GroupBy::Severity,
        GroupBy::Category,
        GroupBy::Device,
        GroupBy::Site,
        GroupBy::Role,
        GroupBy::Service,
        GroupBy::Fault,
    ]
);

/// Mean, median and 90th percentile of durations, in seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// How many values.
    pub count: usize,
    /// Arithmetic mean.
    pub mean_secs: f64,
    /// Median (linear interpolation).
    pub median_secs: f64,
    /// 90th percentile (linear interpolation).
    pub p90_secs: f64,
}

impl Stats {
    /// Statistics of `values`; `None` when there are none.
    pub fn of(values: &mut [f64]) -> Option<Self> {
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        let n = values.len();
        Some(Self {
            count: n,
            mean_secs: values.iter().sum::<f64>() / n as f64,
            median_secs: quantile(values, 0.5),
            p90_secs: quantile(values, 0.9),
        })
    }
}

/// Quantile of sorted values by linear interpolation between closest ranks.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// One group's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportRow {
    /// The group's value (e.g. `critical`, `core-r1`); `all` for the total row.
    pub group: String,
    /// Faults raised in the window.
    pub faults: usize,
    /// Of those, still open.
    pub open: usize,
    /// Time to acknowledge.
    pub mtta: Option<Stats>,
    /// Time to repair.
    pub mttr: Option<Stats>,
    /// Faults whose acknowledge target passed.
    pub ack_breaches: usize,
    /// Faults whose restore target passed.
    pub restore_breaches: usize,
    /// Customers affected: each fault's peak, summed (a customer in two faults counts twice;
    /// under root-cause suppression a symptom adds none).
    pub customers: u64,
    /// Customer-minutes lost.
    pub customer_minutes: u64,
}

/// MTTA/MTTR over one window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Label, e.g. `24h` or `custom`.
    pub window: String,
    /// Faults raised at or after this time...
    pub since: Timestamp,
    /// ...and before this one.
    pub until: Timestamp,
    /// Grouping.
    pub by: GroupBy,
    /// One row per group, sorted by group.
    pub rows: Vec<ReportRow>,
    /// All groups together.
    pub total: ReportRow,
}

/// Builds the report for faults raised in `[since, until)`.
pub fn report(
    faults: &[FaultRecord],
    by: GroupBy,
    window: &str,
    since: Timestamp,
    until: Timestamp,
) -> Report {
    let in_window: Vec<&FaultRecord> = faults
        .iter()
        .filter(|f| f.raised_at >= since && f.raised_at < until)
        .collect();
    // By fault id first (0 for other groupings), so faults list in the order they came.
    let mut groups: BTreeMap<(u64, String), Vec<&FaultRecord>> = BTreeMap::new();
    for f in &in_window {
        let order = if by == GroupBy::Fault { f.id.0 } else { 0 };
        for g in groups_of(f, by) {
            groups.entry((order, g)).or_default().push(f);
        }
    }
    Report {
        window: window.to_owned(),
        since,
        until,
        by,
        rows: groups.into_iter().map(|((_, g), fs)| row(g, &fs)).collect(),
        total: row("all".to_owned(), &in_window),
    }
}

/// The rolling windows reported when no `--since/--until` is given.
pub const ROLLING: [(&str, Duration); 3] = [
    ("24h", Duration::from_secs(86_400)),
    ("7d", Duration::from_secs(7 * 86_400)),
    ("30d", Duration::from_secs(30 * 86_400)),
];

/// The groups a fault counts in: one, except by service (each it touched, or `-`).
pub fn groups_of(f: &FaultRecord, by: GroupBy) -> Vec<String> {
    let one = match by {
        GroupBy::Severity => f.peak_severity.name().to_owned(),
        GroupBy::Category => f.category.name().to_owned(),
        GroupBy::Device => f.device.clone(),
        GroupBy::Site => f.site.clone().unwrap_or_else(|| "-".to_owned()),
        GroupBy::Role => f.role.map_or("-", |r| r.name()).to_owned(),
        GroupBy::Fault => format!("#{} {} {}", f.id.0, f.device, f.condition),
        GroupBy::Service if f.impact.services.is_empty() => "-".to_owned(),
        GroupBy::Service => return f.impact.services.clone(),
    };
    vec![one]
}

fn row(group: String, faults: &[&FaultRecord]) -> ReportRow {
    let secs = |d: Duration| d.as_secs_f64();
    let mut mtta: Vec<f64> = faults.iter().filter_map(|f| f.mtta()).map(secs).collect();
    let mut mttr: Vec<f64> = faults.iter().filter_map(|f| f.mttr()).map(secs).collect();
    ReportRow {
        group,
        faults: faults.len(),
        open: faults.iter().filter(|f| f.cleared_at.is_none()).count(),
        mtta: Stats::of(&mut mtta),
        mttr: Stats::of(&mut mttr),
        ack_breaches: faults.iter().filter(|f| f.ack_breached).count(),
        restore_breaches: faults.iter().filter(|f| f.restore_breached).count(),
        customers: faults.iter().map(|f| f.impact.peak_customers).sum(),
        customer_minutes: faults.iter().map(|f| f.impact.customer_minutes()).sum(),
    }
}

/// The MTTR reports for `[since, until)`: the [`ROLLING`] windows up to `now` when neither is
/// given, else one `custom` window (from the beginning, up to `now`, where one is missing).
/// The one rule for the CLI on a stopped store and for `GET /api/v1/mttr`.
pub fn reports(
    faults: &[FaultRecord],
    by: GroupBy,
    since: Option<Timestamp>,
    until: Option<Timestamp>,
    now: Timestamp,
) -> Vec<Report> {
    if since.is_none() && until.is_none() {
        ROLLING
            .iter()
            .map(|(label, d)| report(faults, by, label, now.minus(*d), now))
            .collect()
    } else {
        let since = since.unwrap_or(Timestamp::from_millis(0));
        vec![report(faults, by, "custom", since, until.unwrap_or(now))]
    }
}

/// Which fault records a listing shows; the one rule for the CLI and `GET /api/v1/faults`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultFilter {
    /// Only faults not yet cleared.
    pub open: bool,
    /// Only faults of this device.
    pub device: Option<String>,
    /// Only faults raised at or after this.
    pub since: Option<Timestamp>,
}

impl FaultFilter {
    /// Whether `f` passes.
    pub fn matches(&self, f: &FaultRecord) -> bool {
        (!self.open || f.cleared_at.is_none())
            && self.device.as_ref().is_none_or(|d| &f.device == d)
            && self.since.is_none_or(|s| f.raised_at >= s)
    }

    /// The faults that pass, newest first (a listing's order).
    pub fn newest_first(&self, faults: Vec<FaultRecord>) -> Vec<FaultRecord> {
        let mut out: Vec<FaultRecord> = faults.into_iter().filter(|f| self.matches(f)).collect();
        out.reverse();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AlarmId, Category, FaultId, Role, Severity};

    fn fault(
        id: u64,
        sev: Severity,
        raised: i64,
        acked: Option<i64>,
        cleared: Option<i64>,
    ) -> FaultRecord {
        FaultRecord {
            id: FaultId(id),
            alarm_id: AlarmId(id),
            device: format!("r{}", id % 2),
            object: "device".into(),
            condition: "c".into(),
            category: Category::Performance,
            peak_severity: sev,
            raised_at: Timestamp::from_millis(raised * 1000),
            acked_at: acked.map(|s| Timestamp::from_millis(s * 1000)),
            acked_by: None,
            cleared_at: cleared.map(|s| Timestamp::from_millis(s * 1000)),
            cleared_by: None,
            root_cause: None,
            notes: vec![],
            site: Some("east".into()),
            role: Some(Role::Router),
            reopened: 0,
            ack_breached: acked.is_none(),
            restore_breached: false,
            ack_maintenance_ms: 0,
            repair_maintenance_ms: 0,
            impact: Default::default(),
        }
    }

    #[test]
    fn stats_interpolate_median_and_p90() {
        let s = Stats::of(&mut [10.0, 20.0, 30.0, 40.0]).unwrap();
        assert_eq!((s.count, s.mean_secs, s.median_secs), (4, 25.0, 25.0));
        assert!((s.p90_secs - 37.0).abs() < 1e-9);
        assert_eq!(Stats::of(&mut []), None);
    }

    #[test]
    fn report_groups_and_windows() {
        let faults = vec![
            fault(1, Severity::Critical, 100, Some(160), Some(1000)),
            fault(2, Severity::Critical, 200, Some(500), None),
            fault(3, Severity::Minor, 300, None, Some(400)),
            fault(4, Severity::Minor, 5000, None, None),
        ];
        let r = report(
            &faults,
            GroupBy::Severity,
            "custom",
            Timestamp::from_millis(0),
            Timestamp::from_millis(1_000_000),
        );
        assert_eq!(r.rows.len(), 2);
        let crit = &r.rows[0];
        assert_eq!(
            (crit.group.as_str(), crit.faults, crit.open),
            ("critical", 2, 1)
        );
        let mtta = crit.mtta.as_ref().unwrap();
        assert_eq!((mtta.count, mtta.mean_secs), (2, 180.0));
        assert_eq!(crit.mttr.as_ref().unwrap().median_secs, 900.0);
        let minor = &r.rows[1];
        assert_eq!(
            (minor.group.as_str(), minor.faults, minor.ack_breaches),
            ("minor", 1, 1)
        );
        assert_eq!(minor.mtta, None);
        assert_eq!(r.total.faults, 3);
        let by_device = report(
            &faults,
            GroupBy::Device,
            "all",
            Timestamp::from_millis(0),
            Timestamp::from_millis(i64::MAX),
        );
        let groups: Vec<_> = by_device
            .rows
            .iter()
            .map(|r| (r.group.as_str(), r.faults))
            .collect();
        assert_eq!(groups, [("r0", 2), ("r1", 2)]);
    }
}
