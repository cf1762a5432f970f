//! The action planner against the real alarm manager: triggers, limits, approvals, pauses,
//! breakers and restarts, on the data clock.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test or bench reports

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use noctua::action::{Changes, Order, Planner};
use noctua::alarm::AlarmManager;
use noctua::config::Config;
use noctua::model::{
    ActionError, ActionId, ActionRecord, ActionState, AlarmId, DeviceEvent, EventKind, Mode,
    StepOutcome, StepPlan, StepResult, Timestamp, Transition,
};
use proptest::prelude::*;

const MIN: i64 = 60_000;
/// 2026-12-01T00:00:00Z: the maintenance window below starts an hour later.
const T0: i64 = 1_796_083_200_000;

fn at(minutes: i64) -> Timestamp {
    Timestamp::from_millis(T0 + minutes * MIN)
}

const DEVICES: &str = r#"
[alarms]
clear-hold-down = "0s"

[[device]]
name = "r1"
address = "192.0.2.1"
role = "router"
site = "east"

[[device]]
name = "r2"
address = "192.0.2.2"
role = "router"
site = "west"

[[maintenance]]
name = "r2 swap"
device = "r2"
start = "2026-12-01T01:00:00Z"
end = "2026-12-01T02:00:00Z"
"#;

fn config(actions: &str) -> Config {
    let text =
        format!("{DEVICES}\n[actions]\nenabled = true\nallow-exec = [\"/bin/true\"]\n{actions}");
    noctua::config::parse("test", &text, Path::new(".")).unwrap()
}

const BOUNCE: &str = r#"
[[action]]
name = "bounce"
on = ["raised"]
object = "ifIndex=*"
mode = "live"

[[action.step]]
exec = ["/bin/true", "{device}", "{ifindex}"]

[[action.step]]
wait-clear = "10m"
"#;

/// The alarm manager and the planner side by side, as the alarm stage runs them.
struct Rig {
    config: Config,
    manager: AlarmManager,
    planner: Planner,
    /// Every record version the planner handed over to commit, in order.
    committed: Vec<ActionRecord>,
    orders: Vec<Order>,
    events: Vec<DeviceEvent>,
    escalated: Vec<AlarmId>,
}

impl Rig {
    fn new(config: Config, live: bool) -> Self {
        let manager = AlarmManager::new(&config);
        let (planner, changes) = Planner::restore(
            &config,
            live,
            Vec::new(),
            Vec::new(),
            &HashSet::new(),
            &HashSet::new(),
            at(0),
        );
        let mut rig = Self {
            config,
            manager,
            planner,
            committed: Vec::new(),
            orders: Vec::new(),
            events: Vec::new(),
            escalated: Vec::new(),
        };
        rig.take(changes);
        rig
    }

    fn take(&mut self, c: Changes) {
        // Every order's step is in a record of the same batch, started and not ended: what the
        // runner is told to do is durable first.
        for o in &c.orders {
            let r = c.records.iter().find(|r| r.id == o.action).unwrap();
            assert!(r.steps[o.step].started_at.is_some() && r.steps[o.step].outcome.is_none());
        }
        self.committed.extend(c.records);
        self.orders.extend(c.orders);
        self.events.extend(c.events);
        self.escalated.extend(c.escalate);
    }

    fn transitions(&mut self, ts: Vec<Transition>, now: Timestamp) {
        for t in ts {
            let c = self.planner.on_transition(&t, now);
            self.take(c);
        }
    }

    fn link(&mut self, device: &str, index: u32, down: bool, now: Timestamp) {
        let kind = if down {
            EventKind::LinkDown
        } else {
            EventKind::LinkUp
        };
        let ts = self.manager.on_event(DeviceEvent {
            device: device.into(),
            object: format!("ifIndex={index}"),
            kind,
            at: now,
            text: "link".into(),
            severity: None,
        });
        self.transitions(ts, now);
        let ts = self.manager.on_tick(now);
        self.transitions(ts, now);
    }

    fn tick(&mut self, now: Timestamp) {
        let ts = self.manager.on_tick(now);
        self.transitions(ts, now);
        let c = self.planner.on_tick(now);
        self.take(c);
    }

