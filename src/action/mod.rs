//! Automated handling, planned: which rules act on an alarm's transition, under which limits,
//! and what each action does next. Pure, with time passed in; the alarm stage owns it and
//! commits what it decides in the batch of the transition that caused it, and the action
//! runner (a pipeline stage) carries out the steps it orders, only once their start is durable.
//!
//! Safety, in the order it is applied to a new action:
//! - nothing unless `[actions] enabled`; a rule is `dry-run` unless it says `live`, and a
//!   replay runs every rule as a dry run;
//! - an open breaker (`breaker-failures` failed actions in a row) plans nothing, recorded as
//!   `skipped`, until an engineer resets it;
//! - `once-per-fault` (the default): one action per rule and fault record;
//! - `max-runs` / `max-runs-per-device` per `per`: beyond them, `skipped`;
//! - a device in maintenance: `paused` until the window ends (then it goes on, if the alarm is
//!   still up), checked again before every step;
//! - `require-approval`: `awaiting-approval` until approved, rejected or expired;
//! - `[actions] max-concurrent` live actions at once; the rest `queued`.
//!
//! A step's start is recorded before it runs and its end after: a restart finds a live step
//! started and not ended, marks it `unknown` and never runs it again.

pub mod rules;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use crate::config::{ActionRule, Config, OnFailure, Topology};
use crate::model::{
    ActionError, ActionId, ActionRecord, ActionState, AlarmId, Decision, DeviceEvent, EventKind,
    FaultId, RuleState, StepOutcome, StepPlan, StepRecord, StepResult, Suppression, Timestamp,
    Transition, TransitionKind, Trigger,
};

/// A step for the runner: run it, then report its [`StepResult`].
#[derive(Debug, Clone, PartialEq)]
pub struct Order {
    /// The action.
    pub action: ActionId,
    /// Which step.
    pub step: usize,
    /// The rule (whose config holds the step's secrets).
    pub rule: String,
    /// The alarm's device (an `snmp-set` writes to it).
    pub device: String,
    /// What to do.
    pub plan: StepPlan,
}

/// What the planner decided: records and rule states to commit, then (once durable) orders to
/// hand the runner, events for the alarm manager and alarms to escalate.
#[derive(Debug, Default, PartialEq)]
pub struct Changes {
    /// Records that changed.
    pub records: Vec<ActionRecord>,
    /// Rule states that changed.
    pub rules: Vec<(String, RuleState)>,
    /// Steps to run.
    pub orders: Vec<Order>,
    /// The breaker's alarm raised or cleared.
    pub events: Vec<DeviceEvent>,
    /// Alarms whose rule failed with `on-failure = "escalate"`.
    pub escalate: Vec<AlarmId>,
}

impl Changes {
    /// Nothing to commit.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty() && self.rules.is_empty()
    }

    /// Adds `other`, keeping only the newest version of each record.
    pub fn merge(&mut self, other: Changes) {
        for r in other.records {
            self.keep(r);
        }
        for (name, state) in other.rules {
            self.rules.retain(|(n, _)| *n != name);
            self.rules.push((name, state));
        }
        self.orders.extend(other.orders);
        self.events.extend(other.events);
        self.escalate.extend(other.escalate);
    }

    fn keep(&mut self, record: ActionRecord) {
        match self.records.iter_mut().find(|r| r.id == record.id) {
            Some(r) => *r = record,
            None => self.records.push(record),
        }
    }
}

/// The planner's state: the open actions, the limits' memory, the breakers.
pub struct Planner {
    enabled: bool,
    live: bool,
    rules: Vec<ActionRule>,
    topology: Topology,
    max_concurrent: usize,
    approval_timeout: std::time::Duration,
    breaker_failures: u32,
    open: BTreeMap<ActionId, ActionRecord>,
    /// Starts of each rule's runs within its window, with the device.
    runs: HashMap<String, VecDeque<(Timestamp, String)>>,
    once: HashSet<(String, FaultId)>,
    states: HashMap<String, RuleState>,
    /// Alarms last seen in maintenance.
    in_maintenance: HashSet<AlarmId>,
    /// Alarms seen cleared (a wait-clear after them succeeds at once).
    cleared: HashSet<AlarmId>,
    next_id: u64,
}

