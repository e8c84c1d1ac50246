//! Flushing: turns drained counters into samples stamped with their interval and writes them to
//! the store. A failed write keeps the sample (merged with later ones of the same interval) and
//! retries with backoff, warning every time and erring once the memory held passes a bound;
//! capture never waits for the store. When it must stop with the store still failing, it spills
//! what it holds to the journal (`journal`), which the next start merges into the store.

use crate::journal;
use crate::rollup::Retention;
use crate::store::{Sample, Store, StoreError};
use crate::usage::{Host, Usage};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The start of the interval holding `ts` (Unix seconds), aligned on the UTC clock.
pub fn bucket_start(ts: i64, interval_s: u32) -> i64 {
    ts - ts.rem_euclid(i64::from(interval_s))
}

/// Memory held for retries above which every failure is logged as an error (the counts are
/// still kept: nothing is dropped). `[storage] max_pending_mib` sets it for `run`.
pub const DEFAULT_PENDING_BOUND: usize = 256 << 20;

/// Bytes one host row of a pending sample holds (the row and its share of the vector).
const ROW_BYTES: usize = std::mem::size_of::<(Host, Usage)>();

/// Rollup buckets per upkeep call: an hour of 100,000 hosts is a few seconds of work.
pub const UPKEEP_BUCKETS: usize = 2;
/// Rows pruned per upkeep call: a few short transactions.
pub const UPKEEP_ROWS: usize = 20_000;

/// What one upkeep call did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Upkeep {
    pub rolled: usize,
    pub pruned: usize,
}

impl Upkeep {
    /// Whether there may be more to do.
    pub fn busy(&self) -> bool {
        self.rolled == UPKEEP_BUCKETS || self.pruned >= UPKEEP_ROWS
    }
}

pub struct Flusher {
    store: Box<dyn Store>,
    pending: VecDeque<Sample>,
    failures: u32,
    /// Failed writes since start (for `/metrics`).
    errors: u64,
    next_retry: Option<Instant>,
    bound: usize,
    journal: Option<PathBuf>,
}

/// What was left when the flusher finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Leftover {
    /// Everything is in the store.
    Nothing,
    /// The store kept failing: these intervals are in the journal, merged at the next start.
    Journaled { intervals: usize, journal: PathBuf },
    /// Neither the store nor the journal could take them: their counts were logged (error
    /// level, one line per host) and are not in the store.
    Unwritten { intervals: usize, reason: String },
}

/// What one flush did.
#[derive(Debug, Clone, Copy, Default)]
pub struct FlushReport {
    pub written: usize,
    pub rows: usize,
    pub pending: usize,
    pub took: Duration,
}

impl Flusher {
    pub fn new(store: Box<dyn Store>) -> Self {
        Self {
            store,
            pending: VecDeque::new(),
            failures: 0,
            errors: 0,
            next_retry: None,
            bound: DEFAULT_PENDING_BOUND,
            journal: None,
        }
    }

    /// Memory held for retries above which failures are errors rather than warnings.
    pub fn with_memory_bound(mut self, bytes: usize) -> Self {
        self.bound = bytes;
        self
    }

    /// Spills to (and first recovers from) the journal at `path`: samples a previous run could
    /// not write are merged into the store now, before any new one.
    pub fn with_journal(mut self, path: PathBuf) -> Self {
        match journal::recover(&path, self.store.as_mut()) {
            Ok(r) if r.written > 0 || r.left > 0 => tracing::warn!(
                journal = %path.display(),
                merged = r.written,
                left = r.left,
                "merged intervals a previous run could not write"
            ),
            Ok(_) => {}
            Err(e) => tracing::error!("{e}; the journal is kept as it is"),
        }
        self.journal = Some(path);
        self
    }

    /// Bytes of host rows held for retries.
    pub fn held_bytes(&self) -> usize {
        self.pending.iter().map(|p| p.hosts.len()).sum::<usize>() * ROW_BYTES
    }

    /// Whether the memory held for retries is past the bound (failures are then errors).
    pub fn over_bound(&self) -> bool {
        self.held_bytes() > self.bound
    }

