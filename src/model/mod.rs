//! The domain words of the design page, shared by every stage.
//!
//! Types that are stored and published serialise twice: compactly in the store (postcard, where
//! `is_human_readable()` is false) and as 3GPP TS 28.532 JSON for people and northbound peers.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Text from a device (trap varbinds, sysName, interface names) made safe for a terminal and a
/// line-based log: control characters become visible escapes (`\x1b`, `\r`, `\n`), so an
/// escape sequence cannot retitle or clear a terminal and a line break cannot forge a log line.
/// Unchanged text is not copied.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                use std::fmt::Write as _;
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// A name that is none of an enum's names: what was given and what would do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} `{value}`: expected {expected}")]
pub struct UnknownName {
    /// What kind of name (`severity`, `category`, ...).
    pub kind: &'static str,
    /// What was given.
    pub value: String,
    /// The names that would do, comma-separated.
    pub expected: String,
}

/// `Display` and `FromStr` (case-insensitive) from an enum's `name()` and its list of values,
/// so config, the API and the CLI read and write the one spelling.
macro_rules! named_enum {
    ($t:ty, $kind:literal, $all:expr) => {
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }

        impl std::str::FromStr for $t {
            type Err = $crate::model::UnknownName;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let all: &[$t] = &$all;
                all.iter()
                    .copied()
                    .find(|x| x.name().eq_ignore_ascii_case(s))
                    .ok_or_else(|| $crate::model::UnknownName {
                        kind: $kind,
                        value: s.to_owned(),
                        expected: all.iter().map(|x| x.name()).collect::<Vec<_>>().join(", "),
                    })
            }
        }
    };
}
pub(crate) use named_enum;

mod action;
mod alarm;
mod capacity;
mod complaint;
mod history;
mod impact;
mod incident;
mod maintenance;

pub use action::*;
pub use alarm::*;
pub use capacity::*;
pub use complaint::*;
pub use history::{Offset, parse_history_time};
pub use impact::*;
pub use incident::*;
pub use maintenance::*;

/// `*`-only glob matching, enough for object and interface names; no regex engine for one
/// wildcard.
pub fn glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, rest)) => {
            let Some(tail) = text.strip_prefix(head) else {
                return false;
            };
            (0..=tail.len())
                .filter(|i| tail.is_char_boundary(*i))
                .any(|i| glob(rest, &tail[i..]))
        }
    }
}

/// A hash map with FxHash-style multiply-rotate hashing: SipHash (std's default) costs more
/// than the work around a lookup on hot paths (a flow record, an alarm's impact). Only for
/// keys from config or capped in number: the netflow destinations map, the one keyed by
/// attacker-chosen values, is capped, so crafted collisions cost at most a scan of the cap.
pub type FastMap<K, V> = std::collections::HashMap<K, V, std::hash::BuildHasherDefault<FastHasher>>;

/// See [`FastMap`].
#[derive(Default)]
pub struct FastHasher(u64);

impl std::hash::Hasher for FastHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

/// Object name for alarms and events on the device as a whole.
pub const DEVICE_OBJECT: &str = "device";

/// Object of a device's ICMP probe series (`latency_ms`, `loss_pct`).
pub const PROBE_OBJECT: &str = "icmp";

/// A UTC instant in milliseconds since the Unix epoch.
///
/// Logic takes time as a `Timestamp` argument and never reads the clock, so replays and tests
/// are deterministic; only the daemon's I/O loops call [`Timestamp::now`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(i64);

impl Timestamp {
    /// Builds a timestamp from milliseconds since the Unix epoch.
    pub const fn from_millis(ms: i64) -> Self {
        Self(ms)
    }

    /// Milliseconds since the Unix epoch; what the store keys on.
    pub const fn as_millis(self) -> i64 {
        self.0
    }

    /// The wall clock, for I/O loops at the edge of the pure state machines.
    pub fn now() -> Self {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        Self(ms)
    }

