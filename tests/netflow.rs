//! NetFlow/IPFIX decoding and aggregation against hand-built datagrams: template plans read
//! every field where the template put it (property-tested over random layouts), templates are
//! scoped per exporter and survive a restart through the store, malformed input is counted by
//! reason and never panics, sampling scales, and traffic lands in the intervals it happened in.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test or bench reports

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use noctua::config::Config;
use noctua::ingest::netflow::aggregate::{Aggregator, Exporter};
use noctua::ingest::netflow::decode::{
    DecodeError, Decoder, FlowRecord, Limits, Sink, Summary, TemplateChange, Version,
};
use noctua::ingest::netflow::{Collector, persist, stored_templates};
use noctua::message::InterfaceSpeeds;
use noctua::model::{Metric, Sample};
use noctua::store::Store;
use noctua::telemetry::Metrics;
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------------
// Encoders: the wire formats written out by hand, independently of the decoder.

fn set(id: u16, body: &[u8]) -> Vec<u8> {
    let mut s = Vec::new();
    s.extend_from_slice(&id.to_be_bytes());
    s.extend_from_slice(&((body.len() + 4) as u16).to_be_bytes());
    s.extend_from_slice(body);
    s
}

fn template_body(id: u16, fields: &[(u16, u16)]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&id.to_be_bytes());
    b.extend_from_slice(&(fields.len() as u16).to_be_bytes());
    for (ie, len) in fields {
        b.extend_from_slice(&ie.to_be_bytes());
        b.extend_from_slice(&len.to_be_bytes());
    }
    b
}

fn v9(domain: u32, unix_secs: u32, uptime_ms: u32, sets: &[Vec<u8>]) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&9u16.to_be_bytes());
    p.extend_from_slice(&(sets.len() as u16).to_be_bytes());
    p.extend_from_slice(&uptime_ms.to_be_bytes());
    p.extend_from_slice(&unix_secs.to_be_bytes());
    p.extend_from_slice(&1u32.to_be_bytes());
    p.extend_from_slice(&domain.to_be_bytes());
    for s in sets {
        p.extend_from_slice(s);
    }
    p
}

fn ipfix(domain: u32, export_secs: u32, sets: &[Vec<u8>]) -> Vec<u8> {
    let len: usize = 16 + sets.iter().map(Vec::len).sum::<usize>();
    let mut p = Vec::new();
    p.extend_from_slice(&10u16.to_be_bytes());
    p.extend_from_slice(&(len as u16).to_be_bytes());
    p.extend_from_slice(&export_secs.to_be_bytes());
    p.extend_from_slice(&7u32.to_be_bytes());
    p.extend_from_slice(&domain.to_be_bytes());
    for s in sets {
        p.extend_from_slice(s);
    }
    p
}

fn v5(unix_secs: u32, uptime_ms: u32, sampling: u16, records: &[[u8; 48]]) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&5u16.to_be_bytes());
    p.extend_from_slice(&(records.len() as u16).to_be_bytes());
    p.extend_from_slice(&uptime_ms.to_be_bytes());
    p.extend_from_slice(&unix_secs.to_be_bytes());
    p.extend_from_slice(&0u32.to_be_bytes());
    p.extend_from_slice(&0u32.to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(&sampling.to_be_bytes());
    for r in records {
        p.extend_from_slice(r);
    }
    p
}

fn v5_record(
    src: [u8; 4],
    dst: [u8; 4],
    bytes: u32,
    packets: u32,
    first: u32,
    last: u32,
) -> [u8; 48] {
    let mut r = [0u8; 48];
    r[0..4].copy_from_slice(&src);
    r[4..8].copy_from_slice(&dst);
    r[12..14].copy_from_slice(&3u16.to_be_bytes());
    r[14..16].copy_from_slice(&4u16.to_be_bytes());
    r[16..20].copy_from_slice(&packets.to_be_bytes());
    r[20..24].copy_from_slice(&bytes.to_be_bytes());
    r[24..28].copy_from_slice(&first.to_be_bytes());
    r[28..32].copy_from_slice(&last.to_be_bytes());
    r[32..34].copy_from_slice(&1234u16.to_be_bytes());
    r[34..36].copy_from_slice(&80u16.to_be_bytes());
    r[37] = 0x1b;
    r[38] = 6;
    r
}

fn uint(v: u64, len: u16) -> Vec<u8> {
    v.to_be_bytes()[8 - len as usize..].to_vec()
}

#[derive(Default)]
struct Collect {
    records: Vec<FlowRecord>,
    changes: Vec<TemplateChange>,
}

impl Sink for Collect {
    fn record(&mut self, r: &FlowRecord) {
        self.records.push(*r);
    }
    fn template(&mut self, c: TemplateChange) {
        self.changes.push(c);
    }
}

fn decode(d: &mut Decoder, from: IpAddr, data: &[u8]) -> (Summary, Collect) {
    let mut c = Collect::default();
    let s = d.decode(from, data, &mut c);
    (s, c)
}

const A: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10));
const B: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 11));

// ---------------------------------------------------------------------------------------------
// Template plans.

/// One flow's values, and a template layout to write them in.
#[derive(Debug, Clone)]
struct Flow {
    bytes: u64,
    packets: u64,
    protocol: u8,
    flags: u8,
    src: Ipv4Addr,
    dst: Ipv6Addr,
    sport: u16,
    dport: u16,
    input: u32,
    output: u32,
    first_ago_ms: u32,
    last_ago_ms: u32,
}

