//! The logical schema shared by every store: the usage columns (in [`Usage`] order) and the
//! SQLite migrations. The column list is generated from the classes, never written twice.

use crate::classify::Class;
use crate::usage::{cell, Dir, CELLS};
use std::sync::LazyLock;

/// The usage columns of `samples`, at the index of the [`Usage`] cell each holds:
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

/// The SQLite schema, one entry per version (index 0 is version 1). Never edit a released
/// entry: add the next one.
pub fn sqlite_migrations() -> Vec<String> {
    let usage_cols: Vec<String> = COLUMNS
        .iter()
        .map(|c| format!("{c} INTEGER NOT NULL DEFAULT 0"))
        .collect();
    let mut versions = vec![format!(
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
    )];
    // Version 2: quota states, quota events, applied shaping steps.
    versions.push(super::quota::SQLITE_MIGRATION.to_owned());
    // Version 3: layer-2 guard events and per-interval figures (creates only its own tables).
    versions.push(super::guard::SQLITE_MIGRATION.to_owned());
    versions
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
