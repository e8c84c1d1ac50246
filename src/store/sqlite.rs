//! The embedded SQLite store: WAL mode (readers never wait for the flusher), one transaction per
//! flushed interval, upserts that add to an existing row (the samples, and the rollup levels a
//! late sample falls behind the watermark of), migrations from the schema table. Rolling up,
//! reads per level and pruning are in `levels`; reading a few hosts' rows by key in `hosts`.

mod guard;
mod hosts;
mod levels;
mod outbox;
mod quota;
mod series;

pub use outbox::Queued;

use super::schema::{
    db_int, sqlite_migrations, stats_row, stats_table, usage_table, COLUMNS, STATS_COLUMNS,
};
use super::{Query, RangeStats, Sample, Series, SeriesQuery, Store, StoreError};
use crate::rollup::{Level, Retention, Watermarks};
use crate::usage::{Host, Usage, CELLS};
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub struct SqliteStore {
    path: PathBuf,
    conn: Connection,
    /// Host ids known to be committed.
    host_ids: HashMap<Host, i64>,
    sensor_ids: HashMap<String, i64>,
    /// Schema version (rollups exist from version 2 on; a store opened read-only may be older).
    version: i64,
}

/// How long a writer or reader waits for a lock before reporting the store busy.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

impl SqliteStore {
    /// Opens (creating if needed) the store at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Directory {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let conn = Connection::open(path).map_err(|e| Self::error_at(path, e))?;
        let mut store = Self {
            path: path.to_owned(),
            conn,
            host_ids: HashMap::new(),
            sensor_ids: HashMap::new(),
            version: 0,
        };
        store.setup().map_err(|e| store.err(e))?;
        store.migrate()?;
        store.version = sqlite_migrations().len() as i64;
        Ok(store)
    }

    /// Opens an existing store for reading only (reports): never creates or migrates.
    pub fn open_read_only(path: &Path) -> Result<Self, StoreError> {
        if !path.exists() {
            return Err(StoreError::Missing(path.display().to_string()));
        }
        let conn = Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| Self::error_at(path, e))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| Self::error_at(path, e))?;
        let mut store = Self {
            path: path.to_owned(),
            conn,
            host_ids: HashMap::new(),
            sensor_ids: HashMap::new(),
            version: 0,
        };
        let found = store.version().map_err(|e| store.err(e))?;
        let known = sqlite_migrations().len() as i64;
        if found > known {
            return Err(StoreError::TooNew {
                path: path.display().to_string(),
                found,
                known,
            });
        }
        store.version = found;
        Ok(store)
    }

    fn error_at(path: &Path, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: path.display().to_string(),
            source,
        }
    }

    fn err(&self, source: rusqlite::Error) -> StoreError {
        Self::error_at(&self.path, source)
    }

    fn setup(&self) -> rusqlite::Result<()> {
        self.conn.busy_timeout(BUSY_TIMEOUT)?;
        // WAL: readers (reports, web) proceed while the flusher writes; NORMAL is durable
        // against a killed process (only a power cut may lose the last commit).
        self.conn.pragma_update(None, "journal_mode", "WAL")?;
        self.conn.pragma_update(None, "synchronous", "NORMAL")?;
        self.conn.pragma_update(None, "foreign_keys", "ON")?;
        self.conn
            .execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);")
    }

    fn version(&self) -> rusqlite::Result<i64> {
        let has_table: bool = self.conn.query_row(
            "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'",
            [],
            |r| r.get(0),
        )?;
        if !has_table {
            return Ok(0);
        }
        Ok(self
            .conn
            .query_row("SELECT max(version) FROM schema_version", [], |r| {
                r.get::<_, Option<i64>>(0)
            })?
            .unwrap_or(0))
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let migrations = sqlite_migrations();
        let known = migrations.len() as i64;
        let found = self.version().map_err(|e| self.err(e))?;
        if found > known {
            return Err(StoreError::TooNew {
                path: self.path.display().to_string(),
                found,
                known,
            });
        }
        for (i, sql) in migrations.iter().enumerate().skip(found as usize) {
            let version = i as i64 + 1;
            let tx = self
                .conn
                .transaction()
                .map_err(|e| Self::error_at(&self.path, e))?;
            tx.execute_batch(sql)
                .and_then(|_| tx.execute("DELETE FROM schema_version", []))
                .and_then(|_| {
                    tx.execute(
                        "INSERT INTO schema_version (version) VALUES (?1)",
                        [version],
                    )
                })
                .and_then(|_| tx.commit())
                .map_err(|e| Self::error_at(&self.path, e))?;
            tracing::info!(store = %self.path.display(), version, "store schema migrated");
        }
        Ok(())
    }

    /// Runs reads in one read transaction, so that they see one state of the store even while
    /// the flusher or the rollup job commits.
    fn snapshot<T>(&self, read: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
        if !self.conn.is_autocommit() {
            return read();
        }
        self.conn.execute_batch("BEGIN").map_err(|e| self.err(e))?;
        let out = read();
        let end = self.conn.execute_batch("COMMIT").map_err(|e| self.err(e));
        let out = out?;
        end?;
        Ok(out)
    }

    /// How long to wait for another writer's lock before reporting the store busy.
    pub fn set_busy_timeout(&self, wait: Duration) -> Result<(), StoreError> {
        self.conn.busy_timeout(wait).map_err(|e| self.err(e))
    }

    /// The store's schema version.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        self.version().map_err(|e| self.err(e))
    }

    /// Writes samples in one transaction. With `import`, first records the file's digest and
    /// writes nothing (returns `None`) if it was recorded before.
    fn write_tx(
        &mut self,
        samples: &[Sample],
        import: Option<(&str, &str)>,
    ) -> rusqlite::Result<Option<Ids>> {
        // the write lock first: the watermarks read below stay true until the commit
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        if let Some((digest, file)) = import {
            let fresh = tx.execute(
                "INSERT INTO imports (digest, file, imported_at, samples)
                 VALUES (?1, ?2, strftime('%s', 'now'), ?3) ON CONFLICT (digest) DO NOTHING",
                params![digest, file, samples.len() as i64],
            )?;
            if fresh == 0 {
                return Ok(None);
            }
        }
        // read in the transaction: another process may have rolled up since
        let marks = levels::read_marks(&tx)?;
        let mut fresh = Ids::default();
        for sample in samples {
            write_sample(
                &tx,
                &self.host_ids,
                &self.sensor_ids,
                &mut fresh,
                &marks,
                sample,
            )?;
        }
        tx.commit()?;
        Ok(Some(fresh))
    }

    /// Keeps the ids of a committed transaction.
    fn remember(&mut self, ids: Ids) {
        self.host_ids.extend(ids.hosts);
        self.sensor_ids.extend(ids.sensors);
    }

    /// Writes the samples read from one imported file in one transaction, unless a file with
    /// the same digest was imported before (then returns false and writes nothing).
    pub fn import(
        &mut self,
        digest: &str,
        file: &str,
        samples: &[Sample],
    ) -> Result<bool, StoreError> {
        match self
            .write_tx(samples, Some((digest, file)))
            .map_err(|e| self.err(e))?
        {
            Some(ids) => {
                self.remember(ids);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Whether a file with this digest was imported.
    pub fn imported(&self, digest: &str) -> Result<bool, StoreError> {
        self.conn
            .query_row(
                "SELECT count(*) > 0 FROM imports WHERE digest = ?1",
                [digest],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))
    }

    fn sensor_filter(&self, q: &Query) -> Result<Option<i64>, StoreError> {
        let Some(name) = &q.sensor else {
            return Ok(None);
        };
        self.conn
            .query_row("SELECT id FROM sensors WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| self.err(e))?
            .map(Some)
            .ok_or_else(|| StoreError::NoSensor(name.clone()))
    }

    /// Records the local networks a sensor accounts (for overlap checks across sensors).
    pub fn set_sensor_networks(
        &mut self,
        sensor: &str,
        nets: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO sensors (name, local_networks, first_seen, last_seen) VALUES (?1, ?2, ?3, ?3)
                 ON CONFLICT (name) DO UPDATE SET local_networks = excluded.local_networks",
                params![sensor, nets, now],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }
}

/// Ids created by a transaction, cached once it commits.
#[derive(Default)]
struct Ids {
    hosts: HashMap<Host, i64>,
    sensors: HashMap<String, i64>,
}

/// Writes one sample inside a transaction, and adds it to the rollup levels whose watermark
/// is past it.
fn write_sample(
    tx: &rusqlite::Transaction<'_>,
    host_ids: &HashMap<Host, i64>,
    sensor_ids: &HashMap<String, i64>,
    fresh: &mut Ids,
    marks: &Watermarks,
    sample: &Sample,
) -> rusqlite::Result<()> {
    let sensor_id = match sensor_ids
        .get(&sample.sensor)
        .or_else(|| fresh.sensors.get(&sample.sensor))
    {
        Some(&id) => id,
        None => {
            let id = tx.query_row(
                "INSERT INTO sensors (name, first_seen, last_seen) VALUES (?1, ?2, ?2)
                 ON CONFLICT (name) DO UPDATE SET last_seen = max(last_seen, excluded.last_seen)
                 RETURNING id",
                params![sample.sensor, sample.start],
                |r| r.get(0),
            )?;
            fresh.sensors.insert(sample.sensor.clone(), id);
            id
        }
    };
    let mut host_stmt = tx.prepare_cached(
        "INSERT INTO hosts (addr) VALUES (?1)
         ON CONFLICT (addr) DO UPDATE SET addr = excluded.addr RETURNING id",
    )?;
    // One upsert per level written; the samples' interval is the last value, the rollups
    // take every value but that one.
    let mut usage_stmts = Vec::with_capacity(Level::ALL.len());
    let mut stats_stmts = Vec::with_capacity(Level::ALL.len());
    for level in Level::ALL {
        if marks.of(level).is_some_and(|m| sample.start < m) {
            usage_stmts.push((level, tx.prepare_cached(&usage_upsert_sql(level))?));
            stats_stmts.push((level, tx.prepare_cached(&stats_upsert_sql(level))?));
        }
    }
    let interval = i64::from(sample.interval_s);
    let mut values: Vec<i64> = Vec::with_capacity(4 + CELLS);
    for (host, usage) in &sample.hosts {
        let host_id = match host_ids.get(host).or_else(|| fresh.hosts.get(host)) {
            Some(&id) => id,
            None => {
                let id: i64 = host_stmt.query_row([host.to_string()], |r| r.get(0))?;
                fresh.hosts.insert(*host, id);
                id
            }
        };
        values.clear();
        values.extend([sample.start, sensor_id, host_id]);
        values.extend(usage.0.iter().map(|&v| db_int(v)));
        values.push(interval);
        write_levels(&mut usage_stmts, &mut values, sample.start)?;
    }
    let stats = stats_row(sample);
    values.clear();
    values.extend([sample.start, sensor_id]);
    values.extend(stats);
    values.push(interval);
    write_levels(&mut stats_stmts, &mut values, sample.start)?;
    tx.execute(
        "UPDATE sensors SET last_seen = max(last_seen, ?2) WHERE id = ?1",
        params![sensor_id, sample.start],
    )?;
    Ok(())
}

/// Runs each level's upsert on `values` (`[ts, keys.., counters.., interval]`), with the time
/// moved to the level's bucket; rollups take every value but the interval.
fn write_levels(
    stmts: &mut [(Level, rusqlite::CachedStatement<'_>)],
    values: &mut [i64],
    start: i64,
) -> rusqlite::Result<()> {
    let all = values.len();
    for (level, stmt) in stmts.iter_mut() {
        if let Some(ts) = values.first_mut() {
            *ts = level.floor(start);
        }
        let n = if *level == Level::Samples {
            all
        } else {
            all - 1
        };
        stmt.execute(rusqlite::params_from_iter(values.iter().take(n)))?;
    }
    Ok(())
}

/// `INSERT ... ON CONFLICT DO UPDATE` adding every counter: values are the keys, the counters,
/// then the `extra` columns (kept from the first write).
fn upsert_sql(table: &str, keys: &[&str], counters: &[&str], extra: &[&str]) -> String {
    let cols: Vec<&str> = keys.iter().chain(counters).chain(extra).copied().collect();
    let marks: Vec<String> = (1..=cols.len()).map(|i| format!("?{i}")).collect();
    let adds: Vec<String> = counters
        .iter()
        .map(|c| format!("{c} = {c} + excluded.{c}"))
        .collect();
    format!(
        "INSERT INTO {table} ({}) VALUES ({})
         ON CONFLICT ({}) DO UPDATE SET {}",
        cols.join(", "),
        marks.join(", "),
        keys.join(", "),
        adds.join(", ")
    )
}

fn usage_upsert_sql(level: Level) -> String {
    let counters: Vec<&str> = COLUMNS.iter().map(String::as_str).collect();
    let extra: &[&str] = if level == Level::Samples {
        &["interval_s"]
    } else {
        &[]
    };
    upsert_sql(
        usage_table(level),
        &["ts", "sensor_id", "host_id"],
        &counters,
        extra,
    )
}

fn stats_upsert_sql(level: Level) -> String {
    let extra: &[&str] = if level == Level::Samples {
        &["interval_s"]
    } else {
        &[]
    };
    upsert_sql(
        stats_table(level),
        &["ts", "sensor_id"],
        &STATS_COLUMNS,
        extra,
    )
}

impl Store for SqliteStore {
    fn write(&mut self, sample: &Sample) -> Result<(), StoreError> {
        let ids = self
            .write_tx(std::slice::from_ref(sample), None)
            .map_err(|e| self.err(e))?;
        if let Some(ids) = ids {
            self.remember(ids);
        }
        Ok(())
    }

    fn roll_up(&mut self, complete_before: i64, max_buckets: usize) -> Result<usize, StoreError> {
        self.roll_levels(complete_before, max_buckets)
    }

    fn watermarks(&self) -> Result<Watermarks, StoreError> {
        if self.version < 2 {
            // a store not migrated yet (opened read-only): samples only
            return Ok(Watermarks::default());
        }
        levels::read_marks(&self.conn).map_err(|e| self.err(e))
    }

    fn usage_at(&self, level: Level, q: &Query) -> Result<Vec<(Host, Usage)>, StoreError> {
        self.read_usage(level, q)
    }

    fn usage_by_host(&self, q: &Query) -> Result<Vec<(Host, Usage)>, StoreError> {
        self.snapshot(|| super::planned_usage(self, q))
    }

    fn series(&self, q: &SeriesQuery) -> Result<Series, StoreError> {
        self.series_of(q)
    }

    fn guard(&self) -> Option<&dyn super::guard::GuardStore> {
        Some(self)
    }

    fn stats(&self, q: &Query) -> Result<RangeStats, StoreError> {
        self.snapshot(|| super::planned_stats(self, q))
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
