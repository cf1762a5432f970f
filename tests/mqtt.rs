//! MQTT through a real mosquitto: every transition arrives (at least once, in order per alarm),
//! retained active alarms, and the durable outbox across a broker outage and a daemon restart.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test or bench reports

mod common;

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const TOKEN: &str = "t0ken-for-tests";
const MOSQUITTO: &str = "/usr/sbin/mosquitto";

struct Broker {
    child: Child,
}

impl Broker {
    /// mosquitto on 127.0.0.1:`port` with persistence in `dir`, so sessions survive a restart.
    fn start(dir: &Path, port: u16) -> Self {
        let data = dir.join("mosquitto");
        std::fs::create_dir_all(&data).unwrap();
        Self::with(
            dir,
            port,
            &format!(
                "allow_anonymous true\npersistence true\npersistence_location {}/\n",
                data.display()
            ),
        )
    }

    /// mosquitto on 127.0.0.1:`port` with `settings` added to its config, once it listens.
    fn with(dir: &Path, port: u16, settings: &str) -> Self {
        let conf = dir.join(format!("mosquitto-{port}.conf"));
        std::fs::write(
            &conf,
            format!("listener {port} 127.0.0.1\nuser root\n{settings}"),
        )
        .unwrap();
        let child = Command::new(MOSQUITTO)
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto (scripts/setup-peers.sh installs it)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "mosquitto did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { child }
    }

    /// SIGTERM, so mosquitto saves its sessions.
    fn stop(mut self) {
        let pid = libc::pid_t::try_from(self.child.id()).unwrap();
        kill(pid, libc::SIGTERM);
        self.child.wait().unwrap();
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A persistent QoS 1 subscriber (`mosquitto_sub -c`), collecting `topic payload` lines.
struct Subscriber {
    child: Child,
    lines: mpsc::Receiver<String>,
    got: std::cell::RefCell<Vec<(String, Value)>>,
}

impl Subscriber {
    fn start(port: u16, topic: &str) -> Self {
        // Line-buffered (coreutils' stdbuf): mosquitto_sub flushes messages but not its -d lines.
        let mut child = Command::new("stdbuf")
            .args([
                "-oL",
                "mosquitto_sub",
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-q",
                "1",
                "-c",
                "-i",
                "noctua-test-sub",
                "-v",
                "-d",
                "-t",
                topic,
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto_sub (scripts/setup-peers.sh installs it)");
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        let (subscribed, suback) = mpsc::channel();
        // With -d, mosquitto_sub's protocol steps come between the `topic payload` lines; the
        // SUBACK says the subscription is in place, so nothing published after it is missed.
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                if line.starts_with("Client ") || line.starts_with("Subscribed ") {
                    if line.ends_with("received SUBACK") {
                        let _ = subscribed.send(());
                    }
                } else if tx.send(line).is_err() {
                    return;
                }
            }
        });
        suback
            .recv_timeout(Duration::from_secs(10))
            .expect("mosquitto_sub did not subscribe");
        Self {
            child,
            lines,
            got: std::cell::RefCell::default(),
        }
    }

    /// Every transition event received so far, once `want` distinct sequence numbers have
    /// been seen (waiting up to 30 s).
    fn collect(&self, want: usize) -> Vec<(String, Value)> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut got = self.got.borrow_mut();
        while distinct(&got) < want {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = self.lines.recv_timeout(left) else {
                panic!(
                    "only {} of {want} transitions arrived: {got:?}",
                    distinct(&got)
                );
            };
            let (topic, payload) = line.split_once(' ').unwrap();
            got.push((topic.to_owned(), serde_json::from_str(payload).unwrap()));
        }
        got.clone()
    }
}

