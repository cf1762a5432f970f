//! Where `noctua mttr` and `noctua faults` read and write: a stopped daemon's store, or, while
//! the daemon runs and holds the store, its HTTP API. Both paths use the same windows
//! ([`fault::reports`]) and filters ([`FaultFilter`]), so they answer alike.

use crate::config::{Config, ConfigError, ConfigSource};
use crate::fault::{self, FaultFilter, GroupBy, Report};
use crate::model::{FaultId, FaultRecord, Note, NoteError, NoteLimits, Timestamp};
use crate::northbound::client::{ApiClient, ClientError};
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
    /// The note is not one that may be written.
    #[error(transparent)]
    Note(#[from] NoteError),
    /// The config is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// The fault records of one store, read directly or through the daemon that holds it.
pub enum Records {
    /// A stopped daemon's store, and the config's limits on notes written to it.
    Store(Store, NoteLimits),
    /// The running daemon's API.
    Api(ApiClient),
}

/// How many faults one listing through the API asks for.
const API_LIMIT: &str = "5000";

impl Records {
    /// The store the config names (under `state_dir` if relative and set), or, if a running
    /// daemon holds it, that daemon's API at `server` (else the config's `http.listen`) with
    /// `token` (else the config's). The second value says which was chosen, for the user.
    pub fn open(
        config: &Config,
        state_dir: Option<&std::path::Path>,
        server: Option<String>,
        token: Option<String>,
    ) -> Result<(Self, Option<String>), StoreError> {
        let path = config.store.resolved_path(state_dir);
        match Store::open(&path) {
            Ok(store) => Ok((Records::Store(store, config.alarms.note_limits()), None)),
            Err(StoreError::Locked { .. }) => {
                let server = server.unwrap_or_else(|| format!("http://{}", config.http.listen));
                let token =
                    token.or_else(|| config.http.token.as_ref().map(|t| t.expose().to_owned()));
                let notice = format!("the running daemon holds the store; asking it at {server}");
                Ok((Records::Api(ApiClient::new(&server, token)), Some(notice)))
            }
            Err(e) => Err(e),
        }
    }

    /// [`Records::open`] as the CLI does it: the config by the daemon's lookup order
    /// (`flag`, `$NOCTUA_CONFIG`, /etc, embedded), relative store paths under
    /// `$STATE_DIRECTORY`, the daemon at `$NOCTUA_SERVER`, writes with `$NOCTUA_TOKEN` (each
    /// when set).
    pub fn from_environment(
        flag: Option<std::path::PathBuf>,
    ) -> Result<(Self, Option<String>), RecordsError> {
        let config = ConfigSource::from_environment(flag).load()?;
        let var = |k| std::env::var(k).ok().filter(|v: &String| !v.is_empty());
        let state_dir = std::env::var_os("STATE_DIRECTORY").map(std::path::PathBuf::from);
        let (server, token) = (var("NOCTUA_SERVER"), var("NOCTUA_TOKEN"));
        Ok(Self::open(&config, state_dir.as_deref(), server, token)?)
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

    /// Adds a note to a fault, open or closed; durable when this returns.
    pub fn note(&self, id: u64, by: &str, text: &str) -> Result<(), RecordsError> {
        match self {
            Records::Store(store, limits) => {
                let note = Note::new(Timestamp::now(), by, text, *limits)?;
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
