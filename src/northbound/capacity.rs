//! The capacity report: every link direction's figures from the store (its stored days, the
//! day being gathered and its forecast, `forecast::capacity`), for `noctua capacity report`
//! and `GET /api/v1/capacity`, and rendered for people.

use std::fmt::Write as _;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

use crate::config::{Config, ForecastConfig};
use crate::detect::parse_state_key;
use crate::detect::state_key;
use crate::fault::report::{Format, columns, csv_field};
use crate::forecast::StoredForecast;
use crate::forecast::capacity::{LEVELS, assess};
use crate::model::{
    CapacityBy, CapacityChart, LinkCapacity, Metric, MetricKind, SeriesKey, Timestamp, printable,
};
use crate::northbound::reply::{ApiError, ApiResult, bad_request, off_worker};
use crate::northbound::state::HttpState;
use crate::store::{Store, StoreError, Tree};

/// The routes.
pub fn routes() -> Router<HttpState> {
    Router::new()
        .route("/api/v1/capacity", get(report))
        .route("/api/v1/capacity/chart", get(chart))
}

/// Every link direction with a forecast, grouped by `by`, the soonest to reach 90 % first in
/// each group.
pub fn links(
    store: &Store,
    config: &Config,
    by: CapacityBy,
) -> Result<Vec<LinkCapacity>, StoreError> {
    let min_days = ForecastConfig::days(config.forecast.min_history);
    let mut rows = Vec::new();
    for (key, stored) in store.forecasts()? {
        let Some(series) = parse_state_key(&key) else {
            continue;
        };
        if series.metric.kind() != MetricKind::Utilisation {
            continue;
        }
        let mut days = store.capacity_days(&key)?;
        let capacity = assess(
            &mut days,
            stored.today.as_ref(),
            &stored.forecaster,
            min_days,
        );
        let device = config.devices.iter().find(|d| d.name == series.device);
        rows.push(LinkCapacity {
            direction: if series.metric == Metric::UtilisationOutPct {
                "out"
            } else {
                "in"
            }
            .to_owned(),
            site: device.and_then(|d| d.site.clone()),
            role: device.map_or("unknown".to_owned(), |d| d.role.name().to_owned()),
            device: series.device,
            object: series.object,
            capacity,
        });
    }
    rows.sort_by(|a, b| {
        by.group(a)
            .cmp(by.group(b))
            .then(
                a.capacity
                    .days_to_90
                    .unwrap_or(u32::MAX)
                    .cmp(&b.capacity.days_to_90.unwrap_or(u32::MAX)),
            )
            .then_with(|| {
                (&a.device, &a.object, &a.direction).cmp(&(&b.device, &b.object, &b.direction))
            })
    });
    Ok(rows)
}

/// Query of `GET /api/v1/capacity`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CapacityQuery {
    by: Option<String>,
}

/// `GET /api/v1/capacity?by=device|site|role`: the rows, as JSON.
async fn report(
    State(s): State<HttpState>,
    query: Result<Query<CapacityQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    let Query(q) = query.map_err(|e| bad_request(e.body_text()))?;
    let by = match q.by.as_deref() {
        None => CapacityBy::Device,
        Some(b) => b
            .parse()
            .map_err(|e: crate::model::UnknownName| bad_request(e.to_string()))?,
    };
    let config = s.config.borrow().clone();
    let store = s.store.clone();
    let rows = off_worker(move || links(&store, &config, by)).await?;
    Ok(Json(rows).into_response())
}

/// Days of forecast a chart draws.
const CHART_DAYS: u32 = 60;

/// A link direction's chart: its stored busy hours and the forecast's next [`CHART_DAYS`].
/// No forecast is drawn before `min_days` of history, as none is reported.
pub fn chart_of(
    store: &Store,
    series: &SeriesKey,
    min_days: u32,
) -> Result<Option<CapacityChart>, StoreError> {
    let key = state_key(series);
    let Some(stored) = store.get::<StoredForecast>(Tree::Forecasts, &key)? else {
        return Ok(None);
    };
    let f = stored.forecaster;
    let midnight = |day: i64| Timestamp::from_millis(day * 86_400_000);
    let history = store
        .capacity_days(&key)?
        .iter()
        .filter_map(|d| Some((midnight(d.day), f64::from(d.busy?))))
        .collect();
    let forecast = if f.days >= min_days {
        (1..=CHART_DAYS)
            .map(|h| {
                let (low, value, high) = f.band(h);
                (midnight(f.origin() + i64::from(h)), low, value, high)
            })
            .collect()
    } else {
        Vec::new()
    };
    Ok(Some(CapacityChart {
        history,
        forecast,
        levels: LEVELS.to_vec(),
    }))
}