impl Planner {
    /// A planner for `config`, `live` unless replaying; `records` and `states` are what the
    /// store holds, `active` the alarms still active, `in_flight` the steps a runner still
    /// has (none at start; after a failed commit, those it was handed). Returns the planner
    /// and what restoring changed: live steps found started, not ended and not in flight are
    /// `unknown`.
    pub fn restore(
        config: &Config,
        live: bool,
        records: Vec<ActionRecord>,
        states: Vec<(String, RuleState)>,
        active: &HashSet<AlarmId>,
        in_flight: &HashSet<(ActionId, usize)>,
        now: Timestamp,
    ) -> (Self, Changes) {
        let mut p = Self {
            enabled: false,
            live,
            rules: Vec::new(),
            topology: Topology::new(&[]),
            max_concurrent: 1,
            approval_timeout: std::time::Duration::ZERO,
            breaker_failures: 1,
            open: BTreeMap::new(),
            runs: HashMap::new(),
            once: HashSet::new(),
            states: states.into_iter().collect(),
            in_maintenance: HashSet::new(),
            cleared: HashSet::new(),
            next_id: 1,
        };
        p.set_config(config);
        let mut changes = Changes::default();
        for mut r in records {
            p.next_id = p.next_id.max(r.id.0 + 1);
            p.once.insert((r.rule.clone(), r.fault_id));
            if let Some(first) = r.steps.first().and_then(|s| s.started_at) {
                p.runs
                    .entry(r.rule.clone())
                    .or_default()
                    .push_back((first, r.device.clone()));
            }
            if r.state.is_final() {
                continue;
            }
            if !active.contains(&r.alarm_id) {
                p.cleared.insert(r.alarm_id);
            }
            if let Some(i) = r.running_step()
                && !in_flight.contains(&(r.id, i))
            {
                match r.steps[i].plan {
                    StepPlan::WaitClear { .. } => {}
                    _ => {
                        let step = &mut r.steps[i];
                        step.outcome = Some(StepOutcome::Unknown);
                        step.ended_at = Some(now);
                        step.detail = "the daemon stopped while this step ran: it may or may not have taken effect, and it is not run again".to_owned();
                        p.finish(
                            &mut r,
                            ActionState::Unknown,
                            "a step's outcome was lost in a restart; check it by hand",
                            now,
                            &mut changes,
                        );
                        changes.keep(r);
                        continue;
                    }
                }
            }
            p.open.insert(r.id, r);
        }
        for runs in p.runs.values_mut() {
            runs.make_contiguous().sort();
        }
        // Waits whose alarm cleared while the daemon was down end now.
        let cleared: Vec<AlarmId> = p.cleared.iter().copied().collect();
        for alarm in cleared {
            p.alarm_cleared(alarm, now, &mut changes);
        }
        (p, changes)
    }

    /// Takes a new config: rules, limits, topology. Actions not started whose rule is gone
    /// (or with actions disabled) are cancelled; started ones go on.
    pub fn reconfigure(&mut self, config: &Config, now: Timestamp) -> Changes {
        self.set_config(config);
        let mut changes = Changes::default();
        let gone: Vec<ActionId> = self
            .open
            .values()
            .filter(|r| r.steps.iter().all(|s| s.started_at.is_none()))
            .filter(|r| !self.enabled || self.rule(&r.rule).is_none())
            .map(|r| r.id)
            .collect();
        for id in gone {
            if let Some(mut r) = self.open.remove(&id) {
                self.finish(
                    &mut r,
                    ActionState::Cancelled,
                    "its rule was removed or actions were disabled",
                    now,
                    &mut changes,
                );
                changes.keep(r);
            }
        }
        changes
    }

    fn set_config(&mut self, config: &Config) {
        let a = &config.actions;
        self.enabled = a.enabled;
        self.rules = config.actions_rules.clone();
        self.topology = Topology::new(&config.devices);
        self.max_concurrent = a.max_concurrent.max(1);
        self.approval_timeout = a.approval_timeout;
        self.breaker_failures = a.breaker_failures.max(1);
    }

    fn rule(&self, name: &str) -> Option<&ActionRule> {
        self.rules.iter().find(|r| r.name == name)
    }

    /// The open (not final) actions.
    pub fn open(&self) -> impl Iterator<Item = &ActionRecord> {
        self.open.values()
    }

