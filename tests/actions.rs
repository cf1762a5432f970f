//! Automated handling in the running daemon, alarms raised by real SNMP traps (net-snmp's
//! `snmptrap`): an `exec` that waits for approval (with and without the token), then runs a
//! test script and checks the link comes back; a webhook to a receiver that fails once; and
//! kill -9 in the middle of an `exec`: the step is `unknown` after the restart and never runs
//! again; an `snmp-set` through net-snmp's snmpd, read back, then the link's return.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test or bench reports

mod common;

use common::snmpd::{Snmpd, free_udp_port, shared_dir};

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use serde_json::Value;

const TOKEN: &str = "token-for-the-actions-test";
const API_KEY: &str = "k3y-that-must-not-be-shown";

/// A daemon taking v2c traps from `r1` (never polled on its own: hourly, at a port nothing
/// answers, and many misses before it counts as down), with `rules` after `[actions]`.
fn config(dir: &Path, rules: &str) -> PathBuf {
    config_at(dir, rules, peer_port())
}

/// [`config`] with r1's agent at `port`.
fn config_at(dir: &Path, rules: &str, port: u16) -> PathBuf {
    std::fs::write(dir.join("token"), TOKEN).unwrap();
    std::fs::write(dir.join("api-key"), API_KEY).unwrap();
    write_config(
        dir,
        0,
        &format!(
            "token-file = \"{token}\"\n\
             [alarms]\nclear-hold-down = \"0s\"\n\
             [snmp]\ninterval = \"1h\"\nunreachable-after = 100\n\
             [snmp.credentials.v2]\nversion = \"v2c\"\ncommunity = \"public\"\nwrite-community = \"private\"\n\
             [traps]\nenabled = true\nlisten = \"127.0.0.1:0\"\n\
             [[device]]\nname = \"r1\"\naddress = \"127.0.0.1\"\nsnmp-port = {port}\nrole = \"router\"\ncredentials = \"v2\"\n\
             [actions]\nenabled = true\nallow-exec = [\"{script}\"]\n{rules}",
            token = dir.join("token").display(),
            port = port,
            script = dir.join("bounce.sh").display(),
        ),
    )
}

/// The test's repair script: records its arguments and whether it got the secret, prints a
/// line; for ifIndex 3 with `slow`, it then sleeps (the crash test kills the daemon meanwhile,
/// and the sleeper after).
fn script(dir: &Path) {
    let path = dir.join("bounce.sh");
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\n\
             key=none; [ \"$API_KEY\" = \"{API_KEY}\" ] && key=given\n\
             echo \"$1 $2 key=$key\" >> \"{ran}\"\n\
             echo \"port $2 of $1 bounced\"\n\
             if [ \"$3\" = slow ] && [ \"$2\" = 3 ]; then echo $$ > \"{pid}\"; exec sleep 30; fi\n",
            ran = dir.join("ran").display(),
            pid = dir.join("pid").display(),
        ),
    )
    .unwrap();
    let mut perms = std::fs::metadata(&path).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&path, perms).unwrap();
}

