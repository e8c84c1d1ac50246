//! End-to-end tests: the `bwacct` binary on real captures, live traffic in network namespaces,
//! the dashboard over HTTP and in a real browser, and its command line. One test binary,
//! grouped by theme.

mod access;
mod browser;
mod cdf;
mod central;
mod central_live;
mod central_months;
mod central_tls;
mod common;
mod config_checks;
mod corpus;
mod durability;
mod fanout;
mod guard;
mod live;
mod live_web;
mod names;
mod pcapgen;
mod pg;
mod privilege;
mod quota;
mod real_corpus;
mod reports;
mod rollups;
mod run_quota;
mod service;
mod shaping;
mod web;
mod web_exposed;
mod web_hostile;
mod web_limits;
