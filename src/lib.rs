//! bwacct: bandwidth accounting by IP header.
//!
//! Data flows one way: capture → parse → classify → counters → flush → store → report.
//!
//! Layout:
//! - `cli`: the command line.
//! - `config`: the TOML file, validated once; errors name file, line and key.
//! - `capture`: libpcap sources, live (`capture::live`) and files (`capture::file`).
//! - `parse`: link layers and the outermost IP header, zero-copy, never panics.
//! - `classify`: local networks and traffic classes.
//! - `account`: the packet path, frame → counters.
//! - `counters`: lock-free per-host tables and their drain.
//! - `usage`: the per-host value type shared downstream.
//! - `flush`: drained counters → store, with retries.
//! - `journal`: samples spilled when the store fails at shutdown, merged at the next start.
//! - `store`: the store interface and the SQLite store.
//! - `period`, `report`, `units`: reports over a period.
//! - `app`: wiring for `run` and `replay`.
//! - `privilege`: the service account, dropping root after the capture handles are open.
//! - `preflight`: checks before capture starts (interfaces, a writable store).

pub mod account;
pub mod app;
pub mod capture;
pub mod classify;
pub mod cli;
pub mod config;
pub mod counters;
pub mod flush;
pub mod journal;
pub mod parse;
pub mod period;
pub mod preflight;
pub mod privilege;
pub mod report;
pub mod store;
pub mod units;
pub mod usage;
