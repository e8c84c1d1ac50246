//! Wiring: builds the pipeline (counters, local networks, port table) from the configuration and
//! runs the commands that move packets: `run` (live) and `replay` (files).

mod import_cdf;
mod prune;
mod replay;
mod run;

pub use import_cdf::{import_cdf, ImportError, ImportOptions, ImportSummary};
pub use prune::{prune, PruneSummary};
pub use replay::{replay, ReplaySummary};
pub use run::{run, RunSummary};

use crate::account::{Accountant, CountMode};
use crate::capture::CaptureError;
use crate::classify::{LocalNets, PortTable};
use crate::config::{self, ConfigError};
use crate::counters::Layout;
use crate::parse::LinkType;
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
    #[error(transparent)]
    Import(#[from] ImportError),
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

    /// The packet processor for a source of this link type.
    pub fn accountant(&self, link: LinkType) -> Accountant {
        Accountant::new(
            link,
            Arc::clone(&self.nets),
            Arc::clone(&self.ports),
            self.mode,
        )
    }
}
