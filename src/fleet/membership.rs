//! Membership and ownership in NATS: each instance puts a heartbeat in the `noctua_members`
//! bucket; the live members are the heartbeats younger than `dead-after` by the server's own
//! clock (so members' clocks may differ); each device's owner is its rendezvous choice among
//! them ([`crate::cluster`]); and the `noctua_devices` bucket holds each device's [`Claim`],
//! changed only by compare-and-set on its revision. A claim written over a newer one is
//! refused by the server, so an instance that was paused or cut off cannot take back a device
//! another has taken: it sees the newer claim and stops working on the device.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, kv};
use futures_util::StreamExt;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{FleetError, device_key};
use crate::cluster::{Claim, Member, Ownership, Step, owner_of, step};
use crate::config::{ClusterConfig, Config};
use crate::telemetry::Metrics;

/// The heartbeats, one key per member.
pub const MEMBERS: &str = "noctua_members";
/// The claims, one key per device ([`device_key`]).
pub const DEVICES: &str = "noctua_devices";

/// The two buckets, opened (or made, with `[cluster] replicas` copies).
struct Buckets {
    members: kv::Store,
    devices: kv::Store,
}

impl Buckets {
    /// Opens the buckets on `client`, making them if this is the cluster's first start.
    async fn open(client: async_nats::Client, c: &ClusterConfig) -> Result<Self, FleetError> {
        let js = jetstream::new(client);
        // Heartbeats expire by themselves: a dead member's key is gone after `dead-after`.
        let members = bucket(&js, MEMBERS, c.dead_after, c.replicas).await?;
        let devices = bucket(&js, DEVICES, Duration::ZERO, c.replicas).await?;
        Ok(Self { members, devices })
    }
}

async fn bucket(
    js: &jetstream::Context,
    name: &'static str,
    max_age: Duration,
    replicas: usize,
) -> Result<kv::Store, FleetError> {
    if let Ok(store) = js.get_key_value(name).await {
        return Ok(store);
    }
    js.create_key_value(kv::Config {
        bucket: name.to_owned(),
        history: 1,
        max_age,
        num_replicas: replicas,
        ..Default::default()
    })
    .await
    .map_err(|e| FleetError::Bucket {
        bucket: name,
        reason: e.to_string(),
    })
}

/// One device as this instance sees it: its name, site and the last claim read.
struct Device {
    name: String,
    site: Option<String>,
    claim: Option<(Claim, u64)>,
}

