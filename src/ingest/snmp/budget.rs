//! A device's budget of values per second (`max-values-per-second`): each request is admitted
//! no earlier than the values already sent allow, so the agent is never asked for more than
//! its rate over any stretch longer than one request. Pure: time is passed in.

use std::time::{Duration, Instant};

/// Paces requests at `rate` values per second (a virtual-scheduling rate limiter: each request
/// moves the earliest start of the next one on by its values' share of a second).
#[derive(Debug, Clone)]
pub struct Budget {
    rate: f64,
    /// When the next request may start.
    next: Option<Instant>,
}

impl Budget {
    /// A budget of `rate` values per second (at least one).
    pub fn new(rate: u32) -> Self {
        Self {
            rate: f64::from(rate.max(1)),
            next: None,
        }
    }

    /// How long a request of `values` asked at `now` must wait, counted as sent at the end of
    /// that wait.
    pub fn admit(&mut self, values: usize, now: Instant) -> Duration {
        let start = self.next.map_or(now, |n| n.max(now));
        let cost = Duration::from_secs_f64(values as f64 / self.rate);
        self.next = Some(start + cost);
        start - now
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever the requests and however late they are asked, the values sent in any
        /// window are at most its length's worth plus one request.
        #[test]
        fn no_window_carries_more_than_the_rate_allows(
            rate in 10u32..5_000,
            requests in proptest::collection::vec((1usize..200, 0u64..2_000), 1..60),
        ) {
            let t0 = Instant::now();
            let mut budget = Budget::new(rate);
            let mut asked = t0;
            let mut sent: Vec<(Instant, usize)> = Vec::new();
            for (values, gap_ms) in requests {
                asked = sent.last().map_or(asked, |s| s.0.max(asked)) + Duration::from_millis(gap_ms);
                let wait = budget.admit(values, asked);
                sent.push((asked + wait, values));
            }
            let largest = sent.iter().map(|s| s.1).max().unwrap_or(0) as f64;
            for (i, &(from, _)) in sent.iter().enumerate() {
                for &(to, _) in &sent[i..] {
                    let window = (to - from).as_secs_f64();
                    let values: usize = sent.iter().filter(|s| s.0 >= from && s.0 <= to).map(|s| s.1).sum();
                    prop_assert!(
                        // (a microsecond's worth for the nanoseconds the durations round to)
                        values as f64 <= f64::from(rate) * (window + 1e-6) + largest,
                        "{values} values in {window} s at {rate}/s"
                    );
                }
            }
        }
    }

    #[test]
    fn an_idle_agent_is_asked_at_once_and_a_busy_one_paced() {
        let t0 = Instant::now();
        let mut b = Budget::new(100);
        assert_eq!(b.admit(50, t0), Duration::ZERO);
        // 50 values at 100/s: the next may start half a second after the first.
        assert_eq!(b.admit(50, t0), Duration::from_millis(500));
        assert_eq!(
            b.admit(100, t0 + Duration::from_millis(200)),
            Duration::from_millis(800)
        );
        // After a long pause the budget does not save up a burst beyond one request.
        let later = t0 + Duration::from_secs(60);
        assert_eq!(b.admit(100, later), Duration::ZERO);
        assert_eq!(b.admit(100, later), Duration::from_secs(1));
    }
}