impl Subscriber {
    /// Every transition event received so far and within `wait` from now.
    fn collect_for(&self, wait: Duration) -> Vec<(String, Value)> {
        let deadline = Instant::now() + wait;
        let mut got = self.got.borrow_mut();
        while let Ok(line) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            let (topic, payload) = line.split_once(' ').unwrap();
            got.push((topic.to_owned(), serde_json::from_str(payload).unwrap()));
        }
        got.clone()
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn distinct(got: &[(String, Value)]) -> usize {
    let mut seqs: Vec<u64> = got.iter().filter_map(|(_, v)| v["seq"].as_u64()).collect();
    seqs.sort_unstable();
    seqs.dedup();
    seqs.len()
}

/// Retained messages under `topic`, as `topic payload` lines.
fn retained(port: u16, topic: &str) -> Vec<String> {
    let out = Command::new("mosquitto_sub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-t",
            topic,
            "-v",
            "--retained-only",
            "-W",
            "1",
        ])
        .output()
        .unwrap();
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    lines.sort();
    lines
}

fn daemon_config(dir: &Path, http: u16, mqtt: u16) -> PathBuf {
    write_config(
        dir,
        http,
        &format!(
            "token = \"{TOKEN}\"\n\n[mqtt]\nenabled = true\nbroker = \"127.0.0.1:{mqtt}\"\nkeepalive = \"5s\"\n"
        ),
    )
}

fn util_alarm(port: u16) -> String {
    let (_, body) = get(port, "/api/v1/alarms?device=bh-r1").unwrap();
    let v: Value = serde_json::from_str(&body).unwrap();
    v["items"][0]["alarmId"].as_str().unwrap().to_owned()
}

/// A store with two active alarms, a persistent broker, a subscriber to the alarm topics, and a
/// daemon publishing to the broker.
struct Setup {
    dir: tempfile::TempDir,
    http: u16,
    mqtt: u16,
    broker: Broker,
    sub: Subscriber,
    config: PathBuf,
    daemon: Daemon,
}

impl Setup {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        store_with_alarms(dir.path());
        let mqtt = peer_port();
        let broker = Broker::start(dir.path(), mqtt);
        let sub = Subscriber::start(mqtt, "noctua/alarms/#");
        let config = daemon_config(dir.path(), 0, mqtt);
        let daemon = start(dir.path(), &config);
        let http = daemon.port;
        Self {
            dir,
            http,
            mqtt,
            broker,
            sub,
            config,
            daemon,
        }
    }
}

#[test]
fn transitions_reach_the_broker_with_retained_active_alarms() {
    let Setup {
        dir: _dir,
        http,
        mqtt,
        broker: _broker,
        sub,
        config: _,
        daemon: mut d,
    } = Setup::new();

    // The two raises the replay left in the outbox go out first.
    let first = sub.collect(2);
    let topics: Vec<&str> = first.iter().map(|(t, _)| t.as_str()).collect();
    assert!(
        topics.contains(&"noctua/alarms/critical/enb-1042"),
        "{topics:?}"
    );
    assert!(topics.contains(&"noctua/alarms/major/bh-r1"), "{topics:?}");
    let util = util_alarm(http);
    act(http, TOKEN, &util, "ack");
    let all = sub.collect(3);
    let ack = all
        .iter()
        .find(|(_, v)| v["kind"] == "acknowledged")
        .expect("ack message");
    assert_eq!(ack.1["alarm"]["ackUserId"], "maria");
    assert_eq!(ack.1["alarm"]["alarmId"], util.as_str());

    let active = retained(mqtt, "noctua/active/#");
    assert_eq!(active.len(), 2, "{active:?}");
    assert_eq!(retained(mqtt, "noctua/status"), ["noctua/status online"]);
    act(http, TOKEN, &util, "clear");
    sub.collect(4);
    let active = retained(mqtt, "noctua/active/#");
    assert_eq!(
        active.len(),
        1,
        "the cleared alarm's retained message is removed: {active:?}"
    );
    assert!(!active[0].starts_with(&format!("noctua/active/{util} ")));

    wait_until(&mut d, |d| {
        metric(d.port, "noctua_mqtt_outbox_depth") == Some(0.0)
    });
    assert_eq!(metric(http, "noctua_mqtt_published_total"), Some(4.0));
    signal(&d, libc::SIGTERM);
    assert_eq!(wait_exit(&mut d, Duration::from_secs(2)).code(), Some(0));
    assert_eq!(retained(mqtt, "noctua/status"), ["noctua/status offline"]);
}

