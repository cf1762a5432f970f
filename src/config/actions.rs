//! `[actions]` (whether anything may run, and the bounds on all of it) and `[[action]]` (rules:
//! which alarms, and the steps to take). Off and dry-run unless said otherwise.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use super::load::{Problems, root};
use super::{Config, Secret};
use crate::model::{Category, Mode, Role, SetValue, Severity, Trigger};

/// `[actions]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct ActionsConfig {
    /// Nothing is planned or run unless this is true.
    pub enabled: bool,
    /// Programs an `exec` step may run, by absolute path. Nothing else runs.
    pub allow_exec: Vec<PathBuf>,
    /// Variables of the daemon's environment an `exec` step gets (nothing else is passed).
    pub env: Vec<String>,
    /// Actions running at once, over all rules; the rest queue.
    pub max_concurrent: usize,
    /// An action waiting for approval expires after this (a rule may say otherwise).
    #[serde(with = "humantime_serde")]
    pub approval_timeout: Duration,
    /// Output kept per step, in bytes.
    pub max_output_bytes: usize,
    /// Failures in a row that open a rule's breaker (a rule may say otherwise).
    pub breaker_failures: u32,
    /// OID subtrees an `snmp-set` step may write (`1.3.6.1.2.1.2.2.1.7`, ifAdminStatus).
    /// Nothing else is written.
    pub allow_oids: Vec<String>,
}

impl Default for ActionsConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            allow_exec: Vec::new(),
            env: vec!["PATH".to_owned()],
            max_concurrent: 4,
            approval_timeout: Duration::from_secs(30 * 60),
            max_output_bytes: 4096,
            breaker_failures: 3,
            allow_oids: Vec::new(),
        }
    }
}

/// `[[action]]`: a rule.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ActionRule {
    /// Unique name, as in the API, the CLI and the metrics.
    pub name: String,
    /// What it is for, for people.
    #[serde(default)]
    pub description: String,
    /// The transitions it acts on.
    pub on: Vec<Trigger>,
    /// Alarms at or above this severity (at the transition).
    #[serde(default = "lowest", deserialize_with = "Severity::deserialize_raised")]
    pub severity: Severity,
    /// Only this category.
    #[serde(default)]
    pub category: Option<Category>,
    /// Only devices whose name matches this glob.
    #[serde(default)]
    pub device: Option<String>,
    /// Only devices of this role.
    #[serde(default)]
    pub role: Option<Role>,
    /// Only devices at this site.
    #[serde(default)]
    pub site: Option<String>,
    /// Only devices with this tag.
    #[serde(default)]
    pub tag: Option<String>,
    /// Only objects matching this glob (`ifIndex=*`).
    #[serde(default)]
    pub object: Option<String>,
    /// Only conditions matching this glob (`flood_high`, `*_anomaly_low`).
    #[serde(default)]
    pub condition: Option<String>,
    /// Only alarms that touch this service (their impact names it).
    #[serde(default)]
    pub service: Option<String>,
    /// `dry-run` (the default) records what it would do; `live` does it.
    #[serde(default)]
    pub mode: Mode,
    /// Wait for an engineer's approval before the first step.
    #[serde(default)]
    pub require_approval: bool,
    /// Instead of `[actions] approval-timeout`.
    #[serde(default, with = "humantime_serde::option")]
    pub approval_timeout: Option<Duration>,
    /// At most one run per fault record (a reopened alarm is the same fault).
    #[serde(default = "yes")]
    pub once_per_fault: bool,
    /// At most this many runs of the rule per `per`.
    #[serde(default)]
    pub max_runs: Option<u32>,
    /// At most this many runs on one device per `per`.
    #[serde(default)]
    pub max_runs_per_device: Option<u32>,
    /// The window of `max-runs` and `max-runs-per-device`.
    #[serde(default = "hour", with = "humantime_serde")]
    pub per: Duration,
    /// Instead of `[actions] breaker-failures`.
    #[serde(default)]
    pub breaker_failures: Option<u32>,
    /// When the last step fails: `nothing`, or `escalate` the alarm one severity.
    #[serde(default)]
    pub on_failure: OnFailure,
    /// The steps (`[[action.step]]`), in order.
    #[serde(default, rename = "step")]
    pub steps: Vec<StepConfig>,
}

