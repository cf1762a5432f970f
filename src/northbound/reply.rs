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
