//! The live alarm stream: snapshot, live transitions, and resumption with `Last-Event-ID` after
//! a dropped connection and after a daemon restart — no gap, no duplicate.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test or bench reports

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;

const TOKEN: &str = "t0ken-for-tests";
const WAIT: Duration = Duration::from_secs(10);
/// How long "nothing more arrives" is watched for; only ever makes a failing run slower.
const QUIET: Duration = Duration::from_millis(400);

fn data(e: &SseEvent) -> Value {
    serde_json::from_str(&e.data).unwrap()
}

#[test]
fn stream_resumes_without_gap_or_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    store_with_alarms(dir.path());
    let config = write_config(dir.path(), 0, &format!("token = \"{TOKEN}\"\n"));
    let mut d = start(dir.path(), &config);
    let port = d.port;

    let mut a = SseClient::connect(port, "/api/v1/alarms/stream", None);
    let snapshot = a.next(WAIT).expect("snapshot");
    assert_eq!(snapshot.event, "snapshot");
    assert_eq!(snapshot.id, Some(2));
    let active = data(&snapshot)["activeAlarms"].as_array().unwrap().clone();
    assert_eq!(active.len(), 2);
    let util = active.iter().find(|a| a["device"] == "bh-r1").unwrap()["alarmId"]
        .as_str()
        .unwrap()
        .to_owned();
    let enb = active.iter().find(|a| a["device"] == "enb-1042").unwrap()["alarmId"]
        .as_str()
        .unwrap()
        .to_owned();

    act(port, TOKEN, &util, "ack");
    let e = a.next(WAIT).expect("live transition");
    assert_eq!((e.event.as_str(), e.id), ("transition", Some(3)));
    assert_eq!(data(&e)["kind"], "acknowledged");
    drop(a); // the engineer's laptop goes to sleep

    act(port, TOKEN, &util, "unack");
    act(port, TOKEN, &util, "clear");
    let mut b = SseClient::connect(port, "/api/v1/alarms/stream", Some(3));
    let missed: Vec<_> = [b.next(WAIT), b.next(WAIT)]
        .into_iter()
        .map(|e| e.expect("missed transition"))
        .map(|e| (e.id, data(&e)["kind"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(
        missed,
        [
            (Some(4), "unacknowledged".to_owned()),
            (Some(5), "cleared".to_owned())
        ]
    );
    assert_eq!(b.next(QUIET), None, "nothing twice");
    act(port, TOKEN, &enb, "ack");
    assert_eq!(b.next(WAIT).expect("live again").id, Some(6));
    drop(b);

    // Filters: only enb-1042's transitions.
    let mut f = SseClient::connect(port, "/api/v1/alarms/stream?device=enb-1042", Some(0));
    let got: Vec<_> = std::iter::from_fn(|| f.next(QUIET))
        .map(|e| (e.event, e.id))
        .collect();
    // Resuming from before this run's first sequence number: told about the restart first.
    let t = |id| ("transition".to_owned(), Some(id));
    assert_eq!(got, [("restarted".to_owned(), None), t(2), t(6)]);
    let (status, _) = get(port, "/api/v1/alarms/stream?severity=loud").unwrap();
    assert_eq!(status, 400);
    let (status, body) = request(
        port,
        "GET",
        "/api/v1/alarms/stream",
        &[("Last-Event-ID", "yesterday")],
        "",
    )
    .unwrap();
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("Last-Event-ID must be a sequence number"),
        "{body}"
    );

    // After a restart, a resumed stream is told, and still misses nothing.
    signal(&d, libc::SIGTERM);
    assert_eq!(wait_exit(&mut d, Duration::from_secs(2)).code(), Some(0));
    let mut d = start(dir.path(), &config);
    let port = d.port;
    let mut c = SseClient::connect(port, "/api/v1/alarms/stream", Some(6));
    let note = c.next(WAIT).expect("restarted note");
    assert_eq!(note.event, "restarted");
    assert_eq!(data(&note)["firstSeq"], 7);
    act(port, TOKEN, &enb, "unack");
    let e = c.next(WAIT).expect("live after restart");
    assert_eq!(
        (e.id, data(&e)["kind"].clone()),
        (Some(7), Value::from("unacknowledged"))
    );

    // Stopping the daemon ends the stream rather than holding up the stop.
    signal(&d, libc::SIGTERM);
    assert_eq!(wait_exit(&mut d, Duration::from_secs(2)).code(), Some(0));
    assert_eq!(c.next(WAIT), None);
}

#[test]
fn alarms_tail_follows_and_survives_a_daemon_restart() {
    let dir = tempfile::tempdir().unwrap();
    store_with_alarms(dir.path());
    let config = write_config(dir.path(), 0, &format!("token = \"{TOKEN}\"\n"));
    let mut d = start(dir.path(), &config);
    let port = d.port;
    let server = format!("http://127.0.0.1:{port}");
    let (mut tail, lines) =
        spawn_lines(std::process::Command::new(BIN).args(["alarms", "tail", "--server", &server]));
    let next = || lines.recv_timeout(WAIT).expect("a line from tail");
    assert_eq!(
        next(),
        format!("2 active alarms (1 critical, 1 major) at {server}")
    );
    let header = next();
    assert!(header.starts_with("ID  SEVERITY  DEVICE"), "{header}");
    let first = next();
    assert!(
        first.contains("CRITICAL") && first.contains("enb-1042"),
        "{first}"
    );
    let second = next();
    let util = second.split_whitespace().next().unwrap().to_owned();

    act(port, TOKEN, &util, "ack");
    let acked = next();
    assert!(
        acked.contains(" acknowledged ") && acked.contains("  maria  "),
        "{acked}"
    );

    signal(&d, libc::SIGTERM);
    assert_eq!(wait_exit(&mut d, Duration::from_secs(2)).code(), Some(0));
    // Back on the port tail follows (it was the first daemon's until it stopped).
    let config = write_config(dir.path(), port, &format!("token = \"{TOKEN}\"\n"));
    let _d = start(dir.path(), &config);
    act(port, TOKEN, &util, "clear");
    let cleared = next();
    assert!(
        cleared.contains(" cleared ") && cleared.contains("CLEARED"),
        "{cleared}"
    );
    assert_eq!(
        lines.recv_timeout(QUIET).ok(),
        None,
        "nothing repeated after the restart"
    );
    tail.kill().unwrap();
    tail.wait().unwrap();
}

#[test]
fn suppressed_alarms_come_only_to_a_client_that_asks() {
    let dir = tempfile::tempdir().unwrap();
    // A backhaul router down, then the base station behind it: the second is suppressed.
    let config = write_config(
        dir.path(),
        0,
        "[[device]]\nname = \"bh-r1\"\naddress = \"192.0.2.1\"\nrole = \"router\"\n\
         [[device]]\nname = \"enb-7\"\naddress = \"192.0.2.7\"\nrole = \"base-station\"\nparent = \"bh-r1\"\n",
    );
    let at = |s: i64| {
        noctua::model::Timestamp::from_millis(
            noctua::model::Timestamp::now().as_millis() - s * 1000,
        )
    };
    let scenario = dir.path().join("s.jsonl");
    std::fs::write(
        &scenario,
        format!(
            "{{\"at\":\"{}\",\"device\":\"bh-r1\",\"event\":\"unreachable\"}}\n\
             {{\"at\":\"{}\",\"device\":\"enb-7\",\"event\":\"unreachable\"}}\n",
            at(60),
            at(59)
        ),
    )
    .unwrap();
    let out = std::process::Command::new(BIN)
        .args(["--log-level", "warn", "replay"])
        .arg(&scenario)
        .arg("--config")
        .arg(&config)
        .arg("--store")
        .arg(dir.path().join("store"))
        .output()
        .unwrap();
    assert_success(&out, "noctua replay");
    let d = start(dir.path(), &config);

    let devices = |path: &str| -> Vec<(String, bool)> {
        let mut c = SseClient::connect(d.port, path, None);
        let snapshot = c.next(WAIT).expect("snapshot");
        let mut seen: Vec<(String, bool)> = data(&snapshot)["activeAlarms"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["device"].as_str().unwrap().to_owned(),
                    a["notified"] == true,
                )
            })
            .collect();
        seen.sort();
        seen
    };
    assert_eq!(
        devices("/api/v1/alarms/stream"),
        [("bh-r1".to_owned(), true)]
    );
    assert_eq!(
        devices("/api/v1/alarms/stream?suppressed=true"),
        [("bh-r1".to_owned(), true), ("enb-7".to_owned(), false)]
    );
    // The detail of the root cause names what it suppresses.
    let (_, body) = get(d.port, "/api/v1/alarms").unwrap();
    let listed: Value = serde_json::from_str(&body).unwrap();
    let root = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["device"] == "bh-r1")
        .unwrap()["alarmId"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, body) = get(d.port, &format!("/api/v1/alarms/{root}")).unwrap();
    let detail: Value = serde_json::from_str(&body).unwrap();
    let children: Vec<&str> = detail["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["device"].as_str().unwrap())
        .collect();
    assert_eq!(children, ["enb-7"]);
    assert_eq!(detail["fault"]["alarmId"], root.as_str());
    // A wrong value is a 400 that says what was expected, not a silent default.
    let (status, body) = get(d.port, "/api/v1/alarms/stream?suppressed=maybe").unwrap();
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("suppressed"), "{body}");
}

