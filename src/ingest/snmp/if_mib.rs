//! The IF-MIB interface table: which columns a poll reads (ifTable and ifXTable), what a
//! discovery learns of the table ([`Inventory`]), and one poll of a device: sysUpTime and
//! ifTableLastChange, the table, then the profile's extra OIDs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use snmp2::{Oid, Value};

use super::counters::{Counter, IfReading, Oper, Reading};
use crate::model::Timestamp;
use crate::telemetry::Discovery;

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

impl Col {
    /// Names, types, aliases and speeds: read at discovery only.
    fn descriptive(self) -> bool {
        matches!(
            self,
            Col::Descr | Col::Type | Col::Name | Col::Alias | Col::HighSpeed
        )
    }

    /// The 64-bit column that makes this 32-bit one redundant on a row that has both.
    fn shadowed_by(self) -> Option<Col> {
        match self {
            Col::In32 => Some(Col::HcIn),
            Col::InUcast32 => Some(Col::HcInUcast),
            Col::Out32 => Some(Col::HcOut),
            Col::OutUcast32 => Some(Col::HcOutUcast),
            _ => None,
        }
    }

    /// Its place in [`COLUMNS`] (declared in the same order; a test holds them together), as a
    /// bit of [`Row::seen`]: no search per value.
    fn bit(self) -> u32 {
        1 << self as u32
    }
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
/// ifTableLastChange.0: sysUpTime when a row was last added or removed.
const IF_TABLE_LAST_CHANGE: [u64; 10] = [1, 3, 6, 1, 2, 1, 31, 1, 5, 0];

/// Everything one interface row carried, before HC/32-bit columns are resolved.
#[derive(Debug, Default, Clone)]
struct Row {
    /// Which columns ([`COLUMNS`] order, one bit each) the agent returned for the row.
    seen: u32,
    descr: Option<Arc<str>>,
    name: Option<Arc<str>>,
    alias: Option<Arc<str>>,
    if_type: Option<u32>,
    admin: Option<i64>,
    oper: Option<i64>,
    high_speed: Option<u64>,
    discontinuity: Option<u32>,
    c32: [Option<u32>; 8],
    hc: [Option<u64>; 8],
}

impl Row {
    /// The descriptive columns of `known` (a discovery's), into a routine poll's row.
    fn describe(&mut self, known: &Row) {
        self.descr.clone_from(&known.descr);
        self.name.clone_from(&known.name);
        self.alias.clone_from(&known.alias);
        self.if_type = known.if_type;
        self.high_speed = known.high_speed;
    }