    /// Time elapsed from `earlier` to `self`, zero if `earlier` is later.
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(u64::try_from(self.0.saturating_sub(earlier.0)).unwrap_or(0))
    }

    /// Parses RFC 3339 in UTC (`2026-11-29T19:48:43Z`, fractions allowed).
    pub fn parse_rfc3339(s: &str) -> Result<Self, humantime::TimestampError> {
        let t = humantime::parse_rfc3339(s)?;
        let ms = match t.duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
            Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
        };
        Ok(Self(ms))
    }

    /// `since`/`until` arguments: RFC 3339, or an age before `now` such as `7d` or `12h`.
    pub fn parse_time_or_age(arg: &str, now: Timestamp) -> Result<Self, String> {
        if let Ok(t) = Self::parse_rfc3339(arg) {
            return Ok(t);
        }
        humantime::parse_duration(arg)
            .map(|d| now.minus(d))
            .map_err(|_| format!("`{arg}` is neither an RFC 3339 time nor an age such as `7d`"))
    }

    /// This instant moved on by `d`.
    pub fn plus(self, d: Duration) -> Self {
        Self(
            self.0
                .saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
        )
    }

    /// This instant moved back by `d`.
    pub fn minus(self, d: Duration) -> Self {
        Self(
            self.0
                .saturating_sub(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
        )
    }

    fn system_time(self) -> SystemTime {
        let magnitude = Duration::from_millis(self.0.unsigned_abs());
        if self.0 >= 0 {
            UNIX_EPOCH + magnitude
        } else {
            UNIX_EPOCH - magnitude
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}",
            humantime::format_rfc3339_millis(self.system_time())
        )
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(self)
        } else {
            s.serialize_i64(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            Self::parse_rfc3339(&s).map_err(serde::de::Error::custom)
        } else {
            i64::deserialize(d).map(Self)
        }
    }
}

/// Identifies an alarm for its whole life; also the key of the active-alarms tree.
///
/// TS 28.532 makes `alarmId` a string, so JSON carries it as one; the store keeps the number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AlarmId(pub u64);

/// Identifies a fault record; distinct from the alarm id so a later issue can reopen a fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct FaultId(pub u64);

impl fmt::Display for FaultId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for AlarmId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Serialize for AlarmId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(self)
        } else {
            s.serialize_u64(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for AlarmId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            s.parse().map(Self).map_err(serde::de::Error::custom)
        } else {
            u64::deserialize(d).map(Self)
        }
    }
}

/// What a device is; drives default thresholds and profiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// A router (core, aggregation or backhaul).
    Router,
    /// A layer-2/3 switch.
    Switch,
    /// A mobile base station (eNodeB/gNodeB).
    BaseStation,
}

impl Role {
    /// kebab-case name, as in config.
    pub fn name(self) -> &'static str {
        match self {
            Role::Router => "router",
            Role::Switch => "switch",
            Role::BaseStation => "base-station",
        }
    }
}

named_enum!(
    Role,
    "role",
    [Role::Router, Role::Switch, Role::BaseStation]
);

/// A managed element, named once in config and referred to by that name everywhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// Stable name from config; the `device` of every series and alarm.
    pub name: String,
    /// Management address.
    pub address: IpAddr,
    /// What kind of element it is.
    pub role: Role,
    /// The device this one hangs off, for root-cause suppression.
    pub parent: Option<String>,
    /// Site label for grouping and maintenance windows.
    pub site: Option<String>,
    /// Free-form tags for rule matching and maintenance windows.
    pub tags: Vec<String>,
}

/// The metric of a series. Units are in the name so a value is never ambiguous.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Round-trip latency in milliseconds.
    LatencyMs,
    /// Packet loss in percent.
    LossPct,
    /// Inbound utilisation in percent of interface speed.
    UtilisationInPct,
    /// Outbound utilisation in percent of interface speed.
    UtilisationOutPct,
    /// Traffic rate in bits per second.
    BitsPerSec,
    /// Packet rate per second.
    PacketsPerSec,
    /// Flow rate per second.
    FlowsPerSec,
    /// Inbound traffic on an interface, bits per second.
    BitsInPerSec,
    /// Outbound traffic on an interface, bits per second.
    BitsOutPerSec,
    /// Inbound packets on an interface per second.
    PacketsInPerSec,
    /// Outbound packets on an interface per second.
    PacketsOutPerSec,
    /// Flows entering by an interface per second.
    FlowsInPerSec,
    /// Flows leaving by an interface per second.
    FlowsOutPerSec,
    /// Share of flows that are a single TCP SYN and nothing else, in percent (SYN floods).
    SynOnlyPct,
    /// Most distinct sources seen toward one destination in an interval (floods, scans).
    DistinctSources,
    /// A vendor KPI from a device profile, recorded but judged by no family.
    Kpi,
    /// Interface errors per second.
    ErrorsPerSec,
    /// Interface discards per second.
    DiscardsPerSec,
    /// Interface operational state: 1 up, 0 down.
    OperStatus,
    /// Device reachability: 1 reachable, 0 not.
    Reachability,
}

