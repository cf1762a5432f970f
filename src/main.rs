//! The `noctua` command line: parse, set up logging, call into the library.
//!
//! Exit codes: 0 ok, 1 runtime failure, 2 usage or config error.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};
use noctua::config::{self, ConfigSource};
use noctua::fault::report::{self, Format};
use noctua::fault::{self, GroupBy};
use noctua::ingest::pcap;
use noctua::ingest::replay::{self, Speed};
use noctua::model::{FaultId, FaultRecord, Metric, Timestamp};
use noctua::northbound::client::{ApiClient, render_alarm_lines};
use noctua::store::{Store, StoreError};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(name = "noctua", version, about = "Network fault-management daemon")]
struct Cli {
    /// Log line format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Log level (error, warn, info, debug, trace); RUST_LOG, when set, wins.
    #[arg(long, global = true, default_value = "info")]
    log_level: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
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

#[derive(Clone, Copy, ValueEnum)]
enum BacktestMetric {
    /// Round-trip latency, ms.
    Latency,
    /// Packet loss, %.
    Loss,
    /// Link utilisation, %.
    Utilisation,
}

#[derive(Subcommand)]
enum AlarmsCommand {
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

#[derive(Subcommand)]
enum MttrCommand {
    /// MTTA and MTTR (mean, median, p90) and target breaches, by group. Without --since/--until:
    /// rolling 24h, 7d and 30d windows.
    Report {
        /// Group by.
        #[arg(long, value_enum, default_value_t = GroupBy::Severity)]
        by: GroupBy,
        /// Faults raised at or after: RFC 3339 (`2026-11-01T00:00:00Z`) or an age (`7d`).
        #[arg(long)]
        since: Option<String>,
        /// Faults raised before: RFC 3339 or an age.
        #[arg(long)]
        until: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// Config naming the store; same lookup as `run`.
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum FaultsCommand {
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
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
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

/// mimalloc instead of the system allocator: sled allocates and frees a node copy on most
/// writes, and the durable alarm path measured about 30% faster with it (README, Benchmarks).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const EXIT_RUNTIME: u8 = 1;
const EXIT_CONFIG: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format, &cli.log_level);
    match cli.command {
        Command::Version => {
            println!("noctua {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Command::PrintDefaultConfig => {
            print!("{}", config::DEFAULT_TOML);
            ExitCode::SUCCESS
        }
        Command::CheckConfig { file } => match ConfigSource::Flag(file).load() {
            Ok(_) => {
                println!("ok");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(EXIT_CONFIG)
            }
        },
        Command::Run { config } => run(config),
        Command::Replay {
            files,
            config,
            store,
            expect,
            speed,
            output,
        } => replay_command(files, config, store, expect, speed, output),
        Command::Backtest {
            file,
            metric,
            config,
            output,
        } => backtest_command(&file, metric, config, output),
        Command::Alarms {
            server,
            token_file,
            command,
        } => alarms_command(&server, token_file, command),
        Command::Mttr {
            command:
                MttrCommand::Report {
                    by,
                    since,
                    until,
                    format,
                    config,
                },
        } => with_records(config, |records| {
            let now = Timestamp::now();
            let since = time_arg(since.as_deref(), now)?;
            let until = time_arg(until.as_deref(), now)?;
            let reports = records.mttr(by, since, until, now)?;
            print!("{}", report::render_reports(&reports, format));
            Ok(())
        }),
        Command::Faults { command } => match command {
            FaultsCommand::List {
                open,
                device,
                since,
                format,
                config,
            } => with_records(config, |records| {
                let since = time_arg(since.as_deref(), Timestamp::now())?;
                let faults = records.faults(open, device.as_deref(), since)?;
                print!("{}", report::render_faults(&faults, format));
                Ok(())
            }),
            FaultsCommand::Show { id, config } => with_records(config, |records| {
                let f = records.fault(id)?;
                print!(
                    "{}",
                    report::render_faults(std::slice::from_ref(&f), Format::Json)
                );
                Ok(())
            }),
            FaultsCommand::Note {
                id,
                by,
                text,
                config,
            } => with_records(config, |records| {
                records.note(id, &by, &text)?;
                println!("note added to fault {id}");
                Ok(())
            }),
        },
    }
}

fn backtest_command(
    file: &std::path::Path,
    metric: BacktestMetric,
    config: Option<PathBuf>,
    output: Option<PathBuf>,
) -> ExitCode {
    let config = match config
        .map_or(ConfigSource::Embedded, ConfigSource::Flag)
        .load()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let csv = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("cannot read {}: {e}", file.display());
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let metric = match metric {
        BacktestMetric::Latency => Metric::LatencyMs,
        BacktestMetric::Loss => Metric::LossPct,
        BacktestMetric::Utilisation => Metric::UtilisationInPct,
    };
    let (out, summary) = noctua::detect::backtest::run(&config, metric, &csv);
    let written = match &output {
        Some(path) => std::fs::write(path, out),
        None => {
            print!("{out}");
            Ok(())
        }
    };
    if let Err(e) = written {
        eprintln!("cannot write the output: {e}");
        return ExitCode::from(EXIT_RUNTIME);
    }
    eprintln!(
        "{} rows, {} rejected, {} alarms raised, {} in alarm",
        summary.rows,
        summary.rejected,
        summary.alarms,
        humantime::format_duration(summary.in_alarm)
    );
    ExitCode::SUCCESS
}

fn replay_command(
    files: Vec<PathBuf>,
    config: Option<PathBuf>,
    store: Option<PathBuf>,
    expect: Option<PathBuf>,
    speed: Speed,
    output: Option<PathBuf>,
) -> ExitCode {
    let source = config.map_or(ConfigSource::Embedded, ConfigSource::Flag);
    let config = match source.load() {
        Ok(c) => Arc::new(c),
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let (captures, scenarios): (Vec<PathBuf>, Vec<PathBuf>) =
        files.into_iter().partition(|f| pcap::is_capture(f));
    let mut items = Vec::new();
    for f in &scenarios {
        match replay::read(f) {
            Ok(mut i) => items.append(&mut i),
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(EXIT_CONFIG);
            }
        }
    }
    if !captures.is_empty() {
        match replay::read_captures(&captures, &config) {
            Ok((mut i, summary)) => {
                eprintln!(
                    "replay: {} datagrams to collector ports ({} other packets skipped), {} samples",
                    summary.datagrams,
                    summary.skipped,
                    i.len()
                );
                items.append(&mut i);
            }
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(EXIT_CONFIG);
            }
        }
        if !scenarios.is_empty() {
            // Both kinds: interleave by data time; the stable sort keeps each file's order.
            items.sort_by_key(|(at, _)| *at);
        }
    }
    let expected = match expect.as_ref().map(std::fs::read_to_string).transpose() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("cannot read expected output: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let result = (|| -> anyhow::Result<Vec<String>> {
        let temp;
        let path = match &store {
            Some(p) => p.as_path(),
            None => {
                temp = tempfile::tempdir()?;
                temp.path()
            }
        };
        let store = Store::open(path)?;
        let after = store.last_seq()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        runtime.block_on(replay::run(config, store.clone(), items, speed))?;
        Ok(replay::outcome_lines(&store, after)?)
    })();
    let lines = match result {
        Ok(l) => l,
        Err(e) => {
            eprintln!("noctua: {e}");
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    if let Some(path) = &output {
        let mut text = lines.join("\n");
        if !text.is_empty() {
            text.push('\n');
        }
        if let Err(e) = std::fs::write(path, text) {
            eprintln!("cannot write {}: {e}", path.display());
            return ExitCode::from(EXIT_RUNTIME);
        }
    } else {
        for l in &lines {
            println!("{l}");
        }
    }
    match (expected, expect) {
        (Some(text), Some(path)) => match replay::diff(&text, &lines) {
            None => {
                eprintln!("replay matches {}", path.display());
                ExitCode::SUCCESS
            }
            Some(d) => {
                eprintln!(
                    "replay differs from {} (- expected, + actual):\n{d}",
                    path.display()
                );
                ExitCode::from(EXIT_RUNTIME)
            }
        },
        _ => ExitCode::SUCCESS,
    }
}

fn alarms_command(server: &str, token_file: Option<PathBuf>, command: AlarmsCommand) -> ExitCode {
    let token = match token_file {
        Some(path) => match config::Secret::from_file(&path) {
            Ok(t) => Some(t.expose().to_owned()),
            Err(e) => {
                eprintln!("cannot read token file {}: {e}", path.display());
                return ExitCode::from(EXIT_CONFIG);
            }
        },
        None => std::env::var("NOCTUA_TOKEN").ok().filter(|t| !t.is_empty()),
    };
    let api = ApiClient::new(server, token);
    let write = |id: u64, action: &str, by: String, note: Option<String>| {
        let body = serde_json::json!({ "user": by, "note": note });
        api.post(&format!("/api/v1/alarms/{id}/{action}"), &body)
            .map(|answer| {
                let n = answer["transitions"].as_array().map_or(0, Vec::len);
                if n == 0 {
                    format!("alarm {id}: nothing to change\n")
                } else {
                    format!("alarm {id}: {action} done\n")
                }
            })
    };
    let result = match command {
        AlarmsCommand::Tail {
            min_severity,
            device,
            json,
        } => {
            let query = query_string(&[("severity", min_severity), ("device", device)]);
            let mut stdout = std::io::stdout().lock();
            return match api.tail(&query, json, &mut stdout) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("noctua: {e}");
                    ExitCode::from(EXIT_RUNTIME)
                }
            };
        }
        AlarmsCommand::List {
            severity,
            state,
            device,
            json,
        } => {
            let query =
                query_string(&[("severity", severity), ("state", state), ("device", device)]);
            api.get(&format!("/api/v1/alarms{query}")).map(|page| {
                if json {
                    format!("{page:#}\n")
                } else {
                    let items = page["items"].as_array().cloned().unwrap_or_default();
                    render_alarm_lines(&items)
                }
            })
        }
        AlarmsCommand::Show { id } => api
            .get(&format!("/api/v1/alarms/{id}"))
            .map(|a| format!("{a:#}\n")),
        AlarmsCommand::Ack { id, by, note } => write(id, "ack", by, note),
        AlarmsCommand::Unack { id, by } => write(id, "unack", by, None),
        AlarmsCommand::Clear { id, by, note } => write(id, "clear", by, note),
    };
    match result {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("noctua: {e}");
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}

/// `?k=v&...` of the parameters that are set, or nothing.
fn query_string(params: &[(&str, Option<String>)]) -> String {
    let set: Vec<String> = params
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", url_escape(v))))
        .collect();
    if set.is_empty() {
        String::new()
    } else {
        format!("?{}", set.join("&"))
    }
}

/// Percent-encodes a query value (device names may hold `/` or spaces).
fn url_escape(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Where `mttr` and `faults` read and write: a stopped daemon's store, or, while the daemon
/// runs and holds the store, its HTTP API.
enum Records {
    Store(Store),
    Api(ApiClient),
}

impl Records {
    fn mttr(
        &self,
        by: GroupBy,
        since: Option<Timestamp>,
        until: Option<Timestamp>,
        now: Timestamp,
    ) -> anyhow::Result<Vec<fault::Report>> {
        match self {
            Records::Store(store) => {
                let faults = fault::all(store)?;
                Ok(if since.is_none() && until.is_none() {
                    fault::ROLLING
                        .iter()
                        .map(|(label, d)| fault::report(&faults, by, label, now.minus(*d), now))
                        .collect()
                } else {
                    let since = since.unwrap_or(Timestamp::from_millis(0));
                    vec![fault::report(
                        &faults,
                        by,
                        "custom",
                        since,
                        until.unwrap_or(now),
                    )]
                })
            }
            Records::Api(api) => {
                let by = serde_json::to_value(by)?;
                let mut query = vec![format!("by={}", by.as_str().unwrap_or("severity"))];
                query.extend(since.map(|t| format!("since={t}")));
                query.extend(until.map(|t| format!("until={t}")));
                let value = api.get(&format!("/api/v1/mttr?{}", query.join("&")))?;
                Ok(serde_json::from_value(value)?)
            }
        }
    }

    fn faults(
        &self,
        open: bool,
        device: Option<&str>,
        since: Option<Timestamp>,
    ) -> anyhow::Result<Vec<FaultRecord>> {
        match self {
            Records::Store(store) => Ok(fault::all(store)?
                .into_iter()
                .filter(|f| !open || f.cleared_at.is_none())
                .filter(|f| device.is_none_or(|d| f.device == d))
                .filter(|f| since.is_none_or(|s| f.raised_at >= s))
                .collect()),
            Records::Api(api) => {
                let mut query = vec![format!("open={open}"), "limit=5000".to_owned()];
                query.extend(device.map(|d| format!("device={}", url_escape(d))));
                query.extend(since.map(|t| format!("since={t}")));
                let page = api.get(&format!("/api/v1/faults?{}", query.join("&")))?;
                let mut faults: Vec<FaultRecord> = serde_json::from_value(page["items"].clone())?;
                // The API lists newest first; the store path oldest first. Keep one order.
                faults.reverse();
                Ok(faults)
            }
        }
    }

    fn fault(&self, id: u64) -> anyhow::Result<FaultRecord> {
        match self {
            Records::Store(store) => Ok(fault::get(store, id)?),
            Records::Api(api) => Ok(serde_json::from_value(
                api.get(&format!("/api/v1/faults/{id}"))?,
            )?),
        }
    }

    fn note(&self, id: u64, by: &str, text: &str) -> anyhow::Result<()> {
        match self {
            Records::Store(store) => {
                fault::add_note(store, FaultId(id), by, text, Timestamp::now())?;
            }
            Records::Api(api) => {
                let body = serde_json::json!({ "by": by, "text": text });
                api.post(&format!("/api/v1/faults/{id}/notes"), &body)?;
            }
        }
        Ok(())
    }
}

/// Runs a command on the store named by the config, or through the running daemon's API when
/// the daemon holds the store (at `$NOCTUA_SERVER`, else the config's `http.listen`; writes use
/// `$NOCTUA_TOKEN`, else the config's token).
fn with_records(flag: Option<PathBuf>, f: impl FnOnce(&Records) -> anyhow::Result<()>) -> ExitCode {
    let config = match load_config(flag) {
        Ok((_, c)) => c,
        Err(code) => return code,
    };
    let state_dir = std::env::var_os("STATE_DIRECTORY").map(PathBuf::from);
    let path = config.store.resolved_path(state_dir.as_deref());
    let records = match Store::open(&path) {
        Ok(store) => Records::Store(store),
        Err(StoreError::Locked { .. }) => {
            let server = std::env::var("NOCTUA_SERVER")
                .unwrap_or_else(|_| format!("http://{}", config.http.listen));
            let token = std::env::var("NOCTUA_TOKEN")
                .ok()
                .filter(|t| !t.is_empty())
                .or_else(|| config.http.token.as_ref().map(|t| t.expose().to_owned()));
            eprintln!("noctua: the running daemon holds the store; asking it at {server}");
            Records::Api(ApiClient::new(&server, token))
        }
        Err(e) => {
            eprintln!("noctua: {e}");
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    match f(&records) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("noctua: {e}");
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}

/// `--since`/`--until`: RFC 3339, or an age before now such as `7d`.
fn time_arg(arg: Option<&str>, now: Timestamp) -> anyhow::Result<Option<Timestamp>> {
    arg.map(|a| Timestamp::parse_time_or_age(a, now).map_err(anyhow::Error::msg))
        .transpose()
}

/// The config by the daemon's lookup order; a bad one is printed and gives exit code 2.
fn load_config(flag: Option<PathBuf>) -> Result<(ConfigSource, config::Config), ExitCode> {
    let source = ConfigSource::locate(
        flag,
        std::env::var_os("NOCTUA_CONFIG"),
        std::path::Path::new(config::SYSTEM_PATH),
    );
    match source.load() {
        Ok(c) => Ok((source, c)),
        Err(e) => {
            eprintln!("{e}");
            Err(ExitCode::from(EXIT_CONFIG))
        }
    }
}

fn run(flag: Option<PathBuf>) -> ExitCode {
    let (source, config) = match load_config(flag) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    tracing::info!(config = %source, "config loaded");
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    match runtime.block_on(noctua::daemon::run(source, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("noctua: {e}");
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}

fn init_logging(format: LogFormat, level: &str) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
