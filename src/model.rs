//! The domain words of the design page, shared by every stage.
//!
//! Types that are stored and published serialise twice: compactly in the store (postcard, where
//! `is_human_readable()` is false) and as 3GPP TS 28.532 JSON for people and northbound peers.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A UTC instant in milliseconds since the Unix epoch.
///
/// Logic takes time as a `Timestamp` argument and never reads the clock, so replays and tests
/// are deterministic; only the daemon's I/O loops call [`Timestamp::now`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
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

    /// The metric with this [`Metric::name`].
    pub fn from_name(name: &str) -> Option<Metric> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Which family the metric belongs to, to pick its thresholds.
    pub fn kind(self) -> MetricKind {
        match self {
            Metric::LatencyMs => MetricKind::Latency,
            Metric::LossPct => MetricKind::Loss,
            Metric::UtilisationInPct | Metric::UtilisationOutPct => MetricKind::Utilisation,
            Metric::BitsPerSec
            | Metric::PacketsPerSec
            | Metric::BitsInPerSec
            | Metric::BitsOutPerSec
            | Metric::PacketsInPerSec
            | Metric::PacketsOutPerSec
            | Metric::FlowsInPerSec
            | Metric::FlowsOutPerSec
            | Metric::ErrorsPerSec
            | Metric::DiscardsPerSec
            | Metric::Kpi => MetricKind::Traffic,
            Metric::SynOnlyPct => MetricKind::Flood,
            Metric::FlowsPerSec => MetricKind::Flows,
            Metric::DistinctSources => MetricKind::Sources,
            Metric::OperStatus | Metric::Reachability => MetricKind::State,
        }
    }

    /// The snake_case name used in keys, logs and `observedMeasurement`.
    pub fn name(self) -> &'static str {
        match self {
            Metric::LatencyMs => "latency_ms",
            Metric::LossPct => "loss_pct",
            Metric::UtilisationInPct => "utilisation_in_pct",
            Metric::UtilisationOutPct => "utilisation_out_pct",
            Metric::BitsPerSec => "bits_per_sec",
            Metric::PacketsPerSec => "packets_per_sec",
            Metric::FlowsPerSec => "flows_per_sec",
            Metric::BitsInPerSec => "bits_in_per_sec",
            Metric::BitsOutPerSec => "bits_out_per_sec",
            Metric::PacketsInPerSec => "packets_in_per_sec",
            Metric::PacketsOutPerSec => "packets_out_per_sec",
            Metric::FlowsInPerSec => "flows_in_per_sec",
            Metric::FlowsOutPerSec => "flows_out_per_sec",
            Metric::SynOnlyPct => "syn_only_pct",
            Metric::DistinctSources => "distinct_sources",
            Metric::Kpi => "kpi",
            Metric::ErrorsPerSec => "errors_per_sec",
            Metric::DiscardsPerSec => "discards_per_sec",
            Metric::OperStatus => "oper_status",
            Metric::Reachability => "reachability",
        }
    }
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

/// ITU-T X.733 perceived severity; the derived order ranks them (`Critical` highest).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Severity {
    /// The condition has gone.
    #[default]
    Cleared,
    /// Severity cannot be determined.
    Indeterminate,
    /// A potential fault, before service is affected.
    Warning,
    /// A non-service-affecting fault.
    Minor,
    /// Service-affecting, urgent.
    Major,
    /// Service-affecting, immediate action.
    Critical,
}

impl Severity {
    /// Lower-case name for topics, logs and config keys.
    pub fn name(self) -> &'static str {
        match self {
            Severity::Cleared => "cleared",
            Severity::Indeterminate => "indeterminate",
            Severity::Warning => "warning",
            Severity::Minor => "minor",
            Severity::Major => "major",
            Severity::Critical => "critical",
        }
    }
}

/// What kind of fault an alarm reports; groups MTTR reports and routes tickets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// High latency, loss or congestion.
    Performance,
    /// Service interrupted or degraded for users.
    Service,
    /// Unreachable device, reboot, interface down, hardware.
    Equipment,
    /// Traffic that looks like an attack.
    Security,
}

impl Category {
    /// snake_case name for labels and reports.
    pub fn name(self) -> &'static str {
        match self {
            Category::Performance => "performance",
            Category::Service => "service",
            Category::Equipment => "equipment",
            Category::Security => "security",
        }
    }

    /// The TS 28.532 alarm type that usually goes with this category.
    pub fn alarm_type(self) -> AlarmType {
        match self {
            Category::Performance | Category::Service => AlarmType::QualityOfServiceAlarm,
            Category::Equipment => AlarmType::EquipmentAlarm,
            Category::Security => AlarmType::SecurityServiceOrMechanismViolation,
        }
    }
}

