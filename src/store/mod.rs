//! The sled schema: trees, key encoding, versioned values, and group commit.
//!
//! This is the only module that imports sled (0.34 is old and 1.0 is a rewrite; keeping it here
//! keeps a migration to one file). Keys are big-endian so a scan comes out in order; values are
//! one format byte followed by postcard. An alarm transition touches three trees in one
//! transaction, and callers await a [`Ticket`] to know it is on disk before they publish it.
//!
//! The alarm journal is history and MQTT outbox in one: transitions are stored in rows of up to
//! [`JOURNAL_ROW`] consecutive events keyed by the first one's sequence number, and the outbox is
//! the notified events after a delivery cursor kept in meta. sled's cost is per key written, so
//! one row per 64 events instead of two keys per event is what lets a storm be committed at the
//! README's rate (schema 1 wrote a history key and an outbox key for every transition).

mod actions;
mod backup;
mod capacity;
mod customers;
mod faults;
mod flush;
mod journal;
mod migrate;

pub use actions::Batch;
pub use backup::{BackupError, BackupSummary};
pub use customers::ImportSummary;
pub use faults::NoteRefused;
pub use flush::FlushReport;

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use prometheus::IntCounter;
use tokio_util::sync::CancellationToken;

use serde::Serialize;
use serde::de::DeserializeOwned;

use tokio::sync::{Notify, watch};

use crate::model::{Alarm, AlarmEvent, AlarmId, FaultRecord, Timestamp, Transition};

/// Schema of the trees and keys below; bump with a migration when they change.
pub const SCHEMA_VERSION: u32 = 4;
/// Encoding of values (the first byte of each).
const VALUE_FORMAT: u8 = 1;
const SCHEMA_KEY: &[u8] = b"schema_version";
const LAST_SEQ_KEY: &[u8] = b"last_seq";
/// Highest sequence number through which every notified transition is delivered (or dropped).
const OUTBOX_CURSOR_KEY: &[u8] = b"outbox_cursor";
/// Events per journal row: large enough that a storm writes few keys, small enough that reading
/// one event from the middle decodes little (a row is ≈ 11 KB).
pub const JOURNAL_ROW: usize = 64;
/// Trees of schema 1 that the migration to 2 folds into the journal.
const V1_HISTORY: &str = "alarm_history";
const V1_OUTBOX: &str = "mqtt_outbox";
/// How long a held lock is waited for before the store counts as in use.
const LOCK_GRACE: Duration = Duration::from_millis(1000);

/// The named trees. Their names are the on-disk schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tree {
    /// Active alarms by alarm id.
    ActiveAlarms,
    /// Every alarm transition, in rows of up to [`JOURNAL_ROW`] by first sequence number; also
    /// the MQTT outbox (see the module comment).
    Journal,
    /// Fault records by fault id, without their notes.
    Faults,
    /// Engineers' notes by fault id, time and a unique number: one key per note.
    FaultNotes,
    /// Per-series detector state by series key.
    DetectorState,
    /// NetFlow/IPFIX templates by exporter scope and template id.
    Templates,
    /// Maintenance windows created through the API, by name.
    Maintenance,
    /// Customers (`c` + customer key → place) and customers per place (`n` + place → count),
    /// in one tree so an import batch is atomic.
    Customers,
    /// Each service's committed state, by name.
    Services,
    /// Every service change, by the sequence number of the transition that made it and the
    /// service's name: the services' history, kept as long as the alarm journal.
    ServiceJournal,
    /// Complaints by id, written with the transitions of the batch that changed them.
    Complaints,
    /// Post-incident reports (`r` + fault id → report), their context (`c` + fault id → what
    /// the device's series showed) and their reviews (`v` + fault id → the cause and corrective
    /// action engineers wrote), removed with their faults.
    FaultReports,
    /// Automated actions (`a` + id → record) and each rule's breaker (`r` + name → state),
    /// written with the batch that decided them.
    Actions,
    /// Per-series forecaster and predictive alarm state by series key (as detector state).
    Forecasts,
    /// Each link's day of utilisation for capacity reports: series key, U+001F and the day
    /// (big-endian, so a link's days are in order) → busy hour and 5-minute averages.
    Capacity,
    /// Reboots and link downs counted for precursors, by device, object and what.
    Precursors,
    /// Schema version, run markers, counters.
    Meta,
}

