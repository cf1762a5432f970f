//! Complaints against faults: how many, how many a known fault explained, whether the NOC
//! knew first (its alarm came before the first complaint) and by how much, and the complaint
//! targets met or breached — by fault, service or site.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::report::Format;
use super::{GroupBy, Stats, groups_of};
use crate::model::{Complaint, ComplaintState, FaultId, FaultRecord, Place, Timestamp};

/// One group's complaint figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComplaintRow {
    /// The group (a fault, service or site); `all` for the total row, `-` for unexplained.
    pub group: String,
    /// Complaints received in the window.
    pub complaints: usize,
    /// Of those, linked to a known fault.
    pub explained: usize,
    /// Still open.
    pub open: usize,
    /// Faults with at least one complaint.
    pub faults: usize,
    /// Of those, faults whose alarm came before their first complaint.
    pub noc_knew_first: usize,
    /// How long before the first complaint the alarm came, for those faults.
    pub lead: Option<Stats>,
    /// Answered within the response target.
    pub respond_met: usize,
    /// Not answered within it.
    pub respond_breached: usize,
    /// Resolved within the resolve target.
    pub resolve_met: usize,
    /// Not resolved within it.
    pub resolve_breached: usize,
}

/// The complaint report over one window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComplaintReport {
    /// Complaints received at or after this...
    pub since: Timestamp,
    /// ...and before this.
    pub until: Timestamp,
    /// Grouping: fault, service or site.
    pub by: GroupBy,
    /// One row per group.
    pub rows: Vec<ComplaintRow>,
    /// Everything.
    pub total: ComplaintRow,
}

/// Builds the report for complaints received in `[since, until)`. A complaint's group is its
/// fault's (by fault or service; `-` when unexplained), or by site its place's site (a cell's
/// is its fault's site, when it has one).
pub fn complaint_report(
    complaints: &[Complaint],
    faults: &[FaultRecord],
    by: GroupBy,
    since: Timestamp,
    until: Timestamp,
) -> ComplaintReport {
    let by_id: HashMap<FaultId, &FaultRecord> = faults.iter().map(|f| (f.id, f)).collect();
    let fault_of = |c: &Complaint| c.link.as_ref().and_then(|l| by_id.get(&l.fault).copied());
    let in_window: Vec<&Complaint> = complaints
        .iter()
        .filter(|c| c.received_at >= since && c.received_at < until)
        .collect();
    let mut groups: BTreeMap<(u64, String), Vec<&Complaint>> = BTreeMap::new();
    for c in &in_window {
        let fault = fault_of(c);
        let order = if by == GroupBy::Fault {
            fault.map_or(u64::MAX, |f| f.id.0)
        } else {
            0
        };
        let names = match (by, fault, &c.place) {
            (GroupBy::Site, _, Place::Site(s)) => vec![s.clone()],
            (_, Some(f), _) => groups_of(f, by),
            _ => vec!["-".to_owned()],
        };
        for g in names {
            groups.entry((order, g)).or_default().push(c);
        }
    }
    ComplaintReport {
        since,
        until,
        by,
        rows: groups
            .into_iter()
            .map(|((_, g), cs)| row(g, &cs, &fault_of))
            .collect(),
        total: row("all".to_owned(), &in_window, &fault_of),
    }
}

