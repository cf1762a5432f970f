//! NetFlow v5, v9 and IPFIX datagrams into [`FlowRecord`]s, without allocating per record.
//!
//! Templates are compiled once into a plan: the offset of each field the pipeline reads
//! (bytes, packets, addresses, ports, protocol, TCP flags, interfaces, times, sampling). Data
//! records are then read at those offsets and nothing else is looked at. This is why noctua does
//! not decode through `netflow_parser`, whose records come out as vectors of field/value pairs
//! (one allocation per field, ≈2M records/s here): the plan is several times faster and keeps
//! the template cache in one place. `netflow_parser` remains a dev-dependency, as the independent
//! decoder the property tests compare against.
//!
//! Templates are scoped by exporter address and source id (v9) or observation domain (IPFIX),
//! so two exporters using one template id with different layouts never mix. The source port is
//! not part of the scope: an exporter that restarts on a new ephemeral port keeps its templates
//! until it announces new ones.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

use crate::telemetry::FlowDrop;

/// Why (part of) a datagram could not be decoded. Each is a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DecodeError {
    /// Empty datagram.
    Empty,
    /// Shorter than its header or a length it announces.
    Truncated,
    /// Version is not 5, 9 or 10.
    UnknownVersion,
    /// A length field contradicts the datagram (zero-length set, set past the end, ...).
    BadLength,
    /// A template that cannot be used (no fields, zero-length record, field beyond limits).
    BadTemplate,
    /// The template cache for this exporter, or in total, is full.
    TemplateLimit,
}

impl DecodeError {
    /// Why the datagram is dropped, as counted.
    pub fn reason(self) -> FlowDrop {
        match self {
            DecodeError::Empty => FlowDrop::Empty,
            DecodeError::Truncated => FlowDrop::Truncated,
            DecodeError::UnknownVersion => FlowDrop::UnknownVersion,
            DecodeError::BadLength => FlowDrop::BadLength,
            DecodeError::BadTemplate => FlowDrop::BadTemplate,
            DecodeError::TemplateLimit => FlowDrop::TemplateLimit,
        }
    }
}

/// One flow, as much of it as the pipeline uses. Times are Unix milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowRecord {
    /// Octets as exported (not yet scaled by sampling).
    pub bytes: u64,
    /// Packets as exported.
    pub packets: u64,
    /// IP protocol number.
    pub protocol: u8,
    /// Cumulative TCP flags.
    pub tcp_flags: u8,
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Input ifIndex (0 if unknown).
    pub input: u32,
    /// Output ifIndex (0 if unknown).
    pub output: u32,
    /// First packet.
    pub start_ms: i64,
    /// Last packet.
    pub end_ms: i64,
    /// 1 in N packets was sampled (1 = unsampled), from the header, options data or the record.
    pub sampling: u32,
}

/// Export protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Version {
    /// NetFlow v5 (fixed records).
    V5,
    /// NetFlow v9.
    V9,
    /// IPFIX.
    Ipfix,
}

impl Version {
    /// Metric label.
    pub fn label(self) -> &'static str {
        match self {
            Version::V5 => "5",
            Version::V9 => "9",
            Version::Ipfix => "10",
        }
    }
}

/// Where a template belongs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TemplateKey {
    /// Exporter address.
    pub exporter: IpAddr,
    /// v9 source id or IPFIX observation domain.
    pub domain: u32,
    /// v9 or IPFIX.
    pub version: Version,
    /// Template id (≥ 256).
    pub id: u16,
}

impl TemplateKey {
    /// Store key: sorts by exporter, so one exporter's templates are contiguous.
    pub fn store_key(&self) -> Vec<u8> {
        let mut k = match self.exporter {
            IpAddr::V4(a) => a.to_ipv6_mapped().octets().to_vec(),
            IpAddr::V6(a) => a.octets().to_vec(),
        };
        k.extend_from_slice(&self.domain.to_be_bytes());
        k.push(match self.version {
            Version::V5 => 5,
            Version::V9 => 9,
            Version::Ipfix => 10,
        });
        k.extend_from_slice(&self.id.to_be_bytes());
        k
    }
}

