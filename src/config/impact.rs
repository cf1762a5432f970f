//! `[[service]]` (what customers buy, made of devices, sites, tags, interfaces and other
//! services), `[impact]` (how alarms are counted against customers) and `[complaints]` (how
//! complaints are linked, detected and answered).

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::load::{Problems, root};
use super::{Config, Secret};
use crate::model::{Category, Severity};

/// `[impact]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct ImpactConfig {
    /// The lowest severity that counts an alarm's customers as affected: X.733 calls major and
    /// critical service-affecting, so a warning or a minor alarm touches services but no one.
    #[serde(deserialize_with = "Severity::deserialize_raised")]
    pub affecting: Severity,
    /// The customer lookup also reports faults cleared this recently ("it was down an hour
    /// ago" is an answer a call-centre agent needs too).
    #[serde(with = "humantime_serde")]
    pub recent: Duration,
    /// Keep customer ids only as keyed hashes (HMAC-SHA-256 with the key in this file): the
    /// store then holds no customer id, and lookups hash the id they are given.
    pub hash_key_file: Option<PathBuf>,
    /// A fault affecting at least this many customers sends a proactive notice (MQTT
    /// `{prefix}/impact/{fault}`, SSE `impact`); 0 turns customer-count notices off.
    pub notice_customers: u64,
    /// A fault that puts a service down sends one too, whatever its customer count.
    pub notice_service_down: bool,
    /// The key read from `hash-key-file` at load (never inline: it must not sit in a config
    /// that is shown, copied and versioned).
    #[serde(skip)]
    pub hash_key: Option<Secret>,
}

impl Default for ImpactConfig {
    fn default() -> Self {
        Self {
            affecting: Severity::Major,
            recent: Duration::from_secs(3600),
            hash_key_file: None,
            notice_customers: 100,
            notice_service_down: true,
            hash_key: None,
        }
    }
}

/// `[complaints]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct ComplaintsConfig {
    /// A complaint is linked to an active fault covering its place, or one cleared this
    /// recently (the customer calls after the fix, about the outage).
    #[serde(with = "humantime_serde")]
    pub link_look_back: Duration,
    /// A complaint should be answered within this (the guide: 24 h).
    #[serde(with = "humantime_serde")]
    pub respond_within: Duration,
    /// ...and resolved within this (the guide: 48 h).
    #[serde(with = "humantime_serde")]
    pub resolve_within: Duration,
    /// Unexplained complaints from one place are counted over this window; the
    /// `customer_reported` alarm clears when none came for this long.
    #[serde(with = "humantime_serde")]
    pub detect_window: Duration,
    /// Unexplained complaints in the window that raise `customer_reported` at minor...
    pub minor: usize,
    /// ...at major...
    pub major: usize,
    /// ...and at critical.
    pub critical: usize,
    /// Longest complaint text, in bytes.
    pub max_text_bytes: usize,
}

impl Default for ComplaintsConfig {
    fn default() -> Self {
        Self {
            link_look_back: Duration::from_secs(2 * 3600),
            respond_within: Duration::from_secs(24 * 3600),
            resolve_within: Duration::from_secs(48 * 3600),
            detect_window: Duration::from_secs(15 * 60),
            minor: 3,
            major: 6,
            critical: 12,
            max_text_bytes: 2000,
        }
    }
}

impl ComplaintsConfig {
    /// The `customer_reported` severity for `n` unexplained complaints in the window.
    pub fn severity_for(&self, n: usize) -> Option<Severity> {
        [
            (self.critical, Severity::Critical),
            (self.major, Severity::Major),
            (self.minor, Severity::Minor),
        ]
        .into_iter()
        .find(|(at, _)| n >= *at)
        .map(|(_, s)| s)
    }
}

/// `[[service]]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ServiceConfig {
    /// Unique name, as in the API and the MQTT topic.
    pub name: String,
    /// What it is, for people.
    #[serde(default)]
    pub description: String,
    /// How the members' severities make the service's status.
    #[serde(default)]
    pub reduce: Reduce,
    /// `k-of-n`: down when at least this many members are at or above `severity`.
    #[serde(default)]
    pub k: Option<usize>,
    /// `percent`: down when at least this share (0–100) of members is at or above `severity`.
    #[serde(default)]
    pub percent: Option<f64>,
    /// `weighted`: down when the members at or above `severity` carry at least this share
    /// (0–1] of the total weight.
    #[serde(default)]
    pub share: Option<f64>,
    /// The member severity that `k-of-n`, `percent` and `weighted` count; for `highest`, the
    /// worst member's severity at which the service is down.
    #[serde(
        default = "default_down_at",
        deserialize_with = "Severity::deserialize_raised"
    )]
    pub severity: Severity,
    /// A member at or above this severity makes the service degraded.
    #[serde(
        default = "default_degraded_at",
        deserialize_with = "Severity::deserialize_raised"
    )]
    pub degraded_at: Severity,
    /// Members (`[[service.member]]`).
    #[serde(default, rename = "member")]
    pub members: Vec<MemberConfig>,
}

