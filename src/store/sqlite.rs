//! The embedded SQLite store: WAL mode (readers never wait for the flusher), one transaction per
//! flushed interval, upserts that add to an existing row, migrations from the schema table.

mod guard;
mod quota;
mod series;

use super::schema::{sqlite_migrations, COLUMNS, STATS_COLUMNS};
use super::{Query, RangeStats, Sample, Series, SeriesQuery, Store, StoreError};
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
}

/// How long a writer or reader waits for a lock before reporting the store busy.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A counter as SQLite stores it (signed 64-bit; saturates rather than wraps).
fn db_int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

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
        };
        store.setup().map_err(|e| store.err(e))?;
        store.migrate()?;
        Ok(store)
    }

    /// Opens an existing store for reading only (reports): never creates or migrates.
    pub fn open_read_only(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| Self::error_at(path, e))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| Self::error_at(path, e))?;
        let store = Self {
            path: path.to_owned(),
            conn,
            host_ids: HashMap::new(),
            sensor_ids: HashMap::new(),
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

    /// How long to wait for another writer's lock before reporting the store busy.
    pub fn set_busy_timeout(&self, wait: Duration) -> Result<(), StoreError> {
        self.conn.busy_timeout(wait).map_err(|e| self.err(e))
    }

    /// The store's schema version.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        self.version().map_err(|e| self.err(e))
    }

    fn write_tx(&mut self, sample: &Sample) -> rusqlite::Result<Vec<(Host, i64)>> {
        let tx = self.conn.transaction()?;
        let sensor_id = match self.sensor_ids.get(&sample.sensor) {
            Some(&id) => id,
            None => tx.query_row(
                "INSERT INTO sensors (name, first_seen, last_seen) VALUES (?1, ?2, ?2)
                 ON CONFLICT (name) DO UPDATE SET last_seen = max(last_seen, excluded.last_seen)
                 RETURNING id",
                params![sample.sensor, sample.start],
                |r| r.get(0),
            )?,
        };
        let mut new_hosts = Vec::new();
        {
            let mut host_stmt = tx.prepare_cached(
                "INSERT INTO hosts (addr) VALUES (?1)
                 ON CONFLICT (addr) DO UPDATE SET addr = excluded.addr RETURNING id",
            )?;
            let mut sample_stmt = tx.prepare_cached(&upsert_sql())?;
            let mut values: Vec<i64> = Vec::with_capacity(4 + CELLS);
            for (host, usage) in &sample.hosts {
                let host_id = match self.host_ids.get(host) {
                    Some(&id) => id,
                    None => {
                        let id: i64 = host_stmt.query_row([host.to_string()], |r| r.get(0))?;
                        new_hosts.push((*host, id));
                        id
                    }
                };
                values.clear();
                values.extend([
                    sample.start,
                    sensor_id,
                    host_id,
                    i64::from(sample.interval_s),
                ]);
                values.extend(usage.0.iter().map(|&v| db_int(v)));
                sample_stmt.execute(rusqlite::params_from_iter(values.iter()))?;
            }
            let s = &sample.stats;
            let k = &sample.kernel;
            let stats = [
                s.packets,
                s.accounted,
                s.bytes,
                s.foreign,
                s.non_ip,
                s.malformed,
                s.length_mismatch,
                k.received,
                k.dropped,
                k.if_dropped,
            ];
            let mut stats_stmt = tx.prepare_cached(&stats_upsert_sql())?;
            let mut values = vec![sample.start, sensor_id, i64::from(sample.interval_s)];
            values.extend(stats.iter().map(|&v| db_int(v)));
            stats_stmt.execute(rusqlite::params_from_iter(values.iter()))?;
            tx.execute(
                "UPDATE sensors SET last_seen = max(last_seen, ?2) WHERE id = ?1",
                params![sensor_id, sample.start],
            )?;
        }
        tx.commit()?;
        self.sensor_ids.insert(sample.sensor.clone(), sensor_id);
        Ok(new_hosts)
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

/// `INSERT ... ON CONFLICT DO UPDATE` adding every usage column.
fn upsert_sql() -> String {
    let cols = COLUMNS.join(", ");
    let marks: Vec<String> = (1..=4 + CELLS).map(|i| format!("?{i}")).collect();
    let adds: Vec<String> = COLUMNS
        .iter()
        .map(|c| format!("{c} = {c} + excluded.{c}"))
        .collect();
    format!(
        "INSERT INTO samples (ts, sensor_id, host_id, interval_s, {cols}) VALUES ({})
         ON CONFLICT (ts, sensor_id, host_id) DO UPDATE SET {}",
        marks.join(", "),
        adds.join(", ")
    )
}

fn stats_upsert_sql() -> String {
    let cols = STATS_COLUMNS.join(", ");
    let marks: Vec<String> = (1..=3 + STATS_COLUMNS.len())
        .map(|i| format!("?{i}"))
        .collect();
    let adds: Vec<String> = STATS_COLUMNS
        .iter()
        .map(|c| format!("{c} = {c} + excluded.{c}"))
        .collect();
    format!(
        "INSERT INTO capture_stats (ts, sensor_id, interval_s, {cols}) VALUES ({})
         ON CONFLICT (ts, sensor_id) DO UPDATE SET {}",
        marks.join(", "),
        adds.join(", ")
    )
}

impl Store for SqliteStore {
    fn write(&mut self, sample: &Sample) -> Result<(), StoreError> {
        let new_hosts = self.write_tx(sample).map_err(|e| self.err(e))?;
        self.host_ids.extend(new_hosts);
        Ok(())
    }

    fn usage_by_host(&self, q: &Query) -> Result<Vec<(Host, Usage)>, StoreError> {
        let sensor = self.sensor_filter(q)?;
        let sums: Vec<String> = COLUMNS.iter().map(|c| format!("sum(s.{c})")).collect();
        let sql = format!(
            "SELECT h.addr, {} FROM samples s JOIN hosts h ON h.id = s.host_id
             WHERE s.ts >= ?1 AND s.ts < ?2 AND (?3 IS NULL OR s.sensor_id = ?3)
             GROUP BY s.host_id",
            sums.join(", ")
        );
        let mut stmt = self.conn.prepare_cached(&sql).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![q.from, q.to, sensor], |r| {
                let addr: String = r.get(0)?;
                let mut usage = Usage::default();
                for (i, v) in usage.0.iter_mut().enumerate() {
                    *v = r.get::<_, i64>(i + 1)?.max(0) as u64;
                }
                Ok((addr, usage))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (addr, usage) = row.map_err(|e| self.err(e))?;
            let host = addr.parse().map_err(|_| StoreError::BadHost {
                path: self.path.display().to_string(),
                addr,
            })?;
            out.push((host, usage));
        }
        Ok(out)
    }

    fn series(&self, q: &SeriesQuery) -> Result<Series, StoreError> {
        self.series_of(q)
    }

    fn guard(&self) -> Option<&dyn super::guard::GuardStore> {
        Some(self)
    }

    fn stats(&self, q: &Query) -> Result<RangeStats, StoreError> {
        let sensor = self.sensor_filter(q)?;
        let sums: Vec<String> = STATS_COLUMNS
            .iter()
            .map(|c| format!("coalesce(sum({c}), 0)"))
            .collect();
        let sql = format!(
            "SELECT {} FROM capture_stats WHERE ts >= ?1 AND ts < ?2 AND (?3 IS NULL OR sensor_id = ?3)",
            sums.join(", ")
        );
        self.conn
            .query_row(&sql, params![q.from, q.to, sensor], |r| {
                let v = |i: usize| r.get::<_, i64>(i).map(|x| x.max(0) as u64);
                Ok(RangeStats {
                    packets: crate::counters::PacketStats {
                        packets: v(0)?,
                        accounted: v(1)?,
                        bytes: v(2)?,
                        foreign: v(3)?,
                        non_ip: v(4)?,
                        malformed: v(5)?,
                        length_mismatch: v(6)?,
                    },
                    kernel: crate::capture::live::KernelStats {
                        received: v(7)?,
                        dropped: v(8)?,
                        if_dropped: v(9)?,
                    },
                })
            })
            .map_err(|e| self.err(e))
    }
}
