//! Flow records into per-interval series: a pure state machine with time passed in.
//!
//! Traffic is attributed by flow time, not arrival time: a flow's bytes and packets are spread
//! over the intervals its first..last packet covers, in proportion to the overlap (integer
//! shares, remainder to the last interval, so totals are exact). An interval is emitted once
//! `lateness` has passed after its end; a record arriving after that for an emitted interval is
//! counted as late and dropped, never merged into a later interval.
//!
//! Per interface (input and output ifIndex) and direction: bits/s, packets/s, flows/s and, when
//! the speed is known, utilisation %. Per exporter: bits/s, packets/s, flows/s, the share of
//! single-packet SYN-only TCP flows, and the most distinct sources seen toward one destination.
//! Interfaces an exporter reported recently get zeros for intervals in which it exported but
//! they saw nothing, so a link going quiet is visible.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::Arc;

use crate::ingest::netflow::decode::FlowRecord;
use crate::ingest::netflow::sketch::{Distinct, TopK, hash_addr};
use tokio::sync::watch;

use crate::message::InterfaceSpeeds;
use crate::model::{DEVICE_OBJECT, FastMap, Metric, Sample, SeriesKey, Timestamp};

/// What the aggregator knows about an exporter.
#[derive(Debug, Clone, PartialEq)]
pub struct Exporter {
    /// Device name (or the address, for exporters allowed by CIDR only).
    pub name: String,
    /// Interface speeds in bit/s by ifIndex, for utilisation.
    pub speeds: HashMap<u32, u64>,
    /// Sampling interval that overrides what the exporter reports.
    pub sampling: Option<u32>,
}

/// Counts of what the aggregator refused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Refused {
    /// Records (wholly or partly) for intervals already emitted.
    pub late: u64,
    /// Records ending implausibly far after the current time.
    pub future: u64,
    /// How far before the oldest open interval the last late record ended, in ms.
    pub last_late_by_ms: i64,
}

/// Direction on an interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Dir {
    In,
    Out,
}

const TALKERS: usize = 8;
/// Destinations tracked per exporter and interval for the distinct-sources estimate: the ones
/// with the most flows (Space-Saving), since a flooded destination gets most of them.
const DESTINATIONS: usize = 16;
/// How far after `now` a flow may end before it is refused (exporter clock skew).
const MAX_FUTURE_MS: i64 = 5 * 60_000;
/// For how long an interface that went quiet still gets zeros.
const QUIET_EMIT_MS: i64 = 10 * 60_000;

#[derive(Debug, Default)]
struct IfCounters {
    bytes: u64,
    packets: u64,
    flows: u64,
    talkers: TopK<(IpAddr, IpAddr), TALKERS>,
}

#[derive(Debug, Default)]
struct ExporterCounters {
    bytes: u64,
    packets: u64,
    flows: u64,
    syn_only: u64,
    syn_targets: TopK<IpAddr, 4>,
    /// The busiest destinations by flows, each with its distinct sources (same slot).
    destinations: TopK<IpAddr, DESTINATIONS>,
    sources: [Distinct; DESTINATIONS],
}

impl ExporterCounters {
    /// The per-flow counts: flows, SYN-only flows and their targets, sources per destination.
    fn count(&mut self, record: &FlowRecord, syn_only: bool) {
        self.flows += 1;
        if syn_only {
            self.syn_only += 1;
            self.syn_targets.add(record.dst, 1);
        }
        let (slot, fresh) = self.destinations.add(record.dst, 1);
        if fresh {
            // A destination that took over a slot starts its own count of sources.
            self.sources[slot] = Distinct::default();
        }
        self.sources[slot].insert(hash_addr(record.src));
    }
}

#[derive(Debug, Default)]
struct Bucket {
    interfaces: FastMap<(u32, u32, Dir), IfCounters>,
    exporters: FastMap<u32, ExporterCounters>,
}

/// Turns flow records into series samples.
#[derive(Debug)]
pub struct Aggregator {
    interval: i64,
    lateness: i64,
    exporters: Vec<Exporter>,
    /// Start of the oldest interval not yet emitted; `None` until the first record.
    watermark: Option<i64>,
    buckets: BTreeMap<i64, Bucket>,
    /// (exporter, ifIndex, direction) → end of the last interval it carried traffic.
    recent: HashMap<(u32, u32, Dir), i64>,
    refused: Refused,
    /// Speeds the SNMP poller learned, for interfaces the config gives none.
    learned: Option<watch::Receiver<InterfaceSpeeds>>,
}

impl Aggregator {
    /// An aggregator over these exporters (indexed by position) with the interval and lateness
    /// in milliseconds.
    pub fn new(exporters: Vec<Exporter>, interval_ms: i64, lateness_ms: i64) -> Self {
        Self {
            interval: interval_ms.max(1),
            lateness: lateness_ms.max(0),
            exporters,
            watermark: None,
            buckets: BTreeMap::new(),
            recent: HashMap::new(),
            refused: Refused::default(),
            learned: None,
        }
    }

