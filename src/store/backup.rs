//! Backup, restore and check of a store.
//!
//! A backup is every key and value of every tree, in a file of its own simple format (so it
//! does not depend on sled's on-disk layout, and a restore works into any later noctua that
//! reads the schema): `NOCTUA-BACKUP-1\n`, the schema version (u32 BE), then entries of tree
//! name (u8 length + bytes), key and value (u32 BE length + bytes each), then a zero-length
//! name, the entry count (u64 BE) and an xxh3 of everything before it (u64 BE). A restore
//! checks all of it before it writes anything.

use std::io::{Read, Write};
use std::ops::ControlFlow;
use std::path::Path;

use super::{SCHEMA_KEY, SCHEMA_VERSION, Store, StoreError, Tree, decode};
use crate::model::{
    ActionRecord, Alarm, AlarmEvent, Complaint, Context, FaultRecord, IncidentReport,
    MaintenanceConfig, Note, Place, Review, RuleState, ServiceState,
};

const MAGIC: &[u8] = b"NOCTUA-BACKUP-1\n";

/// What a backup or a restore moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupSummary {
    /// Schema version of the data.
    pub schema: u32,
    /// Keys, over all trees.
    pub entries: u64,
    /// Bytes of keys and values.
    pub bytes: u64,
}

impl std::fmt::Display for BackupSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} entries, {} bytes, schema {}",
            self.entries, self.bytes, self.schema
        )
    }
}

/// Why a backup file cannot be restored.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// Reading or writing the file.
    #[error("backup file: {0}")]
    Io(#[from] std::io::Error),
    /// Not a backup, cut short, or changed since it was written.
    #[error("not a whole noctua backup: {0}")]
    Damaged(String),
    /// Written by a newer noctua.
    #[error(
        "the backup has schema {found}, newer than this noctua supports ({SCHEMA_VERSION}); restore it with the noctua that wrote it"
    )]
    Newer {
        /// Its schema.
        found: u32,
    },
    /// The target already holds a store.
    #[error("{} already holds a store; move it away first (a restore never overwrites)", .0.display())]
    Exists(std::path::PathBuf),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Store {
    /// Writes every tree to `out` as a backup. Trees are read one after another: to be
    /// consistent across the alarm trees, the daemon pauses its alarm stage around this.
    pub fn backup(&self, out: &mut impl Write) -> Result<BackupSummary, BackupError> {
        let mut w = Hashed::new(out);
        w.put(MAGIC)?;
        w.put(&SCHEMA_VERSION.to_be_bytes())?;
        let (mut entries, mut bytes) = (0u64, 0u64);
        for tree in Tree::ALL {
            let name = tree.name().as_bytes();
            for item in self.tree(tree).iter() {
                let (k, v) = item.map_err(|e| self.sled_err(e))?;
                w.put(&[name.len() as u8])?;
                w.put(name)?;
                for part in [&k[..], &v[..]] {
                    w.put(&(part.len() as u32).to_be_bytes())?;
                    w.put(part)?;
                }
                entries += 1;
                bytes += (k.len() + v.len()) as u64;
            }
        }
        w.put(&[0])?;
        w.put(&entries.to_be_bytes())?;
        let sum = w.hasher.digest();
        w.out.write_all(&sum.to_be_bytes())?;
        w.out.flush()?;
        Ok(BackupSummary {
            schema: SCHEMA_VERSION,
            entries,
            bytes,
        })
    }

    /// Restores a backup into a new store at `path` (which must not hold one), migrating it
    /// if its schema is older; the whole file is checked before anything is written.
    pub fn restore(path: &Path, input: &mut impl Read) -> Result<BackupSummary, BackupError> {
        if Store::exists(path) {
            return Err(BackupError::Exists(path.to_owned()));
        }
        let mut data = Vec::new();
        input.read_to_end(&mut data)?;
        let (schema, entries) = parse(&data)?;
        if schema > SCHEMA_VERSION {
            return Err(BackupError::Newer { found: schema });
        }
        let bytes = entries
            .iter()
            .map(|(_, k, v)| (k.len() + v.len()) as u64)
            .sum();
        {
            // Raw sled, as the backup's own schema; opening it as a Store migrates it after.
            let db = sled::Config::new()
                .path(path)
                .open()
                .map_err(|source| StoreError::Sled {
                    path: path.to_owned(),
                    source,
                })?;
            let sled_err = |source| StoreError::Sled {
                path: path.to_owned(),
                source,
            };
            for (tree, k, v) in &entries {
                db.open_tree(tree)
                    .and_then(|t| t.insert(k, *v))
                    .map_err(sled_err)?;
            }
            db.flush().map_err(sled_err)?;
        }
        Store::open(path)?;
        Ok(BackupSummary {
            schema,
            entries: entries.len() as u64,
            bytes,
        })
    }

    /// Checks that every value decodes as its tree's type and that the trees agree: what an
    /// operator runs after a restore or a crash. Returns one line per problem (none: sound).
    pub fn check(&self) -> Result<Vec<String>, StoreError> {
        let mut problems = Vec::new();
        let found = self
            .tree(Tree::Meta)
            .get(SCHEMA_KEY)
            .map_err(|e| self.sled_err(e))?;
        let schema = found
            .and_then(|v| <[u8; 4]>::try_from(v.as_ref()).ok())
            .map(u32::from_be_bytes);
        if schema != Some(SCHEMA_VERSION) {
            problems.push(format!(
                "schema version {schema:?}, expected {SCHEMA_VERSION}"
            ));
        }
        let mut undecodable = |tree: Tree, ok: fn(&[u8]) -> bool| -> Result<(), StoreError> {
            let bad = self.scan_raw(tree)?.iter().filter(|(_, v)| !ok(v)).count();
            if bad > 0 {
                problems.push(format!("{bad} values in {} do not decode", tree.name()));
            }
            Ok(())
        };
        undecodable(Tree::ActiveAlarms, |v| {
            decode::<Alarm>(Tree::ActiveAlarms, v).is_ok()
        })?;
        undecodable(Tree::Journal, |v| {
            decode::<Vec<AlarmEvent>>(Tree::Journal, v).is_ok()
        })?;
        undecodable(Tree::Faults, |v| {
            decode::<FaultRecord>(Tree::Faults, v).is_ok()
        })?;
        undecodable(Tree::FaultNotes, |v| {
            decode::<Note>(Tree::FaultNotes, v).is_ok()
        })?;
        undecodable(Tree::Maintenance, |v| {
            decode::<MaintenanceConfig>(Tree::Maintenance, v).is_ok()
        })?;
        undecodable(Tree::Services, |v| {
            decode::<ServiceState>(Tree::Services, v).is_ok()
        })?;
        undecodable(Tree::ServiceJournal, |v| {
            decode::<ServiceState>(Tree::ServiceJournal, v).is_ok()
        })?;
        undecodable(Tree::Complaints, |v| {
            decode::<Complaint>(Tree::Complaints, v).is_ok()
        })?;
        undecodable(Tree::FaultReports, |v| {
            decode::<IncidentReport>(Tree::FaultReports, v).is_ok()
                || decode::<Review>(Tree::FaultReports, v).is_ok()
                || decode::<Context>(Tree::FaultReports, v).is_ok()
        })?;
        undecodable(Tree::Actions, |v| {
            decode::<ActionRecord>(Tree::Actions, v).is_ok()
                || decode::<RuleState>(Tree::Actions, v).is_ok()
        })?;
        // A bucket of customers, a place, a place's number or its count.
        undecodable(Tree::Customers, |v| {
            decode::<Vec<(Vec<u8>, u32)>>(Tree::Customers, v).is_ok()
                || decode::<Place>(Tree::Customers, v).is_ok()
                || decode::<u64>(Tree::Customers, v).is_ok()
        })?;
        // The journal's sequence numbers rise, and none is past the recorded last one.
        let last = self.last_seq()?;
        let (mut previous, mut disorder) = (0u64, 0usize);
        self.visit_journal(0, |e| {
            disorder += usize::from(e.seq <= previous);
            previous = e.seq;
            ControlFlow::Continue(())
        })?;
        if disorder > 0 {
            problems.push(format!("{disorder} journal events out of sequence"));
        }
        if previous > last {
            problems.push(format!(
                "journal reaches seq {previous}, past last_seq {last}"
            ));
        }
        // Every active alarm has its open fault.
        let faults: Vec<FaultRecord> = self.scan(Tree::Faults).unwrap_or_default();
        let active: Vec<Alarm> = self.scan(Tree::ActiveAlarms).unwrap_or_default();
        let orphans = active
            .iter()
            .filter(|a| {
                !faults
                    .iter()
                    .any(|f| f.alarm_id == a.alarm_id && f.cleared_at.is_none())
            })
            .count();
        if orphans > 0 {
            problems.push(format!(
                "{orphans} active alarms without an open fault record"
            ));
        }
        Ok(problems)
    }
}

