//! End-to-end tests: the `bwacct` binary on real captures, live traffic in network namespaces,
//! and its command line. One test binary, grouped by theme.

mod common;
mod config_checks;
mod corpus;
mod durability;
mod live;
mod privilege;
mod real_corpus;
