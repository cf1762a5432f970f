//! The HTTP API under `/api/v1`: alarms (list, show with history, ack/unack/clear), fault
//! records and MTTR reports. Reads go to the store directly (sled serves readers alongside the
//! writer); writes go through the alarm stage, so the manager stays the only writer and a
//! command's answer means its transitions are durable.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{delete, get, post};
use serde::{Deserialize, Serialize};

use crate::config::{MaintenanceConfig, Secret};
use crate::fault::{self, FaultFilter, GroupBy};
use crate::message::{AlarmCommand, AlarmError, CommandError};
use crate::model::{
    AckState, Alarm, AlarmEvent, AlarmId, FaultId, FaultRecord, MAX_AUTHOR_BYTES, Note, NoteError,
    Timestamp, TransitionKind,
};
use crate::northbound::page::Window;
use crate::northbound::params::{category_param, severity_param, time_param};
use crate::northbound::reply::{
    ApiError, ApiResult, bad_request, json_body, off_worker, unavailable,
};
use crate::northbound::state::HttpState;
use crate::store::{Store, StoreError, Tree};

/// The `/api/v1` routes.
pub fn routes() -> Router<HttpState> {
    Router::new()
        .route("/api/v1/alarms", get(list_alarms))
        .route("/api/v1/alarms/{id}", get(show_alarm))
        .route("/api/v1/alarms/{id}/{action}", post(command))
        .route("/api/v1/faults", get(list_faults))
        .route("/api/v1/faults/{id}", get(show_fault))
        .route("/api/v1/faults/{id}/notes", post(note_fault))
        .route("/api/v1/mttr", get(mttr))
        .route("/api/v1/mttr/monthly", get(mttr_monthly))
        .route(
            "/api/v1/maintenance",
            get(list_maintenance).post(create_maintenance),
        )
        .route("/api/v1/maintenance/{name}", delete(delete_maintenance))
}

fn id_param(id: &str) -> Result<AlarmId, ApiError> {
    id.parse()
        .map(AlarmId)
        .map_err(|_| bad_request(format!("`{id}` is not an alarm id")))
}

/// Filters of `GET /api/v1/alarms`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlarmQuery {
    /// Minimum severity.
    severity: Option<String>,
    /// `active` (default), `acknowledged`, `unacknowledged` or `cleared`.
    state: Option<String>,
    device: Option<String>,
    category: Option<String>,
    /// For `cleared`: cleared at or after (RFC 3339 or an age; default 24h).
    since: Option<String>,
    /// `local` (default): this instance's alarms; `fleet`: every cluster member's active
    /// alarms, as replicated.
    scope: Option<String>,
    #[serde(default)]
    offset: usize,
    limit: Option<usize>,
}

/// Which alarms a listing reads: the active ones (by acknowledgement, if asked), or the
/// journal's clears since a time.
enum Listing {
    Active(Option<AckState>),
    Cleared(Timestamp),
}

async fn list_alarms(
    State(s): State<HttpState>,
    query: Result<Query<AlarmQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    let Query(q) = query.map_err(|e| bad_request(e.body_text()))?;
    let now = Timestamp::now();
    let min = severity_param(q.severity.as_deref())?;
    let category = category_param(q.category.as_deref())?;
    let listing = match q.state.as_deref().unwrap_or("active") {
        "active" => Listing::Active(None),
        "acknowledged" => Listing::Active(Some(AckState::Acknowledged)),
        "unacknowledged" => Listing::Active(Some(AckState::Unacknowledged)),
        "cleared" => Listing::Cleared(
            time_param(q.since.as_deref(), now)?
                .unwrap_or(now.minus(std::time::Duration::from_secs(86_400))),
        ),
        other => {
            return Err(bad_request(format!(
                "unknown state `{other}`: expected active, acknowledged, unacknowledged or cleared"
            )));
        }
    };
    let device = q.device;
    let shown = move |a: &Alarm| {
        // A cleared alarm's severity is CLEARED, so a minimum severity leaves cleared ones out.
        min.is_none_or(|m| a.perceived_severity >= m)
            && device.as_ref().is_none_or(|d| &a.device == d)
            && category.is_none_or(|c| a.category == c)
    };
    match q.scope.as_deref().unwrap_or("local") {
        "local" => {}
        "fleet" => {
            let Some(fleet) = &s.fleet else {
                return Err(bad_request(
                    "scope=fleet needs [cluster] enabled".to_owned(),
                ));
            };
            let Listing::Active(ack) = listing else {
                return Err(bad_request(
                    "scope=fleet lists active alarms: the fleet keeps no cleared history"
                        .to_owned(),
                ));
            };
            let mut page = Window::new(q.offset, q.limit, Alarm::urgency_order);
            let view = fleet.alarms.borrow().clone();
            for a in view.values().flat_map(|d| &d.alarms) {
                if ack.is_none_or(|k| a.ack_state == k) && shown(a) {
                    page.push(a.clone());
                }
            }
            return Ok(axum::Json(page.into_page()).into_response());
        }
        other => {
            return Err(bad_request(format!(
                "unknown scope `{other}`: expected local or fleet"
            )));
        }
    }
    let store = s.store.clone();
    let page = off_worker(move || {
        let mut page = Window::new(q.offset, q.limit, Alarm::urgency_order);
        match listing {
            Listing::Active(ack) => {
                for a in store.each::<Alarm>(Tree::ActiveAlarms) {
                    let a = a?;
                    if ack.is_none_or(|k| a.ack_state == k) && shown(&a) {
                        page.push(a);
                    }
                }
            }
            Listing::Cleared(since) => store.visit_durable_history(|e| {
                if e.kind == TransitionKind::Cleared && e.at >= since && shown(&e.alarm) {
                    page.push(e.alarm);
                }
            })?,
        }
        Ok::<_, StoreError>(page.into_page())
    })
    .await?;
    Ok(axum::Json(page).into_response())
}

