//! Membership and ownership in NATS: each instance puts a heartbeat in the `noctua_members`
//! bucket; the live members are the heartbeats younger than `dead-after` by the server's own
//! clock (so members' clocks may differ); each device's owner is its rendezvous choice among
//! them ([`crate::cluster`]); and the `noctua_devices` bucket holds each device's [`Claim`],
//! changed only by compare-and-set on its revision. A claim written over a newer one is
//! refused by the server, so an instance that was paused or cut off cannot take back a device
//! another has taken: it sees the newer claim and stops working on the device.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, kv};
use futures_util::StreamExt;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::{FleetError, bucket, device_key, next_entry, replicate};
use crate::cluster::{Claim, DeviceAlarms, Member, Ownership, Step, owner_of, step};
use crate::config::{ClusterConfig, Config};
use crate::message::{AlarmInput, Handover, Taken};
use crate::telemetry::Metrics;

/// The heartbeats, one key per member.
pub const MEMBERS: &str = "noctua_members";
/// The claims, one key per device ([`device_key`]).
pub const DEVICES: &str = "noctua_devices";
/// Each member's rank, kept for good: its range of sequence numbers.
pub const RANKS: &str = "noctua_ranks";
/// The key in [`RANKS`] of the next rank to give out (a dot, which no member name has).
const NEXT_RANK: &str = "next.rank";
/// Sequence numbers in one member's range. Alarm and fault ids are sequence numbers, so
/// ranges keep them unique across the cluster and an alarm keeps its id on another member;
/// rank 0 is left to a single instance's history, so joining never clashes with it.
pub const RANK_SPAN: u64 = 1_000_000_000_000;

/// The buckets, opened (or made, with `[cluster] replicas` copies).
struct Buckets {
    members: kv::Store,
    devices: kv::Store,
    /// The devices' replicated alarms ([`replicate::ALARMS`]), read when a device is won.
    alarms: kv::Store,
    ranks: kv::Store,
}

impl Buckets {
    /// Opens the buckets on `client`, making them if this is the cluster's first start.
    async fn open(client: async_nats::Client, c: &ClusterConfig) -> Result<Self, FleetError> {
        let mut js = jetstream::new(client);
        // A request slower than `dead-after` is of no use: by then the answer is stale.
        js.set_timeout(c.dead_after);
        // Heartbeats expire by themselves: a dead member's key is gone after `dead-after`.
        let members = bucket(&js, MEMBERS, c.dead_after, c.replicas).await?;
        let devices = bucket(&js, DEVICES, Duration::ZERO, c.replicas).await?;
        let alarms = bucket(&js, replicate::ALARMS, Duration::ZERO, c.replicas).await?;
        let ranks = bucket(&js, RANKS, Duration::ZERO, c.replicas).await?;
        for (name, b) in [
            (MEMBERS, &members),
            (DEVICES, &devices),
            (replicate::ALARMS, &alarms),
            (RANKS, &ranks),
        ] {
            led(name, b).await?;
        }
        Ok(Self {
            members,
            devices,
            alarms,
            ranks,
        })
    }

    /// `me`'s rank: the one it was given at its first join, else the next free one, taken by
    /// compare-and-set so two members never get the same.
    async fn rank(&self, me: &str) -> Result<u64, FleetError> {
        let failed = |e: &dyn std::fmt::Display| FleetError::Bucket {
            bucket: RANKS,
            reason: e.to_string(),
        };
        let read = |e: Option<kv::Entry>| {
            e.filter(|e| e.operation == kv::Operation::Put)
                .and_then(|e| {
                    Some((
                        std::str::from_utf8(&e.value).ok()?.parse().ok()?,
                        e.revision,
                    ))
                })
        };
        for _ in 0..RANK_TRIES {
            if let Some((rank, _)) = read(self.ranks.entry(me).await.map_err(|e| failed(&e))?) {
                return Ok(rank);
            }
            let next = read(self.ranks.entry(NEXT_RANK).await.map_err(|e| failed(&e))?);
            let rank: u64 = next.map_or(1, |(n, _)| n);
            let body = (rank + 1).to_string().into_bytes();
            let moved = match next {
                Some((_, revision)) => self
                    .ranks
                    .update(NEXT_RANK, body.into(), revision)
                    .await
                    .is_ok(),
                None => self.ranks.create(NEXT_RANK, body.into()).await.is_ok(),
            };
            // Lost to another member's join: read again. A rank taken but then not kept
            // (a member of the same name won) is simply never used.
            if moved
                && self
                    .ranks
                    .create(me, rank.to_string().into_bytes().into())
                    .await
                    .is_ok()
            {
                return Ok(rank);
            }
        }
        Err(failed(&"too many members joining at once"))
    }
}