    /// Queues a sample and writes everything queued, oldest first.
    pub fn submit(&mut self, sample: Sample) -> FlushReport {
        match self
            .pending
            .iter_mut()
            .find(|p| p.start == sample.start && p.sensor == sample.sensor)
        {
            Some(p) => p.merge(sample),
            None => self.pending.push_back(sample),
        }
        self.write_pending()
    }

    /// Retries queued samples if the backoff allows.
    pub fn retry(&mut self) -> Option<FlushReport> {
        match self.next_retry {
            Some(t) if Instant::now() >= t && !self.pending.is_empty() => {
                Some(self.write_pending())
            }
            _ => None,
        }
    }

    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Store writes that failed since start.
    pub fn errors(&self) -> u64 {
        self.errors
    }

    /// Upkeep between flushes, a bounded amount per call and only while no sample waits for a
    /// retry (the counts come first): rolls up to [`UPKEEP_BUCKETS`] complete buckets, then,
    /// once the rollups are up to date, prunes up to [`UPKEEP_ROWS`] rows past the retention.
    /// `None` when it did not run or failed (logged; it is tried again later).
    pub fn upkeep(
        &mut self,
        retention: &Retention,
        complete_before: i64,
        now: i64,
    ) -> Option<Upkeep> {
        if !self.pending.is_empty() {
            return None;
        }
        let rolled = match self.store.roll_up(complete_before, UPKEEP_BUCKETS) {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!("rolling up the store failed, will try again: {e:#}");
                return None;
            }
        };
        if rolled == UPKEEP_BUCKETS {
            return Some(Upkeep { rolled, pruned: 0 });
        }
        match self.store.prune(retention, now, UPKEEP_ROWS) {
            Ok(pruned) => Some(Upkeep { rolled, pruned }),
            Err(e) => {
                tracing::warn!("pruning the store failed, will try again: {e:#}");
                Some(Upkeep { rolled, pruned: 0 })
            }
        }
    }

    /// Rolls up everything before the current hour of the wall clock, `now` (after a replay:
    /// its last partial hour and day too; later samples of them are added as they are
    /// written). The hour being captured, if `run` is writing it, is left to `run`.
    pub fn roll_up_before(&mut self, now: i64) {
        if let Err(e) = self.store.roll_up(bucket_start(now, 3600), usize::MAX) {
            tracing::warn!("rolling up the store failed (reports read the samples meanwhile; the next run or replay rolls up): {e:#}");
        }
    }

    /// Writes queued samples until one fails. Used for the final flush too, with `drain_all`.
    fn write_pending(&mut self) -> FlushReport {
        let start = Instant::now();
        let mut report = FlushReport::default();
        while let Some(sample) = self.pending.front() {
            match self.store.write(sample) {
                Ok(()) => {
                    report.written += 1;
                    report.rows += sample.hosts.len();
                    self.pending.pop_front();
                    if self.failures > 0 {
                        tracing::info!(
                            failures = self.failures,
                            "store write succeeded after retries"
                        );
                    }
                    self.failures = 0;
                    self.next_retry = None;
                }
                Err(e) => {
                    self.failed(&e);
                    break;
                }
            }
        }
        report.pending = self.pending.len();
        report.took = start.elapsed();
        report
    }

    fn failed(&mut self, e: &StoreError) {
        self.failures = self.failures.saturating_add(1);
        self.errors += 1;
        let backoff = Duration::from_millis(250u64 << self.failures.min(8));
        self.next_retry = Some(Instant::now() + backoff);
        let held = self.held_bytes();
        if self.over_bound() || !e.is_transient() {
            tracing::error!(
                pending_intervals = self.pending.len(),
                held_mib = held >> 20,
                bound_mib = self.bound >> 20,
                retry_in_ms = backoff.as_millis() as u64,
                "store write failed, counts kept in memory: {e:#}"
            );
        } else {
            tracing::warn!(
                pending_intervals = self.pending.len(),
                held_kib = held >> 10,
                retry_in_ms = backoff.as_millis() as u64,
                "store write failed, counts kept in memory, will retry: {e:#}"
            );
        }
    }

    /// Keeps retrying until everything is written or `patience` runs out; then spills what is
    /// left to the journal, or, failing that too, logs it.
    pub fn finish(&mut self, patience: Duration) -> Leftover {
        let deadline = Instant::now() + patience;
        loop {
            self.write_pending();
            if self.pending.is_empty() {
                return Leftover::Nothing;
            }
            if Instant::now() >= deadline {
                break;
            }
            let wait = self.next_retry.map_or(Duration::from_millis(250), |t| {
                t.saturating_duration_since(Instant::now())
            });
            std::thread::sleep(wait.min(deadline.saturating_duration_since(Instant::now())));
        }
        let samples: Vec<Sample> = self.pending.drain(..).collect();
        let intervals = samples.len();
        let reason = match &self.journal {
            Some(path) => match journal::append(path, &samples) {
                Ok(()) => {
                    tracing::error!(
                        journal = %path.display(),
                        intervals,
                        "the store is still failing: the pending counts are saved in the journal and merged into the store at the next start"
                    );
                    return Leftover::Journaled {
                        intervals,
                        journal: path.clone(),
                    };
                }
                Err(e) => e.to_string(),
            },
            None => "no journal".to_owned(),
        };
        // Last resort: the counts go to the log, where they can still be read and billed.
        for s in &samples {
            for (host, usage) in &s.hosts {
                tracing::error!(
                    sensor = %s.sensor,
                    start = s.start,
                    interval_s = s.interval_s,
                    host = %host,
                    cells = ?usage.0,
                    "unwritten counts"
                );
            }
        }
        Leftover::Unwritten { intervals, reason }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::store::sqlite::SqliteStore;
    use crate::store::Query;

    fn sample(start: i64, bytes: u64) -> Sample {
        let mut usage = Usage::default();
        usage.0[0] = bytes;
        usage.0[1] = 1;
        Sample {
            sensor: "s".into(),
            start,
            interval_s: 60,
            hosts: vec![("198.51.100.7".parse().unwrap(), usage)],
            ..Default::default()
        }
    }

    #[test]
    fn a_locked_store_keeps_merges_and_finally_journals_the_counts() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("bw.db");
        let store = SqliteStore::open(&db).unwrap();
        store.set_busy_timeout(Duration::ZERO).unwrap();
        let journal = journal::path_for(&db);
        let mut flusher = Flusher::new(Box::new(store))
            .with_memory_bound(1)
            .with_journal(journal.clone());
        // Another writer holds the store: nothing is written, everything is kept and merged.
        let other = rusqlite::Connection::open(&db).unwrap();
        other.execute_batch("BEGIN EXCLUSIVE").unwrap();
        for (start, bytes) in [(60, 100), (60, 20), (120, 3)] {
            let r = flusher.submit(sample(start, bytes));
            assert_eq!(r.written, 0);
        }
        assert_eq!(flusher.pending(), 2, "same interval merged");
        assert!(flusher.held_bytes() >= 2 * ROW_BYTES);
        assert!(
            flusher.over_bound(),
            "past a 1-byte bound: errors, counts still kept"
        );
        // Still locked when it must stop: the journal takes them.
        let left = flusher.finish(Duration::ZERO);
        assert_eq!(
            left,
            Leftover::Journaled {
                intervals: 2,
                journal: journal.clone()
            }
        );
        other.execute_batch("COMMIT").unwrap();
        // The next start merges them before anything new.
        let store = SqliteStore::open(&db).unwrap();
        let mut flusher = Flusher::new(Box::new(store)).with_journal(journal.clone());
        assert!(!journal.exists());
        assert_eq!(flusher.finish(Duration::ZERO), Leftover::Nothing);
        let reader = SqliteStore::open_read_only(&db).unwrap();
        let q = Query {
            from: 0,
            to: 1000,
            sensor: None,
        };
        let rows = reader.usage_by_host(&q).unwrap();
        assert_eq!((rows[0].1 .0[0], rows[0].1 .0[1]), (123, 3));
    }

    #[test]
    fn buckets_align_on_the_clock() {
        assert_eq!(bucket_start(1_704_067_259, 60), 1_704_067_200);
        assert_eq!(bucket_start(1_704_067_200, 60), 1_704_067_200);
        assert_eq!(bucket_start(-1, 60), -60);
        assert_eq!(bucket_start(1_704_070_799, 3600), 1_704_067_200);
    }
}
