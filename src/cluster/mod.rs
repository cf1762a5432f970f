//! Who owns which device when several instances share a network out: each device's owner by
//! rendezvous hashing over the live members (its own site's members first), and the claims
//! that move a device between owners, each with a higher epoch (the fencing token).
//!
//! Pure: the members and the claims are passed in; `fleet/` reads and writes them in NATS.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::model::{Alarm, AlarmEvent, FaultRecord};

/// A live instance, as its heartbeat names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Member {
    /// `[cluster] name`.
    pub name: String,
    /// `[cluster] site`.
    pub site: Option<String>,
}

/// The owner of `device` (of `site`) among `live`: the member with the highest rendezvous
/// weight, among the members of the device's site if any is live, else among all. Removing a
/// member moves only its own devices; adding one takes only the devices it now weighs most.
pub fn owner_of<'a>(device: &str, site: Option<&str>, live: &'a [Member]) -> Option<&'a Member> {
    let local = |m: &&Member| site.is_some() && m.site.as_deref() == site;
    let pool = |local_only: bool| {
        live.iter()
            .filter(move |m| !local_only || local(m))
            .max_by_key(|m| (weight(&m.name, device), &m.name))
    };
    pool(true).or_else(|| pool(false))
}

/// The rendezvous weight of `member` for `device`: a hash of both, so every member computes
/// the same owner from the same live set, with no coordination.
fn weight(member: &str, device: &str) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(member.as_bytes());
    h.update(&[0]);
    h.update(device.as_bytes());
    h.digest()
}

/// A device's claim as replicated: its owner and the epoch it owns it from. A release keeps
/// the epoch, so the next owner's claim is the next epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    /// The member that owns (or last owned) the device.
    pub owner: String,
    /// Raised by one at every change of owner; every replicated write of the device states it.
    pub epoch: u64,
    /// The owner gave the device up (it is no longer the rendezvous choice).
    pub released: bool,
}

/// What member `me` does next about one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Nothing: it is already where it should be, or its owner must release it first.
    Stay,
    /// Claim it as `claim` (over the current claim, which must be unchanged).
    Claim(Claim),
    /// Stop working on it, then write `claim` (the same epoch, released).
    Release(Claim),
}

/// The step `me` takes for a device whose rendezvous owner is `desired` and whose replicated
/// claim is `current`; `working` says whether `me` works on it now. A live owner releases
/// before the next takes over (a member joining moves devices without a refused write); a
/// dead owner's devices are taken at once. A claim of `me`'s that it is not working on is
/// left from before a restart: claimed anew at the next epoch (so anything its previous life
/// still had in flight is stale), or released if it is no longer `me`'s.
pub fn step(
    me: &str,
    desired: Option<&Member>,
    current: Option<&Claim>,
    working: bool,
    live: &[Member],
) -> Step {
    let mine = desired.is_some_and(|d| d.name == me);
    let claim = |epoch| {
        Step::Claim(Claim {
            owner: me.to_owned(),
            epoch,
            released: false,
        })
    };
    match current {
        None if mine => claim(1),
        None => Step::Stay,
        Some(c) if c.owner == me && !c.released => {
            if mine && working {
                Step::Stay
            } else if mine {
                claim(c.epoch + 1)
            } else {
                Step::Release(Claim {
                    released: true,
                    ..c.clone()
                })
            }
        }
        Some(c) => {
            let owner_gone = c.released || c.owner == me || !live.iter().any(|m| m.name == c.owner);
            if mine && owner_gone {
                claim(c.epoch + 1)
            } else {
                Step::Stay
            }
        }
    }
}

/// The devices this instance works on: polls, probes, raises alarms for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Ownership {
    /// Not clustered: every device.
    #[default]
    All,
    /// Clustered: these devices, by name, with the epoch each is owned from.
    Owned(HashMap<String, u64>),
}

impl Ownership {
    /// The epoch this instance owns `device` from; `None` if another member owns it (and 0
    /// when not clustered).
    pub fn epoch(&self, device: &str) -> Option<u64> {
        match self {
            Ownership::All => Some(0),
            Ownership::Owned(devices) => devices.get(device).copied(),
        }
    }

    /// Whether `device` is this instance's to work on.
    pub fn owns(&self, device: &str) -> bool {
        match self {
            Ownership::All => true,
            Ownership::Owned(devices) => devices.contains_key(device),
        }
    }
}

/// A device's active alarms as its owner replicates them: the record a new owner finds, and
/// what the fleet-wide view shows. Written only by the device's owner, at its epoch.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct DeviceAlarms {
    /// The device.
    pub device: String,
    /// The member that wrote it.
    pub owner: String,
    /// The epoch it owned the device from when it wrote.
    pub epoch: u64,
    /// The owner's sequence number of the last transition applied.
    pub through: u64,
    /// The device's active alarms, as of that transition.
    pub alarms: Vec<Alarm>,
    /// The open fault record of each active alarm (where its owner had it), so a new owner
    /// carries the fault on: its raise time, acknowledgement and reopen count.
    #[serde(default)]
    pub faults: Vec<FaultRecord>,
}

/// Every device's replicated record, by device name: the fleet-wide view.
pub type FleetAlarms = HashMap<String, DeviceAlarms>;

impl DeviceAlarms {
    /// Whether `me`, owning the device from `epoch`, may write over this record: not if a newer
    /// owner has written it (a stale owner's write is what fencing refuses).
    pub fn may_write(&self, me: &str, epoch: u64) -> bool {
        self.epoch < epoch || (self.epoch == epoch && self.owner == me)
    }

    /// Applies `me`'s committed transition `e` at `epoch`, with the alarm's open fault as it
    /// now is: the alarm replaces the one with its id, or goes once cleared. Idempotent: a
    /// transition at or before `through` of the same owner and epoch changes nothing (a replay
    /// after a crash); false then.
    pub fn apply(
        &mut self,
        me: &str,
        epoch: u64,
        e: &AlarmEvent,
        fault: Option<&FaultRecord>,
    ) -> bool {
        let same_writer = self.owner == me && self.epoch == epoch;
        if same_writer && e.seq <= self.through {
            return false;
        }
        if !same_writer {
            self.owner = me.to_owned();
            self.epoch = epoch;
        }
        self.through = e.seq;
        self.device.clone_from(&e.alarm.device);
        let id = e.alarm.alarm_id;
        self.alarms.retain(|a| a.alarm_id != id);
        self.faults.retain(|f| f.alarm_id != id);
        if !e.alarm.is_cleared() {
            self.alarms.push(e.alarm.clone());
            self.faults.extend(fault.cloned());
        }
        true
    }

    /// The active alarms with their open faults, for a new owner to adopt. An alarm without
    /// its fault in the record (its owner could not read it) is left out: the new owner's
    /// detection raises it again if the condition holds.
    pub fn held(&self) -> Vec<(Alarm, FaultRecord)> {
        self.alarms
            .iter()
            .filter_map(|a| {
                let fault = self.faults.iter().find(|f| f.alarm_id == a.alarm_id)?;
                Some((a.clone(), fault.clone()))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
