//! An alarm's life: a condition asserted (raise, update, escalate, de-escalate), retracted and
//! held down before it clears, flapping and its suppression, root-cause and maintenance
//! suppression re-evaluated, response targets checked; every change recorded as a transition
//! with the fault record after it.

use super::*;

impl AlarmManager {
    pub(super) fn check_targets(&mut self, now: Timestamp, out: &mut Vec<Transition>) {
        let mut overdue: Vec<(ReductionKey, TransitionKind)> = Vec::new();
        for (key, e) in &self.active {
            // A suppressed alarm nobody was told about cannot be overdue.
            if !e.alarm.notified || e.alarm.suppressed_by.is_some() || e.pending_clear.is_some() {
                continue;
            }
            let target = self.tiers.of(e.alarm.perceived_severity);
            let age = now.since(e.fault.raised_at);
            if e.alarm.ack_state == AckState::Unacknowledged
                && !e.fault.ack_breached
                && target.ack_within.is_some_and(|t| age >= t)
            {
                overdue.push((key.clone(), TransitionKind::AckOverdue));
            } else if !e.fault.restore_breached && target.restore_within.is_some_and(|t| age >= t) {
                overdue.push((key.clone(), TransitionKind::RestoreOverdue));
            }
        }
        overdue.sort();
        for (key, kind) in overdue {
            let escalate = self.policy.escalate_on_ack_overdue;
            let Some(entry) = self.active.get_mut(&key) else {
                continue;
            };
            let expected = Some(entry.alarm.notification_id);
            if kind == TransitionKind::AckOverdue {
                entry.fault.ack_breached = true;
                let sev = entry.alarm.perceived_severity;
                if escalate && sev < Severity::Critical {
                    let up = one_tier_up(sev);
                    entry.alarm.perceived_severity = up;
                    entry.alarm.trend_indication = Some(TrendIndication::MoreSevere);
                    entry.fault.peak_severity = entry.fault.peak_severity.max(up);
                }
            } else {
                entry.fault.restore_breached = true;
            }
            entry.alarm.alarm_changed_time = Some(now);
            self.record(&key, kind, now, expected, out);
        }
    }

    /// Raises or updates the alarm for a condition that holds.
    pub(super) fn assert(&mut self, c: Condition, out: &mut Vec<Transition>) {
        let now = c.at;
        let was_asserted = self
            .active
            .get(&c.key)
            .is_some_and(|e| e.pending_clear.is_none());
        if !was_asserted {
            self.flap_change(&c.key, c.category, now, out);
        }
        if let Some(entry) = self.active.get_mut(&c.key) {
            let expected = Some(entry.alarm.notification_id);
            entry.pending_clear = None;
            let a = &mut entry.alarm;
            let before = a.perceived_severity;
            let (kind, trend) = match c.severity.cmp(&before) {
                std::cmp::Ordering::Greater => {
                    (TransitionKind::Escalated, TrendIndication::MoreSevere)
                }
                std::cmp::Ordering::Less => {
                    (TransitionKind::DeEscalated, TrendIndication::LessSevere)
                }
                std::cmp::Ordering::Equal => (TransitionKind::Updated, TrendIndication::NoChange),
            };
            a.perceived_severity = c.severity;
            a.trend_indication = Some(trend);
            a.alarm_changed_time = Some(now);
            a.threshold_info = c.threshold;
            a.additional_text = c.text;
            a.count += 1;
            a.last_seen = now;
            entry.fault.peak_severity = entry.fault.peak_severity.max(c.severity);
            self.record(&c.key, kind, now, expected, out);
            return;
        }
        let id = AlarmId(self.last_seq + 1);
        let (device, object, condition) = c.key.clone();
        let fault = match self.recent.remove(&c.key) {
            Some(mut f)
                if f.cleared_at
                    .is_some_and(|t| now.since(t) <= self.policy.reopen_window) =>
            {
                f.alarm_id = id;
                f.cleared_at = None;
                f.cleared_by = None;
                f.reopened += 1;
                f.peak_severity = f.peak_severity.max(c.severity);
                f
            }
            _ => FaultRecord {
                id: FaultId(id.0),
                alarm_id: id,
                device: device.clone(),
                object: object.clone(),
                condition: condition.clone(),
                category: c.category,
                peak_severity: c.severity,
                raised_at: now,
                acked_at: None,
                acked_by: None,
                cleared_at: None,
                cleared_by: None,
                root_cause: None,
                notes: Vec::new(),
                site: self.topology.site(&device).map(str::to_owned),
                role: self.topology.role(&device),
                reopened: 0,
                ack_breached: false,
                restore_breached: false,
                ack_maintenance_ms: 0,
                repair_maintenance_ms: 0,
                impact: FaultImpact {
                    since: now,
                    ..FaultImpact::default()
                },
            },
        };
        let alarm = Alarm {
            alarm_id: id,
            object_instance: format!("ManagedElement={device},Object={object}"),
            notification_id: id.0,
            alarm_raised_time: now,
            alarm_changed_time: None,
            alarm_cleared_time: None,
            alarm_type: c.alarm_type,
            probable_cause: c.probable_cause.to_owned(),
            specific_problem: condition.clone(),
            perceived_severity: c.severity,
            trend_indication: None,
            threshold_info: c.threshold,
            root_cause_indicator: true,
            ack_state: AckState::Unacknowledged,
            ack_user_id: None,
            ack_time: None,
            clear_user_id: None,
            additional_text: c.text,
            device,
            object,
            condition,
            category: c.category,
            count: 1,
            last_seen: now,
            root_cause_alarm_id: None,
            suppressed_by: None,
            notified: false,
            impact: Impact::default(),
        };
        if c.key.2 == DEVICE_DOWN {
            self.down.insert(c.key.0.clone());
        }
        self.ids.insert(id, c.key.clone());
        self.active.insert(
            c.key.clone(),
            Entry {
                alarm,
                fault,
                pending_clear: None,
                expires: None,
            },
        );
        self.record(&c.key, TransitionKind::Raised, now, None, out);
    }

