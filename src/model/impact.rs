//! Services and customers behind alarms: what an alarm touches, what a fault cost, and a
//! service's status.

use serde::{Deserialize, Serialize};

use super::{AlarmId, Severity, Timestamp};

/// The services and customers one alarm touches, as of its latest transition.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Impact {
    /// Services whose members the alarm matches, and the services above them, by name.
    pub services: Vec<String>,
    /// Customers behind the alarmed element and everything below it; 0 below `[impact]
    /// affecting` (a warning is not an outage).
    pub customers: u64,
    /// The root-cause alarm this one is suppressed under, where its customers are counted:
    /// totals add only alarms with none, so nobody is counted twice.
    pub counted_in: Option<AlarmId>,
    /// The proactive notice this transition sends to customer service, if it sends one.
    pub notice: Option<Notice>,
}

/// A proactive notice for customer service (a CRM, an IVR): a fault big enough to tell callers
/// about, as it opens, grows or shrinks, and ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notice {
    /// `opened`, `updated` or `closed`.
    pub kind: NoticeKind,
    /// The fault it is about.
    pub fault: super::FaultId,
    /// Customers affected now (0 when closed).
    pub customers: u64,
    /// The sites whose customers are behind it (at most 50), for routing callers by area.
    pub sites: Vec<String>,
    /// Services it touches that are down.
    pub services_down: Vec<String>,
    /// Since when.
    pub since: Timestamp,
    /// When service should be back by the tier's restore target.
    pub restore_by: Option<Timestamp>,
    /// Whether it is planned work.
    pub maintenance: bool,
}

/// What a notice says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    /// A fault crossed the notice size: tell callers.
    Opened,
    /// It grew or shrank by a tenth or more, or its down services changed.
    Updated,
    /// It ended (or no longer affects enough customers).
    Closed,
}

impl Impact {
    /// Customers this alarm adds to totals: none when counted at its root cause.
    pub fn counted(&self) -> u64 {
        if self.counted_in.is_some() {
            0
        } else {
            self.customers
        }
    }
}

/// What a fault cost customers over its life.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultImpact {
    /// Every service the fault touched, by name.
    pub services: Vec<String>,
    /// Customers it counts now (see [`Impact::counted`]).
    pub customers: u64,
    /// The most it ever counted.
    pub peak_customers: u64,
    /// Customer-seconds lost: customers counted times how long, summed up to `since`.
    pub customer_seconds: u64,
    /// When `customers` last changed (or the fault was raised): accrual runs from here.
    pub since: Timestamp,
    /// The customers and down services of the open notice, if one is open.
    pub noticed: Option<(u64, Vec<String>)>,
}

impl FaultImpact {
    /// Customer-minutes lost, rounded.
    pub fn customer_minutes(&self) -> u64 {
        (self.customer_seconds + 30) / 60
    }

    /// Moves accrual to `now` with `customers` counted from then on, and records `services`.
    pub fn accrue(&mut self, now: Timestamp, customers: u64, services: &[String]) {
        if now > self.since {
            let secs = now.since(self.since).as_secs();
            self.customer_seconds = self
                .customer_seconds
                .saturating_add(self.customers.saturating_mul(secs));
            self.since = now;
        }
        self.customers = customers;
        self.peak_customers = self.peak_customers.max(customers);
        for s in services {
            if !self.services.contains(s) {
                self.services.push(s.clone());
            }
        }
    }
}

/// Whether a service works, from its members' alarms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceStatus {
    /// No member is at or above the service's `degraded-at`.
    Ok,
    /// Some member is, but the service's reduce rule does not say down.
    Degraded,
    /// The reduce rule says the service is down.
    Down,
}

impl ServiceStatus {
    /// Name, as in the API and on MQTT.
    pub fn name(self) -> &'static str {
        match self {
            ServiceStatus::Ok => "ok",
            ServiceStatus::Degraded => "degraded",
            ServiceStatus::Down => "down",
        }
    }
}

named_enum!(
    ServiceStatus,
    "service status",
    [
        ServiceStatus::Ok,
        ServiceStatus::Degraded,
        ServiceStatus::Down
    ]
);