    /// Takes interface speeds from the SNMP poller where the config has none.
    pub fn learn_speeds(&mut self, speeds: watch::Receiver<InterfaceSpeeds>) {
        self.learned = Some(speeds);
    }

    /// Adds an exporter; returns its index.
    pub fn add_exporter(&mut self, exporter: Exporter) -> u32 {
        self.exporters.push(exporter);
        (self.exporters.len() - 1) as u32
    }

    /// The name of exporter `index` (a device, or an address).
    pub fn exporter_name(&self, index: u32) -> &str {
        self.exporters
            .get(index as usize)
            .map_or("?", |e| e.name.as_str())
    }

    /// Puts a new exporter in the place of an evicted one, dropping what the old one left in
    /// open intervals (it is gone; its partial counts would be charged to the newcomer).
    pub fn replace_exporter(&mut self, index: u32, exporter: Exporter) {
        if let Some(slot) = self.exporters.get_mut(index as usize) {
            *slot = exporter;
        }
        for bucket in self.buckets.values_mut() {
            bucket.exporters.remove(&index);
            bucket.interfaces.retain(|k, _| k.0 != index);
        }
        self.recent.retain(|k, _| k.0 != index);
    }

    /// What was refused so far.
    pub fn refused(&self) -> Refused {
        self.refused
    }

    fn floor(&self, t: i64) -> i64 {
        t.div_euclid(self.interval) * self.interval
    }

    /// Adds one record from exporter `exporter` (an index), heard at `now` (Unix ms).
    pub fn add(&mut self, exporter: u32, record: &FlowRecord, now: i64) {
        let Some(info) = self.exporters.get(exporter as usize) else {
            return;
        };
        let scale = u64::from(info.sampling.unwrap_or(record.sampling).max(1));
        let bytes = record.bytes.saturating_mul(scale);
        let packets = record.packets.saturating_mul(scale);
        let end = record.end_ms;
        let start = record.start_ms.min(end);
        if end > now.saturating_add(MAX_FUTURE_MS) {
            self.refused.future += 1;
            return;
        }
        let watermark = *self.watermark.get_or_insert_with(|| {
            (now - self.lateness - self.interval).div_euclid(self.interval) * self.interval
        });
        if end < watermark {
            self.refused.late += 1;
            self.refused.last_late_by_ms = watermark - end;
            return;
        }
        let interval = self.interval;
        // A flow ending exactly on a boundary belongs to the interval before it.
        let end_bucket = self.floor(if end > start { end - 1 } else { end });
        let duration = (end - start).max(0) as u128;
        // Share of a flow's total for `ms` of its duration (integer, rounds down).
        let frac = |v: u64, ms: i64| (u128::from(v) * ms.max(0) as u128 / duration.max(1)) as u64;
        let first = self.floor(start.max(watermark));
        let (mut left_bytes, mut left_packets) = (bytes, packets);
        if start < first {
            // The part before the oldest open interval is dropped, not moved.
            self.refused.late += 1;
            left_bytes -= frac(bytes, first - start).min(left_bytes);
            left_packets -= frac(packets, first - start).min(left_packets);
        }
        let syn_only =
            record.protocol == 6 && record.tcp_flags & 0x3f == 0x02 && record.packets <= 1;
        let mut b = first;
        while b <= end_bucket {
            let last = b == end_bucket;
            let (share_bytes, share_packets) = if last {
                (left_bytes, left_packets)
            } else {
                let overlap = (b + interval).min(end) - b.max(start);
                (
                    frac(bytes, overlap).min(left_bytes),
                    frac(packets, overlap).min(left_packets),
                )
            };
            left_bytes -= share_bytes;
            left_packets -= share_packets;
            let bucket = self.buckets.entry(b).or_default();
            for key in [
                (exporter, record.input, Dir::In),
                (exporter, record.output, Dir::Out),
            ] {
                let c = bucket.interfaces.entry(key).or_default();
                c.bytes += share_bytes;
                c.packets += share_packets;
                c.talkers.add((record.src, record.dst), share_bytes);
                // Counts and context go to the interval the flow ended in.
                c.flows += u64::from(last);
            }
            let e = bucket.exporters.entry(exporter).or_default();
            e.bytes += share_bytes;
            e.packets += share_packets;
            if last {
                e.count(record, syn_only);
            }
            b += interval;
        }
    }

    /// Emits every interval that ended at least `lateness` before `now`, oldest first.
    pub fn flush(&mut self, now: i64, emit: &mut impl FnMut(Sample)) {
        while let Some((&start, _)) = self.buckets.first_key_value() {
            if start + self.interval + self.lateness > now {
                break;
            }
            self.emit_first(emit);
        }
        if let Some(w) = self.watermark {
            let due = self.floor(now - self.lateness) - self.interval;
            if due > w {
                self.watermark = Some(due);
            }
        }
    }

    /// Emits everything still open (end of a replay, or shutdown).
    pub fn finish(&mut self, emit: &mut impl FnMut(Sample)) {
        while !self.buckets.is_empty() {
            self.emit_first(emit);
        }
    }

