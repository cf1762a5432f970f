//! Flap detection per reduction key: state changes counted in a sliding window.

use std::collections::VecDeque;
use std::time::Duration;

use crate::model::Timestamp;

/// Recent raise/clear changes of one condition.
#[derive(Debug, Clone, Default)]
pub struct FlapTracker {
    changes: VecDeque<Timestamp>,
    /// Whether the condition is currently flapping.
    pub flapping: bool,
}

impl FlapTracker {
    /// Records a state change; returns true if this change starts flapping.
    pub fn change(&mut self, now: Timestamp, window: Duration, threshold: u32) -> bool {
        self.changes.push_back(now);
        self.expire(now, window);
        // Memory stays bounded: only `threshold` changes matter.
        while self.changes.len() > threshold as usize {
            self.changes.pop_front();
        }
        if !self.flapping && self.changes.len() >= threshold as usize {
            self.flapping = true;
            return true;
        }
        false
    }

    /// Ends flapping once the last change is `hold` old; returns true when it ends now.
    pub fn settle(&mut self, now: Timestamp, hold: Duration) -> bool {
        let stable = self
            .changes
            .back()
            .is_none_or(|last| now.since(*last) >= hold);
        if self.flapping && stable {
            self.flapping = false;
            self.changes.clear();
            return true;
        }
        false
    }

    /// Whether the tracker holds nothing worth keeping at `now`.
    pub fn idle(&mut self, now: Timestamp, window: Duration) -> bool {
        self.expire(now, window);
        !self.flapping && self.changes.is_empty()
    }

    fn expire(&mut self, now: Timestamp, window: Duration) {
        while self.changes.front().is_some_and(|t| now.since(*t) > window) {
            self.changes.pop_front();
        }
    }
}
