//! Post-incident reports: a replayed backhaul outage (suppressed base stations, an
//! escalation, an acknowledgement with a note, a recurrence) renders to its golden Markdown
//! from a stopped daemon's store; the review is written and shown; HTML and JSON carry the
//! same; and the running daemon keeps the report of a serious fault when it clears and takes
//! reviews only with the token.
//!
//! To accept a deliberate change, regenerate the golden file: replay
//! `fixtures/reports/backhaul-outage.jsonl` with its `.toml` into a store, then
//! `noctua faults report 3 --config CONFIG > fixtures/reports/backhaul-outage.md`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test or bench reports

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use noctua::store::Store;

use common::*;
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/reports")
        .join(name)
}

/// The fixture's config with a store in `dir`, and the outage replayed into it.
fn replayed(dir: &Path) -> PathBuf {
    replay_into(
        dir,
        &fixture("backhaul-outage.jsonl"),
        &fixture("backhaul-outage.toml"),
    )
}

/// `scenario` replayed into a store in `dir` on the settings of `toml`; the config naming it.
fn replay_into(dir: &Path, scenario: &Path, toml: &Path) -> PathBuf {
    let config = dir.join("noctua.toml");
    let store = dir.join("store");
    let text = format!(
        "[store]\npath = \"{}\"\n{}",
        store.display(),
        std::fs::read_to_string(toml).unwrap()
    );
    std::fs::write(&config, text).unwrap();
    let out = Command::new(BIN)
        .args(["--log-level", "warn", "replay"])
        .arg(scenario)
        .arg("--config")
        .arg(&config)
        .arg("--store")
        .arg(&store)
        .output()
        .unwrap();
    assert_success(&out, "noctua replay");
    config
}

fn noctua(config: &Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap()
}

#[test]
fn a_backhaul_outage_reports_to_its_golden_markdown_and_takes_a_review() {
    let dir = tempfile::tempdir().unwrap();
    let config = replayed(dir.path());
    let out = noctua(&config, &["faults", "report", "3"]);
    assert_success(&out, "noctua faults report");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        std::fs::read_to_string(fixture("backhaul-outage.md")).unwrap()
    );
    // The review, written on the stopped daemon's store, is in every rendering.
    let out = noctua(
        &config,
        &[
            "faults",
            "review",
            "3",
            "--by",
            "omar",
            "--cause",
            "fibre cut by road works at km 12",
            "--corrective-action",
            "a second path for bh-r1 <NET-4411>",
        ],
    );
    assert_success(&out, "noctua faults review");
    let md = text(&noctua(&config, &["faults", "report", "3"]));
    assert!(
        md.contains("- cause: fibre cut by road works at km 12"),
        "{md}"
    );
    assert!(
        md.contains("- corrective action: a second path for bh-r1 \\<NET-4411\\>"),
        "{md}"
    );
    assert!(md.contains("- by omar at 20"), "{md}");
    let html = text(&noctua(
        &config,
        &["faults", "report", "3", "--format", "html"],
    ));
    assert!(html.starts_with("<!doctype html>"), "{html}");
    assert!(
        html.contains("a second path for bh-r1 &lt;NET-4411&gt;"),
        "{html}"
    );
    assert!(
        !html.contains("<NET") && !html.contains("<script"),
        "{html}"
    );
    assert!(html.contains("<h2>Root cause</h2>"), "{html}");
    let json: Value = serde_json::from_slice(
        &noctua(&config, &["faults", "report", "3", "--format", "json"]).stdout,
    )
    .unwrap();
    assert_eq!(json["review"]["by"], "omar");
    assert_eq!(json["handling"]["mttaSecs"], 720);
    assert_eq!(json["handling"]["ackTargetSecs"], 600);
    assert_eq!(json["handling"]["ackBreached"], true);
    assert_eq!(json["handling"]["mttrSecs"], 3030);
    assert_eq!(json["symptoms"].as_array().unwrap().len(), 2);
    assert_eq!(json["recurrence"]["sameCondition"], serde_json::json!([1]));
    // Month by month: October's short outage, November's long one (a recurrence of it).
    let out = noctua(
        &config,
        &[
            "mttr",
            "report",
            "--monthly",
            "--months",
            "120",
            "--format",
            "csv",
        ],
    );
    assert_success(&out, "noctua mttr report --monthly");
    let csv = String::from_utf8(out.stdout).unwrap();
    assert!(csv.contains("\n2026-10,1,,1260,0,0,0,\n"), "{csv}");
    assert!(csv.contains("\n2026-11,3,720,3100,1,0,1,146\n"), "{csv}");
    // Nothing to write, or no such fault: refused, saying why.
    let out = noctua(&config, &["faults", "review", "3", "--by", "omar"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("give a cause"), "{}", text(&out));
    let out = noctua(&config, &["faults", "report", "99"]);
    assert!(text(&out).contains("no fault 99"), "{}", text(&out));
}

