//! NetFlow/IPFIX templates shared through the `noctua_templates` bucket, so a datagram that
//! reaches any member (behind a UDP load balancer, say) is decoded there even when its
//! exporter announced the template to another: each member puts the templates its collector
//! learns, and hands its collector the ones the others put.

use std::time::Duration;

use async_nats::jetstream::{self, kv};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::bucket;
use crate::config::ClusterConfig;
use crate::ingest::netflow::decode::{TemplateChange, TemplateDef, TemplateKey};

/// The templates, one key per template (its store key, in hex).
pub const TEMPLATES: &str = "noctua_templates";

/// A template as shared: who learned it, and what it is.
#[derive(Serialize, Deserialize)]
struct Shared {
    member: String,
    def: TemplateDef,
}

/// The fleet's side of the collector's [`TemplateShare`](crate::ingest::netflow::TemplateShare).
pub struct Share {
    /// Template changes from this member's collector.
    pub learned: mpsc::UnboundedReceiver<Vec<TemplateChange>>,
    /// Templates other members learned, for this member's collector.
    pub heard: mpsc::Sender<Vec<TemplateDef>>,
}

/// Shares templates until `cancel`; while NATS is away, tries again every heartbeat (the
/// bucket's watch then delivers every template again).
pub async fn run(
    client: async_nats::Client,
    c: ClusterConfig,
    mut share: Share,
    cancel: CancellationToken,
) {
    // Changes not yet put: a template is reported once, when it is new or changed.
    let mut unshared = Vec::new();
    loop {
        match follow(&client, &c, &mut share, &mut unshared, &cancel).await {
            Ok(()) => return,
            Err(e) => tracing::debug!(error = %e, "NetFlow templates not shared yet"),
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(c.heartbeat) => {}
        }
    }
}

fn key_of(key: &TemplateKey) -> String {
    key.store_key().iter().map(|b| format!("{b:02x}")).collect()
}

async fn follow(
    client: &async_nats::Client,
    c: &ClusterConfig,
    share: &mut Share,
    unshared: &mut Vec<TemplateChange>,
    cancel: &CancellationToken,
) -> Result<(), String> {
    let js = jetstream::new(client.clone());
    let bucket = bucket(&js, TEMPLATES, Duration::ZERO, c.replicas)
        .await
        .map_err(|e| e.to_string())?;
    let mut watch = bucket
        .watch_with_history(">")
        .await
        .map_err(|e| e.to_string())?;
    loop {
        put(&bucket, &c.name, unshared).await?;
        tokio::select! {
            () = cancel.cancelled() => return Ok(()),
            changes = share.learned.recv() => match changes {
                Some(changes) => unshared.extend(changes),
                None => return Ok(()),
            },
            entry = watch.next() => match entry {
                Some(Ok(e)) if e.operation == kv::Operation::Put => {
                    match serde_json::from_slice::<Shared>(&e.value) {
                        Ok(s) if s.member != c.name => {
                            if share.heard.send(vec![s.def]).await.is_err() {
                                return Ok(());
                            }
                        }
                        Ok(_) => {}
                        Err(err) => tracing::warn!(key = %e.key, error = %err, "a shared NetFlow template that is not one"),
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.to_string()),
                None => return Err("the templates' watch ended".to_owned()),
            }
        }
    }
}

/// Puts `unshared` in order, each gone from it once put.
async fn put(
    bucket: &kv::Store,
    me: &str,
    unshared: &mut Vec<TemplateChange>,
) -> Result<(), String> {
    while let Some(change) = unshared.first() {
        match change {
            TemplateChange::Learned(def) => {
                let shared = Shared {
                    member: me.to_owned(),
                    def: def.clone(),
                };
                let body = serde_json::to_vec(&shared).map_err(|e| e.to_string())?;
                bucket
                    .put(key_of(&def.key), body.into())
                    .await
                    .map_err(|e| e.to_string())?;
            }
            // Another member's copy goes when its exporter announces the template again.
            TemplateChange::Withdrawn(key) => {
                bucket
                    .delete(key_of(key))
                    .await
                    .map_err(|e| e.to_string())?;
            }
        }
        unshared.remove(0);
    }
    Ok(())
}
