//! Customers: the CRM export's rows checked against the network, customer ids kept as keys
//! (raw or hashed), and the customers behind each element.
//!
//! Impact keeps **counts per place** in memory, never customers: a place is a site, a cell or a
//! service, so memory is bounded by the network (sites + cells + services), not by 10 million
//! subscribers. Each customer has exactly one place (a row for a customer already imported
//! moves it), which is what makes counts exact: no customer is in two places to be counted
//! twice.

use std::collections::{HashMap, HashSet};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::{Config, Topology};
use crate::model::{Alarm, FastMap, Place, Role, check_customer_id};

/// Bytes of a hashed customer key (128 bits: no collision among billions).
const HASHED_KEY: usize = 16;

/// Customers per place.
pub type Counts = HashMap<Place, u64>;

/// How customer ids become store keys: as they are, or HMAC-SHA-256 with a secret key, so
/// the store (and a backup of it) holds no customer id.
#[derive(Clone, Default)]
pub struct CustomerKeys {
    hash_key: Option<Vec<u8>>,
}

impl std::fmt::Debug for CustomerKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.hash_key.is_some() {
            "CustomerKeys(hashed)"
        } else {
            "CustomerKeys(plain)"
        })
    }
}

impl CustomerKeys {
    /// The keys `[impact] hash-key-file` asks for.
    pub fn from_config(config: &crate::config::ImpactConfig) -> Self {
        match &config.hash_key {
            Some(k) => Self::hashed(k.expose().as_bytes()),
            None => Self::plain(),
        }
    }

    /// The customer as a complaint stores it: the id, or the hex of its key when hashed.
    pub fn shown(&self, id: &str) -> String {
        if self.is_hashed() {
            self.key(id).iter().map(|b| format!("{b:02x}")).collect()
        } else {
            id.to_owned()
        }
    }

    /// Keys that are the ids themselves.
    pub fn plain() -> Self {
        Self { hash_key: None }
    }

    /// Keys that are keyed hashes of the ids.
    pub fn hashed(key: &[u8]) -> Self {
        Self {
            hash_key: Some(key.to_vec()),
        }
    }

    /// Whether ids are hashed.
    pub fn is_hashed(&self) -> bool {
        self.hash_key.is_some()
    }

    /// The store key of a customer id.
    pub fn key(&self, id: &str) -> Vec<u8> {
        match &self.hash_key {
            None => id.as_bytes().to_vec(),
            Some(k) => {
                // HMAC takes a key of any length; `new_from_slice` cannot fail for it.
                let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(k) else {
                    return id.as_bytes().to_vec();
                };
                mac.update(id.as_bytes());
                mac.finalize().into_bytes()[..HASHED_KEY].to_vec()
            }
        }
    }
}

/// The places a customer row may name: the config's sites, base stations and services.
#[derive(Debug, Clone, Default)]
pub struct Places {
    sites: HashSet<String>,
    base_stations: HashSet<String>,
    services: HashSet<String>,
}

impl Places {
    /// The places of a config.
    pub fn new(config: &Config) -> Self {
        Self {
            sites: config
                .devices
                .iter()
                .filter_map(|d| d.site.clone())
                .collect(),
            base_stations: config
                .devices
                .iter()
                .filter(|d| d.role == Role::BaseStation)
                .map(|d| d.name.clone())
                .collect(),
            services: config.services.iter().map(|s| s.name.clone()).collect(),
        }
    }

    /// Reads `site`, `cell` (`DEVICE/CELL`) or `service` and checks it exists.
    pub fn parse(&self, kind: &str, value: &str) -> Result<Place, String> {
        let place = Place::from_kind(kind, value)?;
        self.check(&place)?;
        Ok(place)
    }

    /// Whether a place exists in the network: its site, base station or service.
    pub fn check(&self, place: &Place) -> Result<(), String> {
        match place {
            Place::Site(s) if !self.sites.contains(s) => {
                Err(format!("unknown site `{}`", printable(s)))
            }
            Place::Service(s) if !self.services.contains(s) => {
                Err(format!("unknown service `{}`", printable(s)))
            }
            Place::Cell { device, cell } if !self.base_stations.contains(device) => Err(format!(
                "unknown cell `{}/{}`: `{}` is not a base station",
                printable(device),
                printable(cell),
                printable(device)
            )),
            _ => Ok(()),
        }
    }
}

fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    crate::model::printable(s)
}

/// One bad row of an import.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RowError {
    /// 1-based line in the file.
    pub line: u64,
    /// What is wrong.
    pub message: String,
}

