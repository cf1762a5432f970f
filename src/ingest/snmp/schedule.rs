//! Scheduling: one task per device, its first poll offset by a hash of its name, a semaphore
//! over all devices, an immediate poll when a trap asks for one; polls turned into samples,
//! events and learned interface speeds.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Notify, Semaphore, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::counters::{self, Counters};
use crate::cluster::Ownership;
use crate::config::Config;
use crate::ingest::SampleSink;
use crate::message::InterfaceSpeeds;
use crate::model::{DeviceEvent, EventKind, Metric, Sample, SeriesKey, Timestamp};
use crate::telemetry::{Metrics, PollResult, SnmpSkip};

use super::session::{Polled, Poller};
use super::{Filter, Target};

/// A stable offset into the interval for a device, so polls spread and do not all start at once.
fn offset(name: &str, interval: Duration) -> Duration {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    name.hash(&mut h);
    let ms = interval.as_millis().max(1) as u64;
    Duration::from_millis(h.finish() % ms)
}

/// A wake-up per polled device, for the trap receiver to ask for a poll now.
pub fn poll_triggers(config: &Config) -> HashMap<String, Arc<Notify>> {
    Target::all(config)
        .into_iter()
        .map(|t| (t.name, Arc::new(Notify::new())))
        .collect()
}

/// Polls every device with credentials until `cancel`; a device is also polled at once when
/// its trigger in `polls` is notified.
pub async fn run(
    config: Arc<Config>,
    ownership: watch::Receiver<Arc<Ownership>>,
    samples: SampleSink,
    metrics: Arc<Metrics>,
    polls: HashMap<String, Arc<Notify>>,
    speeds: watch::Sender<InterfaceSpeeds>,
    cancel: CancellationToken,
) {
    let targets = Target::all(&config);
    if targets.is_empty() {
        return;
    }
    tracing::info!(devices = targets.len(), "SNMP poller running");
    let shared = Arc::new(Shared {
        limit: Semaphore::new(config.snmp.max_in_flight.max(1)),
        filter: Filter::new(&config.snmp),
        unreachable_after: config.snmp.unreachable_after.max(1),
        ownership,
        samples,
        speeds,
        cancel,
    });
    let tasks = TaskTracker::new();
    for target in targets {
        let trigger = polls
            .get(&target.name)
            .cloned()
            .unwrap_or_else(|| Arc::new(Notify::new()));
        tasks.spawn(device_loop(
            Poller::new(target, &config.snmp, metrics.clone()),
            trigger,
            shared.clone(),
        ));
    }
    tasks.close();
    tasks.wait().await;
}

/// What every device's loop shares.
struct Shared {
    /// Requests in flight over all devices.
    limit: Semaphore,
    filter: Filter,
    unreachable_after: u32,
    /// The devices this instance polls (in a cluster, the ones it owns).
    ownership: watch::Receiver<Arc<Ownership>>,
    samples: SampleSink,
    speeds: watch::Sender<InterfaceSpeeds>,
    cancel: CancellationToken,
}

async fn device_loop(mut agent: Poller, trigger: Arc<Notify>, shared: Arc<Shared>) {
    let Shared {
        limit,
        filter,
        unreachable_after,
        ownership,
        samples,
        speeds,
        cancel,
    } = &*shared;
    let unreachable_after = *unreachable_after;
    let interval = agent.target.interval;
    let name = agent.target.name.clone();
    let metrics = agent.metrics.clone();
    let mut next = tokio::time::Instant::now() + offset(&name, interval);
    let mut counters = Counters::default();
    let mut failures = 0u32;
    let mut unreachable = false;
    loop {
        let planned = tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep_until(next) => {
                next += interval;
                Some(next - interval)
            }
            // Polled out of turn; the schedule stays as it was.
            _ = trigger.notified() => None,
        };
        if !ownership.borrow().owns(&name) {
            // Another cluster member polls it. What was known of its counters and failures is
            // stale by the time it is ours again.
            (counters, failures, unreachable) = (Counters::default(), 0, false);
            continue;
        }
        let after_trap = planned.is_none();
        let Ok(_permit) = limit.acquire().await else {
            return;
        };
        if let Some(planned) = planned {
            let late = tokio::time::Instant::now().saturating_duration_since(planned);
            metrics.snmp_poll_delay.observe(late.as_secs_f64());
        }
        let started = Instant::now();
        let result = tokio::select! {
            _ = cancel.cancelled() => return,
            r = agent.poll(filter) => r,
        };
        metrics
            .snmp_poll_seconds
            .observe(started.elapsed().as_secs_f64());
        let now = Timestamp::now();
        match result {
            Ok(Polled {
                reading,
                rtt,
                values: fetched,
            }) => {
                metrics.snmp_poll(&name, PollResult::Ok).inc();
                metrics.snmp_values.inc_by(fetched);
                failures = 0;
                if unreachable {
                    unreachable = false;
                    samples.offer(event(
                        &name,
                        EventKind::Reachable,
                        now,
                        "SNMP answers again".into(),
                    ));
                }
                samples.offer(Sample {
                    series: SeriesKey {
                        device: name.clone(),
                        object: "snmp".to_owned(),
                        metric: Metric::LatencyMs,
                    },
                    at: Timestamp::from_millis(reading.at_ms),
                    value: rtt.as_secs_f64() * 1000.0,
                    context: None,
                });
                let learned = reading
                    .interfaces
                    .iter()
                    .filter_map(|(i, r)| Some((*i, r.speed_bps?)))
                    .collect();
                speeds.send_modify(|s| s.set(&name, learned));
                let derived = match after_trap {
                    true => counters.update_after_trap(&name, reading),
                    false => counters.update(&name, reading),
                };
                for (_, skip) in &derived.skipped {
                    metrics.snmp_skip(skip_reason(*skip)).inc();
                }
                for e in derived.events {
                    samples.offer(e);
                }
                for s in derived.samples {
                    samples.offer(s);
                }
            }
            Err(e) => {
                metrics.snmp_poll(&name, e.reason()).inc();
                failures += 1;
                tracing::debug!(device = %name, error = %e, failures, "SNMP poll failed");
                if failures == unreachable_after && !unreachable {
                    unreachable = true;
                    tracing::warn!(device = %name, error = %e, "device unreachable over SNMP");
                    samples.offer(event(
                        &name,
                        EventKind::Unreachable,
                        now,
                        format!("{failures} SNMP polls in a row failed: {e}"),
                    ));
                }
            }
        }
    }
}

fn skip_reason(s: counters::Skip) -> SnmpSkip {
    match s {
        counters::Skip::AgentRestart => SnmpSkip::AgentRestart,
        counters::Skip::Discontinuity => SnmpSkip::Discontinuity,
        counters::Skip::Impossible => SnmpSkip::Impossible,
        counters::Skip::TooSoon => SnmpSkip::TooSoon,
    }
}

fn event(device: &str, kind: EventKind, at: Timestamp, text: String) -> DeviceEvent {
    DeviceEvent {
        device: device.to_owned(),
        object: crate::model::DEVICE_OBJECT.to_owned(),
        kind,
        at,
        text,
        severity: None,
    }
}
