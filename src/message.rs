//! What flows between the stages, in the order of the data-flow picture: ingest's items,
//! detection's verdicts, the alarm manager's inputs, and the engineers' commands with their
//! results. Ground floor: every stage speaks these types, none owns them.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use crate::model::{
    ActionError, ActionId, ActionRecord, Alarm, AlarmEvent, AlarmId, Category, Complaint,
    ComplaintError, DeviceEvent, FaultId, FaultRecord, MaintenanceConfig, NewComplaint, Note,
    Place, RuleState, Sample, SeriesKey, Severity, ThresholdInfo, Timestamp,
};

/// What flows from ingest into detection, in one ordered channel: measurements, events, and
/// (for replays, whose clock is the data's) the passing of time.
#[derive(Debug, Clone, PartialEq)]
pub enum Ingest {
    /// A measurement, for detection.
    Sample(Sample),
    /// An event that is an alarm by itself; detection passes it on in order.
    Event(DeviceEvent),
    /// Data time has reached this instant (replay only; the daemon's clock is the wall clock).
    Tick(Timestamp),
    /// A customer's complaint, in order with the data around it (replay only; the daemon takes
    /// complaints through the API, which waits for the answer).
    Complaint(NewComplaint),
    /// An engineer's acknowledgement on the data clock (replay only).
    Ack(EngineerAck),
}

/// An ingest item with the moment it was offered to the pipeline: how long a sample takes from
/// there to its transition on the bus is `noctua_pipeline_latency_seconds`.
#[derive(Debug, Clone)]
pub struct Arrived {
    /// The item.
    pub item: Ingest,
    /// When ingest offered it (monotonic).
    pub at: Instant,
}

/// An engineer acknowledging the active alarm of a reduction key at a time of the data's.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineerAck {
    /// When.
    pub at: Timestamp,
    /// The alarm's device.
    pub device: String,
    /// Its object.
    pub object: String,
    /// Its condition.
    pub condition: String,
    /// Who.
    pub by: String,
    /// A note for the fault record.
    pub note: Option<String>,
}

impl Ingest {
    /// The device a sample or event is of; `None` for the replay-only items.
    pub fn device(&self) -> Option<&str> {
        match self {
            Ingest::Sample(s) => Some(&s.series.device),
            Ingest::Event(e) => Some(&e.device),
            Ingest::Tick(_) | Ingest::Complaint(_) | Ingest::Ack(_) => None,
        }
    }
}

impl From<Sample> for Ingest {
    fn from(s: Sample) -> Self {
        Ingest::Sample(s)
    }
}

impl From<DeviceEvent> for Ingest {
    fn from(e: DeviceEvent) -> Self {
        Ingest::Event(e)
    }
}

/// What detection concluded about a series: a tier change, with the evidence for the alarm.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// The series.
    pub series: SeriesKey,
    /// When (the sample's time).
    pub at: Timestamp,
    /// Which rule fired; the third part of the alarm's reduction key.
    pub condition: String,
    /// The new tier; `Cleared` ends the condition.
    pub severity: Severity,
    /// Fault category.
    pub category: Category,
    /// What was compared with what.
    pub threshold: Option<ThresholdInfo>,
    /// Why, in words, for `additionalText`.
    pub text: String,
}

/// Why an engineer's command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlarmError {
    /// No active alarm has that id (never existed, or already cleared).
    #[error("no active alarm {0}")]
    NotActive(AlarmId),
    /// No active alarm has that reduction key (device, object, condition).
    #[error("no active alarm for {0}")]
    NoSuchKey(String),
}

/// What the alarm manager takes in, on one channel so their order is kept.
#[derive(Debug)]
pub enum AlarmInput {
    /// From detection, with when its sample arrived.
    Verdict(Verdict, Instant),
    /// From a source (reachability, link state, reboot), with when it arrived.
    Event(DeviceEvent, Instant),
    /// Data time, for replays ([`Clock::Data`]).
    Tick(Timestamp),
    /// An engineer's command; answered once its transitions are durable.
    Command(AlarmCommand, oneshot::Sender<CommandResult>),
    /// A note on a fault, open or closed; answered once it is durable.
    Note(FaultId, Note, oneshot::Sender<CommandResult>),
    /// Commit what came before, then hold still (no commit) until the answered [`Held`] is
    /// dropped: a backup reads the alarm trees as of one moment.
    Hold(oneshot::Sender<Held>),
    /// Customers per place after an import (already durable): impact counts with them from
    /// the next transition on.
    Customers(HashMap<Place, u64>),
    /// A complaint received or answered; answered with the complaint once it is durable.
    Complaint(
        ComplaintCommand,
        oneshot::Sender<Result<Complaint, CommandError>>,
    ),
    /// A replayed acknowledgement, on the data clock.
    Ack(EngineerAck),
    /// An engineer's decision on an action, or a breaker reset; answered once durable.
    Action(
        ActionCommand,
        oneshot::Sender<Result<ActionAnswer, CommandError>>,
    ),
    /// Cluster: what this member now owns; sent before its pollers and probes are told, so
    /// an adopted alarm is in place before any sample of its device comes.
    Handover(Handover),
}

