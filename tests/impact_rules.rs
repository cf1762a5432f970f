//! Impact's rules through the real alarm manager: customers behind each element, counted once
//! at the root cause, customer-minutes, CSV rows, and the reduce functions as property tests.
//! (Here rather than in `src/impact`: a pure core may not import another, the alarm manager.)
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test or bench reports

use std::collections::{HashMap, HashSet};

use proptest::prelude::*;

use noctua::alarm::AlarmManager;
use noctua::config::{Config, DeviceConfig, MemberConfig, Reduce, ServiceConfig, Topology};
use noctua::impact::ImpactEngine;
use noctua::impact::customers::{Counts, CustomerKeys, Places, Reach, parse_csv};
use noctua::model::{
    DeviceEvent, EventKind, Place, Role, ServiceStatus, Severity, Timestamp, Transition,
};

fn device(name: &str, parent: Option<&str>, site: &str, role: Role) -> DeviceConfig {
    DeviceConfig {
        name: name.into(),
        address: "192.0.2.1".parse().unwrap(),
        role,
        parent: parent.map(Into::into),
        site: Some(site.into()),
        tags: vec![],
        credentials: None,
        snmp_port: 161,
        poll_interval: None,
        profile: None,
        agent: Default::default(),
        interfaces: vec![],
    }
}

fn member(device: &str) -> MemberConfig {
    MemberConfig {
        device: Some(device.into()),
        object: None,
        site: None,
        tag: None,
        service: None,
        weight: 1.0,
        ignore: vec![],
        cap: None,
        fix: None,
    }
}

fn down(dev: &str, at: i64) -> DeviceEvent {
    DeviceEvent {
        device: dev.into(),
        object: noctua::model::DEVICE_OBJECT.into(),
        kind: EventKind::Unreachable,
        at: Timestamp::from_millis(at),
        text: String::new(),
        severity: None,
    }
}

/// Runs events through the real alarm manager and impact, as the alarm stage does.
fn run(
    config: &Config,
    counts: Counts,
    events: Vec<DeviceEvent>,
) -> (AlarmManager, ImpactEngine, Vec<Transition>) {
    let mut m = AlarmManager::new(config);
    let mut e = ImpactEngine::new(config, counts, &[], &[], vec![]);
    let mut all = Vec::new();
    for ev in events {
        let mut ts = m.on_event(ev);
        e.annotate(&mut ts);
        m.keep_impact(&ts);
        all.extend(ts);
    }
    (m, e, all)
}

/// The lab: core → bh → (enb with two cells, gnb), and a hub site whose router and base
/// station anchor it at the router.
fn lab() -> Config {
    Config {
        devices: vec![
            device("core", None, "dc", Role::Router),
            device("bh", Some("core"), "hub", Role::Router),
            device("enb", Some("bh"), "east-1", Role::BaseStation),
            device("gnb", Some("bh"), "east-2", Role::BaseStation),
            device("hub-bs", Some("bh"), "hub", Role::BaseStation),
        ],
        ..Config::default()
    }
}

fn lab_counts() -> Counts {
    HashMap::from([
        (Place::Site("east-1".into()), 100),
        (Place::Site("east-2".into()), 50),
        (Place::Site("hub".into()), 7),
        (
            Place::Cell {
                device: "enb".into(),
                cell: "1".into(),
            },
            10,
        ),
        (
            Place::Cell {
                device: "enb".into(),
                cell: "2".into(),
            },
            20,
        ),
    ])
}

#[test]
fn reach_counts_sites_once_at_their_anchor_and_cells_at_their_station() {
    let c = lab();
    let topology = Topology::new(&c.devices);
    let r = Reach::new(&topology, &lab_counts());
    assert_eq!(r.behind("enb"), 130, "its site and both cells");
    assert_eq!(r.behind("gnb"), 50);
    assert_eq!(
        r.behind("hub-bs"),
        0,
        "the hub site hangs from bh, not from one of its devices"
    );
    assert_eq!(r.behind("bh"), 187, "everything below, the hub site once");
    assert_eq!(r.behind("core"), 187);
    assert_eq!(r.cell("enb", "2"), 20);
    assert_eq!(r.total(), 187);
}

#[test]
fn a_symptom_is_counted_at_its_root_and_its_fault_loses_no_customer_minutes() {
    let c = lab();
    let (_, _, ts) = run(&c, lab_counts(), vec![down("enb", 0), down("bh", 60_000)]);
    let enb_raise = &ts[0];
    assert_eq!(enb_raise.event.alarm.impact.customers, 130);
    assert_eq!(enb_raise.event.alarm.impact.counted_in, None);
    let bh_raise = ts.iter().find(|t| t.event.alarm.device == "bh").unwrap();
    assert_eq!(bh_raise.event.alarm.impact.customers, 187);
    // enb's alarm is now a symptom: its customers are counted in bh's alarm.
    let enb_now = ts
        .iter()
        .rev()
        .find(|t| t.event.alarm.device == "enb")
        .unwrap();
    assert_eq!(
        enb_now.event.alarm.impact.counted_in,
        Some(bh_raise.event.alarm.alarm_id)
    );
    assert_eq!(enb_now.fault.impact.customers, 0);
    // A minute of 130 customers before bh went down.
    assert_eq!(enb_now.fault.impact.customer_seconds, 130 * 60);
    assert_eq!(enb_now.fault.impact.peak_customers, 130);
}