fn ran(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("ran"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// linkDown (or linkUp) for `index` from r1, as net-snmp sends it.
fn link(d: &Daemon, index: u32, up: bool) {
    let to = format!("127.0.0.1:{}", bound_port(&d.bound["traps"]));
    let oid = if up {
        "1.3.6.1.6.3.1.1.5.4"
    } else {
        "1.3.6.1.6.3.1.1.5.3"
    };
    let index = index.to_string();
    let out = Command::new("snmptrap")
        .env("MIBS", "")
        .args(["-v", "2c", "-c", "public", &to, "", oid])
        .args([
            "1.3.6.1.2.1.2.2.1.1.".to_owned() + &index,
            "i".into(),
            index.clone(),
        ])
        .output()
        .expect("snmptrap (scripts/setup-peers.sh installs it)");
    assert_success(&out, "snmptrap");
}

fn actions(port: u16, query: &str) -> Vec<Value> {
    get(port, &format!("/api/v1/actions?{query}"))
        .and_then(|(_, b)| serde_json::from_str::<Value>(&b).ok())
        .and_then(|v| v["items"].as_array().cloned())
        .unwrap_or_default()
}

fn post(port: u16, path: &str, token: Option<&str>, body: &str) -> u16 {
    let bearer = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(b) = &bearer {
        headers.push(("Authorization", b));
    }
    request(port, "POST", path, &headers, body).unwrap().0
}

const BOUNCE: &str = r#"
[[action]]
name = "bounce"
on = ["raised"]
condition = "link_down"
object = "ifIndex=*"
mode = "live"
require-approval = true

[[action.step]]
exec = ["SCRIPT", "{device}", "{ifindex}"]
secret-env = { API_KEY = "api-key" }

[[action.step]]
wait-clear = "2m"
"#;

fn bounce(dir: &Path) -> String {
    BOUNCE.replace("SCRIPT", &dir.join("bounce.sh").display().to_string())
}

#[test]
fn an_approved_exec_runs_once_with_its_secret_hidden_and_succeeds_when_the_link_returns() {
    let dir = tempfile::tempdir().unwrap();
    script(dir.path());
    let cfg = config(dir.path(), &bounce(dir.path()));
    let mut d = start(dir.path(), &cfg);
    link(&d, 3, false);
    wait_until(&mut d, |d| {
        actions(d.port, "state=awaiting-approval").len() == 1
    });
    assert!(ran(dir.path()).is_empty(), "nothing runs before approval");
    let id = actions(d.port, "")[0]["id"].as_u64().unwrap();

    // Approvals need the token.
    let approve = format!("/api/v1/actions/{id}/approve");
    assert_eq!(post(d.port, &approve, None, r#"{"by":"eve"}"#), 401);
    assert_eq!(
        post(d.port, &approve, Some("wrong"), r#"{"by":"eve"}"#),
        401
    );
    assert_eq!(post(d.port, &approve, Some(TOKEN), r#"{"by":""}"#), 400);
    let out = cli(
        dir.path(),
        d.port,
        &["actions", "approve", &id.to_string(), "--by", "ana"],
    );
    assert_success(&out, "noctua actions approve");
    assert!(text(&out).contains("approved by ana"), "{}", text(&out));
    wait_until(&mut d, |_| !ran(dir.path()).is_empty());
    assert_eq!(ran(dir.path()), ["r1 3 key=given"]);
    // Deciding twice is refused, saying what it is now.
    let out = cli(
        dir.path(),
        d.port,
        &["actions", "reject", &id.to_string(), "--by", "ben"],
    );
    assert!(!out.status.success());
    assert!(
        text(&out).contains("not awaiting approval"),
        "{}",
        text(&out)
    );

    // The link comes back: the wait succeeds.
    link(&d, 3, true);
    wait_until(&mut d, |d| actions(d.port, "state=succeeded").len() == 1);
    let a = &actions(d.port, "")[0];
    assert_eq!(a["decision"]["by"], "ana");
    assert_eq!(a["steps"][0]["exitCode"], 0);
    assert_eq!(a["steps"][0]["output"], "port 3 of r1 bounced");
    assert_eq!(a["steps"][1]["outcome"], "ok");
    let shown = text(&cli(
        dir.path(),
        d.port,
        &["actions", "show", &id.to_string()],
    ));
    assert!(shown.contains("approved by ana"), "{shown}");
    assert!(shown.contains("exec API_KEY=*** "), "{shown}");
    assert!(shown.contains("exit 0"), "{shown}");
    assert!(!shown.contains(API_KEY) && !a.to_string().contains(API_KEY));

    // The fault record carries the audit trail; the report counts the run.
    let fault = a["faultId"].as_u64().unwrap().to_string();
    let out = cli(dir.path(), d.port, &["faults", "show", &fault]);
    assert_success(&out, "noctua faults show");
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown[0]["actions"][0]["state"], "succeeded");
    let report = cli(
        dir.path(),
        d.port,
        &["actions", "report", "--format", "csv"],
    );
    assert_success(&report, "noctua actions report");
    let row = String::from_utf8_lossy(&report.stdout)
        .lines()
        .find(|l| l.contains(",bounce,"))
        .unwrap()
        .to_owned();
    assert!(row.contains(",bounce,live,1,1,0,0,0,0,0,"), "{row}");
    assert_eq!(
        metric(
            d.port,
            "noctua_actions_total{rule=\"bounce\",state=\"succeeded\"}"
        ),
        Some(1.0)
    );
    assert_eq!(ran(dir.path()).len(), 1, "it ran exactly once");
}

/// A local HTTP receiver: answers each request with the next status of `statuses` (then 200),
/// and keeps what it was sent.
fn receiver(statuses: Vec<u16>) -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let kept = seen.clone();
    std::thread::spawn(move || {
        let mut statuses = statuses.into_iter();
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut head = String::new();
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                head.push_str(&line);
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            kept.lock()
                .unwrap()
                .push(format!("{head}\n{}", String::from_utf8_lossy(&body)));
            let status = statuses.next().unwrap_or(200);
            let _ = write!(
                conn,
                "HTTP/1.1 {status} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
            );
        }
    });
    (port, seen)
}

#[test]
fn a_webhook_answered_500_is_retried_and_succeeds_on_the_200() {
    let dir = tempfile::tempdir().unwrap();
    script(dir.path());
    std::fs::write(dir.path().join("hook-token"), "hook-secret").unwrap();
    let (port, seen) = receiver(vec![500]);
    let rules = format!(
        "[[action]]\nname = \"hook\"\non = [\"raised\"]\nmode = \"live\"\n\
         [[action.step]]\nwebhook = \"http://127.0.0.1:{port}/noc?fault={{fault-id}}\"\ntoken-file = \"hook-token\"\nretries = 2\ntimeout = \"5s\"\n"
    );
    let cfg = config(dir.path(), &rules);
    let mut d = start(dir.path(), &cfg);
    link(&d, 7, false);
    wait_until(&mut d, |d| actions(d.port, "state=succeeded").len() == 1);
    let a = &actions(d.port, "")[0];
    assert_eq!(a["steps"][0]["httpStatus"], 200);
    assert_eq!(a["steps"][0]["detail"], "HTTP 200 on attempt 2 of 3");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "{seen:#?}");
    for request in &seen {
        let fault = a["faultId"].as_u64().unwrap();
        assert!(
            request.starts_with(&format!("POST /noc?fault={fault} ")),
            "{request}"
        );
        assert!(
            request
                .to_ascii_lowercase()
                .contains("authorization: bearer hook-secret"),
            "{request}"
        );
        let body: Value = serde_json::from_str(request.split_once("\n\n").unwrap().1).unwrap();
        assert_eq!(body["rule"], "hook");
        assert_eq!(body["alarm"]["condition"], "link_down");
        assert_eq!(body["alarm"]["object"], "ifIndex=7");
    }
    assert!(!a.to_string().contains("hook-secret"));
}

#[test]
fn a_step_cut_short_by_kill_9_is_unknown_after_the_restart_and_never_runs_again() {
    let dir = tempfile::tempdir().unwrap();
    script(dir.path());
    let rules = format!(
        "[[action]]\nname = \"bounce\"\non = [\"raised\"]\ncondition = \"link_down\"\nmode = \"live\"\n\
         [[action.step]]\nexec = [\"{}\", \"{{device}}\", \"{{ifindex}}\", \"slow\"]\ntimeout = \"1m\"\n",
        dir.path().join("bounce.sh").display()
    );
    let cfg = config(dir.path(), &rules);
    let mut d = start(dir.path(), &cfg);
    // Port 3's run sleeps: the daemon dies in the middle of the step.
    link(&d, 3, false);
    wait_until(&mut d, |_| !ran(dir.path()).is_empty());
    signal(&d, libc::SIGKILL);
    wait_exit(&mut d, Duration::from_secs(10));
    drop(d);

    let mut d = start(dir.path(), &cfg);
    wait_until(&mut d, |d| actions(d.port, "state=unknown").len() == 1);
    let a = &actions(d.port, "state=unknown")[0];
    assert_eq!(a["steps"][0]["outcome"], "unknown");
    assert!(
        a["reason"].as_str().unwrap().contains("check it by hand"),
        "{a}"
    );
    // The daemon acts again (a new alarm, a new action), and the first never ran twice.
    link(&d, 4, false);
    wait_until(&mut d, |_| ran(dir.path()).len() == 2);
    wait_until(&mut d, |d| actions(d.port, "state=succeeded").len() == 1);
    let lines = ran(dir.path());
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("r1 3 ")).count(),
        1,
        "{lines:?}"
    );
    assert!(lines[1].starts_with("r1 4 "), "{lines:?}");
    // The sleeper the killed daemon left behind.
    if let Ok(pid) = std::fs::read_to_string(dir.path().join("pid")) {
        kill(pid.trim().parse().unwrap(), libc::SIGKILL);
    }
}

#[test]
fn an_snmp_set_reaches_the_agent_is_read_back_and_the_wait_ends_with_the_link() {
    // Port 3 was shut (admin down, oper down): the rule turns it back on.
    let dir = shared_dir();
    script(dir.path());
    let port = free_udp_port();
    let agent = Snmpd::start(dir.path(), port);
    let state = |admin: u8, oper: u8| {
        serde_json::json!({"ifaces": {
            "3": {"name": "ge-0/0/2", "type": 6, "admin": admin, "oper": oper, "in32": 1, "out32": 1}
        }})
    };
    agent.state(state(2, 2));
    let rules = "[[action]]\nname = \"restore-port\"\non = [\"raised\"]\ncondition = \"link_down\"\nmode = \"live\"\n\
                 [[action.step]]\nsnmp-set = \"1.3.6.1.2.1.2.2.1.7.{ifindex}\"\nvalue = 1\ntimeout = \"2s\"\n\
                 [[action.step]]\nwait-clear = \"2m\"\n";
    let rules = format!("allow-oids = [\"1.3.6.1.2.1.2.2.1.7\"]\n{rules}");
    let cfg = config_at(dir.path(), &rules, port);
    let mut d = start(dir.path(), &cfg);
    link(&d, 3, false);
    wait_until(&mut d, |d| {
        actions(d.port, "")
            .first()
            .is_some_and(|a| a["steps"][0]["outcome"] == "ok")
    });
    // The agent's script saw the SET, and the agent now says admin up.
    let sets = std::fs::read_to_string(dir.path().join("sets.log")).unwrap();
    assert_eq!(sets, "1.3.6.1.2.1.2.2.1.7.3 1\n");
    let a = &actions(d.port, "")[0];
    assert_eq!(a["steps"][0]["output"], "1.3.6.1.2.1.2.2.1.7.3 = 1");
    assert_eq!(a["state"], "running", "waiting for the link: {a}");
    // The link comes back.
    agent.state(state(1, 1));
    link(&d, 3, true);
    wait_until(&mut d, |d| actions(d.port, "state=succeeded").len() == 1);
}
