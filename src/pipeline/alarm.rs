//! The alarm task: apply inputs and ticks, commit each batch of transitions in one
//! transaction, wait for its flush, then publish what is to be notified.

use std::sync::Arc;
use std::time::Duration;

use std::time::Instant;

use tokio::sync::{broadcast, mpsc, oneshot, watch};

use super::action::Handling;
use crate::action::{Changes, Planner};
use crate::alarm::AlarmManager;
use crate::config::Config;
use crate::impact::complaints::Effects;
use crate::impact::{ImpactEngine, ImpactView};
use crate::message::{
    ActionAnswer, ActionCommand, AlarmCommand, AlarmError, AlarmInput, Clock, CommandError,
    CommandResult, ComplaintCommand, HOLD_AT_MOST, Held,
};
use crate::model::{
    ActionError, ActionState, Alarm, AlarmEvent, Complaint, ComplaintError, ComplaintState,
    FaultId, FaultRecord, MaintenanceConfig, Note, ServiceState, ServiceStatus, Subject, Timestamp,
    Transition, TransitionKind, printable,
};
use crate::store::{Batch, NoteRefused, Store, StoreError, Tree};
use crate::telemetry::Metrics;

/// How often time-driven rules (hold-down, targets, flapping, maintenance) are evaluated.
const TICK: Duration = Duration::from_secs(1);
/// How often retention runs.
const COMPACT_EVERY: Duration = Duration::from_secs(3600);
/// Inputs taken per batch; a batch is one store transaction and one flush wait.
const BATCH: usize = 1024;
/// At a stop, how long the stage waits for action steps still running to report, so their
/// outcome is recorded rather than found `unknown` at the next start.
const DRAIN_GRACE: Duration = Duration::from_secs(10);

/// Where the alarm stage publishes what it committed.
#[derive(Clone)]
pub struct Published {
    /// Every committed alarm transition.
    pub events: broadcast::Sender<AlarmEvent>,
    /// Every committed service state change.
    pub services: broadcast::Sender<ServiceState>,
    /// What the customer lookup reads, after each committed batch.
    pub impact: watch::Sender<Arc<ImpactView>>,
}

/// Rebuilds impact from the store and the manager's alarms: at start and with the manager.
pub fn load_impact(
    config: &Config,
    store: &Store,
    manager: &AlarmManager,
) -> Result<ImpactEngine, StoreError> {
    let alarms: Vec<Alarm> = manager.alarms().cloned().collect();
    let open: Vec<Complaint> = store
        .complaints()?
        .into_iter()
        .filter(|c| c.state != ComplaintState::Resolved)
        .collect();
    Ok(ImpactEngine::new(
        config,
        store.customer_counts()?,
        &alarms,
        &store.service_states()?,
        open,
    ))
}

/// Rebuilds the manager from the store: at start, and after a failed commit so the manager
/// never runs ahead of what is on disk.
pub fn load_manager(
    config: &Config,
    store: &Store,
    now: Timestamp,
) -> Result<AlarmManager, StoreError> {
    let alarms: Vec<Alarm> = store.scan(Tree::ActiveAlarms)?;
    let faults: Vec<FaultRecord> = store.scan(Tree::Faults)?;
    let windows: Vec<MaintenanceConfig> = store.scan(Tree::Maintenance)?;
    let mut manager = AlarmManager::restore(config, alarms, faults, store.last_seq()?, now);
    manager.set_api_maintenance(&windows);
    Ok(manager)
}

