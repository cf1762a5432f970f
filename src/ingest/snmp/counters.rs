//! Interface counters between two polls into rates, utilisation and loss: a pure state machine
//! with time passed in. Its one rule is never to invent a spike. A counter that went backwards
//! is a Counter32 or Counter64 wrap (one wrap at most between polls); an agent restart
//! (sysUpTime went backwards), a changed `ifCounterDiscontinuityTime`, or a rate above what the
//! interface can carry skips that interval instead of producing a number.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::model::{DeviceEvent, EventKind, Metric, Sample, SeriesKey, Timestamp};

/// A counter value as the agent typed it, so a wrap is taken at the right width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    /// Counter32 (ifInOctets, ifInErrors, ...).
    C32(u32),
    /// Counter64 (the ifHC* columns).
    C64(u64),
}

impl Counter {
    /// The increase since `earlier`, assuming at most one wrap; `None` if the widths differ
    /// (the agent switched between HC and 32-bit columns: not comparable).
    pub fn since(self, earlier: Counter) -> Option<u64> {
        match (self, earlier) {
            (Counter::C32(now), Counter::C32(then)) => Some(u64::from(now.wrapping_sub(then))),
            (Counter::C64(now), Counter::C64(then)) => Some(now.wrapping_sub(then)),
            _ => None,
        }
    }
}

/// Operational status (IF-MIB ifOperStatus): only up and down matter for events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Oper {
    /// up(1).
    Up,
    /// down(2), lowerLayerDown(7), notPresent(6).
    Down,
    /// Anything else (testing, unknown, dormant).
    Other,
}

impl Oper {
    /// From the ifOperStatus integer.
    pub fn from_mib(v: i64) -> Self {
        match v {
            1 => Oper::Up,
            2 | 6 | 7 => Oper::Down,
            _ => Oper::Other,
        }
    }
}

/// What one poll read for one interface. Absent columns are `None`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IfReading {
    /// Interface name (ifName, else ifDescr).
    pub name: Option<Arc<str>>,
    /// ifAlias: what the operator wrote on the interface (`uplink to core-r1`).
    pub alias: Option<Arc<str>>,
    /// Speed in bit/s (ifHighSpeed × 10⁶, or a configured override).
    pub speed_bps: Option<u64>,
    /// ifAdminStatus is up(1).
    pub admin_up: Option<bool>,
    /// ifOperStatus.
    pub oper: Option<Oper>,
    /// Octets in (HC if present, else 32-bit).
    pub in_octets: Option<Counter>,
    /// Octets out.
    pub out_octets: Option<Counter>,
    /// Packets in (unicast + multicast + broadcast).
    pub in_packets: Option<Counter>,
    /// Packets out.
    pub out_packets: Option<Counter>,
    /// ifInErrors.
    pub in_errors: Option<Counter>,
    /// ifOutErrors.
    pub out_errors: Option<Counter>,
    /// ifInDiscards.
    pub in_discards: Option<Counter>,
    /// ifOutDiscards.
    pub out_discards: Option<Counter>,
    /// ifCounterDiscontinuityTime (TimeTicks).
    pub discontinuity: Option<u32>,
}

/// One poll of a device.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reading {
    /// When the poll's answer came (wall clock, Unix ms).
    pub at_ms: i64,
    /// sysUpTime in hundredths of a second.
    pub uptime: u32,
    /// Interfaces by ifIndex. A B-tree, not a hash map: it is kept between polls for every
    /// device, and a hash table of 1,000 interfaces has 2,048 slots (twice the memory).
    pub interfaces: BTreeMap<u32, IfReading>,
    /// Profile KPIs.
    pub kpis: Vec<KpiReading>,
}

/// A profile KPI value as read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum KpiValue {
    /// Taken as is (times the scale).
    Gauge(f64),
    /// Turned into a per-second rate.
    Counter(Counter),
}

/// One profile KPI of one poll.
#[derive(Debug, Clone, PartialEq)]
pub struct KpiReading {
    /// Series object (`name` or `name.ROW`).
    pub object: String,
    /// Series metric (from what it feeds).
    pub metric: Metric,
    /// Multiplier.
    pub scale: f64,
    /// Value.
    pub value: KpiValue,
}

