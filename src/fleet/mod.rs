//! The cluster's edge: the NATS JetStream servers that hold who is alive and who owns which
//! device ([`membership`]). Only used with `[cluster] enabled`; a single instance never
//! connects to NATS.

pub mod forward;
pub mod membership;
pub mod replicate;
pub mod tail;
pub mod templates;

use std::path::PathBuf;
use std::time::Duration;

use async_nats::ServerAddr;
use async_nats::jetstream::{self, kv};

use crate::config::ClusterConfig;

/// Why the cluster could not be joined.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// A `[cluster] nats` entry is not a server address.
    #[error("[cluster] nats: {server:?} is not a NATS server address: {reason}")]
    Address {
        /// The entry as written.
        server: String,
        /// What the client said.
        reason: String,
    },
    /// The credentials file could not be read.
    #[error("[cluster] credentials-file {}: {source}", path.display())]
    Credentials {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// No connection could be set up.
    #[error("cannot connect to NATS ({servers}): {reason}")]
    Connect {
        /// The servers tried.
        servers: String,
        /// What the client said.
        reason: String,
    },
    /// A JetStream bucket could not be opened or made.
    #[error("NATS JetStream bucket {bucket}: {reason}")]
    Bucket {
        /// The bucket.
        bucket: &'static str,
        /// What the server said.
        reason: String,
    },
}

/// A connection to the cluster's NATS servers. It reconnects by itself for as long as the
/// daemon runs; while it is away, [`membership`] stops working on devices once `dead-after`
/// has passed, because the others will have taken them.
pub async fn connect(c: &ClusterConfig) -> Result<async_nats::Client, FleetError> {
    let servers = c
        .nats
        .iter()
        .map(|s| {
            s.parse::<ServerAddr>().map_err(|e| FleetError::Address {
                server: s.clone(),
                reason: e.to_string(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut options = async_nats::ConnectOptions::new()
        .name(format!("noctua {}", c.name))
        .connection_timeout(Duration::from_secs(5))
        // The first connection is retried in the background too: an instance starting while
        // NATS is away owns nothing until it is back, and then joins.
        .retry_on_initial_connect();
    if let Some(path) = &c.credentials_file {
        options =
            options
                .credentials_file(path)
                .await
                .map_err(|source| FleetError::Credentials {
                    path: path.clone(),
                    source,
                })?;
    }
    if let Some(ca) = &c.ca_file {
        options = options.require_tls(true).add_root_certificates(ca.clone());
    }
    if let (Some(cert), Some(key)) = (&c.cert_file, &c.key_file) {
        options = options.add_client_certificate(cert.clone(), key.clone());
    }
    options
        .connect(servers)
        .await
        .map_err(|e| FleetError::Connect {
            servers: c.nats.join(", "),
            reason: e.to_string(),
        })
}

/// The next entry of a bucket's watch, or never while there is none (it is made again on the
/// next tick of the loop that selects on this).
async fn next_entry(
    watch: &mut Option<async_nats::jetstream::kv::Watch>,
) -> Option<Result<async_nats::jetstream::kv::Entry, async_nats::jetstream::kv::WatcherError>> {
    use futures_util::StreamExt;
    match watch.as_mut() {
        Some(w) => w.next().await,
        None => std::future::pending().await,
    }
}

/// A device's name as a key-value key: letters, digits, `-` and `_` as they are, any other
/// byte as `=` and two hex digits (NATS keys allow few characters, and `.` separates tokens).
pub fn device_key(device: &str) -> String {
    let mut key = String::with_capacity(device.len());
    for b in device.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            key.push(b as char);
        } else {
            key.push_str(&format!("={b:02X}"));
        }
    }
    key
}

/// The KV bucket `name`, made (one value per key, `replicas` copies, values kept for
/// `max_age`, zero for ever) if this is the cluster's first start.
pub(crate) async fn bucket(
    js: &jetstream::Context,
    name: &'static str,
    max_age: Duration,
    replicas: usize,
) -> Result<kv::Store, FleetError> {
    if let Ok(store) = js.get_key_value(name).await {
        return Ok(store);
    }
    js.create_key_value(kv::Config {
        bucket: name.to_owned(),
        history: 1,
        max_age,
        num_replicas: replicas,
        ..Default::default()
    })
    .await
    .map_err(|e| FleetError::Bucket {
        bucket: name,
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::device_key;
    use proptest::prelude::*;

    proptest! {
        /// Distinct device names never share a key, and every key is one NATS accepts.
        #[test]
        fn device_keys_are_distinct_and_valid(a in ".{0,20}", b in ".{0,20}") {
            let (ka, kb) = (device_key(&a), device_key(&b));
            prop_assert_eq!(a == b, ka == kb);
            prop_assert!(ka.bytes().all(|c| c.is_ascii_alphanumeric() || b"-_=".contains(&c)));
        }
    }

    #[test]
    fn a_plain_name_is_its_own_key() {
        assert_eq!(device_key("gnb-0042_a"), "gnb-0042_a");
        assert_eq!(device_key("core r1.x"), "core=20r1=2Ex");
    }
}
