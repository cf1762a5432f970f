//! `GET /api/v1/alarms/stream`: the live alarm stream (Server-Sent Events).
//!
//! A new client first gets a `snapshot` of the active alarms, then every published transition
//! as a `transition` event whose SSE id is its sequence number. A client that reconnects with
//! `Last-Event-ID: N` gets exactly the published transitions after N, from the store's history,
//! then the live ones: no gap, no duplicate. If the daemon restarted since N, a `restarted`
//! event says so first. Suppressed alarms and their transitions (recorded, not notified)
//! come only to a client that asks with `?suppressed=true`. Services come as `services` (all
//! of them, after the snapshot or the catch-up) and then a `service` event per change; they
//! carry no id, since a service's state is current, not history. A transition that sends a
//! proactive notice is followed by an `impact` event with it.
//!
//! With `scope=fleet` (a cluster member), the snapshot is every device's replicated active
//! alarms and the transitions are every member's, from the replicated stream; a reconnect
//! starts again from a snapshot.
//!
//! Gap-freedom: the live feed is subscribed *before* the store is read, and everything the
//! store already holds is skipped on the live feed by sequence number. A client too slow for
//! the live feed is caught up from the store again instead of losing events.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

use crate::model::{Alarm, AlarmEvent, Severity, Timestamp};
use crate::northbound::params::{category_param, severity_param};
use crate::northbound::reply::ApiError;
use crate::northbound::state::{FleetView, HttpState};
use crate::store::{Store, StoreError};

/// Filters of the stream; clears always pass a severity filter, so a client never keeps an
/// alarm that was cleared.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamQuery {
    severity: Option<String>,
    device: Option<String>,
    category: Option<String>,
    /// Also what is only recorded: alarms and transitions under suppression (root cause,
    /// flapping, maintenance), each marked `notified: false`. The console shows them greyed.
    #[serde(default)]
    suppressed: bool,
    /// `local` (default) or `fleet`: every cluster member's alarms, as replicated.
    scope: Option<String>,
}

struct Filter {
    min: Option<Severity>,
    device: Option<String>,
    category: Option<crate::model::Category>,
    suppressed: bool,
}

impl Filter {
    /// Whether a transition is for this client.
    fn passes_event(&self, e: &AlarmEvent) -> bool {
        (self.suppressed || e.notified) && self.passes(&e.alarm)
    }

    /// Whether an active alarm belongs in this client's snapshot.
    fn passes_active(&self, a: &Alarm) -> bool {
        (self.suppressed || a.notified) && self.passes(a)
    }

    fn passes(&self, a: &Alarm) -> bool {
        (a.is_cleared() || self.min.is_none_or(|m| a.perceived_severity >= m))
            && self.device.as_ref().is_none_or(|d| &a.device == d)
            && self.category.is_none_or(|c| a.category == c)
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Snapshot {
    active_alarms: Vec<Alarm>,
    last_seq: u64,
    started_at: Timestamp,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Restarted {
    started_at: Timestamp,
    first_seq: u64,
}

/// The SSE handler.
pub async fn stream(
    State(s): State<HttpState>,
    headers: HeaderMap,
    query: Result<Query<StreamQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let filter = Filter {
        min: severity_param(q.severity.as_deref())?,
        device: q.device,
        category: category_param(q.category.as_deref())?,
        suppressed: q.suppressed,
    };
    let resume = match headers.get("last-event-id") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or_else(|| ApiError::bad_request("Last-Event-ID must be a sequence number"))?,
        ),
    };
    let Ok(slot) = s.streams.clone().try_acquire_owned() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many live-stream clients (http.max-stream-clients); try again later",
        ));
    };
    let fleet = match q.scope.as_deref().unwrap_or("local") {
        "local" => None,
        "fleet" => Some(
            s.fleet
                .clone()
                .ok_or_else(|| ApiError::bad_request("scope=fleet needs [cluster] enabled"))?,
        ),
        other => {
            return Err(ApiError::bad_request(format!(
                "unknown scope `{other}`: expected local or fleet"
            )));
        }
    };
    let (tx, rx) = mpsc::channel::<Event>(256);
    tokio::spawn(async move {
        s.metrics.http_sse_clients.inc();
        match fleet {
            None => feed(&s, filter, resume, tx).await,
            Some(fleet) => feed_fleet(&s, &fleet, filter, tx).await,
        }
        s.metrics.http_sse_clients.dec();
        drop(slot);
    });
    let events =
        futures_util::stream::unfold(
            rx,
            |mut rx| async move { rx.recv().await.map(|e| (Ok(e), rx)) },
        );
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// Produces one client's events until it goes away or the daemon stops.
async fn feed(s: &HttpState, filter: Filter, resume: Option<u64>, tx: mpsc::Sender<Event>) {
    // Subscribe before reading the store: whatever is committed after the read is then on
    // the live feed.
    let mut live = s.events.subscribe();
    let mut services = s.services.subscribe();
    let result = async {
        let mut cursor = match resume {
            Some(n) => {
                if n < s.first_seq {
                    let note = Restarted {
                        started_at: s.started_at,
                        first_seq: s.first_seq,
                    };
                    send(&tx, json_event("restarted", None, &note)).await?;
                }
                catch_up(&s.store, n, &filter, &tx).await?
            }
            None => {
                let (mut active, head) = s.store.durable_active().await.map_err(|_| Closed)?;
                active.sort_by(Alarm::urgency_order);
                let snapshot = Snapshot {
                    active_alarms: active
                        .into_iter()
                        .filter(|a| filter.passes_active(a))
                        .collect(),
                    last_seq: head,
                    started_at: s.started_at,
                };
                send(&tx, json_event("snapshot", Some(head), &snapshot)).await?;
                head
            }
        };
        // Service states are current states, not history: every (re)connect gets them all
        // (when there are services at all).
        let current = s.impact.borrow().services().to_vec();
        if !current.is_empty() {
            send(&tx, json_event("services", None, &current)).await?;
        }
        loop {
            let next = tokio::select! {
                () = s.stop.cancelled() => return Ok(()),
                () = tx.closed() => return Ok(()),
                next = live.recv() => next,
                service = services.recv() => {
                    match service {
                        Ok(state) => send(&tx, json_event("service", None, &state)).await?,
                        Err(RecvError::Lagged(_)) => {
                            let current = s.impact.borrow().services().to_vec();
                            send(&tx, json_event("services", None, &current)).await?;
                        }
                        Err(RecvError::Closed) => return Ok(()),
                    }
                    continue;
                }
            };
            match next {
                Ok(e) if e.seq > cursor => {
                    cursor = e.seq;
                    if filter.passes_event(&e) {
                        send_transition(&tx, &e).await?;
                    }
                }
                Ok(_) => {}
                Err(RecvError::Lagged(_)) => {
                    cursor = catch_up(&s.store, cursor, &filter, &tx).await?;
                }
                Err(RecvError::Closed) => return Ok(()),
            }
        }
    }
    .await;
    let _: Result<(), Closed> = result;
}

