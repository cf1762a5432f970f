//! Where a series is heading: a damped trend with a weekly season on each day's busy hour,
//! and when it will cross a level. Pure, time passed in, O(1) state per series
//! ([`Forecaster`], 112 bytes).
//!
//! Why this model:
//! - **The busy hour** (the day's highest hourly mean, ITU-T E.500's time-consistent busy hour)
//!   is what capacity is planned on: one value a day, so the diurnal season drops out without
//!   a model of it, and a five-minute burst moves an hourly mean by a twelfth of itself.
//! - **Holt-Winters, damped, on the logarithm** (level α = 0.3, trend β = 0.2, weekday season
//!   γ = 0.1, damping φ = 0.998 a day): traffic grows by shares, a straight line in the log; a
//!   weekday's offset keeps a quiet weekend from reading as a downturn; the damping bends the
//!   far future flat (a slope is worth about 500 days of itself at most). Crossings are judged
//!   on the busiest weekday, as capacity is.
//! - **Robust**: a day far above what was expected (three mean absolute residuals, and at
//!   least [`BURST`]) is learned as what was expected, a burst, unless it is the
//!   [`SHIFT_DAYS`]th in a row: a level shift, taken whole with the slope kept. Residuals are
//!   clipped at the same bound. A missing day is a forecast step with nothing learned.
//! - **Guards** (Prometheus users pair `predict_linear` with static ones): the first week only
//!   gathers; nothing is predicted before [`Forecaster::days`] reaches `min_days`, nor while
//!   the busy hour is under `floor`.
//!
//! The interval is the forecast ± 1.28 residual deviations × √h (about 80 %): the crossing is
//! given as the earliest and latest day it could come.

pub mod backtest;
pub mod capacity;
pub mod precursor;
pub mod predict;

use serde::{Deserialize, Serialize};

use crate::model::Timestamp;

const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;
/// Share of each day's error the level takes.
const ALPHA: f64 = 0.3;
/// Share of each day's level change the slope takes.
const BETA: f64 = 0.2;
/// Damping of the slope, per day: a half-life of about a year, so a trend carries over the
/// months capacity is planned on, and a forecast still levels off (at φ / (1 − φ), about 500
/// days of today's slope) instead of running on for ever.
const PHI: f64 = 0.998;
/// Updates are clipped at this many mean absolute residuals.
const CLIP: f64 = 3.0;
/// Share of each day's deviation its weekday's season takes.
const GAMMA: f64 = 0.1;
/// A day at least this much above what was expected, in the log (+10.5 %), is a burst (or,
/// three in a row, a level shift), whatever the residuals so far.
pub const BURST: f64 = 0.1;
/// The first week only gathers: the trend starts from its busiest day.
const WEEK: u32 = 7;
/// Days in a row beyond the clip on one side that make a level shift.
pub const SHIFT_DAYS: u32 = 3;
/// ±1.28 deviations: an 80 % interval.
const Z: f64 = 1.28;
/// How far ahead crossings are looked for, in days.
pub const HORIZON_DAYS: u32 = 365;

/// One series' forecaster.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct Forecaster {
    /// The busy-hour level, as its logarithm.
    level: f64,
    /// Its change per day (in the log: a share).
    trend: f64,
    /// Mean absolute one-day-ahead residual, in the log.
    mad: f64,
    /// Days learned from.
    pub days: u32,
    /// The day (since the epoch) being gathered.
    day: i64,
    /// The hour (since the epoch) being gathered, its sum and count.
    hour: i64,
    hour_sum: f64,
    hour_n: u32,
    /// The day's busiest hourly mean so far.
    busy: Option<f64>,
    /// Consecutive days far above what was expected.
    run: u32,
    /// The weekly season: each weekday's busy hour against the level (log), by day since
    /// the epoch modulo 7.
    week: [f32; 7],
    started: bool,
}

const _: () = assert!(std::mem::size_of::<Forecaster>() <= 112);

