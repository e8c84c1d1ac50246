//! What quotas and shaping keep in the store: each customer's state, its changes (events) with
//! whether their hooks ran, the shaping steps that were applied, and the per-bucket traffic of a
//! set of hosts that the quota arithmetic reads. `QuotaStore` is the interface; the SQLite
//! implementation is in `sqlite/quota.rs`. No quota arithmetic here.

use super::{Store, StoreError};
use crate::usage::Host;

/// A customer's quota state as last decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredState {
    pub customer: String,
    /// `ok`, `warn` or `over`.
    pub state: String,
    /// When it entered this state (or was first checked), Unix seconds.
    pub since: i64,
    /// Start of the billing period the state is about.
    pub period_start: i64,
    /// The allotment it was decided against, in `unit`.
    pub allotment: u64,
    /// `bytes` or `bit/s`.
    pub unit: String,
}

/// Whether the hooks of an event ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookStatus {
    /// Not yet run (or interrupted): run at the next start.
    Pending,
    Done,
    /// Still failing after the retries.
    Failed,
    /// No hooks were configured.
    None,
}

impl HookStatus {
    pub fn name(self) -> &'static str {
        match self {
            HookStatus::Pending => "pending",
            HookStatus::Done => "done",
            HookStatus::Failed => "failed",
            HookStatus::None => "none",
        }
    }

    pub fn parse(s: &str) -> Self {
        match s {
            "done" => HookStatus::Done,
            "failed" => HookStatus::Failed,
            "none" => HookStatus::None,
            _ => HookStatus::Pending,
        }
    }
}

/// One stored state change.
#[derive(Debug, Clone, PartialEq)]
pub struct QuotaEvent {
    /// Assigned by the store.
    pub id: i64,
    pub customer: String,
    pub ts: i64,
    pub old_state: String,
    pub new_state: String,
    /// In `unit`: bytes for a volume allotment, bits per second for a 95th percentile.
    pub used: u64,
    pub allotment: u64,
    pub unit: String,
    pub estimate: u64,
    /// Bytes sent and received in the period (as the allotment measures them).
    pub used_bytes: u64,
    pub period_start: i64,
    pub reason: String,
    pub hooks: HookStatus,
}

/// Which events to list.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub customer: Option<String>,
    /// Only events before this time.
    pub before: Option<i64>,
    pub hooks: Option<HookStatus>,
    /// The newest N (still listed oldest first).
    pub limit: Option<usize>,
}

/// A shaping command that was run, with what undoes it (serialised by the shaper).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedStep {
    /// The customer, or `""` for steps customers share (the uplink's root qdisc).
    pub owner: String,
    /// Identifies the step (e.g. `tbf:vif-goneril`).
    pub key: String,
    pub step: String,
    pub applied_at: i64,
}

/// Traffic of one time bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Bucket {
    pub start: i64,
    pub tx_bytes: u64,
    pub rx_bytes: u64,
}

/// What the quota checks and the shaper need from a store.
pub trait QuotaStore: Store {
    /// Hosts with an id above `after` (ids only grow), with their ids.
    fn hosts_after(&self, after: i64) -> Result<Vec<(i64, Host)>, StoreError>;

    /// Bytes sent and received by the hosts, summed over every sensor, per bucket of
    /// `bucket_s` seconds aligned on the clock, over [from, to). Buckets without traffic are
    /// absent.
    fn traffic_buckets(
        &self,
        hosts: &[i64],
        from: i64,
        to: i64,
        bucket_s: u32,
    ) -> Result<Vec<Bucket>, StoreError>;

    fn quota_states(&self) -> Result<Vec<StoredState>, StoreError>;

    /// Saves a customer's state and, with `event`, stores the change in the same transaction;
    /// returns the event's id.
    fn save_quota_state(
        &mut self,
        state: &StoredState,
        event: Option<&QuotaEvent>,
    ) -> Result<Option<i64>, StoreError>;

    /// Events, oldest first.
    fn quota_events(&self, filter: &EventFilter) -> Result<Vec<QuotaEvent>, StoreError>;

    fn set_event_hooks(&mut self, id: i64, status: HookStatus) -> Result<(), StoreError>;

    /// Applied shaping steps of one owner (or all), in the order they were applied.
    fn applied_steps(&self, owner: Option<&str>) -> Result<Vec<AppliedStep>, StoreError>;

    fn add_applied_step(&mut self, step: &AppliedStep) -> Result<(), StoreError>;

    fn remove_applied_step(&mut self, owner: &str, key: &str) -> Result<(), StoreError>;
}

/// The SQLite tables (one migration, after the core schema).
pub(super) const SQLITE_MIGRATION: &str = "
    CREATE TABLE quota_state (
        customer TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        since INTEGER NOT NULL,
        period_start INTEGER NOT NULL,
        allotment INTEGER NOT NULL,
        unit TEXT NOT NULL
    );
    CREATE TABLE quota_events (
        id INTEGER PRIMARY KEY,
        customer TEXT NOT NULL,
        ts INTEGER NOT NULL,
        old_state TEXT NOT NULL,
        new_state TEXT NOT NULL,
        used INTEGER NOT NULL,
        allotment INTEGER NOT NULL,
        unit TEXT NOT NULL,
        estimate INTEGER NOT NULL,
        used_bytes INTEGER NOT NULL,
        period_start INTEGER NOT NULL,
        reason TEXT NOT NULL,
        hooks TEXT NOT NULL
    );
    CREATE INDEX quota_events_by_customer ON quota_events (customer, ts);
    CREATE TABLE shaping_applied (
        seq INTEGER PRIMARY KEY,
        owner TEXT NOT NULL,
        key TEXT NOT NULL,
        step TEXT NOT NULL,
        applied_at INTEGER NOT NULL,
        UNIQUE (owner, key)
    );";
