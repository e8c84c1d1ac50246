//! The logical schema shared by every store: the usage columns (in [`Usage`] order), the tables
//! of each rollup level and the SQLite migrations. The column list is generated from the
//! classes, never written twice.

use super::Sample;
use crate::classify::Class;
use crate::rollup::{Level, Retention, Watermarks};
use crate::usage::{cell, Dir, CELLS};
use std::sync::LazyLock;

/// The usage columns of `samples`, at the index of the [`Usage`](crate::usage::Usage) cell each holds:
/// `tcp_tx_bytes`, `tcp_tx_packets`, ..., `p2p_rx_packets`.
pub static COLUMNS: LazyLock<[String; CELLS]> = LazyLock::new(|| {
    let mut cols: [String; CELLS] = Default::default();
    for class in Class::ALL {
        for (dir, d) in [(Dir::Tx, "tx"), (Dir::Rx, "rx")] {
            for (packets, what) in [(false, "bytes"), (true, "packets")] {
                if let Some(c) = cols.get_mut(cell(dir, class.index(), packets)) {
                    *c = format!("{}_{d}_{what}", class.name());
                }
            }
        }
    }
    cols
});

/// The usage table of a level.
pub fn usage_table(level: Level) -> &'static str {
    match level {
        Level::Samples => "samples",
        Level::Hourly => "hourly",
        Level::Daily => "daily",
        Level::Monthly => "monthly",
    }
}

/// The capture statistics table of a level.
pub fn stats_table(level: Level) -> &'static str {
    match level {
        Level::Samples => "capture_stats",
        Level::Hourly => "capture_stats_hourly",
        Level::Daily => "capture_stats_daily",
        Level::Monthly => "capture_stats_monthly",
    }
}

/// Prunes every level by `retention`, finest first, for both stores: the oldest rows before a
/// level's cutoff (never what the next coarser level does not hold yet, by `marks`) go in
/// batches of at most `batch` until `max_rows` went or nothing is left. `delete(table, keys,
/// cutoff, limit)` deletes up to `limit` rows of `table` (key columns `keys`) before `cutoff`
/// and says how many; `cleared(level, cutoff)` records a level clear up to its cutoff. Returns
/// the rows deleted.
pub fn prune_levels<E>(
    retention: &Retention,
    marks: Watermarks,
    now: i64,
    max_rows: usize,
    batch: usize,
    mut delete: impl FnMut(&str, &str, i64, usize) -> Result<usize, E>,
    mut cleared: impl FnMut(Level, i64) -> Result<(), E>,
) -> Result<usize, E> {
    let mut deleted = 0;
    for level in Level::ALL {
        let Some(cutoff) = retention.cutoff(level, now) else {
            continue;
        };
        // what the next coarser level holds (the coarsest holds everything it has)
        let held = match level.coarser() {
            Some(coarser) => marks.of(coarser),
            None => Some(i64::MAX),
        };
        let Some(cutoff) = held.map(|h| cutoff.min(h)) else {
            continue;
        };
        for (table, keys) in [
            (usage_table(level), "ts, sensor_id, host_id"),
            (stats_table(level), "ts, sensor_id"),
        ] {
            loop {
                let budget = max_rows.saturating_sub(deleted).min(batch);
                if budget == 0 {
                    return Ok(deleted);
                }
                let n = delete(table, keys, cutoff, budget)?;
                deleted += n;
                if n < budget {
                    break;
                }
            }
        }
        cleared(level, cutoff)?;
    }
    Ok(deleted)
}

/// The SQLite schema, one entry per version (index 0 is version 1). Never edit a released
/// entry: add the next one.
pub fn sqlite_migrations() -> Vec<String> {
    let usage_cols: Vec<String> = COLUMNS
        .iter()
        .map(|c| format!("{c} INTEGER NOT NULL DEFAULT 0"))
        .collect();
    vec![
        version_1(&usage_cols),
        version_2(&usage_cols),
        // Version 3: quota states, quota events, applied shaping steps.
        super::quota::SQLITE_MIGRATION.to_owned(),
        // Version 4: layer-2 guard events and per-interval figures (creates only its own tables).
        super::guard::SQLITE_MIGRATION.to_owned(),
        version_5(&usage_cols),
    ]
}

