//! The simulated network of `noctua demo`: what its devices report, second by second, and
//! the bundled flow captures re-timed to the wall clock. Pure: the elapsed time is passed in.
//!
//! The devices are those of `config/demo.toml`: a core router, an internet gateway, two
//! backhaul routers and seven base stations below them. In every ten-minute cycle:
//!
//! | second | what happens | what the console shows |
//! |---|---|---|
//! | 5–60 | latency on `bs-west-1` climbs to 260 ms | warning, minor, then major latency, escalating |
//! | 10–70 | `bs-west-2` ifIndex 1 goes down and up every 12 s | link-down alarms, then one `flapping:` alarm |
//! | 15 | `bh-east` stops answering, then its four base stations | one critical unreachable; the base stations suppressed below it |
//! | 20 | an engineer opens a maintenance window on `bs-west-3` (through the API) | |
//! | 45 | an engineer acknowledges the `bh-east` outage with a note (through the API) | the ack, and MTTA on the dashboard |
//! | 30–150 | `bs-west-3` loses 8 % of packets | recorded under maintenance, not notified |
//! | 30–200 | `bh-west` ifIndex 1 utilisation climbs to 93 % | warning to major utilisation |
//! | 60 on | the bundled saturation capture, from `core-r1` | critical utilisation with top talkers (after the collector's lateness) |
//! | 60 on | the bundled SYN-flood capture, from `gw-r1` | critical SYN-only share, fan-in |
//! | 200–260 | everything recovers | clears, highlighted, then lingering |
//!
//! The samples go into the pipeline as the SNMP poller's would; the flows go to the real
//! collector over UDP; the maintenance window and the acknowledgement through the real API, and
//! so do the customers ([`customers_csv`], imported at start), so alarms show who is behind them.

use crate::message::Ingest;
use crate::model::{DEVICE_OBJECT, DeviceEvent, EventKind, Metric, Sample, SeriesKey, Timestamp};

/// The demo's CRM export: customers on the east and west sites, some on a base station's cell,
/// a few enterprise accounts on the internet service.
pub fn customers_csv() -> String {
    use std::fmt::Write as _;
    let mut out = String::from("customer,site,cell,service\n");
    for i in 0..1_200 {
        let _ = writeln!(out, "E{i:05},east,,");
    }
    for i in 0..800 {
        match i % 4 {
            0 => {
                let _ = writeln!(out, "W{i:05},,{}/{},", WEST_STATIONS[i % 3], 1 + i % 3);
            }
            _ => {
                let _ = writeln!(out, "W{i:05},west,,");
            }
        }
    }
    for i in 0..25 {
        let _ = writeln!(out, "ACME-{i:02},,,internet");
    }
    out
}

/// One cycle of the story; it then starts again, so a long-running demo keeps moving.
pub const CYCLE_SECS: u64 = 600;
/// Seconds into a cycle at which the maintenance window is opened.
pub const MAINTENANCE_AT: u64 = 20;
/// Seconds into a cycle at which an engineer acknowledges the backhaul outage (through the API).
pub const ACK_AT: u64 = 45;
/// The device whose outage is acknowledged.
pub const ACK_DEVICE: &str = "bh-east";
/// The device the maintenance window covers.
pub const MAINTENANCE_DEVICE: &str = "bs-west-3";
/// Seconds between the simulated polls.
const POLL_SECS: u64 = 10;

const EAST_STATIONS: [&str; 4] = ["bs-east-1", "bs-east-2", "bs-east-3", "bs-east-4"];
const WEST_STATIONS: [&str; 3] = ["bs-west-1", "bs-west-2", "bs-west-3"];