    /// Each rule's breaker.
    pub fn rule_states(&self) -> &HashMap<String, RuleState> {
        &self.states
    }

    /// A committed transition: ends waits and pauses of the alarm's actions, and plans what
    /// the rules it triggers do.
    pub fn on_transition(&mut self, t: &Transition, now: Timestamp) -> Changes {
        let mut changes = Changes::default();
        // Off and nothing open (the default): every transition passes untouched, at the cost
        // of one comparison (an action planned later learns its alarm's maintenance from the
        // transition that plans it).
        if !self.enabled && self.open.is_empty() {
            return changes;
        }
        let alarm = &t.event.alarm;
        let id = alarm.alarm_id;
        let was_paused = self.in_maintenance.contains(&id);
        let paused = alarm.suppressed_by == Some(Suppression::Maintenance);
        if paused {
            self.in_maintenance.insert(id);
        } else {
            self.in_maintenance.remove(&id);
        }
        if t.event.kind == TransitionKind::Cleared {
            self.in_maintenance.remove(&id);
            self.cleared.insert(id);
            self.alarm_cleared(id, now, &mut changes);
        } else if was_paused && !paused {
            let resumed: Vec<ActionId> = self
                .open
                .values()
                .filter(|r| r.alarm_id == id && r.state == ActionState::Paused)
                .map(|r| r.id)
                .collect();
            for a in resumed {
                self.go_on(a, now, &mut changes);
            }
        }
        if self.enabled
            && let Some(trigger) = Trigger::of(t.event.kind)
        {
            let matching: Vec<usize> = (0..self.rules.len())
                .filter(|&i| rules::matches(&self.rules[i], trigger, t, &self.topology))
                .collect();
            for i in matching {
                self.plan(i, trigger, t, now, &mut changes);
            }
        }
        self.start_queued(now, &mut changes);
        changes
    }

    /// A new action of rule `i` for `t`.
    fn plan(
        &mut self,
        i: usize,
        trigger: Trigger,
        t: &Transition,
        now: Timestamp,
        changes: &mut Changes,
    ) {
        let rule = self.rules[i].clone();
        let alarm = &t.event.alarm;
        let key = (rule.name.clone(), t.fault.id);
        if rule.once_per_fault && self.once.contains(&key) {
            return;
        }
        let id = ActionId(self.next_id);
        self.next_id += 1;
        let ctx = rules::Context {
            transition: t,
            trigger,
            action: id,
            rule: &rule.name,
            topology: &self.topology,
        };
        let planned: Result<Vec<StepRecord>, String> = rule
            .steps
            .iter()
            .map(|s| ctx.plan(s).map(StepRecord::planned))
            .collect();
        let (steps, unfilled) = match planned {
            Ok(steps) => (steps, None),
            Err(why) => (Vec::new(), Some(why)),
        };
        let mut r = ActionRecord {
            id,
            rule: rule.name.clone(),
            mode: if self.live {
                rule.mode
            } else {
                crate::model::Mode::DryRun
            },
            trigger,
            alarm_id: alarm.alarm_id,
            fault_id: t.fault.id,
            device: alarm.device.clone(),
            object: alarm.object.clone(),
            condition: alarm.condition.clone(),
            severity: alarm.perceived_severity,
            created_at: now,
            state: ActionState::Queued,
            reason: String::new(),
            decision: None,
            expires_at: None,
            steps,
            ended_at: None,
        };
        self.once.insert(key);
        if let Some(why) = unfilled {
            self.finish(
                &mut r,
                ActionState::Failed,
                &format!("cannot fill in its steps: {why}"),
                now,
                changes,
            );
            changes.keep(r);
            return;
        }
        if let Some(why) = self.held_back(&rule, &alarm.device, now) {
            r.state = ActionState::Skipped;
            r.reason = why;
            r.ended_at = Some(now);
            changes.keep(r);
            return;
        }
        self.runs
            .entry(rule.name.clone())
            .or_default()
            .push_back((now, alarm.device.clone()));
        if rule.require_approval {
            r.state = ActionState::AwaitingApproval;
            r.reason = "waiting for an engineer's approval".to_owned();
            r.expires_at = Some(now.plus(rule.approval_timeout.unwrap_or(self.approval_timeout)));
            self.open.insert(id, r.clone());
            changes.keep(r);
            return;
        }
        self.open.insert(id, r);
        self.go_on(id, now, changes);
    }

