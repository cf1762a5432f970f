//! The command line's side of the service and customer API: a CRM export imported in parts,
//! the customer lookup, and the services table.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

use crate::northbound::client::{ApiClient, ClientError};

/// Rows per request: the store rewrites each bucket of customers a part touches once, so a
/// part should be large (see `store::customers`)...
const ROWS_PER_PART: usize = 1_000_000;
/// ...and bytes per request, under the daemon's body limit.
const BYTES_PER_PART: usize = crate::northbound::impact::MAX_IMPORT_BYTES / 2;

/// Why an import stopped.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Rows were refused; nothing was imported.
    #[error("{0}")]
    Refused(String),
    /// The daemon could not be asked.
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// Sends a CSV file in parts: every part is checked first (nothing is written if any row is
/// bad), then imported. Each part repeats the header and says which file line it starts at,
/// so errors name the file's own lines. Returns the summary to print.
pub fn import(api: &ApiClient, path: &Path, check_only: bool) -> Result<String, ImportError> {
    let data = std::fs::read(path).map_err(|source| ImportError::Read {
        path: path.to_owned(),
        source,
    })?;
    let parts = split(&data);
    for (first_line, body) in &parts {
        let answer = api.post_csv(
            "/api/v1/customers",
            &[
                ("first-line", Some(first_line.to_string())),
                ("check", Some("true".into())),
            ],
            body,
        );
        refused(path, answer)?;
    }
    let mut rows = 0;
    let (mut added, mut moved, mut unchanged, mut total) = (0, 0, 0, 0);
    if !check_only {
        for (first_line, body) in &parts {
            let v = refused(
                path,
                api.post_csv(
                    "/api/v1/customers",
                    &[("first-line", Some(first_line.to_string()))],
                    body,
                ),
            )?;
            let n = |k: &str| v[k].as_u64().unwrap_or(0);
            rows += n("rows");
            added += n("added");
            moved += n("moved");
            unchanged += n("unchanged");
            total = n("customers");
        }
        return Ok(format!(
            "{rows} rows imported from {}: {added} new, {moved} moved, {unchanged} unchanged; {total} customers known\n",
            path.display()
        ));
    }
    let lines = data
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .count();
    Ok(format!(
        "{} rows checked in {}: all good, nothing written\n",
        lines.saturating_sub(1),
        path.display()
    ))
}

/// The file's header, then parts of at most [`ROWS_PER_PART`] rows and [`BYTES_PER_PART`]
/// bytes, each with the header before them and the file line of that header. Rows are split at line ends; a quoted field with a line
/// break inside is not something a CRM export of ids and places has.
fn split(data: &[u8]) -> Vec<(u64, Vec<u8>)> {
    let mut lines = data.split_inclusive(|b| *b == b'\n');
    let Some(header) = lines.next() else {
        return vec![(1, Vec::new())];
    };
    let header = if header.ends_with(b"\n") {
        header.to_vec()
    } else {
        [header, b"\n"].concat()
    };
    let mut parts = Vec::new();
    let mut line = 2u64;
    let rest: Vec<&[u8]> = lines.collect();
    if rest.is_empty() {
        return vec![(1, header)];
    }
    let mut body = header.clone();
    let mut rows = 0usize;
    for l in rest {
        body.extend_from_slice(l);
        rows += 1;
        if rows == ROWS_PER_PART || body.len() >= BYTES_PER_PART {
            // The part's header stands one line above its first row.
            parts.push((line - 1, std::mem::replace(&mut body, header.clone())));
            line += rows as u64;
            rows = 0;
        }
    }
    if rows > 0 {
        parts.push((line - 1, body));
    }
    parts
}

/// A 422 (bad rows) names the file; anything else is the client's error.
fn refused(path: &Path, answer: Result<Value, ClientError>) -> Result<Value, ImportError> {
    answer.map_err(|e| match e {
        ClientError::Api {
            status: 422,
            message,
        } => ImportError::Refused(format!("{}: {message}", path.display())),
        other => ImportError::Client(other),
    })
}

/// `GET /api/v1/services` as a table: name, status, severity, since, alarms, customers.
pub fn services_table(api: &ApiClient, json: bool) -> Result<String, ClientError> {
    let v = api.get("/api/v1/services", &[])?;
    if json {
        return Ok(format!("{:#}\n", v["items"]));
    }
    let items = v["items"].as_array().cloned().unwrap_or_default();
    if items.is_empty() {
        return Ok("no services configured ([[service]] in the config)\n".to_owned());
    }
    let rows: Vec<[String; 6]> = items
        .iter()
        .map(|s| {
            let text = |k: &str| s[k].as_str().unwrap_or("").to_owned();
            [
                text("name"),
                text("status"),
                text("severity").to_lowercase(),
                s["timeRaised"].as_str().map_or("-".to_owned(), short_time),
                s["underlyingAlarm"]
                    .as_array()
                    .map_or(0, Vec::len)
                    .to_string(),
                s["customers"].as_u64().unwrap_or(0).to_string(),
            ]
        })
        .collect();
    Ok(table(
        [
            "SERVICE",
            "STATUS",
            "SEVERITY",
            "SINCE",
            "ALARMS",
            "CUSTOMERS",
        ],
        &rows,
    ))
}

