//! NetFlow/IPFIX decode + aggregate on one core: the softflowd fixtures (v9, IPFIX), a 20-field
//! v9 template with 21 records per datagram, and a 1,000-exporter mix. Throughput is in data
//! records. Run with `cargo bench --bench netflow`; the README records the figures.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::Arc;

/// The same allocator as the `noctua` binary, so the figures are the daemon's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use noctua::config::{Config, parse};
use noctua::ingest::netflow::Collector;
use noctua::ingest::netflow::decode::{Decoder, FlowRecord, Limits, Sink, TemplateChange};
use noctua::northbound::metrics::Metrics;

fn config(text: &str) -> Config {
    parse("bench.toml", text, Path::new(".")).unwrap()
}

/// Counts records so a datagram's record count is known for the throughput figure.
struct Count(u64);

impl Sink for Count {
    fn record(&mut self, _: &FlowRecord) {
        self.0 += 1;
    }
    fn template(&mut self, _: TemplateChange) {}
}

fn records_in(datagrams: &[(IpAddr, Vec<u8>, i64)]) -> u64 {
    let mut d = Decoder::new(Limits::default());
    let mut c = Count(0);
    for (from, p, _) in datagrams {
        d.decode(*from, p, &mut c);
    }
    c.0
}

/// Decode + aggregate every datagram into a fresh collector (so no record is refused as late
/// on a second pass), then emit every interval: the whole per-record cost the daemon pays.
fn run(c: &mut Criterion, name: &str, config: &Config, datagrams: &[(IpAddr, Vec<u8>, i64)]) {
    let records = records_in(datagrams);
    let mut g = c.benchmark_group("netflow");
    g.throughput(Throughput::Elements(records));
    g.bench_function(name, |b| {
        b.iter_batched(
            || Collector::new(config, Arc::new(Metrics::new())),
            |mut collector| {
                for (from, p, at) in datagrams {
                    collector.flush(*at, &mut |s| {
                        black_box(s);
                    });
                    collector.datagram(*from, black_box(p), *at);
                }
                collector.finish(&mut |s| {
                    black_box(s);
                });
                collector
            },
            BatchSize::LargeInput,
        );
    });
    g.finish();
}

/// A fixture's datagrams with their capture times, which are the clock (as in a replay).
fn fixture(name: &str) -> Vec<(IpAddr, Vec<u8>, i64)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/flows")
        .join(name);
    let (datagrams, _) = noctua::ingest::pcap::read(&path, &[2055, 4739]).unwrap();
    datagrams
        .into_iter()
        .map(|d| (d.src, d.payload, d.at_ms))
        .collect()
}

fn fixtures(c: &mut Criterion) {
    let lab = config(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/flows/lab.toml"),
        )
        .unwrap(),
    );
    for (name, file) in [
        ("fixture_synflood_v9", "synflood-v9.pcap"),
        ("fixture_synflood_ipfix", "synflood-v10.pcap"),
    ] {
        run(c, name, &lab, &fixture(file));
    }
}

const T: u32 = 1_795_946_400;