#[derive(Serialize)]
struct AlarmWithHistory {
    alarm: Alarm,
    history: Vec<AlarmEvent>,
    /// Engineers' notes on its fault (acks' and clears' included), in order.
    notes: Vec<Note>,
    /// Its fault record (the latest, if it was reopened).
    fault: Option<FaultRecord>,
    /// Active alarms it is the root cause of (suppressed below it).
    children: Vec<Alarm>,
    /// What automated handling did, or waits to do, about it.
    actions: Vec<serde_json::Value>,
}

async fn show_alarm(State(s): State<HttpState>, Path(id): Path<String>) -> ApiResult {
    let id = id_param(&id)?;
    let store = s.store.clone();
    match off_worker(move || with_history(&store, id)).await? {
        Some(shown) => Ok(axum::Json(shown).into_response()),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no alarm {id}"),
        )),
    }
}

/// One alarm and all that is known of it, if the store has it, active or in the journal;
/// each tree read once, keeping only what concerns the alarm.
fn with_history(store: &Store, id: AlarmId) -> Result<Option<AlarmWithHistory>, StoreError> {
    let mut history = Vec::new();
    store.visit_durable_history(|e| {
        if e.alarm.alarm_id == id {
            history.push(e);
        }
    })?;
    let active: Option<Alarm> = store.get(Tree::ActiveAlarms, &id.0.to_be_bytes())?;
    let Some(alarm) = active.or_else(|| history.last().map(|e| e.alarm.clone())) else {
        return Ok(None);
    };
    let faults = store.faults_of_alarm(id)?;
    let notes = faults
        .iter()
        .flat_map(|f| f.notes.iter().cloned())
        .collect();
    let fault = faults.into_iter().max_by_key(|f| f.id.0);
    let mut children = Vec::new();
    for a in store.each::<Alarm>(Tree::ActiveAlarms) {
        let a = a?;
        if a.root_cause_alarm_id == Some(id) {
            children.push(a);
        }
    }
    children.sort_by(Alarm::urgency_order);
    let actions = store
        .actions()?
        .iter()
        .filter(|a| a.alarm_id == id)
        .map(crate::northbound::actions::shown)
        .collect();
    Ok(Some(AlarmWithHistory {
        alarm,
        history,
        notes,
        fault,
        children,
        actions,
    }))
}

/// Body of the write endpoints.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CommandBody {
    user: String,
    #[serde(default)]
    note: Option<String>,
}

#[derive(Serialize)]
struct CommandAnswer {
    transitions: Vec<AlarmEvent>,
}