/// `GET /api/v1/impact` for one place or customer, in words an agent reads out.
pub fn lookup(
    api: &ApiClient,
    kind: &'static str,
    value: &str,
    json: bool,
) -> Result<String, ClientError> {
    let v = api.get("/api/v1/impact", &[(kind, Some(value.to_owned()))])?;
    if json {
        return Ok(format!("{v:#}\n"));
    }
    let faults = v["faults"].as_array().cloned().unwrap_or_default();
    let mut out = String::new();
    let place = v["place"].as_str().unwrap_or(value);
    if faults.is_empty() {
        let _ = writeln!(
            out,
            "{place}: no known fault now or in the last {} minutes",
            v["lookBackMinutes"].as_u64().unwrap_or(0)
        );
        return Ok(out);
    }
    let _ = writeln!(
        out,
        "{place}: {}{}",
        if v["affected"].as_bool() == Some(true) {
            "affected by a known fault"
        } else {
            "a known fault has cleared"
        },
        if v["maintenance"].as_bool() == Some(true) {
            " (planned maintenance)"
        } else {
            ""
        }
    );
    let rows: Vec<[String; 6]> = faults
        .iter()
        .map(|f| {
            let text = |k: &str| f[k].as_str().unwrap_or("").to_owned();
            [
                id_text(&f["fault"]).unwrap_or_default(),
                text("state"),
                text("severity").to_lowercase(),
                format!("{} {}", text("device"), text("condition")),
                text("raisedAt").get(..16).unwrap_or("").replace('T', " "),
                f["restoreBy"].as_str().map_or("-".to_owned(), short_time),
            ]
        })
        .collect();
    out.push_str(&table(
        ["FAULT", "STATE", "SEVERITY", "WHAT", "SINCE", "RESTORE BY"],
        &rows,
    ));
    Ok(out)
}

pub(super) fn short_time(t: &str) -> String {
    t.get(..16).unwrap_or(t).replace('T', " ")
}

/// Columns as wide as their content, a header first.
pub(super) fn table<const N: usize>(header: [&str; N], rows: &[[String; N]]) -> String {
    let mut widths = header.map(|h| h.chars().count());
    for row in rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == N {
                l.push_str(c);
            } else {
                let _ = write!(l, "{c:<w$}  ", w = widths[i]);
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
    out
}

/// `GET /api/v1/complaints` as a table, newest first.
pub fn complaints_table(api: &ApiClient, state: &str, json: bool) -> Result<String, ClientError> {
    let v = api.get("/api/v1/complaints", &[("state", Some(state.to_owned()))])?;
    if json {
        return Ok(format!("{:#}\n", v["items"]));
    }
    let items = v["items"].as_array().cloned().unwrap_or_default();
    if items.is_empty() {
        return Ok(format!("no {state} complaints\n"));
    }
    let rows: Vec<[String; 7]> = items
        .iter()
        .map(|c| {
            let text = |k: &str| c[k].as_str().unwrap_or("").to_owned();
            let overdue = match (
                c["respondBreached"].as_bool(),
                c["resolveBreached"].as_bool(),
            ) {
                (_, Some(true)) => "resolve overdue",
                (Some(true), _) => "respond overdue",
                _ => "",
            };
            [
                text("id"),
                text("state"),
                short_time(&text("receivedAt")),
                text("placeName"),
                text("symptom").replace('_', " "),
                id_text(&c["link"]["fault"]).map_or("-".to_owned(), |f| format!("fault {f}")),
                overdue.to_owned(),
            ]
        })
        .collect();
    Ok(table(
        [
            "COMPLAINT",
            "STATE",
            "RECEIVED",
            "WHERE",
            "SYMPTOM",
            "EXPLAINED BY",
            "TARGETS",
        ],
        &rows,
    ))
}

/// One complaint in a line: its id, state, and what explains it.
pub fn complaint_said(v: &Value) -> String {
    let id = v["id"].as_str().unwrap_or("?");
    let state = v["state"].as_str().unwrap_or("?");
    let place = v["placeName"].as_str().unwrap_or("?");
    match id_text(&v["link"]["fault"]) {
        Some(f) => format!("complaint {id} ({place}): {state}, explained by fault {f}\n"),
        None => format!("complaint {id} ({place}): {state}, no known fault explains it yet\n"),
    }
}

/// An id as JSON gives it: alarm ids are strings, fault ids numbers.
fn id_text(v: &Value) -> Option<String> {
    v.as_str()
        .map(str::to_owned)
        .or_else(|| v.as_u64().map(|n| n.to_string()))
}