#[test]
fn nothing_is_lost_across_a_broker_outage_and_a_daemon_restart() {
    let Setup {
        dir,
        http,
        mqtt,
        broker,
        sub,
        config,
        daemon: mut d,
    } = Setup::new();
    sub.collect(2);
    let util = util_alarm(http);
    // The subscriber having the raises does not mean the daemon has the broker's acks yet: wait
    // for them, so the outbox holds exactly what happens during the outage.
    wait_until(&mut d, |d| {
        metric(d.port, "noctua_mqtt_outbox_depth") == Some(0.0)
    });

    broker.stop();
    act(http, TOKEN, &util, "ack");
    act(http, TOKEN, &util, "unack");
    wait_until(&mut d, |d| {
        metric(d.port, "noctua_mqtt_outbox_depth") == Some(2.0)
    });
    // The daemon restarts while the broker is still down; the outbox is in the store.
    signal(&d, libc::SIGTERM);
    assert_eq!(wait_exit(&mut d, Duration::from_secs(2)).code(), Some(0));
    let daemon = start(dir.path(), &config);
    let http = daemon.port;
    act(http, TOKEN, &util, "ack");

    let _broker = Broker::start(dir.path(), mqtt);
    let all = sub.collect(5);
    // In order per alarm (duplicates allowed: delivery is at least once).
    let mut kinds: Vec<(u64, String)> = all
        .iter()
        .filter(|(_, v)| v["alarm"]["alarmId"] == util.as_str())
        .map(|(_, v)| {
            (
                v["seq"].as_u64().unwrap(),
                v["kind"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    kinds.dedup();
    let seqs: Vec<u64> = kinds.iter().map(|(s, _)| *s).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "out of order: {kinds:?}"
    );
    let names: Vec<&str> = kinds.iter().map(|(_, k)| k.as_str()).collect();
    assert_eq!(
        names,
        ["raised", "acknowledged", "unacknowledged", "acknowledged"]
    );
}

/// A daemon on a store a replay left two notified raises in, with `mqtt` as its `[mqtt]`
/// section; the guard keeps the directory.
fn daemon_on_replayed_store(mqtt: &str) -> (tempfile::TempDir, u16, Daemon) {
    let dir = tempfile::tempdir().unwrap();
    store_with_alarms(dir.path());
    let config = write_config(
        dir.path(),
        0,
        &format!("token = \"{TOKEN}\"\n\n[mqtt]\n{mqtt}"),
    );
    let d = start(dir.path(), &config);
    let http = d.port;
    (dir, http, d)
}

/// Stops the daemon cleanly and opens the store it leaves.
fn stop_and_open(dir: &Path, mut d: Daemon) -> noctua::store::Store {
    signal(&d, libc::SIGTERM);
    assert_eq!(wait_exit(&mut d, Duration::from_secs(2)).code(), Some(0));
    noctua::store::Store::open(&dir.join("store")).unwrap()
}

#[test]
fn a_full_outbox_drops_the_oldest_and_counts_them() {
    // No broker listens there.
    let (dir, http, mut d) = daemon_on_replayed_store(&format!(
        "enabled = true\nbroker = \"127.0.0.1:{}\"\noutbox-limit = 2\n",
        peer_port()
    ));
    let util = util_alarm(http);
    act(http, TOKEN, &util, "ack");
    act(http, TOKEN, &util, "unack");
    // Two raises from the replay plus two transitions: four, bounded to two.
    wait_until(&mut d, |d| {
        metric(d.port, "noctua_mqtt_outbox_dropped_total") == Some(2.0)
    });
    assert_eq!(metric(http, "noctua_mqtt_outbox_depth"), Some(2.0));
    let store = stop_and_open(dir.path(), d);
    let kept: Vec<String> = store
        .outbox_after(0, usize::MAX)
        .unwrap()
        .iter()
        .map(|e| e.kind.name().to_owned())
        .collect();
    assert_eq!(
        kept,
        ["acknowledged", "unacknowledged"],
        "the newest are kept"
    );
}

#[test]
fn without_a_publisher_only_the_newest_outbox_limit_wait() {
    let (dir, http, mut d) = daemon_on_replayed_store("enabled = false\noutbox-limit = 1\n");
    // The replay left two raises waiting; the alarm stage keeps the newest one.
    wait_until(&mut d, |d| {
        metric(d.port, "noctua_mqtt_outbox_depth") == Some(1.0)
    });
    assert_eq!(
        metric(http, "noctua_mqtt_outbox_dropped_total"),
        Some(0.0),
        "trimming for want of a publisher is not a lost MQTT message"
    );
    let store = stop_and_open(dir.path(), d);
    let waiting = store.outbox_after(0, usize::MAX).unwrap();
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0].seq, store.outbox_cursor().unwrap() + 1);
    assert_eq!(waiting[0].seq, 2, "the newer raise");
    // Both raises are still history.
    assert_eq!(store.history_after(0, usize::MAX).unwrap().len(), 2);
}

/// A CA, a broker certificate for 127.0.0.1 and a client certificate, made with the openssl CLI.
fn make_pki(dir: &Path) {
    let sh = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl");
        assert_success(&out, format_args!("openssl {args:?}"));
    };
    sh(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=noctua-test-ca",
    ]);
    std::fs::write(dir.join("server.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
    for (name, cn) in [("server", "127.0.0.1"), ("client", "noctua")] {
        let key = format!("{name}.key");
        let csr = format!("{name}.csr");
        let pem = format!("{name}.pem");
        let ext = format!("{name}.ext");
        sh(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            &format!("/CN={cn}"),
        ]);
        sh(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &pem,
            "-days",
            "2",
            "-extfile",
            &ext,
        ]);
    }
    // A second CA that signed nothing, to show a wrong CA is refused.
    sh(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "other.key",
        "-out",
        "other.pem",
        "-days",
        "2",
        "-subj",
        "/CN=other-ca",
    ]);
}

