//! The complaints API: the CRM posts a complaint and is told at once which known fault explains
//! it; agents acknowledge and resolve; everyone lists. Every endpoint needs the token (a
//! complaint is about a customer).

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

use crate::fault::GroupBy;
use crate::message::{CommandError, ComplaintCommand};
use crate::model::{
    Channel, Complaint, ComplaintError, ComplaintState, MAX_AUTHOR_BYTES, NewComplaint, Subject,
    Symptom, Timestamp, printable,
};
use crate::northbound::api::authorize;
use crate::northbound::params::time_param;
use crate::northbound::reply::{ApiError, ApiResult, bad_request, json_body, unavailable};
use crate::northbound::state::HttpState;

/// Longest complaint id (the CRM's ticket number).
pub const MAX_COMPLAINT_ID: usize = 64;
/// A complaint received further in the future than this is refused (a clock that is wrong).
const FUTURE_SLACK_MS: i64 = 5 * 60 * 1000;

/// The routes.
pub fn routes() -> Router<HttpState> {
    Router::new()
        .route("/api/v1/complaints", get(list).post(receive))
        .route("/api/v1/complaints/report", get(report))
        .route("/api/v1/complaints/{id}", get(show))
        .route("/api/v1/complaints/{id}/{action}", post(act))
}

/// `POST /api/v1/complaints`: exactly one of `customer`, `site`, `cell`, `service`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ComplaintBody {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    customer: Option<String>,
    #[serde(default)]
    site: Option<String>,
    #[serde(default)]
    cell: Option<String>,
    #[serde(default)]
    service: Option<String>,
    channel: String,
    symptom: String,
    #[serde(default)]
    text: String,
    /// RFC 3339; now if absent.
    #[serde(default)]
    received_at: Option<String>,
}

async fn receive(State(s): State<HttpState>, headers: HeaderMap, body: Bytes) -> ApiResult {
    authorize(s.token.as_ref(), &headers)?;
    let b: ComplaintBody = json_body(&headers, &body, "a complaint")?;
    let config = s.config.borrow().clone();
    let now = Timestamp::now();
    if let Some(id) = &b.id {
        check_id(id)?;
    }
    let channel: Channel = b.channel.parse().map_err(|e| bad_request(format!("{e}")))?;
    let symptom: Symptom = b.symptom.parse().map_err(|e| bad_request(format!("{e}")))?;
    let text = b.text.trim().to_owned();
    let max = config.complaints.max_text_bytes;
    if text.len() > max {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the text is {} bytes; at most {max} (complaints.max-text-bytes)",
                text.len()
            ),
        ));
    }
    let received_at = match &b.received_at {
        None => now,
        Some(t) => Timestamp::parse_rfc3339(t)
            .map_err(|e| bad_request(format!("receivedAt `{}`: {e}", printable(t))))?,
    };
    if received_at.as_millis() > now.as_millis() + FUTURE_SLACK_MS {
        return Err(bad_request("receivedAt is in the future"));
    }
    let subject = Subject::named(
        b.customer.as_deref(),
        b.site.as_deref(),
        b.cell.as_deref(),
        b.service.as_deref(),
    )
    .map_err(bad_request)?;
    let new = NewComplaint {
        id: b.id,
        subject,
        channel,
        symptom,
        text,
        received_at,
    };
    let c = s
        .commander
        .complaint(ComplaintCommand::Receive(new, now))
        .await
        .map_err(refused)?;
    Ok((StatusCode::CREATED, axum::Json(Answer::of(&c))).into_response())
}

/// A complaint and, in words, what explains it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Answer<'a> {
    #[serde(flatten)]
    complaint: &'a Complaint,
    place_name: String,
    explained: bool,
}

impl<'a> Answer<'a> {
    fn of(c: &'a Complaint) -> Self {
        Self {
            complaint: c,
            place_name: c.place.to_string(),
            explained: c.link.is_some(),
        }
    }
}

fn check_id(id: &str) -> Result<(), ApiError> {
    if id.trim().is_empty() || id.len() > MAX_COMPLAINT_ID || id.chars().any(char::is_control) {
        return Err(bad_request(format!(
            "a complaint id is 1 to {MAX_COMPLAINT_ID} bytes without control characters"
        )));
    }
    Ok(())
}

fn refused(e: CommandError) -> ApiError {
    match e {
        CommandError::Complaint(c @ ComplaintError::Duplicate(_)) => {
            ApiError::new(StatusCode::CONFLICT, c.to_string())
        }
        CommandError::Complaint(c @ ComplaintError::Unknown(_)) => {
            ApiError::new(StatusCode::NOT_FOUND, c.to_string())
        }
        CommandError::Complaint(c @ ComplaintError::Resolved(_)) => {
            ApiError::new(StatusCode::CONFLICT, c.to_string())
        }
        CommandError::Complaint(
            c @ (ComplaintError::UnknownCustomer | ComplaintError::UnknownPlace(_)),
        ) => ApiError::new(StatusCode::NOT_FOUND, c.to_string()),
        other => unavailable(other),
    }
}

