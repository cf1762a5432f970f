//! The service and customer API: services and their status, the customer-service lookup, and
//! the CRM import.
//!
//! Customer ids are personal data: every customer endpoint needs the token even to read, ids
//! are never logged, and `/metrics` counts only totals.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::impact::Affected;
use crate::impact::customers::{self, Places, RowError};
use crate::model::{Alarm, Place, ServiceState, Subject, Timestamp};
use crate::northbound::api::authorize;
use crate::northbound::reply::{ApiError, ApiResult, bad_request, unavailable};
use crate::northbound::state::HttpState;
use crate::store::{ImportSummary, Tree};

/// Largest CSV body of one import request; the CLI sends a file in parts of this size or less.
pub const MAX_IMPORT_BYTES: usize = 64 << 20;

/// The routes.
pub fn routes() -> Router<HttpState> {
    Router::new()
        .route("/api/v1/services", get(list_services))
        .route("/api/v1/services/{name}", get(show_service))
        .route("/api/v1/impact", get(lookup))
        .route(
            "/api/v1/customers",
            post(import).layer(axum::extract::DefaultBodyLimit::max(MAX_IMPORT_BYTES)),
        )
}

/// A service as the API shows it: its committed state and what it is.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ServiceView<'a> {
    #[serde(flatten)]
    state: &'a ServiceState,
    description: &'a str,
    reduce: &'static str,
    members: Vec<String>,
}

fn view<'a>(config: &'a Config, state: &'a ServiceState) -> ServiceView<'a> {
    let c = config.services.iter().find(|s| s.name == state.name);
    ServiceView {
        state,
        description: c.map_or("", |c| c.description.as_str()),
        reduce: c.map_or("highest", |c| c.reduce.name()),
        members: c
            .map(|c| c.members.iter().map(|m| m.describe()).collect())
            .unwrap_or_default(),
    }
}

async fn list_services(State(s): State<HttpState>) -> ApiResult {
    let impact = s.impact.borrow().clone();
    let config = s.config.borrow().clone();
    let items: Vec<ServiceView> = impact
        .services()
        .iter()
        .map(|st| view(&config, st))
        .collect();
    Ok(axum::Json(serde_json::json!({ "items": items })).into_response())
}

async fn show_service(State(s): State<HttpState>, Path(name): Path<String>) -> ApiResult {
    let impact = s.impact.borrow().clone();
    let config = s.config.borrow().clone();
    let Some(state) = impact.service(&name) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no service `{}`", crate::model::printable(&name)),
        ));
    };
    // The alarms that explain the status, as they are now.
    let mut alarms = Vec::new();
    for id in &state.underlying_alarm {
        let a: Option<Alarm> = s
            .store
            .get(Tree::ActiveAlarms, &id.0.to_be_bytes())
            .map_err(unavailable)?;
        alarms.extend(a);
    }
    Ok(axum::Json(serde_json::json!({
        "service": view(&config, state),
        "alarms": alarms,
    }))
    .into_response())
}

/// `GET /api/v1/impact`: exactly one of these.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LookupQuery {
    customer: Option<String>,
    site: Option<String>,
    cell: Option<String>,
    service: Option<String>,
}

/// One fault in a lookup's answer: what a call-centre agent reads out.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Explanation<'a> {
    #[serde(flatten)]
    fault: &'a Affected,
    /// `active` or `cleared`.
    state: &'static str,
    /// When service should be back by the tier's restore target (`None`: no target).
    restore_by: Option<Timestamp>,
}

