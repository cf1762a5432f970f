//! Where the CLI finds the daemon's data, one lookup for every command: the config by the
//! daemon's lookup order, then the daemon's API when `--server`/`$NOCTUA_SERVER` names it, else
//! the store the config names (resolved like the daemon, `$STATE_DIRECTORY` included) if it
//! exists and is free, else the daemon's API at the config's `http.listen` with its token.
//! A command never creates a store: a missing one is an error naming where it looked.
//!
//! `noctua mttr` and `noctua faults` read and write through [`Records`]; both paths use the same
//! windows ([`fault::reports`]) and filters ([`FaultFilter`]), so they answer alike.

use crate::config::{Config, ConfigError, ConfigSource};
use crate::fault::incident::ReportFormat;
use crate::fault::monthly::{MonthRow, monthly};
use crate::fault::{self, FaultFilter, GroupBy, Report};
use crate::model::{
    ActionRecord, CapacityBy, FaultId, FaultRecord, LinkCapacity, Note, NoteError, Timestamp,
};
use crate::northbound::client::{ApiClient, ClientError};
use crate::northbound::{capacity, incident};
use crate::store::{NoteRefused, Store, StoreError};

/// Why a records command failed.
#[derive(Debug, thiserror::Error)]
pub enum RecordsError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The daemon's API failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The daemon answered with something that is not what was asked for.
    #[error("unexpected answer from the daemon: {0}")]
    Answer(#[from] serde_json::Error),
    /// No fault with that id.
    #[error("no fault {0}")]
    NoFault(u64),
    /// The fault has this many notes, the most allowed.
    #[error("fault has {0} notes, the most allowed (alarms.max-notes-per-fault)")]
    NotesFull(usize),
    /// A review was refused.
    #[error("{0}")]
    Review(String),
    /// A backup could not be written.
    #[error("backup: {0}")]
    Backup(String),
    /// Neither a store nor a daemon where the config says.
    #[error(
        "no store at {} and no daemon answering at {server} (config: {config}); is noctua \
         running? Give its address with --server or $NOCTUA_SERVER, or the config with --config",
        path.display()
    )]
    Nowhere {
        /// The store path looked at.
        path: std::path::PathBuf,
        /// The API address tried.
        server: String,
        /// Which config said so.
        config: String,
    },
    /// The note is not one that may be written.
    #[error(transparent)]
    Note(#[from] NoteError),
    /// The config is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// The fault records of one store, read directly or through the daemon that holds it.
pub enum Records {
    /// A stopped daemon's store, and the config (limits on notes, report settings).
    Store(Store, Box<Config>),
    /// The running daemon's API.
    Api(ApiClient),
}

/// How many faults one listing through the API asks for.
const API_LIMIT: &str = "5000";

impl RecordsError {
    /// Whether the command line or the config was at fault, rather than the daemon or store.
    pub fn is_usage(&self) -> bool {
        match self {
            RecordsError::Config(_) => true,
            RecordsError::Client(c) => c.is_usage(),
            _ => false,
        }
    }
}

/// What the command line says about where the daemon is; unset fields come from the
/// environment, then the config.
#[derive(Debug, Default, Clone)]
pub struct Lookup {
    /// `--config`.
    pub config: Option<std::path::PathBuf>,
    /// `--server` (else `$NOCTUA_SERVER`).
    pub server: Option<String>,
    /// `--token-file` (else `$NOCTUA_TOKEN`, else the config's token).
    pub token_file: Option<std::path::PathBuf>,
}

impl Lookup {
    /// The config, the daemon's address and the token, by the one lookup order.
    fn resolve(self) -> Result<Resolved, RecordsError> {
        let source = ConfigSource::from_environment(self.config);
        let config = source.load()?;
        let var = |k| std::env::var(k).ok().filter(|v: &String| !v.is_empty());
        let named = self.server.or_else(|| var("NOCTUA_SERVER"));
        let token = match self.token_file {
            Some(path) => Some(
                crate::config::Secret::from_file(&path)
                    .map_err(|source| ClientError::TokenFile { path, source })?
                    .expose()
                    .to_owned(),
            ),
            None => var("NOCTUA_TOKEN")
                .or_else(|| config.http.token.as_ref().map(|t| t.expose().to_owned()))
                .or_else(package_token),
        };
        Ok(Resolved {
            server: named
                .clone()
                .unwrap_or_else(|| local_url(config.http.listen)),
            named: named.is_some(),
            token,
            source: source.to_string(),
            config,
        })
    }

    /// The store path the config names, resolved as the daemon resolves it (for a restore).
    pub fn store_path(self) -> Result<std::path::PathBuf, RecordsError> {
        let r = self.resolve()?;
        let state_dir = std::env::var_os("STATE_DIRECTORY").map(std::path::PathBuf::from);
        Ok(r.config.store.resolved_path(state_dir.as_deref()))
    }

    /// The daemon's API, for commands that only it can answer (`noctua alarms`).
    pub fn api(self) -> Result<ApiClient, RecordsError> {
        let r = self.resolve()?;
        Ok(ApiClient::new(&r.server, r.token).explaining(r.source))
    }
}

struct Resolved {
    config: Config,
    server: String,
    /// Whether `--server` or `$NOCTUA_SERVER` named it (then it wins over the store).
    named: bool,
    token: Option<String>,
    source: String,
}

/// Where the Debian package keeps the API token (handed to the service as a systemd
/// credential); the CLI, run as root, reads it when nothing else gives a token.
pub const PACKAGE_TOKEN_FILE: &str = "/etc/noctua/http.token";

fn package_token() -> Option<String> {
    crate::config::Secret::from_file(std::path::Path::new(PACKAGE_TOKEN_FILE))
        .ok()
        .map(|t| t.expose().to_owned())
}

/// The URL of a listen address from this machine (a wildcard address is reached on loopback).
fn local_url(listen: std::net::SocketAddr) -> String {
    let ip = match listen.ip() {
        std::net::IpAddr::V4(a) if a.is_unspecified() => std::net::Ipv4Addr::LOCALHOST.into(),
        std::net::IpAddr::V6(a) if a.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
        ip => ip,
    };
    format!("http://{}", std::net::SocketAddr::new(ip, listen.port()))
}

impl Records {
    /// The records the lookup finds (see the module comment). The second value says which was
    /// chosen when it was not the store, for the user.
    pub fn find(lookup: Lookup) -> Result<(Self, Option<String>), RecordsError> {
        let r = lookup.resolve()?;
        let api =
            |r: &Resolved| ApiClient::new(&r.server, r.token.clone()).explaining(r.source.clone());
        if r.named {
            return Ok((Records::Api(api(&r)), None));
        }
        let state_dir = std::env::var_os("STATE_DIRECTORY").map(std::path::PathBuf::from);
        let path = r.config.store.resolved_path(state_dir.as_deref());
        if !Store::exists(&path) {
            // A daemon under systemd keeps its store in its own state directory.
            let client = api(&r);
            if client.answers() {
                let notice = format!(
                    "no store at {}; asking the daemon at {}",
                    path.display(),
                    r.server
                );
                return Ok((Records::Api(client), Some(notice)));
            }
            return Err(RecordsError::Nowhere {
                path,
                server: r.server,
                config: r.source,
            });
        }
        match Store::open(&path) {
            Ok(store) => Ok((Records::Store(store, Box::new(r.config)), None)),
            Err(StoreError::Locked { .. }) => {
                let notice = format!(
                    "the running daemon holds the store; asking it at {}",
                    r.server
                );
                Ok((Records::Api(api(&r)), Some(notice)))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// A backup of the whole store into `out`: read directly, or from the running daemon
    /// (which holds its alarm stage still meanwhile). Returns the bytes written.
    pub fn backup(&self, out: &mut impl std::io::Write) -> Result<u64, RecordsError> {
        match self {
            Records::Store(store, _) => {
                let mut counted = Counted(out, 0);
                store.backup(&mut counted).map_err(|e| match e {
                    crate::store::BackupError::Store(s) => RecordsError::Store(s),
                    other => RecordsError::Backup(other.to_string()),
                })?;
                Ok(counted.1)
            }
            Records::Api(api) => Ok(api.download("/api/v1/store/backup", out)?),
        }
    }

    /// What is wrong with the store, one line each (none: sound).
    pub fn check(&self) -> Result<Vec<String>, RecordsError> {
        match self {
            Records::Store(store, _) => Ok(store.check()?),
            Records::Api(api) => {
                let answer = api.get("/api/v1/store/check", &[])?;
                Ok(serde_json::from_value(answer["problems"].clone())?)
            }
        }
    }

    /// MTTR reports: the rolling windows, or `[since, until)`.
    pub fn mttr(
        &self,
        by: GroupBy,
        since: Option<Timestamp>,
        until: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<Vec<Report>, RecordsError> {
        match self {
            Records::Store(store, _) => Ok(fault::reports(&store.faults()?, by, since, until, now)),
            Records::Api(api) => {
                let query = [
                    ("by", Some(by.to_string())),
                    ("since", since.map(|t| t.to_string())),
                    ("until", until.map(|t| t.to_string())),
                ];
                Ok(serde_json::from_value(api.get("/api/v1/mttr", &query)?)?)
            }
        }
    }

    /// The faults that pass `filter`, oldest first.
    pub fn faults(&self, filter: &FaultFilter) -> Result<Vec<FaultRecord>, RecordsError> {
        let mut faults = match self {
            Records::Store(store, _) => filter.newest_first(store.faults()?),
            Records::Api(api) => {
                let query = [
                    ("open", Some(filter.open.to_string())),
                    ("limit", Some(API_LIMIT.to_owned())),
                    ("device", filter.device.clone()),
                    ("since", filter.since.map(|t| t.to_string())),
                ];
                let page = api.get("/api/v1/faults", &query)?;
                serde_json::from_value(page["items"].clone())?
            }
        };
        faults.reverse();
        Ok(faults)
    }

    /// One fault record.
    pub fn fault(&self, id: u64) -> Result<FaultRecord, RecordsError> {
        match self {
            Records::Store(store, _) => store.fault(FaultId(id))?.ok_or(RecordsError::NoFault(id)),
            Records::Api(api) => Ok(serde_json::from_value(
                api.get(&format!("/api/v1/faults/{id}"), &[])?,
            )?),
        }
    }

    /// The actions taken on a fault, oldest first: its automated-handling audit trail.
    pub fn actions_of_fault(&self, id: u64) -> Result<Vec<ActionRecord>, RecordsError> {
        match self {
            Records::Store(store, _) => Ok(store.actions_of_fault(FaultId(id))?),
            Records::Api(api) => {
                let v = api.get(
                    "/api/v1/actions",
                    &[
                        ("fault", Some(id.to_string())),
                        ("limit", Some("10000".into())),
                    ],
                )?;
                let mut items: Vec<ActionRecord> = serde_json::from_value(v["items"].clone())?;
                items.reverse();
                Ok(items)
            }
        }
    }

    /// MTTA and MTTR month by month, the last `months` up to `now`'s.
    pub fn monthly(&self, months: usize, now: Timestamp) -> Result<Vec<MonthRow>, RecordsError> {
        match self {
            Records::Store(store, _) => Ok(monthly(&store.faults()?, months, now)),
            Records::Api(api) => Ok(serde_json::from_value(api.get(
                "/api/v1/mttr/monthly",
                &[("months", Some(months.to_string()))],
            )?)?),
        }
    }

    /// Every link direction's capacity figures, grouped by `by`.
    pub fn capacity(&self, by: CapacityBy) -> Result<Vec<LinkCapacity>, RecordsError> {
        match self {
            Records::Store(store, config) => Ok(capacity::links(store, config, by)?),
            Records::Api(api) => Ok(serde_json::from_value(
                api.get("/api/v1/capacity", &[("by", Some(by.name().to_owned()))])?,
            )?),
        }
    }

    /// The post-incident report of a fault, rendered.
    pub fn report(&self, id: u64, format: ReportFormat) -> Result<String, RecordsError> {
        match self {
            Records::Store(store, config) => {
                let r = incident::report_of(store, config, FaultId(id), Timestamp::now())?
                    .ok_or(RecordsError::NoFault(id))?;
                Ok(crate::fault::incident::render(&r, format))
            }
            Records::Api(api) => Ok(api.get_text(
                &format!("/api/v1/faults/{id}/report"),
                &[("format", Some(format.name().to_owned()))],
            )?),
        }
    }

    /// Writes what the review of a fault concluded; durable when this returns.
    pub fn review(
        &self,
        id: u64,
        by: &str,
        cause: Option<String>,
        corrective_action: Option<String>,
    ) -> Result<(), RecordsError> {
        match self {
            Records::Store(store, _) => {
                match incident::write_review(
                    store,
                    FaultId(id),
                    by,
                    cause,
                    corrective_action,
                    Timestamp::now(),
                ) {
                    Ok(_) => store.flush()?,
                    Err(incident::ReviewError::NoFault) => return Err(RecordsError::NoFault(id)),
                    Err(incident::ReviewError::Store(e)) => return Err(e.into()),
                    Err(e) => return Err(RecordsError::Review(e.to_string())),
                }
            }
            Records::Api(api) => {
                let body = serde_json::json!({
                    "by": by, "cause": cause, "correctiveAction": corrective_action,
                });
                api.post(&format!("/api/v1/faults/{id}/review"), &body)?;
            }
        }
        Ok(())
    }

    /// Adds a note to a fault, open or closed; durable when this returns.
    pub fn note(&self, id: u64, by: &str, text: &str) -> Result<(), RecordsError> {
        match self {
            Records::Store(store, config) => {
                let limits = config.alarms.note_limits();
                let note = Note::new(Timestamp::now(), by, text, limits)?;
                match store.add_note(FaultId(id), &note, limits.per_fault)? {
                    Ok(_) => store.flush()?,
                    Err(NoteRefused::NoFault) => return Err(RecordsError::NoFault(id)),
                    Err(NoteRefused::Full(n)) => return Err(RecordsError::NotesFull(n)),
                }
            }
            Records::Api(api) => {
                let body = serde_json::json!({ "by": by, "text": text });
                api.post(&format!("/api/v1/faults/{id}/notes"), &body)?;
            }
        }
        Ok(())
    }
}

/// A writer that counts what goes through it.
struct Counted<'a, W>(&'a mut W, u64);

impl<W: std::io::Write> std::io::Write for Counted<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.0.write(buf)?;
        self.1 += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}
