use proptest::prelude::*;

use super::*;
use crate::model::{Metric, Severity};

const MIN_MS: i64 = 60_000;

/// A day-shaped series: `base` at night, `base + swing` in the busy hour (15:00), growing by
/// `weekly` (a share) each week, five-minute samples, with `noise` (deterministic).
fn series(days: i64, base: f64, swing: f64, weekly: f64, noise: f64) -> Vec<(Timestamp, f64)> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..days * 288)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let u = (x >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
            let minute = i * 5;
            let hour = (minute % 1440) as f64 / 60.0;
            let shape = (-((hour - 15.0) / 3.0).powi(2)).exp();
            let growth = (1.0 + weekly).powf(minute as f64 / (7.0 * 1440.0));
            (
                Timestamp::from_millis(minute * MIN_MS),
                (base + swing * shape) * growth + noise * u,
            )
        })
        .collect()
}

fn run(samples: &[(Timestamp, f64)]) -> (Forecaster, Vec<Day>) {
    let mut f = Forecaster::default();
    let days = samples.iter().filter_map(|(t, v)| f.step(*t, *v)).collect();
    (f, days)
}

#[test]
fn the_busy_hour_is_the_days_highest_hourly_mean() {
    let (_, days) = run(&series(3, 20.0, 40.0, 0.0, 0.0));
    assert_eq!(days.len(), 2, "the third day is still being gathered");
    // The 15:00 hour's mean (15:00 to 15:55), a little under the peak of 60 at 15:00.
    let mean = (0..12)
        .map(|k| 20.0 + 40.0 * (-((f64::from(k) * 5.0 / 60.0) / 3.0).powi(2)).exp())
        .sum::<f64>()
        / 12.0;
    assert!(
        (days[0].busy - mean).abs() < 1e-9,
        "{:?} vs {mean}",
        days[0]
    );
}

#[test]
fn a_ramp_of_three_percent_a_week_crosses_about_when_it_does() {
    let samples = series(28, 20.0, 40.0, 0.03, 1.0);
    let (f, days) = run(&samples);
    // The busy hour grows 3 % a week from the first day's: it reaches 80 % after
    // ln(80 / first) / ln(1.03) weeks.
    let first = days[0].busy;
    let weeks = (80.0 / first).ln() / 1.03f64.ln();
    let actual = weeks * 7.0 - 26.0; // days after the last learned day
    let c = f.crossing(80.0, 7, 40.0).expect("a crossing");
    assert!(
        (f64::from(c.days) - actual).abs() <= 0.25 * actual,
        "predicted {} days, actual {actual:.0}: {f:?}",
        c.days
    );
    assert!(
        c.earliest <= c.days && c.latest.is_none_or(|l| l >= c.days),
        "{c:?}"
    );
    let week = f.per_week();
    assert!((week - 0.03).abs() < 0.005, "per week {week}");
}

#[test]
fn a_flat_seasonal_series_never_crosses_a_level_above_it() {
    let (f, _) = run(&series(60, 20.0, 40.0, 0.0, 3.0));
    assert_eq!(f.crossing(80.0, 7, 40.0), None, "{f:?}");
}

#[test]
fn one_burst_day_does_not_make_a_trend() {
    let mut samples = series(30, 20.0, 40.0, 0.0, 1.0);
    // Day 25: the busy hour at 95 % (a flash crowd), then back.
    for (t, v) in samples.iter_mut() {
        if t.as_millis() / DAY_MS == 25 {
            *v = 95.0;
        }
    }
    let (f, _) = run(&samples);
    assert_eq!(f.crossing(80.0, 7, 40.0), None, "{f:?}");
}

#[test]
fn a_level_shift_is_taken_whole_without_inventing_a_trend() {
    let mut samples = series(40, 20.0, 40.0, 0.0, 1.0);
    // From day 20 the link carries 15 points more (traffic moved onto it), no growth.
    for (t, v) in samples.iter_mut() {
        if t.as_millis() / DAY_MS >= 20 {
            *v += 15.0;
        }
    }
    let (f, _) = run(&samples);
    assert!((f.now() - 73.7).abs() < 3.0, "{f:?}");
    assert!(f.per_week().abs() < 0.01, "{f:?}");
    assert_eq!(f.crossing(90.0, 7, 40.0), None, "{f:?}");
}