/// Version of [`StoredForecast`]; state of another version is dropped (the series gathers
/// its first week again) rather than misread.
pub const STATE_VERSION: u8 = 1;

/// A series' forecast as the store keeps it (`forecast_state`, by series key).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredForecast {
    /// [`STATE_VERSION`] when written.
    pub version: u8,
    /// The forecaster.
    pub forecaster: Forecaster,
    /// Its predictive alarm.
    pub predictor: predict::Predictor,
    /// A link's day of utilisation so far (utilisation series only).
    pub today: Option<capacity::DayUse>,
    /// The series' days for a precursor's trend (errors, discards, loss, latency).
    pub trend: Option<precursor::Trend>,
    /// The day being gathered for that trend.
    pub trend_day: precursor::Today,
}

/// A finished day, as learned.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Day {
    /// The day (since the epoch).
    pub day: i64,
    /// Its busy-hour value.
    pub busy: f64,
}

/// When a forecast reaches a level.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Crossing {
    /// Days from the last learned day to the forecast's crossing.
    pub days: u32,
    /// The earliest it could come (the interval's upper edge crossing).
    pub earliest: u32,
    /// The latest (the lower edge), if within the horizon.
    pub latest: Option<u32>,
}

impl Forecaster {
    /// Takes one sample; returns the day that ended before it, once learned.
    pub fn step(&mut self, at: Timestamp, value: f64) -> Option<Day> {
        if !value.is_finite() {
            return None;
        }
        let ms = at.as_millis();
        let (day, hour) = (ms.div_euclid(DAY_MS), ms.div_euclid(HOUR_MS));
        if !self.started {
            (self.day, self.hour, self.started) = (day, hour, true);
        }
        if at.as_millis() < self.hour * HOUR_MS {
            return None; // out of order: the hour it belongs to is closed
        }
        let mut done = None;
        if hour != self.hour {
            self.close_hour();
            self.hour = hour;
        }
        if day != self.day {
            if let Some(busy) = self.busy.take() {
                done = Some(self.learn(self.day, busy, day));
            }
            self.day = day;
        }
        self.hour_sum += value;
        self.hour_n += 1;
        done
    }

    fn close_hour(&mut self) {
        if self.hour_n > 0 {
            let mean = self.hour_sum / f64::from(self.hour_n);
            self.busy = Some(self.busy.map_or(mean, |b| b.max(mean)));
        }
        (self.hour_sum, self.hour_n) = (0.0, 0);
    }

    /// Learns a finished day; `next` is the day the new sample belongs to (a gap in between
    /// is stepped over).
    fn learn(&mut self, day: i64, busy: f64, next: i64) -> Day {
        let learned = Day { day, busy };
        // Traffic grows by shares (3 % a week), so the model runs on its logarithm: a steady
        // growth is a straight line there, which Holt's trend follows without lag.
        let mut busy = log(busy);
        let wd = day.rem_euclid(7) as usize;
        // Far above: three residual deviations, and at least a tenth more than expected (the
        // busy hour of a smooth link varies little; a flash crowd or a shift is big).
        let far = (CLIP * self.mad).max(BURST);
        if self.days < WEEK {
            // The first week only gathers: each weekday's busy hour, then the level is their
            // mean and the weekly season their offsets from it.
            self.week[wd] = busy as f32;
            self.days += 1;
            if self.days == WEEK {
                self.level = self.week.iter().map(|v| f64::from(*v)).sum::<f64>() / 7.0;
                for v in &mut self.week {
                    *v -= self.level as f32;
                }
                (self.trend, self.mad) = (0.0, 0.05);
            }
        } else {
            let season = f64::from(self.week[wd]);
            let predicted = self.level + PHI * self.trend;
            let mut shift = false;
            if busy > predicted + season + far {
                // A burst (wait and see: it is learned as what was expected), or the third day
                // in a row: a level shift, taken whole with the slope kept.
                self.run += 1;
                shift = self.run >= SHIFT_DAYS;
                if !shift {
                    busy = predicted + season;
                }
            } else {
                self.run = 0;
            }
            if shift {
                self.level = busy - season;
                self.run = 0;
            } else {
                let residual = busy - predicted - season;
                let clipped = residual.clamp(-far, far);
                let level = predicted + ALPHA * clipped;
                self.trend = BETA * (level - self.level) + (1.0 - BETA) * PHI * self.trend;
                self.level = level;
                let offset = season + GAMMA * (busy - level - season).clamp(-far, far);
                self.week[wd] = offset as f32;
                // A plain mean while young, then about the last ten days.
                let rate = (1.0 / f64::from(self.days + 1 - WEEK)).max(0.1);
                self.mad += rate * (residual.abs().min(far) - self.mad);
            }
            self.days += 1;
        }
        // Days with no sample at all: the forecast walks on, nothing is learned.
        for _ in day + 1..next {
            self.level += PHI * self.trend;
            self.trend *= PHI;
        }
        learned
    }

