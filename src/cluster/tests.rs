use std::collections::HashMap;

use proptest::prelude::*;

use super::*;

fn member(name: &str, site: Option<&str>) -> Member {
    Member {
        name: name.to_owned(),
        site: site.map(str::to_owned),
    }
}

const SITES: [Option<&str>; 3] = [None, Some("north"), Some("south")];

/// Up to six members with distinct names, each in one of [`SITES`].
fn members() -> impl Strategy<Value = Vec<Member>> {
    prop::collection::btree_map(0u8..12, 0usize..3, 1..6).prop_map(|m| {
        m.into_iter()
            .map(|(n, s)| member(&format!("noc-{n}"), SITES[s]))
            .collect()
    })
}

fn devices() -> Vec<(String, Option<&'static str>)> {
    (0..300)
        .map(|i| (format!("gnb-{i:04}"), SITES[i % 3]))
        .collect()
}

proptest! {
    /// Every member computes the same owner whatever order it learned the members in.
    #[test]
    fn the_owner_does_not_depend_on_the_order_members_are_listed(live in members()) {
        let mut reversed = live.clone();
        reversed.reverse();
        for (d, site) in devices() {
            let a = owner_of(&d, site, &live).map(|m| &m.name);
            let b = owner_of(&d, site, &reversed).map(|m| &m.name);
            prop_assert!(a.is_some());
            prop_assert_eq!(a, b);
        }
    }

    /// A member's death moves its devices and no others.
    #[test]
    fn a_member_leaving_moves_only_its_own_devices(live in members(), gone in 0usize..6) {
        prop_assume!(live.len() > 1);
        let gone = &live[gone % live.len()];
        let rest: Vec<Member> = live.iter().filter(|m| *m != gone).cloned().collect();
        for (d, site) in devices() {
            let before = owner_of(&d, site, &live).unwrap();
            let after = owner_of(&d, site, &rest).unwrap();
            if before != gone {
                prop_assert_eq!(before, after, "{} moved though its owner stayed", d);
            }
        }
    }

    /// A regional instance owns its region while one of the region's members lives.
    #[test]
    fn a_device_goes_to_a_member_of_its_site_when_one_is_live(live in members()) {
        for (d, site) in devices() {
            let owner = owner_of(&d, site, &live).unwrap();
            let local = live.iter().any(|m| site.is_some() && m.site.as_deref() == site);
            prop_assert_eq!(local, site.is_some() && owner.site.as_deref() == site);
        }
    }

    /// Members stepping in any order, over claims that change only by compare-and-set, end
    /// with every device claimed by its rendezvous owner; the epoch grows by one per change of
    /// owner and never goes back; no device is ever claimed by two members.
    #[test]
    fn claims_converge_on_the_rendezvous_owner_with_rising_epochs(
        first in members(),
        second in members(),
        order in prop::collection::vec(0usize..6, 40),
    ) {
        let mut claims: HashMap<String, Claim> = HashMap::new();
        let mut changes: HashMap<String, u64> = HashMap::new();
        for live in [&first, &second] {
            // Stepping in the given order, then round-robin until nothing changes.
            let turns = order.iter().copied().chain((0..live.len()).cycle().take(live.len() * 4));
            for t in turns {
                let me = &live[t % live.len()].name;
                for (d, site) in devices() {
                    let desired = owner_of(&d, site, live);
                    let before = claims.get(&d).cloned();
                    let working = before.as_ref().is_some_and(|b| b.owner == *me && !b.released);
                    match step(me, desired, before.as_ref(), working, live) {
                        Step::Stay => {}
                        Step::Claim(c) | Step::Release(c) => {
                            if let Some(b) = &before {
                                prop_assert!(c.epoch >= b.epoch);
                                if c.owner != b.owner || (b.released && !c.released) {
                                    prop_assert_eq!(c.epoch, b.epoch + 1);
                                }
                            }
                            if !c.released && before.as_ref().is_none_or(|b| b.owner != c.owner || b.released) {
                                *changes.entry(d.clone()).or_default() += 1;
                            }
                            claims.insert(d, c);
                        }
                    }
                }
            }
            for (d, site) in devices() {
                let c = &claims[&d];
                prop_assert_eq!(&c.owner, &owner_of(&d, site, live).unwrap().name);
                prop_assert!(!c.released);
                prop_assert_eq!(c.epoch, changes[&d]);
            }
        }
    }
}

#[test]
fn a_dead_owners_device_is_taken_at_once_and_a_live_one_is_waited_for() {
    let (a, b) = (member("noc-a", None), member("noc-b", None));
    let held = Claim {
        owner: "noc-a".into(),
        epoch: 4,
        released: false,
    };
    let both = [a.clone(), b.clone()];
    assert_eq!(
        step("noc-b", Some(&b), Some(&held), false, &both),
        Step::Stay
    );
    assert_eq!(
        step("noc-a", Some(&b), Some(&held), true, &both),
        Step::Release(Claim {
            released: true,
            ..held.clone()
        })
    );
    let only_b = [b.clone()];
    assert_eq!(
        step("noc-b", Some(&b), Some(&held), false, &only_b),
        Step::Claim(Claim {
            owner: "noc-b".into(),
            epoch: 5,
            released: false
        })
    );
}

mod device_alarms {
    use proptest::prelude::*;

    use crate::cluster::DeviceAlarms;
    use crate::model::*;

