//! The client side of the HTTP API, for `noctua alarms ...`: a running daemon owns the store, so
//! engineers' commands go through it.

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::model::printable;

/// Why an API call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing answered.
    #[error(
        "cannot reach noctua at {url} (is the daemon running? --server or $NOCTUA_SERVER): {reason}"
    )]
    Unreachable {
        /// The URL tried.
        url: String,
        /// What the transport said.
        reason: String,
    },
    /// The token file could not be read.
    #[error("cannot read token file {}: {source}", path.display())]
    TokenFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The daemon answered with an error.
    #[error("{status}: {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// The daemon's message.
        message: String,
    },
}

impl ClientError {
    /// Whether the command line was at fault (a token file), rather than the daemon.
    pub fn is_usage(&self) -> bool {
        matches!(self, ClientError::TokenFile { .. })
    }
}

/// A connection to one daemon's API.
pub struct ApiClient {
    base: String,
    token: Option<String>,
    agent: ureq::Agent,
    /// Which config the address and token came from, for a 401's message.
    config: Option<String>,
}

impl ApiClient {
    /// A client for the daemon at `base` (e.g. `http://127.0.0.1:9617`).
    pub fn new(base: &str, token: Option<String>) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        Self {
            base: base.trim_end_matches('/').to_owned(),
            token,
            agent,
            config: None,
        }
    }

    /// Names the config the address and token came from, so a refused token says where to
    /// look.
    pub fn explaining(mut self, config: String) -> Self {
        self.config = Some(config);
        self
    }

    /// Whether a daemon answers `/healthz` here within two seconds.
    pub fn answers(&self) -> bool {
        let url = format!("{}/healthz", self.base);
        let quick = self
            .agent
            .get(&url)
            .config()
            .timeout_global(Some(Duration::from_secs(2)))
            .build()
            .call();
        quick.is_ok_and(|r| r.status().is_success())
    }

    /// `GET path?query` (the parameters that are set, percent-encoded by ureq), parsed as JSON.
    pub fn get(&self, path: &str, query: &[Param]) -> Result<Value, ClientError> {
        let url = format!("{}{path}", self.base);
        let mut request = self.agent.get(&url).query_pairs(set(query));
        // Sent with reads too: customer data is only for token holders.
        if let Some(t) = &self.token {
            request = request.header("Authorization", &format!("Bearer {t}"));
        }
        self.finish(url, request.call())
    }

    /// `GET path?query` for a text answer (Markdown, HTML), or JSON as the daemon wrote it.
    pub fn get_text(&self, path: &str, query: &[Param]) -> Result<String, ClientError> {
        Ok(match self.get(path, query)? {
            Value::String(text) => text,
            json => format!("{json:#}\n"),
        })
    }

    /// `POST path?query` with a CSV body and the bearer token.
    pub fn post_csv(&self, path: &str, query: &[Param], body: &[u8]) -> Result<Value, ClientError> {
        let url = format!("{}{path}", self.base);
        let mut req = self
            .agent
            .post(&url)
            .query_pairs(set(query))
            .header("Content-Type", "text/csv");
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        self.finish(url, req.send(body))
    }

    /// `GET path` with the bearer token, into `out` as it comes (a backup).
    pub fn download(&self, path: &str, out: &mut impl std::io::Write) -> Result<u64, ClientError> {
        let url = format!("{}{path}", self.base);
        let mut request = self.agent.get(&url);
        if let Some(t) = &self.token {
            request = request.header("Authorization", &format!("Bearer {t}"));
        }
        let unreachable = |e: &dyn std::fmt::Display| ClientError::Unreachable {
            url: url.clone(),
            reason: e.to_string(),
        };
        let mut resp = request.call().map_err(|e| unreachable(&e))?;
        if !resp.status().is_success() {
            return self.finish(url.clone(), Ok(resp)).map(|_| 0);
        }
        let mut body = resp.body_mut().with_config().limit(u64::MAX).reader();
        std::io::copy(&mut body, out).map_err(|e| unreachable(&e))
    }

    /// `POST path` with a JSON body and the bearer token.
    pub fn post(&self, path: &str, body: &Value) -> Result<Value, ClientError> {
        let url = format!("{}{path}", self.base);
        let mut req = self
            .agent
            .post(&url)
            .header("Content-Type", "application/json");
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let answer = req.send(body.to_string());
        self.finish(url, answer)
    }

    fn finish(
        &self,
        url: String,
        answer: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Value, ClientError> {
        let mut resp = answer.map_err(|e| ClientError::Unreachable {
            url: url.clone(),
            reason: e.to_string(),
        })?;
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .read_to_string()
            .map_err(|e| ClientError::Unreachable {
                url,
                reason: e.to_string(),
            })?;
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if (200..300).contains(&status) {
            Ok(value)
        } else {
            let mut message = value["error"]
                .as_str()
                .map_or_else(|| value.to_string(), str::to_owned);
            if status == 401 {
                let _ = write!(
                    message,
                    " (the token comes from --token-file, $NOCTUA_TOKEN, or http.token / \
                     http.token-file of the config{})",
                    self.config
                        .as_ref()
                        .map_or(String::new(), |c| format!(": {c}"))
                );
            }
            Err(ClientError::Api { status, message })
        }
    }
}

