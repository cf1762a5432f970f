//! The whole daemon at fleet scale, on loopback, for `FLEET_MINUTES` (10) minutes:
//! - `FLEET_DEVICES` (10,000) SNMP devices at a 60 s interval, served by real snmpd processes
//!   (net-snmp, the host's own IF-MIB), 100 addresses in 127.10.0.0/16 each;
//! - 200 NetFlow v9 exporters (127.20.0.1–200) at 50,000 datagrams/s in total, 21 records each;
//! - ICMP probes to the 1,000 devices tagged `probe`;
//! - an alarm storm halfway through: the core link above 2,000 devices fails (their agents are
//!   stopped with SIGSTOP), and returns (SIGCONT) a quarter of the run later;
//! - 50 SSE clients on the alarm stream, the API asked 20 times a second, MQTT to mosquitto.
//!
//! It prints the daemon's RSS, CPU by thread, drops at every stage, poll jitter (p99 start delay
//! against the plan), the alarm latency (`noctua_pipeline_latency_seconds`) outside and inside
//! the storm, the API's latency and the store's growth per hour. Run as root (snmpd runs as
//! nobody): `cargo bench --bench fleet`; the README records the figures.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test or bench reports

#[path = "../tests/common/mod.rs"]
#[allow(unused_imports)]
mod common;
#[path = "support/disk.rs"]
mod disk;
#[path = "support/udp.rs"]
mod udp;
#[path = "support/v9.rs"]
mod v9;
use disk::dir_bytes;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::UdpSocket;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

const PER_AGENT: usize = 100;
const EXPORTERS: usize = 200;
const DATAGRAMS_PER_SECOND: u64 = 50_000;
const PROBED_EVERY: usize = 10;
const STORM_DEVICES: usize = 2_000;
const SSE_CLIENTS: usize = 50;
const API_PER_SECOND: u64 = 20;
const SNMP_PORT: u16 = 1161;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Device `i`'s agent address.
fn address(i: usize) -> String {
    format!("127.10.{}.{}", i / 200, i % 200 + 1)
}

/// `core-N` heads each block of 2,000 devices; the rest hang under their block's core.
fn name(i: usize) -> String {
    match i % STORM_DEVICES {
        0 => format!("core-{}", i / STORM_DEVICES),
        _ => format!("d{i}"),
    }
}

/// One snmpd serving the host's IF-MIB on the addresses of devices `from..to`.
fn agent(dir: &Path, k: usize, from: usize, to: usize) -> Child {
    let d = dir.join(format!("agent-{k}"));
    std::fs::create_dir_all(d.join("persist")).unwrap();
    std::fs::write(d.join("snmpd.conf"), "rocommunity public 127.0.0.0/8\n").unwrap();
    Command::new("chown")
        .args(["-R", "nobody"])
        .arg(&d)
        .status()
        .unwrap();
    let listen: Vec<String> = (from..to)
        .map(|i| format!("udp:{}:{SNMP_PORT}", address(i)))
        .collect();
    Command::new("runuser")
        .args(["-u", "nobody", "--", "env", "MIBS="])
        .arg(format!(
            "SNMP_PERSISTENT_DIR={}",
            d.join("persist").display()
        ))
        .args(["/usr/sbin/snmpd", "-f", "-C", "-c"])
        .arg(d.join("snmpd.conf"))
        .args(["-Lf", "/dev/null"])
        .arg(listen.join(","))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("snmpd (scripts/setup-peers.sh installs it)")
}