/// A writer that hashes what it writes.
struct Hashed<'a, W: Write> {
    out: &'a mut W,
    hasher: xxhash_rust::xxh3::Xxh3,
}

impl<'a, W: Write> Hashed<'a, W> {
    fn new(out: &'a mut W) -> Self {
        Self {
            out,
            hasher: xxhash_rust::xxh3::Xxh3::new(),
        }
    }

    fn put(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.hasher.update(bytes);
        self.out.write_all(bytes)
    }
}

type Entry<'a> = (&'a str, &'a [u8], &'a [u8]);

/// The schema and the entries of a whole, unchanged backup.
fn parse(data: &[u8]) -> Result<(u32, Vec<Entry<'_>>), BackupError> {
    let damaged = |what: &str| BackupError::Damaged(what.to_owned());
    let body = data
        .len()
        .checked_sub(8)
        .ok_or_else(|| damaged("too short"))?;
    let sum = u64::from_be_bytes(data[body..].try_into().map_err(|_| damaged("too short"))?);
    if xxhash_rust::xxh3::xxh3_64(&data[..body]) != sum {
        return Err(damaged("checksum mismatch (cut short or changed)"));
    }
    let rest = data[..body]
        .strip_prefix(MAGIC)
        .ok_or_else(|| damaged("no NOCTUA-BACKUP-1 header"))?;
    let mut r = Reader(rest);
    let schema = u32::from_be_bytes(r.take(4)?.try_into().map_err(|_| damaged("schema"))?);
    let mut entries = Vec::new();
    loop {
        let len = usize::from(r.take(1)?[0]);
        if len == 0 {
            break;
        }
        let name = std::str::from_utf8(r.take(len)?).map_err(|_| damaged("tree name"))?;
        let key = r.sized()?;
        let value = r.sized()?;
        entries.push((name, key, value));
    }
    let count = u64::from_be_bytes(r.take(8)?.try_into().map_err(|_| damaged("count"))?);
    if count != entries.len() as u64 || !r.0.is_empty() {
        return Err(damaged("entry count does not match"));
    }
    Ok((schema, entries))
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], BackupError> {
        if self.0.len() < n {
            return Err(BackupError::Damaged("cut short".to_owned()));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn sized(&mut self) -> Result<&'a [u8], BackupError> {
        let len = u32::from_be_bytes(
            self.take(4)?
                .try_into()
                .map_err(|_| BackupError::Damaged("length".to_owned()))?,
        );
        self.take(len as usize)
    }
}