fn default_down_at() -> Severity {
    Severity::Critical
}

fn default_degraded_at() -> Severity {
    Severity::Minor
}

/// The reduce function of a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reduce {
    /// The worst member decides.
    #[default]
    Highest,
    /// Down when `k` members are at or above `severity`.
    KOfN,
    /// Down when `percent` of the members are.
    Percent,
    /// Down when members carrying `share` of the weight are.
    Weighted,
}

impl Reduce {
    /// Name, as in config.
    pub fn name(self) -> &'static str {
        match self {
            Reduce::Highest => "highest",
            Reduce::KOfN => "k-of-n",
            Reduce::Percent => "percent",
            Reduce::Weighted => "weighted",
        }
    }
}

/// `[[service.member]]`: exactly one of `device`, `site`, `tag` or `service`; `object` with
/// `device` narrows it to the device's alarms on matching objects (an interface glob).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct MemberConfig {
    /// A device and everything below it in the topology.
    #[serde(default)]
    pub device: Option<String>,
    /// With `device`: only alarms on objects matching this glob (`ifIndex=3`, `cell=*`).
    #[serde(default)]
    pub object: Option<String>,
    /// Every device at a site.
    #[serde(default)]
    pub site: Option<String>,
    /// Every device with a tag.
    #[serde(default)]
    pub tag: Option<String>,
    /// Another service: its status is this member's severity.
    #[serde(default)]
    pub service: Option<String>,
    /// Weight for `weighted`.
    #[serde(default = "default_weight")]
    pub weight: f64,
    /// Alarm categories that do not count for this member.
    #[serde(default)]
    pub ignore: Vec<Category>,
    /// The member never counts above this severity.
    #[serde(default, deserialize_with = "Severity::deserialize_some_raised")]
    pub cap: Option<Severity>,
    /// Any alarm of the member counts as this severity.
    #[serde(default, deserialize_with = "Severity::deserialize_some_raised")]
    pub fix: Option<Severity>,
}

fn default_weight() -> f64 {
    1.0
}

impl MemberConfig {
    /// What the member names, for messages: `device bh-r1`, `site region-east`.
    pub fn describe(&self) -> String {
        match (
            &self.device,
            &self.object,
            &self.site,
            &self.tag,
            &self.service,
        ) {
            (Some(d), Some(o), ..) => format!("device {d} object {o}"),
            (Some(d), None, ..) => format!("device {d}"),
            (_, _, Some(s), ..) => format!("site {s}"),
            (_, _, _, Some(t), _) => format!("tag {t}"),
            (_, _, _, _, Some(s)) => format!("service {s}"),
            _ => "nothing".to_owned(),
        }
    }
}

/// Shortest hash key: 128 bits, as for the keys it makes.
pub const MIN_HASH_KEY: usize = 16;