/// Rounds of [`Buckets::rank`] before a join is tried again later.
const RANK_TRIES: usize = 32;

/// Whether `bucket`'s stream has a leader: a bucket just made has none until its replicas
/// have elected one, and writes and watches made before then stall or fail.
async fn led(name: &'static str, bucket: &kv::Store) -> Result<(), FleetError> {
    let status = bucket.status().await.map_err(|e| FleetError::Bucket {
        bucket: name,
        reason: e.to_string(),
    })?;
    let leader = status
        .info
        .cluster
        .as_ref()
        .is_none_or(|c| c.leader.is_some());
    match leader {
        true => Ok(()),
        false => Err(FleetError::Bucket {
            bucket: name,
            reason: "no leader elected yet".to_owned(),
        }),
    }
}

/// What the membership task tells the rest of the daemon.
pub struct Views {
    /// The devices this instance owns, changed the moment a claim is won or lost.
    pub owned: watch::Sender<Arc<Ownership>>,
    /// Every claimed device's owner, for the forwarder; refreshed at most every
    /// [`OWNERS_EVERY`] (a handover of thousands of devices rebuilds it a few times, not
    /// thousands), so a forward may briefly go to the previous owner, which counts it.
    pub owners: watch::Sender<Arc<Owners>>,
    /// The alarm stage, told of every change of what is owned (and the alarms that come
    /// with a device won) before `owned` is.
    pub alarms: mpsc::Sender<AlarmInput>,
}

/// Each device's owner (device name → member name), as the claims say.
pub type Owners = HashMap<String, String>;

/// How often the owners map is rebuilt while claims change.
const OWNERS_EVERY: Duration = Duration::from_millis(100);

/// One device as this instance sees it: its name, site and the last claim read.
struct Device {
    name: String,
    site: Option<String>,
    claim: Option<(Claim, u64)>,
}

/// Joins the cluster on `client` (retrying every heartbeat while NATS is away, owning
/// nothing meanwhile), then keeps this instance's heartbeat, claims the devices it should own,
/// releases the ones it should not, and publishes what it owns on `views`. Ends on `cancel`.
pub async fn run(
    config: Arc<Config>,
    client: async_nats::Client,
    views: Views,
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
) {
    let c = &config.cluster;
    let (buckets, rank) = loop {
        let joined = match Buckets::open(client.clone(), c).await {
            Ok(b) => b.rank(&c.name).await.map(|rank| (b, rank)),
            Err(e) => Err(e),
        };
        match joined {
            Ok(joined) => break joined,
            Err(e) => tracing::warn!(error = %e, "cannot join the cluster yet"),
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(c.heartbeat) => {}
        }
    };
    let me = Member {
        name: c.name.clone(),
        site: c.site.clone(),
    };
    tracing::info!(member = %me.name, rank, devices = config.devices.len(), "joining the cluster");
    // The heartbeat has its own loop, so a long round of claims never makes this member look
    // dead.
    let (live_tx, live) = watch::channel(None);
    tokio::join!(
        heartbeats(&me, c, &buckets.members, live_tx, &metrics, &cancel),
        claims(
            Claimant {
                me: &me,
                config: &config,
                buckets: &buckets,
                seq_floor: rank.saturating_mul(RANK_SPAN),
                metrics: &metrics,
            },
            live,
            views,
            &cancel
        ),
    );
}

/// What the heartbeat loop last heard: the live members, or `None` once no heartbeat has
/// been stored for `dead-after` (the others will have taken our devices by then).
type Heard = Option<Vec<Member>>;

async fn heartbeats(
    me: &Member,
    c: &ClusterConfig,
    members: &kv::Store,
    live: watch::Sender<Heard>,
    metrics: &Metrics,
    cancel: &CancellationToken,
) {
    let Ok(body) = serde_json::to_vec(me) else {
        return;
    };
    // Every member's latest heartbeat (server time, ms), as the bucket's watch delivers them.
    let mut beats: HashMap<String, (Member, i64)> = HashMap::new();
    let mut watch: Option<kv::Watch> = None;
    let mut last_put = Instant::now();
    let mut tick = tokio::time::interval(c.heartbeat);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = cancel.cancelled() => break,
            next = next_entry(&mut watch) => match next {
                Some(Ok(e)) => heard(&mut beats, &e),
                Some(Err(_)) | None => watch = None,
            },
            _ = tick.tick() => {
                if watch.is_none() {
                    watch = members.watch_with_history(">").await.ok();
                }
                match members.put(&me.name, body.clone().into()).await {
                    Ok(_) => {
                        last_put = Instant::now();
                        metrics.cluster_connected.set(1);
                    }
                    Err(e) => {
                        metrics.cluster_connected.set(0);
                        tracing::warn!(error = %e, "cluster heartbeat failed");
                    }
                }
                if last_put.elapsed() >= c.dead_after {
                    live.send_replace(None);
                } else if let Some(now_live) = live_members(&me.name, &beats, c.dead_after) {
                    metrics.cluster_members.set(now_live.len() as i64);
                    live.send_replace(Some(now_live));
                }
            }
        }
    }
    // A clean stop hands the devices on at once instead of after `dead-after`.
    let _ = members.delete(&me.name).await;
}