/// Version 5: the monthly level (UTC calendar months) of the usage and the capture statistics.
/// Empty and with no watermark: the rollup job fills it from the daily rows, month by month,
/// as it does for new months, and until then the daily rows answer.
fn version_5(usage_cols: &[String]) -> String {
    let stats_cols: Vec<String> = STATS_COLUMNS
        .iter()
        .map(|c| format!("{c} INTEGER NOT NULL DEFAULT 0"))
        .collect();
    format!(
        "CREATE TABLE {} (
            ts INTEGER NOT NULL,
            sensor_id INTEGER NOT NULL,
            host_id INTEGER NOT NULL,
            {},
            PRIMARY KEY (ts, sensor_id, host_id)
        ) WITHOUT ROWID;
        CREATE TABLE {} (
            ts INTEGER NOT NULL,
            sensor_id INTEGER NOT NULL,
            {},
            PRIMARY KEY (ts, sensor_id)
        ) WITHOUT ROWID;",
        usage_table(Level::Monthly),
        usage_cols.join(", "),
        stats_table(Level::Monthly),
        stats_cols.join(", "),
    )
}

fn version_1(usage_cols: &[String]) -> String {
    format!(
        "CREATE TABLE sensors (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            local_networks TEXT NOT NULL DEFAULT '',
            first_seen INTEGER NOT NULL,
            last_seen INTEGER NOT NULL
        );
        CREATE TABLE hosts (
            id INTEGER PRIMARY KEY,
            addr TEXT NOT NULL UNIQUE
        );
        CREATE TABLE samples (
            ts INTEGER NOT NULL,
            sensor_id INTEGER NOT NULL REFERENCES sensors(id),
            host_id INTEGER NOT NULL REFERENCES hosts(id),
            interval_s INTEGER NOT NULL,
            {},
            PRIMARY KEY (ts, sensor_id, host_id)
        ) WITHOUT ROWID;
        CREATE INDEX samples_by_host ON samples (host_id, ts);
        CREATE TABLE capture_stats (
            ts INTEGER NOT NULL,
            sensor_id INTEGER NOT NULL REFERENCES sensors(id),
            interval_s INTEGER NOT NULL,
            packets INTEGER NOT NULL DEFAULT 0,
            accounted INTEGER NOT NULL DEFAULT 0,
            bytes INTEGER NOT NULL DEFAULT 0,
            foreign_packets INTEGER NOT NULL DEFAULT 0,
            non_ip INTEGER NOT NULL DEFAULT 0,
            malformed INTEGER NOT NULL DEFAULT 0,
            length_mismatch INTEGER NOT NULL DEFAULT 0,
            kernel_received INTEGER NOT NULL DEFAULT 0,
            kernel_dropped INTEGER NOT NULL DEFAULT 0,
            kernel_if_dropped INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (ts, sensor_id)
        ) WITHOUT ROWID;",
        usage_cols.join(",\n            ")
    )
}

