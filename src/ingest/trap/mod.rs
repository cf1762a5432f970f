//! SNMP trap receiver: v1 and v2c traps and informs from configured devices become events.
//! linkDown/linkUp, coldStart/warmStart and authenticationFailure have their own meaning (and
//! make the poller poll that device at once); any other trap raises a `snmp_trap` alarm on
//! `trap=OID` with its varbinds as the text, at the severity `[traps.severity]` gives its OID
//! (indeterminate otherwise). Informs are answered. Traps from addresses that are not devices,
//! or with the wrong community, are dropped and counted.
//!
//! v3 traps are taken from devices whose credential is a v3 user: authenticated (and decrypted)
//! with that user's keys, localised to the engine id the trap carries. v3 informs are addressed
//! to noctua's own engine ([`engine`]): discovery is answered, and the inform with a Response
//! signed (and encrypted) with the same user's keys.

pub mod engine;
pub mod names;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::Arc;

use snmp2::{MessageType, Oid, Pdu, Value};
use tokio::net::UdpSocket;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Credential, SnmpVersion};
use crate::ingest::SampleSink;
use crate::ingest::usm::{AUTH, PRIV};
use crate::model::{DeviceEvent, EventKind, Timestamp};
use crate::telemetry::{EngineReport, Metrics, TrapDrop};

const SNMP_TRAP_OID: [u64; 11] = [1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0];
const IF_INDEX: [u64; 10] = [1, 3, 6, 1, 2, 1, 2, 2, 1, 1];
const STANDARD_TRAPS: [u64; 9] = [1, 3, 6, 1, 6, 3, 1, 1, 5];

/// What a trap meant.
#[derive(Debug, Clone, PartialEq)]
pub struct Meaning {
    /// Event kind.
    pub kind: EventKind,
    /// Object of the event: the interface for link traps, the trap for unknown ones.
    pub object: String,
    /// Metric label: `link_down`, `cold_start`, ..., `other`.
    pub label: &'static str,
    /// The trap OID, dotted.
    pub oid: String,
    /// The varbinds (dotted OID, value as text), sysUpTime and snmpTrapOID left out.
    pub varbinds: Vec<(String, String)>,
}

impl Meaning {
    /// The varbinds as people read them, `name=value, ...`, named by the device's profile
    /// (`extra`) and the built-in MIB table.
    pub fn text(&self, extra: &names::Extra) -> String {
        let mut text = String::new();
        for (oid, value) in &self.varbinds {
            let name = names::name(oid, extra);
            let value = names::value(&name, value.clone());
            let sep = if text.is_empty() { "" } else { ", " };
            let _ = write!(text, "{sep}{name}={value}");
        }
        text
    }
}

/// A device allowed to send traps, and how its traps must be signed.
pub struct Source {
    /// The device's name.
    pub device: String,
    /// What its profile calls vendor OIDs, for trap text.
    names: Vec<(String, String)>,
    /// v1/v2c: the community its traps must carry; without one, no v1/v2c trap is taken (a
    /// UDP source address proves nothing).
    community: Option<String>,
    /// v3: the USM user its traps must be authenticated (and decrypted) with.
    usm: Option<Credential>,
    /// v3: the same user's keys for informs to our engine.
    keys: Option<engine::UserKeys>,
    /// v3: the user's keys localised to the engine its last trap came from. Localising costs
    /// a megabyte of hashing, so doing it per trap would make a v3 trap storm CPU-bound.
    localised: Option<(Vec<u8>, snmp2::v3::Security)>,
}

/// Who may send traps: configured devices.
struct Sources {
    by_addr: HashMap<IpAddr, Source>,
}

impl Sources {
    fn new(config: &Config, engine: &engine::Engine) -> Self {
        // Keys cost a megabyte of hashing each and depend only on the credential: made once per
        // credential, however many devices share it.
        let keys: HashMap<&str, engine::UserKeys> = config
            .snmp
            .credentials
            .iter()
            .filter(|(_, c)| c.version == SnmpVersion::V3)
            .map(|(name, c)| (name.as_str(), engine.keys(c)))
            .collect();
        let by_addr = config
            .devices
            .iter()
            .map(|d| {
                let credential = d
                    .credentials
                    .as_ref()
                    .and_then(|c| config.snmp.credentials.get(c));
                let community = credential
                    .filter(|c| c.version == SnmpVersion::V2c)
                    .and_then(|c| c.community.as_ref())
                    .map(|s| s.expose().to_owned());
                let usm = credential.filter(|c| c.version == SnmpVersion::V3).cloned();
                let keys = d.credentials.as_deref().and_then(|c| keys.get(c)).cloned();
                let names = config
                    .snmp
                    .profiles
                    .of(d)
                    .map(|p| {
                        p.metrics
                            .iter()
                            .map(|m| (m.oid.clone(), m.name.clone()))
                            .collect()
                    })
                    .unwrap_or_default();
                let source = Source {
                    device: d.name.clone(),
                    names,
                    community,
                    usm,
                    keys,
                    localised: None,
                };
                (d.address, source)
            })
            .collect();
        Self { by_addr }
    }
}

