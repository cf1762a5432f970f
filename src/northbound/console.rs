//! The web console: `GET /` (the live alarm list), `GET /dashboard` (MTTA/MTTR) and
//! `GET /capacity` (links' capacity and forecasts), served
//! from files embedded in the binary, and `GET /api/v1/console`, what the page needs to know
//! of the config (devices with their sites, response targets, highlight times).
//!
//! The page is plain HTML, CSS and JS with no build step; the one library, uPlot (MIT, in
//! `console/vendor/` with its licence), draws the dashboard's charts. Nothing is loaded from
//! elsewhere, and the CSP (see [`crate::northbound::http`]) allows no inline script, so all
//! device-provided text reaches the page as JSON and is put in as text, never as markup.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;

use crate::config::Tiers;
use crate::model::Role;
use crate::northbound::reply::json_error;
use crate::northbound::state::HttpState;

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";

/// An embedded file: its path under `console/` (also its URL under `/console/`), content type
/// and body.
macro_rules! asset {
    ($name:literal, $kind:expr) => {
        ($name, $kind, include_str!(concat!("console/", $name)))
    };
}

const ASSETS: &[(&str, &str, &str)] = &[
    asset!("console.js", JS),
    asset!("common.js", JS),
    asset!("dashboard.js", JS),
    asset!("capacity.js", JS),
    asset!("console.css", CSS),
    // uPlot, vendored with its licence.
    asset!("vendor/uPlot.iife.min.js", JS),
    asset!("vendor/uPlot.min.css", CSS),
    asset!("vendor/uPlot.LICENSE", TEXT),
];

/// The console's routes.
pub fn routes() -> Router<HttpState> {
    Router::new()
        .route("/", get(|| page(include_str!("console/index.html"))))
        .route(
            "/dashboard",
            get(|| page(include_str!("console/dashboard.html"))),
        )
        .route(
            "/capacity",
            get(|| page(include_str!("console/capacity.html"))),
        )
        .route("/console/{*file}", get(asset))
        .route("/api/v1/console", get(settings))
}

async fn page(body: &'static str) -> Response {
    embedded(HTML, body)
}

async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, kind, body)) => embedded(kind, body),
        None => json_error(StatusCode::NOT_FOUND, "no such console file"),
    }
}

/// The files change only with the binary; `no-cache` makes a browser ask again after an
/// upgrade instead of running a stale page against a new API.
fn embedded(kind: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Settings {
    /// Devices by name, for grouping by site and the topology.
    devices: Vec<DeviceView>,
    /// Response targets per tier, by lower-case severity name.
    targets: std::collections::BTreeMap<&'static str, TargetView>,
    /// Seconds a change stays highlighted.
    highlight_secs: u64,
    /// Seconds a cleared alarm stays listed.
    cleared_linger_secs: u64,
    /// Whether writes are possible at all (a token is configured).
    writes: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TargetView {
    ack_secs: Option<u64>,
    restore_secs: Option<u64>,
}

fn targets(tiers: &Tiers) -> std::collections::BTreeMap<&'static str, TargetView> {
    [
        ("critical", &tiers.critical),
        ("major", &tiers.major),
        ("minor", &tiers.minor),
        ("warning", &tiers.warning),
    ]
    .into_iter()
    .map(|(name, t)| {
        let view = TargetView {
            ack_secs: t.ack_within.map(|d| d.as_secs()),
            restore_secs: t.restore_within.map(|d| d.as_secs()),
        };
        (name, view)
    })
    .collect()
}

#[derive(Serialize)]
struct DeviceView {
    name: String,
    role: Role,
    site: Option<String>,
    parent: Option<String>,
}

async fn settings(State(s): State<HttpState>) -> Response {
    let config = s.config.borrow().clone();
    let devices = config
        .devices
        .iter()
        .map(|d| DeviceView {
            name: d.name.clone(),
            role: d.role,
            site: d.site.clone(),
            parent: d.parent.clone(),
        })
        .collect();
    axum::Json(Settings {
        devices,
        targets: targets(&config.tiers),
        highlight_secs: config.console.highlight.as_secs(),
        cleared_linger_secs: config.console.cleared_linger.as_secs(),
        writes: s.token.is_some(),
    })
    .into_response()
}
