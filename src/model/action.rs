//! Automated handling: what a rule did, or in a dry run would have done, about one alarm, step
//! by step. The record is the audit trail: it is committed before a step runs and after it
//! ends, and it is what the API, `faults show` and the reports read.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{AlarmId, FaultId, Severity, Timestamp, TransitionKind};

/// The condition of the alarm an action rule's open breaker raises (object `rule=NAME`).
pub const ACTION_BREAKER: &str = "action_breaker_open";

/// Identifies one run of a rule on one alarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ActionId(pub u64);

impl fmt::Display for ActionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Which of an alarm's transitions a rule acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Trigger {
    /// First raised.
    Raised,
    /// Went up a severity.
    Escalated,
    /// Cleared.
    Cleared,
    /// Its acknowledge target passed unacknowledged.
    AckOverdue,
}

impl Trigger {
    /// The trigger a transition is, if any.
    pub fn of(kind: TransitionKind) -> Option<Trigger> {
        match kind {
            TransitionKind::Raised => Some(Trigger::Raised),
            TransitionKind::Escalated => Some(Trigger::Escalated),
            TransitionKind::Cleared => Some(Trigger::Cleared),
            TransitionKind::AckOverdue => Some(Trigger::AckOverdue),
            _ => None,
        }
    }

    /// Name, as in config.
    pub fn name(self) -> &'static str {
        match self {
            Trigger::Raised => "raised",
            Trigger::Escalated => "escalated",
            Trigger::Cleared => "cleared",
            Trigger::AckOverdue => "ack-overdue",
        }
    }

    /// Every trigger.
    pub const ALL: [Trigger; 4] = [
        Trigger::Raised,
        Trigger::Escalated,
        Trigger::Cleared,
        Trigger::AckOverdue,
    ];
}

super::named_enum!(Trigger, "trigger", Trigger::ALL);

/// Whether a rule's steps really run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Every step is recorded exactly as it would run, and none runs (the default).
    #[default]
    DryRun,
    /// Steps run.
    Live,
}

impl Mode {
    /// Name, as in config.
    pub fn name(self) -> &'static str {
        match self {
            Mode::DryRun => "dry-run",
            Mode::Live => "live",
        }
    }
}

/// Where an action stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActionState {
    /// Waiting for an engineer to approve or reject it.
    AwaitingApproval,
    /// The device is in maintenance: it starts when the window ends, if the alarm is still up.
    Paused,
    /// Waiting for a free slot (`[actions] max-concurrent`).
    Queued,
    /// A step is running (or, in a dry run, being walked through).
    Running,
    /// Every step did what it should.
    Succeeded,
    /// A step failed, or the alarm did not clear in time.
    Failed,
    /// A step started and the daemon stopped before its outcome was recorded: it may or may
    /// not have run, and it is never run again. A human must look.
    Unknown,
    /// An engineer rejected it.
    Rejected,
    /// Nobody decided before the approval expired.
    Expired,
    /// The alarm cleared before it could start, or its rule went away.
    Cancelled,
    /// Not run: a rate limit, or the rule's breaker is open.
    Skipped,
}

impl ActionState {
    /// Name, as in the API and the CLI.
    pub fn name(self) -> &'static str {
        match self {
            ActionState::AwaitingApproval => "awaiting-approval",
            ActionState::Paused => "paused",
            ActionState::Queued => "queued",
            ActionState::Running => "running",
            ActionState::Succeeded => "succeeded",
            ActionState::Failed => "failed",
            ActionState::Unknown => "unknown",
            ActionState::Rejected => "rejected",
            ActionState::Expired => "expired",
            ActionState::Cancelled => "cancelled",
            ActionState::Skipped => "skipped",
        }
    }

    /// Nothing more will happen to it.
    pub fn is_final(self) -> bool {
        !matches!(
            self,
            ActionState::AwaitingApproval
                | ActionState::Paused
                | ActionState::Queued
                | ActionState::Running
        )
    }

    /// Every state.
    pub const ALL: [ActionState; 11] = [
        ActionState::AwaitingApproval,
        ActionState::Paused,
        ActionState::Queued,
        ActionState::Running,
        ActionState::Succeeded,
        ActionState::Failed,
        ActionState::Unknown,
        ActionState::Rejected,
        ActionState::Expired,
        ActionState::Cancelled,
        ActionState::Skipped,
    ];
}