#[test]
fn missing_days_are_stepped_over() {
    let samples: Vec<_> = series(30, 20.0, 40.0, 0.03, 0.5)
        .into_iter()
        .filter(|(t, _)| !(10..15).contains(&(t.as_millis() / DAY_MS)))
        .collect();
    let (f, days) = run(&samples);
    assert_eq!(days.len(), 24);
    assert!(f.crossing(80.0, 7, 40.0).is_some(), "{f:?}");
}

#[test]
fn nothing_below_the_floor_and_nothing_out_of_order() {
    let (f, _) = run(&series(60, 5.0, 10.0, 0.10, 0.2));
    assert_eq!(f.crossing(80.0, 7, 40.0), None, "under the floor: {f:?}");
    assert!(
        f.crossing(80.0, 7, 0.0).is_some(),
        "without the floor it would: {f:?}"
    );
    let mut g = Forecaster::default();
    g.step(Timestamp::from_millis(10 * 3_600_000), 1.0);
    assert_eq!(g.step(Timestamp::from_millis(3_600_000), 99.0), None);
    assert_eq!(g.hour_sum, 1.0);
}

proptest! {
    /// Whatever the values, no crossing is predicted from fewer days than the guard, and the
    /// interval holds the crossing.
    #[test]
    fn never_from_fewer_days_than_the_guard(
        values in prop::collection::vec(0.0f64..100.0, 1..400),
        min_days in 2u32..10,
    ) {
        let mut f = Forecaster::default();
        for (i, v) in values.iter().enumerate() {
            // Hourly samples: 24 a day.
            f.step(Timestamp::from_millis(i as i64 * 3_600_000), *v);
            let c = f.crossing(50.0, min_days, 0.0);
            if f.days < min_days {
                prop_assert!(c.is_none());
            }
            if let Some(c) = c {
                prop_assert!(c.earliest <= c.days);
                prop_assert!(c.latest.is_none_or(|l| l >= c.days));
            }
        }
    }

    /// Whatever the days say, a prediction is raised only after `agree` days in a row put a
    /// crossing within the horizon, cleared only after as many put it beyond the margin, and
    /// its severity is always the horizon's.
    #[test]
    fn a_prediction_needs_agreeing_days_to_raise_and_to_clear(
        days in prop::collection::vec(prop::option::of(1u32..60), 1..200),
        agree in 1u32..5,
    ) {
        use super::predict::{Horizons, MARGIN_DAYS, Predictor};
        let h = Horizons { major: 1, minor: 7, warning: 30 };
        let mut p = Predictor::default();
        for (i, soonest) in days.iter().enumerate() {
            let before = p.tier;
            let change = p.day(*soonest, &h, agree);
            let recent = &days[(i + 1).saturating_sub(agree as usize)..=i];
            let full = recent.len() == agree as usize;
            match change {
                Some(Severity::Cleared) => prop_assert!(
                    full && recent.iter().all(|d| d.is_none_or(|d| d > h.warning + MARGIN_DAYS))
                ),
                Some(s) => {
                    prop_assert_eq!(Some(s), soonest.and_then(|d| h.severity(d)));
                    if before == Severity::Cleared {
                        prop_assert!(full && recent.iter().all(|d| d.is_some_and(|d| d <= h.warning)));
                    }
                }
                None => {}
            }
        }
    }
}

/// A probe whose latency p95 climbs from 20 ms to 60 ms over a week is a precursor (its
/// median barely moves: only the tail grows); one whose p95 holds is not.
#[test]
fn a_climbing_latency_p95_is_a_precursor_and_a_steady_one_is_not() {
    use super::precursor::{Rules, Today, step};
    let rules = Rules {
        days: 7,
        rise: 2.0,
        latency_rise: 1.5,
        reboots: 3,
        link_flaps: 10,
    };
    let run = |tail: &dyn Fn(i64) -> f64| {
        let (mut today, mut trend) = (Today::default(), None);
        let mut said = None;
        for i in 0..8 * 288 {
            let day = i / 288;
            // Every tenth probe is in the tail.
            let v = if i % 10 == 0 { tail(day) } else { 12.0 };
            let at = Timestamp::from_millis(i * 300_000);
            if step(&mut today, &mut trend, Metric::LatencyMs, at, v) {
                said = trend
                    .as_ref()
                    .and_then(|t| t.evidence(Metric::LatencyMs, &rules));
            }
        }
        said
    };
    let climbing = run(&|d| 20.0 + 6.0 * d as f64).expect("a climbing p95 is a precursor");
    assert!(
        climbing.starts_with("latency_ms rising for 7 days: daily p95 from "),
        "{climbing}"
    );
    assert_eq!(run(&|_| 40.0), None);
}
