//! A link's capacity figures, as the capacity report and its API give them.

use serde::{Deserialize, Serialize};

use super::Timestamp;

/// What a capacity planner reads for one direction of a link. Utilisation in percent; `None`
/// where there is not yet the history to say.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Capacity {
    /// Days of history the forecast has learned from.
    pub days: u32,
    /// The p95 of the 5-minute averages over the last 7 days.
    pub p95_week: Option<f64>,
    /// ... and over the last 30.
    pub p95_month: Option<f64>,
    /// The mean daily busy hour over the last 7 days.
    pub busy_hour_week: Option<f64>,
    /// ... and over the last 30.
    pub busy_hour_month: Option<f64>,
    /// The forecast's growth of the busy hour over the coming week, in percent.
    pub growth_per_week: Option<f64>,
    /// Days until the busy hour reaches 80 % (0: it has), if within a year.
    pub days_to_80: Option<u32>,
    /// ... 90 %.
    pub days_to_90: Option<u32>,
    /// ... 95 %.
    pub days_to_95: Option<u32>,
}

/// One row of the capacity report: a link direction and its figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkCapacity {
    /// The device.
    pub device: String,
    /// The interface (`ifIndex=3`).
    pub object: String,
    /// `in` or `out`.
    pub direction: String,
    /// The device's site, if configured.
    pub site: Option<String>,
    /// The device's role.
    pub role: String,
    /// The figures.
    #[serde(flatten)]
    pub capacity: Capacity,
}

/// How the capacity report groups its links.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CapacityBy {
    /// By device.
    Device,
    /// By the device's site.
    Site,
    /// By the device's role.
    Role,
}

impl CapacityBy {
    /// As in the CLI and the API.
    pub fn name(self) -> &'static str {
        match self {
            CapacityBy::Device => "device",
            CapacityBy::Site => "site",
            CapacityBy::Role => "role",
        }
    }

    /// The group a link falls in.
    pub fn group(self, link: &LinkCapacity) -> &str {
        match self {
            CapacityBy::Device => &link.device,
            CapacityBy::Site => link.site.as_deref().unwrap_or("(no site)"),
            CapacityBy::Role => &link.role,
        }
    }
}

super::named_enum!(
    CapacityBy,
    "grouping",
    [CapacityBy::Device, CapacityBy::Site, CapacityBy::Role]
);

/// What a capacity chart draws for one link direction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CapacityChart {
    /// Each stored day's busy hour: (midnight UTC, RFC 3339; percent).
    pub history: Vec<(Timestamp, f64)>,
    /// The forecast's next days: (midnight UTC; low, value, high of the 80 % interval).
    pub forecast: Vec<(Timestamp, f64, f64, f64)>,
    /// The levels the report counts days to, in percent.
    pub levels: Vec<f64>,
}
