//! The quota service of `run`: a thread that checks quotas whenever the flusher has stored an
//! interval (and after a reload), stores the changes, hands them to the hook runner, and with
//! `shaping.auto` shapes a customer that goes over and unshapes it when it is back to ok. Also
//! the one check that `replay` makes at the end of its data. Hooks whose event was stored but
//! not announced (a crash, a shutdown) run at the next start: each change fires once.

use super::check::{Checker, Policy};
use super::state::State;
use super::{event_vars, QuotaError};
use crate::config::Config;
use crate::hooks::{HookRunner, Job, Outcome};
use crate::shape::{self, System};
use crate::store::central;
use crate::store::quota::{EventFilter, HookStatus, QuotaEvent, QuotaStore};
use std::collections::BTreeSet;
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What the service is asked to do.
pub enum Msg {
    /// Check quotas as of this time (Unix seconds).
    Check(i64),
    /// New customers, alerts and shaping settings.
    Reload(Arc<Policy>),
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

struct Worker {
    /// States, events and shaping steps (local); traffic from the central store if set.
    store: Box<dyn QuotaStore>,
    checker: Checker,
    hooks: HookRunner,
    /// `run` (not `replay`): with `shaping.auto`, shaping follows the states.
    may_shape: bool,
}

impl Worker {
    fn open(cfg: &Config, policy: Arc<Policy>, may_shape: bool) -> Result<Self, QuotaError> {
        Ok(Self {
            store: central::open_writer(&cfg.storage)?,
            checker: Checker::new(policy),
            hooks: HookRunner::start("quota")?,
            may_shape,
        })
    }

    fn policy(&self) -> Arc<Policy> {
        Arc::clone(self.checker.policy())
    }

    fn announce(&self, e: &QuotaEvent) {
        let policy = self.policy();
        let vif = policy
            .customers
            .get(&e.customer)
            .and_then(|c| c.vif.as_deref());
        self.hooks.submit(Job {
            id: e.id,
            hooks: Arc::clone(&policy.hooks),
            vars: event_vars(e, vif),
        });
    }

    /// Queues the hooks of events stored but never announced; returns how many.
    fn requeue_pending(&mut self) -> Result<usize, QuotaError> {
        let pending = self.store.quota_events(&EventFilter {
            hooks: Some(HookStatus::Pending),
            ..Default::default()
        })?;
        let policy = self.policy();
        for e in &pending {
            if policy.hooks.argvs.is_empty() {
                self.store.set_event_hooks(e.id, HookStatus::None)?;
            } else {
                tracing::info!(customer = %e.customer, state = %e.new_state, "running the hooks of an earlier change");
                self.announce(e);
            }
        }
        Ok(pending.len())
    }

    /// Checks at `at`, stores and announces the changes, follows them with shaping; with
    /// `reconcile`, also brings the shaping of every customer in line with its state.
    fn check(&mut self, at: i64, reconcile: bool) -> Result<Vec<QuotaEvent>, QuotaError> {
        let statuses = self.checker.evaluate(&*self.store, at)?;
        let events = self.checker.commit(&mut *self.store, &statuses, at)?;
        for e in &events {
            if e.hooks == HookStatus::Pending {
                self.announce(e);
            }
        }
        if self.may_shape && self.policy().shaping.auto {
            for s in statuses.iter().filter(|s| !s.changes.is_empty()) {
                let was_over = s.changes.first().is_some_and(|c| c.from == State::Over);
                let is_over = s.state == State::Over;
                if is_over && !was_over {
                    self.shape(&s.customer);
                } else if was_over && !is_over {
                    self.unshape(&s.customer);
                }
            }
            if reconcile {
                let over: BTreeSet<&str> = statuses
                    .iter()
                    .filter(|s| s.state == State::Over)
                    .map(|s| s.customer.as_str())
                    .collect();
                let shaped: BTreeSet<String> = self
                    .store
                    .applied_steps(None)?
                    .into_iter()
                    .filter(|s| !s.owner.is_empty())
                    .map(|s| s.owner)
                    .collect();
                for name in &shaped {
                    if !over.contains(name.as_str()) || self.drifted(name) {
                        self.unshape(name);
                    }
                }
                for name in over {
                    self.shape(name);
                }
            }
        }
        Ok(events)
    }

    /// Whether what was applied for `name` differs from what its settings now ask for.
    fn drifted(&self, name: &str) -> bool {
        let policy = self.policy();
        let Some(planned) = policy
            .customers
            .get(name)
            .and_then(|c| shape::customer_steps(c, &policy.shaping).ok())
        else {
            return true;
        };
        let applied = self.store.applied_steps(Some(name)).unwrap_or_default();
        applied.iter().any(|a| {
            !planned.iter().any(|p| {
                p.key == a.key && serde_json::to_string(p).is_ok_and(|text| text == a.step)
            })
        })
    }

