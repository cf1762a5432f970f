//! SNMP poller: IF-MIB counters of every device that has credentials, over snmp2's
//! `AsyncSession` (v2c, or v3 USM with SHA-2/AES), into interface series, oper-status and
//! reachability events, and the agent's round-trip time.
//!
//! One task per device, so a device that never answers only delays itself; a semaphore bounds
//! the requests in flight over all devices (`max-in-flight`), and each device's first poll is
//! offset by a hash of its name so polls spread over the interval. Every request is wrapped in
//! a timeout; after a timeout or any protocol error the session is dropped and the next attempt
//! makes a new one (snmp2 sessions stay off by one request id after a late reply). A walk asks
//! for every column at once, `GETBULK` row by row, and carries each column on from its last OID
//! (agents cap a reply, snmpd at 100 values), so a poll costs few, full requests.

pub mod counters;

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use snmp2::{AsyncSession, Oid, Value};
use tokio::sync::{Notify, Semaphore, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::profile;
use crate::config::{Config, Credential, DeviceConfig, SnmpConfig, SnmpVersion};
use crate::detect::rules::glob;
use crate::ingest::SampleSink;
use crate::message::InterfaceSpeeds;
use crate::model::{DeviceEvent, EventKind, Metric, Sample, SeriesKey, Timestamp};
use crate::telemetry::{Metrics, PollResult, SnmpSkip};
use counters::{Counter, Counters, IfReading, KpiReading, Oper, Reading};

/// Why a poll failed. Each is a metric label.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    /// No answer within the timeout, after every retry.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The request could not be sent or its answer received (e.g. ICMP port unreachable).
    #[error("network error: {0}")]
    Network(String),
    /// The session could not be made (socket, v3 engine discovery).
    #[error("cannot open a session: {0}")]
    Session(String),
    /// The agent answered with an error or something unusable.
    #[error("agent error: {0}")]
    Agent(String),
}

impl PollError {
    fn reason(&self) -> PollResult {
        match self {
            PollError::Timeout(_) => PollResult::Timeout,
            PollError::Network(_) => PollResult::Network,
            PollError::Session(_) => PollResult::Session,
            PollError::Agent(_) => PollResult::Agent,
        }
    }
}

/// IF-MIB columns the poller reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Col {
    Descr,
    Type,
    Admin,
    Oper,
    In32,
    InUcast32,
    InDiscards,
    InErrors,
    Out32,
    OutUcast32,
    OutDiscards,
    OutErrors,
    Name,
    HcIn,
    HcInUcast,
    HcInMcast,
    HcInBcast,
    HcOut,
    HcOutUcast,
    HcOutMcast,
    HcOutBcast,
    HighSpeed,
    Discontinuity,
}

const IF_ENTRY: [u64; 9] = [1, 3, 6, 1, 2, 1, 2, 2, 1];
const IFX_ENTRY: [u64; 10] = [1, 3, 6, 1, 2, 1, 31, 1, 1, 1];

/// (column, table, column number).
const COLUMNS: [(Col, bool, u64); 23] = [
    (Col::Descr, false, 2),
    (Col::Type, false, 3),
    (Col::Admin, false, 7),
    (Col::Oper, false, 8),
    (Col::In32, false, 10),
    (Col::InUcast32, false, 11),
    (Col::InDiscards, false, 13),
    (Col::InErrors, false, 14),
    (Col::Out32, false, 16),
    (Col::OutUcast32, false, 17),
    (Col::OutDiscards, false, 19),
    (Col::OutErrors, false, 20),
    (Col::Name, true, 1),
    (Col::HcIn, true, 6),
    (Col::HcInUcast, true, 7),
    (Col::HcInMcast, true, 8),
    (Col::HcInBcast, true, 9),
    (Col::HcOut, true, 10),
    (Col::HcOutUcast, true, 11),
    (Col::HcOutMcast, true, 12),
    (Col::HcOutBcast, true, 13),
    (Col::HighSpeed, true, 15),
    (Col::Discontinuity, true, 19),
];

fn column_oid(ifx: bool, n: u64) -> Oid<'static> {
    let mut arcs: Vec<u64> = if ifx {
        IFX_ENTRY.to_vec()
    } else {
        IF_ENTRY.to_vec()
    };
    arcs.push(n);
    Oid::from(&arcs).expect("IF-MIB column OIDs are valid")
}

