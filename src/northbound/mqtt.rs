//! MQTT publisher: every published alarm transition goes to the broker at QoS 1, from the
//! store's outbox, and leaves the outbox only when the broker has acknowledged it.
//!
//! Topics (prefix `noctua` by default):
//! - `{prefix}/alarms/{severity}/{device}`: each transition, TS 28.532 JSON.
//! - `{prefix}/active/{alarmId}`: retained, the alarm as it is now; an empty retained message
//!   when it clears, so a late subscriber sees exactly the active alarms.
//! - `{prefix}/impact/{faultId}`: retained, the proactive notice of a fault big enough to tell
//!   callers about (opened, updated, closed), published with the transition that made it.
//! - `{prefix}/services/{name}`: retained, the service's status (ok, degraded, down) with the
//!   alarms that explain it; all of them on every connect, then each change.
//! - `{prefix}/status`: retained `online`, and `offline` as the last will and on a clean stop.
//!
//! Delivery is at least once, in sequence order per connection. rumqttc forgets in-flight
//! messages across reconnects and has no persistence, so each connection gets a fresh client and
//! event loop, and after every (re)connect the outbox is sent again from its oldest entry: a
//! message may arrive twice, never not at all — also across a daemon restart, because the outbox
//! is in the store. The event loop is polled by its own task at all times.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{
    AsyncClient, Event, EventLoop, Incoming, LastWill, MqttOptions, Outgoing, QoS,
    TlsConfiguration, Transport,
};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use crate::config::MqttConfig;
use crate::model::{AlarmEvent, Timestamp};
use crate::store::Store;
use crate::telemetry::Metrics;

/// Transitions in flight at once (each is two messages).
const WINDOW: usize = 64;
/// Transitions read from the outbox at once: several journal rows.
const READ_AHEAD: usize = 256;

/// What the event-loop task reports.
enum Link {
    Connected,
    Sent(u16),
    Acked(u16),
    Lost(String),
}

/// Runs until `stop`: connects, drains the outbox, follows new transitions, reconnects.
pub async fn run(
    config: MqttConfig,
    store: Store,
    mut events: broadcast::Receiver<AlarmEvent>,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) {
    let Some((host, port)) = config.broker_address() else {
        tracing::error!(broker = %config.broker, "mqtt.broker is not host:port; not publishing");
        return;
    };
    let mut backoff = Duration::from_millis(200);
    loop {
        // The outbox grows while the broker is away: keep it bounded then too.
        trim(&store, &config, &metrics);
        let mut options = match options(&config, &config.client_id, &host, port) {
            Ok(o) => o,
            Err(e) => {
                tracing::error!(error = %e, "mqtt: TLS files unreadable; not connecting");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(10)) => continue,
                    () = stop.cancelled() => return,
                }
            }
        };
        options
            .set_clean_session(false)
            .set_last_will(LastWill::new(
                status_topic(&config),
                "offline",
                QoS::AtLeastOnce,
                true,
            ));
        let (client, eventloop) = AsyncClient::new(options, 2 * WINDOW + 8);
        let (link_tx, mut link) = mpsc::channel(4 * WINDOW);
        let poller = tokio::spawn(poll(eventloop, link_tx));
        let outcome = session(
            &config,
            &client,
            &mut link,
            &store,
            &mut events,
            &metrics,
            &stop,
        )
        .await;
        metrics.mqtt_connected.set(0);
        if outcome == Outcome::Stopped {
            let _ = client
                .publish(status_topic(&config), QoS::AtLeastOnce, true, "offline")
                .await;
            let _ = tokio::time::timeout(Duration::from_millis(200), client.disconnect()).await;
            let _ = tokio::time::timeout(Duration::from_millis(200), poller).await;
            return;
        }
        poller.abort();
        if outcome == Outcome::Connected {
            backoff = Duration::from_millis(200);
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = stop.cancelled() => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}

