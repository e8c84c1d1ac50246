//! The guard's thread: gathers each interval's parts from every observer (a [`Tap`] per capture
//! thread, or replay's reader), decides once all have reported (or, live, a few seconds after the
//! interval's end), stores the figures and events, runs the hooks and feeds the status. Events
//! stored but not announced (a crash, a shutdown) run their hooks at the next start.

use super::{event_vars, Bound, Detector, GuardEvent, Observer, Part, Policy, Verdict};
use crate::flush::bucket_start;
use crate::hooks::{HookRunner, Job, Outcome};
use crate::parse::{Decoded, LinkType};
use crate::status::Status;
use crate::store::guard::GuardStore;
use crate::store::quota::{EventFilter, HookStatus};
use crate::store::sqlite::SqliteStore;
use crate::store::StoreError;
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// What the service is told.
pub enum Msg {
    /// An observer's part of an interval.
    Part { observer: usize, part: Part },
    /// New customers, thresholds and hooks.
    Reload(Arc<Policy>),
}

/// Live: an interval is decided this long after its end even if an observer is late.
const GRACE_S: i64 = 5;

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The bound customers observers pick up at their next interval (after a reload).
struct BoundSlot {
    generation: AtomicU64,
    bound: Mutex<Arc<Bound>>,
}

/// One observer's end of the guard: frames in, a part out at every interval boundary.
pub struct Tap {
    observer: Observer,
    index: usize,
    tx: mpsc::Sender<Msg>,
    slot: Arc<BoundSlot>,
    generation: u64,
    interval_s: u32,
    last_second: i64,
    begun: bool,
}

impl Tap {
    /// Looks at one frame.
    #[inline]
    pub fn frame(&mut self, ts: i64, link: LinkType, frame: &[u8], wire_len: u32, d: &Decoded) {
        self.observer.frame(ts, link, frame, wire_len, d);
    }

    /// Frames from now on arrive on `port` (replay: the next file).
    pub fn set_port(&mut self, port: &str) {
        self.observer.set_port(port);
    }

    /// Moves to the interval holding `now` (the wall clock live, the packets' time in replay),
    /// handing the finished interval over. Time going backwards stays in the open interval.
    #[inline]
    pub fn clock(&mut self, now: i64) {
        if now == self.last_second {
            return;
        }
        self.last_second = now;
        let bucket = bucket_start(now, self.interval_s);
        if !self.begun {
            self.observer.begin(bucket);
            self.begun = true;
        } else if bucket > self.observer.start() {
            self.hand_over(bucket);
        }
    }

    fn hand_over(&mut self, next: i64) {
        let generation = self.slot.generation.load(Ordering::Acquire);
        let bound = (generation != self.generation).then(|| {
            self.generation = generation;
            Arc::clone(&self.slot.bound.lock().unwrap_or_else(|e| e.into_inner()))
        });
        let part = self.observer.rotate(next, bound);
        // The service only goes away after every tap: a send cannot fail before.
        let _ = self.tx.send(Msg::Part {
            observer: self.index,
            part,
        });
    }

    /// Hands the open interval over (at the end of capture).
    pub fn finish(mut self) {
        if self.begun {
            let next = self.observer.start() + i64::from(self.interval_s);
            self.hand_over(next);
        }
    }
}

struct Pending {
    parts: Vec<Part>,
    from: HashSet<usize>,
}

struct Worker {
    store: SqliteStore,
    detector: Detector,
    hooks: HookRunner,
    status: Option<Arc<Status>>,
    observers: usize,
    /// Decide late intervals by the wall clock (`run`), not only when every part is in.
    live: bool,
    pending: BTreeMap<i64, Pending>,
    /// Verdicts the store refused, retried.
    unwritten: VecDeque<Verdict>,
    slot: Arc<BoundSlot>,
    raised: usize,
    /// Hook jobs submitted and finished.
    submitted: usize,
    finished: usize,
}

impl Worker {
    fn policy(&self) -> Arc<Policy> {
        Arc::clone(self.detector.policy())
    }

    fn announce(&mut self, e: &GuardEvent) {
        self.submitted += 1;
        self.hooks.submit(Job {
            id: e.id,
            hooks: Arc::clone(&self.policy().hooks),
            vars: event_vars(e),
        });
    }

    fn requeue_pending(&mut self) -> Result<usize, StoreError> {
        let pending = self.store.guard_events(
            &EventFilter {
                hooks: Some(HookStatus::Pending),
                ..Default::default()
            },
            None,
        )?;
        let none = self.policy().hooks.argvs.is_empty();
        for e in &pending {
            if none {
                self.store.set_guard_hooks(e.id, HookStatus::None)?;
            } else {
                tracing::info!(
                    kind = e.kind.name(),
                    "running the hooks of an earlier layer-2 event"
                );
                self.announce(e);
            }
        }
        Ok(pending.len())
    }

    fn take(&mut self, msg: Msg) {
        match msg {
            Msg::Part { observer, part } => {
                let p = self.pending.entry(part.start).or_insert_with(|| Pending {
                    parts: Vec::new(),
                    from: HashSet::new(),
                });
                p.from.insert(observer);
                p.parts.push(part);
            }
            Msg::Reload(policy) => {
                {
                    let mut bound = self.slot.bound.lock().unwrap_or_else(|e| e.into_inner());
                    *bound = Arc::clone(&policy.bound);
                }
                self.slot.generation.fetch_add(1, Ordering::AcqRel);
                self.detector.set_policy(policy);
            }
        }
    }