    fn result(&mut self, order: usize, outcome: StepOutcome, now: Timestamp) {
        let o = self.orders[order].clone();
        let c = self.planner.on_result(
            o.action,
            o.step,
            StepResult {
                outcome,
                exit_code: Some(if outcome == StepOutcome::Ok { 0 } else { 1 }),
                http_status: None,
                output: String::new(),
                detail: String::new(),
            },
            now,
        );
        self.take(c);
    }

    /// The newest version of each record.
    fn latest(&self) -> Vec<ActionRecord> {
        let mut out: BTreeMap<ActionId, ActionRecord> = BTreeMap::new();
        for r in &self.committed {
            out.insert(r.id, r.clone());
        }
        out.into_values().collect()
    }

    fn states(&self) -> Vec<ActionState> {
        self.latest().iter().map(|r| r.state).collect()
    }

    /// A restart: the planner rebuilt from what was committed.
    fn restart(&mut self, now: Timestamp) {
        let active: HashSet<AlarmId> = self.manager.alarms().map(|a| a.alarm_id).collect();
        let states = self
            .planner
            .rule_states()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let (planner, changes) = Planner::restore(
            &self.config,
            true,
            self.latest(),
            states,
            &active,
            &HashSet::new(),
            now,
        );
        self.planner = planner;
        self.take(changes);
    }
}

#[test]
fn nothing_happens_unless_actions_are_enabled() {
    let mut c = config(BOUNCE);
    c.actions.enabled = false;
    let mut rig = Rig::new(c, true);
    rig.link("r1", 3, true, at(0));
    assert!(rig.committed.is_empty() && rig.orders.is_empty());
}

#[test]
fn a_live_step_is_ordered_once_its_start_is_recorded_and_the_wait_ends_with_the_clear() {
    let mut rig = Rig::new(config(BOUNCE), true);
    rig.link("r1", 3, true, at(0));
    assert_eq!(rig.orders.len(), 1);
    match &rig.orders[0].plan {
        StepPlan::Exec { argv, .. } => assert_eq!(argv, &["/bin/true", "r1", "3"]),
        other => panic!("{other:?}"),
    }
    assert_eq!(rig.states(), [ActionState::Running]);
    rig.result(0, StepOutcome::Ok, at(1));
    // The wait is the planner's own: no order for it.
    assert_eq!(rig.orders.len(), 1);
    rig.link("r1", 3, false, at(5));
    let r = &rig.latest()[0];
    assert_eq!(r.state, ActionState::Succeeded, "{r:?}");
    assert_eq!(r.steps[1].outcome, Some(StepOutcome::Ok));
}

#[test]
fn a_dry_run_records_what_it_would_run_and_still_judges_the_wait() {
    let mut rig = Rig::new(config(&BOUNCE.replace("mode = \"live\"", "")), true);
    rig.link("r1", 3, true, at(0));
    assert!(rig.orders.is_empty());
    let r = &rig.latest()[0];
    assert_eq!(r.mode, Mode::DryRun);
    assert_eq!(r.steps[0].outcome, Some(StepOutcome::DryRun));
    assert_eq!(r.steps[0].detail, "dry run: would exec /bin/true r1 3");
    rig.tick(at(11));
    let r = &rig.latest()[0];
    assert_eq!(r.state, ActionState::Failed);
    assert_eq!(r.steps[1].outcome, Some(StepOutcome::TimedOut));
}

#[test]
fn a_replay_runs_live_rules_as_dry_runs() {
    let mut rig = Rig::new(config(BOUNCE), false);
    rig.link("r1", 3, true, at(0));
    assert!(rig.orders.is_empty());
    assert_eq!(rig.latest()[0].mode, Mode::DryRun);
}

#[test]
fn a_step_started_before_a_restart_is_unknown_and_never_ordered_again() {
    let mut rig = Rig::new(config(BOUNCE), true);
    rig.link("r1", 3, true, at(0));
    assert_eq!(rig.orders.len(), 1);
    rig.restart(at(1));
    let r = &rig.latest()[0];
    assert_eq!(r.state, ActionState::Unknown);
    assert_eq!(r.steps[0].outcome, Some(StepOutcome::Unknown));
    // The runner's late report changes nothing, and nothing is ordered again.
    rig.result(0, StepOutcome::Ok, at(2));
    rig.tick(at(20));
    assert_eq!(rig.orders.len(), 1);
    assert_eq!(rig.latest()[0].state, ActionState::Unknown);
}

