//! Detection quality over the labelled corpus in `fixtures/detect/` (written by
//! `scripts/make-detect-corpus.py`): precision, recall and mean detection delay of the default
//! configuration (thresholds and anomaly detector together), asserted against floors set from
//! what it achieves (README, "Detection"), so a regression fails CI.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test or bench reports

use std::path::Path;

use noctua::config::Config;
use noctua::detect::Detector;
use noctua::model::{Metric, Sample, SeriesKey, Severity, Timestamp};

/// A raise this long after an incident ends still counts as reporting it.
const GRACE_MS: i64 = 30 * 60_000;

#[derive(Default, Debug)]
struct Tally {
    raises: usize,
    true_raises: usize,
    events: usize,
    detected: usize,
    delay_ms: i64,
}

fn evaluate(path: &Path) -> Tally {
    let name = path.file_stem().unwrap().to_str().unwrap();
    let metric = match name.split('-').next().unwrap() {
        "latency" => Metric::LatencyMs,
        "loss" => Metric::LossPct,
        "utilisation" => Metric::UtilisationInPct,
        other => panic!("unknown metric prefix {other}"),
    };
    let text = std::fs::read_to_string(path).unwrap();
    let mut detector = Detector::new(&Config::default());
    let series = SeriesKey {
        device: "corpus".into(),
        object: name.into(),
        metric,
    };
    let mut tiers: Vec<(String, Severity)> = Vec::new();
    let mut raises: Vec<i64> = Vec::new();
    let mut events: Vec<(i64, i64)> = Vec::new();
    let mut open: Option<i64> = None;
    let mut last = 0;
    for line in text.lines().skip(1) {
        let mut f = line.split(',');
        let t: i64 = f.next().unwrap().parse::<i64>().unwrap() * 1000;
        let v: f64 = f.next().unwrap().parse().unwrap();
        let label = f.next().unwrap() == "1";
        match (label, open) {
            (true, None) => open = Some(t),
            (false, Some(s)) => {
                events.push((s, last));
                open = None;
            }
            _ => {}
        }
        last = t;
        let sample = Sample {
            series: series.clone(),
            at: Timestamp::from_millis(t),
            value: v,
            context: None,
        };
        for verdict in detector
            .step(&sample)
            .expect("corpus samples are valid")
            .verdicts
        {
            let slot = match tiers.iter().position(|(c, _)| *c == verdict.condition) {
                Some(i) => &mut tiers[i].1,
                None => {
                    tiers.push((verdict.condition.clone(), Severity::Cleared));
                    &mut tiers.last_mut().unwrap().1
                }
            };
            if *slot == Severity::Cleared && verdict.severity != Severity::Cleared {
                raises.push(t);
                if std::env::var("CORPUS_DEBUG").is_ok() {
                    eprintln!(
                        "  {name} {} {} {} {}",
                        Timestamp::from_millis(t),
                        verdict.condition,
                        verdict.severity.name(),
                        verdict.text
                    );
                }
            }
            *slot = verdict.severity;
        }
    }
    if let Some(s) = open {
        events.push((s, last));
    }
    let within = |t: i64, (s, e): (i64, i64)| t >= s && t <= e + GRACE_MS;
    let mut tally = Tally {
        raises: raises.len(),
        true_raises: raises
            .iter()
            .filter(|t| events.iter().any(|e| within(**t, *e)))
            .count(),
        events: events.len(),
        ..Tally::default()
    };
    for e in &events {
        if let Some(first) = raises.iter().find(|t| within(**t, *e)) {
            tally.detected += 1;
            tally.delay_ms += first - e.0;
        }
    }
    eprintln!("{name}: {tally:?}");
    tally
}

#[test]
fn the_corpus_is_detected_with_few_false_alarms() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/detect");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 8);
    let mut total = Tally::default();
    for f in &files {
        let t = evaluate(f);
        total.raises += t.raises;
        total.true_raises += t.true_raises;
        total.events += t.events;
        total.detected += t.detected;
        total.delay_ms += t.delay_ms;
    }
    let precision = total.true_raises as f64 / total.raises.max(1) as f64;
    let recall = total.detected as f64 / total.events.max(1) as f64;
    let delay_min = total.delay_ms as f64 / total.detected.max(1) as f64 / 60_000.0;
    eprintln!(
        "precision {precision:.3}, recall {recall:.3}, mean delay {delay_min:.1} min, {total:?}"
    );
    assert!(precision >= PRECISION_FLOOR, "precision {precision:.3}");
    assert!(recall >= RECALL_FLOOR, "recall {recall:.3}");
    assert!(
        delay_min <= DELAY_CEILING_MIN,
        "mean delay {delay_min:.1} min"
    );
}

// Achieved when the floors were set: precision 0.882 (15 of 17 raises inside an incident),
// recall 1.000 (9 of 9 incidents), mean delay 5.6 min; the calibrated score (issue 16) gives
// the same. Run with `CORPUS_DEBUG=1 cargo test --test detect_corpus -- --nocapture` to see
// every raise.
const PRECISION_FLOOR: f64 = 0.85;
const RECALL_FLOOR: f64 = 0.95;
const DELAY_CEILING_MIN: f64 = 10.0;
