//! The post-incident report of a serious fault: what happened when, why, how fast it was
//! handled against the targets, what it cost, whether it came back, and what the review
//! concluded. Assembled when the fault closes and kept with it.

use serde::{Deserialize, Serialize};

use super::{AlarmId, Category, FaultId, Severity, Timestamp};

/// One line of the timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TimelineEntry {
    /// When.
    pub at: Timestamp,
    /// What, in words (`raised critical`, `acknowledged`, `note`, `action isolate-flood ...`).
    pub what: String,
    /// Who, when a person did it.
    pub by: Option<String>,
    /// Detail: the note, the alarm's text, the step's outcome.
    pub detail: String,
}

/// An alarm suppressed below the root cause.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SuppressedAlarm {
    /// The symptom's fault.
    pub fault: FaultId,
    /// Its device.
    pub device: String,
    /// Its object.
    pub object: String,
    /// Its condition.
    pub condition: String,
    /// Its worst severity.
    pub severity: Severity,
}

/// How fast it was handled, in seconds (maintenance left out), against the targets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Handling {
    /// Time to acknowledge, if it was.
    pub mtta_secs: Option<u64>,
    /// The tier's acknowledge target.
    pub ack_target_secs: Option<u64>,
    /// The acknowledge target passed.
    pub ack_breached: bool,
    /// Time to repair.
    pub mttr_secs: Option<u64>,
    /// The tier's restore target.
    pub restore_target_secs: Option<u64>,
    /// The restore target passed.
    pub restore_breached: bool,
    /// The reference MTTR it is held against (`[reports] reference-mttr`, 4.2 h by default).
    pub reference_mttr_secs: u64,
}

/// Earlier faults like this one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Recurrence {
    /// How far back it looks, in days.
    pub days: u64,
    /// Faults of the same device, object and condition raised in that time before this one.
    pub same_condition: Vec<FaultId>,
    /// Faults of the same device, any condition.
    pub same_device: Vec<FaultId>,
}

/// What it cost customers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cost {
    /// Services it touched.
    pub services: Vec<String>,
    /// The most customers affected at once.
    pub peak_customers: u64,
    /// Customer-minutes.
    pub customer_minutes: u64,
    /// Complaints linked to it.
    pub complaints: Vec<String>,
    /// Of those, received before it was raised (the customers knew first).
    pub complaints_before: usize,
}

/// What the review concluded: edited by engineers, with who and when.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Review {
    /// The cause, in words.
    pub cause: Option<String>,
    /// What is done so it does not happen again.
    pub corrective_action: Option<String>,
    /// Who last edited it.
    pub by: Option<String>,
    /// When.
    pub at: Option<Timestamp>,
}

/// The report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IncidentReport {
    /// The fault.
    pub fault: FaultId,
    /// Its (last) alarm.
    pub alarm: AlarmId,
    /// Device.
    pub device: String,
    /// Object.
    pub object: String,
    /// Condition.
    pub condition: String,
    /// Category.
    pub category: Category,
    /// Worst severity.
    pub peak_severity: Severity,
    /// Site when raised.
    pub site: Option<String>,
    /// When raised.
    pub raised_at: Timestamp,
    /// When cleared.
    pub cleared_at: Option<Timestamp>,
    /// Who cleared it by hand, if someone did.
    pub cleared_by: Option<String>,
    /// The alarm's text when raised (the value, the level; top talkers for flows).
    pub evidence: String,
    /// Everything that happened, in order.
    pub timeline: Vec<TimelineEntry>,
    /// The root alarm this one was a symptom of, if it was.
    pub symptom_of: Option<AlarmId>,
    /// The alarms suppressed below it.
    pub symptoms: Vec<SuppressedAlarm>,
    /// How fast.
    pub handling: Handling,
    /// Earlier faults like it.
    pub recurrence: Recurrence,
    /// What it cost.
    pub cost: Cost,
    /// The review.
    pub review: Review,
    /// When the report was assembled.
    pub assembled_at: Timestamp,
    /// What the series around it showed; stored beside the report (its own key), so reports
    /// kept before it existed still read.
    #[serde(skip)]
    pub context: Context,
}

/// What the device's other series showed around the fault.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Context {
    /// The device's ICMP probe latency, each day's p95 (midnight UTC; ms), from three days
    /// before the raise to the day after the clear.
    pub probe_p95: Vec<(Timestamp, f64)>,
}