/// A service's status as committed, in the shape of TM Forum's ServiceProblem where it fits
/// (`affectedService`, `underlyingAlarm`, `timeRaised`, `timeChanged`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceState {
    /// The service's name.
    pub name: String,
    /// ok, degraded or down.
    pub status: ServiceStatus,
    /// `CRITICAL` when down; the worst member's (at most `MAJOR`) when degraded; `CLEARED` ok.
    pub severity: Severity,
    /// The services this one makes up, by name (its parents in the service tree).
    pub affected_service: Vec<String>,
    /// The alarms that explain the status, worst first.
    pub underlying_alarm: Vec<AlarmId>,
    /// Customers attached to the service itself (not through its devices).
    pub customers: u64,
    /// When the current problem began (`None` while ok).
    pub time_raised: Option<Timestamp>,
    /// When the status last changed.
    pub time_changed: Timestamp,
    /// Sequence number of the alarm transition that changed it: the MQTT publisher's cursor.
    pub seq: u64,
}

/// Longest customer id, in bytes.
pub const MAX_CUSTOMER_ID: usize = 128;

/// A customer id as given (a CSV row, a complaint, a lookup): trimmed, not empty, not too
/// long, no control characters.
pub fn check_customer_id(id: &str) -> Result<&str, String> {
    let id = id.trim();
    if id.is_empty() {
        return Err("the customer id is empty".to_owned());
    }
    if id.len() > MAX_CUSTOMER_ID {
        return Err(format!(
            "the customer id is {} bytes; at most {MAX_CUSTOMER_ID}",
            id.len()
        ));
    }
    if id.chars().any(char::is_control) {
        return Err("the customer id contains control characters".to_owned());
    }
    Ok(id)
}

/// Who or where a complaint or a lookup is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// A customer by id (their place is the import's to say).
    Customer(String),
    /// A site, a cell or a service.
    Place(Place),
}

impl Subject {
    /// The one of `customer`, `site`, `cell` (DEVICE/CELL) and `service` that is given, as the
    /// API and scenarios spell them; more or fewer than one, a bad customer id or a malformed
    /// place is an error in words. Whether it exists is the network's and the store's to say.
    pub fn named(
        customer: Option<&str>,
        site: Option<&str>,
        cell: Option<&str>,
        service: Option<&str>,
    ) -> Result<Self, String> {
        let given = [
            ("customer", customer),
            ("site", site),
            ("cell", cell),
            ("service", service),
        ];
        let mut given = given.into_iter().filter_map(|(k, v)| v.map(|v| (k, v)));
        match (given.next(), given.next()) {
            (Some(("customer", id)), None) => Ok(Self::Customer(check_customer_id(id)?.to_owned())),
            (Some((kind, value)), None) => Place::from_kind(kind, value).map(Self::Place),
            _ => Err(
                "expected exactly one of customer, site, cell (DEVICE/CELL) or service".to_owned(),
            ),
        }
    }
}

/// Where customers are reached: a site, a cell (a base station and its cell id) or a service.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Place {
    /// Every device at the site serves it.
    Site(String),
    /// One cell of a base station.
    Cell {
        /// The base station.
        device: String,
        /// Its cell id.
        cell: String,
    },
    /// A service as a whole (an enterprise VPN's account).
    Service(String),
}

impl Place {
    /// The alarm object of a cell: `cell=ID`.
    pub const CELL_OBJECT: &'static str = "cell=";

    /// Reads `site`, `cell` (`DEVICE/CELL`) or `service` by its form only (whether it exists
    /// is the network's to say).
    pub fn from_kind(kind: &str, value: &str) -> Result<Place, String> {
        let value = value.trim();
        let shown = super::printable;
        if value.is_empty() {
            return Err(format!("the {} is empty", shown(kind)));
        }
        match kind {
            "site" => Ok(Place::Site(value.to_owned())),
            "service" => Ok(Place::Service(value.to_owned())),
            "cell" => {
                let Some((device, cell)) = value.split_once('/') else {
                    return Err(format!(
                        "cell `{}` is not DEVICE/CELL (e.g. enb-1042/3)",
                        shown(value)
                    ));
                };
                if cell.is_empty() || cell.len() > 32 || cell.contains(char::is_whitespace) {
                    return Err(format!(
                        "cell id `{}` must be 1 to 32 characters without spaces",
                        shown(cell)
                    ));
                }
                Ok(Place::Cell {
                    device: device.to_owned(),
                    cell: cell.to_owned(),
                })
            }
            other => Err(format!(
                "unknown place kind `{}`: expected site, cell or service",
                shown(other)
            )),
        }
    }

    /// The cell an alarm object names (`cell=3` → `3`).
    pub fn cell_of(object: &str) -> Option<&str> {
        object.strip_prefix(Self::CELL_OBJECT)
    }
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Place::Site(s) => write!(f, "site {s}"),
            Place::Cell { device, cell } => write!(f, "cell {device}/{cell}"),
            Place::Service(s) => write!(f, "service {s}"),
        }
    }
}
