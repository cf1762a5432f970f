//! Replay: scenario files and captured exports fed through the real pipeline on the data's
//! clock, so a CI job gets the same alarms every time; then the outcome lines, and their diff
//! against a golden file.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::config::Config;
use crate::impact::customers::{CustomerKeys, Places, parse_csv};
use crate::ingest::scenario::{self, ScenarioError};
use crate::message::{Clock, Ingest};
use crate::model::{
    ActionRecord, AlarmEvent, AlarmId, Impact, Sample, Severity, Suppression, Timestamp,
    TransitionKind,
};
use crate::pipeline::Pipeline;
use crate::store::{Store, StoreError};
use crate::telemetry::Metrics;

/// Why a replay could not run.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// A scenario file could not be read (the message names file and line).
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// A capture file could not be read (the message names it).
    #[error("{0}")]
    Capture(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The config is invalid (the message names file, line and key).
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The golden file could not be read.
    #[error("cannot read expected output {}: {source}", path.display())]
    Expected {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A customer export could not be read or has bad rows (each named by line).
    #[error("{}: {message}", path.display())]
    Customers {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// No temporary store or runtime could be made.
    #[error("cannot start the replay: {0}")]
    Setup(std::io::Error),
    /// A stage's thread could not be started.
    #[error(transparent)]
    Thread(#[from] crate::pipeline::thread::ThreadError),
}

impl From<crate::pipeline::PipelineError> for ReplayError {
    fn from(e: crate::pipeline::PipelineError) -> Self {
        match e {
            crate::pipeline::PipelineError::Store(e) => Self::Store(e),
            crate::pipeline::PipelineError::Thread(e) => Self::Thread(e),
        }
    }
}

impl ReplayError {
    /// Whether the input was at fault (a file, a line, the config) rather than the run.
    pub fn is_input(&self) -> bool {
        !matches!(self, ReplayError::Store(_) | ReplayError::Setup(_))
    }
}

/// `noctua replay`: the config given (else the embedded default, never /etc, so CI runs are
/// reproducible), the replay, and with `expect` its comparison with the golden file: `None`
/// when it matches, else the diff.
pub fn check(
    config: Option<PathBuf>,
    files: Vec<PathBuf>,
    store: Option<&Path>,
    speed: Speed,
    expect: Option<&Path>,
) -> Result<(Replayed, Option<Golden>), ReplayError> {
    let config = Arc::new(crate::config::ConfigSource::given(config).load()?);
    let expected = expect
        .map(|path| {
            std::fs::read_to_string(path).map_err(|source| ReplayError::Expected {
                path: path.to_owned(),
                source,
            })
        })
        .transpose()?;
    let replayed = replay(config, files, store, speed)?;
    let verdict = expect.zip(expected).map(|(path, text)| Golden {
        path: path.to_owned(),
        diff: diff(&text, &replayed.lines),
    });
    Ok((replayed, verdict))
}

/// A replay against its golden file; shown as the line `noctua replay` prints.
#[derive(Debug, Clone, PartialEq)]
pub struct Golden {
    /// The golden file.
    pub path: PathBuf,
    /// `None` when the replay matches, else the readable diff.
    pub diff: Option<String>,
}

impl std::fmt::Display for Golden {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let path = self.path.display();
        match &self.diff {
            None => write!(f, "replay matches {path}"),
            Some(d) => write!(f, "replay differs from {path} (- expected, + actual):\n{d}"),
        }
    }
}

/// What a replay produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Replayed {
    /// One outcome line per transition, in sequence order.
    pub lines: Vec<String>,
    /// What the captures held, if any were given, and how many samples they gave.
    pub captures: Option<(CaptureSummary, usize)>,
}

impl Replayed {
    /// The outcome lines as a file holds them.
    pub fn text(&self) -> String {
        self.lines.iter().map(|l| format!("{l}\n")).collect()
    }
}

/// Replays `files` (scenarios and captures, told apart by their content; `.csv` files are
/// customer exports, imported first) through a pipeline on `store`, or on a temporary store,
/// and returns the transitions it committed. With both kinds, items are interleaved by data
/// time; the stable sort keeps each file's own order.
pub fn replay(
    config: Arc<Config>,
    files: Vec<PathBuf>,
    store: Option<&Path>,
    speed: Speed,
) -> Result<Replayed, ReplayError> {
    let (exports, files): (Vec<PathBuf>, Vec<PathBuf>) = files
        .into_iter()
        .partition(|f| f.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")));
    let (captures, scenarios): (Vec<PathBuf>, Vec<PathBuf>) = files
        .into_iter()
        .partition(|f| crate::ingest::pcap::is_capture(f));
    let mut items = Vec::new();
    for f in &scenarios {
        items.append(&mut scenario::read(f)?);
    }
    let mut summary = None;
    if !captures.is_empty() {
        let (mut from_captures, s) = read_captures(&captures, &config)?;
        summary = Some((s, from_captures.len()));
        items.append(&mut from_captures);
        if !scenarios.is_empty() {
            items.sort_by_key(|(at, _)| *at);
        }
    }
    let temp;
    let path = match store {
        Some(p) => p,
        None => {
            temp = tempfile::tempdir().map_err(ReplayError::Setup)?;
            temp.path()
        }
    };
    let store = Store::open(path)?;
    for export in &exports {
        import_customers(&config, &store, export)?;
    }
    let after = store.last_seq()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(ReplayError::Setup)?;
    runtime.block_on(run(config, store.clone(), items, speed))?;
    Ok(Replayed {
        lines: outcome_lines(&store, after)?,
        captures: summary,
    })
}

/// Imports a customer export into the replay's store, all rows or none.
fn import_customers(config: &Config, store: &Store, path: &Path) -> Result<(), ReplayError> {
    let failed = |message: String| ReplayError::Customers {
        path: path.to_owned(),
        message,
    };
    let data = std::fs::read(path).map_err(|e| failed(e.to_string()))?;
    let places = Places::new(config);
    let parsed = parse_csv(
        &data,
        1,
        &places,
        &CustomerKeys::from_config(&config.impact),
    );
    if let Some(e) = parsed.errors.first() {
        return Err(failed(format!(
            "line {}: {} ({} bad rows)",
            e.line, e.message, parsed.bad
        )));
    }
    store.import_customers(&parsed.rows)?;
    Ok(())
}

/// How fast to feed the scenario.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Speed {
    /// As fast as the pipeline takes it.
    Max,
    /// Data time divided by this factor (`1` is real time).
    Factor(f64),
}

impl std::str::FromStr for Speed {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "max" => Ok(Speed::Max),
            "realtime" => Ok(Speed::Factor(1.0)),
            _ => s
                .strip_suffix('x')
                .and_then(|n| n.parse::<f64>().ok())
                .filter(|n| n.is_finite() && *n > 0.0)
                .map(Speed::Factor)
                .ok_or_else(|| format!("`{s}`: expected max, realtime or a factor such as 10x")),
        }
    }
}

