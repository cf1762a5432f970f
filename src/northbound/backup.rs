//! `GET /api/v1/store/backup` and `GET /api/v1/store/check`: a running daemon's store, backed
//! up and checked without stopping it.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::northbound::api::authorize;
use crate::northbound::reply::{ApiError, ApiResult, off_worker, unavailable};
use crate::northbound::state::HttpState;

/// The store routes.
pub fn routes() -> Router<HttpState> {
    Router::new()
        .route("/api/v1/store/backup", get(backup))
        .route("/api/v1/store/check", get(check))
}

/// The whole store as a backup file. The alarm stage holds still while it is read, so the
/// alarm trees agree with each other; the file is built in memory (about the store's size).
/// Needs the token: it is everything the store holds.
async fn backup(State(s): State<HttpState>, headers: HeaderMap) -> ApiResult {
    authorize(s.token.as_ref(), &headers)?;
    let held = s.commander.hold().await.map_err(unavailable)?;
    let store = s.store.clone();
    let written = tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        store.backup(&mut out).map(|summary| (out, summary))
    })
    .await;
    drop(held);
    let (bytes, summary) = written
        .map_err(unavailable)?
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    tracing::info!(%summary, "store backed up through the API");
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}

/// `{"problems": [...]}`: empty when the store is sound.
async fn check(State(s): State<HttpState>) -> ApiResult {
    let store = s.store.clone();
    let problems = off_worker(move || store.check()).await?;
    let body: Response = axum::Json(serde_json::json!({ "problems": problems })).into_response();
    Ok(body)
}
