//! `noctua replay` over the scenario fixtures: every `fixtures/scenarios/*.jsonl` must produce
//! exactly its `.expected` golden output; every `fixtures/scenarios/bad/*.jsonl` must fail with
//! the error in its `.error` file.
//!
//! To accept a deliberate change of behaviour, regenerate a golden file with
//! `noctua replay fixtures/scenarios/X.jsonl --config fixtures/scenarios/lab.toml > fixtures/scenarios/X.expected`
//! and review the diff. A scenario with its own `X.toml` runs on that config instead, and one
//! with an `X.csv` has those customers imported first.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test or bench reports

mod common;

use common::{BIN, assert_success};
use std::path::{Path, PathBuf};
use std::process::Command;

fn scenarios(dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    files
}

fn lab() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/scenarios/lab.toml")
}

#[test]
fn every_scenario_matches_its_golden_output() {
    let files = scenarios("fixtures/scenarios");
    assert!(files.len() >= 2, "{files:?}");
    for f in files {
        let expected = f.with_extension("expected");
        let own = f.with_extension("toml");
        let customers = f.with_extension("csv");
        let mut replay = Command::new(BIN);
        replay.args(["--log-level", "warn", "replay"]).arg(&f);
        if customers.exists() {
            replay.arg(&customers);
        }
        let out = replay
            .arg("--config")
            .arg(if own.exists() { own } else { lab() })
            .arg("--expect")
            .arg(&expected)
            .output()
            .unwrap();
        assert_success(&out, f.display());
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            std::fs::read_to_string(&expected).unwrap()
        );
    }
}

#[test]
fn a_mismatch_fails_with_a_diff() {
    let dir = tempfile::tempdir().unwrap();
    let golden =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/scenarios/flapping-link.expected");
    let wrong = dir.path().join("wrong.expected");
    let text = std::fs::read_to_string(golden).unwrap();
    std::fs::write(&wrong, text.replacen("\"MINOR\"", "\"MAJOR\"", 1)).unwrap();
    let out = Command::new(BIN)
        .args(["--log-level", "warn", "replay"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/scenarios/flapping-link.jsonl"))
        .arg("--config")
        .arg(lab())
        .arg("--expect")
        .arg(&wrong)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("replay differs from"), "{stderr}");
    assert!(
        stderr.contains("line 4:\n- ") && stderr.contains("\"MAJOR\"") && stderr.contains("\n+ "),
        "{stderr}"
    );
}

#[test]
fn bad_scenarios_fail_with_their_error() {
    let files = scenarios("fixtures/scenarios/bad");
    assert!(!files.is_empty());
    for f in files {
        let expected = std::fs::read_to_string(f.with_extension("error")).unwrap();
        let out = Command::new(BIN).arg("replay").arg(&f).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", f.display());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(expected.trim()),
            "{}: {stderr}",
            f.display()
        );
    }
}

#[test]
fn replaying_into_a_store_continues_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let run = || {
        Command::new(BIN)
            .args(["--log-level", "warn", "replay"])
            .arg(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("fixtures/scenarios/flapping-link.jsonl"),
            )
            .arg("--config")
            .arg(lab())
            .arg("--store")
            .arg(&store)
            .output()
            .unwrap()
    };
    let first = String::from_utf8(run().stdout).unwrap();
    let second = String::from_utf8(run().stdout).unwrap();
    assert_eq!(first.lines().count(), 8);
    // The second run prints only its own transitions, numbered after the first run's.
    let first_seq_of_second: serde_json::Value =
        serde_json::from_str(second.lines().next().unwrap()).unwrap();
    assert_eq!(first_seq_of_second["seq"], 9);
}
