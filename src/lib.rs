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
//! - `forward`: the outbox of the local store delivered to the central PostgreSQL store.
//! - `journal`: samples spilled when the store fails at shutdown, merged at the next start.
//! - `store`: the store interface, the SQLite store and the central PostgreSQL store.
//! - `rollup`: hourly and daily rollup levels, which level answers a range, retention.
//! - `period`, `report`, `units`: reports over a period.
//! - `customer`: which customer a usage row belongs to.
//! - `quota`: allotments, billing periods, ok/warn/over states and their events.
//! - `hooks`: external programs run as argv on events, off the packet path.
//! - `guard`: the layer-2 guard (MAC flooding, ARP spoofing, spoofed sources) and its events.
//! - `shape`: tc/iptables shaping of customers (plan, apply, clear).
//! - `quantity`: tc's rates, sizes and durations.
//! - `graph`: usage graphs (PNG, SVG) drawn with an embedded font; `site`: the static site.
//! - `status`: what a running collector shows (last interval, totals since start, flushes).
//! - `web`: the dashboard, the JSON API and `/metrics` (axum), its access control and TLS.
//! - `names`: names shown next to addresses: the config's, then reverse DNS (never waited for by a page).
//! - `privilege`: the service account, dropping root after the capture handles are open.
//! - `preflight`: checks before capture starts (interfaces, a writable store).
//! - `cdf`: BandwidthD's CDF log lines, read (`import-cdf`) and written (`report --format cdf`).
//! - `docs`: man pages and completions; `logging`: journald-friendly log lines.
//! - `app`: wiring for `run`, `replay`, `serve`, `import-cdf`, `prune`, `passwd` and the customer commands.

pub mod account;
pub mod app;
pub mod capture;
pub mod cdf;
pub mod classify;
pub mod cli;
pub mod config;
pub mod counters;
pub mod customer;
pub mod docs;
pub mod flush;
pub mod forward;
pub mod graph;
pub mod guard;
pub mod hooks;
pub mod journal;
pub mod logging;
pub mod names;
pub mod parse;
pub mod period;
pub mod preflight;
pub mod privilege;
pub mod quantity;
pub mod quota;
pub mod report;
pub mod rollup;
pub mod shape;
pub mod site;
pub mod status;
pub mod store;
pub mod units;
pub mod usage;
pub mod web;