impl Tree {
    const ALL: [Tree; 17] = [
        Tree::ActiveAlarms,
        Tree::Journal,
        Tree::Faults,
        Tree::FaultNotes,
        Tree::DetectorState,
        Tree::Templates,
        Tree::Maintenance,
        Tree::Customers,
        Tree::Services,
        Tree::ServiceJournal,
        Tree::Complaints,
        Tree::Actions,
        Tree::FaultReports,
        Tree::Forecasts,
        Tree::Capacity,
        Tree::Precursors,
        Tree::Meta,
    ];

    /// The on-disk tree name.
    pub fn name(self) -> &'static str {
        match self {
            Tree::ActiveAlarms => "alarms_active",
            Tree::Journal => "alarm_journal",
            Tree::Faults => "faults",
            Tree::FaultNotes => "fault_notes",
            Tree::DetectorState => "detector_state",
            Tree::Templates => "netflow_templates",
            Tree::Maintenance => "maintenance_windows",
            Tree::Customers => "customers",
            Tree::Services => "services",
            Tree::ServiceJournal => "service_journal",
            Tree::Complaints => "complaints",
            Tree::Actions => "actions",
            Tree::FaultReports => "fault_reports",
            Tree::Forecasts => "forecast_state",
            Tree::Capacity => "capacity_days",
            Tree::Precursors => "precursor_events",
            Tree::Meta => "meta",
        }
    }
}

/// What went wrong with the store, and where.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another process holds sled's exclusive lock.
    #[error("store at {} is in use by another process (is noctua running? stop it or use its HTTP API)", path.display())]
    Locked {
        /// Store directory.
        path: PathBuf,
    },
    /// The store was written by a newer noctua.
    #[error("store at {} has schema version {found}, newer than this noctua supports ({supported}); upgrade noctua", path.display())]
    NewerSchema {
        /// Store directory.
        path: PathBuf,
        /// Version found on disk.
        found: u32,
        /// Version this build writes.
        supported: u32,
    },
    /// A value could not be decoded.
    #[error("corrupt value in tree {tree}: {reason}")]
    Corrupt {
        /// Tree name.
        tree: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// A transition was computed from a state the store no longer has (a logic error upstream,
    /// or two writers); the whole transaction was rolled back.
    #[error(
        "alarm {alarm} changed underneath: expected notification {expected:?}, store has {found:?}"
    )]
    Conflict {
        /// The alarm.
        alarm: AlarmId,
        /// Notification id the writer based its change on.
        expected: Option<u64>,
        /// Notification id in the store.
        found: Option<u64>,
    },
    /// A batch's sequence numbers do not follow the store's (a logic error upstream, or two
    /// writers); nothing of the batch was written.
    #[error("transition sequence {found} does not follow {after}")]
    OutOfSequence {
        /// The sequence number that came.
        found: u64,
        /// The sequence number it had to exceed.
        after: u64,
    },
    /// An earlier I/O error left the store refusing writes until the process restarts.
    #[error("store failed earlier ({reason}); noctua restarts to recover")]
    Failed {
        /// The first error.
        reason: String,
    },
    /// An I/O or sled error.
    #[error("store at {}: {source}", path.display())]
    Sled {
        /// Store directory.
        path: PathBuf,
        /// The sled error.
        source: sled::Error,
    },
}

/// A key and its undecoded value.
pub type RawEntry = (Vec<u8>, Vec<u8>);

/// A write's place in the commit order; await it with [`Store::durable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ticket(u64);

/// sled's page cache. `cargo bench --bench store_churn` (100,000 series' state saved round
/// after round, as the detector does) measured what the store grows to for three caches: at
/// 64 MB it levelled off at 240–300 MB (two runs); at 32 MB it grew without end (1.2 GB after 36
/// rounds), and at sled's default, 1 GB, too (720 MB), while the cache itself took memory.
const CACHE_BYTES: u64 = 64 << 20;

