//! NetFlow v5/v9/IPFIX collector: one task owns the UDP sockets, the decoder (templates) and the
//! aggregator outright, so nothing is locked per datagram. Each wake-up drains every datagram
//! waiting on a socket before yielding (receive in batches); once a second, intervals that are
//! complete are emitted as samples, and the template changes of that second go to a writer
//! task as one batch (never a store write on the receive path). Stored templates are read back
//! at start, so the first data packet after a restart decodes.
//!
//! Exporters are of two kinds. Configured devices (and listed addresses) are *reserved*: their
//! templates have room of their own and their metrics their own `exporter` label. Exporters
//! allowed only by a CIDR share a bounded *pool*: the least recently heard is evicted for a
//! new one, they share one `exporter="other"` label, and their templates are stored only once
//! they have been heard for [`ESTABLISHED`], so a flood of spoofed sources can neither take a
//! configured device's room, nor grow /metrics, nor survive a restart.
//!
//! Accounting: every datagram read counts in `noctua_netflow_received_datagrams_total`, then
//! exactly once as accepted (`noctua_netflow_datagrams_total`, decoded to its end) or dropped
//! (`noctua_netflow_dropped_total{reason}`). Within accepted datagrams, data sets of unknown
//! templates and records refused by aggregation have counters of their own.
//!
//! The same [`Collector`] drives `noctua replay` of captured exports, with the packets' capture
//! time as the clock.

pub mod aggregate;
pub mod decode;
pub mod inspect;
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
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::config::{Config, NetflowConfig};
use crate::ingest::{SampleSink, socket};
use crate::message::InterfaceSpeeds;
use crate::model::{Sample, Timestamp};
use crate::store::{Store, Tree};
use crate::telemetry::{FlowDrop, FlowRefusal, Metrics};
use aggregate::{Aggregator, Exporter};
use decode::{Decoder, FlowRecord, Limits, TemplateChange, TemplateDef, TemplateKey, Version};

/// Exporters allowed by CIDR only, tracked at once under their address.
const POOL: usize = 4_096;
/// How long a pool exporter must have been heard before its templates are stored.
pub const ESTABLISHED: Duration = Duration::from_secs(300);
/// The `exporter` label of every pool exporter.
const OTHER: &str = "other";
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

/// A pool exporter: its aggregator index, and when it was first and last heard.
struct Pooled {
    index: u32,
    first_ms: i64,
    last_ms: i64,
    /// Whether its templates go to the store (heard for [`ESTABLISHED`]).
    stored: bool,
}

