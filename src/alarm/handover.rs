//! Cluster handover: the alarms that come with a device this member has won, and the ones that
//! go with a device it no longer owns. Neither is a raise or a clear: an alarm keeps its id, its
//! fault record (so MTTR runs on across the handover) and whether it was ever notified.

use super::*;
use crate::message::Handover;

impl AlarmManager {
    /// Takes a handover: `Adopted` for each alarm that comes, notified if the alarm had been
    /// (this member's subscribers hear of it from now on); `HandedOver` for each that goes,
    /// recorded only (its new owner carries it on). A won device's replicated record is its
    /// truth: what this member still held of the device from an earlier ownership goes unless
    /// the record has it too.
    pub fn on_handover(&mut self, h: Handover, now: Timestamp) -> Vec<Transition> {
        self.last_seq = self.last_seq.max(h.seq_floor);
        let mut out = Vec::new();
        let won: HashSet<String> = h.taken.iter().map(|t| t.device.clone()).collect();
        for mut taken in h.taken {
            let coming: HashSet<AlarmId> = taken.alarms.iter().map(|(a, _)| a.alarm_id).collect();
            let stale =
                self.keys(|k, e| k.0 == taken.device && !coming.contains(&e.alarm.alarm_id));
            for key in &stale {
                self.hand_over(key, now, &mut out);
            }
            taken.alarms.sort_by_key(|(a, _)| a.alarm_id);
            for (alarm, fault) in taken.alarms {
                self.adopt(alarm, fault, now, &mut out);
            }
        }
        for key in &self.keys(|k, _| h.elsewhere.contains(&k.0) && !won.contains(&k.0)) {
            self.hand_over(key, now, &mut out);
        }
        out
    }

    /// The keys of the active alarms that `pick` picks, sorted (replays give one order).
    fn keys(&self, pick: impl Fn(&ReductionKey, &Entry) -> bool) -> Vec<ReductionKey> {
        let mut keys: Vec<ReductionKey> = self
            .active
            .iter()
            .filter(|(k, e)| pick(k, e))
            .map(|(k, _)| k.clone())
            .collect();
        keys.sort();
        keys
    }

    fn adopt(
        &mut self,
        alarm: Alarm,
        fault: FaultRecord,
        now: Timestamp,
        out: &mut Vec<Transition>,
    ) {
        let key = key_of(&alarm);
        let expected = match self.active.get(&key) {
            Some(e) if e.alarm.alarm_id == alarm.alarm_id => Some(e.alarm.notification_id),
            // Another alarm of this member's own under the same key, from before: it goes.
            Some(_) => {
                self.hand_over(&key, now, out);
                None
            }
            None => None,
        };
        if key.2 == DEVICE_DOWN {
            self.down.insert(key.0.clone());
        }
        self.recent.remove(&key);
        self.ids.insert(alarm.alarm_id, key.clone());
        let notified = alarm.notified && alarm.suppressed_by.is_none();
        let mut entry = Entry {
            alarm,
            fault,
            pending_clear: None,
            expires: None,
        };
        self.emit(
            &mut entry,
            TransitionKind::Adopted,
            now,
            expected,
            notified,
            out,
        );
        self.active.insert(key, entry);
    }

    fn hand_over(&mut self, key: &ReductionKey, now: Timestamp, out: &mut Vec<Transition>) {
        let Some(mut entry) = self.active.remove(key) else {
            return;
        };
        self.ids.remove(&entry.alarm.alarm_id);
        self.flaps.remove(key);
        if key.2 == DEVICE_DOWN {
            self.down.remove(&key.0);
        }
        let expected = Some(entry.alarm.notification_id);
        self.emit(
            &mut entry,
            TransitionKind::HandedOver,
            now,
            expected,
            false,
            out,
        );
    }

    /// The transition of `entry`'s alarm at the next sequence number.
    fn emit(
        &mut self,
        entry: &mut Entry,
        kind: TransitionKind,
        now: Timestamp,
        expected: Option<u64>,
        notified: bool,
        out: &mut Vec<Transition>,
    ) {
        self.last_seq += 1;
        entry.alarm.notification_id = self.last_seq;
        out.push(Transition {
            event: AlarmEvent {
                seq: self.last_seq,
                at: now,
                kind,
                alarm: entry.alarm.clone(),
                notified,
            },
            fault: entry.fault.clone(),
            expected,
            note: None,
        });
    }
}
