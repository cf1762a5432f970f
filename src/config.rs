//! Configuration: TOML types, the embedded default, lookup, and validation with located errors.
//!
//! Keys are kebab-case and unknown keys are errors, so a typo is caught at `check-config` time
//! rather than silently ignored. Every error names the file, `line:column`, the key and what was
//! expected.

mod secret;
mod source_map;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::OsString;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub use secret::Secret;
use source_map::SourceMap;
pub use source_map::{KeyPath, Seg};

use crate::model::{Device, Direction, MetricKind, Role, Severity};
pub use crate::model::{MaintenanceConfig, Weekday, WeeklyWindow};

/// The default configuration, embedded so `noctua run` needs no file.
pub const DEFAULT_TOML: &str = include_str!("../config/noctua.toml");

/// Where `/etc` installs keep the config (systemd's `ConfigurationDirectory=noctua`).
pub const SYSTEM_PATH: &str = "/etc/noctua/noctua.toml";

/// The whole configuration. Sections left out take their defaults.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// The sled store.
    #[serde(default)]
    pub store: StoreConfig,
    /// HTTP listener for `/metrics`, health and the API.
    #[serde(default)]
    pub http: HttpConfig,
    /// Channel sizes between stages.
    #[serde(default)]
    pub pipeline: PipelineConfig,
    /// NetFlow/IPFIX collector.
    #[serde(default)]
    pub netflow: NetflowConfig,
    /// SNMP poller and credentials.
    #[serde(default)]
    pub snmp: SnmpConfig,
    /// SNMP trap receiver.
    #[serde(default)]
    pub traps: TrapConfig,
    /// ICMP echo probes.
    #[serde(default)]
    pub probes: ProbeConfig,
    /// Managed devices (`[[device]]`).
    #[serde(default, rename = "device")]
    pub devices: Vec<DeviceConfig>,
    /// Threshold levels per metric family.
    #[serde(default)]
    pub thresholds: Thresholds,
    /// Response targets per severity tier.
    #[serde(default)]
    pub tiers: Tiers,
    /// MQTT publisher.
    #[serde(default)]
    pub mqtt: MqttConfig,
    /// Alarm lifecycle: hold-down, reopen, flapping, escalation.
    #[serde(default)]
    pub alarms: AlarmsConfig,
    /// Maintenance windows (`[[maintenance]]`).
    #[serde(default)]
    pub maintenance: Vec<MaintenanceConfig>,
    /// The seasonal anomaly detector.
    #[serde(default)]
    pub anomaly: AnomalyConfig,
}

/// `[store]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct StoreConfig {
    /// Directory of the sled database. Relative paths are under `$STATE_DIRECTORY` when systemd
    /// sets it, else the working directory.
    pub path: PathBuf,
    /// Group commit: writes are flushed at most this often; a waiting writer waits at most this.
    #[serde(with = "humantime_serde")]
    pub flush_interval: Duration,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from("noctua-data"),
            flush_interval: Duration::from_millis(10),
        }
    }
}

impl StoreConfig {
    /// The store directory, resolving a relative path against systemd's state directory.
    pub fn resolved_path(&self, state_directory: Option<&Path>) -> PathBuf {
        match state_directory {
            Some(dir) if self.path.is_relative() => dir.join(&self.path),
            _ => self.path.clone(),
        }
    }
}

/// `[http]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct HttpConfig {
    /// Listen address; loopback by default because writes are only token-protected.
    pub listen: SocketAddr,
    /// Bearer token for write endpoints, inline.
    pub token: Option<Secret>,
    /// Bearer token for write endpoints, read from a file.
    pub token_file: Option<PathBuf>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 9617)),
            token: None,
            token_file: None,
        }
    }
}

/// `[pipeline]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct PipelineConfig {
    /// Samples queued between ingest and detection; beyond it ingest drops and counts.
    pub sample_queue: usize,
    /// Verdicts queued between detection and the alarm manager.
    pub verdict_queue: usize,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            sample_queue: 65_536,
            verdict_queue: 4_096,
        }
    }
}

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
    /// Template cache bound in total.
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
    /// Named credentials that devices refer to.
    pub credentials: BTreeMap<String, Credential>,
    /// A directory of `NAME.toml` device profiles (relative to the config file), added to the
    /// built-in ones.
    pub profile_dir: Option<PathBuf>,
    /// The built-in profiles and those of `profile_dir`, filled in by the loader.
    #[serde(skip)]
    pub profiles: crate::ingest::snmp::profile::Profiles,
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
}

impl Default for ProbeConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            interval: Duration::from_secs(30),
            count: 5,
            spacing: Duration::from_millis(200),
            timeout: Duration::from_secs(1),
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
        severity_named(self.severity.get(oid)?)
    }
}