/// Cluster: the devices another member holds now, the active alarms this member takes over
/// with the ones it has just won, and where its own sequence numbers start.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Handover {
    /// This member's first sequence number (its rank's range): alarm and fault ids are
    /// sequence numbers, so members' ranges keep them unique across the cluster.
    pub seq_floor: u64,
    /// Every device another member has claimed: their alarms here are handed over. A device
    /// this member only stopped working on (cut off from NATS) keeps its alarms until
    /// another member has it, so nothing goes while nobody holds it.
    pub elsewhere: HashSet<String>,
    /// Devices just won, each with the alarms its previous owner replicated.
    pub taken: Vec<Taken>,
}

/// One device just won, and its active alarms (with their open faults) as replicated.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Taken {
    /// The device.
    pub device: String,
    /// Its active alarms, each with its open fault record.
    pub alarms: Vec<(Alarm, FaultRecord)>,
}

/// What an engineer does with automated handling.
#[derive(Debug, Clone, PartialEq)]
pub enum ActionCommand {
    /// Approve (`approved`) or reject an action waiting for it.
    Decide {
        /// The action.
        id: ActionId,
        /// Who.
        by: String,
        /// Approved, else rejected.
        approved: bool,
    },
    /// Close a rule's open breaker.
    Reset {
        /// The rule.
        rule: String,
        /// Who.
        by: String,
    },
}

/// What an action command committed.
#[derive(Debug, Clone, PartialEq)]
pub enum ActionAnswer {
    /// The action after the decision.
    Action(ActionRecord),
    /// The rule's breaker after the reset.
    Rule(String, RuleState),
}

/// What the CRM or an agent does with a complaint.
#[derive(Debug, Clone, PartialEq)]
pub enum ComplaintCommand {
    /// A new complaint, at this time (the wall clock, or a replay's).
    Receive(NewComplaint, Timestamp),
    /// Someone answered the customer.
    Ack {
        /// Complaint id.
        id: String,
        /// Who.
        by: String,
    },
    /// Resolved by hand.
    Resolve {
        /// Complaint id.
        id: String,
        /// Who.
        by: String,
        /// How.
        note: String,
    },
}

/// The alarm stage stays still while this lives (at most [`HOLD_AT_MOST`]).
#[derive(Debug)]
pub struct Held(pub oneshot::Sender<()>);

/// The longest the alarm stage holds still for one [`AlarmInput::Hold`], so a stuck reader
/// cannot stop alarms for good.
pub const HOLD_AT_MOST: Duration = Duration::from_secs(120);

/// What an engineer can do to an alarm.
#[derive(Debug, Clone, PartialEq)]
pub enum AlarmCommand {
    /// Acknowledge.
    Ack {
        /// Alarm.
        id: AlarmId,
        /// Who.
        user: String,
        /// Optional note for the fault record.
        note: Option<String>,
    },
    /// Withdraw an acknowledgement.
    Unack {
        /// Alarm.
        id: AlarmId,
        /// Who.
        user: String,
    },
    /// Clear by hand.
    Clear {
        /// Alarm.
        id: AlarmId,
        /// Who.
        user: String,
        /// Optional note for the fault record.
        note: Option<String>,
    },
    /// The maintenance windows created through the API changed (already stored).
    SetMaintenance(Vec<MaintenanceConfig>),
}

/// The committed transitions a command caused (none if it changed nothing), or why not.
pub type CommandResult = Result<Vec<AlarmEvent>, CommandError>;

