//! Flushing: turns drained counters into samples stamped with their interval and writes them to
//! the store. A failed write keeps the sample (merged with later ones of the same interval) and
//! retries with backoff; capture never waits for the store.

use crate::rollup::Retention;
use crate::store::{Sample, Store, StoreError};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The start of the interval holding `ts` (Unix seconds), aligned on the UTC clock.
pub fn bucket_start(ts: i64, interval_s: u32) -> i64 {
    ts - ts.rem_euclid(i64::from(interval_s))
}

/// Host rows held in memory for retries above which every failure is logged as an error.
const PENDING_ROWS_ALARM: usize = 1_000_000;

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
    next_retry: Option<Instant>,
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
            next_retry: None,
        }
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
        let backoff = Duration::from_millis(250u64 << self.failures.min(8));
        self.next_retry = Some(Instant::now() + backoff);
        let rows: usize = self.pending.iter().map(|p| p.hosts.len()).sum();
        if rows > PENDING_ROWS_ALARM || !e.is_transient() {
            tracing::error!(
                pending_intervals = self.pending.len(),
                pending_rows = rows,
                "store write failed, counts kept in memory: {e:#}"
            );
        } else {
            tracing::warn!(
                pending_intervals = self.pending.len(),
                retry_in_ms = backoff.as_millis() as u64,
                "store write failed, will retry: {e:#}"
            );
        }
    }

    /// Keeps retrying until everything is written or `patience` runs out; returns what is
    /// still unwritten (for the caller to report).
    pub fn finish(&mut self, patience: Duration) -> usize {
        let deadline = Instant::now() + patience;
        loop {
            self.write_pending();
            if self.pending.is_empty() || Instant::now() >= deadline {
                return self.pending.len();
            }
            let wait = self.next_retry.map_or(Duration::from_millis(250), |t| {
                t.saturating_duration_since(Instant::now())
            });
            std::thread::sleep(wait.min(deadline.saturating_duration_since(Instant::now())));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_align_on_the_clock() {
        assert_eq!(bucket_start(1_704_067_259, 60), 1_704_067_200);
        assert_eq!(bucket_start(1_704_067_200, 60), 1_704_067_200);
        assert_eq!(bucket_start(-1, 60), -60);
        assert_eq!(bucket_start(1_704_070_799, 3600), 1_704_067_200);
    }
}
