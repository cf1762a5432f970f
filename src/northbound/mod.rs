//! What the outside world sees: metrics, the HTTP API, and (later) MQTT.

pub mod api;
pub mod client;
pub mod http;
pub mod metrics;
pub mod mqtt;
pub mod stream;
