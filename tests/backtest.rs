//! `noctua backtest` as an engineer runs it on an exported series.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test or bench reports

mod common;

use common::{BIN, assert_success};
use std::process::Command;

#[test]
fn backtest_writes_one_row_per_input_row_and_a_summary() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("latency.csv");
    let mut csv = String::from("timestamp,value\n");
    for i in 0..600 {
        let v = if i == 500 {
            70.0
        } else {
            12.0 + (i % 3) as f64 * 0.3
        };
        csv.push_str(&format!("{},{v}\n", 1_764_000_000 + i * 300));
    }
    csv.push_str("1764180000,-4\n");
    std::fs::write(&input, csv).unwrap();
    let output = dir.path().join("out.csv");
    let out = Command::new(BIN)
        .arg("backtest")
        .arg(&input)
        .args(["--metric", "latency", "--output"])
        .arg(&output)
        .output()
        .unwrap();
    assert_success(&out, "noctua backtest");
    let written = std::fs::read_to_string(&output).unwrap();
    let rows: Vec<&str> = written.lines().collect();
    assert_eq!(rows.len(), 1 + 601);
    assert!(
        rows[501].contains(",70,") && rows[501].contains(",critical,"),
        "{}",
        rows[501]
    );
    assert!(rows[601].ends_with(",,,,negative"), "{}", rows[601]);
    let summary = String::from_utf8_lossy(&out.stderr);
    assert!(
        summary.contains("601 rows, 1 rejected, 2 alarms raised"),
        "{summary}"
    );

    let bad = Command::new(BIN)
        .args(["backtest", "/nonexistent.csv"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

/// `noctua backtest big.csv | head -1`: the command ends as Unix tools do when its reader
/// stops early, killed by SIGPIPE, and never panics on the closed pipe.
#[test]
fn a_reader_that_stops_early_ends_the_command_quietly() {
    use std::io::BufRead;
    use std::os::unix::process::ExitStatusExt;
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("long.csv");
    // Far more output than a pipe holds (64 KiB), so the command must meet the closed pipe.
    let mut csv = String::from("timestamp,value\n");
    for i in 0..20_000 {
        csv.push_str(&format!("{},{}\n", 1_764_000_000 + i * 60, 10 + i % 7));
    }
    std::fs::write(&input, csv).unwrap();
    let mut child = Command::new(BIN)
        .arg("backtest")
        .arg(&input)
        .args(["--metric", "latency"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("timestamp,"), "{first}");
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGPIPE),
        "{:?}: {stderr}",
        out.status
    );
}
