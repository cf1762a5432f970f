//! The sled store: durability, schema and lock errors, atomic transitions, group commit.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test or bench reports

use std::time::Duration;

use noctua::alarm::AlarmManager;
use noctua::config::Config;
use noctua::message::Verdict;
use noctua::model::{
    Alarm, AlarmEvent, Category, FaultId, FaultRecord, Impact, Metric, Note, SeriesKey, Severity,
    Timestamp, Transition,
};
use noctua::store::{NoteRefused, SCHEMA_VERSION, Store, StoreError, Tree};
use tokio_util::sync::CancellationToken;

fn verdict(device: &str, severity: Severity, at: i64) -> Verdict {
    Verdict {
        series: SeriesKey {
            device: device.into(),
            object: "ifIndex=1".into(),
            metric: Metric::LatencyMs,
        },
        at: Timestamp::from_millis(at),
        condition: "latency_ms_threshold".into(),
        severity,
        category: Category::Performance,
        threshold: None,
        text: format!("{device} latency"),
    }
}

fn commit(store: &Store, t: &Transition) -> Result<(), StoreError> {
    store
        .commit_transitions(std::slice::from_ref(t))
        .map(|_| ())
}

/// A manager that clears at once, so each verdict gives exactly one transition.
fn manager() -> AlarmManager {
    let mut c = Config::default();
    c.alarms.clear_hold_down = Duration::ZERO;
    AlarmManager::new(&c)
}

/// Every committed transition, in sequence order.
fn history(store: &Store) -> Vec<AlarmEvent> {
    store.history_after(0, usize::MAX).unwrap()
}

fn one(ts: Vec<Transition>) -> Transition {
    assert_eq!(ts.len(), 1, "{ts:?}");
    ts.into_iter().next().unwrap()
}

#[test]
fn reopen_keeps_committed_transitions() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = manager();
    let raise = one(m.on_verdict(verdict("core-r1", Severity::Major, 1000)));
    let other = one(m.on_verdict(verdict("bh-r1", Severity::Minor, 2000)));
    let clear = one(m.on_verdict(verdict("bh-r1", Severity::Cleared, 3000)));
    {
        let store = Store::open(dir.path()).unwrap();
        for t in [&raise, &other, &clear] {
            commit(&store, t).unwrap();
        }
        store.flush().unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    let active: Vec<Alarm> = store.scan(Tree::ActiveAlarms).unwrap();
    assert_eq!(active, vec![raise.event.alarm.clone()]);
    let faults: Vec<FaultRecord> = store.scan(Tree::Faults).unwrap();
    assert_eq!(faults, vec![raise.fault.clone(), clear.fault.clone()]);
    assert_eq!(
        history(&store),
        vec![
            raise.event.clone(),
            other.event.clone(),
            clear.event.clone()
        ]
    );
    assert_eq!(store.outbox_after(0, usize::MAX).unwrap().len(), 3);
    assert_eq!(store.outbox_depth(), 3, "counted again at open");
    assert_eq!(store.last_seq().unwrap(), 3);
    // Resuming from the middle returns exactly the rest, and a limit is kept.
    let rest = store.history_after(1, usize::MAX).unwrap();
    assert_eq!(rest, vec![other.event.clone(), clear.event]);
    assert_eq!(store.history_after(1, 1).unwrap(), vec![other.event]);
}

#[test]
fn failed_transaction_leaves_no_partial_write() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut m = manager();
    let raise = one(m.on_verdict(verdict("core-r1", Severity::Major, 1000)));
    commit(&store, &raise).unwrap();
    let escalate = one(m.on_verdict(verdict("core-r1", Severity::Critical, 2000)));
    // Pretend the escalation was computed from a state the store never had.
    let mut stale = escalate.clone();
    stale.expected = Some(999);
    let err = commit(&store, &stale).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Conflict {
                expected: Some(999),
                found: Some(1),
                ..
            }
        ),
        "{err}"
    );
    // Nothing of it reached any of the four trees.
    let active: Vec<Alarm> = store.scan(Tree::ActiveAlarms).unwrap();
    assert_eq!(active[0].perceived_severity, Severity::Major);
    let faults: Vec<FaultRecord> = store.scan(Tree::Faults).unwrap();
    assert_eq!(faults[0].peak_severity, Severity::Major);
    assert_eq!(history(&store).len(), 1);
    assert_eq!(store.outbox_depth(), 1);
    // A raise for an alarm id that already exists is refused the same way.
    let mut again = raise.clone();
    again.event.seq = 5;
    let err = commit(&store, &again).unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict { expected: None, .. }),
        "{err}"
    );
    assert_eq!(history(&store).len(), 1);
    commit(&store, &escalate).unwrap();
    assert_eq!(history(&store).len(), 2);
    // A transition whose sequence number the store already has is refused.
    let err = commit(&store, &escalate).unwrap_err();
    assert!(
        matches!(err, StoreError::OutOfSequence { found: 2, after: 2 }),
        "{err}"
    );
    assert_eq!(history(&store).len(), 2);
}