const SYS_UPTIME: [u64; 9] = [1, 3, 6, 1, 2, 1, 1, 3, 0];
const SYS_NAME: [u64; 9] = [1, 3, 6, 1, 2, 1, 1, 5, 0];

/// Values per GETBULK: snmpd's default `maxGetbulkResponses`, and a reply that fits a datagram.
const VALUES_PER_REQUEST: usize = 100;
/// A walk longer than this many requests is cut (a looping agent must not hold a task forever).
const MAX_REQUESTS_PER_WALK: usize = 10_000;

/// Everything one interface row carried, before HC/32-bit columns are resolved.
#[derive(Debug, Default)]
struct Row {
    descr: Option<String>,
    name: Option<String>,
    if_type: Option<u32>,
    admin: Option<i64>,
    oper: Option<i64>,
    high_speed: Option<u64>,
    discontinuity: Option<u32>,
    c32: [Option<u32>; 8],
    hc: [Option<u64>; 8],
}

impl Row {
    fn set(&mut self, col: Col, v: &Value<'_>) {
        let int = match v {
            Value::Integer(n) => Some(*n),
            Value::Unsigned32(n) | Value::Counter32(n) | Value::Timeticks(n) => Some(i64::from(*n)),
            _ => None,
        };
        let c32 = |i: usize, row: &mut Row| {
            if let Value::Counter32(n) = v {
                row.c32[i] = Some(*n);
            }
        };
        let hc = |i: usize, row: &mut Row| {
            if let Value::Counter64(n) = v {
                row.hc[i] = Some(*n);
            }
        };
        let text = || match v {
            Value::OctetString(b) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        };
        match col {
            Col::Descr => self.descr = text(),
            Col::Name => self.name = text().filter(|n| !n.is_empty()),
            Col::Type => self.if_type = int.and_then(|n| u32::try_from(n).ok()),
            Col::Admin => self.admin = int,
            Col::Oper => self.oper = int,
            Col::HighSpeed => self.high_speed = int.and_then(|n| u64::try_from(n).ok()),
            Col::Discontinuity => self.discontinuity = int.and_then(|n| u32::try_from(n).ok()),
            Col::In32 => c32(0, self),
            Col::InUcast32 => c32(1, self),
            Col::InDiscards => c32(2, self),
            Col::InErrors => c32(3, self),
            Col::Out32 => c32(4, self),
            Col::OutUcast32 => c32(5, self),
            Col::OutDiscards => c32(6, self),
            Col::OutErrors => c32(7, self),
            Col::HcIn => hc(0, self),
            Col::HcInUcast => hc(1, self),
            Col::HcInMcast => hc(2, self),
            Col::HcInBcast => hc(3, self),
            Col::HcOut => hc(4, self),
            Col::HcOutUcast => hc(5, self),
            Col::HcOutMcast => hc(6, self),
            Col::HcOutBcast => hc(7, self),
        }
    }

    /// HC columns when the agent has them, 32-bit ones otherwise.
    fn reading(&self, speed_override: Option<u64>) -> IfReading {
        let hc_packets = |a: usize| -> Option<Counter> {
            let parts = [self.hc[a], self.hc[a + 1], self.hc[a + 2]];
            parts
                .iter()
                .any(Option::is_some)
                .then(|| Counter::C64(parts.iter().flatten().fold(0u64, |s, v| s.wrapping_add(*v))))
        };
        let c32 = |i: usize| self.c32[i].map(Counter::C32);
        IfReading {
            name: self.name.clone().or_else(|| self.descr.clone()),
            speed_bps: speed_override
                .or_else(|| self.high_speed.filter(|&s| s > 0).map(|s| s * 1_000_000)),
            admin_up: self.admin.map(|a| a == 1),
            oper: self.oper.map(Oper::from_mib),
            in_octets: self.hc[0].map(Counter::C64).or_else(|| c32(0)),
            out_octets: self.hc[4].map(Counter::C64).or_else(|| c32(4)),
            in_packets: hc_packets(1).or_else(|| c32(1)),
            out_packets: hc_packets(5).or_else(|| c32(5)),
            in_discards: c32(2),
            in_errors: c32(3),
            out_discards: c32(6),
            out_errors: c32(7),
            discontinuity: self.discontinuity,
        }
    }
}

