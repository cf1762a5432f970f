//! noctua: a network fault-management daemon.
//!
//! The modules follow the data-flow picture in the README: ingest → detect → alarm → store →
//! northbound, wired together by [`daemon`].

pub mod alarm;
pub mod config;
pub mod daemon;
pub mod detect;
pub mod fault;
pub mod ingest;
pub mod model;
pub mod northbound;
pub mod store;
