//! The HTTP API of a running daemon: listing, showing, acknowledging and clearing alarms, with
//! the bearer token, JSON errors, and the change durable in the store.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test or bench reports

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use noctua::model::FaultRecord;
use noctua::store::Store;
use serde_json::Value;

const TOKEN: &str = "t0ken-for-tests";

fn json(r: Option<(u16, String)>) -> (u16, Value) {
    let (status, body) = r.expect("no HTTP answer");
    (
        status,
        serde_json::from_str(&body).unwrap_or(Value::String(body)),
    )
}

fn post(port: u16, path: &str, token: Option<&str>, body: &str) -> (u16, Value) {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(a) = &auth {
        headers.push(("Authorization", a));
    }
    json(request(port, "POST", path, &headers, body))
}

#[test]
fn engineers_list_acknowledge_and_clear_through_the_api() {
    let dir = tempfile::tempdir().unwrap();
    store_with_alarms(dir.path());
    let config = write_config(dir.path(), 0, &format!("token = \"{TOKEN}\"\n"));
    let mut d = start(dir.path(), &config);
    let port = d.port;

    let (status, list) = json(get(port, "/api/v1/alarms"));
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["total"], 2);
    // Most severe first.
    assert_eq!(list["items"][0]["device"], "enb-1042");
    assert_eq!(list["items"][0]["perceivedSeverity"], "CRITICAL");
    let util_id = list["items"][1]["alarmId"].as_str().unwrap().to_owned();
    let (_, majors) = json(get(
        port,
        "/api/v1/alarms?severity=critical&device=enb-1042",
    ));
    assert_eq!(majors["total"], 1);

    // Bad input is a 400 or 404 with a JSON message, never a 500.
    for (path, want) in [
        ("/api/v1/alarms?severity=loud", 400),
        ("/api/v1/alarms?state=gone", 400),
        ("/api/v1/alarms?colour=red", 400),
        // One instance has no fleet to show, and no scope but local or fleet exists.
        ("/api/v1/alarms?scope=fleet", 400),
        ("/api/v1/alarms?scope=world", 400),
        ("/api/v1/alarms/stream?scope=fleet", 400),
        ("/api/v1/alarms/stream?scope=world", 400),
        ("/api/v1/alarms/abc", 400),
        ("/api/v1/alarms/999999", 404),
        ("/api/v1/faults?since=whenever", 400),
    ] {
        let (status, body) = json(get(port, path));
        assert_eq!(status, want, "{path}: {body}");
        assert!(body["error"].is_string(), "{path}: {body}");
    }

    let ack = format!("/api/v1/alarms/{util_id}/ack");
    let body = r#"{"user":"maria","note":"looking at the microwave link"}"#;
    assert_eq!(post(port, &ack, None, body).0, 401);
    assert_eq!(post(port, &ack, Some("guess"), body).0, 401);
    assert_eq!(post(port, &ack, Some(TOKEN), "{\"who\":1}").0, 400);
    assert_eq!(post(port, &ack, Some(TOKEN), r#"{"user":" "}"#).0, 400);
    assert_eq!(
        post(port, "/api/v1/alarms/999999/ack", Some(TOKEN), body).0,
        404
    );
    assert_eq!(
        post(
            port,
            &format!("/api/v1/alarms/{util_id}/poke"),
            Some(TOKEN),
            body
        )
        .0,
        404
    );

    let (status, answer) = post(port, &ack, Some(TOKEN), body);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["transitions"][0]["kind"], "acknowledged");
    assert_eq!(answer["transitions"][0]["alarm"]["ackUserId"], "maria");
    // Again: nothing changes, nothing is recorded.
    let (_, again) = post(port, &ack, Some(TOKEN), body);
    assert_eq!(again["transitions"], Value::Array(vec![]));
    let (_, acked) = json(get(port, "/api/v1/alarms?state=acknowledged"));
    assert_eq!(acked["total"], 1);

    let clear = format!("/api/v1/alarms/{util_id}/clear");
    let (status, cleared) = post(
        port,
        &clear,
        Some(TOKEN),
        r#"{"user":"omar","note":"rerouted"}"#,
    );
    assert_eq!(status, 200, "{cleared}");
    assert_eq!(cleared["transitions"][0]["alarm"]["clearUserId"], "omar");
    let (_, list) = json(get(port, "/api/v1/alarms"));
    assert_eq!(list["total"], 1);
    let (_, gone) = json(get(port, "/api/v1/alarms?state=cleared&since=1h"));
    assert_eq!(gone["total"], 1);
    let (status, shown) = json(get(port, &format!("/api/v1/alarms/{util_id}")));
    assert_eq!(status, 200);
    let kinds: Vec<_> = shown["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].clone())
        .collect();
    assert_eq!(kinds, ["raised", "acknowledged", "cleared"]);

    let (_, faults) = json(get(port, "/api/v1/faults?open=true"));
    assert_eq!(faults["total"], 1);
    let (status, mttr) = json(get(port, "/api/v1/mttr?by=device&since=1h"));
    assert_eq!(status, 200);
    assert_eq!(mttr[0]["rows"][0]["group"], "bh-r1");
    assert_eq!(mttr[0]["rows"][0]["mtta"]["count"], 1);

    // Requests are counted by route pattern, not raw path.
    let (_, metrics) = get(port, "/metrics").unwrap();
    assert!(
        metrics.contains(
            "noctua_http_requests_total{route=\"/api/v1/alarms/{id}/{action}\",status=\"401\"} 2"
        ),
        "{metrics}"
    );
    assert!(
        metrics
            .contains("noctua_http_requests_total{route=\"/api/v1/alarms/{id}\",status=\"404\"} 1")
    );

    signal(&d, libc::SIGTERM);
    assert_eq!(wait_exit(&mut d, Duration::from_secs(2)).code(), Some(0));
    // What the API answered is in the store.
    let store = Store::open(&dir.path().join("store")).unwrap();
    let faults: Vec<FaultRecord> = store.faults().unwrap();
    let f = faults.iter().find(|f| f.device == "bh-r1").unwrap();
    assert_eq!(f.acked_by.as_deref(), Some("maria"));
    assert_eq!(f.cleared_by.as_deref(), Some("omar"));
    let notes: Vec<_> = f.notes.iter().map(|n| n.text.as_str()).collect();
    assert_eq!(notes, ["looking at the microwave link", "rerouted"]);
}

#[test]
fn without_a_token_writes_are_disabled() {
    let dir = tempfile::tempdir().unwrap();
    store_with_alarms(dir.path());
    let config = write_config(dir.path(), 0, "");
    let daemon = start(dir.path(), &config);
    let port = daemon.port;
    let (status, body) = post(
        port,
        "/api/v1/alarms/1/ack",
        Some("anything"),
        r#"{"user":"x"}"#,
    );
    assert_eq!(status, 403, "{body}");
    assert!(body["error"].as_str().unwrap().contains("no http.token"));
}

#[test]
fn the_alarms_cli_talks_to_the_running_daemon() {
    let dir = tempfile::tempdir().unwrap();
    store_with_alarms(dir.path());
    let config = write_config(dir.path(), 0, &format!("token = \"{TOKEN}\"\n"));
    let daemon = start(dir.path(), &config);
    let port = daemon.port;
    let server = format!("http://127.0.0.1:{port}");
    let cli = |args: &[&str], token: Option<&str>| {
        let mut c = Command::new(BIN);
        c.arg("alarms").args(args).arg("--server").arg(&server);
        c.env_remove("NOCTUA_TOKEN").env_remove("NOCTUA_SERVER");
        if let Some(t) = token {
            c.env("NOCTUA_TOKEN", t);
        }
        let out = c.output().unwrap();
        (
            out.status.code(),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    let (code, lines, _) = cli(&["list"], None);
    assert_eq!(code, Some(0));
    let all: Vec<&str> = lines.lines().collect();
    assert_eq!(all.len(), 3, "{all:?}");
    let header: Vec<&str> = all[0].split_whitespace().collect();
    assert_eq!(
        header,
        [
            "ID",
            "SEVERITY",
            "DEVICE",
            "OBJECT",
            "CONDITION",
            "RAISED",
            "ACK",
            "TEXT"
        ]
    );
    let lines = &all[1..];
    assert!(
        lines[0].contains("CRITICAL") && lines[0].contains("enb-1042"),
        "{lines:?}"
    );
    assert!(!lines[0].contains('\x1b'), "no colour when piped");
    // Columns sized to content: every row's device starts where the header's does.
    let column = all[0].find("DEVICE").unwrap();
    assert!(
        lines
            .iter()
            .all(|l| l[column..].starts_with("enb-1042") || l[column..].starts_with("bh-r1")),
        "{all:?}"
    );
    let id = lines[1].split_whitespace().next().unwrap().to_owned();
    let (code, none, _) = cli(&["list", "--device", "nowhere"], None);
    assert_eq!((code, none.as_str()), (Some(0), "no alarms match\n"));

    let (code, json, _) = cli(&["list", "--json", "--severity", "critical"], None);
    assert_eq!(code, Some(0));
    assert_eq!(serde_json::from_str::<Value>(&json).unwrap()["total"], 1);

    let (code, _, err) = cli(&["ack", &id, "--by", "maria"], None);
    assert_eq!(code, Some(1));
    assert!(err.contains("401"), "{err}");
    let (code, out, err) = cli(
        &["ack", &id, "--by", "maria", "--note", "on it"],
        Some(TOKEN),
    );
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, format!("alarm {id}: ack done\n"));
    let (_, out, _) = cli(&["ack", &id, "--by", "maria"], Some(TOKEN));
    assert_eq!(out, format!("alarm {id}: nothing to change\n"));
    let (code, shown, _) = cli(&["show", &id], None);
    assert_eq!(code, Some(0));
    let shown = serde_json::from_str::<Value>(&shown).unwrap();
    assert_eq!(shown["alarm"]["ackUserId"], "maria");
    // The ack's note is shown with the alarm.
    assert_eq!(shown["notes"][0]["text"], "on it", "{shown}");
    assert_eq!(shown["notes"][0]["by"], "maria");

    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let (code, out, err) = cli(
        &[
            "clear",
            &id,
            "--by",
            "omar",
            "--token-file",
            token_file.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, format!("alarm {id}: clear done\n"));

    let out = Command::new(BIN)
        .args(["alarms", "list", "--server", "http://127.0.0.1:1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot reach noctua at http://127.0.0.1:1")
    );
}

#[test]
fn maintenance_windows_through_the_api_suppress_and_survive_restarts() {
    let dir = tempfile::tempdir().unwrap();
    store_with_alarms(dir.path());
    let config = write_config(
        dir.path(),
        0,
        &format!(
            "token = \"{TOKEN}\"\n\n[[device]]\nname = \"bh-r1\"\naddress = \"192.0.2.10\"\nrole = \"router\"\n\n[[maintenance]]\nname = \"from-config\"\nsite = \"nowhere\"\nweekly = {{ day = \"sun\", at = \"02:00\", duration = \"1h\" }}\n"
        ),
    );
    let mut d = start(dir.path(), &config);
    let port = d.port;
    let (_, list) = json(get(port, "/api/v1/alarms?device=bh-r1"));
    let util = list["items"][0]["alarmId"].as_str().unwrap().to_owned();
    let suppressed = |port| {
        let (_, shown) = json(get(port, &format!("/api/v1/alarms/{util}")));
        shown["alarm"]["suppressedBy"].clone()
    };
    assert_eq!(suppressed(port), Value::Null);

    let now = noctua::model::Timestamp::now().as_millis();
    let at = |ms: i64| noctua::model::Timestamp::from_millis(now + ms).to_string();
    let window = format!(
        r#"{{"name":"swap","device":"bh-r1","start":"{}","end":"{}"}}"#,
        at(-60_000),
        at(3_600_000)
    );
    assert_eq!(post(port, "/api/v1/maintenance", None, &window).0, 401);
    let (status, body) = post(
        port,
        "/api/v1/maintenance",
        Some(TOKEN),
        r#"{"name":"x","start":"2026-01-01T00:00:00Z","end":"2026-01-02T00:00:00Z"}"#,
    );
    assert_eq!(status, 400);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("exactly one of `device`, `site` or `tag`"),
        "{body}"
    );
    let (status, body) = post(port, "/api/v1/maintenance", Some(TOKEN), &window);
    assert_eq!(status, 201, "{body}");
    assert_eq!(suppressed(port), "maintenance");
    assert_eq!(
        post(port, "/api/v1/maintenance", Some(TOKEN), &window).0,
        409
    );

    // Stored: still there, and still suppressing, after a restart.
    signal(&d, libc::SIGTERM);
    assert_eq!(wait_exit(&mut d, Duration::from_secs(2)).code(), Some(0));
    let daemon = start(dir.path(), &config);
    let port = daemon.port;
    let (_, windows) = json(get(port, "/api/v1/maintenance"));
    assert_eq!(windows["config"][0]["name"], "from-config");
    assert_eq!(windows["api"][0]["name"], "swap");
    assert_eq!(suppressed(port), "maintenance");

    let auth = format!("Bearer {TOKEN}");
    let delete = |name: &str| {
        request(
            port,
            "DELETE",
            &format!("/api/v1/maintenance/{name}"),
            &[("Authorization", &auth)],
            "",
        )
        .unwrap()
        .0
    };
    assert_eq!(delete("from-config"), 409);
    assert_eq!(delete("swap"), 204);
    assert_eq!(delete("swap"), 404);
    assert_eq!(suppressed(port), Value::Null);
}

#[test]
fn faults_and_mttr_commands_go_through_the_running_daemon() {
    let dir = tempfile::tempdir().unwrap();
    store_with_alarms(dir.path());
    let config = write_config(dir.path(), 0, &format!("token = \"{TOKEN}\"\n"));
    let mut d = start(dir.path(), &config);
    let port = d.port;
    // The CLI finds the daemon by the config's http.listen: the port it bound.
    let config = write_config(dir.path(), port, &format!("token = \"{TOKEN}\"\n"));
    let cli = |args: &[&str]| {
        let out = Command::new(BIN)
            .args(args)
            .arg("--config")
            .arg(&config)
            .env_remove("NOCTUA_TOKEN")
            .env_remove("NOCTUA_SERVER")
            .output()
            .unwrap();
        assert_success(&out, format_args!("noctua {args:?}"));
        assert!(String::from_utf8_lossy(&out.stderr).contains("asking it at"));
        String::from_utf8(out.stdout).unwrap()
    };
    let reports: Value = serde_json::from_str(&cli(&[
        "mttr", "report", "--since", "1h", "--format", "json",
    ]))
    .unwrap();
    assert_eq!(reports[0]["total"]["faults"], 2);
    let faults: Value =
        serde_json::from_str(&cli(&["faults", "list", "--format", "json"])).unwrap();
    let ids: Vec<_> = faults
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].clone())
        .collect();
    assert_eq!(ids, [1, 2], "oldest first, as from the store");
    // The note goes through the alarm manager (token from the config), so the open fault keeps it.
    assert_eq!(
        cli(&["faults", "note", "1", "--by", "maria", "congestion at peak"]),
        "note added to fault 1\n"
    );
    let (_, list) = json(get(port, "/api/v1/alarms?device=bh-r1"));
    let util = list["items"][0]["alarmId"].as_str().unwrap().to_owned();
    assert_eq!(
        post(
            port,
            &format!("/api/v1/alarms/{util}/ack"),
            Some(TOKEN),
            r#"{"user":"omar"}"#
        )
        .0,
        200
    );
    let shown: Value = serde_json::from_str(&cli(&["faults", "show", "1"])).unwrap();
    let notes: Vec<_> = shown[0]["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["text"].clone())
        .collect();
    assert_eq!(
        notes,
        ["congestion at peak"],
        "a later transition kept the note"
    );
    assert_eq!(shown[0]["ackedBy"], "omar");
    signal(&d, libc::SIGTERM);
    assert_eq!(wait_exit(&mut d, Duration::from_secs(2)).code(), Some(0));
}

/// Trap text is the device's, and devices can be hostile: escape sequences and line breaks in
/// it reach neither the engineer's terminal (`alarms list`) nor the text log raw.
#[test]
fn hostile_device_text_reaches_neither_terminal_nor_log_raw() {
    let dir = tempfile::tempdir().unwrap();
    let at =
        noctua::model::Timestamp::from_millis(noctua::model::Timestamp::now().as_millis() - 60_000);
    let scenario = dir.path().join("s.jsonl");
    let text = "\u{1b}]0;owned\u{7}\u{1b}[2J\r\nFAKE INFO noctua: forged";
    let line = serde_json::json!({"at": at.to_string(), "device": "bh-r1", "object": "ifIndex=3", "event": "link_down", "text": text});
    std::fs::write(&scenario, format!("{line}\n")).unwrap();
    let out = Command::new(BIN)
        .args(["--log-level", "info", "replay"])
        .arg(&scenario)
        .arg("--store")
        .arg(dir.path().join("store"))
        .output()
        .unwrap();
    assert_success(&out, "noctua replay");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("\\x1b]0;owned\\x07"), "{log}");
    assert!(!log.contains('\u{1b}') && !log.contains('\r'), "{log:?}");
    assert!(!log.lines().any(|l| l.starts_with("FAKE")), "{log}");

    let config = write_config(dir.path(), 0, "");
    let d = start(dir.path(), &config);
    let out = Command::new(BIN)
        .args([
            "alarms",
            "list",
            "--server",
            &format!("http://127.0.0.1:{}", d.port),
        ])
        .output()
        .unwrap();
    assert_success(&out, "noctua alarms list");
    let listed = String::from_utf8(out.stdout).unwrap();
    assert!(
        listed.contains("\\x1b]0;owned\\x07\\x1b[2J\\r\\nFAKE"),
        "{listed}"
    );
    assert!(
        !listed.contains('\u{1b}') && !listed.contains('\r'),
        "{listed:?}"
    );
    assert_eq!(
        listed.lines().count(),
        2,
        "a header and one alarm: {listed}"
    );
}

