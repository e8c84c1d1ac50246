//! The store: where flushed intervals go and where reports read from. `Store` is the interface;
//! `sqlite` is the embedded default. Column names and migrations are in `schema`. Every store
//! keeps the rollup levels of [`crate::rollup`] and answers a range from the coarsest that
//! answers it exactly.

pub mod central;
pub mod guard;
pub mod postgres;
pub mod quota;
mod schema;
pub mod series;
pub mod sqlite;

pub use schema::COLUMNS;
pub use series::{Series, SeriesQuery};

use crate::capture::live::KernelStats;
use crate::counters::PacketStats;
use crate::rollup::{self, Level, Piece, Retention, Watermarks};
use crate::usage::{Host, Usage};
use std::collections::HashMap;

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
        let mut by_host: HashMap<Host, Usage> =
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

impl Query {
    /// The same question over one piece of a plan.
    pub fn piece(&self, p: &Piece) -> Query {
        Query {
            from: p.from,
            to: p.to,
            sensor: self.sensor.clone(),
        }
    }
}

/// Statistics summed over a range.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RangeStats {
    pub packets: PacketStats,
    pub kernel: KernelStats,
}

impl RangeStats {
    pub fn merge(&mut self, o: &RangeStats) {
        self.packets.merge(&o.packets);
        self.kernel.merge(&o.kernel);
    }
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
    #[error("there is no store at {0} yet: `bwacct run`, `replay` or `import-cdf` make it")]
    Missing(String),
    #[error("{path}: {message}")]
    BadOutbox { path: String, message: String },
    /// A PostgreSQL error, with its causes; `target` never shows the password.
    #[error("PostgreSQL store {target}: {message}")]
    Postgres {
        target: String,
        message: String,
        /// The server or the network is away (worth retrying), rather than a refused statement.
        transient: bool,
    },
    #[error("PostgreSQL store {target}: {message}")]
    PostgresSetup { target: String, message: String },
    #[error("PostgreSQL store {target} has schema version {found}, newer than this bwacct knows ({known}): upgrade bwacct")]
    PostgresTooNew {
        target: String,
        found: i64,
        known: i64,
    },
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
            StoreError::Postgres { transient, .. } => *transient,
            _ => false,
        }
    }
}

/// What every store does: take flushed intervals, keep the rollup levels (a periodic
/// [`Store::roll_up`], plus late samples added to the levels already past them), answer usage
/// over a range, and forget what is older than the retention.
pub trait Store: Send {
    /// Writes one interval in one transaction, adding to what the store already holds for the
    /// same sensor, interval and host (a restart in the middle of an interval merges). A sample
    /// below a rollup level's watermark is added to that level in the same transaction.
    fn write(&mut self, sample: &Sample) -> Result<(), StoreError>;

    /// Sums whole buckets of samples into the rollup levels, oldest first, for buckets that end
    /// at or before `complete_before` (the open interval's hour while capturing, the wall
    /// clock's hour after a replay or an import); at most `max_buckets` buckets, one short
    /// transaction each. Returns the buckets rolled up (0: up to date).
    fn roll_up(&mut self, complete_before: i64, max_buckets: usize) -> Result<usize, StoreError>;

    /// Usage of the selected hosts summed per time bucket (graphs, the series API).
    fn series(&self, q: &SeriesQuery) -> Result<Series, StoreError>;

    /// The layer-2 guard's tables and the list of all events, for stores that keep them.
    fn guard(&self) -> Option<&dyn guard::GuardStore> {
        None
    }
    /// Up to where each rollup level holds every sample.
    fn watermarks(&self) -> Result<Watermarks, StoreError>;

    /// Usage per host read from one level only: the rows whose bucket starts in the range.
    fn usage_at(&self, level: Level, q: &Query) -> Result<Vec<(Host, Usage)>, StoreError>;

    /// Usage per host over a range, summed across sensors unless the query names one, read from
    /// the coarsest levels that answer it exactly ([`rollup::plan`]).
    fn usage_by_host(&self, q: &Query) -> Result<Vec<(Host, Usage)>, StoreError> {
        planned_usage(self, q)
    }

