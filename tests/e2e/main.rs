//! End-to-end tests: the `bwacct` binary on real captures, live traffic in network namespaces,
//! the dashboard over HTTP and in a real browser, and its command line. One test binary,
//! grouped by theme.

mod browser;
mod common;
mod corpus;
mod guard;
mod live;
mod live_web;
mod pcapgen;
mod quota;
mod run_quota;
mod shaping;
mod web;
