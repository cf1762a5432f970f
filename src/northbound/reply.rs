//! What a handler answers when it cannot serve: a status and `{"error": message}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// An error response: `{"error": message}` with the status.
pub fn json_error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
}

/// An API failure: a status and a message, rendered as `{"error": message}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    /// An error with any status.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// A 400 with a message.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        json_error(self.status, &self.message)
    }
}

/// What a handler returns.
pub type ApiResult = Result<Response, ApiError>;

/// A 400 with a message.
pub fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(message)
}

/// A 503: the store (or the alarm stage) could not serve the request.
pub fn unavailable(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
}

/// Runs a store read on a blocking thread: a long scan must not hold up an async worker,
/// which the SSE fan-out, the pollers and the other requests share. A failure is a 503.
pub async fn off_worker<T, E>(
    read: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, ApiError>
where
    T: Send + 'static,
    E: std::fmt::Display + Send + 'static,
{
    tokio::task::spawn_blocking(read)
        .await
        .map_err(unavailable)?
        .map_err(unavailable)
}

/// A request body as `T`: `Content-Type: application/json` (any parameters, such as a
/// charset) or 415, then valid JSON of the expected shape or a 400 that says what was
/// `expected`.
pub fn json_body<T: serde::de::DeserializeOwned>(
    headers: &axum::http::HeaderMap,
    body: &[u8],
    expected: &str,
) -> Result<T, ApiError> {
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media = content_type.split(';').next().unwrap_or("").trim();
    if !media.eq_ignore_ascii_case("application/json") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("expected Content-Type: application/json, got `{content_type}`"),
        ));
    }
    serde_json::from_slice(body).map_err(|e| bad_request(format!("expected {expected}: {e}")))
}