/// What the simulated network reports at second `t` of a cycle, stamped `now`.
pub fn tick(t: u64, now: Timestamp) -> Vec<Ingest> {
    let mut out = Vec::new();
    let sample = |device: &str, object: &str, metric: Metric, value: f64| {
        Ingest::Sample(Sample {
            series: SeriesKey {
                device: device.to_owned(),
                object: object.to_owned(),
                metric,
            },
            at: now,
            value,
            context: None,
        })
    };
    let event = |device: &str, object: &str, kind: EventKind, text: &str| {
        Ingest::Event(DeviceEvent {
            device: device.to_owned(),
            object: object.to_owned(),
            kind,
            at: now,
            text: text.to_owned(),
            severity: None,
        })
    };

    // Reachability of the east backhaul and the base stations behind it.
    let east_down = (15..240).contains(&t);
    match t {
        15 => out.push(event(
            "bh-east",
            DEVICE_OBJECT,
            EventKind::Unreachable,
            "no answer to SNMP or ping (simulated fibre cut)",
        )),
        17 => out.extend(EAST_STATIONS.iter().map(|d| {
            event(
                d,
                DEVICE_OBJECT,
                EventKind::Unreachable,
                "no answer to SNMP or ping",
            )
        })),
        240 => out.push(event(
            "bh-east",
            DEVICE_OBJECT,
            EventKind::Reachable,
            "answering again",
        )),
        242 => out.extend(
            EAST_STATIONS
                .iter()
                .map(|d| event(d, DEVICE_OBJECT, EventKind::Reachable, "answering again")),
        ),
        _ => {}
    }

    // A flapping radio link: down for 2 s every 12 s, six times.
    if (10..=70).contains(&t) && (t - 10).is_multiple_of(12) {
        out.push(event(
            "bs-west-2",
            "ifIndex=1",
            EventKind::LinkDown,
            "linkDown: ifIndex 1 (radio-1, ifAlias \"to bh-west\")",
        ));
    }
    if (12..=72).contains(&t) && (t - 12).is_multiple_of(12) {
        out.push(event(
            "bs-west-2",
            "ifIndex=1",
            EventKind::LinkUp,
            "linkUp: ifIndex 1 (radio-1)",
        ));
    }

    if !t.is_multiple_of(POLL_SECS) {
        return out;
    }
    let poll = t / POLL_SECS;
    for (i, d) in EAST_STATIONS.iter().chain(&WEST_STATIONS).enumerate() {
        if east_down && EAST_STATIONS.contains(d) {
            continue;
        }
        let base = 12.0 + 2.0 * i as f64;
        let latency = if *d == "bs-west-1" {
            ramp(t, 5, 60, base, 260.0, 200)
        } else {
            base + jitter(i, poll) * 3.0
        };
        out.push(sample(d, DEVICE_OBJECT, Metric::LatencyMs, round1(latency)));
        let loss = if *d == MAINTENANCE_DEVICE && (30..150).contains(&t) {
            8.0
        } else {
            (jitter(i + 20, poll) * 0.1).abs()
        };
        out.push(sample(d, DEVICE_OBJECT, Metric::LossPct, round1(loss)));
    }
    for (i, d) in ["bh-east", "bh-west"].iter().enumerate() {
        if *d == "bh-east" && east_down {
            continue;
        }
        let base = 48.0 + 4.0 * i as f64;
        let utilisation = if *d == "bh-west" {
            ramp(t, 30, 120, base, 93.0, 200)
        } else {
            base + jitter(i + 40, poll) * 4.0
        };
        out.push(sample(
            d,
            "ifIndex=1",
            Metric::UtilisationOutPct,
            round1(utilisation),
        ));
        out.push(sample(
            d,
            DEVICE_OBJECT,
            Metric::LatencyMs,
            round1(4.0 + i as f64),
        ));
    }
    out
}

/// Days of utilisation history the demo starts with.
pub const HISTORY_DAYS: i64 = 35;

/// The uplinks' last [`HISTORY_DAYS`] (from midnight) before `now`, every 15 minutes, so the
/// capacity page has a month to show and the forecasts a trend from the start: `bh-west`'s
/// busy hour grows 5 % a week from 60 % (so its predictive alarm is standing: 90 % about
/// four weeks ahead), `bh-east`'s is flat at 55 %, and `core-r1`'s grows 1 % a week from 40 %.
/// They are links the live story does not sample, so history and story never disagree. A
/// diurnal shape peaking at 20:00, quieter weekends, a little noise; below the backhaul's
/// warning level (`config/demo.toml`), so the history raises no threshold alarm.
pub fn history(now: Timestamp) -> Vec<(Timestamp, Ingest)> {
    const STEP_MS: i64 = 900_000;
    const DAY_MS: i64 = 86_400_000;
    let links = [
        (
            "bh-west",
            "ifIndex=2",
            Metric::UtilisationOutPct,
            60.0,
            1.05_f64,
        ),
        ("bh-east", "ifIndex=2", Metric::UtilisationOutPct, 55.0, 1.0),
        (
            "core-r1",
            "ifIndex=20",
            Metric::UtilisationInPct,
            40.0,
            1.01,
        ),
    ];
    let end = now.as_millis() - now.as_millis().rem_euclid(STEP_MS);
    let start = (end - HISTORY_DAYS * DAY_MS).div_euclid(DAY_MS) * DAY_MS;
    let mut out = Vec::new();
    for (n, at) in (start..end).step_by(STEP_MS as usize).enumerate() {
        let days = (at - start) as f64 / DAY_MS as f64;
        let hour = at.rem_euclid(DAY_MS) as f64 / 3_600_000.0;
        // 1970-01-01 was a Thursday: days since the epoch + 3, modulo 7, is 5 or 6 at weekends.
        let weekend = if (at.div_euclid(DAY_MS) + 3).rem_euclid(7) >= 5 {
            0.9
        } else {
            1.0
        };
        let shape = 0.45 + 0.55 * (-((hour - 20.0) / 3.0).powi(2)).exp();
        for (i, (device, object, metric, busy, weekly)) in links.iter().enumerate() {
            let value = busy
                * weekly.powf(days / 7.0)
                * weekend
                * shape
                * (1.0 + 0.01 * jitter(60 + i, n as u64));
            let at = Timestamp::from_millis(at);
            let series = SeriesKey {
                device: (*device).to_owned(),
                object: (*object).to_owned(),
                metric: *metric,
            };
            out.push((
                at,
                Ingest::Sample(Sample {
                    series,
                    at,
                    value: round1(value),
                    context: None,
                }),
            ));
        }
    }
    out
}

