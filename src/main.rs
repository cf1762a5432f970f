//! The `noctua` command line: parse (the types are in `cli.rs`), set up logging, call into the
//! library, turn the result into an exit code: 0 ok, 1 runtime failure, 2 usage or config error.

mod cli;

use std::fmt::Display;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use cli::{AlarmsCommand, Cli, Command, FaultsCommand, LogFormat, MttrCommand};
use noctua::config::{self, Config, ConfigSource, Secret};
use noctua::fault::FaultFilter;
use noctua::fault::report::{Format, render_faults, render_reports};
use noctua::model::{Note, Timestamp};
use noctua::northbound::client::{AlarmAction, ApiClient};
use noctua::northbound::records::Records;
use noctua::pipeline::replay::{self, ReplayError};
use tracing_subscriber::EnvFilter;

/// mimalloc instead of the system allocator: sled allocates and frees a node copy on most
/// writes, and the durable alarm path measured about 30% faster with it (README, Benchmarks).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Why a command failed: bad usage or config (exit 2, printed as it is), or at run time (exit 1).
enum Fail {
    Usage(String),
    Runtime(String),
}

fn usage(e: impl Display) -> Fail {
    Fail::Usage(e.to_string())
}

fn runtime(e: impl Display) -> Fail {
    Fail::Runtime(format!("noctua: {e}"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format, &cli.log_level);
    match dispatch(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Fail::Usage(m)) => {
            eprintln!("{m}");
            ExitCode::from(2)
        }
        Err(Fail::Runtime(m)) => {
            eprintln!("{m}");
            ExitCode::from(1)
        }
    }
}

fn dispatch(command: Command) -> Result<(), Fail> {
    match command {
        Command::Version => println!("noctua {}", env!("CARGO_PKG_VERSION")),
        Command::PrintDefaultConfig => print!("{}", config::DEFAULT_TOML),
        Command::CheckConfig { file } => {
            ConfigSource::Flag(file).load().map_err(usage)?;
            println!("ok");
        }
        Command::Run { config } => {
            let (source, config) = located_config(config)?;
            tracing::info!(config = %source, "config loaded");
            let runtime_ = tokio::runtime::Runtime::new().map_err(runtime)?;
            runtime_
                .block_on(noctua::daemon::run(source, config))
                .inspect_err(|e| tracing::error!("{e}"))
                .map_err(runtime)?;
        }
        Command::Replay {
            files,
            config,
            store,
            expect,
            speed,
            output,
        } => {
            let config = Arc::new(given_config(config)?);
            let expected = expect.as_ref().map(std::fs::read_to_string).transpose();
            let expected =
                expected.map_err(|e| usage(format!("cannot read expected output: {e}")))?;
            let done =
                replay::replay(config, files, store.as_deref(), speed).map_err(|e| match e {
                    ReplayError::Scenario(_) | ReplayError::Capture(_) => usage(e),
                    _ => runtime(e),
                })?;
            if let Some((summary, samples)) = done.captures {
                eprintln!("replay: {summary}, {samples} samples");
            }
            let mut text: String = done.lines.iter().map(|l| format!("{l}\n")).collect();
            match &output {
                Some(path) => write(path, &text)?,
                None => print!("{}", std::mem::take(&mut text)),
            }
            if let (Some(text), Some(path)) = (expected, expect) {
                match replay::diff(&text, &done.lines) {
                    None => eprintln!("replay matches {}", path.display()),
                    Some(d) => {
                        return Err(Fail::Runtime(format!(
                            "replay differs from {} (- expected, + actual):\n{d}",
                            path.display()
                        )));
                    }
                }
            }
        }
        Command::Backtest {
            file,
            metric,
            config,
            output,
        } => {
            let config = given_config(config)?;
            let csv = std::fs::read_to_string(&file)
                .map_err(|e| usage(format!("cannot read {}: {e}", file.display())))?;
            let (out, summary) = noctua::detect::backtest::run(&config, metric.metric(), &csv);
            match &output {
                Some(path) => write(path, &out)?,
                None => print!("{out}"),
            }
            eprintln!("{summary}");
        }
        Command::Alarms {
            server,
            token_file,
            command,
        } => {
            let token = match token_file {
                Some(path) => Some(
                    Secret::from_file(&path)
                        .map_err(|e| {
                            usage(format!("cannot read token file {}: {e}", path.display()))
                        })?
                        .expose()
                        .to_owned(),
                ),
                None => std::env::var("NOCTUA_TOKEN").ok().filter(|t| !t.is_empty()),
            };
            let api = ApiClient::new(&server, token);
            let text = match command {
                AlarmsCommand::Tail {
                    min_severity,
                    device,
                    json,
                } => {
                    let query = params([("severity", min_severity), ("device", device)]);
                    return match api.tail(&query, json, &mut std::io::stdout().lock()) {
                        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(runtime(e)),
                        _ => Ok(()),
                    };
                }
                AlarmsCommand::List {
                    severity,
                    state,
                    device,
                    json,
                } => api.alarm_list(
                    &params([("severity", severity), ("state", state), ("device", device)]),
                    json,
                ),
                AlarmsCommand::Show { id } => api.alarm_show(id),
                AlarmsCommand::Ack { id, by, note } => {
                    api.alarm_action(id, AlarmAction::Ack, &by, note.as_deref())
                }
                AlarmsCommand::Unack { id, by } => {
                    api.alarm_action(id, AlarmAction::Unack, &by, None)
                }
                AlarmsCommand::Clear { id, by, note } => {
                    api.alarm_action(id, AlarmAction::Clear, &by, note.as_deref())
                }
            };
            print!("{}", text.map_err(runtime)?);
        }
        Command::Mttr {
            command:
                MttrCommand::Report {
                    by,
                    since,
                    until,
                    format,
                    config,
                },
        } => {
            let records = records(config)?;
            let now = Timestamp::now();
            let reports = records.mttr(by, time_arg(since, now)?, time_arg(until, now)?, now);
            print!("{}", render_reports(&reports.map_err(runtime)?, format));
        }
        Command::Faults { command } => match command {
            FaultsCommand::List {
                open,
                device,
                since,
                format,
                config,
            } => {
                let records = records(config)?;
                let since = time_arg(since, Timestamp::now())?;
                let faults = records
                    .faults(&FaultFilter {
                        open,
                        device,
                        since,
                    })
                    .map_err(runtime)?;
                print!("{}", render_faults(&faults, format));
            }
            FaultsCommand::Show { id, config } => {
                let fault = records(config)?.fault(id).map_err(runtime)?;
                print!(
                    "{}",
                    render_faults(std::slice::from_ref(&fault), Format::Json)
                );
            }
            FaultsCommand::Note {
                id,
                by,
                text,
                config,
            } => {
                let note = Note {
                    at: Timestamp::now(),
                    by,
                    text,
                };
                records(config)?.note(id, note).map_err(runtime)?;
                println!("note added to fault {id}");
            }
        },
    }
    Ok(())
}