#[test]
fn a_wait_in_progress_survives_a_restart_and_ends_with_a_clear_it_missed() {
    let mut rig = Rig::new(config(BOUNCE), true);
    rig.link("r1", 3, true, at(0));
    rig.result(0, StepOutcome::Ok, at(1));
    // The link comes back while the daemon is down: the restored wait sees the alarm gone.
    let ts = rig.manager.on_event(DeviceEvent {
        device: "r1".into(),
        object: "ifIndex=3".into(),
        kind: EventKind::LinkUp,
        at: at(2),
        text: String::new(),
        severity: None,
    });
    assert!(!ts.is_empty());
    let _ = rig.manager.on_tick(at(2));
    rig.restart(at(3));
    assert_eq!(rig.latest()[0].state, ActionState::Succeeded);
}

const FAILING: &str = r#"
[[action]]
name = "retry"
on = ["raised"]
once-per-fault = false
breaker-failures = 2
on-failure = "escalate"

[[action.step]]
wait-clear = "5m"
"#;

#[test]
fn failures_in_a_row_open_the_breaker_raise_its_alarm_and_a_reset_closes_it() {
    let mut rig = Rig::new(config(FAILING), true);
    for (k, start) in [0, 10].into_iter().enumerate() {
        rig.link("r1", 3 + k as u32, true, at(start));
        rig.tick(at(start + 6));
    }
    assert_eq!(rig.states(), [ActionState::Failed, ActionState::Failed]);
    assert_eq!(rig.escalated.len(), 2, "on-failure = escalate");
    assert_eq!(rig.events.len(), 1);
    assert_eq!(rig.events[0].kind, EventKind::ActionsFailing);
    assert_eq!(rig.events[0].object, "rule=retry");
    rig.link("r1", 9, true, at(30));
    let skipped = rig.latest().pop().unwrap();
    assert_eq!(skipped.state, ActionState::Skipped);
    assert!(
        skipped.reason.contains("breaker is open"),
        "{}",
        skipped.reason
    );
    // The breaker is kept across a restart.
    rig.restart(at(31));
    rig.link("r1", 10, true, at(32));
    assert_eq!(rig.latest().pop().unwrap().state, ActionState::Skipped);
    let c = rig.planner.reset("retry", "ana", at(33)).unwrap();
    assert_eq!(c.events[0].kind, EventKind::ActionsResumed);
    assert_eq!(
        rig.planner.reset("retry", "ana", at(33)),
        Err(ActionError::BreakerClosed("retry".into()))
    );
    rig.link("r1", 11, true, at(34));
    assert_eq!(rig.latest().pop().unwrap().state, ActionState::Running);
}

#[test]
fn a_success_resets_the_count_of_failures() {
    let mut rig = Rig::new(config(FAILING), true);
    rig.link("r1", 3, true, at(0));
    rig.tick(at(6));
    rig.link("r1", 4, true, at(10));
    rig.link("r1", 4, false, at(11));
    rig.link("r1", 5, true, at(20));
    rig.tick(at(26));
    assert!(rig.events.is_empty(), "{:?}", rig.events);
}

#[test]
fn approvals_start_reject_or_expire_an_action() {
    let rules = BOUNCE.replace("mode = \"live\"", "mode = \"live\"\nrequire-approval = true\nonce-per-fault = false\napproval-timeout = \"15m\"");
    let mut rig = Rig::new(config(&rules), true);
    for i in 1..=3 {
        rig.link("r1", i, true, at(0));
    }
    assert_eq!(rig.states(), [ActionState::AwaitingApproval; 3]);
    assert!(rig.orders.is_empty());
    let ids: Vec<ActionId> = rig.latest().iter().map(|r| r.id).collect();
    let c = rig.planner.decide(ids[0], "ana", true, at(1)).unwrap();
    rig.take(c);
    assert_eq!(rig.orders.len(), 1);
    let c = rig.planner.decide(ids[1], "ben", false, at(1)).unwrap();
    rig.take(c);
    assert!(matches!(
        rig.planner.decide(ids[1], "ben", true, at(2)),
        Err(ActionError::Unknown(_))
    ));
    rig.tick(at(16));
    let latest = rig.latest();
    assert_eq!(latest[0].decision.as_ref().unwrap().by, "ana");
    assert_eq!(latest[1].state, ActionState::Rejected);
    assert_eq!(latest[2].state, ActionState::Expired);
}

