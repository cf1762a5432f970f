//! The SNMP poller against net-snmp's snmpd (run as `nobody` on a loopback high port): an IF-MIB
//! served by a `pass_persist` script from a state file the test rewrites between polls, so the
//! counters move, wrap and reset on demand. v2c and v3 authPriv (SHA-256/AES) sessions; rates,
//! utilisation, loss and oper-status events from real replies; an agent restart; and a device
//! that never answers, which becomes an unreachable alarm while the other keeps its schedule.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test or bench reports

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::snmpd::{Snmpd, free_udp_port, shared_dir};
use common::*;
use noctua::config::{Config, parse};
use noctua::ingest::snmp::counters::{Counters, Derived, Skip};
use noctua::ingest::snmp::{Filter, Poller, Target};
use noctua::model::{EventKind, Metric};
use noctua::telemetry::Metrics;
use serde_json::json;

fn ifaces(hc_in: u64, in32: u64, in_errors: u64, hc_in_ucast: u64, oper3: u8) -> serde_json::Value {
    json!({"ifaces": {
        "2": {"name": "ge-0/0/1", "type": 6, "admin": 1, "oper": 1, "speed_mbps": 1,
              "hc_in": hc_in, "hc_out": 2000, "hc_in_ucast": hc_in_ucast, "hc_out_ucast": 20,
              "in_errors": in_errors, "out_errors": 0, "in_discards": 0, "out_discards": 0,
              "in32": 7, "out32": 7},
        "3": {"name": "ge-0/0/2", "alias": "to core-r1", "type": 6, "admin": 1, "oper": oper3, "in32": in32, "out32": 5},
        "9": {"name": "lo0", "type": 24, "admin": 1, "oper": 1, "in32": 1, "out32": 1}
    }})
}

fn config(port: u16, extra: &str) -> Config {
    let text = format!(
        "[snmp]\ntimeout = \"1s\"\nretries = 1\ninterface-types = [6]\n\
         [snmp.credentials.v2]\nversion = \"v2c\"\ncommunity = \"public\"\n\
         [snmp.credentials.v3]\nversion = \"v3\"\nuser = \"noctua\"\nauth-protocol = \"sha256\"\n\
         auth-key = \"authpass123\"\npriv-protocol = \"aes128\"\npriv-key = \"privpass123\"\n\
         [[device]]\nname = \"r-v2c\"\naddress = \"127.0.0.1\"\nsnmp-port = {port}\nrole = \"router\"\ncredentials = \"v2\"\n\
         [[device]]\nname = \"r-v3\"\naddress = \"127.0.0.1\"\nsnmp-port = {port}\nrole = \"router\"\ncredentials = \"v3\"\n{extra}"
    );
    parse("test.toml", &text, Path::new(".")).unwrap()
}

fn value(d: &Derived, object: &str, metric: Metric) -> Option<f64> {
    d.samples
        .iter()
        .find(|s| s.series.object == object && s.series.metric == metric)
        .map(|s| s.value)
}

