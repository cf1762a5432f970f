//! Customers, service states and complaints: a CRM import in atomic batches, customers per place kept
//! with them, and the committed state of each service by name.

use std::collections::HashMap;

use serde::Serialize;

use super::{Store, StoreError, Ticket, Tree, decode, encode};
use crate::model::{Complaint, Place, ServiceState};

const CUSTOMER: u8 = b'c';
const COUNT: u8 = b'n';

/// What an import did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ImportSummary {
    /// Customers not known before.
    pub added: u64,
    /// Customers known at another place, moved.
    pub moved: u64,
    /// Customers already at that place: nothing written (an import is idempotent).
    pub unchanged: u64,
}

fn customer_key(key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len() + 1);
    k.push(CUSTOMER);
    k.extend_from_slice(key);
    k
}

fn count_key(place: &Place) -> Result<Vec<u8>, StoreError> {
    let mut k = encode(Tree::Customers, place)?;
    k[0] = COUNT;
    Ok(k)
}

impl Store {
    /// Puts each customer (by key) at its place, in one atomic batch with the changed counts:
    /// a row for a customer already there writes nothing, one for a customer elsewhere moves
    /// it. Durable after the returned ticket is.
    pub fn import_customers(
        &self,
        rows: &[(Vec<u8>, Place)],
    ) -> Result<(ImportSummary, Ticket), StoreError> {
        self.writable()?;
        let tree = self.tree(Tree::Customers);
        let mut summary = ImportSummary::default();
        let mut batch = sled::Batch::default();
        // Rows of this batch win over the store (a customer twice in one file: the last row).
        let mut seen: HashMap<&[u8], &Place> = HashMap::new();
        let mut delta: HashMap<Place, i64> = HashMap::new();
        for (key, place) in rows {
            let before: Option<Place> = match seen.get(key.as_slice()) {
                Some(p) => Some((*p).clone()),
                None => tree
                    .get(customer_key(key))
                    .map_err(|e| self.sled_err(e))?
                    .map(|v| decode(Tree::Customers, &v))
                    .transpose()?,
            };
            match before {
                Some(b) if &b == place => {
                    summary.unchanged += 1;
                    continue;
                }
                Some(b) => {
                    summary.moved += 1;
                    *delta.entry(b).or_default() -= 1;
                }
                None => summary.added += 1,
            }
            match delta.get_mut(place) {
                Some(d) => *d += 1,
                None => {
                    delta.insert(place.clone(), 1);
                }
            }
            seen.insert(key, place);
            batch.insert(customer_key(key), encode(Tree::Customers, place)?);
        }
        for (place, d) in &delta {
            if *d != 0 {
                self.adjust_count(tree, place, *d, &mut batch)?;
            }
        }
        tree.apply_batch(batch).map_err(|e| self.sled_err(e))?;
        Ok((summary, self.written()))
    }

    /// Adds `delta` to a place's stored count, in `batch`.
    fn adjust_count(
        &self,
        tree: &sled::Tree,
        place: &Place,
        delta: i64,
        batch: &mut sled::Batch,
    ) -> Result<(), StoreError> {
        let key = count_key(place)?;
        let now = tree
            .get(&key)
            .map_err(|e| self.sled_err(e))?
            .map(|v| decode::<u64>(Tree::Customers, &v))
            .transpose()?
            .unwrap_or(0);
        let next = now.saturating_add_signed(delta);
        if next == 0 {
            batch.remove(key);
        } else {
            batch.insert(key, encode(Tree::Customers, &next)?);
        }
        Ok(())
    }

    /// Where a customer (by key) is reached.
    pub fn customer_place(&self, key: &[u8]) -> Result<Option<Place>, StoreError> {
        self.get(Tree::Customers, &customer_key(key))
    }

    /// Customers per place.
    pub fn customer_counts(&self) -> Result<HashMap<Place, u64>, StoreError> {
        let mut out = HashMap::new();
        for item in self.tree(Tree::Customers).scan_prefix([COUNT]) {
            let (k, v) = item.map_err(|e| self.sled_err(e))?;
            let mut k = k.to_vec();
            k[0] = super::VALUE_FORMAT;
            out.insert(decode(Tree::Customers, &k)?, decode(Tree::Customers, &v)?);
        }
        Ok(out)
    }

    /// Every service's committed state, by name.
    pub fn service_states(&self) -> Result<Vec<ServiceState>, StoreError> {
        self.scan(Tree::Services)
    }

    /// One complaint.
    pub fn complaint(&self, id: &str) -> Result<Option<Complaint>, StoreError> {
        self.get(Tree::Complaints, id.as_bytes())
    }

    /// Every complaint, by id.
    pub fn complaints(&self) -> Result<Vec<Complaint>, StoreError> {
        self.scan(Tree::Complaints)
    }
}