fn flow() -> impl Strategy<Value = Flow> {
    (
        (any::<u32>(), any::<u32>(), any::<u8>(), any::<u8>()),
        (
            any::<[u8; 4]>(),
            any::<[u8; 16]>(),
            any::<u16>(),
            any::<u16>(),
        ),
        (0u32..65_536, 0u32..65_536, 0u32..3_600_000, 0u32..3_600_000),
    )
        .prop_map(|((b, p, pr, f), (s, d, sp, dp), (i, o, a, l))| Flow {
            bytes: u64::from(b),
            packets: u64::from(p),
            protocol: pr,
            flags: f,
            src: Ipv4Addr::from(s),
            dst: Ipv6Addr::from(d),
            sport: sp,
            dport: dp,
            input: i,
            output: o,
            first_ago_ms: a.max(l),
            last_ago_ms: l,
        })
}

/// Fields as (ie, len, value bytes of a flow); padding fields the plan must skip over.
fn fields_of(f: &Flow, wide: bool) -> Vec<(u16, u16, Vec<u8>)> {
    let (bl, il) = if wide { (8, 4) } else { (4, 2) };
    vec![
        (1, bl, uint(f.bytes, bl)),
        (2, bl, uint(f.packets, bl)),
        (4, 1, vec![f.protocol]),
        (6, 1, vec![f.flags]),
        (7, 2, f.sport.to_be_bytes().to_vec()),
        (8, 4, f.src.octets().to_vec()),
        (
            10,
            il,
            uint(
                u64::from(f.input) & if wide { u64::MAX } else { 0xffff },
                il,
            ),
        ),
        (11, 2, f.dport.to_be_bytes().to_vec()),
        (28, 16, f.dst.octets().to_vec()),
        (
            14,
            il,
            uint(
                u64::from(f.output) & if wide { u64::MAX } else { 0xffff },
                il,
            ),
        ),
        (21, 4, Vec::new()), // filled per packet: uptime-relative
        (22, 4, Vec::new()),
        (5, 1, vec![0xaa]),         // ToS: not read
        (0x1234, 3, vec![1, 2, 3]), // unknown field type: skipped by length
    ]
}

/// A v9 datagram of `flows` under template 300 with its fields in `order` (narrow or `wide`),
/// times relative to `uptime`, and `padding` after the records.
fn v9_datagram(
    flows: &[Flow],
    order: &[usize],
    wide: bool,
    unix: u32,
    uptime: u32,
    padding: &[u8],
) -> Vec<u8> {
    let layout: Vec<(u16, u16)> = order
        .iter()
        .map(|&i| {
            let f = &fields_of(&flows[0], wide)[i];
            (f.0, f.1)
        })
        .collect();
    let mut body = Vec::new();
    for f in flows {
        let fields = fields_of(f, wide);
        for &i in order {
            let (ie, _, v) = &fields[i];
            match ie {
                21 => body.extend_from_slice(&(uptime - f.last_ago_ms).to_be_bytes()),
                22 => body.extend_from_slice(&(uptime - f.first_ago_ms).to_be_bytes()),
                _ => body.extend_from_slice(v),
            }
        }
    }
    body.extend_from_slice(padding);
    v9(
        5,
        unix,
        uptime,
        &[set(0, &template_body(300, &layout)), set(300, &body)],
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Whatever order a template lists its fields in, and whatever widths it uses, each record
    /// decodes to the values written.
    #[test]
    fn v9_plans_read_each_field_where_the_template_put_it(
        flows in proptest::collection::vec(flow(), 1..20),
        order in Just((0..14usize).collect::<Vec<_>>()).prop_shuffle(),
        wide in any::<bool>(),
        uptime in 3_600_000u32..u32::MAX,
    ) {
        let unix = 1_795_946_400u32;
        // With padding shorter than a record.
        let packet = v9_datagram(&flows, &order, wide, unix, uptime, &[0, 0, 0]);
        let mut d = Decoder::new(Limits::default());
        let (summary, got) = decode(&mut d, A, &packet);
        prop_assert_eq!(summary.error, None);
        prop_assert_eq!(summary.records as usize, flows.len());
        for (f, r) in flows.iter().zip(&got.records) {
            let mask = if wide { u64::MAX } else { 0xffff };
            prop_assert_eq!(r.bytes, if wide { f.bytes } else { f.bytes & 0xffff_ffff });
            prop_assert_eq!(r.packets, f.packets);
            prop_assert_eq!(r.protocol, f.protocol);
            prop_assert_eq!(r.tcp_flags, f.flags);
            prop_assert_eq!(r.src, IpAddr::V4(f.src));
            prop_assert_eq!(r.dst, IpAddr::V6(f.dst));
            prop_assert_eq!((r.src_port, r.dst_port), (f.sport, f.dport));
            prop_assert_eq!(u64::from(r.input), u64::from(f.input) & mask);
            prop_assert_eq!(u64::from(r.output), u64::from(f.output) & mask);
            let export_ms = i64::from(unix) * 1000;
            prop_assert_eq!(r.end_ms, export_ms - i64::from(f.last_ago_ms));
            prop_assert_eq!(r.start_ms, export_ms - i64::from(f.first_ago_ms));
            prop_assert_eq!(r.sampling, 1);
        }
    }

    /// Random bytes, and real datagrams cut or corrupted anywhere, never panic, and every
    /// failure has a reason.
    #[test]
    fn garbage_never_panics(
        bytes in proptest::collection::vec(any::<u8>(), 0..600),
        cut in 0usize..200,
        flip in any::<(usize, u8)>(),
    ) {
        let mut d = Decoder::new(Limits { per_exporter: 8, total: 16 });
        let _ = decode(&mut d, A, &bytes);
        let mut good = v9(1, 1, 1, &[
            set(0, &template_body(256, &[(1, 4), (2, 4), (8, 4)])),
            set(256, &[0u8; 24]),
        ]);
        let _ = decode(&mut d, A, &good[..cut.min(good.len())]);
        let i = flip.0 % good.len();
        good[i] ^= flip.1;
        let (s, _) = decode(&mut d, A, &good);
        // A flipped byte may change the layout, but a record is never made of nothing.
        prop_assert!((s.records as usize) <= good.len());
        for version in [5u8, 9, 10] {
            let mut b = bytes.clone();
            b.splice(0..0, [0, version]);
            let _ = decode(&mut d, B, &b);
        }
    }
}

#[test]
fn ipfix_absolute_times_enterprise_and_variable_length_fields() {
    // octets(8) | enterprise field (4, PEN 9) | varlen string | start ms | end ms | src | dst
    let mut tb = Vec::new();
    tb.extend_from_slice(&400u16.to_be_bytes());
    tb.extend_from_slice(&7u16.to_be_bytes());
    tb.extend_from_slice(&[0, 1, 0, 8]); // octets, 8 bytes
    tb.extend_from_slice(&(0x8000u16 | 1).to_be_bytes()); // enterprise ie 1: NOT octets
    tb.extend_from_slice(&4u16.to_be_bytes());
    tb.extend_from_slice(&9u32.to_be_bytes());
    for (ie, len) in [(82u16, 65535u16), (152, 8), (153, 8), (8, 4), (12, 4)] {
        tb.extend_from_slice(&ie.to_be_bytes());
        tb.extend_from_slice(&len.to_be_bytes());
    }
    let mut data = Vec::new();
    for (octets, name) in [(1500u64, "eth0".as_bytes()), (40, &[b'x'; 300][..])] {
        data.extend_from_slice(&octets.to_be_bytes());
        data.extend_from_slice(&999u32.to_be_bytes());
        if name.len() < 255 {
            data.push(name.len() as u8);
        } else {
            data.push(255);
            data.extend_from_slice(&(name.len() as u16).to_be_bytes());
        }
        data.extend_from_slice(name);
        data.extend_from_slice(&1_795_946_400_000u64.to_be_bytes());
        data.extend_from_slice(&1_795_946_405_500u64.to_be_bytes());
        data.extend_from_slice(&[10, 0, 0, 1]);
        data.extend_from_slice(&[10, 0, 0, 2]);
    }
    let packet = ipfix(3, 1_795_946_410, &[set(2, &tb), set(400, &data)]);
    let mut d = Decoder::new(Limits::default());
    let (s, got) = decode(&mut d, A, &packet);
    assert_eq!(s.error, None);
    assert_eq!(s.version, Some(Version::Ipfix));
    assert_eq!(got.records.len(), 2);
    assert_eq!(got.records[0].bytes, 1500);
    assert_eq!(got.records[1].bytes, 40);
    for r in &got.records {
        assert_eq!(r.start_ms, 1_795_946_400_000);
        assert_eq!(r.end_ms, 1_795_946_405_500);
        assert_eq!(r.dst, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)));
    }
    assert!(matches!(&got.changes[..], [TemplateChange::Learned(t)] if t.fields.len() == 7));
}

