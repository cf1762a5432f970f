//! The sources' sections: `[netflow]`, `[snmp]` (with its credentials), `[probes]` and
//! `[traps]`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::Secret;
use super::agent::AgentConfig;
use super::profile::Profiles;
use crate::model::Severity;

/// `[netflow]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct NetflowConfig {
    /// Whether to run the collector.
    pub enabled: bool,
    /// UDP listen addresses.
    pub listen: Vec<SocketAddr>,
    /// Allowed exporters: CIDRs or device names. Empty allows only configured devices.
    pub exporters: Vec<String>,
    /// Socket receive buffer in bytes (`SO_RCVBUF`).
    pub receive_buffer_bytes: usize,
    /// Aggregation interval of the traffic series.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// How long after an interval ends records for it are still accepted; set it above the
    /// exporters' active flow timeout. Later records are counted as late and dropped.
    #[serde(with = "humantime_serde")]
    pub lateness: Duration,
    /// Template cache bound per exporter address.
    pub max_templates_per_exporter: usize,
    /// Templates of all exporters allowed only by a CIDR, together (configured devices are
    /// bounded by `max_templates_per_exporter` alone).
    pub max_templates: usize,
    /// Sampling interval per exporter (device name or address) that overrides what the
    /// exporter reports, for exporters that sample without saying so.
    pub sampling: BTreeMap<String, u32>,
}

impl Default for NetflowConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            listen: vec![
                SocketAddr::from(([0, 0, 0, 0], 2055)),
                SocketAddr::from(([0, 0, 0, 0], 4739)),
            ],
            exporters: Vec::new(),
            receive_buffer_bytes: 8 << 20,
            interval: Duration::from_secs(10),
            lateness: Duration::from_secs(90),
            max_templates_per_exporter: 512,
            max_templates: 16_384,
            sampling: BTreeMap::new(),
        }
    }
}

/// `[snmp]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct SnmpConfig {
    /// Default poll interval.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// Per-request timeout.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Retries after a timeout.
    pub retries: u32,
    /// Requests in flight at once over all devices (each device has at most one).
    pub max_in_flight: usize,
    /// Consecutive failed polls after which a device is declared unreachable.
    pub unreachable_after: u32,
    /// Interfaces polled: names matching any of these `*` patterns (empty: all).
    pub interface_include: Vec<String>,
    /// Interfaces not polled: names matching any of these `*` patterns.
    pub interface_exclude: Vec<String>,
    /// Interfaces polled: only these ifType numbers (empty: all), e.g. 6 (ethernetCsmacd).
    pub interface_types: Vec<u32>,
    /// Utilisation of loopback interfaces (ifType 24, or `lo`, `lo0`… by name), whose speed is
    /// made up (net-snmp reports `lo` at 10 Mbit/s); off by default.
    pub loopback_utilisation: bool,
    /// How gently every agent is polled, unless its profile or device says otherwise.
    pub agent: AgentConfig,
    /// Named credentials that devices refer to.
    pub credentials: BTreeMap<String, Credential>,
    /// A directory of `NAME.toml` device profiles (relative to the config file), added to the
    /// built-in ones.
    pub profile_dir: Option<PathBuf>,
    /// The built-in profiles and those of `profile_dir`, filled in by the loader.
    #[serde(skip)]
    pub profiles: Profiles,
}

impl Default for SnmpConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(60),
            timeout: Duration::from_secs(2),
            retries: 2,
            max_in_flight: 256,
            unreachable_after: 3,
            interface_include: Vec::new(),
            interface_exclude: Vec::new(),
            interface_types: Vec::new(),
            loopback_utilisation: false,
            agent: AgentConfig::defaults(),
            credentials: BTreeMap::new(),
            profile_dir: None,
            profiles: Default::default(),
        }
    }
}

/// `[probes]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct ProbeConfig {
    /// Whether to probe every device.
    pub enabled: bool,
    /// How often a round of probes starts.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// Echo requests per device per round.
    pub count: u32,
    /// Time between a device's requests in a round.
    #[serde(with = "humantime_serde")]
    pub spacing: Duration,
    /// How long after the last request a reply still counts.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Only devices carrying one of these tags are probed; empty, every device is.
    pub tags: Vec<String>,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            interval: Duration::from_secs(30),
            count: 5,
            spacing: Duration::from_millis(200),
            timeout: Duration::from_secs(1),
            tags: Vec::new(),
        }
    }
}

/// `[traps]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct TrapConfig {
    /// Whether to listen (port 162 needs root or CAP_NET_BIND_SERVICE).
    pub enabled: bool,
    /// UDP listen address.
    pub listen: SocketAddr,
    /// Severity of the alarm a trap OID raises (`critical`, `major`, `minor`, `warning`,
    /// `indeterminate`), for traps noctua does not know; the default is indeterminate.
    pub severity: BTreeMap<String, String>,
}

impl Default for TrapConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            listen: SocketAddr::from(([0, 0, 0, 0], 162)),
            severity: BTreeMap::new(),
        }
    }
}

impl TrapConfig {
    /// The configured severity for a trap OID (dotted, no leading dot).
    pub fn severity_of(&self, oid: &str) -> Option<Severity> {
        Severity::raised(self.severity.get(oid)?)
    }
}

/// SNMP protocol version of a credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SnmpVersion {
    /// Community-based v2c.
    V2c,
    /// User-based security model v3.
    V3,
}

/// USM authentication protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthProtocol {
    /// HMAC-MD5-96 (legacy devices only).
    Md5,
    /// HMAC-SHA-96.
    Sha1,
    /// HMAC-SHA-224.
    Sha224,
    /// HMAC-SHA-256.
    Sha256,
    /// HMAC-SHA-384.
    Sha384,
    /// HMAC-SHA-512.
    Sha512,
}

/// USM privacy protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PrivProtocol {
    /// DES (legacy devices only).
    Des,
    /// AES-128.
    Aes128,
    /// AES-192.
    Aes192,
    /// AES-256.
    Aes256,
}

/// `[snmp.credentials.NAME]`: one v2c community or one v3 USM user.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Credential {
    /// Protocol version.
    pub version: SnmpVersion,
    /// v2c community, inline.
    pub community: Option<Secret>,
    /// v2c community, from a file.
    pub community_file: Option<PathBuf>,
    /// v2c community for SETs (`snmp-set` action steps), inline; polls never use it.
    pub write_community: Option<Secret>,
    /// v2c write community, from a file.
    pub write_community_file: Option<PathBuf>,
    /// v3 user name.
    pub user: Option<String>,
    /// v3 authentication protocol; absent means noAuthNoPriv.
    pub auth_protocol: Option<AuthProtocol>,
    /// v3 authentication passphrase, inline.
    pub auth_key: Option<Secret>,
    /// v3 authentication passphrase, from a file.
    pub auth_key_file: Option<PathBuf>,
    /// v3 privacy protocol; absent means authNoPriv.
    pub priv_protocol: Option<PrivProtocol>,
    /// v3 privacy passphrase, inline.
    pub priv_key: Option<Secret>,
    /// v3 privacy passphrase, from a file.
    pub priv_key_file: Option<PathBuf>,
}
