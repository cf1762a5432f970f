//! Several noctua instances over a real three-node NATS JetStream cluster: every device owned
//! by exactly one live member, moved when a member is killed, taken from a paused (stale)
//! member which then stops working on it, and shared again when a member comes back; a trap
//! that reaches the wrong member is forwarded to the owner, which alone raises the alarm.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test or bench reports

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::nats::{Member, NatsCluster};
use common::*;

const DEVICES: usize = 30;
/// `[cluster] dead-after` of the instances.
const DEAD_AFTER: Duration = Duration::from_secs(3);

/// Member `name` with [`DEVICES`] devices and traps on.
fn instance(dir: &Path, nats: &NatsCluster, name: &str) -> Daemon {
    let member = Member {
        name,
        devices: DEVICES,
        heartbeat: Duration::from_millis(300),
        dead_after: DEAD_AFTER,
        extra: WITH_TRAPS,
        senders: 1,
    };
    member.start(dir, nats)
}

fn gauge(d: &Daemon, name: &str) -> Option<f64> {
    metric(d.port, name)
}

/// Waits up to `limit` until the live `members` see `members.len()` members and own every
/// device between them, each at least one, and each knows every device's owner.
fn wait_shared(members: &mut [&mut Daemon], limit: Duration) {
    let started = Instant::now();
    loop {
        let views: Vec<(Option<f64>, Option<f64>, Option<f64>)> = members
            .iter()
            .map(|d| {
                (
                    gauge(d, "noctua_cluster_members"),
                    gauge(d, "noctua_cluster_devices_owned"),
                    gauge(d, "noctua_cluster_devices_unowned"),
                )
            })
            .collect();
        let n = members.len() as f64;
        let owned: f64 = views.iter().filter_map(|v| v.1).sum();
        if views
            .iter()
            .all(|(m, o, u)| *m == Some(n) && o.is_some_and(|o| o >= 1.0) && *u == Some(0.0))
            && owned == DEVICES as f64
        {
            return;
        }
        for d in members.iter_mut() {
            if let Ok(Some(status)) = d.child.try_wait() {
                panic!("an instance exited with {status}:\n{}", log(d));
            }
        }
        assert!(
            started.elapsed() < limit,
            "not shared out within {limit:?}: (members, owned, unowned) = {views:?}\n{}",
            members
                .iter()
                .map(|d| log(d))
                .collect::<Vec<_>>()
                .join("\n---\n")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn devices_are_shared_out_moved_on_death_fenced_from_a_stale_owner_and_shared_back() {
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsCluster::start(dir.path());
    let mut a = instance(dir.path(), &nats, "noc-a");
    let mut b = instance(dir.path(), &nats, "noc-b");
    let mut c = instance(dir.path(), &nats, "noc-c");
    wait_shared(&mut [&mut a, &mut b, &mut c], Duration::from_secs(30));

    // kill -9: the survivors take its devices once its heartbeat is dead-after old.
    signal(&c, libc::SIGKILL);
    let _ = c.child.wait();
    wait_shared(&mut [&mut a, &mut b], DEAD_AFTER + Duration::from_secs(10));

    // A paused member is dead to the others; when it wakes it finds its devices taken over
    // at a newer epoch and stops working on them, then gets its share back.
    let b_had = gauge(&b, "noctua_cluster_devices_owned").unwrap();
    let b_gave = gauge(&b, "noctua_cluster_devices_given_up_total").unwrap();
    signal(&b, libc::SIGSTOP);
    let deadline = Instant::now() + DEAD_AFTER + Duration::from_secs(10);
    while gauge(&a, "noctua_cluster_devices_owned") != Some(DEVICES as f64) {
        assert!(
            Instant::now() < deadline,
            "a did not take b's devices:\n{}",
            log(&a)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let a_epoch = gauge(&a, "noctua_cluster_epoch").unwrap();
    assert!(a_epoch >= 2.0, "a took over at epoch {a_epoch}");
    signal(&b, libc::SIGCONT);
    wait_shared(&mut [&mut a, &mut b], Duration::from_secs(20));
    let b_gave_now = gauge(&b, "noctua_cluster_devices_given_up_total").unwrap();
    assert!(
        b_gave_now >= b_gave + b_had,
        "b gave up {b_gave} then {b_gave_now}, though it had {b_had} taken over"
    );
    assert!(
        log(&b).contains("device taken over: stopping work on it"),
        "{}",
        log(&b)
    );

    // The killed member comes back and gets a share again.
    let mut c = instance(dir.path(), &nats, "noc-c");
    wait_shared(&mut [&mut a, &mut b, &mut c], Duration::from_secs(20));
}

/// Traps on, and the community of the device that sends them; its agent is never polled
/// within the test (an hour's interval).
const WITH_TRAPS: &str = "[snmp]\ninterval = \"1h\"\n\
     [snmp.credentials.v2]\nversion = \"v2c\"\ncommunity = \"public\"\n\
     [traps]\nenabled = true\nlisten = \"127.0.0.1:0\"\n\
     [alarms]\nclear-hold-down = \"0s\"\n";

const LINK_DOWN: &str = "1.3.6.1.6.3.1.1.5.3";

fn link_down(to: &Daemon) {
    link_trap(to, LINK_DOWN, 7);
}

fn link_up(to: &Daemon) {
    link_trap(to, "1.3.6.1.6.3.1.1.5.4", 7);
}

/// linkDown or linkUp of `if_index` on gnb-00 (from 127.0.0.1), sent to `to`.
fn link_trap(to: &Daemon, oid: &str, if_index: u32) {
    let to = format!("127.0.0.1:{}", bound_port(&to.bound["traps"]));
    let (column, value) = (
        format!("1.3.6.1.2.1.2.2.1.1.{if_index}"),
        if_index.to_string(),
    );
    let out = std::process::Command::new("snmptrap")
        .env("MIBS", "")
        .args(["-v", "2c", "-c", "public", &to, "", oid])
        .args([column.as_str(), "i", value.as_str()])
        .output()
        .expect("snmptrap (scripts/setup-peers.sh installs snmp)");
    assert_success(&out, "snmptrap");
}

fn alarms_of(d: &Daemon, device: &str) -> usize {
    ids_of(d, "/api/v1/alarms", device).len()
}

/// The fleet-wide view's active alarms of `device`, as member `d` answers.
fn fleet_alarms_of(d: &Daemon, device: &str) -> usize {
    ids_of(d, "/api/v1/alarms?scope=fleet", device).len()
}

/// The ids of `device`'s active alarms that `path` lists.
fn ids_of(d: &Daemon, path: &str, device: &str) -> Vec<String> {
    listed(d, path, |a| a["device"] == device)
}

/// The ids of the active alarms that `path` lists and `keep` keeps.
fn listed(d: &Daemon, path: &str, keep: impl Fn(&serde_json::Value) -> bool) -> Vec<String> {
    get(d.port, path)
        .and_then(|(_, b)| serde_json::from_str::<serde_json::Value>(&b).ok())
        .and_then(|v| v["items"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter(|a| keep(a))
        .filter_map(|a| a["alarmId"].as_str().map(str::to_owned))
        .collect()
}

/// The owner of `device` among the live members `names`, as every member computes it.
fn owner_among(device: &str, names: &[&str]) -> String {
    let live: Vec<_> = names
        .iter()
        .map(|n| noctua::cluster::Member {
            name: (*n).into(),
            site: None,
        })
        .collect();
    noctua::cluster::owner_of(device, None, &live)
        .unwrap()
        .name
        .clone()
}

#[test]
fn a_trap_at_the_wrong_member_is_forwarded_to_the_owner_which_alone_raises_the_alarm() {
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsCluster::start(dir.path());
    let mut a = instance(dir.path(), &nats, "noc-a");
    let mut b = instance(dir.path(), &nats, "noc-b");
    wait_shared(&mut [&mut a, &mut b], Duration::from_secs(30));
    let (owner, other) = if owner_among("gnb-00", &["noc-a", "noc-b"]) == "noc-a" {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };

    // `alarms tail --fleet` on the member that does not own the device.
    let (mut tail, tailed) = spawn_lines(
        std::process::Command::new(BIN)
            .args(["alarms", "tail", "--fleet", "--json", "--server"])
            .arg(format!("http://127.0.0.1:{}", other.port)),
    );
    let summary = tailed.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(summary.starts_with("0 active alarms"), "{summary}");

    link_down(other);
    let deadline = Instant::now() + Duration::from_secs(20);
    while alarms_of(owner, "gnb-00") != 1 {
        let counts = |d: &Daemon| {
            let (_, text) = get(d.port, "/metrics").unwrap_or_default();
            let lines: Vec<&str> = text
                .lines()
                .filter(|l| l.starts_with("noctua_cluster_") || l.starts_with("noctua_snmp_traps"))
                .collect();
            lines.join("\n")
        };
        assert!(
            Instant::now() < deadline,
            "the owner did not raise the forwarded trap's alarm\nowner:\n{}\nother:\n{}\n{}",
            counts(owner),
            counts(other),
            [log(owner), log(other)].join("\n---\n")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        alarms_of(other, "gnb-00"),
        0,
        "the member that heard the trap raised it too"
    );
    assert!(gauge(other, "noctua_cluster_forwarded_total").unwrap() >= 1.0);
    assert!(gauge(owner, "noctua_cluster_forward_received_total").unwrap() >= 1.0);
    for reason in [
        "queue_full",
        "no_owner",
        "publish",
        "not_owner",
        "malformed",
    ] {
        let series = format!("noctua_cluster_forward_dropped_total{{reason=\"{reason}\"}}");
        assert_eq!(gauge(other, &series), Some(0.0), "{series}");
        assert_eq!(gauge(owner, &series), Some(0.0), "{series}");
    }

    // The same trap at the owner is its own: nothing forwarded, the alarm repeated, not doubled.
    let forwarded = gauge(owner, "noctua_cluster_forwarded_total").unwrap();
    link_down(owner);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        gauge(owner, "noctua_cluster_forwarded_total"),
        Some(forwarded)
    );
    assert_eq!(alarms_of(owner, "gnb-00"), 1);

    // Replicated: both members' fleet-wide view holds the owner's alarm, and then its clear.
    wait_until(other, |d| fleet_alarms_of(d, "gnb-00") == 1);
    assert_eq!(fleet_alarms_of(owner, "gnb-00"), 1);
    // Reading needs no token; the CLI is given a file all the same.
    std::fs::write(dir.path().join("token"), "reading-needs-none\n").unwrap();
    let listed = cli(dir.path(), other.port, &["alarms", "list", "--fleet"]);
    assert_success(&listed, "alarms list --fleet");
    let listed = text(&listed);
    assert!(
        listed.contains("gnb-00") && listed.contains("ifIndex=7"),
        "{listed}"
    );
    link_up(other);
    wait_until(owner, |d| alarms_of(d, "gnb-00") == 0);
    wait_until(other, |d| fleet_alarms_of(d, "gnb-00") == 0);
    assert!(gauge(owner, "noctua_cluster_transitions_replicated_total").unwrap() >= 3.0);
    // The tail saw the owner's raise and clear, heard by the other member.
    let mut kinds = Vec::new();
    while !kinds.contains(&"cleared".to_owned()) {
        let line = tailed
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("the fleet tail showed only {kinds:?}"));
        let e: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(e["alarm"]["device"], "gnb-00", "{line}");
        kinds.push(e["kind"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        kinds.first().map(String::as_str),
        Some("raised"),
        "{kinds:?}"
    );
    let _ = tail.kill();
    let _ = tail.wait();
    assert_eq!(
        gauge(owner, "noctua_cluster_refused_writes_total"),
        Some(0.0)
    );
}

#[test]
fn an_active_alarm_goes_on_at_the_survivor_and_is_not_raised_or_cleared_twice() {
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsCluster::start(dir.path());
    let names = ["noc-a", "noc-b", "noc-c"];
    let mut members: Vec<Daemon> = names
        .iter()
        .map(|n| instance(dir.path(), &nats, n))
        .collect();
    wait_shared(
        &mut members.iter_mut().collect::<Vec<_>>(),
        Duration::from_secs(30),
    );
    let at = |name: String| names.iter().position(|n| *n == name).unwrap();
    let first = at(owner_among("gnb-00", &names));
    let other = (first + 1) % names.len();

    link_down(&members[first]);
    wait_until(&mut members[first], |d| alarms_of(d, "gnb-00") == 1);
    let id = ids_of(&members[first], "/api/v1/alarms", "gnb-00").remove(0);
    wait_until(&mut members[other], |d| {
        ids_of(d, "/api/v1/alarms?scope=fleet", "gnb-00") == [id.as_str()]
    });

    // kill -9 the owner: within dead-after + 10 s the new owner holds the alarm, by its id.
    signal(&members[first], libc::SIGKILL);
    let _ = members[first].child.wait();
    let survivors: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| *n != names[first])
        .collect();
    let second = at(owner_among("gnb-00", &survivors));
    let deadline = Instant::now() + DEAD_AFTER + Duration::from_secs(10);
    while ids_of(&members[second], "/api/v1/alarms", "gnb-00") != [id.as_str()] {
        assert!(
            Instant::now() < deadline,
            "the survivor did not adopt alarm {id}:\n{}",
            log(&members[second])
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The clear after the handover, at the new owner, ends the same alarm everywhere.
    link_up(&members[second]);
    wait_until(&mut members[second], |d| alarms_of(d, "gnb-00") == 0);
    let third = survivors
        .iter()
        .map(|n| at((*n).into()))
        .find(|i| *i != second)
        .unwrap();
    wait_until(&mut members[third], |d| fleet_alarms_of(d, "gnb-00") == 0);

    // The dead member comes back, and with it its device: what it still held of the device
    // from before is handed over, neither raised nor cleared again.
    members[first] = instance(dir.path(), &nats, names[first]);
    wait_shared(
        &mut members.iter_mut().collect::<Vec<_>>(),
        Duration::from_secs(20),
    );
    wait_until(&mut members[first], |d| alarms_of(d, "gnb-00") == 0);
    std::thread::sleep(Duration::from_secs(1));
    for d in &members {
        assert_eq!(fleet_alarms_of(d, "gnb-00"), 0, "{}", log(d));
    }

    // What a subscriber of the fleet's stream saw of the alarm: one raise, one adoption, one
    // clear, and a repair time counted from the first raise.
    let seen: Vec<serde_json::Value> = nats
        .transitions()
        .into_iter()
        .filter(|e| e["alarm"]["alarmId"].as_str() == Some(id.as_str()))
        .collect();
    let kinds: Vec<&str> = seen.iter().filter_map(|e| e["kind"].as_str()).collect();
    assert_eq!(kinds, ["raised", "adopted", "cleared"], "{seen:#?}");
    assert_eq!(
        seen[2]["alarm"]["alarmRaisedTime"], seen[0]["alarm"]["alarmRaisedTime"],
        "{seen:#?}"
    );
    let raises = nats
        .transitions()
        .iter()
        .filter(|e| e["kind"] == "raised" && e["alarm"]["device"] == "gnb-00")
        .count();
    assert_eq!(raises, 1, "the condition was raised once in all");
}

/// Links that go down in the NATS-node test.
const STORM: u32 = 120;

#[test]
fn a_nats_node_killed_during_a_storm_loses_nothing_committed() {
    let dir = tempfile::tempdir().unwrap();
    let mut nats = NatsCluster::start(dir.path());
    let mut a = instance(dir.path(), &nats, "noc-a");
    let mut b = instance(dir.path(), &nats, "noc-b");
    wait_shared(&mut [&mut a, &mut b], Duration::from_secs(30));
    let owner = if owner_among("gnb-00", &["noc-a", "noc-b"]) == "noc-a" {
        &a
    } else {
        &b
    };

    // A storm of link-downs on gnb-00; a third of the way in, kill -9 a NATS node.
    for i in 1..=STORM {
        link_trap(owner, LINK_DOWN, i);
        if i == STORM / 3 {
            nats.kill(0);
        }
    }

    // Every alarm committed is in the fleet-wide view, on both members, once. (Each trap
    // also asks for a poll, which finds no agent: a device-down alarm may come too.)
    let is_link_down =
        |a: &serde_json::Value| a["device"] == "gnb-00" && a["condition"] == "link_down";
    let link_ids = |d: &Daemon, path: &str| {
        let mut ids = listed(d, path, is_link_down);
        ids.sort();
        ids
    };
    let fleet_ids = |d: &Daemon| link_ids(d, "/api/v1/alarms?scope=fleet&limit=1000");
    let links = STORM as usize;
    let deadline = Instant::now() + Duration::from_secs(60);
    while fleet_ids(&a).len() != links || fleet_ids(&b).len() != links {
        assert!(
            Instant::now() < deadline,
            "the fleet view has {} and {} of {links} alarms\n{}",
            fleet_ids(&a).len(),
            fleet_ids(&b).len(),
            [log(&a), log(&b)].join("\n---\n")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(fleet_ids(&a), fleet_ids(&b));
    let local: usize = [&a, &b]
        .iter()
        .map(|d| link_ids(d, "/api/v1/alarms?limit=1000").len())
        .sum();
    assert_eq!(local, links, "each alarm is held by one member");

    // And on the stream (which a record written afresh after a rejoin may be ahead of):
    // each of them raised exactly once.
    let raised = || {
        let mut ids: Vec<String> = nats
            .transitions()
            .iter()
            .filter(|e| e["kind"] == "raised" && is_link_down(&e["alarm"]))
            .filter_map(|e| e["alarm"]["alarmId"].as_str().map(str::to_owned))
            .collect();
        ids.sort();
        ids
    };
    let want = fleet_ids(&a);
    let deadline = Instant::now() + Duration::from_secs(30);
    while raised().len() < want.len() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(raised(), want, "{}", [log(&a), log(&b)].join("\n---\n"));
}

#[test]
fn a_member_started_before_nats_owns_nothing_then_joins_and_counts_a_malformed_forward() {
    let dir = tempfile::tempdir().unwrap();
    let mut early = None;
    let nats = NatsCluster::start_after(dir.path(), |servers| {
        let member = Member {
            name: "noc-a",
            devices: DEVICES,
            heartbeat: Duration::from_millis(300),
            dead_after: DEAD_AFTER,
            extra: WITH_TRAPS,
            senders: 1,
        };
        let mut a = member.start_on(dir.path(), servers);
        // Up, answering, and working on nothing while it cannot join.
        wait_until(&mut a, |d| {
            gauge(d, "noctua_cluster_connected") == Some(0.0)
        });
        std::thread::sleep(Duration::from_secs(1));
        assert_eq!(gauge(&a, "noctua_cluster_devices_owned"), Some(0.0));
        assert_eq!(get(a.port, "/api/v1/alarms").map(|(s, _)| s), Some(200));
        early = Some(a);
    });
    let mut a = early.unwrap();
    wait_shared(&mut [&mut a], Duration::from_secs(30));
    assert_eq!(gauge(&a, "noctua_cluster_connected"), Some(1.0));

    // A batch on its forwarding subject that is not one is counted and changes nothing.
    let malformed = "noctua_cluster_forward_dropped_total{reason=\"malformed\"}";
    assert_eq!(gauge(&a, malformed), Some(0.0));
    nats.publish("noctua.samples.noc-a", b"{\"not\": \"a batch\"");
    wait_until(&mut a, |d| gauge(d, malformed) == Some(1.0));
    assert_eq!(alarms_of(&a, "gnb-00"), 0);
    link_down(&a);
    wait_until(&mut a, |d| alarms_of(d, "gnb-00") == 1);
}

#[path = "../benches/support/v9.rs"]
mod v9;

/// The sum of every series of `name` at `d` (whatever their labels).
fn total(d: &Daemon, name: &str) -> f64 {
    let (_, text) = get(d.port, "/metrics").unwrap_or_default();
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn a_template_announced_to_one_member_decodes_the_exporters_flows_at_another() {
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsCluster::start(dir.path());
    let extra = format!("{WITH_TRAPS}[netflow]\nenabled = true\nlisten = [\"127.0.0.1:0\"]\n");
    let member = |name| Member {
        name,
        devices: DEVICES,
        heartbeat: Duration::from_millis(300),
        dead_after: DEAD_AFTER,
        extra: &extra,
        senders: 1,
    };
    let mut a = member("noc-a").start(dir.path(), &nats);
    let mut b = member("noc-b").start(dir.path(), &nats);
    wait_shared(&mut [&mut a, &mut b], Duration::from_secs(30));
    let send = |to: &Daemon, datagram: Vec<u8>| {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = bound_port(&to.bound["netflow"][0]);
        socket.send_to(&datagram, ("127.0.0.1", port)).unwrap();
    };

    // gnb-00 (127.0.0.1) announces its template to noc-a only.
    send(&a, v9::twenty_field_datagram(7, 300, true, 1));
    wait_until(&mut a, |d| {
        gauge(d, "noctua_netflow_templates") == Some(1.0)
    });
    wait_until(&mut b, |d| {
        gauge(d, "noctua_netflow_templates") == Some(1.0)
    });

    // Its next datagram, data only, reaches noc-b, which decodes it with the shared template.
    let decoded = total(&b, "noctua_netflow_records_total");
    send(&b, v9::twenty_field_datagram(7, 300, false, 2));
    wait_until(&mut b, |d| {
        total(d, "noctua_netflow_records_total") >= decoded + 21.0
    });
    assert_eq!(
        gauge(&b, "noctua_netflow_unknown_template_sets_total"),
        Some(0.0)
    );
}
