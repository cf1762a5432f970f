//! The built binary as an operator runs it: health, metrics, signals, reload, exit codes.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test or bench reports

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

use noctua::daemon::{RUN_RECORD_KEY, RunRecord};
use noctua::store::{Store, Tree};

/// `promtool check metrics` (installed by scripts/setup-peers.sh) lints the exposition.
fn promtool_accepts(metrics: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool must be installed (scripts/setup-peers.sh installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(metrics.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn run_record(dir: &Path) -> RunRecord {
    let store = Store::open(&dir.join("store")).unwrap();
    store
        .get(Tree::Meta, RUN_RECORD_KEY)
        .unwrap()
        .expect("run record")
}

#[test]
fn serves_health_and_metrics_then_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), 0, "");
    let mut d = start(dir.path(), &config);
    let port = d.port;
    assert_eq!(get(port, "/healthz"), Some((200, "ok\n".into())));
    assert_eq!(get(port, "/readyz"), Some((200, "ready\n".into())));
    let (status, metrics) = get(port, "/metrics").unwrap();
    assert_eq!(status, 200);
    assert!(
        metrics.contains("noctua_build_info{version=\""),
        "{metrics}"
    );
    assert!(metrics.contains("noctua_store_size_bytes "), "{metrics}");
    assert!(
        metrics.contains("process_resident_memory_bytes "),
        "{metrics}"
    );
    promtool_accepts(&metrics);
    let (status, body) = get(port, "/nope").unwrap();
    assert_eq!(
        (status, body.as_str()),
        (404, "{\"error\":\"no such endpoint\"}")
    );
    assert!(log(&d).contains(&format!("{} (--config)", config.display())));
    // Port 0 in the config: the ready line and file say which port was bound.
    assert!(
        log(&d).contains(&format!("http=127.0.0.1:{port}")),
        "{}",
        log(&d)
    );
    assert_ne!(port, 0);

    signal(&d, libc::SIGTERM);
    let status = wait_exit(&mut d, Duration::from_secs(2));
    assert_eq!(status.code(), Some(0), "{}", log(&d));
    assert!(log(&d).contains("stopped cleanly"));
    let record = run_record(dir.path());
    assert_eq!(record.runs, 1);
    assert!(
        record.stopped_at.is_some(),
        "clean stop not flushed: {record:?}"
    );
}

#[test]
fn a_second_daemon_on_the_same_store_fails_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), 0, "");
    let _first = start(dir.path(), &config);
    // The same config: its port 0 gives the second daemon a port of its own, so what stops it
    // is the store.
    let stderr = refused_run(&config, &[]);
    assert!(stderr.contains("is in use by another process"), "{stderr}");
}

#[test]
fn sighup_refuses_a_bad_config_and_takes_a_good_one() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), 0, "");
    let mut d = start(dir.path(), &config);
    let port = d.port;
    let reloads = |port, result: &str| {
        get(port, "/metrics").and_then(|(_, m)| {
            m.lines()
                .find(|l| {
                    l.starts_with(&format!(
                        "noctua_config_reloads_total{{result=\"{result}\"}}"
                    ))
                })
                .map(|l| l.ends_with(" 1"))
        })
    };
    std::fs::write(&config, "[thresholds.loss]\nwarning = 5.0\nminor = 1.0\n").unwrap();
    signal(&d, libc::SIGHUP);
    wait_until(&mut d, |d| reloads(d.port, "error") == Some(true));
    assert!(log(&d).contains("config reload refused"), "{}", log(&d));
    assert!(
        log(&d).contains(":3:9: `thresholds.loss.minor`"),
        "{}",
        log(&d)
    );
    assert_eq!(get(port, "/readyz").map(|r| r.0), Some(200));

    write_config(dir.path(), 0, "[thresholds.loss]\nwarning = 0.5\n");
    signal(&d, libc::SIGHUP);
    wait_until(&mut d, |d| reloads(d.port, "ok") == Some(true));
    signal(&d, libc::SIGTERM);
    assert_eq!(wait_exit(&mut d, Duration::from_secs(2)).code(), Some(0));
}

