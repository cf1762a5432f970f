//! What the outside world sees: the HTTP API and its live stream, the web console, MQTT, and
//! the CLI's client.

pub mod actions;
pub mod api;
pub mod audit;
pub mod backup;
pub mod capacity;
pub mod client;
pub mod complaints;
pub mod console;
pub mod crm;
pub mod http;
pub mod impact;
pub mod incident;
pub mod mqtt;
pub mod page;
pub mod params;
pub mod records;
pub mod reply;
pub mod state;
pub mod stream;
