//! The command line's types and their help (clap derive); `main.rs` acts on them.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use noctua::fault::GroupBy;
use noctua::fault::report::Format;
use noctua::model::Metric;
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
    Replay {
        /// Scenario files (JSON lines) and captures, fed in order.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Config; the embedded default if not given (never /etc, so CI runs are reproducible).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Store to replay into; a temporary one if not given.
        #[arg(long)]
        store: Option<PathBuf>,
        /// Expected output (golden file).
        #[arg(long)]
        expect: Option<PathBuf>,
        /// max, realtime, or a factor such as 60x.
        #[arg(long, default_value = "max")]
        speed: Speed,
        /// Write the transitions to this file (JSON lines) instead of standard output.
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Alarms of a running daemon, through its HTTP API.
    Alarms {
        /// The daemon's HTTP address.
        #[arg(
            long,
            global = true,
            env = "NOCTUA_SERVER",
            default_value = "http://127.0.0.1:9617"
        )]
        server: String,
        /// File holding the API token for ack/unack/clear (or set $NOCTUA_TOKEN; a token on the
        /// command line would show in `ps`).
        #[arg(long, global = true)]
        token_file: Option<PathBuf>,
        #[command(subcommand)]
        command: AlarmsCommand,
    },
    /// Run one series' history (CSV `timestamp,value`) through the daemon's detector: CSV of
    /// `timestamp,value,score,tier,expected,note` per row, and a summary on stderr.
    Backtest {
        /// The history: RFC 3339 or epoch-seconds timestamps; header optional.
        file: PathBuf,
        /// Which metric the values are.
        #[arg(long, value_enum, default_value_t = BacktestMetric::Utilisation)]
        metric: BacktestMetric,
        /// Config with the rules to try; the embedded default if not given.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Write the CSV here instead of stdout.
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// MTTA/MTTR reports from a stopped daemon's store.
    Mttr {
        #[command(subcommand)]
        command: MttrCommand,
    },
    /// Fault records in a stopped daemon's store.
    Faults {
        #[command(subcommand)]
        command: FaultsCommand,
    },
    /// Print the version.
    Version,
}

/// The metric a backtest's values are.
#[derive(Clone, Copy, ValueEnum)]
pub enum BacktestMetric {
    /// Round-trip latency, ms.
    Latency,
    /// Packet loss, %.
    Loss,
    /// Link utilisation, %.
    Utilisation,
}

/// `noctua alarms ...`.
#[derive(Subcommand)]
pub enum AlarmsCommand {
    /// Follow the live alarm stream; resumes after a disconnect without repeating anything.
    Tail {
        /// Minimum severity (clears always shown).
        #[arg(long)]
        min_severity: Option<String>,
        /// Only this device.
        #[arg(long)]
        device: Option<String>,
        /// Print transitions as JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// Active alarms, most severe first.
    List {
        /// Minimum severity (warning, minor, major, critical).
        #[arg(long)]
        severity: Option<String>,
        /// active, acknowledged, unacknowledged or cleared.
        #[arg(long)]
        state: Option<String>,
        /// Only this device.
        #[arg(long)]
        device: Option<String>,
        /// Print the API's JSON instead of lines.
        #[arg(long)]
        json: bool,
    },
    /// One alarm with its history (JSON).
    Show {
        /// Alarm id.
        id: u64,
    },
    /// Acknowledge.
    Ack {
        /// Alarm id.
        id: u64,
        /// Who.
        #[arg(long)]
        by: String,
        /// Note for the fault record.
        #[arg(long)]
        note: Option<String>,
    },
    /// Withdraw an acknowledgement.
    Unack {
        /// Alarm id.
        id: u64,
        /// Who.
        #[arg(long)]
        by: String,
    },
    /// Clear by hand.
    Clear {
        /// Alarm id.
        id: u64,
        /// Who.
        #[arg(long)]
        by: String,
        /// Note for the fault record.
        #[arg(long)]
        note: Option<String>,
    },
}

/// `noctua mttr ...`.
#[derive(Subcommand)]
pub enum MttrCommand {
    /// MTTA and MTTR (mean, median, p90) and target breaches, by group. Without --since/--until:
    /// rolling 24h, 7d and 30d windows.
    Report {
        /// Group by: severity, category, device, site or role.
        #[arg(long, default_value_t = GroupBy::Severity)]
        by: GroupBy,
        /// Faults raised at or after: RFC 3339 (`2026-11-01T00:00:00Z`) or an age (`7d`).
        #[arg(long)]
        since: Option<String>,
        /// Faults raised before: RFC 3339 or an age.
        #[arg(long)]
        until: Option<String>,
        /// Output format: table, json or csv.
        #[arg(long, default_value_t = Format::Table)]
        format: Format,
        /// Config naming the store; same lookup as `run`.
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

/// `noctua faults ...`.
#[derive(Subcommand)]
pub enum FaultsCommand {
    /// List fault records, oldest first.
    List {
        /// Only faults not yet cleared.
        #[arg(long)]
        open: bool,
        /// Only this device.
        #[arg(long)]
        device: Option<String>,
        /// Only faults raised at or after (RFC 3339 or an age such as `24h`).
        #[arg(long)]
        since: Option<String>,
        /// Output format: table, json or csv.
        #[arg(long, default_value_t = Format::Table)]
        format: Format,
        /// Config naming the store; same lookup as `run`.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Show one fault record in full (JSON).
    Show {
        /// Fault id.
        id: u64,
        /// Config naming the store; same lookup as `run`.
        #[arg(long)]
        config: Option<PathBuf>,
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
        /// Config naming the store; same lookup as `run`.
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

impl BacktestMetric {
    /// The detector's metric.
    pub fn metric(self) -> Metric {
        match self {
            BacktestMetric::Latency => Metric::LatencyMs,
            BacktestMetric::Loss => Metric::LossPct,
            BacktestMetric::Utilisation => Metric::UtilisationInPct,
        }
    }
}
