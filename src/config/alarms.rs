//! The alarm manager's sections: `[tiers]` (response targets) and `[alarms]`.

use std::time::Duration;

use serde::Deserialize;

use crate::model::Severity;

/// `[tiers]`: response targets per severity.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct Tiers {
    /// Critical.
    pub critical: TierTarget,
    /// Major.
    pub major: TierTarget,
    /// Minor.
    pub minor: TierTarget,
    /// Warning.
    pub warning: TierTarget,
}

impl Default for Tiers {
    fn default() -> Self {
        let target = |ack_min: u64, restore_h: u64| TierTarget {
            ack_within: Some(Duration::from_secs(ack_min * 60)),
            restore_within: Some(Duration::from_secs(restore_h * 3600)),
        };
        Self {
            critical: target(15, 4),
            major: target(30, 8),
            minor: target(24 * 60, 48),
            warning: TierTarget::default(),
        }
    }
}

impl Tiers {
    /// The targets of `severity`'s tier (none for indeterminate or cleared).
    pub fn of(&self, severity: Severity) -> &TierTarget {
        static NONE: TierTarget = TierTarget {
            ack_within: None,
            restore_within: None,
        };
        match severity {
            Severity::Critical => &self.critical,
            Severity::Major => &self.major,
            Severity::Minor => &self.minor,
            Severity::Warning => &self.warning,
            Severity::Indeterminate | Severity::Cleared => &NONE,
        }
    }
}

/// `[reports]`: post-incident reports.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct ReportsConfig {
    /// Faults that closed at or above this severity get a report.
    #[serde(deserialize_with = "Severity::deserialize_raised")]
    pub min_severity: Severity,
    /// The MTTR every report is held against: 4.2 h, the industry reference.
    #[serde(with = "humantime_serde")]
    pub reference_mttr: Duration,
    /// Earlier faults of the same device (and condition) this far back count as recurrences.
    #[serde(with = "humantime_serde")]
    pub recurrence: Duration,
}

impl Default for ReportsConfig {
    fn default() -> Self {
        Self {
            min_severity: Severity::Major,
            reference_mttr: Duration::from_secs(4 * 3600 + 12 * 60),
            recurrence: Duration::from_secs(30 * 86_400),
        }
    }
}

/// Acknowledge and restore targets of one tier; absent means no target.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TierTarget {
    /// Acknowledge within.
    #[serde(default, with = "humantime_serde")]
    pub ack_within: Option<Duration>,
    /// Restore within.
    #[serde(default, with = "humantime_serde")]
    pub restore_within: Option<Duration>,
}

/// `[alarms]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct AlarmsConfig {
    /// A cleared condition must stay clear this long before the alarm clears.
    #[serde(with = "humantime_serde")]
    pub clear_hold_down: Duration,
    /// A condition that comes back within this time of its clear reopens the same fault.
    #[serde(with = "humantime_serde")]
    pub reopen_window: Duration,
    /// Sliding window in which state changes are counted for flapping.
    #[serde(with = "humantime_serde")]
    pub flap_window: Duration,
    /// State changes within the window that make a condition flapping.
    pub flap_threshold: u32,
    /// A flapping condition must be stable this long before the flapping alarm clears.
    #[serde(with = "humantime_serde")]
    pub flap_hold: Duration,
    /// Raise the severity one tier when the acknowledge target passes.
    pub escalate_on_ack_overdue: bool,
    /// Instantaneous events (reboot) clear by themselves after this long.
    #[serde(with = "humantime_serde")]
    pub event_clear_after: Duration,
    /// Cleared history and closed faults older than this are deleted.
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
    /// Notes a fault may have (acks' and clears' included); past it a new one gets 400.
    pub max_notes_per_fault: usize,
    /// Bytes of one note's text; past it 413.
    pub max_note_bytes: usize,
}

impl AlarmsConfig {
    /// The limits on engineers' notes.
    pub fn note_limits(&self) -> crate::model::NoteLimits {
        crate::model::NoteLimits {
            per_fault: self.max_notes_per_fault,
            bytes: self.max_note_bytes,
        }
    }
}

impl Default for AlarmsConfig {
    fn default() -> Self {
        Self {
            clear_hold_down: Duration::from_secs(30),
            reopen_window: Duration::from_secs(600),
            flap_window: Duration::from_secs(600),
            flap_threshold: 6,
            flap_hold: Duration::from_secs(900),
            escalate_on_ack_overdue: false,
            event_clear_after: Duration::from_secs(900),
            retention: Duration::from_secs(90 * 86_400),
            max_notes_per_fault: 200,
            max_note_bytes: 16 * 1024,
        }
    }
}