#[test]
fn two_exporters_with_one_template_id_keep_their_own_layouts() {
    let mut d = Decoder::new(Limits::default());
    // A: octets then packets; B: packets then octets. Same id 256, same domain.
    decode(
        &mut d,
        A,
        &v9(0, 100, 0, &[set(0, &template_body(256, &[(1, 4), (2, 4)]))]),
    );
    decode(
        &mut d,
        B,
        &v9(0, 100, 0, &[set(0, &template_body(256, &[(2, 4), (1, 4)]))]),
    );
    let data = v9(0, 100, 0, &[set(256, &[0, 0, 0, 100, 0, 0, 0, 7])]);
    let (_, a) = decode(&mut d, A, &data);
    let (_, b) = decode(&mut d, B, &data);
    assert_eq!((a.records[0].bytes, a.records[0].packets), (100, 7));
    assert_eq!((b.records[0].bytes, b.records[0].packets), (7, 100));
    // And a different observation domain of A is a different scope.
    let (s, c) = decode(&mut d, A, &v9(1, 100, 0, &[set(256, &[0; 8])]));
    assert_eq!((s.unknown_template_sets, c.records.len()), (1, 0));
}

#[test]
fn data_before_its_template_is_counted_not_guessed_and_decodes_once_it_arrives() {
    let mut d = Decoder::new(Limits::default());
    let data = set(300, &[0, 0, 5, 220, 0, 0, 0, 1]);
    let (s, c) = decode(&mut d, A, &v9(0, 100, 0, std::slice::from_ref(&data)));
    assert_eq!(
        (s.unknown_template_sets, s.records, c.records.len()),
        (1, 0, 0)
    );
    assert_eq!(s.error, None);
    let tmpl = set(0, &template_body(300, &[(1, 4), (2, 4)]));
    let (s, c) = decode(&mut d, A, &v9(0, 100, 0, &[tmpl, data]));
    assert_eq!((s.unknown_template_sets, s.records), (0, 1));
    assert_eq!(c.records[0].bytes, 1500);
}

