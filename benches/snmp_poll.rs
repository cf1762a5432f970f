//! Poller cost: values fetched per CPU-second of this process (the poller; snmpd and its
//! pass_persist script run in other processes and are not counted), polling 1,000 interfaces
//! × 23 IF-MIB columns from net-snmp's snmpd on loopback, with 1 and with 4 devices polled at
//! once (a session has one request in flight, so parallelism is more sessions). For reference,
//! net-snmp's own `snmpbulkwalk` over the same tables, and the memory the poller keeps per
//! device. Run with `cargo bench --bench snmp_poll` (as root: snmpd runs as nobody); the README
//! records the figures, also with everything on one CPU (`taskset -c 0 cargo bench ...`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test or bench reports

#[path = "../tests/common/mod.rs"]
#[allow(unused_imports)]
mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

/// The same allocator as the `noctua` binary, so the figures are the daemon's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use noctua::config::parse;
use noctua::ingest::snmp::counters::Counters;
use noctua::ingest::snmp::{Filter, Poller, Target};
use noctua::telemetry::Metrics;

const INTERFACES: u64 = 1_000;
/// Timed polls per device: enough CPU time that the kernel's tick-based accounting (4 ms) is noise.
const ROUNDS: u64 = 8;

fn cpu_seconds() -> f64 {
    rusage(libc::RUSAGE_SELF)
}

/// CPU seconds of `who` (this process, or its waited-for children).
#[allow(unsafe_code)]
fn rusage(who: libc::c_int) -> f64 {
    // SAFETY: getrusage fills the struct we own.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(who, &mut u) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

fn state(round: u64) -> serde_json::Value {
    let ifaces: serde_json::Map<String, serde_json::Value> = (1..=INTERFACES)
        .map(|i| {
            let c = i * 1_000 + round * 7_919;
            (
                i.to_string(),
                serde_json::json!({
                    "name": format!("ge-0/0/{i}"), "type": 6, "admin": 1, "oper": 1,
                    "speed_mbps": 10_000, "hc_in": c, "hc_out": c * 2,
                    "hc_in_ucast": c / 100, "hc_out_ucast": c / 50,
                    "in32": c % 4_000_000_000, "out32": c % 3_000_000_000,
                    "in_ucast32": c / 100, "out_ucast32": c / 50,
                    "in_errors": round, "out_errors": 0, "in_discards": round, "out_discards": 0,
                    "discontinuity": 0
                }),
            )
        })
        .collect();
    serde_json::json!({ "ifaces": ifaces })
}

fn main() {
    let dir = common::snmpd::shared_dir();
    let port = common::snmpd::free_udp_port();
    let agent = common::snmpd::Snmpd::start(dir.path(), port);
    agent.state(state(0));
    let devices: String = (0..4)
        .map(|i| {
            format!(
                "[[device]]\nname = \"d{i}\"\naddress = \"127.0.0.1\"\nsnmp-port = {port}\nrole = \"router\"\ncredentials = \"v2\"\n"
            )
        })
        .collect();
    let config = parse(
        "bench.toml",
        &format!(
            "[snmp]\ntimeout = \"10s\"\n[snmp.credentials.v2]\nversion = \"v2c\"\ncommunity = \"public\"\n{devices}"
        ),
        Path::new("."),
    )
    .unwrap();
    let metrics = Arc::new(Metrics::new());
    let filter = Filter::new(&config.snmp);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    println!("parallel sessions | polls | values | wall s | poller CPU s | values per CPU-second");
    for parallel in [1usize, 4] {
        let targets: Vec<Target> = Target::all(&config).into_iter().take(parallel).collect();
        let mut pollers: Vec<Poller> = targets
            .into_iter()
            .map(|t| Poller::new(t, &config.snmp, metrics.clone()))
            .collect();
        // Warm up (sessions, the agent's script cache).
        runtime.block_on(async {
            for p in &mut pollers {
                p.poll(&filter).await.unwrap();
            }
        });
        let mut cpu = 0.0;
        let wall = Instant::now();
        let mut values = 0u64;
        let mut polls = 0u64;
        for round in 1..=ROUNDS {
            // Writing the agent's state is the test harness's work, not the poller's: only the
            // polls are timed.
            agent.state(state(round));
            let before = cpu_seconds();
            let results = runtime.block_on(futures_util::future::join_all(
                pollers.iter_mut().map(|p| p.poll(&filter)),
            ));
            cpu += cpu_seconds() - before;
            for r in results {
                let r = r.unwrap();
                assert_eq!(r.reading.interfaces.len() as u64, INTERFACES);
                values += r.values;
                polls += 1;
            }
        }
        println!(
            "{parallel} | {polls} | {values} | {:.2} | {cpu:.3} | {:.0}",
            wall.elapsed().as_secs_f64(),
            values as f64 / cpu.max(1e-6)
        );
    }

    // net-snmp's own walker over the same two tables, as many values per request as snmpd
    // allows: its CPU (a waited-for child's) per value fetched.
    let (mut values, before) = (0usize, rusage(libc::RUSAGE_CHILDREN));
    for table in ["1.3.6.1.2.1.2.2", "1.3.6.1.2.1.31.1.1"] {
        let out = std::process::Command::new("snmpbulkwalk")
            .args(["-v2c", "-c", "public", "-On", "-Cr100", "-t", "10"])
            .arg(format!("127.0.0.1:{port}"))
            .arg(table)
            .output()
            .expect("snmpbulkwalk (package snmp)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        values += out
            .stdout
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .count();
    }
    let cpu = rusage(libc::RUSAGE_CHILDREN) - before;
    println!(
        "snmpbulkwalk (reference) | {values} values | CPU {cpu:.3} s | {:.0} values per CPU-second",
        values as f64 / cpu.max(1e-6)
    );

    // What the poller keeps per device between polls: its previous reading (and the poller
    // itself). Measured as resident memory grown by keeping 200 devices' worth, after one
    // real poll, so allocator and map overheads are in the figure.
    const KEPT: usize = 200;
    let mut poller = Poller::new(
        Target::all(&config).remove(0),
        &config.snmp,
        metrics.clone(),
    );
    let reading = runtime.block_on(poller.poll(&filter)).unwrap().reading;
    let before = resident_bytes();
    let kept: Vec<(Poller, Counters)> = (0..KEPT)
        .map(|i| {
            let mut counters = Counters::default();
            counters.update(&format!("d{i}"), reading.clone());
            let poller = Poller::new(
                Target::all(&config).remove(0),
                &config.snmp,
                metrics.clone(),
            );
            (poller, counters)
        })
        .collect();
    let grown = resident_bytes().saturating_sub(before);
    println!(
        "memory per polled device ({} interfaces): {} bytes resident ({KEPT} devices kept: +{} KiB)",
        INTERFACES,
        grown / KEPT as u64,
        grown / 1024
    );
    drop(kept);
}

/// Resident set size of this process, from /proc.
#[allow(unsafe_code)]
fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    // SAFETY: sysconf has no preconditions.
    pages * unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64
}
