//! Impact: the services and customers behind every alarm, the services' statuses, and what
//! a call-centre lookup needs. Pure: transitions and time in, annotated transitions and
//! service states out; the alarm stage commits both in one transaction.
//!
//! Decisions, in one place:
//! - An alarm affects customers from `[impact] affecting` up (major, by default): X.733's
//!   service-affecting severities. Below it, it still lists the services it touches.
//! - An alarm on `cell=ID` affects that cell's customers; any other alarm affects everyone
//!   behind its device: the sites of the device's subtree (each once) and their cells.
//! - An alarm suppressed under a root cause names it in `countedIn` and adds nothing to totals
//!   or to its fault's customer-minutes: the root's subtree already holds its customers.
//! - Services are reduced from every active alarm, suppressed ones included (a symptom under a
//!   root cause is still an outage for the service); statuses are recomputed per committed
//!   batch, which holds every transition of the batch.

pub mod complaints;
pub mod customers;
mod lookup;
pub mod services;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use crate::config::{Config, Tiers, Topology};
use crate::model::{
    Alarm, AlarmId, CUSTOMER_REPORTED, Complaint, ComplaintLink, FaultId, FaultImpact, FaultRecord,
    Impact, Notice, NoticeKind, Place, ServiceState, ServiceStatus, Severity, Suppression,
    Timestamp, Transition, TransitionKind,
};
use complaints::{ComplaintBook, Effects, ReportedAt};
use customers::{Counts, Reach};
use services::{ServiceBoard, ServiceModel, Status};

pub use lookup::{Affected, ImpactView};

/// The impact state machine.
#[derive(Debug, Default)]
pub struct ImpactEngine {
    affecting: Severity,
    recent: Duration,
    topology: Arc<Topology>,
    sites: Arc<HashMap<String, Vec<String>>>,
    model: ServiceModel,
    board: ServiceBoard,
    reach: Reach,
    counts: Counts,
    /// The committed state of each service, by index.
    states: Vec<ServiceState>,
    /// Alarms that affect customers, active or cleared within `recent` (or the complaint
    /// look-back, if longer): the lookup's and the complaints' answers.
    affected: BTreeMap<AlarmId, Affected>,
    /// Cleared alarms of `affected` in the order they cleared, to let them go when old.
    expiring: VecDeque<(Timestamp, AlarmId)>,
    /// Whether the affected alarms or the service states changed since the last view.
    stale: bool,
    /// Complaints not resolved, and complaint-driven detection.
    book: ComplaintBook,
    notice_customers: u64,
    notice_service_down: bool,
    tiers: Tiers,
    /// The places customers and complaints may name.
    places: customers::Places,
    /// How customer ids become store keys.
    keys: customers::CustomerKeys,
    link_look_back: Duration,
}

impl ImpactEngine {
    /// The engine for a config, customer counts, the active alarms and the service states
    /// last committed (so an unchanged status is not published again at start).
    pub fn new(
        config: &Config,
        counts: Counts,
        alarms: &[Alarm],
        committed: &[ServiceState],
        open_complaints: Vec<Complaint>,
    ) -> Self {
        let mut e = Self {
            counts,
            // Fixed for the run, as the HTTP side's: keys already stored must keep matching.
            keys: customers::CustomerKeys::from_config(&config.impact),
            ..Self::default()
        };
        e.reconfigure(config, alarms, committed);
        let open = open_complaints
            .into_iter()
            .map(|c| {
                let at = e.detected_at(&c.place);
                (c, at)
            })
            .collect();
        e.book = ComplaintBook::new(&config.complaints, open);
        // `customer_reported` alarms still active are the book's to clear.
        for a in alarms.iter().filter(|a| a.condition == CUSTOMER_REPORTED) {
            if let Some(place) = reported_place(a) {
                e.book.restore_reported(place, a);
            }
        }
        e
    }

