//! Maintenance windows: when alarms of a device, site or tag are recorded but not notified.
//! Written in config (`[[maintenance]]`) and through the API, stored, and read by the alarm
//! manager, so the window's shape lives on the ground floor.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Timestamp;

/// `[[maintenance]]`: a window in which alarms are recorded but not notified.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct MaintenanceConfig {
    /// Name for logs and the API.
    pub name: String,
    /// Applies to this device and everything below it in the topology.
    #[serde(default)]
    pub device: Option<String>,
    /// Applies to every device of this site.
    #[serde(default)]
    pub site: Option<String>,
    /// Applies to every device with this tag.
    #[serde(default)]
    pub tag: Option<String>,
    /// One-off window start (RFC 3339, quoted).
    #[serde(default)]
    pub start: Option<Timestamp>,
    /// One-off window end (RFC 3339, quoted).
    #[serde(default)]
    pub end: Option<Timestamp>,
    /// Weekly recurring window, in UTC.
    #[serde(default)]
    pub weekly: Option<WeeklyWindow>,
}

/// A weekly window: `{ day = "sun", at = "02:00", duration = "2h" }`, UTC.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct WeeklyWindow {
    /// Day of the week.
    pub day: Weekday,
    /// Start time of day, `HH:MM` UTC.
    pub at: String,
    /// Length.
    #[serde(with = "humantime_serde")]
    pub duration: Duration,
}

impl WeeklyWindow {
    /// Minutes after midnight of `at`, if it is a valid `HH:MM`.
    pub fn start_minute(&self) -> Option<u32> {
        let (h, m) = self.at.split_once(':')?;
        let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
        (h < 24 && m < 60 && self.at.len() == 5).then_some(h * 60 + m)
    }
}

/// Day of the week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Weekday {
    /// Monday.
    Mon,
    /// Tuesday.
    Tue,
    /// Wednesday.
    Wed,
    /// Thursday.
    Thu,
    /// Friday.
    Fri,
    /// Saturday.
    Sat,
    /// Sunday.
    Sun,
}

impl Weekday {
    /// Days since Monday.
    pub fn index(self) -> u32 {
        self as u32
    }
}

impl MaintenanceConfig {
    /// What is wrong with this window, as (key path below the window, message); empty if
    /// nothing. Shared by config validation and the maintenance API.
    pub fn problems(&self, is_device: impl Fn(&str) -> bool) -> Vec<(Vec<&'static str>, String)> {
        let mut out = Vec::new();
        if self.name.trim().is_empty() {
            out.push((vec!["name"], "expected a non-empty name".to_owned()));
        }
        let scopes = [&self.device, &self.site, &self.tag]
            .iter()
            .filter(|s| s.is_some())
            .count();
        if scopes != 1 {
            out.push((
                vec![],
                "expected exactly one of `device`, `site` or `tag`".to_owned(),
            ));
        }
        if let Some(d) = &self.device
            && !is_device(d)
        {
            out.push((vec!["device"], format!("unknown device `{d}`")));
        }
        match (&self.start, &self.end, &self.weekly) {
            (Some(s), Some(e), None) => {
                if e <= s {
                    out.push((vec!["end"], "expected `end` after `start`".to_owned()));
                }
            }
            (None, None, Some(w)) => {
                if w.start_minute().is_none() {
                    out.push((
                        vec!["weekly", "at"],
                        format!("expected HH:MM (UTC), got `{}`", w.at),
                    ));
                }
                if w.duration.is_zero() || w.duration > Duration::from_secs(7 * 86_400) {
                    out.push((
                        vec!["weekly", "duration"],
                        "expected a duration above zero and at most a week".to_owned(),
                    ));
                }
            }
            _ => out.push((
                vec![],
                "expected either `start` and `end`, or `weekly`".to_owned(),
            )),
        }
        out
    }
}
