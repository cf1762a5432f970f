//! Whether automated handling pays: per rule, what its actions came to, and the median time
//! from raise to clear of the faults it acted on against those it would have matched and did
//! not act on (before it existed, while paused or throttled, or skipped).

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::Stats;
use super::report::{Format, columns, duration};
use crate::config::{ActionRule, Filtered, Topology};
use crate::model::{ActionRecord, ActionState, FaultRecord, RuleState, Timestamp};

/// The report over one window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionReport {
    /// From (actions planned and faults raised at or after).
    pub since: Timestamp,
    /// To (before).
    pub until: Timestamp,
    /// One row per rule, in config order, then rules no longer configured.
    pub rows: Vec<ActionReportRow>,
}

/// One rule's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionReportRow {
    /// The rule.
    pub rule: String,
    /// Its mode now (`dry-run`, `live`; `removed` if no longer configured).
    pub mode: String,
    /// Actions that started a step.
    pub runs: usize,
    /// ...of which every step did what it should (the alarm cleared within its waits).
    pub succeeded: usize,
    /// ...failed.
    pub failed: usize,
    /// ...were cut short by a stop: outcome unknown.
    pub unknown: usize,
    /// Not run: rate limit or open breaker.
    pub skipped: usize,
    /// Rejected or expired waiting for approval.
    pub not_approved: usize,
    /// Not ended yet.
    pub open: usize,
    /// Time to repair of the faults it acted on.
    pub mttr_with: Option<Stats>,
    /// Time to repair of the faults it matches and did not act on.
    pub mttr_without: Option<Stats>,
    /// The breaker is open.
    pub breaker_open: bool,
}

/// Whether `rule`'s filters (not its trigger) match a fault: what the rule would have acted
/// on. The fault's site and role are those it was raised with.
pub fn fault_matches(rule: &ActionRule, f: &FaultRecord, topology: &Topology) -> bool {
    rule.takes(
        &Filtered {
            severity: f.peak_severity,
            category: f.category,
            device: &f.device,
            role: f.role,
            site: f.site.as_deref(),
            object: &f.object,
            condition: &f.condition,
            services: &f.impact.services,
        },
        topology,
    )
}

/// The report: `actions` planned and `faults` raised in `[since, until)`.
pub fn action_report(
    rules: &[ActionRule],
    topology: &Topology,
    actions: &[ActionRecord],
    faults: &[FaultRecord],
    states: &[(String, RuleState)],
    since: Timestamp,
    until: Timestamp,
) -> ActionReport {
    let within = |t: Timestamp| t >= since && t < until;
    let mut names: Vec<(String, String)> = rules
        .iter()
        .map(|r| (r.name.clone(), r.mode.name().to_owned()))
        .collect();
    for a in actions {
        if !names.iter().any(|(n, _)| *n == a.rule) {
            names.push((a.rule.clone(), "removed".to_owned()));
        }
    }
    let rows = names
        .into_iter()
        .map(|(name, mode)| {
            let mine: Vec<&ActionRecord> = actions
                .iter()
                .filter(|a| a.rule == name && within(a.created_at))
                .collect();
            let count = |s: ActionState| mine.iter().filter(|a| a.state == s).count();
            let ran = |a: &&&ActionRecord| a.steps.iter().any(|s| s.started_at.is_some());
            let acted: Vec<_> = mine.iter().filter(ran).map(|a| a.fault_id).collect();
            let rule = rules.iter().find(|r| r.name == name);
            let (mut with, mut without) = (Vec::new(), Vec::new());
            for f in faults.iter().filter(|f| within(f.raised_at)) {
                let Some(d) = f.mttr() else { continue };
                if acted.contains(&f.id) {
                    with.push(d.as_secs_f64());
                } else if rule.is_some_and(|r| fault_matches(r, f, topology))
                    && !actions
                        .iter()
                        .any(|a| a.rule == name && a.fault_id == f.id && ran(&&a))
                {
                    without.push(d.as_secs_f64());
                }
            }
            ActionReportRow {
                runs: mine.iter().filter(ran).count(),
                succeeded: count(ActionState::Succeeded),
                failed: count(ActionState::Failed),
                unknown: count(ActionState::Unknown),
                skipped: count(ActionState::Skipped),
                not_approved: count(ActionState::Rejected) + count(ActionState::Expired),
                open: mine.iter().filter(|a| !a.state.is_final()).count(),
                mttr_with: Stats::of(&mut with),
                mttr_without: Stats::of(&mut without),
                breaker_open: states.iter().any(|(n, s)| *n == name && s.open),
                rule: name,
                mode,
            }
        })
        .collect();
    ActionReport { since, until, rows }
}

/// Renders the report.
pub fn render_action_report(r: &ActionReport, format: Format) -> String {
    let median = |s: &Option<Stats>| s.as_ref().map(|s| s.median_secs);
    match format {
        Format::Json => serde_json::to_string_pretty(r).unwrap_or_default() + "\n",
        Format::Csv => {
            let mut out = String::from(
                "since,until,rule,mode,runs,succeeded,failed,unknown,skipped,not_approved,open,mttr_with_median_s,faults_with,mttr_without_median_s,faults_without,breaker_open\n",
            );
            for row in &r.rows {
                let secs =
                    |s: &Option<Stats>| median(s).map_or(String::new(), |m| format!("{m:.0}"));
                let n = |s: &Option<Stats>| s.as_ref().map_or(0, |s| s.count);
                let _ = writeln!(
                    out,
                    "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                    r.since,
                    r.until,
                    row.rule,
                    row.mode,
                    row.runs,
                    row.succeeded,
                    row.failed,
                    row.unknown,
                    row.skipped,
                    row.not_approved,
                    row.open,
                    secs(&row.mttr_with),
                    n(&row.mttr_with),
                    secs(&row.mttr_without),
                    n(&row.mttr_without),
                    row.breaker_open
                );
            }
            out
        }
        Format::Table => {
            if r.rows.is_empty() {
                return "no action rules configured and no actions recorded\n".to_owned();
            }
            let stat = |s: &Option<Stats>| match s {
                Some(s) => format!("{} ({})", duration(s.median_secs), s.count),
                None => "-".to_owned(),
            };
            let mut rows = vec![
                [
                    "rule",
                    "mode",
                    "runs",
                    "ok",
                    "failed",
                    "unknown",
                    "skipped",
                    "not approved",
                    "open",
                    "MTTR p50 with (n)",
                    "without (n)",
                    "breaker",
                ]
                .map(str::to_owned)
                .to_vec(),
            ];
            for row in &r.rows {
                rows.push(vec![
                    row.rule.clone(),
                    row.mode.clone(),
                    row.runs.to_string(),
                    row.succeeded.to_string(),
                    row.failed.to_string(),
                    row.unknown.to_string(),
                    row.skipped.to_string(),
                    row.not_approved.to_string(),
                    row.open.to_string(),
                    stat(&row.mttr_with),
                    stat(&row.mttr_without),
                    if row.breaker_open { "OPEN" } else { "closed" }.to_owned(),
                ]);
            }
            format!(
                "actions planned {} .. {}\n{}",
                r.since,
                r.until,
                columns(&rows)
            )
        }
    }
}
