//! Which threshold rule judges a series: the first `[[thresholds.rule]]` whose metric family,
//! device role, site, tag and object pattern match, else the family's own levels. Config holds
//! the rules as written; matching them is detection's job.

use crate::config::{DeviceConfig, ThresholdLevels, ThresholdRule, Thresholds};
use crate::model::{MetricKind, glob};

/// Whether `rule` applies to an object of a device with this role, site and tags.
pub fn rule_matches(
    rule: &ThresholdRule,
    kind: MetricKind,
    device: Option<&DeviceConfig>,
    object: &str,
) -> bool {
    let device_ok = |check: &dyn Fn(&DeviceConfig) -> bool| device.is_some_and(check);
    rule.metric == kind
        && rule.role.is_none_or(|r| device_ok(&|d| d.role == r))
        && rule
            .site
            .as_ref()
            .is_none_or(|s| device_ok(&|d| d.site.as_ref() == Some(s)))
        && rule
            .tag
            .as_ref()
            .is_none_or(|t| device_ok(&|d| d.tags.contains(t)))
        && rule.object.as_ref().is_none_or(|p| glob(p, object))
}

/// The first `[[thresholds.rule]]` that matches the series, as an index.
pub fn matching_rule(
    thresholds: &Thresholds,
    kind: MetricKind,
    device: Option<&DeviceConfig>,
    object: &str,
) -> Option<usize> {
    thresholds
        .rule
        .iter()
        .position(|r| rule_matches(r, kind, device, object))
}

/// The levels that judge a series: those of its rule (as [`matching_rule`] found it), else its
/// family's.
pub fn levels_of(
    thresholds: &Thresholds,
    kind: MetricKind,
    rule: Option<usize>,
) -> Option<&ThresholdLevels> {
    match rule {
        Some(i) => thresholds.rule.get(i).map(|r| &r.levels),
        None => thresholds.for_kind(kind),
    }
}
