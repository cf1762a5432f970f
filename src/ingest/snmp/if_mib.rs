//! The IF-MIB interface table: which columns a poll reads (ifTable and ifXTable), and one
//! poll of a device: sysUpTime and sysName, the columns the filter keeps, then the profile's
//! extra OIDs.

use std::collections::HashMap;
use std::time::Instant;

use snmp2::{Oid, Value};

use super::counters::{Counter, IfReading, Oper, Reading};
use crate::model::Timestamp;

use super::session::{Polled, Poller};
use super::walk::{poll_profile, walk};
use super::{Filter, PollError};

/// IF-MIB columns the poller reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Col {
    Descr,
    Type,
    Admin,
    Oper,
    In32,
    InUcast32,
    InDiscards,
    InErrors,
    Out32,
    OutUcast32,
    OutDiscards,
    OutErrors,
    Name,
    HcIn,
    HcInUcast,
    HcInMcast,
    HcInBcast,
    HcOut,
    HcOutUcast,
    HcOutMcast,
    HcOutBcast,
    HighSpeed,
    Alias,
    Discontinuity,
}

const IF_ENTRY: [u64; 9] = [1, 3, 6, 1, 2, 1, 2, 2, 1];
const IFX_ENTRY: [u64; 10] = [1, 3, 6, 1, 2, 1, 31, 1, 1, 1];

/// (column, table, column number).
const COLUMNS: [(Col, bool, u64); 24] = [
    (Col::Descr, false, 2),
    (Col::Type, false, 3),
    (Col::Admin, false, 7),
    (Col::Oper, false, 8),
    (Col::In32, false, 10),
    (Col::InUcast32, false, 11),
    (Col::InDiscards, false, 13),
    (Col::InErrors, false, 14),
    (Col::Out32, false, 16),
    (Col::OutUcast32, false, 17),
    (Col::OutDiscards, false, 19),
    (Col::OutErrors, false, 20),
    (Col::Name, true, 1),
    (Col::HcIn, true, 6),
    (Col::HcInUcast, true, 7),
    (Col::HcInMcast, true, 8),
    (Col::HcInBcast, true, 9),
    (Col::HcOut, true, 10),
    (Col::HcOutUcast, true, 11),
    (Col::HcOutMcast, true, 12),
    (Col::HcOutBcast, true, 13),
    (Col::HighSpeed, true, 15),
    (Col::Alias, true, 18),
    (Col::Discontinuity, true, 19),
];

fn column_oid(ifx: bool, n: u64) -> Oid<'static> {
    let mut arcs: Vec<u64> = if ifx {
        IFX_ENTRY.to_vec()
    } else {
        IF_ENTRY.to_vec()
    };
    arcs.push(n);
    #[allow(clippy::expect_used)] // constant arcs under 1.3.6.1: always a valid OID
    Oid::from(&arcs).expect("IF-MIB column OIDs are valid")
}

const SYS_UPTIME: [u64; 9] = [1, 3, 6, 1, 2, 1, 1, 3, 0];
const SYS_NAME: [u64; 9] = [1, 3, 6, 1, 2, 1, 1, 5, 0];

/// Everything one interface row carried, before HC/32-bit columns are resolved.
#[derive(Debug, Default)]
struct Row {
    descr: Option<String>,
    name: Option<String>,
    alias: Option<String>,
    if_type: Option<u32>,
    admin: Option<i64>,
    oper: Option<i64>,
    high_speed: Option<u64>,
    discontinuity: Option<u32>,
    c32: [Option<u32>; 8],
    hc: [Option<u64>; 8],
}

impl Row {
    fn set(&mut self, col: Col, v: &Value<'_>) {
        let int = match v {
            Value::Integer(n) => Some(*n),
            Value::Unsigned32(n) | Value::Counter32(n) | Value::Timeticks(n) => Some(i64::from(*n)),
            _ => None,
        };
        let c32 = |i: usize, row: &mut Row| {
            if let Value::Counter32(n) = v {
                row.c32[i] = Some(*n);
            }
        };
        let hc = |i: usize, row: &mut Row| {
            if let Value::Counter64(n) = v {
                row.hc[i] = Some(*n);
            }
        };
        let text = || match v {
            Value::OctetString(b) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        };
        match col {
            Col::Descr => self.descr = text(),
            Col::Name => self.name = text().filter(|n| !n.is_empty()),
            Col::Alias => self.alias = text().filter(|n| !n.trim().is_empty()),
            Col::Type => self.if_type = int.and_then(|n| u32::try_from(n).ok()),
            Col::Admin => self.admin = int,
            Col::Oper => self.oper = int,
            Col::HighSpeed => self.high_speed = int.and_then(|n| u64::try_from(n).ok()),
            Col::Discontinuity => self.discontinuity = int.and_then(|n| u32::try_from(n).ok()),
            Col::In32 => c32(0, self),
            Col::InUcast32 => c32(1, self),
            Col::InDiscards => c32(2, self),
            Col::InErrors => c32(3, self),
            Col::Out32 => c32(4, self),
            Col::OutUcast32 => c32(5, self),
            Col::OutDiscards => c32(6, self),
            Col::OutErrors => c32(7, self),
            Col::HcIn => hc(0, self),
            Col::HcInUcast => hc(1, self),
            Col::HcInMcast => hc(2, self),
            Col::HcInBcast => hc(3, self),
            Col::HcOut => hc(4, self),
            Col::HcOutUcast => hc(5, self),
            Col::HcOutMcast => hc(6, self),
            Col::HcOutBcast => hc(7, self),
        }
    }

