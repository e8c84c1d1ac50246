//! Forwarding to the central PostgreSQL store. The flusher writes the local SQLite store, which
//! queues every sample in its outbox in the same transaction ([`Outboxed`]); the forwarder
//! thread delivers the outbox to PostgreSQL oldest first, each batch in one PostgreSQL
//! transaction that records the batch's id (a batch delivered before is skipped), then drops
//! it from the outbox. While PostgreSQL is away it retries with backoff; the outbox is on disk,
//! so a restart (or a SIGKILL) loses nothing and doubles nothing. Capture and flushing never
//! wait for it. Between deliveries it rolls the central store up and prunes it.

use crate::config::Postgres;
use crate::flush::{bucket_start, UPKEEP_BUCKETS, UPKEEP_ROWS};
use crate::rollup::{Level, Retention, Watermarks};
use crate::store::postgres::{Delivery, PgStore};
use crate::store::sqlite::SqliteStore;
use crate::store::{Query, RangeStats, Sample, Series, SeriesQuery, Store, StoreError};
use crate::usage::{Host, Usage};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The longest wait between two attempts to reach PostgreSQL.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Central upkeep (rollups, pruning) at most this often.
const UPKEEP_EVERY: Duration = Duration::from_secs(60);

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The local store as the flusher sees it when a central store is set: each write also queues
/// the sample in the outbox (one transaction) and wakes the forwarder.
pub struct Outboxed {
    local: SqliteStore,
    wake: mpsc::Sender<Msg>,
}

impl Store for Outboxed {
    fn write(&mut self, sample: &Sample) -> Result<(), StoreError> {
        self.local.write_queued(sample)?;
        let _ = self.wake.send(Msg::Wake);
        Ok(())
    }

    fn roll_up(&mut self, complete_before: i64, max_buckets: usize) -> Result<usize, StoreError> {
        self.local.roll_up(complete_before, max_buckets)
    }

    fn series(&self, q: &SeriesQuery) -> Result<Series, StoreError> {
        self.local.series(q)
    }

    fn watermarks(&self) -> Result<Watermarks, StoreError> {
        self.local.watermarks()
    }

    fn usage_at(&self, level: Level, q: &Query) -> Result<Vec<(Host, Usage)>, StoreError> {
        self.local.usage_at(level, q)
    }

    fn series_at(
        &self,
        level: Level,
        q: &Query,
        host: Option<&Host>,
    ) -> Result<Vec<(i64, Usage)>, StoreError> {
        self.local.series_at(level, q, host)
    }

    fn stats_at(&self, level: Level, q: &Query) -> Result<RangeStats, StoreError> {
        self.local.stats_at(level, q)
    }

    fn prune(
        &mut self,
        retention: &Retention,
        now: i64,
        max_rows: usize,
    ) -> Result<usize, StoreError> {
        self.local.prune(retention, now, max_rows)
    }

    fn kept_since(&self, level: Level) -> Result<Option<i64>, StoreError> {
        self.local.kept_since(level)
    }
}

enum Msg {
    /// A batch was queued.
    Wake,
    /// Deliver what is queued until it is empty or the time is up, then stop.
    Stop(Instant),
}

/// Deliveries so far, for logs and the exit summary.
#[derive(Debug, Default)]
pub struct Counts {
    pub delivered: AtomicU64,
    /// Batches found already delivered (their acknowledgement was lost: e.g. a kill).
    pub duplicates: AtomicU64,
    pub failures: AtomicU64,
}

#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot start the forwarder thread: {0}")]
    Thread(std::io::Error),
}

/// What the forwarder left when it stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Left {
    pub batches: usize,
    pub oldest: Option<i64>,
}

/// The running forwarder.
pub struct Forwarder {
    tx: mpsc::Sender<Msg>,
    thread: JoinHandle<Left>,
    pub counts: Arc<Counts>,
}

/// What the forwarder is given.
pub struct Settings {
    pub sqlite: PathBuf,
    pub postgres: Postgres,
    pub sensor: String,
    /// The sensor's local networks, recorded in the sensors table (overlap checks).
    pub local_networks: String,
    /// How long the central store keeps each level; `None` (a replay, whose data may be
    /// older than any retention) rolls up but never prunes, as the local store does then.
    pub retention: Option<Retention>,
    /// Called after each batch delivered (e.g. to ask for a quota check).
    pub on_delivered: Option<Box<dyn Fn() + Send>>,
}