/// Records one heartbeat (or a member's clean leave).
fn heard(beats: &mut HashMap<String, (Member, i64)>, e: &kv::Entry) {
    match e.operation {
        kv::Operation::Put => {
            if let Ok(m) = serde_json::from_slice::<Member>(&e.value) {
                let at = (e.created.unix_timestamp_nanos() / 1_000_000) as i64;
                beats.insert(e.key.clone(), (m, at));
            }
        }
        kv::Operation::Delete | kv::Operation::Purge => {
            beats.remove(&e.key);
        }
    }
}

/// The members whose latest heartbeat is within `dead_after` of ours, all by the server's
/// clock and from one ordered watch, so neither clock skew nor a lagging watch makes a live
/// member look dead; `None` until our own heartbeat has come back.
fn live_members(
    me: &str,
    beats: &HashMap<String, (Member, i64)>,
    dead_after: Duration,
) -> Option<Vec<Member>> {
    let now = beats.get(me)?.1;
    let limit = i64::try_from(dead_after.as_millis()).unwrap_or(i64::MAX);
    let mut live: Vec<Member> = beats
        .values()
        .filter(|(_, at)| now - at <= limit)
        .map(|(m, _)| m.clone())
        .collect();
    live.sort();
    Some(live)
}

/// Who steps the claims, and with what.
struct Claimant<'a> {
    me: &'a Member,
    config: &'a Config,
    buckets: &'a Buckets,
    /// This member's first sequence number, from its rank.
    seq_floor: u64,
    metrics: &'a Metrics,
}