/// The query parameters that are set.
fn params<const N: usize>(
    pairs: [(&'static str, Option<String>); N],
) -> Vec<(&'static str, String)> {
    pairs
        .into_iter()
        .filter_map(|(k, v)| Some((k, v?)))
        .collect()
}

fn write(path: &Path, text: &str) -> Result<(), Fail> {
    std::fs::write(path, text).map_err(|e| runtime(format!("cannot write {}: {e}", path.display())))
}

/// `--since`/`--until`: RFC 3339, or an age before now such as `7d`.
fn time_arg(arg: Option<String>, now: Timestamp) -> Result<Option<Timestamp>, Fail> {
    arg.map(|a| Timestamp::parse_time_or_age(&a, now).map_err(runtime))
        .transpose()
}

/// The config by the daemon's lookup order: flag, `$NOCTUA_CONFIG`, /etc, embedded.
fn located_config(flag: Option<PathBuf>) -> Result<(ConfigSource, Config), Fail> {
    let env = std::env::var_os("NOCTUA_CONFIG");
    let source = ConfigSource::locate(flag, env, Path::new(config::SYSTEM_PATH));
    let config = source.load().map_err(usage)?;
    Ok((source, config))
}

/// The given config, else the embedded default (never /etc, so replays are reproducible).
fn given_config(flag: Option<PathBuf>) -> Result<Config, Fail> {
    flag.map_or(ConfigSource::Embedded, ConfigSource::Flag)
        .load()
        .map_err(usage)
}

/// The store the config names, or the running daemon that holds it (at `$NOCTUA_SERVER`, else
/// the config's `http.listen`; writes use `$NOCTUA_TOKEN`, else the config's token).
fn records(flag: Option<PathBuf>) -> Result<Records, Fail> {
    let (_, config) = located_config(flag)?;
    let env = |k| std::env::var(k).ok().filter(|v: &String| !v.is_empty());
    let state_dir = std::env::var_os("STATE_DIRECTORY").map(PathBuf::from);
    let (records, notice) = Records::open(
        &config,
        state_dir.as_deref(),
        env("NOCTUA_SERVER"),
        env("NOCTUA_TOKEN"),
    )
    .map_err(runtime)?;
    if let Some(n) = notice {
        eprintln!("noctua: {n}");
    }
    Ok(records)
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