#[test]
fn newer_schema_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = sled::open(dir.path()).unwrap();
        let meta = db.open_tree("meta").unwrap();
        meta.insert("schema_version", &(SCHEMA_VERSION + 1).to_be_bytes())
            .unwrap();
        db.flush().unwrap();
    }
    let err = Store::open(dir.path()).err().expect("must refuse");
    let text = err.to_string();
    assert!(matches!(err, StoreError::NewerSchema { found, .. } if found == SCHEMA_VERSION + 1));
    assert!(text.contains("newer than this noctua supports"), "{text}");
    assert!(text.contains(&dir.path().display().to_string()), "{text}");
}

#[test]
fn locked_store_says_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let _first = Store::open(dir.path()).unwrap();
    let err = Store::open(dir.path())
        .err()
        .expect("second open must fail");
    assert_eq!(
        err.to_string(),
        format!(
            "store at {} is in use by another process (is noctua running? stop it or use its HTTP API)",
            dir.path().display()
        )
    );
}

#[test]
fn corrupt_values_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = sled::open(dir.path()).unwrap();
        db.open_tree("alarms_active")
            .unwrap()
            .insert(1u64.to_be_bytes(), &[1u8, 0xff, 0xff][..])
            .unwrap();
        db.flush().unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    let err = store.scan::<Alarm>(Tree::ActiveAlarms).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("corrupt value in tree alarms_active"),
        "{err}"
    );
}

#[test]
fn a_batch_commits_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut m = manager();
    let mut batch = m.on_verdict(verdict("core-r1", Severity::Major, 1000));
    batch.extend(m.on_verdict(verdict("core-r1", Severity::Critical, 1001)));
    batch.extend(m.on_verdict(verdict("bh-r1", Severity::Minor, 1002)));
    // Several transitions of one alarm in one transaction chain correctly.
    store.commit_transitions(&batch).unwrap();
    assert_eq!(history(&store).len(), 3);
    assert_eq!(store.last_seq().unwrap(), 3);
    let mut next = m.on_verdict(verdict("core-r1", Severity::Cleared, 2000));
    next.extend(m.on_verdict(verdict("bh-r1", Severity::Major, 2001)));
    next[1].expected = Some(77);
    assert!(store.commit_transitions(&next).is_err());
    // The good first half of the failed batch is not there either.
    assert_eq!(store.len(Tree::ActiveAlarms), 2);
    assert_eq!(history(&store).len(), 3);
    assert_eq!(store.last_seq().unwrap(), 3);
    // Sequence numbers must rise through a batch.
    let mut next = m.on_verdict(verdict("x1", Severity::Major, 3000));
    next.extend(m.on_verdict(verdict("x2", Severity::Major, 3001)));
    next.swap(0, 1);
    let err = store.commit_transitions(&next).unwrap_err();
    assert!(matches!(err, StoreError::OutOfSequence { .. }), "{err}");
    assert_eq!(history(&store).len(), 3);
}

