//! Scenario files for replay: samples and events with their own timestamps, which
//! `pipeline::replay` feeds through the real pipeline on the data's clock.
//!
//! A scenario is JSON lines; blank lines and `#` comments are skipped:
//!
//! ```text
//! {"at":"2026-11-29T10:00:00Z","device":"bh-r1","object":"ifIndex=3","metric":"loss_pct","value":3.5}
//! {"at":"2026-11-29T10:00:30Z","device":"bh-r1","event":"unreachable"}
//! {"at":"2026-11-29T11:00:00Z"}
//!
//! {"at":"2026-11-29T10:05:00Z","complaint":{"id":"CRM-7","customer":"C1042","channel":"phone","symptom":"no_service","text":"no signal"}}
//! ```
//!
//! The last plain form only advances time (so hold-downs and response targets can pass). A
//! complaint names a `customer` or a `site`, `cell` (DEVICE/CELL) or `service`; it is received
//! at the line's time. An event may carry a `severity` (as a trap's configured one). An
//! engineer's acknowledgement names the alarm by its reduction key:
//!
//! ```text
//! {"at":"2026-11-29T10:12:00Z","ack":{"device":"bh-r1","condition":"device_unreachable","by":"maria","note":"fibre cut"}}
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::message::{EngineerAck, Ingest};
use crate::model::{
    Channel, DEVICE_OBJECT, DeviceEvent, EventKind, Metric, NewComplaint, Sample, SeriesKey,
    Severity, Subject, Symptom, Timestamp,
};

/// Why a scenario file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
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
    #[serde(default)]
    complaint: Option<ComplaintLine>,
    /// For an event: its severity instead of the kind's own (as a trap's configured one).
    #[serde(default, deserialize_with = "Severity::deserialize_some_raised")]
    severity: Option<Severity>,
    #[serde(default)]
    ack: Option<AckLine>,
}

/// An engineer acknowledging an active alarm, named by its reduction key, with a note.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AckLine {
    device: String,
    #[serde(default = "device_object")]
    object: String,
    condition: String,
    by: String,
    #[serde(default)]
    note: Option<String>,
}

fn device_object() -> String {
    DEVICE_OBJECT.to_owned()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ComplaintLine {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    customer: Option<String>,
    #[serde(default)]
    site: Option<String>,
    #[serde(default)]
    cell: Option<String>,
    #[serde(default)]
    service: Option<String>,
    #[serde(default = "phone")]
    channel: Channel,
    symptom: Symptom,
    #[serde(default)]
    text: String,
}

fn phone() -> Channel {
    Channel::Phone
}

impl ComplaintLine {
    fn complaint(self, at: Timestamp) -> Result<NewComplaint, String> {
        let subject = Subject::named(
            self.customer.as_deref(),
            self.site.as_deref(),
            self.cell.as_deref(),
            self.service.as_deref(),
        )?;
        Ok(NewComplaint {
            id: self.id,
            subject,
            channel: self.channel,
            symptom: self.symptom,
            text: self.text,
            received_at: at,
        })
    }
}

/// Reads a scenario file into timed ingest items, in file order.
pub fn read(path: &Path) -> Result<Vec<(Timestamp, Ingest)>, ScenarioError> {
    let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
        path: path.to_owned(),
        source,
    })?;
    let mut items = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let bad = |message: String| ScenarioError::Line {
            path: path.to_owned(),
            line: n + 1,
            message,
        };
        let l: Line = serde_json::from_str(trimmed).map_err(|e| bad(e.to_string()))?;
        if let Some(c) = l.complaint {
            let ok =
                l.device.is_none() && l.metric.is_none() && l.value.is_none() && l.event.is_none();
            if !ok {
                return Err(bad(
                    "a complaint line has only `at` and `complaint`".to_owned()
                ));
            }
            items.push((l.at, Ingest::Complaint(c.complaint(l.at).map_err(bad)?)));
            continue;
        }
        if let Some(a) = l.ack {
            let ok =
                l.device.is_none() && l.metric.is_none() && l.value.is_none() && l.event.is_none();
            if !ok {
                return Err(bad("an ack line has only `at` and `ack`".to_owned()));
            }
            items.push((
                l.at,
                Ingest::Ack(EngineerAck {
                    at: l.at,
                    device: a.device,
                    object: a.object,
                    condition: a.condition,
                    by: a.by,
                    note: a.note,
                }),
            ));
            continue;
        }
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
                severity: l.severity,
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
