//! The command line's side of automated handling: actions as a table, one action's audit
//! trail in words, approvals, breakers and the report, all through the daemon's API.

use std::fmt::Write as _;

use crate::fault::actions::{ActionReport, render_action_report};
use crate::fault::report::Format;
use crate::model::{ActionRecord, Timestamp};
use crate::northbound::client::ApiClient;
use crate::northbound::crm::{short_time, table};
use crate::northbound::records::RecordsError;

/// `noctua actions list`.
pub fn list(
    api: &ApiClient,
    state: &str,
    rule: Option<String>,
    fault: Option<u64>,
    limit: usize,
    json: bool,
) -> Result<String, RecordsError> {
    let v = api.get(
        "/api/v1/actions",
        &[
            ("state", Some(state.to_owned())),
            ("rule", rule),
            ("fault", fault.map(|f| f.to_string())),
            ("limit", Some(limit.to_string())),
        ],
    )?;
    if json {
        return Ok(format!("{:#}\n", v["items"]));
    }
    let items: Vec<ActionRecord> = serde_json::from_value(v["items"].clone())?;
    if items.is_empty() {
        return Ok("no actions match\n".to_owned());
    }
    let rows: Vec<[String; 8]> = items
        .iter()
        .map(|a| {
            [
                a.id.to_string(),
                short_time(&a.created_at.to_string()),
                a.rule.clone(),
                a.mode.name().to_owned(),
                a.state.name().to_owned(),
                format!("{} {}", a.device, a.object),
                format!("{} (fault {})", a.condition, a.fault_id),
                a.reason.clone(),
            ]
        })
        .collect();
    let total = v["total"].as_u64().unwrap_or(0);
    let mut out = table(
        [
            "ACTION", "PLANNED", "RULE", "MODE", "STATE", "ON", "ALARM", "WHY",
        ],
        &rows,
    );
    if total as usize > items.len() {
        let _ = writeln!(out, "({} of {total} shown; --limit for more)", items.len());
    }
    Ok(out)
}

/// `noctua actions show`: the action, then each step with what ran and how it ended.
pub fn show(api: &ApiClient, id: u64, json: bool) -> Result<String, RecordsError> {
    let v = api.get(&format!("/api/v1/actions/{id}"), &[])?;
    if json {
        return Ok(format!("{v:#}\n"));
    }
    let a: ActionRecord = serde_json::from_value(v)?;
    Ok(describe(&a))
}

/// One action in words, for people.
pub fn describe(a: &ActionRecord) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "action {} — rule {} ({}), {} on {} {}",
        a.id,
        a.rule,
        a.mode.name(),
        a.trigger.name(),
        a.device,
        a.object
    );
    let _ = writeln!(
        out,
        "  alarm {} {} ({}), fault {}",
        a.alarm_id,
        a.condition,
        a.severity.name(),
        a.fault_id
    );
    let _ = writeln!(out, "  planned {}", a.created_at);
    let state = if a.reason.is_empty() {
        a.state.name().to_owned()
    } else {
        format!("{}: {}", a.state.name(), a.reason)
    };
    let _ = writeln!(out, "  state {state}");
    if let Some(d) = &a.decision {
        let verb = if d.approved { "approved" } else { "rejected" };
        let _ = writeln!(out, "  {verb} by {} at {}", d.by, d.at);
    } else if let Some(t) = a.expires_at {
        let _ = writeln!(out, "  approval expires {t}");
    }
    for (i, s) in a.steps.iter().enumerate() {
        let _ = writeln!(out, "  step {}: {}", i + 1, s.plan.describe());
        match (s.started_at, s.outcome) {
            (None, _) => {
                let note = if s.detail.is_empty() {
                    "not started"
                } else {
                    &s.detail
                };
                let _ = writeln!(out, "    {note}");
            }
            (Some(at), None) => {
                let _ = writeln!(out, "    started {at}, under way");
            }
            (Some(at), Some(outcome)) => {
                let took = s
                    .ended_at
                    .map_or(String::new(), |e| format!(" in {}", took(e, at)));
                let codes = match (s.exit_code, s.http_status) {
                    (Some(c), _) => format!(", exit {c}"),
                    (_, Some(h)) => format!(", HTTP {h}"),
                    _ => String::new(),
                };
                let _ = writeln!(
                    out,
                    "    {} (started {at}{took}{codes}) {}",
                    outcome.name(),
                    s.detail
                );
                if !s.output.is_empty() {
                    let _ = writeln!(out, "    output: {}", s.output);
                }
            }
        }
    }
    out
}