/// The families of metrics that thresholds and categories are written against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricKind {
    /// Latency metrics.
    Latency,
    /// Loss metrics.
    Loss,
    /// Utilisation metrics.
    Utilisation,
    /// Rates that explain the others (bits, packets, flows, errors).
    Traffic,
    /// Up/down states.
    State,
    /// Share of SYN-only flows (security).
    Flood,
    /// Distinct sources toward one destination (security).
    Sources,
    /// An exporter's flows per second: a spike is a flood or a scan (security).
    Flows,
}

impl Metric {
    /// Every metric, for parsing names back.
    pub const ALL: [Metric; 20] = [
        Metric::LatencyMs,
        Metric::LossPct,
        Metric::UtilisationInPct,
        Metric::UtilisationOutPct,
        Metric::BitsPerSec,
        Metric::PacketsPerSec,
        Metric::FlowsPerSec,
        Metric::BitsInPerSec,
        Metric::BitsOutPerSec,
        Metric::PacketsInPerSec,
        Metric::PacketsOutPerSec,
        Metric::FlowsInPerSec,
        Metric::FlowsOutPerSec,
        Metric::SynOnlyPct,
        Metric::DistinctSources,
        Metric::Kpi,
        Metric::ErrorsPerSec,
        Metric::DiscardsPerSec,
        Metric::OperStatus,
        Metric::Reachability,
    ];

    /// The metric with this [`Metric::name`] (exactly: it is a store key).
    pub fn from_name(name: &str) -> Option<Metric> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    /// The one table of what is fixed about each metric.
    pub const fn info(self) -> MetricInfo {
        use Category::{Equipment, Performance, Security, Service};
        use MetricKind::{Flood, Flows, Latency, Loss, Sources, State, Traffic, Utilisation};
        // Rates are bounded only against nonsense: nothing carries 10^15 per second.
        const RATE: f64 = 1e15;
        let (name, kind, unit, ceiling, category) = match self {
            // Ten minutes of round trip is a lost probe, not latency.
            Metric::LatencyMs => ("latency_ms", Latency, "ms", 600_000.0, Performance),
            Metric::LossPct => ("loss_pct", Loss, "%", 100.0, Performance),
            // Counter timing can overshoot 100 % a little; ten times is not a measurement.
            Metric::UtilisationInPct => {
                ("utilisation_in_pct", Utilisation, "%", 1000.0, Performance)
            }
            Metric::UtilisationOutPct => {
                ("utilisation_out_pct", Utilisation, "%", 1000.0, Performance)
            }
            Metric::BitsPerSec => ("bits_per_sec", Traffic, "bit/s", RATE, Service),
            Metric::PacketsPerSec => ("packets_per_sec", Traffic, "packet/s", RATE, Service),
            Metric::FlowsPerSec => ("flows_per_sec", Flows, "flow/s", RATE, Security),
            Metric::BitsInPerSec => ("bits_in_per_sec", Traffic, "bit/s", RATE, Service),
            Metric::BitsOutPerSec => ("bits_out_per_sec", Traffic, "bit/s", RATE, Service),
            Metric::PacketsInPerSec => ("packets_in_per_sec", Traffic, "packet/s", RATE, Service),
            Metric::PacketsOutPerSec => ("packets_out_per_sec", Traffic, "packet/s", RATE, Service),
            Metric::FlowsInPerSec => ("flows_in_per_sec", Traffic, "flow/s", RATE, Service),
            Metric::FlowsOutPerSec => ("flows_out_per_sec", Traffic, "flow/s", RATE, Service),
            Metric::SynOnlyPct => ("syn_only_pct", Flood, "%", 100.0, Security),
            Metric::DistinctSources => ("distinct_sources", Sources, "sources", RATE, Security),
            // A profile KPI's unit is the profile's.
            Metric::Kpi => ("kpi", Traffic, "", RATE, Service),
            Metric::ErrorsPerSec => ("errors_per_sec", Traffic, "error/s", RATE, Service),
            Metric::DiscardsPerSec => ("discards_per_sec", Traffic, "discard/s", RATE, Service),
            Metric::OperStatus => ("oper_status", State, "up", 1.0, Equipment),
            Metric::Reachability => ("reachability", State, "reachable", 1.0, Equipment),
        };
        let floor = if matches!(self, Metric::Kpi) {
            -ceiling
        } else {
            0.0
        };
        MetricInfo {
            name,
            kind,
            unit,
            floor,
            ceiling,
            category,
        }
    }