#[test]
fn suppressed_transitions_stay_out_of_the_outbox_and_retention_keeps_what_is_live() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut c = Config::default();
    c.alarms.clear_hold_down = Duration::ZERO;
    c.devices = toml::from_str::<Config>(
        "[[device]]\nname = \"core-r1\"\naddress = \"192.0.2.1\"\nrole = \"router\"\n[[device]]\nname = \"bh-r1\"\naddress = \"192.0.2.2\"\nrole = \"router\"\nparent = \"core-r1\"\n",
    )
    .unwrap()
    .devices;
    let mut m = AlarmManager::new(&c);
    let down = m.on_event(noctua::model::DeviceEvent {
        device: "core-r1".into(),
        object: "device".into(),
        kind: noctua::model::EventKind::Unreachable,
        at: Timestamp::from_millis(1000),
        text: String::new(),
        severity: None,
    });
    let symptom = m.on_verdict(verdict("bh-r1", Severity::Major, 2000));
    let symptom_gone = m.on_verdict(verdict("bh-r1", Severity::Cleared, 3000));
    let symptom_gone_event = symptom_gone[0].event.clone();
    for batch in [down, symptom, symptom_gone] {
        store.commit_transitions(&batch).unwrap();
    }
    assert_eq!(history(&store).len(), 3);
    let outbox = store.outbox_after(0, usize::MAX).unwrap();
    assert_eq!(outbox.len(), 1, "only the root cause is notified");
    assert_eq!(store.outbox_depth(), 1);
    // The root cause is still in the outbox, so retention keeps it: only the symptom goes.
    assert_eq!(store.compact(Timestamp::from_millis(2500)).unwrap(), 1);
    assert_eq!(
        history(&store),
        [outbox[0].clone(), symptom_gone_event.clone()]
    );
    store.outbox_delivered(outbox[0].seq, 1).unwrap();
    assert_eq!(store.outbox_depth(), 0);
    // Delivered: history before 2500 goes; the open root fault stays, and so does the
    // symptom's fault, closed after the cutoff.
    assert_eq!(store.compact(Timestamp::from_millis(2500)).unwrap(), 1);
    assert_eq!(history(&store).len(), 1);
    assert_eq!(store.len(Tree::Faults), 2);
    assert_eq!(store.compact(Timestamp::from_millis(10_000)).unwrap(), 2);
    assert!(history(&store).is_empty());
    assert_eq!(
        store.len(Tree::Faults),
        1,
        "the open fault is never compacted"
    );
    assert_eq!(store.last_seq().unwrap(), 3, "sequence survives retention");
}

#[tokio::test]
async fn group_commit_makes_waiting_writers_durable_together() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let stop = CancellationToken::new();
    let flushes = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = flushes.clone();
    let flusher = tokio::spawn(store.clone().run_flusher(
        Duration::from_millis(50),
        stop.clone(),
        move |r| {
            assert!(r.ok);
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        },
    ));
    let mut waiters = Vec::new();
    for i in 0..20u64 {
        let ticket = store.put(Tree::Meta, &i.to_be_bytes(), &i).unwrap();
        let s = store.clone();
        waiters.push(tokio::spawn(async move { s.durable(ticket).await }));
    }
    for w in waiters {
        w.await.unwrap().unwrap();
    }
    // Twenty writers, far fewer flushes: they shared them.
    let n = flushes.load(std::sync::atomic::Ordering::SeqCst);
    assert!((1..20).contains(&n), "{n} flushes for 20 writes");
    stop.cancel();
    flusher.await.unwrap();
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(
        store.get::<u64>(Tree::Meta, &7u64.to_be_bytes()).unwrap(),
        Some(7)
    );
}

#[test]
fn retention_keeps_the_store_bounded_through_a_day_long_storm() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut c = Config::default();
    c.alarms.clear_hold_down = Duration::ZERO;
    c.alarms.reopen_window = Duration::ZERO;
    let mut m = AlarmManager::new(&c);
    let retention_ms = 2 * 3_600_000;
    let series = 20;
    let mut max_history = 0;
    let mut max_faults = 0;
    let mut total = 0;
    // 24 simulated hours, a minute at a time: every series raises one minute and clears the next.
    for minute in 0..1440i64 {
        let now = minute * 60_000;
        let sev = if minute % 2 == 0 {
            Severity::Major
        } else {
            Severity::Cleared
        };
        let batch: Vec<Transition> = (0..series)
            .flat_map(|s| m.on_verdict(verdict(&format!("r{s}"), sev, now + s)))
            .collect();
        total += batch.len();
        store.commit_transitions(&batch).unwrap();
        // No publisher in this test: what the alarm stage does then.
        store.outbox_trim(100).unwrap();
        if minute % 10 == 9 {
            store
                .compact(Timestamp::from_millis(now - retention_ms))
                .unwrap();
            max_history = max_history.max(history(&store).len());
            max_faults = max_faults.max(store.len(Tree::Faults));
        }
    }
    // Plus the flapping alarms the churn raises.
    assert!(total >= 1440 * 20, "{total}");
    // Two hours (plus one compaction interval) of a 20-transitions-a-minute storm.
    assert!(max_history <= 20 * 130, "history grew to {max_history}");
    assert!(max_faults <= 10 * 130 + 20, "faults grew to {max_faults}");
    assert_eq!(store.last_seq().unwrap(), total as u64);
}