/// Runs until the input channel closes.
#[allow(clippy::too_many_arguments)] // the stage's state, input, store, outputs and knobs
pub async fn run_stage(
    mut manager: AlarmManager,
    mut impact: ImpactEngine,
    (mut handling, restored): (Handling, Changes),
    mut inputs: mpsc::Receiver<AlarmInput>,
    store: Store,
    out: Published,
    mut config: watch::Receiver<Arc<Config>>,
    metrics: Arc<Metrics>,
    clock: Clock,
) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut p = Pending {
        actions: restored,
        ..Pending::default()
    };
    let mut replies: Vec<(oneshot::Sender<CommandResult>, std::ops::Range<usize>)> = Vec::new();
    let mut holds: Vec<oneshot::Sender<Held>> = Vec::new();
    let mut complaint_replies: Vec<(ComplaintReply, String)> = Vec::new();
    let mut action_replies: Vec<(ActionReply, ActionCommand)> = Vec::new();
    let mut closing: Option<tokio::time::Instant> = None;
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut last_compaction: Option<tokio::time::Instant> = None;
    // As the daemon started (or not) the MQTT publisher: [mqtt] changes need a restart.
    let (publisher, outbox_limit) = {
        let c = config.borrow();
        (c.mqtt.enabled, c.mqtt.outbox_limit)
    };
    record_new_services(&store, &impact).await;
    // The breakers as the store has them, from the first scrape on.
    let breakers = Changes {
        rules: handling
            .planner
            .rule_states()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        ..Changes::default()
    };
    count_actions(&handling.planner, &breakers, &metrics);
    if !p.actions.is_empty() {
        // What restoring found (steps cut short by a stop are `unknown`), on disk first.
        match commit(&store, &p, &out, &metrics).await {
            Ok(()) => count_actions(&handling.planner, &p.actions, &metrics),
            Err(e) => tracing::error!(error = %e, "cannot record the actions found unfinished"),
        }
        p.clear();
    }
    metrics.alarm_active.set(manager.active_count() as i64);
    metrics
        .customers
        .set(i64::try_from(impact.customers()).unwrap_or(i64::MAX));
    loop {
        if closing.is_some() && !handling.waiting() {
            return;
        }
        tokio::select! {
            n = inputs.recv_many(&mut batch, BATCH), if closing.is_none() => {
                if n == 0 {
                    if !handling.waiting() {
                        return;
                    }
                    tracing::info!(grace = ?DRAIN_GRACE, "waiting for running action steps to report");
                    closing = Some(tokio::time::Instant::now() + DRAIN_GRACE);
                    continue;
                }
                for input in batch.drain(..) {
                    match input {
                        AlarmInput::Verdict(v, arrived) => p.arrive(manager.on_verdict(v), arrived),
                        AlarmInput::Event(e, arrived) => p.arrive(manager.on_event(e), arrived),
                        AlarmInput::Tick(t) => {
                            p.transitions.extend(manager.on_tick(t));
                            p.apply(&mut manager, impact.complaints().on_tick(t));
                            p.act(&mut manager, handling.planner.on_tick(t), t);
                        }
                        AlarmInput::Ack(a) => {
                            let key = (a.device, a.object, a.condition);
                            match manager.on_ack_key(&key, &a.by, a.note.as_deref(), a.at) {
                                Ok(ts) => p.transitions.extend(ts),
                                Err(e) => tracing::warn!(error = %e, "replayed acknowledgement refused"),
                            }
                        }
                        AlarmInput::Handover(h) => {
                            p.transitions.extend(manager.on_handover(h, Timestamp::now()));
                        }
                        AlarmInput::Action(c, reply) => {
                            match action(&mut handling.planner, &store, &c) {
                                Ok(changes) => {
                                    p.act(&mut manager, changes, Timestamp::now());
                                    action_replies.push((reply, c));
                                }
                                Err(e) => {
                                    let _ = reply.send(Err(e));
                                }
                            }
                        }
                        AlarmInput::Complaint(c, reply) => match complaint(&mut impact, &store, c) {
                            Ok((id, effects)) => {
                                p.apply(&mut manager, effects);
                                complaint_replies.push((reply, id));
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "complaint refused");
                                let _ = reply.send(Err(e));
                            }
                        },
                        AlarmInput::Hold(reply) => holds.push(reply),
                        AlarmInput::Customers(counts) => {
                            impact.set_counts(counts);
                            out.impact.send_replace(Arc::new(impact.view()));
                        }
                        AlarmInput::Note(fault, note, reply) => {
                            let max = config.borrow().alarms.max_notes_per_fault;
                            let _ = reply.send(add_note(&store, fault, note, max).await);
                        }
                        AlarmInput::Command(c, reply) => {
                            let start = p.transitions.len();
                            match apply(&mut manager, c, Timestamp::now()) {
                                Ok(ts) => {
                                    p.transitions.extend(ts);
                                    replies.push((reply, start..p.transitions.len()));
                                }
                                Err(e) => {
                                    let _ = reply.send(Err(e.into()));
                                }
                            }
                        }
                    }
                    // Each input's impact before the next input: time moves on in order.
                    p.settle(&mut manager, &mut impact, &mut handling.planner);
                }
            }
            Some((id, step, result)) = handling.reports.recv() => {
                handling.reported(id, step);
                let now = Timestamp::now();
                p.act(&mut manager, handling.planner.on_result(id, step, result, now), now);
                p.settle(&mut manager, &mut impact, &mut handling.planner);
            }
            () = tokio::time::sleep_until(closing.unwrap_or_else(tokio::time::Instant::now)), if closing.is_some() => {
                tracing::warn!("action steps still running at the stop; the next start records them as unknown");
                return;
            }
            _ = tick.tick(), if clock == Clock::Wall => {
                if config.has_changed().unwrap_or(false) {
                    let c = config.borrow_and_update().clone();
                    manager.reconfigure(&c);
                    let alarms: Vec<Alarm> = manager.alarms().cloned().collect();
                    impact.reconfigure(&c, &alarms, &[]);
                    record_new_services(&store, &impact).await;
                    p.act(&mut manager, handling.planner.reconfigure(&c, Timestamp::now()), Timestamp::now());
                }
                let now = Timestamp::now();
                p.transitions.extend(manager.on_tick(now));
                p.apply(&mut manager, impact.complaints().on_tick(now));
                p.act(&mut manager, handling.planner.on_tick(now), now);
                p.settle(&mut manager, &mut impact, &mut handling.planner);
                if !publisher {
                    // No publisher: the newest `outbox-limit` notified transitions wait for one
                    // (enabling MQTT later sends them); older ones must not hold retention back.
                    if let Err(e) = store.outbox_trim(outbox_limit) {
                        tracing::error!(error = %e, "cannot trim the outbox");
                    }
                }
                if last_compaction.is_none_or(|t| t.elapsed() >= COMPACT_EVERY) {
                    last_compaction = Some(tokio::time::Instant::now());
                    compact(&store, &config.borrow(), now, &metrics);
                }
            }
        }
        if p.transitions.is_empty() && p.complaints.is_empty() && p.actions.is_empty() {
            // Commands that changed nothing (an acknowledged alarm acknowledged again).
            for (reply, _) in replies.drain(..) {
                let _ = reply.send(Ok(Vec::new()));
            }
            hold_still(&mut holds).await;
            continue;
        }
        let committed = commit(&store, &p, &out, &metrics).await;
        for (reply, id) in complaint_replies.drain(..) {
            let answer = match &committed {
                Ok(()) => p
                    .complaints
                    .iter()
                    .rev()
                    .find(|c| c.id == id)
                    .cloned()
                    .ok_or(CommandError::Complaint(ComplaintError::Unknown(id))),
                Err(e) => Err(CommandError::Store(e.to_string())),
            };
            let _ = reply.send(answer);
        }
        for (reply, c) in action_replies.drain(..) {
            let answer = match &committed {
                Ok(()) => action_answer(&p.actions, &c),
                Err(e) => Err(CommandError::Store(e.to_string())),
            };
            let _ = reply.send(answer);
        }
        for (reply, range) in replies.drain(..) {
            let answer = match &committed {
                Ok(()) => Ok(p.transitions[range]
                    .iter()
                    .map(|t| t.event.clone())
                    .collect()),
                Err(e) => Err(CommandError::Store(e.to_string())),
            };
            // The asker may have gone (a dropped HTTP request); the change stands regardless.
            let _ = reply.send(answer);
        }
        match committed {
            Ok(()) => {
                if !p.complaints.is_empty() || !p.services.is_empty() {
                    metrics.complaint_changes.inc_by(p.complaints.len() as u64);
                    count_open(&mut impact, &metrics);
                }
                if let Some(view) = impact.fresh_view() {
                    out.impact.send_replace(Arc::new(view));
                }
                if !p.actions.is_empty() {
                    count_actions(&handling.planner, &p.actions, &metrics);
                    handling.dispatch(std::mem::take(&mut p.actions.orders));
                }
            }
            Err(e) => {
                let lost = p.transitions.len();
                metrics.alarm_commit_errors.inc_by(lost as u64);
                if store.failure().is_some() {
                    // The store failed (logged once, there) and the daemon is stopping for a
                    // restart, which rebuilds the manager from what is on disk.
                    tracing::debug!(error = %e, lost, "alarm transitions not committed");
                } else {
                    tracing::error!(error = %e, lost, "alarm transitions not committed; reloading alarm state from the store");
                    let c = config.borrow().clone();
                    let reloaded = load_manager(&c, &store, Timestamp::now()).and_then(|m| {
                        let i = load_impact(&c, &store, &m)?;
                        let restored = handling.reload(&c, &store, &m)?;
                        Ok((i, m, restored))
                    });
                    match reloaded {
                        Ok((i, m, restored)) => {
                            (manager, impact) = (m, i);
                            p.clear();
                            p.actions = restored;
                            metrics.alarm_active.set(manager.active_count() as i64);
                            hold_still(&mut holds).await;
                            continue;
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "cannot reload alarm state; keeping the in-memory state");
                        }
                    }
                }
            }
        }
        p.clear();
        metrics.alarm_active.set(manager.active_count() as i64);
        hold_still(&mut holds).await;
    }
}