    fn emit_first(&mut self, emit: &mut impl FnMut(Sample)) {
        let Some((start, bucket)) = self.buckets.pop_first() else {
            return;
        };
        let end = start + self.interval;
        self.watermark = Some(self.watermark.map_or(end, |w| w.max(end)));
        let at = Timestamp::from_millis(end);
        let secs = self.interval as f64 / 1000.0;
        let rate = |v: u64| v as f64 / secs;
        let mut out: Vec<Sample> = Vec::new();
        let mut push = |device: &str, object: String, metric, value, context: Option<String>| {
            out.push(Sample {
                series: SeriesKey {
                    device: device.to_owned(),
                    object,
                    metric,
                },
                at,
                value,
                context: context.map(Arc::from),
            })
        };

        // Interfaces with traffic, plus recently active ones of exporters that spoke.
        for key in bucket.interfaces.keys() {
            self.recent.insert(*key, end);
        }
        self.recent.retain(|_, last| end - *last <= QUIET_EMIT_MS);
        let mut keys: Vec<(u32, u32, Dir)> = self
            .recent
            .keys()
            .filter(|k| bucket.exporters.contains_key(&k.0))
            .copied()
            .collect();
        keys.sort_unstable();
        let idle = IfCounters::default();
        for key @ (exporter, if_index, dir) in keys {
            let Some(info) = self.exporters.get(exporter as usize) else {
                continue;
            };
            let c = bucket.interfaces.get(&key).unwrap_or(&idle);
            let object = format!("ifIndex={if_index}");
            let (bits, packets, flows, utilisation) = match dir {
                Dir::In => (
                    Metric::BitsInPerSec,
                    Metric::PacketsInPerSec,
                    Metric::FlowsInPerSec,
                    Metric::UtilisationInPct,
                ),
                Dir::Out => (
                    Metric::BitsOutPerSec,
                    Metric::PacketsOutPerSec,
                    Metric::FlowsOutPerSec,
                    Metric::UtilisationOutPct,
                ),
            };
            let bps = rate(c.bytes) * 8.0;
            push(&info.name, object.clone(), bits, bps, None);
            push(&info.name, object.clone(), packets, rate(c.packets), None);
            push(&info.name, object.clone(), flows, rate(c.flows), None);
            let speed = info
                .speeds
                .get(&if_index)
                .copied()
                .or_else(|| self.learned.as_ref()?.borrow().get(&info.name, if_index));
            if let Some(speed) = speed.filter(|&s| s > 0) {
                let context = talkers_text(&c.talkers, c.bytes);
                push(
                    &info.name,
                    object,
                    utilisation,
                    bps / speed as f64 * 100.0,
                    context,
                );
            }
        }

        let mut exporters: Vec<(&u32, &ExporterCounters)> = bucket.exporters.iter().collect();
        exporters.sort_unstable_by_key(|e| *e.0);
        for (&exporter, e) in exporters {
            let Some(info) = self.exporters.get(exporter as usize) else {
                continue;
            };
            let device = DEVICE_OBJECT.to_owned();
            push(
                &info.name,
                device.clone(),
                Metric::BitsPerSec,
                rate(e.bytes) * 8.0,
                None,
            );
            push(
                &info.name,
                device.clone(),
                Metric::PacketsPerSec,
                rate(e.packets),
                None,
            );
            push(
                &info.name,
                device.clone(),
                Metric::FlowsPerSec,
                rate(e.flows),
                None,
            );
            let share = if e.flows == 0 {
                0.0
            } else {
                e.syn_only as f64 / e.flows as f64 * 100.0
            };
            let target = e.syn_targets.top().first().map(|&(dst, n)| {
                format!("SYN-only flows mostly toward {dst} ({n} of {})", e.syn_only)
            });
            push(
                &info.name,
                device.clone(),
                Metric::SynOnlyPct,
                share,
                target,
            );
            let widest = (0..DESTINATIONS)
                .filter_map(|i| Some((e.sources[i].estimate().round(), e.destinations.get(i)?.0)))
                .max_by(|a, b| a.0.total_cmp(&b.0).then_with(|| b.1.cmp(&a.1)));
            let (sources, context) = match widest {
                Some((n, dst)) => (n, Some(format!("widest fan-in: {n} sources → {dst}"))),
                None => (0.0, None),
            };
            push(
                &info.name,
                device,
                Metric::DistinctSources,
                sources,
                context,
            );
        }
        for s in out {
            emit(s);
        }
    }
}

/// "top talkers 10.2.0.5 → 10.9.1.1 41%, ..." for the heaviest pairs of an interval.
fn talkers_text(talkers: &TopK<(IpAddr, IpAddr), TALKERS>, total: u64) -> Option<String> {
    if total == 0 {
        return None;
    }
    let mut text = String::from("top talkers");
    for (i, ((src, dst), bytes)) in talkers.top().into_iter().take(3).enumerate() {
        let pct = (bytes.min(total) as f64 / total as f64 * 100.0).round();
        let sep = if i == 0 { " " } else { ", " };
        let _ = write!(text, "{sep}{src} → {dst} {pct}%");
    }
    Some(text)
}