/// Sequence numbers of the outbox, oldest first.
fn waiting(store: &Store) -> Vec<u64> {
    let events = store.outbox_after(0, usize::MAX).unwrap();
    events.iter().map(|e| e.seq).collect()
}

/// `n` raises, one per device, each notified.
fn raises(m: &mut AlarmManager, n: usize) -> Vec<Transition> {
    (0..n)
        .flat_map(|i| m.on_verdict(verdict(&format!("r{i}"), Severity::Major, i as i64)))
        .collect()
}

#[test]
fn a_full_outbox_drops_its_oldest() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store
        .commit_transitions(&raises(&mut manager(), 5))
        .unwrap();
    assert_eq!(store.outbox_trim(5).unwrap(), (0, 0));
    assert_eq!(store.outbox_trim(2).unwrap(), (3, 3));
    assert_eq!(waiting(&store), [4, 5]);
    assert_eq!(store.outbox_depth(), 2);
    // A publisher that read past the cursor asks from there.
    assert_eq!(store.outbox_after(4, 10).unwrap()[0].seq, 5);
    // History keeps what the outbox dropped.
    assert_eq!(history(&store).len(), 5);
    store.flush().unwrap();
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.outbox_cursor().unwrap(), 3);
    assert_eq!(store.outbox_depth(), 2);
}

#[test]
fn a_storm_batch_is_a_few_journal_rows_read_back_across_their_edges() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let batch = raises(&mut manager(), 150);
    store.commit_transitions(&batch).unwrap();
    assert_eq!(
        store.len(Tree::Journal),
        150usize.div_ceil(noctua::store::JOURNAL_ROW)
    );
    for (after, limit) in [(0, 150), (63, 2), (64, 1), (100, 10), (149, 5), (150, 1)] {
        let got: Vec<u64> = store
            .history_after(after, limit)
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect();
        let want: Vec<u64> = (after + 1..=150).take(limit).collect();
        assert_eq!(got, want, "after {after}, limit {limit}");
    }
    assert_eq!(
        history(&store),
        batch.into_iter().map(|t| t.event).collect::<Vec<_>>()
    );
}

/// An event as schemas 1 to 3 stored it: without impact.
fn old_shape(e: &AlarmEvent) -> AlarmEvent<()> {
    e.clone().map_impact(|_| ())
}

/// Schema 3 had no impact: alarms, journal rows and faults are rewritten with an empty one,
/// nothing else changes, and the outbox still holds what it held.
#[test]
fn a_schema_3_store_gains_impact_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = manager();
    let ts = raises(&mut m, 70);
    {
        let db = sled::open(dir.path()).unwrap();
        let meta = db.open_tree("meta").unwrap();
        meta.insert("schema_version", &3u32.to_be_bytes()).unwrap();
        meta.insert("last_seq", &70u64.to_be_bytes()).unwrap();
        let (alarms, journal, faults) = (
            db.open_tree("alarms_active").unwrap(),
            db.open_tree("alarm_journal").unwrap(),
            db.open_tree("faults").unwrap(),
        );
        for t in &ts {
            let a = t.event.alarm.clone().map_impact(|_| ());
            alarms
                .insert(
                    a.alarm_id.0.to_be_bytes(),
                    noctua::store::encode(Tree::ActiveAlarms, &a).unwrap(),
                )
                .unwrap();
            let f = t.fault.clone().map_impact(|_| ());
            faults
                .insert(
                    f.id.0.to_be_bytes(),
                    noctua::store::encode(Tree::Faults, &f).unwrap(),
                )
                .unwrap();
        }
        let events: Vec<AlarmEvent<()>> = ts.iter().map(|t| old_shape(&t.event)).collect();
        for row in events.chunks(noctua::store::JOURNAL_ROW) {
            journal
                .insert(
                    row[0].seq.to_be_bytes(),
                    noctua::store::encode(Tree::Journal, &row).unwrap(),
                )
                .unwrap();
        }
        db.flush().unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    let expected: Vec<AlarmEvent> = ts.iter().map(|t| t.event.clone()).collect();
    assert_eq!(history(&store), expected);
    assert_eq!(
        waiting(&store).len(),
        70,
        "the outbox still waits for all of them"
    );
    let alarms: Vec<Alarm> = store.scan(Tree::ActiveAlarms).unwrap();
    assert_eq!(alarms.len(), 70);
    assert!(alarms.iter().all(|a| a.impact == Impact::default()));
    for t in &ts {
        let f = store.fault(t.fault.id).unwrap().unwrap();
        assert_eq!(f, t.fault, "a fault's accrual starts at its raise");
        assert_eq!(f.impact.since, f.raised_at);
    }
    drop(store);
    // Opening again finds schema 4 and rewrites nothing.
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(history(&store), expected);
}

