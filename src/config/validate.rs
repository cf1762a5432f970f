//! Validation: every problem of a parsed config, each with its key path and what was
//! expected, so `check-config` lists them all at once.

use std::collections::{HashMap, HashSet};

use std::net::IpAddr;

use super::load::{Problems, root};
use super::{Config, Credential, KeyPath, Secret, SnmpVersion, ThresholdLevels};
use crate::model::{Direction, MetricKind, Severity};

/// Every problem of a parsed config, by key path.
pub(super) fn validate(config: &Config, problems: &mut Problems) {
    for (name, c) in &config.snmp.credentials {
        validate_credential(c, root("snmp").key("credentials").key(name), problems);
    }
    super::limits::check(config, problems);
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
    validate_profiles(config, problems);
    super::impact::validate(config, problems);
    super::actions::validate(config, problems);
    super::cluster::validate(&config.cluster, problems);
    let an = &config.anomaly;
    if !(an.learning_rate > 0.0 && an.learning_rate <= 1.0) {
        problems.push((
            root("anomaly").key("learning-rate"),
            "expected a number in (0, 1]".to_owned(),
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
    let pr = &config.precursors;
    for (key, v) in [("rise", pr.rise), ("latency-rise", pr.latency_rise)] {
        if !(v > 1.0 && v <= 100.0) {
            problems.push((
                root("precursors").key(key),
                "expected a ratio above 1 and at most 100".to_owned(),
            ));
        }
    }
    let f = config.forecast.floor;
    if !(0.0..=1.0).contains(&f) {
        problems.push((
            root("forecast").key("floor"),
            "expected a share of the warning level in [0, 1]".to_owned(),
        ));
    }
    let a = &config.alarms;
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
}

fn validate_credential(c: &Credential, at: KeyPath, problems: &mut Problems) {
    let mut need = |ok: bool, key: &str, msg: &str| {
        if !ok {
            problems.push((at.key(key), msg.to_owned()));
        }
    };
    // A `*-file` that could not be read has its own error already; say nothing more of it.
    let unread = |inline: &Option<Secret>, file: &Option<std::path::PathBuf>| {
        inline.is_none() && file.is_some()
    };
    match c.version {
        SnmpVersion::V2c => {
            need(
                c.community.is_some() || unread(&c.community, &c.community_file),
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
            need(
                c.write_community.is_none(),
                "write-community",
                "v3 does not use a community: SETs go as the v3 user (give it write access)",
            );
            let key_ok = |k: &Option<Secret>, file: &Option<std::path::PathBuf>| {
                k.as_ref().is_some_and(|k| k.len() >= 8) || unread(k, file)
            };
            if c.auth_protocol.is_some() {
                need(
                    key_ok(&c.auth_key, &c.auth_key_file),
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
                    key_ok(&c.priv_key, &c.priv_key_file),
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

fn validate_traps(config: &Config, problems: &mut Problems) {
    for (oid, severity) in &config.traps.severity {
        let oid_ok = !oid.is_empty() && oid.split('.').all(|a| a.parse::<u64>().is_ok());
        if !oid_ok || Severity::raised(severity).is_none() {
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