const TOKEN: &str = "token-for-the-report-test";

#[test]
fn the_daemon_keeps_the_report_of_a_serious_fault_when_it_clears() {
    let dir = tempfile::tempdir().unwrap();
    store_with_alarms(dir.path());
    let config = write_config(dir.path(), 0, &format!("token = \"{TOKEN}\"\n"));
    let mut d = start(dir.path(), &config);
    let (_, body) = get(d.port, "/api/v1/alarms?device=bh-r1").unwrap();
    let alarm: Value = serde_json::from_str(&body).unwrap();
    let id = alarm["items"][0]["alarmId"].as_str().unwrap().to_owned();
    act(d.port, TOKEN, &id, "clear");
    // The major utilisation alarm's fault closed: its report is kept, with the clear.
    wait_until(&mut d, |d| {
        get(d.port, "/api/v1/faults/1/report").is_some_and(|(s, b)| {
            s == 200 && b.contains("\"cleared by hand\"") && b.contains("assembledAt")
        })
    });
    let (status, md) = get(d.port, "/api/v1/faults/1/report?format=md").unwrap();
    assert_eq!(status, 200);
    assert!(
        md.starts_with("# Fault 1: utilisation_in_pct_threshold on bh-r1 ifIndex=3"),
        "{md}"
    );
    assert!(md.contains("cleared by hand by maria"), "{md}");
    let (status, _) = get(d.port, "/api/v1/faults/1/report?format=pdf").unwrap();
    assert_eq!(status, 400);
    // Reviews need the token.
    let review = r#"{"by":"omar","cause":"a backup job at peak"}"#;
    let json = ("Content-Type", "application/json");
    let (status, _) = request(d.port, "POST", "/api/v1/faults/1/review", &[json], review).unwrap();
    assert_eq!(status, 401);
    let bearer = format!("Bearer {TOKEN}");
    let auth = ("Authorization", bearer.as_str());
    let (status, body) = request(
        d.port,
        "POST",
        "/api/v1/faults/1/review",
        &[json, auth],
        review,
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let (_, md) = get(d.port, "/api/v1/faults/1/report?format=md").unwrap();
    assert!(md.contains("- cause: a backup job at peak"), "{md}");
    // The CLI asks the running daemon.
    std::fs::write(dir.path().join("token"), TOKEN).unwrap();
    let out = cli(
        dir.path(),
        d.port,
        &["faults", "report", "1", "--format", "html"],
    );
    assert_success(&out, "noctua faults report through the API");
    assert!(String::from_utf8_lossy(&out.stdout).contains("a backup job at peak"));
    let out = cli(
        dir.path(),
        d.port,
        &["mttr", "report", "--monthly", "--months", "1"],
    );
    assert_success(&out, "noctua mttr report --monthly through the API");
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(table.starts_with("month    faults  MTTA p50"), "{table}");
    assert_eq!(table.lines().count(), 2, "{table}");
}

/// The actions taken on a fault are in its report's timeline, step by step.
#[test]
fn a_report_shows_the_actions_taken_step_by_step() {
    let dir = tempfile::tempdir().unwrap();
    let scenarios = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/scenarios");
    let config = replay_into(
        dir.path(),
        &scenarios.join("automated-handling.jsonl"),
        &scenarios.join("automated-handling.toml"),
    );
    // Fault 3: edge-r1 port 2, whose bounce did not bring the link back.
    let md = text(&noctua(&config, &["faults", "report", "3"]));
    for line in [
        "- 2026-11-29T10:10:00.000Z — action 2 (bounce-port) planned: dry-run",
        "- 2026-11-29T10:10:00.000Z — action 2 step 1: exec /bin/true bounce edge-r1 2 — dry-run: dry run: would exec /bin/true bounce edge-r1 2",
        "- 2026-11-29T10:15:00.000Z — action 2 step 2: wait-clear 5m — timed-out: the alarm did not clear in time",
        "- 2026-11-29T10:15:00.000Z — escalated to critical",
    ] {
        assert!(md.contains(line), "{line}\n{md}");
    }
}

/// A report gives the device's probe latency p95 by day around the fault: the days before it
/// steady, the day of it high, so the context says when the trouble began.
#[test]
fn a_report_gives_the_probe_p95_by_day_around_the_fault() {
    let dir = tempfile::tempdir().unwrap();
    let start = 1_793_577_600_i64; // 2026-11-02T00:00:00Z
    let mut scenario = String::new();
    // Eight days of probes every 15 minutes near 14 ms; on day 6 from 10:00, two hours at
    // 640 ms (a critical latency alarm that clears).
    for i in 0..8 * 96 {
        let at = noctua::model::Timestamp::from_millis((start + i * 900) * 1000);
        let high = (6 * 96 + 40..6 * 96 + 48).contains(&i);
        let value = if high { 640.0 } else { 14.0 + (i % 5) as f64 };
        scenario.push_str(&format!(
            "{{\"at\":\"{at}\",\"device\":\"bh-r1\",\"object\":\"icmp\",\"metric\":\"latency_ms\",\"value\":{value}}}\n"
        ));
    }
    let jsonl = dir.path().join("probes.jsonl");
    std::fs::write(&jsonl, scenario).unwrap();
    let config = replay_into(dir.path(), &jsonl, &fixture("backhaul-outage.toml"));
    let json: serde_json::Value = serde_json::from_str(&text(&noctua(
        &config,
        &["faults", "report", "1", "--format", "json"],
    )))
    .unwrap();
    assert_eq!(json["condition"], "latency_ms_threshold", "{json}");
    let days = json["context"]["probeP95"].as_array().unwrap();
    // Days 3 to 7 (three before the raise to the one after the clear), day 7 not yet over.
    let dates: Vec<&str> = days.iter().map(|d| &d[0].as_str().unwrap()[..10]).collect();
    assert_eq!(
        dates,
        ["2026-11-05", "2026-11-06", "2026-11-07", "2026-11-08"],
        "{json}"
    );
    let ms: Vec<f64> = days.iter().map(|d| d[1].as_f64().unwrap()).collect();
    assert!(ms[..3].iter().all(|v| (14.0..20.0).contains(v)), "{ms:?}");
    assert!(ms[3] > 500.0, "{ms:?}");
    let md = text(&noctua(&config, &["faults", "report", "1"]));
    assert!(md.contains("| probe p95 by day | 11-05 "), "{md}");
}

/// A storm's worth of serious faults closed while no daemon ran (a replay): at start the
/// daemon assembles every missing report, batch after batch, each with its own history and
/// the device's earlier fault as a recurrence.
#[test]
fn a_storm_of_closed_faults_each_get_their_own_report() {
    const DEVICES: usize = 300;
    let dir = tempfile::tempdir().unwrap();
    let ago = |s: usize| {
        noctua::model::Timestamp::from_millis(
            noctua::model::Timestamp::now().as_millis() - s as i64 * 1000,
        )
    };
    let line = |at: usize, i: usize, event: &str| {
        format!(
            "{{\"at\":\"{}\",\"device\":\"d{i:03}\",\"event\":\"{event}\"}}\n",
            ago(at)
        )
    };
    let mut scenario = String::new();
    // Every device down for a minute; the first five again an hour later, past the reopen
    // window, so each of those has two faults.
    for i in 0..DEVICES {
        scenario += &line(7200, i, "unreachable");
    }
    // A tick after each return, for the clears that wait out a hold.
    let tick = |at: usize| format!("{{\"at\":\"{}\"}}\n", ago(at));
    for i in 0..DEVICES {
        scenario += &line(7140, i, "reachable");
    }
    scenario += &tick(7000);
    for i in 0..5 {
        scenario += &line(3600, i, "unreachable");
        scenario += &line(3540, i, "reachable");
    }
    scenario += &tick(3400);
    let file = dir.path().join("storm.jsonl");
    std::fs::write(&file, scenario).unwrap();
    replay_into_store(dir.path(), &file);

    let config = write_config(dir.path(), 0, "");
    let mut d = start(dir.path(), &config);
    wait_until(&mut d, |d| {
        log(d).matches("post-incident report assembled").count() == DEVICES + 5
    });
    signal(&d, libc::SIGTERM);
    assert!(wait_exit(&mut d, Duration::from_secs(30)).success());

    let store = Store::open(&dir.path().join("store")).unwrap();
    let faults = store.faults().unwrap();
    assert_eq!(faults.len(), DEVICES + 5);
    for f in &faults {
        let r = store.incident_report(f.id).unwrap().expect("a kept report");
        assert_eq!((r.fault, &r.device), (f.id, &f.device));
        let what: Vec<&str> = r.timeline.iter().map(|t| t.what.as_str()).collect();
        assert_eq!(what.first(), Some(&"raised critical"), "{}: {what:?}", f.id);
        assert!(
            what.last().is_some_and(|w| w.starts_with("cleared")),
            "{}: {what:?}",
            f.id
        );
        let earlier: Vec<_> = faults
            .iter()
            .filter(|o| o.device == f.device && o.raised_at < f.raised_at)
            .map(|o| o.id)
            .collect();
        assert_eq!(r.recurrence.same_condition, earlier, "{}", f.id);
    }
}
