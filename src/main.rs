//! The `noctua` command line: parse, set up logging, call into the library.
//!
//! Exit codes: 0 ok, 1 runtime failure, 2 usage or config error.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use noctua::config::{self, ConfigSource};
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
    /// Print the version.
    Version,
}

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
    }
}

fn run(flag: Option<PathBuf>) -> ExitCode {
    let source = ConfigSource::locate(
        flag,
        std::env::var_os("NOCTUA_CONFIG"),
        std::path::Path::new(config::SYSTEM_PATH),
    );
    let config = match source.load() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(EXIT_CONFIG);
        }
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
