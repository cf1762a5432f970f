//! Replicated alarm state: every transition this member commits for a device it owns goes, in
//! journal order through a cursor of its own (the outbox pattern again), first into the
//! device's record in the `noctua_alarms` bucket (its active alarms, with the owner's epoch,
//! written by compare-and-set, so a stale owner is refused), then onto the `NOCTUA_TRANSITIONS`
//! stream (subject `noctua.transitions.<device>`, de-duplicated by message id
//! `<member>-<sequence>`). At least once: after a crash the tail after the cursor goes again,
//! the record ignores what it already holds, and the stream drops repeats within its
//! de-duplication window (two minutes).
//!
//! The same task follows the whole bucket, so every member has the fleet-wide view
//! ([`FleetAlarms`]) for the API.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::context::PublishAckFuture;
use async_nats::jetstream::{self, kv, stream};
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

use super::membership::Owners;
use super::{bucket, device_key, next_entry};
use crate::cluster::{DeviceAlarms, FleetAlarms, Ownership};
use crate::config::ClusterConfig;
use crate::model::{Alarm, AlarmEvent, AlarmId, FaultId, FaultRecord, TransitionKind};
use crate::store::{Store, Tree};
use crate::telemetry::Metrics;

/// The devices' records, one key per device ([`device_key`]).
pub const ALARMS: &str = "noctua_alarms";
/// Every replicated transition.
pub const TRANSITIONS: &str = "NOCTUA_TRANSITIONS";
/// How long the stream keeps a transition (each member's own journal keeps its history).
const TRANSITIONS_KEPT: Duration = Duration::from_secs(7 * 86_400);
/// Meta key of the replication cursor: the sequence through which this member's transitions
/// are replicated (or were not its to replicate).
const CURSOR_KEY: &[u8] = b"fleet_cursor";
/// Transitions read from the journal at once.
const BATCH: usize = 256;
/// How long an adopted alarm waits for its device to be published as owned.
const ADOPTED_WAIT: Duration = Duration::from_secs(1);
/// How often the journal is looked at without a wake-up from the bus, and the view rebuilt.
const EVERY: Duration = Duration::from_millis(100);

/// What the replicator works with.
pub struct Replicator {
    /// This member's name.
    pub me: String,
    /// The store whose journal it follows.
    pub store: Store,
    /// What this member owns, with epochs.
    pub ownership: watch::Receiver<Arc<Ownership>>,
    /// Every claimed device's owner, as membership last said.
    pub owners: watch::Receiver<Arc<Owners>>,
    /// Wakes it when transitions are committed.
    pub events: broadcast::Receiver<crate::model::AlarmEvent>,
    /// Where the fleet-wide view goes.
    pub fleet: watch::Sender<Arc<FleetAlarms>>,
}

/// Replicates and follows the fleet until `cancel`.
pub async fn run(
    client: async_nats::Client,
    c: ClusterConfig,
    r: Replicator,
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
) {
    let mut js = jetstream::new(client);
    js.set_timeout(c.dead_after);
    let alarms = loop {
        match open(&js, &c).await {
            Ok(a) => break a,
            Err(e) => tracing::warn!(error = %e, "cannot open the replicated alarm state yet"),
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(c.heartbeat) => {}
        }
    };
    let Replicator {
        me,
        store,
        ownership,
        owners,
        events,
        fleet,
    } = r;
    let writer = Writer {
        me: &me,
        js: &js,
        alarms: &alarms,
        ownership: &ownership,
        owners: &owners,
        fleet: &fleet,
        metrics: &metrics,
    };
    tokio::join!(
        writer.run(&store, events, &cancel),
        follow(&alarms, &fleet, &cancel)
    );
}

async fn open(js: &jetstream::Context, c: &ClusterConfig) -> Result<kv::Store, String> {
    let alarms = bucket(js, ALARMS, Duration::ZERO, c.replicas)
        .await
        .map_err(|e| e.to_string())?;
    js.get_or_create_stream(stream::Config {
        name: TRANSITIONS.to_owned(),
        subjects: vec!["noctua.transitions.>".to_owned()],
        num_replicas: c.replicas,
        max_age: TRANSITIONS_KEPT,
        ..Default::default()
    })
    .await
    .map_err(|e| e.to_string())?;
    Ok(alarms)
}