#[test]
fn warnings_touch_services_but_affect_no_customer() {
    let mut c = lab();
    c.services = vec![ServiceConfig {
        name: "data-east".into(),
        description: String::new(),
        reduce: Reduce::Highest,
        k: None,
        percent: None,
        share: None,
        severity: Severity::Critical,
        degraded_at: Severity::Warning,
        members: vec![member("bh")],
    }];
    let mut m = AlarmManager::new(&c);
    let mut e = ImpactEngine::new(&c, lab_counts(), &[], &[], vec![]);
    let mut ts = m.on_event(DeviceEvent {
        kind: EventKind::Reboot,
        ..down("gnb", 0)
    });
    let (states, _) = e.annotate(&mut ts);
    assert_eq!(ts[0].event.alarm.impact.services, ["data-east"]);
    assert_eq!(
        ts[0].event.alarm.impact.customers, 0,
        "a reboot is a warning"
    );
    assert_eq!(states.len(), 1);
    assert_eq!(states[0].status, ServiceStatus::Degraded);
    assert_eq!(states[0].underlying_alarm, [ts[0].event.alarm.alarm_id]);
}

#[test]
fn csv_rows_are_checked_and_named_by_line() {
    let c = lab();
    let mut with_service = c.clone();
    with_service.services = vec![ServiceConfig {
        name: "vpn-acme".into(),
        description: String::new(),
        reduce: Reduce::Highest,
        k: None,
        percent: None,
        share: None,
        severity: Severity::Critical,
        degraded_at: Severity::Minor,
        members: vec![member("core")],
    }];
    let places = Places::new(&with_service);
    let keys = CustomerKeys::plain();
    let good = b"customer,site,cell,service\nC1,east-1,,\nC2,,enb/1,\nC3,,,vpn-acme\n";
    let p = parse_csv(good, 1, &places, &keys);
    assert_eq!(p.bad, 0, "{:?}", p.errors);
    assert_eq!(p.rows.len(), 3);
    assert_eq!(
        p.rows[1].1,
        Place::Cell {
            device: "enb".into(),
            cell: "1".into()
        }
    );
    let bad =
        b"customer,site,cell\nC1,nowhere,\nC2,,core/1\n,east-1,\nC4,east-1,enb/1\nC5,east-2,\n";
    let p = parse_csv(bad, 10, &places, &keys);
    let lines: Vec<(u64, &str)> = p
        .errors
        .iter()
        .map(|e| (e.line, e.message.as_str()))
        .collect();
    assert_eq!(
        lines,
        [
            (11, "unknown site `nowhere`"),
            (12, "unknown cell `core/1`: `core` is not a base station"),
            (13, "the customer id is empty"),
            (14, "expected exactly one of site, cell or service"),
        ]
    );
    assert_eq!((p.bad, p.rows.len()), (4, 1));
    let p = parse_csv(b"id,site\nC1,east-1\n", 1, &places, &keys);
    assert_eq!(
        p.bad, 2,
        "an unknown column and no customer column: {:?}",
        p.errors
    );
    // Hashed keys hold no id, and the same id always makes the same key.
    let hashed = CustomerKeys::hashed(b"0123456789abcdef");
    assert_eq!(hashed.key("C1"), hashed.key("C1"));
    assert_ne!(hashed.key("C1"), b"C1".to_vec());
    assert_eq!(hashed.key("C1").len(), 16);
    assert_ne!(
        hashed.key("C1"),
        CustomerKeys::hashed(b"another key 1234").key("C1")
    );
}

/// A random tree of up to 12 devices (each its own site, some base stations with cells),
/// customers on sites and cells, and a random set of devices going down in a random order.
fn network() -> impl Strategy<Value = (Vec<Option<usize>>, Vec<u64>, Vec<u64>, Vec<usize>)> {
    (2usize..12).prop_flat_map(|n| {
        let parents = (0..n)
            .map(|i| {
                if i == 0 {
                    Just(None).boxed()
                } else {
                    proptest::option::weighted(0.8, 0..i).boxed()
                }
            })
            .collect::<Vec<_>>();
        (
            parents,
            proptest::collection::vec(0u64..500, n),
            proptest::collection::vec(0u64..50, n),
            proptest::sample::subsequence((0..n).collect::<Vec<_>>(), 0..=n).prop_shuffle(),
        )
    })
}

