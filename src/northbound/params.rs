//! Query parameters shared by the API and the stream, parsed with the model's own names.

use crate::model::{Category, Severity, Timestamp};
use crate::northbound::reply::{ApiError, bad_request};

/// `since`/`until`: RFC 3339, or an age before `now` such as `7d`.
pub fn time_param(value: Option<&str>, now: Timestamp) -> Result<Option<Timestamp>, ApiError> {
    value
        .map(|v| Timestamp::parse_time_or_age(v, now).map_err(bad_request))
        .transpose()
}

/// A minimum severity filter (`cleared` is none).
pub fn severity_param(value: Option<&str>) -> Result<Option<Severity>, ApiError> {
    value
        .map(|v| {
            Severity::raised(v).ok_or_else(|| {
                bad_request(format!(
                    "unknown severity `{v}`: expected warning, minor, major or critical"
                ))
            })
        })
        .transpose()
}

/// A category filter.
pub fn category_param(value: Option<&str>) -> Result<Option<Category>, ApiError> {
    value
        .map(|v| {
            v.parse::<Category>()
                .map_err(|_| bad_request(format!("unknown category `{v}`")))
        })
        .transpose()
}
