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

/// The CLI run by an operator, as from a shell: no daemon environment, in `cwd`.
fn operator(args: &[&str], cwd: &Path) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .env_remove("STATE_DIRECTORY")
        .env_remove("NOCTUA_SERVER")
        .env_remove("NOCTUA_TOKEN")
        .env_remove("NOCTUA_CONFIG")
        .output()
        .unwrap()
}

/// A systemd install: the daemon's relative store lives under its `$STATE_DIRECTORY`, which
/// an operator's shell does not have. The CLI must find the daemon through the config's
/// `http.listen` and token, not open an empty store where it stands.
#[test]
fn on_a_systemd_layout_the_cli_answers_from_the_daemon_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("var-lib-noctua");
    std::fs::create_dir_all(&state).unwrap();
    common::store_with_alarms(&state);
    std::fs::rename(state.join("store"), state.join("noctua-data")).unwrap();
    let port = common::peer_port();
    let config = dir.path().join("noctua.toml");
    std::fs::write(
        &config,
        format!("[http]\nlisten = \"127.0.0.1:{port}\"\ntoken = \"t0ken-for-tests\"\n"),
    )
    .unwrap();
    let _daemon = common::start_with(dir.path(), &config, &[("STATE_DIRECTORY", &state)]);
    let shell = tempfile::tempdir().unwrap();
    let cfg = config.to_str().unwrap();

    let out = operator(
        &["faults", "list", "--format", "json", "--config", cfg],
        shell.path(),
    );
    let faults = json(&out);
    assert_eq!(faults.as_array().unwrap().len(), 2, "{faults}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("asking the daemon"));
    let out = operator(
        &["mttr", "report", "--format", "json", "--config", cfg],
        shell.path(),
    );
    assert!(!json(&out).as_array().unwrap().is_empty());
    // `alarms` takes the daemon and the token from the config too.
    let list = operator(&["alarms", "list", "--json", "--config", cfg], shell.path());
    let alarms = json(&list);
    let id = alarms["items"][0]["alarmId"].as_str().unwrap().to_owned();
    let ack = operator(
        &["alarms", "ack", &id, "--by", "maria", "--config", cfg],
        shell.path(),
    );
    assert_success(&ack, "alarms ack with the config's token");
    // A refused token says where tokens come from.
    let wrong = dir.path().join("wrong.token");
    std::fs::write(&wrong, "not-it\n").unwrap();
    let args = [
        "alarms",
        "unack",
        &id,
        "--by",
        "maria",
        "--config",
        cfg,
        "--token-file",
    ];
    let refused = operator(
        &[&args[..], &[wrong.to_str().unwrap()]].concat(),
        shell.path(),
    );
    assert_eq!(refused.status.code(), Some(1));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("401") && err.contains("$NOCTUA_TOKEN") && err.contains(cfg),
        "{err}"
    );
    assert!(
        std::fs::read_dir(shell.path()).unwrap().next().is_none(),
        "the CLI left something behind in the operator's directory"
    );
}

/// Nothing where the config points, and no daemon: an error naming both, and nothing created.
#[test]
fn a_missing_store_is_an_error_naming_where_it_looked() {
    let dir = tempfile::tempdir().unwrap();
    let port = common::peer_port();
    let config = dir.path().join("noctua.toml");
    let store = dir.path().join("nowhere");
    std::fs::write(
        &config,
        format!(
            "[store]\npath = \"{}\"\n[http]\nlisten = \"127.0.0.1:{port}\"\n",
            store.display()
        ),
    )
    .unwrap();
    let cfg = config.to_str().unwrap();
    for args in [
        &["faults", "list", "--config", cfg][..],
        &["mttr", "report", "--config", cfg][..],
    ] {
        let out = operator(args, dir.path());
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("no store at {}", store.display())),
            "{err}"
        );
        assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
        assert!(!store.exists(), "a store was created");
    }
}
