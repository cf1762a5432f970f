//! Alarms and what they are made of: severity, category, the X.733/TS 28.532 alarm record, its
//! transitions, and the fault record that outlives it.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{AlarmId, FaultId, FaultImpact, Impact, Role, Timestamp};

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

    /// A severity an alarm can be raised at, by name (`cleared` is none): trap severities in
    /// config and severity filters in the API.
    pub fn raised(name: &str) -> Option<Severity> {
        name.parse().ok().filter(|s| *s != Severity::Cleared)
    }

    /// Serde: a [`Severity::raised`] name, as config and scenario files write one (`major`).
    pub fn deserialize_raised<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Severity, D::Error> {
        let name = String::deserialize(d)?;
        Severity::raised(&name).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown severity `{name}`: expected warning, minor, major or critical"
            ))
        })
    }

    /// Serde: [`Severity::deserialize_raised`] for an optional key.
    pub fn deserialize_some_raised<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Severity>, D::Error> {
        Severity::deserialize_raised(d).map(Some)
    }
}

named_enum!(
    Severity,
    "severity",
    [
        Severity::Cleared,
        Severity::Indeterminate,
        Severity::Warning,
        Severity::Minor,
        Severity::Major,
        Severity::Critical,
    ]
);

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

    /// Every category.
    pub const ALL: [Category; 4] = [
        Category::Performance,
        Category::Service,
        Category::Equipment,
        Category::Security,
    ];
}

named_enum!(Category, "category", Category::ALL);

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

/// Which deviations from the usual the anomaly detector counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Watch {
    /// Only rises (latency, loss).
    Rising,
    /// Only drops.
    Falling,
    /// Both.
    Both,
}

impl Watch {
    /// Name, as in config.
    pub fn name(self) -> &'static str {
        match self {
            Watch::Rising => "rising",
            Watch::Falling => "falling",
            Watch::Both => "both",
        }
    }
}

named_enum!(
    Watch,
    "direction",
    [Watch::Rising, Watch::Falling, Watch::Both]
);

/// A [`Watch`], or `off` (not watched): the one spelling of config's `direction` keys and the
/// backtest's `--direction`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watching(pub Option<Watch>);

impl std::str::FromStr for Watching {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s.eq_ignore_ascii_case("off") {
            return Ok(Self(None));
        }
        s.parse()
            .map(|w| Self(Some(w)))
            .map_err(|_| format!("unknown direction `{s}`: expected rising, falling, both or off"))
    }
}

impl<'de> Deserialize<'de> for Watching {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
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
///
/// `I` is the impact's type: stores of schema 3 had none (`()`, no bytes in the store's encoding),
/// which is how their records are read to migrate them; everything else uses the default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Alarm<I = Impact> {
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
    /// noctua: the services and customers behind it; filled in by impact after the alarm
    /// manager (which leaves it as it was), before the transition is committed.
    pub impact: I,
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

impl<I> Alarm<I> {
    /// The same alarm with another impact (schema migration).
    pub fn map_impact<J>(self, f: impl FnOnce(I) -> J) -> Alarm<J> {
        Alarm {
            alarm_id: self.alarm_id,
            object_instance: self.object_instance,
            notification_id: self.notification_id,
            alarm_raised_time: self.alarm_raised_time,
            alarm_changed_time: self.alarm_changed_time,
            alarm_cleared_time: self.alarm_cleared_time,
            alarm_type: self.alarm_type,
            probable_cause: self.probable_cause,
            specific_problem: self.specific_problem,
            perceived_severity: self.perceived_severity,
            trend_indication: self.trend_indication,
            threshold_info: self.threshold_info,
            root_cause_indicator: self.root_cause_indicator,
            ack_state: self.ack_state,
            ack_user_id: self.ack_user_id,
            ack_time: self.ack_time,
            clear_user_id: self.clear_user_id,
            additional_text: self.additional_text,
            device: self.device,
            object: self.object,
            condition: self.condition,
            category: self.category,
            count: self.count,
            last_seen: self.last_seen,
            root_cause_alarm_id: self.root_cause_alarm_id,
            suppressed_by: self.suppressed_by,
            notified: self.notified,
            impact: f(self.impact),
        }
    }
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
    /// Cluster: this member took the alarm over, as it was, with its device from a member
    /// that died or gave the device up. Not a raise: the alarm keeps its id and its fault.
    Adopted,
    /// Cluster: the alarm's device went to another member, which carries it on; it leaves
    /// this member's active alarms and open faults without a clear.
    HandedOver,
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
            TransitionKind::Adopted => "adopted",
            TransitionKind::HandedOver => "handed_over",
        }
    }
}