    /// Why a new action of `rule` on `device` must not run: breaker, rate limits.
    fn held_back(&mut self, rule: &ActionRule, device: &str, now: Timestamp) -> Option<String> {
        if self.states.get(&rule.name).is_some_and(|s| s.open) {
            return Some(format!(
                "the rule's breaker is open ({} failed in a row); reset it with `noctua actions reset {}`",
                self.states[&rule.name].failures_in_row, rule.name
            ));
        }
        let runs = self.runs.entry(rule.name.clone()).or_default();
        while runs
            .front()
            .is_some_and(|(at, _)| now.since(*at) >= rule.per)
        {
            runs.pop_front();
        }
        let per = humantime::format_duration(rule.per);
        if let Some(max) = rule.max_runs
            && runs.len() >= max as usize
        {
            return Some(format!("rate limit: {max} runs per {per} reached"));
        }
        if let Some(max) = rule.max_runs_per_device
            && runs.iter().filter(|(_, d)| d == device).count() >= max as usize
        {
            return Some(format!(
                "rate limit: {max} runs per {per} on {device} reached"
            ));
        }
        None
    }

    /// Moves an open action on as far as it can go now: pause, queue, walk dry-run steps,
    /// start a wait or order a live step, or finish.
    fn go_on(&mut self, id: ActionId, now: Timestamp, changes: &mut Changes) {
        let Some(mut r) = self.open.remove(&id) else {
            return;
        };
        loop {
            if self.in_maintenance.contains(&r.alarm_id) {
                r.state = ActionState::Paused;
                r.reason = format!("paused: {} is in maintenance", r.device);
                break;
            }
            let Some(i) = r.next_step() else {
                if let Some(why) = failure(&r) {
                    self.fail(&mut r, &why, now, changes);
                } else {
                    self.finish(
                        &mut r,
                        ActionState::Succeeded,
                        "every step did what it should",
                        now,
                        changes,
                    );
                }
                changes.keep(r);
                return;
            };
            let live = r.mode == crate::model::Mode::Live;
            // An action under way keeps its slot between steps; one starting needs a free one.
            if r.state != ActionState::Running && live && self.running() >= self.max_concurrent {
                r.state = ActionState::Queued;
                r.reason = format!("queued: {} actions are running", self.max_concurrent);
                break;
            }
            r.state = ActionState::Running;
            r.reason = String::new();
            let step = &mut r.steps[i];
            step.started_at = Some(now);
            match &step.plan {
                StepPlan::WaitClear { .. } => {
                    if self.cleared.contains(&r.alarm_id) {
                        end(step, StepOutcome::Ok, "the alarm was already clear", now);
                        continue;
                    }
                    break;
                }
                plan if !live => {
                    let what = plan.describe();
                    end(
                        step,
                        StepOutcome::DryRun,
                        &format!("dry run: would {what}"),
                        now,
                    );
                }
                plan => {
                    changes.orders.push(Order {
                        action: r.id,
                        step: i,
                        rule: r.rule.clone(),
                        device: r.device.clone(),
                        plan: plan.clone(),
                    });
                    break;
                }
            }
        }
        changes.keep(r.clone());
        self.open.insert(id, r);
    }

    /// Live actions with a step under way (waits included: they hold their slot, as the repair
    /// they check is still in progress).
    fn running(&self) -> usize {
        self.open
            .values()
            .filter(|r| r.state == ActionState::Running && r.mode == crate::model::Mode::Live)
            .count()
    }

    /// The runner's report on a step it ran.
    pub fn on_result(
        &mut self,
        id: ActionId,
        step: usize,
        result: StepResult,
        now: Timestamp,
    ) -> Changes {
        let mut changes = Changes::default();
        let Some(r) = self.open.get_mut(&id) else {
            return changes;
        };
        let Some(s) = r.steps.get_mut(step).filter(|s| s.outcome.is_none()) else {
            return changes;
        };
        s.outcome = Some(result.outcome);
        s.ended_at = Some(now);
        s.exit_code = result.exit_code;
        s.http_status = result.http_status;
        s.output = result.output;
        s.detail = result.detail;
        if result.outcome == StepOutcome::Ok {
            self.go_on(id, now, &mut changes);
        } else if let Some(mut r) = self.open.remove(&id) {
            // A failed step stops the action: what follows it assumed it worked.
            for later in r.steps.iter_mut().skip(step + 1) {
                later.detail = "not run: an earlier step failed".to_owned();
            }
            let why = failure(&r).unwrap_or_default();
            self.fail(&mut r, &why, now, &mut changes);
            changes.keep(r);
        }
        self.start_queued(now, &mut changes);
        changes
    }