/// Query of `GET /api/v1/capacity/chart`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChartQuery {
    device: String,
    object: String,
    /// `in` (default) or `out`.
    direction: Option<String>,
}

/// `GET /api/v1/capacity/chart?device=D&object=O&direction=in|out`.
async fn chart(
    State(s): State<HttpState>,
    query: Result<Query<ChartQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    let Query(q) = query.map_err(|e| bad_request(e.body_text()))?;
    let metric = match q.direction.as_deref() {
        None | Some("in") => Metric::UtilisationInPct,
        Some("out") => Metric::UtilisationOutPct,
        Some(other) => {
            return Err(bad_request(format!(
                "direction `{}`: expected in or out",
                printable(other)
            )));
        }
    };
    let series = SeriesKey {
        device: q.device,
        object: q.object,
        metric,
    };
    let store = s.store.clone();
    let min_days = ForecastConfig::days(s.config.borrow().forecast.min_history);
    let found = off_worker(move || chart_of(&store, &series, min_days)).await?;
    match found {
        Some(c) => Ok(Json(c).into_response()),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no forecast for that link",
        )),
    }
}

fn pct(v: Option<f64>) -> String {
    v.map_or("-".to_owned(), |v| format!("{v:.1} %"))
}

/// A growth with its sign, and no "-0.0" for a flat link.
fn growth(g: f64) -> String {
    if g.abs() < 0.05 {
        "0.0 %".to_owned()
    } else {
        format!("{g:+.1} %")
    }
}

fn days(d: Option<u32>, known: bool) -> String {
    match (d, known) {
        (_, false) => "-".to_owned(),
        (Some(0), _) => "now".to_owned(),
        (Some(d), _) => format!("{d} d"),
        (None, _) => "> 1 y".to_owned(),
    }
}

/// The rows for people (a table per group), or as CSV or JSON.
pub fn render(rows: &[LinkCapacity], by: CapacityBy, format: Format) -> String {
    match format {
        Format::Json => serde_json::to_string_pretty(rows).unwrap_or_default() + "\n",
        Format::Csv => {
            let mut out = String::from(
                "device,object,direction,site,role,history_days,p95_7d_pct,p95_30d_pct,busy_hour_7d_pct,busy_hour_30d_pct,growth_per_week_pct,days_to_80,days_to_90,days_to_95\n",
            );
            let num = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.2}"));
            let day = |v: Option<u32>| v.map_or(String::new(), |v| v.to_string());
            for r in rows {
                let c = &r.capacity;
                let _ = writeln!(
                    out,
                    "{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                    csv_field(&r.device),
                    csv_field(&r.object),
                    r.direction,
                    csv_field(r.site.as_deref().unwrap_or("")),
                    r.role,
                    c.days,
                    num(c.p95_week),
                    num(c.p95_month),
                    num(c.busy_hour_week),
                    num(c.busy_hour_month),
                    num(c.growth_per_week),
                    day(c.days_to_80),
                    day(c.days_to_90),
                    day(c.days_to_95),
                );
            }
            out
        }
        Format::Table => {
            if rows.is_empty() {
                return "no links with utilisation yet\n".to_owned();
            }
            let mut out = String::new();
            let mut start = 0;
            while start < rows.len() {
                let group = by.group(&rows[start]);
                let end = rows[start..]
                    .iter()
                    .position(|r| by.group(r) != group)
                    .map_or(rows.len(), |n| start + n);
                let n = end - start;
                let _ = writeln!(
                    out,
                    "{} {group} ({n} link direction{})",
                    by.name(),
                    if n == 1 { "" } else { "s" }
                );
                let mut table = vec![
                    [
                        "device",
                        "link",
                        "dir",
                        "p95 7d",
                        "p95 30d",
                        "busy hour 7d",
                        "busy hour 30d",
                        "growth/week",
                        "to 80 %",
                        "to 90 %",
                        "to 95 %",
                        "history",
                    ]
                    .map(str::to_owned)
                    .to_vec(),
                ];
                for r in &rows[start..end] {
                    let c = &r.capacity;
                    // The forecast gives a growth once it has the history to.
                    let known = c.growth_per_week.is_some();
                    table.push(vec![
                        r.device.clone(),
                        r.object.clone(),
                        r.direction.clone(),
                        pct(c.p95_week),
                        pct(c.p95_month),
                        pct(c.busy_hour_week),
                        pct(c.busy_hour_month),
                        c.growth_per_week.map_or("-".to_owned(), growth),
                        days(c.days_to_80, known),
                        days(c.days_to_90, known),
                        days(c.days_to_95, known),
                        if known {
                            format!("{} d", c.days)
                        } else {
                            format!("{} d (gathering)", c.days)
                        },
                    ]);
                }
                out.push_str(&columns(&table));
                out.push('\n');
                start = end;
            }
            out
        }
    }
}
