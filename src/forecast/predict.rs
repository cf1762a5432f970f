//! Predictive alarms: when a forecast's crossing is near enough, for long enough, to tell a
//! person, how severe by how near it is, and when it is far enough again to stop. One rule for
//! the daemon (`pipeline/forecast.rs`) and `noctua backtest --forecast`, so a backtest shows
//! what the daemon would have raised.

use serde::{Deserialize, Serialize};

use super::{Crossing, Forecaster};
use crate::model::{Metric, Severity, Timestamp};

const DAY_MS: i64 = 86_400_000;

/// A raised prediction stays until its crossing is this many days past the widest horizon
/// (and for as many days in a row as it took to raise it): a forecast wavering at the edge
/// neither flaps nor clears on one quiet day.
pub const MARGIN_DAYS: u32 = 7;

/// How near a crossing must be for each severity, in days ahead of the last learned day; a
/// crossing beyond `warning` raises nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Horizons {
    /// Within this many days: major.
    pub major: u32,
    /// Within this many: minor.
    pub minor: u32,
    /// Within this many: warning.
    pub warning: u32,
}

impl Horizons {
    /// The severity a crossing `days` ahead deserves, if any.
    pub fn severity(&self, days: u32) -> Option<Severity> {
        [
            (self.major, Severity::Major),
            (self.minor, Severity::Minor),
            (self.warning, Severity::Warning),
        ]
        .into_iter()
        .find(|(within, _)| days <= *within)
        .map(|(_, s)| s)
    }
}

/// One series' predictive alarm: its tier and how many days in a row the forecast has agreed
/// (or disagreed) with it. 6 bytes of state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Predictor {
    agreeing: u16,
    dissenting: u16,
    /// The tier raised, or `Cleared`.
    pub tier: Severity,
}

impl Predictor {
    /// Takes one day's soonest crossing (`None` when none is within the horizon or a guard
    /// holds) and returns the new tier if it changed. Nothing is raised until `agree` days in a
    /// row put a crossing within `horizons.warning` (one burst cannot), nor cleared until as
    /// many days in a row put it beyond the margin; in between, the severity follows the
    /// horizon.
    pub fn day(
        &mut self,
        soonest: Option<u32>,
        horizons: &Horizons,
        agree: u32,
    ) -> Option<Severity> {
        let soon = soonest.and_then(|d| horizons.severity(d));
        let gone = soonest.is_none_or(|d| d > horizons.warning + MARGIN_DAYS);
        let bump = |n: u16, yes: bool| if yes { n.saturating_add(1) } else { 0 };
        self.agreeing = bump(self.agreeing, soon.is_some());
        self.dissenting = bump(self.dissenting, gone);
        let next = match (self.tier, soon) {
            (Severity::Cleared, Some(s)) if u32::from(self.agreeing) >= agree => s,
            (Severity::Cleared, _) => Severity::Cleared,
            _ if u32::from(self.dissenting) >= agree => Severity::Cleared,
            (tier, soon) => soon.unwrap_or(tier),
        };
        (next != self.tier).then(|| {
            self.tier = next;
            next
        })
    }

    /// Takes the tier of an alarm the store still has, so a restart neither raises it again
    /// nor forgets to clear it.
    pub fn reassert(&mut self, tier: Severity) {
        if self.tier == Severity::Cleared {
            self.tier = tier;
        }
    }
}

/// What a day's forecast says about one level, for the alarm's text.
#[derive(Debug, Clone, Copy)]
pub struct Outlook {
    /// The series' metric, to show values in its unit.
    pub metric: Metric,
    /// Which level (its tier's name is shown) and its value.
    pub level: (Severity, f64),
    /// The crossing, if one is forecast.
    pub crossing: Option<Crossing>,
    /// The last learned day (since the epoch).
    pub day: i64,
    /// The forecaster, for the busy hour, growth and history.
    pub forecaster: Forecaster,
}

impl Outlook {
    /// Why the prediction is raised or changed: when, between when and when, the growth
    /// and the history it rests on.
    pub fn raised_text(&self, horizon: u32) -> String {
        let (tier, value) = self.level;
        let f = &self.forecaster;
        let Some(c) = self.crossing else {
            return self.cleared_text(horizon);
        };
        let latest = c.latest.map_or("beyond a year".to_owned(), |l| {
            date(self.day + i64::from(l))
        });
        format!(
            "{} forecast to reach the {} level {} in {} days, on {} (80 % interval {} to {}); busy hour {} growing {:.1} % a week; from {} days of history",
            self.metric.name(),
            tier.name(),
            self.metric.show(value),
            c.days,
            date(self.day + i64::from(c.days)),
            date(self.day + i64::from(c.earliest)),
            latest,
            self.metric.show(f.now()),
            f.per_week() * 100.0,
            f.days
        )
    }

    /// Why the prediction cleared.
    pub fn cleared_text(&self, horizon: u32) -> String {
        let (tier, value) = self.level;
        let f = &self.forecaster;
        if f.now() >= value {
            return format!(
                "{} has reached the {} level {} (busy hour {}): the threshold alarm speaks for it",
                self.metric.name(),
                tier.name(),
                self.metric.show(value),
                self.metric.show(f.now())
            );
        }
        format!(
            "{} no longer forecast to reach the {} level {} within {} days (busy hour {}, {:+.1} % a week)",
            self.metric.name(),
            tier.name(),
            self.metric.show(value),
            horizon + MARGIN_DAYS,
            self.metric.show(f.now()),
            f.per_week() * 100.0
        )
    }
}

/// A day since the epoch as `YYYY-MM-DD`.
pub fn date(day: i64) -> String {
    let t = Timestamp::from_millis(day * DAY_MS).to_string();
    t.get(..10).unwrap_or(&t).to_owned()
}
