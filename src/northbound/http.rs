//! The HTTP listener: `/healthz`, `/readyz`, `/metrics`, the `/api/v1` routes of
//! [`crate::northbound::api`], and the console of [`crate::northbound::console`].
//!
//! Its own accept loop (over hyper) rather than `axum::serve`, for what a server facing a
//! network needs and axum does not offer: a header-read timeout that also closes idle
//! kept-alive connections, a cap on connections, and past the cap a small reserve that serves
//! only health and metrics, so a flood of slow clients cannot blind the monitoring of the
//! monitor. Past the reserve a connection is closed at once (counted), which keeps the kernel's
//! accept queue moving.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::HttpConfig;
use crate::northbound::reply::json_error;
use crate::northbound::state::HttpState;
use crate::northbound::{
    actions, api, backup, capacity, complaints, console, impact, incident, stream,
};
use crate::telemetry::{HttpLane, HttpRefusal};

/// Connections past `http.max-connections` that may still ask for health and metrics.
const RESERVE: usize = 32;
/// A reserve connection's time to send its one request: probes and scrapers send at once.
const RESERVE_HEADER_TIMEOUT: Duration = Duration::from_secs(1);
/// Pause after a failed accept (out of descriptors), so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// The routes.
pub fn router(state: HttpState, request_timeout: Duration) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/v1/alarms/stream", get(stream::stream))
        .merge(api::routes())
        .merge(actions::routes())
        .merge(incident::routes())
        .merge(capacity::routes())
        .merge(impact::routes())
        .merge(complaints::routes())
        .merge(backup::routes())
        .merge(console::routes())
        .fallback(not_found)
        .layer(axum::middleware::from_fn(move |request, next| {
            within(request_timeout, request, next)
        }))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ))
        .layer(axum::middleware::from_fn(security_headers))
        .with_state(state)
}

/// The console's pages only run their own files: no inline script or style, nothing from
/// elsewhere, never inside a frame (clickjacking an ack button). Sent on every answer, so an
/// API error page opened in a browser is just as inert.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

async fn security_headers(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::X_FRAME_OPTIONS,
        header::HeaderValue::from_static("DENY"),
    );
    h.insert(
        header::REFERRER_POLICY,
        header::HeaderValue::from_static("no-referrer"),
    );
    response
}

/// What the reserve serves: health and metrics; anything else is told to come back.
fn reserve_router(state: HttpState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(async || {
            json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many connections; only /healthz, /readyz and /metrics are served now",
            )
        })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ))
        .with_state(state)
}

/// Answers 408 for a request (its body included) that takes longer than `limit`. The live
/// stream answers at once and streams after, so it is not cut.
async fn within(
    limit: Duration,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => json_error(
            StatusCode::REQUEST_TIMEOUT,
            &format!("the request took longer than {limit:?}"),
        ),
    }
}

/// One lane of connections: its routes, its slots and its timeouts.
struct Lane {
    name: HttpLane,
    app: Router,
    slots: Arc<Semaphore>,
    header_timeout: Duration,
    keep_alive: bool,
}

/// Serves until `stop` fires; connections then finish their current request.
pub async fn serve(
    listener: TcpListener,
    state: HttpState,
    config: &HttpConfig,
    stop: CancellationToken,
) -> std::io::Result<()> {
    let metrics = state.metrics.clone();
    let lanes = Arc::new([
        Lane {
            name: HttpLane::Api,
            app: router(state.clone(), config.request_timeout),
            slots: Arc::new(Semaphore::new(config.max_connections)),
            header_timeout: config.header_timeout,
            keep_alive: true,
        },
        Lane {
            name: HttpLane::Reserve,
            app: reserve_router(state),
            slots: Arc::new(Semaphore::new(RESERVE)),
            header_timeout: RESERVE_HEADER_TIMEOUT,
            keep_alive: false,
        },
    ]);
    let connections = TaskTracker::new();
    let mut accept_failures = 0u64;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stop.cancelled() => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                metrics.http_refusal(HttpRefusal::AcceptError).inc();
                accept_failures += 1;
                // Powers of two: a lasting shortage of descriptors logs rarely.
                if accept_failures.is_power_of_two() {
                    tracing::warn!(error = %e, failures = accept_failures, "http: cannot accept connections");
                }
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let Some((lane, permit)) = lanes.iter().enumerate().find_map(|(i, l)| {
            let permit = l.slots.clone().try_acquire_owned().ok()?;
            Some((i, permit))
        }) else {
            metrics.http_refusal(HttpRefusal::Full).inc();
            drop(stream);
            continue;
        };
        let gauge = metrics.http_lane(lanes[lane].name);
        connections.spawn(connection(
            stream,
            lanes.clone(),
            lane,
            permit,
            gauge,
            stop.clone(),
        ));
    }
    connections.close();
    connections.wait().await;
    Ok(())
}
/// Serves one connection on its lane until it closes, times out, or the daemon stops (then
/// its current request finishes first).
async fn connection(
    stream: TcpStream,
    lanes: Arc<[Lane; 2]>,
    lane: usize,
    permit: OwnedSemaphorePermit,
    open: prometheus::IntGauge,
    stop: CancellationToken,
) {
    let lane = &lanes[lane];
    open.inc();
    let _ = stream.set_nodelay(true);
    let service = TowerToHyperService::new(lane.app.clone());
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(lane.header_timeout)
        .keep_alive(lane.keep_alive);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    // A closed or timed-out connection is the client's business; nothing to report.
    tokio::select! {
        _ = conn.as_mut() => {}
        () = stop.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
    open.dec();
    drop(permit);
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
