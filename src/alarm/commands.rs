//! Engineers' commands on the alarm manager: acknowledge, withdraw an acknowledgement, clear
//! by hand, and notes on a fault. Each returns the transitions to commit, or why not.

use super::*;

impl AlarmManager {
    /// An engineer takes the active alarm of a reduction key (a replayed acknowledgement).
    pub fn on_ack_key(
        &mut self,
        key: &ReductionKey,
        user: &str,
        note: Option<&str>,
        now: Timestamp,
    ) -> Result<Vec<Transition>, AlarmError> {
        let id = self
            .active
            .get(key)
            .map(|e| e.alarm.alarm_id)
            .ok_or_else(|| AlarmError::NoSuchKey(format!("{} {} {}", key.0, key.1, key.2)))?;
        self.on_ack(id, user, note, now)
    }

    /// An engineer takes the alarm. Acknowledging an acknowledged alarm changes nothing.
    pub fn on_ack(
        &mut self,
        id: AlarmId,
        user: &str,
        note: Option<&str>,
        now: Timestamp,
    ) -> Result<Vec<Transition>, AlarmError> {
        self.set_ack(id, AckState::Acknowledged, user, note, now)
    }

    /// An acknowledgement is withdrawn; MTTA keeps the first acknowledgement.
    pub fn on_unack(
        &mut self,
        id: AlarmId,
        user: &str,
        now: Timestamp,
    ) -> Result<Vec<Transition>, AlarmError> {
        self.set_ack(
            id,
            AckState::Unacknowledged,
            user,
            Some("unacknowledged"),
            now,
        )
    }

    fn set_ack(
        &mut self,
        id: AlarmId,
        state: AckState,
        user: &str,
        note: Option<&str>,
        now: Timestamp,
    ) -> Result<Vec<Transition>, AlarmError> {
        let key = self.key_of_id(id)?;
        let mut out = Vec::new();
        let maintenance_ms = self.maintenance_between(&key.0, self.fault_raised(&key), now);
        let Some(entry) = self.active.get_mut(&key) else {
            return Err(AlarmError::NotActive(id));
        };
        if entry.alarm.ack_state == state {
            return Ok(out);
        }
        let expected = Some(entry.alarm.notification_id);
        let acked = state == AckState::Acknowledged;
        let a = &mut entry.alarm;
        a.ack_state = state;
        a.ack_user_id = acked.then(|| user.to_owned());
        a.ack_time = acked.then_some(now);
        a.alarm_changed_time = Some(now);
        let f = &mut entry.fault;
        if acked && f.acked_at.is_none() {
            f.acked_at = Some(now);
            f.acked_by = Some(user.to_owned());
            f.ack_maintenance_ms = maintenance_ms;
        }
        let kind = if acked {
            TransitionKind::Acknowledged
        } else {
            TransitionKind::Unacknowledged
        };
        self.record(&key, kind, now, expected, &mut out);
        attach_note(&mut out, id, now, user, note);
        Ok(out)
    }

    /// Automated handling gave up on the alarm (a rule with `on-failure = "escalate"`): one
    /// severity up, with a note saying why, so the humans' targets tighten. It holds until
    /// detection reports another tier.
    pub fn on_escalate(
        &mut self,
        id: AlarmId,
        why: &str,
        now: Timestamp,
    ) -> Result<Vec<Transition>, AlarmError> {
        let key = self.key_of_id(id)?;
        let mut out = Vec::new();
        let Some(entry) = self.active.get_mut(&key) else {
            return Err(AlarmError::NotActive(id));
        };
        let sev = entry.alarm.perceived_severity;
        if sev >= Severity::Critical || entry.pending_clear.is_some() {
            return Ok(out);
        }
        let up = one_tier_up(sev);
        let expected = Some(entry.alarm.notification_id);
        entry.alarm.perceived_severity = up;
        entry.alarm.trend_indication = Some(TrendIndication::MoreSevere);
        entry.alarm.alarm_changed_time = Some(now);
        entry.fault.peak_severity = entry.fault.peak_severity.max(up);
        self.record(&key, TransitionKind::Escalated, now, expected, &mut out);
        attach_note(&mut out, id, now, "noctua", Some(why));
        Ok(out)
    }

    /// A user clears the alarm by hand.
    pub fn on_clear(
        &mut self,
        id: AlarmId,
        user: &str,
        note: Option<&str>,
        now: Timestamp,
    ) -> Result<Vec<Transition>, AlarmError> {
        let key = self.key_of_id(id)?;
        let mut out = Vec::new();
        if let Some(entry) = self.active.get_mut(&key) {
            entry.alarm.clear_user_id = Some(user.to_owned());
            entry.fault.cleared_by = Some(user.to_owned());
        }
        self.clear(&key, now, &mut out);
        attach_note(&mut out, id, now, user, note);
        if key.2 == DEVICE_DOWN {
            self.reevaluate(now, &mut out);
        }
        Ok(out)
    }
}