/// One polled device, with what it needs to be polled.
#[derive(Debug, Clone)]
pub struct Target {
    /// Device name.
    pub name: String,
    /// Agent address.
    pub addr: SocketAddr,
    /// Credential.
    pub credential: Credential,
    /// Poll interval.
    pub interval: Duration,
    /// Speed overrides by ifIndex, bit/s.
    pub speeds: HashMap<u32, u64>,
    /// Speed overrides by interface name, bit/s.
    pub speeds_by_name: HashMap<String, u64>,
    /// What to read.
    pub profile: profile::Profile,
}

impl Target {
    /// The polled devices of a config: those with credentials.
    pub fn all(config: &Config) -> Vec<Target> {
        config
            .devices
            .iter()
            .filter_map(|d| Target::of(d, &config.snmp))
            .collect()
    }

    fn of(d: &DeviceConfig, snmp: &SnmpConfig) -> Option<Target> {
        let credential = snmp.credentials.get(d.credentials.as_ref()?)?.clone();
        let bps = |mbps: u64| mbps.saturating_mul(1_000_000);
        let name = d
            .profile
            .as_deref()
            .unwrap_or_else(|| profile::default_for(d.role));
        let profile = snmp.profiles.get(name)?.clone();
        Some(Target {
            profile,
            name: d.name.clone(),
            addr: SocketAddr::new(d.address, d.snmp_port),
            credential,
            interval: d.poll_interval.unwrap_or(snmp.interval),
            speeds: d
                .interfaces
                .iter()
                .filter_map(|i| Some((i.if_index?, bps(i.speed_mbps))))
                .collect(),
            speeds_by_name: d
                .interfaces
                .iter()
                .filter_map(|i| Some((i.name.clone()?, bps(i.speed_mbps))))
                .collect(),
        })
    }
}

/// Polls one agent; its session is made on demand and dropped after any failure.
pub struct Poller {
    target: Target,
    session: Option<AsyncSession>,
    timeout: Duration,
    retries: u32,
    req_id: i32,
    metrics: Arc<Metrics>,
}

/// What one poll brought back.
#[derive(Debug)]
pub struct Polled {
    /// The reading, for [`Counters::update`].
    pub reading: Reading,
    /// Round trip of the sysUpTime request: management-plane latency.
    pub rtt: Duration,
    /// Values (varbinds) fetched.
    pub values: u64,
}

impl Poller {
    /// A poller for `target` with `[snmp]`'s timeout and retries.
    pub fn new(target: Target, snmp: &SnmpConfig, metrics: Arc<Metrics>) -> Self {
        Self {
            target,
            session: None,
            timeout: snmp.timeout,
            retries: snmp.retries,
            req_id: 1,
            metrics,
        }
    }

    /// One poll: sysUpTime and sysName, then every IF-MIB column the filter keeps.
    pub async fn poll(&mut self, filter: &Filter) -> Result<Polled, PollError> {
        poll(self, filter).await
    }

    async fn open(&mut self) -> Result<&mut AsyncSession, PollError> {
        if self.session.is_none() {
            self.metrics.snmp_sessions.inc();
            self.req_id = self.req_id.wrapping_add(1_000);
            let session = open_session(&self.target, self.req_id, self.timeout).await?;
            self.session = Some(session);
        }
        Ok(self.session.as_mut().expect("just made"))
    }