/// TS 28.532 / X.733 alarm type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AlarmType {
    /// Loss of communication with or between elements.
    CommunicationsAlarm,
    /// Degraded quality of service.
    QualityOfServiceAlarm,
    /// A processing failure.
    ProcessingErrorAlarm,
    /// An equipment fault.
    EquipmentAlarm,
    /// An environmental condition (temperature, power).
    EnvironmentalAlarm,
    /// Integrity violation.
    IntegrityViolation,
    /// Operational violation.
    OperationalViolation,
    /// Physical violation.
    PhysicalViolation,
    /// A security mechanism detected a violation.
    SecurityServiceOrMechanismViolation,
    /// Time-domain violation.
    TimeDomainViolation,
}

/// TS 28.532 trend of an alarm's severity on its last change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TrendIndication {
    /// Severity went up.
    MoreSevere,
    /// Severity stayed.
    NoChange,
    /// Severity went down.
    LessSevere,
}

/// TS 28.532 acknowledgement state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AckState {
    /// An engineer has taken it.
    Acknowledged,
    /// Nobody has taken it yet.
    #[default]
    Unacknowledged,
}

/// Which way a threshold is crossed to raise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// Raise when the value goes above the level.
    #[default]
    Rising,
    /// Raise when the value goes below the level.
    Falling,
}

/// TS 28.532 `thresholdInfo`: what was measured and what it was compared with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThresholdInfo {
    /// The metric name, e.g. `utilisation_in_pct`.
    pub observed_measurement: String,
    /// The value that crossed.
    pub observed_value: f64,
    /// Which way the level was crossed (`UP` rising, `DOWN` falling).
    pub threshold_level: ThresholdLevel,
    /// The level's value.
    pub threshold_value: f64,
    /// How far back the value must come before the alarm clears.
    pub hysteresis: f64,
}

/// TS 28.532 threshold level indication.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ThresholdLevel {
    /// Crossed going up.
    Up,
    /// Crossed going down.
    Down,
}

/// A live, deduplicated condition on one reduction key, in TS 28.532 AlarmRecord shape.
///
/// Absent optional fields are `null` in JSON rather than missing, because the store's compact
/// encoding cannot skip fields and one shape for both keeps them from drifting apart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Alarm {
    /// Stable id for the alarm's whole life.
    pub alarm_id: AlarmId,
    /// Distinguished name of the alarmed object.
    pub object_instance: String,
    /// Sequence number of the latest transition (global, monotonic); SSE event ids use it.
    pub notification_id: u64,
    /// When first raised.
    pub alarm_raised_time: Timestamp,
    /// When last changed (severity, ack, clear).
    pub alarm_changed_time: Option<Timestamp>,
    /// When cleared.
    pub alarm_cleared_time: Option<Timestamp>,
    /// X.733 alarm type.
    pub alarm_type: AlarmType,
    /// X.733 probable cause, e.g. `thresholdCrossed`.
    pub probable_cause: String,
    /// What specifically is wrong, e.g. the rule name.
    pub specific_problem: String,
    /// Current severity.
    pub perceived_severity: Severity,
    /// Direction of the last severity change.
    pub trend_indication: Option<TrendIndication>,
    /// What was measured against what, for threshold alarms.
    pub threshold_info: Option<ThresholdInfo>,
    /// False when suppressed under a root-cause alarm.
    pub root_cause_indicator: bool,
    /// Whether an engineer has acknowledged it.
    pub ack_state: AckState,
    /// Who acknowledged.
    pub ack_user_id: Option<String>,
    /// When acknowledged.
    pub ack_time: Option<Timestamp>,
    /// Who cleared it by hand; `None` for an automatic clear.
    pub clear_user_id: Option<String>,
    /// Why it fired, in words.
    pub additional_text: String,
    /// noctua: device name (reduction key part 1).
    pub device: String,
    /// noctua: object on the device (reduction key part 2).
    pub object: String,
    /// noctua: condition name (reduction key part 3).
    pub condition: String,
    /// noctua: fault category.
    pub category: Category,
    /// noctua: how many times the condition was reported.
    pub count: u64,
    /// noctua: last report of the condition.
    pub last_seen: Timestamp,
    /// noctua: the root-cause alarm this one is a symptom of (`rootCauseIndicator` false).
    pub root_cause_alarm_id: Option<AlarmId>,
    /// noctua: why the alarm is currently not being notified, if it is not.
    pub suppressed_by: Option<Suppression>,
    /// noctua: whether the outside world has been told about this alarm; a notified alarm's clear
    /// is always sent, even while suppressed, so no subscriber keeps a stale alarm.
    pub notified: bool,
}

/// Why an alarm is recorded but not notified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Suppression {
    /// A device above it in the topology is down; see `rootCauseAlarmId`.
    RootCause,
    /// The condition is flapping; one `flapping:` alarm stands for it.
    Flapping,
    /// The device is in a maintenance window.
    Maintenance,
}

impl Alarm {
    /// The order engineers read alarms in: most severe first, then newest first.
    pub fn urgency_order(a: &Alarm, b: &Alarm) -> std::cmp::Ordering {
        b.perceived_severity
            .cmp(&a.perceived_severity)
            .then(b.alarm_raised_time.cmp(&a.alarm_raised_time))
    }

