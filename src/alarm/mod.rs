//! Alarm lifecycle and correlation: verdicts, events, engineers' commands and the passing of
//! time in; transitions to record out.
//!
//! [`AlarmManager`] is a pure state machine over the active alarms, keyed by reduction key
//! `(device, object, condition)`. Every input returns the transitions to commit; none reads the
//! clock. Sequence numbers are handed out here (an alarm's id is the sequence number of its
//! raise, a fault's id that of its first raise), so the same inputs give the same records.
//!
//! Decisions, in one place:
//! - A condition that clears must stay clear for `clear-hold-down` before the alarm clears; if it
//!   comes back meanwhile, the alarm simply stays.
//! - A condition that comes back within `reopen-window` of its clear raises a **new alarm** (the
//!   old one was cleared and published as such, and TS 28.532 ids are not reused) on the **same
//!   fault record**, whose `reopened` count goes up: MTTR then covers the whole outage.
//! - Suppressed transitions (root cause, flapping, maintenance) are recorded, not notified; but
//!   an alarm that was ever notified always has its clear and its suppression changes notified,
//!   so no subscriber is left holding a stale alarm.
//! - A manual clear ends the alarm; the condition raises a new one only when detection reports
//!   it again.

pub mod flap;
pub mod maintenance;
pub mod topology;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use crate::config::{AlarmsConfig, Config, MaintenanceConfig, TierTarget, Tiers};
use crate::message::{AlarmError, Verdict};
use crate::model::{
    AckState, Alarm, AlarmEvent, AlarmId, AlarmType, Category, DEVICE_OBJECT, DeviceEvent,
    EventKind, FaultId, FaultRecord, Note, Severity, Suppression, ThresholdInfo, Timestamp,
    Transition, TransitionKind, TrendIndication,
};
use flap::FlapTracker;
use maintenance::MaintenanceWindow;
use topology::Topology;

/// `(device, object, condition)`: one live alarm per key.
pub type ReductionKey = (String, String, String);

/// Condition name of the device-down alarm that root-cause suppression hangs off.
pub const DEVICE_DOWN: &str = "device_unreachable";
const FLAPPING_PREFIX: &str = "flapping:";

#[derive(Debug, Clone)]
struct Entry {
    alarm: Alarm,
    fault: FaultRecord,
    /// The condition went away at this time; the alarm clears after the hold-down.
    pending_clear: Option<Timestamp>,
    /// Instantaneous events clear by themselves at this time.
    expires: Option<Timestamp>,
}

/// What asserting a condition needs to know.
struct Condition {
    key: ReductionKey,
    severity: Severity,
    category: Category,
    alarm_type: AlarmType,
    probable_cause: &'static str,
    threshold: Option<ThresholdInfo>,
    text: String,
    at: Timestamp,
}

/// The active alarms, what correlation needs to remember, and the sequence counter.
#[derive(Debug, Default)]
pub struct AlarmManager {
    policy: AlarmsConfig,
    tiers: Tiers,
    topology: Topology,
    /// Windows from config and from the API, together.
    maintenance: Vec<MaintenanceWindow>,
    config_windows: Vec<MaintenanceWindow>,
    api_windows: Vec<MaintenanceWindow>,
    active: HashMap<ReductionKey, Entry>,
    ids: HashMap<AlarmId, ReductionKey>,
    /// Faults closed within the reopen window, by key.
    recent: HashMap<ReductionKey, FaultRecord>,
    flaps: HashMap<ReductionKey, FlapTracker>,
    /// Devices with an active device-down alarm.
    down: HashSet<String>,
    last_seq: u64,
}

impl AlarmManager {
    /// An empty manager with the policy, topology and maintenance windows of `config`.
    pub fn new(config: &Config) -> Self {
        let mut m = Self::default();
        m.reconfigure(config);
        m
    }

    /// Takes a new config (SIGHUP); active alarms are kept.
    pub fn reconfigure(&mut self, config: &Config) {
        self.policy = config.alarms.clone();
        self.tiers = config.tiers.clone();
        self.topology = Topology::new(&config.devices);
        self.config_windows = config
            .maintenance
            .iter()
            .filter_map(MaintenanceWindow::from_config)
            .collect();
        self.merge_windows();
    }

    /// Replaces the windows created through the API; suppression follows at the next tick.
    pub fn set_api_maintenance(&mut self, windows: &[MaintenanceConfig]) {
        self.api_windows = windows
            .iter()
            .filter_map(MaintenanceWindow::from_config)
            .collect();
        self.merge_windows();
    }

    fn merge_windows(&mut self) {
        self.maintenance = self
            .config_windows
            .iter()
            .chain(&self.api_windows)
            .cloned()
            .collect();
    }

