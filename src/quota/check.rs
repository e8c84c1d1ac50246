//! The quota checker: reads each customer's traffic from the store (a volume: the period so
//! far, in days, which the store answers from its rollups; a 95th percentile: 5-minute buckets,
//! read incrementally), measures it against the allotment, decides the state from the stored
//! one, and stores the changes as events. Running hooks and shaping is the caller's business.

use super::measure::{self, Measured};
use super::period::{billing_period, BillingPeriod};
use super::state::{self, Change, Prior, Reading, State, Thresholds};
use crate::config::{Alerts, Allotment, Config, Shaping};
use crate::customer::Customers;
use crate::hooks::HookSet;
use crate::store::quota::{Bucket, HookStatus, QuotaEvent, QuotaStore, StoredState};
use crate::store::StoreError;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The reloadable part of the configuration: who the customers are and what happens to them.
#[derive(Debug, Clone)]
pub struct Policy {
    pub customers: Customers,
    pub alerts: Alerts,
    pub shaping: Shaping,
    pub interval_s: u32,
    pub hooks: Arc<HookSet>,
}

/// Wait before the first retry of a failed hook.
const HOOK_BACKOFF: Duration = Duration::from_secs(1);

impl Policy {
    pub fn new(cfg: &Config) -> Self {
        Self {
            customers: Customers::new(cfg.customers.clone()),
            alerts: cfg.alerts.clone(),
            shaping: cfg.shaping.clone(),
            interval_s: cfg.accounting.interval_s,
            hooks: Arc::new(HookSet {
                argvs: cfg.alerts.hooks.clone(),
                timeout: cfg.alerts.timeout,
                retries: cfg.alerts.retries,
                backoff: HOOK_BACKOFF,
            }),
        }
    }

    pub fn thresholds(&self) -> Thresholds {
        Thresholds {
            warn_percent: self.alerts.warn_percent,
            hysteresis_percent: self.alerts.hysteresis_percent,
            warn_on_estimate: self.alerts.warn_on_estimate,
        }
    }
}

/// A customer's quota at a time.
#[derive(Debug, Clone)]
pub struct Status {
    pub customer: String,
    pub allotment: Allotment,
    pub period: BillingPeriod,
    pub measured: Measured,
    /// The allotment in its unit.
    pub amount: u64,
    pub unit: &'static str,
    pub state: State,
    /// When the state was entered (none: never checked before).
    pub since: Option<i64>,
    /// The changes from the stored state that this reading calls for.
    pub changes: Vec<Change>,
    stored: Option<StoredState>,
}

impl Status {
    pub fn percent(&self) -> f64 {
        state::percent(self.measured.used, self.amount)
    }
}

/// Traffic of one 95th-percentile customer read so far in one period.
struct Cached {
    period: BillingPeriod,
    bucket_s: u32,
    hosts: usize,
    buckets: BTreeMap<i64, Bucket>,
    full_read: Instant,
}

/// The estimate may raise `warn` (`warn_on_estimate`) only once this much of the period has
/// passed: a burst in the first hours would project a month over, and states never fall
/// within a period.
const ESTIMATE_AFTER_S: i64 = 86_400;

/// Buckets re-read at every check (late writes, retried flushes).
const REREAD_S: i64 = 2 * 3600;
/// A customer's whole period is re-read at least this often (samples written more than
/// `REREAD_S` late, after a long store outage). A full month of 5-minute buckets costs about
/// 0.16 s per customer of two addresses on one-minute samples (`cargo bench --bench quota`).
const FULL_EVERY: Duration = Duration::from_secs(6 * 3600);

/// Volume is read in UTC days: billing periods start at UTC midnight, so a store answers whole
/// days from its daily rows and the rest from hourly rows and samples.
const VOLUME_BUCKET_S: u32 = 86_400;