#[test]
fn an_exporter_restart_with_a_new_layout_replaces_the_template() {
    let mut d = Decoder::new(Limits::default());
    let (_, c) = decode(
        &mut d,
        A,
        &v9(0, 100, 0, &[set(0, &template_body(256, &[(1, 4)]))]),
    );
    assert_eq!(c.changes.len(), 1);
    // The same template again (a refresh) is not a change.
    let (_, c) = decode(
        &mut d,
        A,
        &v9(0, 100, 0, &[set(0, &template_body(256, &[(1, 4)]))]),
    );
    assert!(c.changes.is_empty());
    // After the restart: sequence from 1 again, octets now 8 bytes wide.
    let tmpl = set(0, &template_body(256, &[(2, 4), (1, 8)]));
    let data = set(256, &[0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 1, 0]);
    let (s, c) = decode(&mut d, A, &v9(0, 5, 0, &[tmpl, data]));
    assert_eq!(c.changes.len(), 1);
    assert_eq!(
        (s.records, c.records[0].packets, c.records[0].bytes),
        (1, 3, 256)
    );
    assert_eq!(d.template_count(), 1);
}

#[test]
fn ipfix_withdrawal_forgets_the_template() {
    let mut d = Decoder::new(Limits::default());
    decode(
        &mut d,
        A,
        &ipfix(0, 100, &[set(2, &template_body(256, &[(1, 4)]))]),
    );
    assert_eq!(d.template_count(), 1);
    let (_, c) = decode(&mut d, A, &ipfix(0, 100, &[set(2, &[1, 0, 0, 0])]));
    assert_eq!(d.template_count(), 0);
    assert!(matches!(&c.changes[..], [TemplateChange::Withdrawn(k)] if k.id == 256));
}

#[test]
fn template_caches_are_bounded_per_exporter_and_in_total() {
    let mut d = Decoder::new(Limits {
        per_exporter: 3,
        total: 4,
    });
    for id in 256..262u16 {
        decode(
            &mut d,
            A,
            &v9(0, 1, 0, &[set(0, &template_body(id, &[(1, 4)]))]),
        );
    }
    assert_eq!(d.template_count(), 3);
    let (s, _) = decode(
        &mut d,
        B,
        &v9(0, 1, 0, &[set(0, &template_body(256, &[(1, 4)]))]),
    );
    assert_eq!(s.error, None);
    let (s, _) = decode(
        &mut d,
        B,
        &v9(0, 1, 0, &[set(0, &template_body(257, &[(1, 4)]))]),
    );
    assert_eq!(s.error, Some(DecodeError::TemplateLimit));
    assert_eq!(d.template_count(), 4);
}

#[test]
fn malformed_datagrams_are_named_by_reason() {
    let mut d = Decoder::new(Limits::default());
    let reason = |d: &mut Decoder, p: &[u8]| decode(d, A, p).0.error;
    assert_eq!(reason(&mut d, &[]), Some(DecodeError::Empty));
    assert_eq!(reason(&mut d, &[0]), Some(DecodeError::Truncated));
    assert_eq!(
        reason(&mut d, &[0, 7, 0, 0]),
        Some(DecodeError::UnknownVersion)
    );
    assert_eq!(
        reason(&mut d, &[0, 9, 0, 1, 0]),
        Some(DecodeError::Truncated)
    );
    // v5 announcing more records than it carries, or none.
    let r = v5_record([1; 4], [2; 4], 1, 1, 0, 0);
    let mut p = v5(1, 1, 0, &[r]);
    p[3] = 2;
    assert_eq!(reason(&mut d, &p), Some(DecodeError::Truncated));
    p[3] = 0;
    assert_eq!(reason(&mut d, &p), Some(DecodeError::BadLength));
    // A set shorter than its own header; a set running past the end.
    assert_eq!(
        reason(&mut d, &v9(0, 1, 0, &[vec![1, 0, 0, 2]])),
        Some(DecodeError::BadLength)
    );
    let mut long = v9(0, 1, 0, &[set(0, &template_body(256, &[(1, 4)]))]);
    long.truncate(long.len() - 2);
    assert_eq!(reason(&mut d, &long), Some(DecodeError::Truncated));
    // IPFIX whose header length exceeds the datagram (oversized claim).
    let mut p = ipfix(0, 1, &[set(2, &template_body(256, &[(1, 4)]))]);
    p[2] = 0xff;
    assert_eq!(reason(&mut d, &p), Some(DecodeError::Truncated));
    // A template with a zero-length record.
    assert_eq!(
        reason(
            &mut d,
            &v9(0, 1, 0, &[set(0, &template_body(256, &[(1, 0)]))])
        ),
        Some(DecodeError::BadTemplate)
    );
}

#[test]
fn v5_times_follow_uptime_even_across_its_wrap() {
    let mut d = Decoder::new(Limits::default());
    // Uptime wrapped: the flow started 2 s before the wrap, ended 1 s after it.
    let uptime = 5_000u32;
    let r = v5_record(
        [10, 0, 0, 1],
        [10, 0, 0, 2],
        3000,
        2,
        u32::MAX - 1_999,
        1_000,
    );
    let (_, c) = decode(&mut d, A, &v5(1_795_946_400, uptime, 0, &[r]));
    let export = 1_795_946_400_000i64;
    assert_eq!(c.records[0].end_ms, export - 4_000);
    assert_eq!(c.records[0].start_ms, export - 7_000);
    assert_eq!((c.records[0].input, c.records[0].output), (3, 4));
    assert_eq!((c.records[0].protocol, c.records[0].tcp_flags), (6, 0x1b));
}

// ---------------------------------------------------------------------------------------------
// Sampling, aggregation and the collector.

fn lab_config(extra: &str) -> Config {
    let text = format!(
        "[netflow]\nenabled = true\nexporters = [\"edge-r1\", \"10.99.0.0/16\"]\n{extra}\n\
         [[device]]\nname = \"edge-r1\"\naddress = \"192.0.2.10\"\nrole = \"router\"\n\
         [[device.interface]]\nif-index = 3\nspeed-mbps = 1\n\
         [[device]]\nname = \"other\"\naddress = \"192.0.2.11\"\nrole = \"router\"\n"
    );
    noctua::config::parse("test.toml", &text, std::path::Path::new(".")).unwrap()
}