    /// Rebuilds the state from the store: active alarms, the fault records of active alarms and
    /// of those cleared within the reopen window, and the last sequence number committed.
    pub fn restore(
        config: &Config,
        alarms: Vec<Alarm>,
        faults: Vec<FaultRecord>,
        last_seq: u64,
        now: Timestamp,
    ) -> Self {
        let mut m = Self::new(config);
        m.last_seq = last_seq;
        let mut by_alarm: HashMap<AlarmId, FaultRecord> = HashMap::new();
        for f in faults {
            match f.cleared_at {
                None => {
                    by_alarm.insert(f.alarm_id, f);
                }
                Some(cleared) if now.since(cleared) <= m.policy.reopen_window => {
                    let key = (f.device.clone(), f.object.clone(), f.condition.clone());
                    m.recent.insert(key, f);
                }
                Some(_) => {}
            }
        }
        for alarm in alarms {
            let Some(fault) = by_alarm.remove(&alarm.alarm_id) else {
                continue;
            };
            let key = key_of(&alarm);
            if key.2 == DEVICE_DOWN {
                m.down.insert(key.0.clone());
            }
            m.ids.insert(alarm.alarm_id, key.clone());
            m.active.insert(
                key,
                Entry {
                    alarm,
                    fault,
                    pending_clear: None,
                    expires: None,
                },
            );
        }
        m
    }

    /// Number of active alarms.
    pub fn active_count(&self) -> usize {
        self.active.len()
    }

    /// The last sequence number handed out.
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// Applies a detection verdict: raise, update, escalate, de-escalate, or start a clear.
    pub fn on_verdict(&mut self, v: Verdict) -> Vec<Transition> {
        let key = (v.series.device, v.series.object, v.condition);
        let mut out = Vec::new();
        if v.severity == Severity::Cleared {
            self.retract(&key, v.at, v.threshold, v.text, &mut out);
        } else {
            let condition = Condition {
                key,
                severity: v.severity,
                category: v.category,
                alarm_type: v.category.alarm_type(),
                probable_cause: "thresholdCrossed",
                threshold: v.threshold,
                text: v.text,
                at: v.at,
            };
            self.assert(condition, &mut out);
        }
        out
    }

    /// Applies an event from a source: reachability, link state, reboot.
    pub fn on_event(&mut self, e: DeviceEvent) -> Vec<Transition> {
        let mut out = Vec::new();
        let at = e.at;
        let (condition, severity, alarm_type, cause) = match e.kind {
            EventKind::Unreachable | EventKind::Reachable => (
                DEVICE_DOWN,
                Severity::Critical,
                AlarmType::CommunicationsAlarm,
                "communicationsSubsystemFailure",
            ),
            EventKind::LinkDown | EventKind::LinkUp => (
                "link_down",
                Severity::Major,
                AlarmType::CommunicationsAlarm,
                "lossOfSignal",
            ),
            EventKind::Reboot => (
                "device_rebooted",
                Severity::Warning,
                AlarmType::EquipmentAlarm,
                "reinitialized",
            ),
            EventKind::AuthFailure => (
                "authentication_failure",
                Severity::Warning,
                AlarmType::SecurityServiceOrMechanismViolation,
                "unauthorizedAccessAttempt",
            ),
            EventKind::Trap => (
                "snmp_trap",
                Severity::Indeterminate,
                AlarmType::CommunicationsAlarm,
                "unspecifiedReason",
            ),
        };
        let severity = e.severity.unwrap_or(severity);
        let category = match e.kind {
            EventKind::AuthFailure => Category::Security,
            _ => Category::Equipment,
        };
        let key = (e.device, e.object, condition.to_owned());
        match e.kind {
            EventKind::Reachable | EventKind::LinkUp => {
                self.retract(&key, at, None, e.text, &mut out);
            }
            EventKind::Unreachable
            | EventKind::LinkDown
            | EventKind::Reboot
            | EventKind::AuthFailure
            | EventKind::Trap => {
                // Events with no clearing counterpart clear themselves after a while.
                let expires = matches!(
                    e.kind,
                    EventKind::Reboot | EventKind::AuthFailure | EventKind::Trap
                )
                .then(|| add(at, self.policy.event_clear_after));
                let condition = Condition {
                    key: key.clone(),
                    severity,
                    category,
                    alarm_type,
                    probable_cause: cause,
                    threshold: None,
                    text: e.text,
                    at,
                };
                self.assert(condition, &mut out);
                if let Some(entry) = self.active.get_mut(&key) {
                    entry.expires = expires;
                }
            }
        }
        // A device going down or coming back changes who is a symptom of whom.
        if condition == DEVICE_DOWN {
            self.reevaluate(at, &mut out);
        }
        out
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
        push_note(f, now, user, note);
        let kind = if acked {
            TransitionKind::Acknowledged
        } else {
            TransitionKind::Unacknowledged
        };
        self.record(&key, kind, now, expected, &mut out);
        Ok(out)
    }

