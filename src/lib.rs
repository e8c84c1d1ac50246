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
//! - `store`: the store interface and the SQLite store.
//! - `period`, `report`, `units`: reports over a period.
//! - `customer`: which customer a usage row belongs to.
//! - `quota`: allotments, billing periods, ok/warn/over states and their events.
//! - `hooks`: external programs run as argv on events, off the packet path.
//! - `guard`: the layer-2 guard (MAC flooding, ARP spoofing, spoofed sources) and its events.
//! - `shape`: tc/iptables shaping of customers (plan, apply, clear).
//! - `quantity`: tc's rates, sizes and durations.
//! - `graph`: usage graphs (PNG, SVG) drawn with an embedded font; `site`: the static site.
//! - `status`: what a running collector shows (last interval, totals since start, flushes).
//! - `web`: the dashboard, the JSON API and `/metrics` (axum).
//! - `app`: wiring for `run`, `replay`, `serve` and the customer commands.

pub mod account;
pub mod app;
pub mod capture;
pub mod classify;
pub mod cli;
pub mod config;
pub mod counters;
pub mod customer;
pub mod flush;
pub mod graph;
pub mod guard;
pub mod hooks;
pub mod parse;
pub mod period;
pub mod quantity;
pub mod quota;
pub mod report;
pub mod shape;
pub mod site;
pub mod status;
pub mod store;
pub mod units;
pub mod usage;
pub mod web;
