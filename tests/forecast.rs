//! `noctua backtest --forecast` over the generated fixtures (`scripts/make-forecast-fixtures.py`):
//! every `fixtures/forecast/*.csv` must produce exactly its `.expected` rows, and the summary
//! must meet the targets: no false predictive alarm on the series that do not grow (flat with
//! seasons, bursts, a level shift), and on the 3 %-a-week ramps the alarm raised within a week
//! of 30 days before the crossing and a median error of time-to-threshold under a week.
//!
//! To accept a deliberate change, regenerate: `noctua backtest --forecast X.csv > X.expected`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test or bench reports

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{BIN, assert_success};

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/forecast");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "csv"))
        .collect();
    files.sort();
    files
}

/// `N false (F per series-month)` and `median error E days` from the summary line.
fn figures(summary: &str) -> (usize, Option<f64>) {
    let alarms = summary
        .split(" false (")
        .next()
        .and_then(|p| p.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no false-alarm count in {summary}"));
    let error = summary
        .split("median error ")
        .nth(1)
        .and_then(|e| e.split(' ').next())
        .and_then(|e| e.parse().ok());
    (alarms, error)
}

#[test]
fn every_fixture_forecasts_to_its_golden_rows_and_meets_the_targets() {
    let files = fixtures();
    assert_eq!(files.len(), 5, "{files:?}");
    for f in files {
        let out = Command::new(BIN)
            .args(["backtest", "--forecast"])
            .arg(&f)
            .output()
            .unwrap();
        assert_success(&out, f.display());
        let rows = String::from_utf8(out.stdout).unwrap();
        assert_eq!(
            rows,
            std::fs::read_to_string(f.with_extension("expected")).unwrap(),
            "{}",
            f.display()
        );
        let summary = String::from_utf8(out.stderr).unwrap();
        let (false_alarms, error) = figures(&summary);
        assert_eq!(false_alarms, 0, "{}: {summary}", f.display());
        let name = f.file_stem().unwrap().to_str().unwrap();
        if name.starts_with("ramp") {
            assert!(error.is_some_and(|e| e <= 7.0), "{name}: {summary}");
            // Raised once, within a week of 30 days before the crossing.
            let raised: Vec<&str> = rows.lines().filter(|l| l.ends_with(",raised")).collect();
            assert_eq!(raised.len(), 1, "{name}: {raised:?}");
            let fields: Vec<&str> = raised[0].split(',').collect();
            let day = |d: &str| {
                noctua::model::Timestamp::parse_rfc3339(&format!("{d}T00:00:00Z")).unwrap()
            };
            let lead = day(fields[7]).since(day(fields[0])).as_secs() / 86_400;
            assert!(
                (23..=37).contains(&lead),
                "{name}: raised {lead} days ahead"
            );
        } else {
            assert!(!summary.contains("crossed on"), "{name}: {summary}");
        }
    }
}