    /// Usage of every host together (or of one host) per bucket of one level, in time order:
    /// `(bucket start, usage)`. For graphs.
    fn series_at(
        &self,
        level: Level,
        q: &Query,
        host: Option<&Host>,
    ) -> Result<Vec<(i64, Usage)>, StoreError>;

    /// Capture statistics of one level over a range.
    fn stats_at(&self, level: Level, q: &Query) -> Result<RangeStats, StoreError>;

    /// Capture statistics summed over a range, from the coarsest levels that answer it.
    fn stats(&self, q: &Query) -> Result<RangeStats, StoreError> {
        planned_stats(self, q)
    }

    /// Deletes at most about `max_rows` rows older than the retention of their level (never
    /// what a coarser level does not hold yet), in short transactions; returns how many went
    /// (0: nothing is left to prune).
    fn prune(
        &mut self,
        retention: &Retention,
        now: i64,
        max_rows: usize,
    ) -> Result<usize, StoreError>;

    /// The start of what a level still holds after pruning (`None`: it was never pruned).
    fn kept_since(&self, level: Level) -> Result<Option<i64>, StoreError>;
}

/// Usage per host over a range from the levels [`rollup::plan`] picks (what
/// [`Store::usage_by_host`] does unless a store wraps it, e.g. in one read transaction).
pub fn planned_usage<S: Store + ?Sized>(
    store: &S,
    q: &Query,
) -> Result<Vec<(Host, Usage)>, StoreError> {
    let marks = store.watermarks()?;
    // whole months less their edges, where every level read still holds its part
    if let Some((add, away)) = rollup::plan_less_edges(q.from, q.to, &marks) {
        if kept(store, add.iter().chain(&away))? {
            let mut sum = summed(store, q, &add)?;
            for p in &away {
                for (host, usage) in store.usage_at(p.level, &q.piece(p))? {
                    if let Some(s) = sum.get_mut(&host) {
                        s.subtract(&usage);
                        // an address seen only outside the range
                        if *s == Usage::default() {
                            sum.remove(&host);
                        }
                    }
                }
            }
            return Ok(sum.into_iter().collect());
        }
    }
    let pieces = rollup::plan(q.from, q.to, &marks);
    if let [one] = pieces.as_slice() {
        return store.usage_at(one.level, &q.piece(one));
    }
    Ok(summed(store, q, &pieces)?.into_iter().collect())
}

/// Usage per host summed over `pieces`.
fn summed<S: Store + ?Sized>(
    store: &S,
    q: &Query,
    pieces: &[Piece],
) -> Result<HashMap<Host, Usage>, StoreError> {
    let mut sum: HashMap<Host, Usage> = HashMap::new();
    for p in pieces {
        for (host, usage) in store.usage_at(p.level, &q.piece(p))? {
            sum.entry(host).or_default().merge(&usage);
        }
    }
    Ok(sum)
}

/// Whether no level was pruned where one of `pieces` reads it.
fn kept<'a, S: Store + ?Sized>(
    store: &S,
    pieces: impl Iterator<Item = &'a Piece>,
) -> Result<bool, StoreError> {
    for p in pieces {
        if store.kept_since(p.level)?.is_some_and(|kept| p.from < kept) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Capture statistics over a range from the levels [`rollup::plan`] picks.
pub fn planned_stats<S: Store + ?Sized>(store: &S, q: &Query) -> Result<RangeStats, StoreError> {
    let mut sum = RangeStats::default();
    for p in rollup::plan(q.from, q.to, &store.watermarks()?) {
        sum.merge(&store.stats_at(p.level, &q.piece(&p))?);
    }
    Ok(sum)
}

#[cfg(test)]
mod host_reads_tests;
#[cfg(test)]
mod monthly_tests;
#[cfg(test)]
mod rollup_tests;
#[cfg(test)]
mod tests;
