//! A streaming anomaly score per series, calibrated to that series' own history.
//!
//! Two stages, both O(1) per series and per sample.
//!
//! 1. **Deviation.** A sample is predicted as the season's profile at its time of day (buckets,
//!    24 hourly by default, each an exponentially weighted level and mean absolute deviation,
//!    interpolated between neighbours), plus its weekday's offset (a quiet weekend is learned),
//!    plus a local level that follows the last samples and fades (so a series drifting within
//!    its season is judged against where it is now, while the profile keeps the usual). A
//!    deviation that lasts `shift-after` samples is a level shift: the profile takes it whole,
//!    rather than alarming for ever. Its residual, in the bucket's robust deviations and counted only in the
//!    watched direction, is the raw deviation `z`. Updates are winsorised at three deviations,
//!    so a spike does not drag the baseline with it.
//! 2. **Rarity.** `r = ln(1 + z)` is compared with the series' own past values of `r`: their
//!    running mean and variance set a threshold `u` two deviations up, the share of samples
//!    beyond it and the mean excess beyond it fit an exponential tail (peaks over threshold,
//!    which in `z` is a Pareto tail, so heavy-tailed series are judged by their own tail). The
//!    tail probability `p` of the sample's `r` gives the score `-log10(p) / 10`: a score `s`
//!    means a deviation this large is seen about once in `10^(10 s)` samples of this series,
//!    whatever its scale or noise. 0.35 is one in 3,000: at five-minute samples, about 0.1 a
//!    day by chance. Scores are capped below 1.
//!
//! Warm-up: no score until a whole season has passed since the series' first sample, the
//! sample's bucket has seen `warm-up` samples and the tail has learned from [`TAIL_WARM`]
//! samples. Memory per series: 12 bytes per bucket plus a 64-byte [`Head`].

use serde::{Deserialize, Serialize};

use crate::config::AnomalyConfig;
pub use crate::model::Watch;
use crate::model::{MetricKind, Timestamp};

/// Deviations smaller than this (in the metric's unit) never count, so flat series with tiny
/// noise do not alarm: 1 % utilisation, 0.5 % loss, 1 ms latency. Rates and KPIs have no unit
/// to judge by and rely on the relative floor.
fn absolute_floor(kind: MetricKind) -> f32 {
    match kind {
        MetricKind::Loss => 0.5,
        MetricKind::Latency | MetricKind::Utilisation => 1.0,
        _ => 0.0,
    }
}

/// Deviations below this share of the prediction never count (a counter that has been flat
/// for days ticking by one is not news).
const RELATIVE_FLOOR: f32 = 1e-3;
/// 1.4826 × MAD estimates a standard deviation for normal data.
const MAD_TO_SIGMA: f32 = 1.4826;
/// Updates are clipped at this many deviations.
const WINSOR: f32 = 3.0;
/// Share of each (clipped) residual the local level takes: it follows the series closely, so
/// the prediction is "where it is now, moved along the season's shape".
const LOCAL_RATE: f32 = 0.8;
/// Share of the local level that fades each sample (a time constant of 20 samples): it is a
/// passing deviation, so the profile and the weekday offsets are left to carry the level (else
/// the two split it arbitrarily, "the usual" drifts, and a return to it after a collapse reads
/// as an anomaly).
const LOCAL_FADE: f32 = 0.05;
/// Share of each residual a weekday's offset takes (about a week's memory per weekday).
const WEEK_RATE: f32 = 0.01;
/// A run of samples at least this many deviations off on one side counts towards a level
/// shift, which after `shift-after` samples the profile takes whole.
const SHIFT_Z: f32 = 3.0;
/// The tail's threshold, in deviations of `r` above its mean.
const TAIL_K: f32 = 2.0;
/// Weight of each sample in the tail's mean, variance and exceedance share (about 2,000
/// samples: a week at five-minute samples).
const TAIL_RATE: f32 = 1.0 / 2000.0;
/// Weight of each exceedance in the mean excess (about 50 exceedances).
const EXCESS_RATE: f32 = 1.0 / 50.0;
/// Samples the tail must have learned from before scores are given.
pub const TAIL_WARM: u32 = 200;
/// Scores stay below this, so a tier boundary can always be crossed and left.
const MAX_SCORE: f64 = 0.999;

