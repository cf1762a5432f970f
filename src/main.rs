//! The `noctua` command line: parse (the types are in `cli.rs`), set up logging, call into the
//! library, turn the result into an exit code: 0 ok, 1 runtime failure, 2 usage or config
//! error, 75 the store failed under `run` (a restart recovers).

mod cli;

use std::fmt::Display;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use cli::{
    ActionsCommand, AlarmsCommand as A, CapacityCommand, Cli, Command, ComplaintsCommand,
    CustomersCommand, DaemonArgs, FaultsCommand as F, FlowsCommand, LogFormat, MttrCommand,
    StoreCommand,
};
use noctua::config::{ConfigSource, DEFAULT_TOML};
use noctua::detect::backtest::{Options, backtest};
use noctua::fault::FaultFilter;
use noctua::fault::complaints::{ComplaintReport, render_complaint_report};
use noctua::fault::monthly::render_monthly;
use noctua::fault::report::{render_fault_shown, render_faults, render_reports};
use noctua::model::Timestamp;
use noctua::northbound::client::AlarmAction::{Ack, Clear, Unack};
use noctua::northbound::records::{Records, RecordsError};
use noctua::northbound::{audit, crm};
use noctua::pipeline::replay::{self, ReplayError};
use noctua::store::Store;
use tracing_subscriber::EnvFilter;

/// mimalloc instead of the system allocator: sled allocates and frees a node copy on most
/// writes, and the durable alarm path measured about 30% faster with it (README, Benchmarks).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Why a command failed, as printed: bad usage or config (exit 2), or at run time (exit 1).
struct Fail(String, u8);

/// The input's failure (a file, a line, the config) is printed as it is, with exit 2; the
/// run's after `noctua:`, with exit 1.
fn fail<E: Display>(input: impl Fn(&E) -> bool) -> impl Fn(E) -> Fail {
    move |e| match input(&e) {
        true => Fail(e.to_string(), 2),
        false => Fail(format!("noctua: {e}"), 1),
    }
}

/// A failure of the run.
fn run<E: Display>(e: E) -> Fail {
    fail(|_| false)(e)
}

/// A failure of the input.
fn usage<E: Display>(e: E) -> Fail {
    fail(|_| true)(e)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Run { .. } | Command::Demo { .. }) {
        end_quietly_on_a_closed_pipe();
    }
    init_logging(cli.log_format, &cli.log_level);
    match dispatch(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Fail(message, code)) => {
            eprintln!("{message}");
            ExitCode::from(code)
        }
    }
}