/// Why an interface's interval was skipped. Counted; never a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// sysUpTime went backwards: the agent restarted and its counters with it.
    AgentRestart,
    /// ifCounterDiscontinuityTime changed.
    Discontinuity,
    /// The rate would exceed the interface speed (by more than 10 %): a reset, not traffic.
    Impossible,
    /// Too little time between polls to say anything.
    TooSoon,
}

/// Series and events derived from one poll, plus what was skipped.
#[derive(Debug, Default)]
pub struct Derived {
    /// Samples for detection.
    pub samples: Vec<Sample>,
    /// Oper-status changes and restarts.
    pub events: Vec<DeviceEvent>,
    /// (ifIndex, why) for every interface interval not turned into samples.
    pub skipped: Vec<(u32, Skip)>,
}

/// Per device: the previous reading.
#[derive(Debug, Default)]
pub struct Counters {
    previous: Option<Reading>,
}

/// Slack on the line-rate check: counter timing at the agent is not exactly the poll's.
const LINE_RATE_SLACK: f64 = 1.1;

impl Counters {
    /// Derives what changed since the previous reading of `device`, and keeps `now` for next
    /// time.
    pub fn update(&mut self, device: &str, now: Reading) -> Derived {
        let out = derive(device, self.previous.as_ref(), &now);
        self.previous = Some(now);
        out
    }

    /// [`Counters::update`] for a poll a trap asked for: every interface's state is reported,
    /// changed or not. A trap's `link_down` on an interface this poll sees up is then cleared
    /// (and a `link_up` trap on one it sees down raises it again), since between two polls the
    /// trap may be the only change the poller never saw.
    pub fn update_after_trap(&mut self, device: &str, now: Reading) -> Derived {
        let mut out = derive(device, self.previous.as_ref(), &now);
        let at = Timestamp::from_millis(now.at_ms);
        for (&i, r) in &now.interfaces {
            let already = out
                .events
                .iter()
                .any(|e| e.object == format!("ifIndex={i}"));
            let kind = match (r.admin_up, r.oper) {
                (_, Some(Oper::Up)) => EventKind::LinkUp,
                (Some(true), Some(Oper::Down)) => EventKind::LinkDown,
                _ => continue,
            };
            if !already {
                out.events.push(link_event(device, i, r, kind, at));
            }
        }
        sort(&mut out);
        self.previous = Some(now);
        out
    }
}

fn derive(device: &str, prev: Option<&Reading>, now: &Reading) -> Derived {
    let mut out = Derived::default();
    let at = Timestamp::from_millis(now.at_ms);
    let kpi = |k: &KpiReading, value: f64| Sample {
        series: SeriesKey {
            device: device.to_owned(),
            object: k.object.clone(),
            metric: k.metric,
        },
        at,
        value: value * k.scale,
        context: None,
    };
    for k in &now.kpis {
        if let KpiValue::Gauge(v) = k.value {
            out.samples.push(kpi(k, v));
        }
    }
    let Some(prev) = prev else {
        // First poll: no rates yet, but a link the operator wants up and is down is news.
        for (&i, r) in &now.interfaces {
            if r.admin_up == Some(true) && r.oper == Some(Oper::Down) {
                out.events
                    .push(link_event(device, i, r, EventKind::LinkDown, at));
            }
        }
        sort(&mut out);
        return out;
    };
    let wall = (now.at_ms - prev.at_ms) as f64 / 1000.0;
    let agent = f64::from(now.uptime.wrapping_sub(prev.uptime)) / 100.0;
    // sysUpTime went back (a 497-day wrap is not a restart), or advanced far less than our
    // clock did: the agent restarted in between, perhaps more than once.
    let restarted = (now.uptime < prev.uptime && prev.uptime - now.uptime < u32::MAX / 2)
        || agent + 1.0 < wall * 0.9;
    if restarted {
        out.events.push(DeviceEvent {
            device: device.to_owned(),
            object: crate::model::DEVICE_OBJECT.to_owned(),
            kind: EventKind::Reboot,
            at,
            text: format!(
                "sysUpTime {} s, then {} s after {wall:.0} s: agent restarted",
                prev.uptime / 100,
                now.uptime / 100
            ),
            severity: None,
        });
    }
    // The agent's own clock between polls, when it agrees with ours; else ours.
    let secs = if agent > 0.0 && (agent - wall).abs() <= wall * 0.1 {
        agent
    } else {
        wall
    };
    if !restarted && secs >= 1.0 {
        for k in &now.kpis {
            let KpiValue::Counter(c) = k.value else {
                continue;
            };
            let before = prev.kpis.iter().find(|p| p.object == k.object);
            if let Some(KpiValue::Counter(p)) = before.map(|p| p.value)
                && let Some(d) = c.since(p)
            {
                out.samples.push(kpi(k, d as f64 / secs));
            }
        }
    }
    for (&i, r) in &now.interfaces {
        let p = prev.interfaces.get(&i);
        match (p.and_then(|p| p.oper), r.oper) {
            (Some(Oper::Up), Some(Oper::Down)) => {
                out.events
                    .push(link_event(device, i, r, EventKind::LinkDown, at))
            }
            (Some(Oper::Down), Some(Oper::Up)) => {
                out.events
                    .push(link_event(device, i, r, EventKind::LinkUp, at))
            }
            _ => {}
        }
        let Some(p) = p else { continue };
        let skip = if restarted {
            Some(Skip::AgentRestart)
        } else if r.discontinuity != p.discontinuity {
            Some(Skip::Discontinuity)
        } else if secs < 1.0 {
            Some(Skip::TooSoon)
        } else {
            None
        };
        if let Some(skip) = skip {
            out.skipped.push((i, skip));
            continue;
        }
        match interface_samples(device, i, p, r, secs, at) {
            Ok(mut s) => out.samples.append(&mut s),
            Err(skip) => out.skipped.push((i, skip)),
        }
    }
    sort(&mut out);
    out
}

