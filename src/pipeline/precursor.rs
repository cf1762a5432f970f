//! Precursors from events, in the detection stage: each device's reboots and each interface's
//! link downs, counted over the `[precursors] window` (`forecast::precursor::Recurring`); the
//! count reaching its rule raises a `degradation:reboots` or `degradation:link_flaps` warning
//! that lists when, and the warning clears once the window holds fewer (checked hourly). Kept
//! in the store (`precursor_events`) with the detector's state.

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::config::Config;
use crate::forecast::precursor::{self, Recurring, Rules};
use crate::message::Verdict;
use crate::model::{Alarm, DeviceEvent, EventKind, Metric, SeriesKey, Timestamp};
use crate::pipeline::forecast::precursor_rules;
use crate::store::{Store, StoreError, Tree};

const HOUR_MS: i64 = 3_600_000;

/// The names of what recurs, in conditions (`degradation:reboots`) and store keys.
const WHATS: [&str; 2] = ["reboots", "link_flaps"];

/// What recurs from an event, by its name.
fn what(kind: EventKind) -> Option<&'static str> {
    match kind {
        EventKind::Reboot => Some("reboots"),
        EventKind::LinkDown => Some("link_flaps"),
        _ => None,
    }
}

/// A name's rule (how many make a precursor) and the metric its verdict's series carries (the
/// manager keys alarms by device, object and condition only).
fn rule_of(rules: &Rules, what: &str) -> (u32, Metric) {
    if what == "reboots" {
        (rules.reboots, Metric::Reachability)
    } else {
        (rules.link_flaps, Metric::OperStatus)
    }
}

/// Every device's and interface's recurring events.
#[derive(Debug)]
pub struct Recurrences {
    rules: Rules,
    on: bool,
    /// By device, object and what.
    seen: HashMap<(String, String, &'static str), Recurring>,
    /// The hour last checked for clears.
    checked: i64,
    /// Entries forgotten since the last save, to remove from the store.
    forgotten: Vec<Vec<u8>>,
}

fn key(device: &str, object: &str, what: &str) -> Vec<u8> {
    format!("{device}\u{1f}{object}\u{1f}{what}").into_bytes()
}

impl Recurrences {
    /// With the state the store holds and its active warnings.
    pub fn restore(config: &Config, store: &Store) -> Result<Self, StoreError> {
        let mut me = Self {
            rules: precursor_rules(&config.precursors),
            on: config.precursors.enabled,
            seen: HashMap::new(),
            checked: 0,
            forgotten: Vec::new(),
        };
        for (k, v) in store.scan_raw(Tree::Precursors)? {
            let text = String::from_utf8_lossy(&k);
            let mut parts = text.split('\u{1f}');
            let (Some(device), Some(object), Some(w)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let Some(w) = WHATS.into_iter().find(|x| *x == w) else {
                continue;
            };
            if let Ok(r) = crate::store::decode::<Recurring>(Tree::Precursors, &v) {
                me.seen.insert((device.to_owned(), object.to_owned(), w), r);
            }
        }
        for alarm in store.scan::<Alarm>(Tree::ActiveAlarms)? {
            let Some(w) = alarm.condition.strip_prefix("degradation:") else {
                continue;
            };
            if let Some(w) = WHATS.into_iter().find(|x| *x == w) {
                let entry = (alarm.device.clone(), alarm.object.clone(), w);
                me.seen.entry(entry).or_default().raised = true;
            }
        }
        Ok(me)
    }

    /// Takes new rules (config reload).
    pub fn reconfigure(&mut self, config: &Config) {
        self.rules = precursor_rules(&config.precursors);
        self.on = config.precursors.enabled;
    }

    /// Writes every count and removes the forgotten; returns how many writes failed.
    pub fn save(&mut self, store: &Store) -> usize {
        let removed = std::mem::take(&mut self.forgotten)
            .iter()
            .filter(|k| store.remove(Tree::Precursors, k).is_err())
            .count();
        removed
            + self
                .seen
                .iter()
                .filter(|((d, o, w), r)| store.put(Tree::Precursors, &key(d, o, w), *r).is_err())
                .count()
    }

    /// Counts an event; its warning if it made one.
    pub fn on_event(&mut self, e: &DeviceEvent) -> Option<Verdict> {
        let w = what(e.kind)?;
        let (threshold, metric) = rule_of(&self.rules, w);
        let r = self
            .seen
            .entry((e.device.clone(), e.object.clone(), w))
            .or_default();
        r.record(e.at, threshold);
        let n = r.within(e.at, self.rules.days);
        if r.raised || !self.on || n < threshold as usize {
            return None;
        }
        r.raised = true;
        let mut text = format!(
            "{} {n} times within {} days:",
            if w == "reboots" {
                "rebooted"
            } else {
                "link went down"
            },
            self.rules.days
        );
        for t in r.times() {
            let t = t.to_string();
            let _ = write!(text, " {}", t.get(..16).unwrap_or(&t));
        }
        let series = SeriesKey {
            device: e.device.clone(),
            object: e.object.clone(),
            metric,
        };
        Some(precursor::verdict(series, e.at, w, true, text))
    }

    /// Once an hour, the warnings whose window now holds fewer than their rule (or all, once
    /// precursors are turned off) clear.
    pub fn on_tick(&mut self, now: Timestamp) -> Vec<Verdict> {
        let hour = now.as_millis().div_euclid(HOUR_MS);
        if hour == self.checked {
            return Vec::new();
        }
        self.checked = hour;
        let mut out = Vec::new();
        for ((device, object, w), r) in &mut self.seen {
            let (threshold, metric) = rule_of(&self.rules, w);
            let n = r.within(now, self.rules.days);
            if r.raised && (!self.on || n < threshold as usize) {
                r.raised = false;
                let series = SeriesKey {
                    device: device.clone(),
                    object: object.clone(),
                    metric,
                };
                let text = format!("{n} {w} within the last {} days", self.rules.days);
                out.push(precursor::verdict(series, now, w, false, text));
            }
        }
        // Entries with nothing left in the window and no warning are forgotten.
        let (days, forgotten) = (self.rules.days, &mut self.forgotten);
        self.seen.retain(|(d, o, w), r| {
            let keep = r.raised || r.within(now, days) > 0;
            if !keep {
                forgotten.push(key(d, o, w));
            }
            keep
        });
        out
    }
}