/// Most row errors an import reports (the rest are counted).
pub const MAX_ROW_ERRORS: usize = 20;

/// A checked import: every row's customer key and place, or the rows that are wrong.
#[derive(Debug, Default)]
pub struct Parsed {
    /// Key and place of each good row, in file order.
    pub rows: Vec<(Vec<u8>, Place)>,
    /// The first [`MAX_ROW_ERRORS`] bad rows.
    pub errors: Vec<RowError>,
    /// How many rows were bad in all.
    pub bad: u64,
}

/// Reads a CSV export: a header naming `customer` and one or more of `site`, `cell` and
/// `service`, then rows with exactly one place filled in. `first_line` is the file line of the
/// header, so a file sent in parts names its own lines.
pub fn parse_csv(data: &[u8], first_line: u64, places: &Places, keys: &CustomerKeys) -> Parsed {
    let mut out = Parsed::default();
    let bad = |out: &mut Parsed, line: u64, message: String| {
        out.bad += 1;
        if out.errors.len() < MAX_ROW_ERRORS {
            out.errors.push(RowError { line, message });
        }
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(data);
    let mut records = reader.byte_records();
    let header = match records.next() {
        Some(Ok(h)) => h,
        Some(Err(e)) => {
            bad(&mut out, first_line, format!("unreadable header: {e}"));
            return out;
        }
        None => {
            bad(
                &mut out,
                first_line,
                "empty file: expected a header such as `customer,site`".to_owned(),
            );
            return out;
        }
    };
    let mut customer = None;
    let mut kinds: Vec<(usize, &'static str)> = Vec::new();
    for (i, name) in header.iter().enumerate() {
        match name.to_ascii_lowercase().as_slice() {
            b"customer" => customer = Some(i),
            b"site" => kinds.push((i, "site")),
            b"cell" => kinds.push((i, "cell")),
            b"service" => kinds.push((i, "service")),
            other => {
                let name = String::from_utf8_lossy(other).into_owned();
                bad(
                    &mut out,
                    first_line,
                    format!(
                        "unknown column `{}`: expected customer, site, cell or service",
                        printable(&name)
                    ),
                );
            }
        }
    }
    let Some(customer) = customer.filter(|_| !kinds.is_empty()) else {
        bad(
            &mut out,
            first_line,
            "the header must name `customer` and at least one of site, cell or service".to_owned(),
        );
        return out;
    };
    if out.bad > 0 {
        return out;
    }
    for record in records {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e
                    .position()
                    .map_or(first_line, |p| first_line + p.line() - 1);
                bad(&mut out, line, format!("unreadable row: {e}"));
                continue;
            }
        };
        let line = record
            .position()
            .map_or(first_line, |p| first_line + p.line() - 1);
        let field = |i: usize| std::str::from_utf8(record.get(i).unwrap_or_default());
        let row = (|| {
            let id = field(customer).map_err(|_| "the customer id is not UTF-8".to_owned())?;
            let id = check_customer_id(id)?;
            let mut filled = kinds
                .iter()
                .filter(|(i, _)| record.get(*i).is_some_and(|v| !v.is_empty()));
            let (Some((i, kind)), None) = (filled.next(), filled.next()) else {
                return Err("expected exactly one of site, cell or service".to_owned());
            };
            let value = field(*i).map_err(|_| format!("the {kind} is not UTF-8"))?;
            Ok((keys.key(id), places.parse(kind, value)?))
        })();
        match row {
            Ok(r) => out.rows.push(r),
            Err(message) => bad(&mut out, line, message),
        }
    }
    out
}

/// Customers behind each element, from the counts.
///
/// A cell's customers are behind its base station. A site's customers are behind its
/// **anchor**: the lowest device that every device of the site hangs from (for a one-device
/// site, that device; for a hub with a router and base stations under it, the router). Each
/// customer is so behind exactly one device and its ancestors, and alarms on devices whose
/// subtrees do not nest never count anyone twice. A site whose devices hang from different
/// tops has no common device; its first device (in config order) anchors it.
#[derive(Debug, Clone, Default)]
pub struct Reach {
    subtree: FastMap<String, u64>,
    /// Per device, the first [`MAX_SITES`] sites with customers behind it, nearest first.
    sites: FastMap<String, Vec<String>>,
    cells: FastMap<(String, String), u64>,
    services: HashMap<String, u64>,
    total: u64,
}

