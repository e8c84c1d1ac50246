//! The central PostgreSQL store that several sensors share: the same logical schema as SQLite
//! with the sensor on every row, versioned migrations (`schema`), batch writes through binary
//! COPY in one transaction per flush, recorded by batch id so that a redelivered batch is not
//! counted twice (`write`), and the rollup levels, reads and pruning (`levels`). It never
//! captures and never decides what to deliver: the forwarder (`crate::forward`) does.

mod connect;
mod levels;
mod schema;
mod tls;
mod write;

pub use connect::password_for;
pub use schema::migrations;
pub use write::{BatchId, Delivery};

use super::{Query, RangeStats, Sample, Series, SeriesQuery, Store, StoreError};
use crate::config::Postgres;
use crate::rollup::{Level, Retention, Watermarks};
use crate::usage::{Host, Usage};
use postgres::Client;
use std::cell::RefCell;
use std::collections::HashMap;

/// A connection to the central store.
pub struct PgStore {
    /// Where it is connected (never the password), for messages.
    target: String,
    client: RefCell<Client>,
    /// Host ids known to be committed.
    host_ids: HashMap<Host, i64>,
    sensor_ids: HashMap<String, i32>,
}

/// A stored counter back (never negative).
fn count(v: i64) -> u64 {
    v.max(0) as u64
}

/// Whether a PostgreSQL error means the server or the network is away (or a conflict that a
/// retry resolves), rather than a statement the server refuses.
fn transient(e: &postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code() {
        // no server answer at all: I/O, connect, timeout
        None => e.as_db_error().is_none(),
        Some(code) => {
            let c = code.code();
            // connection exceptions, operator intervention (shutdown), insufficient
            // resources, serialization failures and deadlocks
            c.starts_with("08")
                || c.starts_with("57")
                || c.starts_with("53")
                || c == "40001"
                || c == "40P01"
        }
    }
}

/// The error and every cause, as one line.
fn chain(e: &postgres::Error) -> String {
    let mut out = e.to_string();
    if let Some(db) = e.as_db_error() {
        out = format!("{}: {}", db.severity(), db.message());
        if let Some(detail) = db.detail() {
            out.push_str(&format!(" ({detail})"));
        }
        return out;
    }
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        out.push_str(&format!(": {c}"));
        cause = c.source();
    }
    out
}

impl PgStore {
    /// Connects, brings the schema up to date (several sensors may start at once: the
    /// migration takes a lock), and prepares the connection for batch writes.
    pub fn open(settings: &Postgres) -> Result<Self, StoreError> {
        let (target, client) = connect::connect(settings)?;
        let mut store = Self {
            target,
            client: RefCell::new(client),
            host_ids: HashMap::new(),
            sensor_ids: HashMap::new(),
        };
        store.migrate()?;
        store.prepare_session()?;
        Ok(store)
    }

    /// Connects for reading only: never creates or migrates (a database at an older version
    /// is an error telling to start a sensor, which migrates it).
    pub fn open_read_only(settings: &Postgres) -> Result<Self, StoreError> {
        let (target, client) = connect::connect(settings)?;
        let store = Self {
            target,
            client: RefCell::new(client),
            host_ids: HashMap::new(),
            sensor_ids: HashMap::new(),
        };
        let found = store.schema_version()?;
        let known = migrations().len() as i64;
        if found > known {
            return Err(StoreError::PostgresTooNew {
                target: store.target.clone(),
                found,
                known,
            });
        }
        if found < known {
            return Err(StoreError::PostgresSetup {
                target: store.target.clone(),
                message: format!("the schema is at version {found}, this bwacct reads version {known}: start a sensor (`bwacct run` or `replay`), which migrates it"),
            });
        }
        store
            .client
            .borrow_mut()
            .batch_execute("SET default_transaction_read_only = on")
            .map_err(|e| store.err(&e))?;
        Ok(store)
    }

    /// Where it is connected, never the password.
    pub fn target(&self) -> &str {
        &self.target
    }

    fn err(&self, e: &postgres::Error) -> StoreError {
        StoreError::Postgres {
            target: self.target.clone(),
            message: chain(e),
            transient: transient(e),
        }
    }

