//! Service and customer impact at fleet size: 10,000 devices (a core, 20 regional and 200
//! aggregation routers, 9,779 base stations with 3 cells each), 221 services (one per
//! aggregation, one k-of-n per region, one national percent) and 10,000,000 customers.
//!
//! Prints, per transition and per lookup, the median and p99 of:
//! - `annotate`: impact on one alarm transition (services touched, customers behind it,
//!   fault cost, the service tree recomputed) with 500 alarms active;
//! - `import`: the CRM export of 10 M rows parsed as CSV and written to a sled store, as
//!   `noctua customers import` sends it (parts of 1,000,000 rows);
//! - `lookup`: `GET /api/v1/impact?customer=` without HTTP: the customer's place from the store,
//!   then the faults that reach it, with 500 customer-affecting alarms active.
//!
//! Run with `cargo bench --bench impact` (about two minutes; the store takes ~1.5 GB in a
//! temporary directory). `IMPACT_CUSTOMERS=1000000` runs a smaller one.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test or bench reports

use std::time::{Duration, Instant};

use noctua::alarm::AlarmManager;
use noctua::config::{Config, DeviceConfig, MemberConfig, Reduce, ServiceConfig};
use noctua::impact::ImpactEngine;
use noctua::impact::customers::{CustomerKeys, Places, parse_csv};
use noctua::model::{DeviceEvent, EventKind, Place, Role, Severity, Timestamp};
use noctua::store::Store;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const REGIONS: usize = 20;
const AGGREGATIONS: usize = 200;
const DEVICES: usize = 10_000;
const CELLS: usize = 3;
const ACTIVE: usize = 500;
const PART: usize = 1_000_000;

fn device(name: String, parent: Option<String>, site: String, role: Role) -> DeviceConfig {
    DeviceConfig {
        name,
        address: "192.0.2.1".parse().unwrap(),
        role,
        parent,
        site: Some(site),
        tags: vec![],
        credentials: None,
        snmp_port: 161,
        poll_interval: None,
        profile: None,
        agent: Default::default(),
        interfaces: vec![],
    }
}

fn member(device: Option<String>, service: Option<String>) -> MemberConfig {
    MemberConfig {
        device,
        object: None,
        site: None,
        tag: None,
        service,
        weight: 1.0,
        ignore: vec![],
        cap: None,
        fix: None,
    }
}

fn service(name: String, reduce: Reduce, members: Vec<MemberConfig>) -> ServiceConfig {
    let n = members.len();
    ServiceConfig {
        name,
        description: String::new(),
        reduce,
        k: (reduce == Reduce::KOfN).then_some(n.div_ceil(2)),
        percent: (reduce == Reduce::Percent).then_some(25.0),
        share: None,
        severity: Severity::Critical,
        degraded_at: Severity::Minor,
        members,
    }
}

fn network() -> Config {
    let mut devices = vec![device("core".into(), None, "dc".into(), Role::Router)];
    for r in 0..REGIONS {
        devices.push(device(
            format!("reg{r}"),
            Some("core".into()),
            format!("hub{r}"),
            Role::Router,
        ));
    }
    for a in 0..AGGREGATIONS {
        let parent = format!("reg{}", a % REGIONS);
        devices.push(device(
            format!("agg{a}"),
            Some(parent),
            format!("agg-site{a}"),
            Role::Router,
        ));
    }
    let stations = DEVICES - devices.len();
    for b in 0..stations {
        let parent = format!("agg{}", b % AGGREGATIONS);
        devices.push(device(
            format!("bs{b}"),
            Some(parent),
            format!("site{b}"),
            Role::BaseStation,
        ));
    }
    let mut services: Vec<ServiceConfig> = (0..AGGREGATIONS)
        .map(|a| {
            service(
                format!("data-agg{a}"),
                Reduce::Highest,
                vec![member(Some(format!("agg{a}")), None)],
            )
        })
        .collect();
    for r in 0..REGIONS {
        let members = (0..AGGREGATIONS)
            .filter(|a| a % REGIONS == r)
            .map(|a| member(None, Some(format!("data-agg{a}"))))
            .collect();
        services.push(service(format!("region{r}"), Reduce::KOfN, members));
    }
    let regions = (0..REGIONS)
        .map(|r| member(None, Some(format!("region{r}"))))
        .collect();
    services.push(service("national".into(), Reduce::Percent, regions));
    Config {
        devices,
        services,
        ..Config::default()
    }
}

/// Customer `i`'s row: two in three on a site, one in three on a cell.
fn row(i: usize, stations: usize, out: &mut String) {
    use std::fmt::Write as _;
    let b = i % stations;
    if i.is_multiple_of(3) {
        let _ = writeln!(out, "C{i:08},,bs{b}/{}", (i / stations) % CELLS);
    } else {
        let _ = writeln!(out, "C{i:08},site{b},");
    }
}

