//! Services: which alarms count for which member, and how members make a status.
//!
//! [`ServiceModel`] is compiled from config (members resolved to devices once, so a transition
//! looks up its services in a map instead of walking every rule); [`ServiceBoard`] holds, per
//! member, the active alarms that count and at what severity, and recomputes the services an
//! alarm touched, then the services above them.

use std::collections::{BTreeMap, HashMap};

use crate::config::{Config, MemberConfig, Reduce, ServiceConfig, Topology};
use crate::model::{Alarm, AlarmId, FastMap, ServiceStatus, Severity, glob};

/// Most alarms a service lists as explaining its status (the worst first).
pub const MAX_UNDERLYING: usize = 50;

#[derive(Debug, Clone)]
struct Member {
    /// A child service, by index; `None` for members made of devices.
    service: Option<usize>,
    /// With a device member: only objects matching this.
    object: Option<String>,
    weight: f64,
    ignore: Vec<crate::model::Category>,
    cap: Option<Severity>,
    fix: Option<Severity>,
}

impl Member {
    /// The severity an alarm counts at for this member, or `None` if it does not count.
    fn counts(&self, alarm: &Alarm) -> Option<Severity> {
        if self.ignore.contains(&alarm.category)
            || self
                .object
                .as_ref()
                .is_some_and(|g| !glob(g, &alarm.object))
        {
            return None;
        }
        let s = alarm.perceived_severity;
        Some(match (self.fix, self.cap) {
            (Some(f), _) => f,
            (None, Some(c)) => s.min(c),
            (None, None) => s,
        })
    }
}

#[derive(Debug, Clone)]
struct Service {
    config: ServiceConfig,
    members: Vec<Member>,
    /// Services this one is a member of.
    parents: Vec<usize>,
}

/// The services of a config, compiled.
#[derive(Debug, Clone, Default)]
pub struct ServiceModel {
    services: Vec<Service>,
    /// Children before parents, so one pass recomputes a tree.
    order: Vec<usize>,
    /// Device → the (service, member) pairs whose devices include it.
    by_device: FastMap<String, Vec<(usize, usize)>>,
}

impl ServiceModel {
    /// Compiles `[[service]]` against the topology; config validation refused unknown names
    /// and loops, so what does not resolve here is skipped.
    pub fn new(config: &Config, topology: &Topology) -> Self {
        let index: HashMap<&str, usize> = config
            .services
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.as_str(), i))
            .collect();
        let mut by_device: FastMap<String, Vec<(usize, usize)>> = FastMap::default();
        let mut services: Vec<Service> = config
            .services
            .iter()
            .map(|s| Service {
                config: s.clone(),
                members: Vec::new(),
                parents: Vec::new(),
            })
            .collect();
        for (si, s) in config.services.iter().enumerate() {
            for (mi, m) in s.members.iter().enumerate() {
                let child = m.service.as_deref().and_then(|n| index.get(n).copied());
                if let Some(c) = child {
                    services[c].parents.push(si);
                }
                for device in topology.names().filter(|d| covers(m, topology, d)) {
                    by_device
                        .entry(device.to_owned())
                        .or_default()
                        .push((si, mi));
                }
                services[si].members.push(Member {
                    service: child,
                    object: m.object.clone(),
                    weight: m.weight,
                    ignore: m.ignore.clone(),
                    cap: m.cap,
                    fix: m.fix,
                });
            }
        }
        let order = children_first(&services);
        Self {
            services,
            order,
            by_device,
        }
    }

    /// Number of services.
    pub fn len(&self) -> usize {
        self.services.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
    }

    /// A service's index by name.
    pub fn index(&self, name: &str) -> Option<usize> {
        self.services.iter().position(|s| s.config.name == name)
    }

    /// A service's config.
    pub fn config(&self, service: usize) -> &ServiceConfig {
        &self.services[service].config
    }

    /// The names of the services above `service`, nearest first.
    pub fn parents(&self, service: usize) -> Vec<String> {
        self.services[service]
            .parents
            .iter()
            .map(|p| self.services[*p].config.name.clone())
            .collect()
    }

    /// The services an alarm counts for, and every service above them, by index, sorted.
    pub fn touched_by(&self, alarm: &Alarm) -> Vec<usize> {
        let mut out: Vec<usize> = self
            .by_device
            .get(&alarm.device)
            .into_iter()
            .flatten()
            .filter(|(s, m)| self.services[*s].members[*m].counts(alarm).is_some())
            .map(|(s, _)| *s)
            .collect();
        let mut i = 0;
        while i < out.len() {
            for p in &self.services[out[i]].parents {
                if !out.contains(p) {
                    out.push(*p);
                }
            }
            i += 1;
        }
        out.sort_unstable();
        out
    }

    /// Names of [`ServiceModel::touched_by`].
    pub fn names(&self, services: &[usize]) -> Vec<String> {
        services
            .iter()
            .map(|s| self.services[*s].config.name.clone())
            .collect()
    }
}

