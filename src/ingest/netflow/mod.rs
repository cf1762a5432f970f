//! NetFlow v5/v9/IPFIX collector: one task owns the UDP sockets, the decoder (templates) and the
//! aggregator outright, so nothing is locked per datagram. Each wake-up drains every datagram
//! waiting on a socket before yielding (receive in batches); once a second, intervals that are
//! complete are emitted as samples. Templates are written through to the store as they change
//! and read back at start, so the first data packet after a restart decodes.
//!
//! The same [`Collector`] drives `noctua replay` of captured exports, with the packets' capture
//! time as the clock.

pub mod aggregate;
pub mod decode;
pub mod sketch;

use std::collections::HashMap;
use std::future::poll_fn;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use prometheus::IntCounter;
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, NetflowConfig};
use crate::ingest::SampleSink;
use crate::message::InterfaceSpeeds;
use crate::model::{Sample, Timestamp};
use crate::store::{Store, Tree};
use crate::telemetry::{FlowDrop, FlowRefusal, Metrics};
use aggregate::{Aggregator, Exporter};
use decode::{Decoder, FlowRecord, Limits, TemplateChange, TemplateDef, Version};

/// Exporters allowed by CIDR that are not configured devices are tracked under their address,
/// up to this many.
const MAX_UNNAMED_EXPORTERS: usize = 4_096;
/// Datagrams taken from one socket before the task yields (so ticks and shutdown still run).
const BATCH: usize = 1_024;

/// Counter handles of one exporter, resolved once (label lookups hash; a datagram should not).
struct ExporterCounters {
    datagrams: [IntCounter; 3],
    records: [IntCounter; 3],
    octets: IntCounter,
}

impl ExporterCounters {
    fn new(metrics: &Metrics, name: &str) -> Self {
        let by_version = |c: &prometheus::IntCounterVec| {
            [Version::V5, Version::V9, Version::Ipfix]
                .map(|v| c.with_label_values(&[name, v.label()]))
        };
        Self {
            datagrams: by_version(&metrics.netflow_datagrams),
            records: by_version(&metrics.netflow_records),
            octets: metrics.netflow_octets.with_label_values(&[name]),
        }
    }
}

fn version_index(v: Version) -> usize {
    match v {
        Version::V5 => 0,
        Version::V9 => 1,
        Version::Ipfix => 2,
    }
}

/// Decoder, aggregator and allowlist: everything between a datagram and a sample, with time
/// passed in.
pub struct Collector {
    decoder: Decoder,
    aggregator: Aggregator,
    by_addr: HashMap<IpAddr, u32>,
    nets: Vec<ipnet::IpNet>,
    sampling: HashMap<String, u32>,
    metrics: Arc<Metrics>,
    counters: Vec<ExporterCounters>,
    /// Records refused as late and as future, resolved once like the exporters' counters.
    refused: [IntCounter; 2],
    changes: Vec<TemplateChange>,
}

impl Collector {
    /// A collector for the exporters `config` allows: the `netflow.exporters` entries (device
    /// names, addresses, CIDRs), or every configured device when that list is empty.
    pub fn new(config: &Config, metrics: Arc<Metrics>) -> Self {
        let nf = &config.netflow;
        let listed = |name: &str, addr: IpAddr| {
            nf.exporters.is_empty()
                || nf.exporters.iter().any(|e| {
                    e == name
                        || e.parse::<IpAddr>().is_ok_and(|a| a == addr)
                        || e.parse::<ipnet::IpNet>().is_ok_and(|n| n.contains(&addr))
                })
        };
        let refused = [FlowRefusal::Late, FlowRefusal::Future].map(|r| metrics.flow_refusal(r));
        let mut collector = Self {
            decoder: Decoder::new(Limits {
                per_exporter: nf.max_templates_per_exporter,
                total: nf.max_templates,
            }),
            aggregator: Aggregator::new(
                Vec::new(),
                nf.interval.as_millis() as i64,
                nf.lateness.as_millis() as i64,
            ),
            by_addr: HashMap::new(),
            nets: nf
                .exporters
                .iter()
                .filter_map(|e| e.parse::<ipnet::IpNet>().ok())
                .collect(),
            sampling: nf.sampling.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            metrics,
            counters: Vec::new(),
            refused,
            changes: Vec::new(),
        };
        for d in &config.devices {
            if !listed(&d.name, d.address) || collector.by_addr.contains_key(&d.address) {
                continue;
            }
            let speeds = d
                .interfaces
                .iter()
                .filter_map(|i| Some((i.if_index?, i.speed_mbps.saturating_mul(1_000_000))))
                .collect();
            collector.add_exporter(d.address, d.name.clone(), speeds);
        }
        for e in &nf.exporters {
            if let Ok(addr) = e.parse::<IpAddr>()
                && !collector.by_addr.contains_key(&addr)
            {
                collector.add_exporter(addr, addr.to_string(), HashMap::new());
            }
        }
        collector
    }