/// What the writer remembers between transitions.
#[derive(Default)]
struct Records {
    /// Each device's record as last read or written here, with its revision.
    devices: HashMap<String, (DeviceAlarms, Option<u64>)>,
    /// The open fault of each active alarm whose fault has another id (it reopened).
    faults: HashMap<AlarmId, FaultId>,
    /// The epoch each owned device's record was last written afresh at.
    epochs: HashMap<String, u64>,
}

/// The open fault of `e`'s alarm as the store has it now (none once cleared: a later
/// transition of the journal may be on disk already, and the record follows it soon).
fn open_fault(
    store: &Store,
    e: &AlarmEvent,
    hints: &mut HashMap<AlarmId, FaultId>,
) -> Result<Option<FaultRecord>, Later> {
    let id = e.alarm.alarm_id;
    if e.alarm.is_cleared() {
        hints.remove(&id);
        return Ok(None);
    }
    let fault = store
        .open_fault_of(id, hints.get(&id).copied())
        .map_err(|e| e.to_string())?;
    if let Some(f) = &fault
        && f.id.0 != id.0
    {
        hints.insert(id, f.id);
    }
    Ok(fault)
}

struct Writer<'a> {
    me: &'a str,
    js: &'a jetstream::Context,
    alarms: &'a kv::Store,
    ownership: &'a watch::Receiver<Arc<Ownership>>,
    owners: &'a watch::Receiver<Arc<Owners>>,
    /// The fleet-wide view, which says which devices have a record anywhere.
    fleet: &'a watch::Sender<Arc<FleetAlarms>>,
    metrics: &'a Metrics,
}

/// Why a transition could not be replicated now (it is tried again from the cursor).
type Later = String;

