//! Configuration: TOML types, the embedded default, lookup, and validation with located errors.
//!
//! Keys are kebab-case and unknown keys are errors, so a typo is caught at `check-config` time
//! rather than silently ignored. Every error names the file, `line:column`, the key and what was
//! expected.

mod actions;
pub mod agent;
mod alarms;
mod cluster;
mod daemon;
mod detection;
mod devices;
mod impact;
mod limits;
mod load;
pub mod profile;
mod secret;
mod source_map;
mod sources;
mod topology;
mod validate;

use serde::Deserialize;

pub use actions::{
    ActionRule, ActionsConfig, Field, Filtered, OnFailure, Piece, StepConfig, Template,
};
pub use agent::{AgentConfig, RequestPlan};
pub use alarms::{AlarmsConfig, ReportsConfig, TierTarget, Tiers};
pub use cluster::ClusterConfig;
pub use daemon::{ConsoleConfig, HttpConfig, MqttConfig, PipelineConfig, StoreConfig};
pub use detection::{
    AnomalyConfig, Directions, ForecastConfig, PrecursorsConfig, ThresholdLevels, ThresholdRule,
    Thresholds,
};
pub use devices::{DeviceConfig, InterfaceConfig};
pub use impact::{ComplaintsConfig, ImpactConfig, MemberConfig, Reduce, ServiceConfig};
pub use load::{ConfigError, ConfigIssue, ConfigSource, DEMO_TOML, DemoSetup, parse};
pub use profile::Profiles;
pub use secret::Secret;
pub use source_map::{KeyPath, Seg};
pub use sources::{
    AuthProtocol, Credential, NetflowConfig, PrivProtocol, ProbeConfig, SnmpConfig, SnmpVersion,
    TrapConfig,
};
pub use topology::Topology;

pub use crate::model::{MaintenanceConfig, Weekday, WeeklyWindow};

/// The default configuration, embedded so `noctua run` needs no file.
pub const DEFAULT_TOML: &str = include_str!("../../config/noctua.toml");

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
    /// The web console.
    #[serde(default)]
    pub console: ConsoleConfig,
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
    /// How alarms count against customers.
    #[serde(default)]
    pub impact: ImpactConfig,
    /// Complaints: linking, targets, detection.
    #[serde(default)]
    pub complaints: ComplaintsConfig,
    /// Services (`[[service]]`).
    #[serde(default, rename = "service")]
    pub services: Vec<ServiceConfig>,
    /// Automated handling: whether it may run, and its bounds.
    #[serde(default)]
    pub actions: ActionsConfig,
    /// Post-incident reports.
    #[serde(default)]
    pub reports: ReportsConfig,
    /// Predictive alarms.
    #[serde(default)]
    pub forecast: ForecastConfig,
    /// Precursors of failure.
    #[serde(default)]
    pub precursors: PrecursorsConfig,
    /// Action rules (`[[action]]`).
    #[serde(default, rename = "action")]
    pub actions_rules: Vec<ActionRule>,
    /// Several instances over NATS JetStream.
    #[serde(default)]
    pub cluster: ClusterConfig,
}