fn run(collector: &mut Collector, datagrams: &[(IpAddr, Vec<u8>, i64)], end: i64) -> Vec<Sample> {
    let mut out = Vec::new();
    for (from, d, at) in datagrams {
        collector.flush(*at, &mut |s| out.push(s));
        collector.datagram(*from, d, *at);
    }
    collector.flush(end, &mut |s| out.push(s));
    out
}

fn value(samples: &[Sample], object: &str, metric: Metric) -> Vec<(i64, f64)> {
    samples
        .iter()
        .filter(|s| s.series.object == object && s.series.metric == metric)
        .map(|s| (s.at.as_millis(), s.value))
        .collect()
}

const T: u32 = 1_795_946_400; // a multiple of 10 s
/// End of the 10 s interval [`one_lab_record`]'s flow falls in, in ms.
const LAB_END: i64 = (T as i64 + 20) * 1000;

/// One v5 record through `c`: 1,250 bytes, 10.0.0.1 → 10.0.0.2, in on ifIndex 3 and out on 4,
/// `sampling` in the header, exported at T+10 and flushed long after.
fn one_lab_record(c: &mut Collector, sampling: u16) -> Vec<Sample> {
    let r = v5_record([10, 0, 0, 1], [10, 0, 0, 2], 1_250, 1, 60_000, 60_000);
    let packet = v5(T + 10, 60_000, sampling, &[r]);
    run(
        c,
        &[(A, packet, i64::from(T + 10) * 1000)],
        i64::from(T + 200) * 1000,
    )
}

#[test]
fn v5_header_sampling_and_config_override_scale_bytes() {
    let metrics = Arc::new(Metrics::new());
    // 1 in 100 in the header: 1,250 bytes over 10 s → 100 kbit/s → 10 % of 1 Mbit/s.
    let mut c = Collector::new(&lab_config(""), metrics.clone());
    let s = one_lab_record(&mut c, 0x4000 | 100);
    assert_eq!(
        value(&s, "ifIndex=3", Metric::BitsInPerSec),
        [(LAB_END, 100_000.0)]
    );
    assert_eq!(
        value(&s, "ifIndex=3", Metric::UtilisationInPct),
        [(LAB_END, 10.0)]
    );
    assert_eq!(
        value(&s, "ifIndex=4", Metric::PacketsOutPerSec),
        [(LAB_END, 10.0)]
    );
    // ifIndex 4 has no configured speed: rates only.
    assert!(value(&s, "ifIndex=4", Metric::UtilisationOutPct).is_empty());
    // An override in config wins over the header.
    let mut c = Collector::new(&lab_config("[netflow.sampling]\nedge-r1 = 10"), metrics);
    let s = one_lab_record(&mut c, 0x4000 | 100);
    assert_eq!(
        value(&s, "ifIndex=3", Metric::BitsInPerSec),
        [(LAB_END, 10_000.0)]
    );
}

#[test]
fn v9_sampling_from_options_data_and_per_sampler() {
    let metrics = Arc::new(Metrics::new());
    let mut c = Collector::new(&lab_config(""), metrics);
    // Options template 257: scope system (1, 4 bytes), samplingInterval (34, 4).
    let mut ot = Vec::new();
    ot.extend_from_slice(&257u16.to_be_bytes());
    ot.extend_from_slice(&4u16.to_be_bytes()); // scope length in bytes
    ot.extend_from_slice(&4u16.to_be_bytes()); // option length in bytes
    ot.extend_from_slice(&[0, 1, 0, 4, 0, 34, 0, 4]);
    let od = set(257, &[0, 0, 0, 0, 0, 0, 0, 50]);
    let tmpl = set(
        0,
        &template_body(256, &[(1, 4), (2, 4), (10, 2), (22, 4), (21, 4)]),
    );
    let mut data = Vec::new();
    data.extend_from_slice(&125u32.to_be_bytes());
    data.extend_from_slice(&1u32.to_be_bytes());
    data.extend_from_slice(&3u16.to_be_bytes());
    data.extend_from_slice(&5_000u32.to_be_bytes());
    data.extend_from_slice(&5_000u32.to_be_bytes());
    let packet = v9(0, T + 10, 5_000, &[set(1, &ot), od, tmpl, set(256, &data)]);
    let s = run(
        &mut c,
        &[(A, packet, i64::from(T + 10) * 1000)],
        i64::from(T + 200) * 1000,
    );
    // 125 bytes × 50 = 6,250 bytes in 10 s = 5 kbit/s.
    assert_eq!(
        value(&s, "ifIndex=3", Metric::BitsInPerSec),
        [(i64::from(T + 20) * 1000, 5_000.0)]
    );
}