/// Services the store has no state of yet (new in the config) are recorded as they are, so
/// every service has a retained status on MQTT from the start, not just those that changed.
async fn record_new_services(store: &Store, impact: &ImpactEngine) {
    let known: Vec<String> = match store.service_states() {
        Ok(states) => states.into_iter().map(|s| s.name).collect(),
        Err(e) => {
            tracing::error!(error = %e, "cannot read service states");
            return;
        }
    };
    let new: Vec<ServiceState> = impact
        .states()
        .iter()
        .filter(|s| !known.contains(&s.name))
        .cloned()
        .collect();
    if new.is_empty() {
        return;
    }
    let batch = Batch {
        services: &new,
        ..Batch::default()
    };
    let committed = match store.commit_batch(&batch) {
        Ok(ticket) => store.durable(ticket).await,
        Err(e) => Err(e),
    };
    if let Err(e) = committed {
        tracing::error!(error = %e, "cannot record the new services' states");
    }
}

/// What one batch commits: the transitions, and the service, complaint and action changes
/// they made.
#[derive(Default)]
struct Pending {
    transitions: Vec<Transition>,
    services: Vec<ServiceState>,
    complaints: Vec<Complaint>,
    actions: Changes,
    /// Transitions up to here have their impact and their actions.
    settled: usize,
    /// Transitions that came of an ingest input: how many, and when the input arrived.
    arrived: Vec<(usize, Instant)>,
}

