//! Complaints: received, linked to the fault that explains them, acknowledged, resolved; the
//! unexplained ones counted per place to raise `customer_reported` alarms; response targets.
//!
//! Decisions, in one place:
//! - A complaint is linked on arrival to the best fault covering its place that is active or
//!   cleared within `[complaints] link-look-back` (active first, then the most severe).
//! - An unexplained complaint is linked later when a customer-affecting alarm appears that
//!   covers its place (within the look-back of its arrival): "the customer called first".
//! - Unexplained complaints from one place within `detect-window` raise `customer_reported` on
//!   it at `minor`/`major`/`critical` counts. It clears when none came for `detect-window`, or
//!   at once when a network alarm explains the place (its complaints are then linked to it).
//! - A complaint linked to a fault is resolved, with a note, when that fault clears; one that
//!   was resolved stays resolved if the fault comes back.
//! - Targets run from when the CRM received it (`receivedAt`), as the customer lived it.

use std::collections::{BTreeMap, HashMap, VecDeque};

use crate::config::ComplaintsConfig;
use crate::model::{
    AlarmId, Complaint, ComplaintError, ComplaintLink, ComplaintState, DeviceEvent, EventKind,
    FaultId, Place, Severity, Timestamp,
};

/// What a complaint step asks the alarm stage to do: store these complaints (as they are now)
/// and pass these events to the alarm manager, in one commit.
#[derive(Debug, Default, PartialEq)]
pub struct Effects {
    /// Complaints that changed.
    pub complaints: Vec<Complaint>,
    /// `customer_reported` raises, escalations and clears.
    pub events: Vec<DeviceEvent>,
}

impl Effects {
    /// Adds another step's effects.
    pub fn merge(&mut self, other: Effects) {
        self.complaints.extend(other.complaints);
        self.events.extend(other.events);
    }
}

/// A place's `customer_reported` alarm: where it is, and its severity now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportedAt {
    /// Device of the alarm.
    pub device: String,
    /// Object of the alarm.
    pub object: String,
}

/// The open complaints and what detection counts.
#[derive(Debug, Default)]
pub struct ComplaintBook {
    config: ComplaintsConfig,
    /// Complaints not resolved, by id.
    open: BTreeMap<String, Complaint>,
    /// Unexplained complaints per detection place (a cell's complaints count for its site),
    /// arrival order: (received, id).
    unexplained: HashMap<Place, VecDeque<(Timestamp, String)>>,
    /// Places with a `customer_reported` alarm: its element and severity.
    reported: HashMap<Place, (ReportedAt, Severity)>,
}

impl ComplaintBook {
    /// The book with the complaints not yet resolved (from the store), each with the place its
    /// detection counts it at.
    pub fn new(config: &ComplaintsConfig, open: Vec<(Complaint, Place)>) -> Self {
        let mut b = Self {
            config: config.clone(),
            ..Self::default()
        };
        for (c, detect) in open {
            if c.link.is_none() {
                b.unexplained
                    .entry(detect)
                    .or_default()
                    .push_back((c.received_at, c.id.clone()));
            }
            b.open.insert(c.id.clone(), c);
        }
        for q in b.unexplained.values_mut() {
            q.make_contiguous().sort();
        }
        b
    }

    /// A `customer_reported` alarm still active at start: its place is counted again from the
    /// open complaints, and it clears when they stop.
    pub fn restore_reported(&mut self, place: Place, alarm: &crate::model::Alarm) {
        let at = ReportedAt {
            device: alarm.device.clone(),
            object: alarm.object.clone(),
        };
        self.reported.insert(place, (at, alarm.perceived_severity));
    }

    /// Takes a new `[complaints]` (SIGHUP).
    pub fn reconfigure(&mut self, config: &ComplaintsConfig) {
        self.config = config.clone();
    }

    /// Whether an open complaint has this id (resolved ones are the store's to know).
    pub fn is_open(&self, id: &str) -> bool {
        self.open.contains_key(id)
    }

    /// An open complaint.
    pub fn get(&self, id: &str) -> Option<&Complaint> {
        self.open.get(id)
    }

    /// Open complaints, by id.
    pub fn open(&self) -> impl Iterator<Item = &Complaint> {
        self.open.values()
    }