/// One field of a template as announced: information element, length, enterprise number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldSpec {
    /// Field type / information element id (enterprise bit cleared).
    pub ie: u16,
    /// Length in bytes; 65535 is variable length (IPFIX).
    pub len: u16,
    /// Enterprise number, 0 for IANA.
    pub enterprise: u32,
}

/// A template definition as announced, which is what the store keeps (the plan is rebuilt).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateDef {
    /// Scope.
    pub key: TemplateKey,
    /// Scope fields (options templates) come first and count here.
    pub scope_fields: u16,
    /// Whether it is an options template.
    pub options: bool,
    /// All fields, scope fields first.
    pub fields: Vec<FieldSpec>,
}

/// What happened to the template cache while decoding, for persistence.
#[derive(Debug, Clone, PartialEq)]
pub enum TemplateChange {
    /// New or changed (unchanged refreshes are not reported).
    Learned(TemplateDef),
    /// Withdrawn (IPFIX) or replaced by nothing.
    Withdrawn(TemplateKey),
}

/// Bounds on the template cache.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Templates per exporter address.
    pub per_exporter: usize,
    /// Templates of unreserved exporters (allowed by CIDR only), together. Reserved ones
    /// (configured devices) are bounded by `per_exporter` alone, so no flood of spoofed
    /// sources can take their room.
    pub total: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            per_exporter: 512,
            total: 16_384,
        }
    }
}

/// Receives what a datagram contained.
pub trait Sink {
    /// One data record.
    fn record(&mut self, record: &FlowRecord);
    /// A template was learned or withdrawn.
    fn template(&mut self, change: TemplateChange);
}

/// What one datagram held.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Protocol version, once the header was read.
    pub version: Option<Version>,
    /// Data records decoded (not template or options records).
    pub records: u32,
    /// Data sets skipped because their template is unknown.
    pub unknown_template_sets: u32,
    /// The first problem met, if any; records before it were still delivered.
    pub error: Option<DecodeError>,
}

// Information elements the plan reads (IANA numbers; v9 uses the same below 128).
const IE_OCTETS: u16 = 1;
const IE_PACKETS: u16 = 2;
const IE_PROTOCOL: u16 = 4;
const IE_TCP_FLAGS: u16 = 6;
const IE_SRC_PORT: u16 = 7;
const IE_SRC_V4: u16 = 8;
const IE_INPUT: u16 = 10;
const IE_DST_PORT: u16 = 11;
const IE_DST_V4: u16 = 12;
const IE_OUTPUT: u16 = 14;
const IE_END_UPTIME: u16 = 21;
const IE_START_UPTIME: u16 = 22;
const IE_SRC_V6: u16 = 27;
const IE_DST_V6: u16 = 28;
const IE_SAMPLING_INTERVAL: u16 = 34;
const IE_SAMPLER_ID: u16 = 48;
const IE_SAMPLER_RANDOM_INTERVAL: u16 = 50;
const IE_OCTET_TOTAL: u16 = 85;
const IE_PACKET_TOTAL: u16 = 86;
const IE_START_SECONDS: u16 = 150;
const IE_END_SECONDS: u16 = 151;
const IE_START_MILLIS: u16 = 152;
const IE_END_MILLIS: u16 = 153;
const IE_SYSTEM_INIT_MILLIS: u16 = 160;
const IE_SAMPLING_PACKET_INTERVAL: u16 = 305;
const IE_SAMPLING_PACKET_SPACE: u16 = 306;

const VARIABLE: u16 = 65535;

/// Index of a field in the record, or none.
type Slot = Option<u16>;

/// A compiled template: which field holds what, and where fixed-length fields start.
#[derive(Debug, Clone, Default)]
struct Plan {
    octets: Slot,
    packets: Slot,
    protocol: Slot,
    tcp_flags: Slot,
    src_port: Slot,
    dst_port: Slot,
    src: Slot,
    dst: Slot,
    input: Slot,
    output: Slot,
    start_uptime: Slot,
    end_uptime: Slot,
    start_secs: Slot,
    end_secs: Slot,
    start_millis: Slot,
    end_millis: Slot,
    sampling_interval: Slot,
    sampler_id: Slot,
    sampler_random_interval: Slot,
    sampling_packet_interval: Slot,
    sampling_packet_space: Slot,
    system_init: Slot,
}