impl Pending {
    /// The transitions an ingest input led to, with when it arrived.
    fn arrive(&mut self, transitions: Vec<Transition>, at: Instant) {
        if !transitions.is_empty() {
            self.arrived.push((transitions.len(), at));
            self.transitions.extend(transitions);
        }
    }

    /// Impact for the transitions not yet annotated, then what complaints make of them (a
    /// network alarm explaining a `customer_reported` one clears it), until nothing new comes
    /// of it. The manager takes the impact back, so its next transition starts from it.
    ///
    /// Then the action rules see each transition as annotated (a rule may name a service), and
    /// what they ask of the manager (a breaker's alarm, an escalation) settles in turn.
    fn settle(
        &mut self,
        manager: &mut AlarmManager,
        impact: &mut ImpactEngine,
        planner: &mut Planner,
    ) {
        while self.settled < self.transitions.len() {
            let from = self.settled;
            let new = &mut self.transitions[from..];
            let (changed, effects) = impact.annotate(new);
            manager.keep_impact(new);
            self.settled = self.transitions.len();
            self.services.extend(changed);
            self.apply(manager, effects);
            for i in from..self.settled {
                let at = self.transitions[i].event.at;
                let changes = planner.on_transition(&self.transitions[i], at);
                self.act(manager, changes, at);
            }
        }
    }

