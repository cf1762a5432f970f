//! Fault records as the store keeps them, by fault id; the alarm stage writes them with every
//! transition, and notes are added here whichever path they come by.

use super::{Store, StoreError, Ticket, Tree};
use crate::model::{FaultId, FaultRecord, Note};

impl Store {
    /// Every fault record, oldest first.
    pub fn faults(&self) -> Result<Vec<FaultRecord>, StoreError> {
        self.scan(Tree::Faults)
    }

    /// One fault record, if the store has it.
    pub fn fault(&self, id: FaultId) -> Result<Option<FaultRecord>, StoreError> {
        self.get(Tree::Faults, &id.0.to_be_bytes())
    }

    /// Writes a fault record; durable once the ticket is.
    pub fn put_fault(&self, record: &FaultRecord) -> Result<Ticket, StoreError> {
        self.put(Tree::Faults, &record.id.0.to_be_bytes(), record)
    }

    /// Adds `note` to the stored record of a fault, open or closed (post-incident notes):
    /// `None` if there is no such fault. Durable once the ticket is. An open fault the alarm
    /// manager holds gets the note from the manager instead ([`Store::put_fault`]), so a later
    /// transition cannot overwrite it.
    pub fn add_note(
        &self,
        id: FaultId,
        note: Note,
    ) -> Result<Option<(FaultRecord, Ticket)>, StoreError> {
        let Some(mut record) = self.fault(id)? else {
            return Ok(None);
        };
        record.notes.push(note);
        let ticket = self.put_fault(&record)?;
        Ok(Some((record, ticket)))
    }
}