proptest! {
    /// Customers under device-down alarms, whatever order devices fall in, are counted exactly
    /// once: the sum of what the active alarms count is the number of distinct customers
    /// behind any down device.
    #[test]
    fn customers_are_counted_exactly_once_under_suppression((parents, site_n, cell_n, order) in network()) {
        let name = |i: usize| format!("d{i}");
        let c = Config {
            devices: parents.iter().enumerate().map(|(i, p)| {
                let role = if i % 2 == 1 { Role::BaseStation } else { Role::Router };
                device(&name(i), p.map(name).as_deref(), &format!("s{i}"), role)
            }).collect(),
            ..Config::default()
        };
        let mut counts = Counts::new();
        for i in 0..parents.len() {
            counts.insert(Place::Site(format!("s{i}")), site_n[i]);
            if i % 2 == 1 {
                counts.insert(Place::Cell { device: name(i), cell: "1".into() }, cell_n[i]);
            }
        }
        let events = order.iter().enumerate().map(|(k, i)| down(&name(*i), k as i64 * 1000)).collect();
        let (m, _, _) = run(&c, counts, events);
        let counted: u64 = m.alarms().map(|a| a.impact.counted()).sum();
        // Brute force: device i's customers are lost if i or an ancestor is down.
        let downs: HashSet<usize> = order.iter().copied().collect();
        let under_down = |mut i: usize| loop {
            if downs.contains(&i) { return true; }
            match parents[i] { Some(p) => i = p, None => return false }
        };
        let expected: u64 = (0..parents.len())
            .filter(|i| under_down(*i))
            .map(|i| site_n[i] + if i % 2 == 1 { cell_n[i] } else { 0 })
            .sum();
        prop_assert_eq!(counted, expected);
    }

    /// Each reduce function against its definition, for any member severities.
    #[test]
    fn reduce_functions_follow_their_definitions(
        sev in proptest::collection::vec(0usize..5, 1..8),
        weights in proptest::collection::vec(1u32..5, 8),
        k in 1usize..8,
        percent in 1u32..=100,
        share in 1u32..=10,
    ) {
        let levels = [None, Some(Severity::Warning), Some(Severity::Minor), Some(Severity::Major), Some(Severity::Critical)];
        let n = sev.len();
        let k = k.min(n);
        let mut c = Config {
            devices: (0..n).map(|i| device(&format!("m{i}"), None, "x", Role::Router)).collect(),
            ..Config::default()
        };
        let service = |name: &str, reduce| ServiceConfig {
            name: name.into(),
            description: String::new(),
            reduce,
            k: (reduce == Reduce::KOfN).then_some(k),
            percent: (reduce == Reduce::Percent).then_some(f64::from(percent)),
            share: (reduce == Reduce::Weighted).then_some(f64::from(share) / 10.0),
            severity: Severity::Major,
            degraded_at: Severity::Minor,
            members: (0..n).map(|i| MemberConfig { weight: f64::from(weights[i]), ..member(&format!("m{i}")) }).collect(),
        };
        c.services = vec![
            service("highest", Reduce::Highest),
            service("k-of-n", Reduce::KOfN),
            service("percent", Reduce::Percent),
            service("weighted", Reduce::Weighted),
        ];
        let mut m = AlarmManager::new(&c);
        let mut e = ImpactEngine::new(&c, Counts::new(), &[], &[], vec![]);
        for (i, s) in sev.iter().enumerate() {
            if let Some(s) = levels[*s] {
                let mut ts = m.on_event(DeviceEvent { severity: Some(s), kind: EventKind::Trap, ..down(&format!("m{i}"), 0) });
                e.annotate(&mut ts);
            }
        }
        let member_sev: Vec<Severity> = sev.iter().map(|s| levels[*s].unwrap_or(Severity::Cleared)).collect();
        let hit: Vec<bool> = member_sev.iter().map(|s| *s >= Severity::Major).collect();
        let hits = hit.iter().filter(|h| **h).count();
        let worst = member_sev.iter().copied().max().unwrap_or(Severity::Cleared);
        let total_w: u32 = weights[..n].iter().sum();
        let hit_w: u32 = (0..n).filter(|i| hit[*i]).map(|i| weights[i]).sum();
        let expect_down = [
            worst >= Severity::Major,
            hits >= k,
            hits as f64 * 100.0 / n as f64 >= f64::from(percent),
            f64::from(hit_w) / f64::from(total_w) >= f64::from(share) / 10.0,
        ];
        for (i, down) in expect_down.iter().enumerate() {
            let st = &e.states()[i];
            let expected = if *down {
                ServiceStatus::Down
            } else if worst >= Severity::Minor {
                ServiceStatus::Degraded
            } else {
                ServiceStatus::Ok
            };
            prop_assert_eq!(st.status, expected, "service {}", st.name);
            prop_assert_eq!(st.severity == Severity::Critical, *down);
        }
    }
}