/// Joins the cluster on `client` (retrying every heartbeat while NATS is away, owning
/// nothing meanwhile), then keeps this instance's heartbeat, claims the devices it should own,
/// releases the ones it should not, and publishes what it owns on `owned` (every stage that
/// works on a device reads it). Ends on `cancel`.
pub async fn run(
    config: Arc<Config>,
    client: async_nats::Client,
    owned: watch::Sender<Arc<Ownership>>,
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
) {
    let c = &config.cluster;
    let buckets = loop {
        match Buckets::open(client.clone(), c).await {
            Ok(b) => break b,
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
    let mut mine: HashMap<String, u64> = HashMap::new();
    let mut watch: Option<kv::Watch> = None;
    // Claims are written only once the watch has delivered every current claim.
    let mut synced = false;
    let mut last_beat = Instant::now();
    let mut tick = tokio::time::interval(c.heartbeat);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tracing::info!(member = %me.name, devices = devices.len(), "joining the cluster");
    loop {
        let update = async {
            match watch.as_mut() {
                Some(w) => w.next().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = cancel.cancelled() => break,
            next = update => match next {
                Some(Ok(entry)) => {
                    if let Some(d) = devices.get_mut(&entry.key) {
                        d.claim = read_claim(&entry);
                    }
                    synced |= entry.delta == 0;
                    fence(&me.name, &devices, &mut mine, &metrics);
                }
                // The watch ended with the connection: it is made again on the next beat.
                Some(Err(_)) | None => watch = None,
            },
            _ = tick.tick() => {
                if watch.is_none() {
                    watch = buckets.devices.watch_with_history(">").await.ok();
                    // An empty bucket delivers nothing to be synced by.
                    synced = watch.is_some()
                        && buckets.devices.status().await.is_ok_and(|s| s.values() == 0);
                }
                match beat(&me, c.dead_after, &buckets).await {
                    Ok(live) => {
                        last_beat = Instant::now();
                        metrics.cluster_connected.set(1);
                        metrics.cluster_members.set(live.len() as i64);
                        if synced {
                            claim_round(&me.name, &live, &mut devices, &mut mine, &buckets, &owned, &metrics).await;
                        }
                    }
                    Err(e) => {
                        metrics.cluster_connected.set(0);
                        tracing::warn!(error = %e, "cluster heartbeat failed");
                        // Cut off for `dead-after`, the others have taken our devices.
                        if last_beat.elapsed() >= c.dead_after && !mine.is_empty() {
                            tracing::error!(devices = mine.len(), "no heartbeat for dead-after: stopping work on every device");
                            metrics.cluster_given_up.inc_by(mine.len() as u64);
                            mine.clear();
                        }
                    }
                }
            }
        }
        publish(&mine, &owned, &metrics);
    }
    // A clean stop hands the devices on at once instead of after `dead-after`.
    let _ = buckets.members.delete(&me.name).await;
}

/// Puts this instance's heartbeat and returns the live members, by the server's clock.
async fn beat(me: &Member, dead_after: Duration, b: &Buckets) -> Result<Vec<Member>, String> {
    let body = serde_json::to_vec(me).map_err(|e| e.to_string())?;
    b.members
        .put(&me.name, body.into())
        .await
        .map_err(|e| e.to_string())?;
    let names: Vec<String> = b
        .members
        .keys()
        .await
        .map_err(|e| e.to_string())?
        .filter_map(|k| async move { k.ok() })
        .collect()
        .await;
    let mut beats = Vec::with_capacity(names.len());
    for name in names {
        if let Ok(Some(e)) = b.members.entry(&name).await
            && e.operation == kv::Operation::Put
            && let Ok(m) = serde_json::from_slice::<Member>(&e.value)
        {
            beats.push((m, e.created));
        }
    }
    // Our own heartbeat was stored just now: its time is the server's now.
    let now = beats
        .iter()
        .filter(|(m, _)| m.name == me.name)
        .map(|(_, at)| *at)
        .max()
        .ok_or("our own heartbeat is missing")?;
    let mut live: Vec<Member> = beats
        .into_iter()
        .filter(|(_, at)| (now - *at) <= dead_after)
        .map(|(m, _)| m)
        .collect();
    live.sort();
    Ok(live)
}

fn read_claim(entry: &kv::Entry) -> Option<(Claim, u64)> {
    if entry.operation != kv::Operation::Put {
        return None;
    }
    let claim = serde_json::from_slice(&entry.value).ok()?;
    Some((claim, entry.revision))
}

/// Each device's step, written by compare-and-set.
async fn claim_round(
    me: &str,
    live: &[Member],
    devices: &mut HashMap<String, Device>,
    mine: &mut HashMap<String, u64>,
    b: &Buckets,
    owned: &watch::Sender<Arc<Ownership>>,
    metrics: &Metrics,
) {
    for (key, d) in devices.iter_mut() {
        let desired = owner_of(&d.name, d.site.as_deref(), live);
        let current = d.claim.as_ref().map(|(c, _)| c);
        let (next, taking) = match step(me, desired, current, live) {
            Step::Stay => continue,
            Step::Claim(c) => (c, true),
            Step::Release(c) => {
                // Stop working on it before anyone else may start.
                mine.remove(&d.name);
                publish(mine, owned, metrics);
                (c, false)
            }
        };
        let Ok(body) = serde_json::to_vec(&next) else {
            continue;
        };
        let written = match &d.claim {
            Some((_, revision)) => b
                .devices
                .update(key, body.into(), *revision)
                .await
                .map_err(|e| e.to_string()),
            None => b
                .devices
                .create(key, body.into())
                .await
                .map_err(|e| e.to_string()),
        };
        match written {
            Ok(revision) => {
                let from = current.map(|c| c.owner.clone()).unwrap_or_default();
                if taking {
                    tracing::info!(device = %d.name, epoch = next.epoch, from = %from, "device taken");
                    mine.insert(d.name.clone(), next.epoch);
                    metrics.cluster_taken.inc();
                } else {
                    tracing::info!(device = %d.name, epoch = next.epoch, "device released");
                    metrics.cluster_given_up.inc();
                }
                d.claim = Some((next, revision));
            }
            Err(e) => {
                // Someone wrote first; the watch brings the newer claim.
                metrics.cluster_refused_writes.inc();
                tracing::info!(device = %d.name, epoch = next.epoch, error = %e, "claim refused: the device's claim has moved on");
            }
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