#[derive(Debug, Clone)]
struct Template {
    def: TemplateDef,
    plan: Plan,
    /// Field start offsets when every field has a fixed length.
    offsets: Option<Vec<u32>>,
    /// Lengths of every field (65535 = variable).
    lens: Vec<u16>,
    /// Record length when fixed; the minimum length otherwise.
    record_len: usize,
}

impl Template {
    fn compile(def: TemplateDef) -> Result<Self, DecodeError> {
        if def.fields.is_empty() || def.fields.len() > 512 {
            return Err(DecodeError::BadTemplate);
        }
        let mut plan = Plan::default();
        let mut fixed = true;
        let mut offsets = Vec::with_capacity(def.fields.len());
        let mut at = 0u32;
        for (i, f) in def.fields.iter().enumerate() {
            offsets.push(at);
            if f.len == VARIABLE {
                fixed = false;
                at += 1;
            } else {
                at += u32::from(f.len);
            }
            if f.enterprise != 0 {
                continue;
            }
            let i = Some(i as u16);
            let int = (1..=8).contains(&f.len);
            let slot = match (f.ie, f.len) {
                (IE_OCTETS, _) | (IE_OCTET_TOTAL, _) if int && plan.octets.is_none() => {
                    &mut plan.octets
                }
                (IE_PACKETS, _) | (IE_PACKET_TOTAL, _) if int && plan.packets.is_none() => {
                    &mut plan.packets
                }
                (IE_PROTOCOL, 1) => &mut plan.protocol,
                (IE_TCP_FLAGS, 1 | 2) => &mut plan.tcp_flags,
                (IE_SRC_PORT, 2) => &mut plan.src_port,
                (IE_DST_PORT, 2) => &mut plan.dst_port,
                (IE_SRC_V4, 4) | (IE_SRC_V6, 16) => &mut plan.src,
                (IE_DST_V4, 4) | (IE_DST_V6, 16) => &mut plan.dst,
                (IE_INPUT, 1..=4) => &mut plan.input,
                (IE_OUTPUT, 1..=4) => &mut plan.output,
                (IE_START_UPTIME, 4) => &mut plan.start_uptime,
                (IE_END_UPTIME, 4) => &mut plan.end_uptime,
                (IE_START_SECONDS, 4) => &mut plan.start_secs,
                (IE_END_SECONDS, 4) => &mut plan.end_secs,
                (IE_START_MILLIS, 8) => &mut plan.start_millis,
                (IE_END_MILLIS, 8) => &mut plan.end_millis,
                (IE_SAMPLING_INTERVAL, 1..=4) => &mut plan.sampling_interval,
                (IE_SAMPLER_ID, 1..=4) => &mut plan.sampler_id,
                (IE_SAMPLER_RANDOM_INTERVAL, 1..=4) => &mut plan.sampler_random_interval,
                (IE_SAMPLING_PACKET_INTERVAL, 1..=4) => &mut plan.sampling_packet_interval,
                (IE_SAMPLING_PACKET_SPACE, 1..=4) => &mut plan.sampling_packet_space,
                (IE_SYSTEM_INIT_MILLIS, 8) => &mut plan.system_init,
                _ => continue,
            };
            if slot.is_none() {
                *slot = i;
            }
        }
        if at == 0 {
            return Err(DecodeError::BadTemplate);
        }
        Ok(Self {
            lens: def.fields.iter().map(|f| f.len).collect(),
            plan,
            offsets: fixed.then_some(offsets),
            record_len: at as usize,
            def,
        })
    }
}

/// Per exporter and domain: what options data and headers told us.
#[derive(Debug, Clone, Default)]
struct DomainState {
    /// From options data: the exporter's own sampling, applied to records that carry none.
    sampling: Option<u32>,
    /// From options data: sampler id → interval, for records that name their sampler.
    samplers: Vec<(u32, u32)>,
    /// IPFIX systemInitTimeMilliseconds, for sysUpTime-relative flow times.
    system_init_ms: Option<i64>,
}

const MAX_SAMPLERS: usize = 64;
const MAX_DOMAINS: usize = 65_536;