/// One committed alarm transition: a history entry, an outbox message and a stream event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlarmEvent<I = Impact> {
    /// Global, gap-free, monotonic sequence; equals the alarm's `notificationId`.
    pub seq: u64,
    /// When the transition happened.
    pub at: Timestamp,
    /// What happened.
    pub kind: TransitionKind,
    /// The alarm as it is after the transition.
    pub alarm: Alarm<I>,
    /// Whether the transition was published (suppressed ones are only recorded).
    pub notified: bool,
}

impl<I> AlarmEvent<I> {
    /// The same event with another impact (schema migration).
    pub fn map_impact<J>(self, f: impl FnOnce(I) -> J) -> AlarmEvent<J> {
        AlarmEvent {
            seq: self.seq,
            at: self.at,
            kind: self.kind,
            alarm: self.alarm.map_impact(f),
            notified: self.notified,
        }
    }
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

/// How much engineers may write on one fault (`[alarms] max-notes-per-fault`,
/// `max-note-bytes`): a note is for people, and a pasted 2 MB log is not one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoteLimits {
    /// Notes per fault, the ack and clear notes included.
    pub per_fault: usize,
    /// Bytes of one note's text.
    pub bytes: usize,
}

/// Longest name of who wrote a note or acted on an alarm.
pub const MAX_AUTHOR_BYTES: usize = 128;

/// Why a note cannot be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// No author or no text.
    #[error("the author and the text must not be empty")]
    Empty,
    /// The author's name is longer than [`MAX_AUTHOR_BYTES`].
    #[error("the author is {0} bytes; at most {MAX_AUTHOR_BYTES}")]
    AuthorTooLong(usize),
    /// The text is longer than the limit.
    #[error("the note is {bytes} bytes; at most {max} (alarms.max-note-bytes)")]
    TooLong {
        /// Its size.
        bytes: usize,
        /// The limit.
        max: usize,
    },
}

impl Note {
    /// A note, checked against the limits (trimmed of surrounding blank space).
    pub fn new(at: Timestamp, by: &str, text: &str, limits: NoteLimits) -> Result<Self, NoteError> {
        let (by, text) = (by.trim(), text.trim());
        if by.is_empty() || text.is_empty() {
            return Err(NoteError::Empty);
        }
        if by.len() > MAX_AUTHOR_BYTES {
            return Err(NoteError::AuthorTooLong(by.len()));
        }
        if text.len() > limits.bytes {
            return Err(NoteError::TooLong {
                bytes: text.len(),
                max: limits.bytes,
            });
        }
        Ok(Self {
            at,
            by: by.to_owned(),
            text: text.to_owned(),
        })
    }
}

/// The durable history of one alarm from detection to clear, for MTTA/MTTR.
///
/// `I` is the impact's type, as for [`Alarm`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultRecord<I = FaultImpact> {
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
    /// Engineers' notes, in order. The store keeps them apart, one key per note, so a note
    /// never rewrites the record and a transition never rewrites the notes: stored records
    /// carry none, and reading a record fills them in.
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
    /// What it cost customers (filled in by impact, like the alarm's).
    pub impact: I,
}

impl<I> FaultRecord<I> {
    /// The same record with another impact (schema migration).
    pub fn map_impact<J>(self, f: impl FnOnce(I) -> J) -> FaultRecord<J> {
        FaultRecord {
            id: self.id,
            alarm_id: self.alarm_id,
            device: self.device,
            object: self.object,
            condition: self.condition,
            category: self.category,
            peak_severity: self.peak_severity,
            raised_at: self.raised_at,
            acked_at: self.acked_at,
            acked_by: self.acked_by,
            cleared_at: self.cleared_at,
            cleared_by: self.cleared_by,
            root_cause: self.root_cause,
            notes: self.notes,
            site: self.site,
            role: self.role,
            reopened: self.reopened,
            ack_breached: self.ack_breached,
            restore_breached: self.restore_breached,
            ack_maintenance_ms: self.ack_maintenance_ms,
            repair_maintenance_ms: self.repair_maintenance_ms,
            impact: f(self.impact),
        }
    }
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
    /// The engineer's note that came with it (an ack or a clear), stored with it.
    pub note: Option<Note>,
}
