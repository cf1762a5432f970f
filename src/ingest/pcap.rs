//! UDP datagrams out of pcap and pcapng captures, for replaying recorded exports: the capture
//! time, the sender's address and the payload of every IPv4/IPv6 UDP packet sent to one of the
//! given ports. Ethernet (with VLAN tags), Linux cooked (v1 and v2), BSD loopback and raw IP
//! link types are understood; other packets are skipped and counted.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use pcap_file::DataLink;
use pcap_file::pcap::PcapReader;
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
use pcap_file::pcapng::{Block, PcapNgReader};

/// One captured datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    /// Capture time, Unix ms.
    pub at_ms: i64,
    /// Sender.
    pub src: IpAddr,
    /// Destination port.
    pub dst_port: u16,
    /// UDP payload.
    pub payload: Vec<u8>,
}

/// What a capture held besides the datagrams taken.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Skipped {
    /// Packets that were not UDP to a wanted port (or not IP at all).
    pub other: u64,
    /// Packets cut short by the capture's snap length or malformed.
    pub malformed: u64,
}

/// Reads every UDP datagram to one of `ports` from a pcap or pcapng file, in file order.
pub fn read(path: &Path, ports: &[u16]) -> Result<(Vec<Datagram>, Skipped), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse(&path.display().to_string(), &bytes, ports)
}

/// [`read`] of a capture already in memory; `origin` names it in errors.
pub fn parse(
    origin: &str,
    bytes: &[u8],
    ports: &[u16],
) -> Result<(Vec<Datagram>, Skipped), String> {
    let bad = |e: pcap_file::PcapError| format!("{origin}: not a readable capture: {e}");
    let mut out = Vec::new();
    let mut skipped = Skipped::default();
    let mut take = |at: std::time::Duration, link: DataLink, data: &[u8]| match udp(link, data) {
        Some(Ok((src, dst_port, payload))) if ports.contains(&dst_port) => out.push(Datagram {
            at_ms: at.as_millis() as i64,
            src,
            dst_port,
            payload: payload.to_vec(),
        }),
        Some(Err(())) => skipped.malformed += 1,
        _ => skipped.other += 1,
    };
    if bytes.starts_with(&[0x0a, 0x0d, 0x0d, 0x0a]) {
        let mut reader = PcapNgReader::new(bytes).map_err(bad)?;
        // Per interface: link type and timestamp resolution (`if_tsresol`, default 10⁻⁶ s).
        let mut links: Vec<(DataLink, u8)> = Vec::new();
        while let Some(block) = reader.next_block() {
            match block.map_err(bad)? {
                Block::InterfaceDescription(i) => {
                    let resolution = i
                        .options
                        .iter()
                        .find_map(|o| match o {
                            InterfaceDescriptionOption::IfTsResol(r) => Some(*r),
                            _ => None,
                        })
                        .unwrap_or(6);
                    links.push((i.linktype, resolution));
                }
                Block::EnhancedPacket(p) => {
                    let (link, resolution) = links
                        .get(p.interface_id as usize)
                        .copied()
                        .unwrap_or((DataLink::ETHERNET, 6));
                    // pcap-file hands the raw timestamp over as nanoseconds whatever the unit.
                    take(scale(p.timestamp.as_nanos(), resolution), link, &p.data);
                }
                _ => {}
            }
        }
    } else {
        let mut reader = PcapReader::new(bytes).map_err(bad)?;
        let link = reader.header().datalink;
        while let Some(packet) = reader.next_packet() {
            let p = packet.map_err(bad)?;
            take(p.timestamp, link, &p.data);
        }
    }
    Ok((out, skipped))
}

