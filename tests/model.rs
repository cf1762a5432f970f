//! Domain types: TS 28.532 JSON names, RFC 3339 times, and round trips through JSON and the store
//! encoding.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test or bench reports

use noctua::model::*;
use noctua::store::{Tree, decode, encode};
use proptest::prelude::*;

fn alarm() -> Alarm {
    Alarm {
        alarm_id: AlarmId(42),
        object_instance: "ManagedElement=bh-r1,Object=ifIndex=7".into(),
        notification_id: 43,
        alarm_raised_time: Timestamp::parse_rfc3339("2026-11-29T19:48:43.250Z").unwrap(),
        alarm_changed_time: Some(Timestamp::parse_rfc3339("2026-11-29T19:50:00Z").unwrap()),
        alarm_cleared_time: None,
        alarm_type: AlarmType::QualityOfServiceAlarm,
        probable_cause: "thresholdCrossed".into(),
        specific_problem: "loss_pct_threshold".into(),
        perceived_severity: Severity::Major,
        trend_indication: Some(TrendIndication::MoreSevere),
        threshold_info: Some(ThresholdInfo {
            observed_measurement: "loss_pct".into(),
            observed_value: 6.5,
            threshold_level: ThresholdLevel::Up,
            threshold_value: 5.0,
            hysteresis: 0.5,
        }),
        root_cause_indicator: true,
        ack_state: AckState::Acknowledged,
        ack_user_id: Some("maria".into()),
        ack_time: Some(Timestamp::from_millis(1_795_000_000_000)),
        clear_user_id: None,
        additional_text: "loss_pct at 6.5 is above the major level 5".into(),
        device: "bh-r1".into(),
        object: "ifIndex=7".into(),
        condition: "loss_pct_threshold".into(),
        category: Category::Performance,
        count: 2,
        last_seen: Timestamp::from_millis(1_795_000_100_000),
        root_cause_alarm_id: None,
        suppressed_by: Some(Suppression::Maintenance),
        notified: true,
        impact: Impact {
            services: vec!["mobile-data-east".into()],
            customers: 1200,
            counted_in: None,
            notice: Some(Notice {
                kind: NoticeKind::Opened,
                fault: FaultId(42),
                customers: 1200,
                sites: vec!["east-1042".into()],
                services_down: vec![],
                since: Timestamp::from_millis(1_795_000_000_000),
                restore_by: None,
                maintenance: false,
            }),
        },
    }
}

#[test]
fn alarm_json_uses_ts_28_532_names_and_rfc3339_utc() {
    let json = serde_json::to_value(alarm()).unwrap();
    for key in [
        "alarmId",
        "objectInstance",
        "notificationId",
        "alarmRaisedTime",
        "alarmChangedTime",
        "alarmClearedTime",
        "alarmType",
        "probableCause",
        "specificProblem",
        "perceivedSeverity",
        "trendIndication",
        "thresholdInfo",
        "rootCauseIndicator",
        "ackState",
        "ackUserId",
        "ackTime",
        "clearUserId",
        "additionalText",
        "category",
        "count",
        "lastSeen",
    ] {
        assert!(json.get(key).is_some(), "missing {key} in {json}");
    }
    assert_eq!(json["alarmId"], "42");
    assert_eq!(json["alarmRaisedTime"], "2026-11-29T19:48:43.250Z");
    assert_eq!(json["alarmType"], "QUALITY_OF_SERVICE_ALARM");
    assert_eq!(json["perceivedSeverity"], "MAJOR");
    assert_eq!(json["trendIndication"], "MORE_SEVERE");
    assert_eq!(json["ackState"], "ACKNOWLEDGED");
    assert_eq!(json["category"], "performance");
    assert_eq!(json["thresholdInfo"]["thresholdLevel"], "UP");
    assert_eq!(json["thresholdInfo"]["observedMeasurement"], "loss_pct");
    assert!(json["alarmClearedTime"].is_null());
    assert_eq!(json["suppressedBy"], "maintenance");
}

#[test]
fn alarm_round_trips_through_json_and_store_encoding() {
    let a = alarm();
    let back: Alarm = serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
    assert_eq!(back, a);
    let stored = encode(Tree::ActiveAlarms, &a).unwrap();
    assert_eq!(decode::<Alarm>(Tree::ActiveAlarms, &stored).unwrap(), a);
    // The store form is compact: times and ids are integers, not strings.
    assert!(stored.len() < serde_json::to_vec(&a).unwrap().len() / 2);
}