/// A query parameter; `None` is left out.
pub type Param = (&'static str, Option<String>);

/// The parameters that are set.
fn set(query: &[Param]) -> impl Iterator<Item = (&str, &str)> {
    query.iter().filter_map(|(k, v)| Some((*k, v.as_deref()?)))
}

/// What an engineer can do to an alarm from the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlarmAction {
    /// Acknowledge.
    Ack,
    /// Withdraw an acknowledgement.
    Unack,
    /// Clear by hand.
    Clear,
}

impl AlarmAction {
    /// The action's path segment in `/api/v1/alarms/{id}/{action}`.
    pub fn name(self) -> &'static str {
        match self {
            AlarmAction::Ack => "ack",
            AlarmAction::Unack => "unack",
            AlarmAction::Clear => "clear",
        }
    }
}

impl ApiClient {
    /// Runs `action` on alarm `id` as `by`; says whether it changed anything.
    pub fn alarm_action(
        &self,
        id: u64,
        action: AlarmAction,
        by: &str,
        note: Option<&str>,
    ) -> Result<String, ClientError> {
        let body = serde_json::json!({ "user": by, "note": note });
        let answer = self.post(&format!("/api/v1/alarms/{id}/{}", action.name()), &body)?;
        Ok(
            if answer["transitions"].as_array().is_none_or(Vec::is_empty) {
                format!("alarm {id}: nothing to change\n")
            } else {
                format!("alarm {id}: {} done\n", action.name())
            },
        )
    }

    /// The active alarms that pass `query`, as lines, or as the API's JSON.
    pub fn alarm_list(&self, query: &[Param], json: bool) -> Result<String, ClientError> {
        let page = self.get("/api/v1/alarms", query)?;
        Ok(if json {
            format!("{page:#}\n")
        } else {
            let empty = match query.iter().any(|(_, v)| v.is_some()) {
                true => "no alarms match",
                false => "no active alarms",
            };
            render_alarm_table(page["items"].as_array().map_or(&[], Vec::as_slice), empty)
        })
    }

    /// One alarm with its history, as pretty JSON.
    pub fn alarm_show(&self, id: u64) -> Result<String, ClientError> {
        Ok(format!(
            "{:#}\n",
            self.get(&format!("/api/v1/alarms/{id}"), &[])?
        ))
    }
}