#[tokio::test]
async fn v2c_and_v3_polls_of_snmpd_become_rates_utilisation_loss_and_events() {
    let dir = shared_dir();
    let port = free_udp_port();
    let agent = Snmpd::start(dir.path(), port);
    agent.state(ifaces(1_000, 4_294_967_000, 0, 10, 2));
    let config = config(port, "");
    let metrics = Arc::new(Metrics::new());
    let filter = Filter::new(&config.snmp);
    for target in Target::all(&config) {
        let name = target.name.clone();
        let mut poller = Poller::new(target, &config.snmp, metrics.clone());
        let mut counters = Counters::default();
        agent.state(ifaces(1_000, 4_294_967_000, 0, 10, 2));
        let first = poller.poll(&filter).await.unwrap();
        // ifType 24 (softwareLoopback) is filtered out.
        let mut indexes: Vec<u32> = first.reading.interfaces.keys().copied().collect();
        indexes.sort();
        assert_eq!(indexes, [2, 3], "{name}");
        assert!(first.values >= 20, "{name}: {} values", first.values);
        let u1 = first.reading.uptime;
        let d = counters.update(&name, first.reading);
        // ge-0/0/2 is down while admin up: an event on the first poll.
        assert_eq!(d.events.len(), 1);
        assert_eq!(d.events[0].kind, EventKind::LinkDown);
        assert_eq!(d.events[0].object, "ifIndex=3");

        tokio::time::sleep(Duration::from_millis(1_500)).await;
        // 50,000 octets in; 995 packets and 5 errors; the 32-bit counter of ge-0/0/2 wraps.
        agent.state(ifaces(51_000, 200, 5, 1_005, 1));
        let second = poller.poll(&filter).await.unwrap();
        let secs = f64::from(second.reading.uptime - u1) / 100.0;
        let d = counters.update(&name, second.reading);
        assert!(d.skipped.is_empty(), "{:?}", d.skipped);
        let bits = value(&d, "ifIndex=2", Metric::BitsInPerSec).unwrap();
        assert!(
            (bits - 50_000.0 * 8.0 / secs).abs() < 1e-6,
            "{name}: {bits} over {secs} s"
        );
        let util = value(&d, "ifIndex=2", Metric::UtilisationInPct).unwrap();
        assert!((util - bits / 1e6 * 100.0).abs() < 1e-9);
        assert_eq!(value(&d, "ifIndex=2", Metric::LossPct), Some(0.5));
        // Wrapped: 296 octets to the wrap + 200 after, not 4 GB backwards.
        let wrapped = value(&d, "ifIndex=3", Metric::BitsInPerSec).unwrap();
        assert!((wrapped - 496.0 * 8.0 / secs).abs() < 1e-6, "{wrapped}");
        assert_eq!(d.events.len(), 1);
        assert_eq!(d.events[0].kind, EventKind::LinkUp);
    }
    assert!(metrics.snmp_sessions.get() >= 2);
}

#[tokio::test]
async fn an_agent_restart_skips_the_interval_instead_of_a_spike() {
    let dir = shared_dir();
    let port = free_udp_port();
    let mut agent = Snmpd::start(dir.path(), port);
    agent.state(ifaces(9_000_000, 1_000_000, 0, 10, 1));
    let config = config(port, "");
    let metrics = Arc::new(Metrics::new());
    let filter = Filter::new(&config.snmp);
    let target = Target::all(&config).remove(0);
    let mut poller = Poller::new(target, &config.snmp, metrics.clone());
    let mut counters = Counters::default();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    counters.update("r", poller.poll(&filter).await.unwrap().reading);
    agent.stop();
    // Counters start again from small values after the restart.
    agent.state(ifaces(500, 40, 0, 1, 1));
    agent.run();
    let polled = poller.poll(&filter).await.unwrap();
    let d = counters.update("r", polled.reading);
    assert!(d.samples.is_empty(), "{:?}", d.samples);
    assert!(
        d.skipped.iter().all(|s| s.1 == Skip::AgentRestart),
        "{:?}",
        d.skipped
    );
    assert!(d.events.iter().any(|e| e.kind == EventKind::Reboot));
    // The poller noticed its session went stale (new agent, new engine) or carried on; either
    // way the next poll works and yields ordinary rates again.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    agent.state(ifaces(10_500, 40, 0, 1, 1));
    let d = counters.update("r", poller.poll(&filter).await.unwrap().reading);
    assert!(value(&d, "ifIndex=2", Metric::BitsInPerSec).is_some());
}