async fn command(
    State(s): State<HttpState>,
    Path((id, action)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    authorize(s.token.as_ref(), &headers)?;
    let id = id_param(&id)?;
    let body: CommandBody =
        json_body(&headers, &body, r#"a JSON body {"user": ..., "note": ...}"#)?;
    if body.user.trim().is_empty() {
        return Err(bad_request("`user` must not be empty"));
    }
    if body.user.len() > MAX_AUTHOR_BYTES {
        return Err(bad_request(format!(
            "`user` is {} bytes; at most {MAX_AUTHOR_BYTES}",
            body.user.len()
        )));
    }
    if let Some(text) = body.note.as_deref().filter(|t| !t.trim().is_empty()) {
        let limits = s.config.borrow().alarms.note_limits();
        Note::new(Timestamp::now(), &body.user, text, limits).map_err(note_refused)?;
    }
    let command = match action.as_str() {
        "ack" => AlarmCommand::Ack {
            id,
            user: body.user,
            note: body.note,
        },
        "unack" => AlarmCommand::Unack {
            id,
            user: body.user,
        },
        "clear" => AlarmCommand::Clear {
            id,
            user: body.user,
            note: body.note,
        },
        other => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!("no action `{other}`: expected ack, unack or clear"),
            ));
        }
    };
    match s.commander.run(command).await {
        Ok(transitions) => Ok(axum::Json(CommandAnswer { transitions }).into_response()),
        Err(CommandError::Refused(AlarmError::NotActive(id))) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no active alarm {id}"),
        )),
        Err(e) => Err(unavailable(e)),
    }
}

/// Checks `Authorization: Bearer <token>` in constant time.
pub(super) fn authorize(token: Option<&Secret>, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(token) = token else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "writes are disabled: no http.token is configured",
        ));
    };
    // RFC 7235: the scheme is case-insensitive; RFC 6750: one or more spaces before the token.
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map_or("", |(_, token)| token.trim_start_matches(' '));
    if constant_time_eq(given.as_bytes(), token.expose().as_bytes()) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing or wrong bearer token",
        ))
    }
}

/// Compares without stopping at the first difference, so timing does not reveal how much of a
/// guess was right (only the length, which is not the secret).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Filters of `GET /api/v1/faults`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultQuery {
    #[serde(default)]
    open: bool,
    device: Option<String>,
    since: Option<String>,
    #[serde(default)]
    offset: usize,
    limit: Option<usize>,
}

async fn list_faults(
    State(s): State<HttpState>,
    query: Result<Query<FaultQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    let Query(q) = query.map_err(|e| bad_request(e.body_text()))?;
    let filter = FaultFilter {
        open: q.open,
        device: q.device,
        since: time_param(q.since.as_deref(), Timestamp::now())?,
    };
    let store = s.store.clone();
    let page = off_worker(move || {
        let newest_first = |a: &FaultRecord, b: &FaultRecord| b.id.0.cmp(&a.id.0);
        let mut page = Window::new(q.offset, q.limit, newest_first);
        // Records are stored without their notes: only the page's are read.
        for f in store.each::<FaultRecord>(Tree::Faults) {
            let f = f?;
            if filter.matches(&f) {
                page.push(f);
            }
        }
        let mut page = page.into_page();
        for f in &mut page.items {
            f.notes = store.notes(f.id)?;
        }
        Ok::<_, StoreError>(page)
    })
    .await?;
    Ok(axum::Json(page).into_response())
}

fn fault_id(id: &str) -> Result<u64, ApiError> {
    id.parse()
        .map_err(|_| bad_request(format!("`{id}` is not a fault id")))
}

async fn show_fault(State(s): State<HttpState>, Path(id): Path<String>) -> ApiResult {
    let id = fault_id(&id)?;
    match s.store.fault(FaultId(id)) {
        Ok(Some(f)) => {
            // The audit trail of automated handling is part of the fault's story.
            let actions = s.store.actions_of_fault(f.id).map_err(unavailable)?;
            let mut v = serde_json::to_value(&f).map_err(unavailable)?;
            let actions: Vec<_> = actions
                .iter()
                .map(crate::northbound::actions::shown)
                .collect();
            v["actions"] = actions.into();
            Ok(axum::Json(v).into_response())
        }
        Ok(None) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no fault {id}"),
        )),
        Err(e) => Err(unavailable(e)),
    }
}

/// Body of `POST /api/v1/faults/{id}/notes`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoteBody {
    by: String,
    text: String,
}

async fn note_fault(
    State(s): State<HttpState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    authorize(s.token.as_ref(), &headers)?;
    let id = fault_id(&id)?;
    let body: NoteBody = json_body(&headers, &body, r#"a JSON body {"by": ..., "text": ...}"#)?;
    let limits = s.config.borrow().alarms.note_limits();
    let note = Note::new(Timestamp::now(), &body.by, &body.text, limits).map_err(note_refused)?;
    match s.commander.note(FaultId(id), note).await {
        Ok(_) => show_fault(State(s), Path(id.to_string())).await,
        Err(CommandError::NoFault(id)) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no fault {id}"),
        )),
        Err(e @ CommandError::NotesFull(_)) => Err(bad_request(e.to_string())),
        Err(e) => Err(unavailable(e)),
    }
}

/// A note too long is 413 (the body is the problem); any other refusal is 400.
fn note_refused(e: NoteError) -> ApiError {
    match e {
        NoteError::TooLong { .. } => ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, e.to_string()),
        _ => bad_request(e.to_string()),
    }
}

