//! Fault records by fault id, and their notes apart from them: one key per note, so adding
//! one writes only it, and a transition (which writes the record) never carries the notes.

use super::{Store, StoreError, Ticket, Tree, decode};
use crate::model::{AlarmId, FaultId, FaultRecord, IncidentReport, Note, Review, Timestamp};

/// A note's key: its fault, its time, then a number unique within the fault, all big-endian
/// so a fault's notes scan in order. The number is the transition's sequence number for a
/// note that came with an ack or a clear, [`API_NOTE`] with a store-wide id for one added on
/// its own, and [`MIGRATED_NOTE`] with its place in the record for one moved from schema 2.
const REPORT: u8 = b'r';
const REVIEW: u8 = b'v';
const CONTEXT: u8 = b'c';

/// `r`, `v` or `c`, then the fault id (big-endian).
pub(super) fn report_key(kind: u8, id: FaultId) -> [u8; 9] {
    let mut key = [kind; 9];
    key[1..].copy_from_slice(&id.0.to_be_bytes());
    key
}

/// Every key of a fault in the reports tree.
pub(super) fn report_keys(id: FaultId) -> [[u8; 9]; 3] {
    [
        report_key(REPORT, id),
        report_key(REVIEW, id),
        report_key(CONTEXT, id),
    ]
}

pub(super) fn note_key(fault: FaultId, at: Timestamp, unique: u64) -> [u8; 24] {
    let mut key = [0u8; 24];
    key[..8].copy_from_slice(&fault.0.to_be_bytes());
    let at = u64::try_from(at.as_millis()).unwrap_or(0);
    key[8..16].copy_from_slice(&at.to_be_bytes());
    key[16..].copy_from_slice(&unique.to_be_bytes());
    key
}

/// Marks the unique number of a note added on its own.
const API_NOTE: u64 = 1 << 63;
/// Marks the unique number of a note moved out of its record by the schema 3 migration.
pub(super) const MIGRATED_NOTE: u64 = 1 << 62;

/// Why a note was not added.
#[derive(Debug)]
pub enum NoteRefused {
    /// No fault with that id.
    NoFault,
    /// The fault has this many notes already, the most allowed.
    Full(usize),
}

impl Store {
    /// Every fault record with its notes, oldest first.
    pub fn faults(&self) -> Result<Vec<FaultRecord>, StoreError> {
        let mut records: Vec<FaultRecord> = self.scan(Tree::Faults)?;
        // Both trees are in fault-id order: one pass attaches every note.
        let mut notes = self.tree(Tree::FaultNotes).iter().peekable();
        for record in &mut records {
            let prefix = record.id.0.to_be_bytes();
            // An error is taken too, to be returned below.
            let at_or_before = |n: &Result<(sled::IVec, sled::IVec), sled::Error>| {
                n.as_ref().map_or(true, |(k, _)| k[..8] <= prefix[..])
            };
            while let Some(item) = notes.next_if(at_or_before) {
                let (key, value) = item.map_err(|e| self.sled_err(e))?;
                if key[..8] == prefix {
                    record.notes.push(decode(Tree::FaultNotes, &value)?);
                }
            }
        }
        Ok(records)
    }

    /// One fault record with its notes, if the store has it.
    pub fn fault(&self, id: FaultId) -> Result<Option<FaultRecord>, StoreError> {
        let Some(mut record) = self.get::<FaultRecord>(Tree::Faults, &id.0.to_be_bytes())? else {
            return Ok(None);
        };
        record.notes = self.notes(id)?;
        Ok(Some(record))
    }

    /// A fault's notes, in order.
    pub fn notes(&self, id: FaultId) -> Result<Vec<Note>, StoreError> {
        self.tree(Tree::FaultNotes)
            .scan_prefix(id.0.to_be_bytes())
            .values()
            .map(|v| decode(Tree::FaultNotes, &v.map_err(|e| self.sled_err(e))?))
            .collect()
    }

    /// Writes a fault record (its notes are not written: they are kept apart); durable once
    /// the ticket is.
    pub fn put_fault(&self, record: &FaultRecord) -> Result<Ticket, StoreError> {
        self.put(
            Tree::Faults,
            &record.id.0.to_be_bytes(),
            &without_notes(record),
        )
    }

