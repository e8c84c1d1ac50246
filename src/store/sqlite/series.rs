//! Time series from the SQLite store: the selected hosts' usage summed per bucket, read from
//! the coarsest rollup levels whose rows fit in the buckets, by key lookups (`hosts`).

use super::hosts::{id_list, Lookup};
use super::SqliteStore;
use crate::rollup::{self, Level};
use crate::store::schema::{stats_table, usage_table, COLUMNS};
use crate::store::series::{capped_selection, Series, SeriesQuery};
use crate::store::{Store, StoreError};
use crate::usage::{Host, Usage};
use ipnet::IpNet;
use rusqlite::params;

impl SqliteStore {
    /// Ids of the stored hosts inside any of `nets`, at most [`MAX_SELECTED_HOSTS`].
    fn selected_host_ids(&self, nets: &[IpNet]) -> Result<Vec<i64>, StoreError> {
        let exact = nets.iter().all(|n| n.prefix_len() == n.max_prefix_len());
        let ids: Vec<i64> = if exact {
            let addrs: Vec<String> = nets.iter().map(|n| n.addr().to_string()).collect();
            let json = serde_json::to_string(&addrs).unwrap_or_else(|_| "[]".into());
            let mut stmt = self
                .conn
                .prepare_cached(
                    "SELECT id FROM hosts WHERE addr IN (SELECT value FROM json_each(?1))",
                )
                .map_err(|e| self.err(e))?;
            let rows = stmt
                .query_map([json], |r| r.get(0))
                .map_err(|e| self.err(e))?;
            rows.collect::<Result<_, _>>().map_err(|e| self.err(e))?
        } else {
            let mut stmt = self
                .conn
                .prepare_cached("SELECT id, addr FROM hosts")
                .map_err(|e| self.err(e))?;
            let rows = stmt
                .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
                .map_err(|e| self.err(e))?;
            let mut ids = Vec::new();
            for row in rows {
                let (id, addr) = row.map_err(|e| self.err(e))?;
                let inside = match addr.parse::<Host>() {
                    Ok(Host::Addr(a)) => nets.iter().any(|n| n.contains(&a)),
                    Ok(Host::Net(h)) => nets.iter().any(|n| n.contains(&h)),
                    Err(_) => false,
                };
                if inside {
                    ids.push(id);
                }
            }
            ids
        };
        capped_selection(ids)
    }

    /// The selected hosts' usage per step, read from the coarsest levels whose rows fit in the
    /// steps ([`Level::coarsest_within`], [`rollup::plan_up_to`]) by key lookups, in one read
    /// transaction.
    pub(super) fn series_of(&self, q: &SeriesQuery) -> Result<Series, StoreError> {
        let mut series = q.empty_series();
        let step = series.step;
        let sensor = self.sensor_filter(&q.range)?;
        let ids = self.selected_host_ids(&q.nets)?;
        if ids.is_empty() || q.range.to <= q.range.from {
            return Ok(series);
        }
        let ids = id_list(&ids);
        let sums: Vec<String> = COLUMNS.iter().map(|c| format!("sum(s.{c})")).collect();
        let samples_select = format!("max(s.interval_s), {}", sums.join(", "));
        let level_select = format!("0, {}", sums.join(", "));
        let coarsest = Level::coarsest_within(q.range.from, step);
        self.snapshot(|| {
            let marks = self.watermarks()?;
            for piece in rollup::plan_up_to(q.range.from, q.range.to, coarsest, &marks) {
                let lookup = Lookup {
                    level: piece.level,
                    from: piece.from,
                    to: piece.to,
                    sensor,
                    ids: &ids,
                };
                let select = if piece.level == Level::Samples {
                    &samples_select
                } else {
                    // a rollup row holds whole samples of its sensor: their intervals are in
                    // the sensor's statistics rows
                    series.interval_s = series.interval_s.max(self.longest_interval(&lookup)?);
                    &level_select
                };
                self.each_time_of_hosts(&lookup, select, |r| {
                    let ts: i64 = r.get(0)?;
                    let interval: i64 = r.get(1)?;
                    let mut usage = Usage::default();
                    for (i, v) in usage.0.iter_mut().enumerate() {
                        *v = r.get::<_, i64>(i + 2)?.max(0) as u64;
                    }
                    series.interval_s = series.interval_s.max(interval);
                    let t = q.range.from + (ts - q.range.from).div_euclid(step) * step;
                    match series.points.last_mut() {
                        Some((last, acc)) if *last == t => acc.merge(&usage),
                        _ => series.points.push((t, usage)),
                    }
                    Ok(())
                })?;
            }
            Ok(())
        })?;
        Ok(series)
    }

