//! One page of a listing, picked while the store is read: a listing of the whole journal or
//! every fault ever recorded holds `offset + limit` items at a time, not all of them (at
//! fleet scale a full listing was tens of megabytes per request).

use std::cmp::Ordering;

use serde::Serialize;

/// Items a page has when the client does not say.
pub const DEFAULT_LIMIT: usize = 500;
/// The most items one page may have.
pub const MAX_LIMIT: usize = 5000;

/// What a listing answers: how many items match in all, and the requested slice of them.
#[derive(Debug, Serialize)]
pub struct Page<T> {
    /// Items that match, on every page.
    pub total: usize,
    /// Where this page starts among them.
    pub offset: usize,
    /// This page's items, in the listing's order.
    pub items: Vec<T>,
}

/// Collects the items of one page out of a stream in any order: the first `offset + limit`
/// by `order` are kept (ties in arrival order, as a stable sort of the whole stream would
/// leave them), every item is counted.
pub struct Window<T, F> {
    kept: Vec<T>,
    keep: usize,
    offset: usize,
    total: usize,
    order: F,
}

impl<T, F: FnMut(&T, &T) -> Ordering> Window<T, F> {
    /// A window for items `offset..offset + limit` (limit [`DEFAULT_LIMIT`] if unset, at most
    /// [`MAX_LIMIT`]) of the stream sorted by `order`.
    pub fn new(offset: usize, limit: Option<usize>, order: F) -> Self {
        Self {
            kept: Vec::new(),
            keep: offset.saturating_add(limit.unwrap_or(DEFAULT_LIMIT).min(MAX_LIMIT)),
            offset,
            total: 0,
            order,
        }
    }

    /// Counts an item, and keeps it while it may still be on the page.
    pub fn push(&mut self, item: T) {
        self.total += 1;
        if self.keep == 0 {
            return;
        }
        self.kept.push(item);
        // Sorting once per `keep` arrivals keeps the work at O(n log keep) and the memory at
        // twice the page.
        if self.kept.len() >= self.keep.saturating_mul(2) {
            self.trim();
        }
    }

    fn trim(&mut self) {
        // Stable: an item kept from an earlier trim stays ahead of a later equal one.
        self.kept.sort_by(&mut self.order);
        self.kept.truncate(self.keep);
    }

    /// The page.
    pub fn into_page(mut self) -> Page<T> {
        self.trim();
        Page {
            total: self.total,
            offset: self.offset,
            items: self.kept.into_iter().skip(self.offset).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The window's page is the page of the whole stream sorted (stably) at once.
        #[test]
        fn a_window_pages_like_sorting_everything(
            items in proptest::collection::vec((0u8..8, any::<u16>()), 0..3000),
            offset in 0usize..1200,
            limit in proptest::option::of(0usize..700),
        ) {
            let by_key = |a: &(u8, u16), b: &(u8, u16)| a.0.cmp(&b.0);
            let mut w = Window::new(offset, limit, by_key);
            for &i in &items {
                w.push(i);
            }
            let page = w.into_page();
            let mut all = items.clone();
            all.sort_by(by_key);
            let expected: Vec<_> = all
                .into_iter()
                .skip(offset)
                .take(limit.unwrap_or(DEFAULT_LIMIT))
                .collect();
            prop_assert_eq!(page.total, items.len());
            prop_assert_eq!(page.offset, offset);
            prop_assert_eq!(page.items, expected);
        }
    }

    #[test]
    fn a_page_is_at_most_the_largest_allowed() {
        let mut w = Window::new(0, Some(MAX_LIMIT * 3), u32::cmp);
        for i in 0..(MAX_LIMIT as u32 * 2) {
            w.push(i);
        }
        let page = w.into_page();
        assert_eq!(page.total, MAX_LIMIT * 2);
        assert_eq!(page.items.len(), MAX_LIMIT);
        assert_eq!(page.items.last(), Some(&(MAX_LIMIT as u32 - 1)));
    }
}
