//! Durable before visible, under SIGKILL: a storm is replayed into one store, the process is
//! killed at pseudo-random points 20 times and restarted each time, then allowed to finish.
//! After every kill: no fault lost or duplicated, every published transition is in the store,
//! sequence numbers are continuous, and nothing is published twice.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test or bench reports

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use noctua::model::{AlarmEvent, FaultRecord, Timestamp};
use noctua::store::{Store, Tree};

const BIN: &str = env!("CARGO_BIN_EXE_noctua");

/// A small deterministic generator, so a failure can be reproduced.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

fn write_storm(path: &Path) {
    let mut rng = Lcg(7);
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let start = Timestamp::parse_rfc3339("2026-11-29T00:00:00Z")
        .unwrap()
        .as_millis();
    for minute in 0..5000i64 {
        for series in 0..40 {
            let at = Timestamp::from_millis(start + minute * 60_000 + series * 100);
            let value = if rng.next().is_multiple_of(3) {
                50 + rng.next() % 50
            } else {
                rng.next() % 70
            };
            writeln!(
                f,
                r#"{{"at":"{at}","device":"r{}","object":"ifIndex={}","metric":"utilisation_in_pct","value":{value}}}"#,
                series % 8,
                series
            )
            .unwrap();
        }
        if minute % 7 == 0 {
            let at = Timestamp::from_millis(start + minute * 60_000 + 5_000);
            let kind = if minute % 14 == 0 {
                "unreachable"
            } else {
                "reachable"
            };
            writeln!(
                f,
                r#"{{"at":"{at}","device":"r{}","event":"{kind}"}}"#,
                minute % 8
            )
            .unwrap();
        }
    }
}

/// Sequence numbers (and alarm ids) the run published, from its JSON log.
fn published(log: &str) -> Vec<(u64, String)> {
    log.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["target"] == "noctua::pipeline::alarm")
        .filter_map(|v| {
            let f = &v["fields"];
            Some((f["seq"].as_u64()?, f["alarm"].as_str()?.to_owned()))
        })
        .collect()
}

#[test]
fn sigkill_at_random_points_loses_and_repeats_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("storm.jsonl");
    write_storm(&scenario);
    let config = dir.path().join("noctua.toml");
    std::fs::write(&config, "[alarms]\nclear-hold-down = \"30s\"\n").unwrap();
    let store_dir = dir.path().join("store");
    let mut rng = Lcg(42);
    let mut ever_published: HashMap<u64, String> = HashMap::new();
    let mut faults_before: BTreeSet<u64> = BTreeSet::new();
    let mut kills = 0;
    for run in 0..=20 {
        let log_path = dir.path().join(format!("run-{run}.log"));
        let mut child = Command::new(BIN)
            .args(["--log-format", "json", "--log-level", "info", "replay"])
            .arg(&scenario)
            .arg("--config")
            .arg(&config)
            .arg("--store")
            .arg(&store_dir)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log_path).unwrap())
            .spawn()
            .unwrap();
        if run < 20 {
            std::thread::sleep(Duration::from_millis(30 + rng.next() % 500));
            if child.try_wait().unwrap().is_none() {
                child.kill().unwrap();
                kills += 1;
            }
        }
        let status = child.wait().unwrap();
        if run == 20 {
            assert!(status.success(), "the final run must finish");
        }
        let log = std::fs::read_to_string(&log_path).unwrap();

        let store = Store::open(&store_dir).unwrap();
        let history = store.history_after(0, usize::MAX).unwrap();
        let by_seq: HashMap<u64, &AlarmEvent> = history.iter().map(|e| (e.seq, e)).collect();
        let last = store.last_seq().unwrap();
        assert_eq!(by_seq.len() as u64, last, "run {run}: sequence has gaps");
        assert!(
            (1..=last).all(|s| by_seq.contains_key(&s)),
            "run {run}: gaps"
        );
        for (seq, alarm) in published(&log) {
            let stored = by_seq
                .get(&seq)
                .unwrap_or_else(|| panic!("run {run}: published seq {seq} is not in the store"));
            assert_eq!(
                stored.alarm.alarm_id.to_string(),
                alarm,
                "run {run}: seq {seq}"
            );
            assert!(
                stored.notified,
                "run {run}: seq {seq} published but recorded as suppressed"
            );
            if let Some(prev) = ever_published.insert(seq, alarm) {
                panic!("run {run}: seq {seq} published again (first for alarm {prev})");
            }
        }
        let faults: Vec<FaultRecord> = store.scan(Tree::Faults).unwrap();
        let ids: BTreeSet<u64> = faults.iter().map(|f| f.id.0).collect();
        assert!(
            ids.is_superset(&faults_before),
            "run {run}: a fault was lost"
        );
        let mut open = HashSet::new();
        for f in faults.iter().filter(|f| f.cleared_at.is_none()) {
            let key = (f.device.clone(), f.object.clone(), f.condition.clone());
            assert!(
                open.insert(key),
                "run {run}: two open faults for one condition"
            );
        }
        faults_before = ids;
        drop(store);
    }
    assert!(
        kills >= 10,
        "only {kills} runs were killed mid-way; the storm is too short"
    );
    assert!(!ever_published.is_empty());
}
