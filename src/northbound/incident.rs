//! Post-incident reports: assembled from the store when a serious fault closes and kept with
//! it (a task following the committed transitions, catching up at start and after a lag), and
//! served as Markdown, HTML or JSON with the review engineers write.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde::Deserialize;
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::detect::state_key;
use crate::fault::incident::{ReportFormat, Sources, assemble, render};
use crate::forecast::StoredForecast;
use crate::model::{
    AlarmEvent, AlarmId, FaultId, FaultRecord, IncidentReport, MAX_AUTHOR_BYTES, Metric,
    PROBE_OBJECT, Review, SeriesKey, Timestamp, TransitionKind, printable,
};
use crate::northbound::api::authorize;
use crate::northbound::reply::{
    ApiError, ApiResult, bad_request, json_body, off_worker, unavailable,
};
use crate::northbound::state::HttpState;
use crate::store::{Store, StoreError, Tree};

/// The report of fault `id`: the one kept when it closed, or assembled now (an open fault's
/// is provisional and not kept), always with the review as it stands. `None`: no such fault.
pub fn report_of(
    store: &Store,
    config: &Config,
    id: FaultId,
    now: Timestamp,
) -> Result<Option<IncidentReport>, StoreError> {
    if let Some(mut kept) = store.incident_report(id)? {
        kept.review = store.review(id)?.unwrap_or_default();
        return Ok(Some(kept));
    }
    let Some(fault) = store.fault(id)? else {
        return Ok(None);
    };
    Ok(assemble_all(store, config, std::slice::from_ref(&fault), now)?.pop())
}

/// The reports of `closing`, each with its review, from one pass over the journal and one
/// over the fault records however many there are: a storm's thousands of clears must not
/// read the whole journal once each (that was quadratic, and held the journal in memory).
fn assemble_all(
    store: &Store,
    config: &Config,
    closing: &[FaultRecord],
    now: Timestamp,
) -> Result<Vec<IncidentReport>, StoreError> {
    // The transitions of each fault's reduction key while it was open: a reopened fault has
    // had more than one alarm id.
    let until = |f: &FaultRecord| f.cleared_at.unwrap_or(Timestamp::from_millis(i64::MAX));
    let mut by_key: HashMap<(&str, &str, &str), Vec<usize>> = HashMap::new();
    for (i, f) in closing.iter().enumerate() {
        let key = (f.device.as_str(), f.object.as_str(), f.condition.as_str());
        by_key.entry(key).or_default().push(i);
    }
    let mut histories: Vec<Vec<AlarmEvent>> = vec![Vec::new(); closing.len()];
    store.visit_durable_history(|e| {
        let a = &e.alarm;
        let key = (a.device.as_str(), a.object.as_str(), a.condition.as_str());
        for &i in by_key.get(&key).into_iter().flatten() {
            let f = &closing[i];
            if e.at >= f.raised_at && e.at <= until(f) {
                histories[i].push(e.clone());
            }
        }
    })?;
    // The faults a report looks among: those suppressed below one of these, and the earlier
    // faults of the same devices (recurrences).
    let roots: HashSet<AlarmId> = closing.iter().map(|f| f.alarm_id).collect();
    let devices: HashSet<&str> = closing.iter().map(|f| f.device.as_str()).collect();
    let mut related = Vec::new();
    for o in store.each::<FaultRecord>(Tree::Faults) {
        let o = o?;
        if o.root_cause.is_some_and(|r| roots.contains(&r)) || devices.contains(o.device.as_str()) {
            related.push(o);
        }
    }
    let all_complaints = store.complaints()?;
    let mut reports = Vec::with_capacity(closing.len());
    for (fault, history) in closing.iter().zip(&histories) {
        let actions = store.actions_of_fault(fault.id)?;
        let complaints: Vec<_> = all_complaints
            .iter()
            .filter(|c| c.link.as_ref().is_some_and(|l| l.fault == fault.id))
            .cloned()
            .collect();
        let probe_p95 = probe_p95(store, &fault.device);
        let sources = Sources {
            fault,
            history,
            faults: &related,
            actions: &actions,
            complaints: &complaints,
            review: store.review(fault.id)?,
            probe_p95: &probe_p95,
        };
        reports.push(assemble(&sources, &config.tiers, &config.reports, now));
    }
    Ok(reports)
}