    /// The longest sample interval of the sensors that have a row of the lookup's hosts in a
    /// bucket of its (rollup) level, in those buckets (0: their samples are pruned). The
    /// samples' own intervals give the same unless a sensor's interval changed inside a bucket.
    ///
    /// The statistics rows of a bucket are read by a subquery of their own, by key range: as
    /// a join, the bundled SQLite (3.54) turns the EXISTS into a join too and then reads them
    /// through an automatic index by sensor, every statistics row of the sensor for each
    /// bucket (4 s instead of 20 ms for a month of hours).
    fn longest_interval(&self, l: &Lookup<'_>) -> Result<i64, StoreError> {
        let width = l.level.bucket().unwrap_or(1);
        let mut stmt = self
            .conn
            .prepare_cached(&longest_interval_sql(l.level))
            .map_err(|e| self.err(e))?;
        stmt.query_row(params![l.from, l.to, l.sensor, l.ids, width], |r| r.get(0))
            .map_err(|e| self.err(e))
    }
}

/// [`SqliteStore::longest_interval`]'s statement on `level`: ?1 from, ?2 to, ?3 sensor id or
/// NULL, ?4 host ids ([`id_list`]), ?5 the level's bucket width.
fn longest_interval_sql(level: Level) -> String {
    format!(
        "SELECT coalesce(max((SELECT max(x.interval_s) FROM capture_stats x
               WHERE x.ts >= c.ts AND x.ts < c.ts + ?5 AND x.sensor_id = c.sensor_id)), 0)
         FROM {stats} c
         WHERE c.ts >= ?1 AND c.ts < ?2 AND (?3 IS NULL OR c.sensor_id = ?3)
           AND EXISTS (SELECT 1 FROM {usage} s WHERE s.ts = c.ts
               AND s.sensor_id = c.sensor_id
               AND s.host_id IN (SELECT value FROM json_each(?4)))",
        stats = stats_table(level),
        usage = usage_table(level)
    )
}

#[cfg(test)]
mod tests {
    use crate::classify::Class;
    use crate::parse::Proto;
    use crate::store::series::SeriesQuery;
    use crate::store::sqlite::SqliteStore;
    use crate::store::{Query, Sample, Store, StoreError};
    use crate::usage::{Dir, Usage};

    fn tcp_tx(v: u64) -> Usage {
        let mut u = Usage::default();
        u.set(Dir::Tx, Class::Proto(Proto::Tcp), false, v);
        u
    }

    fn write(s: &mut SqliteStore, sensor: &str, start: i64, hosts: &[(&str, u64)]) {
        s.write(&Sample {
            sensor: sensor.into(),
            start,
            interval_s: 60,
            hosts: hosts
                .iter()
                .map(|(h, v)| (h.parse().unwrap(), tcp_tx(*v)))
                .collect(),
            ..Default::default()
        })
        .unwrap();
    }

    fn query(nets: &[&str], from: i64, to: i64, step: i64, sensor: Option<&str>) -> SeriesQuery {
        SeriesQuery {
            range: Query {
                from,
                to,
                sensor: sensor.map(str::to_owned),
            },
            step,
            nets: nets.iter().map(|n| n.parse().unwrap()).collect(),
        }
    }

    fn values(s: &crate::store::Series) -> Vec<(i64, u64)> {
        s.points
            .iter()
            .map(|(t, u)| (*t, u.total_bytes(Dir::Tx)))
            .collect()
    }