/// Deterministic order (the map's is not), so replays and tests see the same sequence.
fn sort(out: &mut Derived) {
    out.samples.sort_by(|a, b| {
        (&a.series.object, a.series.metric).cmp(&(&b.series.object, b.series.metric))
    });
    out.events.sort_by(|a, b| a.object.cmp(&b.object));
    out.skipped.sort_by_key(|s| s.0);
}

impl IfReading {
    /// How a person names the interface: `ifName (ifAlias)`, else what there is, else its
    /// index. The object id keeps the index (`ifIndex=3`), which is what stays stable.
    pub fn label(&self, if_index: u32) -> String {
        match (self.name.as_deref(), self.alias.as_deref()) {
            (Some(n), Some(a)) => format!("{n} ({a})"),
            (Some(n), None) => n.to_owned(),
            (None, Some(a)) => format!("ifIndex {if_index} ({a})"),
            (None, None) => format!("ifIndex {if_index}"),
        }
    }
}

fn link_event(device: &str, i: u32, r: &IfReading, kind: EventKind, at: Timestamp) -> DeviceEvent {
    let state = if kind == EventKind::LinkDown {
        "down"
    } else {
        "up"
    };
    DeviceEvent {
        device: device.to_owned(),
        object: format!("ifIndex={i}"),
        kind,
        at,
        text: format!("{}, ifIndex {i}, oper status {state}", r.label(i)),
        severity: None,
    }
}

fn delta(now: Option<Counter>, then: Option<Counter>) -> Option<u64> {
    now?.since(then?)
}

