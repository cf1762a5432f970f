//! noctua: a network fault-management daemon.
//!
//! The modules are the floors of the design page, ground first: each imports only from its own
//! floor and below (checked by `tests/layers.rs`).
//!
//! 1. [`model`], [`telemetry`], [`message`]: the domain words, the metrics and their label sets,
//!    and what flows between the stages.
//! 2. [`config`]: types, lookup, validation and profiles.
//! 3. [`detect`], [`alarm`], [`fault`], [`cluster`]: pure cores, time passed in.
//! 4. [`ingest`], [`store`], [`northbound`], [`fleet`]: the edges.
//! 5. [`pipeline`] (stage tasks, channels, replay) and [`daemon`] (the process).

pub mod action;
pub mod alarm;
pub mod cluster;
pub mod config;
pub mod daemon;
pub mod detect;
pub mod fault;
pub mod fleet;
pub mod forecast;
pub mod impact;
pub mod ingest;
pub mod message;
pub mod model;
pub mod northbound;
pub mod pipeline;
pub mod store;
pub mod telemetry;