/// Parameters of `GET /api/v1/mttr`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MttrQuery {
    by: Option<GroupBy>,
    since: Option<String>,
    until: Option<String>,
}

async fn mttr(
    State(s): State<HttpState>,
    query: Result<Query<MttrQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    let Query(q) = query.map_err(|e| bad_request(e.body_text()))?;
    let now = Timestamp::now();
    let by = q.by.unwrap_or(GroupBy::Severity);
    let since = time_param(q.since.as_deref(), now)?;
    let until = time_param(q.until.as_deref(), now)?;
    let store = s.store.clone();
    let faults = off_worker(move || store.faults()).await?;
    let reports = fault::reports(&faults, by, since, until, now);
    Ok(axum::Json(reports).into_response())
}

/// `GET /api/v1/mttr/monthly?months=N` (12 by default, at most 120).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MonthlyQuery {
    months: Option<usize>,
}

async fn mttr_monthly(
    State(s): State<HttpState>,
    query: Result<Query<MonthlyQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    let Query(q) = query.map_err(|e| bad_request(e.body_text()))?;
    let months = q.months.unwrap_or(12);
    if !(1..=120).contains(&months) {
        return Err(bad_request("months is 1 to 120"));
    }
    let store = s.store.clone();
    let faults = off_worker(move || store.faults()).await?;
    let rows = fault::monthly::monthly(&faults, months, Timestamp::now());
    Ok(axum::Json(rows).into_response())
}

#[derive(Serialize)]
struct MaintenanceList {
    /// From the config file (change them there).
    config: Vec<MaintenanceConfig>,
    /// Created through the API.
    api: Vec<MaintenanceConfig>,
}

async fn list_maintenance(State(s): State<HttpState>) -> ApiResult {
    let config = s.config.borrow().maintenance.clone();
    let api = s.store.scan(Tree::Maintenance).map_err(unavailable)?;
    Ok(axum::Json(MaintenanceList { config, api }).into_response())
}

async fn create_maintenance(
    State(s): State<HttpState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    authorize(s.token.as_ref(), &headers)?;
    let window: MaintenanceConfig = json_body(&headers, &body, "a maintenance window as JSON")?;
    let config = s.config.borrow().clone();
    let problems: Vec<String> = window
        .problems(|d| config.devices.iter().any(|x| x.name == d))
        .into_iter()
        .map(|(key, message)| {
            if key.is_empty() {
                message
            } else {
                format!("{}: {message}", key.join("."))
            }
        })
        .collect();
    if !problems.is_empty() {
        return Err(bad_request(problems.join("; ")));
    }
    let key = window.name.as_bytes();
    let taken = config.maintenance.iter().any(|m| m.name == window.name)
        || s.store
            .get::<MaintenanceConfig>(Tree::Maintenance, key)
            .map_err(unavailable)?
            .is_some();
    if taken {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("a maintenance window named `{}` exists", window.name),
        ));
    }
    let ticket = s
        .store
        .put(Tree::Maintenance, key, &window)
        .map_err(unavailable)?;
    s.store.durable(ticket).await.map_err(unavailable)?;
    apply_maintenance(&s).await?;
    Ok((StatusCode::CREATED, axum::Json(window)).into_response())
}

async fn delete_maintenance(
    State(s): State<HttpState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> ApiResult {
    authorize(s.token.as_ref(), &headers)?;
    if s.config.borrow().maintenance.iter().any(|m| m.name == name) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("`{name}` is defined in the config file; remove it there"),
        ));
    }
    let (existed, ticket) = s
        .store
        .remove(Tree::Maintenance, name.as_bytes())
        .map_err(unavailable)?;
    if !existed {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no maintenance window `{name}`"),
        ));
    }
    s.store.durable(ticket).await.map_err(unavailable)?;
    apply_maintenance(&s).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Hands the stored API windows to the alarm manager and waits until its re-evaluation is
/// committed.
async fn apply_maintenance(s: &HttpState) -> Result<(), ApiError> {
    let windows = s.store.scan(Tree::Maintenance).map_err(unavailable)?;
    s.commander
        .run(AlarmCommand::SetMaintenance(windows))
        .await
        .map(|_| ())
        .map_err(unavailable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_is_equality() {
        assert!(constant_time_eq(b"s3cret", b"s3cret"));
        assert!(!constant_time_eq(b"s3cret", b"s3creT"));
        assert!(!constant_time_eq(b"s3cret", b"s3cre"));
        assert!(!constant_time_eq(b"", b"x"));
    }
}