/// Every problem of the `[[service]]` list: names, members, reduce parameters, loops.
pub(super) fn validate(config: &Config, problems: &mut Problems) {
    let devices: HashSet<&str> = config.devices.iter().map(|d| d.name.as_str()).collect();
    let sites: HashSet<&str> = config
        .devices
        .iter()
        .filter_map(|d| d.site.as_deref())
        .collect();
    let tags: HashSet<&str> = config
        .devices
        .iter()
        .flat_map(|d| d.tags.iter().map(String::as_str))
        .collect();
    let mut names: HashMap<&str, usize> = HashMap::new();
    for (i, s) in config.services.iter().enumerate() {
        let at = root("service").index(i);
        if let Err(why) = check_name(&s.name) {
            problems.push((at.key("name"), why));
        } else if let Some(first) = names.insert(&s.name, i) {
            names.insert(&s.name, first);
            problems.push((
                at.key("name"),
                format!(
                    "duplicate service name `{}` (first at service[{first}])",
                    s.name
                ),
            ));
        }
    }
    for (i, s) in config.services.iter().enumerate() {
        let at = root("service").index(i);
        if s.members.is_empty() {
            problems.push((
                at.key("member"),
                "expected at least one [[service.member]]".to_owned(),
            ));
        }
        let n = s.members.len();
        let param = |key: &str, given: bool, wanted: bool| match (given, wanted) {
            (false, true) => Some(format!(
                "expected `{key}` with reduce = \"{}\"",
                s.reduce.name()
            )),
            (true, false) => Some(format!(
                "`{key}` has no meaning with reduce = \"{}\"",
                s.reduce.name()
            )),
            _ => None,
        };
        for (key, given, wanted) in [
            ("k", s.k.is_some(), s.reduce == Reduce::KOfN),
            ("percent", s.percent.is_some(), s.reduce == Reduce::Percent),
            ("share", s.share.is_some(), s.reduce == Reduce::Weighted),
        ] {
            if let Some(why) = param(key, given, wanted) {
                problems.push((at.key(key), why));
            }
        }
        if let Some(k) = s.k
            && !(1..=n.max(1)).contains(&k)
        {
            problems.push((
                at.key("k"),
                format!("expected 1 to {} (the number of members)", n.max(1)),
            ));
        }
        if let Some(p) = s.percent
            && !(p > 0.0 && p <= 100.0)
        {
            problems.push((
                at.key("percent"),
                "expected a percentage in (0, 100]".to_owned(),
            ));
        }
        if let Some(x) = s.share
            && !(x > 0.0 && x <= 1.0)
        {
            problems.push((
                at.key("share"),
                "expected a share of the weight in (0, 1]".to_owned(),
            ));
        }
        if s.degraded_at > s.severity {
            problems.push((
                at.key("degraded-at"),
                format!(
                    "expected a severity at most `severity` ({})",
                    s.severity.name()
                ),
            ));
        }
        for (j, m) in s.members.iter().enumerate() {
            let at = at.key("member").index(j);
            let kinds = [&m.device, &m.site, &m.tag, &m.service]
                .iter()
                .filter(|k| k.is_some())
                .count();
            if kinds != 1 {
                problems.push((
                    at.clone(),
                    "expected exactly one of `device`, `site`, `tag` or `service`".to_owned(),
                ));
                continue;
            }
            let unknown = |key: &str, name: &str, what: &str| {
                (
                    at.key(key),
                    format!("unknown {key} `{name}`: expected {what}"),
                )
            };
            match (&m.device, &m.site, &m.tag, &m.service) {
                (Some(d), ..) if !devices.contains(d.as_str()) => {
                    problems.push(unknown("device", d, "a device name"))
                }
                (_, Some(x), ..) if !sites.contains(x.as_str()) => {
                    problems.push(unknown("site", x, "the site of some device"))
                }
                (_, _, Some(t), _) if !tags.contains(t.as_str()) => {
                    problems.push(unknown("tag", t, "a tag of some device"))
                }
                (_, _, _, Some(x)) if !names.contains_key(x.as_str()) => {
                    problems.push(unknown("service", x, "a service name"))
                }
                _ => {}
            }
            if m.object.is_some() && m.device.is_none() {
                problems.push((
                    at.key("object"),
                    "expected `object` only with `device`".to_owned(),
                ));
            }
            if !(m.weight.is_finite() && m.weight > 0.0) {
                problems.push((at.key("weight"), "expected a weight above zero".to_owned()));
            }
            if m.cap.is_some() && m.fix.is_some() {
                problems.push((
                    at.key("fix"),
                    "expected `cap` or `fix`, not both".to_owned(),
                ));
            }
        }
    }
    if let Some(key) = &config.impact.hash_key
        && key.expose().len() < MIN_HASH_KEY
    {
        problems.push((
            root("impact").key("hash-key-file"),
            format!("the key is {} bytes; expected at least {MIN_HASH_KEY} (e.g. `head -c 32 /dev/urandom | base64`)", key.expose().len()),
        ));
    }
    let c = &config.complaints;
    if !(c.minor >= 1 && c.minor <= c.major && c.major <= c.critical) {
        problems.push((
            root("complaints").key("minor"),
            "expected 1 <= minor <= major <= critical (complaints in the window)".to_owned(),
        ));
    }
    if let Some(cycle) = service_cycle(config) {
        problems.push((
            root("service"),
            format!("services contain each other: {cycle}"),
        ));
    }
}

/// A service name is an MQTT topic level and a URL path segment.
fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid service name `{name}`: expected 1 to 64 letters, digits, `-`, `_` or `.` (it is an MQTT topic level and a URL segment)"
        ))
    }
}

/// The first loop of services containing each other, in words.
fn service_cycle(config: &Config) -> Option<String> {
    let children = |name: &str| -> Vec<&str> {
        config
            .services
            .iter()
            .find(|s| s.name == name)
            .map(|s| {
                s.members
                    .iter()
                    .filter_map(|m| m.service.as_deref())
                    .collect()
            })
            .unwrap_or_default()
    };
    // Depth-first with the path on a stack; services are few.
    fn visit<'a>(
        name: &'a str,
        path: &mut Vec<&'a str>,
        done: &mut HashSet<&'a str>,
        children: &dyn Fn(&str) -> Vec<&'a str>,
    ) -> Option<String> {
        if let Some(start) = path.iter().position(|p| *p == name) {
            let mut cycle: Vec<&str> = path[start..].to_vec();
            cycle.push(name);
            return Some(cycle.join(" -> "));
        }
        if !done.insert(name) {
            return None;
        }
        path.push(name);
        for child in children(name) {
            if let Some(c) = visit(child, path, done, children) {
                return Some(c);
            }
        }
        path.pop();
        None
    }
    let mut done = HashSet::new();
    for s in &config.services {
        if let Some(c) = visit(&s.name, &mut Vec::new(), &mut done, &children) {
            return Some(c);
        }
    }
    None
}
