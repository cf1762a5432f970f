//! ICMP echo probes: every `interval`, `count` echo requests to each device, spaced
//! `spacing` apart; round trips become a latency sample (the mean, with min/max/p95 in its
//! context) and a loss sample on object `icmp`.
//!
//! One task and one socket per address family for all devices: replies are matched to requests
//! by (address, sequence number). The socket is an unprivileged ICMP datagram socket when
//! `net.ipv4.ping_group_range` allows it, and a raw socket (CAP_NET_RAW) otherwise.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::cluster::Ownership;
use crate::config::Config;
use crate::ingest::SampleSink;
pub use crate::model::PROBE_OBJECT;
use crate::model::{Metric, Sample, SeriesKey, Timestamp};
use crate::telemetry::Metrics;

/// The ICMP socket's receive buffer: room for a round's replies from a few thousand devices
/// (Linux caps it at net.core.rmem_max).
const RECEIVE_BUFFER: usize = 4 << 20;

/// An ICMP socket, and whether the kernel hands us the IP header too (raw IPv4).
struct Pinger {
    socket: UdpSocket,
    raw_v4: bool,
    v6: bool,
}

impl Pinger {
    fn open(v6: bool) -> io::Result<Self> {
        let (domain, protocol) = if v6 {
            (Domain::IPV6, Protocol::ICMPV6)
        } else {
            (Domain::IPV4, Protocol::ICMPV4)
        };
        let (socket, raw) = match Socket::new(domain, Type::DGRAM, Some(protocol)) {
            Ok(s) => (s, false),
            // Not in ping_group_range: a raw socket, which needs CAP_NET_RAW.
            Err(_) => (Socket::new(domain, Type::RAW, Some(protocol))?, true),
        };
        // A round's replies come back together: at the default buffer (≈200 KB) the kernel
        // drops all but a few hundred of them, and they would count as loss.
        if let Err(e) = socket.set_recv_buffer_size(RECEIVE_BUFFER) {
            tracing::warn!(error = %e, "cannot enlarge the ICMP receive buffer");
        }
        socket.set_nonblocking(true)?;
        Ok(Self {
            socket: UdpSocket::from_std(std::net::UdpSocket::from(socket))?,
            raw_v4: raw && !v6,
            v6,
        })
    }
}