/// Whether member `m` (a device, site or tag member) includes `device`.
fn covers(m: &MemberConfig, topology: &Topology, device: &str) -> bool {
    match (&m.device, &m.object, &m.site, &m.tag) {
        // An interface member is the device's own objects; a device member is its subtree.
        (Some(d), Some(_), ..) => d == device,
        (Some(d), None, ..) => topology.is_under(device, d),
        (_, _, Some(s), _) => topology.site(device) == Some(s.as_str()),
        (_, _, _, Some(t)) => topology.has_tag(device, t),
        _ => false,
    }
}

/// Services in an order where every member service comes before the services it is in.
fn children_first(services: &[Service]) -> Vec<usize> {
    fn visit(i: usize, services: &[Service], seen: &mut [bool], out: &mut Vec<usize>) {
        if seen[i] {
            return;
        }
        seen[i] = true;
        for m in &services[i].members {
            if let Some(c) = m.service {
                visit(c, services, seen, out);
            }
        }
        out.push(i);
    }
    let mut seen = vec![false; services.len()];
    let mut out = Vec::with_capacity(services.len());
    for i in 0..services.len() {
        visit(i, services, &mut seen, &mut out);
    }
    out
}

/// A service's status as the board computes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// ok, degraded or down.
    pub status: ServiceStatus,
    /// See [`crate::model::ServiceState::severity`].
    pub severity: Severity,
    /// The alarms that explain it, worst first, at most [`MAX_UNDERLYING`].
    pub underlying: Vec<AlarmId>,
}

impl Default for Status {
    fn default() -> Self {
        Self {
            status: ServiceStatus::Ok,
            severity: Severity::Cleared,
            underlying: Vec::new(),
        }
    }
}

/// The members' counting alarms and the services' statuses.
#[derive(Debug, Clone, Default)]
pub struct ServiceBoard {
    /// Per service, per member: counting alarm → severity it counts at.
    members: Vec<Vec<BTreeMap<AlarmId, Severity>>>,
    status: Vec<Status>,
}

impl ServiceBoard {
    /// An empty board for `model`: every service ok.
    pub fn new(model: &ServiceModel) -> Self {
        Self {
            members: model
                .services
                .iter()
                .map(|s| vec![BTreeMap::new(); s.members.len()])
                .collect(),
            status: vec![Status::default(); model.services.len()],
        }
    }

    /// The current status of a service.
    pub fn status(&self, service: usize) -> &Status {
        &self.status[service]
    }

    /// Takes an alarm as it is after a transition (a cleared alarm stops counting). Returns
    /// the services whose members changed, sorted.
    pub fn apply(&mut self, model: &ServiceModel, alarm: &Alarm) -> Vec<usize> {
        let mut changed = Vec::new();
        for (s, m) in model.by_device.get(&alarm.device).into_iter().flatten() {
            let slot = &mut self.members[*s][*m];
            let counts = (!alarm.is_cleared())
                .then(|| model.services[*s].members[*m].counts(alarm))
                .flatten();
            let moved = match counts {
                Some(sev) => slot.insert(alarm.alarm_id, sev) != Some(sev),
                None => slot.remove(&alarm.alarm_id).is_some(),
            };
            if moved && !changed.contains(s) {
                changed.push(*s);
            }
        }
        changed.sort_unstable();
        changed
    }