/// A store as schema 1 wrote it: a history key (time, then sequence) per transition and an
/// outbox key per undelivered one, with retention having removed the oldest history.
#[test]
fn a_schema_1_store_is_migrated_without_losing_history_or_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let events: Vec<AlarmEvent> = raises(&mut manager(), 3)
        .into_iter()
        .map(|t| t.event)
        .collect();
    {
        let db = sled::open(dir.path()).unwrap();
        let meta = db.open_tree("meta").unwrap();
        meta.insert("schema_version", &1u32.to_be_bytes()).unwrap();
        meta.insert("last_seq", &3u64.to_be_bytes()).unwrap();
        let history = db.open_tree("alarm_history").unwrap();
        for e in &events[1..] {
            let mut key = ((e.at.as_millis() as u64) ^ (1 << 63))
                .to_be_bytes()
                .to_vec();
            key.extend(e.seq.to_be_bytes());
            history
                .insert(
                    key,
                    noctua::store::encode(Tree::Journal, &old_shape(e)).unwrap(),
                )
                .unwrap();
        }
        let outbox = db.open_tree("mqtt_outbox").unwrap();
        for e in &events[..2] {
            outbox
                .insert(
                    e.seq.to_be_bytes(),
                    noctua::store::encode(Tree::Journal, &old_shape(e)).unwrap(),
                )
                .unwrap();
        }
        db.flush().unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(
        history(&store),
        events,
        "history and outbox folded together"
    );
    assert_eq!(waiting(&store), [1, 2, 3], "from the oldest waiting on");
    assert_eq!(store.outbox_depth(), 3);
    assert_eq!(store.last_seq().unwrap(), 3);
    drop(store);
    // sled lets go of its lock a few milliseconds after the last handle (its flusher thread
    // holds one); `Store::open` waits for that, a bare `sled::open` must too.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let db = loop {
        match sled::open(dir.path()) {
            Ok(db) => break db,
            Err(e) if std::time::Instant::now() > deadline => panic!("store still locked: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    let names: Vec<String> = db
        .tree_names()
        .iter()
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .collect();
    assert!(
        !names
            .iter()
            .any(|n| n == "alarm_history" || n == "mqtt_outbox"),
        "{names:?}"
    );
    assert_eq!(
        db.open_tree("meta")
            .unwrap()
            .get("schema_version")
            .unwrap()
            .unwrap()
            .as_ref(),
        SCHEMA_VERSION.to_be_bytes()
    );
}

/// The durability gate: committed transitions are readable by the store's own users at once,
/// and by publishers (`durable_*`) only once a flush has put them on disk; a reopened store's
/// transitions are all on disk.
#[test]
fn publishers_see_only_what_is_flushed() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = manager();
    let raise = one(m.on_verdict(verdict("core-r1", Severity::Major, 1000)));
    let other = one(m.on_verdict(verdict("bh-r1", Severity::Minor, 2000)));
    {
        let store = Store::open(dir.path()).unwrap();
        commit(&store, &raise).unwrap();
        store.flush().unwrap();
        commit(&store, &other).unwrap();
        assert_eq!(store.last_seq().unwrap(), 2);
        assert_eq!(store.durable_seq(), 1);
        assert_eq!(history(&store).len(), 2);
        let published = store.durable_outbox_after(0, usize::MAX).unwrap();
        assert_eq!(published, vec![raise.event.clone()]);
        let shown = store.durable_history_after(0, usize::MAX).unwrap();
        assert_eq!(shown, vec![raise.event.clone()]);
        store.flush().unwrap();
        assert_eq!(store.durable_seq(), 2);
        assert_eq!(
            store.durable_outbox_after(1, usize::MAX).unwrap(),
            vec![other.event.clone()]
        );
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.durable_seq(), 2);
    assert_eq!(store.durable_history_after(0, usize::MAX).unwrap().len(), 2);
}

/// A fault record's bytes as stored.
fn raw_fault(store: &Store, key: &[u8]) -> Vec<u8> {
    let all = store.scan_raw(Tree::Faults).unwrap();
    all.into_iter().find(|(k, _)| k == key).unwrap().1
}

fn note(at: i64, text: &str) -> Note {
    Note {
        at: Timestamp::from_millis(at),
        by: "maria".to_owned(),
        text: text.to_owned(),
    }
}

/// A note is one key: adding one leaves the record's bytes alone, a transition never writes
/// the notes, and reading a record (one, or all) brings them back in order; the count limit
/// holds.
#[test]
fn notes_are_kept_apart_from_their_record_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut m = manager();
    let raise = one(m.on_verdict(verdict("core-r1", Severity::Major, 1000)));
    let other = one(m.on_verdict(verdict("bh-r1", Severity::Major, 1500)));
    commit(&store, &raise).unwrap();
    commit(&store, &other).unwrap();
    let id = raise.fault.id;
    let key = id.0.to_be_bytes();
    let bare = raw_fault(&store, &key);
    for (i, text) in ["first", "second"].into_iter().enumerate() {
        let added = store.add_note(id, &note(2000 + i as i64, text), 3).unwrap();
        assert!(added.is_ok(), "{added:?}");
        assert_eq!(raw_fault(&store, &key), bare, "the record was rewritten");
    }
    // An ack with a note: the transition's record carries none, the note lands beside it.
    let acked = one(m
        .on_ack(
            raise.event.alarm.alarm_id,
            "omar",
            Some("on it"),
            Timestamp::from_millis(3000),
        )
        .unwrap());
    commit(&store, &acked).unwrap();
    let texts = |f: &FaultRecord| f.notes.iter().map(|n| n.text.clone()).collect::<Vec<_>>();
    let f = store.fault(id).unwrap().unwrap();
    assert_eq!(texts(&f), ["first", "second", "on it"]);
    assert_eq!(f.acked_by.as_deref(), Some("omar"));
    let all = store.faults().unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(texts(&all[0]), ["first", "second", "on it"]);
    assert!(all[1].notes.is_empty(), "{:?}", all[1].notes);
    // Three notes: the limit.
    let refused = store.add_note(id, &note(4000, "fourth"), 3).unwrap();
    assert!(matches!(refused, Err(NoteRefused::Full(3))), "{refused:?}");
    let missing = store.add_note(FaultId(999), &note(4000, "x"), 3).unwrap();
    assert!(matches!(missing, Err(NoteRefused::NoFault)), "{missing:?}");
    // Retention takes a closed fault's notes with it.
    let cleared = one(m
        .on_clear(
            raise.event.alarm.alarm_id,
            "omar",
            None,
            Timestamp::from_millis(5000),
        )
        .unwrap());
    commit(&store, &cleared).unwrap();
    store.compact(Timestamp::from_millis(i64::MAX / 2)).unwrap();
    assert!(store.fault(id).unwrap().is_none());
    assert_eq!(store.notes(id).unwrap(), Vec::<Note>::new());
}

