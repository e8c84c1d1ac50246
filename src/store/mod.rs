//! The store: where flushed intervals go and where reports read from. `Store` is the interface;
//! `sqlite` is the embedded default. Column names and migrations are in `schema`.

pub mod guard;
pub mod quota;
mod schema;
pub mod series;
pub mod sqlite;

pub use schema::COLUMNS;
pub use series::{Series, SeriesQuery};

use crate::capture::live::KernelStats;
use crate::counters::PacketStats;
use crate::usage::{Host, Usage};

/// One flushed interval of one sensor.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    pub sensor: String,
    /// Start of the interval, Unix seconds (UTC), aligned to `interval_s`.
    pub start: i64,
    pub interval_s: u32,
    pub hosts: Vec<(Host, Usage)>,
    pub stats: PacketStats,
    pub kernel: KernelStats,
}

impl Sample {
    /// Adds another sample of the same interval (a retry merged with newer counts).
    pub fn merge(&mut self, other: Sample) {
        let mut by_host: std::collections::HashMap<Host, Usage> =
            std::mem::take(&mut self.hosts).into_iter().collect();
        for (h, u) in other.hosts {
            by_host.entry(h).or_default().merge(&u);
        }
        self.hosts = by_host.into_iter().collect();
        self.stats.merge(&other.stats);
        self.kernel.merge(&other.kernel);
    }
}

/// A time range [from, to) in Unix seconds, and optionally one sensor.
#[derive(Debug, Clone)]
pub struct Query {
    pub from: i64,
    pub to: i64,
    pub sensor: Option<String>,
}

/// Statistics summed over a range.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RangeStats {
    pub packets: PacketStats,
    pub kernel: KernelStats,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the store's directory {path}: {source}")]
    Directory {
        path: String,
        source: std::io::Error,
    },
    #[error("SQLite store {path}: {source}")]
    Sqlite {
        path: String,
        source: rusqlite::Error,
    },
    #[error("store {path} has schema version {found}, newer than this bwacct knows ({known}): upgrade bwacct")]
    TooNew {
        path: String,
        found: i64,
        known: i64,
    },
    #[error("store {path}: bad address {addr:?} in the hosts table")]
    BadHost { path: String, addr: String },
    #[error("no such sensor {0:?} in the store")]
    NoSensor(String),
    #[error("the selection covers {hosts} stored hosts; at most {max} can be summed at once")]
    SelectionTooLarge { hosts: usize, max: usize },
}

impl StoreError {
    /// Busy, locked, full or read-only: worth retrying later without losing the counts.
    pub fn is_transient(&self) -> bool {
        use rusqlite::ErrorCode::*;
        match self {
            StoreError::Sqlite {
                source: rusqlite::Error::SqliteFailure(e, _),
                ..
            } => matches!(
                e.code,
                DatabaseBusy | DatabaseLocked | DiskFull | ReadOnly | SystemIoFailure | CannotOpen
            ),
            _ => false,
        }
    }
}

/// What every store does: take flushed intervals, answer usage over a range.
pub trait Store: Send {
    /// Writes one interval in one transaction, adding to what the store already holds for the
    /// same sensor, interval and host (a restart in the middle of an interval merges).
    fn write(&mut self, sample: &Sample) -> Result<(), StoreError>;

    /// Usage per host over a range, summed across sensors unless the query names one.
    fn usage_by_host(&self, q: &Query) -> Result<Vec<(Host, Usage)>, StoreError>;

    /// Capture statistics summed over a range.
    fn stats(&self, q: &Query) -> Result<RangeStats, StoreError>;

    /// Usage of the selected hosts summed per time bucket (graphs, the series API).
    fn series(&self, q: &SeriesQuery) -> Result<Series, StoreError>;

    /// The layer-2 guard's tables and the list of all events, for stores that keep them.
    fn guard(&self) -> Option<&dyn guard::GuardStore> {
        None
    }
}