#[test]
fn the_bearer_scheme_is_case_insensitive_and_bodies_must_be_declared_json() {
    let dir = tempfile::tempdir().unwrap();
    store_with_alarms(dir.path());
    let config = write_config(dir.path(), 0, &format!("token = \"{TOKEN}\"\n"));
    let d = start(dir.path(), &config);
    let (_, list) = json(get(d.port, "/api/v1/alarms"));
    let id = list["items"][0]["alarmId"].as_str().unwrap().to_owned();
    let body = r#"{"user":"maria"}"#;
    let send = |action: &str, auth: &str, content_type: Option<&str>| {
        let mut headers = vec![("Authorization", auth)];
        if let Some(c) = content_type {
            headers.push(("Content-Type", c));
        }
        let path = format!("/api/v1/alarms/{id}/{action}");
        json(request(d.port, "POST", &path, &headers, body))
    };
    let json_type = Some("application/json");
    let lower = format!("bearer {TOKEN}");
    let upper = format!("BEARER  {TOKEN}");
    assert_eq!(send("ack", &lower, json_type).0, 200);
    assert_eq!(send("unack", &upper, json_type).0, 200);
    for refused in [
        format!("Basic {TOKEN}"),
        format!("Bearer{TOKEN}"),
        "Bearer".to_owned(),
        format!("Bearer {TOKEN}x"),
    ] {
        assert_eq!(send("ack", &refused, json_type).0, 401, "{refused}");
    }
    let auth = format!("Bearer {TOKEN}");
    for (content_type, want) in [
        (None, 415),
        (Some("text/plain"), 415),
        (Some("application/x-www-form-urlencoded"), 415),
        (Some("Application/JSON; charset=utf-8"), 200),
    ] {
        let (status, answer) = send("ack", &auth, content_type);
        assert_eq!(status, want, "{content_type:?}: {answer}");
        if want == 415 {
            assert!(
                answer["error"]
                    .as_str()
                    .unwrap()
                    .contains("application/json"),
                "{answer}"
            );
        }
    }
}

