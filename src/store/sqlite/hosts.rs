//! Reading a set of hosts' rows of one level without an index by host: the statistics rows (one
//! per stored interval or bucket and sensor) give the times, and the primary key
//! (ts, sensor, host) finds each host's row at each time, a few point lookups per time however
//! many hosts the store holds. Which level answers which part of a range is the callers' choice
//! (`rollup::plan`); this file only reads.

use super::SqliteStore;
use crate::rollup::Level;
use crate::store::schema::{stats_table, usage_table};
use crate::store::StoreError;
use rusqlite::{params, Row};

/// Whose rows to read: the hosts `ids` (a JSON array of host ids, see [`id_list`]) in
/// `[from, to)` of one level, of one sensor or of all.
pub(super) struct Lookup<'a> {
    pub level: Level,
    pub from: i64,
    pub to: i64,
    pub sensor: Option<i64>,
    pub ids: &'a str,
}

/// Host ids as the JSON array [`Lookup::ids`] takes.
pub(super) fn id_list(ids: &[i64]) -> String {
    let list: Vec<String> = ids.iter().map(i64::to_string).collect();
    format!("[{}]", list.join(","))
}

impl SqliteStore {
    /// For each stored time of the lookup's level and range at which any of its hosts has a
    /// row, in time order, calls `each` with one result row: the time (column 0), then the
    /// aggregates `select` computes over those hosts' rows at that time (the usage table is `s`,
    /// the statistics row `c`; every sensor's rows together unless one is asked for).
    pub(super) fn each_time_of_hosts(
        &self,
        l: &Lookup<'_>,
        select: &str,
        mut each: impl FnMut(&Row<'_>) -> rusqlite::Result<()>,
    ) -> Result<(), StoreError> {
        // CROSS JOIN keeps the statistics rows outside; the IN list is looked up by key
        let sql = format!(
            "SELECT c.ts, {select} FROM {} c CROSS JOIN {} s
               ON s.ts = c.ts AND s.sensor_id = c.sensor_id
              AND s.host_id IN (SELECT value FROM json_each(?4))
             WHERE c.ts >= ?1 AND c.ts < ?2 AND (?3 IS NULL OR c.sensor_id = ?3)
             GROUP BY c.ts ORDER BY c.ts",
            stats_table(l.level),
            usage_table(l.level)
        );
        let mut stmt = self.conn.prepare_cached(&sql).map_err(|e| self.err(e))?;
        let mut rows = stmt
            .query(params![l.from, l.to, l.sensor, l.ids])
            .map_err(|e| self.err(e))?;
        while let Some(row) = rows.next().map_err(|e| self.err(e))? {
            each(row).map_err(|e| self.err(e))?;
        }
        Ok(())
    }
}
