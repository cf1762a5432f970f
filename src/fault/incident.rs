//! The post-incident report of one fault, assembled from what the store keeps: the alarm's
//! journal, the fault record and its notes, the faults suppressed below it, the actions taken,
//! the complaints linked, earlier faults like it, and the review engineers wrote. Pure; the
//! renderings for people (Markdown, HTML) and tools (JSON) are here too.

use std::fmt::Write as _;

use super::report::duration;
use crate::config::{ReportsConfig, Tiers};
use crate::model::{
    ActionRecord, AlarmEvent, Complaint, Context, Cost, FaultRecord, Handling, IncidentReport,
    Metric, Recurrence, Review, SuppressedAlarm, Suppression, TimelineEntry, Timestamp,
    TransitionKind, named_enum,
};

/// What a report is assembled from.
pub struct Sources<'a> {
    /// The fault, with its notes.
    pub fault: &'a FaultRecord,
    /// The transitions of its alarm, in order.
    pub history: &'a [AlarmEvent],
    /// The faults symptoms and recurrences are found among: at least those with this fault's
    /// alarm as root cause and those of the same device.
    pub faults: &'a [FaultRecord],
    /// The actions taken on it.
    pub actions: &'a [ActionRecord],
    /// The complaints linked to it.
    pub complaints: &'a [Complaint],
    /// What engineers concluded, if they did.
    pub review: Option<Review>,
    /// The device's probe latency p95 by day (midnight UTC; ms), as far back as it is kept.
    pub probe_p95: &'a [(Timestamp, f64)],
}

/// Assembles the report.
pub fn assemble(
    s: &Sources<'_>,
    tiers: &Tiers,
    config: &ReportsConfig,
    now: Timestamp,
) -> IncidentReport {
    let f = s.fault;
    let evidence = s
        .history
        .iter()
        .find(|e| e.kind == TransitionKind::Raised)
        .map(|e| e.alarm.additional_text.clone())
        .unwrap_or_default();
    let mut symptoms: Vec<SuppressedAlarm> = s
        .faults
        .iter()
        .filter(|c| c.root_cause == Some(f.alarm_id))
        .map(|c| SuppressedAlarm {
            fault: c.id,
            device: c.device.clone(),
            object: c.object.clone(),
            condition: c.condition.clone(),
            severity: c.peak_severity,
        })
        .collect();
    symptoms.sort_by(|a, b| (&a.device, &a.object).cmp(&(&b.device, &b.object)));
    // The targets the manager held it to: its tier when raised (an escalation comes after
    // the acknowledge target it breached).
    let raised_as = s
        .history
        .iter()
        .find(|e| e.kind == TransitionKind::Raised)
        .map_or(f.peak_severity, |e| e.alarm.perceived_severity);
    let target = tiers.of(raised_as);
    let secs = |d: std::time::Duration| d.as_secs();
    let handling = Handling {
        mtta_secs: f.mtta().map(secs),
        ack_target_secs: target.ack_within.map(secs),
        ack_breached: f.ack_breached,
        mttr_secs: f.mttr().map(secs),
        restore_target_secs: target.restore_within.map(secs),
        restore_breached: f.restore_breached,
        reference_mttr_secs: config.reference_mttr.as_secs(),
    };
    let since = f.raised_at.minus(config.recurrence);
    let earlier = |same: &dyn Fn(&FaultRecord) -> bool| {
        let mut ids: Vec<_> = s
            .faults
            .iter()
            .filter(|o| o.id != f.id && o.raised_at >= since && o.raised_at < f.raised_at)
            .filter(|o| same(o))
            .map(|o| o.id)
            .collect();
        ids.sort();
        ids
    };
    let recurrence = Recurrence {
        days: config.recurrence.as_secs() / 86_400,
        same_condition: earlier(&|o| {
            o.device == f.device && o.object == f.object && o.condition == f.condition
        }),
        same_device: earlier(&|o| o.device == f.device),
    };
    let mut complaints: Vec<&Complaint> = s.complaints.iter().collect();
    complaints.sort_by_key(|c| c.received_at);
    let cost = Cost {
        services: f.impact.services.clone(),
        peak_customers: f.impact.peak_customers,
        customer_minutes: f.impact.customer_seconds / 60,
        complaints: complaints.iter().map(|c| c.id.clone()).collect(),
        complaints_before: complaints
            .iter()
            .filter(|c| c.received_at < f.raised_at)
            .count(),
    };
    IncidentReport {
        fault: f.id,
        alarm: f.alarm_id,
        device: f.device.clone(),
        object: f.object.clone(),
        condition: f.condition.clone(),
        category: f.category,
        peak_severity: f.peak_severity,
        site: f.site.clone(),
        raised_at: f.raised_at,
        cleared_at: f.cleared_at,
        cleared_by: f.cleared_by.clone(),
        evidence,
        timeline: timeline(s),
        symptom_of: f.root_cause,
        symptoms,
        handling,
        recurrence,
        cost,
        review: s.review.clone().unwrap_or_default(),
        assembled_at: now,
        context: Context {
            probe_p95: around(s.probe_p95, f.raised_at, f.cleared_at.unwrap_or(now)),
        },
    }
}

