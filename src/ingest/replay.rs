//! Replay of scenario files: samples and events with their own timestamps, fed through the real
//! pipeline on the data's clock, so a CI job gets the same alarms every time.
//!
//! A scenario is JSON lines; blank lines and `#` comments are skipped:
//!
//! ```text
//! {"at":"2026-11-29T10:00:00Z","device":"bh-r1","object":"ifIndex=3","metric":"loss_pct","value":3.5}
//! {"at":"2026-11-29T10:00:30Z","device":"bh-r1","event":"unreachable"}
//! {"at":"2026-11-29T11:00:00Z"}
//! ```
//!
//! The last form only advances time (so hold-downs and response targets can pass).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::alarm::DEVICE_OBJECT;
use crate::alarm::stage::Clock;
use crate::config::Config;
use crate::daemon::Pipeline;
use crate::ingest::Ingest;
use crate::model::{
    AlarmEvent, AlarmId, DeviceEvent, EventKind, Metric, Sample, SeriesKey, Severity, Suppression,
    Timestamp, TransitionKind,
};
use crate::store::{Store, StoreError};

/// Why a replay could not run.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The scenario file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// File.
        path: PathBuf,
        /// OS error.
        source: std::io::Error,
    },
    /// A line is not a valid scenario line.
    #[error("{}:{line}: {message}", path.display())]
    Line {
        /// File.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A capture file could not be read (the message names it).
    #[error("{0}")]
    Capture(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    at: Timestamp,
    #[serde(default)]
    device: Option<String>,
    #[serde(default)]
    object: Option<String>,
    #[serde(default)]
    metric: Option<Metric>,
    #[serde(default)]
    value: Option<f64>,
    #[serde(default)]
    event: Option<EventKind>,
    #[serde(default)]
    text: String,
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

/// Reads a scenario file into timed ingest items, in file order.
pub fn read(path: &Path) -> Result<Vec<(Timestamp, Ingest)>, ReplayError> {
    let text = std::fs::read_to_string(path).map_err(|source| ReplayError::Read {
        path: path.to_owned(),
        source,
    })?;
    let mut items = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let bad = |message: String| ReplayError::Line {
            path: path.to_owned(),
            line: n + 1,
            message,
        };
        let l: Line = serde_json::from_str(trimmed).map_err(|e| bad(e.to_string()))?;
        let item = match (l.device, l.metric, l.value, l.event) {
            (None, None, None, None) => Ingest::Tick(l.at),
            (Some(device), Some(metric), Some(value), None) => Ingest::Sample(Sample {
                series: SeriesKey {
                    device,
                    object: l.object.unwrap_or_else(|| DEVICE_OBJECT.to_owned()),
                    metric,
                },
                at: l.at,
                value,
                context: None,
            }),
            (Some(device), None, None, Some(kind)) => Ingest::Event(DeviceEvent {
                device,
                object: l.object.unwrap_or_else(|| DEVICE_OBJECT.to_owned()),
                kind,
                at: l.at,
                text: l.text,
                severity: None,
            }),
            _ => {
                return Err(bad(
                    "expected `at` with either `device`+`metric`+`value`, `device`+`event`, or nothing else (a tick)"
                        .to_owned(),
                ));
            }
        };
        items.push((l.at, item));
    }
    Ok(items)
}

/// What replaying captures saw, beside the samples.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CaptureSummary {
    /// Datagrams sent to a collector port.
    pub datagrams: u64,
    /// Packets skipped (not UDP to a collector port, or malformed).
    pub skipped: u64,
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
    let mut collector = crate::ingest::netflow::Collector::new(
        config,
        Arc::new(crate::northbound::metrics::Metrics::new()),
    );
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
        }
    }
}

/// The outcome lines of every transition after sequence `after`, in sequence order.
pub fn outcome_lines(store: &Store, after: u64) -> Result<Vec<String>, StoreError> {
    Ok(store
        .history_after(after, usize::MAX)?
        .iter()
        .map(|e| serde_json::to_string(&Outcome::from(e)).unwrap_or_default())
        .collect())
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
    fn bad_lines_name_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.jsonl");
        std::fs::write(
            &path,
            "# comment\n{\"at\":\"2026-11-29T10:00:00Z\"}\n\n{\"at\":\"2026-11-29T10:00:01Z\",\"device\":\"x\",\"metric\":\"loss_pct\"}\n",
        )
        .unwrap();
        let err = read(&path).err().unwrap().to_string();
        assert!(
            err.starts_with(&format!("{}:4: expected `at`", path.display())),
            "{err}"
        );
        std::fs::write(&path, "{\"at\":\"yesterday\"}\n").unwrap();
        let err = read(&path).err().unwrap().to_string();
        assert!(err.contains(":1: "), "{err}");
    }

    #[test]
    fn diff_shows_changed_lines_only() {
        assert_eq!(diff("a\nb\n", &["a".into(), "b".into()]), None);
        let d = diff("a\nb\n", &["a".into(), "c".into(), "d".into()]).unwrap();
        assert_eq!(d, "line 2:\n- b\n+ c\nline 3:\n+ d\n");
    }
}