    /// Keeps what the planner decided, and passes what it asks of the alarm manager.
    fn act(&mut self, manager: &mut AlarmManager, mut changes: Changes, now: Timestamp) {
        for e in changes.events.drain(..) {
            self.transitions.extend(manager.on_event(e));
        }
        for alarm in changes.escalate.drain(..) {
            let why = "automated handling did not repair it; escalated by its action rule";
            if let Ok(ts) = manager.on_escalate(alarm, why, now) {
                self.transitions.extend(ts);
            }
        }
        self.actions.merge(changes);
    }

    /// Passes what complaints asked for to the alarm manager, and keeps their changes.
    fn apply(&mut self, manager: &mut AlarmManager, effects: Effects) {
        for e in effects.events {
            self.transitions.extend(manager.on_event(e));
        }
        self.complaints.extend(effects.complaints);
    }

    fn clear(&mut self) {
        self.transitions.clear();
        self.services.clear();
        self.complaints.clear();
        self.actions = Changes::default();
        self.settled = 0;
        self.arrived.clear();
    }
}

/// Open complaints, overdue ones and services not ok, for /metrics.
fn count_open(impact: &mut ImpactEngine, metrics: &Metrics) {
    let not_ok = impact
        .states()
        .iter()
        .filter(|s| s.status != ServiceStatus::Ok)
        .count();
    metrics.services_not_ok.set(not_ok as i64);
    let book = impact.complaints();
    let (mut open, mut respond, mut resolve) = (0, 0, 0);
    for c in book.open() {
        open += 1;
        respond += i64::from(c.respond_breached && c.acked_at.is_none());
        resolve += i64::from(c.resolve_breached);
    }
    metrics.complaints_open.set(open);
    metrics.complaints_respond_overdue.set(respond);
    metrics.complaints_resolve_overdue.set(resolve);
}

/// Who waits for an action command's answer.
type ActionReply = oneshot::Sender<Result<ActionAnswer, CommandError>>;

/// An engineer's decision or breaker reset, to the planner. A decision on an action no
/// longer open says what became of it.
fn action(
    planner: &mut Planner,
    store: &Store,
    command: &ActionCommand,
) -> Result<Changes, CommandError> {
    let now = Timestamp::now();
    match command {
        ActionCommand::Decide { id, by, approved } => {
            match planner.decide(*id, by, *approved, now) {
                Err(ActionError::Unknown(id)) => {
                    match store
                        .action(id)
                        .map_err(|e| CommandError::Store(e.to_string()))?
                    {
                        Some(r) => Err(ActionError::NotAwaiting(id, r.state.name()).into()),
                        None => Err(ActionError::Unknown(id).into()),
                    }
                }
                other => Ok(other?),
            }
        }
        ActionCommand::Reset { rule, by } => Ok(planner.reset(rule, by, now)?),
    }
}

/// The committed answer to an action command.
fn action_answer(changes: &Changes, command: &ActionCommand) -> Result<ActionAnswer, CommandError> {
    let missing = || CommandError::Store("the change was not part of the commit".to_owned());
    match command {
        ActionCommand::Decide { id, .. } => changes
            .records
            .iter()
            .find(|r| r.id == *id)
            .map(|r| ActionAnswer::Action(r.clone()))
            .ok_or_else(missing),
        ActionCommand::Reset { rule, .. } => changes
            .rules
            .iter()
            .find(|(n, _)| n == rule)
            .map(|(n, s)| ActionAnswer::Rule(n.clone(), s.clone()))
            .ok_or_else(missing),
    }
}

/// Actions that ended in this commit, the open ones by state, and breakers, for /metrics.
fn count_actions(planner: &Planner, changes: &Changes, metrics: &Metrics) {
    for r in changes.records.iter().filter(|r| r.state.is_final()) {
        metrics
            .actions_ended
            .with_label_values(&[&r.rule, r.state.name()])
            .inc();
    }
    for state in [
        ActionState::AwaitingApproval,
        ActionState::Paused,
        ActionState::Queued,
        ActionState::Running,
    ] {
        let n = planner.open().filter(|r| r.state == state).count();
        metrics
            .actions_open
            .with_label_values(&[state.name()])
            .set(n as i64);
    }
    for (rule, s) in &changes.rules {
        metrics
            .action_breaker_open
            .with_label_values(&[rule])
            .set(i64::from(s.open));
    }
}