/// A severity an alarm can be raised at, by name (`cleared` is not one).
pub fn severity_named(name: &str) -> Option<Severity> {
    name.parse().ok().filter(|s| *s != Severity::Cleared)
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

/// `[thresholds]`: one rule per metric family. Families left out keep their defaults.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct Thresholds {
    /// Utilisation in percent.
    pub utilisation: Option<ThresholdLevels>,
    /// Packet loss in percent.
    pub loss: Option<ThresholdLevels>,
    /// Latency in milliseconds.
    pub latency: Option<ThresholdLevels>,
    /// Share of single-packet SYN-only flows of an exporter, in percent (NetFlow; security).
    pub flood: Option<ThresholdLevels>,
    /// Distinct sources toward one destination per interval (NetFlow; security).
    pub sources: Option<ThresholdLevels>,
    /// An exporter's flows per second (NetFlow; security). None by default: what is normal
    /// differs too much between exporters; the anomaly detector watches for spikes instead.
    pub flows: Option<ThresholdLevels>,
    /// Rules for particular devices or objects (`[[thresholds.rule]]`); the first that
    /// matches a series wins over the family's levels above.
    pub rule: Vec<ThresholdRule>,
}

/// `[[thresholds.rule]]`: levels for the series that match every matcher given.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ThresholdRule {
    /// Name, for logs.
    pub name: String,
    /// `latency`, `loss`, `utilisation`, `flood`, `sources` or `flows`.
    pub metric: MetricKind,
    /// Devices of this role.
    #[serde(default)]
    pub role: Option<Role>,
    /// Devices of this site.
    #[serde(default)]
    pub site: Option<String>,
    /// Devices with this tag.
    #[serde(default)]
    pub tag: Option<String>,
    /// Objects matching this pattern (`*` matches any run of characters), e.g. `ifIndex=*`.
    #[serde(default)]
    pub object: Option<String>,
    /// The levels.
    pub levels: ThresholdLevels,
}

impl ThresholdRule {
    /// Whether the rule applies to an object of a device with this role, site and tags.
    pub fn matches(&self, kind: MetricKind, device: Option<&DeviceConfig>, object: &str) -> bool {
        let device_ok = |check: &dyn Fn(&DeviceConfig) -> bool| device.is_some_and(check);
        self.metric == kind
            && self.role.is_none_or(|r| device_ok(&|d| d.role == r))
            && self
                .site
                .as_ref()
                .is_none_or(|s| device_ok(&|d| d.site.as_ref() == Some(s)))
            && self
                .tag
                .as_ref()
                .is_none_or(|t| device_ok(&|d| d.tags.contains(t)))
            && self.object.as_ref().is_none_or(|p| glob(p, object))
    }
}

/// `*`-only glob matching, enough for object and interface names; no regex engine for one
/// wildcard.
pub fn glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, rest)) => {
            let Some(tail) = text.strip_prefix(head) else {
                return false;
            };
            (0..=tail.len())
                .filter(|i| tail.is_char_boundary(*i))
                .any(|i| glob(rest, &tail[i..]))
        }
    }
}

impl Default for Thresholds {
    fn default() -> Self {
        let rising = |w, mi, ma, c, h| {
            Some(ThresholdLevels {
                direction: Direction::Rising,
                warning: Some(w),
                minor: Some(mi),
                major: Some(ma),
                critical: Some(c),
                hysteresis: h,
                hold: None,
                clear_hold: None,
            })
        };
        Self {
            utilisation: rising(70.0, 80.0, 90.0, 95.0, 5.0),
            loss: rising(1.0, 2.0, 5.0, 10.0, 0.5),
            latency: rising(50.0, 100.0, 200.0, 500.0, 10.0),
            flood: rising(30.0, 50.0, 70.0, 90.0, 10.0),
            sources: rising(500.0, 1_000.0, 5_000.0, 20_000.0, 100.0),
            flows: None,
            rule: Vec::new(),
        }
    }
}

impl Thresholds {
    /// The first `[[thresholds.rule]]` that matches the series, as an index.
    pub fn matching_rule(
        &self,
        kind: MetricKind,
        device: Option<&DeviceConfig>,
        object: &str,
    ) -> Option<usize> {
        self.rule
            .iter()
            .position(|r| r.matches(kind, device, object))
    }

    /// The rule for a metric family, if any.
    pub fn for_kind(&self, kind: MetricKind) -> Option<&ThresholdLevels> {
        match kind {
            MetricKind::Utilisation => self.utilisation.as_ref(),
            MetricKind::Loss => self.loss.as_ref(),
            MetricKind::Latency => self.latency.as_ref(),
            MetricKind::Flood => self.flood.as_ref(),
            MetricKind::Sources => self.sources.as_ref(),
            MetricKind::Flows => self.flows.as_ref(),
            MetricKind::Traffic | MetricKind::State => None,
        }
    }
}