    /// HC columns when the agent has them, 32-bit ones otherwise. Without `utilisation` the
    /// speed is left out, so no utilisation is computed (bits, packets and errors still are).
    fn reading(&self, speed_override: Option<u64>, utilisation: bool) -> IfReading {
        let hc_packets = |a: usize| -> Option<Counter> {
            let parts = [self.hc[a], self.hc[a + 1], self.hc[a + 2]];
            parts
                .iter()
                .any(Option::is_some)
                .then(|| Counter::C64(parts.iter().flatten().fold(0u64, |s, v| s.wrapping_add(*v))))
        };
        let c32 = |i: usize| self.c32[i].map(Counter::C32);
        IfReading {
            name: self.name.clone().or_else(|| self.descr.clone()),
            alias: self.alias.clone(),
            speed_bps: speed_override
                .or_else(|| self.high_speed.filter(|&s| s > 0).map(|s| s * 1_000_000))
                .filter(|_| utilisation),
            admin_up: self.admin.map(|a| a == 1),
            oper: self.oper.map(Oper::from_mib),
            in_octets: self.hc[0].map(Counter::C64).or_else(|| c32(0)),
            out_octets: self.hc[4].map(Counter::C64).or_else(|| c32(4)),
            in_packets: hc_packets(1).or_else(|| c32(1)),
            out_packets: hc_packets(5).or_else(|| c32(5)),
            in_discards: c32(2),
            in_errors: c32(3),
            out_discards: c32(6),
            out_errors: c32(7),
            discontinuity: self.discontinuity,
        }
    }
}

pub(super) async fn poll(agent: &mut Poller, filter: &Filter) -> Result<Polled, PollError> {
    #[allow(clippy::expect_used)] // constant arcs under 1.3.6.1: always valid OIDs
    let sys = [
        Oid::from(&SYS_UPTIME).expect("valid"),
        Oid::from(&SYS_NAME).expect("valid"),
    ];
    let started = Instant::now();
    let uptime = agent
        .request(&sys, None, |pdu| {
            pdu.varbinds
                .into_iter()
                .find_map(|(_, v)| match v {
                    Value::Timeticks(t) => Some(t),
                    _ => None,
                })
                .ok_or_else(|| PollError::Agent("no sysUpTime in the reply".to_owned()))
        })
        .await?;
    let rtt = started.elapsed();
    // Our clock at the agent's: the time of the sysUpTime reply, not of the poll's end, so
    // comparing the two clocks between polls is not thrown off by a slow walk after it.
    let at_ms = Timestamp::now().as_millis();

    let mut rows: HashMap<u32, Row> = HashMap::new();
    let mut fetched = 0u64;
    if agent.target.profile.if_mib {
        let prefixes: Vec<Oid<'static>> = COLUMNS
            .iter()
            .map(|&(_, ifx, n)| column_oid(ifx, n))
            .collect();
        fetched += walk(agent, &prefixes, |col, index, value| {
            rows.entry(index).or_default().set(COLUMNS[col].0, value);
        })
        .await?;
    }
    let (kpis, kpi_values) = poll_profile(agent).await?;
    fetched += kpi_values;
    let interfaces = rows
        .into_iter()
        .filter(|(_, r)| {
            let name = r.name.as_deref().or(r.descr.as_deref()).unwrap_or("");
            filter.wants(name, r.if_type)
        })
        .map(|(i, r)| {
            let speed = agent.target.speeds.get(&i).copied().or_else(|| {
                let name = r.name.as_deref().or(r.descr.as_deref())?;
                agent.target.speeds_by_name.get(name).copied()
            });
            let name = r.name.as_deref().or(r.descr.as_deref()).unwrap_or("");
            (i, r.reading(speed, filter.utilisation(name, r.if_type)))
        })
        .collect();
    let reading = Reading {
        at_ms,
        uptime,
        interfaces,
        kpis,
    };
    Ok(Polled {
        reading,
        rtt,
        values: fetched + 2,
    })
}