/// What a rule's filters look at, from an alarm's transition or a fault record.
#[derive(Debug, Clone, Copy)]
pub struct Filtered<'a> {
    /// The severity (a clear's: the fault's worst).
    pub severity: Severity,
    /// The category.
    pub category: Category,
    /// The device.
    pub device: &'a str,
    /// Its role.
    pub role: Option<Role>,
    /// Its site.
    pub site: Option<&'a str>,
    /// The object.
    pub object: &'a str,
    /// The condition.
    pub condition: &'a str,
    /// The services its impact names.
    pub services: &'a [String],
}

impl ActionRule {
    /// Whether the rule's filters (not its triggers) take `x`; tags from `topology`.
    pub fn takes(&self, x: &Filtered<'_>, topology: &super::Topology) -> bool {
        use crate::model::glob;
        x.severity >= self.severity
            && self.category.is_none_or(|c| c == x.category)
            && self.device.as_deref().is_none_or(|g| glob(g, x.device))
            && self.role.is_none_or(|r| x.role == Some(r))
            && self.site.as_deref().is_none_or(|s| x.site == Some(s))
            && self
                .tag
                .as_deref()
                .is_none_or(|t| topology.has_tag(x.device, t))
            && self.object.as_deref().is_none_or(|g| glob(g, x.object))
            && self
                .condition
                .as_deref()
                .is_none_or(|g| glob(g, x.condition))
            && self
                .service
                .as_deref()
                .is_none_or(|s| x.services.iter().any(|n| n == s))
    }
}

fn lowest() -> Severity {
    Severity::Warning
}

fn yes() -> bool {
    true
}

fn hour() -> Duration {
    Duration::from_secs(3600)
}

/// What a rule does when it fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnFailure {
    /// Record it (and count it towards the breaker).
    #[default]
    Nothing,
    /// Also raise the alarm one severity, so the humans' targets tighten.
    Escalate,
}

/// `[[action.step]]`: exactly one of `exec`, `webhook`, `snmp-set`, `notify` or `wait-clear`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct StepConfig {
    /// Program and arguments, each a template (`{device}`); the program must be on
    /// `[actions] allow-exec`.
    #[serde(default)]
    pub exec: Option<Vec<Template>>,
    /// For `exec`: variables set from secret files (`{ API_KEY = "key.txt" }`), shown as `***`.
    #[serde(default)]
    pub secret_env: BTreeMap<String, PathBuf>,
    /// POST the alarm as JSON to this URL (a template), `http://` or `https://`.
    #[serde(default)]
    pub webhook: Option<Template>,
    /// For `webhook`: a bearer token from this file.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// For `webhook`: attempts after the first, with doubling back-off from one second.
    #[serde(default = "two")]
    pub retries: u32,
    /// SET this object (a numeric OID, a template: `1.3.6.1.2.1.2.2.1.7.{ifindex}`) on the
    /// alarm's device, with its credential (v2c: its `write-community`), then read it back;
    /// the OID must be under `[actions] allow-oids`.
    #[serde(default)]
    pub snmp_set: Option<Template>,
    /// For `snmp-set`: an integer or a string.
    #[serde(default, deserialize_with = "set_value")]
    pub value: Option<SetValue>,
    /// Publish on this MQTT topic (a template: `noc/actions/{device}`) through `[mqtt]`'s
    /// broker.
    #[serde(default)]
    pub notify: Option<Template>,
    /// For `notify`: the text (a template); by default what happened, where.
    #[serde(default)]
    pub message: Option<Template>,
    /// Succeed if the alarm clears within this; otherwise the next step runs (or the action
    /// fails).
    #[serde(default, with = "humantime_serde::option")]
    pub wait_clear: Option<Duration>,
    /// How long `exec` or each `webhook` attempt may take.
    #[serde(default = "half_minute", with = "humantime_serde")]
    pub timeout: Duration,
    /// Secrets read from `secret-env` and `token-file` at load.
    #[serde(skip)]
    pub secrets: Vec<(String, Secret)>,
}