fn row<'a>(
    group: String,
    complaints: &[&Complaint],
    fault_of: &dyn Fn(&Complaint) -> Option<&'a FaultRecord>,
) -> ComplaintRow {
    // Each fault's first complaint, for "the NOC knew first" and its lead.
    let mut first: BTreeMap<FaultId, (Timestamp, Timestamp)> = BTreeMap::new();
    for c in complaints {
        if let (Some(link), Some(_)) = (&c.link, fault_of(c)) {
            let e = first
                .entry(link.fault)
                .or_insert((c.received_at, link.fault_raised_at));
            e.0 = e.0.min(c.received_at);
        }
    }
    let mut lead: Vec<f64> = first
        .values()
        .filter(|(complaint, raised)| raised <= complaint)
        .map(|(complaint, raised)| complaint.since(*raised).as_secs_f64())
        .collect();
    let answered = |c: &&&Complaint| c.acked_at.is_some() || c.respond_breached;
    let done = |c: &&&Complaint| c.resolved_at.is_some() || c.resolve_breached;
    ComplaintRow {
        group,
        complaints: complaints.len(),
        explained: complaints.iter().filter(|c| c.link.is_some()).count(),
        open: complaints
            .iter()
            .filter(|c| c.state != ComplaintState::Resolved)
            .count(),
        faults: first.len(),
        noc_knew_first: lead.len(),
        lead: Stats::of(&mut lead),
        respond_met: complaints
            .iter()
            .filter(answered)
            .filter(|c| !c.respond_breached)
            .count(),
        respond_breached: complaints.iter().filter(|c| c.respond_breached).count(),
        resolve_met: complaints
            .iter()
            .filter(done)
            .filter(|c| !c.resolve_breached)
            .count(),
        resolve_breached: complaints.iter().filter(|c| c.resolve_breached).count(),
    }
}

/// A share as a whole percentage, `-` of none.
fn share(part: usize, of: usize) -> String {
    if of == 0 {
        "-".to_owned()
    } else {
        format!("{:.0} %", part as f64 * 100.0 / of as f64)
    }
}

/// Renders the complaint report.
pub fn render_complaint_report(r: &ComplaintReport, format: Format) -> String {
    let rows = || r.rows.iter().chain(std::iter::once(&r.total));
    match format {
        Format::Json => serde_json::to_string_pretty(r).unwrap_or_default() + "\n",
        Format::Csv => {
            let mut out = String::from(
                "since,until,by,group,complaints,explained,open,faults,noc_knew_first,lead_median_s,lead_p90_s,respond_met,respond_breached,resolve_met,resolve_breached\n",
            );
            for row in rows() {
                let lead = |f: fn(&Stats) -> f64| {
                    row.lead
                        .as_ref()
                        .map_or(String::new(), |s| format!("{:.0}", f(s)))
                };
                let _ = writeln!(
                    out,
                    "{},{},{},\"{}\",{},{},{},{},{},{},{},{},{},{},{}",
                    r.since,
                    r.until,
                    r.by.name(),
                    row.group.replace('"', "\"\""),
                    row.complaints,
                    row.explained,
                    row.open,
                    row.faults,
                    row.noc_knew_first,
                    lead(|s| s.median_secs),
                    lead(|s| s.p90_secs),
                    row.respond_met,
                    row.respond_breached,
                    row.resolve_met,
                    row.resolve_breached
                );
            }
            out
        }
        Format::Table => {
            let mut table = vec![[
                r.by.name().to_owned(),
                "complaints".into(),
                "explained".into(),
                "open".into(),
                "NOC knew first".into(),
                "lead p50".into(),
                "respond met/late".into(),
                "resolve met/late".into(),
            ]];
            for row in rows() {
                table.push([
                    row.group.clone(),
                    row.complaints.to_string(),
                    format!(
                        "{} ({})",
                        row.explained,
                        share(row.explained, row.complaints)
                    ),
                    row.open.to_string(),
                    format!(
                        "{} of {} ({})",
                        row.noc_knew_first,
                        row.faults,
                        share(row.noc_knew_first, row.faults)
                    ),
                    row.lead
                        .as_ref()
                        .map_or("-".to_owned(), |s| super::report::duration(s.median_secs)),
                    format!("{}/{}", row.respond_met, row.respond_breached),
                    format!("{}/{}", row.resolve_met, row.resolve_breached),
                ]);
            }
            let rows: Vec<Vec<String>> = table.into_iter().map(Vec::from).collect();
            format!(
                "complaints received {} .. {}\n{}",
                r.since,
                r.until,
                super::report::columns(&rows)
            )
        }
    }
}