    fn alarm(id: u64, cleared: bool) -> Alarm {
        Alarm {
            alarm_id: AlarmId(id),
            object_instance: format!("ManagedElement=gnb-1,Object=ifIndex={id}"),
            notification_id: id,
            alarm_raised_time: Timestamp::from_millis(1_000),
            alarm_changed_time: None,
            alarm_cleared_time: cleared.then(|| Timestamp::from_millis(2_000)),
            alarm_type: AlarmType::CommunicationsAlarm,
            probable_cause: "linkDown".into(),
            specific_problem: "link_down".into(),
            perceived_severity: Severity::Major,
            trend_indication: None,
            threshold_info: None,
            root_cause_indicator: true,
            ack_state: AckState::Unacknowledged,
            ack_user_id: None,
            ack_time: None,
            clear_user_id: None,
            additional_text: String::new(),
            device: "gnb-1".into(),
            object: format!("ifIndex={id}"),
            condition: "link_down".into(),
            category: Category::Equipment,
            count: 1,
            last_seen: Timestamp::from_millis(1_000),
            root_cause_alarm_id: None,
            suppressed_by: None,
            notified: true,
            impact: Impact::default(),
        }
    }

    /// The open fault of alarm `id`, raised a while before it (a reopened fault).
    fn fault(id: u64) -> FaultRecord {
        let a = alarm(id, false);
        FaultRecord {
            id: FaultId(id),
            alarm_id: a.alarm_id,
            device: a.device,
            object: a.object,
            condition: a.condition,
            category: a.category,
            peak_severity: Severity::Critical,
            raised_at: Timestamp::from_millis(500),
            acked_at: None,
            acked_by: None,
            cleared_at: None,
            cleared_by: None,
            root_cause: None,
            notes: Vec::new(),
            site: None,
            role: None,
            reopened: 1,
            ack_breached: false,
            restore_breached: false,
            ack_maintenance_ms: 0,
            repair_maintenance_ms: 0,
            impact: FaultImpact::default(),
        }
    }

    fn event(seq: u64, id: u64, cleared: bool) -> AlarmEvent {
        AlarmEvent {
            seq,
            at: Timestamp::from_millis(seq as i64),
            kind: if cleared {
                TransitionKind::Cleared
            } else {
                TransitionKind::Raised
            },
            alarm: alarm(id, cleared),
            notified: true,
        }
    }

    proptest! {
        /// The record holds exactly the alarms whose latest transition is not a clear, and
        /// replaying any prefix again (a crash before the cursor moved) changes nothing.
        #[test]
        fn the_record_is_the_active_alarms_and_a_replay_changes_nothing(
            steps in prop::collection::vec((0u64..6, any::<bool>()), 1..40),
            replay in 0usize..40,
        ) {
            let events: Vec<AlarmEvent> = steps
                .iter()
                .enumerate()
                .map(|(i, (id, cleared))| event(i as u64 + 1, *id, *cleared))
                .collect();
            let mut r = DeviceAlarms::default();
            for e in &events {
                prop_assert!(r.apply("noc-a", 3, e, Some(&fault(e.alarm.alarm_id.0))));
            }
            let once = r.clone();
            for e in &events[..replay.min(events.len())] {
                prop_assert!(!r.apply("noc-a", 3, e, Some(&fault(e.alarm.alarm_id.0))));
            }
            prop_assert_eq!(&r, &once);
            let mut want: Vec<u64> = (0..6)
                .filter(|id| steps.iter().rev().find(|(i, _)| i == id).is_some_and(|(_, c)| !c))
                .collect();
            let mut got: Vec<u64> = r.alarms.iter().map(|a| a.alarm_id.0).collect();
            want.sort();
            got.sort();
            prop_assert_eq!(&got, &want);
            // A new owner adopts each active alarm with its own open fault, and nothing else.
            let mut held: Vec<(u64, u64)> =
                r.held().iter().map(|(a, f)| (a.alarm_id.0, f.alarm_id.0)).collect();
            held.sort();
            prop_assert_eq!(held, want.iter().map(|id| (*id, *id)).collect::<Vec<_>>());
        }
    }

    #[test]
    fn a_newer_owner_fences_the_old_one_out() {
        let mut r = DeviceAlarms::default();
        assert!(r.may_write("noc-a", 1));
        r.apply("noc-a", 1, &event(7, 1, false), Some(&fault(1)));
        assert!(r.may_write("noc-a", 1));
        assert!(!r.may_write("noc-b", 1), "another member at the same epoch");
        // noc-b takes over at epoch 2 and carries the alarm on.
        assert!(r.may_write("noc-b", 2));
        assert!(
            r.apply("noc-b", 2, &event(3, 1, true), None),
            "a new owner's own sequence"
        );
        assert!(r.alarms.is_empty());
        assert!(!r.may_write("noc-a", 1), "the stale owner");
    }
}

#[test]
fn a_restarted_member_claims_its_own_devices_anew_and_lets_go_of_the_others() {
    let (a, b) = (member("noc-a", None), member("noc-a-peer", None));
    let both = [a.clone(), b.clone()];
    let left = Claim {
        owner: "noc-a".into(),
        epoch: 4,
        released: false,
    };
    assert_eq!(
        step("noc-a", Some(&a), Some(&left), true, &both),
        Step::Stay
    );
    assert_eq!(
        step("noc-a", Some(&a), Some(&left), false, &both),
        Step::Claim(Claim {
            epoch: 5,
            ..left.clone()
        }),
        "its own device, from before the restart"
    );
    assert_eq!(
        step("noc-a", Some(&b), Some(&left), false, &both),
        Step::Release(Claim {
            released: true,
            ..left.clone()
        }),
        "a device that is another's now"
    );
}