/// The template cache and exporter state. Owned by one task (no lock, no `Sync` needed).
#[derive(Debug, Default)]
pub struct Decoder {
    limits: Limits,
    templates: HashMap<TemplateKey, Template>,
    per_exporter: HashMap<IpAddr, usize>,
    /// Exporters with room of their own (see [`Limits::total`]).
    reserved: HashSet<IpAddr>,
    /// Templates held by unreserved exporters.
    shared: usize,
    domains: HashMap<(IpAddr, u32), DomainState>,
    /// Scratch offsets for variable-length records (reused, so no allocation per record).
    scratch: Vec<u32>,
}

/// Timing context of one datagram.
#[derive(Clone, Copy)]
struct Clock {
    /// Export time, Unix ms.
    export_ms: i64,
    /// Device uptime at export (v5/v9), ms.
    uptime_ms: Option<u32>,
}

impl Decoder {
    /// An empty cache with these bounds.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            ..Self::default()
        }
    }

    /// Number of templates held.
    pub fn template_count(&self) -> usize {
        self.templates.len()
    }

    /// Gives `exporter` room of its own: its templates do not count against the shared total.
    /// Call before it has templates.
    pub fn reserve(&mut self, exporter: IpAddr) {
        self.reserved.insert(exporter);
    }

    /// Forgets everything of an exporter (evicted from the pool); returns the keys of the
    /// templates it held.
    pub fn forget_exporter(&mut self, exporter: IpAddr) -> Vec<TemplateKey> {
        let keys: Vec<TemplateKey> = self
            .templates
            .keys()
            .filter(|k| k.exporter == exporter)
            .copied()
            .collect();
        for key in &keys {
            self.forget(key);
        }
        self.domains.retain(|(e, _), _| *e != exporter);
        keys
    }

    /// The definitions of an exporter's templates.
    pub fn templates_of(&self, exporter: IpAddr) -> Vec<TemplateDef> {
        self.templates
            .iter()
            .filter(|(k, _)| k.exporter == exporter)
            .map(|(_, t)| t.def.clone())
            .collect()
    }

    /// Takes a stored template back (at start). Fails if it would not compile or the cache is full.
    pub fn restore(&mut self, def: TemplateDef) -> Result<(), DecodeError> {
        self.learn(def).map(|_| ())
    }

    /// Decodes one datagram from `exporter`, handing records and template changes to `sink`.
    /// Never panics; malformed input ends decoding of the datagram with an error in the summary.
    pub fn decode(&mut self, exporter: IpAddr, data: &[u8], sink: &mut impl Sink) -> Summary {
        let mut summary = Summary::default();
        if data.is_empty() {
            summary.error = Some(DecodeError::Empty);
            return summary;
        }
        let result = match be16(data, 0) {
            Some(5) => {
                summary.version = Some(Version::V5);
                self.decode_v5(data, sink, &mut summary)
            }
            Some(9) => {
                summary.version = Some(Version::V9);
                self.decode_v9(exporter, data, sink, &mut summary)
            }
            Some(10) => {
                summary.version = Some(Version::Ipfix);
                self.decode_ipfix(exporter, data, sink, &mut summary)
            }
            Some(_) => Err(DecodeError::UnknownVersion),
            None => Err(DecodeError::Truncated),
        };
        summary.error = result.err();
        summary
    }

    fn decode_v5(
        &mut self,
        data: &[u8],
        sink: &mut impl Sink,
        summary: &mut Summary,
    ) -> Result<(), DecodeError> {
        const HEADER: usize = 24;
        const RECORD: usize = 48;
        if data.len() < HEADER {
            return Err(DecodeError::Truncated);
        }
        let count = usize::from(be16(data, 2).unwrap_or(0));
        let uptime = be32(data, 4).unwrap_or(0);
        let secs = be32(data, 8).unwrap_or(0);
        let nsecs = be32(data, 12).unwrap_or(0);
        let sampling = match be16(data, 22).unwrap_or(0) & 0x3fff {
            0 => 1,
            n => u32::from(n),
        };
        let export_ms = i64::from(secs) * 1000 + i64::from(nsecs / 1_000_000);
        if count == 0 || count > 30 {
            return Err(DecodeError::BadLength);
        }
        if data.len() < HEADER + count * RECORD {
            return Err(DecodeError::Truncated);
        }
        for r in data[HEADER..HEADER + count * RECORD].chunks_exact(RECORD) {
            let at = |t: u32| uptime_to_unix(export_ms, uptime, t);
            let record = FlowRecord {
                src: IpAddr::V4(Ipv4Addr::new(r[0], r[1], r[2], r[3])),
                dst: IpAddr::V4(Ipv4Addr::new(r[4], r[5], r[6], r[7])),
                input: u32::from(u16::from_be_bytes([r[12], r[13]])),
                output: u32::from(u16::from_be_bytes([r[14], r[15]])),
                packets: u64::from(u32::from_be_bytes([r[16], r[17], r[18], r[19]])),
                bytes: u64::from(u32::from_be_bytes([r[20], r[21], r[22], r[23]])),
                start_ms: at(u32::from_be_bytes([r[24], r[25], r[26], r[27]])),
                end_ms: at(u32::from_be_bytes([r[28], r[29], r[30], r[31]])),
                src_port: u16::from_be_bytes([r[32], r[33]]),
                dst_port: u16::from_be_bytes([r[34], r[35]]),
                tcp_flags: r[37],
                protocol: r[38],
                sampling,
            };
            sink.record(&record);
            summary.records += 1;
        }
        Ok(())
    }

    fn decode_v9(
        &mut self,
        exporter: IpAddr,
        data: &[u8],
        sink: &mut impl Sink,
        summary: &mut Summary,
    ) -> Result<(), DecodeError> {
        const HEADER: usize = 20;
        if data.len() < HEADER {
            return Err(DecodeError::Truncated);
        }
        let uptime = be32(data, 4).unwrap_or(0);
        let secs = be32(data, 8).unwrap_or(0);
        let domain = be32(data, 16).unwrap_or(0);
        let clock = Clock {
            export_ms: i64::from(secs) * 1000,
            uptime_ms: Some(uptime),
        };
        self.sets(
            exporter,
            domain,
            Version::V9,
            clock,
            &data[HEADER..],
            sink,
            summary,
        )
    }

    fn decode_ipfix(
        &mut self,
        exporter: IpAddr,
        data: &[u8],
        sink: &mut impl Sink,
        summary: &mut Summary,
    ) -> Result<(), DecodeError> {
        const HEADER: usize = 16;
        if data.len() < HEADER {
            return Err(DecodeError::Truncated);
        }
        let length = usize::from(be16(data, 2).unwrap_or(0));
        if length < HEADER {
            return Err(DecodeError::BadLength);
        }
        if length > data.len() {
            return Err(DecodeError::Truncated);
        }
        let secs = be32(data, 4).unwrap_or(0);
        let domain = be32(data, 12).unwrap_or(0);
        let clock = Clock {
            export_ms: i64::from(secs) * 1000,
            uptime_ms: None,
        };
        self.sets(
            exporter,
            domain,
            Version::Ipfix,
            clock,
            &data[HEADER..length],
            sink,
            summary,
        )
    }

    /// Walks the flowsets (v9) or sets (IPFIX) of a datagram body.
    #[allow(clippy::too_many_arguments)]
    fn sets(
        &mut self,
        exporter: IpAddr,
        domain: u32,
        version: Version,
        clock: Clock,
        mut body: &[u8],
        sink: &mut impl Sink,
        summary: &mut Summary,
    ) -> Result<(), DecodeError> {
        let (template_set, options_set) = match version {
            Version::V9 => (0, 1),
            _ => (2, 3),
        };
        while body.len() >= 4 {
            let id = be16(body, 0).unwrap_or(0);
            let len = usize::from(be16(body, 2).unwrap_or(0));
            if len < 4 {
                return Err(DecodeError::BadLength);
            }
            if len > body.len() {
                return Err(DecodeError::Truncated);
            }
            let content = &body[4..len];
            body = &body[len..];
            let key = |id| TemplateKey {
                exporter,
                domain,
                version,
                id,
            };
            if id == template_set || id == options_set {
                self.template_set(version, id == options_set, content, &key, sink)?;
            } else if id >= 256 {
                let Some(t) = self.templates.get(&key(id)) else {
                    summary.unknown_template_sets += 1;
                    continue;
                };
                let state = self.domains.get(&(exporter, domain));
                if t.def.options {
                    let update = options_data(t, content, &mut self.scratch);
                    if update != OptionsUpdate::default() {
                        self.apply_options(exporter, domain, update);
                    }
                } else {
                    summary.records +=
                        data_records(t, state, clock, content, &mut self.scratch, sink);
                }
            }
            // Set ids 4..=255 are reserved: skipped, as RFC 7011 asks.
        }
        if !body.is_empty() && body.iter().any(|&b| b != 0) {
            return Err(DecodeError::Truncated);
        }
        Ok(())
    }

    fn template_set(
        &mut self,
        version: Version,
        options: bool,
        mut content: &[u8],
        key: &dyn Fn(u16) -> TemplateKey,
        sink: &mut impl Sink,
    ) -> Result<(), DecodeError> {
        // A record header is at least 4 bytes; anything shorter is padding.
        while content.len() >= 4 {
            let id = be16(content, 0).unwrap_or(0);
            let (scope_fields, fields_bytes_or_count, header) = match (version, options) {
                (Version::V9, false) => (0, be16(content, 2).unwrap_or(0), 4),
                (Version::V9, true) => {
                    // Lengths in bytes of the scope and option field lists.
                    let scope = be16(content, 2).unwrap_or(0);
                    let opts = be16(content, 4).ok_or(DecodeError::Truncated)?;
                    if !scope.is_multiple_of(4) || !opts.is_multiple_of(4) {
                        return Err(DecodeError::BadTemplate);
                    }
                    (scope / 4, scope / 4 + opts / 4, 6)
                }
                (_, false) => (0, be16(content, 2).unwrap_or(0), 4),
                (_, true) => {
                    let count = be16(content, 2).unwrap_or(0);
                    let scope = be16(content, 4).ok_or(DecodeError::Truncated)?;
                    if scope == 0 || scope > count {
                        return Err(DecodeError::BadTemplate);
                    }
                    (scope, count, 6)
                }
            };
            if id < 256 {
                if id == 0 && fields_bytes_or_count == 0 {
                    break; // padding
                }
                return Err(DecodeError::BadTemplate);
            }
            let count = fields_bytes_or_count;
            let mut fields = Vec::with_capacity(usize::from(count));
            let mut at = header;
            for _ in 0..count {
                let raw = be16(content, at).ok_or(DecodeError::Truncated)?;
                let len = be16(content, at + 2).ok_or(DecodeError::Truncated)?;
                at += 4;
                let mut enterprise = 0;
                let mut ie = raw;
                if version == Version::Ipfix && raw & 0x8000 != 0 {
                    ie = raw & 0x7fff;
                    enterprise = be32(content, at).ok_or(DecodeError::Truncated)?;
                    at += 4;
                }
                if version == Version::V9 && len == VARIABLE {
                    return Err(DecodeError::BadTemplate);
                }
                fields.push(FieldSpec {
                    ie,
                    len,
                    enterprise,
                });
            }
            content = &content[at..];
            let key = key(id);
            if count == 0 {
                // IPFIX template withdrawal.
                if self.forget(&key) {
                    sink.template(TemplateChange::Withdrawn(key));
                }
                continue;
            }
            let def = TemplateDef {
                key,
                scope_fields,
                options,
                fields,
            };
            if let Some(changed) = self.learn(def)? {
                sink.template(TemplateChange::Learned(changed));
            }
        }
        Ok(())
    }

    /// Adds or replaces a template; returns its definition if it is new or changed.
    fn learn(&mut self, def: TemplateDef) -> Result<Option<TemplateDef>, DecodeError> {
        if let Some(old) = self.templates.get(&def.key)
            && old.def == def
        {
            return Ok(None);
        }
        let key = def.key;
        let template = Template::compile(def)?;
        if !self.templates.contains_key(&key) {
            let held = self.per_exporter.get(&key.exporter).copied().unwrap_or(0);
            let reserved = self.reserved.contains(&key.exporter);
            if held >= self.limits.per_exporter || (!reserved && self.shared >= self.limits.total) {
                return Err(DecodeError::TemplateLimit);
            }
            *self.per_exporter.entry(key.exporter).or_default() += 1;
            self.shared += usize::from(!reserved);
        }
        let def = template.def.clone();
        self.templates.insert(key, template);
        Ok(Some(def))
    }

    fn forget(&mut self, key: &TemplateKey) -> bool {
        if self.templates.remove(key).is_none() {
            return false;
        }
        if !self.reserved.contains(&key.exporter) {
            self.shared -= 1;
        }
        if let Some(n) = self.per_exporter.get_mut(&key.exporter) {
            *n -= 1;
            if *n == 0 {
                self.per_exporter.remove(&key.exporter);
            }
        }
        true
    }

    fn apply_options(&mut self, exporter: IpAddr, domain: u32, update: OptionsUpdate) {
        if !self.domains.contains_key(&(exporter, domain)) && self.domains.len() >= MAX_DOMAINS {
            return;
        }
        let state = self.domains.entry((exporter, domain)).or_default();
        if let Some(init) = update.system_init_ms {
            state.system_init_ms = Some(init);
        }
        match (update.sampler_id, update.interval) {
            (Some(id), Some(n)) => {
                if let Some(s) = state.samplers.iter_mut().find(|s| s.0 == id) {
                    s.1 = n;
                } else if state.samplers.len() < MAX_SAMPLERS {
                    state.samplers.push((id, n));
                }
            }
            (None, Some(n)) => state.sampling = Some(n),
            _ => {}
        }
    }
}

