//! Rollups and retention of the SQLite store on real files: levels equal bucket by bucket, late
//! samples join levels already rolled up, pruning keeps what coarser levels do not hold yet,
//! and a version 1 store is rolled up by its migration.

use super::sqlite::SqliteStore;
use super::*;
use crate::classify::{App, Class};
use crate::parse::Proto;
use crate::rollup::{DAY, HOUR};
use crate::usage::Dir;

/// 2026-11-01T00:00:00Z
const T0: i64 = 1_793_491_200;

pub(super) fn usage(seed: u64) -> Usage {
    let mut u = Usage::default();
    u.set(Dir::Tx, Class::Proto(Proto::Tcp), false, 1000 + seed);
    u.set(Dir::Tx, Class::Proto(Proto::Tcp), true, 3 + seed % 5);
    u.set(Dir::Rx, Class::Proto(Proto::Udp), false, 77 * seed);
    u.set(Dir::Rx, Class::Proto(Proto::Udp), true, seed);
    u.set(Dir::Tx, Class::App(App::Http), false, 500 + seed);
    u
}

pub(super) fn sample(start: i64, hosts: &[(&str, u64)]) -> Sample {
    Sample {
        sensor: "s".into(),
        start,
        interval_s: 60,
        hosts: hosts
            .iter()
            .map(|(h, seed)| (h.parse().unwrap(), usage(*seed)))
            .collect(),
        stats: crate::counters::PacketStats {
            packets: hosts.len() as u64,
            ..Default::default()
        },
        kernel: Default::default(),
    }
}

pub(super) fn q(from: i64, to: i64) -> Query {
    Query {
        from,
        to,
        sensor: None,
    }
}

pub(super) fn sorted(mut v: Vec<(Host, Usage)>) -> Vec<(Host, Usage)> {
    v.sort_by_key(|(h, _)| *h);
    v
}

/// Every minute of `hours` hours from `from` for three hosts, with varied counts.
fn fill(s: &mut SqliteStore, from: i64, hours: i64) {
    for m in 0..hours * 60 {
        let t = from + m * 60;
        let seed = m as u64;
        s.write(&sample(
            t,
            &[
                ("198.51.100.1", seed),
                ("198.51.100.2", seed * 3 % 17),
                ("2001:db8:100::1", 5),
            ],
        ))
        .unwrap();
    }
}