/// Schema 2 kept notes inside the record: the migration moves them out, in order.
#[test]
fn a_schema_2_store_has_its_notes_moved_out_of_the_records() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = manager();
    let mut fault = one(m.on_verdict(verdict("core-r1", Severity::Major, 1000))).fault;
    fault.notes = vec![
        note(2000, "old one"),
        note(2000, "same moment"),
        note(3000, "later"),
    ];
    {
        let db = sled::open(dir.path()).unwrap();
        let meta = db.open_tree("meta").unwrap();
        meta.insert("schema_version", &2u32.to_be_bytes()).unwrap();
        db.open_tree("faults")
            .unwrap()
            .insert(
                fault.id.0.to_be_bytes(),
                noctua::store::encode(Tree::Faults, &fault.clone().map_impact(|_| ())).unwrap(),
            )
            .unwrap();
        db.flush().unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.fault(fault.id).unwrap().unwrap(), fault);
    let stored: FaultRecord = store
        .get(Tree::Faults, &fault.id.0.to_be_bytes())
        .unwrap()
        .unwrap();
    assert!(stored.notes.is_empty(), "{:?}", stored.notes);
}

/// Actions and breakers commit with the batch; retention removes actions that ended before
/// the cutoff and keeps open ones, however old.
#[test]
fn actions_commit_with_their_batch_and_retention_keeps_the_open_ones() {
    use noctua::model::{
        ActionId, ActionRecord, ActionState, AlarmId, Mode, RuleState, StepPlan, StepRecord,
        Trigger,
    };
    use noctua::store::Batch;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s")).unwrap();
    let action = |id: u64, state: ActionState, ended: Option<i64>| ActionRecord {
        id: ActionId(id),
        rule: "bounce".into(),
        mode: Mode::Live,
        trigger: Trigger::Raised,
        alarm_id: AlarmId(id),
        fault_id: FaultId(id),
        device: "r1".into(),
        object: "ifIndex=3".into(),
        condition: "link_down".into(),
        severity: Severity::Major,
        created_at: Timestamp::from_millis(1000),
        state,
        reason: String::new(),
        decision: None,
        expires_at: None,
        steps: vec![StepRecord::planned(StepPlan::WaitClear {
            within_ms: 60_000,
        })],
        ended_at: ended.map(Timestamp::from_millis),
    };
    let actions = [
        action(1, ActionState::Succeeded, Some(2000)),
        action(2, ActionState::AwaitingApproval, None),
        action(3, ActionState::Failed, Some(9000)),
    ];
    let open = RuleState {
        failures_in_row: 3,
        open: true,
        opened_at: Some(Timestamp::from_millis(9000)),
        tripped_on: Some("r1".into()),
    };
    let rules = [("bounce".to_owned(), open.clone())];
    store
        .commit_batch(&Batch {
            actions: &actions,
            rules: &rules,
            ..Batch::default()
        })
        .unwrap();
    assert_eq!(store.actions().unwrap(), actions);
    assert_eq!(
        store.action(ActionId(2)).unwrap().as_ref(),
        Some(&actions[1])
    );
    assert_eq!(
        store.actions_of_fault(FaultId(3)).unwrap(),
        [actions[2].clone()]
    );
    assert_eq!(store.rule_states().unwrap(), [("bounce".to_owned(), open)]);
    assert_eq!(store.compact(Timestamp::from_millis(5000)).unwrap(), 1);
    let kept: Vec<u64> = store.actions().unwrap().iter().map(|a| a.id.0).collect();
    assert_eq!(kept, [2, 3]);
    assert_eq!(store.check().unwrap(), Vec::<String>::new());
}