#[test]
fn fault_record_round_trips_and_reports_mtta_mttr() {
    let f = FaultRecord {
        id: FaultId(42),
        alarm_id: AlarmId(42),
        device: "bh-r1".into(),
        object: "ifIndex=7".into(),
        condition: "loss_pct_threshold".into(),
        category: Category::Performance,
        peak_severity: Severity::Critical,
        raised_at: Timestamp::from_millis(1_000),
        acked_at: Some(Timestamp::from_millis(61_000)),
        acked_by: Some("maria".into()),
        cleared_at: Some(Timestamp::from_millis(3_601_000)),
        cleared_by: None,
        root_cause: None,
        notes: vec![Note {
            at: Timestamp::from_millis(2_000),
            by: "maria".into(),
            text: "fibre cut at km 12".into(),
        }],
        site: Some("region-east".into()),
        role: Some(Role::Router),
        reopened: 1,
        ack_breached: false,
        restore_breached: true,
        ack_maintenance_ms: 0,
        repair_maintenance_ms: 600_000,
        impact: FaultImpact {
            services: vec!["mobile-data-east".into()],
            customers: 1200,
            peak_customers: 1500,
            customer_seconds: 90_000,
            since: Timestamp::from_millis(3_601_000),
            noticed: Some((1200, vec![])),
        },
    };
    assert_eq!(f.mtta(), Some(std::time::Duration::from_secs(60)));
    // An hour open, ten minutes of it in maintenance.
    assert_eq!(f.mttr(), Some(std::time::Duration::from_secs(3000)));
    let json = serde_json::to_string(&f).unwrap();
    assert!(json.contains("\"peakSeverity\":\"CRITICAL\""), "{json}");
    assert_eq!(serde_json::from_str::<FaultRecord>(&json).unwrap(), f);
    let stored = encode(Tree::Faults, &f).unwrap();
    assert_eq!(decode::<FaultRecord>(Tree::Faults, &stored).unwrap(), f);
}

#[test]
fn severity_ranks_like_x733() {
    use Severity::*;
    let mut v = vec![Warning, Cleared, Critical, Minor, Indeterminate, Major];
    v.sort();
    assert_eq!(v, [Cleared, Indeterminate, Warning, Minor, Major, Critical]);
}

proptest! {
    #[test]
    fn timestamps_round_trip_through_rfc3339(ms in 0i64..253_402_300_799_000) {
        let t = Timestamp::from_millis(ms);
        let text = t.to_string();
        prop_assert!(text.ends_with('Z'));
        prop_assert_eq!(Timestamp::parse_rfc3339(&text).unwrap(), t);
    }

    #[test]
    fn alarm_ids_round_trip_as_json_strings(id in any::<u64>()) {
        let json = serde_json::to_string(&AlarmId(id)).unwrap();
        prop_assert_eq!(&json, &format!("\"{id}\""));
        prop_assert_eq!(serde_json::from_str::<AlarmId>(&json).unwrap(), AlarmId(id));
    }
}

#[test]
fn the_metric_table_is_consistent_and_names_parse_back() {
    for m in Metric::ALL {
        let info = m.info();
        let category = match info.kind {
            MetricKind::Latency | MetricKind::Loss | MetricKind::Utilisation => {
                Category::Performance
            }
            MetricKind::Traffic => Category::Service,
            MetricKind::State => Category::Equipment,
            MetricKind::Flood | MetricKind::Sources | MetricKind::Flows => Category::Security,
        };
        assert_eq!(info.category, category, "{m:?}");
        assert!(info.ceiling > 0.0, "{m:?}");
        assert_eq!(m.name().parse::<Metric>(), Ok(m));
        assert_eq!(Metric::from_name(&m.to_string()), Some(m));
    }
    // Percentages are bounded by what a percentage can be (utilisation with counter slack).
    assert_eq!(Metric::LossPct.info().ceiling, 100.0);
    assert_eq!(Metric::UtilisationInPct.info().unit, "%");
}

#[test]
fn enum_names_parse_case_insensitively_and_say_what_would_do() {
    assert_eq!("MAJOR".parse::<Severity>(), Ok(Severity::Major));
    assert_eq!("equipment".parse::<Category>(), Ok(Category::Equipment));
    assert_eq!("base-station".parse::<Role>(), Ok(Role::BaseStation));
    let err = "urgent".parse::<Severity>().unwrap_err().to_string();
    assert_eq!(
        err,
        "unknown severity `urgent`: expected cleared, indeterminate, warning, minor, major, critical"
    );
    assert_eq!(Severity::Critical.to_string(), "critical");
}

#[test]
fn device_text_is_made_printable_for_terminals_and_logs() {
    let hostile = "up\u{1b}]0;owned\u{7}\u{1b}[2J\r\nFAKE log line\tend\u{9b}";
    let safe = printable(hostile);
    assert_eq!(
        safe,
        "up\\x1b]0;owned\\x07\\x1b[2J\\r\\nFAKE log line\\tend\\x9b"
    );
    assert!(!safe.chars().any(char::is_control));
    // Ordinary text, accents included, is left alone and not copied.
    assert!(matches!(
        printable("Köln ge-0/0/1 ✓"),
        std::borrow::Cow::Borrowed(_)
    ));
}

#[test]
fn values_are_shown_rounded_with_their_unit() {
    use noctua::model::Metric;
    for (metric, value, shown) in [
        (Metric::UtilisationInPct, 73.96725333333333, "74.0 %"),
        (Metric::LossPct, 0.15384615, "0.15 %"),
        (Metric::LatencyMs, 12.5432, "12.5 ms"),
        (Metric::LatencyMs, 1234.6, "1235 ms"),
        (Metric::BitsInPerSec, 3_412_345.0, "3.41 Mbit/s"),
        (Metric::BitsInPerSec, 950.0, "950 bit/s"),
        (Metric::PacketsPerSec, 12_345.0, "12.3 kpacket/s"),
        (Metric::DistinctSources, 5021.0, "5021"),
        (Metric::Kpi, 0.333333, "0.333"),
    ] {
        assert_eq!(metric.show(value), shown, "{metric:?} {value}");
    }
}