    /// A new complaint, linked to `link` if a fault explains it; else counted at `detect`
    /// towards that place's `customer_reported` alarm, whose element `at` names.
    pub fn receive(
        &mut self,
        mut c: Complaint,
        link: Option<ComplaintLink>,
        (detect, at): (Place, ReportedAt),
        now: Timestamp,
    ) -> Effects {
        let mut out = Effects::default();
        c.link = link;
        if c.link.is_none() {
            let q = self.unexplained.entry(detect.clone()).or_default();
            q.push_back((c.received_at, c.id.clone()));
            q.make_contiguous().sort();
            out.events.extend(self.detect(&detect, Some(at), now));
        }
        self.flag_targets(&mut c, now);
        out.complaints.push(c.clone());
        self.open.insert(c.id.clone(), c);
        out
    }

    /// A customer-affecting alarm appeared (or is still there): unexplained complaints whose
    /// place it covers, received within the look-back, are linked to its fault, and their
    /// places' `customer_reported` alarms clear.
    pub fn explain(
        &mut self,
        covers: impl Fn(&Place) -> bool,
        fault: FaultId,
        alarm: AlarmId,
        fault_raised_at: Timestamp,
        now: Timestamp,
    ) -> Effects {
        let mut out = Effects::default();
        let look_back = self.config.link_look_back;
        let places: Vec<Place> = self
            .unexplained
            .keys()
            .filter(|p| covers(p))
            .cloned()
            .collect();
        for place in places {
            let Some(q) = self.unexplained.remove(&place) else {
                continue;
            };
            for (received, id) in q {
                let Some(c) = self.open.get_mut(&id) else {
                    continue;
                };
                if now.since(received) > look_back || c.link.is_some() {
                    continue;
                }
                c.link = Some(ComplaintLink {
                    fault,
                    alarm,
                    at: now,
                    fault_raised_at,
                });
                out.complaints.push(c.clone());
            }
            if let Some((at, _)) = self.reported.remove(&place) {
                out.events.push(reported_event(
                    &at,
                    EventKind::ComplaintsStopped,
                    None,
                    format!("explained by alarm {}", alarm.0),
                    now,
                ));
            }
        }
        out
    }

    /// A fault cleared: its complaints are resolved, with a note saying so.
    pub fn fault_cleared(&mut self, fault: FaultId, alarm: AlarmId, now: Timestamp) -> Effects {
        let mut out = Effects::default();
        let ids: Vec<String> = self
            .open
            .values()
            .filter(|c| c.link.as_ref().is_some_and(|l| l.fault == fault))
            .map(|c| c.id.clone())
            .collect();
        for id in ids {
            if let Some(mut c) = self.open.remove(&id) {
                c.state = ComplaintState::Resolved;
                c.resolved_at = Some(now);
                c.resolved_by = None;
                c.resolution = Some(format!(
                    "resolved with fault {} (alarm {} cleared)",
                    fault.0, alarm.0
                ));
                self.flag_targets(&mut c, now);
                out.complaints.push(c);
            }
        }
        out
    }

    /// Someone answered the customer.
    pub fn ack(&mut self, id: &str, by: &str, now: Timestamp) -> Result<Effects, ComplaintError> {
        let c = self
            .open
            .get_mut(id)
            .ok_or_else(|| ComplaintError::Unknown(id.to_owned()))?;
        if c.acked_at.is_none() {
            c.acked_at = Some(now);
            c.acked_by = Some(by.to_owned());
            c.state = ComplaintState::Acknowledged;
        }
        let c = c.clone();
        Ok(Effects {
            complaints: vec![c],
            events: Vec::new(),
        })
    }

    /// Resolved by hand, with how.
    pub fn resolve(
        &mut self,
        id: &str,
        by: &str,
        note: &str,
        now: Timestamp,
    ) -> Result<Effects, ComplaintError> {
        let mut c = self
            .open
            .remove(id)
            .ok_or_else(|| ComplaintError::Unknown(id.to_owned()))?;
        c.state = ComplaintState::Resolved;
        c.resolved_at = Some(now);
        c.resolved_by = Some(by.to_owned());
        c.resolution = Some(note.to_owned());
        if c.acked_at.is_none() {
            // Resolving answers the customer too.
            c.acked_at = Some(now);
            c.acked_by = Some(by.to_owned());
        }
        self.flag_targets(&mut c, now);
        for q in self.unexplained.values_mut() {
            q.retain(|(_, i)| i != id);
        }
        Ok(Effects {
            complaints: vec![c],
            events: Vec::new(),
        })
    }

