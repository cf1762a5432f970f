//! The alarm journal: transitions committed in batches, in rows of up to [`JOURNAL_ROW`]
//! events; the history read back from it; the MQTT outbox as the notified events past a
//! delivery cursor; and retention.

use std::ops::ControlFlow;
use std::sync::atomic::Ordering;

use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use super::actions::{Batch, action_key, rule_key};
use super::faults::{note_key, report_keys, without_notes};
use super::{
    Alarm, AlarmEvent, FaultRecord, JOURNAL_ROW, LAST_SEQ_KEY, OUTBOX_CURSOR_KEY, Store,
    StoreError, Ticket, Timestamp, Transition, Tree, decode, encode,
};
use crate::model::{ServiceState, TransitionKind};

impl Store {
    /// Commits a batch of alarm transitions in one transaction: for each, the active alarm
    /// (removed when cleared) and its fault record (both removed when handed over to another
    /// cluster member); for the batch, its journal rows and the
    /// sequence high-water mark. One transaction per batch is what makes alarm storms affordable.
    ///
    /// Each transition names the notification id it was computed from (`None` for a raise); if
    /// the store disagrees, nothing of the batch is written and [`StoreError::Conflict`] says why.
    /// Sequence numbers must rise through the batch and follow the store's last one
    /// ([`StoreError::OutOfSequence`] otherwise), so journal rows never overlap.
    pub fn commit_transitions(&self, batch: &[Transition]) -> Result<Ticket, StoreError> {
        self.commit_batch(&Batch {
            transitions: batch,
            ..Batch::default()
        })
    }

