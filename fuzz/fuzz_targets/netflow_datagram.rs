//! The NetFlow datagram handler on arbitrary bytes: decode, template learning and aggregation
//! must never panic. The first two bytes pick the exporter (so template scopes interact) and
//! the rest is one datagram; state carries over between inputs like a long-running collector.
#![no_main]

use std::cell::RefCell;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use noctua::ingest::netflow::Collector;
use noctua::telemetry::Metrics;

thread_local! {
    static COLLECTOR: RefCell<Collector> = RefCell::new({
        let config = noctua::config::parse(
            "fuzz.toml",
            "[netflow]\nexporters = [\"10.0.0.0/24\"]\nmax-templates-per-exporter = 64\nmax-templates = 256\n",
            Path::new("."),
        )
        .unwrap();
        Collector::new(&config, Arc::new(Metrics::new()))
    });
}

fuzz_target!(|data: &[u8]| {
    let Some((&[who, when], datagram)) = data.split_first_chunk::<2>() else {
        return;
    };
    let from = IpAddr::V4(Ipv4Addr::new(10, 0, 0, who % 4));
    let now = 1_795_946_400_000 + i64::from(when) * 1_000;
    COLLECTOR.with_borrow_mut(|c| {
        c.datagram(from, datagram, now);
        c.flush(now, &mut |_| {});
        let _ = c.take_template_changes();
    });
});