/// One client's events with `scope=fleet`: a snapshot of every device's replicated active
/// alarms, then every member's transitions as they land on the replicated stream. Sequence
/// numbers are each member's own, so a reconnect (its `Last-Event-ID` is not taken) gets a
/// fresh snapshot, as does a client too slow for the live feed.
async fn feed_fleet(s: &HttpState, fleet: &FleetView, filter: Filter, tx: mpsc::Sender<Event>) {
    let mut live = fleet.events.subscribe();
    let snapshot = || {
        let view = fleet.alarms.borrow().clone();
        let mut active: Vec<Alarm> = view
            .values()
            .flat_map(|d| &d.alarms)
            .filter(|a| filter.passes_active(a))
            .cloned()
            .collect();
        active.sort_by(Alarm::urgency_order);
        let snapshot = Snapshot {
            active_alarms: active,
            last_seq: 0,
            started_at: s.started_at,
        };
        json_event("snapshot", None, &snapshot)
    };
    let result: Result<(), Closed> = async {
        send(&tx, snapshot()).await?;
        loop {
            let next = tokio::select! {
                () = s.stop.cancelled() => return Ok(()),
                () = tx.closed() => return Ok(()),
                next = live.recv() => next,
            };
            match next {
                Ok(e) if filter.passes_event(&e) => send_transition(&tx, &e).await?,
                Ok(_) => {}
                Err(RecvError::Lagged(_)) => send(&tx, snapshot()).await?,
                Err(RecvError::Closed) => return Ok(()),
            }
        }
    }
    .await;
    let _ = result;
}

/// The client went away (or the store failed under it); either way the feed ends.
struct Closed;

async fn send(tx: &mpsc::Sender<Event>, e: Event) -> Result<(), Closed> {
    tx.send(e).await.map_err(|_| Closed)
}

/// Transitions read from the store per page while catching a client up: under a storm 50
/// lagging clients each reading every missed transition into one list at once, on the async
/// workers, held the pipeline's tasks up for seconds.
const CATCH_UP_PAGE: usize = 256;

/// Sends the published transitions after `after` from the store, a page at a time, each page
/// read on a blocking thread; returns the last sequence number sent or known durable.
async fn catch_up(
    store: &Store,
    after: u64,
    filter: &Filter,
    tx: &mpsc::Sender<Event>,
) -> Result<u64, Closed> {
    let mut cursor = after;
    loop {
        let (head, page) = missed_since(store, cursor).await?;
        for e in page.iter().filter(|e| filter.passes_event(e)) {
            send_transition(tx, e).await?;
        }
        match page.last() {
            Some(last) if page.len() == CATCH_UP_PAGE => cursor = last.seq,
            _ => return Ok(head.max(cursor)),
        }
    }
}

/// Up to a page of committed transitions after `after`, in sequence order, and the last durable
/// sequence (what is not on disk yet is not published, and comes on the live feed once it is).
async fn missed_since(store: &Store, after: u64) -> Result<(u64, Vec<AlarmEvent>), Closed> {
    let store = store.clone();
    let read = tokio::task::spawn_blocking(move || {
        let head = store.durable_seq();
        let mut events = store.durable_history_after(after, CATCH_UP_PAGE)?;
        events.retain(|e| e.seq <= head);
        Ok::<_, StoreError>((head, events))
    });
    match read.await {
        Ok(Ok(missed)) => Ok(missed),
        _ => Err(Closed),
    }
}

/// A transition, then its proactive notice as an `impact` event when it carries one.
async fn send_transition(tx: &mpsc::Sender<Event>, e: &AlarmEvent) -> Result<(), Closed> {
    send(tx, transition(e)).await?;
    if let Some(n) = &e.alarm.impact.notice {
        send(tx, json_event("impact", None, n)).await?;
    }
    Ok(())
}

fn transition(e: &AlarmEvent) -> Event {
    json_event("transition", Some(e.seq), e)
}

fn json_event<T: Serialize>(name: &str, id: Option<u64>, data: &T) -> Event {
    let event = Event::default()
        .event(name)
        .data(serde_json::to_string(data).unwrap_or_default());
    match id {
        Some(id) => event.id(id.to_string()),
        None => event,
    }
}
