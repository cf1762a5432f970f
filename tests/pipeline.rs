//! The wired pipeline: samples in, committed and flushed alarm transitions out, drained in order.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test or bench reports

use std::sync::Arc;

use noctua::config::Config;
use noctua::message::Clock;
use noctua::model::{AlarmEvent, Metric, Sample, SeriesKey, Severity, Timestamp, TransitionKind};
use noctua::pipeline::Pipeline;
use noctua::store::{Store, Tree};

fn sample(device: &str, metric: Metric, value: f64, at: i64) -> Sample {
    Sample {
        series: SeriesKey {
            device: device.into(),
            object: "ifIndex=3".into(),
            metric,
        },
        // Recent times: the manager's clock ticks in wall time, and samples from 1970 would
        // make every response target overdue at the first tick.
        at: Timestamp::from_millis(Timestamp::now().as_millis() + at),
        value,
        context: None,
    }
}

/// Clears at once: hold-down is the alarm manager's business and tested there.
fn config() -> Config {
    let mut c = Config::default();
    c.alarms.clear_hold_down = std::time::Duration::ZERO;
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samples_become_durable_alarm_events_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let pipeline = Pipeline::start(Arc::new(config()), store.clone(), Clock::Wall).unwrap();
    let mut events = pipeline.events.subscribe();
    let series = [
        (Metric::UtilisationInPct, 50.0),
        (Metric::UtilisationInPct, 96.0),
        (Metric::LossPct, 3.0),
        // Below the major level (90) but within its hysteresis (5): stays major.
        (Metric::UtilisationInPct, 89.0),
        (Metric::UtilisationInPct, 10.0),
    ];
    for (i, (metric, value)) in series.into_iter().enumerate() {
        assert!(
            pipeline
                .samples
                .offer(sample("core-r1", metric, value, i as i64 * 1000))
        );
    }
    let mut got: Vec<AlarmEvent> = Vec::new();
    while got.len() < 4 {
        let e = events.recv().await.unwrap();
        // Published only after a flush that covers it.
        assert!(
            pipeline
                .metrics
                .store_flushes
                .with_label_values(&["ok"])
                .get()
                >= 1
        );
        got.push(e);
    }
    let summary: Vec<_> = got
        .iter()
        .map(|e| {
            (
                e.seq,
                e.kind,
                e.alarm.condition.as_str(),
                e.alarm.perceived_severity,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                1,
                TransitionKind::Raised,
                "utilisation_in_pct_threshold",
                Severity::Critical
            ),
            (
                2,
                TransitionKind::Raised,
                "loss_pct_threshold",
                Severity::Minor
            ),
            (
                3,
                TransitionKind::DeEscalated,
                "utilisation_in_pct_threshold",
                Severity::Major
            ),
            (
                4,
                TransitionKind::Cleared,
                "utilisation_in_pct_threshold",
                Severity::Cleared
            ),
        ]
    );
    pipeline.drain().await.unwrap();
    drop(store);

    // After a restart the manager continues from the store: the loss alarm is still active and
    // its clear continues the sequence.
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.len(Tree::ActiveAlarms), 1);
    let pipeline = Pipeline::start(Arc::new(config()), store.clone(), Clock::Wall).unwrap();
    let mut events = pipeline.events.subscribe();
    assert!(
        pipeline
            .samples
            .offer(sample("core-r1", Metric::LossPct, 2.5, 9000))
    );
    // The detector's state was saved at the drain and restored: it knows the series is at
    // minor, so 2.5 % changes nothing, and a return to normal clears the alarm it raised
    // before the restart.
    assert!(
        pipeline
            .samples
            .offer(sample("core-r1", Metric::LossPct, 0.1, 10_000))
    );
    let e = events.recv().await.unwrap();
    assert_eq!((e.seq, e.kind), (5, TransitionKind::Cleared));
    assert_eq!(e.alarm.alarm_id, got[1].alarm.alarm_id);
    pipeline.drain().await.unwrap();
}

#[tokio::test]
async fn a_full_sample_queue_drops_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut config = Config::default();
    config.pipeline.sample_queue = 4;
    let pipeline = Pipeline::start(Arc::new(config), store, Clock::Wall).unwrap();
    // A current-thread runtime: detection cannot run until this test yields, so the queue fills.
    let accepted = (0..10)
        .filter(|i| {
            pipeline
                .samples
                .offer(sample("sw-1", Metric::LatencyMs, 1.0, *i))
        })
        .count();
    assert_eq!(accepted, 4);
    let dropped = pipeline
        .metrics
        .ingest_dropped
        .with_label_values(&["queue_full"])
        .get();
    assert_eq!(dropped, 6);
    pipeline.drain().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clear_waiting_out_its_hold_down_at_a_restart_still_happens() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Config::default();
    c.alarms.clear_hold_down = std::time::Duration::from_secs(1);
    let config = Arc::new(c);
    let store = Store::open(dir.path()).unwrap();
    let pipeline = Pipeline::start(config.clone(), store.clone(), Clock::Wall).unwrap();
    let mut events = pipeline.events.subscribe();
    assert!(
        pipeline
            .samples
            .offer(sample("bh-r1", Metric::LossPct, 6.0, 0))
    );
    assert_eq!(events.recv().await.unwrap().kind, TransitionKind::Raised);
    // Back to normal, and the daemon stops before the hold-down is over.
    assert!(
        pipeline
            .samples
            .offer(sample("bh-r1", Metric::LossPct, 0.1, 1000))
    );
    pipeline.drain().await.unwrap();
    assert_eq!(store.len(Tree::ActiveAlarms), 1);

    let pipeline = Pipeline::start(config, store.clone(), Clock::Wall).unwrap();
    let mut events = pipeline.events.subscribe();
    assert!(
        pipeline
            .samples
            .offer(sample("bh-r1", Metric::LossPct, 0.1, 2000))
    );
    let e = tokio::time::timeout(std::time::Duration::from_secs(20), events.recv())
        .await
        .expect("the alarm clears after the restart")
        .unwrap();
    assert_eq!(e.kind, TransitionKind::Cleared);
    pipeline.drain().await.unwrap();
    assert_eq!(store.len(Tree::ActiveAlarms), 0);
}
