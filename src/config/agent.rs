//! `agent`: how gently the poller treats an SNMP agent: the shape of its requests, how often
//! the interface table's descriptive columns are read again, and a budget of values per second.
//! `[snmp.agent]` sets it for every device, a profile's `[agent]` for a kind of device (an
//! agent known to be weak), and `[device.agent]` for one device; the most specific key wins.
//!
//! The defaults come from profiling net-snmp's snmpd (README, "SNMP agent cost"): its subtree
//! lookup caches a few positions per request, so a GETBULK over more columns than that makes
//! every value a search of the whole registry; a few columns per request with enough
//! repetitions to fill snmpd's reply cap (100 values) keeps each value a step from the last.

use std::time::Duration;

use serde::Deserialize;

/// `[snmp.agent]`, a profile's `[agent]` or `[device.agent]`: each key unset defers to the
/// less specific one.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct AgentConfig {
    /// Table columns walked together in one GETBULK.
    pub columns_per_request: Option<usize>,
    /// Values asked for in one GETBULK (repetitions × columns): the agent's reply cap.
    pub values_per_request: Option<usize>,
    /// The most values per second this agent is asked for; unset, no limit.
    pub max_values_per_second: Option<u32>,
    /// How often the descriptive columns (names, types, aliases, speeds) are read again when
    /// nothing says they changed.
    #[serde(with = "humantime_serde::option")]
    pub discovery_interval: Option<Duration>,
}

/// The request plan for one device, every key resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestPlan {
    /// Table columns walked together in one GETBULK.
    pub columns_per_request: usize,
    /// Values asked for in one GETBULK.
    pub values_per_request: usize,
    /// The most values per second asked of the agent.
    pub max_values_per_second: Option<u32>,
    /// How often the descriptive columns are read again.
    pub discovery_interval: Duration,
}

impl Default for RequestPlan {
    fn default() -> Self {
        Self {
            columns_per_request: 4,
            values_per_request: 100,
            max_values_per_second: None,
            discovery_interval: Duration::from_secs(15 * 60),
        }
    }
}

impl AgentConfig {
    /// Every key at its default: `[snmp.agent]` when the config does not have one.
    pub fn defaults() -> Self {
        let d = RequestPlan::default();
        Self {
            columns_per_request: Some(d.columns_per_request),
            values_per_request: Some(d.values_per_request),
            max_values_per_second: d.max_values_per_second,
            discovery_interval: Some(d.discovery_interval),
        }
    }

    /// This one's keys, else `base`'s.
    fn over(&self, base: &AgentConfig) -> AgentConfig {
        AgentConfig {
            columns_per_request: self.columns_per_request.or(base.columns_per_request),
            values_per_request: self.values_per_request.or(base.values_per_request),
            max_values_per_second: self.max_values_per_second.or(base.max_values_per_second),
            discovery_interval: self.discovery_interval.or(base.discovery_interval),
        }
    }
}

/// The plan for a device: its own `agent` keys, else its profile's, else `[snmp.agent]`'s,
/// else the defaults.
pub fn plan(snmp: &AgentConfig, profile: &AgentConfig, device: &AgentConfig) -> RequestPlan {
    let c = device.over(&profile.over(snmp));
    let d = RequestPlan::default();
    RequestPlan {
        columns_per_request: c.columns_per_request.unwrap_or(d.columns_per_request),
        values_per_request: c.values_per_request.unwrap_or(d.values_per_request),
        max_values_per_second: c.max_values_per_second,
        discovery_interval: c.discovery_interval.unwrap_or(d.discovery_interval),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_specific_key_wins_and_unset_keys_defer() {
        let snmp = AgentConfig {
            values_per_request: Some(60),
            max_values_per_second: Some(5_000),
            ..Default::default()
        };
        let profile = AgentConfig {
            columns_per_request: Some(2),
            max_values_per_second: Some(1_000),
            ..Default::default()
        };
        let device = AgentConfig {
            max_values_per_second: Some(200),
            ..Default::default()
        };
        let p = plan(&snmp, &profile, &device);
        assert_eq!(p.columns_per_request, 2);
        assert_eq!(p.values_per_request, 60);
        assert_eq!(p.max_values_per_second, Some(200));
        assert_eq!(
            p.discovery_interval,
            RequestPlan::default().discovery_interval
        );
        let none = AgentConfig::default();
        assert_eq!(plan(&none, &none, &none), RequestPlan::default());
        assert_eq!(
            plan(&AgentConfig::defaults(), &none, &none),
            RequestPlan::default()
        );
        assert_eq!(
            plan(&none, &profile, &none).max_values_per_second,
            Some(1_000)
        );
    }
}
