//! End-to-end tests: the `bwacct` binary on real captures, live traffic in network namespaces,
//! the dashboard over HTTP and in a real browser, and its command line. One test binary,
//! grouped by theme.

mod access;
mod browser;
mod common;
mod corpus;
mod live;
mod live_web;
mod names;
mod quota;
mod run_quota;
mod shaping;
mod web;