/// The store handle; cheap to clone, shared by the stages that write.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    db: sled::Db,
    trees: Vec<sled::Tree>,
    written: AtomicU64,
    flushed: watch::Sender<u64>,
    wake: Notify,
    /// The first sled error, after which sled refuses every write (0.34 keeps an I/O error as
    /// a global error: freeing disk space does not bring it back; only reopening does).
    failure: OnceLock<String>,
    /// Fires with `failure`: the daemon stops (to be restarted) and writers stop waiting.
    failed: CancellationToken,
    /// Counts every sled error, once the pipeline has handed in its counter.
    errors: OnceLock<IntCounter>,
    /// Notified transitions after the outbox cursor; counted at open, then kept by the writers.
    outbox_depth: AtomicU64,
    /// The highest sequence number committed (in sled's memory, not yet on disk).
    committed_seq: AtomicU64,
    /// The highest sequence number on disk: what publishers may see (the durability gate).
    durable_seq: AtomicU64,
}

impl Store {
    /// Whether a store exists at `path` (sled's data file is there); the CLI opens only these,
    /// so a mistyped path never leaves an empty store behind.
    pub fn exists(path: &Path) -> bool {
        path.join("db").is_file()
    }

    /// Opens (creating if needed) the store at `path` and checks its schema version.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let sled_err = |source| StoreError::Sled {
            path: path.to_owned(),
            source,
        };
        // A process that is just exiting (or a handle just dropped in this one) releases
        // sled's lock a few milliseconds late; wait that long before calling the store taken.
        let deadline = Instant::now() + LOCK_GRACE;
        let db = loop {
            let opened = sled::Config::new()
                .path(path)
                // Group commit below decides when to flush; sled's own timer would only add
                // writes.
                .flush_every_ms(None)
                .cache_capacity(CACHE_BYTES)
                .open();
            match opened {
                Ok(db) => break db,
                Err(sled::Error::Io(ref io))
                    if io.to_string().contains("could not acquire lock") =>
                {
                    if Instant::now() >= deadline {
                        return Err(StoreError::Locked {
                            path: path.to_owned(),
                        });
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(other) => return Err(sled_err(other)),
            }
        };
        let trees = Tree::ALL
            .iter()
            .map(|t| db.open_tree(t.name()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(sled_err)?;
        let store = Self {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                db,
                trees,
                written: AtomicU64::new(0),
                flushed: watch::Sender::new(0),
                wake: Notify::new(),
                failure: OnceLock::new(),
                failed: CancellationToken::new(),
                errors: OnceLock::new(),
                outbox_depth: AtomicU64::new(0),
                committed_seq: AtomicU64::new(0),
                durable_seq: AtomicU64::new(0),
            }),
        };
        store.check_schema()?;
        let mut depth = 0u64;
        store.visit_journal(store.outbox_cursor()?, |e| {
            depth += u64::from(e.notified);
            ControlFlow::Continue(())
        })?;
        store.inner.outbox_depth.store(depth, Ordering::Relaxed);
        // What a store holds at open is on disk.
        let last = store.last_seq()?;
        store.inner.committed_seq.store(last, Ordering::Release);
        store.inner.durable_seq.store(last, Ordering::Release);
        Ok(store)
    }

    fn check_schema(&self) -> Result<(), StoreError> {
        let meta = self.tree(Tree::Meta);
        let found = meta.get(SCHEMA_KEY).map_err(|e| self.sled_err(e))?;
        match found {
            None => {
                meta.insert(SCHEMA_KEY, &SCHEMA_VERSION.to_be_bytes())
                    .map_err(|e| self.sled_err(e))?;
                self.inner.db.flush().map_err(|e| self.sled_err(e))?;
            }
            Some(v) => {
                let found = <[u8; 4]>::try_from(v.as_ref())
                    .map(u32::from_be_bytes)
                    .map_err(|_| StoreError::Corrupt {
                        tree: Tree::Meta.name(),
                        reason: "schema_version is not 4 bytes".to_owned(),
                    })?;
                if found > SCHEMA_VERSION {
                    return Err(StoreError::NewerSchema {
                        path: self.inner.path.clone(),
                        found,
                        supported: SCHEMA_VERSION,
                    });
                }
                if found == 1 {
                    self.migrate_from_1()?;
                }
                if found <= 2 {
                    self.migrate_from_2()?;
                }
                if found <= 3 {
                    self.migrate_from_3()?;
                }
            }
        }
        // A migration interrupted after its version was written leaves these behind; dropping
        // a tree that does not exist writes nothing.
        for legacy in [V1_HISTORY, V1_OUTBOX] {
            self.inner
                .db
                .drop_tree(legacy)
                .map_err(|e| self.sled_err(e))?;
        }
        Ok(())
    }

    /// Store directory.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    fn tree(&self, t: Tree) -> &sled::Tree {
        // `trees` was built from `Tree::ALL` in order, so every variant's index exists.
        &self.inner.trees[t as usize]
    }

    /// The one place a sled error enters: it is counted, and the first one that poisons sled
    /// fails the store (logged once, so a full disk does not flood the log).
    fn sled_err(&self, source: sled::Error) -> StoreError {
        if let Some(c) = self.inner.errors.get() {
            c.inc();
        }
        // An I/O error, corruption or a sled bug leaves sled refusing writes; a misuse
        // (`CollectionNotFound`, `Unsupported`) does not, and fails only its caller.
        let poisons = matches!(
            source,
            sled::Error::Io(_) | sled::Error::Corruption { .. } | sled::Error::ReportableBug(_)
        );
        if poisons && self.inner.failure.set(source.to_string()).is_ok() {
            tracing::error!(path = %self.inner.path.display(), error = %source,
                "store write failed (disk full?); sled refuses writes from now on, so noctua \
                 stops and its service manager restarts it: what was flushed is kept");
            self.inner.failed.cancel();
        }
        StoreError::Sled {
            path: self.inner.path.clone(),
            source,
        }
    }

    /// Why the store refuses writes, once it does.
    pub fn failure(&self) -> Option<&str> {
        self.inner.failure.get().map(String::as_str)
    }

    /// Fires when the store fails (see [`Store::failure`]).
    pub fn failed(&self) -> CancellationToken {
        self.inner.failed.clone()
    }

    /// Refuses a write at once on a failed store, rather than asking sled again.
    fn writable(&self) -> Result<(), StoreError> {
        match self.failure() {
            Some(reason) => Err(StoreError::Failed {
                reason: reason.to_owned(),
            }),
            None => Ok(()),
        }
    }

    /// Counts every sled error in `counter` from now on.
    pub fn count_errors_in(&self, counter: IntCounter) {
        let _ = self.inner.errors.set(counter);
    }

    /// Reads one versioned value.
    pub fn get<T: DeserializeOwned>(
        &self,
        tree: Tree,
        key: &[u8],
    ) -> Result<Option<T>, StoreError> {
        let raw = self.tree(tree).get(key).map_err(|e| self.sled_err(e))?;
        raw.map(|v| decode(tree, &v)).transpose()
    }

    /// Writes one versioned value; durable after the returned ticket is.
    pub fn put<T: Serialize>(
        &self,
        tree: Tree,
        key: &[u8],
        value: &T,
    ) -> Result<Ticket, StoreError> {
        self.writable()?;
        let bytes = encode(tree, value)?;
        self.tree(tree)
            .insert(key, bytes)
            .map_err(|e| self.sled_err(e))?;
        Ok(self.written())
    }

    /// Writes (`Some`) and removes (`None`) many keys of one tree in one batch: one write to
    /// sled's log instead of one per key. Durable after the returned ticket is.
    pub fn write_batch<'a, T: Serialize + 'a>(
        &self,
        tree: Tree,
        items: impl IntoIterator<Item = (Vec<u8>, Option<&'a T>)>,
    ) -> Result<Ticket, StoreError> {
        self.writable()?;
        let mut batch = sled::Batch::default();
        for (key, value) in items {
            match value {
                Some(v) => batch.insert(key, encode(tree, v)?),
                None => batch.remove(key),
            }
        }
        self.tree(tree)
            .apply_batch(batch)
            .map_err(|e| self.sled_err(e))?;
        Ok(self.written())
    }

    /// Removes one key; returns whether it was there. Durable after the returned ticket is.
    pub fn remove(&self, tree: Tree, key: &[u8]) -> Result<(bool, Ticket), StoreError> {
        self.writable()?;
        let old = self.tree(tree).remove(key).map_err(|e| self.sled_err(e))?;
        Ok((old.is_some(), self.written()))
    }

    /// All values of a tree in key order.
    pub fn scan<T: DeserializeOwned>(&self, tree: Tree) -> Result<Vec<T>, StoreError> {
        self.each(tree).collect()
    }

    /// The values of a tree in key order, decoded one at a time: for readers that keep only
    /// some of them, so a long tree is never all in memory at once.
    pub fn each<T: DeserializeOwned>(
        &self,
        tree: Tree,
    ) -> impl Iterator<Item = Result<T, StoreError>> + '_ {
        self.tree(tree)
            .iter()
            .values()
            .map(move |v| decode(tree, &v.map_err(|e| self.sled_err(e))?))
    }

    /// Every key and raw value of a tree, for callers that decode entry by entry and skip
    /// what they no longer understand.
    pub fn scan_raw(&self, tree: Tree) -> Result<Vec<RawEntry>, StoreError> {
        self.tree(tree)
            .iter()
            .map(|kv| {
                let (k, v) = kv.map_err(|e| self.sled_err(e))?;
                Ok((k.to_vec(), v.to_vec()))
            })
            .collect()
    }

    /// Number of entries in a tree.
    pub fn len(&self, tree: Tree) -> usize {
        self.tree(tree).len()
    }

    /// Whether the tree is empty.
    pub fn is_empty(&self, tree: Tree) -> bool {
        self.tree(tree).is_empty()
    }

    /// The highest sequence number committed so far (0 for an empty store). Kept in meta by
    /// every commit, so retention and a drained outbox can never make a sequence number reused.
    pub fn last_seq(&self) -> Result<u64, StoreError> {
        self.meta_u64(LAST_SEQ_KEY)
    }

    /// A big-endian u64 kept in meta (0 when absent).
    fn meta_u64(&self, key: &[u8]) -> Result<u64, StoreError> {
        let raw = self
            .tree(Tree::Meta)
            .get(key)
            .map_err(|e| self.sled_err(e))?;
        match raw {
            None => Ok(0),
            Some(v) => <[u8; 8]>::try_from(v.as_ref())
                .map(u64::from_be_bytes)
                .map_err(|_| StoreError::Corrupt {
                    tree: Tree::Meta.name(),
                    reason: format!("{} is not 8 bytes", String::from_utf8_lossy(key)),
                }),
        }
    }

    /// A new id, unique for the life of the store (sled persists the counter).
    pub fn generate_id(&self) -> Result<u64, StoreError> {
        self.inner.db.generate_id().map_err(|e| self.sled_err(e))
    }

    /// Bytes the store occupies on disk.
    pub fn size_on_disk(&self) -> u64 {
        self.inner.db.size_on_disk().unwrap_or(0)
    }
}