pub struct Checker {
    policy: Arc<Policy>,
    /// Highest host id looked at.
    hosts_seen: i64,
    /// Customer → its hosts' ids.
    members: HashMap<String, Vec<i64>>,
    cache: HashMap<String, Cached>,
}

impl Checker {
    pub fn new(policy: Arc<Policy>) -> Self {
        Self {
            policy,
            hosts_seen: 0,
            members: HashMap::new(),
            cache: HashMap::new(),
        }
    }

    pub fn policy(&self) -> &Arc<Policy> {
        &self.policy
    }

    /// Swaps the customers (a reload); what was read is read again.
    pub fn set_policy(&mut self, policy: Arc<Policy>) {
        *self = Self::new(policy);
    }

    fn refresh_members(&mut self, store: &dyn QuotaStore) -> Result<(), StoreError> {
        for (id, host) in store.hosts_after(self.hosts_seen)? {
            self.hosts_seen = self.hosts_seen.max(id);
            if let Some(c) = self.policy.customers.of(&host) {
                self.members.entry(c.name.clone()).or_default().push(id);
            }
        }
        Ok(())
    }

    /// A volume customer's traffic counted at `at`: every sample whose `bucket_s` bucket starts
    /// in the period before `at` (as [`measure::measure`] counts 5-minute buckets), in day
    /// buckets. Read whole at every check: a few dozen rows per address from the rollups, and
    /// late samples are never missed.
    fn volume(
        &self,
        store: &dyn QuotaStore,
        customer: &str,
        period: BillingPeriod,
        at: i64,
        bucket_s: u32,
    ) -> Result<Vec<Bucket>, StoreError> {
        let Some(ids) = self.members.get(customer) else {
            return Ok(Vec::new());
        };
        let b = i64::from(bucket_s.max(1));
        let now = at.clamp(period.start, period.end);
        // the bucket holding `now` counts whole
        let to = (now + b - 1).div_euclid(b) * b;
        store.traffic_buckets(ids, period.start, to.min(period.end), VOLUME_BUCKET_S)
    }

    fn traffic(
        &mut self,
        store: &dyn QuotaStore,
        customer: &str,
        period: BillingPeriod,
        bucket_s: u32,
    ) -> Result<Vec<Bucket>, StoreError> {
        let Some(ids) = self.members.get(customer) else {
            return Ok(Vec::new());
        };
        let reusable = self.cache.get(customer).is_some_and(|c| {
            c.period == period
                && c.bucket_s == bucket_s
                && c.hosts == ids.len()
                && c.full_read.elapsed() < FULL_EVERY
        });
        let entry = if reusable {
            let Some(c) = self.cache.get_mut(customer) else {
                return Ok(Vec::new());
            };
            let from = c
                .buckets
                .keys()
                .next_back()
                .map_or(period.start, |last| (last - REREAD_S).max(period.start));
            c.buckets.retain(|start, _| *start < from);
            for b in store.traffic_buckets(ids, from, period.end, bucket_s)? {
                c.buckets.insert(b.start, b);
            }
            c
        } else {
            let buckets = store
                .traffic_buckets(ids, period.start, period.end, bucket_s)?
                .into_iter()
                .map(|b| (b.start, b))
                .collect();
            self.cache
                .entry(customer.to_owned())
                .insert_entry(Cached {
                    period,
                    bucket_s,
                    hosts: ids.len(),
                    buckets,
                    full_read: Instant::now(),
                })
                .into_mut()
        };
        Ok(entry.buckets.values().copied().collect())
    }