    #[test]
    fn series_sums_selected_hosts_per_bucket() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = SqliteStore::open(&dir.path().join("bw.db")).unwrap();
        write(
            &mut s,
            "a",
            0,
            &[("198.51.100.1", 10), ("198.51.100.2", 20)],
        );
        write(&mut s, "a", 60, &[("198.51.100.1", 1)]);
        write(&mut s, "b", 60, &[("198.51.100.1", 100)]);
        write(&mut s, "a", 300, &[("198.51.100.1", 5), ("203.0.113.9", 7)]);
        write(&mut s, "a", 600, &[("198.51.100.1", 1000)]);
        write(&mut s, "a", 0, &[("2001:db8:100:1::/64", 3)]);

        let one = s
            .series(&query(&["198.51.100.1/32"], 0, 600, 60, None))
            .unwrap();
        assert_eq!(values(&one), vec![(0, 10), (60, 101), (300, 5)]);
        assert_eq!(one.interval_s, 60);
        let a_only = s
            .series(&query(&["198.51.100.1/32"], 0, 600, 120, Some("a")))
            .unwrap();
        assert_eq!(values(&a_only), vec![(0, 11), (240, 5)]);
        let net = s
            .series(&query(&["198.51.100.0/24"], 0, 601, 300, None))
            .unwrap();
        assert_eq!(values(&net), vec![(0, 131), (300, 5), (600, 1000)]);
        let set = s
            .series(&query(
                &["198.51.100.2/32", "203.0.113.9/32"],
                0,
                3600,
                3600,
                None,
            ))
            .unwrap();
        assert_eq!(values(&set), vec![(0, 27)]);
        let v6 = s
            .series(&query(&["2001:db8:100::/56"], 0, 60, 60, None))
            .unwrap();
        assert_eq!(values(&v6), vec![(0, 3)]);
        let none = s
            .series(&query(&["192.0.2.1/32"], 0, 600, 60, None))
            .unwrap();
        assert!(none.points.is_empty());
        assert!(matches!(
            s.series(&query(&["198.51.100.1/32"], 0, 600, 60, Some("zz"))),
            Err(StoreError::NoSensor(_))
        ));
    }

    #[test]
    fn a_selection_of_too_many_hosts_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = SqliteStore::open(&dir.path().join("bw.db")).unwrap();
        let hosts: Vec<String> = (0..crate::store::series::MAX_SELECTED_HOSTS + 1)
            .map(|i| format!("2001:db8:1::{i:x}"))
            .collect();
        let refs: Vec<(&str, u64)> = hosts.iter().map(|h| (h.as_str(), 1)).collect();
        write(&mut s, "a", 0, &refs);
        assert!(matches!(
            s.series(&query(&["2001:db8:1::/112"], 0, 60, 60, None)),
            Err(StoreError::SelectionTooLarge { .. })
        ));
        let ok = s
            .series(&query(&["2001:db8:1::/116"], 0, 60, 60, None))
            .unwrap();
        assert_eq!(values(&ok), vec![(0, 4096)]);
    }

    /// The statistics rows of a bucket are found by key range, not by an automatic index on
    /// the sensor (a scan of all the sensor's rows per bucket).
    #[test]
    fn longest_interval_reads_the_statistics_by_key() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = SqliteStore::open(&dir.path().join("bw.db")).unwrap();
        for t in (0..7200).step_by(60) {
            write(&mut s, "a", t, &[("198.51.100.1", 1), ("198.51.100.2", 2)]);
        }
        s.roll_up(7200, usize::MAX).unwrap();
        let sql = super::longest_interval_sql(super::Level::Hourly);
        let mut stmt = s
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap();
        let plan: Vec<String> = stmt
            .query_map(rusqlite::params![0, 7200, None::<i64>, "[1]", 3600], |r| {
                r.get(3)
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            plan.iter()
                .any(|p| p == "SEARCH x USING PRIMARY KEY (ts>? AND ts<?)"),
            "{plan:?}"
        );
        assert!(!plan.iter().any(|p| p.contains("AUTOMATIC")), "{plan:?}");
        let hourly = s
            .series(&query(&["198.51.100.1/32"], 0, 7200, 7200, None))
            .unwrap();
        assert_eq!((values(&hourly), hourly.interval_s), (vec![(0, 120)], 60));
    }
}