fn dotted(oid: &Oid<'_>) -> String {
    oid.iter()
        .map(|arcs| arcs.map(|a| a.to_string()).collect::<Vec<_>>().join("."))
        .unwrap_or_default()
}

fn arcs(oid: &Oid<'_>) -> Vec<u64> {
    oid.iter().map(|a| a.collect()).unwrap_or_default()
}

fn value_text(v: &Value<'_>) -> String {
    match v {
        Value::OctetString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::ObjectIdentifier(o) => dotted(o),
        Value::Integer(n) => n.to_string(),
        Value::Counter32(n) | Value::Unsigned32(n) | Value::Timeticks(n) => n.to_string(),
        Value::Counter64(n) => n.to_string(),
        Value::IpAddress(a) => IpAddr::from(*a).to_string(),
        other => format!("{other:?}"),
    }
}

/// Reads a decoded trap (v1 or v2c/inform) into its meaning.
pub fn meaning(pdu: &Pdu<'_>) -> Option<Meaning> {
    let mut trap_oid: Option<Vec<u64>> = None;
    let mut if_index: Option<u64> = None;
    let mut varbinds = Vec::new();
    for (oid, value) in pdu.varbinds.clone() {
        let a = arcs(&oid);
        if a == SNMP_TRAP_OID {
            if let Value::ObjectIdentifier(o) = &value {
                trap_oid = Some(arcs(o));
            }
            continue;
        }
        if a.len() == IF_INDEX.len() + 1
            && a.starts_with(&IF_INDEX)
            && let Value::Integer(n) = value
        {
            if_index = u64::try_from(n).ok();
        }
        if a.len() > 8 && a[..8] == [1, 3, 6, 1, 2, 1, 1, 3] {
            continue; // sysUpTime.0: not news
        }
        varbinds.push((dotted(&oid), value_text(&value)));
    }
    // v1: generic 0-5 are the standard traps; 6 is enterpriseSpecific (enterprise.0.specific).
    let trap = match (&pdu.v1_trap_info, trap_oid) {
        (Some(v1), _) if (0..6).contains(&v1.generic_trap) => {
            let mut a = STANDARD_TRAPS.to_vec();
            a.push(v1.generic_trap as u64 + 1);
            a
        }
        (Some(v1), _) => {
            let mut a = arcs(&v1.enterprise);
            a.extend([0, v1.specific_trap.max(0) as u64]);
            a
        }
        (None, Some(a)) => a,
        (None, None) => return None,
    };
    let oid = trap
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".");
    let iface = if_index.map_or_else(
        || crate::model::DEVICE_OBJECT.to_owned(),
        |i| format!("ifIndex={i}"),
    );
    let standard = trap.len() == STANDARD_TRAPS.len() + 1 && trap.starts_with(&STANDARD_TRAPS);
    let (kind, label, object) = match (standard, trap.last()) {
        (true, Some(1)) => (
            EventKind::Reboot,
            "cold_start",
            crate::model::DEVICE_OBJECT.to_owned(),
        ),
        (true, Some(2)) => (
            EventKind::Reboot,
            "warm_start",
            crate::model::DEVICE_OBJECT.to_owned(),
        ),
        (true, Some(3)) => (EventKind::LinkDown, "link_down", iface),
        (true, Some(4)) => (EventKind::LinkUp, "link_up", iface),
        (true, Some(5)) => (
            EventKind::AuthFailure,
            "authentication_failure",
            crate::model::DEVICE_OBJECT.to_owned(),
        ),
        _ => (EventKind::Trap, "other", format!("trap={oid}")),
    };
    Some(Meaning {
        kind,
        object,
        label,
        oid,
        varbinds,
    })
}

/// The reply to an inform: the same message with its PDU tag turned into a Response (the
/// request id, error fields and varbinds an inform's sender checks are all unchanged).
pub fn inform_response(datagram: &[u8]) -> Option<Vec<u8>> {
    // SEQUENCE { INTEGER version, OCTET STRING community, InformRequest-PDU (0xa6) ... }
    let mut at = 1 + length_len(datagram.get(1..)?)?;
    for _ in 0..2 {
        let len = datagram.get(at + 1..)?;
        let (n, l) = length(len)?;
        at += 1 + l + n;
    }
    if *datagram.get(at)? != 0xa6 {
        return None;
    }
    let mut reply = datagram.to_vec();
    reply[at] = 0xa2;
    Some(reply)
}

