//! Customers, service states and complaints: a CRM import in atomic batches with the
//! customers per place kept alongside, the committed state of each service by name, and
//! complaints by id.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::{Store, StoreError, Ticket, Tree, decode, encode};
use crate::model::{Complaint, Place, ServiceState};

/// Customers live in buckets, several hundred to a key: sled's cost is per key written (about
/// 8 µs), so a key per customer made 10 million an import of over two minutes. A bucket is
/// `b` + the top 16 bits of the customer key's xxh3, holding its customers sorted by key with
/// their place's number; `p` + number holds the place and `q` + place its number (places are
/// few: sites, cells, services); `n` + number the count of customers there; `m` the next
/// number. An import part rewrites each bucket it touches once, so parts should be large (the
/// CLI sends a million rows at a time).
const BUCKET: u8 = b'b';
const PLACE: u8 = b'p';
const PLACE_NUMBER: u8 = b'q';
const COUNT: u8 = b'n';
const NEXT_PLACE: &[u8] = b"m";

/// A bucket's customers: key and place number, sorted by key.
type Bucket = Vec<(Vec<u8>, u32)>;

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

fn bucket_key(customer: &[u8]) -> [u8; 3] {
    let b = (xxhash_rust::xxh3::xxh3_64(customer) >> 48) as u16;
    let [hi, lo] = b.to_be_bytes();
    [BUCKET, hi, lo]
}

fn numbered(prefix: u8, n: u32) -> [u8; 5] {
    let [a, b, c, d] = n.to_be_bytes();
    [prefix, a, b, c, d]
}

impl Store {
    /// Puts each customer (by key) at its place, in one atomic batch with the changed counts:
    /// a row for a customer already there changes nothing, one for a customer elsewhere moves
    /// it, and of a customer twice in the rows the last wins. Durable after the returned ticket
    /// is.
    pub fn import_customers(
        &self,
        rows: &[(Vec<u8>, Place)],
    ) -> Result<(ImportSummary, Ticket), StoreError> {
        self.writable()?;
        let sled_err = |e| self.sled_err(e);
        let tree = self.tree(Tree::Customers);
        let mut batch = sled::Batch::default();
        // Place numbers, new ones allocated in this batch.
        let mut next = tree
            .get(NEXT_PLACE)
            .map_err(sled_err)?
            .map(|v| decode::<u32>(Tree::Customers, &v))
            .transpose()?
            .unwrap_or(0);
        let mut numbers: HashMap<&Place, u32> = HashMap::new();
        let mut by_bucket: BTreeMap<[u8; 3], Vec<(&[u8], u32)>> = BTreeMap::new();
        for (key, place) in rows {
            let n = match numbers.get(place) {
                Some(n) => *n,
                None => {
                    let mut q = encode(Tree::Customers, place)?;
                    q[0] = PLACE_NUMBER;
                    let n = match tree.get(&q).map_err(sled_err)? {
                        Some(v) => decode::<u32>(Tree::Customers, &v)?,
                        None => {
                            let n = next;
                            next += 1;
                            batch.insert(q, encode(Tree::Customers, &n)?);
                            batch.insert(&numbered(PLACE, n), encode(Tree::Customers, place)?);
                            n
                        }
                    };
                    numbers.insert(place, n);
                    n
                }
            };
            by_bucket.entry(bucket_key(key)).or_default().push((key, n));
        }
        batch.insert(NEXT_PLACE, encode(Tree::Customers, &next)?);
        let mut summary = ImportSummary::default();
        let mut delta: HashMap<u32, i64> = HashMap::new();
        for (bk, new) in by_bucket {
            let mut bucket: Bucket = tree
                .get(bk)
                .map_err(sled_err)?
                .map(|v| decode(Tree::Customers, &v))
                .transpose()?
                .unwrap_or_default();
            let mut changed = false;
            for (key, n) in new {
                match bucket.binary_search_by(|(k, _)| k.as_slice().cmp(key)) {
                    Ok(i) if bucket[i].1 == n => summary.unchanged += 1,
                    Ok(i) => {
                        summary.moved += 1;
                        *delta.entry(bucket[i].1).or_default() -= 1;
                        *delta.entry(n).or_default() += 1;
                        bucket[i].1 = n;
                        changed = true;
                    }
                    Err(i) => {
                        summary.added += 1;
                        *delta.entry(n).or_default() += 1;
                        bucket.insert(i, (key.to_vec(), n));
                        changed = true;
                    }
                }
            }
            if changed {
                batch.insert(&bk, encode(Tree::Customers, &bucket)?);
            }
        }
        // A customer twice in the rows is added (or moved) and then moved: each step counted
        // as it happened, so the sums still come out right.
        for (n, d) in delta.into_iter().filter(|(_, d)| *d != 0) {
            let key = numbered(COUNT, n);
            let now = tree
                .get(key)
                .map_err(sled_err)?
                .map(|v| decode::<u64>(Tree::Customers, &v))
                .transpose()?
                .unwrap_or(0);
            match now.saturating_add_signed(d) {
                0 => batch.remove(&key),
                c => batch.insert(&key, encode(Tree::Customers, &c)?),
            }
        }
        tree.apply_batch(batch).map_err(sled_err)?;
        Ok((summary, self.written()))
    }

    /// Where a customer (by key) is reached.
    pub fn customer_place(&self, key: &[u8]) -> Result<Option<Place>, StoreError> {
        let sled_err = |e| self.sled_err(e);
        let tree = self.tree(Tree::Customers);
        let Some(raw) = tree.get(bucket_key(key)).map_err(sled_err)? else {
            return Ok(None);
        };
        let bucket: Bucket = decode(Tree::Customers, &raw)?;
        let Ok(i) = bucket.binary_search_by(|(k, _)| k.as_slice().cmp(key)) else {
            return Ok(None);
        };
        self.get(Tree::Customers, &numbered(PLACE, bucket[i].1))
    }

    /// Customers per place.
    pub fn customer_counts(&self) -> Result<HashMap<Place, u64>, StoreError> {
        let tree = self.tree(Tree::Customers);
        let mut out = HashMap::new();
        for item in tree.scan_prefix([COUNT]) {
            let (k, v) = item.map_err(|e| self.sled_err(e))?;
            let mut place_key = k.to_vec();
            place_key[0] = PLACE;
            let place: Option<Place> = self.get(Tree::Customers, &place_key)?;
            let Some(place) = place else {
                return Err(StoreError::Corrupt {
                    tree: Tree::Customers.name(),
                    reason: "a count for a place number with no place".to_owned(),
                });
            };
            out.insert(place, decode(Tree::Customers, &v)?);
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