    /// The passing of time: approvals expire, waits time out, queued actions start.
    pub fn on_tick(&mut self, now: Timestamp) -> Changes {
        let mut changes = Changes::default();
        let due: Vec<(ActionId, bool)> = self
            .open
            .values()
            .filter_map(|r| {
                if r.state == ActionState::AwaitingApproval
                    && r.expires_at.is_some_and(|t| now >= t)
                {
                    return Some((r.id, true));
                }
                let i = r.running_step()?;
                match (&r.steps[i].plan, r.steps[i].started_at) {
                    (StepPlan::WaitClear { within_ms }, Some(at))
                        if now.since(at).as_millis() >= u128::from(*within_ms) =>
                    {
                        Some((r.id, false))
                    }
                    _ => None,
                }
            })
            .collect();
        for (id, expired) in due {
            if expired {
                if let Some(mut r) = self.open.remove(&id) {
                    self.finish(
                        &mut r,
                        ActionState::Expired,
                        "nobody approved it in time",
                        now,
                        &mut changes,
                    );
                    changes.keep(r);
                }
                continue;
            }
            if let Some(r) = self.open.get_mut(&id)
                && let Some(i) = r.running_step()
            {
                // The repair did not work: the next step (an escalation, a ticket) runs.
                end(
                    &mut r.steps[i],
                    StepOutcome::TimedOut,
                    "the alarm did not clear in time",
                    now,
                );
                self.go_on(id, now, &mut changes);
            }
        }
        self.start_queued(now, &mut changes);
        changes
    }

    fn start_queued(&mut self, now: Timestamp, changes: &mut Changes) {
        let queued: Vec<ActionId> = self
            .open
            .values()
            .filter(|r| r.state == ActionState::Queued)
            .map(|r| r.id)
            .collect();
        for id in queued {
            if self.running() >= self.max_concurrent {
                break;
            }
            self.go_on(id, now, changes);
        }
    }

    /// An engineer approves (`approved`) or rejects an action waiting for it.
    pub fn decide(
        &mut self,
        id: ActionId,
        by: &str,
        approved: bool,
        now: Timestamp,
    ) -> Result<Changes, ActionError> {
        let r = self.open.get_mut(&id).ok_or(ActionError::Unknown(id))?;
        if r.state != ActionState::AwaitingApproval {
            return Err(ActionError::NotAwaiting(id, r.state.name()));
        }
        r.decision = Some(Decision {
            by: by.to_owned(),
            at: now,
            approved,
        });
        let mut changes = Changes::default();
        if approved {
            r.state = ActionState::Queued;
            self.go_on(id, now, &mut changes);
        } else if let Some(mut r) = self.open.remove(&id) {
            self.finish(
                &mut r,
                ActionState::Rejected,
                &format!("rejected by {by}"),
                now,
                &mut changes,
            );
            changes.keep(r);
        }
        Ok(changes)
    }

    /// An engineer closes a rule's open breaker; its alarm clears.
    pub fn reset(&mut self, rule: &str, by: &str, now: Timestamp) -> Result<Changes, ActionError> {
        if self.rule(rule).is_none() && !self.states.contains_key(rule) {
            return Err(ActionError::UnknownRule(rule.to_owned()));
        }
        let state = self.states.entry(rule.to_owned()).or_default();
        if !state.open {
            return Err(ActionError::BreakerClosed(rule.to_owned()));
        }
        let device = state.tripped_on.take();
        *state = RuleState::default();
        let mut changes = Changes::default();
        changes.rules.push((rule.to_owned(), state.clone()));
        if let Some(device) = device {
            changes.events.push(breaker_event(
                &device,
                rule,
                EventKind::ActionsResumed,
                format!("breaker of rule {rule} reset by {by}"),
                now,
            ));
        }
        Ok(changes)
    }