/// Who waits for a complaint command's answer.
type ComplaintReply = oneshot::Sender<Result<Complaint, CommandError>>;

/// One complaint command against the book; a new complaint is linked to the fault that
/// explains it. Returns the complaint's id and what the book asks for.
fn complaint(
    impact: &mut ImpactEngine,
    store: &Store,
    command: ComplaintCommand,
) -> Result<(String, Effects), CommandError> {
    let store_err = |e: StoreError| CommandError::Store(e.to_string());
    let stored = |id: &str| store.complaint(id).map_err(store_err);
    match command {
        ComplaintCommand::Receive(new, now) => {
            let id = match new.id {
                Some(id) => id,
                None => format!("N-{}", store.generate_id().map_err(store_err)?),
            };
            if impact.complaints().is_open(&id) || stored(&id)?.is_some() {
                return Err(ComplaintError::Duplicate(id).into());
            }
            let (customer, place) = match new.subject {
                Subject::Customer(c) => {
                    let key = impact.customer_keys().key(&c);
                    let place = store
                        .customer_place(&key)
                        .map_err(store_err)?
                        .ok_or(ComplaintError::UnknownCustomer)?;
                    (Some(impact.customer_keys().shown(&c)), place)
                }
                Subject::Place(p) => {
                    impact
                        .places()
                        .check(&p)
                        .map_err(ComplaintError::UnknownPlace)?;
                    (None, p)
                }
            };
            let c = Complaint {
                id: id.clone(),
                customer,
                place: place.clone(),
                channel: new.channel,
                symptom: new.symptom,
                text: new.text,
                received_at: new.received_at,
                recorded_at: now,
                state: ComplaintState::Received,
                acked_at: None,
                acked_by: None,
                resolved_at: None,
                resolved_by: None,
                resolution: None,
                link: None,
                respond_breached: false,
                resolve_breached: false,
            };
            let link = impact.link_for(&place, now);
            let detection = impact.detection(&place);
            Ok((id, impact.complaints().receive(c, link, detection, now)))
        }
        ComplaintCommand::Ack { id, by } => {
            let now = Timestamp::now();
            match impact.complaints().ack(&id, &by, now) {
                Ok(e) => Ok((id, e)),
                Err(e) => Err(resolved_or(stored(&id)?, e)),
            }
        }
        ComplaintCommand::Resolve { id, by, note } => {
            let now = Timestamp::now();
            match impact.complaints().resolve(&id, &by, &note, now) {
                Ok(e) => Ok((id, e)),
                Err(e) => Err(resolved_or(stored(&id)?, e)),
            }
        }
    }
}

/// A complaint the book does not hold open is resolved if the store has it.
fn resolved_or(stored: Option<Complaint>, e: ComplaintError) -> CommandError {
    match stored {
        Some(c) => ComplaintError::Resolved(c.id).into(),
        None => e.into(),
    }
}

/// Answers each hold once the batch before it is committed, and waits until its holder lets
/// go (or [`HOLD_AT_MOST`] passes). Inputs queue meanwhile.
async fn hold_still(holds: &mut Vec<oneshot::Sender<Held>>) {
    for reply in holds.drain(..) {
        let (release, released) = oneshot::channel();
        if reply.send(Held(release)).is_ok() {
            // Dropped or sent, either way the holder is done.
            let _ = tokio::time::timeout(HOLD_AT_MOST, released).await;
        }
    }
}

/// A note is one key of its own, written in order with the transitions around it.
async fn add_note(store: &Store, fault: FaultId, note: Note, max: usize) -> CommandResult {
    let store_err = |e: StoreError| CommandError::Store(e.to_string());
    let ticket = match store.add_note(fault, &note, max).map_err(store_err)? {
        Ok(ticket) => ticket,
        Err(NoteRefused::NoFault) => return Err(CommandError::NoFault(fault.0)),
        Err(NoteRefused::Full(n)) => return Err(CommandError::NotesFull(n)),
    };
    store.durable(ticket).await.map_err(store_err)?;
    Ok(Vec::new())
}