async fn lookup(
    State(s): State<HttpState>,
    headers: HeaderMap,
    query: Result<Query<LookupQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    authorize(s.token.as_ref(), &headers)?;
    let Query(q) = query.map_err(|e| bad_request(e.body_text()))?;
    let config = s.config.borrow().clone();
    let places = Places::new(&config);
    let subject = Subject::named(
        q.customer.as_deref(),
        q.site.as_deref(),
        q.cell.as_deref(),
        q.service.as_deref(),
    )
    .map_err(bad_request)?;
    let place = match subject {
        Subject::Customer(id) => {
            let key = s.customer_keys.key(&id);
            s.store
                .customer_place(&key)
                .map_err(unavailable)?
                .ok_or_else(|| {
                    ApiError::new(
                        StatusCode::NOT_FOUND,
                        "unknown customer (not in any import)",
                    )
                })?
        }
        Subject::Place(p) => {
            places
                .check(&p)
                .map_err(|e| ApiError::new(StatusCode::NOT_FOUND, e))?;
            p
        }
    };
    let now = Timestamp::now();
    let impact = s.impact.borrow().clone();
    let faults: Vec<Explanation> = impact
        .lookup(&place, now)
        .into_iter()
        .map(|f| Explanation {
            fault: f,
            state: if f.cleared_at.is_some() {
                "cleared"
            } else {
                "active"
            },
            restore_by: crate::impact::restore_within(&config.tiers, f.severity)
                .map(|d| Timestamp::from_millis(f.raised_at.as_millis().saturating_add(d))),
        })
        .collect();
    let service = match &place {
        Place::Service(name) => impact.service(name).cloned(),
        _ => None,
    };
    let affected = faults.iter().any(|f| f.fault.cleared_at.is_none());
    Ok(axum::Json(serde_json::json!({
        "place": place.to_string(),
        "affected": affected,
        "maintenance": faults.iter().any(|f| f.fault.maintenance && f.fault.cleared_at.is_none()),
        "faults": faults,
        "service": service,
        "lookBackMinutes": config.impact.recent.as_secs() / 60,
    }))
    .into_response())
}

/// `POST /api/v1/customers`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct ImportQuery {
    /// The file line of the body's header (a file sent in parts).
    #[serde(default = "first_line")]
    first_line: u64,
    /// Check only; write nothing.
    #[serde(default)]
    check: bool,
}

fn first_line() -> u64 {
    1
}

#[derive(Serialize)]
struct ImportAnswer {
    rows: u64,
    #[serde(flatten)]
    summary: ImportSummary,
    checked_only: bool,
    customers: u64,
}

#[derive(Serialize)]
struct ImportRefused<'a> {
    error: String,
    bad_rows: u64,
    errors: &'a [RowError],
}

async fn import(
    State(s): State<HttpState>,
    headers: HeaderMap,
    query: Result<Query<ImportQuery>, axum::extract::rejection::QueryRejection>,
    body: Bytes,
) -> ApiResult {
    authorize(s.token.as_ref(), &headers)?;
    let Query(q) = query.map_err(|e| bad_request(e.body_text()))?;
    let config = s.config.borrow().clone();
    let places = Places::new(&config);
    let keys = s.customer_keys.clone();
    // Imports one at a time: each reads and writes the per-place counts.
    let _turn = s.imports.lock().await;
    let store = s.store.clone();
    let done = tokio::task::spawn_blocking(move || {
        let parsed = customers::parse_csv(&body, q.first_line, &places, &keys);
        if parsed.bad > 0 {
            return Ok(Err(parsed));
        }
        let rows = parsed.rows.len() as u64;
        if q.check {
            return Ok(Ok((rows, ImportSummary::default(), None)));
        }
        let (summary, ticket) = store.import_customers(&parsed.rows)?;
        Ok(Ok((rows, summary, Some(ticket))))
    })
    .await
    .map_err(|e| unavailable(format!("import task failed: {e}")))?
    .map_err(|e: crate::store::StoreError| unavailable(e))?;
    let (rows, summary, ticket) = match done {
        Ok(ok) => ok,
        Err(parsed) => {
            s.metrics.customer_rows_refused.inc_by(parsed.bad);
            let mut error = format!("{} bad rows; nothing was imported", parsed.bad);
            for e in &parsed.errors {
                error.push_str(&format!("\n  line {}: {}", e.line, e.message));
            }
            if parsed.bad > parsed.errors.len() as u64 {
                error.push_str(&format!(
                    "\n  ... and {} more",
                    parsed.bad - parsed.errors.len() as u64
                ));
            }
            let refused = ImportRefused {
                error,
                bad_rows: parsed.bad,
                errors: &parsed.errors,
            };
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, axum::Json(refused)).into_response());
        }
    };
    let mut customers = 0;
    if let Some(ticket) = ticket {
        s.store.durable(ticket).await.map_err(unavailable)?;
        let counts = s.store.customer_counts().map_err(unavailable)?;
        customers = counts.values().sum();
        s.metrics
            .customers
            .set(i64::try_from(customers).unwrap_or(i64::MAX));
        s.metrics.customer_rows_imported.inc_by(rows);
        s.commander
            .customers(counts)
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        tracing::info!(
            rows,
            added = summary.added,
            moved = summary.moved,
            "customers imported"
        );
    }
    Ok(axum::Json(ImportAnswer {
        rows,
        summary,
        checked_only: q.check,
        customers,
    })
    .into_response())
}