/// An integer is an INTEGER, a string an OCTET STRING.
fn set_value<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SetValue>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Given {
        Integer(i64),
        Text(String),
    }
    Ok(Some(match Given::deserialize(d)? {
        Given::Integer(n) => SetValue::Integer(n),
        Given::Text(t) => SetValue::Text(t),
    }))
}

fn two() -> u32 {
    2
}

fn half_minute() -> Duration {
    Duration::from_secs(30)
}

/// A value filled from the alarm: text with `{field}` in it.
#[derive(Debug, Clone, PartialEq)]
pub struct Template(pub Vec<Piece>);

/// Part of a [`Template`].
#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    /// As written.
    Text(String),
    /// Filled in.
    Field(Field),
}

/// What a template can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// The device's name.
    Device,
    /// The alarm's object (`ifIndex=3`).
    Object,
    /// The interface index of an `ifIndex=N` object.
    IfIndex,
    /// The condition (`flood_high`).
    Condition,
    /// The severity.
    Severity,
    /// The category.
    Category,
    /// The alarm's id.
    AlarmId,
    /// The fault record's id.
    FaultId,
    /// The action's id.
    ActionId,
    /// The rule's name.
    Rule,
    /// The transition (`raised`).
    Trigger,
    /// The device's site (empty if none).
    Site,
    /// The device's role.
    Role,
    /// The alarm's text, made printable.
    Text,
}