impl Forwarder {
    /// Opens the local store's outbox and starts the forwarder thread; returns it with the
    /// store the flusher must write through.
    pub fn start(s: Settings) -> Result<(Self, Outboxed), ForwardError> {
        let mut flusher_side = SqliteStore::open(&s.sqlite)?;
        flusher_side.outbox_origin()?;
        let mut reader = SqliteStore::open(&s.sqlite)?;
        let origin = reader.outbox_origin()?;
        let (tx, rx) = mpsc::channel();
        let counts = Arc::new(Counts::default());
        let worker = Worker {
            outbox: reader,
            origin,
            pg: None,
            settings: s,
            counts: Arc::clone(&counts),
            backoff: Duration::from_secs(1),
            next_try: Instant::now(),
            down_since: None,
            last_upkeep: None,
        };
        let thread = std::thread::Builder::new()
            .name("forward".into())
            .spawn(move || worker.run(rx))
            .map_err(ForwardError::Thread)?;
        let wake = tx.clone();
        Ok((
            Forwarder { tx, thread, counts },
            Outboxed {
                local: flusher_side,
                wake,
            },
        ))
    }

    /// Delivers what is queued, for at most `patience`, then stops; returns what is left in
    /// the outbox (delivered at the next start).
    pub fn finish(self, patience: Duration) -> Left {
        let _ = self.tx.send(Msg::Stop(Instant::now() + patience));
        self.thread.join().unwrap_or(Left {
            batches: 0,
            oldest: None,
        })
    }
}

struct Worker {
    outbox: SqliteStore,
    origin: i64,
    pg: Option<PgStore>,
    settings: Settings,
    counts: Arc<Counts>,
    backoff: Duration,
    next_try: Instant,
    /// Since when PostgreSQL has been unreachable (logged once when it goes, once when back).
    down_since: Option<Instant>,
    last_upkeep: Option<Instant>,
}