#[test]
fn notes_past_their_size_or_count_are_refused_and_the_record_stays_small() {
    let dir = tempfile::tempdir().unwrap();
    store_with_alarms(dir.path());
    let config = write_config(
        dir.path(),
        0,
        &format!(
            "token = \"{TOKEN}\"\n\n[alarms]\nmax-notes-per-fault = 3\nmax-note-bytes = 100\n"
        ),
    );
    let d = start(dir.path(), &config);
    let (_, faults) = json(get(d.port, "/api/v1/faults"));
    let fault = faults["items"][0]["id"].as_u64().unwrap();
    let path = format!("/api/v1/faults/{fault}/notes");
    let note = |by: &str, text: &str| {
        let body = serde_json::json!({ "by": by, "text": text }).to_string();
        post(d.port, &path, Some(TOKEN), &body)
    };
    let (status, answer) = note("maria", &"x".repeat(101));
    assert_eq!(status, 413, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("max-note-bytes"),
        "{answer}"
    );
    assert_eq!(note(&"m".repeat(200), "fine").0, 400);
    assert_eq!(note("maria", "  ").0, 400);
    for i in 0..3 {
        assert_eq!(note("maria", &format!("note {i}")).0, 200);
    }
    let (status, answer) = note("maria", "one too many");
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("max-notes-per-fault"),
        "{answer}"
    );
    // An ack's note is held to the same size.
    let (_, alarms) = json(get(d.port, "/api/v1/alarms"));
    let alarm = alarms["items"][0]["alarmId"].as_str().unwrap();
    let body = serde_json::json!({ "user": "maria", "note": "y".repeat(101) }).to_string();
    let ack = format!("/api/v1/alarms/{alarm}/ack");
    assert_eq!(post(d.port, &ack, Some(TOKEN), &body).0, 413);
    let (_, shown) = json(get(d.port, &format!("/api/v1/faults/{fault}")));
    let texts: Vec<&str> = shown["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["note 0", "note 1", "note 2"]);
}

