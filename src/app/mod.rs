//! Wiring: builds the pipeline (counters, local networks, port table) from the configuration and
//! runs the commands: `run` (live), `replay` (files), `serve` (the dashboard alone) and `graph`
//! (one picture or the static site).

pub mod customers;
mod graph;
mod reload;
mod replay;
mod run;
mod serve;

pub use graph::{graph, GraphOutput};
pub use replay::{replay, ReplaySummary};
pub use run::{run, RunSummary};
pub use serve::serve;

use crate::account::{Accountant, CountMode};
use crate::capture::CaptureError;
use crate::classify::{LocalNets, PortTable};
use crate::config::{self, ConfigError};
use crate::counters::Layout;
use crate::guard;
use crate::quota::QuotaError;
use crate::store::StoreError;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Capture(#[from] CaptureError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{count} interval(s) could not be written to the store and are lost: {store}")]
    Unflushed { count: usize, store: String },
    #[error("the counts are stored, but the quota check failed: {0}")]
    Quota(#[from] QuotaError),
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Graph(#[from] crate::graph::GraphError),
    #[error(transparent)]
    Site(#[from] crate::site::SiteError),
    #[error(transparent)]
    Period(#[from] crate::period::PeriodError),
    #[error(transparent)]
    Guard(#[from] guard::service::GuardError),
    #[error("{0}")]
    Usage(String),
}

/// The parts of the packet path that every source shares.
pub struct Pipeline {
    nets: Arc<LocalNets>,
    ports: Arc<PortTable>,
    mode: CountMode,
}

/// IPv4 networks with at most this many host bits are counted in direct-indexed tables.
const DIRECT_MAX_BITS: u8 = 16;

/// The counter layout the accounting settings ask for.
pub fn layout(a: &config::Accounting) -> Layout {
    Layout {
        nets: a.local.clone(),
        ipv6_prefix: a.ipv6_prefix,
        max_hosts: a.max_hosts,
        direct_max_bits: DIRECT_MAX_BITS,
    }
}

impl Pipeline {
    pub fn new(a: &config::Accounting) -> Self {
        Self {
            nets: Arc::new(LocalNets::new(&a.local, a.ipv6_prefix)),
            ports: Arc::new(PortTable::new(&a.ports)),
            mode: a.count,
        }
    }

    /// The packet processor.
    pub fn accountant(&self) -> Accountant {
        Accountant::new(Arc::clone(&self.nets), Arc::clone(&self.ports), self.mode)
    }

    /// A layer-2 observer for frames arriving on `port`, counting spoofed bytes as the
    /// accountant counts bytes.
    pub fn observer(&self, policy: &guard::Policy, port: &str) -> guard::Observer {
        guard::Observer::new(
            &policy.guard,
            Arc::clone(&policy.bound),
            Arc::clone(&self.nets),
            self.mode,
            port,
        )
    }
}
