use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::config::{Config, DeviceConfig, MaintenanceConfig};
use crate::model::{Metric, Role, SeriesKey};

const MIN: i64 = 60_000;

fn t(ms: i64) -> Timestamp {
    Timestamp::from_millis(ms)
}

fn device(name: &str, parent: Option<&str>) -> DeviceConfig {
    DeviceConfig {
        name: name.into(),
        address: "192.0.2.1".parse().unwrap(),
        role: Role::Router,
        parent: parent.map(Into::into),
        site: Some("east".into()),
        tags: vec![],
        credentials: None,
        snmp_port: 161,
        poll_interval: None,
        profile: None,
        agent: Default::default(),
        interfaces: vec![],
    }
}

fn config(hold_down_ms: u64) -> Config {
    let mut c = Config::default();
    c.alarms.clear_hold_down = Duration::from_millis(hold_down_ms);
    c.devices = vec![
        device("core", None),
        device("bh", Some("core")),
        device("enb", Some("bh")),
    ];
    c
}

fn verdict(dev: &str, severity: Severity, at: i64) -> Verdict {
    Verdict {
        series: SeriesKey {
            device: dev.into(),
            object: "ifIndex=7".into(),
            metric: Metric::LossPct,
        },
        at: t(at),
        condition: "loss_pct_threshold".into(),
        severity,
        category: Category::Performance,
        threshold: None,
        text: String::new(),
    }
}

fn event(dev: &str, kind: EventKind, at: i64) -> DeviceEvent {
    DeviceEvent {
        device: dev.into(),
        object: DEVICE_OBJECT.into(),
        kind,
        at: t(at),
        text: String::new(),
        severity: None,
    }
}

fn kinds(ts: &[Transition]) -> Vec<(TransitionKind, bool)> {
    ts.iter()
        .map(|t| (t.event.kind, t.event.notified))
        .collect()
}

use TransitionKind::*;

#[test]
fn lifecycle_is_one_alarm_and_one_fault_with_chained_expectations() {
    let mut m = AlarmManager::restore(&config(0), vec![], vec![], 41, t(0));
    let ts: Vec<Transition> = [
        (Severity::Minor, 1),
        (Severity::Critical, 2),
        (Severity::Major, 3),
        (Severity::Major, 4),
        (Severity::Cleared, 5),
    ]
    .into_iter()
    .flat_map(|(s, at)| m.on_verdict(verdict("core", s, at)))
    .collect();
    let k: Vec<_> = ts.iter().map(|t| t.event.kind).collect();
    assert_eq!(k, [Raised, Escalated, DeEscalated, Updated, Cleared]);
    let seqs: Vec<_> = ts.iter().map(|t| t.event.seq).collect();
    assert_eq!(seqs, [42, 43, 44, 45, 46]);
    assert!(
        ts.iter()
            .all(|t| t.event.alarm.alarm_id == AlarmId(42) && t.event.notified)
    );
    let expected: Vec<_> = ts.iter().map(|t| t.expected).collect();
    assert_eq!(expected, [None, Some(42), Some(43), Some(44), Some(45)]);
    let last = ts.last().unwrap();
    assert_eq!(last.fault.peak_severity, Severity::Critical);
    assert_eq!(last.fault.cleared_at, Some(t(5)));
    assert_eq!(last.fault.site.as_deref(), Some("east"));
    assert_eq!(last.event.alarm.count, 4);
    assert_eq!(m.active_count(), 0);
}

#[test]
fn hold_down_absorbs_a_brief_clear() {
    let mut m = AlarmManager::new(&config(30_000));
    m.on_verdict(verdict("core", Severity::Major, 0));
    assert!(
        m.on_verdict(verdict("core", Severity::Cleared, 1000))
            .is_empty()
    );
    assert!(m.on_tick(t(20_000)).is_empty());
    // Back before the hold-down ended: the same alarm carries on.
    let back = m.on_verdict(verdict("core", Severity::Major, 25_000));
    assert_eq!(kinds(&back), [(Updated, true)]);
    assert!(m.on_tick(t(60_000)).is_empty());
    m.on_verdict(verdict("core", Severity::Cleared, 61_000));
    assert!(m.on_tick(t(90_000)).is_empty());
    let cleared = m.on_tick(t(91_000));
    assert_eq!(kinds(&cleared), [(Cleared, true)]);
    assert_eq!(cleared[0].event.alarm.alarm_cleared_time, Some(t(91_000)));
}