    /// Runs one request with timeout and retries; `read` sees the reply while it is borrowed.
    async fn request<T>(
        &mut self,
        oids: &[Oid<'static>],
        bulk: Option<u32>,
        mut read: impl FnMut(snmp2::Pdu<'_>) -> Result<T, PollError>,
    ) -> Result<T, PollError> {
        let mut last = PollError::Timeout(self.timeout);
        for attempt in 0..=self.retries {
            if attempt > 0 {
                // Back off a little: 100 ms, 200 ms, 400 ms ... capped at one timeout.
                let wait = Duration::from_millis(100 << (attempt - 1).min(6));
                tokio::time::sleep(wait.min(self.timeout)).await;
            }
            let timeout = self.timeout;
            let session = match self.open().await {
                Ok(s) => s,
                Err(e) => {
                    last = e;
                    continue;
                }
            };
            let refs: Vec<&Oid<'_>> = oids.iter().collect();
            let reply = match bulk {
                Some(reps) => tokio::time::timeout(timeout, session.getbulk(&refs, 0, reps)).await,
                None => tokio::time::timeout(timeout, session.get_many(&refs)).await,
            };
            let result = match reply {
                Err(_) => Err(PollError::Timeout(timeout)),
                Ok(Err(e @ (snmp2::Error::Send | snmp2::Error::Receive))) => {
                    Err(PollError::Network(e.to_string()))
                }
                Ok(Err(e)) => Err(PollError::Agent(format!("{e:?}"))),
                Ok(Ok(pdu)) if pdu.error_status != 0 => Err(PollError::Agent(format!(
                    "error-status {} at index {}",
                    pdu.error_status, pdu.error_index
                ))),
                Ok(Ok(pdu)) => read(pdu),
            };
            match result {
                Ok(v) => return Ok(v),
                Err(e) => {
                    // A late reply would leave the session off by one: start over.
                    self.session = None;
                    last = e;
                }
            }
        }
        Err(last)
    }
}

async fn open_session(
    target: &Target,
    req_id: i32,
    timeout: Duration,
) -> Result<AsyncSession, PollError> {
    let c = &target.credential;
    let err = |e: std::io::Error| PollError::Session(e.to_string());
    match c.version {
        SnmpVersion::V2c => {
            let community = c.community.as_ref().map_or("", |s| s.expose());
            AsyncSession::new_v2c(target.addr, community.as_bytes(), req_id)
                .await
                .map_err(err)
        }
        SnmpVersion::V3 => {
            let security = crate::ingest::usm::usm_security(c);
            let mut session = AsyncSession::new_v3(target.addr, req_id, security)
                .await
                .map_err(err)?;
            // Engine discovery is a round trip too.
            match tokio::time::timeout(timeout, session.init()).await {
                Err(_) => Err(PollError::Timeout(timeout)),
                Ok(Err(e)) => Err(PollError::Session(format!("v3 engine discovery: {e:?}"))),
                Ok(Ok(())) => Ok(session),
            }
        }
    }
}

/// Which interfaces a config wants polled.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    include: Vec<String>,
    exclude: Vec<String>,
    types: Vec<u32>,
}

impl Filter {
    /// From `[snmp]`.
    pub fn new(snmp: &SnmpConfig) -> Self {
        Self {
            include: snmp.interface_include.clone(),
            exclude: snmp.interface_exclude.clone(),
            types: snmp.interface_types.clone(),
        }
    }

