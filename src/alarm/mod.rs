//! Alarm lifecycle: verdicts in, transitions to record out.
//!
//! [`AlarmManager`] is a pure state machine over the active alarms, keyed by reduction key
//! `(device, object, condition)`. It hands out sequence numbers itself (the alarm id and fault
//! id of a new alarm are the sequence number of its raise), so replaying the same verdicts gives
//! the same records. [`stage`] is the I/O loop that commits and then publishes.

pub mod stage;

use std::collections::HashMap;

use crate::detect::Verdict;
use crate::model::{
    AckState, Alarm, AlarmEvent, AlarmId, FaultId, FaultRecord, Severity, Timestamp,
    TransitionKind, TrendIndication,
};

/// `(device, object, condition)`: one live alarm per key.
pub type ReductionKey = (String, String, String);

/// One transition to commit: the event, the fault record after it, and the notification id the
/// store must still hold for the alarm (`None` for a raise).
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// The event (history, outbox, stream).
    pub event: AlarmEvent,
    /// The fault record after the transition.
    pub fault: FaultRecord,
    /// Optimistic-concurrency guard for the store.
    pub expected: Option<u64>,
}

#[derive(Debug, Clone)]
struct Active {
    alarm: Alarm,
    fault: FaultRecord,
}

/// The active alarms and the sequence counter.
#[derive(Debug, Default)]
pub struct AlarmManager {
    active: HashMap<ReductionKey, Active>,
    last_seq: u64,
}

impl AlarmManager {
    /// Rebuilds the manager from what the store holds: the active alarms, their fault records,
    /// and the last sequence number committed.
    pub fn restore(alarms: Vec<Alarm>, faults: Vec<FaultRecord>, last_seq: u64) -> Self {
        let mut by_alarm: HashMap<AlarmId, FaultRecord> =
            faults.into_iter().map(|f| (f.alarm_id, f)).collect();
        let active = alarms
            .into_iter()
            .filter_map(|alarm| {
                let fault = by_alarm.remove(&alarm.alarm_id)?;
                let key = (
                    alarm.device.clone(),
                    alarm.object.clone(),
                    alarm.condition.clone(),
                );
                Some((key, Active { alarm, fault }))
            })
            .collect();
        Self { active, last_seq }
    }

    /// Number of active alarms.
    pub fn active_count(&self) -> usize {
        self.active.len()
    }

    /// The last sequence number handed out.
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// Applies a verdict: raise, update, escalate, de-escalate or clear.
    pub fn on_verdict(&mut self, v: Verdict) -> Option<Transition> {
        let key = (v.series.device, v.series.object, v.condition);
        let now = v.at;
        if v.severity == Severity::Cleared {
            let mut entry = self.active.remove(&key)?;
            let expected = Some(entry.alarm.notification_id);
            let seq = self.next_seq();
            let a = &mut entry.alarm;
            a.notification_id = seq;
            a.perceived_severity = Severity::Cleared;
            a.trend_indication = Some(TrendIndication::LessSevere);
            a.alarm_changed_time = Some(now);
            a.alarm_cleared_time = Some(now);
            a.threshold_info = v.threshold;
            a.additional_text = v.text;
            a.last_seen = now;
            entry.fault.cleared_at = Some(now);
            return Some(Self::transition(
                TransitionKind::Cleared,
                now,
                entry,
                expected,
            ));
        }
        let seq = self.next_seq();
        match self.active.get_mut(&key) {
            None => {
                let alarm = Alarm {
                    alarm_id: AlarmId(seq),
                    object_instance: format!("ManagedElement={},Object={}", key.0, key.1),
                    notification_id: seq,
                    alarm_raised_time: now,
                    alarm_changed_time: None,
                    alarm_cleared_time: None,
                    alarm_type: v.category.alarm_type(),
                    probable_cause: "thresholdCrossed".to_owned(),
                    specific_problem: key.2.clone(),
                    perceived_severity: v.severity,
                    trend_indication: None,
                    threshold_info: v.threshold,
                    root_cause_indicator: true,
                    ack_state: AckState::Unacknowledged,
                    ack_user_id: None,
                    ack_time: None,
                    clear_user_id: None,
                    additional_text: v.text,
                    device: key.0.clone(),
                    object: key.1.clone(),
                    condition: key.2.clone(),
                    category: v.category,
                    count: 1,
                    last_seen: now,
                };
                let fault = FaultRecord {
                    id: FaultId(seq),
                    alarm_id: alarm.alarm_id,
                    device: key.0.clone(),
                    object: key.1.clone(),
                    condition: key.2.clone(),
                    category: v.category,
                    peak_severity: v.severity,
                    raised_at: now,
                    acked_at: None,
                    acked_by: None,
                    cleared_at: None,
                    cleared_by: None,
                    root_cause: None,
                    notes: Vec::new(),
                };
                let entry = Active { alarm, fault };
                self.active.insert(key, entry.clone());
                Some(Self::transition(TransitionKind::Raised, now, entry, None))
            }
            Some(entry) => {
                let expected = Some(entry.alarm.notification_id);
                let a = &mut entry.alarm;
                let before = a.perceived_severity;
                let (kind, trend) = match v.severity.cmp(&before) {
                    std::cmp::Ordering::Greater => {
                        (TransitionKind::Escalated, TrendIndication::MoreSevere)
                    }
                    std::cmp::Ordering::Less => {
                        (TransitionKind::DeEscalated, TrendIndication::LessSevere)
                    }
                    std::cmp::Ordering::Equal => {
                        (TransitionKind::Updated, TrendIndication::NoChange)
                    }
                };
                a.notification_id = seq;
                a.perceived_severity = v.severity;
                a.trend_indication = Some(trend);
                a.alarm_changed_time = Some(now);
                a.threshold_info = v.threshold;
                a.additional_text = v.text;
                a.count += 1;
                a.last_seen = now;
                entry.fault.peak_severity = entry.fault.peak_severity.max(v.severity);
                let snapshot = entry.clone();
                Some(Self::transition(kind, now, snapshot, expected))
            }
        }
    }