super::named_enum!(ActionState, "action state", ActionState::ALL);

/// What one step does, rendered from the rule's templates when the action was planned (so the
/// record shows exactly what ran). Secrets are never part of it: they reach a step only
/// through its environment or a header, taken from the config when it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", rename_all_fields = "camelCase")]
pub enum StepPlan {
    /// Run a program: no shell, the argument vector as given.
    Exec {
        /// Program and arguments.
        argv: Vec<String>,
        /// Names of the environment variables it gets (values of secrets not shown).
        env: Vec<String>,
        /// Killed after this many milliseconds.
        timeout_ms: u64,
    },
    /// POST the alarm as JSON.
    Webhook {
        /// Where.
        url: String,
        /// The body.
        body: String,
        /// Each attempt's timeout, in milliseconds.
        timeout_ms: u64,
        /// Attempts after the first, with doubling back-off.
        retries: u32,
    },
    /// SET one object on the alarm's device with its credential, then read it back.
    SnmpSet {
        /// The object (numeric OID, dotted).
        oid: String,
        /// What it is set to.
        value: SetValue,
        /// Each request's timeout, in milliseconds.
        timeout_ms: u64,
    },
    /// Publish a message on an MQTT topic (QoS 1, acknowledged by the broker).
    Notify {
        /// The topic.
        topic: String,
        /// The message (JSON: the action, its rule, this text and the alarm).
        payload: String,
        /// The broker's acknowledgement is waited for this many milliseconds.
        timeout_ms: u64,
    },
    /// Succeed if the alarm clears within this many milliseconds of the step's start.
    WaitClear {
        /// How long.
        within_ms: u64,
    },
}

impl StepPlan {
    /// The step's kind, as in config and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            StepPlan::Exec { .. } => "exec",
            StepPlan::Webhook { .. } => "webhook",
            StepPlan::SnmpSet { .. } => "snmp-set",
            StepPlan::Notify { .. } => "notify",
            StepPlan::WaitClear { .. } => "wait-clear",
        }
    }

    /// One line for people: `exec /usr/local/bin/bounce bh-r1 3`.
    pub fn describe(&self) -> String {
        match self {
            StepPlan::Exec { argv, env, .. } => {
                let env: String = env.iter().map(|e| format!("{e}=*** ")).collect();
                format!("exec {env}{}", argv.join(" "))
            }
            StepPlan::Webhook { url, retries, .. } => {
                format!("webhook POST {url} (retries {retries})")
            }
            StepPlan::SnmpSet { oid, value, .. } => format!("snmp-set {oid} = {value}"),
            StepPlan::Notify { topic, .. } => format!("notify MQTT {topic}"),
            StepPlan::WaitClear { within_ms } => {
                format!(
                    "wait-clear {}",
                    humantime::format_duration(std::time::Duration::from_millis(*within_ms))
                )
            }
        }
    }
}

/// A value an `snmp-set` step writes: an INTEGER (`ifAdminStatus` 2 is down) or an OCTET
/// STRING (`ifAlias`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SetValue {
    /// INTEGER.
    Integer(i64),
    /// OCTET STRING.
    Text(String),
}

impl fmt::Display for SetValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetValue::Integer(n) => write!(f, "{n}"),
            SetValue::Text(t) => write!(f, "{t:?}"),
        }
    }
}

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepOutcome {
    /// It did what it should (exit 0, a 2xx answer, the alarm cleared).
    Ok,
    /// It did not.
    Failed,
    /// It ran out of time.
    TimedOut,
    /// Not run: the rule is a dry run.
    DryRun,
    /// Started, and the daemon stopped before the outcome was recorded.
    Unknown,
}

impl StepOutcome {
    /// Name, as in the API.
    pub fn name(self) -> &'static str {
        match self {
            StepOutcome::Ok => "ok",
            StepOutcome::Failed => "failed",
            StepOutcome::TimedOut => "timed-out",
            StepOutcome::DryRun => "dry-run",
            StepOutcome::Unknown => "unknown",
        }
    }
}

