//! The PostgreSQL schema, one entry per version: the logical schema of SQLite (column names
//! from [`COLUMNS`]), the sensor on every row, and the batches delivered (for exactly-once
//! delivery). Never edit a released entry: add the next one.

use crate::rollup::Level;
use crate::store::schema::{stats_table, usage_table, COLUMNS, STATS_COLUMNS};

/// The migrations; index 0 is version 1.
pub fn migrations() -> Vec<String> {
    vec![version_1(), version_2(), version_3()]
}

fn usage_cols() -> Vec<String> {
    COLUMNS
        .iter()
        .map(|c| format!("{c} BIGINT NOT NULL DEFAULT 0"))
        .collect()
}

fn stats_cols() -> Vec<String> {
    STATS_COLUMNS
        .iter()
        .map(|c| format!("{c} BIGINT NOT NULL DEFAULT 0"))
        .collect()
}

/// Version 1: sensors (with the local networks each declares), hosts, the samples and capture
/// statistics of every level, the rollup watermarks and pruning horizons, and the batches
/// delivered by each sensor. The usage tables carry no foreign keys: a per-row check would
/// double the cost of a 100,000-host flush, and the ids come from the same transaction.
fn version_1() -> String {
    let (usage_cols, stats_cols) = (usage_cols(), stats_cols());
    let mut sql = String::from(
        "CREATE TABLE sensors (
            id SERIAL PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            local_networks TEXT NOT NULL DEFAULT '',
            first_seen BIGINT NOT NULL,
            last_seen BIGINT NOT NULL
        );
        CREATE TABLE hosts (
            id BIGSERIAL PRIMARY KEY,
            addr TEXT NOT NULL UNIQUE
        );
        CREATE TABLE rolled (
            level TEXT PRIMARY KEY,
            upto BIGINT
        );
        INSERT INTO rolled (level, upto) VALUES ('hourly', NULL), ('daily', NULL);
        CREATE TABLE pruned (
            level TEXT PRIMARY KEY,
            before BIGINT NOT NULL
        );
        CREATE TABLE batches (
            sensor_id INTEGER NOT NULL REFERENCES sensors(id),
            origin BIGINT NOT NULL,
            seq BIGINT NOT NULL,
            start BIGINT NOT NULL,
            hosts INTEGER NOT NULL,
            delivered_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            PRIMARY KEY (sensor_id, origin, seq)
        );
        ",
    );
    for level in [Level::Samples, Level::Hourly, Level::Daily] {
        let interval = if level == Level::Samples {
            "interval_s INTEGER NOT NULL,\n"
        } else {
            ""
        };
        sql.push_str(&format!(
            "CREATE TABLE {usage} (
                ts BIGINT NOT NULL,
                sensor_id INTEGER NOT NULL,
                host_id BIGINT NOT NULL,
                {interval}{cols},
                PRIMARY KEY (ts, sensor_id, host_id)
            );
            CREATE TABLE {stats} (
                ts BIGINT NOT NULL,
                sensor_id INTEGER NOT NULL,
                {interval}{stats_cols},
                PRIMARY KEY (ts, sensor_id)
            );
            ",
            usage = usage_table(level),
            stats = stats_table(level),
            cols = usage_cols.join(",\n                "),
            stats_cols = stats_cols.join(",\n                "),
        ));
    }
    sql
}

/// Version 2: one host's rows of the hourly and daily levels found by host (graphs and quotas
/// of one customer over months). The samples keep no such index: it would cost a random index
/// write per host and flush (see the SQLite store); one host's samples are found through the
/// statistics rows and the primary key.
fn version_2() -> String {
    [Level::Hourly, Level::Daily]
        .iter()
        .map(|&level| {
            let t = usage_table(level);
            format!("CREATE INDEX {t}_by_host ON {t} (host_id, ts);\n")
        })
        .collect()
}

/// Version 3: the monthly level (UTC calendar months), found by host like the other rollups.
/// Empty, with no watermark: the rollup job fills it from the daily rows, month by month, and
/// until then the daily rows answer.
fn version_3() -> String {
    let (usage, stats) = (usage_table(Level::Monthly), stats_table(Level::Monthly));
    format!(
        "CREATE TABLE {usage} (
            ts BIGINT NOT NULL,
            sensor_id INTEGER NOT NULL,
            host_id BIGINT NOT NULL,
            {},
            PRIMARY KEY (ts, sensor_id, host_id)
        );
        CREATE INDEX {usage}_by_host ON {usage} (host_id, ts);
        CREATE TABLE {stats} (
            ts BIGINT NOT NULL,
            sensor_id INTEGER NOT NULL,
            {},
            PRIMARY KEY (ts, sensor_id)
        );
        INSERT INTO rolled (level, upto) VALUES ('{}', NULL);
        ",
        usage_cols().join(",\n            "),
        stats_cols().join(",\n            "),
        Level::Monthly.name(),
    )
}