#[test]
fn recurrence_within_the_reopen_window_reopens_the_fault_with_a_new_alarm() {
    let mut m = AlarmManager::new(&config(0));
    let first = m.on_verdict(verdict("core", Severity::Major, 0));
    m.on_verdict(verdict("core", Severity::Cleared, MIN));
    let again = m.on_verdict(verdict("core", Severity::Minor, 5 * MIN));
    assert_eq!(again[0].event.kind, Raised);
    assert_ne!(again[0].event.alarm.alarm_id, first[0].event.alarm.alarm_id);
    assert_eq!(again[0].fault.id, first[0].fault.id);
    assert_eq!(again[0].fault.reopened, 1);
    assert_eq!(again[0].fault.cleared_at, None);
    assert_eq!(again[0].fault.peak_severity, Severity::Major);
    let closed = m.on_verdict(verdict("core", Severity::Cleared, 6 * MIN));
    assert_eq!(closed[0].fault.mttr(), Some(Duration::from_secs(360)));
    // Long after: a new fault.
    m.on_tick(t(30 * MIN));
    let later = m.on_verdict(verdict("core", Severity::Minor, 30 * MIN));
    assert_ne!(later[0].fault.id, first[0].fault.id);
    assert_eq!(later[0].fault.reopened, 0);
}

#[test]
fn ack_unack_and_manual_clear() {
    let mut m = AlarmManager::new(&config(0));
    let raised = m.on_verdict(verdict("core", Severity::Critical, 0));
    let id = raised[0].event.alarm.alarm_id;
    let acked = m.on_ack(id, "maria", Some("on it"), t(4 * MIN)).unwrap();
    assert_eq!(kinds(&acked), [(Acknowledged, true)]);
    let a = &acked[0].event.alarm;
    assert_eq!(
        (a.ack_state, a.ack_user_id.as_deref(), a.ack_time),
        (AckState::Acknowledged, Some("maria"), Some(t(4 * MIN)))
    );
    assert_eq!(acked[0].fault.mtta(), Some(Duration::from_secs(240)));
    assert_eq!(acked[0].note.as_ref().unwrap().text, "on it");
    assert!(m.on_ack(id, "maria", None, t(5 * MIN)).unwrap().is_empty());
    let unacked = m.on_unack(id, "maria", t(6 * MIN)).unwrap();
    assert_eq!(unacked[0].event.alarm.ack_state, AckState::Unacknowledged);
    // MTTA keeps the first acknowledgement.
    assert_eq!(unacked[0].fault.acked_at, Some(t(4 * MIN)));
    let cleared = m
        .on_clear(id, "omar", Some("replaced SFP"), t(10 * MIN))
        .unwrap();
    assert_eq!(kinds(&cleared), [(Cleared, true)]);
    assert_eq!(
        cleared[0].event.alarm.clear_user_id.as_deref(),
        Some("omar")
    );
    assert_eq!(cleared[0].fault.cleared_by.as_deref(), Some("omar"));
    let note = cleared[0].note.as_ref().unwrap();
    assert_eq!(
        (note.by.as_str(), note.text.as_str()),
        ("omar", "replaced SFP")
    );
    // A withdrawn acknowledgement leaves its trace in the notes.
    assert_eq!(unacked[0].note.as_ref().unwrap().text, "unacknowledged");
    assert_eq!(
        m.on_ack(id, "maria", None, t(11 * MIN)),
        Err(AlarmError::NotActive(id))
    );
    assert_eq!(
        m.on_clear(AlarmId(999), "x", None, t(0)),
        Err(AlarmError::NotActive(AlarmId(999)))
    );
}