/// The snmpd process under `runuser` (signals go to it, not to runuser).
fn agent_pid(runuser: &Child) -> libc::pid_t {
    let path = format!("/proc/{}/task/{}/children", runuser.id(), runuser.id());
    for _ in 0..100 {
        if let Some(pid) = std::fs::read_to_string(&path)
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse().ok())
        {
            return pid;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("snmpd did not start under runuser {}", runuser.id());
}

fn config(dir: &Path, devices: usize, mqtt: Option<u16>) -> std::path::PathBuf {
    let mut c = String::new();
    // After write_config's `[http]` header.
    c.push_str(
        "max-stream-clients = 256\n\
         [snmp]\ninterval = \"60s\"\ntimeout = \"1s\"\nretries = 1\nunreachable-after = 2\n\
         interface-include = [\"eth0\"]\n\
         [snmp.credentials.fleet]\nversion = \"v2c\"\ncommunity = \"public\"\n\
         [netflow]\nenabled = true\nlisten = [\"127.0.0.1:0\"]\nexporters = [\"127.20.0.0/24\"]\n\
         receive-buffer-bytes = 67108864\n\
         [probes]\nenabled = true\ninterval = \"30s\"\ncount = 3\nspacing = \"100ms\"\n\
         timeout = \"1s\"\ntags = [\"probe\"]\n",
    );
    if let Some(port) = mqtt {
        let _ = write!(c, "[mqtt]\nenabled = true\nbroker = \"127.0.0.1:{port}\"\n");
    }
    for i in 0..devices {
        let n = name(i);
        let _ = write!(
            c,
            "[[device]]\nname = \"{n}\"\naddress = \"{}\"\nsnmp-port = {SNMP_PORT}\nrole = \"router\"\n\
             credentials = \"fleet\"\nsite = \"site-{}\"\n",
            address(i),
            i / STORM_DEVICES
        );
        if i % STORM_DEVICES != 0 {
            let _ = writeln!(c, "parent = \"core-{}\"", i / STORM_DEVICES);
        }
        if i % PROBED_EVERY == 0 {
            c.push_str("tags = [\"probe\"]\n");
        }
    }
    common::write_config(dir, 0, &c)
}

/// 200 exporters' v9 datagrams at the given rate until `stop`; the export time is now.
fn netflow(port: u16, stop: Arc<AtomicBool>, sent: Arc<AtomicU64>) {
    let sockets: Vec<UdpSocket> = (1..=EXPORTERS)
        .map(|e| {
            let s = UdpSocket::bind(format!("127.20.0.{e}:0")).unwrap();
            s.connect(("127.0.0.1", port)).unwrap();
            s
        })
        .collect();
    let mut datagrams: Vec<Vec<u8>> = (0..16)
        .map(|s| v9::twenty_field_datagram(0, 256, false, s))
        .collect();
    let template = v9::twenty_field_datagram(0, 256, true, 99);
    let started = Instant::now();
    let mut n = 0u64;
    let mut last_template = Instant::now() - Duration::from_secs(60);
    while !stop.load(Ordering::Relaxed) {
        let unix = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs() as u32;
        if last_template.elapsed() > Duration::from_secs(10) {
            let mut t = template.clone();
            t[8..12].copy_from_slice(&unix.to_be_bytes());
            for s in &sockets {
                let _ = s.send(&t);
            }
            last_template = Instant::now();
        }
        for d in &mut datagrams {
            d[8..12].copy_from_slice(&unix.to_be_bytes());
        }
        // Paced in 1 ms steps.
        let due = started.elapsed().as_micros() as u64 * DATAGRAMS_PER_SECOND / 1_000_000;
        while n < due {
            let d = &datagrams[(n % 16) as usize];
            let _ = sockets[(n % EXPORTERS as u64) as usize].send(d);
            n += 1;
        }
        sent.store(n, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// One SSE client counting events until `stop`.
fn sse(port: u16, stop: Arc<AtomicBool>, events: Arc<AtomicU64>) {
    let mut c = common::SseClient::connect(port, "/api/v1/alarms/stream", None);
    while !stop.load(Ordering::Relaxed) {
        if c.next(Duration::from_secs(1)).is_some() {
            events.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The API at `API_PER_SECOND`, its latencies in microseconds.
fn api(port: u16, devices: usize, stop: Arc<AtomicBool>) -> Vec<u64> {
    let mut took = Vec::new();
    let started = Instant::now();
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let path = match n % 4 {
            0 => "/api/v1/alarms?limit=100".to_owned(),
            1 => format!("/api/v1/alarms?device={}", name((n as usize * 7) % devices)),
            2 => "/api/v1/faults?limit=50".to_owned(),
            _ => "/metrics".to_owned(),
        };
        let t = Instant::now();
        if common::get(port, &path).is_some_and(|r| r.0 == 200) {
            took.push(t.elapsed().as_micros() as u64);
        }
        n += 1;
        let next = started + Duration::from_micros(n * 1_000_000 / API_PER_SECOND);
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    took
}

/// The samples of `/metrics` by series (name and labels), summed over identical lines.
fn scrape(port: u16) -> BTreeMap<String, f64> {
    let (_, body) = common::get(port, "/metrics").expect("metrics");
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_owned(), v.parse().ok()?))
        })
        .collect()
}

fn sum(m: &BTreeMap<String, f64>, prefix: &str) -> f64 {
    m.iter()
        .filter(|(k, _)| k.starts_with(prefix))
        .map(|(_, v)| v)
        .sum()
}

/// Every `TIMELINE_STEP` from the load's start: transitions committed, their latency's p99,
/// the store flush's p99 and RSS in that step, one line each.
fn timeline(port: u16, pid: u32, stop: Arc<AtomicBool>) -> String {
    const TIMELINE_STEP: Duration = Duration::from_secs(30);
    let started = Instant::now();
    let mut out = String::new();
    let mut last = scrape(port);
    let mut next = TIMELINE_STEP;
    while !stop.load(Ordering::Relaxed) {
        if started.elapsed() < next {
            std::thread::sleep(Duration::from_millis(200));
            continue;
        }
        let now = scrape(port);
        let latency = "noctua_pipeline_latency_seconds";
        let _ = writeln!(
            out,
            "  {:>4.0} s  {:>6.0} transitions  latency p99 {:<22} flush p99 {:<22} RSS {:.0} MB",
            next.as_secs_f64(),
            sum(&now, &format!("{latency}_count")) - sum(&last, &format!("{latency}_count")),
            quantile(&last, &now, latency, 0.99),
            quantile(&last, &now, "noctua_store_flush_duration_seconds", 0.99),
            rss_mb(pid).0
        );
        last = now;
        next += TIMELINE_STEP;
    }
    out
}

/// The `q` quantile of histogram `name` between two scrapes: the upper bound of its bucket.
fn quantile(a: &BTreeMap<String, f64>, b: &BTreeMap<String, f64>, name: &str, q: f64) -> String {
    let prefix = format!("{name}_bucket{{le=\"");
    let mut buckets: Vec<(f64, f64)> = b
        .iter()
        .filter_map(|(k, v)| {
            let le = k.strip_prefix(&prefix)?.strip_suffix("\"}")?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, v - a.get(k).copied().unwrap_or(0.0)))
        })
        .collect();
    buckets.sort_by(|x, y| x.0.total_cmp(&y.0));
    let total = buckets.last().map_or(0.0, |b| b.1);
    if total == 0.0 {
        return "no samples".to_owned();
    }
    let rank = q * total;
    let le = buckets
        .iter()
        .find(|b| b.1 >= rank)
        .map_or(f64::INFINITY, |b| b.0);
    format!("≤ {le} s (of {total:.0})")
}

fn rss_mb(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb = |key: &str| -> f64 {
        status
            .lines()
            .find_map(|l| {
                l.strip_prefix(key)?
                    .trim()
                    .strip_suffix(" kB")?
                    .trim()
                    .parse()
                    .ok()
            })
            .unwrap_or(0.0)
    };
    (kb("VmRSS:") / 1024.0, kb("VmHWM:") / 1024.0)
}

/// CPU seconds by thread name.
fn threads(pid: u32) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for t in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(t.path().join("stat")) else {
            continue;
        };
        let Some((head, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let comm = head.split_once(" (").map_or("?", |h| h.1).to_owned();
        let f: Vec<&str> = rest.split(' ').collect();
        let ticks: f64 = f[11].parse::<f64>().unwrap_or(0.0) + f[12].parse::<f64>().unwrap_or(0.0);
        *out.entry(comm).or_insert(0.0) += ticks / 100.0;
    }
    out
}

fn main() {
    let minutes = env("FLEET_MINUTES", 10).max(4);
    let devices = env("FLEET_DEVICES", 10_000).max(STORM_DEVICES * 2);
    let run = Duration::from_secs(minutes as u64 * 60);
    let dir = tempfile::tempdir().unwrap();
    println!(
        "fleet: {devices} devices, {EXPORTERS} exporters at {DATAGRAMS_PER_SECOND}/s, {} probed, {minutes} min",
        devices / PROBED_EVERY
    );

    let t0 = Instant::now();
    let mut agents: Vec<Child> = (0..devices.div_ceil(PER_AGENT))
        .map(|k| {
            agent(
                dir.path(),
                k,
                k * PER_AGENT,
                ((k + 1) * PER_AGENT).min(devices),
            )
        })
        .collect();
    let pids: Vec<libc::pid_t> = agents.iter().map(agent_pid).collect();
    println!(
        "agents: {} snmpd processes in {:.1} s",
        agents.len(),
        t0.elapsed().as_secs_f64()
    );

    let mosquitto = Path::new("/usr/sbin/mosquitto").exists().then(|| {
        let port = common::peer_port();
        let conf = dir.path().join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!("listener {port} 127.0.0.1\nallow_anonymous true\nuser root\n"),
        )
        .unwrap();
        let child = Command::new("/usr/sbin/mosquitto")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(500));
        (child, port)
    });
    let config = config(dir.path(), devices, mosquitto.as_ref().map(|m| m.1));
    let daemon = common::start(dir.path(), &config);
    let http = daemon.port;
    let pid = daemon.child.id();
    let flow_port = common::bound_port(&daemon.bound["netflow"][0]);
    let (ready_rss, _) = rss_mb(pid);
    println!(
        "daemon ready in {:.1} s (pid {pid}), RSS {ready_rss:.0} MB",
        t0.elapsed().as_secs_f64()
    );

    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let events = Arc::new(AtomicU64::new(0));
    let mut load = Vec::new();
    {
        let (stop, sent) = (stop.clone(), sent.clone());
        load.push(std::thread::spawn(move || netflow(flow_port, stop, sent)));
    }
    for _ in 0..SSE_CLIENTS {
        let (stop, events) = (stop.clone(), events.clone());
        load.push(std::thread::spawn(move || sse(http, stop, events)));
    }
    let api_thread = {
        let stop = stop.clone();
        std::thread::spawn(move || api(http, devices, stop))
    };
    let timeline_thread = {
        let stop = stop.clone();
        std::thread::spawn(move || timeline(http, pid, stop))
    };

    // Warm-up: every device polled once (an interval) before anything is measured.
    let started = Instant::now();
    let at = |f: f64| run.mul_f64(f);
    let wait_until = |t: Duration| std::thread::sleep(t.saturating_sub(started.elapsed()));
    wait_until(at(0.2));
    let warm = scrape(http);
    let (warm_threads, warm_store) = (threads(pid), dir_bytes(&dir.path().join("store")));
    let warm_at = Instant::now();
    let warm_drops = udp::drops(flow_port);
    let mut peak_rss = 0.0f64;
    let mut rss_log = String::new();
    let mut sample_rss = |label: &str| {
        let (rss, _) = rss_mb(pid);
        peak_rss = peak_rss.max(rss);
        let _ = write!(rss_log, " {label} {rss:.0}");
    };
    sample_rss("warm");

    wait_until(at(0.5));
    let before_storm = scrape(http);
    let (storm_store, steady) = (
        dir_bytes(&dir.path().join("store")),
        warm_at.elapsed().as_secs_f64(),
    );
    sample_rss("storm");
    let storm_agents = STORM_DEVICES.div_ceil(PER_AGENT);
    let signal = |sig| {
        for &p in &pids[..storm_agents] {
            common::kill(p, sig);
        }
    };
    signal(libc::SIGSTOP);
    println!(
        "storm: {STORM_DEVICES} devices under core-0 silent at {:.0} s",
        started.elapsed().as_secs_f64()
    );
    wait_until(at(0.75));
    sample_rss("storm-end");
    signal(libc::SIGCONT);
    println!(
        "storm: the link is back at {:.0} s",
        started.elapsed().as_secs_f64()
    );
    wait_until(at(0.9));
    let after_storm = scrape(http);
    sample_rss("recovered");
    wait_until(run);
    let end = scrape(http);
    let (end_threads, end_store) = (threads(pid), dir_bytes(&dir.path().join("store")));
    let measured = warm_at.elapsed().as_secs_f64();
    let (rss, hwm) = rss_mb(pid);
    stop.store(true, Ordering::Relaxed);
    let mut api_took = api_thread.join().unwrap();
    let timeline = timeline_thread.join().unwrap();
    for t in load {
        let _ = t.join();
    }
    let kernel_drops = udp::drops(flow_port) - warm_drops;

    let d = |name: &str| sum(&end, name) - sum(&warm, name);
    println!(
        "\n== fleet figures ({measured:.0} s measured after a {:.0} s warm-up) ==",
        at(0.2).as_secs_f64()
    );
    println!("RSS now {rss:.0} MB, peak {hwm:.0} MB (ready {ready_rss:.0}; sampled:{rss_log})");
    println!(
        "series: {:.0}; samples {:.0}/s; SNMP polls ok {:.0}, failed {:.0}; values {:.0}/s",
        sum(&end, "noctua_detect_series"),
        d("noctua_detect_samples_total") / measured,
        d("noctua_snmp_polls_total{") - sum_failed(&end, &warm),
        sum_failed(&end, &warm),
        d("noctua_snmp_values_fetched_total") / measured,
    );
    println!(
        "netflow: sent {} datagrams in all, accepted {:.0}/s over the window, records {:.0}/s",
        sent.load(Ordering::Relaxed),
        d("noctua_netflow_datagrams_total") / measured,
        d("noctua_netflow_records_total") / measured,
    );
    println!(
        "drops: ingest {:.0}, netflow {:.0} (the socket's buffer full {:.0}; /proc/net/udp: {kernel_drops}, {warm_drops} during the warm-up), refused records {:.0}, MQTT outbox {:.0}, HTTP refused {:.0}",
        d("noctua_ingest_samples_dropped_total"),
        d("noctua_netflow_dropped_total"),
        d("noctua_netflow_dropped_total{reason=\"socket_buffer\"}"),
        d("noctua_netflow_records_refused_total"),
        d("noctua_mqtt_outbox_dropped_total"),
        d("noctua_http_connections_refused_total"),
    );
    println!(
        "poll start delay: p50 {}, p99 {}",
        quantile(&warm, &end, "noctua_snmp_poll_delay_seconds", 0.5),
        quantile(&warm, &end, "noctua_snmp_poll_delay_seconds", 0.99)
    );
    let latency = "noctua_pipeline_latency_seconds";
    for (when, from, to) in [
        ("before the storm", &warm, &before_storm),
        ("in the storm", &before_storm, &after_storm),
        ("after it", &after_storm, &end),
    ] {
        println!(
            "alarm latency {when}: p50 {}, p99 {}",
            quantile(from, to, latency, 0.5),
            quantile(from, to, latency, 0.99)
        );
    }
    println!(
        "transitions: {:.0}; SSE events seen by {SSE_CLIENTS} clients: {}; MQTT published {:.0}",
        d("noctua_alarm_transitions_total"),
        events.load(Ordering::Relaxed),
        d("noctua_mqtt_published_total"),
    );
    api_took.sort_unstable();
    let pct = |q: f64| {
        api_took
            .get(((api_took.len() as f64 - 1.0) * q) as usize)
            .map_or(0.0, |&u| u as f64 / 1000.0)
    };
    println!(
        "API: {} answers, p50 {:.1} ms, p99 {:.1} ms",
        api_took.len(),
        pct(0.5),
        pct(0.99)
    );
    let grown = end_store.saturating_sub(warm_store) as f64;
    println!(
        "store: {:.1} MB at the end, growing {:.1} MB/hour over the window, {:.1} MB/hour before the storm",
        end_store as f64 / 1e6,
        grown / measured * 3600.0 / 1e6,
        storm_store.saturating_sub(warm_store) as f64 / steady * 3600.0 / 1e6
    );
    let (_, exposition) = common::get(http, "/metrics").expect("metrics");
    println!(
        "/metrics: {} series, {:.0} KB",
        end.len(),
        exposition.len() as f64 / 1e3
    );
    println!("over time:\n{timeline}");
    println!("CPU by thread over the window (s of {measured:.0} s):");
    for (thread, cpu) in &end_threads {
        let was = warm_threads.get(thread).copied().unwrap_or(0.0);
        println!(
            "  {thread:<20} {:>7.1}  ({:.0} %)",
            cpu - was,
            (cpu - was) / measured * 100.0
        );
    }

    drop(daemon);
    if let Some((mut m, _)) = mosquitto {
        let _ = m.kill();
        let _ = m.wait();
    }
    // SIGKILL: a stopped snmpd would keep a SIGTERM pending.
    for (a, &p) in agents.iter_mut().zip(&pids) {
        common::kill(p, libc::SIGKILL);
        let _ = a.kill();
        let _ = a.wait();
    }
}

/// Failed polls between two scrapes.
fn sum_failed(end: &BTreeMap<String, f64>, warm: &BTreeMap<String, f64>) -> f64 {
    let failed = |m: &BTreeMap<String, f64>| -> f64 {
        m.iter()
            .filter(|(k, _)| {
                k.starts_with("noctua_snmp_polls_total{") && !k.contains("result=\"ok\"")
            })
            .map(|(_, v)| v)
            .sum()
    };
    failed(end) - failed(warm)
}
