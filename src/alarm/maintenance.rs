//! Maintenance windows: when a device's alarms are recorded but not notified, and how much of
//! a fault's life is left out of MTTA/MTTR.

use crate::config::Topology;
use crate::config::{MaintenanceConfig, WeeklyWindow};
use crate::model::Timestamp;

const DAY_MS: i64 = 86_400_000;

/// One window with its scope.
#[derive(Debug, Clone, PartialEq)]
pub struct MaintenanceWindow {
    /// Name for logs and the API.
    pub name: String,
    scope: Scope,
    when: When,
}

#[derive(Debug, Clone, PartialEq)]
enum Scope {
    Device(String),
    Site(String),
    Tag(String),
}

#[derive(Debug, Clone, PartialEq)]
enum When {
    Once {
        start: i64,
        end: i64,
    },
    Weekly {
        weekday: u32,
        minute: u32,
        length_ms: i64,
    },
}

impl MaintenanceWindow {
    /// Converts a validated config entry; `None` if it is incomplete (validation reports it).
    pub fn from_config(c: &MaintenanceConfig) -> Option<Self> {
        let scope = match (&c.device, &c.site, &c.tag) {
            (Some(d), None, None) => Scope::Device(d.clone()),
            (None, Some(s), None) => Scope::Site(s.clone()),
            (None, None, Some(t)) => Scope::Tag(t.clone()),
            _ => return None,
        };
        let when = match (&c.start, &c.end, &c.weekly) {
            (Some(s), Some(e), None) => When::Once {
                start: s.as_millis(),
                end: e.as_millis(),
            },
            (None, None, Some(w)) => weekly(w)?,
            _ => return None,
        };
        Some(Self {
            name: c.name.clone(),
            scope,
            when,
        })
    }

    fn applies_to(&self, device: &str, topology: &Topology) -> bool {
        match &self.scope {
            Scope::Device(d) => topology.ancestors_or_self(device).any(|a| a == d),
            Scope::Site(s) => topology.site(device) == Some(s.as_str()),
            Scope::Tag(t) => topology.has_tag(device, t),
        }
    }

    /// Whether an occurrence of the window is running at `t`. Asked for every recorded
    /// transition, so it computes rather than collecting intervals.
    fn covers(&self, t: i64) -> bool {
        match self.when {
            When::Once { start, end } => start <= t && t < end,
            When::Weekly {
                weekday,
                minute,
                length_ms,
            } => {
                // Occurrences start at most a week apart and last at most a week, so the one
                // that could be running started in the last seven days.
                let week = 7 * DAY_MS;
                let day = t.div_euclid(DAY_MS);
                let today = (day + 3).rem_euclid(7);
                let back = (today - i64::from(weekday)).rem_euclid(7);
                let start = (day - back) * DAY_MS + i64::from(minute) * 60_000;
                let start = if start > t { start - week } else { start };
                t < start + length_ms
            }
        }
    }

    /// The window's occurrences that overlap `[from, to)`, clipped to it.
    fn intervals(&self, from: i64, to: i64, out: &mut Vec<(i64, i64)>) {
        match self.when {
            When::Once { start, end } => {
                let (s, e) = (start.max(from), end.min(to));
                if s < e {
                    out.push((s, e));
                }
            }
            When::Weekly {
                weekday,
                minute,
                length_ms,
            } => {
                // An occurrence starting up to a week before `from` may still be running.
                let first_day = from.div_euclid(DAY_MS) - 7;
                let last_day = to.div_euclid(DAY_MS);
                for day in first_day..=last_day {
                    // 1970-01-01 was a Thursday: Monday-based weekday index 3.
                    if (day + 3).rem_euclid(7) != i64::from(weekday) {
                        continue;
                    }
                    let start = day * DAY_MS + i64::from(minute) * 60_000;
                    let (s, e) = (start.max(from), (start + length_ms).min(to));
                    if s < e {
                        out.push((s, e));
                    }
                }
            }
        }
    }
}

fn weekly(w: &WeeklyWindow) -> Option<When> {
    Some(When::Weekly {
        weekday: w.day.index(),
        minute: w.start_minute()?,
        length_ms: i64::try_from(w.duration.as_millis()).ok()?,
    })
}

/// Whether any window covers `device` at `now`.
pub fn in_maintenance(
    windows: &[MaintenanceWindow],
    topology: &Topology,
    device: &str,
    now: Timestamp,
) -> bool {
    let t = now.as_millis();
    windows
        .iter()
        .any(|w| w.covers(t) && w.applies_to(device, topology))
}

