//! What the layer-2 guard keeps in the store: its events (with whether their hooks ran) and its
//! per-interval figures, and the one list of events that `bwacct events` and the dashboard show
//! (quota changes and layer-2 events, by time). `GuardStore` is the interface; the SQLite
//! implementation is in `sqlite/guard.rs`. No detection here.

use super::quota::{EventFilter, HookStatus, QuotaEvent, QuotaStore};
use super::{Query, StoreError};
use crate::guard::{GuardEvent, IntervalStats, Verdict};
use std::collections::BTreeMap;

/// One stored event of either kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Quota(QuotaEvent),
    Guard(GuardEvent),
}

impl Event {
    pub fn ts(&self) -> i64 {
        match self {
            Event::Quota(e) => e.ts,
            Event::Guard(e) => e.ts,
        }
    }

    /// `quota`, or the layer-2 kind (`mac_flood`, `arp_spoof`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Quota(_) => "quota",
            Event::Guard(e) => e.kind.name(),
        }
    }

    pub fn customer(&self) -> Option<&str> {
        match self {
            Event::Quota(e) => Some(&e.customer),
            Event::Guard(e) => e.customer.as_deref(),
        }
    }

    pub fn hooks(&self) -> HookStatus {
        match self {
            Event::Quota(e) => e.hooks,
            Event::Guard(e) => e.hooks,
        }
    }
}

/// Spoofed traffic of one customer over a range.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SpoofedTotal {
    pub packets: u64,
    pub bytes: u64,
}

/// What the guard needs from a store.
pub trait GuardStore: QuotaStore {
    /// Writes an interval's figures and its events (hooks marked `hooks`) in one transaction;
    /// returns the events with their ids.
    fn write_guard(
        &mut self,
        verdict: &Verdict,
        sensor: &str,
        hooks: HookStatus,
    ) -> Result<Vec<GuardEvent>, StoreError>;

    /// Layer-2 events, oldest first (`kind`: only that one).
    fn guard_events(
        &self,
        filter: &EventFilter,
        kind: Option<&str>,
    ) -> Result<Vec<GuardEvent>, StoreError>;

    /// Layer-2 events decided in the intervals starting in [from, to), oldest first.
    fn guard_events_between(&self, from: i64, to: i64) -> Result<Vec<GuardEvent>, StoreError>;

    fn set_guard_hooks(&mut self, id: i64, status: HookStatus) -> Result<(), StoreError>;

    /// Per-interval figures over a range (every sensor's, unless the query names one), by time.
    fn guard_intervals(&self, q: &Query) -> Result<Vec<IntervalStats>, StoreError>;

    /// Spoofed traffic per customer in the intervals starting in [from, to).
    fn spoofed(&self, from: i64, to: i64) -> Result<BTreeMap<String, SpoofedTotal>, StoreError>;

    /// Quota changes and layer-2 events together, oldest first; `kind` is `quota` or a layer-2
    /// kind; `limit` keeps the newest.
    fn events(&self, filter: &EventFilter, kind: Option<&str>) -> Result<Vec<Event>, StoreError> {
        let mut all: Vec<Event> = Vec::new();
        if kind.is_none_or(|k| k == "quota") {
            all.extend(self.quota_events(filter)?.into_iter().map(Event::Quota));
        }
        if kind != Some("quota") {
            all.extend(
                self.guard_events(filter, kind)?
                    .into_iter()
                    .map(Event::Guard),
            );
        }
        all.sort_by_key(|e| (e.ts(), e.kind()));
        if let Some(n) = filter.limit {
            let cut = all.len().saturating_sub(n);
            all.drain(..cut);
        }
        Ok(all)
    }
}

/// The SQLite tables (one self-contained migration: it only creates its own tables).
pub(super) const SQLITE_MIGRATION: &str = "
    CREATE TABLE guard_events (
        id INTEGER PRIMARY KEY,
        sensor TEXT NOT NULL,
        ts INTEGER NOT NULL,
        interval_start INTEGER NOT NULL,
        kind TEXT NOT NULL,
        customer TEXT,
        ip TEXT,
        old_macs TEXT NOT NULL DEFAULT '',
        new_mac TEXT,
        packets INTEGER NOT NULL DEFAULT 0,
        bytes INTEGER NOT NULL DEFAULT 0,
        macs TEXT NOT NULL DEFAULT '',
        groups TEXT NOT NULL DEFAULT '[]',
        reason TEXT NOT NULL,
        hooks TEXT NOT NULL
    );
    CREATE INDEX guard_events_by_time ON guard_events (ts);
    CREATE INDEX guard_events_by_customer ON guard_events (customer, kind, interval_start);
    CREATE TABLE guard_intervals (
        ts INTEGER NOT NULL,
        sensor TEXT NOT NULL,
        interval_s INTEGER NOT NULL,
        frames INTEGER NOT NULL DEFAULT 0,
        macs INTEGER NOT NULL DEFAULT 0,
        macs_capped INTEGER NOT NULL DEFAULT 0,
        baseline INTEGER,
        arp_requests INTEGER NOT NULL DEFAULT 0,
        arp_replies INTEGER NOT NULL DEFAULT 0,
        arp_gratuitous INTEGER NOT NULL DEFAULT 0,
        arp_probes INTEGER NOT NULL DEFAULT 0,
        arp_unsolicited INTEGER NOT NULL DEFAULT 0,
        new_arp_bindings INTEGER NOT NULL DEFAULT 0,
        new_ip_bindings INTEGER NOT NULL DEFAULT 0,
        active_bindings INTEGER NOT NULL DEFAULT 0,
        spoofed_packets INTEGER NOT NULL DEFAULT 0,
        spoofed_bytes INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (ts, sensor)
    ) WITHOUT ROWID;";