/// Tiered levels of one threshold rule. A level left out is not used.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ThresholdLevels {
    /// Rising raises above a level; falling raises below it.
    #[serde(default)]
    pub direction: Direction,
    /// Warning level.
    #[serde(default)]
    pub warning: Option<f64>,
    /// Minor level.
    #[serde(default)]
    pub minor: Option<f64>,
    /// Major level.
    #[serde(default)]
    pub major: Option<f64>,
    /// Critical level.
    #[serde(default)]
    pub critical: Option<f64>,
    /// How far back past a level the value must come before the tier drops.
    #[serde(default)]
    pub hysteresis: f64,
    /// A higher tier must hold this long before it is raised (`for` in config).
    #[serde(default, rename = "for", with = "humantime_serde")]
    pub hold: Option<Duration>,
    /// A lower tier must hold this long before the tier drops.
    #[serde(default, rename = "clear-for", with = "humantime_serde")]
    pub clear_hold: Option<Duration>,
}

impl ThresholdLevels {
    /// Configured levels from lowest to highest tier.
    pub fn levels(&self) -> impl Iterator<Item = (Severity, f64)> + '_ {
        [
            (Severity::Warning, self.warning),
            (Severity::Minor, self.minor),
            (Severity::Major, self.major),
            (Severity::Critical, self.critical),
        ]
        .into_iter()
        .filter_map(|(s, v)| v.map(|v| (s, v)))
    }
}

/// `[tiers]`: response targets per severity.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct Tiers {
    /// Critical.
    pub critical: TierTarget,
    /// Major.
    pub major: TierTarget,
    /// Minor.
    pub minor: TierTarget,
    /// Warning.
    pub warning: TierTarget,
}

impl Default for Tiers {
    fn default() -> Self {
        let target = |ack_min: u64, restore_h: u64| TierTarget {
            ack_within: Some(Duration::from_secs(ack_min * 60)),
            restore_within: Some(Duration::from_secs(restore_h * 3600)),
        };
        Self {
            critical: target(15, 4),
            major: target(30, 8),
            minor: target(24 * 60, 48),
            warning: TierTarget::default(),
        }
    }
}

/// Acknowledge and restore targets of one tier; absent means no target.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TierTarget {
    /// Acknowledge within.
    #[serde(default, with = "humantime_serde")]
    pub ack_within: Option<Duration>,
    /// Restore within.
    #[serde(default, with = "humantime_serde")]
    pub restore_within: Option<Duration>,
}

/// `[mqtt]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct MqttConfig {
    /// Whether to publish.
    pub enabled: bool,
    /// Broker `host:port`.
    pub broker: String,
    /// Client id; must be stable for the persistent session.
    pub client_id: String,
    /// Topic prefix.
    pub prefix: String,
    /// Keepalive interval.
    #[serde(with = "humantime_serde")]
    pub keepalive: Duration,
    /// User name.
    pub username: Option<String>,
    /// Password, inline.
    pub password: Option<Secret>,
    /// Password, from a file.
    pub password_file: Option<PathBuf>,
    /// Most transitions kept for the broker while it is away; beyond it the oldest are dropped
    /// (and counted).
    pub outbox_limit: usize,
    /// CA certificates (PEM) to verify the broker with; setting it turns TLS on. For a broker
    /// with a public certificate: `/etc/ssl/certs/ca-certificates.crt`.
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM), for brokers that require one; needs `key-file`.
    pub cert_file: Option<PathBuf>,
    /// Client private key (PEM, PKCS#8 or RSA); needs `cert-file`.
    pub key_file: Option<PathBuf>,
}

impl Default for MqttConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            broker: "127.0.0.1:1883".to_owned(),
            client_id: "noctua".to_owned(),
            prefix: "noctua".to_owned(),
            keepalive: Duration::from_secs(30),
            username: None,
            password: None,
            password_file: None,
            outbox_limit: 100_000,
            ca_file: None,
            cert_file: None,
            key_file: None,
        }
    }
}

/// `[anomaly]`: the seasonal anomaly detector for latency, loss and utilisation.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct AnomalyConfig {
    /// Whether to run it.
    pub enabled: bool,
    /// Length of the season (`"0s"` for none).
    #[serde(with = "humantime_serde")]
    pub season: Duration,
    /// Buckets per season, each with its own baseline.
    pub buckets: u16,
    /// Samples a bucket must have seen before it may alarm.
    pub warm_up: u32,
    /// Weight of each new sample in the baseline.
    pub learning_rate: f32,
    /// Consecutive anomalous samples on one side after which the new level is learned.
    pub shift_after: u32,
    /// Score for a warning (0.5 is six robust deviations).
    pub warning: f64,
    /// Score for minor.
    pub minor: f64,
    /// Score for major.
    pub major: f64,
    /// Score for critical.
    pub critical: f64,
    /// How far under a level the score must fall before the tier drops.
    pub hysteresis: f64,
}

