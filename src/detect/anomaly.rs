//! A streaming, seasonal, outlier-robust anomaly score per series.
//!
//! The season (a day by default) is cut into buckets (24: hourly); each bucket keeps an
//! exponentially weighted level and mean absolute deviation. Updates are winsorised at three
//! spreads, so a spike does not drag the baseline with it. A sample's deviation from its
//! bucket's level, in robust standard deviations, is `z`; the score is `z / (z + 6)`: 0 for the
//! usual, 0.5 at six deviations, and still rising (never stuck at 1.0) for ever larger
//! deviations, so tier boundaries can be chosen from backtest output. A deviation that persists
//! for `shift-after` samples in one direction is a level shift: every bucket moves by it and the
//! alarm ends, rather than alarming forever. Memory per series: 12 bytes per bucket.

use serde::{Deserialize, Serialize};

use crate::config::AnomalyConfig;
use crate::model::{MetricKind, Timestamp};

/// Which deviations count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Watch {
    /// Only rises (latency, loss).
    Up,
    /// Only drops (utilisation: a busy link collapsing to nothing is a fault).
    Down,
    /// Both.
    Both,
}

/// Deviations smaller than this (in the metric's unit) never count, so flat series with tiny
/// noise do not alarm: 1 % utilisation, 0.5 % loss, 1 ms latency.
fn absolute_floor(kind: MetricKind) -> f32 {
    match kind {
        MetricKind::Loss => 0.5,
        _ => 1.0,
    }
}

/// Rises below this share of the level never count either.
const RELATIVE_FLOOR: f32 = 0.02;
/// Drops are measured in shares of the level: a quiet weekend at 60 % of a weekday's load is
/// not a fault (2.7 units of this), a collapse to near nothing is (6.7 units, score 0.53).
const RELATIVE_FLOOR_DOWN: f32 = 0.15;
/// A run of samples at least this many deviations off on one side counts towards a level
/// shift (lower than the alarm level: learning inside the hour lowers the score of a lasting
/// shift before the run is long enough).
const SHIFT_Z: f64 = 3.0;
/// 1.4826 × MAD estimates a standard deviation for normal data.
const MAD_TO_SIGMA: f32 = 1.4826;
/// Updates are clipped at this many deviations.
const WINSOR: f32 = 3.0;
/// `z` at which the score is 0.5.
const HALF_SCORE_Z: f64 = 6.0;

/// One part of the season's baseline: 12 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct Bucket {
    level: f32,
    spread: f32,
    seen: u32,
}

/// One series' baseline, owned: what the store keeps and what a single series (tests) runs
/// on. The detector keeps the same parts in its own tables and calls [`score`] directly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnomalyState {
    /// The season's buckets.
    pub buckets: Vec<Bucket>,
    /// Consecutive anomalous samples, signed by direction.
    pub streak: i32,
    /// The previous sample's time.
    pub last_at: Option<Timestamp>,
}

/// What one sample scored.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score {
    /// In [0, 1); 0 while warming up.
    pub score: f64,
    /// The baseline the sample was compared with.
    pub expected: f64,
    /// Whether the baseline had seen enough of this part of the season to judge.
    pub warm: bool,
    /// Whether the sample was above (true) or below the baseline.
    pub above: bool,
}

impl AnomalyState {
    /// An empty baseline for `config`.
    pub fn new(config: &AnomalyConfig) -> Self {
        Self {
            buckets: vec![Bucket::default(); buckets(config)],
            streak: 0,
            last_at: None,
        }
    }

    /// Scores `value` at `at`, then learns from it.
    pub fn step(
        &mut self,
        config: &AnomalyConfig,
        kind: MetricKind,
        watch: Watch,
        value: f64,
        at: Timestamp,
    ) -> Score {
        let previous = self.last_at.replace(at);
        let sample = Observed {
            kind,
            watch,
            value,
            at,
            previous,
        };
        score(config, &mut self.buckets, &mut self.streak, &sample)
    }
}

/// How many buckets a baseline for `config` has.
pub fn buckets(config: &AnomalyConfig) -> usize {
    usize::from(config.buckets.max(1))
}

/// Copies a baseline kept in `from.len()` buckets into `to.len()` buckets covering the same
/// season (a reload changed `buckets`): each new bucket takes the old one its start falls in.
pub fn rebin(from: &[Bucket], to: &mut [Bucket]) {
    let (n, m) = (from.len(), to.len());
    if n == 0 {
        return;
    }
    for (j, bucket) in to.iter_mut().enumerate() {
        *bucket = from[j * n / m];
    }
}

