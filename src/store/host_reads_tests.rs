//! Reads of a few hosts (quota buckets, series) on real SQLite files: the same writes go to a
//! store that rolls up and prunes as `run` does and to one that never rolls up (samples only);
//! whichever levels answer, both give the numbers summed here from the writes themselves, and
//! once the rolled-up store's old samples are pruned, what the rollups hold whole still does.

use super::quota::{Bucket, QuotaStore};
use super::sqlite::SqliteStore;
use super::*;
use crate::classify::{App, Class};
use crate::parse::Proto;
use crate::rollup::{Retention, DAY, HOUR};
use crate::usage::Dir;
use ipnet::IpNet;
use std::collections::BTreeMap;

/// 2026-11-01T00:00:00Z
const T0: i64 = 1_793_491_200;
/// The data: from 19:00 the day before to 07:00 three days later.
const FIRST: i64 = T0 - 5 * HOUR;
const END: i64 = T0 + 3 * DAY + 7 * HOUR;
/// Where the rollup job got to: hours before 02:00 of day 3, days before day 3.
const ROLLED: i64 = T0 + 3 * DAY + 2 * HOUR;
const HOSTS: [&str; 4] = [
    "198.51.100.1",
    "198.51.100.2",
    "198.51.100.3",
    "2001:db8:100::1",
];
/// Hosts "a" also writes every 5 minutes (`host(4..)`): 198.51.100.100 and on, and as many in
/// 203.0.113.0/24, so that the hosts asked for are a few among many.
const OTHERS: usize = 60;

/// Host `i`: `HOSTS[i]`, then the others.
fn host(i: usize) -> Host {
    match i.checked_sub(HOSTS.len()) {
        None => HOSTS[i].parse().unwrap(),
        Some(j) if j % 2 == 0 => format!("198.51.100.{}", 100 + j / 2).parse().unwrap(),
        Some(j) => format!("203.0.113.{}", j / 2).parse().unwrap(),
    }
}