/// Connection options for `config` as client `id`: keep-alive, TLS, credentials.
fn options(config: &MqttConfig, id: &str, host: &str, port: u16) -> std::io::Result<MqttOptions> {
    let mut options = MqttOptions::new(id, host, port);
    options.set_keep_alive(config.keepalive);
    if let Some(ca) = &config.ca_file {
        options.set_transport(Transport::tls_with_config(tls(ca, config)?));
    }
    if let Some(user) = &config.username {
        let password = config.password.as_ref().map_or("", |p| p.expose());
        options.set_credentials(user.clone(), password);
    }
    Ok(options)
}

/// Publishes one message at QoS 1 on a connection of its own, and returns once the broker has
/// acknowledged it: an action's `notify` step. (The alarm publisher sends only what its
/// outbox holds, in order; a notify is said once, and its record says whether it was.)
pub async fn publish_once(
    config: &MqttConfig,
    topic: &str,
    payload: Vec<u8>,
    timeout: Duration,
) -> Result<(), String> {
    let (host, port) = config
        .broker_address()
        .ok_or_else(|| format!("mqtt.broker `{}` is not host:port", config.broker))?;
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let id = format!("{}-notify-{}-{n}", config.client_id, std::process::id());
    let mut options = options(config, &id, &host, port).map_err(|e| e.to_string())?;
    options.set_clean_session(true);
    let (client, mut eventloop) = AsyncClient::new(options, 4);
    client
        .publish(topic, QoS::AtLeastOnce, false, payload)
        .await
        .map_err(|e| e.to_string())?;
    let acked = async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Incoming::PubAck(_))) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(format!("broker {}: {e}", config.broker)),
            }
        }
    };
    let result = tokio::time::timeout(timeout, acked).await.map_err(|_| {
        format!(
            "no acknowledgement from {} within {timeout:?}",
            config.broker
        )
    })?;
    let _ = client.disconnect().await;
    let _ = tokio::time::timeout(Duration::from_millis(200), eventloop.poll()).await;
    result
}