#[test]
fn flapping_replaces_churn_with_one_alarm_until_stable() {
    let mut m = AlarmManager::new(&config(0));
    let mut all = Vec::new();
    for i in 0..6 {
        let sev = if i % 2 == 0 {
            Severity::Major
        } else {
            Severity::Cleared
        };
        all.extend(m.on_verdict(verdict("core", sev, i * 10_000)));
    }
    let flap: Vec<_> = all
        .iter()
        .filter(|t| t.event.alarm.condition == "flapping:loss_pct_threshold")
        .collect();
    assert_eq!(flap.len(), 1);
    assert_eq!((flap[0].event.kind, flap[0].event.notified), (Raised, true));
    // The sixth change (a clear) happened while flapping; it was notified because its raise was.
    assert_eq!(kinds(&all[all.len() - 1..]), [(Cleared, true)]);
    // Further churn is recorded but not notified.
    let churn: Vec<_> = (6..10)
        .flat_map(|i| {
            let sev = if i % 2 == 0 {
                Severity::Major
            } else {
                Severity::Cleared
            };
            m.on_verdict(verdict("core", sev, i * 10_000))
        })
        .collect();
    assert!(!churn.is_empty());
    assert!(
        churn.iter().all(|t| !t.event.notified),
        "{:?}",
        kinds(&churn)
    );
    assert!(churn.iter().all(
        |t| t.event.alarm.suppressed_by == Some(Suppression::Flapping) || t.event.kind == Cleared
    ));
    // Stable (cleared) for the hold time: the flapping alarm clears.
    let settled = m.on_tick(t(90_000 + 15 * MIN));
    assert_eq!(kinds(&settled), [(Cleared, true)]);
    assert_eq!(
        settled[0].event.alarm.condition,
        "flapping:loss_pct_threshold"
    );
    assert_eq!(m.active_count(), 0);
}