    /// The condition no longer holds: clear after the hold-down (at once if there is none).
    pub(super) fn retract(
        &mut self,
        key: &ReductionKey,
        now: Timestamp,
        threshold: Option<ThresholdInfo>,
        text: String,
        out: &mut Vec<Transition>,
    ) {
        let Some(entry) = self.active.get_mut(key) else {
            return;
        };
        if entry.pending_clear.is_some() {
            return;
        }
        entry.pending_clear = Some(now);
        entry.alarm.threshold_info = threshold.or(entry.alarm.threshold_info.take());
        entry.alarm.additional_text = text;
        let category = entry.alarm.category;
        self.flap_change(key, category, now, out);
        if self.policy.clear_hold_down.is_zero() {
            self.clear(key, now, out);
        }
    }

    /// Ends an alarm now.
    pub(super) fn clear(&mut self, key: &ReductionKey, now: Timestamp, out: &mut Vec<Transition>) {
        let maintenance_ms = self.maintenance_between(&key.0, self.fault_raised(key), now);
        let Some(entry) = self.active.get_mut(key) else {
            return;
        };
        let expected = Some(entry.alarm.notification_id);
        let a = &mut entry.alarm;
        a.perceived_severity = Severity::Cleared;
        a.trend_indication = Some(TrendIndication::LessSevere);
        a.alarm_changed_time = Some(now);
        a.alarm_cleared_time = Some(now);
        entry.fault.cleared_at = Some(now);
        entry.fault.repair_maintenance_ms = maintenance_ms;
        self.record(key, TransitionKind::Cleared, now, expected, out);
        if let Some(entry) = self.active.remove(key) {
            self.ids.remove(&entry.alarm.alarm_id);
            self.recent.insert(key.clone(), entry.fault);
        }
        if key.2 == DEVICE_DOWN {
            self.down.remove(&key.0);
        }
    }