/// Version 2: hourly and daily rollups of the usage and the capture statistics (UTC buckets,
/// filled from the samples already stored), no index by host on the samples any more (see
/// below), the watermark up to which each level holds every sample,
/// the pruning horizon of each level, and the files `import-cdf` loaded (by content digest, so
/// that a second import does not count twice). The rollup
/// rows carry no foreign keys: their ids are those of the sample rows written in the same
/// transaction, which are checked.
fn version_2(usage_cols: &[String]) -> String {
    let stats_cols: Vec<String> = STATS_COLUMNS
        .iter()
        .map(|c| format!("{c} INTEGER NOT NULL DEFAULT 0"))
        .collect();
    let usage_sums: Vec<String> = COLUMNS.iter().map(|c| format!("sum({c})")).collect();
    let stats_sums: Vec<String> = STATS_COLUMNS.iter().map(|c| format!("sum({c})")).collect();
    let mut sql = String::new();
    for level in [Level::Hourly, Level::Daily] {
        let width = level.bucket().unwrap_or(1);
        let (usage, stats) = (usage_table(level), stats_table(level));
        // floor(ts / width) * width, also for times before 1970
        let bucket = format!("ts - ((ts % {width}) + {width}) % {width}");
        sql.push_str(&format!(
            "CREATE TABLE {usage} (
                ts INTEGER NOT NULL,
                sensor_id INTEGER NOT NULL,
                host_id INTEGER NOT NULL,
                {},
                PRIMARY KEY (ts, sensor_id, host_id)
            ) WITHOUT ROWID;
            INSERT INTO {usage} (ts, sensor_id, host_id, {})
                SELECT {bucket}, sensor_id, host_id, {} FROM samples GROUP BY 1, 2, 3;
            CREATE TABLE {stats} (
                ts INTEGER NOT NULL,
                sensor_id INTEGER NOT NULL,
                {},
                PRIMARY KEY (ts, sensor_id)
            ) WITHOUT ROWID;
            INSERT INTO {stats} (ts, sensor_id, {})
                SELECT {bucket}, sensor_id, {} FROM capture_stats GROUP BY 1, 2;
            ",
            usage_cols.join(", "),
            COLUMNS.join(", "),
            usage_sums.join(", "),
            stats_cols.join(", "),
            STATS_COLUMNS.join(", "),
            stats_sums.join(", "),
        ));
    }
    // One host's rows are found through the statistics rows (one per interval or bucket and
    // sensor) and the primary key. An index by host costs a random page write per host and
    // flush (10,000 hosts: 0.5 s instead of 0.04 s per flush once the store holds days) and a
    // fifth of the store.
    sql.push_str(
        "DROP INDEX IF EXISTS samples_by_host;
        CREATE TABLE pruned (
            level TEXT PRIMARY KEY,
            before INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE rolled (
            level TEXT PRIMARY KEY,
            upto INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE imports (
            digest TEXT PRIMARY KEY,
            file TEXT NOT NULL,
            imported_at INTEGER NOT NULL,
            samples INTEGER NOT NULL
        ) WITHOUT ROWID;",
    );
    // everything stored so far is rolled up: the watermarks go past the newest sample
    for level in [Level::Hourly, Level::Daily] {
        let w = level.bucket().unwrap_or(1);
        sql.push_str(&format!(
            "INSERT INTO rolled (level, upto)
                SELECT '{}', m - ((m % {w}) + {w}) % {w} + {w}
                FROM (SELECT max(m) AS m FROM (SELECT max(ts) AS m FROM samples
                                               UNION ALL SELECT max(ts) FROM capture_stats))
                WHERE m IS NOT NULL;",
            level.name()
        ));
    }
    sql
}

/// A counter as both stores keep it (signed 64-bit; saturates rather than wraps).
pub fn db_int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A sample's capture statistics as stored, in [`STATS_COLUMNS`] order.
pub fn stats_row(sample: &Sample) -> [i64; 10] {
    let s = &sample.stats;
    let k = &sample.kernel;
    [
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
    ]
    .map(db_int)
}

/// Names of the `capture_stats` counters, in [`crate::store::RangeStats`] order.
pub const STATS_COLUMNS: [&str; 10] = [
    "packets",
    "accounted",
    "bytes",
    "foreign_packets",
    "non_ip",
    "malformed",
    "length_mismatch",
    "kernel_received",
    "kernel_dropped",
    "kernel_if_dropped",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_unique_and_follow_the_cells() {
        let set: std::collections::HashSet<&String> = COLUMNS.iter().collect();
        assert_eq!(set.len(), CELLS);
        assert_eq!(COLUMNS[0], "tcp_tx_bytes");
        assert_eq!(COLUMNS[1], "tcp_tx_packets");
        assert_eq!(COLUMNS[16], "tcp_rx_bytes");
        assert_eq!(COLUMNS[CELLS - 1], "p2p_rx_packets");
    }
}