/// Why a command did not take effect.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CommandError {
    /// The manager refused it.
    #[error(transparent)]
    Refused(#[from] AlarmError),
    /// Its transitions could not be committed.
    #[error("not committed: {0}")]
    Store(String),
    /// The daemon is stopping.
    #[error("the alarm manager is stopping")]
    Stopping,
    /// No fault with that id.
    #[error("no fault {0}")]
    NoFault(u64),
    /// The fault has this many notes, the most allowed.
    #[error("the fault has {0} notes, the most allowed (alarms.max-notes-per-fault)")]
    NotesFull(usize),
    /// A complaint command was refused.
    #[error(transparent)]
    Complaint(#[from] ComplaintError),
    /// An action command was refused.
    #[error(transparent)]
    Action(#[from] ActionError),
    /// Not confirmed within [`COMMAND_WAIT`] (a stalled disk): it may still take effect.
    #[error("not confirmed within {COMMAND_WAIT:?} (the store is slow); it may still take effect")]
    Timeout,
}

/// How long an engineer's command waits for its commit and flush before it is answered as
/// unconfirmed: well past a healthy flush, short of an HTTP client giving up.
pub const COMMAND_WAIT: Duration = Duration::from_secs(10);

/// A handle that sends engineers' commands to the alarm stage and waits for them to be durable.
///
/// It holds only a weak sender, so an open HTTP connection never keeps the pipeline from
/// draining at shutdown.
#[derive(Clone)]
pub struct Commander(mpsc::WeakSender<AlarmInput>);

impl Commander {
    /// Wraps the alarm stage's input.
    pub fn new(inputs: &mpsc::Sender<AlarmInput>) -> Self {
        Self(inputs.downgrade())
    }

    /// Runs a command; returns the transitions it committed.
    pub async fn run(&self, command: AlarmCommand) -> CommandResult {
        self.ask(|reply| AlarmInput::Command(command, reply))
            .await?
    }

    /// Adds a note to a fault, in order with the transitions around it.
    pub async fn note(&self, fault: FaultId, note: Note) -> CommandResult {
        self.ask(|reply| AlarmInput::Note(fault, note, reply))
            .await?
    }

    /// Runs a complaint command; returns the complaint as committed.
    pub async fn complaint(&self, command: ComplaintCommand) -> Result<Complaint, CommandError> {
        self.ask(|reply| AlarmInput::Complaint(command, reply))
            .await?
    }

    /// Runs an action command; returns what it committed.
    pub async fn action(&self, command: ActionCommand) -> Result<ActionAnswer, CommandError> {
        self.ask(|reply| AlarmInput::Action(command, reply)).await?
    }

    /// Hands the alarm stage the customer counts after an import.
    pub async fn customers(&self, counts: HashMap<Place, u64>) -> Result<(), CommandError> {
        let tx = self.0.upgrade().ok_or(CommandError::Stopping)?;
        tokio::time::timeout(COMMAND_WAIT, tx.send(AlarmInput::Customers(counts)))
            .await
            .map_err(|_| CommandError::Timeout)?
            .map_err(|_| CommandError::Stopping)
    }

    /// Holds the alarm stage still, everything before committed; it resumes when the answer is
    /// dropped.
    pub async fn hold(&self) -> Result<Held, CommandError> {
        self.ask(AlarmInput::Hold).await
    }

    /// Sends one input and waits for its answer. Both the queue (a busy stage) and the commit
    /// (a slow disk) count against [`COMMAND_WAIT`].
    async fn ask<T>(
        &self,
        input: impl FnOnce(oneshot::Sender<T>) -> AlarmInput,
    ) -> Result<T, CommandError> {
        let tx = self.0.upgrade().ok_or(CommandError::Stopping)?;
        let (reply, answer) = oneshot::channel();
        let asked = async move {
            tx.send(input(reply))
                .await
                .map_err(|_| CommandError::Stopping)?;
            drop(tx);
            answer.await.map_err(|_| CommandError::Stopping)
        };
        tokio::time::timeout(COMMAND_WAIT, asked)
            .await
            .unwrap_or(Err(CommandError::Timeout))
    }
}

/// Where the alarm manager's notion of "now" for time-driven rules comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    /// The daemon: the wall clock, every second.
    Wall,
    /// Replays: only the [`AlarmInput::Tick`]s in the input, so results do not depend on how
    /// fast the replay ran.
    Data,
}

/// Interface speeds in bit/s by device and ifIndex, as the SNMP poller learned them
/// (ifHighSpeed, or the configured override). The poller publishes them on a
/// `tokio::sync::watch` channel; the NetFlow collector reads them for utilisation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InterfaceSpeeds(HashMap<String, HashMap<u32, u64>>);

impl InterfaceSpeeds {
    /// A device's speeds after a poll.
    pub fn set(&mut self, device: &str, speeds: HashMap<u32, u64>) {
        self.0.insert(device.to_owned(), speeds);
    }

    /// The speed of one interface in bit/s, if known.
    pub fn get(&self, device: &str, if_index: u32) -> Option<u64> {
        self.0.get(device)?.get(&if_index).copied()
    }
}
