//! UDP receive into the running daemon over loopback: 20-field v9 datagrams (21 records each)
//! at rising rates for 2 s each; for every rate, how many arrived (the daemon's own
//! `noctua_netflow_datagrams_total`), how many were lost, and the daemon's CPU time per
//! datagram. The sender shares the machine, so on 2 cores the top rates measure both.
//! Run with `cargo bench --bench netflow_udp`; the README records the figures.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test or bench reports

#[path = "../tests/common/mod.rs"]
#[allow(unused_imports)]
mod common;
#[path = "support/v9.rs"]
mod v9;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

fn metric(port: u16, name: &str) -> u64 {
    let (_, body) = common::get(port, "/metrics").expect("daemon answers /metrics");
    body.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

/// User + system CPU time of a process, from /proc (clock ticks of 10 ms).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat.rsplit_once(") ").unwrap().1.split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks as f64 / 100.0
}

fn main() {
    // Criterion-style filters and `--bench` are passed by cargo; nothing to select here.
    let dir = tempfile::tempdir().unwrap();
    let config = common::write_config(
        dir.path(),
        0,
        "[netflow]\nenabled = true\nlisten = [\"127.0.0.1:0\"]\n\
         receive-buffer-bytes = 33554432\n\n\
         [[device]]\nname = \"bench\"\naddress = \"127.0.0.1\"\nrole = \"router\"\n",
    );
    let daemon = common::start(dir.path(), &config);
    let http = daemon.port;
    let flow_port = common::bound_port(&daemon.bound["netflow"][0]);
    let pid = daemon.child.id();
    let datagrams: Vec<Vec<u8>> = std::iter::once(v9::twenty_field_datagram(0, 256, true, 0))
        .chain((1..=256).map(|s| v9::twenty_field_datagram(0, 256, false, s)))
        .collect();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.connect(("127.0.0.1", flow_port)).unwrap();
    sock.send(&datagrams[0]).unwrap(); // the template first
    std::thread::sleep(Duration::from_millis(200));

    println!(
        "rate (datagrams/s) | sent | received | lost | daemon CPU s | datagrams per CPU-s | records per CPU-s"
    );
    let counter = "noctua_netflow_datagrams_total";
    for rate in [50_000u64, 100_000, 150_000, 200_000, 300_000, 0] {
        let before = metric(http, counter);
        let cpu_before = cpu_seconds(pid);
        let start = Instant::now();
        let mut sent = 0u64;
        // Paced in 1 ms slots; rate 0 = as fast as the sender can.
        while start.elapsed() < Duration::from_secs(2) {
            let due = if rate == 0 {
                sent + 1_000
            } else {
                (start.elapsed().as_secs_f64() * rate as f64) as u64
            };
            while sent < due {
                let d = &datagrams[1 + (sent as usize % 256)];
                if sock.send(d).is_ok() {
                    sent += 1;
                }
            }
            if rate != 0 {
                std::thread::sleep(Duration::from_micros(500));
            }
        }
        let achieved = sent as f64 / start.elapsed().as_secs_f64();
        std::thread::sleep(Duration::from_millis(500));
        let received = metric(http, counter) - before;
        let cpu = cpu_seconds(pid) - cpu_before;
        println!(
            "{:>8} ({:>7.0} sent/s) | {sent} | {received} | {} | {cpu:.2} | {:.0} | {:.0}",
            if rate == 0 {
                "max".to_owned()
            } else {
                rate.to_string()
            },
            achieved,
            sent.saturating_sub(received),
            received as f64 / cpu.max(0.01),
            received as f64 * 21.0 / cpu.max(0.01),
        );
    }
}