    /// Adds an engineer's note to a fault, open or closed (post-incident notes), unless it has
    /// `max` notes already. Durable once the ticket is. Callers serialize adds (the alarm
    /// stage does), so the count cannot be raced past `max`.
    pub fn add_note(
        &self,
        id: FaultId,
        note: &Note,
        max: usize,
    ) -> Result<Result<Ticket, NoteRefused>, StoreError> {
        if !self
            .tree(Tree::Faults)
            .contains_key(id.0.to_be_bytes())
            .map_err(|e| self.sled_err(e))?
        {
            return Ok(Err(NoteRefused::NoFault));
        }
        let count = self.note_count(id);
        if count >= max {
            return Ok(Err(NoteRefused::Full(count)));
        }
        let key = note_key(id, note.at, API_NOTE | self.generate_id()?);
        self.put(Tree::FaultNotes, &key, note).map(Ok)
    }

    /// The fault records of one alarm (a reopened alarm keeps its fault), oldest first, each
    /// with its notes; one scan of the records, notes read only for these.
    pub fn faults_of_alarm(&self, alarm: AlarmId) -> Result<Vec<FaultRecord>, StoreError> {
        let mut faults = Vec::new();
        for f in self.each::<FaultRecord>(Tree::Faults) {
            let mut f = f?;
            if f.alarm_id == alarm {
                f.notes = self.notes(f.id)?;
                faults.push(f);
            }
        }
        Ok(faults)
    }

    /// The open fault record of active alarm `alarm`, with its notes. The fault its raise
    /// opened has the alarm's own id, so it is one read; a reopened fault has an earlier id
    /// and takes a scan, which `FaultId` hints (a fault found before) spare.
    pub fn open_fault_of(
        &self,
        alarm: AlarmId,
        hint: Option<FaultId>,
    ) -> Result<Option<FaultRecord>, StoreError> {
        let open = |f: &FaultRecord| f.alarm_id == alarm && f.cleared_at.is_none();
        for id in hint.into_iter().chain([FaultId(alarm.0)]) {
            if let Some(f) = self.fault(id)?.filter(open) {
                return Ok(Some(f));
            }
        }
        Ok(self.faults_of_alarm(alarm)?.into_iter().find(open))
    }

    /// The stored post-incident report of a fault, if one was assembled.
    pub fn incident_report(&self, id: FaultId) -> Result<Option<IncidentReport>, StoreError> {
        let Some(mut r) =
            self.get::<IncidentReport>(Tree::FaultReports, &report_key(REPORT, id))?
        else {
            return Ok(None);
        };
        r.context = self
            .get(Tree::FaultReports, &report_key(CONTEXT, id))?
            .unwrap_or_default();
        Ok(Some(r))
    }

    /// Keeps a fault's post-incident report, its context first (a report is never on disk
    /// without it).
    pub fn put_incident_report(&self, r: &IncidentReport) -> Result<Ticket, StoreError> {
        self.put(
            Tree::FaultReports,
            &report_key(CONTEXT, r.fault),
            &r.context,
        )?;
        self.put(Tree::FaultReports, &report_key(REPORT, r.fault), r)
    }

    /// What engineers concluded about a fault, if they wrote anything.
    pub fn review(&self, id: FaultId) -> Result<Option<Review>, StoreError> {
        self.get(Tree::FaultReports, &report_key(REVIEW, id))
    }

    /// Keeps a fault's review (the latest edit wins; it says who and when).
    pub fn put_review(&self, id: FaultId, r: &Review) -> Result<Ticket, StoreError> {
        self.put(Tree::FaultReports, &report_key(REVIEW, id), r)
    }

    /// How many notes a fault has.
    pub fn note_count(&self, id: FaultId) -> usize {
        self.tree(Tree::FaultNotes)
            .scan_prefix(id.0.to_be_bytes())
            .keys()
            .count()
    }
}

/// A record as the faults tree keeps it: without its notes.
pub(super) fn without_notes(record: &FaultRecord) -> std::borrow::Cow<'_, FaultRecord> {
    if record.notes.is_empty() {
        std::borrow::Cow::Borrowed(record)
    } else {
        let mut bare = record.clone();
        bare.notes.clear();
        std::borrow::Cow::Owned(bare)
    }
}
