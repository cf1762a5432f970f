//! Cluster-wide durable transitions per second, and what forwarding costs, on three noctua
//! instances over a real three-node NATS JetStream cluster (loopback, all on one machine).
//!
//! `CLUSTER_DEVICES` (300) devices are shared out; each sends `STORM_LINKS` (10) linkDown
//! traps from its own loopback address (127.0.0.x), so every trap is a new alarm: a raise
//! committed in its owner's store, then replicated to the device's record and the
//! `NOCTUA_TRANSITIONS` stream. Two storms, timed from the first trap until the stream holds
//! every raise:
//! - **direct**: each trap sent to its device's owner;
//! - **forwarded**: every trap sent to one member, which forwards two thirds of them.
//!
//! The CPU time of the three instances (from /proc) over each storm, per trap, and the
//! difference between the two is what forwarding costs per event.
//! `cargo bench --bench cluster_storm` (needs nats-server: scripts/setup-peers.sh).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test or bench reports

#[path = "../tests/common/mod.rs"]
#[allow(unused_imports)]
mod common;
#[path = "support/trap.rs"]
mod trap;
#[path = "support/udp.rs"]
mod udp;

use std::net::{Ipv4Addr, UdpSocket};
use std::time::{Duration, Instant};

use common::nats::{Member, NatsCluster};
use common::{Daemon, bound_port, metric};

const NAMES: [&str; 3] = ["noc-a", "noc-b", "noc-c"];
/// Traps sent back to back before a 5 ms pause (at most 10,000 a second).
const BURST: usize = 50;
// Each trap also asks for a poll of its device, which has no agent: one quick try each, and
// never enough failures in a row for a device-down alarm, so the stream holds just the raises.
const EXTRA: &str = "[snmp]\ninterval = \"1h\"\ntimeout = \"100ms\"\nretries = 0\n\
     unreachable-after = 100\n\
     [snmp.credentials.v2]\nversion = \"v2c\"\ncommunity = \"public\"\n\
     [traps]\nenabled = true\nlisten = \"127.0.0.1:0\"\n";

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn shared(members: &[Daemon], devices: usize) -> bool {
    let owned: f64 = members
        .iter()
        .map(|d| metric(d.port, "noctua_cluster_devices_owned").unwrap_or(0.0))
        .sum();
    owned == devices as f64
        && members.iter().all(|d| {
            metric(d.port, "noctua_cluster_members") == Some(3.0)
                && metric(d.port, "noctua_cluster_devices_unowned") == Some(0.0)
        })
}

/// User plus system CPU seconds of a process so far.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

fn total_cpu(members: &[Daemon]) -> f64 {
    members.iter().map(|d| cpu_seconds(d.child.id())).sum()
}

struct Storm<'a> {
    name: &'a str,
    traps: usize,
    seconds: f64,
    cpu: f64,
}