    /// A value as a person reads it: rounded to what the metric needs, with its unit
    /// (`74.0 %`, `12.5 ms`, `3.41 Mbit/s`). Machine formats keep the raw number.
    pub fn show(self, value: f64) -> String {
        if !value.is_finite() {
            return value.to_string();
        }
        match self.info().unit {
            "%" if value.abs() < 1.0 => format!("{value:.2} %"),
            "%" => format!("{value:.1} %"),
            "ms" => format!("{} ms", significant(value, 3)),
            "" => significant(value, 3),
            "up" | "reachable" | "sources" => format!("{value:.0}"),
            unit => {
                let (scaled, prefix) = si(value);
                format!("{} {prefix}{unit}", significant(scaled, 3))
            }
        }
    }

    /// Which family the metric belongs to, to pick its thresholds.
    pub const fn kind(self) -> MetricKind {
        self.info().kind
    }

    /// The snake_case name used in keys, logs and `observedMeasurement`.
    pub const fn name(self) -> &'static str {
        self.info().name
    }
}

named_enum!(Metric, "metric", Metric::ALL);

/// `value` with `figures` significant figures (at least the units digit), no exponent.
fn significant(value: f64, figures: i32) -> String {
    if value == 0.0 {
        return "0".to_owned();
    }
    let magnitude = value.abs().log10().floor() as i32;
    let decimals = (figures - 1 - magnitude).clamp(0, 6) as usize;
    format!("{value:.decimals$}")
}

/// A rate scaled to an SI prefix (k, M, G, T), for bit/s and friends.
fn si(value: f64) -> (f64, &'static str) {
    const PREFIXES: [(f64, &str); 4] = [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")];
    PREFIXES
        .iter()
        .find(|(scale, _)| value.abs() >= *scale)
        .map_or((value, ""), |(scale, p)| (value / scale, p))
}

/// What is fixed about a metric (see [`Metric::info`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricInfo {
    /// snake_case name.
    pub name: &'static str,
    /// The family its thresholds are written for.
    pub kind: MetricKind,
    /// Unit, for people.
    pub unit: &'static str,
    /// The smallest value it can take: 0 for measurements of amounts, minus the ceiling for a
    /// profile KPI (signal levels in dBm, temperatures, differences).
    pub floor: f64,
    /// The largest value it can sensibly take; above it a sample is a bug or an attack.
    pub ceiling: f64,
    /// The category of the fault it shows: latency, loss and utilisation degrade performance,
    /// traffic rates the service, states are equipment, floods and scans security.
    pub category: Category,
}

/// One metric of one object of one device: the unit of detection state.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SeriesKey {
    /// Device name from config.
    pub device: String,
    /// The object on the device, e.g. `ifIndex=3`, or `device` for the element itself.
    pub object: String,
    /// What is measured.
    pub metric: Metric,
}

impl fmt::Display for SeriesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.device, self.object, self.metric.name())
    }
}

/// One observation of a series, as ingest hands it to detection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Which series this belongs to.
    pub series: SeriesKey,
    /// When it was observed (device or flow time, not arrival time).
    pub at: Timestamp,
    /// The value in the metric's unit.
    pub value: f64,
    /// What explains the value, for an alarm to cite (e.g. the top talkers of a busy link).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Arc<str>>,
}

/// Something a source observed that is an alarm by itself, not a measurement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceEvent {
    /// Device name.
    pub device: String,
    /// Object (`device` for the element, `ifIndex=N` for an interface).
    pub object: String,
    /// What happened.
    pub kind: EventKind,
    /// When.
    pub at: Timestamp,
    /// Detail for `additionalText`.
    pub text: String,
    /// Severity chosen by the source (configured per trap OID); the kind's own otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
}

/// Events that raise or clear equipment alarms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// Polls or probes stopped getting answers.
    Unreachable,
    /// Answers came back.
    Reachable,
    /// Interface oper status went down.
    LinkDown,
    /// Interface oper status came back up.
    LinkUp,
    /// sysUpTime went backwards or a coldStart trap arrived.
    Reboot,
    /// An authenticationFailure trap: someone used a wrong community or key (security).
    AuthFailure,
    /// Any other trap; `object` names it (`trap=OID`) and its varbinds are the text.
    Trap,
    /// Unexplained customer complaints from one place reached a level (`severity` says which):
    /// the network's trouble as customers report it, before (or without) any alarm.
    Complaints,
    /// Those complaints stopped, or a network alarm now explains them.
    ComplaintsStopped,
    /// An action rule failed too often in a row: its breaker opened and it is disabled.
    ActionsFailing,
    /// An engineer reset that breaker.
    ActionsResumed,
}