#[test]
fn a_silent_device_becomes_an_unreachable_alarm_while_others_keep_polling() {
    let dir = shared_dir();
    let port = free_udp_port();
    let agent = Snmpd::start(dir.path(), port);
    agent.state(ifaces(1_000, 10, 0, 10, 1));
    let silent = free_udp_port(); // nothing listens there
    let config = write_config(
        dir.path(),
        0,
        &format!(
            "[snmp]\ninterval = \"1s\"\ntimeout = \"200ms\"\nretries = 0\nunreachable-after = 2\n\
             [snmp.credentials.v2]\nversion = \"v2c\"\ncommunity = \"public\"\n\
             [[device]]\nname = \"live\"\naddress = \"127.0.0.1\"\nsnmp-port = {port}\nrole = \"router\"\ncredentials = \"v2\"\n\
             [[device]]\nname = \"silent\"\naddress = \"127.0.0.1\"\nsnmp-port = {silent}\nrole = \"router\"\ncredentials = \"v2\"\n"
        ),
    );
    let mut d = start(dir.path(), &config);
    let http = d.port;
    wait_until(&mut d, |d| {
        get(d.port, "/api/v1/alarms?device=silent")
            .is_some_and(|(_, body)| body.contains("device_unreachable"))
    });
    let (_, body) = get(http, "/metrics").unwrap();
    let count = |needle: &str| -> f64 {
        body.lines()
            .find(|l| l.starts_with(needle))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or(0.0)
    };
    // Nothing listens: the kernel's port-unreachable arrives as a network error, or nothing does.
    let failed = count("noctua_snmp_polls_total{device=\"silent\",result=\"timeout\"}")
        + count("noctua_snmp_polls_total{device=\"silent\",result=\"network\"}");
    assert!(failed >= 2.0, "{body}");
    // The live device was polled on schedule meanwhile, and its series reached detection.
    wait_until(&mut d, |d| {
        get(d.port, "/metrics").is_some_and(|(_, b)| {
            b.lines().any(|l| {
                l.starts_with("noctua_snmp_polls_total{device=\"live\",result=\"ok\"}")
                    && l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) >= Some(3.0)
            })
        })
    });
    // Read after the live device's polls (the body above may predate its first one).
    let (_, body) = get(http, "/metrics").unwrap();
    let fetched = body
        .lines()
        .find(|l| l.starts_with("noctua_snmp_values_fetched_total"))
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok());
    assert!(fetched > Some(0.0), "{body}");
    let _ = dir;
}

/// Runs a net-snmp tool that must succeed.
fn net_snmp_ok<S: AsRef<std::ffi::OsStr>>(tool: &str, args: &[S]) {
    let out = net_snmp(tool, args);
    assert_success(&out, tool);
}

fn net_snmp<S: AsRef<std::ffi::OsStr>>(tool: &str, args: &[S]) -> std::process::Output {
    Command::new(tool)
        .env("MIBS", "")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{tool} (scripts/setup-peers.sh installs it): {e}"))
}

/// A daemon taking v2c traps (community `public`) from device `r1` at 127.0.0.1, whose agent
/// is on `port` and polled hourly (so polls come from traps), with `extra` config.
fn trap_config(dir: &Path, port: u16, extra: &str) -> std::path::PathBuf {
    write_config(
        dir,
        0,
        &format!(
            "[snmp]\ninterval = \"1h\"\n\
             [snmp.credentials.v2]\nversion = \"v2c\"\ncommunity = \"public\"\n\
             [traps]\nenabled = true\nlisten = \"127.0.0.1:0\"\n\
             {extra}\
             [[device]]\nname = \"r1\"\naddress = \"127.0.0.1\"\nsnmp-port = {port}\nrole = \"router\"\ncredentials = \"v2\"\n"
        ),
    )
}