    /// Takes a new config (SIGHUP): services and the topology are compiled again and the
    /// active alarms re-applied; states of services that still exist carry on.
    pub fn reconfigure(&mut self, config: &Config, alarms: &[Alarm], committed: &[ServiceState]) {
        self.affecting = config.impact.affecting;
        self.recent = config.impact.recent;
        self.link_look_back = config.complaints.link_look_back;
        self.notice_customers = config.impact.notice_customers;
        self.notice_service_down = config.impact.notice_service_down;
        self.tiers = config.tiers.clone();
        self.places = customers::Places::new(config);
        self.book.reconfigure(&config.complaints);
        let topology = Topology::new(&config.devices);
        let mut sites: HashMap<String, Vec<String>> = HashMap::new();
        for d in &config.devices {
            if let Some(s) = &d.site {
                sites.entry(s.clone()).or_default().push(d.name.clone());
            }
        }
        self.sites = Arc::new(sites);
        self.model = ServiceModel::new(config, &topology);
        self.reach = Reach::new(&topology, &self.counts);
        self.topology = Arc::new(topology);
        self.board = ServiceBoard::new(&self.model);
        let previous: HashMap<&str, &ServiceState> = self
            .states
            .iter()
            .chain(committed)
            .map(|s| (s.name.as_str(), s))
            .collect();
        self.states = (0..self.model.len())
            .map(|i| {
                let name = &self.model.config(i).name;
                let mut s = previous
                    .get(name.as_str())
                    .map(|s| (*s).clone())
                    .unwrap_or_else(|| ok_state(name));
                s.affected_service = self.model.parents(i);
                s.customers = self.reach.service(name);
                self.board.restore(
                    i,
                    Status {
                        status: s.status,
                        severity: s.severity,
                        underlying: s.underlying_alarm.clone(),
                    },
                );
                s
            })
            .collect();
        for a in alarms {
            self.board.apply(&self.model, a);
        }
        // The alarms' own statuses are computed at the next batch; what changed while the
        // daemon was down (or with the new config) is published then.
        self.affected
            .retain(|_, a| self.topology.contains(&a.device));
        for a in alarms {
            self.track(a, a.last_seen);
        }
        // The topology, the services or the states may differ: the next batch shows them.
        self.stale = true;
    }

    /// New customer counts (an import): every element's reach is computed again.
    pub fn set_counts(&mut self, counts: Counts) {
        self.reach = Reach::new(&self.topology, &counts);
        self.counts = counts;
        for (i, s) in self.states.iter_mut().enumerate() {
            s.customers = self.reach.service(&self.model.config(i).name);
        }
    }

    /// Customers known, in all.
    pub fn customers(&self) -> u64 {
        self.reach.total()
    }

    /// Fills in each transition's impact and its fault's cost, and returns the service states
    /// that changed and what complaints make of the transitions (links, resolutions,
    /// `customer_reported` clears), to be committed with them.
    pub fn annotate(&mut self, transitions: &mut [Transition]) -> (Vec<ServiceState>, Effects) {
        let mut effects = Effects::default();
        // A fault can change twice in one batch; the second change starts from the first.
        let mut faults: HashMap<FaultId, FaultImpact> = HashMap::new();
        let mut out = Vec::new();
        for t in transitions.iter_mut() {
            let (at, seq) = (t.event.at, t.event.seq);
            if t.event.kind == TransitionKind::HandedOver {
                // Gone from this member as if cleared; its cost runs on with the new owner.
                let mut gone = t.event.alarm.clone();
                gone.alarm_cleared_time = Some(at);
                let direct = self.board.apply(&self.model, &gone);
                for s in self.board.recompute(&self.model, &direct) {
                    out.push(self.commit_status(s, at, seq));
                }
                self.stale |= self.affected.remove(&gone.alarm_id).is_some();
                continue;
            }
            let alarm = &mut t.event.alarm;
            let touched = self.model.touched_by(alarm);
            let customers = if alarm.is_cleared() || alarm.perceived_severity < self.affecting {
                0
            } else {
                self.reach.of_alarm(alarm)
            };
            let counted_in = match alarm.suppressed_by {
                Some(Suppression::RootCause) => alarm.root_cause_alarm_id,
                _ => None,
            };
            alarm.impact = Impact {
                services: self.model.names(&touched),
                customers,
                counted_in,
                notice: None,
            };
            let direct = self.board.apply(&self.model, alarm);
            if !direct.is_empty() {
                // Recomputed now, so a service that goes down and back within one batch (a
                // replay is often one) still has both changes committed and published.
                for s in self.board.recompute(&self.model, &direct) {
                    out.push(self.commit_status(s, at, seq));
                }
            }
            let mut cost = faults
                .remove(&t.fault.id)
                .unwrap_or_else(|| t.fault.impact.clone());
            cost.accrue(at, alarm.impact.counted(), &alarm.impact.services);
            alarm.impact.notice = self.notice(alarm, &touched, &t.fault, &mut cost);
            t.fault.impact = cost.clone();
            faults.insert(t.fault.id, cost);
            let alarm = alarm.clone();
            self.track(&alarm, at);
            if let Some(a) = self.affected.get_mut(&alarm.alarm_id) {
                a.fault = t.fault.id;
                a.customer_minutes = t.fault.impact.customer_minutes();
            }
            if t.event.kind == TransitionKind::Cleared {
                effects.merge(self.book.fault_cleared(t.fault.id, alarm.alarm_id, at));
            } else if let Some(a) = self.affected.get(&alarm.alarm_id)
                && a.cleared_at.is_none()
                && alarm.condition != CUSTOMER_REPORTED
            {
                let (topology, sites) = (&self.topology, &self.sites);
                let explained = self.book.explain(
                    |p| a.covers(p, topology, sites),
                    t.fault.id,
                    alarm.alarm_id,
                    t.fault.raised_at,
                    at,
                );
                effects.merge(explained);
            }
        }
        if let Some(now) = transitions.last().map(|t| t.event.at) {
            let keep = self.recent.max(self.link_look_back);
            while let Some((at, id)) = self.expiring.front().copied() {
                if now.since(at) <= keep {
                    break;
                }
                self.expiring.pop_front();
                if self
                    .affected
                    .get(&id)
                    .is_some_and(|a| a.cleared_at == Some(at))
                {
                    self.affected.remove(&id);
                    self.stale = true;
                }
            }
        }
        (out, effects)
    }