/// The device's ICMP probe latency p95 by day, as its precursor trend keeps it (state of
/// another version, or none, is no context rather than an error).
fn probe_p95(store: &Store, device: &str) -> Vec<(Timestamp, f64)> {
    let series = SeriesKey {
        device: device.to_owned(),
        object: PROBE_OBJECT.to_owned(),
        metric: Metric::LatencyMs,
    };
    store
        .get::<StoredForecast>(Tree::Forecasts, &state_key(&series))
        .ok()
        .flatten()
        .filter(|s| s.version == crate::forecast::STATE_VERSION)
        .and_then(|s| s.trend)
        .map(|t| {
            t.days()
                .map(|(day, ms)| (Timestamp::from_millis(day * 86_400_000), ms))
                .collect()
        })
        .unwrap_or_default()
}

/// Reports assembled in one pass: enough to take a storm's clears in a few passes, few
/// enough that their histories stay small.
const REPORT_BATCH: usize = 256;

/// Whether a fault gets a report when it closes.
fn serious(f: &FaultRecord, config: &Config) -> bool {
    f.cleared_at.is_some() && f.peak_severity >= config.reports.min_severity
}

/// Assembles and keeps the report of every closed fault at or above `[reports] min-severity`
/// that has none yet, [`REPORT_BATCH`] at a time; returns how many.
fn catch_up(store: &Store, config: &Config) -> Result<usize, StoreError> {
    let (mut n, mut batch) = (0, Vec::new());
    for f in store.each::<FaultRecord>(Tree::Faults) {
        let f = f?;
        if serious(&f, config) && store.incident_report(f.id)?.is_none() {
            batch.push(f);
        }
        if batch.len() == REPORT_BATCH {
            n += keep_all(store, config, std::mem::take(&mut batch))?;
        }
    }
    Ok(n + keep_all(store, config, batch)?)
}

/// Assembles and keeps the reports of `closed`, with their notes; returns how many.
fn keep_all(
    store: &Store,
    config: &Config,
    mut closed: Vec<FaultRecord>,
) -> Result<usize, StoreError> {
    for f in &mut closed {
        f.notes = store.notes(f.id)?;
    }
    for r in assemble_all(store, config, &closed, Timestamp::now())? {
        store.put_incident_report(&r)?;
        tracing::info!(fault = %r.fault, device = %r.device, condition = %r.condition, "post-incident report assembled");
    }
    Ok(closed.len())
}

/// The reports of the serious faults the alarms `cleared` closed (a reopened alarm keeps its
/// fault: the latest closed one is its), one pass over the fault records for all of them.
fn keep_cleared(
    store: &Store,
    config: &Config,
    cleared: &HashSet<AlarmId>,
) -> Result<usize, StoreError> {
    let mut latest: HashMap<AlarmId, FaultRecord> = HashMap::new();
    for f in store.each::<FaultRecord>(Tree::Faults) {
        let f = f?;
        if cleared.contains(&f.alarm_id) && f.cleared_at.is_some() {
            latest.insert(f.alarm_id, f);
        }
    }
    let closed = latest
        .into_values()
        .filter(|f| serious(f, config))
        .collect();
    keep_all(store, config, closed)
}

/// Follows the committed transitions until `stop`: each clear of a serious fault gets its
/// report. Catches up at start and whenever it fell behind the bus. Clears that arrive
/// together (a storm's) are taken together, and the store is read on a blocking thread.
pub async fn run(
    store: Store,
    config: watch::Receiver<Arc<Config>>,
    mut events: broadcast::Receiver<AlarmEvent>,
    stop: CancellationToken,
) {
    let work = |caught_up: bool, cleared: HashSet<AlarmId>| {
        let (store, config) = (store.clone(), config.borrow().clone());
        tokio::task::spawn_blocking(move || {
            let done = match caught_up {
                true => catch_up(&store, &config),
                false => keep_cleared(&store, &config, &cleared),
            };
            if let Err(e) = done {
                tracing::error!(error = %e, "cannot assemble post-incident reports");
            }
        })
    };
    let _ = work(true, HashSet::new()).await;
    loop {
        let first = tokio::select! {
            () = stop.cancelled() => return,
            e = events.recv() => e,
        };
        let (mut cleared, mut lagged) = (HashSet::new(), false);
        let mut next = Some(first);
        while let Some(e) = next.take() {
            match e {
                Ok(e) if e.kind == TransitionKind::Cleared => {
                    cleared.insert(e.alarm.alarm_id);
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => lagged = true,
                Err(broadcast::error::RecvError::Closed) => return,
            }
            if cleared.len() < REPORT_BATCH {
                next = match events.try_recv() {
                    Ok(e) => Some(Ok(e)),
                    Err(broadcast::error::TryRecvError::Lagged(n)) => {
                        Some(Err(broadcast::error::RecvError::Lagged(n)))
                    }
                    Err(_) => None,
                };
            }
        }
        // A lag may have skipped clears: the catch-up finds every report missing.
        if lagged || !cleared.is_empty() {
            let _ = work(lagged, cleared).await;
        }
    }
}

/// The routes.
pub fn routes() -> Router<HttpState> {
    Router::new()
        .route("/api/v1/faults/{id}/report", get(show))
        .route("/api/v1/faults/{id}/review", post(review))
}

fn fault_id(id: &str) -> Result<FaultId, ApiError> {
    id.parse()
        .map(FaultId)
        .map_err(|_| bad_request(format!("`{}` is not a fault id", printable(id))))
}

/// `GET /api/v1/faults/{id}/report?format=json|md|html`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportQuery {
    format: Option<String>,
}