#[test]
fn traps_and_informs_from_net_snmp_become_alarms_and_polls() {
    let dir = shared_dir();
    let port = free_udp_port();
    let agent = Snmpd::start(dir.path(), port);
    agent.state(ifaces(1_000, 10, 0, 10, 1));
    let config = trap_config(
        dir.path(),
        port,
        "[traps.severity]\n\"1.3.6.1.4.1.9999.1.2\" = \"major\"\n",
    );
    let mut d = start(dir.path(), &config);
    let http = d.port;
    let to = format!("127.0.0.1:{}", bound_port(&d.bound["traps"]));
    let polls = |port: u16| {
        metric(port, "noctua_snmp_polls_total{device=\"r1\",result=\"ok\"}").unwrap_or(0.0)
    };
    let before = polls(http);
    // What the v2c traps and the inform share: version, community, receiver.
    let v2c = |options: &[&str], rest: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = ["-v", "2c", "-c", "public"]
            .iter()
            .chain(options)
            .map(|a| a.to_string())
            .collect();
        args.push(to.clone());
        args.extend(rest.iter().map(|a| a.to_string()));
        args
    };
    // v2c linkDown for ifIndex 3.
    let link_down = v2c(
        &[],
        &[
            "",
            "1.3.6.1.6.3.1.1.5.3",
            "1.3.6.1.2.1.2.2.1.1.3",
            "i",
            "3",
            "1.3.6.1.2.1.2.2.1.8.3",
            "i",
            "2",
        ],
    );
    net_snmp_ok("snmptrap", &link_down);
    // v1 coldStart.
    net_snmp_ok(
        "snmptrap",
        &[
            "-v",
            "1",
            "-c",
            "public",
            &to,
            "1.3.6.1.4.1.8072",
            "127.0.0.1",
            "0",
            "0",
            "",
        ],
    );
    // An inform: snmpinform only succeeds when it is answered.
    let inform = v2c(&["-t", "2", "-r", "1"], &["", "1.3.6.1.6.3.1.1.5.5"]);
    net_snmp_ok("snmpinform", &inform);
    // An enterprise trap noctua has no meaning for, with a configured severity.
    let enterprise = v2c(
        &[],
        &[
            "",
            "1.3.6.1.4.1.9999.1.2",
            "1.3.6.1.4.1.9999.2",
            "s",
            "fan tray 2 failed",
        ],
    );
    net_snmp_ok("snmptrap", &enterprise);
    // The wrong community, and a sender that is not a device.
    net_snmp(
        "snmptrap",
        &["-v", "2c", "-c", "wrong", &to, "", "1.3.6.1.6.3.1.1.5.3"],
    );
    let stranger = std::net::UdpSocket::bind("127.0.0.2:0").unwrap();
    stranger.send_to(b"\x30\x03\x02\x01\x01", &to).unwrap();

    wait_until(&mut d, |d| {
        get(d.port, "/api/v1/alarms?device=r1").is_some_and(|(_, b)| {
            [
                "link_down",
                "device_rebooted",
                "authentication_failure",
                "snmp_trap",
            ]
            .iter()
            .all(|c| b.contains(c))
        })
    });
    let (_, body) = get(http, "/api/v1/alarms?device=r1").unwrap();
    let alarms: serde_json::Value = serde_json::from_str(&body).unwrap();
    let list = alarms["items"].as_array().unwrap().clone();
    let find = |condition: &str| {
        list.iter()
            .find(|a| a["condition"] == condition)
            .unwrap_or_else(|| panic!("no {condition} in {body}"))
            .clone()
    };
    assert_eq!(find("link_down")["object"], "ifIndex=3");
    // Standard traps and their varbinds by name, the OID kept beside the name.
    let text = find("link_down")["additionalText"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        text.contains("linkDown (1.3.6.1.6.3.1.1.5.3)")
            && text.contains("ifIndex.3=3, ifOperStatus.3=down(2)"),
        "{text}"
    );
    let auth = find("authentication_failure");
    assert_eq!(auth["category"], "security");
    let other = find("snmp_trap");
    assert_eq!(other["object"], "trap=1.3.6.1.4.1.9999.1.2");
    assert_eq!(other["perceivedSeverity"], "MAJOR");
    assert!(
        other["additionalText"]
            .as_str()
            .unwrap()
            .contains("fan tray 2 failed")
    );
    // Standard traps made the poller look at once, an hour before its next turn.
    wait_until(&mut d, |d| polls(d.port) > before);
    let (_, metrics) = get(http, "/metrics").unwrap();
    for needle in [
        "noctua_snmp_traps_dropped_total{reason=\"community\"} 1",
        "noctua_snmp_traps_dropped_total{reason=\"unknown_source\"} 1",
        "noctua_snmp_traps_total{device=\"r1\",kind=\"link_down\"} 1",
        "noctua_snmp_traps_total{device=\"r1\",kind=\"cold_start\"} 1",
    ] {
        assert!(metrics.contains(needle), "{needle} missing");
    }
    // Each raise was timed from the trap's arrival to its transition on the bus.
    let timed = metric(http, "noctua_pipeline_latency_seconds_count").unwrap();
    assert!(timed >= 4.0, "{timed} transitions timed");
}