    /// Counts a raise/clear change for flap detection; raises the flapping alarm when it starts.
    pub(super) fn flap_change(
        &mut self,
        key: &ReductionKey,
        category: Category,
        now: Timestamp,
        out: &mut Vec<Transition>,
    ) {
        if key.2.starts_with(FLAPPING_PREFIX) {
            return;
        }
        let p = &self.policy;
        // Look up before inserting: cloning the key for every change would cost an allocation
        // per transition on the storm path.
        let started = match self.flaps.get_mut(key) {
            Some(f) => f.change(now, p.flap_window, p.flap_threshold),
            None => {
                let mut f = FlapTracker::default();
                let started = f.change(now, p.flap_window, p.flap_threshold);
                self.flaps.insert(key.clone(), f);
                started
            }
        };
        if started {
            let condition = Condition {
                key: flapping_key(key),
                severity: Severity::Minor,
                category,
                alarm_type: category.alarm_type(),
                probable_cause: "flapping",
                threshold: None,
                text: format!(
                    "{} changed state {} times within {}",
                    key.2,
                    p.flap_threshold,
                    humantime::format_duration(p.flap_window)
                ),
                at: now,
            };
            self.assert(condition, out);
            self.reevaluate(now, out);
        }
    }

    /// Recomputes suppression of every active alarm; records a change where there is one.
    pub(super) fn reevaluate(&mut self, now: Timestamp, out: &mut Vec<Transition>) {
        let mut changed: Vec<ReductionKey> = self
            .active
            .iter()
            .filter(|(k, e)| {
                let (sup, root) = self.suppression(k, now);
                e.alarm.suppressed_by != sup || e.alarm.root_cause_alarm_id != root
            })
            .map(|(k, _)| k.clone())
            .collect();
        changed.sort();
        for key in changed {
            if let Some(e) = self.active.get(&key) {
                let expected = Some(e.alarm.notification_id);
                self.record(&key, TransitionKind::SuppressionChanged, now, expected, out);
            }
        }
    }

    /// Why the alarm on `key` should not be notified now, and its root-cause alarm if any.
    pub(super) fn suppression(
        &self,
        key: &ReductionKey,
        now: Timestamp,
    ) -> (Option<Suppression>, Option<AlarmId>) {
        let root_device = self
            .topology
            .ancestors_or_self(&key.0)
            .filter(|d| self.down.contains(*d))
            .last();
        if let Some(root) = root_device {
            let is_root_alarm = key.0 == root && key.2 == DEVICE_DOWN;
            if !is_root_alarm {
                let root_key = (
                    root.to_owned(),
                    DEVICE_OBJECT.to_owned(),
                    DEVICE_DOWN.to_owned(),
                );
                let root_id = self.active.get(&root_key).map(|e| e.alarm.alarm_id);
                return (Some(Suppression::RootCause), root_id);
            }
        }
        if self.flaps.get(key).is_some_and(|f| f.flapping) {
            return (Some(Suppression::Flapping), None);
        }
        if maintenance::in_maintenance(&self.maintenance, &self.topology, &key.0, now) {
            return (Some(Suppression::Maintenance), None);
        }
        (None, None)
    }

    /// Stamps suppression, sequence and notification on the alarm at `key` and emits the
    /// transition.
    pub(super) fn record(
        &mut self,
        key: &ReductionKey,
        kind: TransitionKind,
        now: Timestamp,
        expected: Option<u64>,
        out: &mut Vec<Transition>,
    ) {
        let (sup, root) = self.suppression(key, now);
        self.last_seq += 1;
        let seq = self.last_seq;
        let Some(entry) = self.active.get_mut(key) else {
            return;
        };
        let a = &mut entry.alarm;
        let suppression_changed = a.suppressed_by != sup || a.root_cause_alarm_id != root;
        a.suppressed_by = sup;
        a.root_cause_alarm_id = root;
        a.root_cause_indicator = root.is_none();
        if root.is_some() {
            entry.fault.root_cause = root;
        }
        // A clear is sent exactly for alarms that were sent; anything else is sent when nothing
        // suppresses it, or when a sent alarm's suppression changes (so subscribers know why
        // they will hear no more of it).
        let notified = if kind == TransitionKind::Cleared {
            a.notified
        } else {
            sup.is_none() || (a.notified && suppression_changed)
        };
        a.notified |= notified;
        a.notification_id = seq;
        out.push(Transition {
            event: AlarmEvent {
                seq,
                at: now,
                kind,
                alarm: a.clone(),
                notified,
            },
            fault: entry.fault.clone(),
            expected,
            note: None,
        });
    }
}