    fn wants(&self, name: &str, if_type: Option<u32>) -> bool {
        (self.include.is_empty() || self.include.iter().any(|p| glob(p, name)))
            && !self.exclude.iter().any(|p| glob(p, name))
            && (self.types.is_empty() || if_type.is_some_and(|t| self.types.contains(&t)))
    }
}

async fn poll(agent: &mut Poller, filter: &Filter) -> Result<Polled, PollError> {
    let sys = [
        Oid::from(&SYS_UPTIME).expect("valid"),
        Oid::from(&SYS_NAME).expect("valid"),
    ];
    let started = Instant::now();
    let uptime = agent
        .request(&sys, None, |pdu| {
            pdu.varbinds
                .into_iter()
                .find_map(|(_, v)| match v {
                    Value::Timeticks(t) => Some(t),
                    _ => None,
                })
                .ok_or_else(|| PollError::Agent("no sysUpTime in the reply".to_owned()))
        })
        .await?;
    let rtt = started.elapsed();

    let mut rows: HashMap<u32, Row> = HashMap::new();
    let mut fetched = 0u64;
    if agent.target.profile.if_mib {
        let prefixes: Vec<Oid<'static>> = COLUMNS
            .iter()
            .map(|&(_, ifx, n)| column_oid(ifx, n))
            .collect();
        fetched += walk(agent, &prefixes, |col, index, value| {
            rows.entry(index).or_default().set(COLUMNS[col].0, value);
        })
        .await?;
    }
    let (kpis, kpi_values) = poll_profile(agent).await?;
    fetched += kpi_values;
    let interfaces = rows
        .into_iter()
        .filter(|(_, r)| {
            let name = r.name.as_deref().or(r.descr.as_deref()).unwrap_or("");
            filter.wants(name, r.if_type)
        })
        .map(|(i, r)| {
            let speed = agent.target.speeds.get(&i).copied().or_else(|| {
                let name = r.name.as_deref().or(r.descr.as_deref())?;
                agent.target.speeds_by_name.get(name).copied()
            });
            (i, r.reading(speed))
        })
        .collect();
    let reading = Reading {
        at_ms: Timestamp::now().as_millis(),
        uptime,
        interfaces,
        kpis,
    };
    Ok(Polled {
        reading,
        rtt,
        values: fetched + 2,
    })
}

/// Reads the profile's extra OIDs: scalars with GET (20 per request), columns walked.
async fn poll_profile(agent: &mut Poller) -> Result<(Vec<KpiReading>, u64), PollError> {
    let metrics = agent.target.profile.metrics.clone();
    let mut out = Vec::new();
    let mut fetched = 0u64;
    let oid = |m: &profile::ProfileMetric| profile::arcs(&m.oid).and_then(|a| Oid::from(&a).ok());
    let scalars: Vec<(&profile::ProfileMetric, Oid<'static>)> = metrics
        .iter()
        .filter(|m| !m.table)
        .filter_map(|m| Some((m, oid(m)?)))
        .collect();
    for chunk in scalars.chunks(20) {
        let oids: Vec<Oid<'static>> = chunk.iter().map(|(_, o)| o.clone()).collect();
        let values = agent
            .request(&oids, None, |pdu| {
                Ok(pdu.varbinds.map(|(_, v)| kpi_value(&v)).collect::<Vec<_>>())
            })
            .await?;
        for ((m, _), v) in chunk.iter().zip(values) {
            if let Some(value) = v {
                fetched += 1;
                out.push(KpiReading::new(m, m.name.clone(), value));
            }
        }
    }
    let tables: Vec<(&profile::ProfileMetric, Oid<'static>)> = metrics
        .iter()
        .filter(|m| m.table)
        .filter_map(|m| Some((m, oid(m)?)))
        .collect();
    if !tables.is_empty() {
        let prefixes: Vec<Oid<'static>> = tables.iter().map(|(_, o)| o.clone()).collect();
        fetched += walk(agent, &prefixes, |col, index, value| {
            let m = tables[col].0;
            if let Some(v) = kpi_value(value) {
                out.push(KpiReading::new(m, format!("{}.{index}", m.name), v));
            }
        })
        .await?;
    }
    Ok((out, fetched))
}

fn kpi_value(v: &Value<'_>) -> Option<counters::KpiValue> {
    Some(match v {
        Value::Integer(n) => counters::KpiValue::Gauge(*n as f64),
        Value::Unsigned32(n) | Value::Timeticks(n) => counters::KpiValue::Gauge(f64::from(*n)),
        Value::Counter32(n) => counters::KpiValue::Counter(Counter::C32(*n)),
        Value::Counter64(n) => counters::KpiValue::Counter(Counter::C64(*n)),
        Value::OctetString(b) => {
            counters::KpiValue::Gauge(std::str::from_utf8(b).ok()?.trim().parse().ok()?)
        }
        _ => return None,
    })
}

impl KpiReading {
    fn new(m: &profile::ProfileMetric, object: String, value: counters::KpiValue) -> Self {
        let value = match (m.kind, value) {
            // A gauge typed as a counter by the agent is still read as a gauge.
            (profile::Kind::Gauge, counters::KpiValue::Counter(Counter::C32(n))) => {
                counters::KpiValue::Gauge(f64::from(n))
            }
            (profile::Kind::Gauge, counters::KpiValue::Counter(Counter::C64(n))) => {
                counters::KpiValue::Gauge(n as f64)
            }
            // A counter typed as an integer: its width is unknown, take 64 bits.
            (profile::Kind::Counter, counters::KpiValue::Gauge(g)) => {
                counters::KpiValue::Counter(Counter::C64(g.max(0.0) as u64))
            }
            (_, v) => v,
        };
        KpiReading {
            object,
            metric: m.feeds.metric(),
            scale: m.scale,
            value,
        }
    }
}

/// Walks table columns together, GETBULK row by row, each column carried on from its last OID
/// until it leaves its subtree; `visit(column, row index, value)` sees every value while the
/// reply is still borrowed. Returns how many values came back.
async fn walk(
    agent: &mut Poller,
    prefixes: &[Oid<'static>],
    mut visit: impl FnMut(usize, u32, &Value<'_>),
) -> Result<u64, PollError> {
    let mut cursor: Vec<Option<Oid<'static>>> = prefixes.iter().cloned().map(Some).collect();
    let mut fetched = 0u64;
    for _ in 0..MAX_REQUESTS_PER_WALK {
        let active: Vec<usize> = (0..prefixes.len())
            .filter(|&i| cursor[i].is_some())
            .collect();
        if active.is_empty() {
            break;
        }
        let oids: Vec<Oid<'static>> = active.iter().filter_map(|&i| cursor[i].clone()).collect();
        let reps = (VALUES_PER_REQUEST / active.len()).max(1) as u32;
        let n = active.len();
        let (next, got) = agent
            .request(&oids, Some(reps), |pdu| {
                // The last OID seen per column, still borrowing the reply: copied once at the
                // end, not once per value.
                let mut last: Vec<Option<Oid<'_>>> = vec![None; n];
                let mut done = vec![false; n];
                let mut got = 0u64;
                for (k, (oid, value)) in pdu.varbinds.enumerate() {
                    let slot = k % n;
                    let col = active[slot];
                    if done[slot] {
                        continue;
                    }
                    let index = oid
                        .as_bytes()
                        .strip_prefix(prefixes[col].as_bytes())
                        .and_then(single_arc)
                        .and_then(|i| u32::try_from(i).ok());
                    let (false, Some(index)) = (matches!(value, Value::EndOfMibView), index) else {
                        // Past the column (or a row index this poller does not read): done.
                        done[slot] = true;
                        continue;
                    };
                    visit(col, index, &value);
                    last[slot] = Some(oid);
                    got += 1;
                }
                let mut next: Vec<Option<Oid<'static>>> =
                    last.iter().map(|o| o.as_ref().map(Oid::to_owned)).collect();
                // A column whose OIDs did not advance would loop forever: end it.
                for (slot, n) in next.iter_mut().enumerate() {
                    if done[slot] || n.as_ref() == oids.get(slot) {
                        *n = None;
                    }
                }
                Ok((next, got))
            })
            .await?;
        fetched += got;
        for (slot, &i) in active.iter().enumerate() {
            cursor[i] = next[slot].clone();
        }
    }
    Ok(fetched)
}

/// The value of the BER-encoded OID tail `rest` if it is exactly one arc (a table index).
fn single_arc(rest: &[u8]) -> Option<u64> {
    let (last, head) = rest.split_last()?;
    if last & 0x80 != 0 || head.iter().any(|b| b & 0x80 == 0) || rest.len() > 9 {
        return None;
    }
    Some(
        rest.iter()
            .fold(0u64, |v, b| (v << 7) | u64::from(b & 0x7f)),
    )
}

/// A stable offset into the interval for a device, so polls spread and do not all start at once.
fn offset(name: &str, interval: Duration) -> Duration {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    name.hash(&mut h);
    let ms = interval.as_millis().max(1) as u64;
    Duration::from_millis(h.finish() % ms)
}

/// A wake-up per polled device, for the trap receiver to ask for a poll now.
pub fn poll_triggers(config: &Config) -> HashMap<String, Arc<Notify>> {
    Target::all(config)
        .into_iter()
        .map(|t| (t.name, Arc::new(Notify::new())))
        .collect()
}

/// Polls every device with credentials until `cancel`; a device is also polled at once when
/// its trigger in `polls` is notified.
pub async fn run(
    config: Arc<Config>,
    samples: SampleSink,
    metrics: Arc<Metrics>,
    polls: HashMap<String, Arc<Notify>>,
    speeds: watch::Sender<InterfaceSpeeds>,
    cancel: CancellationToken,
) {
    let targets = Target::all(&config);
    if targets.is_empty() {
        return;
    }
    tracing::info!(devices = targets.len(), "SNMP poller running");
    let shared = Arc::new(Shared {
        limit: Semaphore::new(config.snmp.max_in_flight.max(1)),
        filter: Filter::new(&config.snmp),
        unreachable_after: config.snmp.unreachable_after.max(1),
        samples,
        speeds,
        cancel,
    });
    let tasks = TaskTracker::new();
    for target in targets {
        let trigger = polls
            .get(&target.name)
            .cloned()
            .unwrap_or_else(|| Arc::new(Notify::new()));
        tasks.spawn(device_loop(
            Poller::new(target, &config.snmp, metrics.clone()),
            trigger,
            shared.clone(),
        ));
    }
    tasks.close();
    tasks.wait().await;
}

/// What every device's loop shares.
struct Shared {
    /// Requests in flight over all devices.
    limit: Semaphore,
    filter: Filter,
    unreachable_after: u32,
    samples: SampleSink,
    speeds: watch::Sender<InterfaceSpeeds>,
    cancel: CancellationToken,
}

async fn device_loop(mut agent: Poller, trigger: Arc<Notify>, shared: Arc<Shared>) {
    let Shared {
        limit,
        filter,
        unreachable_after,
        samples,
        speeds,
        cancel,
    } = &*shared;
    let unreachable_after = *unreachable_after;
    let interval = agent.target.interval;
    let name = agent.target.name.clone();
    let metrics = agent.metrics.clone();
    let mut next = tokio::time::Instant::now() + offset(&name, interval);
    let mut counters = Counters::default();
    let mut failures = 0u32;
    let mut unreachable = false;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep_until(next) => next += interval,
            // Polled out of turn; the schedule stays as it was.
            _ = trigger.notified() => {}
        }
        let Ok(_permit) = limit.acquire().await else {
            return;
        };
        let started = Instant::now();
        let result = tokio::select! {
            _ = cancel.cancelled() => return,
            r = agent.poll(filter) => r,
        };
        metrics
            .snmp_poll_seconds
            .observe(started.elapsed().as_secs_f64());
        let now = Timestamp::now();
        match result {
            Ok(Polled {
                reading,
                rtt,
                values: fetched,
            }) => {
                metrics.snmp_poll(&name, PollResult::Ok).inc();
                metrics.snmp_values.inc_by(fetched);
                failures = 0;
                if unreachable {
                    unreachable = false;
                    samples.offer(event(
                        &name,
                        EventKind::Reachable,
                        now,
                        "SNMP answers again".into(),
                    ));
                }
                samples.offer(Sample {
                    series: SeriesKey {
                        device: name.clone(),
                        object: "snmp".to_owned(),
                        metric: Metric::LatencyMs,
                    },
                    at: Timestamp::from_millis(reading.at_ms),
                    value: rtt.as_secs_f64() * 1000.0,
                    context: None,
                });
                let learned = reading
                    .interfaces
                    .iter()
                    .filter_map(|(i, r)| Some((*i, r.speed_bps?)))
                    .collect();
                speeds.send_modify(|s| s.set(&name, learned));
                let derived = counters.update(&name, reading);
                for (_, skip) in &derived.skipped {
                    metrics.snmp_skip(skip_reason(*skip)).inc();
                }
                for e in derived.events {
                    samples.offer(e);
                }
                for s in derived.samples {
                    samples.offer(s);
                }
            }
            Err(e) => {
                metrics.snmp_poll(&name, e.reason()).inc();
                failures += 1;
                tracing::debug!(device = %name, error = %e, failures, "SNMP poll failed");
                if failures == unreachable_after && !unreachable {
                    unreachable = true;
                    tracing::warn!(device = %name, error = %e, "device unreachable over SNMP");
                    samples.offer(event(
                        &name,
                        EventKind::Unreachable,
                        now,
                        format!("{failures} SNMP polls in a row failed: {e}"),
                    ));
                }
            }
        }
    }
}

fn skip_reason(s: counters::Skip) -> SnmpSkip {
    match s {
        counters::Skip::AgentRestart => SnmpSkip::AgentRestart,
        counters::Skip::Discontinuity => SnmpSkip::Discontinuity,
        counters::Skip::Impossible => SnmpSkip::Impossible,
        counters::Skip::TooSoon => SnmpSkip::TooSoon,
    }
}

fn event(device: &str, kind: EventKind, at: Timestamp, text: String) -> DeviceEvent {
    DeviceEvent {
        device: device.to_owned(),
        object: crate::model::DEVICE_OBJECT.to_owned(),
        kind,
        at,
        text,
        severity: None,
    }
}
