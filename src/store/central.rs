//! Which store a command reads, by configuration: the local SQLite store, or the central
//! PostgreSQL store when `[storage] postgres` is set. With PostgreSQL, usage and quota traffic
//! are read there (summed across sensors), while quota states, events and the shaping steps
//! applied stay in the local store: they belong to the machine that fires the hooks and runs
//! `tc` (each sensor shapes its own interfaces).

use super::postgres::PgStore;
use super::quota::{
    AppliedStep, Bucket, EventFilter, HookStatus, QuotaEvent, QuotaStore, StoredState,
};
use super::sqlite::SqliteStore;
use super::{Query, RangeStats, Sample, Series, SeriesQuery, Store, StoreError};
use crate::config::{Postgres, Storage};
use crate::rollup::{Level, Retention, Watermarks};
use crate::usage::{Host, Usage};
use std::cell::RefCell;
use std::path::PathBuf;

/// Usage from PostgreSQL, quota state from the local store (absent on a machine that only
/// reads, e.g. a central dashboard: then no states, events or steps).
pub struct Central {
    /// Connected on first use and again after the connection broke: a sensor's quota checks
    /// fail (and are tried again) while PostgreSQL is away, capture goes on.
    pg: RefCell<Option<PgStore>>,
    settings: Postgres,
    local: Option<SqliteStore>,
    local_path: PathBuf,
}

impl Central {
    fn with_pg<T>(
        &self,
        read: impl FnOnce(&mut PgStore) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut slot = self.pg.borrow_mut();
        let pg = match slot.as_mut() {
            Some(pg) => pg,
            None => slot.insert(PgStore::open_read_only(&self.settings)?),
        };
        let out = read(pg);
        if pg.is_closed() || out.as_ref().is_err_and(StoreError::is_transient) {
            *slot = None;
        }
        out
    }

    fn local_mut(&mut self) -> Result<&mut SqliteStore, StoreError> {
        self.local
            .as_mut()
            .ok_or_else(|| StoreError::Missing(self.local_path.display().to_string()))
    }
}

/// The store that the reading commands (report, graph, serve, quota, events) use.
pub fn open_reader(storage: &Storage) -> Result<Box<dyn QuotaStore>, StoreError> {
    match &storage.postgres {
        None => Ok(Box::new(SqliteStore::open_read_only(&storage.sqlite)?)),
        Some(pg) => {
            let local = match SqliteStore::open_read_only(&storage.sqlite) {
                Ok(s) => Some(s),
                Err(StoreError::Missing(_)) => None,
                Err(e) => return Err(e),
            };
            Ok(Box::new(Central {
                // a clear error now if the database cannot be read
                pg: RefCell::new(Some(PgStore::open_read_only(pg)?)),
                settings: pg.clone(),
                local,
                local_path: storage.sqlite.clone(),
            }))
        }
    }
}

/// The store that writes quota states and shaping steps (`run`'s quota service, `replay`'s
/// check, `shape apply|clear`): the local store, reading traffic from PostgreSQL if set.
pub fn open_writer(storage: &Storage) -> Result<Box<dyn QuotaStore>, StoreError> {
    let local = SqliteStore::open(&storage.sqlite)?;
    match &storage.postgres {
        None => Ok(Box::new(local)),
        Some(pg) => Ok(Box::new(Central {
            pg: RefCell::new(None),
            settings: pg.clone(),
            local: Some(local),
            local_path: storage.sqlite.clone(),
        })),
    }
}

impl Store for Central {
    /// The layer-2 guard's tables are in the local store.
    fn guard(&self) -> Option<&dyn super::guard::GuardStore> {
        self.local
            .as_ref()
            .map(|l| l as &dyn super::guard::GuardStore)
    }

    fn write(&mut self, _sample: &Sample) -> Result<(), StoreError> {
        Err(StoreError::PostgresSetup {
            target: self.settings.target(),
            message: "opened for reading: samples reach PostgreSQL through the outbox".into(),
        })
    }

    fn roll_up(&mut self, complete_before: i64, max_buckets: usize) -> Result<usize, StoreError> {
        self.with_pg(|pg| pg.roll_up(complete_before, max_buckets))
    }

    fn series(&self, q: &SeriesQuery) -> Result<Series, StoreError> {
        self.with_pg(|pg| pg.series(q))
    }

    fn watermarks(&self) -> Result<Watermarks, StoreError> {
        self.with_pg(|pg| pg.watermarks())
    }

    fn usage_at(&self, level: Level, q: &Query) -> Result<Vec<(Host, Usage)>, StoreError> {
        self.with_pg(|pg| pg.usage_at(level, q))
    }

    fn usage_by_host(&self, q: &Query) -> Result<Vec<(Host, Usage)>, StoreError> {
        self.with_pg(|pg| pg.usage_by_host(q))
    }

    fn series_at(
        &self,
        level: Level,
        q: &Query,
        host: Option<&Host>,
    ) -> Result<Vec<(i64, Usage)>, StoreError> {
        self.with_pg(|pg| pg.series_at(level, q, host))
    }

    fn stats_at(&self, level: Level, q: &Query) -> Result<RangeStats, StoreError> {
        self.with_pg(|pg| pg.stats_at(level, q))
    }

    fn stats(&self, q: &Query) -> Result<RangeStats, StoreError> {
        self.with_pg(|pg| pg.stats(q))
    }

    fn prune(
        &mut self,
        retention: &Retention,
        now: i64,
        max_rows: usize,
    ) -> Result<usize, StoreError> {
        self.with_pg(|pg| pg.prune(retention, now, max_rows))
    }

    fn kept_since(&self, level: Level) -> Result<Option<i64>, StoreError> {
        self.with_pg(|pg| pg.kept_since(level))
    }
}

impl QuotaStore for Central {
    fn hosts_after(&self, after: i64) -> Result<Vec<(i64, Host)>, StoreError> {
        self.with_pg(|pg| pg.hosts_after(after))
    }

    fn traffic_buckets(
        &self,
        hosts: &[i64],
        from: i64,
        to: i64,
        bucket_s: u32,
    ) -> Result<Vec<Bucket>, StoreError> {
        self.with_pg(|pg| pg.traffic_buckets(hosts, from, to, bucket_s))
    }

    fn quota_states(&self) -> Result<Vec<StoredState>, StoreError> {
        self.local
            .as_ref()
            .map_or(Ok(Vec::new()), |l| l.quota_states())
    }

    fn save_quota_state(
        &mut self,
        state: &StoredState,
        event: Option<&QuotaEvent>,
    ) -> Result<Option<i64>, StoreError> {
        self.local_mut()?.save_quota_state(state, event)
    }

    fn quota_events(&self, filter: &EventFilter) -> Result<Vec<QuotaEvent>, StoreError> {
        self.local
            .as_ref()
            .map_or(Ok(Vec::new()), |l| l.quota_events(filter))
    }

    fn set_event_hooks(&mut self, id: i64, status: HookStatus) -> Result<(), StoreError> {
        self.local_mut()?.set_event_hooks(id, status)
    }

    fn applied_steps(&self, owner: Option<&str>) -> Result<Vec<AppliedStep>, StoreError> {
        self.local
            .as_ref()
            .map_or(Ok(Vec::new()), |l| l.applied_steps(owner))
    }

    fn add_applied_step(&mut self, step: &AppliedStep) -> Result<(), StoreError> {
        self.local_mut()?.add_applied_step(step)
    }

    fn remove_applied_step(&mut self, owner: &str, key: &str) -> Result<(), StoreError> {
        self.local_mut()?.remove_applied_step(owner, key)
    }
}
