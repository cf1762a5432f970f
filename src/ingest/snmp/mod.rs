//! SNMP poller: IF-MIB counters of every device that has credentials, over snmp2's
//! `AsyncSession` (v2c, or v3 USM with SHA-2/AES), into interface series, oper-status and
//! reachability events, and the agent's round-trip time.
//!
//! One task per device, so a device that never answers only delays itself; a semaphore bounds
//! the requests in flight over all devices (`max-in-flight`), and each device's first poll is
//! offset by a hash of its name so polls spread over the interval. Every request is wrapped in
//! a timeout; after a timeout or any protocol error the session is dropped and the next attempt
//! makes a new one (snmp2 sessions stay off by one request id after a late reply).
//!
//! The poller is gentle on agents, whose CPU is the scarce thing on a router ([`RequestPlan`]):
//! a walk asks for a few columns at a time, `GETBULK` with repetitions that fill the agent's
//! reply cap, each column carried on from its last OID; the descriptive columns (names, types,
//! aliases, speeds) are read at discovery only, which is redone on a slow schedule or when
//! something says the table changed; columns the agent does not have, and 32-bit counters its
//! 64-bit ones make redundant, are not asked for; and `max-values-per-second` paces a device's
//! requests.

mod budget;
pub mod counters;
mod if_mib;
mod schedule;
mod session;
mod walk;

pub use schedule::{poll_triggers, run};
pub use session::{Polled, Poller, set_and_read_back};

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use crate::config::{Config, Credential, DeviceConfig, SnmpConfig};
use crate::config::{RequestPlan, agent, profile};
use crate::model::glob;
use crate::telemetry::PollResult;

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
    /// How gently: request shape, discovery schedule, value budget.
    pub plan: RequestPlan,
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
        let profile = snmp.profiles.of(d)?.clone();
        Some(Target {
            plan: agent::plan(&snmp.agent, &profile.agent, &d.agent),
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

/// Which interfaces a config wants polled.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    include: Vec<String>,
    exclude: Vec<String>,
    types: Vec<u32>,
    loopback_utilisation: bool,
}

/// ifType softwareLoopback (IANAifType-MIB).
const SOFTWARE_LOOPBACK: u32 = 24;

impl Filter {
    /// From `[snmp]`.
    pub fn new(snmp: &SnmpConfig) -> Self {
        Self {
            include: snmp.interface_include.clone(),
            exclude: snmp.interface_exclude.clone(),
            types: snmp.interface_types.clone(),
            loopback_utilisation: snmp.loopback_utilisation,
        }
    }

    /// Whether an interface's utilisation is worth computing: not for a loopback (ifType 24,
    /// or `lo`, `lo0`… by name: net-snmp on Linux reports `lo` as 10 Mbit/s ethernet), whose
    /// "speed" is made up, unless `[snmp] loopback-utilisation` asks for it.
    fn utilisation(&self, name: &str, if_type: Option<u32>) -> bool {
        let lo = name
            .strip_prefix("lo")
            .is_some_and(|rest| rest.chars().all(|c| c.is_ascii_digit()));
        self.loopback_utilisation || !(lo || if_type == Some(SOFTWARE_LOOPBACK))
    }

    fn wants(&self, name: &str, if_type: Option<u32>) -> bool {
        (self.include.is_empty() || self.include.iter().any(|p| glob(p, name)))
            && !self.exclude.iter().any(|p| glob(p, name))
            && (self.types.is_empty() || if_type.is_some_and(|t| self.types.contains(&t)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopbacks_have_no_utilisation_unless_asked() {
        let mut snmp = SnmpConfig::default();
        let filter = Filter::new(&snmp);
        for (name, if_type) in [("lo", Some(6)), ("lo0", None), ("Loopback0", Some(24))] {
            assert!(!filter.utilisation(name, if_type), "{name}");
        }
        for (name, if_type) in [
            ("ge-0/0/1", Some(6)),
            ("long-haul-1", Some(6)),
            ("lo-backup", None),
        ] {
            assert!(filter.utilisation(name, if_type), "{name}");
        }
        snmp.loopback_utilisation = true;
        assert!(Filter::new(&snmp).utilisation("lo", Some(24)));
    }
}