#[test]
fn levels_sum_to_the_samples_and_late_samples_join_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = SqliteStore::open(&dir.path().join("bw.db")).unwrap();
    // 22:00 on day 0 to 03:00 on day 1
    fill(&mut s, T0 + 22 * HOUR, 5);
    assert_eq!(
        s.watermarks().unwrap(),
        crate::rollup::Watermarks::default()
    );
    // capturing at 02:xx on day 1: hours before 02:00 are complete, and day 0
    let rolled = s.roll_up(T0 + DAY + 2 * HOUR, 100).unwrap();
    assert_eq!(rolled, 4 + 1, "22:00, 23:00, 00:00, 01:00 and day 0");
    let marks = s.watermarks().unwrap();
    assert_eq!(marks.hourly, Some(T0 + DAY + 2 * HOUR));
    assert_eq!(marks.daily, Some(T0 + DAY));
    assert_eq!(
        s.roll_up(T0 + DAY + 2 * HOUR, 100).unwrap(),
        0,
        "up to date"
    );

    // a restart re-sends 22:05 and 01:30: both rolled-up levels take them at once
    s.write(&sample(T0 + 22 * HOUR + 300, &[("198.51.100.1", 1000)]))
        .unwrap();
    s.write(&sample(T0 + DAY + HOUR + 1800, &[("198.51.100.9", 7)]))
        .unwrap();

    let whole = q(T0, T0 + 2 * DAY);
    let samples = sorted(s.usage_at(Level::Samples, &whole).unwrap());
    assert_eq!(samples.len(), 4);
    assert_eq!(
        sorted(
            s.usage_at(Level::Hourly, &q(T0, T0 + DAY + 2 * HOUR))
                .unwrap()
        ),
        sorted(
            s.usage_at(Level::Samples, &q(T0, T0 + DAY + 2 * HOUR))
                .unwrap()
        )
    );
    assert_eq!(
        sorted(s.usage_at(Level::Daily, &q(T0, T0 + DAY)).unwrap()),
        sorted(s.usage_at(Level::Samples, &q(T0, T0 + DAY)).unwrap())
    );
    // any range, whichever levels answer it, sums to the samples
    for (from, to) in [
        (T0, T0 + 2 * DAY),
        (T0 + 22 * HOUR + 90, T0 + DAY + 2 * HOUR + 600),
        (T0 + 23 * HOUR, T0 + DAY + HOUR),
        (T0 - DAY, T0 + DAY),
    ] {
        assert_eq!(
            sorted(s.usage_by_host(&q(from, to)).unwrap()),
            sorted(s.usage_at(Level::Samples, &q(from, to)).unwrap()),
            "{from}..{to}"
        );
        assert_eq!(
            s.stats(&q(from, to)).unwrap(),
            s.stats_at(Level::Samples, &q(from, to)).unwrap()
        );
    }
    // hour by hour, the series agree too
    assert_eq!(
        s.series_at(Level::Hourly, &q(T0, T0 + DAY + 2 * HOUR), None)
            .unwrap()
            .len(),
        4
    );
    let host: Host = "198.51.100.1".parse().unwrap();
    let per_hour = s
        .series_at(Level::Hourly, &q(T0, T0 + DAY), Some(&host))
        .unwrap();
    let mut sum = Usage::default();
    for (_, u) in &per_hour {
        sum.merge(u);
    }
    let day0 = s.usage_at(Level::Daily, &q(T0, T0 + DAY)).unwrap();
    assert_eq!(day0.iter().find(|(h, _)| *h == host).unwrap().1, sum);
    // one host's samples, found through the statistics rows, are its rows in the samples
    let minutes = s.series_at(Level::Samples, &whole, Some(&host)).unwrap();
    assert_eq!(minutes.len(), 5 * 60);
    let mut sum = Usage::default();
    for (_, u) in minutes.iter().filter(|(t, _)| *t < T0 + DAY) {
        sum.merge(u);
    }
    assert_eq!(day0.iter().find(|(h, _)| *h == host).unwrap().1, sum);
    let at_2205 = minutes
        .iter()
        .find(|(t, _)| *t == T0 + 22 * HOUR + 300)
        .unwrap()
        .1;
    let mut want = usage(5);
    want.merge(&usage(1000));
    assert_eq!(at_2205, want, "the re-sent minute is merged");
    let nobody: Host = "192.0.2.1".parse().unwrap();
    assert!(s
        .series_at(Level::Hourly, &whole, Some(&nobody))
        .unwrap()
        .is_empty());

    // after a replay everything is rolled up, the last partial hour, day and month too
    assert_eq!(s.roll_up(i64::MAX, 100).unwrap(), 3);
    assert_eq!(
        sorted(s.usage_at(Level::Daily, &whole).unwrap()),
        sorted(s.usage_at(Level::Samples, &whole).unwrap())
    );
}

