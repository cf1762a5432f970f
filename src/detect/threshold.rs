//! Tiered threshold with hysteresis: which tier a value puts a series in, given its current tier.

use crate::config::ThresholdLevels;
use crate::model::{Direction, Severity};

/// The tier after observing `value` while in `current`.
///
/// A series goes up to the highest level crossed at once, but comes down only as far as the
/// value has gone back past `level - hysteresis` (rising) or `level + hysteresis` (falling), so a
/// value hovering at a level does not flap between tiers.
pub fn next_tier(rule: &ThresholdLevels, current: Severity, value: f64) -> Severity {
    let crossed = |level: f64, margin: f64| match rule.direction {
        Direction::Rising => value >= level - margin,
        Direction::Falling => value <= level + margin,
    };
    // Most samples find a clear series under its lowest level: levels are in order
    // (validated), so no other can be crossed either.
    if current == Severity::Cleared && rule.levels().next().is_none_or(|(_, l)| !crossed(l, 0.0)) {
        return Severity::Cleared;
    }
    let mut raised = Severity::Cleared;
    let mut held = Severity::Cleared;
    for (tier, level) in rule.levels() {
        if crossed(level, 0.0) {
            raised = tier;
        }
        if crossed(level, rule.hysteresis) {
            held = tier;
        }
    }
    if raised > current {
        raised
    } else {
        held.min(current)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rule(direction: Direction) -> ThresholdLevels {
        let (w, mi, ma, c) = match direction {
            Direction::Rising => (70.0, 80.0, 90.0, 95.0),
            Direction::Falling => (30.0, 20.0, 10.0, 5.0),
        };
        ThresholdLevels {
            direction,
            warning: Some(w),
            minor: Some(mi),
            major: Some(ma),
            critical: Some(c),
            hysteresis: 5.0,
            hold: None,
            clear_hold: None,
        }
    }

    #[test]
    fn rising_jumps_up_and_steps_down_past_hysteresis() {
        let r = rule(Direction::Rising);
        assert_eq!(next_tier(&r, Severity::Cleared, 69.9), Severity::Cleared);
        assert_eq!(next_tier(&r, Severity::Cleared, 91.0), Severity::Major);
        // Back under 90 but not under 85: still major.
        assert_eq!(next_tier(&r, Severity::Major, 86.0), Severity::Major);
        assert_eq!(next_tier(&r, Severity::Major, 84.0), Severity::Minor);
        assert_eq!(next_tier(&r, Severity::Warning, 66.0), Severity::Warning);
        assert_eq!(next_tier(&r, Severity::Warning, 64.9), Severity::Cleared);
    }

    #[test]
    fn falling_rules_mirror_rising_ones() {
        let r = rule(Direction::Falling);
        assert_eq!(next_tier(&r, Severity::Cleared, 31.0), Severity::Cleared);
        assert_eq!(next_tier(&r, Severity::Cleared, 4.0), Severity::Critical);
        assert_eq!(next_tier(&r, Severity::Critical, 9.0), Severity::Critical);
        assert_eq!(next_tier(&r, Severity::Critical, 12.0), Severity::Major);
        assert_eq!(next_tier(&r, Severity::Warning, 36.0), Severity::Cleared);
    }

    proptest! {
        #[test]
        fn never_below_the_raw_tier_nor_above_it_without_crossing(v in -10.0f64..120.0, cur in 0usize..6) {
            let r = rule(Direction::Rising);
            let tiers = [Severity::Cleared, Severity::Warning, Severity::Minor, Severity::Major, Severity::Critical];
            let current = tiers[cur % tiers.len()];
            let raw = next_tier(&r, Severity::Cleared, v);
            let next = next_tier(&r, current, v);
            // Hysteresis can only hold a tier up, never push it below the crossed level...
            prop_assert!(next >= raw);
            // ...and can only hold, never raise, above both the current and the crossed tier.
            prop_assert!(next <= raw.max(current));
        }
    }
}