/// A client resuming far behind (here: before the first transition of 700) is caught up from
/// the store a page at a time: every transition once, in order, filtered on every page.
#[test]
fn a_client_far_behind_gets_every_missed_transition_once_in_order() {
    const DEVICES: u64 = 700;
    let dir = tempfile::tempdir().unwrap();
    let at = noctua::model::Timestamp::now().as_millis() - 120_000;
    let scenario: String = (0..DEVICES)
        .map(|i| {
            let t = noctua::model::Timestamp::from_millis(at + i as i64);
            format!("{{\"at\":\"{t}\",\"device\":\"enb-{i}\",\"event\":\"unreachable\"}}\n")
        })
        .collect();
    std::fs::write(dir.path().join("s.jsonl"), scenario).unwrap();
    replay_into_store(dir.path(), &dir.path().join("s.jsonl"));
    let config = write_config(dir.path(), 0, "");
    let d = start(dir.path(), &config);

    let mut all = SseClient::connect(d.port, "/api/v1/alarms/stream", Some(0));
    assert_eq!(all.next(WAIT).expect("restarted").event, "restarted");
    let ids: Vec<u64> = std::iter::from_fn(|| all.next(QUIET))
        .map(|e| {
            assert_eq!(e.event, "transition");
            e.id.unwrap()
        })
        .collect();
    assert_eq!(ids, (1..=DEVICES).collect::<Vec<_>>());

    let mut one = SseClient::connect(d.port, "/api/v1/alarms/stream?device=enb-650", Some(0));
    let got: Vec<_> = std::iter::from_fn(|| one.next(QUIET))
        .map(|e| (e.event, e.id))
        .collect();
    assert_eq!(
        got,
        [
            ("restarted".to_owned(), None),
            ("transition".to_owned(), Some(651))
        ]
    );
}