/// Milliseconds of `[from, to)` covered by any window of `device` (overlaps counted once).
pub fn maintenance_ms(
    windows: &[MaintenanceWindow],
    topology: &Topology,
    device: &str,
    from: Timestamp,
    to: Timestamp,
) -> u64 {
    let (from, to) = (from.as_millis(), to.as_millis());
    if to <= from {
        return 0;
    }
    let mut spans = Vec::new();
    for w in windows.iter().filter(|w| w.applies_to(device, topology)) {
        w.intervals(from, to, &mut spans);
    }
    spans.sort_unstable();
    let mut total = 0i64;
    let mut cur: Option<(i64, i64)> = None;
    for (s, e) in spans {
        cur = match cur {
            Some((cs, ce)) if s <= ce => Some((cs, ce.max(e))),
            Some((cs, ce)) => {
                total += ce - cs;
                Some((s, e))
            }
            None => Some((s, e)),
        };
    }
    if let Some((cs, ce)) = cur {
        total += ce - cs;
    }
    u64::try_from(total).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DeviceConfig, Weekday};
    use crate::model::Role;
    use std::time::Duration;

    fn topo() -> Topology {
        let dev = |name: &str, parent: Option<&str>, site: &str| DeviceConfig {
            name: name.into(),
            address: "192.0.2.1".parse().unwrap(),
            role: Role::Router,
            parent: parent.map(Into::into),
            site: Some(site.into()),
            tags: vec!["edge".into()],
            credentials: None,
            snmp_port: 161,
            poll_interval: None,
            profile: None,
            agent: Default::default(),
            interfaces: vec![],
        };
        Topology::new(&[dev("core", None, "dc"), dev("bh", Some("core"), "east")])
    }

    fn cfg(device: Option<&str>, site: Option<&str>) -> MaintenanceConfig {
        MaintenanceConfig {
            name: "w".into(),
            device: device.map(Into::into),
            site: site.map(Into::into),
            tag: None,
            start: None,
            end: None,
            weekly: None,
        }
    }

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse_rfc3339(s).unwrap()
    }

    #[test]
    fn weekly_window_recurs_on_its_day_in_utc() {
        let mut c = cfg(None, Some("east"));
        c.weekly = Some(WeeklyWindow {
            day: Weekday::Sun,
            at: "02:00".into(),
            duration: Duration::from_secs(7200),
        });
        let w = vec![MaintenanceWindow::from_config(&c).unwrap()];
        let t = topo();
        // 2026-11-29 is a Sunday.
        assert!(in_maintenance(&w, &t, "bh", ts("2026-11-29T03:59:59Z")));
        assert!(!in_maintenance(&w, &t, "bh", ts("2026-11-29T04:00:00Z")));
        assert!(!in_maintenance(&w, &t, "bh", ts("2026-11-30T03:00:00Z")));
        assert!(in_maintenance(&w, &t, "bh", ts("2026-12-06T02:00:00Z")));
        assert!(!in_maintenance(&w, &t, "core", ts("2026-11-29T03:00:00Z")));
        // A fault from Saturday noon to Monday noon loses exactly the two hours.
        let ms = maintenance_ms(
            &w,
            &t,
            "bh",
            ts("2026-11-28T12:00:00Z"),
            ts("2026-11-30T12:00:00Z"),
        );
        assert_eq!(ms, 7_200_000);
    }

    proptest::proptest! {
        #[test]
        fn covers_agrees_with_the_interval_arithmetic(
            t in 1_700_000_000_000i64..1_900_000_000_000,
            day in 0usize..7,
            minute in 0u32..1440,
            length_min in 1u64..10_080,
        ) {
            let days = [Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri, Weekday::Sat, Weekday::Sun];
            let mut c = cfg(None, Some("east"));
            c.weekly = Some(WeeklyWindow {
                day: days[day],
                at: format!("{:02}:{:02}", minute / 60, minute % 60),
                duration: Duration::from_secs(length_min * 60),
            });
            let w = MaintenanceWindow::from_config(&c).unwrap();
            let mut hits = Vec::new();
            w.intervals(t, t + 1, &mut hits);
            proptest::prop_assert_eq!(w.covers(t), !hits.is_empty());
        }
    }

    #[test]
    fn device_windows_cover_descendants_and_overlaps_count_once() {
        let mut a = cfg(Some("core"), None);
        a.start = Some(ts("2026-12-01T02:00:00Z"));
        a.end = Some(ts("2026-12-01T04:00:00Z"));
        let mut b = a.clone();
        b.start = Some(ts("2026-12-01T03:00:00Z"));
        b.end = Some(ts("2026-12-01T05:00:00Z"));
        let w: Vec<_> = [a, b]
            .iter()
            .filter_map(MaintenanceWindow::from_config)
            .collect();
        let t = topo();
        assert!(in_maintenance(&w, &t, "bh", ts("2026-12-01T02:30:00Z")));
        let ms = maintenance_ms(
            &w,
            &t,
            "bh",
            ts("2026-12-01T00:00:00Z"),
            ts("2026-12-01T04:30:00Z"),
        );
        assert_eq!(ms, 2 * 3_600_000 + 1_800_000);
    }
}
