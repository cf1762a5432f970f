//! `[[device]]`: the managed elements, by name, with their place in the topology.

use std::net::IpAddr;
use std::time::Duration;

use serde::Deserialize;

use crate::model::{Device, Role};

/// `[[device]]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DeviceConfig {
    /// Stable unique name.
    pub name: String,
    /// Management address.
    pub address: IpAddr,
    /// Router, switch or base station.
    pub role: Role,
    /// Upstream device, for root-cause suppression.
    #[serde(default)]
    pub parent: Option<String>,
    /// Site label.
    #[serde(default)]
    pub site: Option<String>,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Name of an `[snmp.credentials.NAME]` entry; absent means not polled.
    #[serde(default)]
    pub credentials: Option<String>,
    /// SNMP agent port.
    #[serde(default = "default_snmp_port")]
    pub snmp_port: u16,
    /// Poll interval for this device, instead of `[snmp] interval`.
    #[serde(default, with = "humantime_serde::option")]
    pub poll_interval: Option<Duration>,
    /// SNMP profile (`router`, `base-station`); by default from the role.
    #[serde(default)]
    pub profile: Option<String>,
    /// How gently its agent is polled (`[device.agent]`), over its profile's and `[snmp.agent]`.
    #[serde(default)]
    pub agent: super::AgentConfig,
    /// Interface speed overrides (`[[device.interface]]`).
    #[serde(default, rename = "interface")]
    pub interfaces: Vec<InterfaceConfig>,
}

impl DeviceConfig {
    /// The domain view of this device.
    pub fn device(&self) -> Device {
        Device {
            name: self.name.clone(),
            address: self.address,
            role: self.role,
            parent: self.parent.clone(),
            site: self.site.clone(),
            tags: self.tags.clone(),
        }
    }
}

fn default_snmp_port() -> u16 {
    161
}

/// `[[device.interface]]`: a speed the device does not report (or reports wrongly).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct InterfaceConfig {
    /// Interface by ifIndex.
    #[serde(default)]
    pub if_index: Option<u32>,
    /// Interface by ifName.
    #[serde(default)]
    pub name: Option<String>,
    /// Speed in Mbit/s, for utilisation.
    pub speed_mbps: u64,
}