/// The days from three before `from` to the one after `until`.
fn around(days: &[(Timestamp, f64)], from: Timestamp, until: Timestamp) -> Vec<(Timestamp, f64)> {
    const DAY_MS: i64 = 86_400_000;
    let (first, last) = (
        from.as_millis().div_euclid(DAY_MS) - 3,
        until.as_millis().div_euclid(DAY_MS) + 1,
    );
    days.iter()
        .filter(|(d, _)| (first..=last).contains(&d.as_millis().div_euclid(DAY_MS)))
        .copied()
        .collect()
}

/// Transitions, notes, actions and complaints, in time order.
fn timeline(s: &Sources<'_>) -> Vec<TimelineEntry> {
    let mut out = Vec::new();
    let mut entry = |at, what: String, by: Option<String>, detail: String| {
        out.push(TimelineEntry {
            at,
            what,
            by,
            detail,
        });
    };
    let mut was = None;
    for e in s.history {
        let a = &e.alarm;
        let sev = a.perceived_severity.name();
        let escalated = was.is_some_and(|w| a.perceived_severity > w);
        was = Some(a.perceived_severity);
        match e.kind {
            TransitionKind::Raised => {
                entry(
                    e.at,
                    format!("raised {sev}"),
                    None,
                    a.additional_text.clone(),
                );
            }
            TransitionKind::Escalated => entry(
                e.at,
                format!("escalated to {sev}"),
                None,
                a.additional_text.clone(),
            ),
            TransitionKind::DeEscalated => entry(
                e.at,
                format!("de-escalated to {sev}"),
                None,
                a.additional_text.clone(),
            ),
            TransitionKind::Acknowledged => {
                entry(
                    e.at,
                    "acknowledged".to_owned(),
                    a.ack_user_id.clone(),
                    String::new(),
                );
            }
            TransitionKind::Unacknowledged => {
                entry(
                    e.at,
                    "acknowledgement withdrawn".to_owned(),
                    None,
                    String::new(),
                );
            }
            TransitionKind::Cleared => {
                let what = if a.clear_user_id.is_some() {
                    "cleared by hand"
                } else {
                    "cleared"
                };
                entry(
                    e.at,
                    what.to_owned(),
                    a.clear_user_id.clone(),
                    a.additional_text.clone(),
                );
            }
            TransitionKind::AckOverdue if escalated => entry(
                e.at,
                format!("acknowledge target passed: escalated to {sev}"),
                None,
                String::new(),
            ),
            TransitionKind::AckOverdue => entry(
                e.at,
                "acknowledge target passed".to_owned(),
                None,
                String::new(),
            ),
            TransitionKind::RestoreOverdue => entry(
                e.at,
                "restore target passed".to_owned(),
                None,
                String::new(),
            ),
            TransitionKind::SuppressionChanged => {
                let what = match a.suppressed_by {
                    Some(Suppression::Maintenance) => {
                        "maintenance began: recorded, not notified".to_owned()
                    }
                    Some(Suppression::RootCause) => format!(
                        "suppressed below alarm {}",
                        a.root_cause_alarm_id
                            .map_or("?".to_owned(), |r| r.to_string())
                    ),
                    Some(Suppression::Flapping) => {
                        "flapping: one flapping alarm stands for it".to_owned()
                    }
                    None => "notified again (suppression ended)".to_owned(),
                };
                entry(e.at, what, None, String::new());
            }
            _ => {}
        }
    }
    for n in &s.fault.notes {
        entry(n.at, "note".to_owned(), Some(n.by.clone()), n.text.clone());
    }
    for a in s.actions {
        entry(
            a.created_at,
            format!("action {} ({}) planned: {}", a.id, a.rule, a.mode.name()),
            None,
            String::new(),
        );
        if let Some(d) = &a.decision {
            let verb = if d.approved { "approved" } else { "rejected" };
            entry(
                d.at,
                format!("action {} {verb}", a.id),
                Some(d.by.clone()),
                String::new(),
            );
        }
        for (i, step) in a.steps.iter().enumerate() {
            if let (Some(at), Some(o)) = (step.ended_at, step.outcome) {
                entry(
                    at,
                    format!(
                        "action {} step {}: {} — {}",
                        a.id,
                        i + 1,
                        step.plan.describe(),
                        o.name()
                    ),
                    None,
                    step.detail.clone(),
                );
            }
        }
        if let Some(at) = a.ended_at {
            entry(
                at,
                format!("action {} {}", a.id, a.state.name()),
                None,
                a.reason.clone(),
            );
        }
    }
    for c in s.complaints {
        entry(
            c.received_at,
            format!("complaint {} ({})", c.id, c.place),
            None,
            c.text.clone(),
        );
    }
    // Stable: within one instant, the journal's order, then notes, actions and complaints.
    out.sort_by_key(|e| e.at);
    out
}