    /// Whether the connection is gone (the forwarder then connects again).
    pub fn is_closed(&self) -> bool {
        self.client.borrow().is_closed()
    }

    /// The store's schema version (0: empty database).
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        let mut c = self.client.borrow_mut();
        let exists: bool = c
            .query_one("SELECT to_regclass('schema_version') IS NOT NULL", &[])
            .map_err(|e| self.err(&e))?
            .get(0);
        if !exists {
            return Ok(0);
        }
        let v: Option<i32> = c
            .query_one("SELECT max(version) FROM schema_version", &[])
            .map_err(|e| self.err(&e))?
            .get(0);
        Ok(v.map_or(0, i64::from))
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let migrations = migrations();
        let known = migrations.len() as i64;
        let mut c = self.client.borrow_mut();
        let mut tx = c.transaction().map_err(|e| self.err(&e))?;
        // one migrating sensor at a time; the others wait and find it done
        tx.batch_execute(
            "SELECT pg_advisory_xact_lock(7236051);
             CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);",
        )
        .map_err(|e| self.err(&e))?;
        let found: i64 = tx
            .query_one(
                "SELECT coalesce(max(version), 0)::bigint FROM schema_version",
                &[],
            )
            .map_err(|e| self.err(&e))?
            .get(0);
        if found > known {
            return Err(StoreError::PostgresTooNew {
                target: self.target.clone(),
                found,
                known,
            });
        }
        for (i, sql) in migrations.iter().enumerate().skip(found as usize) {
            let version = i as i32 + 1;
            tx.batch_execute(sql).map_err(|e| self.err(&e))?;
            tx.execute("DELETE FROM schema_version", &[])
                .and_then(|_| {
                    tx.execute(
                        "INSERT INTO schema_version (version) VALUES ($1)",
                        &[&version],
                    )
                })
                .map_err(|e| self.err(&e))?;
            tracing::info!(store = %self.target, version, "PostgreSQL schema migrated");
        }
        tx.commit().map_err(|e| self.err(&e))
    }

    /// Records the local networks a sensor accounts, for the overlap check across sensors.
    pub fn set_sensor_networks(
        &mut self,
        sensor: &str,
        nets: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        self.client
            .borrow_mut()
            .execute(
                "INSERT INTO sensors (name, local_networks, first_seen, last_seen)
                 VALUES ($1, $2, $3, $3)
                 ON CONFLICT (name) DO UPDATE SET local_networks = excluded.local_networks",
                &[&sensor, &nets, &now],
            )
            .map(|_| ())
            .map_err(|e| self.err(&e))
    }

    /// Every sensor with the local networks it declared (`"a, b"`), by name.
    pub fn sensor_networks(&self) -> Result<Vec<(String, String)>, StoreError> {
        let rows = self
            .client
            .borrow_mut()
            .query(
                "SELECT name, local_networks FROM sensors ORDER BY name",
                &[],
            )
            .map_err(|e| self.err(&e))?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    fn sensor_filter(&self, q: &Query) -> Result<Option<i32>, StoreError> {
        let Some(name) = &q.sensor else {
            return Ok(None);
        };
        self.client
            .borrow_mut()
            .query_opt("SELECT id FROM sensors WHERE name = $1", &[name])
            .map_err(|e| self.err(&e))?
            .map(|r| Some(r.get(0)))
            .ok_or_else(|| StoreError::NoSensor(name.clone()))
    }

    fn bad_host(&self, addr: String) -> StoreError {
        StoreError::BadHost {
            path: self.target.clone(),
            addr,
        }
    }

    /// Runs reads in one repeatable-read transaction, so that they see one state of the store
    /// while sensors write and roll up.
    fn snapshot<T>(&self, read: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
        self.client
            .borrow_mut()
            .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .map_err(|e| self.err(&e))?;
        let out = read();
        let end = self
            .client
            .borrow_mut()
            .batch_execute(if out.is_ok() { "COMMIT" } else { "ROLLBACK" })
            .map_err(|e| self.err(&e));
        let out = out?;
        end?;
        Ok(out)
    }
}

impl Store for PgStore {
    fn write(&mut self, sample: &Sample) -> Result<(), StoreError> {
        self.write_batch(None, std::slice::from_ref(sample))
            .map(|_| ())
    }