/// One written row: sensor, interval start, host, usage.
type Row = (&'static str, i64, Host, Usage);

fn usage(seed: i64) -> Usage {
    let seed = seed.unsigned_abs() % 100_003;
    let mut u = Usage::default();
    u.set(Dir::Tx, Class::Proto(Proto::Tcp), false, 1000 + seed * 7);
    u.set(Dir::Tx, Class::Proto(Proto::Tcp), true, 3 + seed % 5);
    u.set(Dir::Rx, Class::Proto(Proto::Udp), false, 77 * seed);
    u.set(Dir::Rx, Class::Proto(Proto::Icmp), false, seed % 11);
    u.set(Dir::Tx, Class::App(App::Http), false, 500 + seed);
    u
}

struct Stores {
    _dir: tempfile::TempDir,
    /// Rolled up to `ROLLED`.
    rolled: SqliteStore,
    /// Samples only.
    samples: SqliteStore,
    rows: Vec<Row>,
}

impl Stores {
    fn write(&mut self, sensor: &'static str, start: i64, interval_s: u32, hosts: &[(usize, i64)]) {
        let sample = Sample {
            sensor: sensor.into(),
            start,
            interval_s,
            hosts: hosts
                .iter()
                .map(|&(h, seed)| (host(h), usage(seed)))
                .collect(),
            ..Default::default()
        };
        for (h, u) in &sample.hosts {
            self.rows.push((sensor, start, *h, *u));
        }
        self.rolled.write(&sample).unwrap();
        self.samples.write(&sample).unwrap();
    }
}

/// Sensor "a" every 5 minutes for every host, sensor "b" every 10 minutes for two of them; a
/// late sample below both watermarks after the rollup.
fn stores() -> Stores {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Stores {
        rolled: SqliteStore::open(&dir.path().join("rolled.db")).unwrap(),
        samples: SqliteStore::open(&dir.path().join("samples.db")).unwrap(),
        _dir: dir,
        rows: Vec::new(),
    };
    for t in (FIRST..END).step_by(300) {
        let k = (t - FIRST) / 300;
        let mut a = vec![(0, k), (1, k * 3 % 17), (2, 5), (3, k % 7)];
        a.extend((4..4 + OTHERS).map(|h| (h, k * h as i64)));
        s.write("a", t, 300, &a);
        if k % 2 == 0 {
            s.write("b", t, 600, &[(0, k + 1), (3, 2 * k)]);
        }
    }
    s.rolled.roll_up(ROLLED, usize::MAX).unwrap();
    let marks = s.rolled.watermarks().unwrap();
    // October (its last five hours here) is a month of its own
    assert_eq!(
        (marks.hourly, marks.daily, marks.monthly),
        (Some(ROLLED), Some(T0 + 3 * DAY), Some(T0))
    );
    s.write("a", T0 + DAY + 3 * HOUR + 120, 300, &[(1, 99_999)]);
    s
}

fn ids(store: &SqliteStore, hosts: &[usize]) -> Vec<i64> {
    store
        .hosts_after(0)
        .unwrap()
        .into_iter()
        .filter(|(_, h)| hosts.iter().any(|&i| host(i) == *h))
        .map(|(id, _)| id)
        .collect()
}

/// The buckets summed from the writes.
fn truth_buckets(rows: &[Row], hosts: &[usize], from: i64, to: i64, b: i64) -> Vec<Bucket> {
    let mut sums: BTreeMap<i64, Bucket> = BTreeMap::new();
    for (_, t, h, u) in rows {
        if *t < from || *t >= to || !hosts.iter().any(|&i| host(i) == *h) {
            continue;
        }
        let start = t - t.rem_euclid(b);
        let e = sums.entry(start).or_insert(Bucket {
            start,
            ..Default::default()
        });
        e.tx_bytes += u.total_bytes(Dir::Tx);
        e.rx_bytes += u.total_bytes(Dir::Rx);
    }
    sums.into_values().collect()
}

/// The series summed from the writes: (bucket start, usage) in time order.
fn truth_series(rows: &[Row], q: &SeriesQuery) -> Vec<(i64, Usage)> {
    let mut sums: BTreeMap<i64, Usage> = BTreeMap::new();
    for (sensor, t, h, u) in rows {
        let inside = match h {
            Host::Addr(a) => q.nets.iter().any(|n| n.contains(a)),
            Host::Net(n) => q.nets.iter().any(|m| m.contains(n)),
        };
        if *t < q.range.from
            || *t >= q.range.to
            || !inside
            || q.range.sensor.as_deref().is_some_and(|s| s != *sensor)
        {
            continue;
        }
        let b = q.range.from + (t - q.range.from).div_euclid(q.step) * q.step;
        sums.entry(b).or_default().merge(u);
    }
    sums.into_iter().collect()
}

fn series_query(nets: &[&str], from: i64, to: i64, step: i64, sensor: Option<&str>) -> SeriesQuery {
    SeriesQuery {
        range: Query {
            from,
            to,
            sensor: sensor.map(str::to_owned),
        },
        step,
        nets: nets.iter().map(|n| n.parse::<IpNet>().unwrap()).collect(),
    }
}

/// Quota buckets for `hosts` over [from, to) in buckets of `b`: both stores give the truth.
fn assert_buckets(s: &Stores, hosts: &[usize], from: i64, to: i64, b: u32) {
    let want = truth_buckets(&s.rows, hosts, from, to, i64::from(b));
    assert!(!want.is_empty());
    for store in [&s.rolled, &s.samples] {
        let got = store
            .traffic_buckets(&ids(store, hosts), from, to, b)
            .unwrap();
        assert_eq!(got, want, "{hosts:?} [{from}, {to}) in {b} s buckets");
    }
}

/// A series: both stores give the truth, and the same longest interval.
fn assert_series(s: &Stores, q: &SeriesQuery, interval_s: i64) {
    let want = truth_series(&s.rows, q);
    assert!(!want.is_empty());
    for store in [&s.rolled, &s.samples] {
        let got = store.series(q).unwrap();
        assert_eq!(got.points, want, "{q:?}");
        assert_eq!((got.step, got.interval_s), (q.step, interval_s), "{q:?}");
    }
}

#[test]
fn quota_buckets_from_rollups_equal_the_samples() {
    let mut s = stores();
    let pair = [0, 1];
    let ranges = [
        (FIRST, END),
        (T0, T0 + 3 * DAY),
        // off every boundary: samples, hours and days mixed
        (FIRST + 2100, T0 + 2 * DAY + 13 * HOUR + 600),
        (T0 + HOUR + 60, T0 + HOUR + 900),
        // past the watermarks
        (T0 + 3 * DAY + HOUR, END),
    ];
    for (from, to) in ranges {
        for b in [300, 3600, 7200, 86_400] {
            assert_buckets(&s, &pair, from, to, b);
        }
    }
    assert_buckets(&s, &[3], FIRST, END, 86_400);
    assert_buckets(&s, &[0, 1, 2, 3], FIRST, END, 3600);
    assert_buckets(&s, &[2, 9, 10, 4 + OTHERS - 1], FIRST + 2100, END, 86_400);
    assert!(s
        .rolled
        .traffic_buckets(&ids(&s.rolled, &pair), END, END + DAY, 86_400)
        .unwrap()
        .is_empty());
    assert!(s
        .rolled
        .traffic_buckets(&[], FIRST, END, 86_400)
        .unwrap()
        .is_empty());

    // Samples before 02:00 of day 2 pruned: days and hours still answer exactly, so they were
    // read from the rollups.
    let now = T0 + 3 * DAY + 2 * HOUR + 1234;
    let retention = Retention {
        samples_days: 1,
        ..Retention::default()
    };
    assert!(s.rolled.prune(&retention, now, usize::MAX).unwrap() > 0);
    assert_eq!(
        s.rolled.kept_since(Level::Samples).unwrap(),
        Some(T0 + 2 * DAY + 2 * HOUR)
    );
    for (from, to) in [(FIRST, END), (T0 + HOUR, T0 + 2 * DAY + 2 * HOUR + 600)] {
        assert_buckets(&s, &pair, from, to, 86_400);
        assert_buckets(&s, &pair, from, to, 3600);
    }
    // 5-minute buckets need the samples: what was pruned is gone
    let pruned = s
        .rolled
        .traffic_buckets(&ids(&s.rolled, &pair), T0, T0 + DAY, 300)
        .unwrap();
    assert!(pruned.is_empty());
}

#[test]
fn series_from_rollups_equal_the_samples() {
    let mut s = stores();
    let customer = ["198.51.100.1/32", "198.51.100.2/32"];
    let network = ["198.51.100.0/24", "2001:db8:100::/48", "203.0.113.64/26"];
    let one = ["198.51.100.1/32"];
    // the graph windows: a day in 5 minutes (samples), in half hours (samples), 2 hours
    // (hourly) and days (daily); any start and step
    let windows = [
        (T0 + DAY, T0 + 2 * DAY, 300),
        (FIRST, END, 1800),
        (T0 - 4 * HOUR, END, 7200),
        (T0, T0 + 3 * DAY, 86_400),
        (FIRST, END, 86_400),
        (FIRST + 300, END, 3600),
        (T0 + 17, END, 900),
    ];
    for nets in [&customer[..], &network[..], &one[..]] {
        for (from, to, step) in windows {
            // "b" writes 10-minute samples of 198.51.100.1 (and of the IPv6 host)
            assert_series(&s, &series_query(nets, from, to, step, None), 600);
            assert_series(&s, &series_query(nets, from, to, step, Some("a")), 300);
        }
    }
    // a host only "a" writes: the 10-minute samples of "b" are not its
    let only_a = ["198.51.100.3/32"];
    for (from, to, step) in windows {
        assert_series(&s, &series_query(&only_a, from, to, step, None), 300);
    }
    // a host with no rows, a range with none, an unknown sensor
    let nobody = series_query(&["192.0.2.1/32"], FIRST, END, 3600, None);
    assert!(s.rolled.series(&nobody).unwrap().points.is_empty());
    let later = series_query(&customer, END, END + DAY, 3600, None);
    assert!(s.rolled.series(&later).unwrap().points.is_empty());
    assert!(matches!(
        s.rolled
            .series(&series_query(&customer, FIRST, END, 3600, Some("zz"))),
        Err(StoreError::NoSensor(_))
    ));

    // Samples before 02:00 of day 2 pruned: series in hours and days still answer exactly (read
    // from the rollups), and the statistics still name the longest interval where they remain.
    let retention = Retention {
        samples_days: 1,
        ..Retention::default()
    };
    assert!(
        s.rolled
            .prune(&retention, T0 + 3 * DAY + 2 * HOUR + 1234, usize::MAX)
            .unwrap()
            > 0
    );
    for nets in [&customer[..], &network[..]] {
        let days = series_query(nets, T0, T0 + 3 * DAY, 86_400, None);
        let want = truth_series(&s.rows, &days);
        assert_eq!(s.rolled.series(&days).unwrap().points, want);
        let hours = series_query(nets, T0 - 4 * HOUR, END, 7200, None);
        let got = s.rolled.series(&hours).unwrap();
        assert_eq!(got.points, truth_series(&s.rows, &hours));
        assert_eq!(got.interval_s, 600);
    }
}