#[tokio::test]
async fn the_base_station_profile_reads_vendor_kpis() {
    let dir = shared_dir();
    let port = free_udp_port();
    let agent = Snmpd::start(dir.path(), port);
    let kpis = |connections: u64| {
        json!({"ifaces": {}, "oids": [
            ["1.3.6.1.4.1.32473.10.1.1.2.1", "integer", 5000],
            ["1.3.6.1.4.1.32473.10.1.1.2.2", "integer", 9700],
            ["1.3.6.1.4.1.32473.10.1.1.3.1", "integer", 150],
            ["1.3.6.1.4.1.32473.10.1.1.4.1", "counter", connections],
            ["1.3.6.1.4.1.32473.10.2.1.0", "integer", 12500]
        ]})
    };
    agent.state(kpis(1_000));
    let config = parse(
        "test.toml",
        &format!(
            "[snmp.credentials.v2]\nversion = \"v2c\"\ncommunity = \"public\"\n\
             [[device]]\nname = \"enb-1\"\naddress = \"127.0.0.1\"\nsnmp-port = {port}\nrole = \"base-station\"\ncredentials = \"v2\"\n"
        ),
        Path::new("."),
    )
    .unwrap();
    let target = Target::all(&config).remove(0);
    let mut poller = Poller::new(target, &config.snmp, Arc::new(Metrics::new()));
    let filter = Filter::new(&config.snmp);
    let mut counters = Counters::default();
    let first = poller.poll(&filter).await.unwrap();
    let u1 = first.reading.uptime;
    let d = counters.update("enb-1", first.reading);
    assert_eq!(
        value(&d, "prb_utilisation_dl.1", Metric::UtilisationInPct),
        Some(50.0)
    );
    assert_eq!(
        value(&d, "prb_utilisation_dl.2", Metric::UtilisationInPct),
        Some(97.0)
    );
    assert_eq!(value(&d, "rrc_setup_failure.1", Metric::LossPct), Some(1.5));
    assert_eq!(value(&d, "backhaul_latency", Metric::LatencyMs), Some(12.5));
    assert_eq!(
        value(&d, "rrc_connections.1", Metric::Kpi),
        None,
        "a counter needs two polls"
    );
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    agent.state(kpis(1_600));
    let second = poller.poll(&filter).await.unwrap();
    let secs = f64::from(second.reading.uptime - u1) / 100.0;
    let d = counters.update("enb-1", second.reading);
    let rate = value(&d, "rrc_connections.1", Metric::Kpi)
        .unwrap_or_else(|| panic!("{:?} {:?}", d.samples, d.skipped));
    assert!((rate - 600.0 / secs).abs() < 1e-9, "{rate}");
}

/// A daemon whose trap receiver takes SNMPv3 from device `name` at 127.0.0.1, user `noctua`
/// (`authpass123`, `privpass123`) under `auth` and `privacy`; with the receiver's address.
fn v3_receiver(name: &str, auth: &str, privacy: &str) -> (tempfile::TempDir, Daemon, String) {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        0,
        &format!(
            "[snmp]\ninterval = \"1h\"\n\
             [snmp.credentials.v3]\nversion = \"v3\"\nuser = \"noctua\"\nauth-protocol = \"{auth}\"\n\
             auth-key = \"authpass123\"\npriv-protocol = \"{privacy}\"\npriv-key = \"privpass123\"\n\
             [traps]\nenabled = true\nlisten = \"127.0.0.1:0\"\n\
             [[device]]\nname = \"{name}\"\naddress = \"127.0.0.1\"\nsnmp-port = {}\nrole = \"router\"\ncredentials = \"v3\"\n",
            free_udp_port()
        ),
    );
    let d = start(dir.path(), &config);
    let to = format!("127.0.0.1:{}", bound_port(&d.bound["traps"]));
    (dir, d, to)
}

