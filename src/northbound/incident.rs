//! Post-incident reports: assembled from the store when a serious fault closes and kept with
//! it (a task following the committed transitions, catching up at start and after a lag), and
//! served as Markdown, HTML or JSON with the review engineers write.

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
    AlarmEvent, FaultId, FaultRecord, IncidentReport, MAX_AUTHOR_BYTES, Metric, PROBE_OBJECT,
    Review, SeriesKey, Timestamp, TransitionKind, printable,
};
use crate::northbound::api::authorize;
use crate::northbound::reply::{ApiError, ApiResult, bad_request, json_body, unavailable};
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
    let review = store.review(id)?;
    if let Some(mut kept) = store.incident_report(id)? {
        kept.review = review.unwrap_or_default();
        return Ok(Some(kept));
    }
    let Some(fault) = store.fault(id)? else {
        return Ok(None);
    };
    Ok(Some(assemble_from(store, config, &fault, review, now)?))
}

fn assemble_from(
    store: &Store,
    config: &Config,
    fault: &FaultRecord,
    review: Option<Review>,
    now: Timestamp,
) -> Result<IncidentReport, StoreError> {
    // The transitions of its reduction key while it was open: a reopened fault has had more
    // than one alarm id.
    let until = fault.cleared_at.unwrap_or(Timestamp::from_millis(i64::MAX));
    let history: Vec<AlarmEvent> = store
        .history_after(0, usize::MAX)?
        .into_iter()
        .filter(|e| {
            let a = &e.alarm;
            a.device == fault.device
                && a.object == fault.object
                && a.condition == fault.condition
                && e.at >= fault.raised_at
                && e.at <= until
        })
        .collect();
    let faults = store.faults()?;
    let actions = store.actions_of_fault(fault.id)?;
    let mut complaints = store.complaints()?;
    complaints.retain(|c| c.link.as_ref().is_some_and(|l| l.fault == fault.id));
    let probe_p95 = probe_p95(store, &fault.device);
    let sources = Sources {
        fault,
        history: &history,
        faults: &faults,
        actions: &actions,
        complaints: &complaints,
        review,
        probe_p95: &probe_p95,
    };
    Ok(assemble(&sources, &config.tiers, &config.reports, now))
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

/// Assembles and keeps the report of every closed fault at or above `[reports] min-severity`
/// that has none yet; returns how many.
fn catch_up(store: &Store, config: &Config) -> Result<usize, StoreError> {
    let mut n = 0;
    for f in store.faults()? {
        if f.cleared_at.is_some()
            && f.peak_severity >= config.reports.min_severity
            && store.incident_report(f.id)?.is_none()
        {
            keep(store, config, &f)?;
            n += 1;
        }
    }
    Ok(n)
}

fn keep(store: &Store, config: &Config, f: &FaultRecord) -> Result<(), StoreError> {
    let r = assemble_from(store, config, f, store.review(f.id)?, Timestamp::now())?;
    store.put_incident_report(&r)?;
    tracing::info!(fault = %f.id, device = %f.device, condition = %f.condition, "post-incident report assembled");
    Ok(())
}

/// Follows the committed transitions until `stop`: each clear of a serious fault gets its
/// report. Catches up at start and whenever it fell behind the bus.
pub async fn run(
    store: Store,
    config: watch::Receiver<Arc<Config>>,
    mut events: broadcast::Receiver<AlarmEvent>,
    stop: CancellationToken,
) {
    let caught = |store: &Store, config: &Config| {
        if let Err(e) = catch_up(store, config) {
            tracing::error!(error = %e, "cannot assemble post-incident reports");
        }
    };
    caught(&store, &config.borrow());
    loop {
        let e = tokio::select! {
            () = stop.cancelled() => return,
            e = events.recv() => e,
        };
        let config = config.borrow().clone();
        match e {
            Ok(e) if e.kind == TransitionKind::Cleared => {
                let closed = store.faults_of_alarm(e.alarm.alarm_id).map(|fs| {
                    fs.into_iter()
                        .filter(|f| f.cleared_at.is_some())
                        .max_by_key(|f| f.id)
                });
                match closed {
                    Ok(Some(f)) if f.peak_severity >= config.reports.min_severity => {
                        if let Err(e) = keep(&store, &config, &f) {
                            tracing::error!(error = %e, fault = %f.id, "cannot assemble a post-incident report");
                        }
                    }
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "cannot read a cleared alarm's fault"),
                }
            }
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(_)) => caught(&store, &config),
            Err(broadcast::error::RecvError::Closed) => return,
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
    let config = s.config.borrow().clone();
    let r = report_of(&s.store, &config, id, Timestamp::now())
        .map_err(unavailable)?
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