#[test]
fn tls_with_a_client_certificate_and_the_right_ca_only() {
    let dir = tempfile::tempdir().unwrap();
    make_pki(dir.path());
    store_with_alarms(dir.path());
    let mqtt = peer_port();
    let d = dir.path().display();
    let broker = Broker::with(
        dir.path(),
        mqtt,
        &format!(
            "allow_anonymous true\ncafile {d}/ca.pem\ncertfile {d}/server.pem\nkeyfile {d}/server.key\nrequire_certificate true\n"
        ),
    );
    let tls = |ca: &str| {
        format!(
            "token = \"{TOKEN}\"\n\n[mqtt]\nenabled = true\nbroker = \"127.0.0.1:{mqtt}\"\nca-file = \"{ca}\"\ncert-file = \"client.pem\"\nkey-file = \"client.key\"\n"
        )
    };
    // The wrong CA: the broker's certificate is refused and nothing is published.
    let config = write_config(dir.path(), 0, &tls("other.pem"));
    let mut d = start(dir.path(), &config);
    let http = d.port;
    // Until the daemon has tried and been refused, nothing can be said.
    wait_until(&mut d, |d| log(d).contains("mqtt: cannot connect"));
    assert_eq!(metric(http, "noctua_mqtt_connected"), Some(0.0));
    assert_eq!(metric(http, "noctua_mqtt_published_total"), Some(0.0));
    signal(&d, libc::SIGTERM);
    assert_eq!(wait_exit(&mut d, Duration::from_secs(2)).code(), Some(0));

    // The right CA and a client certificate: the outbox drains over TLS.
    let config = write_config(dir.path(), 0, &tls("ca.pem"));
    let mut d = start(dir.path(), &config);
    wait_until(&mut d, |d| {
        metric(d.port, "noctua_mqtt_published_total") == Some(2.0)
    });
    assert_eq!(metric(d.port, "noctua_mqtt_connected"), Some(1.0));
    drop(broker);
}

