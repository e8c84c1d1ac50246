//! Wiring: builds the pipeline (counters, local networks, port table) from the configuration and
//! runs the commands: `run` (live), `replay` (files), `serve` (the dashboard alone), `graph`
//! (one picture or the static site) and `passwd` (a dashboard user's hash).

pub mod customers;
mod forwarding;
mod graph;
mod import_cdf;
mod passwd;
mod prune;
mod reload;
mod replay;
mod run;
mod serve;

pub use forwarding::central_warnings;
pub use graph::{graph, GraphOutput};
pub use import_cdf::{import_cdf, ImportError, ImportOptions, ImportSummary};
pub use passwd::passwd;
pub use prune::{prune, PruneSummary};
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
    #[error("{count} interval(s) could not be written to the store {store} nor to its journal ({reason}): their counts are in the log above")]
    Unflushed {
        count: usize,
        store: String,
        reason: String,
    },
    #[error("the store {store} kept failing: {count} interval(s) are saved in {journal} and merged into the store at the next start")]
    Journaled {
        count: usize,
        store: String,
        journal: String,
    },
    #[error(transparent)]
    Privilege(#[from] crate::privilege::PrivilegeError),
    #[error(transparent)]
    Preflight(#[from] crate::preflight::PreflightError),
    #[error(transparent)]
    Import(#[from] ImportError),
    #[error(transparent)]
    Forward(#[from] crate::forward::ForwardError),
    #[error(transparent)]
    Auth(#[from] crate::web::auth::AuthError),
    #[error(transparent)]
    Tls(#[from] crate::web::tls::TlsError),
    #[error(transparent)]
    Names(#[from] crate::names::NamesError),
}

impl AppError {
    /// The error for what the flusher left behind, if anything.
    pub fn leftover(left: crate::flush::Leftover, store: &std::path::Path) -> Option<Self> {
        let store = store.display().to_string();
        match left {
            crate::flush::Leftover::Nothing => None,
            crate::flush::Leftover::Journaled { intervals, journal } => Some(Self::Journaled {
                count: intervals,
                store,
                journal: journal.display().to_string(),
            }),
            crate::flush::Leftover::Unwritten { intervals, reason } => Some(Self::Unflushed {
                count: intervals,
                store,
                reason,
            }),
        }
    }
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
