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
use crate::ingest::pcap::{self, Datagram};
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
    (SATURATION, Ipv4Addr::new(127, 0, 0, 1)),
    (SYN_FLOOD, Ipv4Addr::new(127, 0, 0, 2)),
];
/// Seconds into a cycle at which the captures start playing.
const FLOWS_AT: u64 = 5;

/// Plays the story, cycle after cycle, until `stop`.
pub async fn run(doors: Doors, stop: CancellationToken) {
    import_customers(&doors);
    let started = tokio::time::Instant::now();
    let mut second = tokio::time::interval(Duration::from_secs(1));
    second.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = second.tick() => {}
        }
        let elapsed = started.elapsed().as_secs();
        let t = elapsed % CYCLE_SECS;
        let cycle = elapsed / CYCLE_SECS;
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

/// Imports the demo's customers over the API (blocking client, off the runtime).
fn import_customers(doors: &Doors) {
    let client = ApiClient::new(&format!("http://{}", doors.http), doors.token.clone());
    tokio::task::spawn_blocking(move || {
        let csv = demo::customers_csv();
        if let Err(e) = client.post_csv("/api/v1/customers", &[], csv.as_bytes()) {
            tracing::warn!(error = %e, "demo: cannot import the customers");
        }
    });
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
    let datagrams = match retime(capture, start) {
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

/// A bundled capture, re-timed: each datagram's export time moved by one offset so its flows
/// happen now, and when to send it, relative to the start of the replay.
#[derive(Debug, Clone)]
pub struct Retimed {
    /// When to send, after the start.
    pub after: Duration,
    /// The NetFlow v5 datagram with its header's export time moved.
    pub payload: Vec<u8>,
}

/// The bundled captures the demo replays: the saturation scenario (from `core-r1`) and the
/// SYN flood (from `gw-r1`), NetFlow v5 as softflowd exported them.
pub const SATURATION: &[u8] = include_bytes!("../../fixtures/flows/saturation-v5.pcap");
/// See [`SATURATION`].
pub const SYN_FLOOD: &[u8] = include_bytes!("../../fixtures/flows/synflood-v5.pcap");
/// Where in the captures to start: a minute before their trouble begins (minute 3).
const SKIP: Duration = Duration::from_secs(150);

/// The datagrams of a bundled v5 capture from [`SKIP`] on, re-timed so the replay's first
/// datagram is exported at `start`.
///
/// NetFlow v5 stamps flows relative to its header (`unix_secs`, with `sys_uptime` and each
/// record's first/last in uptime milliseconds), so moving `unix_secs` by a constant moves
/// every flow by the same amount and leaves durations alone.
pub fn retime(capture: &[u8], start: Timestamp) -> Result<Vec<Retimed>, String> {
    let (datagrams, _) = pcap::parse("bundled capture", capture, &[2055])?;
    let first = datagrams.first().map_or(0, |d| d.at_ms);
    let from = first + SKIP.as_millis() as i64;
    let kept: Vec<&Datagram> = datagrams.iter().filter(|d| d.at_ms >= from).collect();
    let base = kept.first().map_or(from, |d| d.at_ms);
    kept.into_iter()
        .map(|d| {
            let mut payload = d.payload.clone();
            let header = payload
                .get_mut(8..12)
                .filter(|_| d.payload.get(..2) == Some(&[0, 5]))
                .ok_or("the bundled capture is not NetFlow v5")?;
            let secs = i64::from(u32::from_be_bytes([
                header[0], header[1], header[2], header[3],
            ]));
            let moved = secs + (start.as_millis() - base) / 1000;
            let moved = u32::try_from(moved).map_err(|_| "export time out of range")?;
            header.copy_from_slice(&moved.to_be_bytes());
            let after = Duration::from_millis(u64::try_from(d.at_ms - base).unwrap_or(0));
            Ok(Retimed { after, payload })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retimed_capture_moves_export_times_and_keeps_the_rest() {
        let start = Timestamp::from_millis(1_900_000_000_000);
        let out = retime(SATURATION, start).unwrap();
        assert!(!out.is_empty());
        assert_eq!(out[0].after, Duration::ZERO);
        assert!(out.windows(2).all(|w| w[0].after <= w[1].after));
        let secs = u32::from_be_bytes(out[0].payload[8..12].try_into().unwrap());
        assert_eq!(i64::from(secs), start.as_millis() / 1000);
        let (original, _) = pcap::parse("t", SATURATION, &[2055]).unwrap();
        let same = original
            .iter()
            .find(|d| {
                d.payload.len() == out[0].payload.len() && d.payload[12..] == out[0].payload[12..]
            })
            .expect("the datagram is the capture's, bar its export time");
        assert_eq!(same.payload[..8], out[0].payload[..8]);
        // The trouble starts a minute or so in (minute 3 of the capture; 150 s skipped).
        assert!(out.last().unwrap().after > Duration::from_secs(300));
        assert!(retime(b"not a capture", start).is_err());
    }
}