/// What one options data set said.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct OptionsUpdate {
    system_init_ms: Option<i64>,
    sampler_id: Option<u32>,
    interval: Option<u32>,
}

fn options_data(t: &Template, content: &[u8], scratch: &mut Vec<u32>) -> OptionsUpdate {
    let mut update = OptionsUpdate::default();
    for_each_record(t, content, scratch, |rec, offsets| {
        let read = |slot: Slot| read_uint(rec, offsets, &t.lens, slot);
        if let Some(init) = read(t.plan.system_init) {
            update.system_init_ms = i64::try_from(init).ok();
        }
        if let Some(id) = read(t.plan.sampler_id) {
            update.sampler_id = Some(id as u32);
        }
        if let Some(n) = sampling_of(&t.plan, &read) {
            update.interval = Some(n);
        }
    });
    update
}

/// The sampling interval a record or options record states, if any.
fn sampling_of(plan: &Plan, read: &dyn Fn(Slot) -> Option<u64>) -> Option<u32> {
    let n = read(plan.sampling_interval)
        .or_else(|| read(plan.sampler_random_interval))
        .or_else(|| {
            let interval = read(plan.sampling_packet_interval)?;
            let space = read(plan.sampling_packet_space).unwrap_or(0);
            // Select `interval` packets, skip `space`: 1 in (interval+space)/interval.
            (interval > 0).then(|| (interval + space) / interval)
        })?;
    u32::try_from(n.max(1)).ok()
}