/// Follows every claim (a watch of the devices bucket), and at each heartbeat steps every
/// device; stops work on a device the moment its claim moves on. Every change of what is
/// owned goes to the alarm stage first (with the alarms of devices won), then to the rest.
async fn claims(
    who: Claimant<'_>,
    mut live: watch::Receiver<Heard>,
    views: Views,
    cancel: &CancellationToken,
) {
    let Claimant {
        me,
        config,
        buckets,
        seq_floor,
        metrics,
    } = who;
    let bucket = &buckets.devices;
    let Views {
        owned,
        owners,
        alarms,
    } = views;
    let mut devices: HashMap<String, Device> = config
        .devices
        .iter()
        .map(|d| {
            let device = Device {
                name: d.name.clone(),
                site: d.site.clone(),
                claim: None,
            };
            (device_key(&d.name), device)
        })
        .collect();
    metrics.cluster_devices_unowned.set(devices.len() as i64);
    let mut mine: HashMap<String, u64> = HashMap::new();
    let mut watch: Option<kv::Watch> = None;
    // Claims are written only once the watch has delivered every current claim.
    let mut synced = false;
    let (mut owners_dirty, mut owners_at) = (false, Instant::now());
    let mut round_due = false;
    // The alarm stage is told nothing until the first round has run, so a restart does not
    // hand over what it is about to claim again; then it is told of every device won and of
    // every change of the devices other members hold.
    let (mut told, mut first_round) = (false, false);
    let mut elsewhere: HashSet<String> = HashSet::new();
    loop {
        let owners_due = tokio::time::sleep_until((owners_at + OWNERS_EVERY).into());
        let mut won = Vec::new();
        tokio::select! {
            () = cancel.cancelled() => break,
            // A change waits at most OWNERS_EVERY to reach the forwarder.
            () = owners_due, if owners_dirty => {}
            next = next_entry(&mut watch) => match next {
                Some(Ok(entry)) => {
                    if let Some(d) = devices.get_mut(&entry.key) {
                        d.claim = read_claim(&entry);
                        owners_dirty = true;
                    }
                    synced |= entry.delta == 0;
                    fence(&me.name, &devices, &mut mine, metrics);
                }
                // The watch ended with the connection: it is made again on the next beat.
                Some(Err(_)) | None => watch = None,
            },
            changed = live.changed() => {
                if changed.is_err() {
                    break;
                }
                if live.borrow_and_update().is_none() && !mine.is_empty() {
                    tracing::error!(devices = mine.len(), "no heartbeat for dead-after: stopping work on every device");
                    metrics.cluster_given_up.inc_by(mine.len() as u64);
                    mine.clear();
                }
                if watch.is_none() {
                    watch = bucket.watch_with_history(">").await.ok();
                    // An empty bucket delivers nothing to be synced by.
                    synced = watch.is_some()
                        && bucket.status().await.is_ok_and(|s| s.values() == 0);
                }
                round_due = true;
            }
        }
        let now_live = live.borrow().clone();
        if round_due
            && synced
            && let Some(now_live) = now_live
        {
            round_due = false;
            let round = Round {
                me: &me.name,
                live: &now_live,
                bucket,
                owned: &owned,
                metrics,
            };
            owners_dirty |= round.run(&mut devices, &mut mine, &mut won).await;
            first_round = !told;
            told = true;
        }
        let mut moved = false;
        if owners_dirty && owners_at.elapsed() >= OWNERS_EVERY {
            let known = owners_of(&devices);
            metrics
                .cluster_devices_unowned
                .set((devices.len() - known.len()) as i64);
            let now_elsewhere = elsewhere_of(&known, &me.name);
            moved = now_elsewhere != elsewhere;
            elsewhere = now_elsewhere;
            owners.send_replace(Arc::new(known));
            (owners_dirty, owners_at) = (false, Instant::now());
        }
        if told && (first_round || moved || !won.is_empty()) {
            if !moved {
                // As the claims are now, with the devices just won.
                elsewhere = elsewhere_of(&owners_of(&devices), &me.name);
            }
            let handover = Handover {
                seq_floor,
                elsewhere: elsewhere.clone(),
                taken: taken(&buckets.alarms, &me.name, won).await,
            };
            if alarms.send(AlarmInput::Handover(handover)).await.is_err() {
                break;
            }
        }
        publish(&mine, &owned, metrics);
        if std::mem::take(&mut first_round) {
            // Said even if nothing is owned: the replicator waits for it.
            owned.send_modify(|_| {});
        }
    }
}

/// The alarms that come with the devices just `won`, from each one's replicated record. A
/// device whose record is `me`'s own (or that has none) brings nothing: what this member
/// committed is in its store already, and is newer than what it replicated.
async fn taken(alarms: &kv::Store, me: &str, won: Vec<String>) -> Vec<Taken> {
    futures_util::stream::iter(won)
        .map(|device| async move {
            let record = match alarms.entry(device_key(&device)).await {
                Ok(Some(e)) if e.operation == kv::Operation::Put => {
                    serde_json::from_slice::<DeviceAlarms>(&e.value).ok()?
                }
                Ok(Some(_) | None) => return None,
                Err(e) => {
                    tracing::warn!(device = %device, error = %e, "cannot read the device's replicated alarms: carrying on with this member's own");
                    return None;
                }
            };
            (record.owner != me).then(|| Taken {
                alarms: record.held(),
                device,
            })
        })
        .buffer_unordered(WRITES_IN_FLIGHT)
        .filter_map(std::future::ready)
        .collect()
        .await
}

/// The devices another member than `me` holds.
fn elsewhere_of(owners: &Owners, me: &str) -> HashSet<String> {
    owners
        .iter()
        .filter(|(_, owner)| *owner != me)
        .map(|(device, _)| device.clone())
        .collect()
}

fn owners_of(devices: &HashMap<String, Device>) -> Owners {
    devices
        .values()
        .filter_map(|d| {
            let (claim, _) = d.claim.as_ref()?;
            (!claim.released).then(|| (d.name.clone(), claim.owner.clone()))
        })
        .collect()
}

fn read_claim(entry: &kv::Entry) -> Option<(Claim, u64)> {
    if entry.operation != kv::Operation::Put {
        return None;
    }
    let claim = serde_json::from_slice(&entry.value).ok()?;
    Some((claim, entry.revision))
}

/// Claim writes in flight at once in a round: a handover of thousands of devices takes a few
/// round trips per hundred, not one per device.
const WRITES_IN_FLIGHT: usize = 64;

/// One round of claims against one view of the live members.
struct Round<'a> {
    me: &'a str,
    live: &'a [Member],
    bucket: &'a kv::Store,
    owned: &'a watch::Sender<Arc<Ownership>>,
    metrics: &'a Metrics,
}

