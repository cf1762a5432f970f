//! Walking columns with GETBULK, every column at once and each carried on from its last OID,
//! and reading a profile's extra OIDs (scalars by GET, columns walked).

use snmp2::{Oid, Value};

use super::counters::{self, Counter, KpiReading};
use crate::config::profile;

use super::PollError;
use super::session::Poller;

/// A walk longer than this many requests is cut (a looping agent must not hold a task forever).
const MAX_REQUESTS_PER_WALK: usize = 10_000;

/// Reads the profile's extra OIDs: scalars with GET (20 per request), columns walked.
pub(super) async fn poll_profile(agent: &mut Poller) -> Result<(Vec<KpiReading>, u64), PollError> {
    let metrics = agent.target.profile.metrics.clone();
    let mut out = Vec::new();
    let mut fetched = 0u64;
    let oid = |m: &profile::ProfileMetric| profile::arcs(&m.oid).and_then(|a| Oid::from(&a).ok());
    let scalars: Vec<(&profile::ProfileMetric, Oid<'static>)> = metrics
        .iter()
        .filter(|m| !m.table)
        .filter_map(|m| Some((m, oid(m)?)))
        .collect();
    for chunk in scalars.chunks(20) {
        let oids: Vec<Oid<'static>> = chunk.iter().map(|(_, o)| o.clone()).collect();
        let values = agent
            .request(&oids, None, |pdu| {
                Ok(pdu.varbinds.map(|(_, v)| kpi_value(&v)).collect::<Vec<_>>())
            })
            .await?;
        for ((m, _), v) in chunk.iter().zip(values) {
            if let Some(value) = v {
                fetched += 1;
                out.push(KpiReading::new(m, m.name.clone(), value));
            }
        }
    }
    let tables: Vec<(&profile::ProfileMetric, Oid<'static>)> = metrics
        .iter()
        .filter(|m| m.table)
        .filter_map(|m| Some((m, oid(m)?)))
        .collect();
    if !tables.is_empty() {
        let prefixes: Vec<Oid<'static>> = tables.iter().map(|(_, o)| o.clone()).collect();
        fetched += walk(agent, &prefixes, |col, index, value| {
            let m = tables[col].0;
            if let Some(v) = kpi_value(value) {
                out.push(KpiReading::new(m, format!("{}.{index}", m.name), v));
            }
        })
        .await?;
    }
    Ok((out, fetched))
}

fn kpi_value(v: &Value<'_>) -> Option<counters::KpiValue> {
    Some(match v {
        Value::Integer(n) => counters::KpiValue::Gauge(*n as f64),
        Value::Unsigned32(n) | Value::Timeticks(n) => counters::KpiValue::Gauge(f64::from(*n)),
        Value::Counter32(n) => counters::KpiValue::Counter(Counter::C32(*n)),
        Value::Counter64(n) => counters::KpiValue::Counter(Counter::C64(*n)),
        Value::OctetString(b) => {
            counters::KpiValue::Gauge(std::str::from_utf8(b).ok()?.trim().parse().ok()?)
        }
        _ => return None,
    })
}

impl KpiReading {
    fn new(m: &profile::ProfileMetric, object: String, value: counters::KpiValue) -> Self {
        let value = match (m.kind, value) {
            // A gauge typed as a counter by the agent is still read as a gauge.
            (profile::Kind::Gauge, counters::KpiValue::Counter(Counter::C32(n))) => {
                counters::KpiValue::Gauge(f64::from(n))
            }
            (profile::Kind::Gauge, counters::KpiValue::Counter(Counter::C64(n))) => {
                counters::KpiValue::Gauge(n as f64)
            }
            // A counter typed as an integer: its width is unknown, take 64 bits.
            (profile::Kind::Counter, counters::KpiValue::Gauge(g)) => {
                counters::KpiValue::Counter(Counter::C64(g.max(0.0) as u64))
            }
            (_, v) => v,
        };
        KpiReading {
            object,
            metric: m.feeds.metric(),
            scale: m.scale,
            value,
        }
    }
}

/// Walks table columns, the plan's `columns-per-request` at a time; `visit(column, row index,
/// value)` sees every value while the reply is still borrowed. Returns how many values came
/// back.
pub(super) async fn walk(
    agent: &mut Poller,
    prefixes: &[Oid<'static>],
    mut visit: impl FnMut(usize, u32, &Value<'_>) + Send,
) -> Result<u64, PollError> {
    let plan = agent.target.plan;
    let size = plan.columns_per_request.max(1);
    let mut fetched = 0;
    for (g, group) in prefixes.chunks(size).enumerate() {
        let visit =
            &mut |col: usize, index: u32, value: &Value<'_>| visit(g * size + col, index, value);
        fetched += walk_together(agent, group, plan.values_per_request, visit).await?;
    }
    Ok(fetched)
}

/// Walks table columns together, GETBULK row by row with `values` per request, each column
/// carried on from its last OID until it leaves its subtree.
async fn walk_together(
    agent: &mut Poller,
    prefixes: &[Oid<'static>],
    values: usize,
    visit: &mut (dyn FnMut(usize, u32, &Value<'_>) + Send),
) -> Result<u64, PollError> {
    let mut cursor: Vec<Option<Oid<'static>>> = prefixes.iter().cloned().map(Some).collect();
    let mut fetched = 0u64;
    for _ in 0..MAX_REQUESTS_PER_WALK {
        let active: Vec<usize> = (0..prefixes.len())
            .filter(|&i| cursor[i].is_some())
            .collect();
        if active.is_empty() {
            break;
        }
        let oids: Vec<Oid<'static>> = active.iter().filter_map(|&i| cursor[i].clone()).collect();
        let reps = (values / active.len()).max(1) as u32;
        let n = active.len();
        let (next, got) = agent
            .request(&oids, Some(reps), |pdu| {
                // The last OID seen per column, still borrowing the reply: copied once at the
                // end, not once per value.
                let mut last: Vec<Option<Oid<'_>>> = vec![None; n];
                let mut done = vec![false; n];
                let mut got = 0u64;
                for (k, (oid, value)) in pdu.varbinds.enumerate() {
                    let slot = k % n;
                    let col = active[slot];
                    if done[slot] {
                        continue;
                    }
                    let index = oid
                        .as_bytes()
                        .strip_prefix(prefixes[col].as_bytes())
                        .and_then(single_arc)
                        .and_then(|i| u32::try_from(i).ok());
                    let (false, Some(index)) = (matches!(value, Value::EndOfMibView), index) else {
                        // Past the column (or a row index this poller does not read): done.
                        done[slot] = true;
                        continue;
                    };
                    visit(col, index, &value);
                    last[slot] = Some(oid);
                    got += 1;
                }
                let mut next: Vec<Option<Oid<'static>>> =
                    last.iter().map(|o| o.as_ref().map(Oid::to_owned)).collect();
                // A column whose OIDs did not advance would loop forever: end it.
                for (slot, n) in next.iter_mut().enumerate() {
                    if done[slot] || n.as_ref() == oids.get(slot) {
                        *n = None;
                    }
                }
                Ok((next, got))
            })
            .await?;
        fetched += got;
        for (slot, &i) in active.iter().enumerate() {
            cursor[i] = next[slot].clone();
        }
    }
    Ok(fetched)
}

/// The value of the BER-encoded OID tail `rest` if it is exactly one arc (a table index).
fn single_arc(rest: &[u8]) -> Option<u64> {
    let (last, head) = rest.split_last()?;
    if last & 0x80 != 0 || head.iter().any(|b| b & 0x80 == 0) || rest.len() > 9 {
        return None;
    }
    Some(
        rest.iter()
            .fold(0u64, |v, b| (v << 7) | u64::from(b & 0x7f)),
    )
}
