//! The HTTP listener: `/healthz`, `/readyz`, `/metrics`, and the `/api/v1` routes of
//! [`crate::northbound::api`].

use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::northbound::reply::json_error;
use crate::northbound::state::HttpState;
use crate::northbound::{api, stream};

/// The routes.
pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/v1/alarms/stream", get(stream::stream))
        .merge(api::routes())
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
    } else if let Some(reason) = s.store.failure() {
        json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("store failed ({reason}); restarting to recover"),
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
