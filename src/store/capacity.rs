//! Links' days of utilisation for capacity reports (`capacity_days`): the series key, U+001F,
//! and the day big-endian, so one prefix scan reads a link's days in order. A link keeps
//! [`KEEP_DAYS`]; writing a day removes the one that fell out.

use super::{Store, StoreError, Tree, decode};
use crate::forecast::StoredForecast;
use crate::forecast::capacity::DayUse;

/// Days kept per link: the report's month and a few days more.
pub const KEEP_DAYS: i64 = 35;

fn day_key(series: &[u8], day: i64) -> Vec<u8> {
    let mut key = Vec::with_capacity(series.len() + 9);
    key.extend_from_slice(series);
    key.push(0x1f);
    key.extend_from_slice(&day.to_be_bytes());
    key
}

impl Store {
    /// Writes a link's finished day and drops the one [`KEEP_DAYS`] before it.
    pub fn put_capacity_day(&self, series: &[u8], day: &DayUse) -> Result<(), StoreError> {
        self.put(Tree::Capacity, &day_key(series, day.day), day)?;
        self.remove(Tree::Capacity, &day_key(series, day.day - KEEP_DAYS))?;
        Ok(())
    }

    /// A link's finished days, oldest first.
    pub fn capacity_days(&self, series: &[u8]) -> Result<Vec<DayUse>, StoreError> {
        let mut prefix = series.to_vec();
        prefix.push(0x1f);
        self.tree(Tree::Capacity)
            .scan_prefix(prefix)
            .map(|kv| {
                let (_, v) = kv.map_err(|e| self.sled_err(e))?;
                decode(Tree::Capacity, &v)
            })
            .collect()
    }

    /// Every series' forecast state by series key; entries of another version or unreadable
    /// are left out.
    pub fn forecasts(&self) -> Result<Vec<(Vec<u8>, StoredForecast)>, StoreError> {
        Ok(self
            .scan_raw(Tree::Forecasts)?
            .into_iter()
            .filter_map(|(k, v)| {
                let s = decode::<StoredForecast>(Tree::Forecasts, &v).ok()?;
                (s.version == crate::forecast::STATE_VERSION).then_some((k, s))
            })
            .collect())
    }
}