/// Polls the event loop for as long as the connection lives, reporting what matters.
async fn poll(mut eventloop: EventLoop, link: mpsc::Sender<Link>) {
    loop {
        let report = match eventloop.poll().await {
            Ok(Event::Incoming(Incoming::ConnAck(_))) => Link::Connected,
            Ok(Event::Incoming(Incoming::PubAck(ack))) => Link::Acked(ack.pkid),
            Ok(Event::Outgoing(Outgoing::Publish(pkid))) => Link::Sent(pkid),
            Ok(_) => continue,
            Err(e) => {
                let _ = link.send(Link::Lost(e.to_string())).await;
                return;
            }
        };
        if link.send(report).await.is_err() {
            return;
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// Connected, then lost the connection.
    Connected,
    /// Never got connected.
    Failed,
    /// Asked to stop.
    Stopped,
}

/// One connection's life: wait for the CONNACK, then keep up to [`WINDOW`] outbox entries in
/// flight and take each off the outbox when both of its messages are acknowledged.
async fn session(
    config: &MqttConfig,
    client: &AsyncClient,
    link: &mut mpsc::Receiver<Link>,
    store: &Store,
    events: &mut broadcast::Receiver<AlarmEvent>,
    metrics: &Metrics,
    stop: &CancellationToken,
) -> Outcome {
    // Wait for the connection.
    let mut waiting = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            () = stop.cancelled() => return Outcome::Stopped,
            _ = waiting.tick() => {
                trim(store, config, metrics);
            }
            l = link.recv() => match l {
                Some(Link::Connected) => break,
                Some(Link::Lost(e)) => {
                    tracing::warn!(broker = %config.broker, error = %e, "mqtt: cannot connect; will retry");
                    return Outcome::Failed;
                }
                None => return Outcome::Failed,
                Some(_) => {}
            },
        }
    }
    tracing::info!(broker = %config.broker, "mqtt: connected");
    metrics.mqtt_connected.set(1);
    // Messages issued and waiting for their packet id, in issue order (`None` for ours that
    // need no bookkeeping, such as the status).
    let mut awaiting_pkid: VecDeque<Option<u64>> = VecDeque::new();
    let mut by_pkid: HashMap<u16, u64> = HashMap::new();
    // In flight: messages still unacknowledged, and when the transition happened.
    let mut open: BTreeMap<u64, (u32, Timestamp)> = BTreeMap::new();
    // Delivered, but above the store's cursor because something older is still in flight.
    let mut delivered: BTreeSet<u64> = BTreeSet::new();
    // Read from the outbox, not yet published: a read decodes whole journal rows, so it reads
    // ahead rather than one transition per free slot.
    let mut ahead: VecDeque<AlarmEvent> = VecDeque::new();
    // The sequence number the outbox has been read through.
    let mut read = 0u64;
    if client
        .publish(status_topic(config), QoS::AtLeastOnce, true, "online")
        .await
        .is_err()
    {
        return Outcome::Connected;
    }
    awaiting_pkid.push_back(None);
    // Service states are retained current states: all of them on every connect, then each
    // change; a connection lost mid-way republishes them all, which is at-least-once for what
    // a subscriber sees.
    let mut services_through = 0u64;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        let head = store.durable_seq();
        if head > services_through || services_through == 0 {
            match store.service_states() {
                Ok(states) => {
                    for st in states.iter().filter(|st| {
                        st.seq <= head && (services_through == 0 || st.seq > services_through)
                    }) {
                        let topic = format!("{}/services/{}", config.prefix, st.name);
                        let payload = serde_json::to_vec(st).unwrap_or_default();
                        if client
                            .publish(topic, QoS::AtLeastOnce, true, payload)
                            .await
                            .is_err()
                        {
                            return Outcome::Connected;
                        }
                        awaiting_pkid.push_back(None);
                    }
                    services_through = head.max(1);
                }
                Err(e) => tracing::error!(error = %e, "mqtt: cannot read service states"),
            }
        }
        if ahead.is_empty() {
            // Only what is on disk: the durability gate.
            let head = store.durable_seq();
            if head > read {
                match store.durable_outbox_after(read, READ_AHEAD) {
                    Ok(batch) => {
                        let last = batch.last().map_or(read, |e| e.seq);
                        // Short of a full read, everything else up to `head` is not for the
                        // broker (and a commit may have landed since `head` was read).
                        read = if batch.len() == READ_AHEAD {
                            last
                        } else {
                            head.max(last)
                        };
                        ahead.extend(batch);
                    }
                    Err(e) => tracing::error!(error = %e, "mqtt: cannot read the outbox"),
                }
            }
        }
        // Keep the window full.
        while open.len() < WINDOW {
            let Some(e) = ahead.pop_front() else { break };
            let messages = messages(config, &e);
            let count = messages.len() as u32;
            for (topic, retain, payload) in messages {
                if client
                    .publish(topic, QoS::AtLeastOnce, retain, payload)
                    .await
                    .is_err()
                {
                    return Outcome::Connected;
                }
                awaiting_pkid.push_back(Some(e.seq));
            }
            open.insert(e.seq, (count, e.at));
        }
        tokio::select! {
            () = stop.cancelled() => return Outcome::Stopped,
            l = link.recv() => match l {
                Some(Link::Sent(pkid)) => {
                    if let Some(Some(seq)) = awaiting_pkid.pop_front() {
                        by_pkid.insert(pkid, seq);
                    }
                }
                Some(Link::Acked(pkid)) => {
                    let Some(seq) = by_pkid.remove(&pkid) else { continue };
                    let done = open.get_mut(&seq).is_some_and(|(left, _)| {
                        *left -= 1;
                        *left == 0
                    });
                    if done {
                        if let Some((_, at)) = open.remove(&seq) {
                            metrics.mqtt_published.inc();
                            metrics
                                .mqtt_publish_latency
                                .observe(Timestamp::now().since(at).as_secs_f64());
                        }
                        delivered.insert(seq);
                        // Everything read up to the oldest still in flight is delivered.
                        let through = open
                            .keys()
                            .next()
                            .or(ahead.front().map(|e| &e.seq))
                            .map_or(read, |oldest| oldest - 1);
                        let newer = delivered.split_off(&(through + 1));
                        let count = std::mem::replace(&mut delivered, newer).len() as u64;
                        if let Err(e) = store.outbox_delivered(through, count) {
                            tracing::error!(error = %e, seq, "mqtt: cannot take delivered transitions off the outbox");
                        }
                    }
                }
                Some(Link::Connected) => {}
                Some(Link::Lost(e)) => {
                    tracing::warn!(broker = %config.broker, error = %e, "mqtt: connection lost; will resend what is not acknowledged");
                    return Outcome::Connected;
                }
                None => return Outcome::Connected,
            },
            // New transitions wake the loop; a lagged receiver only means there is more to read
            // from the outbox, which is the source of truth anyway.
            _ = events.recv() => {}
            _ = tick.tick() => {
                if let Some(dropped_through) = trim(store, config, metrics) {
                    // Whatever was in flight up to there is gone from the outbox already.
                    open.retain(|&seq, _| seq > dropped_through);
                    delivered.retain(|&seq| seq > dropped_through);
                    ahead.retain(|e| e.seq > dropped_through);
                    read = read.max(dropped_through);
                }
            }
        }
    }
}

