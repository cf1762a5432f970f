//! The detector's per-series table: state found by a fingerprint of the series' key, laid out
//! so that a sample costs as few cache misses as possible.
//!
//! With 100,000 series the state does not stay in cache, and a sample's cost is its misses,
//! not its arithmetic: a `HashMap<SeriesKey, _>` compares the key's strings (two more misses)
//! and was two thirds of the cost of a sample. Here a series is found by its [`Fingerprint`]
//! through a small open-addressing index (8 bytes a slot, eight to a cache line), and its state
//! lives in a vector in the order series first appeared, so the series of one poll, which
//! arrive together, sit together. [`SeriesTable::prefetch`] lets a caller with a batch ask the
//! CPU for a series' index slot before its turn.

use std::hash::{BuildHasher, Hasher};
use std::ops::Range;

use crate::model::SeriesKey;

/// A series' identity inside the detector: a 128-bit hash of device, object and metric under a
/// seed chosen at start. For a million series the chance that two share a fingerprint is about
/// 10^-27, far below the rate of memory errors; the seed is random, so nobody can choose names
/// that collide, and fingerprints never leave the process (the store is keyed by name).
pub type Fingerprint = u128;

/// An index slot: 32 bits of the fingerprint (a quick check) and the position + 1; 0 is empty.
type Slot = u64;

/// The index never fills beyond 3/4, so probe runs stay short.
const MAX_LOAD: (usize, usize) = (3, 4);

/// Per-series values of type `T`, found by fingerprint. Series are never removed.
#[derive(Debug)]
pub struct SeriesTable<T> {
    /// Seed of every fingerprint this table makes.
    seed: u64,
    /// Open addressing, linear probing; a power of two long.
    slots: Vec<Slot>,
    /// Each series' full fingerprint (checked on every find) and value, by position.
    entries: Vec<(Fingerprint, T)>,
    /// Each series' key, by position: read to save state, never per sample.
    names: Vec<SeriesKey>,
}

impl<T> Default for SeriesTable<T> {
    fn default() -> Self {
        Self {
            seed: std::collections::hash_map::RandomState::new()
                .build_hasher()
                .finish(),
            slots: vec![0; 64],
            entries: Vec::new(),
            names: Vec::new(),
        }
    }
}

/// Asks the CPU to start loading the cache lines of `value` (every 64 bytes of it). Only a
/// hint: it changes no state, cannot fault, and on other architectures does nothing.
pub fn prefetch<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    #[allow(unsafe_code)]
    // SAFETY: a prefetch has no architectural effect and cannot fault; the pointers are into a
    // live value anyway (`wrapping_add` stays within it). `sse` is part of the x86_64 baseline.
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let start = std::ptr::from_ref(value).cast::<i8>();
        for offset in (0..std::mem::size_of::<T>().max(1)).step_by(64) {
            _mm_prefetch::<_MM_HINT_T0>(start.wrapping_add(offset));
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}

fn tag(id: Fingerprint) -> u64 {
    (id >> 64) as u64 & 0xffff_ffff
}

impl<T> SeriesTable<T> {
    /// The fingerprint of `series`: the device's hash, mixed with the hash of the object under
    /// a seed made of the device's hash and the metric. Two one-shot hashes of the strings as
    /// they are, rather than one of a joined copy (writing the copy and reading it back in
    /// words stalled the CPU for longer than the hashing). Keys that differ in the device
    /// differ in the first hash; keys with the same device differ in the object or in the seed.
    pub fn fingerprint(&self, series: &SeriesKey) -> Fingerprint {
        use xxhash_rust::xxh3::xxh3_128_with_seed;
        let device = xxh3_128_with_seed(series.device.as_bytes(), self.seed);
        let seed = (device as u64) ^ (series.metric as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let object = xxh3_128_with_seed(series.object.as_bytes(), seed);
        device.rotate_left(64) ^ object
    }

    fn home(&self, id: Fingerprint) -> usize {
        (id as u64 as usize) & (self.slots.len() - 1)
    }

    /// Asks the CPU to start loading the index slot of `id`, so a find a little later does not
    /// wait for memory.
    pub fn prefetch(&self, id: Fingerprint) {
        prefetch(&self.slots[self.home(id)]);
    }

    /// The position of `id`, or the empty slot where it would go.
    fn probe(&self, id: Fingerprint) -> Result<usize, usize> {
        let mask = self.slots.len() - 1;
        let mut at = self.home(id);
        loop {
            let slot = self.slots[at];
            if slot == 0 {
                return Err(at);
            }
            if slot >> 32 == tag(id) {
                let position = (slot & 0xffff_ffff) as usize - 1;
                if self.entries.get(position).is_some_and(|e| e.0 == id) {
                    return Ok(position);
                }
            }
            // The index is never full (see `MAX_LOAD`), so an empty slot ends every probe.
            at = (at + 1) & mask;
        }
    }

    /// The position of `id`, if the table has it.
    pub fn find(&self, id: Fingerprint) -> Option<usize> {
        self.probe(id).ok()
    }

    /// Asks the CPU to start loading the value at `position`.
    pub fn prefetch_at(&self, position: usize) {
        if let Some(entry) = self.entries.get(position) {
            prefetch(entry);
        }
    }

    /// The value of the series `id` (the fingerprint of `series`), made by `make` if the table
    /// has none; true if it was made. `found` is its position if already looked up.
    pub fn get_or_insert_with(
        &mut self,
        series: &SeriesKey,
        id: Fingerprint,
        found: Option<usize>,
        make: impl FnOnce() -> T,
    ) -> (&mut T, bool) {
        let probed = match found {
            Some(p) if self.entries.get(p).is_some_and(|e| e.0 == id) => Ok(p),
            _ => self.probe(id),
        };
        let (position, made) = match probed {
            Ok(position) => (position, false),
            Err(mut empty) => {
                if (self.entries.len() + 1) * MAX_LOAD.1 > self.slots.len() * MAX_LOAD.0 {
                    self.grow();
                    empty = self.probe(id).err().unwrap_or(empty);
                }
                // Positions fit the slot's 32 bits: four billion series would need hundreds of
                // gigabytes before this could wrap.
                let position = self.entries.len();
                self.slots[empty] = tag(id) << 32 | (position as u64 + 1);
                self.entries.push((id, make()));
                self.names.push(series.clone());
                (position, true)
            }
        };
        (&mut self.entries[position].1, made)
    }

    /// The value of `series`, if the table has it.
    pub fn get_mut(&mut self, series: &SeriesKey) -> Option<&mut T> {
        let position = self.find(self.fingerprint(series))?;
        self.entries.get_mut(position).map(|e| &mut e.1)
    }

    /// How many series the table holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The series at positions `positions` (clamped to the table), in the order they first
    /// appeared: a slice of the table to save at a time.
    pub fn range(&self, positions: Range<usize>) -> impl Iterator<Item = (&SeriesKey, &T)> {
        let end = positions.end.min(self.len());
        let start = positions.start.min(end);
        self.names[start..end]
            .iter()
            .zip(self.entries[start..end].iter().map(|e| &e.1))
    }

    /// Every value.
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.entries.iter_mut().map(|e| &mut e.1)
    }