    /// The proactive notice a transition sends, if any (see [`Notice`]): opened when a fault
    /// first affects `[impact] notice-customers` or puts a service down, updated when that
    /// grows or shrinks by a tenth or the down services change, closed at clear or when it
    /// no longer qualifies. `cost` remembers what the open notice said.
    fn notice(
        &self,
        alarm: &Alarm,
        touched: &[usize],
        fault: &FaultRecord,
        cost: &mut FaultImpact,
    ) -> Option<Notice> {
        let counted = alarm.impact.counted();
        let down: Vec<String> = touched
            .iter()
            .filter(|s| self.board.status(**s).status == ServiceStatus::Down)
            .map(|s| self.model.config(*s).name.clone())
            .collect();
        let big = !alarm.is_cleared()
            && ((self.notice_customers > 0 && counted >= self.notice_customers)
                || (self.notice_service_down
                    && !down.is_empty()
                    && alarm.impact.counted_in.is_none()));
        let kind = match (&cost.noticed, big) {
            (None, true) => NoticeKind::Opened,
            (Some((was, was_down)), true)
                if counted.abs_diff(*was) * 10 >= (*was).max(1) || *was_down != down =>
            {
                NoticeKind::Updated
            }
            (Some(_), false) => NoticeKind::Closed,
            _ => return None,
        };
        cost.noticed = big.then(|| (counted, down.clone()));
        let restore = restore_within(&self.tiers, fault.peak_severity);
        Some(Notice {
            kind,
            fault: fault.id,
            customers: if big { counted } else { 0 },
            sites: self.reach.sites_behind(&self.topology, alarm),
            services_down: if big { down } else { Vec::new() },
            since: fault.raised_at,
            restore_by: restore
                .map(|d| Timestamp::from_millis(fault.raised_at.as_millis().saturating_add(d))),
            maintenance: alarm.suppressed_by == Some(Suppression::Maintenance),
        })
    }

    /// Takes the board's new status of a service into its committed state.
    fn commit_status(&mut self, s: usize, at: Timestamp, seq: u64) -> ServiceState {
        self.stale = true;
        let st = self.board.status(s);
        let state = &mut self.states[s];
        state.time_raised = match (state.status, st.status) {
            (_, ServiceStatus::Ok) => None,
            (ServiceStatus::Ok, _) => Some(at),
            _ => state.time_raised,
        };
        state.status = st.status;
        state.severity = st.severity;
        state.underlying_alarm = st.underlying.clone();
        state.time_changed = at;
        state.seq = seq;
        state.clone()
    }

    /// The fault to link a complaint about `place` to: active, or cleared within
    /// `[complaints] link-look-back`; active first, then the most severe.
    pub fn link_for(&self, place: &Place, now: Timestamp) -> Option<ComplaintLink> {
        let best = lookup::reaching(
            self.affected
                .values()
                .filter(|a| a.condition != CUSTOMER_REPORTED),
            place,
            &self.topology,
            &self.sites,
            now,
            self.link_look_back,
        )
        .into_iter()
        .next()?;
        Some(ComplaintLink {
            fault: best.fault,
            alarm: best.alarm_id,
            at: now,
            fault_raised_at: best.raised_at,
        })
    }

    /// Where complaints about `place` are counted, and where its `customer_reported` alarm
    /// sits: a cell's complaints count for its base station's site (one cluster, one alarm).
    pub fn detection(&self, place: &Place) -> (Place, ReportedAt) {
        let detect = self.detected_at(place);
        let at = self.reported_at(&detect);
        (detect, at)
    }

    fn detected_at(&self, place: &Place) -> Place {
        match place {
            Place::Cell { device, .. } => self
                .topology
                .site(device)
                .map_or_else(|| place.clone(), |s| Place::Site(s.to_owned())),
            other => other.clone(),
        }
    }

