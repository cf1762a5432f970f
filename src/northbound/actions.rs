//! The automated-handling API: actions and their audit trail (read like faults, no token),
//! approvals and breaker resets (the token, and who), the rules, and the report.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

use crate::config::Topology;
use crate::fault::actions::action_report;
use crate::message::{ActionAnswer, ActionCommand, CommandError};
use crate::model::{
    ActionError, ActionId, ActionRecord, ActionState, FaultId, MAX_AUTHOR_BYTES, RuleState,
    Timestamp, Trigger, printable,
};
use crate::northbound::api::authorize;
use crate::northbound::params::time_param;
use crate::northbound::reply::{ApiError, ApiResult, bad_request, json_body, unavailable};
use crate::northbound::state::HttpState;

/// The routes.
pub fn routes() -> Router<HttpState> {
    Router::new()
        .route("/api/v1/actions", get(list))
        .route("/api/v1/actions/report", get(report))
        .route("/api/v1/actions/rules", get(rules))
        .route("/api/v1/actions/rules/{name}/reset", post(reset))
        .route("/api/v1/actions/{id}", get(show))
        .route("/api/v1/actions/{id}/{decision}", post(decide))
}

/// `GET /api/v1/actions`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// `open`, `ended`, `all` (default) or one state (`awaiting-approval`, `unknown`, ...).
    state: Option<String>,
    rule: Option<String>,
    device: Option<String>,
    fault: Option<u64>,
    /// Planned at or after (RFC 3339 or an age).
    since: Option<String>,
    /// At most this many, newest first (default 100).
    limit: Option<usize>,
}

async fn list(
    State(s): State<HttpState>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    let Query(q) = query.map_err(|e| bad_request(e.body_text()))?;
    let since = time_param(q.since.as_deref(), Timestamp::now())?;
    let state = q.state.as_deref().unwrap_or("all");
    let keep_state: Box<dyn Fn(ActionState) -> bool + Send> = match state {
        "all" => Box::new(|_| true),
        "open" => Box::new(|s: ActionState| !s.is_final()),
        "ended" => Box::new(ActionState::is_final),
        other => {
            let wanted: ActionState = other
                .parse()
                .map_err(|e| bad_request(format!("{e}; or open, ended, all")))?;
            Box::new(move |s| s == wanted)
        }
    };
    let mut items: Vec<ActionRecord> = s
        .store
        .actions()
        .map_err(unavailable)?
        .into_iter()
        .filter(|a| {
            keep_state(a.state)
                && q.rule.as_deref().is_none_or(|r| a.rule == r)
                && q.device.as_deref().is_none_or(|d| a.device == d)
                && q.fault.is_none_or(|f| a.fault_id == FaultId(f))
                && since.is_none_or(|t| a.created_at >= t)
        })
        .collect();
    let total = items.len();
    items.reverse();
    items.truncate(q.limit.unwrap_or(100).min(10_000));
    let items: Vec<serde_json::Value> = items.iter().map(shown).collect();
    Ok(axum::Json(serde_json::json!({ "total": total, "items": items })).into_response())
}

/// An action as the API shows it: the record, each step with `what` it does in words.
pub fn shown(a: &ActionRecord) -> serde_json::Value {
    let mut v = serde_json::to_value(a).unwrap_or_default();
    if let Some(steps) = v["steps"].as_array_mut() {
        for (step, s) in steps.iter_mut().zip(&a.steps) {
            step["what"] = s.plan.describe().into();
        }
    }
    v
}

fn action_id(id: &str) -> Result<ActionId, ApiError> {
    id.parse()
        .map(ActionId)
        .map_err(|_| bad_request(format!("`{}` is not an action id", printable(id))))
}

async fn show(State(s): State<HttpState>, Path(id): Path<String>) -> ApiResult {
    let id = action_id(&id)?;
    match s.store.action(id).map_err(unavailable)? {
        Some(a) => Ok(axum::Json(shown(&a)).into_response()),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no action {id}"),
        )),
    }
}

/// Body of the approve, reject and reset calls.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ByBody {
    by: String,
}

fn by(headers: &HeaderMap, body: &Bytes) -> Result<String, ApiError> {
    let b: ByBody = json_body(headers, body, "{\"by\": NAME}")?;
    let by = b.by.trim().to_owned();
    if by.is_empty() || by.len() > MAX_AUTHOR_BYTES || by.chars().any(char::is_control) {
        return Err(bad_request(format!(
            "`by` is 1 to {MAX_AUTHOR_BYTES} bytes without control characters"
        )));
    }
    Ok(by)
}