impl Default for AnomalyConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            season: Duration::from_secs(86_400),
            buckets: 24,
            warm_up: 12,
            learning_rate: 0.05,
            shift_after: 30,
            warning: 0.5,
            minor: 0.6,
            major: 0.7,
            critical: 0.8,
            hysteresis: 0.05,
        }
    }
}

impl AnomalyConfig {
    /// The score levels as a rising threshold rule, so tiers and hysteresis work exactly as
    /// for thresholds.
    pub fn levels(&self) -> ThresholdLevels {
        ThresholdLevels {
            direction: Direction::Rising,
            warning: Some(self.warning),
            minor: Some(self.minor),
            major: Some(self.major),
            critical: Some(self.critical),
            hysteresis: self.hysteresis,
            hold: None,
            clear_hold: None,
        }
    }
}

/// `[alarms]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct AlarmsConfig {
    /// A cleared condition must stay clear this long before the alarm clears.
    #[serde(with = "humantime_serde")]
    pub clear_hold_down: Duration,
    /// A condition that comes back within this time of its clear reopens the same fault.
    #[serde(with = "humantime_serde")]
    pub reopen_window: Duration,
    /// Sliding window in which state changes are counted for flapping.
    #[serde(with = "humantime_serde")]
    pub flap_window: Duration,
    /// State changes within the window that make a condition flapping.
    pub flap_threshold: u32,
    /// A flapping condition must be stable this long before the flapping alarm clears.
    #[serde(with = "humantime_serde")]
    pub flap_hold: Duration,
    /// Raise the severity one tier when the acknowledge target passes.
    pub escalate_on_ack_overdue: bool,
    /// Instantaneous events (reboot) clear by themselves after this long.
    #[serde(with = "humantime_serde")]
    pub event_clear_after: Duration,
    /// Cleared history and closed faults older than this are deleted.
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
}

impl Default for AlarmsConfig {
    fn default() -> Self {
        Self {
            clear_hold_down: Duration::from_secs(30),
            reopen_window: Duration::from_secs(600),
            flap_window: Duration::from_secs(600),
            flap_threshold: 6,
            flap_hold: Duration::from_secs(900),
            escalate_on_ack_overdue: false,
            event_clear_after: Duration::from_secs(900),
            retention: Duration::from_secs(90 * 86_400),
        }
    }
}

impl MqttConfig {
    /// `broker` split into host and port.
    pub fn broker_address(&self) -> Option<(String, u16)> {
        let (host, port) = self.broker.trim().rsplit_once(':')?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        (!host.is_empty()).then(|| Some((host.to_owned(), port.parse().ok()?)))?
    }
}

/// Where the config came from; logged at start and re-read on SIGHUP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// `--config PATH`.
    Flag(PathBuf),
    /// `$NOCTUA_CONFIG`.
    Env(PathBuf),
    /// `/etc/noctua/noctua.toml`.
    System(PathBuf),
    /// The embedded default.
    Embedded,
}

impl ConfigSource {
    /// Applies the lookup order: flag, then environment, then the system file if present, then
    /// the embedded default. Inputs are passed in so the order is testable.
    pub fn locate(flag: Option<PathBuf>, env: Option<OsString>, system: &Path) -> Self {
        if let Some(p) = flag {
            Self::Flag(p)
        } else if let Some(e) = env.filter(|e| !e.is_empty()) {
            Self::Env(PathBuf::from(e))
        } else if system.exists() {
            Self::System(system.to_owned())
        } else {
            Self::Embedded
        }
    }

    /// Reads and validates the config.
    pub fn load(&self) -> Result<Config, ConfigError> {
        match self.path() {
            None => parse("<embedded default>", DEFAULT_TOML, Path::new(".")),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                let base = path.parent().unwrap_or(Path::new("."));
                parse(&path.display().to_string(), &text, base)
            }
        }
    }

    fn path(&self) -> Option<&Path> {
        match self {
            Self::Flag(p) | Self::Env(p) | Self::System(p) => Some(p),
            Self::Embedded => None,
        }
    }
}

impl fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Flag(p) => write!(f, "{} (--config)", p.display()),
            Self::Env(p) => write!(f, "{} ($NOCTUA_CONFIG)", p.display()),
            Self::System(p) => write!(f, "{}", p.display()),
            Self::Embedded => f.write_str("embedded default"),
        }
    }
}