/// v3: traps signed with the sender's engine, and informs, which go to noctua's own engine:
/// net-snmp's `snmpinform` discovers it, syncs time, sends the inform authPriv and exits 0 only
/// if the signed, encrypted Response it gets back verifies.
#[test]
fn v3_traps_are_authenticated_with_the_devices_user() {
    let (_dir, mut d, to) = v3_receiver("r3", "sha256", "aes128");
    let v3 = |auth_key: &str| v3_link_down(&to, "authPriv", auth_key, "privpass123", "7");
    assert!(v3("authpass123").status.success());
    // The same user with the wrong key: refused.
    assert!(v3("wrongpass99").status.success());
    // The right key again (keys localised to this engine are kept between traps).
    assert!(v3("authpass123").status.success());
    wait_until(&mut d, |d| {
        get(d.port, "/api/v1/alarms?device=r3").is_some_and(|(_, b)| b.contains("ifIndex=7"))
    });
    wait_until(&mut d, |d| {
        get(d.port, "/metrics").is_some_and(|(_, b)| {
            b.contains("noctua_snmp_traps_dropped_total{reason=\"authentication\"} 1")
                && b.contains("noctua_snmp_traps_total{device=\"r3\",kind=\"link_down\"} 2")
        })
    });
    let inform = |level: &str, auth_key: &str| {
        let mut args = vec![
            "-v", "3", "-u", "noctua", "-l", level, "-a", "SHA-256", "-A", auth_key, "-t", "2",
            "-r", "1",
        ];
        if level == "authPriv" {
            args.extend(["-x", "AES", "-X", "privpass123"]);
        }
        args.extend([
            to.as_str(),
            "",
            "1.3.6.1.6.3.1.1.5.3",
            "1.3.6.1.2.1.2.2.1.1.8",
            "i",
            "8",
        ]);
        net_snmp("snmpinform", &args)
    };
    let answered = inform("authPriv", "authpass123");
    assert_success(&answered, "v3 authPriv inform");
    // authNoPriv from an authPriv user is below its level: no answer, counted as authentication.
    assert!(!inform("authNoPriv", "authpass123").status.success());
    // A wrong key gets no answer: snmpinform times out and fails.
    assert!(!inform("authPriv", "wrongpass99").status.success());
    wait_until(&mut d, |d| {
        get(d.port, "/api/v1/alarms?device=r3").is_some_and(|(_, b)| b.contains("ifIndex=8"))
    });
    wait_until(&mut d, |d| {
        get(d.port, "/metrics").is_some_and(|(_, b)| {
            b.contains("noctua_snmp_traps_total{device=\"r3\",kind=\"link_down\"} 3")
        })
    });
    // Each snmpinform run learned the engine id from a report first.
    let reports = metric(
        d.port,
        "noctua_snmp_engine_reports_total{kind=\"unknown_engine_id\"}",
    );
    assert!(reports.is_some_and(|n| n >= 3.0), "{reports:?}");
}

/// A v3 linkDown trap for ifIndex `index` from user `noctua` (SHA-256, AES under `authPriv`) at
/// `level`, signed as engine 0x80001f8880c0ffee.
fn v3_link_down(
    to: &str,
    level: &str,
    auth_key: &str,
    priv_key: &str,
    index: &str,
) -> std::process::Output {
    let ifindex = format!("1.3.6.1.2.1.2.2.1.1.{index}");
    let mut args = vec![
        "-v",
        "3",
        "-e",
        "0x80001f8880c0ffee",
        "-u",
        "noctua",
        "-l",
        level,
        "-a",
        "SHA-256",
        "-A",
        auth_key,
    ];
    if level == "authPriv" {
        args.extend(["-x", "AES", "-X", priv_key]);
    }
    args.extend([to, "", "1.3.6.1.6.3.1.1.5.3", &ifindex, "i", index]);
    net_snmp("snmptrap", &args)
}