/// (content length, bytes of the length field) of a BER length.
fn length(b: &[u8]) -> Option<(usize, usize)> {
    let first = *b.first()?;
    if first < 0x80 {
        return Some((usize::from(first), 1));
    }
    let n = usize::from(first & 0x7f);
    if n == 0 || n > 4 {
        return None;
    }
    let v = b
        .get(1..=n)?
        .iter()
        .fold(0usize, |v, &x| (v << 8) | usize::from(x));
    Some((v, 1 + n))
}

/// The SNMP version field of a message (0 = v1, 1 = v2c, 3 = v3).
fn version(datagram: &[u8]) -> Option<u8> {
    let at = 1 + length_len(datagram.get(1..)?)?;
    match datagram.get(at..at + 3)? {
        [0x02, 0x01, v] => Some(*v),
        _ => None,
    }
}

fn length_len(b: &[u8]) -> Option<usize> {
    length(b).map(|(_, l)| l)
}

/// The msgFlags security bits a v3 user's messages must carry: its configured level.
fn security_flags(c: &Credential) -> u8 {
    match (c.auth_protocol, c.priv_protocol) {
        (None, _) => 0,
        (Some(_), None) => AUTH,
        (Some(_), Some(_)) => AUTH | PRIV,
    }
}

/// What a datagram from a known source led to.
#[derive(Debug)]
pub struct Received {
    /// The trap or inform, if the datagram was one (not a discovery step).
    pub meaning: Option<Meaning>,
    /// What to send back: an inform's Response, or a discovery report.
    pub reply: Option<Vec<u8>>,
    /// Which report `reply` is, if it is one.
    pub report: Option<EngineReport>,
}

/// The receiving side of the trap port without its socket: who may send, noctua's engine,
/// and the reading of each datagram (so it can be fuzzed on its own).
pub struct Receiver {
    sources: Sources,
    engine: engine::Engine,
}

impl Receiver {
    /// The configured devices as trap sources, with noctua's engine for v3 informs.
    pub fn new(config: &Config, engine: engine::Engine) -> Self {
        Self {
            sources: Sources::new(config, &engine),
            engine,
        }
    }

    /// A datagram from `from` into what it meant and what to answer, with the device it came
    /// from; or the reason to drop it.
    pub fn read(&mut self, from: IpAddr, datagram: &[u8]) -> Result<(Received, &Source), TrapDrop> {
        let source = self
            .sources
            .by_addr
            .get_mut(&from.to_canonical())
            .ok_or(TrapDrop::UnknownSource)?;
        let received = read(datagram, source, &mut self.engine)?;
        Ok((received, source))
    }
}

/// A datagram from `source` into what it meant and what to answer, or the reason to drop it.
fn read(
    datagram: &[u8],
    source: &mut Source,
    engine: &mut engine::Engine,
) -> Result<Received, TrapDrop> {
    if version(datagram) == Some(3) {
        let Some(usm) = &source.usm else {
            return Err(TrapDrop::Unsupported);
        };
        let header = crate::ingest::usm::header(datagram).ok_or(TrapDrop::Malformed)?;
        // Informs (and their discovery) are addressed to our engine; traps to the sender's.
        if header.engine_id.is_empty() || header.engine_id == engine.id() {
            let keys = source.keys.as_ref().ok_or(TrapDrop::Unsupported)?;
            return Ok(match engine.serve(datagram, &header, keys)? {
                engine::Served::Notification(m, reply) => Received {
                    meaning: Some(m),
                    reply,
                    report: None,
                },
                engine::Served::Report(kind, r) => Received {
                    meaning: None,
                    reply: Some(r),
                    report: Some(kind),
                },
            });
        }
        // Keys are localised to the sender's engine id, which the message carries (once per
        // engine: see `Source::localised`); snmp2 zeroes the signature in place while checking
        // it, so it gets a copy.
        let mut security = match &source.localised {
            Some((id, security)) if id.as_slice() == header.engine_id => security.clone(),
            _ => {
                let security = crate::ingest::usm::usm_security(usm)
                    .with_engine_id(header.engine_id)
                    .map_err(|_| TrapDrop::Malformed)?;
                source.localised = Some((header.engine_id.to_vec(), security.clone()));
                security
            }
        };
        // Only at the user's own security level: an authPriv user's traps come signed and
        // encrypted, never less.
        if header.flags & (AUTH | PRIV) != security_flags(usm) {
            return Err(TrapDrop::Authentication);
        }
        let private = header.flags & PRIV != 0;
        let bytes = datagram.to_vec();
        let pdu = match Pdu::from_bytes_with_security(&bytes, Some(&mut security)) {
            Ok(p) => p,
            Err(snmp2::Error::AuthFailure(_)) => return Err(TrapDrop::Authentication),
            // Signed correctly but unreadable once decrypted: the privacy key is wrong.
            Err(_) if private => return Err(TrapDrop::Authentication),
            Err(_) => return Err(TrapDrop::Malformed),
        };
        // An inform carrying another engine's id is not for us to answer.
        if pdu.message_type != MessageType::Trap {
            return Err(TrapDrop::Unsupported);
        }
        let m = meaning(&pdu).ok_or(TrapDrop::Malformed)?;
        return Ok(Received {
            meaning: Some(m),
            reply: None,
            report: None,
        });
    }
    let pdu = Pdu::from_bytes(datagram).map_err(|_| TrapDrop::Malformed)?;
    if source.community.as_deref().map(str::as_bytes) != Some(pdu.community) {
        return Err(TrapDrop::Community);
    }
    let inform = pdu.message_type == MessageType::InformRequest;
    if !matches!(pdu.message_type, MessageType::Trap | MessageType::TrapV1) && !inform {
        return Err(TrapDrop::Unsupported);
    }
    let m = meaning(&pdu).ok_or(TrapDrop::Malformed)?;
    Ok(Received {
        meaning: Some(m),
        reply: inform.then(|| inform_response(datagram)).flatten(),
        report: None,
    })
}