    fn alarm_cleared(&mut self, alarm: AlarmId, now: Timestamp, changes: &mut Changes) {
        let ids: Vec<ActionId> = self
            .open
            .values()
            .filter(|r| r.alarm_id == alarm)
            .map(|r| r.id)
            .collect();
        for id in ids {
            let Some(mut r) = self.open.remove(&id) else {
                continue;
            };
            match r.state {
                ActionState::AwaitingApproval | ActionState::Paused | ActionState::Queued
                    if r.steps.iter().all(|s| s.started_at.is_none()) =>
                {
                    self.finish(
                        &mut r,
                        ActionState::Cancelled,
                        "the alarm cleared before it started",
                        now,
                        changes,
                    );
                    changes.keep(r);
                }
                _ => {
                    if let Some(i) = r.running_step()
                        && matches!(r.steps[i].plan, StepPlan::WaitClear { .. })
                    {
                        end(&mut r.steps[i], StepOutcome::Ok, "the alarm cleared", now);
                        self.open.insert(id, r);
                        self.go_on(id, now, changes);
                    } else {
                        self.open.insert(id, r);
                    }
                }
            }
        }
        // A later wait on this alarm needs this only while an action of it is open.
        if !self.open.values().any(|r| r.alarm_id == alarm) {
            self.cleared.remove(&alarm);
        }
    }

    /// Ends a failed action: the breaker counts it, and the rule may escalate the alarm.
    fn fail(&mut self, r: &mut ActionRecord, why: &str, now: Timestamp, changes: &mut Changes) {
        self.finish(r, ActionState::Failed, why, now, changes);
        let Some(rule) = self.rule(&r.rule).cloned() else {
            return;
        };
        if rule.on_failure == OnFailure::Escalate && !self.cleared.contains(&r.alarm_id) {
            changes.escalate.push(r.alarm_id);
        }
        let limit = rule.breaker_failures.unwrap_or(self.breaker_failures);
        let state = self.states.entry(r.rule.clone()).or_default();
        state.failures_in_row += 1;
        if !state.open && state.failures_in_row >= limit {
            state.open = true;
            state.opened_at = Some(now);
            state.tripped_on = Some(r.device.clone());
            changes.events.push(breaker_event(
                &r.device,
                &r.rule,
                EventKind::ActionsFailing,
                format!(
                    "action rule {} failed {} times in a row and is disabled until reset",
                    r.rule, state.failures_in_row
                ),
                now,
            ));
        }
        changes.rules.push((r.rule.clone(), state.clone()));
    }

    /// Ends an action in `state`; a success closes the breaker's count.
    fn finish(
        &mut self,
        r: &mut ActionRecord,
        state: ActionState,
        why: &str,
        now: Timestamp,
        changes: &mut Changes,
    ) {
        r.state = state;
        r.reason = why.to_owned();
        r.ended_at = Some(now);
        if state == ActionState::Succeeded {
            let s = self.states.entry(r.rule.clone()).or_default();
            if s.failures_in_row > 0 && !s.open {
                s.failures_in_row = 0;
                changes.rules.push((r.rule.clone(), s.clone()));
            }
        }
    }
}

/// Why an action failed, in words: its first step that did not do what it should.
fn failure(r: &ActionRecord) -> Option<String> {
    r.steps
        .iter()
        .enumerate()
        .find_map(|(i, s)| match s.outcome {
            Some(o @ (StepOutcome::Failed | StepOutcome::TimedOut)) => Some(format!(
                "step {} ({}) {}: {}",
                i + 1,
                s.plan.describe(),
                o.name(),
                s.detail
            )),
            _ => None,
        })
}

fn end(step: &mut StepRecord, outcome: StepOutcome, detail: &str, now: Timestamp) {
    step.outcome = Some(outcome);
    step.ended_at = Some(now);
    detail.clone_into(&mut step.detail);
}

fn breaker_event(
    device: &str,
    rule: &str,
    kind: EventKind,
    text: String,
    at: Timestamp,
) -> DeviceEvent {
    DeviceEvent {
        device: device.to_owned(),
        object: format!("rule={rule}"),
        kind,
        at,
        text,
        severity: None,
    }
}
