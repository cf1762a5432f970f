//! NetFlow/IPFIX decode + aggregate on one core: the softflowd fixtures (v9, IPFIX), a 20-field
//! v9 template with 21 records per datagram, and a 1,000-exporter mix. Throughput is in data
//! records. Run with `cargo bench --bench netflow`; the README records the figures.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test or bench reports

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
use noctua::telemetry::Metrics;

#[path = "support/v9.rs"]
mod v9;
use v9::{T, twenty_field_datagram};

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