    /// The forecast `h` days after the last learned day.
    pub fn at(&self, h: u32) -> f64 {
        self.log_at(h).exp()
    }

    /// The day (since the epoch) forecasts count from: the last learned, or the last day a
    /// gap stepped the forecast over.
    pub fn origin(&self) -> i64 {
        self.day - 1
    }

    /// The busy hour of the week's busiest day, now.
    pub fn now(&self) -> f64 {
        (self.level + self.peak_season()).exp()
    }

    /// level + trend · (φ + φ² + … + φ^h) + the busiest weekday's season, in the log:
    /// capacity is planned on the busiest day of the week.
    fn log_at(&self, h: u32) -> f64 {
        let sum = PHI * (1.0 - PHI.powi(h as i32)) / (1.0 - PHI);
        self.level + self.trend * sum + self.peak_season()
    }

    fn peak_season(&self) -> f64 {
        self.week
            .iter()
            .map(|v| f64::from(*v))
            .fold(f64::MIN, f64::max)
            .max(0.0)
    }

    /// The growth the slope says for the coming week, as a share (0.03 is 3 %).
    pub fn per_week(&self) -> f64 {
        self.at(7) / self.now() - 1.0
    }

    /// Half the 80 % interval `h` days ahead, in the log: 1.25 × the mean absolute residual
    /// estimates a deviation, and it grows as √h.
    fn spread(&self, h: u32) -> f64 {
        Z * self.mad * 1.25 * f64::from(h).sqrt()
    }

    /// The forecast `h` days after the last learned day with its 80 % interval: (low, value,
    /// high), for a chart.
    pub fn band(&self, h: u32) -> (f64, f64, f64) {
        let (at, spread) = (self.log_at(h), self.spread(h));
        ((at - spread).exp(), at.exp(), (at + spread).exp())
    }

    /// When the forecast reaches `level` (rising), with its interval; `None` if not within
    /// the horizon, or while the guards hold: fewer than `min_days` days, or the level under
    /// `floor`.
    pub fn crossing(&self, level: f64, min_days: u32, floor: f64) -> Option<Crossing> {
        if self.days < min_days || self.now() < floor {
            return None;
        }
        let target = log(level);
        let first = |f: &dyn Fn(u32) -> f64| (1..=HORIZON_DAYS).find(|&h| f(h) >= target);
        let days = first(&|h| self.log_at(h))?;
        let earliest = first(&|h| self.log_at(h) + self.spread(h)).unwrap_or(days);
        let latest = first(&|h| self.log_at(h) - self.spread(h));
        Some(Crossing {
            days,
            earliest,
            latest,
        })
    }
}

/// The logarithm the model runs on; values under a hundredth are taken as a hundredth (an
/// idle link's 0 % is not minus infinity).
fn log(x: f64) -> f64 {
    x.max(0.01).ln()
}

#[cfg(test)]
mod tests;