/// Sends every device's `links` linkDowns (ifIndex `first..first + links`) to `to(device)`,
/// in bursts the receivers' socket buffers take, and times it until the stream holds them.
fn storm<'a>(
    name: &'a str,
    nats: &NatsCluster,
    members: &[Daemon],
    devices: usize,
    (first, links): (u32, u32),
    to: impl Fn(usize) -> u16,
) -> Storm<'a> {
    let senders: Vec<UdpSocket> = (0..devices)
        .map(|i| {
            let ip = Ipv4Addr::from(u32::from(Ipv4Addr::new(127, 0, 0, 1)) + i as u32);
            UdpSocket::bind((ip, 0)).unwrap()
        })
        .collect();
    let before = nats.transitions_count();
    let traps = devices * links as usize;
    let (cpu_before, started) = (total_cpu(members), Instant::now());
    let ports: Vec<u16> = (0..devices).map(&to).collect();
    let kernel_drops = || {
        ports
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .map(|p| udp::drops(*p))
            .sum::<u64>()
    };
    let dropped_before = kernel_drops();
    let mut sent = 0;
    for link in first..first + links {
        for (i, s) in senders.iter().enumerate() {
            let datagram = trap::link_down((link as i32) << 12 | i as i32, link);
            s.send_to(&datagram, ("127.0.0.1", ports[i])).unwrap();
            sent += 1;
            // At most BURST at once: more than a receive buffer holds is the kernel's to drop.
            if sent % BURST == 0 {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
    let limit = Duration::from_secs(300);
    while nats.transitions_count() < before + traps as u64 {
        assert!(
            started.elapsed() < limit,
            "{name}: {} of {traps} raises on the stream after {limit:?}; the kernel dropped {} traps",
            nats.transitions_count() - before,
            kernel_drops() - dropped_before
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Anything past the raises would be a repeat or a stray transition.
    std::thread::sleep(Duration::from_secs(1));
    let extra = nats.transitions_count() - before - traps as u64;
    assert_eq!(extra, 0, "{name}: {extra} transitions more than the raises");
    Storm {
        name,
        traps,
        seconds: started.elapsed().as_secs_f64(),
        cpu: total_cpu(members) - cpu_before,
    }
}

fn main() {
    let devices = env_or("CLUSTER_DEVICES", 300);
    let links = env_or("STORM_LINKS", 10) as u32;
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsCluster::start(dir.path());
    let members: Vec<Daemon> = NAMES
        .iter()
        .map(|name| {
            let member = Member {
                name,
                devices,
                heartbeat: Duration::from_secs(2),
                dead_after: Duration::from_secs(10),
                extra: EXTRA,
                senders: devices,
            };
            member.start(dir.path(), &nats)
        })
        .collect();
    let started = Instant::now();
    while !shared(&members, devices) {
        assert!(started.elapsed() < Duration::from_secs(60), "no share-out");
        std::thread::sleep(Duration::from_millis(50));
    }
    let trap_port = |d: &Daemon| bound_port(&d.bound["traps"]);
    let live: Vec<noctua::cluster::Member> = NAMES
        .iter()
        .map(|n| noctua::cluster::Member {
            name: (*n).into(),
            site: None,
        })
        .collect();
    let owner_port: Vec<u16> = (0..devices)
        .map(|i| {
            let owner = noctua::cluster::owner_of(&format!("gnb-{i:02}"), None, &live).unwrap();
            trap_port(&members[NAMES.iter().position(|n| **n == owner.name).unwrap()])
        })
        .collect();
    let direct = storm("direct", &nats, &members, devices, (1, links), |i| {
        owner_port[i]
    });
    let one = trap_port(&members[0]);
    let forwarded = storm(
        "forwarded",
        &nats,
        &members,
        devices,
        (links + 1, links),
        |_| one,
    );
    let sent = metric(members[0].port, "noctua_cluster_forwarded_total").unwrap_or(0.0);
    let reasons = [
        "unknown_source",
        "community",
        "authentication",
        "malformed",
        "unsupported",
        "receive_error",
    ];
    let dropped: f64 = members
        .iter()
        .flat_map(|d| reasons.map(|r| (d.port, r)))
        .map(|(port, r)| {
            metric(
                port,
                &format!("noctua_snmp_traps_dropped_total{{reason=\"{r}\"}}"),
            )
            .unwrap_or(0.0)
        })
        .sum();
    for s in [&direct, &forwarded] {
        println!(
            "{:>9}: {} raises durable on the stream in {:.2} s = {:.0} transitions/s; \
             {:.0} µs CPU per trap over the three instances",
            s.name,
            s.traps,
            s.seconds,
            s.traps as f64 / s.seconds,
            s.cpu / s.traps as f64 * 1e6
        );
    }
    println!(
        "forwarding: {sent} traps forwarded by {}; {:.0} µs CPU more per trap than direct; \
         {dropped} traps dropped",
        NAMES[0],
        (forwarded.cpu / forwarded.traps as f64 - direct.cpu / direct.traps as f64) * 1e6
    );
}