/// From `from` at `start` rising evenly to `to` at `top`, held there until `until`, then `from`.
fn ramp(t: u64, start: u64, top: u64, from: f64, to: f64, until: u64) -> f64 {
    if t < start || t >= until {
        from
    } else if t >= top {
        to
    } else {
        from + (to - from) * (t - start) as f64 / (top - start) as f64
    }
}

/// Repeatable noise in [-1, 1] per (series, poll), so runs look alike and tests can rely on it.
fn jitter(series: usize, poll: u64) -> f64 {
    let mut x = (series as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ poll.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 31;
    x = x.wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 29;
    (x % 2001) as f64 / 1000.0 - 1.0
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(t: u64) -> Vec<DeviceEvent> {
        tick(t, Timestamp::from_millis(0))
            .into_iter()
            .filter_map(|i| match i {
                Ingest::Event(e) => Some(e),
                _ => None,
            })
            .collect()
    }

    fn value(t: u64, device: &str, metric: Metric) -> Option<f64> {
        tick(t, Timestamp::from_millis(0))
            .into_iter()
            .find_map(|i| match i {
                Ingest::Sample(s) if s.series.device == device && s.series.metric == metric => {
                    Some(s.value)
                }
                _ => None,
            })
    }

    #[test]
    fn the_story_has_its_faults_and_its_recovery() {
        assert_eq!(value(0, "bs-west-1", Metric::LatencyMs), Some(20.0));
        assert_eq!(value(60, "bs-west-1", Metric::LatencyMs), Some(260.0));
        assert!(value(210, "bs-west-1", Metric::LatencyMs).unwrap() < 50.0);
        // While the backhaul is down, nothing is polled behind it.
        assert_eq!(value(100, "bs-east-1", Metric::LatencyMs), None);
        assert_eq!(value(100, "bh-east", Metric::LatencyMs), None);
        assert!(value(100, "bs-west-1", Metric::LatencyMs).is_some());
        assert_eq!(value(100, MAINTENANCE_DEVICE, Metric::LossPct), Some(8.0));
        assert_eq!(value(200, "bh-west", Metric::UtilisationOutPct), Some(52.0));
        assert_eq!(value(190, "bh-west", Metric::UtilisationOutPct), Some(93.0));
        let downs: usize = (0..CYCLE_SECS)
            .map(|t| {
                events(t)
                    .iter()
                    .filter(|e| e.kind == EventKind::LinkDown)
                    .count()
            })
            .sum();
        let ups: usize = (0..CYCLE_SECS)
            .map(|t| {
                events(t)
                    .iter()
                    .filter(|e| e.kind == EventKind::LinkUp)
                    .count()
            })
            .sum();
        assert_eq!((downs, ups), (6, 6));
        let unreachable: Vec<String> = (0..CYCLE_SECS)
            .flat_map(events)
            .filter(|e| e.kind == EventKind::Unreachable)
            .map(|e| e.device)
            .collect();
        assert_eq!(unreachable.len(), 5);
        assert_eq!(unreachable[0], "bh-east");
        let reachable = (0..CYCLE_SECS)
            .flat_map(events)
            .filter(|e| e.kind == EventKind::Reachable)
            .count();
        assert_eq!(reachable, 5, "everything that went away comes back");
    }

    #[test]
    fn jitter_stays_in_range_and_repeats() {
        for s in 0..50 {
            for p in 0..100 {
                let j = jitter(s, p);
                assert!((-1.0..=1.0).contains(&j));
                assert_eq!(j, jitter(s, p));
            }
        }
    }
}
