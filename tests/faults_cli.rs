//! `noctua mttr report` and `noctua faults ...` on a store filled by replaying a fixture.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test or bench reports

mod common;

use common::{BIN, assert_success};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A store holding the backhaul-outage scenario, and a config that points at it.
fn replayed_store() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let store = dir.path().join("store");
    let out = Command::new(BIN)
        .args(["--log-level", "warn", "replay"])
        .arg(root.join("fixtures/scenarios/backhaul-outage.jsonl"))
        .arg("--config")
        .arg(root.join("fixtures/scenarios/lab.toml"))
        .arg("--store")
        .arg(&store)
        .output()
        .unwrap();
    assert!(out.status.success());
    let config = dir.path().join("noctua.toml");
    std::fs::write(
        &config,
        format!("[store]\npath = \"{}\"\n", store.display()),
    )
    .unwrap();
    (dir, config)
}

fn noctua(args: &[&str], config: &Path) -> Output {
    Command::new(BIN)
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap()
}

fn json(out: &Output) -> serde_json::Value {
    assert_success(out, "noctua");
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn mttr_report_groups_and_counts_breaches() {
    let (_dir, config) = replayed_store();
    let day = [
        "--since",
        "2026-11-29T00:00:00Z",
        "--until",
        "2026-11-30T00:00:00Z",
    ];
    let args = [&["mttr", "report", "--format", "json"][..], &day[..]].concat();
    let reports = json(&noctua(&args, &config));
    let r = &reports[0];
    assert_eq!(r["window"], "custom");
    let critical = &r["rows"][0];
    assert_eq!(critical["group"], "critical");
    assert_eq!(critical["faults"], 4);
    // 39m, 8m35s, 8m25s and 10m30s.
    assert_eq!(critical["mttr"]["mean_secs"], 997.5);
    assert_eq!(critical["mttr"]["count"], 4);
    assert!(critical["mtta"].is_null(), "nobody acknowledged");
    assert_eq!(r["total"]["ack_breaches"], 2);

    let args = [
        &["mttr", "report", "--by", "device", "--format", "csv"][..],
        &day[..],
    ]
    .concat();
    let out = noctua(&args, &config);
    let csv = String::from_utf8(out.stdout).unwrap();
    assert!(
        csv.lines()
            .next()
            .unwrap()
            .starts_with("window,since,until,by,group,faults")
    );
    assert!(
        csv.contains(",device,enb-1042,1,0,,,,,1,2340,2340,2340,1,0"),
        "{csv}"
    );

    // Without --since/--until: the rolling windows (the fixture is from 2026-11-29, so the 30-day
    // window may or may not hold it depending on today's date; the windows are always there).
    let rolling = json(&noctua(&["mttr", "report", "--format", "json"], &config));
    let windows: Vec<_> = rolling
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["window"].clone())
        .collect();
    assert_eq!(windows, ["24h", "7d", "30d"]);
}

#[test]
fn faults_list_show_and_post_incident_note() {
    let (_dir, config) = replayed_store();
    let list = json(&noctua(
        &["faults", "list", "--device", "bh-r1", "--format", "json"],
        &config,
    ));
    let ids: Vec<_> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].clone())
        .collect();
    assert_eq!(ids, [1, 3]);
    let out = noctua(
        &["faults", "note", "3", "--by", "maria", "fibre cut at km 12"],
        &config,
    );
    assert_success(&out, "noctua faults note");
    let shown = json(&noctua(&["faults", "show", "3"], &config));
    assert_eq!(shown[0]["notes"][0]["by"], "maria");
    assert_eq!(shown[0]["notes"][0]["text"], "fibre cut at km 12");
    assert!(
        !shown[0]["clearedAt"].is_null(),
        "a closed fault takes notes too"
    );

    let missing = noctua(&["faults", "show", "999"], &config);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no fault 999"));
    let table = noctua(&["faults", "list", "--open"], &config);
    assert_eq!(
        String::from_utf8(table.stdout).unwrap().lines().count(),
        1,
        "header only"
    );
}

#[test]
fn a_held_store_is_read_through_the_api_and_an_absent_daemon_is_said_so() {
    let (dir, config) = replayed_store();
    // Held by this process, and no daemon listens at the config's http.listen.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        format!("{text}\n[http]\nlisten = \"127.0.0.1:{port}\"\n"),
    )
    .unwrap();
    let store = noctua::store::Store::open(&dir.path().join("store")).unwrap();
    let out = noctua(&["mttr", "report"], &config);
    drop(store);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("the running daemon holds the store"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("cannot reach noctua at http://127.0.0.1:{port}")),
        "{stderr}"
    );
    let bad = noctua(&["faults", "list", "--since", "last tuesday"], &config);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("neither an RFC 3339 time nor an age"));
}