impl ApiClient {
    /// Follows the live alarm stream forever: a summary line and the active alarms first, then
    /// one line per transition. After a lost connection (or a daemon restart) it reconnects with
    /// the last event id, so nothing is missed or shown twice. With `json`, transitions are
    /// printed as JSON lines.
    /// A reader that went away (`| head`) ends it quietly.
    pub fn tail(
        &self,
        query: &[Param],
        json: bool,
        out: &mut impl std::io::Write,
    ) -> std::io::Result<()> {
        match self.follow(query, json, out) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
            other => other,
        }
    }

    fn follow(
        &self,
        query: &[Param],
        json: bool,
        out: &mut impl std::io::Write,
    ) -> std::io::Result<()> {
        use std::io::BufRead;
        let url = format!("{}/api/v1/alarms/stream", self.base);
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(5)))
            .build()
            .into();
        let mut last: Option<u64> = None;
        let mut backoff = Duration::from_millis(250);
        loop {
            let mut req = agent
                .get(&url)
                .query_pairs(set(query))
                .header("Accept", "text/event-stream");
            if let Some(id) = last {
                req = req.header("Last-Event-ID", id.to_string());
            }
            let resp = match req.call() {
                Ok(r) if r.status().is_success() => r,
                Ok(r) => {
                    return Err(std::io::Error::other(format!(
                        "{url}: HTTP {}",
                        r.status().as_u16()
                    )));
                }
                Err(e) => {
                    eprintln!("noctua: cannot reach {url} ({e}); retrying in {backoff:?}");
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                    continue;
                }
            };
            backoff = Duration::from_millis(250);
            let reader = std::io::BufReader::new(resp.into_body().into_reader());
            let (mut event, mut id, mut data) = (String::new(), None, String::new());
            for line in reader.lines() {
                let Ok(line) = line else { break };
                if let Some(v) = line.strip_prefix("event:") {
                    event = v.trim().to_owned();
                } else if let Some(v) = line.strip_prefix("id:") {
                    id = v.trim().parse::<u64>().ok();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim_start());
                } else if line.is_empty() && !data.is_empty() {
                    let value: Value = serde_json::from_str(&data).unwrap_or(Value::Null);
                    match event.as_str() {
                        "snapshot" => {
                            let active = value["activeAlarms"]
                                .as_array()
                                .cloned()
                                .unwrap_or_default();
                            writeln!(out, "{}", summary(&active, &self.base))?;
                            if !json {
                                let table = render_alarm_table(&active, "no active alarms");
                                out.write_all(table.as_bytes())?;
                            }
                        }
                        "restarted" => eprintln!(
                            "noctua: the daemon restarted at {}; resuming",
                            value["startedAt"].as_str().unwrap_or("?")
                        ),
                        _ if json => writeln!(out, "{data}")?,
                        // Every service's state comes after the snapshot; changes matter.
                        "services" => {}
                        "impact" => writeln!(
                            out,
                            "notice: fault {} {}: {} customers{}",
                            value["fault"],
                            value["kind"].as_str().unwrap_or("?"),
                            value["customers"],
                            value["restoreBy"]
                                .as_str()
                                .map_or(String::new(), |t| format!(", restore by {t}"))
                        )?,
                        "service" => writeln!(
                            out,
                            "service {} is {} ({})",
                            value["name"].as_str().unwrap_or("?"),
                            value["status"].as_str().unwrap_or("?"),
                            value["severity"].as_str().unwrap_or("?").to_lowercase()
                        )?,
                        _ => out.write_all(render_transition(&value).as_bytes())?,
                    }
                    out.flush()?;
                    if id.is_some() {
                        last = id;
                    }
                    (event, id, data) = (String::new(), None, String::new());
                }
            }
            eprintln!(
                "noctua: stream closed; resuming after event {}",
                last.unwrap_or(0)
            );
        }
    }
}

/// `3 active alarms (1 critical, 2 major) at http://...`
fn summary(active: &[Value], base: &str) -> String {
    let count = |s: &str| {
        active
            .iter()
            .filter(|a| a["perceivedSeverity"] == s)
            .count()
    };
    let parts: Vec<String> = ["CRITICAL", "MAJOR", "MINOR", "WARNING"]
        .iter()
        .map(|s| (count(s), s.to_lowercase()))
        .filter(|(n, _)| *n > 0)
        .map(|(n, s)| format!("{n} {s}"))
        .collect();
    let detail = if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join(", "))
    };
    let n = active.len();
    let noun = if n == 1 { "alarm" } else { "alarms" };
    format!("{n} active {noun}{detail} at {base}")
}

/// One transition as a line: time, what happened, then the alarm's cells as in a list.
fn render_transition(event: &Value) -> String {
    let kind = printable(event["kind"].as_str().unwrap_or("?"));
    let at = printable(event["at"].as_str().unwrap_or("?"));
    let cells = alarm_cells(&event["alarm"]);
    let (on, off) = paint(&cells[1]);
    format!(
        "{at} {kind:<19} {on}{:>6}  {:<8}{off}  {}\n",
        cells[0],
        cells[1],
        cells[2..].join("  ")
    )
}