    fn roll_up(&mut self, complete_before: i64, max_buckets: usize) -> Result<usize, StoreError> {
        self.roll_levels(complete_before, max_buckets)
    }

    fn series(&self, q: &SeriesQuery) -> Result<Series, StoreError> {
        self.series_of(q)
    }

    fn watermarks(&self) -> Result<Watermarks, StoreError> {
        self.read_marks()
    }

    fn usage_at(&self, level: Level, q: &Query) -> Result<Vec<(Host, Usage)>, StoreError> {
        self.read_usage(level, q)
    }

    fn usage_by_host(&self, q: &Query) -> Result<Vec<(Host, Usage)>, StoreError> {
        self.snapshot(|| super::planned_usage(self, q))
    }

    fn series_at(
        &self,
        level: Level,
        q: &Query,
        host: Option<&Host>,
    ) -> Result<Vec<(i64, Usage)>, StoreError> {
        self.read_series(level, q, host)
    }

    fn stats_at(&self, level: Level, q: &Query) -> Result<RangeStats, StoreError> {
        self.read_stats(level, q)
    }

    fn stats(&self, q: &Query) -> Result<RangeStats, StoreError> {
        self.snapshot(|| super::planned_stats(self, q))
    }

    fn prune(
        &mut self,
        retention: &Retention,
        now: i64,
        max_rows: usize,
    ) -> Result<usize, StoreError> {
        self.prune_levels(retention, now, max_rows)
    }

    fn kept_since(&self, level: Level) -> Result<Option<i64>, StoreError> {
        self.read_kept_since(level)
    }
}

/// Pairs of sensors whose declared local networks overlap (the same packet would be counted
/// twice if both capture it): one line per pair, naming both and the networks.
pub fn overlaps(sensors: &[(String, Vec<ipnet::IpNet>)]) -> Vec<String> {
    let mut out = Vec::new();
    for (i, (a, nets_a)) in sensors.iter().enumerate() {
        for (b, nets_b) in sensors.iter().skip(i + 1) {
            for na in nets_a {
                for nb in nets_b
                    .iter()
                    .filter(|nb| na.contains(*nb) || nb.contains(na))
                {
                    out.push(format!(
                        "sensors {a} and {b} both account {}: traffic both capture is counted twice (give each sensor its own local networks)",
                        if na.prefix_len() >= nb.prefix_len() { na } else { nb }
                    ));
                }
            }
        }
    }
    out
}

/// The sensors table's networks with this configuration's in place of its own sensor's.
pub fn sensor_overlaps(
    pg: &PgStore,
    sensor: &str,
    local: &[ipnet::IpNet],
) -> Result<Vec<String>, StoreError> {
    let mut list: Vec<(String, Vec<ipnet::IpNet>)> = pg
        .sensor_networks()?
        .into_iter()
        .filter(|(name, _)| name != sensor)
        .map(|(name, text)| {
            let nets = text
                .split(',')
                .filter_map(|n| n.trim().parse().ok())
                .collect();
            (name, nets)
        })
        .collect();
    list.insert(0, (sensor.to_owned(), local.to_vec()));
    Ok(overlaps(&list))
}

#[cfg(test)]
mod tests {
    #[test]
    fn overlapping_networks_of_two_sensors_are_named() {
        let s = |name: &str, nets: &[&str]| {
            (
                name.to_owned(),
                nets.iter().map(|n| n.parse().unwrap()).collect::<Vec<_>>(),
            )
        };
        let list = [
            s("a", &["198.51.100.0/24", "2001:db8:100::/56"]),
            s("b", &["198.51.100.128/25"]),
            s("c", &["203.0.113.0/24", "2001:db8:100:1::/64"]),
        ];
        assert_eq!(
            super::overlaps(&list),
            vec![
                "sensors a and b both account 198.51.100.128/25: traffic both capture is counted twice (give each sensor its own local networks)",
                "sensors a and c both account 2001:db8:100:1::/64: traffic both capture is counted twice (give each sensor its own local networks)",
            ]
        );
        assert!(super::overlaps(&list[1..]).is_empty());
    }
}
