//! The alarm task: apply verdicts, commit each transition, wait for the flush, then publish.

use std::sync::Arc;

use tokio::sync::{broadcast, mpsc};

use crate::alarm::AlarmManager;
use crate::detect::Verdict;
use crate::model::{Alarm, AlarmEvent, FaultRecord};
use crate::northbound::metrics::Metrics;
use crate::store::{Store, StoreError, Tree};

/// Rebuilds the manager from the store: at start, and after a failed commit so the manager
/// never runs ahead of what is on disk.
pub fn load_manager(store: &Store) -> Result<AlarmManager, StoreError> {
    let alarms: Vec<Alarm> = store.scan(Tree::ActiveAlarms)?;
    let open: Vec<FaultRecord> = store
        .scan::<FaultRecord>(Tree::Faults)?
        .into_iter()
        .filter(|f| f.cleared_at.is_none())
        .collect();
    Ok(AlarmManager::restore(alarms, open, store.last_seq()?))
}

/// Runs until the verdict channel closes. Transitions are committed in batches and published
/// on `events` only after their flush: a subscriber never sees what the store might lose.
pub async fn run_stage(
    mut manager: AlarmManager,
    mut verdicts: mpsc::Receiver<Verdict>,
    store: Store,
    events: broadcast::Sender<AlarmEvent>,
    metrics: Arc<Metrics>,
) {
    let mut batch = Vec::with_capacity(256);
    let mut committed = Vec::with_capacity(256);
    metrics.alarm_active.set(manager.active_count() as i64);
    while verdicts.recv_many(&mut batch, 256).await > 0 {
        let mut last_ticket = None;
        for verdict in batch.drain(..) {
            let Some(t) = manager.on_verdict(verdict) else {
                continue;
            };
            match store.commit_transition(&t.event, &t.fault, t.expected) {
                Ok(ticket) => {
                    last_ticket = Some(ticket);
                    committed.push(t.event);
                }
                Err(e) => {
                    metrics.alarm_commit_errors.inc();
                    tracing::error!(error = %e, alarm = %t.event.alarm.alarm_id, "alarm transition not committed; reloading alarm state from the store");
                    match load_manager(&store) {
                        Ok(m) => manager = m,
                        Err(e) => {
                            tracing::error!(error = %e, "cannot reload alarm state; keeping the in-memory state")
                        }
                    }
                }
            }
        }
        if let Some(ticket) = last_ticket {
            store.durable(ticket).await;
        }
        for event in committed.drain(..) {
            metrics
                .alarm_transitions
                .with_label_values(&[kind_label(&event)])
                .inc();
            tracing::info!(
                seq = event.seq,
                alarm = %event.alarm.alarm_id,
                device = %event.alarm.device,
                object = %event.alarm.object,
                severity = event.alarm.perceived_severity.name(),
                kind = kind_label(&event),
                "{}", event.alarm.additional_text
            );
            // No subscriber is fine: the store and outbox already hold the event.
            let _ = events.send(event);
        }
        metrics.alarm_active.set(manager.active_count() as i64);
    }
}

fn kind_label(event: &AlarmEvent) -> &'static str {
    use crate::model::TransitionKind::*;
    match event.kind {
        Raised => "raised",
        Updated => "updated",
        Escalated => "escalated",
        DeEscalated => "de_escalated",
        Acknowledged => "acknowledged",
        Unacknowledged => "unacknowledged",
        Cleared => "cleared",
    }
}