/// The ANSI colour of a severity and its reset, on a terminal; nothing when piped.
fn paint(severity: &str) -> (&'static str, &'static str) {
    if !std::io::stdout().is_terminal() {
        return ("", "");
    }
    let on = match severity {
        "CRITICAL" => "\x1b[1;31m",
        "MAJOR" => "\x1b[31m",
        "MINOR" => "\x1b[33m",
        "WARNING" => "\x1b[36m",
        "CLEARED" => "\x1b[32m",
        _ => return ("", ""),
    };
    (on, "\x1b[0m")
}

/// The columns of an alarm in a list: what an engineer scans for, left to right.
const COLUMNS: [&str; 8] = [
    "ID",
    "SEVERITY",
    "DEVICE",
    "OBJECT",
    "CONDITION",
    "RAISED",
    "ACK",
    "TEXT",
];

/// An alarm's cells under [`COLUMNS`]. Device text is hostile until shown otherwise: no escape
/// sequence reaches the terminal.
fn alarm_cells(a: &Value) -> [String; 8] {
    let s = |k: &str| printable(a[k].as_str().unwrap_or("-")).into_owned();
    // RFC 3339 to the second, which is what a person compares.
    let raised = s("alarmRaisedTime");
    let raised = match raised.split_once('.') {
        Some((whole, _)) => format!("{}Z", whole.replacen('T', " ", 1)),
        None => raised.replacen('T', " ", 1),
    };
    let ack = a["ackUserId"]
        .as_str()
        .map_or("-".to_owned(), |u| printable(u).into_owned());
    let mut text = s("additionalText");
    if let Some(r) = a["suppressedBy"].as_str() {
        text.push_str(&format!(" [suppressed: {}]", printable(r)));
    }
    let customers = a["impact"]["customers"].as_u64().unwrap_or(0);
    let services: Vec<String> = a["impact"]["services"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(|s| printable(s).into_owned()))
        .collect();
    match (customers, services.is_empty()) {
        (0, true) => {}
        (0, false) => text.push_str(&format!(" [services: {}]", services.join(", "))),
        (n, true) => text.push_str(&format!(" [{n} customers]")),
        (n, false) => text.push_str(&format!(
            " [{n} customers; services: {}]",
            services.join(", ")
        )),
    }
    [
        s("alarmId"),
        s("perceivedSeverity"),
        s("device"),
        s("object"),
        s("condition"),
        raised,
        ack,
        text,
    ]
}

/// Alarms as a table: a header, columns as wide as their content, coloured by severity on a
/// terminal (plain when piped); `empty` when there are none.
pub fn render_alarm_table(alarms: &[Value], empty: &str) -> String {
    if alarms.is_empty() {
        return format!("{empty}\n");
    }
    let rows: Vec<[String; 8]> = alarms.iter().map(alarm_cells).collect();
    let mut widths = COLUMNS.map(|c| c.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header = COLUMNS.map(str::to_owned);
    push_row(&mut out, &header, &widths, ("", ""));
    for row in &rows {
        push_row(&mut out, row, &widths, paint(&row[1]));
    }
    out
}

/// One row, every column but the last padded to its width; `(on, off)` colours the id and
/// severity.
fn push_row(out: &mut String, cells: &[String; 8], widths: &[usize; 8], (on, off): (&str, &str)) {
    let pad = |i: usize| {
        let fill = widths[i].saturating_sub(cells[i].chars().count());
        format!("{}{}", cells[i], " ".repeat(fill))
    };
    // The id right-aligned, as numbers are.
    let id = format!(
        "{}{}",
        " ".repeat(widths[0].saturating_sub(cells[0].chars().count())),
        cells[0]
    );
    let _ = write!(out, "{on}{id}  {}{off}", pad(1));
    for i in 2..7 {
        let _ = write!(out, "  {}", pad(i));
    }
    let _ = writeln!(out, "  {}", cells[7]);
}