/// Under the Debian package the token comes as the systemd credential `http.token`: with no
/// token in the config, the daemon takes it from `$CREDENTIALS_DIRECTORY`.
#[test]
fn the_token_can_come_as_a_systemd_credential() {
    let dir = tempfile::tempdir().unwrap();
    store_with_alarms(dir.path());
    let credentials = dir.path().join("credentials");
    std::fs::create_dir_all(&credentials).unwrap();
    std::fs::write(credentials.join("http.token"), format!("{TOKEN}\n")).unwrap();
    let config = write_config(dir.path(), 0, "");
    let d = start_with(
        dir.path(),
        &config,
        &[("CREDENTIALS_DIRECTORY", &credentials)],
    );
    let (_, list) = json(get(d.port, "/api/v1/alarms"));
    let id = list["items"][0]["alarmId"].as_str().unwrap().to_owned();
    let ack = format!("/api/v1/alarms/{id}/ack");
    let body = r#"{"user":"maria"}"#;
    assert_eq!(post(d.port, &ack, Some("guess"), body).0, 401);
    assert_eq!(post(d.port, &ack, Some(TOKEN), body).0, 200);
}

/// The capacity API refuses what it cannot answer with a clear JSON error: an unknown grouping
/// or direction (400, naming the choices), a link with no forecast (404); an empty store is
/// an empty list, not an error.
#[test]
fn the_capacity_api_names_what_it_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = start(dir.path(), &write_config(dir.path(), 0, ""));
    let port = daemon.port;
    let (status, body) = json(get(port, "/api/v1/capacity"));
    assert_eq!((status, body), (200, serde_json::json!([])));
    let (status, body) = json(get(port, "/api/v1/capacity?by=colour"));
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("device, site, role"),
        "{body}"
    );
    let (status, body) = json(get(
        port,
        "/api/v1/capacity/chart?device=r1&object=ifIndex%3D1&direction=sideways",
    ));
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("expected in or out"),
        "{body}"
    );
    let (status, body) = json(get(
        port,
        "/api/v1/capacity/chart?device=r1&object=ifIndex%3D1",
    ));
    assert_eq!(status, 404, "{body}");
    let (status, _) = json(get(port, "/api/v1/capacity/chart?device=r1"));
    assert_eq!(status, 400, "the object is required");
}

