//! Failover across a three-instance cluster on a real three-node NATS JetStream cluster
//! (loopback): `CLUSTER_KILLS` (20) times, kill -9 the member owning the most devices and time
//! until the two survivors own every one of `CLUSTER_DEVICES` (300) devices between them, then
//! start it again and wait until all three share them. Runs with the default `[cluster]`
//! heartbeat (2 s) and dead-after (10 s), so failover cannot beat 10 s: the figure says how
//! far behind it the handover comes. Prints p50, p99 and the spread; the README records them.
//! `cargo bench --bench cluster` (needs nats-server: scripts/setup-peers.sh).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test or bench reports

#[path = "../tests/common/mod.rs"]
#[allow(unused_imports)]
mod common;

use std::time::{Duration, Instant};

use common::nats::{Member, NatsCluster};
use common::{Daemon, metric, signal};

const NAMES: [&str; 3] = ["noc-a", "noc-b", "noc-c"];
const EXTRA: &str = "[snmp]\ninterval = \"1h\"\n\
     [snmp.credentials.v2]\nversion = \"v2c\"\ncommunity = \"public\"\n";

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn owned(d: &Daemon) -> f64 {
    metric(d.port, "noctua_cluster_devices_owned").unwrap_or(0.0)
}

/// Whether `members` see each other and own all `devices` between them, each knowing every
/// owner.
fn shared(members: &[&Daemon], devices: usize) -> bool {
    let n = members.len() as f64;
    members.iter().all(|d| {
        metric(d.port, "noctua_cluster_members") == Some(n)
            && metric(d.port, "noctua_cluster_devices_unowned") == Some(0.0)
    }) && members.iter().map(|d| owned(d)).sum::<f64>() == devices as f64
}

fn wait(what: &str, limit: Duration, mut done: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    started.elapsed()
}

fn main() {
    let kills = env_or("CLUSTER_KILLS", 20);
    let devices = env_or("CLUSTER_DEVICES", 300);
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsCluster::start(dir.path());
    let member = |name| Member {
        name,
        devices,
        heartbeat: Duration::from_secs(2),
        dead_after: Duration::from_secs(10),
        extra: EXTRA,
        senders: 1,
    };
    let mut members: Vec<Daemon> = NAMES
        .iter()
        .map(|n| member(n).start(dir.path(), &nats))
        .collect();
    let limit = Duration::from_secs(60);
    wait("the first share-out", limit, || {
        shared(&members.iter().collect::<Vec<_>>(), devices)
    });
    let mut took = Vec::with_capacity(kills);
    for round in 0..kills {
        let victim = (0..3)
            .max_by(|&i, &j| owned(&members[i]).total_cmp(&owned(&members[j])))
            .unwrap();
        let had = owned(&members[victim]);
        signal(&members[victim], libc::SIGKILL);
        let killed = Instant::now();
        let _ = members[victim].child.wait();
        let survivors: Vec<&Daemon> = (0..3)
            .filter(|&i| i != victim)
            .map(|i| &members[i])
            .collect();
        wait("failover", limit, || shared(&survivors, devices));
        let t = killed.elapsed();
        println!(
            "kill {:>2}: {} owned {had:>3}; survivors own all after {:.2} s",
            round + 1,
            NAMES[victim],
            t.as_secs_f64()
        );
        took.push(t);
        members[victim] = member(NAMES[victim]).start(dir.path(), &nats);
        wait("the share-back", limit, || {
            shared(&members.iter().collect::<Vec<_>>(), devices)
        });
    }
    took.sort();
    let at = |q: f64| took[((took.len() - 1) as f64 * q).round() as usize].as_secs_f64();
    println!(
        "failover over {} kills of 3 members, {devices} devices, heartbeat 2 s, dead-after 10 s: \
         p50 {:.2} s, p99 {:.2} s (min {:.2}, max {:.2})",
        took.len(),
        at(0.5),
        at(0.99),
        at(0.0),
        at(1.0)
    );
}