#[test]
fn a_handed_over_alarm_leaves_the_active_alarms_and_open_faults_and_stays_in_history() {
    use noctua::message::Handover;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut m = manager();
    let raised = one(m.on_verdict(verdict("r1", Severity::Major, 1)));
    commit(&store, &raised).unwrap();
    let elsewhere = ["r1".to_owned()].into();
    let handover = Handover {
        elsewhere,
        ..Handover::default()
    };
    let gone = one(m.on_handover(handover, Timestamp::from_millis(2)));
    commit(&store, &gone).unwrap();
    assert!(store.scan::<Alarm>(Tree::ActiveAlarms).unwrap().is_empty());
    assert_eq!(store.fault(raised.fault.id).unwrap(), None);
    let kinds: Vec<&str> = history(&store).iter().map(|e| e.kind.name()).collect();
    assert_eq!(kinds, ["raised", "handed_over"]);
    // What a restart restores: nothing of it.
    assert_eq!(
        store
            .open_fault_of(raised.event.alarm.alarm_id, None)
            .unwrap(),
        None
    );
}

#[test]
fn the_open_fault_of_an_alarm_is_found_also_when_it_reopened() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut m = manager();
    let first = one(m.on_verdict(verdict("r1", Severity::Major, 1)));
    let cleared = one(m.on_verdict(verdict("r1", Severity::Cleared, 2)));
    // Back within the reopen window: a new alarm on the first fault.
    let second = one(m.on_verdict(verdict("r1", Severity::Major, 3)));
    for t in [&first, &cleared, &second] {
        commit(&store, t).unwrap();
    }
    let alarm = second.event.alarm.alarm_id;
    assert_ne!(alarm.0, first.fault.id.0);
    for hint in [None, Some(first.fault.id)] {
        let found = store.open_fault_of(alarm, hint).unwrap().unwrap();
        assert_eq!((found.id, found.reopened), (first.fault.id, 1));
    }
    assert_eq!(
        store
            .open_fault_of(first.event.alarm.alarm_id, None)
            .unwrap(),
        None,
        "the first alarm is cleared"
    );
}