    /// Where a place's `customer_reported` alarm sits: a cell on its base station, a site on
    /// its anchor device (see [`Reach`]), a service on a pseudo-device named after it.
    fn reported_at(&self, place: &Place) -> ReportedAt {
        match place {
            Place::Cell { device, cell } => ReportedAt {
                device: device.clone(),
                object: format!("{}{cell}", Place::CELL_OBJECT),
            },
            Place::Site(s) => {
                let devices: Vec<&str> = self
                    .sites
                    .get(s)
                    .into_iter()
                    .flatten()
                    .map(String::as_str)
                    .collect();
                ReportedAt {
                    device: customers::anchor(&self.topology, &devices)
                        .unwrap_or(s)
                        .to_owned(),
                    object: format!("{SITE_OBJECT}{s}"),
                }
            }
            Place::Service(name) => ReportedAt {
                device: format!("{SERVICE_DEVICE}{name}"),
                object: format!("{SERVICE_OBJECT}{name}"),
            },
        }
    }

    /// The places customers and complaints may name.
    pub fn places(&self) -> &customers::Places {
        &self.places
    }

    /// How customer ids become store keys.
    pub fn customer_keys(&self) -> &customers::CustomerKeys {
        &self.keys
    }

    /// The complaints, for the stage's commands.
    pub fn complaints(&mut self) -> &mut ComplaintBook {
        &mut self.book
    }

    /// Keeps the lookup's list of customer-affecting alarms up to date with one alarm.
    fn track(&mut self, alarm: &Alarm, at: Timestamp) {
        let affecting = alarm.impact.customers > 0
            || (!alarm.is_cleared() && alarm.perceived_severity >= self.affecting);
        match self.affected.get_mut(&alarm.alarm_id) {
            Some(a) => {
                let was = a.cleared_at;
                a.update(alarm, at);
                self.stale = true;
                if let (None, Some(c)) = (was, a.cleared_at) {
                    self.expiring.push_back((c, alarm.alarm_id));
                }
            }
            None if affecting && !alarm.is_cleared() => {
                self.affected.insert(alarm.alarm_id, Affected::new(alarm));
                self.stale = true;
            }
            None => {}
        }
    }

    /// The committed service states, by index.
    pub fn states(&self) -> &[ServiceState] {
        &self.states
    }

    /// The lookup's snapshot, if anything it shows changed since the last one: a batch of
    /// transitions that touch no customer or service costs no copy of the affected alarms.
    pub fn fresh_view(&mut self) -> Option<ImpactView> {
        std::mem::take(&mut self.stale).then(|| self.view())
    }

    /// What the lookup reads.
    pub fn view(&self) -> ImpactView {
        ImpactView::new(
            self.topology.clone(),
            self.sites.clone(),
            self.affected.values().cloned().collect(),
            self.states.clone(),
            self.recent,
        )
    }
}

/// The tier's restore target of a severity, in ms.
pub fn restore_within(tiers: &Tiers, severity: Severity) -> Option<i64> {
    let t = match severity {
        Severity::Critical => &tiers.critical,
        Severity::Major => &tiers.major,
        Severity::Minor => &tiers.minor,
        Severity::Warning => &tiers.warning,
        Severity::Indeterminate | Severity::Cleared => return None,
    };
    t.restore_within
        .and_then(|d| i64::try_from(d.as_millis()).ok())
}

/// Object of a site's `customer_reported` alarm: `site=NAME`.
pub const SITE_OBJECT: &str = "site=";
/// Object of a service's `customer_reported` alarm: `service=NAME`...
pub const SERVICE_OBJECT: &str = "service=";
/// ...on a pseudo-device `service:NAME`, since a service is no one device.
pub const SERVICE_DEVICE: &str = "service:";

/// The place a `customer_reported` alarm stands for, from its element.
fn reported_place(a: &Alarm) -> Option<Place> {
    if let Some(cell) = Place::cell_of(&a.object) {
        return Some(Place::Cell {
            device: a.device.clone(),
            cell: cell.to_owned(),
        });
    }
    if let Some(site) = a.object.strip_prefix(SITE_OBJECT) {
        return Some(Place::Site(site.to_owned()));
    }
    a.object
        .strip_prefix(SERVICE_OBJECT)
        .map(|s| Place::Service(s.to_owned()))
}

fn ok_state(name: &str) -> ServiceState {
    ServiceState {
        name: name.to_owned(),
        status: ServiceStatus::Ok,
        severity: Severity::Cleared,
        affected_service: Vec::new(),
        underlying_alarm: Vec::new(),
        customers: 0,
        time_raised: None,
        time_changed: Timestamp::from_millis(0),
        seq: 0,
    }
}