#[test]
fn broker_credentials_come_from_a_file_and_stay_out_of_the_logs() {
    let dir = tempfile::tempdir().unwrap();
    store_with_alarms(dir.path());
    let mqtt = peer_port();
    let passwd = dir.path().join("passwd");
    let made = Command::new("mosquitto_passwd")
        .args(["-c", "-b"])
        .arg(&passwd)
        .args(["noctua", "s3cret-broker-pass"])
        .output()
        .unwrap();
    assert_success(&made, "mosquitto_passwd");
    let _broker = Broker::with(
        dir.path(),
        mqtt,
        &format!(
            "allow_anonymous false\npassword_file {}\n",
            passwd.display()
        ),
    );
    std::fs::write(dir.path().join("mqtt.password"), "s3cret-broker-pass\n").unwrap();
    let config = write_config(
        dir.path(),
        0,
        &format!(
            "token = \"{TOKEN}\"\n\n[mqtt]\nenabled = true\nbroker = \"127.0.0.1:{mqtt}\"\nusername = \"noctua\"\npassword-file = \"mqtt.password\"\n"
        ),
    );
    let mut d = start(dir.path(), &config);
    wait_until(&mut d, |d| {
        metric(d.port, "noctua_mqtt_published_total") == Some(2.0)
    });
    signal(&d, libc::SIGTERM);
    assert_eq!(wait_exit(&mut d, Duration::from_secs(2)).code(), Some(0));
    let log = std::fs::read_to_string(&d.log).unwrap();
    assert!(
        !log.contains("s3cret-broker-pass") && !log.contains(TOKEN),
        "a secret reached the log:\n{log}"
    );
}

/// Durable before visible: a transition the store has committed but not yet flushed must not
/// reach the broker, or a crash takes it back and hands its sequence number to another. A long
/// group-commit interval holds an unack in memory; the daemon is killed before it is flushed;
/// everything the broker received must then be in the store, as it was sent.
#[test]
fn the_broker_hears_only_of_what_is_on_disk_even_across_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    store_with_alarms(dir.path());
    let mqtt = peer_port();
    let _broker = Broker::start(dir.path(), mqtt);
    let sub = Subscriber::start(mqtt, "noctua/alarms/#");
    let config = dir.path().join("noctua.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\npath = \"{}\"\nflush-interval = \"4s\"\n\n[http]\nlisten = \"127.0.0.1:0\"\n\
             token = \"{TOKEN}\"\n\n[mqtt]\nenabled = true\nbroker = \"127.0.0.1:{mqtt}\"\n",
            dir.path().join("store").display()
        ),
    )
    .unwrap();
    let mut d = start(dir.path(), &config);
    let http = d.port;
    sub.collect(2);
    let util = util_alarm(http);
    // Answered once durable: a flush has just run, and the next is four seconds away.
    act(http, TOKEN, &util, "ack");
    let unack = std::thread::spawn(move || {
        let auth = format!("Bearer {TOKEN}");
        request(
            http,
            "POST",
            &format!("/api/v1/alarms/{util}/unack"),
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            r#"{"user":"maria"}"#,
        )
    });
    // Long enough for an eager publisher to have sent the unack; well inside the interval.
    let received = sub.collect_for(Duration::from_millis(1500));
    signal(&d, libc::SIGKILL);
    wait_exit(&mut d, Duration::from_secs(5));
    let answer = unack.join().unwrap();
    assert!(
        answer.as_ref().is_none_or(|(status, _)| *status != 200),
        "the unack was answered as done, but it was never on disk: {answer:?}"
    );

    let store = noctua::store::Store::open(&dir.path().join("store")).unwrap();
    let history = store.history_after(0, usize::MAX).unwrap();
    assert!(received.iter().any(|(_, v)| v["kind"] == "acknowledged"));
    for (topic, v) in &received {
        let seq = v["seq"].as_u64().unwrap();
        let stored = history.iter().find(|e| e.seq == seq);
        let stored = stored.unwrap_or_else(|| {
            panic!("{topic} seq {seq} reached the broker but is not in the store")
        });
        assert_eq!(
            &serde_json::to_value(stored).unwrap(),
            v,
            "seq {seq} is another transition in the store"
        );
    }
    assert!(
        !received.iter().any(|(_, v)| v["kind"] == "unacknowledged"),
        "the unflushed unack was published"
    );
}