    /// The passing of time: targets pass; windows empty and their alarms de-escalate or clear.
    pub fn on_tick(&mut self, now: Timestamp) -> Effects {
        let mut out = Effects::default();
        let ids: Vec<String> = self.open.keys().cloned().collect();
        for id in ids {
            if let Some(c) = self.open.get_mut(&id) {
                let before = (c.respond_breached, c.resolve_breached);
                flag(&self.config, c, now);
                if (c.respond_breached, c.resolve_breached) != before {
                    out.complaints.push(c.clone());
                }
            }
        }
        let places: Vec<Place> = self.reported.keys().cloned().collect();
        for place in places {
            out.events.extend(self.detect(&place, None, now));
        }
        // Windows of places with no alarm empty out too, so memory follows the window.
        let window = self.config.detect_window;
        let look_back = self.config.link_look_back.max(window);
        self.unexplained.retain(|_, q| {
            while q.front().is_some_and(|(t, _)| now.since(*t) > look_back) {
                q.pop_front();
            }
            !q.is_empty()
        });
        out
    }

    /// Counts a place's unexplained complaints in the window and raises, changes or clears
    /// its `customer_reported` alarm to match.
    fn detect(
        &mut self,
        place: &Place,
        at: Option<ReportedAt>,
        now: Timestamp,
    ) -> Vec<DeviceEvent> {
        let window = self.config.detect_window;
        let n = self.unexplained.get(place).map_or(0, |q| {
            q.iter()
                .filter(|(t, _)| now.since(*t) <= window && *t <= now)
                .count()
        });
        let wanted = self.config.severity_for(n);
        let current = self.reported.get(place).cloned();
        match (wanted, current) {
            // Raised where the caller says it sits, or escalated or de-escalated where it is.
            (Some(sev), current) => {
                let at = match (current, at) {
                    (Some((_, was)), _) if was == sev => return Vec::new(),
                    (Some((at, _)), _) | (None, Some(at)) => at,
                    (None, None) => return Vec::new(),
                };
                let text = format!(
                    "{n} unexplained complaints from {place} within {}",
                    humantime::format_duration(window)
                );
                let e = reported_event(&at, EventKind::Complaints, Some(sev), text, now);
                self.reported.insert(place.clone(), (at, sev));
                vec![e]
            }
            (None, Some((at, _))) if n == 0 => {
                self.reported.remove(place);
                let text = format!(
                    "no complaint from {place} for {}",
                    humantime::format_duration(window)
                );
                vec![reported_event(
                    &at,
                    EventKind::ComplaintsStopped,
                    None,
                    text,
                    now,
                )]
            }
            (None, _) => Vec::new(),
        }
    }

    fn flag_targets(&self, c: &mut Complaint, now: Timestamp) {
        flag(&self.config, c, now);
    }

    /// Complaints counting towards `customer_reported` alarms now, per alarm element.
    pub fn reported(&self) -> impl Iterator<Item = (&Place, &ReportedAt)> {
        self.reported.iter().map(|(p, (a, _))| (p, a))
    }
}

/// Sets the breach flags a complaint has earned by `now` (or by its ack or resolution).
fn flag(config: &ComplaintsConfig, c: &mut Complaint, now: Timestamp) {
    let due = |within: std::time::Duration, done: Option<Timestamp>| {
        done.unwrap_or(now).since(c.received_at) > within
    };
    c.respond_breached |= due(config.respond_within, c.acked_at);
    c.resolve_breached |= due(config.resolve_within, c.resolved_at);
}

fn reported_event(
    at: &ReportedAt,
    kind: EventKind,
    severity: Option<Severity>,
    text: String,
    now: Timestamp,
) -> DeviceEvent {
    DeviceEvent {
        device: at.device.clone(),
        object: at.object.clone(),
        kind,
        at: now,
        text,
        severity,
    }
}