/// `GET /api/v1/complaints`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// `open` (default), `resolved` or `all`.
    state: Option<String>,
    /// Received at or after (RFC 3339 or an age).
    since: Option<String>,
}

async fn list(
    State(s): State<HttpState>,
    headers: HeaderMap,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    authorize(s.token.as_ref(), &headers)?;
    let Query(q) = query.map_err(|e| bad_request(e.body_text()))?;
    let since = time_param(q.since.as_deref(), Timestamp::now())?;
    let keep: fn(&Complaint) -> bool = match q.state.as_deref().unwrap_or("open") {
        "open" => |c| c.state != ComplaintState::Resolved,
        "resolved" => |c| c.state == ComplaintState::Resolved,
        "all" => |_| true,
        other => {
            return Err(bad_request(format!(
                "unknown state `{}`: expected open, resolved or all",
                printable(other)
            )));
        }
    };
    let mut items: Vec<Complaint> = s
        .store
        .complaints()
        .map_err(unavailable)?
        .into_iter()
        .filter(|c| keep(c) && since.is_none_or(|t| c.received_at >= t))
        .collect();
    items.sort_by_key(|c| std::cmp::Reverse(c.received_at));
    let items: Vec<Answer> = items.iter().map(Answer::of).collect();
    Ok(axum::Json(serde_json::json!({ "total": items.len(), "items": items })).into_response())
}

/// `GET /api/v1/complaints/report`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportQuery {
    /// fault (default), service or site.
    by: Option<GroupBy>,
    /// Received at or after (RFC 3339 or an age; default 30 days).
    since: Option<String>,
    until: Option<String>,
}

async fn report(
    State(s): State<HttpState>,
    headers: HeaderMap,
    query: Result<Query<ReportQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    authorize(s.token.as_ref(), &headers)?;
    let Query(q) = query.map_err(|e| bad_request(e.body_text()))?;
    let now = Timestamp::now();
    let by = q.by.unwrap_or(GroupBy::Fault);
    if !matches!(by, GroupBy::Fault | GroupBy::Service | GroupBy::Site) {
        return Err(bad_request(format!(
            "complaints group by fault, service or site, not `{}`",
            by.name()
        )));
    }
    let since = time_param(q.since.as_deref(), now)?
        .unwrap_or(now.minus(std::time::Duration::from_secs(30 * 86_400)));
    let until = time_param(q.until.as_deref(), now)?.unwrap_or(now);
    let complaints = s.store.complaints().map_err(unavailable)?;
    let faults = s.store.faults().map_err(unavailable)?;
    let r = crate::fault::complaints::complaint_report(&complaints, &faults, by, since, until);
    Ok(axum::Json(r).into_response())
}

async fn show(State(s): State<HttpState>, headers: HeaderMap, Path(id): Path<String>) -> ApiResult {
    authorize(s.token.as_ref(), &headers)?;
    match s.store.complaint(&id).map_err(unavailable)? {
        Some(c) => Ok(axum::Json(Answer::of(&c)).into_response()),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no complaint `{}`", printable(&id)),
        )),
    }
}

/// `POST /api/v1/complaints/{id}/ack|resolve`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ActBody {
    by: String,
    #[serde(default)]
    note: Option<String>,
}

async fn act(
    State(s): State<HttpState>,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    authorize(s.token.as_ref(), &headers)?;
    let b: ActBody = json_body(&headers, &body, "{\"by\": NAME, \"note\": TEXT}")?;
    let by = b.by.trim().to_owned();
    if by.is_empty() || by.len() > MAX_AUTHOR_BYTES {
        return Err(bad_request(format!(
            "`by` is 1 to {MAX_AUTHOR_BYTES} bytes"
        )));
    }
    let max = s.config.borrow().complaints.max_text_bytes;
    let note = b.note.unwrap_or_default().trim().to_owned();
    if note.len() > max {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the note is {} bytes; at most {max}", note.len()),
        ));
    }
    let command = match action.as_str() {
        "ack" => ComplaintCommand::Ack { id, by },
        "resolve" if note.is_empty() => {
            return Err(bad_request("resolving needs a note: how was it resolved?"));
        }
        "resolve" => ComplaintCommand::Resolve { id, by, note },
        other => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!(
                    "unknown action `{}`: expected ack or resolve",
                    printable(other)
                ),
            ));
        }
    };
    let c = s.commander.complaint(command).await.map_err(refused)?;
    Ok(axum::Json(Answer::of(&c)).into_response())
}