    /// Adds a note to a fault the manager holds (open, or closed within the reopen window) and
    /// returns the record to store; `None` if the manager does not hold it (the caller then
    /// updates the stored record directly).
    pub fn on_note(&mut self, id: FaultId, note: Note) -> Option<FaultRecord> {
        let held = self
            .active
            .values_mut()
            .map(|e| &mut e.fault)
            .chain(self.recent.values_mut())
            .find(|f| f.id == id)?;
        held.notes.push(note);
        Some(held.clone())
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
            push_note(&mut entry.fault, now, user, note);
        }
        self.clear(&key, now, &mut out);
        if key.2 == DEVICE_DOWN {
            self.reevaluate(now, &mut out);
        }
        Ok(out)
    }

    /// The passing of time: hold-downs end, events expire, response targets pass, flapping
    /// settles, maintenance windows open and close.
    pub fn on_tick(&mut self, now: Timestamp) -> Vec<Transition> {
        let mut out = Vec::new();
        let hold = self.policy.clear_hold_down;
        // Sorted: map order is random, and replays must give the same sequence every time.
        let mut due: Vec<ReductionKey> = self
            .active
            .iter()
            .filter(|(_, e)| {
                e.pending_clear.is_some_and(|t| now.since(t) >= hold)
                    || e.expires.is_some_and(|t| now >= t)
            })
            .map(|(k, _)| k.clone())
            .collect();
        due.sort();
        for key in &due {
            self.clear(key, now, &mut out);
        }
        let mut settled: Vec<ReductionKey> = self
            .flaps
            .iter_mut()
            .filter_map(|(k, f)| f.settle(now, self.policy.flap_hold).then(|| k.clone()))
            .collect();
        settled.sort();
        for key in settled {
            let flap_key = flapping_key(&key);
            self.clear(&flap_key, now, &mut out);
        }
        let window = self.policy.flap_window;
        self.flaps.retain(|_, f| !f.idle(now, window));
        let reopen = self.policy.reopen_window;
        self.recent
            .retain(|_, f| f.cleared_at.is_some_and(|c| now.since(c) <= reopen));
        self.check_targets(now, &mut out);
        self.reevaluate(now, &mut out);
        out
    }

    fn check_targets(&mut self, now: Timestamp, out: &mut Vec<Transition>) {
        let mut overdue: Vec<(ReductionKey, TransitionKind)> = Vec::new();
        for (key, e) in &self.active {
            // A suppressed alarm nobody was told about cannot be overdue.
            if !e.alarm.notified || e.alarm.suppressed_by.is_some() || e.pending_clear.is_some() {
                continue;
            }
            let target = tier_target(&self.tiers, e.alarm.perceived_severity);
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
    fn assert(&mut self, c: Condition, out: &mut Vec<Transition>) {
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
    fn retract(
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
    fn clear(&mut self, key: &ReductionKey, now: Timestamp, out: &mut Vec<Transition>) {
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
    fn flap_change(
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
    fn reevaluate(&mut self, now: Timestamp, out: &mut Vec<Transition>) {
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
    fn suppression(
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
    fn record(
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
        });
    }

    fn key_of_id(&self, id: AlarmId) -> Result<ReductionKey, AlarmError> {
        self.ids.get(&id).cloned().ok_or(AlarmError::NotActive(id))
    }

    fn fault_raised(&self, key: &ReductionKey) -> Timestamp {
        self.active
            .get(key)
            .map_or(Timestamp::from_millis(0), |e| e.fault.raised_at)
    }

    fn maintenance_between(&self, device: &str, from: Timestamp, to: Timestamp) -> u64 {
        maintenance::maintenance_ms(&self.maintenance, &self.topology, device, from, to)
    }
}

fn key_of(a: &Alarm) -> ReductionKey {
    (a.device.clone(), a.object.clone(), a.condition.clone())
}

fn flapping_key(key: &ReductionKey) -> ReductionKey {
    (
        key.0.clone(),
        key.1.clone(),
        format!("{FLAPPING_PREFIX}{}", key.2),
    )
}

fn push_note(f: &mut FaultRecord, at: Timestamp, by: &str, text: Option<&str>) {
    if let Some(text) = text.filter(|t| !t.is_empty()) {
        f.notes.push(Note {
            at,
            by: by.to_owned(),
            text: text.to_owned(),
        });
    }
}

fn add(t: Timestamp, d: Duration) -> Timestamp {
    Timestamp::from_millis(
        t.as_millis()
            .saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
    )
}

fn tier_target(tiers: &Tiers, s: Severity) -> &TierTarget {
    static NONE: TierTarget = TierTarget {
        ack_within: None,
        restore_within: None,
    };
    match s {
        Severity::Critical => &tiers.critical,
        Severity::Major => &tiers.major,
        Severity::Minor => &tiers.minor,
        Severity::Warning => &tiers.warning,
        Severity::Indeterminate | Severity::Cleared => &NONE,
    }
}

fn one_tier_up(s: Severity) -> Severity {
    match s {
        Severity::Cleared | Severity::Indeterminate => Severity::Warning,
        Severity::Warning => Severity::Minor,
        Severity::Minor => Severity::Major,
        Severity::Major | Severity::Critical => Severity::Critical,
    }
}

#[cfg(test)]
mod tests;