/// One step of an action, as planned and as it went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepRecord {
    /// What it does.
    pub plan: StepPlan,
    /// When it started (committed before it runs).
    pub started_at: Option<Timestamp>,
    /// When its outcome was recorded.
    pub ended_at: Option<Timestamp>,
    /// How it ended.
    pub outcome: Option<StepOutcome>,
    /// The exit code of an `exec`.
    pub exit_code: Option<i32>,
    /// The last HTTP status of a `webhook`.
    pub http_status: Option<u16>,
    /// What it printed or answered, cut to `[actions] max-output-bytes`, made printable.
    pub output: String,
    /// Why it ended so, for people.
    pub detail: String,
}

impl StepRecord {
    /// A step not started yet.
    pub fn planned(plan: StepPlan) -> Self {
        Self {
            plan,
            started_at: None,
            ended_at: None,
            outcome: None,
            exit_code: None,
            http_status: None,
            output: String::new(),
            detail: String::new(),
        }
    }
}

/// An engineer's decision on an action that needed approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    /// Who.
    pub by: String,
    /// When.
    pub at: Timestamp,
    /// Approved (else rejected).
    pub approved: bool,
}

/// One run of a rule on one alarm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionRecord {
    /// Id.
    pub id: ActionId,
    /// The rule's name.
    pub rule: String,
    /// Dry run or live.
    pub mode: Mode,
    /// The transition that started it.
    pub trigger: Trigger,
    /// The alarm it acts on.
    pub alarm_id: AlarmId,
    /// The alarm's fault record.
    pub fault_id: FaultId,
    /// The alarm's device.
    pub device: String,
    /// The alarm's object.
    pub object: String,
    /// The alarm's condition.
    pub condition: String,
    /// The alarm's severity at the trigger.
    pub severity: Severity,
    /// When planned.
    pub created_at: Timestamp,
    /// Where it stands.
    pub state: ActionState,
    /// Why it stands so, for people (`paused: bh-r1 is in maintenance`).
    pub reason: String,
    /// Who approved or rejected it.
    pub decision: Option<Decision>,
    /// An approval not given by then expires it.
    pub expires_at: Option<Timestamp>,
    /// The steps, in order.
    pub steps: Vec<StepRecord>,
    /// When it reached a final state.
    pub ended_at: Option<Timestamp>,
}

impl ActionRecord {
    /// The step started and not ended, if any.
    pub fn running_step(&self) -> Option<usize> {
        self.steps
            .iter()
            .position(|s| s.started_at.is_some() && s.outcome.is_none())
    }

    /// The first step not started.
    pub fn next_step(&self) -> Option<usize> {
        self.steps.iter().position(|s| s.started_at.is_none())
    }
}

/// A rule's breaker: failures in a row, and whether they opened it. Stored, so a restart does
/// not close a breaker that tripped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleState {
    /// Failed actions since the last success (or reset).
    pub failures_in_row: u32,
    /// Open: the rule plans nothing until an engineer resets it.
    pub open: bool,
    /// When it opened.
    pub opened_at: Option<Timestamp>,
    /// The device of the action that opened it (the breaker's alarm is raised there).
    pub tripped_on: Option<String>,
}

/// How a step the runner ran ended.
#[derive(Debug, Clone, PartialEq)]
pub struct StepResult {
    /// The outcome.
    pub outcome: StepOutcome,
    /// An `exec`'s exit code.
    pub exit_code: Option<i32>,
    /// A `webhook`'s last HTTP status.
    pub http_status: Option<u16>,
    /// Output excerpt.
    pub output: String,
    /// Why, for people.
    pub detail: String,
}

/// Why an engineer's decision was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    /// No such action.
    #[error("no action {0}")]
    Unknown(ActionId),
    /// It is not waiting for a decision.
    #[error("action {0} is {1}, not awaiting approval")]
    NotAwaiting(ActionId, &'static str),
    /// No such rule.
    #[error("no action rule `{0}`")]
    UnknownRule(String),
    /// The rule's breaker is closed already.
    #[error("the breaker of rule `{0}` is not open")]
    BreakerClosed(String),
}