#[test]
fn kill_9_loses_nothing_committed_and_the_next_start_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), 0, "");
    let mut d = start(dir.path(), &config);
    signal(&d, libc::SIGKILL);
    wait_exit(&mut d, Duration::from_secs(5));
    let record = run_record(dir.path());
    assert_eq!((record.runs, record.stopped_at), (1, None));

    let mut d = start(dir.path(), &config);
    assert!(
        log(&d).contains("previous run did not stop cleanly"),
        "{}",
        log(&d)
    );
    signal(&d, libc::SIGINT);
    assert_eq!(wait_exit(&mut d, Duration::from_secs(2)).code(), Some(0));
    assert_eq!(run_record(dir.path()).runs, 2);
}

#[test]
fn bind_failure_is_a_runtime_error_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let config = write_config(dir.path(), port, "");
    let stderr = refused_run(&config, &[]);
    assert!(
        stderr.contains(&format!("cannot listen on 127.0.0.1:{port} (http.listen)")),
        "{stderr}"
    );
}

#[test]
fn cli_config_commands_and_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(&good, noctua::config::DEFAULT_TOML).unwrap();
    let out = Command::new(BIN)
        .arg("check-config")
        .arg(&good)
        .output()
        .unwrap();
    assert_eq!(
        (out.status.code(), out.stdout.as_slice()),
        (Some(0), &b"ok\n"[..])
    );

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[store]\nflush-interval = \"soon\"\n").unwrap();
    let out = Command::new(BIN)
        .arg("check-config")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(&format!("{}:2:18: `store.flush-interval`: ", bad.display())),
        "{stderr}"
    );

    // Validation reports every problem, one line each.
    let many = dir.path().join("many.toml");
    std::fs::write(
        &many,
        "[pipeline]\nsample-queue = 0\n\n[netflow]\nexporters = [\"10.0.0.0/40\"]\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .arg("check-config")
        .arg(&many)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(
        lines[0].ends_with(
            "many.toml:2:16: `pipeline.sample-queue`: 0 is out of range: expected 1024 to 4194304"
        ),
        "{stderr}"
    );
    assert!(
        lines[1].contains("many.toml:5:14: `netflow.exporters[0]`"),
        "{stderr}"
    );

    let out = Command::new(BIN)
        .arg("run")
        .arg("--config")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));

    let out = Command::new(BIN)
        .arg("print-default-config")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        noctua::config::DEFAULT_TOML
    );

    let out = Command::new(BIN).arg("version").output().unwrap();
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("noctua {}\n", env!("CARGO_PKG_VERSION"))
    );

    let out = Command::new(BIN).arg("no-such-command").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// Failures after the pipeline has started (a NetFlow port taken, a ready file that cannot be
/// written) still stop in order: exit 1 naming the cause, and the store marked as stopped.
#[test]
fn a_failure_after_start_stops_in_order_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let flow_port = taken.local_addr().unwrap().port();
    let config = write_config(
        dir.path(),
        0,
        &format!("[netflow]\nenabled = true\nlisten = [\"127.0.0.1:{flow_port}\"]\n"),
    );
    let stderr = refused_run(&config, &[]);
    assert!(
        stderr.contains(&format!(
            "cannot listen on 127.0.0.1:{flow_port} (netflow.listen)"
        )),
        "{stderr}"
    );
    assert!(
        run_record(dir.path()).stopped_at.is_some(),
        "not drained and marked"
    );

    let config = write_config(dir.path(), 0, "");
    let unwritable = dir.path().join("no-such-dir/ready.json");
    let stderr = refused_run(&config, &["--ready-file".as_ref(), unwritable.as_os_str()]);
    assert!(stderr.contains("cannot write the ready file"), "{stderr}");
    let record = run_record(dir.path());
    assert_eq!(record.runs, 2);
    assert!(record.stopped_at.is_some(), "not drained and marked");
}

/// `noctua run --config CONFIG ARGS...` that must fail at start with exit 1: its stderr.
fn refused_run(config: &Path, args: &[&std::ffi::OsStr]) -> String {
    let out = Command::new(BIN)
        .args(["run", "--config"])
        .arg(config)
        .args(args)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}