impl Writer<'_> {
    async fn run(
        &self,
        store: &Store,
        mut events: broadcast::Receiver<AlarmEvent>,
        cancel: &CancellationToken,
    ) {
        let mut cursor = match store.get::<u64>(Tree::Meta, CURSOR_KEY) {
            Ok(c) => c.unwrap_or(0),
            Err(e) => {
                tracing::error!(error = %e, "cannot read the replication cursor; not replicating");
                return;
            }
        };
        let mut records = Records::default();
        let mut tick = tokio::time::interval(EVERY);
        // Until membership's first round nothing is known to be owned: the backlog waits.
        let mut ownership = self.ownership.clone();
        tokio::select! {
            () = cancel.cancelled() => return,
            changed = ownership.changed() => if changed.is_err() {
                return;
            },
        }
        loop {
            if let Err(why) = self.rebuild(store, &mut records).await {
                tracing::warn!(error = %why, "cannot write the records of devices won yet; trying again");
            }
            'drain: loop {
                let batch = match store.durable_history_after(cursor, BATCH) {
                    Ok(b) => b,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot read the journal to replicate");
                        break;
                    }
                };
                let Some(last) = batch.last().map(|e| e.seq) else {
                    break;
                };
                let mut acks = Vec::with_capacity(batch.len());
                let mut failed = None;
                for e in &batch {
                    match self.replicate(e, store, &mut records).await {
                        Ok(ack) => acks.push((e.seq, ack)),
                        Err(why) => {
                            failed = Some((e.seq, why));
                            break;
                        }
                    }
                }
                // The stream's acks, awaited once per batch (the publishes went out in order):
                // the cursor moves past what the stream has acknowledged, in order.
                let mut through = cursor;
                for (seq, ack) in acks {
                    if let Some(ack) = ack
                        && let Err(e) = ack.await
                    {
                        failed = Some((seq, e.to_string()));
                        break;
                    }
                    through = seq;
                }
                self.save(store, through, &mut cursor);
                if let Some((seq, why)) = failed {
                    tracing::warn!(seq, error = %why, "replication paused; trying again");
                    break 'drain;
                }
                if last < cursor || batch.len() < BATCH {
                    break;
                }
            }
            tokio::select! {
                () = cancel.cancelled() => return,
                _ = events.recv() => {}
                _ = tick.tick() => {}
                changed = ownership.changed() => if changed.is_err() {
                    return;
                },
            }
        }
    }

    /// Moves the cursor (not flushed: a replay after a crash is harmless).
    fn save(&self, store: &Store, through: u64, cursor: &mut u64) {
        if through > *cursor {
            match store.put(Tree::Meta, CURSOR_KEY, &through) {
                Ok(_) => *cursor = through,
                Err(e) => tracing::error!(error = %e, "cannot move the replication cursor"),
            }
        }
    }

    async fn replicate(
        &self,
        e: &AlarmEvent,
        store: &Store,
        records: &mut Records,
    ) -> Result<Option<PublishAckFuture>, Later> {
        // The device's new owner carries the alarm on from the record as it stands.
        if e.kind == TransitionKind::HandedOver {
            records.faults.remove(&e.alarm.alarm_id);
            return Ok(None);
        }
        let device = &e.alarm.device;
        let mut epoch = self.ownership.borrow().epoch(device);
        if epoch.is_none() && e.kind == TransitionKind::Adopted {
            // Adopted a moment before membership said the device is owned (it tells the alarm
            // stage first).
            let mut ownership = self.ownership.clone();
            let owned = ownership.wait_for(|o| o.owns(device));
            let _ = tokio::time::timeout(ADOPTED_WAIT, owned).await;
            epoch = self.ownership.borrow().epoch(device);
        }
        let Some(epoch) = epoch else {
            // Still claimed by this member, which is cut off or rejoining: it goes once the
            // device is claimed again. Another member's, or no one's: not ours to replicate.
            if self
                .owners
                .borrow()
                .get(device)
                .is_some_and(|o| o == self.me)
            {
                return Err(format!("{device} is not claimed again yet"));
            }
            self.metrics.cluster_not_replicated.inc();
            return Ok(None);
        };
        let fault = open_fault(store, e, &mut records.faults)?;
        let change = |r: &mut DeviceAlarms| r.apply(self.me, epoch, e, fault.as_ref());
        self.write(device, epoch, records, change).await?;
        let ack = self.publish(&device_key(device), epoch, e).await?;
        self.metrics.cluster_replicated.inc();
        Ok(Some(ack))
    }

    /// Writes `device`'s record as `change` makes it (false: nothing to write), by
    /// compare-and-set at `epoch`; refused, and counted, if a newer owner has written it.
    async fn write(
        &self,
        device: &str,
        epoch: u64,
        records: &mut Records,
        change: impl Fn(&mut DeviceAlarms) -> bool,
    ) -> Result<(), Later> {
        let key = device_key(device);
        let (mut record, mut revision) = match records.devices.get(&key) {
            Some(r) => r.clone(),
            None => self.read(&key).await?,
        };
        for _ in 0..3 {
            if !record.may_write(self.me, epoch) {
                // A newer owner wrote it: ours is stale, and membership stops us on its claim.
                self.metrics.cluster_refused_writes.inc();
                tracing::warn!(device = %device, owner = %record.owner, epoch = record.epoch, our_epoch = epoch, "a newer owner holds the device's alarms: not replicating");
                return Ok(());
            }
            let mut next = record.clone();
            if !change(&mut next) {
                return Ok(());
            }
            let body = serde_json::to_vec(&next).map_err(|e| e.to_string())?;
            let written = match revision {
                Some(r) => self
                    .alarms
                    .update(&key, body.into(), r)
                    .await
                    .map_err(|e| e.to_string()),
                None => self
                    .alarms
                    .create(&key, body.into())
                    .await
                    .map_err(|e| e.to_string()),
            };
            match written {
                Ok(r) => {
                    records.devices.insert(key, (next, Some(r)));
                    return Ok(());
                }
                // Written meanwhile (by a new owner, or our own retry): read it and decide
                // again. Unchanged, it was not a conflict (a leader being elected, a timeout).
                Err(why) => {
                    let (now, at) = self.read(&key).await?;
                    if at == revision {
                        return Err(why);
                    }
                    (record, revision) = (now, at);
                }
            }
        }
        Err(format!("the record of {device} kept changing under us"))
    }

    /// Writes afresh, from the store, the record of each device owned at an epoch not yet
    /// written here whose record is this member's own (or none): a device claimed again
    /// after a restart. The store has every transition this member committed, so the record
    /// then holds the device's alarms as they are here, whatever the journal's tail before
    /// the cursor missed (a crash, or ownership not yet known); what comes after `through`
    /// follows as before. A device with no alarms here and none in the fleet view needs no
    /// write.
    async fn rebuild(&self, store: &Store, records: &mut Records) -> Result<(), Later> {
        let owned = self.ownership.borrow().clone();
        let Ownership::Owned(owned) = &*owned else {
            return Ok(());
        };
        let due: Vec<(&String, u64)> = owned
            .iter()
            .filter(|(d, e)| records.epochs.get(*d) != Some(*e))
            .map(|(d, e)| (d, *e))
            .collect();
        if due.is_empty() {
            return Ok(());
        }
        // What `through` says is in the record, read before the alarms: a transition that
        // lands between the two is applied again after, which changes nothing.
        let through = store.last_seq().map_err(|e| e.to_string())?;
        let mut here: HashMap<&str, Vec<Alarm>> = HashMap::new();
        let active: Vec<Alarm> = store.scan(Tree::ActiveAlarms).map_err(|e| e.to_string())?;
        for a in &active {
            if owned.contains_key(&a.device) {
                here.entry(a.device.as_str()).or_default().push(a.clone());
            }
        }
        let fleet = self.fleet.borrow().clone();
        for (device, epoch) in due {
            let alarms = here.remove(device.as_str()).unwrap_or_default();
            if !alarms.is_empty() || fleet.contains_key(device) {
                let mut faults = Vec::new();
                for a in &alarms {
                    let hint = records.faults.get(&a.alarm_id).copied();
                    let fault = store
                        .open_fault_of(a.alarm_id, hint)
                        .map_err(|e| e.to_string())?;
                    faults.extend(fault);
                }
                let fresh = DeviceAlarms {
                    device: device.clone(),
                    owner: self.me.to_owned(),
                    epoch,
                    through,
                    alarms,
                    faults,
                };
                self.write(device, epoch, records, |r| {
                    // Another member's record: what this member took from it comes as
                    // adopted transitions, and what it left here goes unreplicated.
                    let theirs = !r.owner.is_empty() && r.owner != self.me;
                    if !theirs {
                        *r = fresh.clone();
                    }
                    !theirs
                })
                .await?;
            }
            records.epochs.insert(device.clone(), epoch);
        }
        Ok(())
    }

    async fn read(&self, key: &str) -> Result<(DeviceAlarms, Option<u64>), Later> {
        match self.alarms.entry(key).await.map_err(|e| e.to_string())? {
            Some(e) if e.operation == kv::Operation::Put => {
                let record = serde_json::from_slice(&e.value).map_err(|e| e.to_string())?;
                Ok((record, Some(e.revision)))
            }
            Some(e) => Ok((DeviceAlarms::default(), Some(e.revision))),
            None => Ok((DeviceAlarms::default(), None)),
        }
    }

    /// Sends `e` to the stream; its ack is waited for with the rest of the batch.
    async fn publish(
        &self,
        key: &str,
        epoch: u64,
        e: &AlarmEvent,
    ) -> Result<PublishAckFuture, Later> {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", format!("{}-{}", self.me, e.seq).as_str());
        headers.insert("Noctua-Epoch", epoch.to_string().as_str());
        let body = serde_json::to_vec(e).map_err(|e| e.to_string())?;
        self.js
            .publish_with_headers(format!("noctua.transitions.{key}"), headers, body.into())
            .await
            .map_err(|e| e.to_string())
    }
}

/// Follows every device's record into the fleet-wide view, rebuilt at most every [`EVERY`].
async fn follow(
    alarms: &kv::Store,
    fleet: &watch::Sender<Arc<FleetAlarms>>,
    cancel: &CancellationToken,
) {
    let mut view = FleetAlarms::new();
    let mut watch: Option<kv::Watch> = None;
    let (mut dirty, mut at) = (false, Instant::now());
    let mut tick = tokio::time::interval(EVERY);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            next = next_entry(&mut watch) => match next {
                Some(Ok(e)) => {
                    if e.operation == kv::Operation::Put
                        && let Ok(r) = serde_json::from_slice::<DeviceAlarms>(&e.value)
                    {
                        match r.alarms.is_empty() {
                            true => view.remove(&r.device),
                            false => view.insert(r.device.clone(), r),
                        };
                        dirty = true;
                    }
                }
                Some(Err(_)) | None => watch = None,
            },
            _ = tick.tick() => {
                if watch.is_none() {
                    watch = alarms.watch_with_history(">").await.ok();
                }
            }
        }
        if dirty && at.elapsed() >= EVERY {
            fleet.send_replace(Arc::new(view.clone()));
            (dirty, at) = (false, Instant::now());
        }
    }
}