/// `POST /api/v1/actions/{id}/approve|reject`.
async fn decide(
    State(s): State<HttpState>,
    headers: HeaderMap,
    Path((id, decision)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    authorize(s.token.as_ref(), &headers)?;
    let id = action_id(&id)?;
    let approved = match decision.as_str() {
        "approve" => true,
        "reject" => false,
        other => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!(
                    "unknown decision `{}`: expected approve or reject",
                    printable(other)
                ),
            ));
        }
    };
    let by = by(&headers, &body)?;
    let command = ActionCommand::Decide { id, by, approved };
    match s.commander.action(command).await.map_err(refused)? {
        ActionAnswer::Action(a) => Ok(axum::Json(shown(&a)).into_response()),
        ActionAnswer::Rule(..) => Err(unavailable("unexpected answer")),
    }
}

/// `POST /api/v1/actions/rules/{name}/reset`.
async fn reset(
    State(s): State<HttpState>,
    headers: HeaderMap,
    Path(rule): Path<String>,
    body: Bytes,
) -> ApiResult {
    authorize(s.token.as_ref(), &headers)?;
    let by = by(&headers, &body)?;
    match s
        .commander
        .action(ActionCommand::Reset { rule, by })
        .await
        .map_err(refused)?
    {
        ActionAnswer::Rule(name, state) => {
            Ok(axum::Json(serde_json::json!({ "rule": name, "breaker": state })).into_response())
        }
        ActionAnswer::Action(_) => Err(unavailable("unexpected answer")),
    }
}

fn refused(e: CommandError) -> ApiError {
    match e {
        CommandError::Action(a @ (ActionError::Unknown(_) | ActionError::UnknownRule(_))) => {
            ApiError::new(StatusCode::NOT_FOUND, a.to_string())
        }
        CommandError::Action(a) => ApiError::new(StatusCode::CONFLICT, a.to_string()),
        other => unavailable(other),
    }
}

/// A rule as the API shows it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RuleView<'a> {
    name: &'a str,
    description: &'a str,
    mode: &'static str,
    on: Vec<&'static str>,
    require_approval: bool,
    once_per_fault: bool,
    steps: usize,
    breaker: RuleState,
}

/// `GET /api/v1/actions/rules`.
async fn rules(State(s): State<HttpState>) -> ApiResult {
    let config = s.config.borrow().clone();
    let states = s.store.rule_states().map_err(unavailable)?;
    let items: Vec<RuleView> = config
        .actions_rules
        .iter()
        .map(|r| RuleView {
            name: &r.name,
            description: &r.description,
            mode: r.mode.name(),
            on: r.on.iter().map(|t: &Trigger| t.name()).collect(),
            require_approval: r.require_approval,
            once_per_fault: r.once_per_fault,
            steps: r.steps.len(),
            breaker: states
                .iter()
                .find(|(n, _)| *n == r.name)
                .map(|(_, s)| s.clone())
                .unwrap_or_default(),
        })
        .collect();
    let body = serde_json::json!({ "enabled": config.actions.enabled, "items": items });
    Ok(axum::Json(body).into_response())
}

/// `GET /api/v1/actions/report`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportQuery {
    /// Planned at or after (RFC 3339 or an age; default 30 days).
    since: Option<String>,
    until: Option<String>,
}

async fn report(
    State(s): State<HttpState>,
    query: Result<Query<ReportQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    let Query(q) = query.map_err(|e| bad_request(e.body_text()))?;
    let now = Timestamp::now();
    let since = time_param(q.since.as_deref(), now)?
        .unwrap_or(now.minus(std::time::Duration::from_secs(30 * 86_400)));
    let until = time_param(q.until.as_deref(), now)?.unwrap_or(now);
    let config = s.config.borrow().clone();
    let r = action_report(
        &config.actions_rules,
        &Topology::new(&config.devices),
        &s.store.actions().map_err(unavailable)?,
        &s.store.faults().map_err(unavailable)?,
        &s.store.rule_states().map_err(unavailable)?,
        since,
        until,
    );
    Ok(axum::Json(r).into_response())
}
