//! Rolling samples up into the hourly, daily and monthly levels of the PostgreSQL store (one
//! bucket per short transaction, the watermark row locked so that no sensor's write slips
//! under it), reading one level (usage per host, series, statistics, quota traffic), and
//! pruning past the retention. One host's rows of a level are found through the statistics rows (one per
//! bucket and sensor) and the primary key. Which level answers what is `rollup::plan`'s.

use super::{count, PgStore};
use crate::counters::PacketStats;
use crate::rollup::{Level, Retention, Watermarks};
use crate::store::quota::Bucket;
use crate::store::schema::{stats_table, usage_table, COLUMNS, STATS_COLUMNS};
use crate::store::series::{capped_selection, Series, SeriesQuery};
use crate::store::{Query, RangeStats, StoreError};
use crate::usage::{cell, Dir, Host, Usage};
use postgres::{Row, Transaction};

/// `sum(s.c)::bigint, ...` over every usage column.
fn sums() -> String {
    COLUMNS
        .iter()
        .map(|c| format!("coalesce(sum(s.{c}), 0)::bigint"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn usage_from(r: &Row, first: usize) -> Usage {
    let mut usage = Usage::default();
    for (i, v) in usage.0.iter_mut().enumerate() {
        *v = count(r.get::<_, i64>(first + i));
    }
    usage
}

/// The first time at or after `from` in a level's usage or statistics table.
fn first_at_or_after(
    tx: &mut Transaction<'_>,
    level: Level,
    from: i64,
) -> Result<Option<i64>, postgres::Error> {
    let sql = format!(
        "SELECT LEAST((SELECT min(ts) FROM {} WHERE ts >= $1), (SELECT min(ts) FROM {} WHERE ts >= $1))",
        usage_table(level),
        stats_table(level)
    );
    Ok(tx.query_one(&sql, &[&from])?.get(0))
}

/// Whether no level finer than `level` holds anything at or after `from`.
fn nothing_finer_past(
    tx: &mut Transaction<'_>,
    level: Level,
    from: i64,
) -> Result<bool, postgres::Error> {
    for finer in Level::ALL.into_iter().filter(|l| *l < level) {
        if first_at_or_after(tx, finer, from)?.is_some() {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Rolls the next bucket of `level` up, as the SQLite store does; returns whether it did.
fn roll_one(
    client: &mut postgres::Client,
    level: Level,
    complete_before: i64,
) -> Result<bool, postgres::Error> {
    let Some(finer) = level.finer() else {
        return Ok(false);
    };
    let mut tx = client.transaction()?;
    // the watermark row first: writers hold it FOR SHARE until they commit
    let mark: Option<i64> = tx
        .query_one(
            "SELECT upto FROM rolled WHERE level = $1 FOR UPDATE",
            &[&level.name()],
        )?
        .get(0);
    let finer_mark: Option<i64> = match finer {
        Level::Samples => Some(i64::MAX),
        _ => tx
            .query_one("SELECT upto FROM rolled WHERE level = $1", &[&finer.name()])?
            .get(0),
    };
    let finer_mark = finer_mark.unwrap_or(i64::MIN);
    let Some(first) = first_at_or_after(&mut tx, finer, mark.unwrap_or(i64::MIN))? else {
        return Ok(false);
    };
    let bucket = level.floor(first.max(mark.unwrap_or(i64::MIN)));
    let end = level.next(bucket);
    let finer_done = end <= finer_mark || nothing_finer_past(&mut tx, finer, finer_mark)?;
    if end > complete_before || !finer_done {
        return Ok(false);
    }
    let plain: Vec<String> = COLUMNS.iter().map(|c| format!("sum({c})")).collect();
    tx.execute(
        &format!(
            "INSERT INTO {} (ts, sensor_id, host_id, {}) SELECT $1::bigint, sensor_id, host_id, {}
             FROM {} WHERE ts >= $1 AND ts < $2 GROUP BY sensor_id, host_id",
            usage_table(level),
            COLUMNS.join(", "),
            plain.join(", "),
            usage_table(finer)
        ),
        &[&bucket, &end],
    )?;
    let stat_sums: Vec<String> = STATS_COLUMNS.iter().map(|c| format!("sum({c})")).collect();
    tx.execute(
        &format!(
            "INSERT INTO {} (ts, sensor_id, {}) SELECT $1::bigint, sensor_id, {}
             FROM {} WHERE ts >= $1 AND ts < $2 GROUP BY sensor_id",
            stats_table(level),
            STATS_COLUMNS.join(", "),
            stat_sums.join(", "),
            stats_table(finer)
        ),
        &[&bucket, &end],
    )?;
    tx.execute(
        "UPDATE rolled SET upto = $2 WHERE level = $1",
        &[&level.name(), &end],
    )?;
    tx.commit()?;
    Ok(true)
}

/// `tcp_tx_bytes + udp_tx_bytes + ...`: the total bytes of one direction.
fn total_expr(dir: Dir) -> String {
    crate::classify::Class::ALL
        .iter()
        .filter(|c| matches!(c, crate::classify::Class::Proto(_)))
        .filter_map(|c| COLUMNS.get(cell(dir, c.index(), false)))
        .map(|c| format!("s.{c}"))
        .collect::<Vec<_>>()
        .join(" + ")
}

impl PgStore {
    pub(super) fn read_marks(&self) -> Result<Watermarks, StoreError> {
        let rows = self
            .client
            .borrow_mut()
            .query("SELECT level, upto FROM rolled", &[])
            .map_err(|e| self.err(&e))?;
        let mut marks = Watermarks::default();
        for row in rows {
            let level: String = row.get(0);
            marks.set(&level, row.get(1));
        }
        Ok(marks)
    }

    /// Rolls up to `max_buckets` buckets, hours first (a day needs its hours, a month its
    /// days).
    pub(super) fn roll_levels(
        &mut self,
        complete_before: i64,
        max_buckets: usize,
    ) -> Result<usize, StoreError> {
        let mut rolled = 0;
        let mut client = self.client.borrow_mut();
        'next: while rolled < max_buckets {
            for level in [Level::Hourly, Level::Daily, Level::Monthly] {
                if roll_one(&mut client, level, complete_before).map_err(|e| self.err(&e))? {
                    rolled += 1;
                    continue 'next;
                }
            }
            break;
        }
        Ok(rolled)
    }

    pub(super) fn read_usage(
        &self,
        level: Level,
        q: &Query,
    ) -> Result<Vec<(Host, Usage)>, StoreError> {
        let sensor = self.sensor_filter(q)?;
        let sql = format!(
            "SELECT h.addr, u.* FROM (
               SELECT s.host_id, {} FROM {} s
               WHERE s.ts >= $1 AND s.ts < $2 AND ($3::integer IS NULL OR s.sensor_id = $3)
               GROUP BY s.host_id) u
             JOIN hosts h ON h.id = u.host_id",
            sums(),
            usage_table(level)
        );
        let rows = self
            .client
            .borrow_mut()
            .query(&sql, &[&q.from, &q.to, &sensor])
            .map_err(|e| self.err(&e))?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let addr: String = r.get(0);
            let host = addr.parse().map_err(|_| self.bad_host(addr))?;
            out.push((host, usage_from(&r, 2)));
        }
        Ok(out)
    }

    pub(super) fn read_series(
        &self,
        level: Level,
        q: &Query,
        host: Option<&Host>,
    ) -> Result<Vec<(i64, Usage)>, StoreError> {
        let sensor = self.sensor_filter(q)?;
        let (usage, stats) = (usage_table(level), stats_table(level));
        let rows = match host {
            None => {
                let sql = format!(
                    "SELECT s.ts, {} FROM {usage} s
                     WHERE s.ts >= $1 AND s.ts < $2 AND ($3::integer IS NULL OR s.sensor_id = $3)
                     GROUP BY s.ts ORDER BY s.ts",
                    sums()
                );
                self.client
                    .borrow_mut()
                    .query(&sql, &[&q.from, &q.to, &sensor])
            }
            Some(h) => {
                // one key lookup per statistics row (bucket and sensor)
                let sql = format!(
                    "SELECT c.ts, {} FROM {stats} c
                     JOIN LATERAL (SELECT * FROM {usage} u
                                   WHERE u.ts = c.ts AND u.sensor_id = c.sensor_id
                                     AND u.host_id = (SELECT id FROM hosts WHERE addr = $4)) s ON true
                     WHERE c.ts >= $1 AND c.ts < $2 AND ($3::integer IS NULL OR c.sensor_id = $3)
                     GROUP BY c.ts ORDER BY c.ts",
                    sums()
                );
                self.client
                    .borrow_mut()
                    .query(&sql, &[&q.from, &q.to, &sensor, &h.to_string()])
            }
        }
        .map_err(|e| self.err(&e))?;
        Ok(rows.iter().map(|r| (r.get(0), usage_from(r, 1))).collect())
    }

    pub(super) fn read_stats(&self, level: Level, q: &Query) -> Result<RangeStats, StoreError> {
        let sensor = self.sensor_filter(q)?;
        let sums: Vec<String> = STATS_COLUMNS
            .iter()
            .map(|c| format!("coalesce(sum({c}), 0)::bigint"))
            .collect();
        let sql = format!(
            "SELECT {} FROM {} WHERE ts >= $1 AND ts < $2 AND ($3::integer IS NULL OR sensor_id = $3)",
            sums.join(", "),
            stats_table(level)
        );
        let r = self
            .client
            .borrow_mut()
            .query_one(&sql, &[&q.from, &q.to, &sensor])
            .map_err(|e| self.err(&e))?;
        let v = |i: usize| count(r.get::<_, i64>(i));
        Ok(RangeStats {
            packets: PacketStats {
                packets: v(0),
                accounted: v(1),
                bytes: v(2),
                foreign: v(3),
                non_ip: v(4),
                malformed: v(5),
                length_mismatch: v(6),
            },
            kernel: crate::capture::live::KernelStats {
                received: v(7),
                dropped: v(8),
                if_dropped: v(9),
            },
        })
    }

    /// Ids of the stored hosts inside any of `nets`, at most [`MAX_SELECTED_HOSTS`].
    fn selected_host_ids(&self, nets: &[ipnet::IpNet]) -> Result<Vec<i64>, StoreError> {
        let rows = self
            .client
            .borrow_mut()
            .query("SELECT id, addr FROM hosts", &[])
            .map_err(|e| self.err(&e))?;
        let mut ids = Vec::new();
        for r in rows {
            let addr: String = r.get(1);
            let inside = match addr.parse::<Host>() {
                Ok(Host::Addr(a)) => nets.iter().any(|n| n.contains(&a)),
                Ok(Host::Net(h)) => nets.iter().any(|n| n.contains(&h)),
                Err(_) => false,
            };
            if inside {
                ids.push(r.get(0));
            }
        }
        capped_selection(ids)
    }

    pub(super) fn series_of(&self, q: &SeriesQuery) -> Result<Series, StoreError> {
        let mut series = q.empty_series();
        let step = series.step;
        let sensor = self.sensor_filter(&q.range)?;
        let ids = self.selected_host_ids(&q.nets)?;
        if ids.is_empty() || q.range.to <= q.range.from {
            return Ok(series);
        }
        let sql = format!(
            "SELECT ((c.ts - $1) / $3)::bigint AS b, max(s.interval_s)::bigint, {} FROM capture_stats c
             JOIN LATERAL (SELECT * FROM samples u
                           WHERE u.ts = c.ts AND u.sensor_id = c.sensor_id
                             AND u.host_id = ANY($4::bigint[])) s ON true
             WHERE c.ts >= $1 AND c.ts < $2 AND ($5::integer IS NULL OR c.sensor_id = $5)
             GROUP BY b ORDER BY b",
            sums()
        );
        let rows = self
            .client
            .borrow_mut()
            .query(&sql, &[&q.range.from, &q.range.to, &step, &ids, &sensor])
            .map_err(|e| self.err(&e))?;
        for r in rows {
            let bucket: i64 = r.get(0);
            let interval: i64 = r.get(1);
            series.interval_s = series.interval_s.max(interval);
            series
                .points
                .push((q.range.from + bucket * step, usage_from(&r, 2)));
        }
        Ok(series)
    }

    /// Hosts with an id above `after`, with their ids (ids only grow).
    pub fn hosts_after(&self, after: i64) -> Result<Vec<(i64, Host)>, StoreError> {
        let rows = self
            .client
            .borrow_mut()
            .query(
                "SELECT id, addr FROM hosts WHERE id > $1 ORDER BY id",
                &[&after],
            )
            .map_err(|e| self.err(&e))?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let addr: String = r.get(1);
            let host = addr.parse().map_err(|_| self.bad_host(addr))?;
            out.push((r.get(0), host));
        }
        Ok(out)
    }

    /// Bytes sent and received by the hosts, summed over every sensor, per bucket of
    /// `bucket_s` seconds over [from, to), from the samples.
    pub fn traffic_buckets(
        &self,
        hosts: &[i64],
        from: i64,
        to: i64,
        bucket_s: u32,
    ) -> Result<Vec<Bucket>, StoreError> {
        let b = i64::from(bucket_s.max(1));
        let sql = format!(
            "SELECT c.ts - (((c.ts % $1) + $1) % $1) AS b,
                    coalesce(sum({}), 0)::bigint, coalesce(sum({}), 0)::bigint
             FROM capture_stats c
             JOIN LATERAL (SELECT * FROM samples u
                           WHERE u.ts = c.ts AND u.sensor_id = c.sensor_id
                             AND u.host_id = ANY($4::bigint[])) s ON true
             WHERE c.ts >= $2 AND c.ts < $3
             GROUP BY b ORDER BY b",
            total_expr(Dir::Tx),
            total_expr(Dir::Rx)
        );
        let hosts = hosts.to_vec();
        let rows = self
            .client
            .borrow_mut()
            .query(&sql, &[&b, &from, &to, &hosts])
            .map_err(|e| self.err(&e))?;
        Ok(rows
            .iter()
            .map(|r| Bucket {
                start: r.get(0),
                tx_bytes: count(r.get(1)),
                rx_bytes: count(r.get(2)),
            })
            .collect())
    }

    /// Deletes, finest level first, batches of the oldest rows before each level's cutoff
    /// (never what the next coarser level does not hold yet), as the SQLite store does.
    pub(super) fn prune_levels(
        &mut self,
        retention: &Retention,
        now: i64,
        max_rows: usize,
    ) -> Result<usize, StoreError> {
        const BATCH: usize = 5_000;
        let marks = self.read_marks()?;
        crate::store::schema::prune_levels(
            retention,
            marks,
            now,
            max_rows,
            BATCH,
            |table, keys, cutoff, limit| {
                let sql = format!(
                    "DELETE FROM {table} WHERE ({keys}) IN
                     (SELECT {keys} FROM {table} WHERE ts < $1 ORDER BY ts LIMIT $2)"
                );
                self.client
                    .borrow_mut()
                    .execute(&sql, &[&cutoff, &(limit as i64)])
                    .map(|n| n as usize)
                    .map_err(|e| self.err(&e))
            },
            |level, cutoff| {
                self.client
                    .borrow_mut()
                    .execute(
                        "INSERT INTO pruned (level, before) VALUES ($1, $2)
                         ON CONFLICT (level) DO UPDATE SET before = excluded.before
                         WHERE excluded.before > pruned.before",
                        &[&level.name(), &cutoff],
                    )
                    .map(drop)
                    .map_err(|e| self.err(&e))
            },
        )
    }

    pub(super) fn read_kept_since(&self, level: Level) -> Result<Option<i64>, StoreError> {
        Ok(self
            .client
            .borrow_mut()
            .query_opt(
                "SELECT before FROM pruned WHERE level = $1",
                &[&level.name()],
            )
            .map_err(|e| self.err(&e))?
            .map(|r| r.get(0)))
    }
}