#[test]
fn long_flows_spread_over_their_intervals_and_totals_are_kept() {
    let exporter = Exporter {
        name: "r".into(),
        speeds: Default::default(),
        sampling: None,
    };
    let mut agg = Aggregator::new(vec![exporter], 10_000, 60_000);
    let t0 = i64::from(T) * 1000;
    let record = |start: i64, end: i64, bytes: u64| FlowRecord {
        bytes,
        packets: bytes / 100,
        protocol: 17,
        tcp_flags: 0,
        src: A,
        dst: B,
        src_port: 1,
        dst_port: 2,
        input: 1,
        output: 2,
        start_ms: start,
        end_ms: end,
        sampling: 1,
    };
    // A 45 s flow from t0+5 s to t0+50 s: 5 s in the first interval, 10 s in each of four more.
    agg.add(0, &record(t0 + 5_000, t0 + 50_000, 45_000), t0 + 50_000);
    let mut out = Vec::new();
    agg.flush(t0 + 200_000, &mut |s| out.push(s));
    let bits: Vec<(i64, f64)> = value(&out, "ifIndex=1", Metric::BitsInPerSec)
        .into_iter()
        .map(|(t, v)| ((t - t0) / 1000, v))
        .collect();
    assert_eq!(
        bits,
        [
            (10, 4_000.0),
            (20, 8_000.0),
            (30, 8_000.0),
            (40, 8_000.0),
            (50, 8_000.0)
        ]
    );
    assert_eq!(agg.refused().late, 0);
    // After emission, a record for an emitted interval is late; one far ahead is refused.
    agg.add(0, &record(t0 + 1_000, t0 + 2_000, 500), t0 + 200_000);
    agg.add(0, &record(t0 + 900_000, t0 + 900_000, 500), t0 + 200_000);
    assert_eq!((agg.refused().late, agg.refused().future), (1, 1));
}

proptest! {
    /// Bytes are conserved through spreading: the interval totals add up to what came in.
    #[test]
    fn spreading_conserves_bytes(
        flows in proptest::collection::vec((0i64..600_000, 0i64..300_000, 1u64..10_000_000), 1..40),
    ) {
        let exporter = Exporter { name: "r".into(), speeds: Default::default(), sampling: None };
        let mut agg = Aggregator::new(vec![exporter], 10_000, 3_600_000);
        let t0 = i64::from(T) * 1000;
        let mut total = 0u64;
        for (start, len, bytes) in &flows {
            total += bytes;
            let r = FlowRecord {
                bytes: *bytes, packets: 1, protocol: 6, tcp_flags: 0x10, src: A, dst: B,
                src_port: 1, dst_port: 2, input: 1, output: 2,
                start_ms: t0 + start, end_ms: t0 + start + len, sampling: 1,
            };
            agg.add(0, &r, t0 + 900_000);
        }
        let mut out = Vec::new();
        agg.finish(&mut |s| out.push(s));
        let sum: f64 = value(&out, "device", Metric::BitsPerSec).iter().map(|(_, v)| v / 8.0 * 10.0).sum();
        prop_assert!((sum - total as f64).abs() < 1e-6 * total as f64 + 1.0, "{} vs {}", sum, total);
    }
}

#[test]
fn unknown_exporters_are_dropped_and_cidr_exporters_are_named_by_address_counted_as_other() {
    let metrics = Arc::new(Metrics::new());
    let mut c = Collector::new(&lab_config(""), metrics.clone());
    let r = v5_record([10, 0, 0, 1], [10, 0, 0, 2], 100, 1, 1_000, 1_000);
    let p = v5(T + 10, 1_000, 0, &[r]);
    let now = i64::from(T + 10) * 1000;
    // 192.0.2.11 is a device but not listed in netflow.exporters.
    c.datagram(B, &p, now);
    c.datagram(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 1)), &p, now);
    c.datagram(IpAddr::V4(Ipv4Addr::new(10, 99, 1, 2)), &p, now);
    let dropped = metrics
        .netflow_dropped
        .with_label_values(&["unknown_exporter"])
        .get();
    assert_eq!(dropped, 2);
    assert_eq!(
        metrics
            .netflow_records
            .with_label_values(&["other", "5"])
            .get(),
        1
    );
    let mut out = Vec::new();
    c.finish(&mut |s| out.push(s));
    assert!(out.iter().all(|s| s.series.device == "10.99.1.2"));
}

#[test]
fn templates_survive_a_restart_through_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let config = lab_config("");
    let tmpl = set(0, &template_body(256, &[(1, 4), (2, 4), (10, 2)]));
    let data = set(256, &[0, 0, 4, 0, 0, 0, 0, 4, 0, 3]);
    {
        let store = Store::open(dir.path()).unwrap();
        let mut c = Collector::new(&config, Arc::new(Metrics::new()));
        c.datagram(A, &v9(0, T, 0, &[tmpl]), i64::from(T) * 1000);
        persist(&store, c.take_template_changes());
        store.flush().unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    let metrics = Arc::new(Metrics::new());
    let mut c = Collector::new(&config, metrics.clone());
    assert_eq!(c.restore(stored_templates(&store), i64::from(T) * 1000), 1);
    // The first packet after the restart carries data only, and decodes.
    c.datagram(A, &v9(0, T, 0, &[data]), i64::from(T) * 1000);
    assert_eq!(
        metrics
            .netflow_records
            .with_label_values(&["edge-r1", "9"])
            .get(),
        1
    );
    assert_eq!(
        metrics.netflow_octets.with_label_values(&["edge-r1"]).get(),
        1024
    );
    assert_eq!(metrics.netflow_unknown_template_sets.get(), 0);
}

#[test]
fn speeds_learned_by_the_poller_give_utilisation_where_the_config_has_none() {
    let (speeds, learned) = tokio::sync::watch::channel(InterfaceSpeeds::default());
    speeds.send_modify(|s| s.set("edge-r1", [(4, 2_000_000), (3, 999)].into_iter().collect()));
    let mut c = Collector::new(&lab_config(""), Arc::new(Metrics::new()));
    c.learn_speeds(learned);
    let s = one_lab_record(&mut c, 0);
    // ifIndex 4 (output): 1 kbit/s of 2 Mbit/s from SNMP; ifIndex 3 keeps its configured 1 Mbit/s.
    assert_eq!(
        value(&s, "ifIndex=4", Metric::UtilisationOutPct),
        [(LAB_END, 0.05)]
    );
    assert_eq!(
        value(&s, "ifIndex=3", Metric::UtilisationInPct),
        [(LAB_END, 0.1)]
    );
}