    /// Doubles the index and puts every series back.
    fn grow(&mut self) {
        let slots = vec![0; self.slots.len() * 2];
        let old = std::mem::replace(&mut self.slots, slots);
        let mask = self.slots.len() - 1;
        for slot in old.into_iter().filter(|s| *s != 0) {
            let position = (slot & 0xffff_ffff) as usize - 1;
            let Some((id, _)) = self.entries.get(position) else {
                continue;
            };
            let mut at = self.home(*id);
            while self.slots[at] != 0 {
                at = (at + 1) & mask;
            }
            self.slots[at] = slot;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Metric;
    use proptest::prelude::*;

    fn key(device: &str, object: &str, metric: Metric) -> SeriesKey {
        SeriesKey {
            device: device.to_owned(),
            object: object.to_owned(),
            metric,
        }
    }

    #[test]
    fn fingerprints_tell_apart_what_differs_anywhere_in_the_key() {
        let t = SeriesTable::<()>::default();
        let f = |d: &str, o: &str, m| t.fingerprint(&key(d, o, m));
        let base = f("ab", "c", Metric::LossPct);
        assert_eq!(base, f("ab", "c", Metric::LossPct));
        for other in [
            f("a", "bc", Metric::LossPct),
            f("ab", "c", Metric::LatencyMs),
            f("ab", "", Metric::LossPct),
            f("", "abc", Metric::LossPct),
            f("ab", "c\u{1f}", Metric::LossPct),
        ] {
            assert_ne!(base, other);
        }
        // Another table (another start) uses another seed.
        assert_ne!(
            base,
            SeriesTable::<()>::default().fingerprint(&key("ab", "c", Metric::LossPct))
        );
    }

    proptest! {
        /// Whatever the keys and however the index grows, every series finds its own value and
        /// a key never inserted is not found.
        #[test]
        fn finds_exactly_what_was_inserted(keys in proptest::collection::hash_set(("[a-c]{0,3}", "[a-c]{0,3}", 0usize..3), 0..400)) {
            let metrics = [Metric::LossPct, Metric::LatencyMs, Metric::UtilisationInPct];
            let keys: Vec<SeriesKey> = keys.into_iter().map(|(d, o, m)| key(&d, &o, metrics[m])).collect();
            let mut t = SeriesTable::default();
            for (i, k) in keys.iter().enumerate() {
                let id = t.fingerprint(k);
                let (v, made) = t.get_or_insert_with(k, id, None, || i);
                prop_assert!(made);
                prop_assert_eq!(*v, i);
                let found = t.find(id);
                prop_assert_eq!(found, Some(i));
                let again = t.get_or_insert_with(k, id, found, || usize::MAX);
                prop_assert!(!again.1);
                // A stale or wrong hint is checked, not trusted.
                let wrong = t.get_or_insert_with(k, id, Some(0), || usize::MAX);
                prop_assert_eq!((*wrong.0, wrong.1), (i, false));
            }
            prop_assert_eq!(t.range(0..usize::MAX).count(), keys.len());
            for (i, k) in keys.iter().enumerate() {
                prop_assert_eq!(t.get_mut(k).copied(), Some(i));
            }
            prop_assert_eq!(t.get_mut(&key("zzzz", "", Metric::LossPct)), None);
            let names: Vec<&SeriesKey> = t.range(0..usize::MAX).map(|(k, _)| k).collect();
            prop_assert_eq!(&names, &keys.iter().collect::<Vec<_>>());
            // Slices of the table, as the store saves it, are every series once, in order.
            let n = keys.len();
            let sliced: Vec<&SeriesKey> = (0..7)
                .flat_map(|p| t.range(n * p / 7..n * (p + 1) / 7).map(|(k, _)| k))
                .collect();
            prop_assert_eq!(sliced, names);
        }
    }
}
