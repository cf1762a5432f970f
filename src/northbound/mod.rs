//! What the outside world sees: metrics, the HTTP API, and (later) MQTT.

pub mod http;
pub mod metrics;