/// The samples of one interface between two readings, or why there are none.
fn interface_samples(
    device: &str,
    i: u32,
    p: &IfReading,
    r: &IfReading,
    secs: f64,
    at: Timestamp,
) -> Result<Vec<Sample>, Skip> {
    let in_octets = delta(r.in_octets, p.in_octets);
    let out_octets = delta(r.out_octets, p.out_octets);
    let speed = r.speed_bps.filter(|&s| s > 0);
    for d in [in_octets, out_octets].into_iter().flatten() {
        if let Some(speed) = speed
            && d as f64 * 8.0 / secs > speed as f64 * LINE_RATE_SLACK
        {
            return Err(Skip::Impossible);
        }
    }
    let object = format!("ifIndex={i}");
    // The interface's name goes with each sample, so an alarm on it says which one it is.
    let context: Arc<str> = Arc::from(r.label(i));
    let mut out = Vec::with_capacity(12);
    let mut push = |metric, value: f64| {
        out.push(Sample {
            series: SeriesKey {
                device: device.to_owned(),
                object: object.clone(),
                metric,
            },
            at,
            value,
            context: Some(context.clone()),
        })
    };
    for (octets, bits, util) in [
        (in_octets, Metric::BitsInPerSec, Metric::UtilisationInPct),
        (out_octets, Metric::BitsOutPerSec, Metric::UtilisationOutPct),
    ] {
        if let Some(d) = octets {
            let bps = d as f64 * 8.0 / secs;
            push(bits, bps);
            if let Some(speed) = speed {
                push(util, bps / speed as f64 * 100.0);
            }
        }
    }
    let in_packets = delta(r.in_packets, p.in_packets);
    let out_packets = delta(r.out_packets, p.out_packets);
    for (d, metric) in [
        (in_packets, Metric::PacketsInPerSec),
        (out_packets, Metric::PacketsOutPerSec),
    ] {
        if let Some(d) = d {
            push(metric, d as f64 / secs);
        }
    }
    let errors = [
        delta(r.in_errors, p.in_errors),
        delta(r.out_errors, p.out_errors),
    ];
    let discards = [
        delta(r.in_discards, p.in_discards),
        delta(r.out_discards, p.out_discards),
    ];
    if errors.iter().any(Option::is_some) {
        push(
            Metric::ErrorsPerSec,
            errors.iter().flatten().sum::<u64>() as f64 / secs,
        );
    }
    if discards.iter().any(Option::is_some) {
        push(
            Metric::DiscardsPerSec,
            discards.iter().flatten().sum::<u64>() as f64 / secs,
        );
    }
    // Loss: what was lost over what was offered, both directions together.
    let lost = errors.iter().chain(&discards).flatten().sum::<u64>();
    let offered = lost + in_packets.unwrap_or(0) + out_packets.unwrap_or(0);
    if offered > 0 {
        push(Metric::LossPct, lost as f64 / offered as f64 * 100.0);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn reading(at_s: i64, uptime_s: u32, ifs: Vec<(u32, IfReading)>) -> Reading {
        Reading {
            at_ms: at_s * 1000,
            uptime: uptime_s * 100,
            interfaces: ifs.into_iter().collect(),
            kpis: Vec::new(),
        }
    }

    fn iface(in_octets: Counter, speed_mbps: u64) -> IfReading {
        IfReading {
            name: Some("ge-0/0/1".into()),
            speed_bps: Some(speed_mbps * 1_000_000),
            admin_up: Some(true),
            oper: Some(Oper::Up),
            in_octets: Some(in_octets),
            ..IfReading::default()
        }
    }

    fn value(d: &Derived, metric: Metric) -> Option<f64> {
        d.samples
            .iter()
            .find(|s| s.series.metric == metric)
            .map(|s| s.value)
    }

    #[test]
    fn counter32_wrap_is_one_wrap_not_a_spike() {
        let mut c = Counters::default();
        c.update(
            "r",
            reading(0, 100, vec![(1, iface(Counter::C32(u32::MAX - 999), 1))]),
        );
        // 1,000 octets up to the wrap, 24,000 after: 25,000 octets in 10 s = 20 kbit/s.
        let d = c.update(
            "r",
            reading(10, 110, vec![(1, iface(Counter::C32(24_000), 1))]),
        );
        assert_eq!(value(&d, Metric::BitsInPerSec), Some(20_000.0));
        assert_eq!(value(&d, Metric::UtilisationInPct), Some(2.0));
        assert!(d.skipped.is_empty());
    }

    #[test]
    fn agent_restart_skips_the_interval_and_reports_a_reboot() {
        let mut c = Counters::default();
        c.update(
            "r",
            reading(0, 5_000, vec![(1, iface(Counter::C64(9_000_000), 1))]),
        );
        let d = c.update(
            "r",
            reading(60, 30, vec![(1, iface(Counter::C64(1_000), 1))]),
        );
        assert!(d.samples.is_empty());
        assert_eq!(d.skipped, [(1, Skip::AgentRestart)]);
        assert_eq!(d.events.len(), 1);
        assert_eq!(d.events[0].kind, EventKind::Reboot);
        // The next interval counts from the restarted values.
        let d = c.update(
            "r",
            reading(120, 90, vec![(1, iface(Counter::C64(76_000), 1))]),
        );
        assert_eq!(value(&d, Metric::BitsInPerSec), Some(10_000.0));
    }

    #[test]
    fn a_changed_discontinuity_time_or_an_impossible_rate_is_skipped() {
        let mut c = Counters::default();
        let mut a = iface(Counter::C64(0), 1);
        a.discontinuity = Some(10);
        c.update("r", reading(0, 100, vec![(1, a.clone())]));
        let mut b = iface(Counter::C64(1_000), 1);
        b.discontinuity = Some(20);
        let d = c.update("r", reading(10, 110, vec![(1, b.clone())]));
        assert_eq!(d.skipped, [(1, Skip::Discontinuity)]);
        // 10 Mbit in 10 s on a 1 Mbit/s link: a counter reset, not traffic.
        let mut e = iface(Counter::C64(1_000 + 12_500_000), 1);
        e.discontinuity = Some(20);
        let d = c.update("r", reading(20, 120, vec![(1, e)]));
        assert_eq!(d.skipped, [(1, Skip::Impossible)]);
        assert!(d.samples.is_empty());
    }

    #[test]
    fn loss_is_lost_over_offered_and_oper_changes_are_events() {
        let mut c = Counters::default();
        let base = |errors, discards, packets, oper| IfReading {
            in_errors: Some(Counter::C32(errors)),
            out_discards: Some(Counter::C32(discards)),
            in_packets: Some(Counter::C64(packets)),
            oper: Some(oper),
            admin_up: Some(true),
            ..IfReading::default()
        };
        let d = c.update("r", reading(0, 100, vec![(4, base(0, 0, 0, Oper::Down))]));
        assert_eq!(d.events[0].kind, EventKind::LinkDown); // down while wanted up
        let d = c.update("r", reading(10, 110, vec![(4, base(3, 2, 995, Oper::Up))]));
        assert_eq!(value(&d, Metric::LossPct), Some(0.5));
        assert_eq!(value(&d, Metric::ErrorsPerSec), Some(0.3));
        assert_eq!(d.events[0].kind, EventKind::LinkUp);
        // No traffic at all: no loss figure rather than a made-up 0 % or NaN.
        let d = c.update("r", reading(20, 120, vec![(4, base(3, 2, 995, Oper::Up))]));
        assert_eq!(value(&d, Metric::LossPct), None);
        assert!(d.events.is_empty(), "no change, no event: {:?}", d.events);
        // A trap said link down in between; the poll it asked for sees the link up, and says
        // so, which clears the trap's alarm.
        let d = c.update_after_trap("r", reading(25, 125, vec![(4, base(3, 2, 995, Oper::Up))]));
        let kinds: Vec<EventKind> = d.events.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, [EventKind::LinkUp]);
        assert_eq!(d.events[0].object, "ifIndex=4");
        // And the other way: a link-up trap, but the poll sees it down.
        let d = c.update_after_trap(
            "r",
            reading(30, 130, vec![(4, base(3, 2, 995, Oper::Down))]),
        );
        let kinds: Vec<EventKind> = d.events.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, [EventKind::LinkDown], "one event, not a repeat");
    }

    proptest! {
        /// Whatever the counters do between polls — grow by any amount a link can carry, wrap,
        /// reset with an agent restart — no utilisation above line rate (plus slack) comes out,
        /// and an interval that grew normally yields exactly its increase.
        #[test]
        fn never_a_spike(steps in proptest::collection::vec((0u64..1_250_000, any::<bool>(), any::<bool>()), 1..60)) {
            let mut c = Counters::default();
            let mut octets: u32 = 4_000_000_000;
            let mut uptime = 1_000u32;
            let mut at = 0i64;
            c.update("r", reading(0, uptime, vec![(1, iface(Counter::C32(octets), 1))]));
            for (grow, restart, ten_x) in steps {
                at += 10;
                uptime = if restart { 5 } else { uptime + 10 };
                let grow = if ten_x && !restart { grow * 10 } else { grow };
                octets = if restart { grow as u32 } else { octets.wrapping_add(grow as u32) };
                let d = c.update("r", reading(at, uptime, vec![(1, iface(Counter::C32(octets), 1))]));
                if let Some(u) = value(&d, Metric::UtilisationInPct) {
                    prop_assert!(u <= 110.0, "{}", u);
                    prop_assert!(!restart);
                    prop_assert!((u - grow as f64 * 8.0 / 10.0 / 1e6 * 100.0).abs() < 1e-9);
                } else {
                    prop_assert!(restart || grow as f64 * 8.0 / 10.0 > 1.1e6);
                }
            }
        }
    }
}