    /// Every customer with an allotment, measured at `at`, with the state changes it calls for
    /// (not stored: see [`Checker::commit`]).
    pub fn evaluate(&mut self, store: &dyn QuotaStore, at: i64) -> Result<Vec<Status>, StoreError> {
        self.refresh_members(store)?;
        let stored: HashMap<String, StoredState> = store
            .quota_states()?
            .into_iter()
            .map(|s| (s.customer.clone(), s))
            .collect();
        let policy = Arc::clone(&self.policy);
        let thresholds = policy.thresholds();
        let bucket_s = measure::p95_bucket(policy.interval_s);
        let mut out = Vec::new();
        for c in policy.customers.iter() {
            let Some(allotment) = c.allotment else {
                continue;
            };
            let period = billing_period(at, c.billing_day);
            let buckets = match allotment {
                Allotment::Volume { .. } => self.volume(store, &c.name, period, at, bucket_s)?,
                Allotment::P95 { .. } => self.traffic(store, &c.name, period, bucket_s)?,
            };
            let measured = measure::measure(&allotment, &buckets, period, at, bucket_s);
            let unit = measure::unit(&allotment);
            let amount = measure::amount(&allotment);
            let prev = stored.get(&c.name).cloned();
            let prior = prev.as_ref().and_then(|s| {
                Some(Prior {
                    state: State::parse(&s.state)?,
                    period_start: s.period_start,
                    allotment: s.allotment,
                    unit: s.unit.clone(),
                })
            });
            let reading = Reading {
                period_start: period.start,
                used: measured.used,
                estimate: if at - period.start >= ESTIMATE_AFTER_S {
                    measured.estimate
                } else {
                    0
                },
                allotment: amount,
                unit,
            };
            let changes = state::changes(prior.as_ref(), &reading, &thresholds);
            let (state, since) = match changes.last() {
                Some(ch) if ch.at_period_start => (ch.to, Some(period.start)),
                Some(ch) => (ch.to, Some(at)),
                None => (
                    prior.as_ref().map_or(State::Ok, |p| p.state),
                    prev.as_ref().map(|s| s.since),
                ),
            };
            out.push(Status {
                customer: c.name.clone(),
                allotment,
                period,
                measured,
                amount,
                unit,
                state,
                since,
                changes,
                stored: prev,
            });
        }
        Ok(out)
    }

    /// Stores the states of `statuses` and their changes as events (hooks pending when hooks
    /// are configured); returns the events stored, oldest first.
    pub fn commit(
        &self,
        store: &mut dyn QuotaStore,
        statuses: &[Status],
        at: i64,
    ) -> Result<Vec<QuotaEvent>, StoreError> {
        let hooks = if self.policy.hooks.argvs.is_empty() {
            HookStatus::None
        } else {
            HookStatus::Pending
        };
        let mut events = Vec::new();
        for s in statuses {
            let mut row = StoredState {
                customer: s.customer.clone(),
                state: s.state.name().to_owned(),
                since: s.stored.as_ref().map_or(at, |p| p.since),
                period_start: s.period.start,
                allotment: s.amount,
                unit: s.unit.to_owned(),
            };
            if s.changes.is_empty() {
                if s.stored.as_ref() != Some(&row) {
                    store.save_quota_state(&row, None)?;
                }
                continue;
            }
            for ch in &s.changes {
                let ts = if ch.at_period_start {
                    s.period.start
                } else {
                    at
                };
                row.state = ch.to.name().to_owned();
                row.since = ts;
                let mut event = QuotaEvent {
                    id: 0,
                    customer: s.customer.clone(),
                    ts,
                    old_state: ch.from.name().to_owned(),
                    new_state: ch.to.name().to_owned(),
                    used: s.measured.used,
                    allotment: s.amount,
                    unit: s.unit.to_owned(),
                    estimate: s.measured.estimate,
                    used_bytes: s.measured.used_bytes,
                    period_start: s.period.start,
                    reason: ch.reason.clone(),
                    hooks,
                };
                if let Some(id) = store.save_quota_state(&row, Some(&event))? {
                    event.id = id;
                }
                tracing::info!(
                    customer = %event.customer,
                    from = %event.old_state,
                    to = %event.new_state,
                    "quota state changed: {}",
                    event.reason
                );
                events.push(event);
            }
        }
        Ok(events)
    }
}