/// Which bucket of `n` the time `at` falls in.
fn bucket_of(config: &AnomalyConfig, n: usize, at: Timestamp) -> usize {
    let season = i64::try_from(config.season.as_millis()).unwrap_or(i64::MAX);
    if n <= 1 || season <= 0 {
        return 0;
    }
    let phase = at.as_millis().rem_euclid(season) as u64;
    let season = season as u64;
    // `phase < season`, so the index is below `n`; 64-bit unless the season is absurdly long.
    match phase.checked_mul(n as u64) {
        Some(p) => (p / season) as usize,
        None => (u128::from(phase) * n as u128 / u128::from(season)) as usize,
    }
}

/// One sample as the scorer sees it.
#[derive(Debug, Clone, Copy)]
pub struct Observed {
    /// The metric family (sets the absolute floor).
    pub kind: MetricKind,
    /// Which deviations count.
    pub watch: Watch,
    /// The value.
    pub value: f64,
    /// Its time.
    pub at: Timestamp,
    /// The series' previous sample, if any (a long gap ends a run of anomalies).
    pub previous: Option<Timestamp>,
}

/// Scores a sample against a baseline's `buckets` and learns from it; `streak` is the
/// baseline's run of anomalies.
pub fn score(
    config: &AnomalyConfig,
    buckets: &mut [Bucket],
    streak: &mut i32,
    sample: &Observed,
) -> Score {
    let Observed {
        kind,
        watch,
        value,
        at,
        previous,
    } = *sample;
    let gap_ms = previous.map_or(0, |t| at.as_millis().saturating_sub(t.as_millis()));
    let n = buckets.len();
    let index = bucket_of(config, n, at);
    let x = value as f32;
    let Some(b) = buckets.get_mut(index) else {
        return Score {
            score: 0.0,
            expected: value,
            warm: false,
            above: false,
        };
    };
    if b.seen == 0 {
        *b = Bucket {
            level: x,
            spread: (x.abs() * 0.05).max(absolute_floor(kind)),
            seen: 1,
        };
        return Score {
            score: 0.0,
            expected: value,
            warm: false,
            above: false,
        };
    }
    let deviation = x - b.level;
    let scale = if deviation < 0.0 && watch != Watch::Both {
        // A drop is judged against the level alone: a link's usual jitter must not excuse
        // it falling to nothing.
        (RELATIVE_FLOOR_DOWN * b.level.abs()).max(absolute_floor(kind))
    } else {
        (MAD_TO_SIGMA * b.spread)
            .max(RELATIVE_FLOOR * b.level.abs())
            .max(absolute_floor(kind))
    };
    let counted = match watch {
        Watch::Up => deviation.max(0.0),
        Watch::Down => (-deviation).max(0.0),
        Watch::Both => deviation.abs(),
    };
    let z = f64::from(counted / scale);
    let warm = b.seen >= config.warm_up;
    let expected = f64::from(b.level);
    let score = if warm { z / (z + HALF_SCORE_Z) } else { 0.0 };
    // Learn, robustly.
    let alpha = config.learning_rate;
    let clipped = b.level + deviation.clamp(-WINSOR * scale, WINSOR * scale);
    b.level += alpha * (clipped - b.level);
    b.spread += alpha * ((clipped - b.level).abs() - b.spread);
    b.seen = b.seen.saturating_add(1);
    // Level shifts: a long run of anomalies on one side is the new normal.
    let bucket_ms = i64::try_from(config.season.as_millis()).unwrap_or(i64::MAX)
        / i64::try_from(n).unwrap_or(1);
    if gap_ms > bucket_ms.max(1) * 2 {
        *streak = 0;
    }
    let anomalous = warm && z >= SHIFT_Z;
    let side = if deviation >= 0.0 { 1 } else { -1 };
    *streak = if !anomalous {
        0
    } else if streak.signum() == side {
        *streak + side
    } else {
        side
    };
    if streak.unsigned_abs() >= config.shift_after {
        for bucket in buckets.iter_mut() {
            if bucket.seen > 0 {
                bucket.level += deviation;
            }
        }
        *streak = 0;
    }
    Score {
        score,
        expected,
        warm,
        above: deviation >= 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MIN: i64 = 60_000;

    fn config() -> AnomalyConfig {
        AnomalyConfig::default()
    }

    /// A day-shaped utilisation curve: 20 % at night, 70 % mid-afternoon, plus small noise.
    fn diurnal(minute: i64, noise: f64) -> f64 {
        let hour = (minute % 1440) as f64 / 60.0;
        45.0 - 25.0 * ((hour - 3.0) / 24.0 * std::f64::consts::TAU).cos() + noise
    }

    fn noise(i: i64) -> f64 {
        // Deterministic pseudo-noise in [-1.5, 1.5].
        ((i * 7919 % 1000) as f64 / 1000.0 - 0.5) * 3.0
    }

    fn run(days: i64, mut f: impl FnMut(i64) -> f64) -> (AnomalyState, Vec<Score>) {
        let c = config();
        let mut s = AnomalyState::new(&c);
        let scores = (0..days * 1440 / 5)
            .map(|i| {
                let minute = i * 5;
                s.step(
                    &c,
                    MetricKind::Utilisation,
                    Watch::Both,
                    f(minute),
                    Timestamp::from_millis(minute * MIN),
                )
            })
            .collect();
        (s, scores)
    }

    #[test]
    fn a_normal_day_scores_low_once_warm() {
        let (_, scores) = run(4, |m| diurnal(m, noise(m)));
        let last_day = &scores[scores.len() - 288..];
        assert!(last_day.iter().all(|s| s.warm));
        let worst = last_day.iter().map(|s| s.score).fold(0.0, f64::max);
        assert!(worst < 0.4, "worst score on a normal day: {worst}");
    }

    #[test]
    fn a_spike_scores_high_and_bigger_spikes_score_higher() {
        let c = config();
        let (mut s, _) = run(4, |m| diurnal(m, noise(m)));
        let at = 4 * 1440 + 600; // 10:00 on day five
        let usual = diurnal(at, 0.0);
        let kind = MetricKind::Utilisation;
        let mut score = |v: f64, dt: i64| {
            s.step(
                &c,
                kind,
                Watch::Both,
                v,
                Timestamp::from_millis((at + dt) * MIN),
            )
            .score
        };
        let small = score(usual + 20.0, 0);
        let big = score(usual + 45.0, 5);
        assert!(small > 0.5, "20 points above the usual {usual}: {small}");
        assert!(big > small, "{big} <= {small}");
        // Latency-like values far beyond still rank.
        let c2 = config();
        let mut l = AnomalyState::new(&c2);
        for i in 0..200 {
            l.step(
                &c2,
                MetricKind::Latency,
                Watch::Up,
                20.0 + noise(i),
                Timestamp::from_millis(i * MIN),
            );
        }
        let a = l
            .step(
                &c2,
                MetricKind::Latency,
                Watch::Up,
                10_000.0,
                Timestamp::from_millis(201 * MIN),
            )
            .score;
        let b = l
            .step(
                &c2,
                MetricKind::Latency,
                Watch::Up,
                100_000.0,
                Timestamp::from_millis(202 * MIN),
            )
            .score;
        assert!(b > a && b < 1.0, "{a} {b}");
    }

    #[test]
    fn a_drop_only_counts_when_watched() {
        let c = config();
        let (mut s, _) = run(4, |m| diurnal(m, noise(m)));
        let at = Timestamp::from_millis((4 * 1440 + 900) * MIN);
        let collapse = s.step(&c, MetricKind::Utilisation, Watch::Up, 0.5, at);
        assert_eq!(collapse.score, 0.0);
        assert!(!collapse.above);
        let at = Timestamp::from_millis((4 * 1440 + 905) * MIN);
        let collapse = s.step(&c, MetricKind::Utilisation, Watch::Both, 0.5, at);
        assert!(collapse.score > 0.6, "{collapse:?}");
    }

    #[test]
    fn a_level_shift_is_learned_not_alarmed_forever() {
        let (_, scores) = run(6, |m| {
            let base = diurnal(m, noise(m));
            if m > 4 * 1440 { base + 25.0 } else { base }
        });
        // The first shifted sample is the one after minute 4 × 1440.
        let after = &scores[(4 * 1440 / 5) as usize + 1..];
        let alarming = after.iter().take_while(|s| s.score >= 0.5).count();
        assert!(alarming >= 1, "the shift should be noticed");
        let last_day = &scores[scores.len() - 288..];
        let worst = last_day.iter().map(|s| s.score).fold(0.0, f64::max);
        assert!(worst < 0.5, "still alarming a day after the shift: {worst}");
    }

    #[test]
    fn flat_noise_never_alarms() {
        let c = config();
        let mut s = AnomalyState::new(&c);
        for i in 0..5000i64 {
            let v = 0.2 + (i % 3) as f64 * 0.01;
            let sc = s.step(
                &c,
                MetricKind::Loss,
                Watch::Up,
                v,
                Timestamp::from_millis(i * MIN),
            );
            assert!(sc.score < 0.2, "{i}: {sc:?}");
        }
    }

    proptest! {
        #[test]
        fn scores_stay_in_range_for_any_finite_input(values in proptest::collection::vec(0.0f64..1e9, 1..300)) {
            let c = config();
            let mut s = AnomalyState::new(&c);
            for (i, v) in values.iter().enumerate() {
                let sc = s.step(&c, MetricKind::Latency, Watch::Both, *v, Timestamp::from_millis(i as i64 * MIN));
                prop_assert!((0.0..1.0).contains(&sc.score), "{sc:?}");
                prop_assert!(sc.expected.is_finite());
            }
        }
    }
}