/// A device whose credential is SNMPv3 authPriv takes traps at that level only: v1 and v2c with
/// any community, v3 authNoPriv, and v3 with a wrong privacy key are all refused (a UDP source
/// address is no proof), and nothing of them becomes an alarm.
#[test]
fn traps_below_the_devices_security_level_are_refused() {
    let (_dir, mut d, to) = v3_receiver("r4", "sha256", "aes128");
    fn trap<'a>(extra: &[&'a str], to: &'a str) -> Vec<&'a str> {
        [extra, &[to]].concat()
    }
    let link_down = ["", "1.3.6.1.6.3.1.1.5.3", "1.3.6.1.2.1.2.2.1.1.9", "i", "9"];
    let v2c = [trap(&["-v", "2c", "-c", "public"], &to), link_down.to_vec()].concat();
    assert_success(&net_snmp("snmptrap", &v2c), "v2c snmptrap");
    let v1 = [
        trap(&["-v", "1", "-c", "public"], &to),
        vec![
            "",
            "127.0.0.1",
            "2",
            "0",
            "",
            "1.3.6.1.2.1.2.2.1.1",
            "i",
            "9",
        ],
    ]
    .concat();
    assert_success(&net_snmp("snmptrap", &v1), "v1 snmptrap");
    let v3 = |level: &str, priv_key: &str| v3_link_down(&to, level, "authpass123", priv_key, "9");
    assert_success(&v3("authNoPriv", ""), "v3 authNoPriv snmptrap");
    assert_success(&v3("authPriv", "wrongpriv99"), "v3 wrong privacy key");
    wait_until(&mut d, |d| {
        get(d.port, "/metrics").is_some_and(|(_, b)| {
            b.contains("noctua_snmp_traps_dropped_total{reason=\"community\"} 2")
                && b.contains("noctua_snmp_traps_dropped_total{reason=\"authentication\"} 2")
        })
    });
    // The right level still gets through, and only it raised anything.
    assert_success(&v3("authPriv", "privpass123"), "v3 authPriv snmptrap");
    wait_until(&mut d, |d| {
        metric(
            d.port,
            "noctua_snmp_traps_total{device=\"r4\",kind=\"link_down\"}",
        ) == Some(1.0)
    });
    let (_, body) = get(d.port, "/metrics").unwrap();
    assert!(
        body.contains("noctua_snmp_traps_dropped_total{reason=\"malformed\"} 0"),
        "{body}"
    );
}

/// AES-192/256 informs, where the privacy key must be longer than the authentication hash
/// gives (SHA-1, MD5) and is extended as net-snmp does: answered, so `snmpinform` exits 0.
#[test]
fn v3_informs_with_extended_aes_keys_are_answered() {
    for (auth, auth_flag, privacy, privacy_flag) in [
        ("sha1", "SHA", "aes256", "AES-256"),
        ("md5", "MD5", "aes192", "AES-192"),
    ] {
        let (_dir, mut d, to) = v3_receiver("r4", auth, privacy);
        let out = net_snmp(
            "snmpinform",
            &[
                "-v",
                "3",
                "-u",
                "noctua",
                "-l",
                "authPriv",
                "-a",
                auth_flag,
                "-A",
                "authpass123",
                "-x",
                privacy_flag,
                "-X",
                "privpass123",
                "-t",
                "2",
                "-r",
                "1",
                &to,
                "",
                "1.3.6.1.6.3.1.1.5.3",
                "1.3.6.1.2.1.2.2.1.1.5",
                "i",
                "5",
            ],
        );
        assert_success(&out, format_args!("{auth}/{privacy} inform"));
        wait_until(&mut d, |d| {
            get(d.port, "/api/v1/alarms?device=r4").is_some_and(|(_, b)| b.contains("ifIndex=5"))
        });
    }
}

