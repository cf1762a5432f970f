//! `noctua demo`'s driver: plays the simulated network of [`crate::ingest::demo`] into the
//! running daemon through its real doors. Samples and device events go into the ingest queue
//! as the poller's would; the bundled flow captures go to the NetFlow collector over UDP
//! from the exporters' addresses; the maintenance window is opened through the HTTP API
//! with the demo's token, as an engineer would.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

use crate::ingest::SampleSink;
use crate::ingest::demo::{
    self, ACK_AT, ACK_DEVICE, CYCLE_SECS, MAINTENANCE_AT, MAINTENANCE_DEVICE,
};
use crate::model::Timestamp;
use crate::northbound::client::ApiClient;

/// Where the driver reaches the daemon.
pub struct Doors {
    /// The ingest queue.
    pub samples: SampleSink,
    /// The NetFlow collector, if it runs.
    pub netflow: Option<SocketAddr>,
    /// The HTTP API.
    pub http: SocketAddr,
    /// The API token.
    pub token: Option<String>,
}

/// The exporters of the bundled captures: `core-r1` and `gw-r1` in `config/demo.toml`.
const CAPTURES: [(&[u8], Ipv4Addr); 2] = [
    (demo::SATURATION, Ipv4Addr::new(127, 0, 0, 1)),
    (demo::SYN_FLOOD, Ipv4Addr::new(127, 0, 0, 2)),
];
/// Seconds into a cycle at which the captures start playing.
const FLOWS_AT: u64 = 5;

/// Plays the story, cycle after cycle, until `stop`.
pub async fn run(doors: Doors, stop: CancellationToken) {
    let started = tokio::time::Instant::now();
    let mut second = tokio::time::interval(Duration::from_secs(1));
    second.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut cycle = 0u64;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = second.tick() => {}
        }
        let elapsed = started.elapsed().as_secs();
        let t = elapsed % CYCLE_SECS;
        cycle = cycle.max(elapsed / CYCLE_SECS);
        let now = Timestamp::now();
        for item in demo::tick(t, now) {
            if !doors.samples.send(item).await {
                return;
            }
        }
        if t == MAINTENANCE_AT {
            open_maintenance(&doors, cycle, now);
        }
        if t == ACK_AT {
            acknowledge(&doors);
        }
        if t == FLOWS_AT
            && let Some(collector) = doors.netflow
        {
            for (capture, from) in CAPTURES {
                tokio::spawn(play(capture, from, collector, now, stop.clone()));
            }
        }
    }
}

/// Opens the cycle's maintenance window over the API (blocking client, off the runtime).
fn open_maintenance(doors: &Doors, cycle: u64, now: Timestamp) {
    let client = ApiClient::new(&format!("http://{}", doors.http), doors.token.clone());
    let window = serde_json::json!({
        "name": format!("radio swap on {MAINTENANCE_DEVICE}, cycle {}", cycle + 1),
        "device": MAINTENANCE_DEVICE,
        "start": now.minus(Duration::from_secs(60)).to_string(),
        "end": Timestamp::from_millis(now.as_millis() + 30 * 60 * 1000).to_string(),
    });
    tokio::task::spawn_blocking(move || {
        if let Err(e) = client.post("/api/v1/maintenance", &window) {
            tracing::warn!(error = %e, "demo: cannot open the maintenance window");
        }
    });
}

/// Acknowledges the backhaul outage over the API, as the engineer on shift would.
fn acknowledge(doors: &Doors) {
    let client = ApiClient::new(&format!("http://{}", doors.http), doors.token.clone());
    tokio::task::spawn_blocking(move || {
        let listed = client.get("/api/v1/alarms", &[]);
        let items = listed.as_ref().ok().and_then(|v| v["items"].as_array());
        for a in items.into_iter().flatten() {
            if a["device"] == ACK_DEVICE
                && a["ackState"] == "UNACKNOWLEDGED"
                && let Some(id) = a["alarmId"].as_str()
            {
                let body = serde_json::json!({"user": "noc-demo", "note": "fibre team dispatched"});
                if let Err(e) = client.post(&format!("/api/v1/alarms/{id}/ack"), &body) {
                    tracing::warn!(error = %e, "demo: cannot acknowledge");
                }
            }
        }
    });
}

/// Sends one bundled capture to the collector on its own clock, re-timed to start now.
async fn play(
    capture: &'static [u8],
    from: Ipv4Addr,
    collector: SocketAddr,
    start: Timestamp,
    stop: CancellationToken,
) {
    let datagrams = match demo::retime(capture, start) {
        Ok(d) => d,
        Err(e) => {
            tracing::error!(error = %e, "demo: bundled capture unreadable");
            return;
        }
    };
    let socket = match UdpSocket::bind(SocketAddr::new(IpAddr::V4(from), 0)).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, %from, "demo: cannot send flows from this address");
            return;
        }
    };
    let began = tokio::time::Instant::now();
    for d in datagrams {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep_until(began + d.after) => {}
        }
        // A lost datagram is what UDP does; the collector counts sequence gaps.
        let _ = socket.send_to(&d.payload, collector).await;
    }
}