/// One problem in a config file, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// Dotted key, e.g. `device[1].parent`.
    pub key: String,
    /// What is wrong and what was expected.
    pub message: String,
}

/// Why a config could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file was read but is not a valid config.
    #[error("{}", render(origin, issues))]
    Invalid {
        /// File name (or `<embedded default>`).
        origin: String,
        /// Every problem found.
        issues: Vec<ConfigIssue>,
    },
}

fn render(origin: &str, issues: &[ConfigIssue]) -> String {
    issues
        .iter()
        .map(|i| {
            format!(
                "{origin}:{}:{}: `{}`: {}",
                i.line, i.column, i.key, i.message
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Parses, resolves secret files and validates a config text. `origin` names it in errors;
/// relative `*-file` paths are taken relative to `base`, the config file's directory.
pub fn parse(origin: &str, text: &str, base: &Path) -> Result<Config, ConfigError> {
    let map = SourceMap::new(text);
    let mut config: Config = from_toml(origin, text, &map)?;
    let mut problems = Vec::new();
    resolve_secrets(&mut config, base, &mut problems);
    load_profiles(&mut config, base, &mut problems)?;
    validate(&config, &mut problems);
    if problems.is_empty() {
        return Ok(config);
    }
    Err(located(origin, &map, problems))
}

/// Deserialises a TOML text; an error names the line, column and key it is at.
fn from_toml<T: serde::de::DeserializeOwned>(
    origin: &str,
    text: &str,
    map: &SourceMap<'_>,
) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        let (line, column) = map.line_col(span.start);
        ConfigError::Invalid {
            origin: origin.to_owned(),
            issues: vec![ConfigIssue {
                line,
                column,
                key: map.key_at(&span).to_string(),
                message: e.message().trim_end().to_owned(),
            }],
        }
    })
}

/// Adds the profiles of `[snmp] profile-dir`: every `NAME.toml` in it, in name order. A file
/// that is not a valid profile is an error of its own, naming that file, key and line.
fn load_profiles(
    config: &mut Config,
    base: &Path,
    problems: &mut Problems,
) -> Result<(), ConfigError> {
    let Some(dir) = &config.snmp.profile_dir else {
        return Ok(());
    };
    let dir = base.join(dir);
    let at = || root("snmp").key("profile-dir");
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) => {
            problems.push((
                at(),
                format!("cannot read profile directory {}: {e}", dir.display()),
            ));
            return Ok(());
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    for path in files {
        let Some(name) = path.file_stem().and_then(|s| s.to_str()) else {
            problems.push((
                at(),
                format!("profile file name is not UTF-8: {}", path.display()),
            ));
            continue;
        };
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        let origin = path.display().to_string();
        let map = SourceMap::new(&text);
        let profile: crate::ingest::snmp::profile::Profile = from_toml(&origin, &text, &map)?;
        let mut issues = Vec::new();
        validate_profile(&profile, &mut issues);
        if !issues.is_empty() {
            return Err(located(&origin, &map, issues));
        }
        config.snmp.profiles.insert(name.to_owned(), profile);
    }
    Ok(())
}

/// What serde cannot check in a profile: numeric OIDs, distinct names, a finite scale.
fn validate_profile(profile: &crate::ingest::snmp::profile::Profile, problems: &mut Problems) {
    let mut names = HashSet::new();
    for (i, m) in profile.metrics.iter().enumerate() {
        let at = root("metric").index(i);
        if crate::ingest::snmp::profile::arcs(&m.oid).is_none_or(|a| a.len() < 2) {
            problems.push((
                at.key("oid"),
                format!("expected a dotted numeric OID, got `{}`", m.oid),
            ));
        }
        if m.name.is_empty() || !names.insert(m.name.as_str()) {
            problems.push((
                at.key("name"),
                format!("expected a name used once in the profile, got `{}`", m.name),
            ));
        }
        if !m.scale.is_finite() || m.scale == 0.0 {
            problems.push((
                at.key("scale"),
                "expected a finite, non-zero number".to_owned(),
            ));
        }
    }
}

/// Turns problems found by key into an error that names each one's line and column.
fn located(origin: &str, map: &SourceMap<'_>, problems: Problems) -> ConfigError {
    let issues = problems
        .into_iter()
        .map(|(path, message)| {
            let (line, column) = map.locate(&path);
            ConfigIssue {
                line,
                column,
                key: path.to_string(),
                message,
            }
        })
        .collect();
    ConfigError::Invalid {
        origin: origin.to_owned(),
        issues,
    }
}

type Problems = Vec<(KeyPath, String)>;

fn root(k: &str) -> KeyPath {
    KeyPath::default().key(k)
}

/// Reads every `*-file` secret into its inline slot, so later code has one place to look.
fn resolve_secrets(config: &mut Config, base: &Path, problems: &mut Problems) {
    let mut pair =
        |inline: &mut Option<Secret>, file: &Option<PathBuf>, at: KeyPath, name: &str| {
            let Some(path) = file else { return };
            let file_key = format!("{name}-file");
            if inline.is_some() {
                problems.push((
                    at.key(name),
                    format!("set either `{name}` or `{file_key}`, not both"),
                ));
                return;
            }
            let path = base.join(path);
            match Secret::from_file(&path) {
                Ok(s) => *inline = Some(s),
                Err(e) => problems.push((
                    at.key(&file_key),
                    format!("cannot read secret file {}: {e}", path.display()),
                )),
            }
        };
    let http = &mut config.http;
    pair(&mut http.token, &http.token_file, root("http"), "token");
    let mqtt = &mut config.mqtt;
    pair(
        &mut mqtt.password,
        &mqtt.password_file,
        root("mqtt"),
        "password",
    );
    for (name, c) in &mut config.snmp.credentials {
        let at = root("snmp").key("credentials").key(name);
        pair(&mut c.community, &c.community_file, at.clone(), "community");
        pair(&mut c.auth_key, &c.auth_key_file, at.clone(), "auth-key");
        pair(&mut c.priv_key, &c.priv_key_file, at, "priv-key");
    }
    // TLS files of [mqtt]: relative to the config file too, and checked now.
    let mqtt = &mut config.mqtt;
    for (key, file) in [
        ("ca-file", &mut mqtt.ca_file),
        ("cert-file", &mut mqtt.cert_file),
        ("key-file", &mut mqtt.key_file),
    ] {
        if let Some(path) = file {
            *path = base.join(&*path);
            if let Err(e) = std::fs::metadata(&*path) {
                problems.push((
                    root("mqtt").key(key),
                    format!("cannot read {}: {e}", path.display()),
                ));
            }
        }
    }
    if mqtt.cert_file.is_some() != mqtt.key_file.is_some() {
        problems.push((
            root("mqtt").key("cert-file"),
            "set both `cert-file` and `key-file`, or neither".to_owned(),
        ));
    }
    if mqtt.cert_file.is_some() && mqtt.ca_file.is_none() {
        problems.push((
            root("mqtt").key("ca-file"),
            "a client certificate needs TLS: set `ca-file` too".to_owned(),
        ));
    }
}

fn validate(config: &Config, problems: &mut Problems) {
    if config.store.flush_interval.is_zero() {
        problems.push((
            root("store").key("flush-interval"),
            "expected a duration above zero".to_owned(),
        ));
    }
    for (key, n) in [
        ("sample-queue", config.pipeline.sample_queue),
        ("verdict-queue", config.pipeline.verdict_queue),
    ] {
        if n == 0 {
            problems.push((root("pipeline").key(key), "expected at least 1".to_owned()));
        }
    }
    for (name, c) in &config.snmp.credentials {
        validate_credential(c, root("snmp").key("credentials").key(name), problems);
    }
    validate_devices(config, problems);
    validate_exporters(config, problems);
    let t = &config.thresholds;
    for (key, levels) in [
        ("utilisation", &t.utilisation),
        ("loss", &t.loss),
        ("latency", &t.latency),
        ("flood", &t.flood),
        ("sources", &t.sources),
        ("flows", &t.flows),
    ] {
        if let Some(levels) = levels {
            validate_levels(levels, root("thresholds").key(key), problems);
        }
    }
    for (i, r) in t.rule.iter().enumerate() {
        let at = root("thresholds").key("rule").index(i);
        if matches!(r.metric, MetricKind::Traffic | MetricKind::State) {
            problems.push((
                at.key("metric"),
                "expected latency, loss, utilisation, flood, sources or flows".to_owned(),
            ));
        }
        validate_levels(&r.levels, at.key("levels"), problems);
    }
    validate_maintenance(config, problems);
    validate_traps(config, problems);
    validate_probes(config, problems);
    validate_profiles(config, problems);
    let an = &config.anomaly;
    if an.buckets == 0 {
        problems.push((
            root("anomaly").key("buckets"),
            "expected at least 1".to_owned(),
        ));
    }
    if !(an.learning_rate > 0.0 && an.learning_rate <= 1.0) {
        problems.push((
            root("anomaly").key("learning-rate"),
            "expected a number in (0, 1]".to_owned(),
        ));
    }
    if an.shift_after < 2 {
        problems.push((
            root("anomaly").key("shift-after"),
            "expected at least 2".to_owned(),
        ));
    }
    for (key, v) in [("warning", an.warning), ("critical", an.critical)] {
        if !(v > 0.0 && v < 1.0) {
            problems.push((
                root("anomaly").key(key),
                "expected a score in (0, 1)".to_owned(),
            ));
        }
    }
    validate_levels(&an.levels(), root("anomaly"), problems);
    let a = &config.alarms;
    if a.flap_threshold < 2 {
        problems.push((
            root("alarms").key("flap-threshold"),
            "expected at least 2 state changes".to_owned(),
        ));
    }
    if a.retention < a.reopen_window {
        problems.push((
            root("alarms").key("retention"),
            "expected a retention at least as long as reopen-window".to_owned(),
        ));
    }
    if config.mqtt.enabled && config.mqtt.broker_address().is_none() {
        problems.push((
            root("mqtt").key("broker"),
            "expected host:port of the broker when mqtt is enabled".to_owned(),
        ));
    }
    if config.mqtt.outbox_limit == 0 {
        problems.push((
            root("mqtt").key("outbox-limit"),
            "expected at least 1".to_owned(),
        ));
    }
}

fn validate_credential(c: &Credential, at: KeyPath, problems: &mut Problems) {
    let mut need = |ok: bool, key: &str, msg: &str| {
        if !ok {
            problems.push((at.key(key), msg.to_owned()));
        }
    };
    match c.version {
        SnmpVersion::V2c => {
            need(
                c.community.is_some(),
                "community",
                "v2c needs `community` or `community-file`",
            );
            let v3_only =
                c.user.is_some() || c.auth_protocol.is_some() || c.priv_protocol.is_some();
            need(
                !v3_only,
                "version",
                "user/auth/priv settings need version = \"v3\"",
            );
        }
        SnmpVersion::V3 => {
            need(c.user.is_some(), "user", "v3 needs a `user`");
            need(
                c.community.is_none(),
                "community",
                "v3 does not use a community",
            );
            let key_ok = |k: &Option<Secret>| k.as_ref().is_some_and(|k| k.len() >= 8);
            if c.auth_protocol.is_some() {
                need(
                    key_ok(&c.auth_key),
                    "auth-key",
                    "expected `auth-key` or `auth-key-file` of at least 8 characters",
                );
            }
            if c.priv_protocol.is_some() {
                need(
                    c.auth_protocol.is_some(),
                    "priv-protocol",
                    "privacy needs authentication: set `auth-protocol` too",
                );
                need(
                    key_ok(&c.priv_key),
                    "priv-key",
                    "expected `priv-key` or `priv-key-file` of at least 8 characters",
                );
            }
        }
    }
}

fn validate_devices(config: &Config, problems: &mut Problems) {
    let mut first_index: HashMap<&str, usize> = HashMap::new();
    for (i, d) in config.devices.iter().enumerate() {
        let at = root("device").index(i);
        if d.name.trim().is_empty() {
            problems.push((at.key("name"), "expected a non-empty name".to_owned()));
        }
        if let Some(&first) = first_index.get(d.name.as_str()) {
            problems.push((
                at.key("name"),
                format!(
                    "duplicate device name `{}` (first at device[{first}])",
                    d.name
                ),
            ));
        } else {
            first_index.insert(&d.name, i);
        }
        if let Some(c) = &d.credentials
            && !config.snmp.credentials.contains_key(c)
        {
            problems.push((
                at.key("credentials"),
                format!("unknown credentials `{c}`: expected a key of [snmp.credentials]"),
            ));
        }
        for (j, itf) in d.interfaces.iter().enumerate() {
            let at = at.key("interface").index(j);
            if itf.if_index.is_none() == itf.name.is_none() {
                problems.push((
                    at,
                    "expected exactly one of `if-index` or `name`".to_owned(),
                ));
            } else if itf.speed_mbps == 0 {
                problems.push((
                    at.key("speed-mbps"),
                    "expected a speed above zero".to_owned(),
                ));
            }
        }
    }
    for (i, d) in config.devices.iter().enumerate() {
        let Some(parent) = &d.parent else { continue };
        let at = root("device").index(i).key("parent");
        if !first_index.contains_key(parent.as_str()) {
            problems.push((
                at,
                format!("unknown parent `{parent}`: expected a device name"),
            ));
        } else if let Some(cycle) = parent_cycle(config, i, &first_index) {
            problems.push((at, format!("parent cycle: {cycle}")));
        }
    }
}

/// Follows parent links from device `start`; returns the loop in words if it comes back.
fn parent_cycle(config: &Config, start: usize, index: &HashMap<&str, usize>) -> Option<String> {
    let mut seen = HashSet::new();
    let mut chain = vec![config.devices[start].name.as_str()];
    let mut cur = start;
    while seen.insert(cur) {
        let next = config.devices[cur]
            .parent
            .as_deref()
            .and_then(|p| index.get(p))?;
        chain.push(&config.devices[*next].name);
        if *next == start {
            return Some(chain.join(" -> "));
        }
        cur = *next;
    }
    None
}

fn validate_profiles(config: &Config, problems: &mut Problems) {
    for (i, d) in config.devices.iter().enumerate() {
        if let Some(p) = &d.profile
            && config.snmp.profiles.get(p).is_none()
        {
            let names: Vec<&str> = config.snmp.profiles.names().collect();
            problems.push((
                root("device").index(i).key("profile"),
                format!("unknown profile `{p}`; known: {}", names.join(", ")),
            ));
        }
    }
}

fn validate_probes(config: &Config, problems: &mut Problems) {
    let p = &config.probes;
    if p.count == 0 {
        problems.push((
            root("probes").key("count"),
            "expected at least 1".to_owned(),
        ));
    }
    if p.spacing * p.count.saturating_sub(1) + p.timeout >= p.interval {
        problems.push((
            root("probes").key("interval"),
            "a round (spacing × (count − 1) + timeout) must end before the next one starts"
                .to_owned(),
        ));
    }
}

fn validate_traps(config: &Config, problems: &mut Problems) {
    for (oid, severity) in &config.traps.severity {
        let oid_ok = !oid.is_empty() && oid.split('.').all(|a| a.parse::<u64>().is_ok());
        if !oid_ok || severity_named(severity).is_none() {
            problems.push((
                root("traps").key("severity").key(oid),
                format!(
                    "`{oid} = \"{severity}\"`: expected a dotted OID and critical, major, minor, warning or indeterminate"
                ),
            ));
        }
    }
}

fn validate_exporters(config: &Config, problems: &mut Problems) {
    let names: HashSet<&str> = config.devices.iter().map(|d| d.name.as_str()).collect();
    let nf = &config.netflow;
    if nf.interval < Duration::from_secs(1) {
        problems.push((
            root("netflow").key("interval"),
            "expected at least 1s".to_owned(),
        ));
    }
    if nf.max_templates_per_exporter == 0 || nf.max_templates < nf.max_templates_per_exporter {
        problems.push((
            root("netflow").key("max-templates"),
            "expected max-templates ≥ max-templates-per-exporter ≥ 1".to_owned(),
        ));
    }
    for (exporter, n) in &nf.sampling {
        let ok = exporter.parse::<IpAddr>().is_ok() || names.contains(exporter.as_str());
        if !ok || *n == 0 {
            problems.push((
                root("netflow").key("sampling").key(exporter),
                format!(
                    "`{exporter} = {n}`: expected a device name or address and an interval ≥ 1"
                ),
            ));
        }
    }
    for (i, e) in config.netflow.exporters.iter().enumerate() {
        let ok = e.parse::<ipnet::IpNet>().is_ok()
            || e.parse::<IpAddr>().is_ok()
            || names.contains(e.as_str());
        if !ok {
            problems.push((
                root("netflow").key("exporters").index(i),
                format!("`{e}` is neither a CIDR, an address nor a device name"),
            ));
        }
    }
}

fn validate_maintenance(config: &Config, problems: &mut Problems) {
    for (i, m) in config.maintenance.iter().enumerate() {
        let at = root("maintenance").index(i);
        for (key, message) in m.problems(|d| config.devices.iter().any(|x| x.name == d)) {
            let path = key.iter().fold(at.clone(), |p, k| p.key(k));
            problems.push((path, message));
        }
    }
}

fn validate_levels(t: &ThresholdLevels, at: KeyPath, problems: &mut Problems) {
    if !(t.hysteresis.is_finite() && t.hysteresis >= 0.0) {
        problems.push((at.key("hysteresis"), "expected a number >= 0".to_owned()));
    }
    let mut prev: Option<(Severity, f64)> = None;
    for (sev, v) in t.levels() {
        if !v.is_finite() {
            problems.push((at.key(sev.name()), "expected a finite number".to_owned()));
            continue;
        }
        if let Some((psev, pv)) = prev {
            let ordered = match t.direction {
                Direction::Rising => v > pv,
                Direction::Falling => v < pv,
            };
            if !ordered {
                let relation = match t.direction {
                    Direction::Rising => "above",
                    Direction::Falling => "below",
                };
                problems.push((
                    at.key(sev.name()),
                    format!(
                        "levels out of order: {} ({v}) must be {relation} {} ({pv}) for a {} rule",
                        sev.name(),
                        psev.name(),
                        match t.direction {
                            Direction::Rising => "rising",
                            Direction::Falling => "falling",
                        }
                    ),
                ));
            }
        }
        prev = Some((sev, v));
    }
}