/// Four v9 templates announced from `from` (ids 256..260).
fn four_templates() -> Vec<u8> {
    let sets: Vec<Vec<u8>> = (256..260)
        .map(|id| set(0, &template_body(id, &[(1, 4), (2, 4), (10, 2)])))
        .collect();
    v9(0, T, 0, &sets)
}

#[test]
fn spoofed_cidr_exporters_cannot_take_a_devices_room_grow_metrics_or_reach_the_store() {
    let metrics = Arc::new(Metrics::new());
    let config = lab_config("max-templates = 64\nmax-templates-per-exporter = 8\n");
    let mut c = Collector::new(&config, metrics.clone());
    let now = i64::from(T) * 1000;
    // 5,000 spoofed sources in the allowed /16, four templates each: far past the shared
    // room (64) and the pool of tracked exporters.
    let flood = four_templates();
    for i in 0..5_000u32 {
        let spoofed = IpAddr::V4(Ipv4Addr::new(10, 99, (i >> 8) as u8, i as u8));
        c.datagram(spoofed, &flood, now + i64::from(i));
    }
    assert!(
        metrics.netflow_templates.get() <= 64,
        "{}",
        metrics.netflow_templates.get()
    );
    assert!(metrics.netflow_exporters_evicted.get() > 0);
    assert!(
        c.take_template_changes().is_empty(),
        "templates of sources heard for a moment must not be stored"
    );

    // The configured exporter still learns and decodes everything.
    let tmpl = set(0, &template_body(300, &[(1, 4), (2, 4), (10, 2)]));
    c.datagram(A, &v9(0, T, 0, &[tmpl]), now + 10_000);
    for _ in 0..100 {
        let data = set(300, &[0, 0, 4, 0, 0, 0, 0, 4, 0, 3]);
        c.datagram(A, &v9(0, T, 0, &[data]), now + 10_001);
    }
    let records = |exporter: &str| {
        metrics
            .netflow_records
            .with_label_values(&[exporter, "9"])
            .get()
    };
    assert_eq!(records("edge-r1"), 100);
    assert!(
        metrics
            .netflow_dropped
            .with_label_values(&["template_limit"])
            .get()
            > 0
    );
    // Its template is stored; nothing of the flood is.
    let changes = c.take_template_changes();
    assert_eq!(changes.len(), 1, "{changes:?}");
    // A newly allowed CIDR exporter is taken in (the least recently heard spoofer makes room).
    let newcomer = IpAddr::V4(Ipv4Addr::new(10, 99, 250, 1));
    let r = v5_record([10, 0, 0, 1], [10, 0, 0, 2], 100, 1, 1_000, 1_000);
    c.datagram(newcomer, &v5(T + 10, 1_000, 0, &[r]), now + 20_000);
    assert_eq!(
        metrics
            .netflow_records
            .with_label_values(&["other", "5"])
            .get(),
        1
    );

    // /metrics names the configured exporter and `other`, nothing else.
    let text = metrics.render();
    let exporters: std::collections::BTreeSet<&str> = text
        .lines()
        .filter(|l| l.starts_with("noctua_netflow_"))
        .filter_map(|l| l.split("exporter=\"").nth(1)?.split('"').next())
        .collect();
    assert_eq!(
        exporters.into_iter().collect::<Vec<_>>(),
        ["edge-r1", "other"]
    );
}

#[test]
fn a_cidr_exporter_heard_for_a_while_has_its_templates_stored() {
    let mut c = Collector::new(&lab_config(""), Arc::new(Metrics::new()));
    let real = IpAddr::V4(Ipv4Addr::new(10, 99, 1, 7));
    let now = i64::from(T) * 1000;
    c.datagram(real, &four_templates(), now);
    assert!(c.take_template_changes().is_empty());
    let established = now + noctua::ingest::netflow::ESTABLISHED.as_millis() as i64;
    c.datagram(real, &v9(0, T, 0, &[]), established);
    let stored = c.take_template_changes();
    assert_eq!(stored.len(), 4, "{stored:?}");
    // From now on its changes are stored as they come.
    let fifth = set(0, &template_body(270, &[(1, 4)]));
    c.datagram(real, &v9(0, T, 0, &[fifth]), established + 1);
    assert_eq!(c.take_template_changes().len(), 1);
}

#[test]
fn every_datagram_received_is_accepted_or_dropped_once() {
    let metrics = Arc::new(Metrics::new());
    let mut c = Collector::new(&lab_config(""), metrics.clone());
    let now = i64::from(T) * 1000;
    let r = v5_record([10, 0, 0, 1], [10, 0, 0, 2], 100, 1, 1_000, 1_000);
    let good_v5 = v5(T + 10, 1_000, 0, &[r]);
    let unknown_set = v9(0, T, 0, &[set(999, &[0; 10])]);
    let truncated = good_v5[..30].to_vec();
    let stranger = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9));
    let sent: Vec<(IpAddr, Vec<u8>)> = [
        vec![(A, good_v5.clone()); 7],
        vec![(A, unknown_set.clone()); 5], // accepted: the sets are counted on their own
        vec![(A, truncated); 3],
        vec![(A, vec![0, 42, 0, 0]); 2], // unknown version
        vec![(A, Vec::new()); 1],
        vec![(stranger, good_v5); 4],
    ]
    .concat();
    for (from, d) in &sent {
        c.datagram(*from, d, now);
    }
    let accepted: u64 = ["5", "9", "10"]
        .iter()
        .map(|v| {
            metrics
                .netflow_datagrams
                .with_label_values(&["edge-r1", v])
                .get()
        })
        .sum();
    let dropped: u64 = noctua::telemetry::FlowDrop::ALL
        .iter()
        .map(|r| metrics.flow_drop(*r).get())
        .sum();
    assert_eq!(metrics.netflow_received.get(), sent.len() as u64);
    assert_eq!(
        accepted + dropped,
        sent.len() as u64,
        "accepted {accepted}, dropped {dropped}"
    );
    assert_eq!(accepted, 12);
    assert_eq!(
        metrics
            .flow_drop(noctua::telemetry::FlowDrop::Truncated)
            .get(),
        3
    );
    assert_eq!(
        metrics
            .flow_drop(noctua::telemetry::FlowDrop::UnknownExporter)
            .get(),
        4
    );
    assert_eq!(metrics.netflow_unknown_template_sets.get(), 5);
}