/// A command whose output goes into `head` or a pager that quits ends as Unix tools do,
/// killed by SIGPIPE, instead of `print!` panicking on the closed pipe (Rust ignores the
/// signal by default). The daemon keeps it ignored: it must see EPIPE on a child's pipe as an
/// error. A command's own sockets cannot raise it: std sends with `MSG_NOSIGNAL`.
#[allow(unsafe_code)] // one system call
fn end_quietly_on_a_closed_pipe() {
    // SAFETY: sets the disposition of one signal before any thread is started.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn dispatch(command: Command) -> Result<(), Fail> {
    let now = Timestamp::now();
    let records = |daemon: DaemonArgs| {
        let found = Records::find(daemon.lookup());
        let (records, notice) = found.map_err(fail(|e| matches!(e, RecordsError::Config(_))))?;
        notice.inspect(|n| eprintln!("noctua: {n}"));
        Ok::<_, Fail>(records)
    };
    let time = |a: Option<String>| a.map(|a| Timestamp::parse_time_or_age(&a, now)).transpose();
    match command {
        Command::Version => println!("noctua {}", env!("CARGO_PKG_VERSION")),
        Command::PrintDefaultConfig => print!("{DEFAULT_TOML}"),
        Command::CheckConfig { file } => {
            ConfigSource::Flag(file).load().map_err(usage)?;
            println!("ok");
        }
        Command::Run { config, ready_file } => {
            let started = noctua::daemon::start(config, ready_file.as_deref());
            started.map_err(|e| match e.exit_code() {
                2 => Fail(e.to_string(), 2),
                code => Fail(format!("noctua: {e}"), code),
            })?;
        }
        Command::Demo {
            store,
            listen,
            ready_file,
        } => {
            let started = noctua::daemon::demo(store, listen, ready_file.as_deref());
            started.map_err(|e| Fail(format!("noctua: {e}"), e.exit_code()))?;
        }
        Command::Replay(r) => {
            let (store, expect) = (r.store.as_deref(), r.expect.as_deref());
            let checked = replay::check(r.config, r.files, store, r.speed, expect);
            let (done, golden) = checked.map_err(fail(ReplayError::is_input))?;
            if let Some((summary, samples)) = &done.captures {
                eprintln!("replay: {summary}, {samples} samples");
            }
            output(r.output, &done.text())?;
            match golden {
                Some(g) if g.diff.is_some() => return Err(Fail(g.to_string(), 1)),
                Some(g) => eprintln!("{g}"),
                None => {}
            }
        }
        Command::Flows {
            command:
                FlowsCommand::Inspect {
                    file,
                    exporter,
                    json,
                    records,
                    summary,
                    ports,
                },
        } => {
            let (datagrams, _) = noctua::ingest::pcap::read(&file, &ports).map_err(usage)?;
            let exports: Vec<_> = datagrams
                .iter()
                .map(|d| noctua::ingest::netflow::inspect::Export {
                    at_ms: d.at_ms,
                    src: d.src,
                    payload: &d.payload,
                })
                .collect();
            let options = noctua::ingest::netflow::inspect::Options {
                exporter,
                json,
                records,
                summary,
            };
            print!(
                "{}",
                noctua::ingest::netflow::inspect::inspect(&exports, &options)
            );
        }
        Command::Backtest(b) if b.forecast => {
            let csv = std::fs::read_to_string(&b.file)
                .map_err(|e| usage(format!("cannot read {}: {e}", b.file.display())))?;
            let rules = noctua::forecast::backtest::Rules {
                level: b.level,
                min_days: b.min_days,
                floor: b.floor,
                agree: b.agree,
                within_days: b.within_days,
                timezone: b.timezone,
            };
            let (out, found) = noctua::forecast::backtest::run(&csv, &rules);
            output(b.output, &out)?;
            eprintln!("{}", found.line());
        }
        Command::Backtest(b) => {
            let options = Options {
                family: b.metric,
                direction: b.direction,
                timezone: b.timezone,
            };
            let (out, summary) = backtest(b.config, &b.file, &options).map_err(usage)?;
            output(b.output, &out)?;
            eprintln!("{summary}");
        }
        Command::Alarms(a) => {
            let api = a.daemon.lookup().api();
            let api = api.map_err(fail(RecordsError::is_usage))?;
            let text = match a.command {
                A::Tail(t) => {
                    let query = [
                        ("severity", t.min_severity),
                        ("device", t.device),
                        ("scope", t.fleet.then(|| "fleet".to_owned())),
                    ];
                    let mut out = std::io::stdout().lock();
                    return api.tail(&query, t.json, &mut out).map_err(run);
                }
                A::List(l) => {
                    let query = [
                        ("severity", l.severity),
                        ("state", l.state),
                        ("device", l.device),
                        ("scope", l.fleet.then(|| "fleet".to_owned())),
                    ];
                    api.alarm_list(&query, l.json)
                }
                A::Show { id } => api.alarm_show(id),
                A::Ack(c) => api.alarm_action(c.id, Ack, &c.by, c.note.as_deref()),
                A::Unack { id, by } => api.alarm_action(id, Unack, &by, None),
                A::Clear(c) => api.alarm_action(c.id, Clear, &c.by, c.note.as_deref()),
            };
            print!("{}", text.map_err(run)?);
        }
        Command::Store { daemon, command } => match command {
            StoreCommand::Backup { file } => {
                let records = records(daemon)?;
                let temp = file.with_extension("tmp");
                let mut out = std::fs::File::create(&temp)
                    .map(std::io::BufWriter::new)
                    .map_err(|e| usage(format!("cannot write {}: {e}", temp.display())))?;
                let bytes = records.backup(&mut out).map_err(run)?;
                let kept = out
                    .into_inner()
                    .map_err(|e| e.into_error())
                    .and_then(|f| f.sync_all())
                    .and_then(|()| std::fs::rename(&temp, &file));
                kept.map_err(|e| run(format!("cannot write {}: {e}", file.display())))?;
                println!("backup written to {} ({bytes} bytes)", file.display());
            }
            StoreCommand::Restore { file } => {
                let path = daemon
                    .lookup()
                    .store_path()
                    .map_err(fail(RecordsError::is_usage))?;
                let mut input = std::fs::File::open(&file)
                    .map_err(|e| usage(format!("cannot read {}: {e}", file.display())))?;
                let summary = Store::restore(&path, &mut input).map_err(run)?;
                println!("restored {summary} into {}", path.display());
            }
            StoreCommand::Check => {
                let problems = records(daemon)?.check().map_err(run)?;
                if !problems.is_empty() {
                    return Err(Fail(
                        format!("noctua: store check failed:\n  {}", problems.join("\n  ")),
                        1,
                    ));
                }
                println!("store ok");
            }
        },
        Command::Capacity {
            daemon,
            command: CapacityCommand::Report { by, format },
        } => {
            let rows = records(daemon)?.capacity(by).map_err(run)?;
            print!(
                "{}",
                noctua::northbound::capacity::render(&rows, by, format)
            );
        }
        Command::Mttr {
            daemon,
            command: MttrCommand::Report(m),
        } => {
            let records = records(daemon)?;
            if m.monthly {
                let months = records.monthly(m.months, now).map_err(run)?;
                print!("{}", render_monthly(&months, m.format));
                return Ok(());
            }
            let (since, until) = (time(m.since).map_err(run)?, time(m.until).map_err(run)?);
            let reports = records.mttr(m.by, since, until, now).map_err(run)?;
            print!("{}", render_reports(&reports, m.format));
        }
        Command::Customers { daemon, command } => match command {
            CustomersCommand::Import { file, check } => {
                let api = daemon
                    .lookup()
                    .api()
                    .map_err(fail(RecordsError::is_usage))?;
                let summary = crm::import(&api, &file, check).map_err(|e| match e {
                    crm::ImportError::Read { .. } => usage(e.to_string()),
                    other => run(other),
                })?;
                print!("{summary}");
            }
        },
        Command::Actions { daemon, command } => {
            let api = daemon
                .lookup()
                .api()
                .map_err(fail(RecordsError::is_usage))?;
            let said = match command {
                ActionsCommand::List {
                    state,
                    rule,
                    fault,
                    limit,
                    json,
                } => audit::list(&api, &state, rule, fault, limit, json),
                ActionsCommand::Show { id, json } => audit::show(&api, id, json),
                ActionsCommand::Approve { id, by } => audit::decide(&api, id, &by, true),
                ActionsCommand::Reject { id, by } => audit::decide(&api, id, &by, false),
                ActionsCommand::Rules { json } => audit::rules(&api, json),
                ActionsCommand::Reset { rule, by } => audit::reset(&api, &rule, &by),
                ActionsCommand::Report {
                    since,
                    until,
                    format,
                } => audit::report(&api, since, until, format),
            };
            print!("{}", said.map_err(run)?);
        }
        Command::Complaints { daemon, command } => {
            let api = daemon
                .lookup()
                .api()
                .map_err(fail(RecordsError::is_usage))?;
            let path = |id: &str, action: &str| format!("/api/v1/complaints/{id}/{action}");
            let said = match command {
                ComplaintsCommand::List { state, json } => {
                    crm::complaints_table(&api, &state, json).map_err(run)?
                }
                ComplaintsCommand::Show { id } => {
                    let v = api
                        .get(&format!("/api/v1/complaints/{id}"), &[])
                        .map_err(run)?;
                    format!("{v:#}\n")
                }
                ComplaintsCommand::Add {
                    place,
                    channel,
                    symptom,
                    text,
                    id,
                } => {
                    let (kind, value) = place.param();
                    let mut body = serde_json::json!({
                        "channel": channel, "symptom": symptom, "text": text, kind: value,
                    });
                    if let Some(id) = id {
                        body["id"] = id.into();
                    }
                    let v = api.post("/api/v1/complaints", &body).map_err(run)?;
                    crm::complaint_said(&v)
                }
                ComplaintsCommand::Ack { id, by } => {
                    let v = api
                        .post(&path(&id, "ack"), &serde_json::json!({ "by": by }))
                        .map_err(run)?;
                    crm::complaint_said(&v)
                }
                ComplaintsCommand::Report {
                    by,
                    since,
                    until,
                    format,
                } => {
                    let query = [
                        ("by", Some(by.name().to_owned())),
                        ("since", since),
                        ("until", until),
                    ];
                    let v = api.get("/api/v1/complaints/report", &query).map_err(run)?;
                    let report: ComplaintReport = serde_json::from_value(v)
                        .map_err(|e| run(format!("unexpected report from the daemon: {e}")))?;
                    render_complaint_report(&report, format)
                }
                ComplaintsCommand::Resolve { id, by, note } => {
                    let body = serde_json::json!({ "by": by, "note": note });
                    let v = api.post(&path(&id, "resolve"), &body).map_err(run)?;
                    crm::complaint_said(&v)
                }
            };
            print!("{said}");
        }
        Command::Services { daemon, json } => {
            let api = daemon
                .lookup()
                .api()
                .map_err(fail(RecordsError::is_usage))?;
            print!("{}", crm::services_table(&api, json).map_err(run)?);
        }
        Command::Impact {
            daemon,
            place,
            json,
        } => {
            let api = daemon
                .lookup()
                .api()
                .map_err(fail(RecordsError::is_usage))?;
            let (kind, value) = place.param();
            print!("{}", crm::lookup(&api, kind, value, json).map_err(run)?);
        }
        Command::Faults { daemon, command } => {
            let records = records(daemon)?;
            match command {
                F::List(l) => {
                    let since = time(l.since).map_err(run)?;
                    let filter = FaultFilter {
                        open: l.open,
                        device: l.device,
                        since,
                    };
                    let faults = records.faults(&filter).map_err(run)?;
                    print!("{}", render_faults(&faults, l.format));
                }
                F::Show { id } => {
                    let fault = records.fault(id).map_err(run)?;
                    let actions = records.actions_of_fault(id).map_err(run)?;
                    print!("{}", render_fault_shown(&fault, &actions));
                }
                F::Report { id, format } => {
                    print!("{}", records.report(id, format).map_err(run)?);
                }
                F::Review {
                    id,
                    by,
                    cause,
                    corrective_action,
                } => {
                    records
                        .review(id, &by, cause, corrective_action)
                        .map_err(run)?;
                    println!("review of fault {id} written by {by}");
                }
                F::Note { id, by, text } => {
                    records.note(id, &by, &text).map_err(run)?;
                    println!("note added to fault {id}");
                }
            }
        }
    }
    Ok(())
}

/// Writes `text` to the file, or to standard output without one.
fn output(file: Option<PathBuf>, text: &str) -> Result<(), Fail> {
    match file {
        Some(path) => std::fs::write(&path, text)
            .map_err(|e| run(format!("cannot write {}: {e}", path.display()))),
        None => {
            print!("{text}");
            Ok(())
        }
    }
}

fn init_logging(format: LogFormat, level: &str) {
    // sled logs each I/O error again per tree; the store reports every sled error itself.
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(format!("{level},sled=off")))
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