#[test]
fn pruning_keeps_what_the_rollups_answer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bw.db");
    let mut s = SqliteStore::open(&path).unwrap();
    let now = T0 + 500 * DAY + 10 * HOUR;
    let old = T0 + 99 * DAY; // 401 days back: hourly rows go, daily stay
    let month = T0 + 460 * DAY; // 40 days back: samples go, hourly stay
    let recent = T0 + 490 * DAY; // 10 days back: everything stays
    for day in [old, month, recent] {
        fill(&mut s, day + 5 * HOUR, 2);
    }
    // nothing is rolled up yet: nothing may be pruned
    let retention = crate::rollup::Retention::default();
    assert_eq!(s.prune(&retention, now, 1_000_000).unwrap(), 0);
    assert_eq!(
        s.usage_at(Level::Samples, &q(old, old + DAY))
            .unwrap()
            .len(),
        3
    );

    s.roll_up(i64::MAX, usize::MAX).unwrap();
    let before: Vec<_> = [old, month, recent]
        .iter()
        .map(|d| sorted(s.usage_by_host(&q(*d, d + DAY)).unwrap()))
        .collect();
    // small batches: several calls
    let mut deleted = 0;
    loop {
        let n = s.prune(&retention, now, 100).unwrap();
        deleted += n;
        if n < 100 {
            break;
        }
    }
    // samples of two days (2 x 120 minutes x 3 hosts + their statistics), hourly rows of one
    // day (2 hours x 3 hosts + 2 statistics rows)
    assert_eq!(deleted, 2 * (120 * 3 + 120) + (2 * 3 + 2));
    assert!(s
        .usage_at(Level::Samples, &q(old, month + DAY))
        .unwrap()
        .is_empty());
    assert!(s
        .usage_at(Level::Hourly, &q(old, old + DAY))
        .unwrap()
        .is_empty());
    assert_eq!(
        s.usage_at(Level::Hourly, &q(month, month + DAY))
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        s.usage_at(Level::Samples, &q(recent, recent + DAY))
            .unwrap()
            .len(),
        3
    );
    // whole days are still answered, exactly as before
    for (d, want) in [old, month, recent].iter().zip(&before) {
        assert_eq!(&sorted(s.usage_by_host(&q(*d, d + DAY)).unwrap()), want);
    }
    let samples_cutoff = retention.cutoff(Level::Samples, now).unwrap();
    assert_eq!(s.kept_since(Level::Samples).unwrap(), Some(samples_cutoff));
    assert_eq!(samples_cutoff, T0 + 465 * DAY + 10 * HOUR);
    assert_eq!(
        s.kept_since(Level::Daily).unwrap(),
        Some(retention.cutoff(Level::Daily, now).unwrap())
    );
    assert_eq!(s.prune(&retention, now, 100).unwrap(), 0);
    // a report that opens the store read-only sees the same
    drop(s);
    let r = SqliteStore::open_read_only(&path).unwrap();
    assert_eq!(
        sorted(r.usage_by_host(&q(old, old + DAY)).unwrap()),
        before[0]
    );
}

#[test]
fn a_version_1_store_is_rolled_up_by_its_migration() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        let v1 = schema::sqlite_migrations().remove(0);
        conn.execute_batch(&v1).unwrap();
        conn.execute_batch(
            "CREATE TABLE schema_version (version INTEGER NOT NULL);
             INSERT INTO schema_version VALUES (1);
             INSERT INTO sensors (id, name, first_seen, last_seen) VALUES (1, 'old', 0, 0);
             INSERT INTO hosts (id, addr) VALUES (1, '198.51.100.1'), (2, '198.51.100.2');",
        )
        .unwrap();
        for (ts, host, bytes) in [
            (T0 - 60, 1, 10),
            (T0, 1, 20),
            (T0 + 3600, 2, 40),
            (T0 + 3660, 1, 80),
        ] {
            conn.execute(
                "INSERT INTO samples (ts, sensor_id, host_id, interval_s, tcp_tx_bytes) VALUES (?1, 1, ?2, 60, ?3)",
                rusqlite::params![ts, host, bytes],
            )
            .unwrap();
        }
    }
    // a report on the old store reads the samples
    let r = SqliteStore::open_read_only(&path).unwrap();
    assert_eq!(r.usage_by_host(&q(T0 - DAY, T0 + DAY)).unwrap().len(), 2);
    drop(r);
    let mut s = SqliteStore::open(&path).unwrap();
    assert_eq!(
        s.schema_version().unwrap(),
        schema::sqlite_migrations().len() as i64
    );
    let conn = rusqlite::Connection::open(&path).unwrap();
    let indexes: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL
             AND (tbl_name LIKE 'samples%' OR tbl_name LIKE 'hourly%' OR tbl_name LIKE 'daily%')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(indexes, 0, "no index by host: the primary keys serve");
    let marks = s.watermarks().unwrap();
    assert_eq!(marks.hourly, Some(T0 + 2 * HOUR));
    assert_eq!(marks.daily, Some(T0 + DAY));
    let all = q(T0 - DAY, T0 + DAY);
    for level in [Level::Hourly, Level::Daily] {
        assert_eq!(
            sorted(s.usage_at(level, &all).unwrap()),
            sorted(s.usage_at(Level::Samples, &all).unwrap())
        );
    }
    // and carries on: a sample in the migrated hour joins the rollups at once
    s.write(&sample(T0 + 3600 + 120, &[("198.51.100.2", 1)]))
        .unwrap();
    assert_eq!(
        sorted(s.usage_at(Level::Daily, &all).unwrap()),
        sorted(s.usage_at(Level::Samples, &all).unwrap())
    );
}
