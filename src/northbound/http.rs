//! The HTTP listener: `/healthz`, `/readyz`, `/metrics`, and the `/api/v1` routes of
//! [`crate::northbound::api`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use tokio::sync::{broadcast, watch};

use crate::alarm::stage::Commander;
use crate::config::{Config, Secret};
use crate::model::{AlarmEvent, Timestamp};
use crate::northbound::metrics::Metrics;
use crate::store::Store;

/// What the handlers read.
#[derive(Clone)]
pub struct HttpState {
    /// Metrics to expose.
    pub metrics: Arc<Metrics>,
    /// The store, for its size and health.
    pub store: Store,
    /// Set once every socket is bound and the pipeline runs; cleared when stopping.
    pub ready: Arc<AtomicBool>,
    /// Engineers' commands to the alarm stage.
    pub commander: Commander,
    /// Bearer token for writes; `None` disables them.
    pub token: Option<Secret>,
    /// Published alarm transitions, for the live stream.
    pub events: broadcast::Sender<AlarmEvent>,
    /// The first sequence number of this run: a stream resumed from before it is told the
    /// daemon restarted.
    pub first_seq: u64,
    /// When this run started.
    pub started_at: Timestamp,
    /// Fires at shutdown; live streams end on it.
    pub stop: CancellationToken,
    /// The running config (devices and config-defined maintenance windows).
    pub config: watch::Receiver<Arc<Config>>,
}

/// The routes.
pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(crate::northbound::api::routes())
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ))
        .with_state(state)
}

/// Serves until `stop` fires; connections then finish their current request.
pub async fn serve(
    listener: TcpListener,
    state: HttpState,
    stop: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await
}

/// An error response: `{"error": message}` with the status.
pub fn json_error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
}

/// Counts every request by its route pattern (bounded label values; unmatched paths share one).
async fn count_requests(
    State(s): State<HttpState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    s.metrics
        .http_requests
        .with_label_values(&[route.as_str(), response.status().as_str()])
        .inc();
    response
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(s): State<HttpState>) -> Response {
    if !s.ready.load(Ordering::Relaxed) {
        json_error(StatusCode::SERVICE_UNAVAILABLE, "starting or stopping")
    } else if s.store.flush_failing() {
        json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "store cannot flush to disk",
        )
    } else {
        "ready\n".into_response()
    }
}

async fn metrics(State(s): State<HttpState>) -> Response {
    s.metrics
        .store_size
        .set(i64::try_from(s.store.size_on_disk()).unwrap_or(i64::MAX));
    // Read at scrape time: the outbox grows exactly when the publisher is not running.
    s.metrics
        .mqtt_outbox_depth
        .set(i64::try_from(s.store.outbox_depth()).unwrap_or(i64::MAX));
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.metrics.render(),
    )
        .into_response()
}

async fn not_found() -> Response {
    json_error(StatusCode::NOT_FOUND, "no such endpoint")
}