/// An echo request: type, code, checksum, identifier, sequence, 8 bytes of payload.
pub fn echo_request(v6: bool, id: u16, seq: u16) -> [u8; 16] {
    let mut p = [0u8; 16];
    p[0] = if v6 { 128 } else { 8 };
    p[4..6].copy_from_slice(&id.to_be_bytes());
    p[6..8].copy_from_slice(&seq.to_be_bytes());
    p[8..16].copy_from_slice(b"noctua\0\0");
    if !v6 {
        // ICMPv6 checksums cover a pseudo-header; the kernel fills them in.
        let sum = checksum(&p);
        p[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    p
}

fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The (identifier, sequence) of an echo reply, or `None` for anything else.
pub fn echo_reply(packet: &[u8], raw_v4: bool, v6: bool) -> Option<(u16, u16)> {
    let icmp = if raw_v4 {
        let ihl = usize::from(packet.first()? & 0x0f) * 4;
        packet.get(ihl..)?
    } else {
        packet
    };
    let reply_type = if v6 { 129 } else { 0 };
    if *icmp.first()? != reply_type || icmp.len() < 8 {
        return None;
    }
    Some((
        u16::from_be_bytes([icmp[4], icmp[5]]),
        u16::from_be_bytes([icmp[6], icmp[7]]),
    ))
}

/// Round trips of one round for one device.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Round {
    /// Requests sent.
    pub sent: u32,
    /// Round trips of the replies, in milliseconds.
    pub rtts_ms: Vec<f64>,
}

impl Round {
    /// (min, mean, max, p95) in ms, or `None` if nothing came back.
    pub fn stats(&self) -> Option<(f64, f64, f64, f64)> {
        if self.rtts_ms.is_empty() {
            return None;
        }
        let mut v = self.rtts_ms.clone();
        v.sort_by(f64::total_cmp);
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        // Nearest rank.
        let rank = ((0.95 * v.len() as f64).ceil() as usize).clamp(1, v.len());
        Some((v[0], mean, v[v.len() - 1], v[rank - 1]))
    }

    /// Share of requests without a reply, in percent.
    pub fn loss_pct(&self) -> f64 {
        if self.sent == 0 {
            return 0.0;
        }
        f64::from(self.sent - self.rtts_ms.len().min(self.sent as usize) as u32)
            / f64::from(self.sent)
            * 100.0
    }
}

/// Probes every device until `cancel`.
pub async fn run(
    config: Arc<Config>,
    ownership: watch::Receiver<Arc<Ownership>>,
    samples: SampleSink,
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
) {
    let p = &config.probes;
    let devices: Vec<(String, IpAddr)> = config
        .devices
        .iter()
        .filter(|d| p.tags.is_empty() || d.tags.iter().any(|t| p.tags.contains(t)))
        .map(|d| (d.name.clone(), d.address))
        .collect();
    if devices.is_empty() {
        return;
    }
    let mut v4 = None;
    let mut v6 = None;
    for (want, slot) in [(false, &mut v4), (true, &mut v6)] {
        if devices.iter().any(|(_, a)| a.is_ipv6() == want) {
            match Pinger::open(want) {
                Ok(s) => *slot = Some(s),
                Err(e) => tracing::error!(
                    error = %e,
                    ipv6 = want,
                    "cannot open an ICMP socket (needs net.ipv4.ping_group_range or CAP_NET_RAW); probes off"
                ),
            }
        }
    }
    tracing::info!(devices = devices.len(), "ICMP probes running");
    let id = (std::process::id() & 0xffff) as u16;
    let mut seq: u16 = 0;
    let mut tick = tokio::time::interval(p.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut buf = [0u8; 1_500];
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let started = Timestamp::now();
        // A device another cluster member owns is probed by that member (a round with nothing
        // sent reports nothing).
        let owned: Vec<bool> = {
            let owner = ownership.borrow();
            devices.iter().map(|(name, _)| owner.owns(name)).collect()
        };
        let mut rounds: Vec<Round> = vec![Round::default(); devices.len()];
        let mut pending: HashMap<(IpAddr, u16), (usize, Instant)> = HashMap::new();
        let last_send = Instant::now() + p.spacing * p.count.saturating_sub(1);
        let deadline = last_send + p.timeout;
        let mut next_send = Instant::now();
        let mut sends_left = p.count;
        loop {
            let wake = if sends_left > 0 { next_send } else { deadline };
            if sends_left == 0 && (pending.is_empty() || Instant::now() >= deadline) {
                break;
            }
            let pingers = [v4.as_ref(), v6.as_ref()];
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep_until(wake) => {
                    if sends_left == 0 {
                        break;
                    }
                    sends_left -= 1;
                    next_send += p.spacing;
                    for (i, (name, addr)) in devices.iter().enumerate() {
                        if !owned[i] {
                            continue;
                        }
                        let Some(pinger) = (if addr.is_ipv6() { v6.as_ref() } else { v4.as_ref() }) else {
                            continue;
                        };
                        seq = seq.wrapping_add(1);
                        let packet = echo_request(pinger.v6, id, seq);
                        // A request that cannot even be sent (no route) is a lost one.
                        rounds[i].sent += 1;
                        metrics.probe_sent.with_label_values(&[name]).inc();
                        match pinger.socket.send_to(&packet, SocketAddr::new(*addr, 0)).await {
                            Ok(_) => {
                                pending.insert((*addr, seq), (i, Instant::now()));
                            }
                            Err(e) => tracing::debug!(device = %name, error = %e, "ICMP send failed"),
                        }
                    }
                }
                r = recv_any(pingers, &mut buf) => {
                    let Some((n, from, raw_v4, is_v6)) = r else { continue };
                    let Some((reply_id, reply_seq)) = echo_reply(&buf[..n], raw_v4, is_v6) else {
                        continue;
                    };
                    // Datagram sockets get the kernel's identifier; raw ones see everyone's replies.
                    if raw_v4 && reply_id != id {
                        continue;
                    }
                    if let Some((i, sent)) = pending.remove(&(from.ip().to_canonical(), reply_seq)) {
                        rounds[i].rtts_ms.push(sent.elapsed().as_secs_f64() * 1000.0);
                    }
                }
            }
        }
        for (i, (name, _)) in devices.iter().enumerate() {
            let round = &rounds[i];
            if round.sent == 0 {
                continue;
            }
            let lost = round.sent as usize - round.rtts_ms.len().min(round.sent as usize);
            metrics
                .probe_lost
                .with_label_values(&[name])
                .inc_by(lost as u64);
            let series = |metric| SeriesKey {
                device: name.clone(),
                object: PROBE_OBJECT.to_owned(),
                metric,
            };
            samples.offer(Sample {
                series: series(Metric::LossPct),
                at: started,
                value: round.loss_pct(),
                context: None,
            });
            if let Some((min, mean, max, p95)) = round.stats() {
                samples.offer(Sample {
                    series: series(Metric::LatencyMs),
                    at: started,
                    value: mean,
                    context: Some(Arc::from(format!(
                        "ICMP min {min:.2} / avg {mean:.2} / max {max:.2} / p95 {p95:.2} ms over {} replies",
                        round.rtts_ms.len()
                    ))),
                });
            }
        }
    }
}

/// The next datagram on either socket: (length, sender, raw IPv4, IPv6).
async fn recv_any(
    pingers: [Option<&Pinger>; 2],
    buf: &mut [u8],
) -> Option<(usize, SocketAddr, bool, bool)> {
    let ready = std::future::poll_fn(|cx| {
        for (i, p) in pingers.iter().enumerate() {
            if let Some(p) = p
                && p.socket.poll_recv_ready(cx).is_ready()
            {
                return std::task::Poll::Ready(i);
            }
        }
        std::task::Poll::Pending
    })
    .await;
    let p = pingers[ready]?;
    match p.socket.try_recv_from(buf) {
        Ok((n, from)) => Some((n, from, p.raw_v4, p.v6)),
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_carry_a_valid_checksum_and_replies_are_recognised() {
        let p = echo_request(false, 0x1234, 7);
        assert_eq!(checksum(&p), 0, "a packet with its checksum sums to zero");
        let mut reply = p;
        reply[0] = 0;
        assert_eq!(echo_reply(&reply, false, false), Some((0x1234, 7)));
        assert_eq!(
            echo_reply(&p, false, false),
            None,
            "our own request is not a reply"
        );
        let mut with_ip = vec![0x45u8; 20];
        with_ip.extend_from_slice(&reply);
        assert_eq!(echo_reply(&with_ip, true, false), Some((0x1234, 7)));
        assert_eq!(echo_reply(&[0, 0], false, false), None);
    }

    #[test]
    fn round_statistics() {
        let r = Round {
            sent: 5,
            rtts_ms: vec![4.0, 1.0, 3.0, 2.0],
        };
        assert_eq!(r.stats(), Some((1.0, 2.5, 4.0, 4.0)));
        assert_eq!(r.loss_pct(), 20.0);
        assert_eq!(Round::default().stats(), None);
    }
}