    fn set(&mut self, col: Col, v: &Value<'_>) {
        self.seen |= col.bit();
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
            Value::OctetString(b) => Some(Arc::from(String::from_utf8_lossy(b))),
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

/// What the last discovery learned of a device's interface table, so that a routine poll
/// reads only the columns that move, and only those the agent has.
#[derive(Debug, Default)]
pub(super) struct Inventory {
    /// When the table was last read whole.
    discovered: Option<Instant>,
    /// sysUpTime at the last poll.
    uptime: u32,
    /// ifTableLastChange at the last discovery, if the agent has it.
    last_change: Option<u32>,
    /// Every row's descriptive columns, and (in `seen`) which routine columns it had.
    rows: Rows,
    /// The columns a routine poll reads, as indices into [`COLUMNS`].
    routine: Vec<usize>,
}

impl Inventory {
    /// Why the table must be read whole at this poll, if it must.
    fn stale(
        &self,
        uptime: u32,
        last_change: Option<u32>,
        every: Duration,
        now: Instant,
    ) -> Option<Discovery> {
        let Some(at) = self.discovered else {
            return Some(Discovery::First);
        };
        if uptime < self.uptime {
            Some(Discovery::Restart)
        } else if last_change != self.last_change {
            Some(Discovery::LastChange)
        } else if now.saturating_duration_since(at) >= every {
            Some(Discovery::Interval)
        } else {
            None
        }
    }

    /// Learns the table from a whole read: routine columns are the moving ones some row had,
    /// less 32-bit counters where every row that had one also had its 64-bit twin.
    fn learn(&mut self, rows: &Rows, last_change: Option<u32>, now: Instant) {
        let had = |bit: u32| rows.iter().any(|(_, r)| r.seen & bit != 0);
        self.routine = (0..COLUMNS.len())
            .filter(|&c| {
                let col = COLUMNS[c].0;
                let redundant = col.shadowed_by().is_some_and(|hc| {
                    rows.iter()
                        .all(|(_, r)| r.seen & col.bit() == 0 || r.seen & hc.bit() != 0)
                });
                !col.descriptive() && had(col.bit()) && !redundant
            })
            .collect();
        let mask = self.routine.iter().fold(0, |m, &c| m | 1 << c);
        self.rows = rows
            .iter()
            .map(|(i, r)| {
                let mut known = Row {
                    seen: r.seen & mask,
                    ..Row::default()
                };
                known.describe(r);
                (*i, known)
            })
            .collect();
        self.last_change = last_change;
        self.discovered = Some(now);
    }

    /// A routine poll's rows with their descriptive columns filled in; `None` if the table is
    /// not the shape the last discovery found (a row or a column came or went).
    fn complete(&self, mut rows: Rows) -> Option<Rows> {
        if rows.len() != self.rows.len() {
            return None;
        }
        // Both in ifIndex order: row by row.
        for ((i, r), (j, known)) in rows.iter_mut().zip(&self.rows) {
            if i != j || r.seen != known.seen {
                return None;
            }
            r.describe(known);
        }
        Some(rows)
    }
}

/// Rows by ifIndex, in ifIndex order.
type Rows = Vec<(u32, Row)>;

/// Rows as a walk fills them. Every column returns its rows in ifIndex order, so a value's
/// row is the one after its column's last, found without hashing; a row only some columns
/// have is put in its place.
struct Table {
    rows: Rows,
    /// Per column: where its next row is expected.
    next: Vec<usize>,
}

impl Table {
    fn row(&mut self, column: usize, index: u32) -> &mut Row {
        let expected = self.next[column];
        let at = match self.rows.get(expected) {
            Some((i, _)) if *i == index => expected,
            _ => match self.rows.binary_search_by_key(&index, |r| r.0) {
                Ok(at) => at,
                Err(at) => {
                    self.rows.insert(at, (index, Row::default()));
                    at
                }
            },
        };
        self.next[column] = at + 1;
        &mut self.rows[at].1
    }
}

/// Walks `columns` (indices into [`COLUMNS`]) into rows.
async fn read_table(agent: &mut Poller, columns: &[usize]) -> Result<(Rows, u64), PollError> {
    let prefixes: Vec<Oid<'static>> = columns
        .iter()
        .map(|&c| column_oid(COLUMNS[c].1, COLUMNS[c].2))
        .collect();
    let mut table = Table {
        rows: Vec::with_capacity(agent.inventory.rows.len()),
        next: vec![0; columns.len()],
    };
    let fetched = walk(agent, &prefixes, |k, index, value| {
        table.row(k, index).set(COLUMNS[columns[k]].0, value);
    })
    .await?;
    Ok((table.rows, fetched))
}

/// The interface table: its moving columns, or all of it when the inventory is stale or the
/// routine read finds it changed.
async fn interfaces(
    agent: &mut Poller,
    uptime: u32,
    last_change: Option<u32>,
) -> Result<(Rows, u64), PollError> {
    let now = Instant::now();
    let every = agent.target.plan.discovery_interval;
    let mut why = agent.inventory.stale(uptime, last_change, every, now);
    let mut fetched = 0;
    if why.is_none() {
        let routine = agent.inventory.routine.clone();
        let (rows, n) = read_table(agent, &routine).await?;
        fetched += n;
        match agent.inventory.complete(rows) {
            Some(rows) => return Ok((rows, fetched)),
            None => why = Some(Discovery::Changed),
        }
    }
    if let Some(why) = why {
        agent
            .metrics
            .snmp_discoveries
            .with_label_values(&[why.as_str()])
            .inc();
    }
    let all: Vec<usize> = (0..COLUMNS.len()).collect();
    let (rows, n) = read_table(agent, &all).await?;
    agent.inventory.learn(&rows, last_change, now);
    Ok((rows, fetched + n))
}

pub(super) async fn poll(agent: &mut Poller, filter: &Filter) -> Result<Polled, PollError> {
    #[allow(clippy::expect_used)] // constant arcs under 1.3.6.1: always valid OIDs
    let sys = [
        Oid::from(&SYS_UPTIME).expect("valid"),
        Oid::from(&IF_TABLE_LAST_CHANGE).expect("valid"),
    ];
    let started = Instant::now();
    let (uptime, last_change) = agent
        .request(&sys, None, |pdu| {
            // In the order asked; an agent without ifTableLastChange says noSuchObject.
            let mut ticks = pdu.varbinds.map(|(_, v)| match v {
                Value::Timeticks(t) => Some(t),
                _ => None,
            });
            let uptime = ticks
                .next()
                .flatten()
                .ok_or_else(|| PollError::Agent("no sysUpTime in the reply".to_owned()))?;
            Ok((uptime, ticks.next().flatten()))
        })
        .await?;
    let rtt = started.elapsed();
    // Our clock at the agent's: the time of the sysUpTime reply, not of the poll's end, so
    // comparing the two clocks between polls is not thrown off by a slow walk after it.
    let at_ms = Timestamp::now().as_millis();

    let (rows, mut fetched) = match agent.target.profile.if_mib {
        true => interfaces(agent, uptime, last_change).await?,
        false => (Rows::new(), 0),
    };
    agent.inventory.uptime = uptime;
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
        values: fetched + 1 + u64::from(last_change.is_some()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A row as an agent returns it: a name, a type, an oper status, and counters of either
    /// width.
    fn row(name: &str, hc: bool, c32: bool) -> Row {
        let mut r = Row::default();
        r.set(Col::Name, &Value::OctetString(name.as_bytes()));
        r.set(Col::Type, &Value::Integer(6));
        r.set(Col::Oper, &Value::Integer(1));
        if hc {
            r.set(Col::HcIn, &Value::Counter64(10));
            r.set(Col::HcOut, &Value::Counter64(20));
        }
        if c32 {
            r.set(Col::In32, &Value::Counter32(1));
            r.set(Col::Out32, &Value::Counter32(2));
        }
        r
    }

    fn routine_columns(inv: &Inventory) -> Vec<Col> {
        inv.routine.iter().map(|&c| COLUMNS[c].0).collect()
    }

    #[test]
    fn columns_are_listed_in_the_order_they_are_declared() {
        for (i, (col, _, _)) in COLUMNS.iter().enumerate() {
            assert_eq!(col.bit(), 1 << i, "{col:?}");
        }
    }

    #[test]
    fn routine_polls_skip_descriptive_missing_and_redundant_columns() {
        let t0 = Instant::now();
        let mut inv = Inventory::default();
        let rows = Vec::from([
            (1, row("ge-0/0/1", true, true)),
            (2, row("ge-0/0/2", true, true)),
        ]);
        inv.learn(&rows, None, t0);
        assert_eq!(routine_columns(&inv), [Col::Oper, Col::HcIn, Col::HcOut]);
        // A row without 64-bit counters keeps the 32-bit columns in every routine poll.
        let rows = Vec::from([
            (1, row("ge-0/0/1", true, true)),
            (3, row("fe-0/0/3", false, true)),
        ]);
        inv.learn(&rows, None, t0);
        assert_eq!(
            routine_columns(&inv),
            [Col::Oper, Col::In32, Col::Out32, Col::HcIn, Col::HcOut]
        );
    }

    #[test]
    fn a_routine_poll_of_the_same_table_is_completed_and_a_changed_one_refused() {
        let t0 = Instant::now();
        let mut inv = Inventory::default();
        let rows = Vec::from([
            (1, row("ge-0/0/1", true, true)),
            (2, row("ge-0/0/2", true, false)),
        ]);
        inv.learn(&rows, Some(5), t0);
        let moving = |hc: bool| {
            let mut r = Row::default();
            r.set(Col::Oper, &Value::Integer(2));
            if hc {
                r.set(Col::HcIn, &Value::Counter64(11));
                r.set(Col::HcOut, &Value::Counter64(21));
            }
            r
        };
        let done = inv
            .complete(Vec::from([(1, moving(true)), (2, moving(true))]))
            .unwrap();
        assert_eq!(done[1].1.name.as_deref(), Some("ge-0/0/2"));
        assert_eq!(done[1].1.if_type, Some(6));
        assert_eq!(done[1].1.oper, Some(2));
        assert_eq!(done[0].1.hc[0], Some(11));
        // A new row, a row gone, or a row that lost a column: read the table again.
        assert!(inv.complete(Vec::from([(1, moving(true))])).is_none());
        let extra = Vec::from([(1, moving(true)), (2, moving(true)), (4, moving(true))]);
        assert!(inv.complete(extra).is_none());
        assert!(
            inv.complete(Vec::from([(1, moving(true)), (2, moving(false))]))
                .is_none()
        );
        assert!(
            inv.complete(Vec::from([(1, moving(true)), (9, moving(true))]))
                .is_none()
        );
    }

    #[test]
    fn a_walk_finds_each_values_row_in_order_and_places_rows_some_columns_lack() {
        let mut t = Table {
            rows: Rows::new(),
            next: vec![0; 2],
        };
        for i in [1, 2, 5] {
            t.row(0, i).set(Col::Oper, &Value::Integer(1));
        }
        // The second column has a row the first lacks (3), and lacks one it has (2).
        for i in [1, 3, 5] {
            t.row(1, i).set(Col::HcIn, &Value::Counter64(u64::from(i)));
        }
        let indexes: Vec<u32> = t.rows.iter().map(|r| r.0).collect();
        assert_eq!(indexes, [1, 2, 3, 5]);
        assert_eq!(t.rows[2].1.hc[0], Some(3));
        assert_eq!(t.rows[3].1.oper, Some(1));
        assert_eq!(t.rows[3].1.hc[0], Some(5));
        assert_eq!(t.rows[1].1.hc[0], None);
    }

    #[test]
    fn the_table_is_read_again_after_a_restart_a_row_change_or_the_interval() {
        let t0 = Instant::now();
        let every = Duration::from_secs(900);
        let mut inv = Inventory::default();
        assert_eq!(inv.stale(100, None, every, t0), Some(Discovery::First));
        inv.learn(&Vec::from([(1, row("ge-0/0/1", true, false))]), Some(7), t0);
        inv.uptime = 100;
        let soon = t0 + Duration::from_secs(60);
        assert_eq!(inv.stale(6_100, Some(7), every, soon), None);
        assert_eq!(
            inv.stale(50, Some(7), every, soon),
            Some(Discovery::Restart)
        );
        assert_eq!(
            inv.stale(6_100, Some(6_000), every, soon),
            Some(Discovery::LastChange)
        );
        assert_eq!(
            inv.stale(6_100, None, every, soon),
            Some(Discovery::LastChange)
        );
        assert_eq!(
            inv.stale(90_100, Some(7), every, t0 + every),
            Some(Discovery::Interval)
        );
    }
}