    fn next_seq(&mut self) -> u64 {
        self.last_seq += 1;
        self.last_seq
    }

    fn transition(
        kind: TransitionKind,
        at: Timestamp,
        entry: Active,
        expected: Option<u64>,
    ) -> Transition {
        Transition {
            event: AlarmEvent {
                seq: entry.alarm.notification_id,
                at,
                kind,
                alarm: entry.alarm,
            },
            fault: entry.fault,
            expected,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Category, Metric, SeriesKey};
    use proptest::prelude::*;

    fn verdict(severity: Severity, at: i64) -> Verdict {
        Verdict {
            series: SeriesKey {
                device: "bh-r1".into(),
                object: "ifIndex=7".into(),
                metric: Metric::LossPct,
            },
            at: Timestamp::from_millis(at),
            condition: "loss_pct_threshold".into(),
            severity,
            category: Category::Performance,
            threshold: None,
            text: String::new(),
        }
    }

    #[test]
    fn raise_escalate_deescalate_clear_is_one_alarm_and_one_fault() {
        let mut m = AlarmManager::restore(Vec::new(), Vec::new(), 41);
        let ts: Vec<Transition> = [
            (Severity::Minor, 1),
            (Severity::Critical, 2),
            (Severity::Major, 3),
            (Severity::Major, 4),
            (Severity::Cleared, 5),
        ]
        .into_iter()
        .filter_map(|(s, t)| m.on_verdict(verdict(s, t)))
        .collect();
        let kinds: Vec<_> = ts.iter().map(|t| t.event.kind).collect();
        use TransitionKind::*;
        assert_eq!(kinds, [Raised, Escalated, DeEscalated, Updated, Cleared]);
        let seqs: Vec<_> = ts.iter().map(|t| t.event.seq).collect();
        assert_eq!(seqs, [42, 43, 44, 45, 46]);
        assert!(ts.iter().all(|t| t.event.alarm.alarm_id == AlarmId(42)));
        let expected: Vec<_> = ts.iter().map(|t| t.expected).collect();
        assert_eq!(expected, [None, Some(42), Some(43), Some(44), Some(45)]);
        let last = ts.last().unwrap();
        assert_eq!(last.fault.peak_severity, Severity::Critical);
        assert_eq!(last.fault.cleared_at, Some(Timestamp::from_millis(5)));
        assert_eq!(last.event.alarm.count, 4);
        assert_eq!(m.active_count(), 0);
    }

    #[test]
    fn clear_without_alarm_does_nothing() {
        let mut m = AlarmManager::default();
        assert_eq!(m.on_verdict(verdict(Severity::Cleared, 1)), None);
        assert_eq!(m.last_seq(), 0);
    }

    proptest! {
        #[test]
        fn sequence_is_gap_free_and_expected_chains(sevs in proptest::collection::vec(0usize..6, 1..60)) {
            let all = [Severity::Cleared, Severity::Indeterminate, Severity::Warning, Severity::Minor, Severity::Major, Severity::Critical];
            let mut m = AlarmManager::default();
            let mut last_notification: Option<u64> = None;
            let mut prev_seq = 0;
            for (i, s) in sevs.iter().enumerate() {
                if let Some(t) = m.on_verdict(verdict(all[*s], i as i64)) {
                    prop_assert_eq!(t.event.seq, prev_seq + 1);
                    prop_assert_eq!(t.expected, last_notification);
                    prev_seq = t.event.seq;
                    last_notification = if t.event.alarm.is_cleared() { None } else { Some(t.event.seq) };
                }
            }
            prop_assert_eq!(m.active_count(), usize::from(last_notification.is_some()));
        }
    }
}