    fn shape(&mut self, name: &str) {
        let policy = self.policy();
        let Some(c) = policy.customers.get(name) else {
            return;
        };
        if c.shape.is_none() {
            tracing::warn!(
                customer = name,
                "over its allotment but has no shape: not shaped"
            );
            return;
        }
        let result = shape::customer_steps(c, &policy.shaping)
            .and_then(|steps| shape::apply(&steps, &mut System, &mut *self.store, now_secs()));
        match result {
            Ok(done) => tracing::info!(customer = name, commands = done.ran, "shaped"),
            Err(e) => tracing::error!(customer = name, "cannot shape: {e}"),
        }
    }

    fn unshape(&mut self, name: &str) {
        match shape::clear(Some(name), &mut System, &mut *self.store) {
            Ok(done) => tracing::info!(customer = name, commands = done.ran, "shaping cleared"),
            Err(e) => tracing::error!(customer = name, "cannot clear shaping: {e}"),
        }
    }

    fn finish(self, patience: Duration) {
        let Worker {
            mut store, hooks, ..
        } = self;
        record(&mut *store, hooks.finish(patience));
    }
}

/// Stores how the hooks of each event ended.
fn record(store: &mut dyn QuotaStore, outcomes: Vec<(i64, Outcome)>) {
    for (id, outcome) in outcomes {
        let status = match outcome {
            Outcome::Done => HookStatus::Done,
            Outcome::Failed => HookStatus::Failed,
        };
        if let Err(e) = store.set_event_hooks(id, status) {
            tracing::error!("cannot record that the hooks of event {id} ran: {e}");
        }
    }
}

/// The longest the hooks of `jobs` events may take, retries included (bounded).
fn patience(policy: &Policy, jobs: usize) -> Duration {
    let h = &policy.hooks;
    let mut one = Duration::ZERO;
    for attempt in 0..=h.retries {
        one += h.timeout + h.backoff.saturating_mul(1 << attempt.min(10));
    }
    one.saturating_mul((jobs * h.argvs.len()) as u32)
        .min(Duration::from_secs(600))
}

/// The service thread of `run`.
pub struct QuotaService {
    tx: mpsc::Sender<Msg>,
    thread: JoinHandle<()>,
}

impl QuotaService {
    /// Opens its own connection to the store, announces what earlier runs left pending, and
    /// checks once (reconciling shaping with the states when `shaping.auto`).
    pub fn start(cfg: &Config) -> Result<Self, QuotaError> {
        let policy = Arc::new(Policy::new(cfg));
        if cfg.shaping.auto && cfg.shaping.method == crate::config::Method::Bridge {
            if let Some(w) = shape::bridge_netfilter_warning() {
                tracing::warn!("{w}");
            }
        }
        let mut worker = Worker::open(cfg, Arc::clone(&policy), true)?;
        worker.requeue_pending()?;
        let (tx, rx) = mpsc::channel();
        // The first round is a reload: a check that also reconciles shaping with the states.
        let _ = tx.send(Msg::Reload(policy));
        let thread = std::thread::Builder::new()
            .name("quota".into())
            .spawn(move || serve(worker, rx))?;
        Ok(Self { tx, thread })
    }

    /// A handle for whoever triggers checks (the flusher) or reloads.
    pub fn sender(&self) -> mpsc::Sender<Msg> {
        self.tx.clone()
    }

    /// Waits until every sender is gone and the last check is done, then gives the hooks still
    /// running `alerts.timeout_s` to finish (the others run at the next start).
    pub fn stop(self) {
        drop(self.tx);
        let _ = self.thread.join();
    }
}

fn serve(mut worker: Worker, rx: mpsc::Receiver<Msg>) {
    loop {
        let first = match rx.recv_timeout(Duration::from_millis(250)) {
            Ok(m) => Some(m),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        // Several checks queued: the latest is enough.
        let mut check: Option<i64> = None;
        let mut reload = false;
        for msg in first.into_iter().chain(rx.try_iter()) {
            match msg {
                Msg::Check(at) => check = Some(check.map_or(at, |c| c.max(at))),
                Msg::Reload(policy) => {
                    worker.checker.set_policy(policy);
                    reload = true;
                }
            }
        }
        if reload {
            check = Some(check.unwrap_or_else(now_secs));
        }
        if let Some(at) = check {
            if let Err(e) = worker.check(at, reload) {
                tracing::error!("quota check failed (retried at the next interval): {e}");
            }
        }
        let done = worker.hooks.completed();
        record(&mut *worker.store, done);
    }
    let timeout = worker.policy().hooks.timeout;
    worker.finish(timeout);
}

/// `replay`'s check at the end of its data: stores the changes and runs their hooks (and those
/// left pending before), waiting for them. Never shapes. Returns the changes.
pub fn check_once(cfg: &Config, at: i64) -> Result<Vec<QuotaEvent>, QuotaError> {
    if cfg.customers.iter().all(|c| c.allotment.is_none()) {
        return Ok(Vec::new());
    }
    let policy = Arc::new(Policy::new(cfg));
    let mut worker = Worker::open(cfg, Arc::clone(&policy), false)?;
    let pending = worker.requeue_pending()?;
    let events = worker.check(at, false)?;
    worker.finish(patience(&policy, pending + events.len()));
    Ok(events)
}
