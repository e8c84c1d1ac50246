//! bwacct: bandwidth accounting by IP header.
//!
//! Data flows one way: capture → parse → classify → counters → flush → store → report.
//!
//! Layout:
//! - `cli`: the command line.
//! - `docs`: manual pages and shell completions generated from `cli`.
//! - `logging`: log lines on standard error, journald-friendly under systemd.
//! - `config`: the TOML file, validated once; errors name file, line and key.
//! - `capture`: libpcap sources, live (`capture::live`) and files (`capture::file`).
//! - `parse`: link layers and the outermost IP header, zero-copy, never panics.
//! - `classify`: local networks and traffic classes.
//! - `account`: the packet path, frame → counters.
//! - `counters`: lock-free per-host tables and their drain.
//! - `usage`: the per-host value type shared downstream.
//! - `flush`: drained counters → store, with retries.
//! - `store`: the store interface and the SQLite store.
//! - `rollup`: hourly and daily rollup levels, which level answers a range, retention.
//! - `period`, `report`, `units`: reports over a period.
//! - `cdf`: BandwidthD's CDF log lines, read (`import-cdf`) and written (`report --format cdf`).
//! - `app`: wiring for `run` and `replay`.
//!   Also `import-cdf` and `prune`; reports are also CDF and HTML (`report::html`).

pub mod account;
pub mod app;
pub mod capture;
pub mod cdf;
pub mod classify;
pub mod cli;
pub mod config;
pub mod counters;
pub mod docs;
pub mod flush;
pub mod logging;
pub mod parse;
pub mod period;
pub mod report;
pub mod rollup;
pub mod store;
pub mod units;
pub mod usage;