#[test]
fn rate_limits_skip_runs_beyond_them_until_the_window_passes() {
    let rules = BOUNCE.replace(
        "mode = \"live\"",
        "max-runs = 2\nmax-runs-per-device = 1\nper = \"1h\"",
    );
    let mut rig = Rig::new(config(&rules), true);
    rig.link("r1", 1, true, at(0));
    rig.link("r1", 2, true, at(1)); // second on r1: per-device limit
    rig.link("r2", 1, true, at(2));
    rig.link("r2", 2, true, at(3)); // third of the rule (and second on r2)
    rig.link("r1", 5, true, at(61)); // the first run left the window
    let states = rig.states();
    assert_eq!(
        states,
        [
            ActionState::Running,
            ActionState::Skipped,
            ActionState::Running,
            ActionState::Skipped,
            ActionState::Running
        ]
    );
    let latest = rig.latest();
    assert!(latest[1].reason.contains("on r1"), "{}", latest[1].reason);
    assert!(
        latest[3].reason.contains("2 runs per 1h"),
        "{}",
        latest[3].reason
    );
}

#[test]
fn once_per_fault_plans_one_action_per_fault_record() {
    let rules = BOUNCE
        .replace("on = [\"raised\"]", "on = [\"raised\", \"cleared\"]")
        .replace("[[action.step]]\nwait-clear = \"10m\"\n", "");
    let mut rig = Rig::new(config(&rules), true);
    rig.link("r1", 3, true, at(0));
    rig.link("r1", 3, false, at(1));
    assert_eq!(rig.latest().len(), 1);
}

#[test]
fn a_device_in_maintenance_pauses_its_actions_until_the_window_ends() {
    let mut rig = Rig::new(config(BOUNCE), true);
    rig.tick(at(61)); // r2's window opens at 01:00
    rig.link("r2", 3, true, at(62));
    assert_eq!(rig.states(), [ActionState::Paused]);
    assert!(rig.orders.is_empty());
    rig.tick(at(121)); // and closes at 02:00
    assert_eq!(rig.states(), [ActionState::Running]);
    assert_eq!(rig.orders.len(), 1);
}

#[test]
fn an_alarm_that_clears_first_cancels_what_has_not_started() {
    let mut rig = Rig::new(config(BOUNCE), true);
    rig.tick(at(61));
    rig.link("r2", 3, true, at(62));
    rig.link("r2", 3, false, at(63));
    let r = &rig.latest()[0];
    assert_eq!(r.state, ActionState::Cancelled, "{r:?}");
}

#[test]
fn live_actions_beyond_the_bound_queue_for_a_slot() {
    let mut c = config(&BOUNCE.replace(
        "object = \"ifIndex=*\"",
        "object = \"ifIndex=*\"\nonce-per-fault = false",
    ));
    c.actions.max_concurrent = 1;
    let mut rig = Rig::new(c, true);
    rig.link("r1", 1, true, at(0));
    rig.link("r1", 2, true, at(0));
    assert_eq!(rig.states(), [ActionState::Running, ActionState::Queued]);
    rig.result(0, StepOutcome::Failed, at(1));
    assert_eq!(rig.states(), [ActionState::Failed, ActionState::Running]);
    assert_eq!(rig.orders.len(), 2);
}

#[test]
fn a_template_the_alarm_cannot_fill_fails_the_action_without_running_it() {
    let rules = BOUNCE.replace("object = \"ifIndex=*\"\n", "");
    let mut rig = Rig::new(config(&rules), true);
    let ts = rig.manager.on_event(DeviceEvent {
        device: "r1".into(),
        object: "device".into(),
        kind: EventKind::Reboot,
        at: at(0),
        text: String::new(),
        severity: None,
    });
    rig.transitions(ts, at(0));
    let r = &rig.latest()[0];
    assert_eq!(r.state, ActionState::Failed);
    assert!(r.reason.contains("not an interface"), "{}", r.reason);
    assert!(rig.orders.is_empty());
}