    /// [`Store::commit_transitions`], with what the batch decided besides in the same
    /// transaction: service states, complaints, actions and breakers. A service's status, a
    /// complaint's link or an action is never on disk without the alarms behind it. A batch
    /// with no transitions commits the rest alone.
    pub fn commit_batch(&self, b: &Batch) -> Result<Ticket, StoreError> {
        self.writable()?;
        let batch = b.transitions;
        let complaints = b
            .complaints
            .iter()
            .map(|c| Ok((c.id.as_bytes(), encode(Tree::Complaints, c)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let services = b
            .services
            .iter()
            .map(|s| {
                let mut key = s.seq.to_be_bytes().to_vec();
                key.extend_from_slice(s.name.as_bytes());
                Ok((s.name.as_bytes(), key, encode(Tree::Services, s)?))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let mut actions = b
            .actions
            .iter()
            .map(|a| Ok((action_key(a.id).to_vec(), encode(Tree::Actions, a)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        for (name, state) in b.rules {
            actions.push((rule_key(name), encode(Tree::Actions, state)?));
        }
        let Some(last) = batch.last() else {
            if complaints.is_empty() && services.is_empty() && actions.is_empty() {
                return Ok(Ticket(self.inner.written.load(Ordering::Acquire)));
            }
            let trees = (
                self.tree(Tree::Complaints),
                self.tree(Tree::Services),
                self.tree(Tree::Actions),
            );
            let result = trees.transaction(|(filed, states, acts)| {
                for (id, c) in &complaints {
                    filed.insert(*id, c.as_slice())?;
                }
                for (name, _, state) in &services {
                    states.insert(*name, state.as_slice())?;
                }
                for (key, a) in &actions {
                    acts.insert(key.as_slice(), a.as_slice())?;
                }
                Ok(())
            });
            return match result {
                Ok(()) => Ok(self.written()),
                Err(TransactionError::Abort(e)) => Err(e),
                Err(TransactionError::Storage(e)) => Err(self.sled_err(e)),
            };
        };
        if let Some(w) = batch.windows(2).find(|w| w[1].event.seq <= w[0].event.seq) {
            return Err(StoreError::OutOfSequence {
                found: w[1].event.seq,
                after: w[0].event.seq,
            });
        }
        struct Encoded {
            alarm_key: [u8; 8],
            alarm: Vec<u8>,
            fault_key: [u8; 8],
            fault: Vec<u8>,
            note: Option<([u8; 24], Vec<u8>)>,
        }
        let encoded = batch
            .iter()
            .map(|t| {
                let note = match &t.note {
                    Some(n) => Some((
                        note_key(t.fault.id, n.at, t.event.seq),
                        encode(Tree::FaultNotes, n)?,
                    )),
                    None => None,
                };
                Ok(Encoded {
                    alarm_key: t.event.alarm.alarm_id.0.to_be_bytes(),
                    alarm: encode(Tree::ActiveAlarms, &t.event.alarm)?,
                    fault_key: t.fault.id.0.to_be_bytes(),
                    fault: encode(Tree::Faults, &without_notes(&t.fault))?,
                    note,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let mut events = Vec::with_capacity(JOURNAL_ROW);
        let rows = batch
            .chunks(JOURNAL_ROW)
            .map(|chunk| {
                events.clear();
                events.extend(chunk.iter().map(|t| &t.event));
                Ok((
                    chunk[0].event.seq.to_be_bytes(),
                    encode(Tree::Journal, &events)?,
                ))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let notified = batch.iter().filter(|t| t.event.notified).count() as u64;
        let high_water = last.event.seq.to_be_bytes();
        let trees = (
            self.tree(Tree::ActiveAlarms),
            self.tree(Tree::Faults),
            self.tree(Tree::FaultNotes),
            self.tree(Tree::Journal),
            self.tree(Tree::Services),
            self.tree(Tree::ServiceJournal),
            self.tree(Tree::Complaints),
            self.tree(Tree::Actions),
            self.tree(Tree::Meta),
        );
        let result = trees.transaction(
            |(active, faults, notes, journal, states, history, filed, acts, meta)| {
                let after = meta
                    .get(LAST_SEQ_KEY)?
                    .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
                    .map_or(0, u64::from_be_bytes);
                if batch[0].event.seq <= after {
                    return Err(ConflictableTransactionError::Abort(
                        StoreError::OutOfSequence {
                            found: batch[0].event.seq,
                            after,
                        },
                    ));
                }
                for (t, e) in batch.iter().zip(&encoded) {
                    // Reads inside the transaction see its own earlier writes, so a batch may carry
                    // several transitions of one alarm.
                    let found = match active.get(e.alarm_key)? {
                        None => None,
                        Some(v) => {
                            let a: Alarm = decode(Tree::ActiveAlarms, &v)
                                .map_err(ConflictableTransactionError::Abort)?;
                            Some(a.notification_id)
                        }
                    };
                    if found != t.expected {
                        return Err(ConflictableTransactionError::Abort(StoreError::Conflict {
                            alarm: t.event.alarm.alarm_id,
                            expected: t.expected,
                            found,
                        }));
                    }
                    if t.event.kind == TransitionKind::HandedOver {
                        // The alarm and its open fault are the new owner's now.
                        active.remove(&e.alarm_key)?;
                        faults.remove(&e.fault_key)?;
                    } else if t.event.alarm.is_cleared() {
                        active.remove(&e.alarm_key)?;
                        faults.insert(&e.fault_key, e.fault.as_slice())?;
                    } else {
                        active.insert(&e.alarm_key, e.alarm.as_slice())?;
                        faults.insert(&e.fault_key, e.fault.as_slice())?;
                    }
                    if let Some((key, note)) = &e.note {
                        notes.insert(key, note.as_slice())?;
                    }
                }
                for (key, row) in &rows {
                    journal.insert(key, row.as_slice())?;
                }
                // In batch order, so the last change of a service is its state.
                for (name, key, state) in &services {
                    states.insert(*name, state.as_slice())?;
                    history.insert(key.as_slice(), state.as_slice())?;
                }
                for (id, c) in &complaints {
                    filed.insert(*id, c.as_slice())?;
                }
                for (key, a) in &actions {
                    acts.insert(key.as_slice(), a.as_slice())?;
                }
                meta.insert(LAST_SEQ_KEY, &high_water)?;
                Ok(())
            },
        );
        match result {
            Ok(()) => {
                self.inner
                    .outbox_depth
                    .fetch_add(notified, Ordering::Relaxed);
                self.inner
                    .committed_seq
                    .fetch_max(last.event.seq, Ordering::AcqRel);
                Ok(self.written())
            }
            Err(TransactionError::Abort(e)) => Err(e),
            Err(TransactionError::Storage(e)) => Err(self.sled_err(e)),
        }
    }

    /// Retention: deletes journal rows whose transitions all happened before `cutoff`, and
    /// fault records closed before it. Rows are visited in sequence order and the pass stops
    /// at the first one that is not that old: sequence follows time closely, and keeping a
    /// little more is the safe side. The outbox is never touched: of an old row, whatever is
    /// still waiting for the broker stays (as a smaller row under the same key). Active alarms
    /// and open faults are never touched either. Returns how many transitions and faults went.
    pub fn compact(&self, cutoff: Timestamp) -> Result<usize, StoreError> {
        let journal = self.tree(Tree::Journal);
        let delivered = self.outbox_cursor()?;
        let mut removed = 0;
        for row in journal.iter() {
            let (key, value) = row.map_err(|e| self.sled_err(e))?;
            let mut events: Vec<AlarmEvent> = decode(Tree::Journal, &value)?;
            if events.iter().any(|e| e.at >= cutoff) {
                break;
            }
            let before = events.len();
            events.retain(|e| e.notified && e.seq > delivered);
            removed += before - events.len();
            if events.is_empty() {
                journal.remove(key).map_err(|e| self.sled_err(e))?;
            } else if events.len() < before {
                journal
                    .insert(key, encode(Tree::Journal, &events)?)
                    .map_err(|e| self.sled_err(e))?;
            }
        }
        let faults = self.tree(Tree::Faults);
        for item in faults.iter() {
            let (key, value) = item.map_err(|e| self.sled_err(e))?;
            let f: FaultRecord = decode(Tree::Faults, &value)?;
            if f.cleared_at.is_some_and(|c| c < cutoff) {
                faults.remove(&key).map_err(|e| self.sled_err(e))?;
                let reports = self.tree(Tree::FaultReports);
                for k in report_keys(f.id) {
                    reports.remove(k).map_err(|e| self.sled_err(e))?;
                }
                let notes = self.tree(Tree::FaultNotes);
                for note in notes.scan_prefix(&key).keys() {
                    notes
                        .remove(note.map_err(|e| self.sled_err(e))?)
                        .map_err(|e| self.sled_err(e))?;
                }
                removed += 1;
            }
        }
        removed += self.compact_service_journal(cutoff)?;
        removed += self.compact_actions(cutoff)?;
        if removed > 0 {
            self.written();
        }
        Ok(removed)
    }

    /// Retention of the services' history: changes older than `cutoff`, oldest first; the
    /// current state of each service stays in its own tree.
    fn compact_service_journal(&self, cutoff: Timestamp) -> Result<usize, StoreError> {
        let tree = self.tree(Tree::ServiceJournal);
        let mut removed = 0;
        for item in tree.iter() {
            let (key, value) = item.map_err(|e| self.sled_err(e))?;
            let state: ServiceState = decode(Tree::ServiceJournal, &value)?;
            if state.time_changed >= cutoff {
                break;
            }
            tree.remove(key).map_err(|e| self.sled_err(e))?;
            removed += 1;
        }
        Ok(removed)
    }

    /// Service changes made by transitions after sequence `after`, in order.
    pub fn service_history_after(&self, after: u64) -> Result<Vec<ServiceState>, StoreError> {
        self.tree(Tree::ServiceJournal)
            .range((after + 1).to_be_bytes()..)
            .values()
            .map(|v| decode(Tree::ServiceJournal, &v.map_err(|e| self.sled_err(e))?))
            .collect()
    }

    /// Calls `visit` with every journal event after sequence `after`, in sequence order, until
    /// it breaks.
    pub(super) fn visit_journal(
        &self,
        after: u64,
        mut visit: impl FnMut(AlarmEvent) -> ControlFlow<()>,
    ) -> Result<(), StoreError> {
        let journal = self.tree(Tree::Journal);
        let from = after.saturating_add(1).to_be_bytes();
        // The row holding `after + 1` starts at or before it.
        let start = journal
            .range(..=from)
            .next_back()
            .transpose()
            .map_err(|e| self.sled_err(e))?
            .map_or(sled::IVec::from(&from), |(k, _)| k);
        for row in journal.range(start..).values() {
            let events: Vec<AlarmEvent> =
                decode(Tree::Journal, &row.map_err(|e| self.sled_err(e))?)?;
            for e in events.into_iter().filter(|e| e.seq > after) {
                if visit(e).is_break() {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Up to `limit` journal events in `(after, through]` that pass `keep`, in sequence order.
    fn journal_events(
        &self,
        after: u64,
        through: u64,
        limit: usize,
        keep: impl Fn(&AlarmEvent) -> bool,
    ) -> Result<Vec<AlarmEvent>, StoreError> {
        let mut out = Vec::new();
        if limit > 0 && through > after {
            self.visit_journal(after, |e| {
                if e.seq > through {
                    return ControlFlow::Break(());
                }
                if keep(&e) {
                    out.push(e);
                }
                if out.len() >= limit {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            })?;
        }
        Ok(out)
    }

    /// Up to `limit` transitions after sequence `after`, in sequence order (0 for all).
    /// Everything committed, durable or not: for the store's own users (retention, tests, a
    /// finished replay); publishers use [`Store::durable_history_after`].
    pub fn history_after(&self, after: u64, limit: usize) -> Result<Vec<AlarmEvent>, StoreError> {
        self.journal_events(after, u64::MAX, limit, |_| true)
    }

    /// Up to `limit` transitions after sequence `after` that are on disk, in sequence order:
    /// what the live stream and the API may show.
    pub fn durable_history_after(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<AlarmEvent>, StoreError> {
        self.journal_events(after, self.durable_seq(), limit, |_| true)
    }

    /// Every transition on disk, in sequence order, handed to `visit` one at a time: for
    /// readers that keep only some, so the journal is never all in memory at once.
    pub fn visit_durable_history(
        &self,
        mut visit: impl FnMut(AlarmEvent),
    ) -> Result<(), StoreError> {
        let through = self.durable_seq();
        self.visit_journal(0, |e| {
            if e.seq > through {
                return ControlFlow::Break(());
            }
            visit(e);
            ControlFlow::Continue(())
        })
    }

    /// The active alarms as they stood at one sequence number, once that is on disk: what a
    /// live-stream snapshot may show. The scan counts only if no commit landed during it
    /// (the last sequence number read equal before and after); under a storm that rarely
    /// holds, and after a few tries the snapshot is labelled with the later number, so the
    /// stream repeats a transition or two the snapshot already shows (applying one twice is
    /// harmless) rather than skip one.
    pub async fn durable_active(&self) -> Result<(Vec<Alarm>, u64), StoreError> {
        const TRIES: usize = 4;
        let mut before = self.last_seq()?;
        let mut active = self.scan(Tree::ActiveAlarms)?;
        for _ in 1..TRIES {
            let after = self.last_seq()?;
            if after == before {
                break;
            }
            before = after;
            active = self.scan(Tree::ActiveAlarms)?;
        }
        // The scan reflects nothing later than this; show it once that is on disk.
        let head = self.last_seq()?;
        self.durable_through(head).await?;
        Ok((active, before))
    }

    /// Up to `limit` notified transitions after sequence `after` not yet delivered, in sequence
    /// order, committed or not; the publisher uses [`Store::durable_outbox_after`].
    pub fn outbox_after(&self, after: u64, limit: usize) -> Result<Vec<AlarmEvent>, StoreError> {
        self.journal_events(after.max(self.outbox_cursor()?), u64::MAX, limit, |e| {
            e.notified
        })
    }

    /// [`Store::outbox_after`] through the durability gate: only what is on disk, so the
    /// broker never hears of a transition a crash could take back (and hand its sequence
    /// number and alarm id to another).
    pub fn durable_outbox_after(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<AlarmEvent>, StoreError> {
        let from = after.max(self.outbox_cursor()?);
        self.journal_events(from, self.durable_seq(), limit, |e| e.notified)
    }

    /// Sequence number through which every notified transition is delivered or dropped.
    pub fn outbox_cursor(&self) -> Result<u64, StoreError> {
        self.meta_u64(OUTBOX_CURSOR_KEY)
    }

    /// Notified transitions not yet delivered.
    pub fn outbox_depth(&self) -> u64 {
        self.inner.outbox_depth.load(Ordering::Relaxed)
    }

    /// Moves the outbox cursor up to `through`; `count` must be the number of notified
    /// transitions between the old cursor and `through` (the publisher knows it: it read each
    /// of them). Not flushed at once: after a crash the tail is sent again, which
    /// at-least-once delivery allows.
    pub fn outbox_delivered(&self, through: u64, count: u64) -> Result<Ticket, StoreError> {
        if through <= self.outbox_cursor()? {
            return Ok(Ticket(self.inner.written.load(Ordering::Acquire)));
        }
        self.tree(Tree::Meta)
            .insert(OUTBOX_CURSOR_KEY, &through.to_be_bytes())
            .map_err(|e| self.sled_err(e))?;
        // One task moves the cursor (the publisher, or without one the alarm stage's trim), so
        // nothing races this update.
        let _ = self
            .inner
            .outbox_depth
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |d| {
                Some(d.saturating_sub(count))
            });
        Ok(self.written())
    }

    /// Drops the oldest undelivered transitions beyond `limit`; returns how many went and the
    /// cursor after them (a publisher forgets what it had in flight up to there).
    pub fn outbox_trim(&self, limit: usize) -> Result<(usize, u64), StoreError> {
        let excess = self.outbox_depth().saturating_sub(limit as u64);
        let dropped = self.outbox_after(0, usize::try_from(excess).unwrap_or(usize::MAX))?;
        match dropped.last() {
            None => Ok((0, self.outbox_cursor()?)),
            Some(newest) => {
                self.outbox_delivered(newest.seq, dropped.len() as u64)?;
                Ok((dropped.len(), newest.seq))
            }
        }
    }
}