/// TLS with the configured CA and, if given, a client certificate. The files are read at each
/// connection, so renewed certificates are picked up without a restart.
fn tls(ca: &std::path::Path, config: &MqttConfig) -> std::io::Result<TlsConfiguration> {
    // rustls needs a process-wide crypto provider; ring keeps the build free of C toolchains
    // beyond a compiler. Installing twice is harmless (the second call reports it and is ignored).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let read = |p: &std::path::Path| {
        std::fs::read(p).map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", p.display())))
    };
    let client_auth = match (&config.cert_file, &config.key_file) {
        (Some(cert), Some(key)) => Some((read(cert)?, read(key)?)),
        _ => None,
    };
    Ok(TlsConfiguration::Simple {
        ca: read(ca)?,
        alpn: None,
        client_auth,
    })
}

/// Keeps the outbox within `outbox-limit`, dropping (and counting) the oldest; returns the
/// sequence number dropped through, if any were.
fn trim(store: &Store, config: &MqttConfig, metrics: &Metrics) -> Option<u64> {
    match store.outbox_trim(config.outbox_limit) {
        Ok((0, _)) => None,
        Ok((n, through)) => {
            metrics.mqtt_outbox_dropped.inc_by(n as u64);
            tracing::warn!(
                dropped = n,
                limit = config.outbox_limit,
                "mqtt: outbox full; oldest transitions dropped"
            );
            Some(through)
        }
        Err(e) => {
            tracing::error!(error = %e, "mqtt: cannot trim the outbox");
            None
        }
    }
}

fn status_topic(config: &MqttConfig) -> String {
    format!("{}/status", config.prefix)
}

/// The messages of a transition: the event, the retained current state, and a proactive
/// notice when it carries one (retained while open, so a CRM that connects late sees it;
/// the closing notice replaces it).
fn messages(config: &MqttConfig, e: &AlarmEvent) -> Vec<(String, bool, Vec<u8>)> {
    let json = serde_json::to_vec(e).unwrap_or_default();
    let a = &e.alarm;
    let active_topic = format!("{}/active/{}", config.prefix, a.alarm_id);
    let active = if a.is_cleared() {
        Vec::new()
    } else {
        serde_json::to_vec(a).unwrap_or_default()
    };
    let mut out = vec![
        (
            format!(
                "{}/alarms/{}/{}",
                config.prefix,
                a.perceived_severity.name(),
                topic_level(&a.device)
            ),
            false,
            json,
        ),
        (active_topic, true, active),
    ];
    if let Some(n) = &a.impact.notice {
        let topic = format!("{}/impact/{}", config.prefix, n.fault.0);
        out.push((topic, true, serde_json::to_vec(n).unwrap_or_default()));
    }
    out
}

/// A device name as one topic level: MQTT wildcards and separators replaced.
fn topic_level(name: &str) -> String {
    name.chars()
        .map(|c| if matches!(c, '/' | '+' | '#') { '_' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names_stay_one_topic_level() {
        assert_eq!(topic_level("core-r1"), "core-r1");
        assert_eq!(topic_level("site/a+b#"), "site_a_b_");
    }
}