/// What replaying captures saw, beside the samples: what a CI job checking a capture wants to
/// know at a glance.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CaptureSummary {
    /// Datagrams sent to a collector port.
    pub datagrams: u64,
    /// Packets skipped (not UDP to a collector port, or malformed).
    pub skipped: u64,
    /// Of the datagrams, those the collector dropped (any reason).
    pub dropped: u64,
    /// Flow records decoded.
    pub records: u64,
    /// Octets in those records, as exported.
    pub octets: u64,
    /// Data sets skipped because their template was never seen.
    pub unknown_template_sets: u64,
    /// Records refused by aggregation: late (their interval was emitted) or in the future.
    pub refused: u64,
}

impl std::fmt::Display for CaptureSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} datagrams to collector ports ({} dropped; {} other packets skipped), {} flow \
             records, {} in them",
            self.datagrams,
            self.dropped,
            self.skipped,
            self.records,
            bytes(self.octets)
        )?;
        if self.unknown_template_sets > 0 {
            write!(
                f,
                ", {} data sets of unknown templates",
                self.unknown_template_sets
            )?;
        }
        if self.refused > 0 {
            write!(f, ", {} records refused as late or future", self.refused)?;
        }
        Ok(())
    }
}

/// Octets as a person reads them: three significant figures and a decimal unit.
fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit + 1 < UNITS.len() {
        v /= 1000.0;
        unit += 1;
    }
    match unit {
        0 => format!("{n} B"),
        _ if v >= 100.0 => format!("{v:.0} {}", UNITS[unit]),
        _ if v >= 10.0 => format!("{v:.1} {}", UNITS[unit]),
        _ => format!("{v:.2} {}", UNITS[unit]),
    }
}

