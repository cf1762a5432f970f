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
    /// The root-cause alarm it is a symptom of (its customers are counted there).
    pub counted_in: Option<AlarmId>,
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
            counted_in: None,
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
        self.counted_in = alarm.impact.counted_in;
    }

    /// Whether this alarm's element reaches `place`: a device-wide alarm reaches every place
    /// at or below its device; a cell alarm only its cell (and the cell's site). A service is
    /// reached by the alarms that touch it.
    pub fn covers(
        &self,
        place: &Place,
        topology: &Topology,
        sites: &HashMap<String, Vec<String>>,
    ) -> bool {
        let cell = Place::cell_of(&self.object);
        match place {
            Place::Site(s) => sites.get(s).into_iter().flatten().any(|d| match cell {
                None => topology.is_under(d, &self.device),
                Some(_) => *d == self.device,
            }),
            Place::Cell { device, cell: want } => match cell {
                None => topology.is_under(device, &self.device),
                Some(c) => *device == self.device && c == want,
            },
            Place::Service(name) => self.services.iter().any(|s| s == name),
        }
    }
}

/// A snapshot of what affects customers, for lookups.
#[derive(Debug, Clone, Default)]
pub struct ImpactView {
    topology: Arc<Topology>,
    sites: Arc<HashMap<String, Vec<String>>>,
    affected: Vec<Affected>,
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
        Self {
            topology,
            sites,
            affected,
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

    /// The faults that touch `place` now, or cleared within `[impact] recent` of `now`.
    pub fn lookup(&self, place: &Place, now: Timestamp) -> Vec<&Affected> {
        reaching(
            &self.affected,
            place,
            &self.topology,
            &self.sites,
            now,
            self.recent,
        )
    }
}

/// The alarms of `affected` that reach `place`, active or cleared within `within` of `now`:
/// the active ones first, then root causes before their symptoms, then the most severe, then
/// the newest.
pub(super) fn reaching<'a>(
    affected: impl IntoIterator<Item = &'a Affected>,
    place: &Place,
    topology: &Topology,
    sites: &HashMap<String, Vec<String>>,
    now: Timestamp,
    within: Duration,
) -> Vec<&'a Affected> {
    let mut out: Vec<&Affected> = affected
        .into_iter()
        .filter(|a| a.cleared_at.is_none_or(|c| now.since(c) <= within))
        .filter(|a| a.covers(place, topology, sites))
        .collect();
    out.sort_by(|a, b| {
        a.cleared_at
            .is_some()
            .cmp(&b.cleared_at.is_some())
            .then(a.counted_in.is_some().cmp(&b.counted_in.is_some()))
            .then(b.severity.cmp(&a.severity))
            .then(b.raised_at.cmp(&a.raised_at))
    });
    out
}