// ---------------------------------------------------------------------------------------------
// Differential: noctua's template plans against netflow_parser's full decoder.

/// What both decoders must agree on per flow record: octets, packets, input and output
/// ifIndex, and the flow's duration (start and end are relative to the exporter's uptime in
/// v5, v9 and this IPFIX, so the duration is what both can state alike).
type Agreed = (u64, u64, u32, u32, i64);

/// A field's number, through the library's wrappers (`{"DataNumber": {"U32": 80}}`,
/// durations as milliseconds).
fn number(v: &serde_json::Value) -> Option<i64> {
    match v {
        serde_json::Value::Number(n) => n.as_i64(),
        serde_json::Value::Object(o) => match (o.get("secs"), o.get("nanos")) {
            (Some(s), Some(n)) => Some(s.as_i64()? * 1000 + n.as_i64()? / 1_000_000),
            _ if o.len() == 1 => number(o.values().next()?),
            _ => None,
        },
        _ => None,
    }
}

/// The flow records netflow_parser finds in `datagrams` (from one exporter, in order).
fn library_records(datagrams: &[noctua::ingest::pcap::Datagram]) -> Vec<Agreed> {
    use noctua::ingest::netflow::inspect::{Export, decode, records};
    let exports: Vec<Export<'_>> = datagrams
        .iter()
        .map(|d| Export {
            at_ms: d.at_ms,
            src: d.src,
            payload: &d.payload,
        })
        .collect();
    let mut out = Vec::new();
    for (_, _, v) in decode(&exports, None) {
        assert!(v.get("error").is_none(), "netflow_parser: {v}");
        for p in v["packets"].as_array().unwrap() {
            for r in records(p) {
                let get = |names: &[&str]| {
                    r.iter()
                        .find(|(k, _)| names.contains(&k.as_str()))
                        .and_then(|(_, v)| number(v))
                };
                let n =
                    |names: &[&str]| get(names).unwrap_or_else(|| panic!("no {names:?} in {r:?}"));
                out.push((
                    n(&["InBytes", "OctetDeltaCount", "d_octets"]) as u64,
                    n(&["InPkts", "PacketDeltaCount", "d_pkts"]) as u64,
                    n(&["InputSnmp", "IngressInterface", "input"]) as u32,
                    n(&["OutputSnmp", "EgressInterface", "output"]) as u32,
                    n(&["LastSwitched", "FlowEndSysUpTime", "last"])
                        - n(&["FirstSwitched", "FlowStartSysUpTime", "first"]),
                ));
            }
        }
    }
    out.sort_unstable();
    out
}

/// The same through noctua's decoder.
fn noctua_records(datagrams: &[noctua::ingest::pcap::Datagram]) -> Vec<Agreed> {
    let mut d = Decoder::new(Limits::default());
    let mut out: Vec<Agreed> = datagrams
        .iter()
        .flat_map(|g| decode(&mut d, g.src, &g.payload).1.records)
        .map(|r| (r.bytes, r.packets, r.input, r.output, r.end_ms - r.start_ms))
        .collect();
    out.sort_unstable();
    out
}

/// Every fixture decodes to the same records, octets, packets, ifIndexes and durations with
/// both decoders: the fast path drops nothing the full decoder sees.
#[test]
fn the_fast_decoder_agrees_with_netflow_parser_on_every_fixture() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/flows");
    let mut captures: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap"))
        .collect();
    captures.sort();
    assert_eq!(captures.len(), 9, "{captures:?}");
    for capture in captures {
        let (datagrams, _) = noctua::ingest::pcap::read(&capture, &[2055, 4739, 9995]).unwrap();
        assert!(!datagrams.is_empty(), "{}", capture.display());
        let (ours, theirs) = (noctua_records(&datagrams), library_records(&datagrams));
        assert!(ours.len() > 1000, "{}: {}", capture.display(), ours.len());
        assert_eq!(ours.len(), theirs.len(), "{}", capture.display());
        assert!(ours == theirs, "{}: the records differ", capture.display());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(100))]

    /// Random valid v9 datagrams (any field order and width) decode alike with both decoders.
    #[test]
    fn random_v9_datagrams_decode_alike_with_both_decoders(
        flows in proptest::collection::vec(flow(), 1..20),
        order in Just((0..14usize).collect::<Vec<_>>()).prop_shuffle(),
        wide in any::<bool>(),
        uptime in 3_600_000u32..u32::MAX,
    ) {
        let packet = v9_datagram(&flows, &order, wide, 1_795_946_400, uptime, &[]);
        let datagrams = [noctua::ingest::pcap::Datagram { at_ms: 0, src: A, dst_port: 2055, payload: packet }];
        prop_assert_eq!(noctua_records(&datagrams), library_records(&datagrams));
    }
}