fn down(device: &str, at: i64, kind: EventKind) -> DeviceEvent {
    DeviceEvent {
        device: device.to_owned(),
        object: "device".into(),
        kind,
        at: Timestamp::from_millis(at),
        text: String::new(),
        severity: None,
    }
}

fn quantiles(mut d: Vec<Duration>) -> (Duration, Duration) {
    d.sort();
    (d[d.len() / 2], d[d.len() * 99 / 100])
}

fn main() {
    let customers: usize = std::env::var("IMPACT_CUSTOMERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let config = network();
    let stations = DEVICES - 1 - REGIONS - AGGREGATIONS;

    // The import, part by part, as the CLI sends it.
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let places = Places::new(&config);
    let keys = CustomerKeys::plain();
    let started = Instant::now();
    let (mut parse, mut write) = (Duration::ZERO, Duration::ZERO);
    let mut part = String::with_capacity(PART * 24);
    for first in (0..customers).step_by(PART) {
        part.clear();
        part.push_str("customer,site,cell\n");
        for i in first..(first + PART).min(customers) {
            row(i, stations, &mut part);
        }
        let t = Instant::now();
        let parsed = parse_csv(part.as_bytes(), 1, &places, &keys);
        parse += t.elapsed();
        assert_eq!(parsed.bad, 0, "{:?}", parsed.errors);
        let t = Instant::now();
        store.import_customers(&parsed.rows).unwrap();
        write += t.elapsed();
    }
    store.flush().unwrap();
    let took = started.elapsed();
    println!(
        "import: {customers} customers in {:.1} s ({:.0} k rows/s; parse {:.1} s, store {:.1} s), store {} MB",
        took.as_secs_f64(),
        customers as f64 / took.as_secs_f64() / 1e3,
        parse.as_secs_f64(),
        write.as_secs_f64(),
        store.size_on_disk() >> 20
    );

    // 500 alarms active: base stations down across the network, none nested. The store is
    // closed meanwhile, so its background work does not share the two cores with what is timed.
    let counts = store.customer_counts().unwrap();
    assert_eq!(counts.values().sum::<u64>(), customers as u64);
    drop(store);
    let mut manager = AlarmManager::new(&config);
    let mut engine = ImpactEngine::new(&config, counts, &[], &[], vec![]);
    let mut at = 0i64;
    for b in (0..stations).step_by(stations / ACTIVE).take(ACTIVE) {
        at += 1000;
        let mut ts = manager.on_event(down(&format!("bs{b}"), at, EventKind::Unreachable));
        engine.annotate(&mut ts);
        manager.keep_impact(&ts);
    }
    // Transitions to time: aggregation routers going down (the symptoms under them change
    // suppression: several transitions each) and coming back, base stations flapping.
    let mut per_transition = Vec::new();
    for round in 0..2_000usize {
        at += 1000;
        let target = if round.is_multiple_of(4) {
            format!("agg{}", (round / 4) % AGGREGATIONS)
        } else {
            format!("bs{}", (round * 7919) % stations)
        };
        for kind in [EventKind::Unreachable, EventKind::Reachable] {
            let mut ts = manager.on_event(down(&target, at, kind));
            ts.extend(manager.on_tick(Timestamp::from_millis(at + 600_000)));
            if ts.is_empty() {
                continue;
            }
            let n = ts.len() as u32;
            let t = Instant::now();
            std::hint::black_box(engine.annotate(&mut ts));
            per_transition.push(t.elapsed() / n);
            manager.keep_impact(&ts);
            at += 600_000;
        }
    }
    let mean = per_transition.iter().sum::<Duration>() / per_transition.len() as u32;
    let (p50, p99) = quantiles(per_transition.clone());
    println!(
        "annotate: {} batches, per transition mean {:.1} µs, p50 {:.1} µs, p99 {:.1} µs ({} alarms active)",
        per_transition.len(),
        mean.as_secs_f64() * 1e6,
        p50.as_secs_f64() * 1e6,
        p99.as_secs_f64() * 1e6,
        manager.active_count()
    );

    // The lookup: customer → place (a store read) → the faults that reach it.
    let store = Store::open(dir.path()).unwrap();
    let view = engine.view();
    let now = Timestamp::from_millis(at);
    let mut lookups = Vec::with_capacity(100_000);
    let mut hits = 0usize;
    for i in 0..100_000usize {
        let id = format!("C{:08}", (i * 104_729) % customers);
        let t = Instant::now();
        let place: Place = store.customer_place(&keys.key(&id)).unwrap().unwrap();
        hits += usize::from(!view.lookup(&place, now).is_empty());
        lookups.push(t.elapsed());
    }
    let (p50, p99) = quantiles(lookups);
    println!(
        "lookup: 100000 customers, p50 {:.1} µs, p99 {:.1} µs ({hits} touched by a fault)",
        p50.as_secs_f64() * 1e6,
        p99.as_secs_f64() * 1e6
    );
}