/// A raw pcapng timestamp in units of 10^-n s (or 2^-n s with the high bit set) as a duration.
fn scale(raw: u128, resolution: u8) -> std::time::Duration {
    let n = u32::from(resolution & 0x7f);
    let nanos = if resolution & 0x80 == 0 {
        match n.cmp(&9) {
            std::cmp::Ordering::Less => raw.saturating_mul(10u128.pow(9 - n)),
            std::cmp::Ordering::Equal => raw,
            std::cmp::Ordering::Greater => raw / 10u128.checked_pow(n - 9).unwrap_or(u128::MAX),
        }
    } else {
        raw.saturating_mul(1_000_000_000) >> n.min(127)
    };
    std::time::Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// Whether a file starts like a pcap or pcapng capture.
pub fn is_capture(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    let ok = std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
        .is_ok();
    ok && matches!(
        magic,
        [0x0a, 0x0d, 0x0d, 0x0a]
            | [0xd4, 0xc3, 0xb2, 0xa1]
            | [0xa1, 0xb2, 0xc3, 0xd4]
            | [0x4d, 0x3c, 0xb2, 0xa1]
            | [0xa1, 0xb2, 0x3c, 0x4d]
    )
}

type Udp<'a> = Result<(IpAddr, u16, &'a [u8]), ()>;

/// The sender, destination port and payload of a UDP packet; `None` if not UDP over IP.
fn udp(link: DataLink, frame: &[u8]) -> Option<Udp<'_>> {
    let (ethertype, ip) = match link {
        DataLink::ETHERNET => {
            let mut at = 12;
            let mut ethertype = be16(frame, at)?;
            while ethertype == 0x8100 || ethertype == 0x88a8 {
                at += 4;
                ethertype = be16(frame, at)?;
            }
            (ethertype, frame.get(at + 2..)?)
        }
        DataLink::LINUX_SLL => (be16(frame, 14)?, frame.get(16..)?),
        DataLink::LINUX_SLL2 => (be16(frame, 0)?, frame.get(20..)?),
        DataLink::NULL | DataLink::LOOP => {
            let family = frame.get(..4)?;
            let v4 = family == [2, 0, 0, 0] || family == [0, 0, 0, 2];
            (if v4 { 0x0800 } else { 0x86dd }, frame.get(4..)?)
        }
        DataLink::RAW | DataLink::IPV4 | DataLink::IPV6 => match frame.first()? >> 4 {
            4 => (0x0800, frame),
            6 => (0x86dd, frame),
            _ => return None,
        },
        _ => return None,
    };
    match ethertype {
        0x0800 => {
            let ihl = usize::from(ip.first()? & 0x0f) * 4;
            if ip.get(9)? != &17 {
                return None;
            }
            // Fragments other than the first carry no UDP header.
            if be16(ip, 6)? & 0x1fff != 0 {
                return None;
            }
            let src = IpAddr::V4(Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]));
            let total = usize::from(be16(ip, 2)?);
            Some(udp_payload(src, ip.get(ihl..total.min(ip.len()))?))
        }
        0x86dd => {
            if ip.get(6)? != &17 {
                return None;
            }
            let mut a = [0u8; 16];
            a.copy_from_slice(ip.get(8..24)?);
            Some(udp_payload(IpAddr::V6(Ipv6Addr::from(a)), ip.get(40..)?))
        }
        _ => None,
    }
}

fn udp_payload(src: IpAddr, udp: &[u8]) -> Udp<'_> {
    let dst_port = be16(udp, 2).ok_or(())?;
    let len = usize::from(be16(udp, 4).ok_or(())?);
    if len < 8 || len > udp.len() {
        return Err(());
    }
    Ok((src, dst_port, &udp[8..len]))
}

fn be16(data: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(data.get(at..at + 2)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn pcapng_timestamps_honour_the_interface_resolution() {
        assert_eq!(scale(1_500_000, 6), Duration::from_millis(1_500));
        assert_eq!(scale(1_500, 3), Duration::from_millis(1_500));
        assert_eq!(scale(1_500_000_000, 9), Duration::from_millis(1_500));
        assert_eq!(scale(15_000_000_000, 10), Duration::from_millis(1_500));
        assert_eq!(scale(3 << 10, 0x80 | 11), Duration::from_millis(1_500));
    }
}