/// Decodes the data records of one set; returns how many.
fn data_records(
    t: &Template,
    state: Option<&DomainState>,
    clock: Clock,
    content: &[u8],
    scratch: &mut Vec<u32>,
    sink: &mut impl Sink,
) -> u32 {
    let mut n = 0;
    let p = &t.plan;
    for_each_record(t, content, scratch, |rec, offsets| {
        let read = |slot: Slot| read_uint(rec, offsets, &t.lens, slot);
        let addr = |slot: Slot| read_addr(rec, offsets, &t.lens, slot);
        let time = |uptime: Slot, secs: Slot, millis: Slot| -> Option<i64> {
            if let Some(ms) = read(millis) {
                return i64::try_from(ms).ok();
            }
            if let Some(s) = read(secs) {
                return Some(s as i64 * 1000);
            }
            let t = read(uptime)? as u32;
            match clock.uptime_ms {
                Some(up) => Some(uptime_to_unix(clock.export_ms, up, t)),
                None => Some(state?.system_init_ms? + i64::from(t)),
            }
        };
        let end_ms = time(p.end_uptime, p.end_secs, p.end_millis).unwrap_or(clock.export_ms);
        let start_ms = time(p.start_uptime, p.start_secs, p.start_millis).unwrap_or(end_ms);
        let sampling = sampling_of(p, &read)
            .or_else(|| {
                let id = read(p.sampler_id)? as u32;
                state?.samplers.iter().find(|s| s.0 == id).map(|s| s.1)
            })
            .or_else(|| state?.sampling)
            .unwrap_or(1);
        let record = FlowRecord {
            bytes: read(p.octets).unwrap_or(0),
            packets: read(p.packets).unwrap_or(0),
            protocol: read(p.protocol).unwrap_or(0) as u8,
            tcp_flags: read(p.tcp_flags).unwrap_or(0) as u8,
            src: addr(p.src),
            dst: addr(p.dst),
            src_port: read(p.src_port).unwrap_or(0) as u16,
            dst_port: read(p.dst_port).unwrap_or(0) as u16,
            input: read(p.input).unwrap_or(0) as u32,
            output: read(p.output).unwrap_or(0) as u32,
            start_ms,
            end_ms,
            sampling,
        };
        sink.record(&record);
        n += 1;
    });
    n
}

