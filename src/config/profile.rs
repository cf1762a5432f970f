//! Device profiles: what the poller reads from a kind of device beyond (or instead of) IF-MIB.
//! A profile maps OIDs to series — gauge or counter, scale, unit, and which family (latency,
//! loss, utilisation, other) judges them — for vendor KPIs such as PRB utilisation, RRC setup
//! failures or backhaul latency. The profiles in `config/profiles/` are built in; operators add
//! their own as `NAME.toml` files in `[snmp] profile-dir` (one named like a built-in replaces
//! it). A device picks one with `profile`, else `base-station` for base stations and `router`
//! for the rest.

use std::collections::{BTreeMap, HashSet};

use serde::Deserialize;

use super::load::{Problems, root};
use crate::model::{Metric, Role, Watching};

/// A profile file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Profile {
    /// Whether to walk the IF-MIB interface table.
    #[serde(default = "yes")]
    pub if_mib: bool,
    /// How gently this kind of agent is polled (`[agent]`), over `[snmp.agent]`.
    #[serde(default)]
    pub agent: super::AgentConfig,
    /// Extra OIDs.
    #[serde(default, rename = "metric")]
    pub metrics: Vec<ProfileMetric>,
}

fn yes() -> bool {
    true
}

fn one() -> f64 {
    1.0
}

/// One OID → one series (or one per row, for a table column).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ProfileMetric {
    /// Series object; tables append `.ROW`.
    pub name: String,
    /// Dotted OID: a scalar instance, or a column when `table`.
    pub oid: String,
    /// Walk the column instead of getting one instance.
    #[serde(default)]
    pub table: bool,
    /// Gauge or counter.
    pub kind: Kind,
    /// Multiplier.
    #[serde(default = "one")]
    pub scale: f64,
    /// Unit, for people.
    #[serde(default)]
    pub unit: String,
    /// Which family judges it.
    pub feeds: Feeds,
    /// For `feeds = "other"`: which deviations the anomaly detector counts (`rising`,
    /// `falling`, `both` or `off`); else `[anomaly.direction] kpi`.
    #[serde(default)]
    pub direction: Option<Watching>,
}

/// How a value is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// As read.
    Gauge,
    /// Per-second rate of the increase.
    Counter,
}

/// Which thresholds and detector judge a profile metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Feeds {
    /// Latency, in ms.
    Latency,
    /// Loss or failure share, in %.
    Loss,
    /// Utilisation, in %.
    Utilisation,
    /// Recorded, not judged.
    Other,
}

impl Feeds {
    /// The metric its series carry.
    pub fn metric(self) -> Metric {
        match self {
            Feeds::Latency => Metric::LatencyMs,
            Feeds::Loss => Metric::LossPct,
            Feeds::Utilisation => Metric::UtilisationInPct,
            Feeds::Other => Metric::Kpi,
        }
    }
}

/// The built-in profiles, by name.
pub const BUILT_IN: [(&str, &str); 2] = [
    ("router", include_str!("../../config/profiles/router.toml")),
    (
        "base-station",
        include_str!("../../config/profiles/base-station.toml"),
    ),
];

/// Every profile devices may name: the built-in ones, then those of `[snmp] profile-dir`
/// (which the config loader adds, so a bad file is a config error with its file and line).
#[derive(Debug, Clone, PartialEq)]
pub struct Profiles(BTreeMap<String, Profile>);

impl Default for Profiles {
    /// The built-in profiles (a test checks that each parses).
    fn default() -> Self {
        Self(
            BUILT_IN
                .iter()
                .filter_map(|(name, text)| Some(((*name).to_owned(), toml::from_str(text).ok()?)))
                .collect(),
        )
    }
}

impl Profiles {
    /// A profile by name.
    pub fn get(&self, name: &str) -> Option<&Profile> {
        self.0.get(name)
    }

    /// Adds a profile, replacing one of the same name.
    pub fn insert(&mut self, name: String, profile: Profile) {
        self.0.insert(name, profile);
    }

    /// Every name, sorted, for error messages.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }
}

/// The profile a device uses when it names none.
pub fn default_for(role: Role) -> &'static str {
    match role {
        Role::BaseStation => "base-station",
        _ => "router",
    }
}

impl Profiles {
    /// The profile a device uses: the one it names, else its role's default.
    pub fn of(&self, device: &crate::config::DeviceConfig) -> Option<&Profile> {
        self.get(
            device
                .profile
                .as_deref()
                .unwrap_or_else(|| default_for(device.role)),
        )
    }
}

/// The OID's arcs, if it is dotted numbers.
pub fn arcs(oid: &str) -> Option<Vec<u64>> {
    oid.trim_start_matches('.')
        .split('.')
        .map(|a| a.parse().ok())
        .collect()
}

/// What serde cannot check in a profile: numeric OIDs, distinct names, a finite scale.
pub(super) fn validate_profile(profile: &Profile, problems: &mut Problems) {
    super::limits::agent(&profile.agent, &root("agent"), problems);
    let mut names = HashSet::new();
    for (i, m) in profile.metrics.iter().enumerate() {
        let at = root("metric").index(i);
        if arcs(&m.oid).is_none_or(|a| a.len() < 2) {
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
        if m.direction.is_some() && m.feeds != Feeds::Other {
            // The family's `[anomaly.direction]` judges it; a direction here would be ignored.
            problems.push((
                at.key("direction"),
                "expected only with feeds = \"other\" (set [anomaly.direction] for the family)"
                    .to_owned(),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_profiles_parse_and_their_oids_are_numeric() {
        let profiles = Profiles::default();
        for (name, text) in BUILT_IN {
            let p: Profile = toml::from_str(text).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(profiles.get(name), Some(&p));
            for m in &p.metrics {
                assert!(
                    arcs(&m.oid).is_some_and(|a| a.len() > 6),
                    "{name}: {}",
                    m.oid
                );
            }
        }
        assert!(profiles.get("router").unwrap().metrics.is_empty());
        assert_eq!(profiles.get("base-station").unwrap().metrics.len(), 4);
        assert_eq!(default_for(Role::BaseStation), "base-station");
        assert_eq!(default_for(Role::Switch), "router");
    }
}
