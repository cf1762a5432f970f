//! The fleet's live transitions: every member's replicated transitions as they land on the
//! `NOCTUA_TRANSITIONS` stream, read through an ordered consumer from now on (the stream has
//! already dropped repeats), for the live stream's `scope=fleet`.

use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use futures_util::StreamExt;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::replicate::TRANSITIONS;
use crate::model::AlarmEvent;

/// Follows the stream into `out` until `cancel`; after a failure (the stream not made yet,
/// NATS away), again `every` later, from what is new then.
pub async fn run(
    client: async_nats::Client,
    out: broadcast::Sender<AlarmEvent>,
    every: Duration,
    cancel: CancellationToken,
) {
    loop {
        match follow(&client, &out, &cancel).await {
            Ok(()) => return,
            Err(e) => tracing::debug!(error = %e, "fleet transitions not followed yet"),
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}

async fn follow(
    client: &async_nats::Client,
    out: &broadcast::Sender<AlarmEvent>,
    cancel: &CancellationToken,
) -> Result<(), String> {
    let js = jetstream::new(client.clone());
    let stream = js
        .get_stream(TRANSITIONS)
        .await
        .map_err(|e| e.to_string())?;
    let config = consumer::push::OrderedConfig {
        deliver_subject: client.new_inbox(),
        deliver_policy: consumer::DeliverPolicy::New,
        ..Default::default()
    };
    let consumer = stream
        .create_consumer(config)
        .await
        .map_err(|e| e.to_string())?;
    let mut messages = consumer.messages().await.map_err(|e| e.to_string())?;
    loop {
        tokio::select! {
            () = cancel.cancelled() => return Ok(()),
            next = messages.next() => match next {
                Some(Ok(m)) => match serde_json::from_slice::<AlarmEvent>(&m.payload) {
                    // Nobody listening is fine: the send only fails without receivers.
                    Ok(e) => drop(out.send(e)),
                    Err(e) => tracing::warn!(subject = %m.subject, error = %e, "a fleet transition that is not one"),
                },
                Some(Err(e)) => return Err(e.to_string()),
                None => return Err("the consumer ended".to_owned()),
            }
        }
    }
}
