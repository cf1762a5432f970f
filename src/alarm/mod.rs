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

mod commands;
pub mod flap;
mod handover;
mod lifecycle;
pub mod maintenance;

use std::collections::{HashMap, HashSet};

use crate::config::{AlarmsConfig, Config, MaintenanceConfig, Tiers, Topology};
use crate::message::{AlarmError, Verdict};
use crate::model::{
    ACTION_BREAKER, AckState, Alarm, AlarmEvent, AlarmId, AlarmType, CUSTOMER_REPORTED, Category,
    DEVICE_OBJECT, DeviceEvent, EventKind, FaultId, FaultImpact, FaultRecord, Impact, Note,
    Severity, Suppression, ThresholdInfo, Timestamp, Transition, TransitionKind, TrendIndication,
};
use flap::FlapTracker;
use maintenance::MaintenanceWindow;

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

    /// Takes back what impact filled into transitions, so the next transition of each alarm
    /// (and of a fault that reopens) starts from it: the manager itself never computes impact.
    pub fn keep_impact(&mut self, transitions: &[Transition]) {
        for t in transitions {
            let alarm = &t.event.alarm;
            let key = key_of(alarm);
            if let Some(e) = self.active.get_mut(&key)
                && e.alarm.alarm_id == alarm.alarm_id
            {
                e.alarm.impact = alarm.impact.clone();
                e.fault.impact = t.fault.impact.clone();
            } else if let Some(f) = self.recent.get_mut(&key)
                && f.id == t.fault.id
            {
                f.impact = t.fault.impact.clone();
            }
        }
    }

    /// The active alarms, in no order.
    pub fn alarms(&self) -> impl Iterator<Item = &Alarm> {
        self.active.values().map(|e| &e.alarm)
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
            EventKind::Complaints | EventKind::ComplaintsStopped => (
                CUSTOMER_REPORTED,
                Severity::Minor,
                AlarmType::QualityOfServiceAlarm,
                "customerReported",
            ),
            EventKind::ActionsFailing | EventKind::ActionsResumed => (
                ACTION_BREAKER,
                Severity::Major,
                AlarmType::ProcessingErrorAlarm,
                "applicationSubsystemFailure",
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
            EventKind::Complaints | EventKind::ComplaintsStopped => Category::Service,
            _ => Category::Equipment,
        };
        let key = (e.device, e.object, condition.to_owned());
        match e.kind {
            EventKind::Reachable
            | EventKind::LinkUp
            | EventKind::ComplaintsStopped
            | EventKind::ActionsResumed => {
                self.retract(&key, at, None, e.text, &mut out);
            }
            EventKind::Unreachable
            | EventKind::LinkDown
            | EventKind::Reboot
            | EventKind::AuthFailure
            | EventKind::Trap
            | EventKind::Complaints
            | EventKind::ActionsFailing => {
                // Events with no clearing counterpart clear themselves after a while.
                let expires = matches!(
                    e.kind,
                    EventKind::Reboot | EventKind::AuthFailure | EventKind::Trap
                )
                .then(|| at.plus(self.policy.event_clear_after));
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

/// An engineer's note (not empty) goes with the transition of `alarm` that the command made.
fn attach_note(
    out: &mut [Transition],
    alarm: AlarmId,
    at: Timestamp,
    by: &str,
    text: Option<&str>,
) {
    let Some(text) = text.filter(|t| !t.trim().is_empty()) else {
        return;
    };
    if let Some(t) = out.iter_mut().find(|t| t.event.alarm.alarm_id == alarm) {
        t.note = Some(Note {
            at,
            by: by.to_owned(),
            text: text.to_owned(),
        });
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
