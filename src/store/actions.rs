//! Automated actions and their rules' breakers, in one tree: `a` + id (big-endian) → record,
//! `r` + rule name → breaker. Both are written with the batch of transitions that decided
//! them ([`Batch`]), so an action is never on disk without the alarm change behind it, and a
//! step's start is on disk before the runner hears of it.

use super::{Store, StoreError, Tree, decode};
use crate::model::{
    ActionId, ActionRecord, Complaint, FaultId, RuleState, ServiceState, Timestamp, Transition,
};

/// What one commit of the alarm stage holds.
#[derive(Debug, Default, Clone, Copy)]
pub struct Batch<'a> {
    /// Alarm transitions, in sequence order.
    pub transitions: &'a [Transition],
    /// Service state changes.
    pub services: &'a [ServiceState],
    /// Complaint changes.
    pub complaints: &'a [Complaint],
    /// Action records, new or changed.
    pub actions: &'a [ActionRecord],
    /// Breakers that changed.
    pub rules: &'a [(String, RuleState)],
}

const ACTION: u8 = b'a';
const RULE: u8 = b'r';

/// The key of an action record.
pub(super) fn action_key(id: ActionId) -> [u8; 9] {
    let mut key = [ACTION; 9];
    key[1..].copy_from_slice(&id.0.to_be_bytes());
    key
}

/// The key of a rule's breaker.
pub(super) fn rule_key(name: &str) -> Vec<u8> {
    let mut key = vec![RULE];
    key.extend_from_slice(name.as_bytes());
    key
}

impl Store {
    /// Every action record, oldest first.
    pub fn actions(&self) -> Result<Vec<ActionRecord>, StoreError> {
        self.tree(Tree::Actions)
            .scan_prefix([ACTION])
            .map(|kv| {
                let (_, v) = kv.map_err(|e| self.sled_err(e))?;
                decode(Tree::Actions, &v)
            })
            .collect()
    }

    /// One action.
    pub fn action(&self, id: ActionId) -> Result<Option<ActionRecord>, StoreError> {
        self.get(Tree::Actions, &action_key(id))
    }

    /// The actions taken on one fault, oldest first: its audit trail.
    pub fn actions_of_fault(&self, fault: FaultId) -> Result<Vec<ActionRecord>, StoreError> {
        let mut all = self.actions()?;
        all.retain(|a| a.fault_id == fault);
        Ok(all)
    }

    /// Retention: removes actions that ended before `cutoff` (their faults go with the same
    /// pass); open ones stay, however old.
    pub(super) fn compact_actions(&self, cutoff: Timestamp) -> Result<usize, StoreError> {
        let tree = self.tree(Tree::Actions);
        let mut removed = 0;
        for kv in tree.scan_prefix([ACTION]) {
            let (key, value) = kv.map_err(|e| self.sled_err(e))?;
            let a: ActionRecord = decode(Tree::Actions, &value)?;
            if a.state.is_final() && a.ended_at.is_some_and(|t| t < cutoff) {
                tree.remove(&key).map_err(|e| self.sled_err(e))?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Every rule's breaker, by name.
    pub fn rule_states(&self) -> Result<Vec<(String, RuleState)>, StoreError> {
        self.tree(Tree::Actions)
            .scan_prefix([RULE])
            .map(|kv| {
                let (k, v) = kv.map_err(|e| self.sled_err(e))?;
                let name = String::from_utf8_lossy(&k[1..]).into_owned();
                Ok((name, decode(Tree::Actions, &v)?))
            })
            .collect()
    }
}