    /// Recomputes the services whose members changed (`direct`, sorted), then, children
    /// first, every service above one whose status changed; a parent whose children all kept
    /// their status is not evaluated again. Returns the services whose status changed.
    pub fn recompute(&mut self, model: &ServiceModel, direct: &[usize]) -> Vec<usize> {
        let mut changed: Vec<usize> = Vec::new();
        for &s in &model.order {
            let due = direct.binary_search(&s).is_ok()
                || model.services[s]
                    .members
                    .iter()
                    .any(|m| m.service.is_some_and(|c| changed.contains(&c)));
            if !due {
                continue;
            }
            let next = self.evaluate(model, s);
            if next != self.status[s] {
                self.status[s] = next;
                changed.push(s);
            }
        }
        changed
    }

    fn evaluate(&self, model: &ServiceModel, s: usize) -> Status {
        let service = &model.services[s];
        let c = &service.config;
        // Each member's severity.
        let member_severity = |mi: usize, m: &Member| match m.service {
            Some(child) => {
                let st = &self.status[child];
                match (m.fix, m.cap) {
                    (Some(f), _) if st.status != ServiceStatus::Ok => f,
                    (None, Some(cap)) => st.severity.min(cap),
                    _ => st.severity,
                }
            }
            None => self.members[s][mi]
                .values()
                .copied()
                .max()
                .unwrap_or(Severity::Cleared),
        };
        let sev: Vec<Severity> = service
            .members
            .iter()
            .enumerate()
            .map(|(mi, m)| member_severity(mi, m))
            .collect();
        let worst = sev.iter().copied().max().unwrap_or(Severity::Cleared);
        let at = c.severity;
        let hit = |v: &Severity| *v >= at;
        let down = match c.reduce {
            Reduce::Highest => worst >= at,
            Reduce::KOfN => sev.iter().filter(|v| hit(v)).count() >= c.k.unwrap_or(1),
            Reduce::Percent => {
                let n = sev.len().max(1) as f64;
                sev.iter().filter(|v| hit(v)).count() as f64 * 100.0 / n
                    >= c.percent.unwrap_or(100.0)
            }
            Reduce::Weighted => {
                let total: f64 = service.members.iter().map(|m| m.weight).sum();
                let down: f64 = service
                    .members
                    .iter()
                    .zip(&sev)
                    .filter(|(_, v)| hit(v))
                    .map(|(m, _)| m.weight)
                    .sum();
                total > 0.0 && down / total >= c.share.unwrap_or(1.0)
            }
        };
        let (status, severity) = if down {
            (ServiceStatus::Down, Severity::Critical)
        } else if worst >= c.degraded_at {
            (ServiceStatus::Degraded, worst.min(Severity::Major))
        } else {
            (ServiceStatus::Ok, Severity::Cleared)
        };
        let underlying = if status == ServiceStatus::Ok {
            Vec::new()
        } else {
            self.explaining(service, s, &sev, c.degraded_at)
        };
        Status {
            status,
            severity,
            underlying,
        }
    }

    /// The alarms behind a service's members at `degraded_at` or worse: the worst first (then
    /// in member order, a child service's in its own order, a device member's by id), each
    /// once, at most [`MAX_UNDERLYING`]. Bucketed by severity rather than sorted: a national
    /// service over regions gathers hundreds, and this runs on every transition under it.
    fn explaining(
        &self,
        service: &Service,
        s: usize,
        sev: &[Severity],
        degraded_at: Severity,
    ) -> Vec<AlarmId> {
        // Index by severity rank: Critical (5) down to Cleared (0).
        let mut buckets: [Vec<AlarmId>; 6] = Default::default();
        for (mi, m) in service.members.iter().enumerate() {
            match m.service {
                Some(child) if sev[mi] >= degraded_at => {
                    buckets[sev[mi] as usize].extend(&self.status[child].underlying);
                }
                Some(_) => {}
                None => {
                    for (a, v) in &self.members[s][mi] {
                        if *v >= degraded_at {
                            buckets[*v as usize].push(*a);
                        }
                    }
                }
            }
        }
        let mut out: Vec<AlarmId> = Vec::with_capacity(MAX_UNDERLYING);
        for a in buckets.iter().rev().flatten() {
            if !out.contains(a) {
                out.push(*a);
                if out.len() == MAX_UNDERLYING {
                    break;
                }
            }
        }
        out
    }

    /// Sets a service's status as it was committed (at start), so an unchanged status is not
    /// published again.
    pub fn restore(&mut self, service: usize, status: Status) {
        self.status[service] = status;
    }
}