/// Reads captured NetFlow/IPFIX exports (pcap or pcapng) into timed samples: every datagram
/// sent to one of the `netflow.listen` ports goes through the collector, in file order, with
/// its capture time as the clock; at the end every open interval is emitted. The files share
/// one collector, so a template in one file decodes data in the next.
pub fn read_captures(
    paths: &[PathBuf],
    config: &Config,
) -> Result<(Vec<(Timestamp, Ingest)>, CaptureSummary), ReplayError> {
    let ports: Vec<u16> = config.netflow.listen.iter().map(|a| a.port()).collect();
    let metrics = Arc::new(Metrics::new());
    let mut collector = crate::ingest::netflow::Collector::new(config, metrics.clone());
    let mut items = Vec::new();
    let mut summary = CaptureSummary::default();
    let mut emit = |s: Sample| items.push((s.at, Ingest::Sample(s)));
    for path in paths {
        let (datagrams, skipped) =
            crate::ingest::pcap::read(path, &ports).map_err(ReplayError::Capture)?;
        summary.skipped += skipped.other + skipped.malformed;
        for d in datagrams {
            summary.datagrams += 1;
            collector.flush(d.at_ms, &mut emit);
            collector.datagram(d.src, &d.payload, d.at_ms);
        }
    }
    collector.finish(&mut emit);
    let flows = metrics.netflow_totals();
    summary.dropped = flows.dropped;
    summary.records = flows.records;
    summary.octets = flows.octets;
    summary.unknown_template_sets = flows.unknown_template_sets;
    summary.refused = flows.refused;
    Ok((items, summary))
}

/// Feeds the items through a pipeline on `store` with the data's clock, then drains it.
/// Time advances by a tick whenever data time has moved a second since the last one, like the
/// daemon's one-second tick, and once more at the end.
pub async fn run(
    config: Arc<Config>,
    store: Store,
    items: Vec<(Timestamp, Ingest)>,
    speed: Speed,
) -> Result<(), ReplayError> {
    let pipeline = Pipeline::start(config, store, Clock::Data)?;
    let mut last_tick: Option<Timestamp> = None;
    let mut latest: Option<Timestamp> = None;
    let mut previous: Option<Timestamp> = None;
    for (at, item) in items {
        if let (Speed::Factor(f), Some(p)) = (speed, previous) {
            tokio::time::sleep(Duration::from_secs_f64(at.since(p).as_secs_f64() / f)).await;
        }
        previous = Some(at);
        latest = Some(latest.map_or(at, |t| t.max(at)));
        let explicit_tick = matches!(item, Ingest::Tick(_));
        if !pipeline.samples.send(item).await {
            break;
        }
        if explicit_tick {
            last_tick = Some(at);
        } else if last_tick.is_none_or(|t| at.since(t) >= Duration::from_secs(1)) {
            pipeline.samples.send(Ingest::Tick(at)).await;
            last_tick = Some(at);
        }
    }
    if let Some(t) = latest {
        pipeline.samples.send(Ingest::Tick(t)).await;
    }
    pipeline.drain().await?;
    Ok(())
}

/// One transition as replay prints it and golden files hold it: what an engineer would check,
/// without the parts that only restate others.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    /// Sequence number.
    pub seq: u64,
    /// Data time.
    pub at: Timestamp,
    /// What happened.
    pub kind: TransitionKind,
    /// Alarm id.
    pub alarm_id: AlarmId,
    /// Device.
    pub device: String,
    /// Object.
    pub object: String,
    /// Condition.
    pub condition: String,
    /// Severity after the transition.
    pub severity: Severity,
    /// False for symptoms of a root cause.
    pub root_cause_indicator: bool,
    /// Why not notified, if suppressed.
    pub suppressed_by: Option<Suppression>,
    /// Whether it was published.
    pub notified: bool,
    /// The alarm's text: the value, the level, and the context (top talkers on NetFlow
    /// series), as an engineer would read it.
    pub text: String,
    /// Services and customers behind it, when it touches any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub impact: Option<Impact>,
}

/// A complaint's end state as replay prints it, after the transitions.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
struct ComplaintOutcome<'a> {
    complaint: &'a str,
    place: String,
    received_at: Timestamp,
    state: &'static str,
    /// The fault that explains it.
    fault: Option<u64>,
    /// Whether the fault's alarm came before the complaint.
    noc_knew_first: Option<bool>,
    resolution: Option<&'a str>,
    respond_breached: bool,
    resolve_breached: bool,
}

impl From<&AlarmEvent> for Outcome {
    fn from(e: &AlarmEvent) -> Self {
        Self {
            seq: e.seq,
            at: e.at,
            kind: e.kind,
            alarm_id: e.alarm.alarm_id,
            device: e.alarm.device.clone(),
            object: e.alarm.object.clone(),
            condition: e.alarm.condition.clone(),
            severity: e.alarm.perceived_severity,
            root_cause_indicator: e.alarm.root_cause_indicator,
            suppressed_by: e.alarm.suppressed_by,
            notified: e.notified,
            text: e.alarm.additional_text.clone(),
            impact: (e.alarm.impact.customers > 0 || !e.alarm.impact.services.is_empty())
                .then(|| e.alarm.impact.clone()),
        }
    }
}

