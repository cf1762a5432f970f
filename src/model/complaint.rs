//! Complaints: a customer's report of a problem, linked to the fault that explains it, with
//! its own response targets.

use serde::{Deserialize, Serialize};

use super::{AlarmId, FaultId, Place, Subject, Timestamp};

/// Condition name of the alarm unexplained customer complaints raise.
pub const CUSTOMER_REPORTED: &str = "customer_reported";

/// How a complaint came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// A call to the call centre or the IVR.
    Phone,
    /// The operator's app.
    App,
    /// The web site or a chat.
    Web,
    /// E-mail.
    Email,
    /// A shop.
    Store,
    /// Social media, a field engineer, anything else.
    Other,
}

impl Channel {
    /// Name, as in the API.
    pub fn name(self) -> &'static str {
        match self {
            Channel::Phone => "phone",
            Channel::App => "app",
            Channel::Web => "web",
            Channel::Email => "email",
            Channel::Store => "store",
            Channel::Other => "other",
        }
    }
}

named_enum!(
    Channel,
    "channel",
    [
        Channel::Phone,
        Channel::App,
        Channel::Web,
        Channel::Email,
        Channel::Store,
        Channel::Other
    ]
);

/// What the customer says is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Symptom {
    /// No service at all.
    NoService,
    /// Slow data.
    Slow,
    /// Calls or sessions drop.
    Drops,
    /// Poor voice quality.
    VoiceQuality,
    /// Anything else.
    Other,
}

impl Symptom {
    /// Name, as in the API.
    pub fn name(self) -> &'static str {
        match self {
            Symptom::NoService => "no_service",
            Symptom::Slow => "slow",
            Symptom::Drops => "drops",
            Symptom::VoiceQuality => "voice_quality",
            Symptom::Other => "other",
        }
    }
}

named_enum!(
    Symptom,
    "symptom",
    [
        Symptom::NoService,
        Symptom::Slow,
        Symptom::Drops,
        Symptom::VoiceQuality,
        Symptom::Other
    ]
);

/// Where a complaint is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ComplaintState {
    /// Received, nobody has answered yet.
    Received,
    /// Someone answered the customer.
    Acknowledged,
    /// Resolved (by hand, or because its fault cleared).
    Resolved,
}

impl ComplaintState {
    /// Name, as in the API.
    pub fn name(self) -> &'static str {
        match self {
            ComplaintState::Received => "received",
            ComplaintState::Acknowledged => "acknowledged",
            ComplaintState::Resolved => "resolved",
        }
    }
}

/// The fault a complaint is explained by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ComplaintLink {
    /// The fault record.
    pub fault: FaultId,
    /// The alarm that was active (or had just cleared) when linked.
    pub alarm: AlarmId,
    /// When linked.
    pub at: Timestamp,
    /// When the fault's alarm was raised: before the complaint means the NOC knew first.
    pub fault_raised_at: Timestamp,
}

/// A customer's complaint, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Complaint {
    /// The CRM's ticket id, or one noctua gave it; unique.
    pub id: String,
    /// The customer as stored: the id, or its keyed hash in hex when ids are hashed.
    pub customer: Option<String>,
    /// Where the problem is: the customer's place, or the site or cell given.
    pub place: Place,
    /// How it came in.
    pub channel: Channel,
    /// What is wrong.
    pub symptom: Symptom,
    /// The customer's words.
    pub text: String,
    /// When the CRM received it.
    pub received_at: Timestamp,
    /// When noctua got it.
    pub recorded_at: Timestamp,
    /// Received, acknowledged or resolved.
    pub state: ComplaintState,
    /// When first acknowledged, and by whom.
    pub acked_at: Option<Timestamp>,
    /// Who acknowledged.
    pub acked_by: Option<String>,
    /// When resolved.
    pub resolved_at: Option<Timestamp>,
    /// Who resolved it; `None` when its fault's clear did.
    pub resolved_by: Option<String>,
    /// How it was resolved.
    pub resolution: Option<String>,
    /// The fault that explains it, if one does.
    pub link: Option<ComplaintLink>,
    /// The response target passed before an acknowledgement.
    pub respond_breached: bool,
    /// The resolve target passed before a resolution.
    pub resolve_breached: bool,
}

/// Why a complaint command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ComplaintError {
    /// No open or stored complaint has that id.
    #[error("no complaint `{0}`")]
    Unknown(String),
    /// A complaint with that id exists already.
    #[error("complaint `{0}` exists already")]
    Duplicate(String),
    /// It is resolved; it cannot change any more.
    #[error("complaint `{0}` is resolved")]
    Resolved(String),
    /// The customer is in no import.
    #[error("unknown customer (not in any import); give the site or cell instead")]
    UnknownCustomer,
    /// The site, cell or service is not in the network.
    #[error("{0}")]
    UnknownPlace(String),
}

/// A complaint as the CRM sends it, checked and with its place found.
#[derive(Debug, Clone, PartialEq)]
pub struct NewComplaint {
    /// The CRM's ticket id; noctua gives one if `None`.
    pub id: Option<String>,
    /// The customer (whose place the import gave), or where.
    pub subject: Subject,
    /// How it came in.
    pub channel: Channel,
    /// What is wrong.
    pub symptom: Symptom,
    /// The customer's words.
    pub text: String,
    /// When the CRM received it.
    pub received_at: Timestamp,
}
