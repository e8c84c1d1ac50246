//! The SQLite store on real files: migrations, merging upserts, sums across sensors.

use super::sqlite::SqliteStore;
use super::*;
use crate::classify::Class;
use crate::parse::Proto;
use crate::usage::Dir;

fn usage(tx: u64, rx: u64) -> Usage {
    let mut u = Usage::default();
    u.set(Dir::Tx, Class::Proto(Proto::Tcp), false, tx);
    u.set(Dir::Tx, Class::Proto(Proto::Tcp), true, 1);
    u.set(Dir::Rx, Class::Proto(Proto::Udp), false, rx);
    u.set(Dir::Rx, Class::Proto(Proto::Udp), true, 1);
    u
}

fn sample(sensor: &str, start: i64, hosts: &[(&str, Usage)]) -> Sample {
    Sample {
        sensor: sensor.into(),
        start,
        interval_s: 60,
        hosts: hosts
            .iter()
            .map(|(h, u)| (h.parse().unwrap(), *u))
            .collect(),
        stats: crate::counters::PacketStats {
            packets: 2,
            accounted: 2,
            ..Default::default()
        },
        kernel: Default::default(),
    }
}

#[test]
fn writes_merge_and_sum_across_sensors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/bw.db");
    let mut s = SqliteStore::open(&path).unwrap();
    assert_eq!(
        s.schema_version().unwrap(),
        super::schema::sqlite_migrations().len() as i64
    );
    s.write(&sample(
        "a",
        60,
        &[
            ("198.51.100.1", usage(100, 5)),
            ("2001:db8:100::1", usage(7, 0)),
        ],
    ))
    .unwrap();
    // the same interval again (a restart mid-interval): merged, not overwritten
    s.write(&sample("a", 60, &[("198.51.100.1", usage(1, 1))]))
        .unwrap();
    s.write(&sample("b", 60, &[("198.51.100.1", usage(1000, 0))]))
        .unwrap();
    s.write(&sample("a", 120, &[("198.51.100.1", usage(10_000, 0))]))
        .unwrap();
    drop(s);

    let r = SqliteStore::open_read_only(&path).unwrap();
    let q = |from, to, sensor: Option<&str>| Query {
        from,
        to,
        sensor: sensor.map(str::to_owned),
    };
    let rows: std::collections::HashMap<String, Usage> = r
        .usage_by_host(&q(60, 120, None))
        .unwrap()
        .into_iter()
        .map(|(h, u)| (h.to_string(), u))
        .collect();
    assert_eq!(rows["198.51.100.1"].total_bytes(Dir::Tx), 1101);
    assert_eq!(rows["198.51.100.1"].total_bytes(Dir::Rx), 6);
    assert_eq!(rows["198.51.100.1"].total_packets(Dir::Tx), 3);
    assert_eq!(rows["2001:db8:100::1"].total_bytes(Dir::Tx), 7);
    let only_b = r.usage_by_host(&q(0, 1000, Some("b"))).unwrap();
    assert_eq!(only_b.len(), 1);
    assert_eq!(only_b[0].1.total_bytes(Dir::Tx), 1000);
    assert!(matches!(
        r.usage_by_host(&q(0, 1000, Some("zz"))),
        Err(StoreError::NoSensor(_))
    ));
    let stats = r.stats(&q(0, 1000, Some("a"))).unwrap();
    assert_eq!(stats.packets.packets, 6);
}

#[test]
fn reopening_keeps_data_and_a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bw.db");
    let mut s = SqliteStore::open(&path).unwrap();
    s.write(&sample("a", 0, &[("198.51.100.9", usage(5, 5))]))
        .unwrap();
    drop(s);
    let s = SqliteStore::open(&path).unwrap();
    assert_eq!(
        s.usage_by_host(&Query {
            from: 0,
            to: 60,
            sensor: None
        })
        .unwrap()
        .len(),
        1
    );
    drop(s);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute("UPDATE schema_version SET version = 99", [])
        .unwrap();
    drop(conn);
    assert!(matches!(
        SqliteStore::open(&path),
        Err(StoreError::TooNew { found: 99, .. })
    ));
}

#[test]
fn a_locked_store_is_a_transient_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bw.db");
    let mut s = SqliteStore::open(&path).unwrap();
    let locker = rusqlite::Connection::open(&path).unwrap();
    locker
        .execute_batch("BEGIN IMMEDIATE; INSERT INTO hosts (addr) VALUES ('192.0.2.1');")
        .unwrap();
    s.set_busy_timeout(std::time::Duration::from_millis(50))
        .unwrap();
    let e = s
        .write(&sample("a", 0, &[("198.51.100.9", usage(5, 5))]))
        .unwrap_err();
    assert!(e.is_transient(), "{e}");
    locker.execute_batch("COMMIT").unwrap();
    s.write(&sample("a", 0, &[("198.51.100.9", usage(5, 5))]))
        .unwrap();
}
