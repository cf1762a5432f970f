//! Capacity of links: each day of a link's utilisation kept small ([`DayUse`]: a histogram of
//! its 5-minute averages and its busy hour), and the figures a capacity planner reads from a
//! week and a month of them with the link's forecast ([`assess`]).
//!
//! Why a histogram of 1-point bins: the p95 of a month of 5-minute averages needs every
//! average or a mergeable summary of them; 101 counts a day (about 200 bytes stored) merge by
//! addition and give the p95 to within a fraction of a point (linear inside the bin), which is
//! finer than any upgrade decision.

use serde::{Deserialize, Serialize};

use super::Forecaster;
use crate::model::{Capacity, Timestamp};

const DAY_MS: i64 = 86_400_000;
const FIVE_MS: i64 = 300_000;
/// Bins of one point, 0 to 100 (the last holds 100 and above).
const BINS: usize = 101;
/// The levels whose crossing a report gives, in percent.
pub const LEVELS: [f64; 3] = [80.0, 90.0, 95.0];

/// One link's (one direction's) day of utilisation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DayUse {
    /// The day (since the epoch).
    pub day: i64,
    /// The day's busy hour, once the day is over.
    pub busy: Option<f32>,
    /// The 5-minute interval being averaged (since the epoch), its sum and count.
    five: i64,
    five_sum: f32,
    five_n: u16,
    /// How many 5-minute averages fell in each 1-point bin.
    #[serde(with = "inline_bins")]
    bins: [u16; BINS],
}

/// The bins inline (one allocation a link, not two: a sample touches one cache line fewer),
/// stored as a sequence; a stored day of another length is refused.
mod inline_bins {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::BINS;

    pub fn serialize<S: Serializer>(bins: &[u16; BINS], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(bins.iter())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u16; BINS], D::Error> {
        let v = Vec::<u16>::deserialize(d)?;
        <[u16; BINS]>::try_from(v.as_slice())
            .map_err(|_| serde::de::Error::invalid_length(v.len(), &"101 bins"))
    }
}

impl DayUse {
    fn new(day: i64) -> Self {
        Self {
            day,
            busy: None,
            five: day * DAY_MS / FIVE_MS,
            five_sum: 0.0,
            five_n: 0,
            bins: [0; BINS],
        }
    }

    /// Takes a sample of `day`'s; a sample of a later day returns the day that ended, with its
    /// last 5 minutes counted (and a new day begins). An earlier day's is ignored.
    pub fn step(this: &mut Option<Box<Self>>, at: Timestamp, value: f64) -> Option<Box<Self>> {
        if !value.is_finite() {
            return None;
        }
        let ms = at.as_millis();
        let day = ms.div_euclid(DAY_MS);
        let current = this.get_or_insert_with(|| Box::new(Self::new(day)));
        let mut done = None;
        if day > current.day {
            current.close_five();
            done = Some(std::mem::replace(current, Box::new(Self::new(day))));
        } else if day < current.day {
            return None;
        }
        let current = this.as_mut()?;
        let five = ms.div_euclid(FIVE_MS);
        if five != current.five {
            current.close_five();
            current.five = five;
        }
        current.five_sum += value as f32;
        current.five_n = current.five_n.saturating_add(1);
        done
    }

    fn close_five(&mut self) {
        if self.five_n > 0 {
            let mean = f64::from(self.five_sum) / f64::from(self.five_n);
            let bin = (mean.max(0.0) as usize).min(BINS - 1);
            if let Some(b) = self.bins.get_mut(bin) {
                *b = b.saturating_add(1);
            }
        }
        (self.five_sum, self.five_n) = (0.0, 0);
    }

    /// The 5-minute averages counted so far (the one being averaged too).
    fn counted(&self) -> Self {
        let mut copy = self.clone();
        copy.close_five();
        copy
    }
}

/// The `q` quantile of merged bins, linear inside its bin.
fn quantile(bins: &[u32], q: f64) -> Option<f64> {
    let n: u32 = bins.iter().sum();
    if n == 0 {
        return None;
    }
    let target = q * f64::from(n);
    let mut below = 0.0;
    for (i, &c) in bins.iter().enumerate() {
        let c = f64::from(c);
        if c > 0.0 && below + c >= target {
            return Some((i as f64 + (target - below) / c).min(100.0));
        }
        below += c;
    }
    None
}

/// The p95 of the 5-minute averages and the mean daily busy hour of the days within `days` of
/// `last` (ITU-T E.500's average daily peak hour).
fn window(days: &[DayUse], last: i64, span: i64) -> (Option<f64>, Option<f64>) {
    let mut bins = [0u32; BINS];
    let (mut busy, mut n) = (0.0, 0u32);
    for d in days.iter().filter(|d| d.day > last - span && d.day <= last) {
        for (m, c) in bins.iter_mut().zip(&d.bins) {
            *m += u32::from(*c);
        }
        if let Some(b) = d.busy {
            busy += f64::from(b);
            n += 1;
        }
    }
    (quantile(&bins, 0.95), (n > 0).then(|| busy / f64::from(n)))
}

/// A link's figures from its stored days (any order), the day being gathered, and its
/// forecast; `min_days` is the forecast's guard, as for predictive alarms.
pub fn assess(
    days: &mut Vec<DayUse>,
    today: Option<&DayUse>,
    forecaster: &Forecaster,
    min_days: u32,
) -> Capacity {
    if let Some(t) = today {
        days.push(t.counted());
    }
    days.sort_by_key(|d| d.day);
    let last = days.last().map_or(0, |d| d.day);
    let (p95_week, busy_hour_week) = window(days, last, 7);
    let (p95_month, busy_hour_month) = window(days, last, 30);
    let known = forecaster.days >= min_days;
    let [days_to_80, days_to_90, days_to_95] = LEVELS.map(|level| {
        if !known {
            None
        } else if forecaster.now() >= level {
            Some(0)
        } else {
            forecaster.crossing(level, min_days, 0.0).map(|c| c.days)
        }
    });
    Capacity {
        days: forecaster.days,
        p95_week,
        p95_month,
        busy_hour_week,
        busy_hour_month,
        growth_per_week: known.then(|| forecaster.per_week() * 100.0),
        days_to_80,
        days_to_90,
        days_to_95,
    }
}