    /// Decides the intervals that are complete (all of them with `all`).
    fn complete(&mut self, all: bool) {
        let interval = i64::from(self.policy().interval_s);
        let now = now_secs();
        let ready: Vec<i64> = self
            .pending
            .iter()
            .filter(|(start, p)| {
                all || p.from.len() >= self.observers
                    || (self.live && now >= **start + interval + GRACE_S)
            })
            .map(|(start, _)| *start)
            .collect();
        for start in ready {
            let Some(p) = self.pending.remove(&start) else {
                continue;
            };
            let verdict = self.detector.interval(start, &p.parts);
            for e in &verdict.events {
                tracing::warn!(kind = e.kind.name(), "{}", e.reason);
            }
            self.raised += verdict.events.len();
            if let Some(s) = &self.status {
                s.observe_guard(&verdict);
            }
            self.unwritten.push_back(verdict);
        }
        self.write();
    }

    /// Writes what waits, oldest first, and announces what was written.
    fn write(&mut self) {
        let policy = self.policy();
        let hooks = if policy.hooks.argvs.is_empty() {
            HookStatus::None
        } else {
            HookStatus::Pending
        };
        while let Some(v) = self.unwritten.front() {
            match self.store.write_guard(v, &policy.sensor, hooks) {
                Ok(events) => {
                    self.unwritten.pop_front();
                    if hooks == HookStatus::Pending {
                        for e in &events {
                            self.announce(e);
                        }
                    }
                }
                Err(e) => {
                    tracing::error!("cannot store layer-2 figures and events (retried): {e}");
                    break;
                }
            }
        }
    }
}

/// The guard's thread.
pub struct GuardService {
    tx: mpsc::Sender<Msg>,
    slot: Arc<BoundSlot>,
    interval_s: u32,
    thread: JoinHandle<usize>,
}

impl GuardService {
    /// Opens its own connection to the store at `store`, announces what earlier runs left
    /// pending and waits for parts from `observers` observers. `live`: intervals are decided by
    /// the wall clock at the latest; `status`: fed with every verdict.
    pub fn start(
        policy: Arc<Policy>,
        store: &Path,
        observers: usize,
        live: bool,
        status: Option<Arc<Status>>,
    ) -> Result<Self, GuardError> {
        let slot = Arc::new(BoundSlot {
            generation: AtomicU64::new(0),
            bound: Mutex::new(Arc::clone(&policy.bound)),
        });
        let interval_s = policy.interval_s;
        let mut worker = Worker {
            store: SqliteStore::open(store)?,
            detector: Detector::new(policy),
            hooks: HookRunner::start("guard")?,
            status,
            observers: observers.max(1),
            live,
            pending: BTreeMap::new(),
            unwritten: VecDeque::new(),
            slot: Arc::clone(&slot),
            raised: 0,
            submitted: 0,
            finished: 0,
        };
        worker.requeue_pending()?;
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("guard".into())
            .spawn(move || serve(worker, rx))?;
        Ok(Self {
            tx,
            slot,
            interval_s,
            thread,
        })
    }

    /// The end of observer number `index` (0 to `observers` − 1).
    pub fn tap(&self, index: usize, observer: Observer) -> Tap {
        Tap {
            observer,
            index,
            tx: self.tx.clone(),
            slot: Arc::clone(&self.slot),
            generation: self.slot.generation.load(Ordering::Acquire),
            interval_s: self.interval_s,
            last_second: i64::MIN,
            begun: false,
        }
    }

    /// A handle for reloads.
    pub fn sender(&self) -> mpsc::Sender<Msg> {
        self.tx.clone()
    }

    /// Waits until every tap is gone, decides what is pending, and gives the hooks
    /// `alerts.timeout_s` to finish (the others run at the next start). Returns the events
    /// raised.
    pub fn stop(self) -> usize {
        drop(self.tx);
        self.thread.join().unwrap_or(0)
    }
}

fn serve(mut w: Worker, rx: mpsc::Receiver<Msg>) -> usize {
    loop {
        match rx.recv_timeout(Duration::from_millis(250)) {
            Ok(m) => w.take(m),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        while let Ok(m) = rx.try_recv() {
            w.take(m);
        }
        w.complete(false);
        let done = w.hooks.completed();
        w.finished += done.len();
        record(&mut w.store, done);
    }
    w.complete(true);
    if !w.unwritten.is_empty() {
        tracing::error!(
            intervals = w.unwritten.len(),
            "layer-2 figures and events could not be stored and are lost"
        );
    }
    // `run` gives running hooks the timeout (the rest run at the next start); `replay` waits
    // for what it raised, within bounds.
    let h = &w.policy().hooks;
    let patience = if w.live {
        h.timeout
    } else {
        let mut one = Duration::ZERO;
        for attempt in 0..=h.retries {
            one += h.timeout + h.backoff.saturating_mul(1 << attempt.min(10));
        }
        let jobs = w.submitted.saturating_sub(w.finished) * h.argvs.len();
        one.saturating_mul(jobs as u32)
            .clamp(Duration::from_secs(1), Duration::from_secs(600))
    };
    let Worker {
        mut store,
        hooks,
        raised,
        ..
    } = w;
    record(&mut store, hooks.finish(patience));
    raised
}

/// Stores how the hooks of each event ended.
fn record(store: &mut dyn GuardStore, outcomes: Vec<(i64, Outcome)>) {
    for (id, outcome) in outcomes {
        let status = match outcome {
            Outcome::Done => HookStatus::Done,
            Outcome::Failed => HookStatus::Failed,
        };
        if let Err(e) = store.set_guard_hooks(id, status) {
            tracing::error!("cannot record that the hooks of layer-2 event {id} ran: {e}");
        }
    }
}
