//! The customer-service lookup: which known faults touch a place now, or did recently.
//!
//! [`ImpactView`] is an immutable snapshot the alarm stage publishes after each committed
//! batch, so the API answers from memory without asking the stage (p99 well under a ms).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::config::Topology;
use crate::model::{
    Alarm, AlarmId, FaultId, Place, ServiceState, Severity, Suppression, Timestamp,
};

/// A customer-affecting alarm as the lookup reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Affected {
    /// The alarm.
    pub alarm_id: AlarmId,
    /// Its fault record.
    pub fault: FaultId,
    /// Device.
    pub device: String,
    /// Object on the device.
    pub object: String,
    /// Condition.
    pub condition: String,
    /// Severity now (the last one before a clear).
    pub severity: Severity,
    /// What is wrong, in words.
    pub text: String,
    /// When raised.
    pub raised_at: Timestamp,
    /// When cleared, if it has.
    pub cleared_at: Option<Timestamp>,
    /// Customers behind it.
    pub customers: u64,
    /// Customer-minutes lost so far.
    pub customer_minutes: u64,
    /// Services it touches.
    pub services: Vec<String>,
    /// Whether its device is in maintenance (planned work).
    pub maintenance: bool,
    /// Whether an engineer has taken it.
    pub acknowledged: bool,
}

impl Affected {
    pub(super) fn new(alarm: &Alarm) -> Self {
        let mut a = Self {
            alarm_id: alarm.alarm_id,
            fault: FaultId(alarm.alarm_id.0),
            device: alarm.device.clone(),
            object: alarm.object.clone(),
            condition: alarm.condition.clone(),
            severity: alarm.perceived_severity,
            text: String::new(),
            raised_at: alarm.alarm_raised_time,
            cleared_at: None,
            customers: 0,
            customer_minutes: 0,
            services: Vec::new(),
            maintenance: false,
            acknowledged: false,
        };
        a.update(alarm, alarm.alarm_raised_time);
        a
    }

    pub(super) fn update(&mut self, alarm: &Alarm, at: Timestamp) {
        if alarm.is_cleared() {
            self.cleared_at = Some(alarm.alarm_cleared_time.unwrap_or(at));
        } else {
            self.severity = alarm.perceived_severity;
            self.customers = alarm.impact.customers;
            self.text = alarm.additional_text.clone();
        }
        self.services = alarm.impact.services.clone();
        self.maintenance = alarm.suppressed_by == Some(Suppression::Maintenance);
        self.acknowledged = alarm.ack_time.is_some();
    }

    fn is_cell(&self) -> Option<&str> {
        Place::cell_of(&self.object)
    }
}

/// A snapshot of what affects customers, for lookups.
#[derive(Debug, Clone, Default)]
pub struct ImpactView {
    topology: Arc<Topology>,
    sites: Arc<HashMap<String, Vec<String>>>,
    by_device: HashMap<String, Vec<Affected>>,
    services: Vec<ServiceState>,
    recent: Duration,
}

impl ImpactView {
    pub(super) fn new(
        topology: Arc<Topology>,
        sites: Arc<HashMap<String, Vec<String>>>,
        affected: Vec<Affected>,
        services: Vec<ServiceState>,
        recent: Duration,
    ) -> Self {
        let mut by_device: HashMap<String, Vec<Affected>> = HashMap::new();
        for a in affected {
            by_device.entry(a.device.clone()).or_default().push(a);
        }
        Self {
            topology,
            sites,
            by_device,
            services,
            recent,
        }
    }

    /// Every service's committed state.
    pub fn services(&self) -> &[ServiceState] {
        &self.services
    }

    /// A service's committed state.
    pub fn service(&self, name: &str) -> Option<&ServiceState> {
        self.services.iter().find(|s| s.name == name)
    }

    /// Whether a place exists in the network this view was made from.
    pub fn knows(&self, place: &Place) -> bool {
        match place {
            Place::Site(s) => self.sites.contains_key(s),
            Place::Cell { device, .. } => self.topology.contains(device),
            Place::Service(s) => self.service(s).is_some(),
        }
    }

    /// The faults that touch `place` now, or cleared within `[impact] recent` of `now`: the
    /// active ones first, then the most severe, then the newest.
    pub fn lookup(&self, place: &Place, now: Timestamp) -> Vec<&Affected> {
        let mut out: Vec<&Affected> = Vec::new();
        let mut add = |device: &str, own: bool, cell: Option<&str>| {
            for a in self.by_device.get(device).into_iter().flatten() {
                // An element above reaches the place with a device-wide alarm only; the place's
                // own device also with the alarm of the very cell.
                let hits = match a.is_cell() {
                    None => true,
                    Some(c) => own && cell.is_none_or(|want| want == c),
                };
                if hits && !out.iter().any(|o| o.alarm_id == a.alarm_id) {
                    out.push(a);
                }
            }
        };
        match place {
            Place::Site(s) => {
                for d in self.sites.get(s).into_iter().flatten() {
                    for up in self.topology.ancestors_or_self(d) {
                        add(up, up == d, None);
                    }
                }
            }
            Place::Cell { device, cell } => {
                for up in self.topology.ancestors_or_self(device) {
                    add(up, up == device, Some(cell));
                }
            }
            Place::Service(name) => {
                let under = self.service(name).map(|s| &s.underlying_alarm);
                for list in self.by_device.values() {
                    for a in list {
                        let explains = a.services.iter().any(|s| s == name)
                            || under.is_some_and(|u| u.contains(&a.alarm_id));
                        if explains {
                            out.push(a);
                        }
                    }
                }
            }
        }
        let recent = self.recent;
        out.retain(|a| a.cleared_at.is_none_or(|c| now.since(c) <= recent));
        out.sort_by(|a, b| {
            a.cleared_at
                .is_some()
                .cmp(&b.cleared_at.is_some())
                .then(b.severity.cmp(&a.severity))
                .then(b.raised_at.cmp(&a.raised_at))
        });
        out
    }
}