/// How a report is written out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    /// Markdown, for a ticket, a wiki page or a mail.
    Md,
    /// A standalone HTML page.
    Html,
    /// JSON, for tools.
    Json,
}

impl ReportFormat {
    /// Name, as in `--format` and `?format=`.
    pub fn name(self) -> &'static str {
        match self {
            ReportFormat::Md => "md",
            ReportFormat::Html => "html",
            ReportFormat::Json => "json",
        }
    }
}

named_enum!(
    ReportFormat,
    "report format",
    [ReportFormat::Md, ReportFormat::Html, ReportFormat::Json]
);

/// Renders the report.
pub fn render(r: &IncidentReport, format: ReportFormat) -> String {
    /// The report with its context, which the store keeps beside it.
    #[derive(serde::Serialize)]
    struct Shown<'a> {
        #[serde(flatten)]
        report: &'a IncidentReport,
        context: &'a crate::model::Context,
    }
    match format {
        ReportFormat::Json => {
            let shown = Shown {
                report: r,
                context: &r.context,
            };
            serde_json::to_string_pretty(&shown).unwrap_or_default() + "\n"
        }
        ReportFormat::Md => markdown(r),
        ReportFormat::Html => html(r),
    }
}

/// A duration for people, or `-`.
fn took(secs: Option<u64>) -> String {
    secs.map_or("-".to_owned(), |s| duration(s as f64))
}

/// `met`, `breached`, or nothing without a target.
fn verdict(value: Option<u64>, target: Option<u64>, breached: bool) -> &'static str {
    match (value, target) {
        (_, None) => "no target",
        _ if breached => "breached",
        (Some(v), Some(t)) if v > t => "breached",
        (Some(_), Some(_)) => "met",
        (None, Some(_)) => "open",
    }
}