    fn add_exporter(&mut self, addr: IpAddr, name: String, speeds: HashMap<u32, u64>) -> u32 {
        let sampling = self
            .sampling
            .get(&name)
            .or_else(|| self.sampling.get(&addr.to_string()))
            .copied();
        let index = self.aggregator.add_exporter(Exporter {
            name: name.clone(),
            speeds,
            sampling,
        });
        self.counters
            .push(ExporterCounters::new(&self.metrics, &name));
        self.by_addr.insert(addr, index);
        index
    }

    /// Uses the SNMP poller's interface speeds for interfaces the config gives none.
    pub fn learn_speeds(&mut self, speeds: watch::Receiver<InterfaceSpeeds>) {
        self.aggregator.learn_speeds(speeds);
    }

    /// Takes templates kept from an earlier run; returns how many were usable.
    pub fn restore(&mut self, defs: impl IntoIterator<Item = TemplateDef>) -> usize {
        let n = defs
            .into_iter()
            .filter(|d| self.decoder.restore(d.clone()).is_ok())
            .count();
        self.metrics
            .netflow_templates
            .set(self.decoder.template_count() as i64);
        n
    }

    /// Template changes since the last call, for the store.
    pub fn take_template_changes(&mut self) -> Vec<TemplateChange> {
        std::mem::take(&mut self.changes)
    }

    fn drop_reason(&self, reason: FlowDrop) {
        self.metrics.flow_drop(reason).inc();
    }

    /// Handles one datagram from `from`, heard at `now_ms`.
    pub fn datagram(&mut self, from: IpAddr, data: &[u8], now_ms: i64) {
        let from = from.to_canonical();
        let exporter = match self.by_addr.get(&from) {
            Some(&i) => i,
            None if self.nets.iter().any(|n| n.contains(&from)) => {
                if self.by_addr.len() >= MAX_UNNAMED_EXPORTERS {
                    self.drop_reason(FlowDrop::ExporterLimit);
                    return;
                }
                self.add_exporter(from, from.to_string(), HashMap::new())
            }
            None => {
                self.drop_reason(FlowDrop::UnknownExporter);
                return;
            }
        };
        let refused_before = self.aggregator.refused();
        let mut sink = RecordSink {
            aggregator: &mut self.aggregator,
            exporter,
            now_ms,
            octets: 0,
            newest: None,
            changes: &mut self.changes,
        };
        let summary = self.decoder.decode(from, data, &mut sink);
        let (octets, newest) = (sink.octets, sink.newest);
        let counters = &self.counters[exporter as usize];
        if let Some(v) = summary.version {
            let i = version_index(v);
            counters.datagrams[i].inc();
            counters.records[i].inc_by(u64::from(summary.records));
            counters.octets.inc_by(octets);
        }
        if summary.unknown_template_sets > 0 {
            self.metrics
                .flow_drop(FlowDrop::UnknownTemplate)
                .inc_by(u64::from(summary.unknown_template_sets));
        }
        if let Some(e) = summary.error {
            self.drop_reason(e.reason());
        }
        if let Some(end) = newest {
            self.metrics
                .netflow_lag
                .observe((now_ms - end).max(0) as f64 / 1000.0);
        }
        let refused = self.aggregator.refused();
        self.refused[0].inc_by(refused.late - refused_before.late);
        self.refused[1].inc_by(refused.future - refused_before.future);
        if !self.changes.is_empty() {
            self.metrics
                .netflow_templates
                .set(self.decoder.template_count() as i64);
        }
    }

    /// Emits the intervals complete at `now_ms`.
    pub fn flush(&mut self, now_ms: i64, emit: &mut impl FnMut(Sample)) {
        self.aggregator.flush(now_ms, emit);
    }

    /// Emits every interval still open.
    pub fn finish(&mut self, emit: &mut impl FnMut(Sample)) {
        self.aggregator.finish(emit);
    }
}