/// What became of one claim write: the revision it got, or the claim that is there instead.
enum Written {
    Won(u64),
    Refused(String, Option<kv::Entry>),
}

impl Round<'_> {
    /// Each device's step, written by compare-and-set; true if any claim changed here.
    /// The devices won are added to `won`.
    async fn run(
        &self,
        devices: &mut HashMap<String, Device>,
        mine: &mut HashMap<String, u64>,
        won: &mut Vec<String>,
    ) -> bool {
        let mut writes = Vec::new();
        for (key, d) in devices.iter() {
            let desired = owner_of(&d.name, d.site.as_deref(), self.live);
            let current = d.claim.as_ref().map(|(c, _)| c);
            let working = mine.contains_key(&d.name);
            let next = match step(self.me, desired, current, working, self.live) {
                Step::Stay => continue,
                Step::Claim(c) => c,
                Step::Release(c) => {
                    // Stop working on it before anyone else may start.
                    mine.remove(&d.name);
                    c
                }
            };
            writes.push((key.clone(), next, d.claim.as_ref().map(|(_, r)| *r)));
        }
        if writes.is_empty() {
            return false;
        }
        publish(mine, self.owned, self.metrics);
        let results: Vec<_> = futures_util::stream::iter(writes)
            .map(|(key, next, revision)| async move {
                let written = self.write(&key, &next, revision).await;
                (key, next, written)
            })
            .buffer_unordered(WRITES_IN_FLIGHT)
            .collect()
            .await;
        for (key, next, written) in results {
            let Some(d) = devices.get_mut(&key) else {
                continue;
            };
            match written {
                Written::Won(revision) => {
                    let from = d
                        .claim
                        .as_ref()
                        .map(|(c, _)| c.owner.clone())
                        .unwrap_or_default();
                    if next.released {
                        tracing::info!(device = %d.name, epoch = next.epoch, "device released");
                        self.metrics.cluster_given_up.inc();
                    } else {
                        tracing::info!(device = %d.name, epoch = next.epoch, from = %from, "device taken");
                        mine.insert(d.name.clone(), next.epoch);
                        won.push(d.name.clone());
                        self.metrics.cluster_taken.inc();
                    }
                    d.claim = Some((next, revision));
                }
                Written::Refused(error, there) => {
                    self.metrics.cluster_refused_writes.inc();
                    tracing::info!(device = %d.name, epoch = next.epoch, error = %error, "claim refused: the device's claim has moved on");
                    // The claim that is there, read back at once rather than waited for.
                    if let Some(there) = there {
                        d.claim = read_claim(&there);
                    }
                }
            }
        }
        true
    }

    async fn write(&self, key: &str, next: &Claim, revision: Option<u64>) -> Written {
        let body = match serde_json::to_vec(next) {
            Ok(b) => b,
            Err(e) => return Written::Refused(e.to_string(), None),
        };
        let written = match revision {
            Some(revision) => self
                .bucket
                .update(key, body.into(), revision)
                .await
                .map_err(|e| e.to_string()),
            None => self
                .bucket
                .create(key, body.into())
                .await
                .map_err(|e| e.to_string()),
        };
        match written {
            Ok(revision) => Written::Won(revision),
            Err(e) => Written::Refused(e, self.bucket.entry(key).await.ok().flatten()),
        }
    }
}

/// Stops work on every device whose claim now names another owner or a newer epoch.
fn fence(
    me: &str,
    devices: &HashMap<String, Device>,
    mine: &mut HashMap<String, u64>,
    metrics: &Metrics,
) {
    mine.retain(|name, epoch| {
        let Some((claim, _)) = devices.get(&device_key(name)).and_then(|d| d.claim.as_ref()) else {
            return false;
        };
        let still = claim.owner == me && claim.epoch == *epoch && !claim.released;
        if !still {
            tracing::warn!(device = %name, owner = %claim.owner, epoch = claim.epoch, our_epoch = *epoch, "device taken over: stopping work on it");
            metrics.cluster_given_up.inc();
        }
        still
    });
}

fn publish(mine: &HashMap<String, u64>, owned: &watch::Sender<Arc<Ownership>>, metrics: &Metrics) {
    metrics.cluster_devices_owned.set(mine.len() as i64);
    metrics
        .cluster_epoch
        .set(mine.values().copied().max().unwrap_or(0) as i64);
    owned.send_if_modified(|now| {
        let changed = !matches!(&**now, Ownership::Owned(m) if m == mine);
        if changed {
            *now = Arc::new(Ownership::Owned(mine.clone()));
        }
        changed
    });
}