/// Encodes a value as the format byte followed by postcard.
pub fn encode<T: Serialize>(tree: Tree, value: &T) -> Result<Vec<u8>, StoreError> {
    let mut out = vec![VALUE_FORMAT];
    postcard::to_io(value, &mut out).map_err(|e| StoreError::Corrupt {
        tree: tree.name(),
        reason: format!("cannot encode: {e}"),
    })?;
    Ok(out)
}

/// Decodes a value written by [`encode`], refusing unknown formats.
pub fn decode<T: DeserializeOwned>(tree: Tree, bytes: &[u8]) -> Result<T, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        tree: tree.name(),
        reason,
    };
    match bytes.split_first() {
        Some((&VALUE_FORMAT, rest)) => {
            postcard::from_bytes(rest).map_err(|e| corrupt(format!("cannot decode: {e}")))
        }
        Some((other, _)) => Err(corrupt(format!("unknown value format {other}"))),
        None => Err(corrupt("empty value".to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn values_round_trip(v in any::<(u64, String, Option<i64>)>()) {
            let bytes = encode(Tree::Meta, &v).unwrap();
            prop_assert_eq!(bytes[0], VALUE_FORMAT);
            prop_assert_eq!(decode::<(u64, String, Option<i64>)>(Tree::Meta, &bytes).unwrap(), v);
        }

        #[test]
        fn decode_never_panics_on_garbage(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode::<Vec<AlarmEvent>>(Tree::Journal, &bytes);
        }
    }

    #[test]
    fn unknown_value_format_is_refused() {
        let err = decode::<u64>(Tree::Meta, &[9, 1]).unwrap_err();
        assert!(err.to_string().contains("unknown value format 9"), "{err}");
    }
}