/// Calls `f(record, field_offsets)` for each whole record in a data set; trailing bytes shorter
/// than a record are padding.
fn for_each_record(
    t: &Template,
    mut content: &[u8],
    scratch: &mut Vec<u32>,
    mut f: impl FnMut(&[u8], &[u32]),
) {
    if let Some(offsets) = &t.offsets {
        for rec in content.chunks_exact(t.record_len) {
            f(rec, offsets);
        }
        return;
    }
    // Variable-length fields: work out each record's offsets as we go.
    while content.len() >= t.record_len {
        scratch.clear();
        let mut at = 0usize;
        let mut ok = true;
        for &len in &t.lens {
            if len != VARIABLE {
                scratch.push(at as u32);
                at += usize::from(len);
                continue;
            }
            let Some(&short) = content.get(at) else {
                ok = false;
                break;
            };
            let (skip, n) = if short == 255 {
                match be16(content, at + 1) {
                    Some(n) => (3, usize::from(n)),
                    None => {
                        ok = false;
                        break;
                    }
                }
            } else {
                (1, usize::from(short))
            };
            scratch.push((at + skip) as u32);
            at += skip + n;
        }
        if !ok || at > content.len() || at == 0 {
            return;
        }
        f(&content[..at], scratch);
        content = &content[at..];
    }
}