impl Reach {
    /// Precomputes the totals; O(devices × depth), done when counts or the topology change,
    /// so an alarm's count is one map lookup.
    pub fn new(topology: &Topology, counts: &Counts) -> Self {
        let mut own: HashMap<&str, u64> = HashMap::new();
        let mut cells = FastMap::default();
        let mut services = HashMap::new();
        let mut site_devices: HashMap<&str, Vec<&str>> = HashMap::new();
        for d in topology.names_in_order() {
            if let Some(s) = topology.site(d) {
                site_devices.entry(s).or_default().push(d);
            }
        }
        let mut anchored: FastMap<String, Vec<String>> = FastMap::default();
        for (place, n) in counts {
            match place {
                Place::Site(s) => {
                    if let Some(anchor) = site_devices
                        .get(s.as_str())
                        .and_then(|ds| anchor(topology, ds))
                    {
                        *own.entry(anchor).or_default() += n;
                        anchored
                            .entry(anchor.to_owned())
                            .or_default()
                            .push(s.clone());
                    }
                }
                Place::Cell { device, cell } => {
                    if let Some(d) = topology.name(device) {
                        *own.entry(d).or_default() += n;
                    }
                    cells.insert((device.clone(), cell.clone()), *n);
                }
                Place::Service(s) => {
                    services.insert(s.clone(), *n);
                }
            }
        }
        let mut subtree: FastMap<String, u64> = FastMap::default();
        for (d, n) in own {
            for up in topology.ancestors_or_self(d) {
                *subtree.entry(up.to_owned()).or_default() += n;
            }
        }
        for sites in anchored.values_mut() {
            sites.sort();
        }
        let mut children: FastMap<String, Vec<String>> = FastMap::default();
        for d in topology.names_in_order() {
            if let Some(parent) = topology.ancestors_or_self(d).nth(1) {
                children
                    .entry(parent.to_owned())
                    .or_default()
                    .push(d.to_owned());
            }
        }
        let sites = topology
            .names()
            .filter(|d| subtree.get(*d).is_some_and(|n| *n > 0))
            .map(|d| (d.to_owned(), nearest_sites(d, &anchored, &children)))
            .filter(|(_, s)| !s.is_empty())
            .collect();
        Self {
            subtree,
            sites,
            cells,
            services,
            total: counts.values().sum(),
        }
    }

    /// Customers behind a device and everything below it.
    pub fn behind(&self, device: &str) -> u64 {
        self.subtree.get(device).copied().unwrap_or(0)
    }

    /// The sites with customers behind an alarm's element (at most [`MAX_SITES`], nearest
    /// first): the area a notice tells callers about.
    pub fn sites_behind(&self, topology: &Topology, alarm: &Alarm) -> Vec<String> {
        if Place::cell_of(&alarm.object).is_some() {
            return topology
                .site(&alarm.device)
                .map(str::to_owned)
                .into_iter()
                .collect();
        }
        self.sites.get(&alarm.device).cloned().unwrap_or_default()
    }

    /// Customers of one cell.
    pub fn cell(&self, device: &str, cell: &str) -> u64 {
        self.cells
            .get(&(device.to_owned(), cell.to_owned()))
            .copied()
            .unwrap_or(0)
    }

    /// Customers attached to a service itself.
    pub fn service(&self, name: &str) -> u64 {
        self.services.get(name).copied().unwrap_or(0)
    }

    /// Every customer known.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Customers behind an alarm's element: its cell for a cell object, else its device's
    /// subtree.
    pub fn of_alarm(&self, alarm: &Alarm) -> u64 {
        match Place::cell_of(&alarm.object) {
            Some(cell) => self.cell(&alarm.device, cell),
            None => self.behind(&alarm.device),
        }
    }
}

/// Most sites a notice names.
pub const MAX_SITES: usize = 50;

/// Breadth first from `device`: the sites anchored at it, then at its children, and so on,
/// until [`MAX_SITES`].
fn nearest_sites(
    device: &str,
    anchored: &FastMap<String, Vec<String>>,
    children: &FastMap<String, Vec<String>>,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut queue = std::collections::VecDeque::from([device]);
    while let Some(d) = queue.pop_front() {
        for s in anchored.get(d).into_iter().flatten() {
            if out.len() == MAX_SITES {
                return out;
            }
            out.push(s.clone());
        }
        queue.extend(children.get(d).into_iter().flatten().map(String::as_str));
    }
    out
}

/// The lowest device every one of `devices` is at or under; else the first of them.
pub fn anchor<'a>(topology: &'a Topology, devices: &[&'a str]) -> Option<&'a str> {
    let first = *devices.first()?;
    topology
        .ancestors_or_self(first)
        .find(|c| devices.iter().all(|d| topology.is_under(d, c)))
        .or(Some(first))
}
