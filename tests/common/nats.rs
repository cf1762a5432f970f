//! A three-node NATS JetStream cluster on loopback high ports (Debian's nats-server, installed
//! by scripts/setup-peers.sh), stopped by PID when dropped.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use async_nats::jetstream::stream::LastRawMessageErrorKind;

use super::{Daemon, get, start, write_config};

/// How long a test's own NATS reads keep trying through a cluster that is electing leaders.
const NATS_PATIENCE: Duration = Duration::from_secs(30);

/// A free port below Linux's ephemeral range (32768 and up). The nodes dial each other's
/// route ports while they start, and a port from the ephemeral range (what binding port 0
/// gives) could be taken meanwhile as the source port of one of those connections.
fn fixed_port() -> u16 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let seed = std::process::id().wrapping_mul(2_654_435_761);
    loop {
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let port = 20_000 + (seed.wrapping_add(n.wrapping_mul(7_919)) % 12_000) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

pub struct NatsCluster {
    nodes: Vec<Child>,
    /// Each node's client port.
    pub ports: Vec<u16>,
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            let _ = n.kill();
            let _ = n.wait();
        }
    }
}

impl NatsCluster {
    /// Starts three nodes under `dir` and waits until JetStream has a meta leader.
    pub fn start(dir: &Path) -> Self {
        Self::start_after(dir, |_| {})
    }

