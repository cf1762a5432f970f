//! The daemon's own sections: `[store]`, `[http]`, `[pipeline]` and `[mqtt]`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::Secret;

/// `[store]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct StoreConfig {
    /// Directory of the sled database. Relative paths are under `$STATE_DIRECTORY` when systemd
    /// sets it, else the working directory.
    pub path: PathBuf,
    /// Group commit: writes are flushed at most this often; a waiting writer waits at most this.
    #[serde(with = "humantime_serde")]
    pub flush_interval: Duration,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from("noctua-data"),
            flush_interval: Duration::from_millis(10),
        }
    }
}

impl StoreConfig {
    /// The store directory, resolving a relative path against systemd's state directory.
    pub fn resolved_path(&self, state_directory: Option<&Path>) -> PathBuf {
        match state_directory {
            Some(dir) if self.path.is_relative() => dir.join(&self.path),
            _ => self.path.clone(),
        }
    }
}

/// `[console]`: how the web console presents changes.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct ConsoleConfig {
    /// How long a new, escalated or cleared alarm stays highlighted.
    #[serde(with = "humantime_serde")]
    pub highlight: Duration,
    /// How long a cleared alarm stays in the list, so a clear is seen and not just missed.
    #[serde(with = "humantime_serde")]
    pub cleared_linger: Duration,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        Self {
            highlight: Duration::from_secs(15),
            cleared_linger: Duration::from_secs(300),
        }
    }
}

/// `[http]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct HttpConfig {
    /// Listen address; loopback by default because writes are only token-protected.
    pub listen: SocketAddr,
    /// Bearer token for write endpoints, inline.
    pub token: Option<Secret>,
    /// Bearer token for write endpoints, read from a file.
    pub token_file: Option<PathBuf>,
    /// Connections served at once; past it a small reserve answers only health and metrics,
    /// and past that a connection is closed at once.
    pub max_connections: usize,
    /// Live-stream (SSE) clients at once; past it a new one gets 503.
    pub max_stream_clients: usize,
    /// Time a client has to send a request's headers, counted from the connection (or the
    /// previous response, on a kept-alive one): slow or idle clients give their slot back.
    #[serde(with = "humantime_serde")]
    pub header_timeout: Duration,
    /// Time a request (body included) may take before a 408; the live stream is exempt.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 9617)),
            token: None,
            token_file: None,
            max_connections: 1024,
            max_stream_clients: 256,
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// `[pipeline]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct PipelineConfig {
    /// Samples queued between ingest and detection; beyond it ingest drops and counts.
    pub sample_queue: usize,
    /// Verdicts queued between detection and the alarm manager.
    pub verdict_queue: usize,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            sample_queue: 65_536,
            verdict_queue: 4_096,
        }
    }
}

/// `[mqtt]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct MqttConfig {
    /// Whether to publish.
    pub enabled: bool,
    /// Broker `host:port`.
    pub broker: String,
    /// Client id; must be stable for the persistent session.
    pub client_id: String,
    /// Topic prefix.
    pub prefix: String,
    /// Keepalive interval.
    #[serde(with = "humantime_serde")]
    pub keepalive: Duration,
    /// User name.
    pub username: Option<String>,
    /// Password, inline.
    pub password: Option<Secret>,
    /// Password, from a file.
    pub password_file: Option<PathBuf>,
    /// Most transitions kept for the broker while it is away; beyond it the oldest are dropped
    /// (and counted).
    pub outbox_limit: usize,
    /// CA certificates (PEM) to verify the broker with; setting it turns TLS on. For a broker
    /// with a public certificate: `/etc/ssl/certs/ca-certificates.crt`.
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM), for brokers that require one; needs `key-file`.
    pub cert_file: Option<PathBuf>,
    /// Client private key (PEM, PKCS#8 or RSA); needs `cert-file`.
    pub key_file: Option<PathBuf>,
}

impl Default for MqttConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            broker: "127.0.0.1:1883".to_owned(),
            client_id: "noctua".to_owned(),
            prefix: "noctua".to_owned(),
            keepalive: Duration::from_secs(30),
            username: None,
            password: None,
            password_file: None,
            outbox_limit: 100_000,
            ca_file: None,
            cert_file: None,
            key_file: None,
        }
    }
}

impl MqttConfig {
    /// `broker` split into host and port.
    pub fn broker_address(&self) -> Option<(String, u16)> {
        let (host, port) = self.broker.trim().rsplit_once(':')?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        (!host.is_empty()).then(|| Some((host.to_owned(), port.parse().ok()?)))?
    }
}