/// Receives traps until `cancel`; `polls` wakes a device's poller.
pub async fn run(
    config: Arc<Config>,
    engine: engine::Engine,
    socket: UdpSocket,
    samples: SampleSink,
    metrics: Arc<Metrics>,
    polls: HashMap<String, Arc<Notify>>,
    cancel: CancellationToken,
) {
    let mut receiver = Receiver::new(&config, engine);
    let mut buf = vec![0u8; 65_536];
    tracing::info!(listen = %config.traps.listen, "SNMP trap receiver running");
    loop {
        let (n, from) = tokio::select! {
            _ = cancel.cancelled() => return,
            r = socket.recv_from(&mut buf) => match r {
                Ok(r) => r,
                Err(e) => {
                    metrics.trap_drop(TrapDrop::ReceiveError).inc();
                    tracing::debug!(error = %e, "trap receive error");
                    continue;
                }
            },
        };
        let (received, source) = match receiver.read(from.ip(), &buf[..n]) {
            Ok(r) => r,
            Err(reason) => {
                metrics.trap_drop(reason).inc();
                continue;
            }
        };
        if let Some(reply) = &received.reply
            && let Err(e) = socket.send_to(reply, from).await
        {
            tracing::debug!(error = %e, "cannot answer an inform");
        }
        if let Some(kind) = received.report {
            metrics.engine_report(kind).inc();
        }
        let Some(m) = received.meaning else {
            continue;
        };
        let device = &source.device;
        metrics
            .snmp_traps
            .with_label_values(&[device, m.label])
            .inc();
        tracing::info!(%device, trap = %m.oid, kind = m.label, "SNMP trap");
        let severity = (m.kind == EventKind::Trap)
            .then(|| config.traps.severity_of(&m.oid))
            .flatten();
        samples.offer(DeviceEvent {
            device: device.clone(),
            object: m.object.clone(),
            kind: m.kind,
            at: Timestamp::now(),
            text: if m.varbinds.is_empty() {
                format!("trap {}", names::trap(&m.oid))
            } else {
                format!("trap {}: {}", names::trap(&m.oid), m.text(&source.names))
            },
            severity,
        });
        // A standard trap says the state changed: look now rather than at the next poll.
        if m.kind != EventKind::Trap
            && let Some(n) = polls.get(device)
        {
            n.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever arrives on the trap port, reading it never panics.
        #[test]
        fn arbitrary_datagrams_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = inform_response(&bytes);
            let _ = version(&bytes);
            if let Ok(pdu) = Pdu::from_bytes(&bytes) {
                let _ = meaning(&pdu);
            }
        }
    }

    #[test]
    fn an_inform_is_answered_by_turning_it_into_a_response() {
        // v2c, community "public", InformRequest with request id 1 and no varbinds.
        let inform = [
            0x30, 0x19, 0x02, 0x01, 0x01, 0x04, 0x06, b'p', b'u', b'b', b'l', b'i', b'c', 0xa6,
            0x0c, 0x02, 0x01, 0x01, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00, 0x30, 0x00,
        ];
        let reply = inform_response(&inform[..inform.len() - 1]).unwrap();
        assert_eq!(reply[13], 0xa2);
        assert_eq!(version(&inform), Some(1));
        let mut trap = inform;
        trap[13] = 0xa7;
        assert_eq!(inform_response(&trap), None);
    }
}