#[test]
fn root_cause_suppresses_symptoms_and_hands_back_on_clear() {
    let mut m = AlarmManager::new(&config(0));
    // The base station is seen down first and notified as a root cause.
    let enb_down = m.on_event(event("enb", EventKind::Unreachable, 0));
    assert_eq!(kinds(&enb_down), [(Raised, true)]);
    let enb_id = enb_down[0].event.alarm.alarm_id;
    // Then its backhaul router: it becomes the root, the base station a symptom.
    let bh_down = m.on_event(event("bh", EventKind::Unreachable, 1000));
    assert_eq!(
        kinds(&bh_down),
        [(Raised, true), (SuppressionChanged, true)]
    );
    let bh_id = bh_down[0].event.alarm.alarm_id;
    let enb = &bh_down[1].event.alarm;
    assert_eq!(enb.alarm_id, enb_id);
    assert!(!enb.root_cause_indicator);
    assert_eq!(enb.root_cause_alarm_id, Some(bh_id));
    // New symptoms below the root are recorded with the link, not notified.
    let symptom = m.on_verdict(verdict("enb", Severity::Critical, 2000));
    assert_eq!(kinds(&symptom), [(Raised, false)]);
    assert_eq!(symptom[0].fault.root_cause, Some(bh_id));
    // The router comes back: its alarm clears and the base station is the root again; the
    // symptom now hangs off the base station's own device-down alarm and stays quiet.
    let bh_up = m.on_event(event("bh", EventKind::Reachable, 3000));
    let summary: Vec<_> = bh_up
        .iter()
        .map(|t| {
            (
                t.event.alarm.device.as_str(),
                t.event.alarm.condition.as_str(),
                t.event.kind,
                t.event.notified,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("bh", DEVICE_DOWN, Cleared, true),
            ("enb", DEVICE_DOWN, SuppressionChanged, true),
            ("enb", "loss_pct_threshold", SuppressionChanged, false),
        ]
    );
    assert!(bh_up[1].event.alarm.root_cause_indicator);
    assert_eq!(bh_up[2].event.alarm.root_cause_alarm_id, Some(enb_id));
    // The base station comes back too: now the symptom stands on its own and is notified.
    let enb_up = m.on_event(event("enb", EventKind::Reachable, 4000));
    assert_eq!(
        kinds(&enb_up),
        [(Cleared, true), (SuppressionChanged, true)]
    );
    assert!(enb_up[1].event.alarm.root_cause_indicator);
}

#[test]
fn a_suppressed_alarm_that_was_never_notified_clears_silently() {
    let mut m = AlarmManager::new(&config(0));
    m.on_event(event("core", EventKind::Unreachable, 0));
    let raised = m.on_verdict(verdict("bh", Severity::Major, 10));
    assert_eq!(kinds(&raised), [(Raised, false)]);
    let cleared = m.on_verdict(verdict("bh", Severity::Cleared, 20));
    assert_eq!(kinds(&cleared), [(Cleared, false)]);
}

#[test]
fn maintenance_suppresses_and_is_left_out_of_mttr() {
    let mut c = config(0);
    c.maintenance = vec![MaintenanceConfig {
        name: "swap".into(),
        device: Some("core".into()),
        site: None,
        tag: None,
        start: Some(t(10 * MIN)),
        end: Some(t(40 * MIN)),
        weekly: None,
    }];
    let mut m = AlarmManager::new(&c);
    // Raised before the window: notified; the window then suppresses it.
    let raised = m.on_verdict(verdict("bh", Severity::Major, 0));
    assert_eq!(kinds(&raised), [(Raised, true)]);
    let entered = m.on_tick(t(10 * MIN));
    assert_eq!(kinds(&entered), [(SuppressionChanged, true)]);
    assert_eq!(
        entered[0].event.alarm.suppressed_by,
        Some(Suppression::Maintenance)
    );
    let during = m.on_verdict(verdict("enb", Severity::Minor, 20 * MIN));
    assert_eq!(kinds(&during), [(Raised, false)]);
    let left = m.on_tick(t(40 * MIN));
    assert_eq!(
        kinds(&left),
        [(SuppressionChanged, true), (SuppressionChanged, true)]
    );
    let cleared = m.on_verdict(verdict("bh", Severity::Cleared, 60 * MIN));
    // 60 minutes open, 30 of them in maintenance.
    assert_eq!(cleared[0].fault.mttr(), Some(Duration::from_secs(30 * 60)));
    assert_eq!(cleared[0].fault.repair_maintenance_ms, 30 * 60_000);
}

#[test]
fn response_targets_pass_once_and_may_escalate() {
    let mut c = config(0);
    c.alarms.escalate_on_ack_overdue = true;
    let mut m = AlarmManager::new(&c);
    m.on_verdict(verdict("core", Severity::Major, 0));
    assert!(m.on_tick(t(29 * MIN)).is_empty());
    let overdue = m.on_tick(t(30 * MIN));
    assert_eq!(kinds(&overdue), [(AckOverdue, true)]);
    assert_eq!(
        overdue[0].event.alarm.perceived_severity,
        Severity::Critical
    );
    assert!(overdue[0].fault.ack_breached);
    assert!(m.on_tick(t(31 * MIN)).is_empty());
    // Critical now: restore within 4 h of the raise.
    let restore = m.on_tick(t(4 * 60 * MIN));
    assert_eq!(kinds(&restore), [(RestoreOverdue, true)]);
    assert!(restore[0].fault.restore_breached);
    assert!(m.on_tick(t(5 * 60 * MIN)).is_empty());
}

#[test]
fn reboot_events_clear_by_themselves() {
    let mut m = AlarmManager::new(&config(0));
    let raised = m.on_event(DeviceEvent {
        kind: EventKind::Reboot,
        ..event("core", EventKind::Reboot, 0)
    });
    assert_eq!(raised[0].event.alarm.perceived_severity, Severity::Warning);
    assert!(m.on_tick(t(14 * MIN)).is_empty());
    assert_eq!(kinds(&m.on_tick(t(15 * MIN))), [(Cleared, true)]);
}

#[test]
fn restore_continues_where_the_store_left_off() {
    let c = config(0);
    let mut m = AlarmManager::new(&c);
    let mut ts = m.on_verdict(verdict("core", Severity::Major, 0));
    ts.extend(m.on_verdict(verdict("bh", Severity::Major, 1)));
    ts.extend(m.on_verdict(verdict("bh", Severity::Cleared, 2)));
    let alarms: Vec<Alarm> = vec![ts[0].event.alarm.clone()];
    let faults = vec![ts[0].fault.clone(), ts[2].fault.clone()];
    let mut r = AlarmManager::restore(&c, alarms, faults, 3, t(3));
    assert_eq!(r.active_count(), 1);
    let next = r.on_verdict(verdict("core", Severity::Cleared, 4));
    assert_eq!((next[0].event.seq, next[0].expected), (4, Some(1)));
    // bh's fault was closed within the reopen window: it reopens.
    let again = r.on_verdict(verdict("bh", Severity::Minor, 5));
    assert_eq!(again[0].fault.id, ts[1].fault.id);
}

#[derive(Debug, Clone)]
enum Input {
    Verdict(usize, usize),
    Event(usize, bool),
    Ack(usize),
    Clear(usize),
    Tick(i64),
}

fn input() -> impl Strategy<Value = Input> {
    prop_oneof![
        4 => (0usize..3, 0usize..6).prop_map(|(d, s)| Input::Verdict(d, s)),
        2 => (0usize..3, any::<bool>()).prop_map(|(d, up)| Input::Event(d, up)),
        1 => (0usize..8).prop_map(Input::Ack),
        1 => (0usize..8).prop_map(Input::Clear),
        2 => (1i64..600_000).prop_map(Input::Tick),
    ]
}

proptest! {
    #[test]
    fn any_input_sequence_keeps_the_invariants(inputs in proptest::collection::vec(input(), 1..80), hold in 0u64..60_000) {
        let devices = ["core", "bh", "enb"];
        let sevs = [Severity::Cleared, Severity::Warning, Severity::Minor, Severity::Major, Severity::Critical, Severity::Cleared];
        let mut m = AlarmManager::new(&config(hold));
        let mut now = 0i64;
        let mut seq = 0u64;
        let mut notification: HashMap<AlarmId, u64> = HashMap::new();
        let mut outside: HashSet<AlarmId> = HashSet::new();
        let mut ever_notified: HashSet<AlarmId> = HashSet::new();
        for i in inputs {
            now += 1000;
            let out = match i {
                Input::Verdict(d, s) => m.on_verdict(verdict(devices[d], sevs[s], now)),
                Input::Event(d, up) => {
                    let kind = if up { EventKind::Reachable } else { EventKind::Unreachable };
                    m.on_event(event(devices[d], kind, now))
                }
                Input::Ack(n) => m.on_ack(AlarmId(n as u64 + 1), "u", None, t(now)).unwrap_or_default(),
                Input::Clear(n) => m.on_clear(AlarmId(n as u64 + 1), "u", None, t(now)).unwrap_or_default(),
                Input::Tick(dt) => { now += dt; m.on_tick(t(now)) }
            };
            for tr in out {
                let e = &tr.event;
                prop_assert_eq!(e.seq, seq + 1, "sequence is gap-free");
                seq = e.seq;
                prop_assert_eq!(e.alarm.notification_id, e.seq);
                let id = e.alarm.alarm_id;
                prop_assert_eq!(tr.expected, notification.get(&id).copied(), "store guard chains");
                prop_assert_eq!(e.kind == Raised, tr.expected.is_none());
                if e.alarm.is_cleared() {
                    notification.remove(&id);
                    // A clear is notified exactly when the alarm had been.
                    prop_assert_eq!(e.notified, ever_notified.contains(&id));
                    outside.remove(&id);
                } else {
                    notification.insert(id, e.seq);
                    if e.notified { outside.insert(id); ever_notified.insert(id); }
                }
                prop_assert_eq!(e.alarm.root_cause_indicator, e.alarm.root_cause_alarm_id.is_none());
            }
        }
        // Everything a subscriber believes active is active.
        prop_assert!(outside.iter().all(|id| m.ids.contains_key(id)));
        prop_assert_eq!(m.active_count(), notification.len());
    }
}

/// A cluster member's range of sequence numbers (any rank will do here).
const SPAN: u64 = 1_000_000_000_000;

fn names(devices: &[&str]) -> HashSet<String> {
    devices.iter().map(|d| (*d).to_owned()).collect()
}

#[test]
fn an_adopted_alarm_goes_on_at_its_new_owner_with_its_id_and_its_fault() {
    use crate::message::{Handover, Taken};
    // One member raises the alarm and an engineer acknowledges it there.
    let mut a = AlarmManager::restore(&config(0), vec![], vec![], SPAN, t(0));
    let raised = a.on_verdict(verdict("enb", Severity::Major, MIN));
    let id = raised[0].event.alarm.alarm_id;
    let acked = a.on_ack(id, "ana", None, t(2 * MIN)).unwrap();
    let last = acked.last().unwrap();
    let held = vec![(last.event.alarm.clone(), last.fault.clone())];

    // Another member, of another rank, wins the device with that record.
    let mut b = AlarmManager::restore(&config(0), vec![], vec![], 0, t(0));
    let taken = Taken {
        device: "enb".into(),
        alarms: held,
    };
    let adopted = b.on_handover(
        Handover {
            seq_floor: 2 * SPAN,
            elsewhere: names(&["bh"]),
            taken: vec![taken],
        },
        t(3 * MIN),
    );
    assert_eq!(kinds(&adopted), [(Adopted, true)]);
    assert_eq!(adopted[0].event.alarm.alarm_id, id);
    assert_eq!(
        adopted[0].event.seq,
        2 * SPAN + 1,
        "the new owner's own range"
    );
    assert_eq!(adopted[0].expected, None);
    assert_eq!(adopted[0].event.alarm.ack_state, AckState::Acknowledged);

    // The condition holding is the same alarm; its clear ends the fault raised at the first
    // member, so MTTR and MTTA run across the handover.
    let again = b.on_verdict(verdict("enb", Severity::Major, 4 * MIN));
    assert_eq!(kinds(&again), [(Updated, true)]);
    assert_eq!(again[0].expected, Some(2 * SPAN + 1));
    let cleared = b.on_verdict(verdict("enb", Severity::Cleared, 5 * MIN));
    assert_eq!(kinds(&cleared), [(Cleared, true)]);
    assert_eq!(cleared[0].event.alarm.alarm_id, id);
    assert_eq!(cleared[0].fault.id, raised[0].fault.id);
    assert_eq!(cleared[0].fault.mttr(), Some(Duration::from_secs(4 * 60)));
    assert_eq!(cleared[0].fault.mtta(), Some(Duration::from_secs(60)));
}

#[test]
fn alarms_of_devices_gone_elsewhere_are_handed_over_unannounced_and_a_won_record_is_the_truth() {
    use crate::message::{Handover, Taken};
    let mut m = AlarmManager::restore(&config(0), vec![], vec![], 0, t(0));
    m.on_verdict(verdict("core", Severity::Major, MIN));
    let enb = m.on_verdict(verdict("enb", Severity::Major, MIN));
    let handover = |elsewhere: &[&str], taken: Vec<Taken>| Handover {
        seq_floor: 0,
        elsewhere: names(elsewhere),
        taken,
    };

    let out = m.on_handover(handover(&["enb"], vec![]), t(2 * MIN));
    assert_eq!(kinds(&out), [(HandedOver, false)]);
    assert_eq!(out[0].event.alarm.alarm_id, enb[0].event.alarm.alarm_id);
    assert_eq!(out[0].expected, Some(enb[0].event.seq));
    assert!(
        out[0].event.alarm.alarm_cleared_time.is_none(),
        "not a clear"
    );
    assert_eq!(m.active_count(), 1);
    assert!(
        m.on_handover(handover(&["enb"], vec![]), t(2 * MIN))
            .is_empty()
    );

    // `core` won again from a member whose record no longer has the alarm (it cleared it
    // there): what was left here goes, and the condition's next report is a new alarm.
    let won = Taken {
        device: "core".into(),
        alarms: vec![],
    };
    let out = m.on_handover(handover(&["enb"], vec![won]), t(3 * MIN));
    assert_eq!(kinds(&out), [(HandedOver, false)]);
    assert_eq!(m.active_count(), 0);
    let again = m.on_verdict(verdict("core", Severity::Major, 4 * MIN));
    assert_eq!(kinds(&again), [(Raised, true)]);
}