impl Worker {
    fn run(mut self, rx: mpsc::Receiver<Msg>) -> Left {
        let mut deadline = None;
        loop {
            let idle = self.deliver_all(deadline);
            if let Some(d) = deadline {
                if idle || Instant::now() >= d {
                    break;
                }
            } else if idle {
                self.upkeep();
            }
            let wait = self
                .next_try
                .saturating_duration_since(Instant::now())
                .clamp(Duration::from_millis(50), Duration::from_secs(1));
            let wait = deadline.map_or(wait, |d: Instant| {
                wait.min(d.saturating_duration_since(Instant::now()))
            });
            match rx.recv_timeout(wait) {
                Ok(Msg::Wake) | Err(mpsc::RecvTimeoutError::Timeout) => {}
                Ok(Msg::Stop(d)) => deadline = Some(d),
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    deadline.get_or_insert_with(Instant::now);
                }
            }
        }
        if self.pg.is_some() {
            // after a replay: what it wrote is complete up to now
            self.roll_up(bucket_start(now_secs(), 3600), usize::MAX);
        }
        let (batches, oldest) = self.outbox.outbox_backlog().unwrap_or((0, None));
        if batches > 0 {
            tracing::warn!(
                batches,
                oldest_start = oldest.unwrap_or(0),
                "stopping with batches not yet in PostgreSQL: they are kept in the local store's outbox and delivered at the next start"
            );
        }
        Left { batches, oldest }
    }

    /// Connects if needed (and allowed by the backoff); `None` when PostgreSQL is away.
    fn connected(&mut self) -> Option<&mut PgStore> {
        if self.pg.is_none() {
            if Instant::now() < self.next_try {
                return None;
            }
            match self.connect() {
                Ok(pg) => {
                    if let Some(since) = self.down_since.take() {
                        tracing::info!(
                            store = pg.target(),
                            away_s = since.elapsed().as_secs(),
                            "PostgreSQL is back: delivering the queued batches"
                        );
                    }
                    self.backoff = Duration::from_secs(1);
                    self.pg = Some(pg);
                }
                Err(e) => {
                    self.failed(&e);
                    return None;
                }
            }
        }
        self.pg.as_mut()
    }

    fn connect(&self) -> Result<PgStore, StoreError> {
        let mut pg = PgStore::open(&self.settings.postgres)?;
        pg.set_sensor_networks(
            &self.settings.sensor,
            &self.settings.local_networks,
            now_secs(),
        )?;
        Ok(pg)
    }

    fn failed(&mut self, e: &StoreError) {
        self.counts.failures.fetch_add(1, Ordering::Relaxed);
        self.pg = None;
        self.next_try = Instant::now() + self.backoff;
        let backlog = self.outbox.outbox_backlog().map_or(0, |b| b.0);
        if self.down_since.is_none() {
            self.down_since = Some(Instant::now());
            tracing::warn!(
                queued = backlog,
                "PostgreSQL unreachable, batches are queued in the local store and delivered when it is back: {e}"
            );
        } else {
            tracing::debug!(
                queued = backlog,
                retry_in_s = self.backoff.as_secs(),
                "PostgreSQL still unreachable: {e}"
            );
        }
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
    }

    /// Delivers queued batches, oldest first, until the outbox is empty (returns true), a
    /// delivery fails, or the deadline passes.
    fn deliver_all(&mut self, deadline: Option<Instant>) -> bool {
        loop {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return false;
            }
            let next = match self.outbox.outbox_next(self.origin, 0) {
                Ok(Some(q)) => q,
                Ok(None) => return true,
                Err(e) => {
                    tracing::error!("cannot read the outbox: {e}");
                    self.next_try = Instant::now() + MAX_BACKOFF;
                    return false;
                }
            };
            let Some(pg) = self.connected() else {
                return false;
            };
            match pg.deliver(next.id, &next.sample) {
                Ok(done) => {
                    let counter = match done {
                        Delivery::Written => &self.counts.delivered,
                        Delivery::AlreadyThere => {
                            tracing::info!(
                                seq = next.id.seq,
                                start = next.sample.start,
                                "batch already in PostgreSQL (delivered before its acknowledgement was lost): not counted again"
                            );
                            &self.counts.duplicates
                        }
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                    if let Err(e) = self.outbox.outbox_remove(next.id.seq) {
                        // it stays queued; its redelivery is recognised
                        tracing::error!("cannot drop a delivered batch from the outbox: {e}");
                        return false;
                    }
                    if let Some(f) = &self.settings.on_delivered {
                        f();
                    }
                }
                Err(e) => {
                    self.failed(&e);
                    return false;
                }
            }
        }
    }

    fn roll_up(&mut self, complete_before: i64, buckets: usize) -> usize {
        let Some(pg) = self.pg.as_mut() else {
            return 0;
        };
        match pg.roll_up(complete_before, buckets) {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!("rolling up the central store failed, will try again: {e}");
                if e.is_transient() {
                    self.pg = None;
                }
                0
            }
        }
    }

    /// Rollups of complete hours and pruning of the central store, now and then, while the
    /// outbox is empty.
    fn upkeep(&mut self) {
        if self.pg.is_none() || self.last_upkeep.is_some_and(|t| t.elapsed() < UPKEEP_EVERY) {
            return;
        }
        self.last_upkeep = Some(Instant::now());
        let rolled = self.roll_up(bucket_start(now_secs(), 3600), UPKEEP_BUCKETS);
        if rolled == UPKEEP_BUCKETS {
            // more to do: come back soon
            self.last_upkeep = None;
            return;
        }
        let Some(retention) = self.settings.retention else {
            return;
        };
        if let Some(pg) = self.pg.as_mut() {
            match pg.prune(&retention, now_secs(), UPKEEP_ROWS) {
                Ok(n) if n >= UPKEEP_ROWS => self.last_upkeep = None,
                Ok(_) => {}
                Err(e) => tracing::warn!("pruning the central store failed, will try again: {e}"),
            }
        }
    }
}

/// The local networks as the sensors table keeps them.
pub fn networks_text(nets: &[ipnet::IpNet]) -> String {
    nets.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