/// The report in Markdown: for a ticket, a wiki page or a mail.
pub fn markdown(r: &IncidentReport) -> String {
    let mut o = String::new();
    let h = &r.handling;
    let _ = writeln!(
        o,
        "# Fault {}: {} on {}\n",
        r.fault,
        md(&r.condition),
        md(&place(&r.device, &r.object))
    );
    let _ = writeln!(o, "| | |\n|---|---|");
    let row = |o: &mut String, k: &str, v: &str| {
        let _ = writeln!(o, "| {k} | {} |", md(v));
    };
    row(
        &mut o,
        "severity",
        &format!("{} (worst)", r.peak_severity.name()),
    );
    row(&mut o, "category", r.category.name());
    row(&mut o, "site", r.site.as_deref().unwrap_or("-"));
    row(&mut o, "raised", &r.raised_at.to_string());
    let cleared = match (&r.cleared_at, &r.cleared_by) {
        (Some(t), Some(by)) => format!("{t} by {by}"),
        (Some(t), None) => t.to_string(),
        (None, _) => "still open".to_owned(),
    };
    row(&mut o, "cleared", &cleared);
    row(&mut o, "evidence", &r.evidence);
    if !r.context.probe_p95.is_empty() {
        let days: Vec<String> = r
            .context
            .probe_p95
            .iter()
            .map(|(day, ms)| {
                let day = day.to_string();
                format!(
                    "{} {}",
                    day.get(5..10).unwrap_or(&day),
                    Metric::LatencyMs.show(*ms)
                )
            })
            .collect();
        row(&mut o, "probe p95 by day", &days.join(" · "));
    }
    if let Some(root) = r.symptom_of {
        row(&mut o, "symptom of", &format!("alarm {root}"));
    }
    let _ = writeln!(o, "\n## Handling\n");
    let _ = writeln!(o, "| | took | target | |\n|---|---|---|---|");
    let _ = writeln!(
        o,
        "| time to acknowledge | {} | {} | {} |",
        took(h.mtta_secs),
        took(h.ack_target_secs),
        verdict(h.mtta_secs, h.ack_target_secs, h.ack_breached)
    );
    let _ = writeln!(
        o,
        "| time to repair | {} | {} | {} |",
        took(h.mttr_secs),
        took(h.restore_target_secs),
        verdict(h.mttr_secs, h.restore_target_secs, h.restore_breached)
    );
    let reference = match h.mttr_secs {
        Some(m) if m <= h.reference_mttr_secs => "within it",
        Some(_) => "over it",
        None => "open",
    };
    let _ = writeln!(
        o,
        "| against the reference MTTR | {} | {} | {reference} |",
        took(h.mttr_secs),
        took(Some(h.reference_mttr_secs))
    );
    let _ = writeln!(o, "\n## Timeline\n");
    for e in &r.timeline {
        let by =
            e.by.as_deref()
                .map_or(String::new(), |b| format!(" by {}", md(b)));
        let detail = if e.detail.is_empty() {
            String::new()
        } else {
            format!(": {}", md(&e.detail))
        };
        let _ = writeln!(o, "- {} — {}{by}{detail}", e.at, md(&e.what));
    }
    let _ = writeln!(o, "\n## Root cause\n");
    if let Some(root) = r.symptom_of {
        let _ = writeln!(o, "A symptom of alarm {root}; see that fault's report.");
    } else if r.symptoms.is_empty() {
        let _ = writeln!(o, "The root alarm; nothing was suppressed below it.");
    } else {
        let _ = writeln!(
            o,
            "The root alarm; {} alarms were suppressed below it:\n",
            r.symptoms.len()
        );
        for c in &r.symptoms {
            let _ = writeln!(
                o,
                "- {} {} ({}, fault {})",
                md(&place(&c.device, &c.object)),
                md(&c.condition),
                c.severity.name(),
                c.fault
            );
        }
    }
    let _ = writeln!(o, "\n## Cost\n");
    let c = &r.cost;
    let services = if c.services.is_empty() {
        "none".to_owned()
    } else {
        c.services.join(", ")
    };
    let _ = writeln!(o, "- services: {}", md(&services));
    let _ = writeln!(
        o,
        "- customers: {} at the worst, {} customer-minutes",
        c.peak_customers, c.customer_minutes
    );
    let _ = writeln!(
        o,
        "- complaints: {}{}",
        c.complaints.len(),
        if c.complaints.is_empty() {
            String::new()
        } else {
            format!(
                " ({}; {} before the alarm)",
                md(&c.complaints.join(", ")),
                c.complaints_before
            )
        }
    );
    let _ = writeln!(o, "\n## Recurrence (last {} days)\n", r.recurrence.days);
    let ids = |v: &[crate::model::FaultId]| {
        if v.is_empty() {
            "none".to_owned()
        } else {
            v.iter()
                .map(|f| format!("fault {f}"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let _ = writeln!(
        o,
        "- same device, object and condition: {}",
        ids(&r.recurrence.same_condition)
    );
    let _ = writeln!(o, "- same device: {}", ids(&r.recurrence.same_device));
    let _ = writeln!(o, "\n## Review\n");
    let v = &r.review;
    let _ = writeln!(
        o,
        "- cause: {}",
        md(v.cause.as_deref().unwrap_or("(not written yet)"))
    );
    let _ = writeln!(
        o,
        "- corrective action: {}",
        md(v.corrective_action
            .as_deref()
            .unwrap_or("(not written yet)"))
    );
    if let (Some(by), Some(at)) = (&v.by, v.at) {
        let _ = writeln!(o, "- by {} at {at}", md(by));
    }
    o
}

/// `bh-r1`, or `bh-r1 ifIndex=3` for an alarm on a part of it.
fn place(device: &str, object: &str) -> String {
    if object == crate::model::DEVICE_OBJECT {
        device.to_owned()
    } else {
        format!("{device} {object}")
    }
}

/// Device and engineer text in Markdown: no line breaks, no table pipes, no markup (`_` is
/// left: inside a word it is no emphasis, and names are full of it).
fn md(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '\n' | '\r' => out.push(' '),
            '|' | '*' | '`' | '[' | ']' | '<' | '>' | '#' | '\\' => {
                out.push('\\');
                out.push(ch);
            }
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// The report as a standalone HTML page (no script, no external resource; every text
/// escaped): to attach to a ticket or print.
pub fn html(r: &IncidentReport) -> String {
    let mut body = String::new();
    for line in markdown(r).lines() {
        // The Markdown's structure, drawn plainly: headings, list items, table rows (split
        // before unescaping, so a `|` inside a cell stays in it).
        if line.starts_with("|---") || line.starts_with("| |") {
            continue;
        }
        if let Some(cells) = line.strip_prefix("| ").and_then(|l| l.strip_suffix(" |")) {
            let cells: String = cells
                .split(" | ")
                .map(|c| format!("<td>{}</td>", esc(&unescape_md(c))))
                .collect();
            let _ = writeln!(body, "<table><tr>{cells}</tr></table>");
            continue;
        }
        let line = unescape_md(line);
        if let Some(t) = line.strip_prefix("# ") {
            let _ = writeln!(body, "<h1>{}</h1>", esc(t));
        } else if let Some(t) = line.strip_prefix("## ") {
            let _ = writeln!(body, "<h2>{}</h2>", esc(t));
        } else if let Some(t) = line.strip_prefix("- ") {
            let _ = writeln!(body, "<p class=\"item\">{}</p>", esc(t));
        } else if !line.trim().is_empty() {
            let _ = writeln!(body, "<p>{}</p>", esc(&line));
        }
    }
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Fault {} report</title>\
         <style>body{{font:14px/1.45 system-ui,sans-serif;max-width:60em;margin:2em auto;padding:0 1em}}\
         table{{border-collapse:collapse}}td{{padding:2px 10px 2px 0;vertical-align:top}}\
         p.item{{margin:2px 0 2px 1em}}h2{{margin-top:1.4em}}</style></head><body>\n{body}</body></html>\n",
        r.fault
    )
}

/// Markdown's escapes undone (the HTML escapes for itself).
fn unescape_md(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\\'
            && let Some(next) = chars.next()
        {
            out.push(next);
            continue;
        }
        out.push(c);
    }
    out
}

fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AlarmId, Category, FaultId, Severity};

    fn report(evidence: &str) -> IncidentReport {
        let t = Timestamp::from_millis(1_796_083_200_000);
        IncidentReport {
            fault: FaultId(7),
            alarm: AlarmId(7),
            device: "r1".into(),
            object: "trap=1.3.6.1.4.1.9".into(),
            condition: "snmp_trap".into(),
            category: Category::Equipment,
            peak_severity: Severity::Major,
            site: None,
            raised_at: t,
            cleared_at: None,
            cleared_by: None,
            evidence: evidence.into(),
            timeline: vec![TimelineEntry {
                at: t,
                what: "raised major".into(),
                by: None,
                detail: evidence.into(),
            }],
            symptom_of: None,
            symptoms: Vec::new(),
            handling: Handling {
                mtta_secs: None,
                ack_target_secs: Some(1800),
                ack_breached: false,
                mttr_secs: None,
                restore_target_secs: None,
                restore_breached: false,
                reference_mttr_secs: 15_120,
            },
            recurrence: Recurrence {
                days: 30,
                same_condition: Vec::new(),
                same_device: Vec::new(),
            },
            cost: Cost {
                services: Vec::new(),
                peak_customers: 0,
                customer_minutes: 0,
                complaints: Vec::new(),
                complaints_before: 0,
            },
            review: Review::default(),
            assembled_at: t,
            context: Context::default(),
        }
    }

    /// The probe's p95 around the fault shows in every format: the days from three before
    /// the raise to the one after the clear, each with its value.
    #[test]
    fn the_probe_p95_around_the_fault_is_in_the_report() {
        let day = |d: i64| Timestamp::from_millis(1_796_083_200_000 + d * 86_400_000);
        let days: Vec<(Timestamp, f64)> = (-6..4)
            .map(|d| (day(d), 14.0 + f64::from(d as i32).max(0.0) * 100.0))
            .collect();
        let mut r = report("latency");
        r.context.probe_p95 = around(&days, day(0), day(1));
        assert_eq!(r.context.probe_p95.len(), 6, "{:?}", r.context.probe_p95);
        let md = markdown(&r);
        let row = md
            .lines()
            .find(|l| l.starts_with("| probe p95 by day |"))
            .unwrap();
        assert_eq!(
            row,
            "| probe p95 by day | 11-28 14.0 ms · 11-29 14.0 ms · 11-30 14.0 ms · 12-01 14.0 ms · 12-02 114 ms · 12-03 214 ms |"
        );
        let json: serde_json::Value =
            serde_json::from_str(&render(&r, ReportFormat::Json)).unwrap();
        assert_eq!(json["context"]["probeP95"].as_array().unwrap().len(), 6);
        assert_eq!(
            json["fault"], 7,
            "the report's own fields stay at the top level"
        );
        assert!(html(&r).contains("probe p95 by day"));
    }

    #[test]
    fn device_text_stays_text_in_markdown_and_html() {
        let hostile = "<img src=x onerror=alert(1)> | **bold**\n# heading";
        let r = report(hostile);
        let md = markdown(&r);
        // One line, no table cell broken out of, no markup.
        let evidence = md.lines().find(|l| l.starts_with("| evidence |")).unwrap();
        assert_eq!(
            evidence,
            "| evidence | \\<img src=x onerror=alert(1)\\> \\| \\*\\*bold\\*\\* \\# heading |"
        );
        let html = html(&r);
        assert!(
            !html.contains("<img") && !html.contains("<script"),
            "{html}"
        );
        assert!(
            html.contains("<td>&lt;img src=x onerror=alert(1)&gt; | **bold** # heading</td>"),
            "{html}"
        );
        // An open fault: no repair time yet, the targets still shown.
        assert!(
            md.contains("| time to acknowledge | - | 30m00s | open |"),
            "{md}"
        );
        assert!(
            md.contains("| time to repair | - | - | no target |"),
            "{md}"
        );
    }

    #[test]
    fn formats_parse_by_name() {
        assert_eq!("md".parse::<ReportFormat>(), Ok(ReportFormat::Md));
        assert_eq!("HTML".parse::<ReportFormat>(), Ok(ReportFormat::Html));
        assert!("pdf".parse::<ReportFormat>().is_err());
    }
}