/// Decoder, aggregator and allowlist: everything between a datagram and a sample, with time
/// passed in.
pub struct Collector {
    decoder: Decoder,
    aggregator: Aggregator,
    /// Reserved exporters by address.
    by_addr: HashMap<IpAddr, u32>,
    pool: HashMap<IpAddr, Pooled>,
    nets: Vec<ipnet::IpNet>,
    sampling: HashMap<String, u32>,
    metrics: Arc<Metrics>,
    /// Counters of reserved exporters by index; pool exporters share `other`.
    counters: Vec<ExporterCounters>,
    other: ExporterCounters,
    /// Records refused as late and as future, resolved once like the exporters' counters.
    refused: [IntCounter; 2],
    /// Template changes to store, newest per key, taken once a second.
    pending: HashMap<TemplateKey, Option<TemplateDef>>,
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
            pool: HashMap::new(),
            nets: nf
                .exporters
                .iter()
                .filter_map(|e| e.parse::<ipnet::IpNet>().ok())
                .collect(),
            sampling: nf.sampling.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            other: ExporterCounters::new(&metrics, OTHER),
            metrics,
            counters: Vec::new(),
            refused,
            pending: HashMap::new(),
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
            collector.add_reserved(d.address, d.name.clone(), speeds);
        }
        for e in &nf.exporters {
            if let Ok(addr) = e.parse::<IpAddr>()
                && !collector.by_addr.contains_key(&addr)
            {
                collector.add_reserved(addr, addr.to_string(), HashMap::new());
            }
        }
        collector
    }

    fn exporter(&self, addr: IpAddr, name: String, speeds: HashMap<u32, u64>) -> Exporter {
        let sampling = self
            .sampling
            .get(&name)
            .or_else(|| self.sampling.get(&addr.to_string()))
            .copied();
        Exporter {
            name,
            speeds,
            sampling,
        }
    }

    fn add_reserved(&mut self, addr: IpAddr, name: String, speeds: HashMap<u32, u64>) {
        self.counters
            .push(ExporterCounters::new(&self.metrics, &name));
        let exporter = self.exporter(addr, name, speeds);
        let index = self.aggregator.add_exporter(exporter);
        self.decoder.reserve(addr);
        self.by_addr.insert(addr, index);
    }

    /// The pool exporter at `addr`, taken in (evicting the least recently heard when the pool
    /// is full) if new; `None` if no CIDR allows it.
    fn pooled(&mut self, addr: IpAddr, now_ms: i64) -> Option<u32> {
        if let Some(p) = self.pool.get_mut(&addr) {
            p.last_ms = now_ms;
            if !p.stored && now_ms - p.first_ms >= ESTABLISHED.as_millis() as i64 {
                // Heard long enough to be real: what it announced so far is stored now.
                p.stored = true;
                for def in self.decoder.templates_of(addr) {
                    self.pending.insert(def.key, Some(def));
                }
            }
            return Some(p.index);
        }
        if !self.nets.iter().any(|n| n.contains(&addr)) {
            return None;
        }
        let exporter = self.exporter(addr, addr.to_string(), HashMap::new());
        let index = if self.pool.len() < POOL {
            self.aggregator.add_exporter(exporter)
        } else {
            // A scan of the pool, paid only by a newcomer to a full pool (a flood of spoofed
            // sources); known exporters never get here.
            let oldest = self
                .pool
                .iter()
                .min_by_key(|(_, p)| p.last_ms)
                .map(|(a, _)| *a)?;
            let evicted = self.pool.remove(&oldest)?;
            for key in self.decoder.forget_exporter(oldest) {
                if evicted.stored {
                    self.pending.insert(key, None);
                }
            }
            self.aggregator.replace_exporter(evicted.index, exporter);
            self.metrics.netflow_exporters_evicted.inc();
            let n = self.metrics.netflow_exporters_evicted.get();
            // Powers of two: a flood of spoofed sources logs a handful of lines, not one each.
            if n.is_power_of_two() {
                tracing::warn!(evicted = %oldest, newcomer = %addr, evictions = n, pool = POOL,
                    "NetFlow: the pool of exporters allowed by CIDR is full; the least recently heard makes room (spoofed sources?)");
            }
            evicted.index
        };
        self.pool.insert(
            addr,
            Pooled {
                index,
                first_ms: now_ms,
                last_ms: now_ms,
                stored: false,
            },
        );
        Some(index)
    }

    /// Uses the SNMP poller's interface speeds for interfaces the config gives none.
    pub fn learn_speeds(&mut self, speeds: watch::Receiver<InterfaceSpeeds>) {
        self.aggregator.learn_speeds(speeds);
    }

    /// Takes templates kept from an earlier run; returns how many were usable. A pool
    /// exporter's templates were stored because it was established, so it comes back as such.
    pub fn restore(&mut self, defs: impl IntoIterator<Item = TemplateDef>, now_ms: i64) -> usize {
        let mut n = 0;
        for def in defs {
            let addr = def.key.exporter;
            if !self.by_addr.contains_key(&addr) {
                match self.pooled(addr, now_ms) {
                    Some(_) => {
                        if let Some(p) = self.pool.get_mut(&addr) {
                            p.stored = true;
                        }
                    }
                    // No longer allowed: leave it out (and out of the store next time).
                    None => {
                        self.pending.insert(def.key, None);
                        continue;
                    }
                }
            }
            n += usize::from(self.decoder.restore(def).is_ok());
        }
        self.metrics
            .netflow_templates
            .set(self.decoder.template_count() as i64);
        n
    }

    /// Template changes to store since the last call, one per template (the newest).
    pub fn take_template_changes(&mut self) -> Vec<TemplateChange> {
        self.pending
            .drain()
            .map(|(key, def)| match def {
                Some(def) => TemplateChange::Learned(def),
                None => TemplateChange::Withdrawn(key),
            })
            .collect()
    }

    /// Gives back changes the writer could not take yet; newer ones for a key win.
    pub fn requeue_template_changes(&mut self, changes: Vec<TemplateChange>) {
        for change in changes {
            let (key, def) = match change {
                TemplateChange::Learned(def) => (def.key, Some(def)),
                TemplateChange::Withdrawn(key) => (key, None),
            };
            self.pending.entry(key).or_insert(def);
        }
    }

    /// Handles one datagram from `from`, heard at `now_ms`.
    pub fn datagram(&mut self, from: IpAddr, data: &[u8], now_ms: i64) {
        self.metrics.netflow_received.inc();
        let from = from.to_canonical();
        let (exporter, store_changes) = match self.by_addr.get(&from) {
            Some(&i) => (i, true),
            None => match self.pooled(from, now_ms) {
                Some(i) => (i, self.pool.get(&from).is_some_and(|p| p.stored)),
                None => {
                    self.metrics.flow_drop(FlowDrop::UnknownExporter).inc();
                    return;
                }
            },
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
        let counters = self.counters.get(exporter as usize).unwrap_or(&self.other);
        // Records before an error were delivered, so they count whatever the datagram's fate.
        if let Some(v) = summary.version {
            let i = version_index(v);
            counters.records[i].inc_by(u64::from(summary.records));
            counters.octets.inc_by(octets);
            if summary.error.is_none() {
                counters.datagrams[i].inc();
            }
        }
        if let Some(e) = summary.error {
            self.metrics.flow_drop(e.reason()).inc();
        }
        if summary.unknown_template_sets > 0 {
            self.metrics
                .netflow_unknown_template_sets
                .inc_by(u64::from(summary.unknown_template_sets));
        }
        if let Some(end) = newest {
            self.metrics
                .netflow_lag
                .observe((now_ms - end).max(0) as f64 / 1000.0);
        }
        let refused = self.aggregator.refused();
        let late = refused.late - refused_before.late;
        self.refused[0].inc_by(late);
        self.refused[1].inc_by(refused.future - refused_before.future);
        // Powers of two of all late records so far: a replay of stale captures, or an exporter
        // whose active timeout exceeds `lateness`, says so a handful of times, not per record.
        if late > 0 && (refused_before.late + 1..=refused.late).any(u64::is_power_of_two) {
            tracing::warn!(
                exporter = self.aggregator.exporter_name(exporter),
                late_records = refused.late,
                behind = %humantime::format_duration(Duration::from_millis(
                    refused.last_late_by_ms.max(0) as u64 / 1000 * 1000
                )),
                "NetFlow records arrive after their interval was emitted (netflow.lateness); they \
                 are counted in noctua_netflow_records_refused_total and dropped"
            );
        }
        if !self.changes.is_empty() {
            self.metrics
                .netflow_templates
                .set(self.decoder.template_count() as i64);
            for change in self.changes.drain(..) {
                if store_changes {
                    match change {
                        TemplateChange::Learned(def) => self.pending.insert(def.key, Some(def)),
                        TemplateChange::Withdrawn(key) => self.pending.insert(key, None),
                    };
                }
            }
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

/// Binds every `netflow.listen` address with the configured receive buffer. The sockets are
/// registered with a runtime by [`run`], on the collector's own thread.
pub fn bind(config: &NetflowConfig) -> Result<Vec<std::net::UdpSocket>, (SocketAddr, io::Error)> {
    config
        .listen
        .iter()
        .map(|&addr| bind_one(addr, config.receive_buffer_bytes).map_err(|e| (addr, e)))
        .collect()
}

fn bind_one(addr: SocketAddr, receive_buffer: usize) -> io::Result<std::net::UdpSocket> {
    let domain = socket2::Domain::for_address(addr);
    let socket = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    if let Err(e) = socket.set_recv_buffer_size(receive_buffer) {
        tracing::warn!(%addr, error = %e, "cannot set the NetFlow receive buffer");
    }
    // Linux caps the buffer at net.core.rmem_max (and reports double what it grants); with
    // CAP_NET_ADMIN the cap can be passed.
    let granted = || socket.recv_buffer_size().unwrap_or(0);
    if granted() < receive_buffer
        && let Err(e) = socket::force_receive_buffer(&socket, receive_buffer)
    {
        tracing::warn!(
            %addr,
            asked = receive_buffer,
            granted = granted(),
            error = %e,
            "NetFlow receive buffer capped by net.core.rmem_max; raise it (or grant \
             CAP_NET_ADMIN) to absorb bursts"
        );
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// Stores template changes in one batch; a failure is logged, not fatal (the exporter will
/// announce the template again).
pub fn persist(store: &Store, changes: Vec<TemplateChange>) {
    let items = changes.iter().map(|change| match change {
        TemplateChange::Learned(def) => (def.key.store_key(), Some(def)),
        TemplateChange::Withdrawn(key) => (key.store_key(), None),
    });
    if let Err(e) = store.write_batch(Tree::Templates, items) {
        tracing::warn!(error = %e, templates = changes.len(), "cannot store NetFlow templates");
    }
}

/// Batches of template changes waiting for the writer; past it the collector keeps them
/// (newest per template) until the writer catches up.
const PERSIST_QUEUE: usize = 4;

/// The template writer: stores each batch off the receive path, until the collector goes.
async fn write_templates(store: Store, mut batches: mpsc::Receiver<Vec<TemplateChange>>) {
    while let Some(batch) = batches.recv().await {
        let store = store.clone();
        // Blocking: sled may write its log here. The receive loop never waits for it.
        let _ = tokio::task::spawn_blocking(move || persist(&store, batch)).await;
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

/// Hands the template changes of the last second to the writer, or keeps them if it is busy;
/// in a cluster, shares them too (a change kept for the writer is shared again with it, which
/// changes nothing).
fn hand_to_writer(
    collector: &mut Collector,
    writer: &mpsc::Sender<Vec<TemplateChange>>,
    share: Option<&TemplateShare>,
) {
    let changes = collector.take_template_changes();
    if changes.is_empty() {
        return;
    }
    if let Some(share) = share {
        let _ = share.learned.send(changes.clone());
    }
    if let Err(
        mpsc::error::TrySendError::Full(changes) | mpsc::error::TrySendError::Closed(changes),
    ) = writer.try_send(changes)
    {
        collector.requeue_template_changes(changes);
    }
}

/// In a cluster, the collector's end of the shared templates: what it learns goes out, what
/// the other members learned comes in.
pub struct TemplateShare {
    /// The template changes of each second, as they are also stored.
    pub learned: mpsc::UnboundedSender<Vec<TemplateChange>>,
    /// Other members' templates, taken as if kept from an earlier run.
    pub heard: mpsc::Receiver<Vec<TemplateDef>>,
}

/// The next batch of templates another member learned; never, outside a cluster.
async fn heard(share: &mut Option<TemplateShare>) -> Option<Vec<TemplateDef>> {
    match share {
        Some(s) => s.heard.recv().await,
        None => std::future::pending().await,
    }
}

/// What the kernel dropped on each socket before the collector read it (its buffer was full):
/// counted as dropped datagrams, so every datagram sent to the collector is either accepted or
/// counted somewhere.
struct KernelDrops(Vec<u64>);

impl KernelDrops {
    /// Starts from each socket's count now: drops before the collector ran are not its.
    fn new(sockets: &[UdpSocket]) -> Self {
        Self(
            sockets
                .iter()
                .map(|s| socket::kernel_drops(s).unwrap_or(0))
                .collect(),
        )
    }

    fn count(&mut self, sockets: &[UdpSocket], metrics: &Metrics) {
        for (seen, s) in self.0.iter_mut().zip(sockets) {
            // A kernel without the count (before 4.9) reads as no drops.
            if let Ok(now) = socket::kernel_drops(s) {
                metrics
                    .flow_drop(FlowDrop::SocketBuffer)
                    .inc_by(now.saturating_sub(*seen));
                *seen = now;
            }
        }
    }
}

/// The collector task: owns the sockets until `cancel`. Meant for a thread of its own (the
/// daemon's is `netflow`): at 50,000 datagrams a second a 4 MB socket buffer holds about 36 ms.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    config: Arc<Config>,
    sockets: Vec<std::net::UdpSocket>,
    store: Store,
    samples: SampleSink,
    metrics: Arc<Metrics>,
    speeds: watch::Receiver<InterfaceSpeeds>,
    mut share: Option<TemplateShare>,
    cancel: CancellationToken,
) {
    // Sockets belong to the runtime that registers them: this one.
    let sockets: Vec<UdpSocket> = sockets
        .into_iter()
        .filter_map(|s| {
            UdpSocket::from_std(s)
                .inspect_err(|e| tracing::error!(error = %e, "NetFlow socket lost"))
                .ok()
        })
        .collect();
    let mut collector = Collector::new(&config, metrics.clone());
    collector.learn_speeds(speeds);
    let restored = collector.restore(stored_templates(&store), Timestamp::now().as_millis());
    let (to_writer, batches) = mpsc::channel(PERSIST_QUEUE);
    let writer = tokio::spawn(write_templates(store, batches));
    tracing::info!(
        listen = ?config.netflow.listen,
        templates = restored,
        "NetFlow collector running"
    );
    let mut kernel_drops = KernelDrops::new(&sockets);
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
                hand_to_writer(&mut collector, &to_writer, share.as_ref());
                kernel_drops.count(&sockets, &metrics);
            }
            Some(defs) = heard(&mut share) => {
                collector.restore(defs, Timestamp::now().as_millis());
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
            }
        }
    }
    hand_to_writer(&mut collector, &to_writer, share.as_ref());
    drop(to_writer);
    // The last batch is written before the pipeline's final flush.
    let _ = writer.await;
    // Open intervals are incomplete; emitting them would show a false drop in traffic. They
    // are dropped, and the first intervals after a restart start fresh.
    tracing::info!("NetFlow collector stopped");
}