    /// Whether the alarm has been cleared.
    pub fn is_cleared(&self) -> bool {
        self.alarm_cleared_time.is_some()
    }
}

/// What happened to an alarm in one transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransitionKind {
    /// First detection.
    Raised,
    /// Same severity, new occurrence (count, last seen).
    Updated,
    /// Severity went up.
    Escalated,
    /// Severity went down but not to cleared.
    DeEscalated,
    /// An engineer acknowledged.
    Acknowledged,
    /// An acknowledgement was withdrawn.
    Unacknowledged,
    /// The condition went away or a user cleared it.
    Cleared,
    /// The tier's acknowledge target passed without an acknowledgement.
    AckOverdue,
    /// The tier's restore target passed without a clear.
    RestoreOverdue,
    /// Suppression started or ended (root cause, flapping, maintenance).
    SuppressionChanged,
}

impl TransitionKind {
    /// snake_case name for metric labels and logs.
    pub fn name(self) -> &'static str {
        match self {
            TransitionKind::Raised => "raised",
            TransitionKind::Updated => "updated",
            TransitionKind::Escalated => "escalated",
            TransitionKind::DeEscalated => "de_escalated",
            TransitionKind::Acknowledged => "acknowledged",
            TransitionKind::Unacknowledged => "unacknowledged",
            TransitionKind::Cleared => "cleared",
            TransitionKind::AckOverdue => "ack_overdue",
            TransitionKind::RestoreOverdue => "restore_overdue",
            TransitionKind::SuppressionChanged => "suppression_changed",
        }
    }
}

/// One committed alarm transition: a history entry, an outbox message and a stream event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlarmEvent {
    /// Global, gap-free, monotonic sequence; equals the alarm's `notificationId`.
    pub seq: u64,
    /// When the transition happened.
    pub at: Timestamp,
    /// What happened.
    pub kind: TransitionKind,
    /// The alarm as it is after the transition.
    pub alarm: Alarm,
    /// Whether the transition was published (suppressed ones are only recorded).
    pub notified: bool,
}

/// A note an engineer attached to a fault.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Note {
    /// When written.
    pub at: Timestamp,
    /// Who wrote it.
    pub by: String,
    /// The note.
    pub text: String,
}

/// The durable history of one alarm from detection to clear, for MTTA/MTTR.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultRecord {
    /// Fault id.
    pub id: FaultId,
    /// The alarm it records.
    pub alarm_id: AlarmId,
    /// Device name.
    pub device: String,
    /// Object on the device.
    pub object: String,
    /// Condition name.
    pub condition: String,
    /// Fault category.
    pub category: Category,
    /// Highest severity the alarm reached.
    pub peak_severity: Severity,
    /// When raised.
    pub raised_at: Timestamp,
    /// When first acknowledged.
    pub acked_at: Option<Timestamp>,
    /// Who acknowledged.
    pub acked_by: Option<String>,
    /// When cleared.
    pub cleared_at: Option<Timestamp>,
    /// Who cleared; `None` means it cleared by itself.
    pub cleared_by: Option<String>,
    /// The root-cause alarm, when this one was suppressed under it.
    pub root_cause: Option<AlarmId>,
    /// Engineers' notes, in order.
    pub notes: Vec<Note>,
    /// Site of the device when raised (config may change later; history should not).
    pub site: Option<String>,
    /// Role of the device when raised.
    pub role: Option<Role>,
    /// How often the condition came back within the reopen window after a clear.
    pub reopened: u32,
    /// The tier's acknowledge target passed unacknowledged.
    pub ack_breached: bool,
    /// The tier's restore target passed uncleared.
    pub restore_breached: bool,
    /// Maintenance time between raise and acknowledgement, left out of MTTA.
    pub ack_maintenance_ms: u64,
    /// Maintenance time between raise and clear, left out of MTTR.
    pub repair_maintenance_ms: u64,
}

impl FaultRecord {
    /// Time to acknowledge, once acknowledged, without maintenance time.
    pub fn mtta(&self) -> Option<Duration> {
        self.acked_at.map(|t| {
            t.since(self.raised_at)
                .saturating_sub(Duration::from_millis(self.ack_maintenance_ms))
        })
    }

    /// Time to repair, once cleared, without maintenance time.
    pub fn mttr(&self) -> Option<Duration> {
        self.cleared_at.map(|t| {
            t.since(self.raised_at)
                .saturating_sub(Duration::from_millis(self.repair_maintenance_ms))
        })
    }
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
}

/// One alarm transition to commit: the event, the fault record after it, and the notification
/// id the store must still hold for the alarm (`None` for a raise) — the optimistic-concurrency
/// guard that keeps the manager and the store from drifting apart.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// The event (history, outbox when notified, stream).
    pub event: AlarmEvent,
    /// The fault record after the transition.
    pub fault: FaultRecord,
    /// Notification id the transition was computed from.
    pub expected: Option<u64>,
}
