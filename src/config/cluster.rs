//! `[cluster]`: several noctua instances sharing the devices out over a NATS JetStream cluster.
//! Off by default; a single instance needs none of it.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::load::{Problems, root};

/// `[cluster]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct ClusterConfig {
    /// Whether this instance is a member of a cluster.
    pub enabled: bool,
    /// The NATS servers (`nats://host:port` or `host:port`); any one reached is enough, the
    /// client learns the rest.
    pub nats: Vec<String>,
    /// This instance's name: unique in the cluster and stable across restarts, because
    /// ownership is hashed from it.
    pub name: String,
    /// The region this instance serves first: devices of this site go to members of it.
    pub site: Option<String>,
    /// How often this instance says it is alive.
    #[serde(with = "humantime_serde")]
    pub heartbeat: Duration,
    /// A member not heard from for this long is dead and its devices move.
    #[serde(with = "humantime_serde")]
    pub dead_after: Duration,
    /// Copies JetStream keeps of the cluster's buckets and streams (3 survives one server lost).
    pub replicas: usize,
    /// NATS credentials file (`.creds`: a user JWT and its nkey seed).
    pub credentials_file: Option<PathBuf>,
    /// CA certificates (PEM) to verify the servers with; setting it turns TLS on.
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM), for servers that require one; needs `key-file`.
    pub cert_file: Option<PathBuf>,
    /// Client private key (PEM); needs `cert-file`.
    pub key_file: Option<PathBuf>,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            nats: vec!["nats://127.0.0.1:4222".to_owned()],
            name: String::new(),
            site: None,
            heartbeat: Duration::from_secs(2),
            dead_after: Duration::from_secs(10),
            replicas: 3,
            credentials_file: None,
            ca_file: None,
            cert_file: None,
            key_file: None,
        }
    }
}

/// What NATS allows in a key-value key or a subject token, besides alphanumerics; a member's
/// name is both.
const NAME_PUNCTUATION: &[char] = &['-', '_'];

/// Problems of `[cluster]` beyond ranges, only when it is enabled.
pub(super) fn validate(c: &ClusterConfig, problems: &mut Problems) {
    if !c.enabled {
        return;
    }
    let at = |k| root("cluster").key(k);
    let name_ok = !c.name.is_empty()
        && c.name.len() <= 64
        && c.name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || NAME_PUNCTUATION.contains(&ch));
    if !name_ok {
        problems.push((
            at("name"),
            "expected this instance's name: 1 to 64 letters, digits, '-' or '_'".to_owned(),
        ));
    }
    if c.nats.is_empty() || c.nats.iter().any(|s| s.trim().is_empty()) {
        problems.push((
            at("nats"),
            "expected at least one NATS server, as \"nats://host:port\"".to_owned(),
        ));
    }
    if c.dead_after < 3 * c.heartbeat {
        problems.push((
            at("dead-after"),
            "expected at least three heartbeats, so one late heartbeat is not a death".to_owned(),
        ));
    }
    if !(1..=5).contains(&c.replicas) {
        problems.push((
            at("replicas"),
            "expected 1 to 5 copies (JetStream's limit)".to_owned(),
        ));
    }
}