/// A replayed history of 60 devices down at four severities, every third back up.
fn store_with_many_alarms(dir: &std::path::Path) {
    let ago = |s: i64| {
        noctua::model::Timestamp::from_millis(
            noctua::model::Timestamp::now().as_millis() - s * 1000,
        )
    };
    let severities = ["critical", "major", "minor", "warning"];
    let mut lines = String::new();
    for i in 0..60 {
        lines += &format!(
            "{{\"at\":\"{}\",\"device\":\"d{i:02}\",\"event\":\"unreachable\",\"severity\":\"{}\"}}\n",
            ago(3600 - i * 10),
            severities[i as usize % 4]
        );
    }
    for i in (0..60).step_by(3) {
        lines += &format!(
            "{{\"at\":\"{}\",\"device\":\"d{i:02}\",\"event\":\"reachable\"}}\n",
            ago(1200 - i * 10)
        );
    }
    lines += &format!("{{\"at\":\"{}\"}}\n", ago(1));
    let scenario = dir.join("many.jsonl");
    std::fs::write(&scenario, lines).unwrap();
    replay_into_store(dir, &scenario);
}

#[test]
fn every_page_of_a_listing_is_the_same_slice_of_the_whole() {
    let dir = tempfile::tempdir().unwrap();
    store_with_many_alarms(dir.path());
    let config = write_config(dir.path(), 0, "");
    let d = start(dir.path(), &config);
    let rank = |sev: &str| {
        ["WARNING", "MINOR", "MAJOR", "CRITICAL", "CLEARED"]
            .iter()
            .position(|s| *s == sev)
            .unwrap()
    };
    for (listing, expected) in [
        ("/api/v1/alarms?state=active", 40),
        ("/api/v1/alarms?state=cleared&since=2h", 20),
        ("/api/v1/faults?", 60),
    ] {
        let (status, all) = json(get(d.port, &format!("{listing}&limit=5000")));
        assert_eq!(status, 200, "{listing}: {all}");
        let items = all["items"].as_array().unwrap();
        assert_eq!(all["total"], expected, "{listing}");
        assert_eq!(items.len(), expected, "{listing}");
        // The whole listing is in its order: alarms most severe first, then newest raised;
        // faults newest first.
        for pair in items.windows(2) {
            let ordered = if listing.contains("faults") {
                let id = |v: &Value| v["id"].as_u64().unwrap();
                id(&pair[0]) > id(&pair[1])
            } else {
                let key = |v: &Value| {
                    (
                        rank(v["perceivedSeverity"].as_str().unwrap()),
                        v["alarmRaisedTime"].as_str().unwrap().to_owned(),
                    )
                };
                key(&pair[0]) >= key(&pair[1])
            };
            assert!(ordered, "{listing}: {} then {}", pair[0], pair[1]);
        }
        for (offset, limit) in [(0, 7), (7, 7), (13, 25), (expected - 3, 10), (expected, 5)] {
            let path = format!("{listing}&offset={offset}&limit={limit}");
            let (status, page) = json(get(d.port, &path));
            assert_eq!(status, 200, "{path}: {page}");
            assert_eq!(page["total"], expected, "{path}");
            assert_eq!(page["offset"], offset, "{path}");
            let end = (offset + limit).min(expected);
            assert_eq!(
                page["items"].as_array().unwrap(),
                &items[offset..end],
                "{path}"
            );
        }
    }
}
