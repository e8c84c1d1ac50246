//! End-to-end tests: the `bwacct` binary on real captures, live traffic in network namespaces,
//! and its command line. One test binary, grouped by theme.

mod cdf;
mod common;
mod corpus;
mod live;
mod reports;
mod rollups;
mod service;