impl Field {
    /// Every field, by its name in templates.
    pub const ALL: [(&'static str, Field); 14] = [
        ("device", Field::Device),
        ("object", Field::Object),
        ("ifindex", Field::IfIndex),
        ("condition", Field::Condition),
        ("severity", Field::Severity),
        ("category", Field::Category),
        ("alarm-id", Field::AlarmId),
        ("fault-id", Field::FaultId),
        ("action-id", Field::ActionId),
        ("rule", Field::Rule),
        ("trigger", Field::Trigger),
        ("site", Field::Site),
        ("role", Field::Role),
        ("text", Field::Text),
    ];
}

impl Template {
    /// Parses `{field}`s; `{{` and `}}` are literal braces.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    literal.push('}');
                }
                '{' => {
                    let name: String = chars.by_ref().take_while(|c| *c != '}').collect();
                    let field = Field::ALL
                        .iter()
                        .find(|(n, _)| *n == name)
                        .map(|(_, f)| *f)
                        .ok_or_else(|| {
                            let names: Vec<&str> = Field::ALL.iter().map(|(n, _)| *n).collect();
                            format!(
                                "unknown field `{{{name}}}` in `{text}`: expected one of {}",
                                names.join(", ")
                            )
                        })?;
                    if !literal.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut literal)));
                    }
                    pieces.push(Piece::Field(field));
                }
                '}' => return Err(format!("unmatched `}}` in `{text}` (write `}}}}`)")),
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            pieces.push(Piece::Text(literal));
        }
        Ok(Self(pieces))
    }

    /// The template's text, if it names no field.
    pub fn literal(&self) -> Option<&str> {
        match self.0.as_slice() {
            [] => Some(""),
            [Piece::Text(t)] => Some(t),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for Template {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Template::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Reads each step's secret files (relative to the config file) into the step.
pub(super) fn resolve_secrets(config: &mut Config, base: &Path, problems: &mut Problems) {
    for (i, rule) in config.actions_rules.iter_mut().enumerate() {
        for (j, step) in rule.steps.iter_mut().enumerate() {
            let at = root("action").index(i).key("step").index(j);
            let mut files: Vec<(super::KeyPath, String, PathBuf)> = step
                .secret_env
                .iter()
                .map(|(name, file)| (at.key("secret-env").key(name), name.clone(), file.clone()))
                .collect();
            if let Some(file) = &step.token_file {
                files.push((at.key("token-file"), String::new(), file.clone()));
            }
            for (key, name, file) in files {
                let path = base.join(file);
                match Secret::from_file(&path) {
                    Ok(s) => step.secrets.push((name, s)),
                    Err(e) => problems.push((
                        key,
                        format!("cannot read secret file {}: {e}", path.display()),
                    )),
                }
            }
        }
    }
}

/// Every problem of `[actions]` and `[[action]]`.
pub(super) fn validate(config: &Config, problems: &mut Problems) {
    let a = &config.actions;
    let at = root("actions");
    for (i, path) in a.allow_exec.iter().enumerate() {
        let key = at.key("allow-exec").index(i);
        if !path.is_absolute() {
            problems.push((
                key,
                format!("`{}`: expected an absolute path", path.display()),
            ));
        } else if !is_executable(path) {
            problems.push((
                key,
                format!(
                    "unknown executable {}: no such executable file",
                    path.display()
                ),
            ));
        }
    }
    for (i, oid) in a.allow_oids.iter().enumerate() {
        if crate::config::profile::arcs(oid).is_none_or(|arcs| arcs.len() < 2) {
            problems.push((
                at.key("allow-oids").index(i),
                format!("`{oid}`: expected a numeric OID (1.3.6.1.2.1.2.2.1.7)"),
            ));
        }
    }
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
    let mut names = HashSet::new();
    for (i, r) in config.actions_rules.iter().enumerate() {
        let at = root("action").index(i);
        if r.name.is_empty()
            || r.name.len() > 64
            || !r
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            problems.push((
                at.key("name"),
                format!(
                    "invalid rule name `{}`: expected 1 to 64 letters, digits, `-`, `_` or `.`",
                    r.name
                ),
            ));
        } else if !names.insert(r.name.as_str()) {
            problems.push((at.key("name"), format!("duplicate rule name `{}`", r.name)));
        }
        if r.on.is_empty() {
            problems.push((
                at.key("on"),
                "expected at least one of raised, escalated, cleared, ack-overdue".to_owned(),
            ));
        }
        if r.steps.is_empty() {
            problems.push((
                at.key("step"),
                "expected at least one [[action.step]]".to_owned(),
            ));
        }
        if let Some(s) = &r.site
            && !sites.contains(s.as_str())
        {
            problems.push((
                at.key("site"),
                format!("unknown site `{s}`: expected the site of some device"),
            ));
        }
        if let Some(t) = &r.tag
            && !tags.contains(t.as_str())
        {
            problems.push((
                at.key("tag"),
                format!("unknown tag `{t}`: expected a tag of some device"),
            ));
        }
        if let Some(s) = &r.service
            && !config.services.iter().any(|x| &x.name == s)
        {
            problems.push((
                at.key("service"),
                format!("unknown service `{s}`: expected a [[service]] name"),
            ));
        }
        if r.on.contains(&Trigger::Cleared) && r.steps.iter().any(|s| s.wait_clear.is_some()) {
            problems.push((
                at.key("on"),
                "a rule on `cleared` cannot `wait-clear`: the alarm is already clear".to_owned(),
            ));
        }
        for (j, s) in r.steps.iter().enumerate() {
            validate_step(config, s, at.key("step").index(j), problems);
        }
    }
}

fn validate_step(config: &Config, s: &StepConfig, at: super::KeyPath, problems: &mut Problems) {
    let kinds = [
        s.exec.is_some(),
        s.webhook.is_some(),
        s.snmp_set.is_some(),
        s.notify.is_some(),
        s.wait_clear.is_some(),
    ];
    if kinds.iter().filter(|k| **k).count() != 1 {
        problems.push((
            at,
            "expected exactly one of `exec`, `webhook`, `snmp-set`, `notify` or `wait-clear`"
                .to_owned(),
        ));
        return;
    }
    if let Some(topic) = &s.notify {
        if !config.mqtt.enabled {
            problems.push((
                at.key("notify"),
                "`notify` publishes through [mqtt]: set `enabled = true` and its `broker`"
                    .to_owned(),
            ));
        }
        let literal: String = topic
            .0
            .iter()
            .filter_map(|p| match p {
                Piece::Text(t) => Some(t.as_str()),
                Piece::Field(_) => None,
            })
            .collect();
        if topic.0.is_empty() || literal.contains(['+', '#']) {
            problems.push((
                at.key("notify"),
                "expected a topic to publish on, without the wildcards `+` and `#`".to_owned(),
            ));
        }
    } else if s.message.is_some() {
        problems.push((
            at.key("message"),
            "`message` is for `notify` steps".to_owned(),
        ));
    }
    if let Some(oid) = &s.snmp_set {
        // What is written out before the first field must already be inside an allowed
        // subtree, so no alarm's text can steer the SET elsewhere.
        let head = match oid.0.first() {
            Some(Piece::Text(t)) => t.trim_start_matches('.'),
            _ => "",
        };
        let whole = oid.0.len() == 1;
        let allowed = config.actions.allow_oids.iter().any(|a| {
            let a = a.trim_start_matches('.');
            head.strip_prefix(a)
                .is_some_and(|rest| rest.starts_with('.') || (rest.is_empty() && whole))
        });
        if !allowed {
            problems.push((
                at.key("snmp-set"),
                format!(
                    "OID `{}` is not under [actions] allow-oids",
                    head.trim_end_matches('.')
                ),
            ));
        }
        if s.value.is_none() {
            problems.push((
                at.key("value"),
                "`snmp-set` needs a `value` (an integer or a string)".to_owned(),
            ));
        }
    } else if s.value.is_some() {
        problems.push((
            at.key("value"),
            "`value` is for `snmp-set` steps".to_owned(),
        ));
    }
    if let Some(argv) = &s.exec {
        match argv.first().map(Template::literal) {
            None => problems.push((at.key("exec"), "expected a program to run".to_owned())),
            Some(None) => problems.push((
                at.key("exec"),
                "the program must be written out, not a template".to_owned(),
            )),
            Some(Some(program)) => {
                if !config
                    .actions
                    .allow_exec
                    .iter()
                    .any(|p| p == Path::new(program))
                {
                    problems.push((
                        at.key("exec"),
                        format!("unknown executable `{program}`: not on [actions] allow-exec"),
                    ));
                }
            }
        }
        for name in s.secret_env.keys() {
            if name.is_empty() || name.contains('=') || name.contains('\0') {
                problems.push((
                    at.key("secret-env"),
                    format!("invalid variable name `{name}`"),
                ));
            }
        }
    } else if !s.secret_env.is_empty() {
        problems.push((
            at.key("secret-env"),
            "`secret-env` is for `exec` steps".to_owned(),
        ));
    }
    if let Some(url) = &s.webhook {
        let head = match url.0.first() {
            Some(Piece::Text(t)) => t.as_str(),
            _ => "",
        };
        if !(head.starts_with("http://") || head.starts_with("https://")) {
            problems.push((
                at.key("webhook"),
                "expected a URL starting with http:// or https:// (written out)".to_owned(),
            ));
        }
    } else if s.token_file.is_some() {
        problems.push((
            at.key("token-file"),
            "`token-file` is for `webhook` steps".to_owned(),
        ));
    }
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    path.is_file()
}