/// The CRM's feed: every service's status retained under `noctua/services/`, and a fault big
/// enough to tell callers about retained under `noctua/impact/` with its customers, sites and
/// restore target; the stream says the same.
#[test]
fn services_and_proactive_notices_are_retained_for_the_crm() {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/scenarios");
    let topology = std::fs::read_to_string(fixtures.join("customer-impact.toml")).unwrap();
    // The east backhaul and its base stations go down, and stay down.
    let scenario = dir.path().join("down.jsonl");
    let lines: Vec<String> = std::fs::read_to_string(fixtures.join("customer-impact.jsonl"))
        .unwrap()
        .lines()
        .filter(|l| l.contains("\"unreachable\""))
        .map(str::to_owned)
        .collect();
    assert_eq!(lines.len(), 3);
    std::fs::write(&scenario, lines.join("\n")).unwrap();
    let mqtt = peer_port();
    let _broker = Broker::start(dir.path(), mqtt);
    let config = write_config(
        dir.path(),
        0,
        &format!(
            "token = \"{TOKEN}\"\n\n[mqtt]\nenabled = true\nbroker = \"127.0.0.1:{mqtt}\"\nkeepalive = \"5s\"\n\n{topology}"
        ),
    );
    let out = Command::new(BIN)
        .args(["--log-level", "warn", "replay"])
        .arg(&scenario)
        .arg(fixtures.join("customer-impact.csv"))
        .arg("--config")
        .arg(&config)
        .arg("--store")
        .arg(dir.path().join("store"))
        .output()
        .unwrap();
    assert_success(&out, "noctua replay");
    let mut d = start(dir.path(), &config);
    wait_until(&mut d, |d| {
        metric(d.port, "noctua_mqtt_outbox_depth") == Some(0.0)
            && retained(mqtt, "noctua/services/#").len() == 3
    });
    let services: Vec<(String, Value)> = retained(mqtt, "noctua/services/#")
        .iter()
        .map(|l| {
            let (topic, payload) = l.split_once(' ').unwrap();
            (topic.to_owned(), serde_json::from_str(payload).unwrap())
        })
        .collect();
    let status = |name: &str| {
        let (_, v) = services
            .iter()
            .find(|(t, _)| t == &format!("noctua/services/{name}"))
            .unwrap_or_else(|| panic!("{name}: {services:?}"));
        v["status"].as_str().unwrap().to_owned()
    };
    assert_eq!(status("data-east"), "down");
    assert_eq!(status("voice-east"), "down");
    assert_eq!(
        status("vpn-acme"),
        "ok",
        "an untouched service is retained too"
    );
    let notices = retained(mqtt, "noctua/impact/#");
    assert_eq!(notices.len(), 1, "{notices:?}");
    let (topic, payload) = notices[0].split_once(' ').unwrap();
    assert_eq!(topic, "noctua/impact/1");
    let n: Value = serde_json::from_str(payload).unwrap();
    assert_eq!(n["kind"], "opened");
    assert_eq!(n["customers"], 6, "every east customer, once: {n}");
    assert_eq!(n["sites"], serde_json::json!(["east-1042", "east-2077"]));
    assert_eq!(n["servicesDown"], serde_json::json!(["data-east"]));
    assert!(n["restoreBy"].is_string(), "{n}");
    // The stream: services after the snapshot.
    let mut sse = SseClient::connect(d.port, "/api/v1/alarms/stream", None);
    assert_eq!(sse.next(Duration::from_secs(5)).unwrap().event, "snapshot");
    let services = sse.next(Duration::from_secs(5)).unwrap();
    assert_eq!(services.event, "services");
    assert!(
        services.data.contains("\"name\":\"data-east\""),
        "{}",
        services.data
    );
    // The backhaul returns: the notice closes (retained, replacing the open one).
    let (_, body) = get(d.port, "/api/v1/alarms?device=bh-r1").unwrap();
    let v: Value = serde_json::from_str(&body).unwrap();
    let id = v["items"][0]["alarmId"].as_str().unwrap().to_owned();
    act(d.port, TOKEN, &id, "clear");
    // Service changes and the clear's transition come in their own order; the notice follows
    // its transition.
    let events: Vec<_> = std::iter::from_fn(|| sse.next(Duration::from_secs(2))).collect();
    let at = events
        .iter()
        .position(|e| e.event == "impact" && e.data.contains("\"kind\":\"closed\""))
        .unwrap_or_else(|| panic!("no closing notice: {events:?}"));
    let before = &events[at - 1];
    assert_eq!(before.event, "transition", "{events:?}");
    assert!(
        before.data.contains("\"kind\":\"cleared\""),
        "{}",
        before.data
    );
    wait_until(&mut d, |_| {
        retained(mqtt, "noctua/impact/#")
            .first()
            .is_some_and(|l| l.contains("\"kind\":\"closed\""))
    });
}

