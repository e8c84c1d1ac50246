//! Rolling samples up into the hourly, daily and monthly levels of the SQLite store (one bucket
//! per short transaction, behind a watermark), reading one level (usage per host, series,
//! statistics), and pruning each level past its retention in short transactions. Which level
//! answers what is decided by `rollup::plan`, not here.

use super::hosts::{id_list, Lookup};
use super::SqliteStore;
use crate::rollup::{Level, Retention, Watermarks};
use crate::store::schema::{stats_table, usage_table, COLUMNS, STATS_COLUMNS};
use crate::store::{Query, RangeStats, StoreError};
use crate::usage::{Host, Usage};
use rusqlite::{params, Connection, OptionalExtension, Row};
use std::collections::HashMap;

/// The watermarks as stored.
pub(super) fn read_marks(conn: &Connection) -> rusqlite::Result<Watermarks> {
    let mut marks = Watermarks::default();
    let mut stmt = conn.prepare_cached("SELECT level, upto FROM rolled")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    for row in rows {
        let (level, upto) = row?;
        marks.set(&level, Some(upto));
    }
    Ok(marks)
}

/// The first time at or after `from` in a level's usage or statistics table.
fn first_at_or_after(conn: &Connection, level: Level, from: i64) -> rusqlite::Result<Option<i64>> {
    let sql = format!(
        "SELECT min(m) FROM (SELECT min(ts) AS m FROM {} WHERE ts >= ?1
                             UNION ALL SELECT min(ts) FROM {} WHERE ts >= ?1)",
        usage_table(level),
        stats_table(level)
    );
    conn.query_row(&sql, [from], |r| r.get(0))
}