/// A 20-field v9 template (the usual router export) and one datagram of 21 records.
fn twenty_field_datagram(domain: u32, template_id: u16, with_template: bool, seed: u32) -> Vec<u8> {
    let fields: [(u16, u16); 20] = [
        (8, 4),   // src addr
        (12, 4),  // dst addr
        (15, 4),  // next hop
        (10, 4),  // input
        (14, 4),  // output
        (2, 4),   // packets
        (1, 4),   // octets
        (22, 4),  // first switched
        (21, 4),  // last switched
        (7, 2),   // src port
        (11, 2),  // dst port
        (6, 1),   // tcp flags
        (4, 1),   // protocol
        (5, 1),   // tos
        (16, 4),  // src as
        (17, 4),  // dst as
        (9, 1),   // src mask
        (13, 1),  // dst mask
        (61, 1),  // direction
        (136, 1), // flow end reason
    ];
    let record_len: usize = fields.iter().map(|f| usize::from(f.1)).sum();
    let mut sets = Vec::new();
    if with_template {
        let mut t = Vec::new();
        t.extend_from_slice(&0u16.to_be_bytes());
        t.extend_from_slice(&((4 + 4 + fields.len() * 4) as u16).to_be_bytes());
        t.extend_from_slice(&template_id.to_be_bytes());
        t.extend_from_slice(&(fields.len() as u16).to_be_bytes());
        for (ie, len) in fields {
            t.extend_from_slice(&ie.to_be_bytes());
            t.extend_from_slice(&len.to_be_bytes());
        }
        sets.push(t);
    }
    let mut d = Vec::new();
    d.extend_from_slice(&template_id.to_be_bytes());
    d.extend_from_slice(&((4 + 21 * record_len) as u16).to_be_bytes());
    for i in 0..21u32 {
        let x = seed.wrapping_mul(2_654_435_761).wrapping_add(i * 40_503);
        for (ie, len) in fields {
            let v: u32 = match ie {
                8 => 0x0a02_0000 | (x & 0xffff),
                12 => 0x0a09_0000 | ((x >> 16) & 0xff),
                10 => 1 + (x % 4),
                14 => 5 + (x % 4),
                2 => 1 + (x % 40),
                1 => 64 + (x % 60_000),
                22 => 50_000 - (x % 9_000),
                21 => 50_000,
                4 => 6,
                6 => 0x18,
                _ => x,
            };
            d.extend_from_slice(&v.to_be_bytes()[4 - usize::from(len)..]);
        }
    }
    sets.push(d);
    let mut p = Vec::new();
    p.extend_from_slice(&9u16.to_be_bytes());
    p.extend_from_slice(&(21u16 + u16::from(with_template)).to_be_bytes());
    p.extend_from_slice(&50_000u32.to_be_bytes());
    p.extend_from_slice(&T.to_be_bytes());
    p.extend_from_slice(&seed.to_be_bytes());
    p.extend_from_slice(&domain.to_be_bytes());
    for s in sets {
        p.extend_from_slice(&s);
    }
    p
}

fn synthetic(c: &mut Criterion) {
    let now = i64::from(T) * 1000;
    let one = config(
        "[netflow]\nexporters = [\"r1\"]\n[[device]]\nname = \"r1\"\naddress = \"192.0.2.1\"\nrole = \"router\"\n\
         [[device.interface]]\nif-index = 1\nspeed-mbps = 10000\n",
    );
    let from = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    // The template once, then 64 data-only datagrams (different records), as on the wire.
    let mut datagrams = vec![(from, twenty_field_datagram(0, 256, true, 0), now)];
    datagrams.extend((1..=64).map(|s| (from, twenty_field_datagram(0, 256, false, s), now)));
    run(c, "v9_20_fields_21_per_datagram", &one, &datagrams);

    // 1,000 exporters allowed by CIDR, each with its own template and domain.
    let many = config("[netflow]\nexporters = [\"10.128.0.0/16\"]\n");
    let exporters: Vec<IpAddr> = (0..1_000u32)
        .map(|i| IpAddr::V4(Ipv4Addr::from(0x0a80_0000 + i)))
        .collect();
    let mut mix: Vec<(IpAddr, Vec<u8>, i64)> = exporters
        .iter()
        .enumerate()
        .map(|(i, &a)| {
            (
                a,
                twenty_field_datagram(i as u32, 256 + (i % 7) as u16, true, i as u32),
                now,
            )
        })
        .collect();
    // 20 datagrams (420 records) per exporter in the interval: at 3M records/s a 10 s interval
    // holds far more, so this still overstates what emitting the samples costs per record.
    for round in 1..20u32 {
        mix.extend(exporters.iter().enumerate().map(|(i, &a)| {
            let d = twenty_field_datagram(
                i as u32,
                256 + (i % 7) as u16,
                false,
                round * 7_919 + i as u32,
            );
            (a, d, now)
        }));
    }
    run(c, "mix_1000_exporters", &many, &mix);
}

criterion_group!(benches, fixtures, synthetic);
criterion_main!(benches);