    /// [`NatsCluster::start`], once `before` has run with what `[cluster] nats` will be
    /// (for what must start while NATS is not there yet).
    pub fn start_after(dir: &Path, before: impl FnOnce(&str)) -> Self {
        let ports: Vec<u16> = (0..3).map(|_| fixed_port()).collect();
        before(&servers_of(&ports));
        let routes: Vec<u16> = (0..3).map(|_| fixed_port()).collect();
        let monitors: Vec<u16> = (0..3).map(|_| fixed_port()).collect();
        let route_list = routes
            .iter()
            .map(|p| format!("\"nats-route://127.0.0.1:{p}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let nodes: Vec<Child> = (0..3)
            .map(|i| {
                let conf = dir.join(format!("nats-{i}.conf"));
                std::fs::write(
                    &conf,
                    format!(
                        "server_name: n{i}\nlisten: 127.0.0.1:{}\nhttp: 127.0.0.1:{}\n\
                         jetstream {{ store_dir: \"{}\" }}\n\
                         cluster {{ name: noctua-test, listen: 127.0.0.1:{}, routes: [{route_list}] }}\n",
                        ports[i],
                        monitors[i],
                        dir.join(format!("nats-{i}")).display(),
                        routes[i],
                    ),
                )
                .unwrap();
                Command::new("nats-server")
                    .arg("-c")
                    .arg(&conf)
                    .stdout(Stdio::null())
                    .stderr(std::fs::File::create(dir.join(format!("nats-{i}.log"))).unwrap())
                    .spawn()
                    .expect("nats-server must be installed (scripts/setup-peers.sh installs it)")
            })
            .collect();
        // Made before the wait, so a failure still stops the nodes (when it is dropped).
        let mut cluster = Self { nodes, ports };
        let deadline = Instant::now() + Duration::from_secs(30);
        let led = |port| {
            get(port, "/jsz").is_some_and(|(s, body)| {
                let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                s == 200
                    && v["meta_cluster"]["leader"]
                        .as_str()
                        .is_some_and(|l| !l.is_empty())
            })
        };
        let logs = || {
            (0..3)
                .map(|i| {
                    std::fs::read_to_string(dir.join(format!("nats-{i}.log"))).unwrap_or_default()
                })
                .collect::<Vec<_>>()
                .join("\n---\n")
        };
        while !monitors.iter().all(|p| led(*p)) {
            for n in &mut cluster.nodes {
                if let Ok(Some(status)) = n.try_wait() {
                    panic!("a nats-server exited with {status}:\n{}", logs());
                }
            }
            assert!(
                Instant::now() < deadline,
                "the NATS cluster did not elect a leader:\n{}",
                logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        cluster
    }

    /// kill -9 node `i`; it is left out of [`NatsCluster::servers`] from then on.
    pub fn kill(&mut self, i: usize) {
        let mut node = self.nodes.remove(i);
        let _ = node.kill();
        let _ = node.wait();
        self.ports.remove(i);
    }

    /// Every transition on the replicated stream, in stream order, as JSON: what a fleet
    /// subscriber has seen.
    pub fn transitions(&self) -> Vec<serde_json::Value> {
        self.on_stream(|mut stream| async move {
            let last = stream
                .info()
                .await
                .map_err(|e| e.to_string())?
                .state
                .last_sequence;
            let mut out = Vec::new();
            for seq in 1..=last {
                match stream.get_raw_message(seq).await {
                    Ok(m) => out.push(serde_json::from_slice(&m.payload).unwrap()),
                    // A message removed (none are, within a test) is simply not there.
                    Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => {}
                    Err(e) => return Err(e.to_string()),
                }
            }
            Ok(out)
        })
    }

    /// How many transitions the replicated stream holds.
    pub fn transitions_count(&self) -> u64 {
        self.on_stream(|mut stream| async move {
            Ok(stream
                .info()
                .await
                .map_err(|e| e.to_string())?
                .state
                .messages)
        })
    }

    /// `read` of the transitions stream.
    fn on_stream<T, F: std::future::Future<Output = Result<T, String>>>(
        &self,
        read: impl Fn(async_nats::jetstream::stream::Stream) -> F,
    ) -> T {
        self.with_client(|client| async {
            let js = async_nats::jetstream::new(client);
            let stream = js
                .get_stream("NOCTUA_TRANSITIONS")
                .await
                .map_err(|e| e.to_string())?;
            read(stream).await
        })
    }

    /// `work` with a client of the first live node, tried again for up to [`NATS_PATIENCE`]:
    /// right after a node is killed, requests time out until the streams' leaders are elected
    /// again, and a reader would not see a lost message from a timed-out one.
    fn with_client<T, F: std::future::Future<Output = Result<T, String>>>(
        &self,
        work: impl Fn(async_nats::Client) -> F,
    ) -> T {
        let url = format!("nats://127.0.0.1:{}", self.ports[0]);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let deadline = Instant::now() + NATS_PATIENCE;
        loop {
            let attempt = runtime.block_on(async {
                let client = async_nats::connect(&url).await.map_err(|e| e.to_string())?;
                work(client).await
            });
            match attempt {
                Ok(done) => return done,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("NATS request failed, trying again: {e}");
                    std::thread::sleep(Duration::from_millis(500));
                }
                Err(e) => panic!("NATS did not answer for {NATS_PATIENCE:?}: {e}"),
            }
        }
    }

    /// `[cluster] nats` for a noctua instance: every node.
    pub fn servers(&self) -> String {
        servers_of(&self.ports)
    }

    /// Publishes `body` on core NATS `subject`.
    pub fn publish(&self, subject: &str, body: &'static [u8]) {
        self.with_client(|client| async move {
            client
                .publish(subject.to_owned(), body.into())
                .await
                .map_err(|e| e.to_string())?;
            client.flush().await.map_err(|e| e.to_string())
        })
    }
}

fn servers_of(ports: &[u16]) -> String {
    ports
        .iter()
        .map(|p| format!("\"nats://127.0.0.1:{p}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// How a test member runs: its devices, heartbeat and `dead-after`, and config before them.
pub struct Member<'a> {
    pub name: &'a str,
    pub devices: usize,
    pub heartbeat: Duration,
    pub dead_after: Duration,
    pub extra: &'a str,
    /// How many devices (the first ones) have the `v2` credentials, to send traps as.
    pub senders: usize,
}

impl Member<'_> {
    /// Starts this member under `dir/NAME` on `nats`, with devices `gnb-00`, `gnb-01`, … at
    /// 127.0.0.1, .2, …; the first `senders` have the `v2` credentials (to send traps as).
    pub fn start(&self, dir: &Path, nats: &NatsCluster) -> Daemon {
        self.start_on(dir, &nats.servers())
    }

    /// [`Member::start`] with `[cluster] nats` = `servers`.
    pub fn start_on(&self, dir: &Path, servers: &str) -> Daemon {
        let dir = dir.join(self.name);
        std::fs::create_dir_all(&dir).unwrap();
        let mut extra = self.extra.to_owned();
        extra += &format!(
            "\n[cluster]\nenabled = true\nnats = [{}]\nname = \"{}\"\n\
             heartbeat = \"{}ms\"\ndead-after = \"{}ms\"\nreplicas = 3\n",
            servers,
            self.name,
            self.heartbeat.as_millis(),
            self.dead_after.as_millis()
        );
        for i in 0..self.devices {
            let ip = std::net::Ipv4Addr::from(
                u32::from(std::net::Ipv4Addr::new(127, 0, 0, 1)) + i as u32,
            );
            extra.push_str(&format!(
                "\n[[device]]\nname = \"gnb-{i:02}\"\naddress = \"{ip}\"\nrole = \"base-station\"\n{}",
                if i < self.senders { "credentials = \"v2\"\n" } else { "" }
            ));
        }
        let config = write_config(&dir, 0, &extra);
        start(&dir, &config)
    }
}