fn took(end: Timestamp, start: Timestamp) -> String {
    let ms = end.since(start).as_millis();
    if ms < 10_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else {
        humantime::format_duration(std::time::Duration::from_secs((ms / 1000) as u64)).to_string()
    }
}

/// `noctua actions approve|reject`.
pub fn decide(api: &ApiClient, id: u64, by: &str, approved: bool) -> Result<String, RecordsError> {
    let verb = if approved { "approve" } else { "reject" };
    let v = api.post(
        &format!("/api/v1/actions/{id}/{verb}"),
        &serde_json::json!({ "by": by }),
    )?;
    let a: ActionRecord = serde_json::from_value(v)?;
    Ok(format!(
        "action {} ({} on {} {}): {}d by {by}; now {}\n",
        a.id,
        a.rule,
        a.device,
        a.object,
        verb,
        a.state.name()
    ))
}

/// `noctua actions reset`.
pub fn reset(api: &ApiClient, rule: &str, by: &str) -> Result<String, RecordsError> {
    api.post(
        &format!("/api/v1/actions/rules/{rule}/reset"),
        &serde_json::json!({ "by": by }),
    )?;
    Ok(format!(
        "breaker of rule {rule} reset by {by}: it acts again\n"
    ))
}

/// `noctua actions rules`.
pub fn rules(api: &ApiClient, json: bool) -> Result<String, RecordsError> {
    let v = api.get("/api/v1/actions/rules", &[])?;
    if json {
        return Ok(format!("{v:#}\n"));
    }
    let enabled = v["enabled"].as_bool().unwrap_or(false);
    let items = v["items"].as_array().cloned().unwrap_or_default();
    let mut out = if enabled {
        String::new()
    } else {
        "actions are disabled ([actions] enabled = false): no rule acts\n".to_owned()
    };
    if items.is_empty() {
        out.push_str("no action rules configured\n");
        return Ok(out);
    }
    let rows: Vec<[String; 6]> = items
        .iter()
        .map(|r| {
            let text = |k: &str| r[k].as_str().unwrap_or("").to_owned();
            let on: Vec<&str> = r["on"]
                .as_array()
                .map(|a| a.iter().filter_map(|t| t.as_str()).collect())
                .unwrap_or_default();
            let b = &r["breaker"];
            let breaker = if b["open"].as_bool().unwrap_or(false) {
                format!(
                    "OPEN since {}",
                    short_time(b["openedAt"].as_str().unwrap_or(""))
                )
            } else {
                format!(
                    "closed ({} failed in a row)",
                    b["failuresInRow"].as_u64().unwrap_or(0)
                )
            };
            [
                text("name"),
                text("mode"),
                on.join(","),
                if r["requireApproval"].as_bool().unwrap_or(false) {
                    "yes"
                } else {
                    "no"
                }
                .to_owned(),
                r["steps"].as_u64().unwrap_or(0).to_string(),
                breaker,
            ]
        })
        .collect();
    out.push_str(&table(
        ["RULE", "MODE", "ON", "APPROVAL", "STEPS", "BREAKER"],
        &rows,
    ));
    Ok(out)
}

/// `noctua actions report`.
pub fn report(
    api: &ApiClient,
    since: Option<String>,
    until: Option<String>,
    format: Format,
) -> Result<String, RecordsError> {
    let v = api.get(
        "/api/v1/actions/report",
        &[("since", since), ("until", until)],
    )?;
    let r: ActionReport = serde_json::from_value(v)?;
    Ok(render_action_report(&r, format))
}