#[test]
fn a_rule_on_a_service_acts_only_on_alarms_whose_impact_names_it() {
    let rules = BOUNCE.replace(
        "object = \"ifIndex=*\"",
        "object = \"ifIndex=*\"\nservice = \"internet\"",
    );
    let text = format!(
        "{DEVICES}\n[[service]]\nname = \"internet\"\n[[service.member]]\ndevice = \"r1\"\n\
         [actions]\nenabled = true\nallow-exec = [\"/bin/true\"]\n{rules}"
    );
    let c = noctua::config::parse("test", &text, Path::new(".")).unwrap();
    let mut rig = Rig::new(c, true);
    // As the alarm stage hands them over: annotated with the services the alarm touches.
    for (index, services) in [(1, vec!["internet".to_owned()]), (2, vec![])] {
        let mut ts = rig.manager.on_event(DeviceEvent {
            device: "r1".into(),
            object: format!("ifIndex={index}"),
            kind: EventKind::LinkDown,
            at: at(0),
            text: String::new(),
            severity: None,
        });
        for t in &mut ts {
            t.event.alarm.impact.services.clone_from(&services);
        }
        rig.transitions(ts, at(0));
    }
    let planned: Vec<String> = rig.latest().iter().map(|r| r.object.clone()).collect();
    assert_eq!(planned, ["ifIndex=1"]);
}

/// One input to the rig in the property test.
#[derive(Debug, Clone)]
enum Input {
    Link(u32, bool),
    Tick,
    Finish(bool),
    Restart,
}

fn input() -> impl Strategy<Value = Input> {
    prop_oneof![
        (0u32..4, any::<bool>()).prop_map(|(i, d)| Input::Link(i, d)),
        Just(Input::Tick),
        any::<bool>().prop_map(Input::Finish),
        Just(Input::Restart),
    ]
}

proptest! {
    /// Whatever the order of alarms, results, time and restarts: no step is ever ordered twice,
    /// an action never holds two steps under way, the bound on live actions holds, and a
    /// final action never changes again.
    #[test]
    fn no_step_runs_twice_and_final_is_final(inputs in prop::collection::vec(input(), 1..60)) {
        let rules = BOUNCE.replace("object = \"ifIndex=*\"", "object = \"ifIndex=*\"\nonce-per-fault = false");
        let mut c = config(&rules);
        c.actions.max_concurrent = 2;
        let mut rig = Rig::new(c, true);
        let mut now = 0;
        let mut answered = 0;
        for i in inputs {
            now += 1;
            match i {
                Input::Link(k, down) => rig.link("r1", k, down, at(now)),
                Input::Tick => rig.tick(at(now)),
                Input::Finish(ok) => {
                    if answered < rig.orders.len() {
                        let outcome = if ok { StepOutcome::Ok } else { StepOutcome::Failed };
                        rig.result(answered, outcome, at(now));
                        answered += 1;
                    }
                }
                Input::Restart => {
                    rig.restart(at(now));
                    answered = rig.orders.len();
                }
            }
            let running = rig.latest().iter().filter(|r| r.state == ActionState::Running && r.running_step().is_some_and(|s| !matches!(r.steps[s].plan, StepPlan::WaitClear { .. }))).count();
            prop_assert!(running <= 2);
        }
        let mut seen = HashSet::new();
        for o in &rig.orders {
            prop_assert!(seen.insert((o.action, o.step)), "ordered twice: {o:?}");
        }
        let mut ended: HashMap<ActionId, ActionRecord> = HashMap::new();
        for r in &rig.committed {
            if let Some(done) = ended.get(&r.id) {
                prop_assert_eq!(done, r, "a final action changed");
            }
            prop_assert!(r.steps.iter().filter(|s| s.started_at.is_some() && s.outcome.is_none()).count() <= 1);
            if r.state.is_final() {
                ended.insert(r.id, r.clone());
            }
        }
    }
}