/// One part of the season's profile: 12 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct Bucket {
    level: f32,
    spread: f32,
    seen: u32,
}

#[cfg(test)]
impl Bucket {
    /// A bucket that has learned `level` and `spread` from `seen` samples.
    pub fn learned(level: f32, spread: f32, seen: u32) -> Self {
        Self {
            level,
            spread,
            seen,
        }
    }
}

/// How rare a raw deviation is for one series: the running fit of its tail.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Tail {
    mean: f32,
    var: f32,
    /// Share of samples beyond the threshold.
    exceed: f32,
    /// Mean excess beyond it.
    excess: f32,
    count: u32,
}

impl Default for Tail {
    fn default() -> Self {
        Self {
            mean: 0.0,
            var: 0.0,
            exceed: 0.02,
            excess: 0.3,
            count: 0,
        }
    }
}

impl Tail {
    fn threshold(&self) -> f32 {
        self.mean + TAIL_K * self.var.max(0.0).sqrt()
    }

    /// `-log10` of the tail probability of `r` (past the threshold `u`), over ten, in
    /// [0, [`MAX_SCORE`]].
    fn score(&self, r: f32, u: f32) -> f64 {
        let ln_p = ln(self.exceed.max(1e-4)) - (r - u) / self.excess.max(1e-3);
        (f64::from(-ln_p / std::f32::consts::LN_10) / 10.0).clamp(0.0, MAX_SCORE)
    }

    /// Learns from `r`, given the threshold `u` it was judged against.
    fn learn(&mut self, r: f32, u: f32) {
        self.count = self.count.saturating_add(1);
        // A plain average until the window is full, so the first samples are not swamped by
        // the initial values.
        let rate = plain_average_then(TAIL_RATE, self.count);
        let d = r - self.mean;
        self.mean += rate * d;
        self.var = (1.0 - rate) * (self.var + rate * d * d);
        let beyond = r > u;
        self.exceed += rate * (f32::from(u8::from(beyond)) - self.exceed);
        if beyond {
            // (Only past the threshold, about one sample in fifty: a division is fine here.)
            let expected_exceedances = (self.count as f32 * 0.02).max(1.0);
            let rate = EXCESS_RATE.max(1.0 / expected_exceedances);
            self.excess += rate * ((r - u).min(3.0 * self.excess) - self.excess);
        }
    }
}

/// A series' state besides its buckets: 64 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Head {
    /// The local level: where the series is now against its season.
    local: f32,
    /// Offsets per weekday (days since the epoch, modulo 7), when `weekly`.
    week: [f32; 7],
    tail: Tail,
    /// The series' first sample, for the season-long warm-up (once `started`).
    first_at: Timestamp,
    started: bool,
}

impl Default for Head {
    fn default() -> Self {
        Self {
            local: 0.0,
            week: [0.0; 7],
            tail: Tail::default(),
            first_at: Timestamp::from_millis(0),
            started: false,
        }
    }
}

const _: () = assert!(std::mem::size_of::<Head>() <= 64);

/// One series' baseline, owned: what the store keeps and what a single series (tests) runs
/// on. The detector keeps the same parts in its own tables and calls [`score`] directly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnomalyState {
    /// The season's buckets.
    pub buckets: Vec<Bucket>,
    /// The rest.
    pub head: Head,
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
    /// The prediction the sample was compared with.
    pub expected: f64,
    /// Whether the baseline had seen enough to judge.
    pub warm: bool,
    /// Whether the sample was above (true) or below the prediction.
    pub above: bool,
}