/// An action's `notify` step publishes on its own topic through the broker, once the
/// transition behind it (an engineer's clear) is durable; its record says the broker took it.
#[test]
fn a_notify_step_publishes_on_its_topic_and_records_the_broker_took_it() {
    let dir = tempfile::tempdir().unwrap();
    store_with_alarms(dir.path());
    let mqtt = peer_port();
    let _broker = Broker::start(dir.path(), mqtt);
    let sub = Subscriber::start(mqtt, "noc/handled/#");
    let config = daemon_config(dir.path(), 0, mqtt);
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(
        "[actions]\nenabled = true\n\
         [[action]]\nname = \"tell-noc\"\non = [\"cleared\"]\ndevice = \"bh-*\"\nmode = \"live\"\n\
         [[action.step]]\nnotify = \"noc/handled/{device}\"\nmessage = \"{device} {object}: {condition} cleared\"\n",
    );
    std::fs::write(&config, text).unwrap();
    let mut d = start(dir.path(), &config);
    let util = util_alarm(d.port);
    act(d.port, TOKEN, &util, "clear");
    let deadline = Instant::now() + Duration::from_secs(20);
    let got = loop {
        let got = sub.collect_for(Duration::from_millis(200));
        if !got.is_empty() || Instant::now() > deadline {
            break got;
        }
    };
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0, "noc/handled/bh-r1");
    assert_eq!(
        got[0].1["text"],
        "bh-r1 ifIndex=3: utilisation_in_pct_threshold cleared"
    );
    assert_eq!(got[0].1["rule"], "tell-noc");
    assert_eq!(got[0].1["alarm"]["alarmId"], util.as_str());
    wait_until(&mut d, |d| {
        get(d.port, "/api/v1/actions?state=succeeded")
            .is_some_and(|(_, b)| b.contains("acknowledged by the broker"))
    });
}
