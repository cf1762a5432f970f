//! A three-node NATS JetStream cluster on loopback high ports (Debian's nats-server, installed
//! by scripts/setup-peers.sh), stopped by PID when dropped.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{get, peer_port};

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
        let ports: Vec<u16> = (0..3).map(|_| peer_port()).collect();
        let routes: Vec<u16> = (0..3).map(|_| peer_port()).collect();
        let monitors: Vec<u16> = (0..3).map(|_| peer_port()).collect();
        let route_list = routes
            .iter()
            .map(|p| format!("\"nats-route://127.0.0.1:{p}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let nodes = (0..3)
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
        while !monitors.iter().all(|p| led(*p)) {
            assert!(
                Instant::now() < deadline,
                "the NATS cluster did not elect a leader"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Self { nodes, ports }
    }

    /// `[cluster] nats` for a noctua instance: every node.
    pub fn servers(&self) -> String {
        self.ports
            .iter()
            .map(|p| format!("\"nats://127.0.0.1:{p}\""))
            .collect::<Vec<_>>()
            .join(", ")
    }
}