async fn show(
    State(s): State<HttpState>,
    Path(id): Path<String>,
    query: Result<Query<ReportQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    let Query(q) = query.map_err(|e| bad_request(e.body_text()))?;
    let id = fault_id(&id)?;
    let format: ReportFormat = q
        .format
        .as_deref()
        .unwrap_or("json")
        .parse()
        .map_err(|e| bad_request(format!("{e}")))?;
    let (store, config) = (s.store.clone(), s.config.borrow().clone());
    let r = off_worker(move || report_of(&store, &config, id, Timestamp::now()))
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no fault {id}")))?;
    let kind = match format {
        ReportFormat::Json => "application/json",
        ReportFormat::Md => "text/markdown; charset=utf-8",
        ReportFormat::Html => "text/html; charset=utf-8",
    };
    Ok(([(header::CONTENT_TYPE, kind)], render(&r, format)).into_response())
}

/// Body of `POST /api/v1/faults/{id}/review`: what is given replaces what was there.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ReviewBody {
    by: String,
    #[serde(default)]
    cause: Option<String>,
    #[serde(default)]
    corrective_action: Option<String>,
}

/// The longest cause or corrective action, in bytes.
pub const MAX_REVIEW_BYTES: usize = 8192;

async fn review(
    State(s): State<HttpState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    authorize(s.token.as_ref(), &headers)?;
    let id = fault_id(&id)?;
    let b: ReviewBody = json_body(
        &headers,
        &body,
        "{\"by\": NAME, \"cause\": TEXT, \"correctiveAction\": TEXT}",
    )?;
    let (r, ticket) = write_review(
        &s.store,
        id,
        &b.by,
        b.cause,
        b.corrective_action,
        Timestamp::now(),
    )
    .map_err(|e| match e {
        ReviewError::Store(e) => unavailable(e),
        ReviewError::NoFault => ApiError::new(StatusCode::NOT_FOUND, format!("no fault {id}")),
        other => bad_request(other.to_string()),
    })?;
    s.store.durable(ticket).await.map_err(unavailable)?;
    Ok(axum::Json(r).into_response())
}

/// Why a review was not written.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    /// No such fault.
    #[error("no such fault")]
    NoFault,
    /// Who wrote it is missing or too long.
    #[error("`by` is 1 to {MAX_AUTHOR_BYTES} bytes without control characters")]
    By,
    /// Nothing to write.
    #[error("give a cause, a corrective action, or both")]
    Empty,
    /// A text is too long.
    #[error("a cause or corrective action is at most {MAX_REVIEW_BYTES} bytes")]
    TooLong,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Writes a fault's review (the fields given replace what was there); durable once the ticket
/// is. The API and a stopped daemon's CLI both come here.
pub fn write_review(
    store: &Store,
    id: FaultId,
    by: &str,
    cause: Option<String>,
    corrective_action: Option<String>,
    now: Timestamp,
) -> Result<(Review, crate::store::Ticket), ReviewError> {
    let by = by.trim();
    if by.is_empty() || by.len() > MAX_AUTHOR_BYTES || by.chars().any(char::is_control) {
        return Err(ReviewError::By);
    }
    let clean = |t: Option<String>| t.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty());
    let (cause, action) = (clean(cause), clean(corrective_action));
    if cause.is_none() && action.is_none() {
        return Err(ReviewError::Empty);
    }
    if [&cause, &action]
        .iter()
        .any(|t| t.as_ref().is_some_and(|t| t.len() > MAX_REVIEW_BYTES))
    {
        return Err(ReviewError::TooLong);
    }
    if store.fault(id)?.is_none() {
        return Err(ReviewError::NoFault);
    }
    let mut r = store.review(id)?.unwrap_or_default();
    if cause.is_some() {
        r.cause = cause;
    }
    if action.is_some() {
        r.corrective_action = action;
    }
    r.by = Some(by.to_owned());
    r.at = Some(now);
    let ticket = store.put_review(id, &r)?;
    Ok((r, ticket))
}
