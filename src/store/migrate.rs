//! Schema migrations, run by [`Store::open`] before anything else reads the store.

use super::faults::{MIGRATED_NOTE, note_key};
use super::{
    AlarmEvent, JOURNAL_ROW, OUTBOX_CURSOR_KEY, SCHEMA_KEY, SCHEMA_VERSION, Store, StoreError,
    Tree, V1_HISTORY, V1_OUTBOX, decode, encode,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::model::{Alarm, FaultImpact, FaultRecord, Impact};

/// Meta key listing the trees a migration in progress has finished (comma-separated names).
const MIGRATED_TREES: &[u8] = b"migrated_trees";

impl Store {
    /// Schema 1 kept a history key per transition (by time, then sequence) and an outbox key
    /// per notified transition. Both fold into journal rows; the outbox cursor goes just below
    /// the oldest event still in the outbox, so what was waiting is still sent. Rewriting is
    /// idempotent (same rows, same keys), so a migration cut short simply runs again.
    pub(super) fn migrate_from_1(&self) -> Result<(), StoreError> {
        let sled_err = |e| self.sled_err(e);
        let db = &self.inner.db;
        let history = db.open_tree(V1_HISTORY).map_err(sled_err)?;
        let outbox = db.open_tree(V1_OUTBOX).map_err(sled_err)?;
        // The outbox holds whole events, including ones whose history retention removed.
        let mut events = std::collections::BTreeMap::new();
        for value in history.iter().values().chain(outbox.iter().values()) {
            let e: AlarmEvent<()> = decode(Tree::Journal, &value.map_err(sled_err)?)?;
            events.insert(e.seq, e);
        }
        let oldest_waiting = outbox
            .iter()
            .keys()
            .next()
            .transpose()
            .map_err(sled_err)?
            .and_then(|k| <[u8; 8]>::try_from(k.as_ref()).ok())
            .map(u64::from_be_bytes);
        let cursor = match oldest_waiting {
            Some(seq) => seq.saturating_sub(1),
            None => self.last_seq()?,
        };
        let events: Vec<AlarmEvent<()>> = events.into_values().collect();
        let journal = self.tree(Tree::Journal);
        for row in events.chunks(JOURNAL_ROW) {
            journal
                .insert(row[0].seq.to_be_bytes(), encode(Tree::Journal, &row)?)
                .map_err(sled_err)?;
        }
        let meta = self.tree(Tree::Meta);
        meta.insert(OUTBOX_CURSOR_KEY, &cursor.to_be_bytes())
            .map_err(sled_err)?;
        meta.insert(SCHEMA_KEY, &2u32.to_be_bytes())
            .map_err(sled_err)?;
        db.flush().map_err(sled_err)?;
        tracing::info!(
            path = %self.inner.path.display(),
            transitions = events.len(),
            "store migrated from schema 1 to 2 (alarm history and outbox into the journal)"
        );
        Ok(())
    }

    /// Schema 2 kept notes inside fault records, so every transition rewrote them. They move
    /// to their own tree, a key each, and the records are rewritten without them. Keys are
    /// made from the note's place in its record, so a migration cut short simply runs again.
    pub(super) fn migrate_from_2(&self) -> Result<(), StoreError> {
        let sled_err = |e| self.sled_err(e);
        let (faults, notes) = (self.tree(Tree::Faults), self.tree(Tree::FaultNotes));
        let mut moved = 0usize;
        for item in faults.iter() {
            let (key, value) = item.map_err(sled_err)?;
            let mut record: FaultRecord<()> = decode(Tree::Faults, &value)?;
            if record.notes.is_empty() {
                continue;
            }
            for (i, note) in record.notes.iter().enumerate() {
                let key = note_key(record.id, note.at, MIGRATED_NOTE | i as u64);
                notes
                    .insert(key, encode(Tree::FaultNotes, note)?)
                    .map_err(sled_err)?;
            }
            moved += record.notes.len();
            record.notes.clear();
            faults
                .insert(key, encode(Tree::Faults, &record)?)
                .map_err(sled_err)?;
        }
        self.tree(Tree::Meta)
            .insert(SCHEMA_KEY, &3u32.to_be_bytes())
            .map_err(sled_err)?;
        self.inner.db.flush().map_err(sled_err)?;
        tracing::info!(
            path = %self.inner.path.display(),
            notes = moved,
            "store migrated from schema 2 to 3 (fault notes apart from their records)"
        );
        Ok(())
    }

    /// Schema 3 had no impact on alarms and fault records. Every alarm, journal row and fault
    /// is rewritten with an empty one (a fault's accrual starting at its raise): what they
    /// touched then is not known, and guessing it from today's config would rewrite history.
    /// Each tree is rewritten in one atomic batch and marked done in meta, so a migration cut
    /// short runs again from the first tree not done (old and new shapes cannot be told apart
    /// reliably from the bytes alone).
    pub(super) fn migrate_from_3(&self) -> Result<(), StoreError> {
        let mut rewritten = 0usize;
        rewritten += self.rewrite_tree(Tree::ActiveAlarms, |old: Alarm<()>| {
            old.map_impact(|()| Impact::default())
        })?;
        rewritten += self.rewrite_tree(Tree::Journal, |old: Vec<AlarmEvent<()>>| {
            old.into_iter()
                .map(|e| e.map_impact(|()| Impact::default()))
                .collect::<Vec<AlarmEvent>>()
        })?;
        rewritten += self.rewrite_tree(Tree::Faults, |old: FaultRecord<()>| {
            let since = old.raised_at;
            old.map_impact(|()| FaultImpact {
                since,
                ..FaultImpact::default()
            })
        })?;
        let sled_err = |e| self.sled_err(e);
        let meta = self.tree(Tree::Meta);
        meta.insert(SCHEMA_KEY, &SCHEMA_VERSION.to_be_bytes())
            .map_err(sled_err)?;
        meta.remove(MIGRATED_TREES).map_err(sled_err)?;
        self.inner.db.flush().map_err(sled_err)?;
        tracing::info!(
            path = %self.inner.path.display(),
            values = rewritten,
            "store migrated from schema 3 to 4 (impact on alarms and fault records)"
        );
        Ok(())
    }

    /// Rewrites every value of `tree` through `f` in one batch, unless meta lists the tree as
    /// done; then lists it.
    fn rewrite_tree<Old: DeserializeOwned, New: Serialize>(
        &self,
        tree: Tree,
        f: impl Fn(Old) -> New,
    ) -> Result<usize, StoreError> {
        let sled_err = |e| self.sled_err(e);
        let meta = self.tree(Tree::Meta);
        let mut done = meta
            .get(MIGRATED_TREES)
            .map_err(sled_err)?
            .map(|v| v.to_vec())
            .unwrap_or_default();
        if done
            .split(|b| *b == b',')
            .any(|t| t == tree.name().as_bytes())
        {
            return Ok(0);
        }
        let mut batch = sled::Batch::default();
        let mut n = 0;
        for item in self.tree(tree).iter() {
            let (key, value) = item.map_err(sled_err)?;
            batch.insert(key, encode(tree, &f(decode::<Old>(tree, &value)?))?);
            n += 1;
        }
        self.tree(tree).apply_batch(batch).map_err(sled_err)?;
        if !done.is_empty() {
            done.push(b',');
        }
        done.extend_from_slice(tree.name().as_bytes());
        meta.insert(MIGRATED_TREES, done).map_err(sled_err)?;
        self.inner.db.flush().map_err(sled_err)?;
        Ok(n)
    }
}