/// Whether no level finer than `level` holds anything at or after `from`.
fn nothing_finer_past(conn: &Connection, level: Level, from: i64) -> rusqlite::Result<bool> {
    for finer in Level::ALL.into_iter().filter(|l| *l < level) {
        if first_at_or_after(conn, finer, from)?.is_some() {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Rolls the next bucket of `level` holding anything up from the finer level, if it ends by
/// `complete_before` and the finer level holds all of it. Returns whether it rolled one.
fn roll_one(conn: &mut Connection, level: Level, complete_before: i64) -> rusqlite::Result<bool> {
    let Some(finer) = level.finer() else {
        return Ok(false);
    };
    // the write lock first: no writer moves the watermarks meanwhile
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let marks = read_marks(&tx)?;
    // the finer level holds everything up to here
    let finer_mark = marks.of(finer).unwrap_or(i64::MIN);
    let mark = marks.of(level);
    let first = first_at_or_after(&tx, finer, mark.unwrap_or(i64::MIN))?;
    let Some(first) = first else {
        return Ok(false);
    };
    let bucket = level.floor(first.max(mark.unwrap_or(i64::MIN)));
    let end = level.next(bucket);
    // a bucket is complete when it ends by `complete_before`, and the finer level holds all
    // of it: it ends by the finer watermark, or nothing finer lies past that watermark
    let finer_done = end <= finer_mark || nothing_finer_past(&tx, finer, finer_mark)?;
    if end > complete_before || !finer_done {
        return Ok(false);
    }
    let sums: Vec<String> = COLUMNS.iter().map(|c| format!("sum({c})")).collect();
    tx.execute(
        &format!(
            "INSERT INTO {} (ts, sensor_id, host_id, {}) SELECT ?1, sensor_id, host_id, {}
             FROM {} WHERE ts >= ?1 AND ts < ?2 GROUP BY sensor_id, host_id",
            usage_table(level),
            COLUMNS.join(", "),
            sums.join(", "),
            usage_table(finer)
        ),
        params![bucket, end],
    )?;
    let stat_sums: Vec<String> = STATS_COLUMNS.iter().map(|c| format!("sum({c})")).collect();
    tx.execute(
        &format!(
            "INSERT INTO {} (ts, sensor_id, {}) SELECT ?1, sensor_id, {}
             FROM {} WHERE ts >= ?1 AND ts < ?2 GROUP BY sensor_id",
            stats_table(level),
            STATS_COLUMNS.join(", "),
            stat_sums.join(", "),
            stats_table(finer)
        ),
        params![bucket, end],
    )?;
    tx.execute(
        "INSERT INTO rolled (level, upto) VALUES (?1, ?2)
         ON CONFLICT (level) DO UPDATE SET upto = excluded.upto",
        params![level.name(), end],
    )?;
    tx.commit()?;
    Ok(true)
}

/// Reads the usage columns of a row starting at column `first`.
fn usage_from(r: &Row<'_>, first: usize) -> rusqlite::Result<Usage> {
    let mut usage = Usage::default();
    for (i, v) in usage.0.iter_mut().enumerate() {
        *v = r.get::<_, i64>(first + i)?.max(0) as u64;
    }
    Ok(usage)
}

/// Adds the usage columns of a row starting at column `first` to `sum`, reading each value
/// in place (no conversion per column but the integer's).
fn add_usage(r: &Row<'_>, first: usize, sum: &mut Usage) -> rusqlite::Result<()> {
    for (i, v) in sum.0.iter_mut().enumerate() {
        let x = r.get_ref(first + i)?.as_i64().map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(
                first + i,
                rusqlite::types::Type::Integer,
                Box::new(e),
            )
        })?;
        *v = v.saturating_add(x.max(0) as u64);
    }
    Ok(())
}

fn series_row(r: &Row<'_>) -> rusqlite::Result<(i64, Usage)> {
    Ok((r.get(0)?, usage_from(r, 1)?))
}

impl SqliteStore {
    /// Rolls up to `max_buckets` buckets, hours first (a day needs its hours, a month its
    /// days).
    pub(super) fn roll_levels(
        &mut self,
        complete_before: i64,
        max_buckets: usize,
    ) -> Result<usize, StoreError> {
        let mut rolled = 0;
        'next: while rolled < max_buckets {
            for level in [Level::Hourly, Level::Daily, Level::Monthly] {
                if roll_one(&mut self.conn, level, complete_before)
                    .map_err(|e| Self::error_at(&self.path, e))?
                {
                    rolled += 1;
                    continue 'next;
                }
            }
            break;
        }
        Ok(rolled)
    }

    /// Every host's usage summed over the range of one level. The rows are read in key order
    /// and summed here, by host id, each value added in place: `GROUP BY host_id` in SQL sorts every row (no index by host) and calls `sum` per column
    /// and row, 0.6 s for a month of 10,000 hosts' days (`benches/web.rs`) where this takes
    /// about half. Then each host's address, once.
    pub(super) fn read_usage(
        &self,
        level: Level,
        q: &Query,
    ) -> Result<Vec<(Host, Usage)>, StoreError> {
        let sensor = self.sensor_filter(q)?;
        let cols: Vec<String> = COLUMNS.iter().map(|c| format!("s.{c}")).collect();
        let sql = format!(
            "SELECT s.host_id, {} FROM {} s
             WHERE s.ts >= ?1 AND s.ts < ?2 AND (?3 IS NULL OR s.sensor_id = ?3)",
            cols.join(", "),
            usage_table(level)
        );
        let mut sums: HashMap<i64, Usage> = HashMap::new();
        let mut stmt = self.conn.prepare_cached(&sql).map_err(|e| self.err(e))?;
        let mut rows = stmt
            .query(params![q.from, q.to, sensor])
            .map_err(|e| self.err(e))?;
        while let Some(r) = rows.next().map_err(|e| self.err(e))? {
            let id: i64 = r.get(0).map_err(|e| self.err(e))?;
            add_usage(r, 1, sums.entry(id).or_default()).map_err(|e| self.err(e))?;
        }
        if sums.is_empty() {
            return Ok(Vec::new());
        }
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, addr FROM hosts")
            .map_err(|e| self.err(e))?;
        let mut rows = stmt.query([]).map_err(|e| self.err(e))?;
        let mut out = Vec::with_capacity(sums.len());
        while let Some(r) = rows.next().map_err(|e| self.err(e))? {
            let id: i64 = r.get(0).map_err(|e| self.err(e))?;
            let Some(usage) = sums.remove(&id) else {
                continue;
            };
            let addr: String = r.get(1).map_err(|e| self.err(e))?;
            let host = addr.parse().map_err(|_| StoreError::BadHost {
                path: self.path.display().to_string(),
                addr,
            })?;
            out.push((host, usage));
        }
        Ok(out)
    }

    /// Per bucket, every host together (one pass over the range) or one host (through the
    /// statistics rows, one per bucket and sensor, and the primary key: a few lookups per
    /// bucket, however many hosts the store holds).
    pub(super) fn read_series(
        &self,
        level: Level,
        q: &Query,
        host: Option<&Host>,
    ) -> Result<Vec<(i64, Usage)>, StoreError> {
        let sensor = self.sensor_filter(q)?;
        let sums: Vec<String> = COLUMNS.iter().map(|c| format!("sum(s.{c})")).collect();
        let mut out = Vec::new();
        let Some(host) = host else {
            let sql = format!(
                "SELECT s.ts, {} FROM {} s
                 WHERE s.ts >= ?1 AND s.ts < ?2 AND (?3 IS NULL OR s.sensor_id = ?3)
                 GROUP BY s.ts ORDER BY s.ts",
                sums.join(", "),
                usage_table(level)
            );
            let mut stmt = self.conn.prepare_cached(&sql).map_err(|e| self.err(e))?;
            let rows = stmt
                .query_map(params![q.from, q.to, sensor], series_row)
                .map_err(|e| self.err(e))?;
            for row in rows {
                out.push(row.map_err(|e| self.err(e))?);
            }
            return Ok(out);
        };
        let id: Option<i64> = self
            .conn
            .query_row(
                "SELECT id FROM hosts WHERE addr = ?1",
                [host.to_string()],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        let Some(id) = id else {
            return Ok(out);
        };
        let lookup = Lookup {
            level,
            from: q.from,
            to: q.to,
            sensor,
            ids: &id_list(&[id]),
        };
        self.each_time_of_hosts(&lookup, &sums.join(", "), |r| {
            out.push(series_row(r)?);
            Ok(())
        })?;
        Ok(out)
    }

    pub(super) fn read_stats(&self, level: Level, q: &Query) -> Result<RangeStats, StoreError> {
        let sensor = self.sensor_filter(q)?;
        let sums: Vec<String> = STATS_COLUMNS
            .iter()
            .map(|c| format!("coalesce(sum({c}), 0)"))
            .collect();
        let sql = format!(
            "SELECT {} FROM {} WHERE ts >= ?1 AND ts < ?2 AND (?3 IS NULL OR sensor_id = ?3)",
            sums.join(", "),
            stats_table(level)
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

    /// Deletes, finest level first, batches of the oldest rows before each level's cutoff, one
    /// short transaction per batch, until `max_rows` went or nothing is left. A level whose
    /// tables are clear up to the cutoff records it as its horizon.
    pub(super) fn prune_levels(
        &mut self,
        retention: &Retention,
        now: i64,
        max_rows: usize,
    ) -> Result<usize, StoreError> {
        /// Rows per transaction: a few milliseconds of work, so a flush never waits long.
        const BATCH: usize = 2_000;
        let marks = read_marks(&self.conn).map_err(|e| self.err(e))?;
        crate::store::schema::prune_levels(
            retention,
            marks,
            now,
            max_rows,
            BATCH,
            |table, keys, cutoff, limit| {
                let sql = format!(
                    "DELETE FROM {table} WHERE ({keys}) IN
                     (SELECT {keys} FROM {table} WHERE ts < ?1 ORDER BY ts LIMIT ?2)"
                );
                self.conn
                    .execute(&sql, params![cutoff, limit as i64])
                    .map_err(|e| self.err(e))
            },
            |level, cutoff| {
                // both tables are clear up to the cutoff
                self.conn
                    .execute(
                        "INSERT INTO pruned (level, before) VALUES (?1, ?2)
                         ON CONFLICT (level) DO UPDATE SET before = excluded.before
                         WHERE excluded.before > pruned.before",
                        params![level.name(), cutoff],
                    )
                    .map(drop)
                    .map_err(|e| self.err(e))
            },
        )
    }

    pub(super) fn read_kept_since(&self, level: Level) -> Result<Option<i64>, StoreError> {
        if self.version < 2 {
            return Ok(None);
        }
        self.conn
            .query_row(
                "SELECT before FROM pruned WHERE level = ?1",
                [level.name()],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))
    }
}