impl AnomalyState {
    /// An empty baseline for `config`.
    pub fn new(config: &AnomalyConfig) -> Self {
        Self {
            buckets: vec![Bucket::default(); buckets(config)],
            head: Head::default(),
            streak: 0,
            last_at: None,
        }
    }

    /// A baseline of an older version (buckets only, each a whole level): the buckets become
    /// the season's profile, the tail learns again, and the season counts as seen.
    pub fn from_buckets(
        buckets: Vec<Bucket>,
        streak: i32,
        last_at: Option<Timestamp>,
        config: &AnomalyConfig,
    ) -> Self {
        Self {
            buckets,
            head: Head {
                first_at: last_at.map_or(Timestamp::from_millis(0), |t| t.minus(config.season)),
                started: last_at.is_some(),
                ..Head::default()
            },
            streak,
            last_at,
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
        score(
            config,
            &mut self.buckets,
            &mut self.head,
            &mut self.streak,
            &sample,
        )
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

/// Where in the season `at` falls: its bucket of `n`, and how far through it (0 to 1). In
/// integers, so a sample on a bucket's boundary (every hour, for five-minute polls) is always in
/// the bucket it starts; a year of milliseconds times 10,080 buckets fits in 64 bits.
fn position(config: &AnomalyConfig, n: usize, at: Timestamp) -> (usize, f32) {
    let season = config.season.as_millis() as u64;
    if n <= 1 || season == 0 {
        return (0, 0.5);
    }
    let scaled = at.as_millis().rem_euclid(season as i64) as u64 * n as u64;
    let index = ((scaled / season) as usize).min(n - 1);
    let through = (scaled - index as u64 * season) as f32 / season as f32;
    (index, through)
}

/// The weight of the `count`-th sample: `1 / count` (a plain average) until that falls to
/// `rate`, then `rate` (an exponentially weighted one). Branching first keeps the division
/// off the path of every warm series.
#[inline]
fn plain_average_then(rate: f32, count: u32) -> f32 {
    let count = count.max(1) as f32;
    if count * rate < 1.0 {
        1.0 / count
    } else {
        rate
    }
}

/// The natural logarithm of `x` ≥ `f32::MIN_POSITIVE` (infinity is taken as `f32::MAX`), to
/// about 1e-5: from its exponent and the series `2 (t + t³/3 + t⁵/5 + t⁷/7)`, `t = (m-1)/(m+1)`,
/// for its mantissa `m` in [1, 2). libm's `log1pf` and `logf` took a fifth of a sample's time;
/// ranking deviations needs neither their last bits nor their handling of NaN.
fn ln(x: f32) -> f32 {
    let bits = x.clamp(f32::MIN_POSITIVE, f32::MAX).to_bits();
    let exponent = ((bits >> 23) & 0xff) as i32 - 127;
    let m = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000);
    let t = (m - 1.0) / (m + 1.0);
    let t2 = t * t;
    let series = 2.0 * t * (1.0 + t2 * (1.0 / 3.0 + t2 * (1.0 / 5.0 + t2 * (1.0 / 7.0))));
    exponent as f32 * std::f32::consts::LN_2 + series
}

/// Which weekday `at` falls on (days since the epoch, modulo 7).
fn weekday(at: Timestamp) -> usize {
    at.as_millis().div_euclid(86_400_000).rem_euclid(7) as usize
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
    /// The series' previous sample, if any (a long gap fades the local level).
    pub previous: Option<Timestamp>,
}

/// Scores a sample against a baseline's `buckets` and `head` and learns from it; `streak` is
/// the baseline's run of anomalies.
pub fn score(
    config: &AnomalyConfig,
    buckets: &mut [Bucket],
    head: &mut Head,
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
    let n = buckets.len();
    let (index, through) = position(config, n, at);
    let x = value as f32;
    let day = if config.weekly { weekday(at) } else { 0 };
    if !head.started {
        (head.first_at, head.started) = (at, true);
    }
    let first_at = head.first_at;
    // After a gap of more than two buckets the local level fades, halving per bucket: what
    // the season says about this time is worth more than a level from hours ago.
    // (The season is at most a year of milliseconds: 64 bits hold it. Without a season there
    // are no buckets to measure a gap in, and nothing fades.)
    let season_ms = config.season.as_millis() as u64;
    let gap_ms = previous.map_or(0, |t| at.as_millis().saturating_sub(t.as_millis()).max(0)) as u64;
    // Gap > 2 × season / n, without a division per sample.
    if season_ms > 0 && gap_ms.saturating_mul(n as u64) > season_ms.saturating_mul(2) {
        let buckets_missed = gap_ms as f64 * n as f64 / season_ms as f64;
        head.local *= 0.5f32.powf(buckets_missed as f32);
        *streak = 0;
    }
    let offset = if config.weekly { head.week[day] } else { 0.0 };
    let Some(&b) = buckets.get(index) else {
        return Score::cold(value);
    };
    if b.seen == 0 {
        buckets[index] = Bucket {
            level: x - offset - head.local,
            spread: (x.abs() * 0.05)
                .max(absolute_floor(kind))
                .max(f32::MIN_POSITIVE),
            seen: 1,
        };
        return Score::cold(value);
    }
    // The profile between this bucket's middle and its neighbour's.
    let toward = match (through >= 0.5, index) {
        (true, i) if i + 1 == n => 0,
        (true, i) => i + 1,
        (false, 0) => n - 1,
        (false, i) => i - 1,
    };
    let season = match buckets.get(toward) {
        Some(nb) if nb.seen > 0 && n > 1 => b.level + (nb.level - b.level) * (through - 0.5).abs(),
        _ => b.level,
    };
    let predicted = season + offset + head.local;
    let deviation = x - predicted;
    let scale = (MAD_TO_SIGMA * b.spread)
        .max(RELATIVE_FLOOR * predicted.abs())
        .max(absolute_floor(kind))
        .max(f32::MIN_POSITIVE);
    let counted = match watch {
        Watch::Rising => deviation.max(0.0),
        Watch::Falling => (-deviation).max(0.0),
        Watch::Both => deviation.abs(),
    };
    let r = ln(1.0 + counted / scale);
    // The tail learns only from a model that has seen its season, so the first day's large
    // residuals (a profile still forming) do not set what counts as rare.
    let seen_for_ms = at.as_millis().saturating_sub(first_at.as_millis()).max(0) as u64;
    let model_warm = b.seen >= config.warm_up && seen_for_ms >= season_ms;
    let warm = model_warm && head.tail.count >= TAIL_WARM;
    let u = head.tail.threshold();
    let score = if warm { head.tail.score(r, u) } else { 0.0 };
    if model_warm {
        head.tail.learn(r, u);
    }
    // Learn, robustly. A bucket's first samples are averaged plainly (rate 1/seen), so one
    // whose first value happened to be near zero does not take days to learn its spread.
    let clipped = deviation.clamp(-WINSOR * scale, WINSOR * scale);
    head.local = head.local * (1.0 - LOCAL_FADE) + LOCAL_RATE * clipped;
    if config.weekly {
        head.week[day] += WEEK_RATE * clipped;
    }
    let alpha = plain_average_then(config.learning_rate, b.seen);
    let bucket = &mut buckets[index];
    bucket.level += alpha * clipped;
    bucket.spread += alpha * (clipped.abs() - bucket.spread);
    bucket.seen = bucket.seen.saturating_add(1);
    // Level shifts: a long run of large deviations on one side is the new normal.
    let side = if deviation >= 0.0 { 1 } else { -1 };
    *streak = if !(warm && deviation.abs() >= SHIFT_Z * scale) {
        0
    } else if streak.signum() == side {
        *streak + side
    } else {
        side
    };
    if streak.unsigned_abs() >= config.shift_after {
        // The profile takes the shift whole (the local level would fade it again).
        let shift = x - season - offset - head.local;
        for bucket in buckets.iter_mut().filter(|b| b.seen > 0) {
            bucket.level += shift;
        }
        *streak = 0;
    }
    Score {
        score,
        expected: f64::from(predicted),
        warm,
        above: deviation >= 0.0,
    }
}

impl Score {
    /// Nothing to judge by yet.
    fn cold(value: f64) -> Self {
        Self {
            score: 0.0,
            expected: value,
            warm: false,
            above: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MIN: i64 = 60_000;
    const DAY: i64 = 288;

    fn config() -> AnomalyConfig {
        AnomalyConfig::default()
    }

    /// A day-shaped utilisation curve: 20 % at night, 70 % mid-afternoon.
    fn diurnal(minute: i64) -> f64 {
        let hour = (minute % 1440) as f64 / 60.0;
        45.0 - 25.0 * ((hour - 3.0) / 24.0 * std::f64::consts::TAU).cos()
    }

    /// Deterministic noise, about normal with deviation 1 (a sum of four xorshift uniforms).
    struct Noise(u64);

    impl Noise {
        fn uniform(&mut self) -> f64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 >> 11) as f64 / (1u64 << 53) as f64
        }

        fn normal(&mut self) -> f64 {
            ((0..4).map(|_| self.uniform()).sum::<f64>() - 2.0) * 3f64.sqrt()
        }
    }

    /// Scores of `days` of five-minute samples `f(minute, noise)`, and the state after them.
    fn run(
        days: i64,
        kind: MetricKind,
        watch: Watch,
        mut f: impl FnMut(i64, &mut Noise) -> f64,
    ) -> (AnomalyState, Vec<Score>) {
        let c = config();
        let mut s = AnomalyState::new(&c);
        let mut noise = Noise(0x9e37_79b9_7f4a_7c15);
        let scores = (0..days * DAY)
            .map(|i| {
                let minute = i * 5;
                let v = f(minute, &mut noise);
                s.step(&c, kind, watch, v, Timestamp::from_millis(minute * MIN))
            })
            .collect();
        (s, scores)
    }

    fn worst(scores: &[Score]) -> f64 {
        scores.iter().map(|s| s.score).fold(0.0, f64::max)
    }

    /// The share of `scores` at or over the warning level. Calibrated, it is about one in
    /// 3,000 on normal data (the level's rarity), so tests bound it rather than the worst.
    fn share_over_warning(scores: &[Score]) -> f64 {
        let warning = config().warning;
        scores.iter().filter(|s| s.score >= warning).count() as f64 / scores.len().max(1) as f64
    }

    fn utilisation(days: i64, f: impl FnMut(i64, &mut Noise) -> f64) -> (AnomalyState, Vec<Score>) {
        run(days, MetricKind::Utilisation, Watch::Both, f)
    }

    #[test]
    fn nothing_is_judged_until_a_season_has_been_seen() {
        let (_, scores) = utilisation(4, |m, n| diurnal(m) + n.normal());
        assert!(
            scores[..DAY as usize]
                .iter()
                .all(|s| !s.warm && s.score == 0.0)
        );
        assert!(scores[3 * DAY as usize..].iter().all(|s| s.warm));
    }

    #[test]
    fn normal_days_reach_the_warning_level_as_rarely_as_it_says() {
        let (_, scores) = utilisation(21, |m, n| diurnal(m) + n.normal());
        let share = share_over_warning(&scores[3 * DAY as usize..]);
        assert!(share <= 1.0 / 1000.0, "share over warning {share}");
    }

    #[test]
    fn a_spike_scores_high_and_bigger_spikes_score_higher() {
        let c = config();
        let (mut s, _) = utilisation(7, |m, n| diurnal(m) + n.normal());
        let at = 7 * 1440 + 600; // 10:00 on day eight
        let t = Timestamp::from_millis(at * MIN);
        let mut other = s.clone();
        let small = s
            .step(
                &c,
                MetricKind::Utilisation,
                Watch::Both,
                diurnal(at) + 5.0,
                t,
            )
            .score;
        let big = other
            .step(
                &c,
                MetricKind::Utilisation,
                Watch::Both,
                diurnal(at) + 7.0,
                t,
            )
            .score;
        assert!(
            small > c.warning,
            "five deviations above the usual: {small}"
        );
        assert!(big > small && big < 1.0, "{big} vs {small}");
    }

    #[test]
    fn the_same_rarity_scores_the_same_on_any_scale_and_noise() {
        // The same shape in bit/s and in a normalised KPI around zero: the scores agree.
        let score_of = |scale: f64, shift: f64| {
            let (_, scores) = run(9, MetricKind::Traffic, Watch::Both, |m, n| {
                let spike = if m == 8 * 1440 + 600 { 15.0 } else { 0.0 };
                (diurnal(m) + n.normal() + spike) * scale + shift
            });
            scores[(8 * DAY + 120) as usize].score
        };
        let (bits, kpi) = (score_of(1e6, 0.0), score_of(0.01, -0.45));
        assert!(bits > 0.5 && (bits - kpi).abs() < 0.02, "{bits} vs {kpi}");
        // Heavy-tailed noise (one sample in 50 five times off) is judged by its own tail: it
        // alarms about as rarely by chance as smooth noise does, not all the time.
        let noisy = |heavy: bool| {
            let (_, scores) = utilisation(21, |m, n| {
                let jolt = if heavy && n.uniform() < 0.02 {
                    5.0 * n.normal()
                } else {
                    0.0
                };
                diurnal(m) + n.normal() + jolt
            });
            share_over_warning(&scores[3 * DAY as usize..])
        };
        let (smooth, heavy) = (noisy(false), noisy(true));
        assert!(
            smooth < 1e-3 && heavy < 2e-3,
            "share over warning: {smooth} smooth, {heavy} heavy"
        );
    }

    #[test]
    fn only_the_watched_direction_counts() {
        let c = config();
        for (watch, counted) in [
            (Watch::Rising, false),
            (Watch::Falling, true),
            (Watch::Both, true),
        ] {
            let (mut s, _) = run(7, MetricKind::Utilisation, watch, |m, n| {
                diurnal(m) + n.normal()
            });
            let at = Timestamp::from_millis((7 * 1440 + 900) * MIN);
            let collapse = s.step(&c, MetricKind::Utilisation, watch, 0.5, at);
            assert!(!collapse.above);
            assert_eq!(collapse.score > c.warning, counted, "{watch}: {collapse:?}");
        }
    }

    #[test]
    fn a_level_shift_is_learned_not_alarmed_forever() {
        let warning = config().warning;
        let (_, scores) = utilisation(10, |m, n| {
            let base = diurnal(m) + n.normal();
            if m > 7 * 1440 { base + 25.0 } else { base }
        });
        let shifted = 7 * DAY as usize + 1;
        assert!(
            scores[shifted].score > warning,
            "the shift is noticed: {:?}",
            scores[shifted]
        );
        let last_day = &scores[scores.len() - DAY as usize..];
        assert!(
            worst(last_day) < warning,
            "still alarming a day after the shift"
        );
    }

    #[test]
    fn a_quiet_weekend_is_learned() {
        // Days since the epoch modulo 7 of 2 and 3 are the quiet ones, at 40 % of a weekday.
        let (_, scores) = utilisation(28, |m, n| {
            let quiet = matches!((m / 1440) % 7, 2 | 3);
            diurnal(m) * if quiet { 0.4 } else { 1.0 } + n.normal()
        });
        let share = share_over_warning(&scores[14 * DAY as usize..]);
        assert!(share <= 1.0 / 1000.0, "share over warning {share}");
    }

    #[test]
    fn missing_stretches_and_irregular_samples_do_not_alarm() {
        let c = config();
        let mut s = AnomalyState::new(&c);
        let mut noise = Noise(7);
        let mut minute = 0;
        let mut scores = Vec::new();
        while minute < 14 * 1440 {
            // Samples 1 to 9 minutes apart, and a six-hour hole every fourth day.
            minute += 1 + (noise.uniform() * 9.0) as i64;
            if (minute / 1440) % 4 == 3 && minute % 1440 < 360 {
                continue;
            }
            let at = Timestamp::from_millis(minute * MIN);
            let v = diurnal(minute) + noise.normal();
            let score = s.step(&c, MetricKind::Utilisation, Watch::Both, v, at);
            if minute > 3 * 1440 {
                scores.push(score);
            }
        }
        let share = share_over_warning(&scores);
        assert!(share <= 1.0 / 1000.0, "share over warning {share}");
    }

    #[test]
    fn a_negative_kpi_is_judged_like_any_other() {
        // A signal level in dBm: about -85, swinging with the day.
        let c = config();
        let (mut s, scores) = run(7, MetricKind::Traffic, Watch::Falling, |m, n| {
            -85.0 + diurnal(m) / 10.0 + n.normal() * 0.3
        });
        assert!(worst(&scores[2 * DAY as usize..]) < c.warning);
        let at = Timestamp::from_millis(7 * 1440 * MIN);
        let fade = s.step(&c, MetricKind::Traffic, Watch::Falling, -100.0, at);
        assert!(fade.score > c.critical && fade.expected < -80.0, "{fade:?}");
    }

    #[test]
    fn an_old_baseline_keeps_its_profile_and_learns_its_tail_again() {
        let c = config();
        let (s, _) = utilisation(3, |m, n| diurnal(m) + n.normal());
        let old = AnomalyState::from_buckets(s.buckets.clone(), 0, s.last_at, &c);
        assert_eq!(old.buckets, s.buckets);
        assert_eq!(old.head.tail.count, 0);
        let mut old = old;
        let mut minute = 3 * 1440;
        let mut warm_after = None;
        for i in 0..400 {
            minute += 5;
            let at = Timestamp::from_millis(minute * MIN);
            let score = old.step(
                &c,
                MetricKind::Utilisation,
                Watch::Both,
                diurnal(minute),
                at,
            );
            if score.warm && warm_after.is_none() {
                warm_after = Some(i);
            }
        }
        // The season counts as seen; the tail needs its samples.
        assert_eq!(warm_after, Some(TAIL_WARM as usize));
    }

    #[test]
    fn a_sample_on_a_bucket_boundary_is_in_the_bucket_it_starts() {
        let c = config();
        for day in [0i64, 1, 20_000, -3] {
            for hour in 0..24 {
                let at = Timestamp::from_millis((day * 24 + hour) * 3_600_000);
                assert_eq!(
                    position(&c, 24, at),
                    (hour as usize, 0.0),
                    "day {day} hour {hour}"
                );
            }
        }
        let half = Timestamp::from_millis(90 * 60_000);
        assert_eq!(position(&c, 24, half), (1, 0.5));
    }

    proptest! {
        #[test]
        fn the_fast_logarithm_agrees_with_libm(x in 1e-30f32..1e30) {
            let (fast, exact) = (ln(x), x.ln());
            prop_assert!((fast - exact).abs() <= 2e-5 * exact.abs().max(1.0), "{x}: {fast} vs {exact}");
        }

        #[test]
        fn scores_stay_in_range_for_any_finite_input(values in proptest::collection::vec(-1e9f64..1e9, 1..600), gaps in proptest::collection::vec(1i64..100_000, 1..600)) {
            let c = config();
            let mut s = AnomalyState::new(&c);
            let mut at = 0;
            for (i, v) in values.iter().enumerate() {
                at += gaps[i % gaps.len()] * 1000;
                let sc = s.step(&c, MetricKind::Traffic, Watch::Both, *v, Timestamp::from_millis(at));
                prop_assert!((0.0..1.0).contains(&sc.score), "{sc:?}");
                prop_assert!(sc.expected.is_finite());
            }
        }
    }
}
