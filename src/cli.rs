//! The command line's types and their help (clap derive); `main.rs` acts on them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use noctua::detect::backtest::Family;
use noctua::fault::GroupBy;
use noctua::fault::incident::ReportFormat;
use noctua::fault::report::Format;
use noctua::model::Watching;
use noctua::model::{CapacityBy, Offset};
use noctua::pipeline::replay::Speed;

/// The command line.
#[derive(Parser)]
#[command(name = "noctua", version, about = "Network fault-management daemon")]
pub struct Cli {
    /// Log line format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log level (error, warn, info, debug, trace); RUST_LOG, when set, wins.
    #[arg(long, global = true, default_value = "info")]
    pub log_level: String,
    #[command(subcommand)]
    pub command: Command,
}

/// How log lines are written.
#[derive(Clone, Copy, ValueEnum)]
pub enum LogFormat {
    /// For people.
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// What to do.
#[derive(Subcommand)]
pub enum Command {
    /// Run the daemon.
    Run {
        /// Config file; else $NOCTUA_CONFIG, else /etc/noctua/noctua.toml, else the embedded default.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Once ready, write the bound addresses here as JSON (`{"http": "127.0.0.1:9617",
        /// "netflow": [...], "traps": ...}`); with port 0 in the config, this says which ports.
        #[arg(long)]
        ready_file: Option<PathBuf>,
    },
    /// Run the daemon on the embedded default with a simulated network (a core, backhaul
    /// routers, base stations, flows) that raises real alarms within seconds; open the console
    /// at the printed address. A temporary store unless --store.
    Demo {
        /// Keep the store here instead of a temporary directory.
        #[arg(long)]
        store: Option<PathBuf>,
        /// HTTP address for the console and the API.
        #[arg(long, default_value = "127.0.0.1:9617")]
        listen: std::net::SocketAddr,
        /// Once ready, write the bound addresses here as JSON (as `run --ready-file`).
        #[arg(long)]
        ready_file: Option<PathBuf>,
    },
    /// Validate a config file: prints `ok`, or every error with file:line:column (exit 2).
    CheckConfig {
        /// The file to check.
        file: PathBuf,
    },
    /// Print the embedded default config.
    PrintDefaultConfig,
    /// Replay scenario files or captured NetFlow/IPFIX exports (pcap, pcapng) through the
    /// pipeline on the data's clock; print every transition as a JSON line; with --expect,
    /// compare with a golden file (exit 1 and a diff on mismatch).
    Replay(ReplayArgs),
    /// Alarms of a running daemon, through its HTTP API.
    Alarms(AlarmsArgs),
    /// Captured NetFlow/IPFIX exports, decoded in full.
    Flows {
        #[command(subcommand)]
        command: FlowsCommand,
    },
    /// Run one series' history (CSV `timestamp,value`) through the daemon's detector: CSV of
    /// `timestamp,value,score,tier,expected,note` per row, and a summary on stderr.
    Backtest(BacktestArgs),
    /// MTTA/MTTR reports: from the running daemon, or a stopped one's store.
    Mttr {
        #[command(flatten)]
        daemon: DaemonArgs,
        #[command(subcommand)]
        command: MttrCommand,
    },
    /// Capacity of links: p95 and busy hour over 7 and 30 days, growth per week, days until
    /// 80, 90 and 95 %; from the running daemon, or a stopped one's store.
    Capacity {
        #[command(flatten)]
        daemon: DaemonArgs,
        #[command(subcommand)]
        command: CapacityCommand,
    },
    /// Customers from a CRM export, through the running daemon's API (needs the token).
    Customers {
        #[command(flatten)]
        daemon: DaemonArgs,
        #[command(subcommand)]
        command: CustomersCommand,
    },
    /// Customers' complaints, through the running daemon's API (needs the token).
    Complaints {
        #[command(flatten)]
        daemon: DaemonArgs,
        #[command(subcommand)]
        command: ComplaintsCommand,
    },
    /// Services and their status, from the running daemon.
    Services {
        #[command(flatten)]
        daemon: DaemonArgs,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Whether a known fault touches a customer, site, cell or service now (or did within
    /// `[impact] recent`): the call-centre question. Needs the token.
    Impact {
        #[command(flatten)]
        daemon: DaemonArgs,
        #[command(flatten)]
        place: ImpactPlace,
        /// JSON instead of words.
        #[arg(long)]
        json: bool,
    },
    /// Automated handling: actions and their audit trail, approvals, breakers, the report;
    /// through the running daemon's API (approvals and resets need the token).
    Actions {
        #[command(flatten)]
        daemon: DaemonArgs,
        #[command(subcommand)]
        command: ActionsCommand,
    },
    /// Fault records: from the running daemon, or a stopped one's store.
    Faults {
        #[command(flatten)]
        daemon: DaemonArgs,
        #[command(subcommand)]
        command: FaultsCommand,
    },
    /// Back up, restore and check the store.
    Store {
        #[command(flatten)]
        daemon: DaemonArgs,
        #[command(subcommand)]
        command: StoreCommand,
    },
    /// Print the version.
    Version,
}

/// `noctua store ...`.
#[derive(Subcommand)]
pub enum StoreCommand {
    /// Write a backup of the whole store to FILE: read directly when the daemon is stopped,
    /// else through its API, consistent while it runs (needs the token).
    Backup {
        /// Where to write it (written to FILE.tmp, then renamed).
        file: PathBuf,
    },
    /// Restore a backup into the config's store path, which must not hold a store (stop the
    /// daemon and move the old one away first); an older schema is migrated on the way.
    Restore {
        /// The backup.
        file: PathBuf,
    },
    /// Check the schema version, that every value decodes, and that the trees agree (exit 1
    /// on a problem).
    Check,
}

/// `noctua replay`.
#[derive(Args)]
pub struct ReplayArgs {
    /// Scenario files (JSON lines) and captures, fed in order.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Config; the embedded default if not given (never /etc, so CI runs are reproducible).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Store to replay into; a temporary one if not given.
    #[arg(long)]
    pub store: Option<PathBuf>,
    /// Expected output (golden file).
    #[arg(long)]
    pub expect: Option<PathBuf>,
    /// max, realtime, or a factor such as 60x.
    #[arg(long, default_value = "max")]
    pub speed: Speed,
    /// Write the transitions to this file (JSON lines) instead of standard output.
    #[arg(long)]
    pub output: Option<PathBuf>,
}

/// `noctua backtest`.
#[derive(Args)]
pub struct BacktestArgs {
    /// The history, CSV `timestamp,value[,label]`: RFC 3339, `YYYY-MM-DD HH:MM:SS`, or epoch
    /// seconds or milliseconds; header optional; label 1 marks an anomalous row.
    pub file: PathBuf,
    /// Which metric the values are: latency, loss, utilisation or kpi (any series).
    #[arg(long, default_value_t = Family::Utilisation)]
    pub metric: Family,
    /// Which deviations the anomaly detector counts: rising, falling, both or off (else the
    /// config's for the metric).
    #[arg(long)]
    pub direction: Option<Watching>,
    /// UTC offset of timestamps written without one, such as +02:00.
    #[arg(long, default_value = "UTC")]
    pub timezone: Offset,
    /// Config with the rules to try; the embedded default if not given.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Write the CSV here instead of stdout.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Forecasts instead of detection: a row per day with the busy hour, the trend, when it
    /// predicts `--level` is crossed and when it was, and the predictive alarms.
    #[arg(long)]
    pub forecast: bool,
    /// With --forecast: the level whose crossing is predicted.
    #[arg(long, default_value_t = 80.0, requires = "forecast")]
    pub level: f64,
    /// With --forecast: days of history before anything is predicted.
    #[arg(long, default_value_t = 7, requires = "forecast")]
    pub min_days: u32,
    /// With --forecast: nothing is predicted while the busy hour is under this.
    #[arg(long, default_value_t = 35.0, requires = "forecast")]
    pub floor: f64,
    /// With --forecast: days in a row that must agree before a predictive alarm.
    #[arg(long, default_value_t = 3, requires = "forecast")]
    pub agree: u32,
    /// With --forecast: a crossing within this many days raises a predictive alarm.
    #[arg(long, default_value_t = 30, requires = "forecast")]
    pub within_days: u32,
}

/// Where the daemon and its data are, for every command that reads or changes them: the
/// config (same lookup as `run`) names the store and `http.listen` and token; `--server`
/// names a daemon directly.
#[derive(Args)]
pub struct DaemonArgs {
    /// Config; else $NOCTUA_CONFIG, else /etc/noctua/noctua.toml, else the embedded default.
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// The daemon's HTTP address (e.g. http://127.0.0.1:9617); wins over the config's store
    /// and `http.listen`.
    #[arg(long, global = true, env = "NOCTUA_SERVER")]
    pub server: Option<String>,
    /// File holding the API token for writes; else $NOCTUA_TOKEN, else the config's (a token
    /// on the command line would show in `ps`).
    #[arg(long, global = true)]
    pub token_file: Option<PathBuf>,
}

impl DaemonArgs {
    /// As the library's lookup.
    pub fn lookup(self) -> noctua::northbound::records::Lookup {
        noctua::northbound::records::Lookup {
            config: self.config,
            server: self.server,
            token_file: self.token_file,
        }
    }
}

/// `noctua alarms`: which daemon, then what to do.
#[derive(Args)]
pub struct AlarmsArgs {
    #[command(flatten)]
    pub daemon: DaemonArgs,
    #[command(subcommand)]
    pub command: AlarmsCommand,
}

/// `noctua alarms ...`.
#[derive(Subcommand)]
pub enum AlarmsCommand {
    /// Follow the live alarm stream; resumes after a disconnect without repeating anything.
    Tail(TailArgs),
    /// Active alarms, most severe first.
    List(ListArgs),
    /// One alarm with its history (JSON).
    Show {
        /// Alarm id.
        id: u64,
    },
    /// Acknowledge.
    Ack(Change),
    /// Withdraw an acknowledgement.
    Unack {
        /// Alarm id.
        id: u64,
        /// Who.
        #[arg(long)]
        by: String,
    },
    /// Clear by hand.
    Clear(Change),
}

/// An engineer's change to an alarm, with an optional note for its fault record.
#[derive(Args)]
pub struct Change {
    /// Alarm id.
    pub id: u64,
    /// Who.
    #[arg(long)]
    pub by: String,
    /// Note for the fault record.
    #[arg(long)]
    pub note: Option<String>,
}

/// `noctua mttr ...`.
#[derive(Subcommand)]
pub enum MttrCommand {
    /// MTTA and MTTR (mean, median, p90) and target breaches, by group. Without --since/--until:
    /// rolling 24h, 7d and 30d windows.
    Report(ReportArgs),
}

/// `noctua flows ...`.
#[derive(Subcommand)]
pub enum FlowsCommand {
    /// Decode a capture (pcap or pcapng) with netflow_parser's full decoder: every template,
    /// options template and field by name, per exporter and observation domain.
    Inspect {
        /// The capture.
        file: PathBuf,
        /// Only this exporter's datagrams.
        #[arg(long)]
        exporter: Option<std::net::IpAddr>,
        /// One JSON object per datagram, with every record.
        #[arg(long)]
        json: bool,
        /// Records shown per data set (templates are always shown whole).
        #[arg(long, default_value_t = 3)]
        records: usize,
        /// Only the tally per exporter and domain: datagrams, versions, records, templates.
        #[arg(long, conflicts_with = "json")]
        summary: bool,
        /// UDP destination ports that carry exports (repeat for more).
        #[arg(long = "port", default_values_t = [2055, 4739, 9995, 9996])]
        ports: Vec<u16>,
    },
}

/// `noctua capacity ...`.
#[derive(Subcommand)]
pub enum CapacityCommand {
    /// Every link direction with a forecast, grouped, the soonest to reach 90 % first.
    Report {
        /// Group by: device, site or role.
        #[arg(long, default_value_t = CapacityBy::Device)]
        by: CapacityBy,
        /// Output format: table, json or csv.
        #[arg(long, default_value_t = Format::Table)]
        format: Format,
    },
}

/// `noctua customers ...`.
#[derive(Subcommand)]
pub enum CustomersCommand {
    /// Load a CSV export (header `customer` and one or more of `site`, `cell` as DEVICE/CELL,
    /// `service`; one place per row). Idempotent; every row is checked before any is written,
    /// and a bad row is named by its line.
    Import {
        /// The CSV file.
        file: PathBuf,
        /// Check every row, write nothing.
        #[arg(long)]
        check: bool,
    },
}

/// `noctua actions ...`.
#[derive(Subcommand)]
pub enum ActionsCommand {
    /// List actions, newest first.
    List {
        /// all, open, ended, or one state (awaiting-approval, running, unknown, ...).
        #[arg(long, default_value = "all")]
        state: String,
        /// Only this rule's.
        #[arg(long)]
        rule: Option<String>,
        /// Only those on this fault.
        #[arg(long)]
        fault: Option<u64>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// One action and every step: what ran, when, how it ended, its output.
    Show {
        /// Action id.
        id: u64,
        /// JSON instead of words.
        #[arg(long)]
        json: bool,
    },
    /// Approve an action waiting for it: it starts.
    Approve {
        /// Action id.
        id: u64,
        /// Who approves (recorded in the audit trail).
        #[arg(long)]
        by: String,
    },
    /// Reject an action waiting for approval: it never runs.
    Reject {
        /// Action id.
        id: u64,
        /// Who rejects.
        #[arg(long)]
        by: String,
    },
    /// The rules, their mode and their breakers.
    Rules {
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Close a rule's open breaker, so it acts again (its alarm clears).
    Reset {
        /// Rule name.
        rule: String,
        /// Who.
        #[arg(long)]
        by: String,
    },
    /// Per rule: runs, successes, failures, unknowns, and the median time to repair with the
    /// rule's actions and without.
    Report {
        /// Planned at or after (RFC 3339 or an age such as 7d; default 30d).
        #[arg(long)]
        since: Option<String>,
        /// Planned before.
        #[arg(long)]
        until: Option<String>,
        /// table, json or csv.
        #[arg(long, default_value = "table")]
        format: Format,
    },
}

/// `noctua complaints ...`.
#[derive(Subcommand)]
pub enum ComplaintsCommand {
    /// List complaints, newest first.
    List {
        /// open, resolved or all.
        #[arg(long, default_value = "open")]
        state: String,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one complaint in full (JSON).
    Show {
        /// Complaint id.
        id: String,
    },
    /// Record a complaint (as the CRM would); prints which known fault explains it.
    Add {
        #[command(flatten)]
        place: ImpactPlace,
        /// phone, app, web, email, store or other.
        #[arg(long, default_value = "phone")]
        channel: String,
        /// no_service, slow, drops, voice_quality or other.
        #[arg(long)]
        symptom: String,
        /// The customer's words.
        #[arg(long, default_value = "")]
        text: String,
        /// The CRM's ticket id (else noctua gives one).
        #[arg(long)]
        id: Option<String>,
    },
    /// Say the customer has been answered.
    Ack {
        /// Complaint id.
        id: String,
        /// Who.
        #[arg(long)]
        by: String,
    },
    /// Complaints against faults: explained share, whether the NOC knew first (and by how
    /// much), response and resolve targets met; by fault, service or site.
    Report {
        /// fault, service or site.
        #[arg(long, default_value = "fault")]
        by: GroupBy,
        /// Received at or after (RFC 3339 or an age such as 7d; default 30d).
        #[arg(long)]
        since: Option<String>,
        /// Received before.
        #[arg(long)]
        until: Option<String>,
        /// table, json or csv.
        #[arg(long, default_value = "table")]
        format: Format,
    },
    /// Resolve, saying how.
    Resolve {
        /// Complaint id.
        id: String,
        /// Who.
        #[arg(long)]
        by: String,
        /// How it was resolved.
        #[arg(long)]
        note: String,
    },
}

/// Exactly one place to look up.
#[derive(clap::Args)]
#[group(required = true, multiple = false)]
pub struct ImpactPlace {
    /// A customer id.
    #[arg(long)]
    pub customer: Option<String>,
    /// A site.
    #[arg(long)]
    pub site: Option<String>,
    /// A cell, as DEVICE/CELL.
    #[arg(long)]
    pub cell: Option<String>,
    /// A service.
    #[arg(long)]
    pub service: Option<String>,
}

impl ImpactPlace {
    /// The query parameter and its value.
    pub fn param(&self) -> (&'static str, &str) {
        match (&self.customer, &self.site, &self.cell, &self.service) {
            (Some(c), ..) => ("customer", c),
            (_, Some(s), ..) => ("site", s),
            (_, _, Some(c), _) => ("cell", c),
            (_, _, _, Some(s)) => ("service", s),
            _ => ("customer", ""),
        }
    }
}

/// `noctua faults ...`.
#[derive(Subcommand)]
pub enum FaultsCommand {
    /// List fault records, newest first.
    List(FaultListArgs),
    /// Show one fault record in full (JSON).
    Show {
        /// Fault id.
        id: u64,
    },
    /// The post-incident report: timeline, root cause, handling against the targets, cost,
    /// recurrence and the review.
    Report {
        /// Fault id.
        id: u64,
        /// md, html or json.
        #[arg(long, default_value = "md")]
        format: ReportFormat,
    },
    /// Write what the review concluded: the cause, the corrective action, or both.
    Review {
        /// Fault id.
        id: u64,
        /// Who (recorded with the time).
        #[arg(long)]
        by: String,
        /// The cause.
        #[arg(long)]
        cause: Option<String>,
        /// What is done so it does not happen again.
        #[arg(long)]
        corrective_action: Option<String>,
    },
    /// Add a note to a fault, open or closed (post-incident notes).
    Note {
        /// Fault id.
        id: u64,
        /// Who writes it.
        #[arg(long)]
        by: String,
        /// The note.
        text: String,
    },
}

/// `noctua alarms tail`.
#[derive(Args)]
pub struct TailArgs {
    /// Minimum severity (clears always shown).
    #[arg(long)]
    pub min_severity: Option<String>,
    /// Only this device.
    #[arg(long)]
    pub device: Option<String>,
    /// Print transitions as JSON lines.
    #[arg(long)]
    pub json: bool,
    /// Every cluster member's alarms and transitions, as replicated, instead of this
    /// instance's (a reconnect starts again from the active alarms).
    #[arg(long)]
    pub fleet: bool,
}

/// `noctua alarms list`.
#[derive(Args)]
pub struct ListArgs {
    /// Minimum severity (warning, minor, major, critical).
    #[arg(long)]
    pub severity: Option<String>,
    /// active, acknowledged, unacknowledged or cleared.
    #[arg(long)]
    pub state: Option<String>,
    /// Only this device.
    #[arg(long)]
    pub device: Option<String>,
    /// Every cluster member's active alarms, as replicated, instead of this instance's.
    #[arg(long)]
    pub fleet: bool,
    /// Print the API's JSON instead of lines.
    #[arg(long)]
    pub json: bool,
}

/// `noctua mttr report`.
#[derive(Args)]
pub struct ReportArgs {
    /// Group by: severity, category, device, site or role.
    #[arg(long, default_value_t = GroupBy::Severity)]
    pub by: GroupBy,
    /// Faults raised at or after: RFC 3339 (`2026-11-01T00:00:00Z`) or an age (`7d`).
    #[arg(long)]
    pub since: Option<String>,
    /// Faults raised before: RFC 3339 or an age.
    #[arg(long)]
    pub until: Option<String>,
    /// Output format: table, json or csv.
    #[arg(long, default_value_t = Format::Table)]
    pub format: Format,
    /// Month by month instead (UTC calendar months): MTTA, MTTR, breaches, recurrences and
    /// the MTTR against the month before.
    #[arg(long, conflicts_with_all = ["by", "since", "until"])]
    pub monthly: bool,
    /// With --monthly: how many months, up to this one.
    #[arg(long, default_value_t = 12, requires = "monthly")]
    pub months: usize,
}

/// `noctua faults list`.
#[derive(Args)]
pub struct FaultListArgs {
    /// Only faults not yet cleared.
    #[arg(long)]
    pub open: bool,
    /// Only this device.
    #[arg(long)]
    pub device: Option<String>,
    /// Only faults raised at or after (RFC 3339 or an age such as `24h`).
    #[arg(long)]
    pub since: Option<String>,
    /// Output format: table, json or csv.
    #[arg(long, default_value_t = Format::Table)]
    pub format: Format,
}