/// A linkDown trap raises `link_down`; the poll it asks for sees the interface up, and that
/// clears it: the poller's view wins over a trap it can check.
#[test]
fn a_poll_that_sees_the_link_up_clears_a_traps_link_down() {
    let dir = shared_dir();
    let port = free_udp_port();
    let agent = Snmpd::start(dir.path(), port);
    agent.state(ifaces(1_000, 10, 0, 10, 1));
    let config = trap_config(dir.path(), port, "[alarms]\nclear-hold-down = \"0s\"\n");
    let mut d = start(dir.path(), &config);
    let to = format!("127.0.0.1:{}", bound_port(&d.bound["traps"]));
    // ifIndex 3 is up in the agent; the trap says it went down.
    net_snmp_ok(
        "snmptrap",
        &[
            "-v",
            "2c",
            "-c",
            "public",
            &to,
            "",
            "1.3.6.1.6.3.1.1.5.3",
            "1.3.6.1.2.1.2.2.1.1.3",
            "i",
            "3",
        ],
    );
    wait_until(&mut d, |d| {
        get(d.port, "/api/v1/alarms?device=r1&state=cleared")
            .is_some_and(|(_, b)| b.contains("link_down"))
    });
    let (_, body) = get(d.port, "/api/v1/alarms?device=r1&state=cleared").unwrap();
    let list: serde_json::Value = serde_json::from_str(&body).unwrap();
    let alarm = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["condition"] == "link_down")
        .unwrap();
    assert_eq!(alarm["object"], "ifIndex=3");
    let id = alarm["alarmId"].as_str().unwrap();
    let (_, shown) = get(d.port, &format!("/api/v1/alarms/{id}")).unwrap();
    let shown: serde_json::Value = serde_json::from_str(&shown).unwrap();
    let kinds: Vec<&str> = shown["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["raised", "cleared"], "{shown}");
    // The poll names the interface as a person does: ifName (ifAlias).
    let text = shown["alarm"]["additionalText"].as_str().unwrap();
    assert!(
        text.contains("ge-0/0/2 (to core-r1), ifIndex 3, oper status up"),
        "{text}"
    );
}

/// A device whose `[snmp.agent]` plan asks little at a time and at most 200 values a second:
/// its requests are paced (and counted), never past the budget over the whole run; the
/// descriptive columns are read at discovery only, and a new interface brings a discovery at
/// once, so it is polled under its own name from its first poll.
#[tokio::test]
async fn a_weak_agent_is_paced_and_its_table_described_only_at_discovery() {
    let dir = shared_dir();
    let port = free_udp_port();
    let agent = Snmpd::start(dir.path(), port);
    agent.state(ifaces(1_000, 7, 0, 10, 1));
    let plan = "[snmp.agent]\ncolumns-per-request = 2\nvalues-per-request = 20\n\
                max-values-per-second = 200\n";
    let config = config(port, plan);
    let metrics = Arc::new(Metrics::new());
    let filter = Filter::new(&config.snmp);
    let target = Target::all(&config).remove(0);
    assert_eq!(target.name, "r-v2c");
    let mut poller = Poller::new(target, &config.snmp, metrics.clone());
    let started = std::time::Instant::now();
    let mut values = Vec::new();
    for _ in 0..3 {
        values.push(poller.poll(&filter).await.unwrap().values);
    }
    let discoveries = |reason: &str| metrics.snmp_discoveries.with_label_values(&[reason]).get();
    assert_eq!(discoveries("first"), 1);
    assert_eq!(discoveries("changed"), 0);
    // Routine polls leave out names, types, aliases and speeds.
    assert!(values[1] < values[0], "{values:?}");
    assert_eq!(values[1], values[2]);

    let mut state = ifaces(2_000, 9, 0, 20, 1);
    state["ifaces"]["4"] = json!({"name": "ge-0/0/3", "type": 6, "admin": 1, "oper": 1,
                                  "hc_in": 5, "hc_out": 5, "in32": 5, "out32": 5});
    agent.state(state);
    let polled = poller.poll(&filter).await.unwrap();
    values.push(polled.values);
    assert_eq!(discoveries("changed"), 1);
    let new = &polled.reading.interfaces[&4];
    assert_eq!(new.name.as_deref(), Some("ge-0/0/3"));

    // Every request waited for its share of the budget: what came back in the whole run is
    // at most 200 a second, plus the one request the budget lets start at once.
    let waits = metrics
        .snmp_budget_waits
        .with_label_values(&["r-v2c"])
        .get();
    assert!(waits > 0);
    let fetched: u64 = values.iter().sum();
    let allowed = 200.0 * started.elapsed().as_secs_f64() + 20.0;
    assert!(
        (fetched as f64) <= allowed,
        "{fetched} values, {allowed} allowed"
    );
}