/// The outcome lines of every transition after sequence `after`, in sequence order, each
/// followed by the service changes it made; then each complaint's end state by id, then each
/// action's.
pub fn outcome_lines(store: &Store, after: u64) -> Result<Vec<String>, StoreError> {
    let mut services = store.service_history_after(after)?.into_iter().peekable();
    let mut lines = Vec::new();
    for e in store.history_after(after, usize::MAX)? {
        lines.push(line(&Outcome::from(&e)));
        while let Some(st) = services.next_if(|s| s.seq <= e.seq) {
            lines.push(line(&serde_json::json!({
                "seq": st.seq,
                "at": st.time_changed,
                "service": st.name,
                "status": st.status,
                "severity": st.severity,
                "underlyingAlarm": st.underlying_alarm,
            })));
        }
    }
    for c in store.complaints()? {
        let o = ComplaintOutcome {
            complaint: &c.id,
            place: c.place.to_string(),
            received_at: c.received_at,
            state: c.state.name(),
            fault: c.link.as_ref().map(|l| l.fault.0),
            noc_knew_first: c.link.as_ref().map(|l| l.fault_raised_at <= c.received_at),
            resolution: c.resolution.as_deref(),
            respond_breached: c.respond_breached,
            resolve_breached: c.resolve_breached,
        };
        lines.push(line(&o));
    }
    for a in store.actions()? {
        lines.push(line(&ActionOutcome::from(&a)));
    }
    Ok(lines)
}

/// An action's end state as replay prints it, after the complaints: every step with how it
/// went, so a rule can be tried on history (a replay runs every rule as a dry run).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
struct ActionOutcome<'a> {
    action: u64,
    rule: &'a str,
    trigger: &'static str,
    alarm_id: AlarmId,
    device: &'a str,
    object: &'a str,
    created_at: Timestamp,
    state: &'static str,
    reason: &'a str,
    /// `outcome at time: what` per step (`not started` for the rest).
    steps: Vec<String>,
}

impl<'a> From<&'a ActionRecord> for ActionOutcome<'a> {
    fn from(a: &'a ActionRecord) -> Self {
        Self {
            action: a.id.0,
            rule: &a.rule,
            trigger: a.trigger.name(),
            alarm_id: a.alarm_id,
            device: &a.device,
            object: &a.object,
            created_at: a.created_at,
            state: a.state.name(),
            reason: &a.reason,
            steps: a
                .steps
                .iter()
                .map(|s| match (s.outcome, s.ended_at) {
                    (Some(o), Some(at)) => format!("{} at {at}: {}", o.name(), s.plan.describe()),
                    _ if s.started_at.is_some() => format!("under way: {}", s.plan.describe()),
                    _ => format!("not started: {}", s.plan.describe()),
                })
                .collect(),
        }
    }
}

/// One outcome as a JSON line.
fn line<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// Compares outcome lines with an expected file; `None` when equal, else a readable diff.
pub fn diff(expected: &str, actual: &[String]) -> Option<String> {
    let expected: Vec<&str> = expected.lines().filter(|l| !l.trim().is_empty()).collect();
    if expected.len() == actual.len() && expected.iter().zip(actual).all(|(e, a)| *e == a) {
        return None;
    }
    let mut out = String::new();
    for i in 0..expected.len().max(actual.len()) {
        match (expected.get(i), actual.get(i)) {
            (Some(e), Some(a)) if *e == a.as_str() => {}
            (e, a) => {
                out.push_str(&format!("line {}:\n", i + 1));
                if let Some(e) = e {
                    out.push_str(&format!("- {e}\n"));
                }
                if let Some(a) = a {
                    out.push_str(&format!("+ {a}\n"));
                }
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speeds_parse() {
        assert_eq!("max".parse::<Speed>(), Ok(Speed::Max));
        assert_eq!("realtime".parse::<Speed>(), Ok(Speed::Factor(1.0)));
        assert_eq!("60x".parse::<Speed>(), Ok(Speed::Factor(60.0)));
        assert!("0x".parse::<Speed>().is_err());
        assert!("fast".parse::<Speed>().is_err());
    }

    #[test]
    fn diff_shows_changed_lines_only() {
        assert_eq!(diff("a\nb\n", &["a".into(), "b".into()]), None);
        let d = diff("a\nb\n", &["a".into(), "c".into(), "d".into()]).unwrap();
        assert_eq!(d, "line 2:\n- b\n+ c\nline 3:\n+ d\n");
    }
}