struct RecordSink<'a> {
    aggregator: &'a mut Aggregator,
    exporter: u32,
    now_ms: i64,
    octets: u64,
    newest: Option<i64>,
    changes: &'a mut Vec<TemplateChange>,
}

impl decode::Sink for RecordSink<'_> {
    fn record(&mut self, record: &FlowRecord) {
        self.octets = self.octets.saturating_add(record.bytes);
        self.newest = Some(self.newest.map_or(record.end_ms, |n| n.max(record.end_ms)));
        self.aggregator.add(self.exporter, record, self.now_ms);
    }

    fn template(&mut self, change: TemplateChange) {
        self.changes.push(change);
    }
}

/// Binds every `netflow.listen` address with the configured receive buffer.
pub fn bind(config: &NetflowConfig) -> Result<Vec<UdpSocket>, (SocketAddr, io::Error)> {
    config
        .listen
        .iter()
        .map(|&addr| bind_one(addr, config.receive_buffer_bytes).map_err(|e| (addr, e)))
        .collect()
}

fn bind_one(addr: SocketAddr, receive_buffer: usize) -> io::Result<UdpSocket> {
    let domain = socket2::Domain::for_address(addr);
    let socket = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    if let Err(e) = socket.set_recv_buffer_size(receive_buffer) {
        tracing::warn!(%addr, error = %e, "cannot set the NetFlow receive buffer");
    }
    // Linux caps the buffer at net.core.rmem_max (and reports double what it grants).
    if let Ok(granted) = socket.recv_buffer_size()
        && granted < receive_buffer
    {
        tracing::warn!(
            %addr,
            asked = receive_buffer,
            granted,
            "NetFlow receive buffer capped by net.core.rmem_max; raise it to absorb bursts"
        );
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

/// Writes template changes through to the store; a failure is logged, not fatal (the exporter
/// will announce the template again).
pub fn persist(store: &Store, changes: Vec<TemplateChange>) {
    for change in changes {
        let result = match &change {
            TemplateChange::Learned(def) => store
                .put(Tree::Templates, &def.key.store_key(), def)
                .map(|_| ()),
            TemplateChange::Withdrawn(key) => {
                store.remove(Tree::Templates, &key.store_key()).map(|_| ())
            }
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "cannot store a NetFlow template");
        }
    }
}

/// Loads the templates kept by earlier runs.
pub fn stored_templates(store: &Store) -> Vec<TemplateDef> {
    match store.scan::<TemplateDef>(Tree::Templates) {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read stored NetFlow templates; starting without");
            Vec::new()
        }
    }
}

/// The collector task: owns the sockets until `cancel`.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    config: Arc<Config>,
    sockets: Vec<UdpSocket>,
    store: Store,
    samples: SampleSink,
    metrics: Arc<Metrics>,
    speeds: watch::Receiver<InterfaceSpeeds>,
    cancel: CancellationToken,
) {
    let mut collector = Collector::new(&config, metrics.clone());
    collector.learn_speeds(speeds);
    let restored = collector.restore(stored_templates(&store));
    tracing::info!(
        listen = ?config.netflow.listen,
        templates = restored,
        "NetFlow collector running"
    );
    let mut buf = vec![0u8; 65_536];
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut emit = |s: Sample| {
        samples.offer(s);
    };
    loop {
        tokio::select! {
            biased;
            _ = cancel.cancelled() => break,
            _ = tick.tick() => {
                collector.flush(Timestamp::now().as_millis(), &mut emit);
            }
            i = poll_fn(|cx| {
                for (i, s) in sockets.iter().enumerate() {
                    if s.poll_recv_ready(cx).is_ready() {
                        return Poll::Ready(i);
                    }
                }
                Poll::Pending
            }) => {
                let now = Timestamp::now().as_millis();
                for _ in 0..BATCH {
                    match sockets[i].try_recv_from(&mut buf) {
                        Ok((n, from)) => collector.datagram(from.ip(), &buf[..n], now),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => {
                            metrics.flow_drop(FlowDrop::ReceiveError).inc();
                            tracing::debug!(error = %e, "NetFlow receive error");
                            break;
                        }
                    }
                }
                persist(&store, collector.take_template_changes());
            }
        }
    }
    // Open intervals are incomplete; emitting them would show a false drop in traffic. They
    // are dropped, and the first intervals after a restart start fresh.
    tracing::info!("NetFlow collector stopped");
}