fn apply(
    manager: &mut AlarmManager,
    command: AlarmCommand,
    now: Timestamp,
) -> Result<Vec<Transition>, AlarmError> {
    match command {
        AlarmCommand::Ack { id, user, note } => manager.on_ack(id, &user, note.as_deref(), now),
        AlarmCommand::Unack { id, user } => manager.on_unack(id, &user, now),
        AlarmCommand::Clear { id, user, note } => manager.on_clear(id, &user, note.as_deref(), now),
        AlarmCommand::SetMaintenance(windows) => {
            manager.set_api_maintenance(&windows);
            // Tick now, so suppression follows the new windows before the answer.
            Ok(manager.on_tick(now))
        }
    }
}

/// Durable before visible: one transaction, one flush wait, then publish.
async fn commit(
    store: &Store,
    p: &Pending,
    out: &Published,
    metrics: &Metrics,
) -> Result<(), StoreError> {
    let (transitions, services) = (&p.transitions, &p.services);
    let ticket = store.commit_batch(&Batch {
        transitions,
        services,
        complaints: &p.complaints,
        actions: &p.actions.records,
        rules: &p.actions.rules,
    })?;
    store.durable(ticket).await?;
    metrics.service_changes.inc_by(services.len() as u64);
    for s in services {
        tracing::info!(service = %s.name, status = s.status.name(), severity = s.severity.name(),
            alarms = s.underlying_alarm.len(), "service status changed");
        let _ = out.services.send(s.clone());
    }
    let events = &out.events;
    for t in transitions {
        let e = &t.event;
        let (severity, category) = (e.alarm.perceived_severity.name(), t.fault.category.name());
        metrics
            .alarm_transitions
            .with_label_values(&[e.kind.name()])
            .inc();
        if e.kind == TransitionKind::Acknowledged
            && t.fault.acked_at == Some(e.at)
            && let Some(d) = t.fault.mtta()
        {
            metrics
                .fault_time_to_acknowledge
                .with_label_values(&[t.fault.peak_severity.name(), category])
                .observe(d.as_secs_f64());
        }
        if e.kind == TransitionKind::Cleared
            && let Some(d) = t.fault.mttr()
        {
            metrics
                .fault_time_to_repair
                .with_label_values(&[t.fault.peak_severity.name(), category])
                .observe(d.as_secs_f64());
        }
        // Suppressed transitions go to the bus too (marked `notified: false`): the console
        // shows them on request; MQTT only wakes on the bus and publishes from the outbox.
        let _ = events.send(e.clone());
        if !e.notified {
            metrics.alarm_suppressed.inc();
            continue;
        }
        tracing::info!(
            seq = e.seq,
            alarm = %e.alarm.alarm_id,
            device = %e.alarm.device,
            object = %e.alarm.object,
            condition = %e.alarm.condition,
            severity,
            kind = e.kind.name(),
            "{}", printable(&e.alarm.additional_text)
        );
    }
    // Committed and on the bus, which the SSE streams and the MQTT publisher read.
    for &(n, arrived) in &p.arrived {
        let latency = arrived.elapsed().as_secs_f64();
        for _ in 0..n {
            metrics.pipeline_latency.observe(latency);
        }
    }
    Ok(())
}

fn compact(store: &Store, config: &Config, now: Timestamp, metrics: &Metrics) {
    let keep = i64::try_from(config.alarms.retention.as_millis()).unwrap_or(i64::MAX);
    let cutoff = Timestamp::from_millis(now.as_millis().saturating_sub(keep));
    match store.compact(cutoff) {
        Ok(n) => {
            metrics.store_compacted.inc_by(n as u64);
            if n > 0 {
                tracing::info!(removed = n, before = %cutoff, "retention: old history and closed faults removed");
            }
        }
        Err(e) => tracing::error!(error = %e, "retention pass failed"),
    }
}