/// Reads an unsigned big-endian field of 1..=8 bytes.
fn read_uint(rec: &[u8], offsets: &[u32], lens: &[u16], slot: Slot) -> Option<u64> {
    let i = usize::from(slot?);
    let at = *offsets.get(i)? as usize;
    let len = usize::from(*lens.get(i)?);
    let bytes = rec.get(at..at + len)?;
    Some(bytes.iter().fold(0u64, |v, &b| (v << 8) | u64::from(b)))
}

fn read_addr(rec: &[u8], offsets: &[u32], lens: &[u16], slot: Slot) -> IpAddr {
    let Some(i) = slot.map(usize::from) else {
        return IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    };
    let at = offsets.get(i).map_or(usize::MAX, |&a| a as usize);
    match lens
        .get(i)
        .map(|&l| rec.get(at..at.saturating_add(usize::from(l))))
    {
        Some(Some(b)) if b.len() == 4 => IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3])),
        Some(Some(b)) if b.len() == 16 => {
            let mut o = [0u8; 16];
            o.copy_from_slice(b);
            IpAddr::V6(Ipv6Addr::from(o))
        }
        _ => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    }
}

/// Converts a router-uptime timestamp to Unix ms, given the export's time and uptime. The
/// difference is taken modulo 2³² so uptime wrapping (every 49.7 days) does not matter, and a
/// switched time slightly after the export (clock skew) stays slightly after.
fn uptime_to_unix(export_ms: i64, uptime: u32, switched: u32) -> i64 {
    export_ms - i64::from(uptime.wrapping_sub(switched) as i32)
}

fn be16(data: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(data.get(at..at + 2)?.try_into().ok()?))
}

fn be32(data: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(data.get(at..at + 4)?.try_into().ok()?))
}
