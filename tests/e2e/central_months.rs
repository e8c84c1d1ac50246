//! The monthly level of the central PostgreSQL store, against a real server started by the
//! test (`pg`): samples across a month boundary roll up into hours, days and months that all
//! sum to the samples per address and class, and so does a month in another zone (the UTC
//! month less its edges); a late sample joins the month already rolled; a
//! database as version 2 left it (days, no months) gives the same month totals once migrated
//! and once its months are rolled.

use crate::central::{one_sample, settings};
use crate::pg::PgCluster;
use bwacct::rollup::{self, Level, DAY, HOUR};
use bwacct::store::postgres::{migrations, PgStore};
use bwacct::store::{Query, Store};
use bwacct::usage::{Host, Usage};
use std::collections::BTreeMap;

/// 2026-10-01, 2026-11-01, 2026-12-01 (00:00Z)
const OCT: i64 = 1_790_812_800;
const NOV: i64 = 1_793_491_200;
const DEC: i64 = 1_796_083_200;

fn q(from: i64, to: i64) -> Query {
    Query {
        from,
        to,
        sensor: None,
    }
}

fn at(store: &PgStore, level: Level, from: i64, to: i64) -> BTreeMap<Host, Usage> {
    store
        .usage_at(level, &q(from, to))
        .unwrap()
        .into_iter()
        .collect()
}

fn planned(store: &PgStore, from: i64, to: i64) -> BTreeMap<Host, Usage> {
    store
        .usage_by_host(&q(from, to))
        .unwrap()
        .into_iter()
        .collect()
}

/// Every 3 h 7 min from 2026-10-29T20:00 to 2026-12-02T06:00, two sensors, three addresses.
fn fill(store: &mut PgStore) {
    let mut t = NOV - 2 * DAY - 4 * HOUR;
    let mut k = 0;
    while t < DEC + DAY + 6 * HOUR {
        store
            .write(&one_sample("dom0-a", t, "198.51.100.1", 1000 + k))
            .unwrap();
        store
            .write(&one_sample("dom0-a", t + 60, "2001:db8:100::1", 7 * k))
            .unwrap();
        store
            .write(&one_sample("dom0-b", t, "198.51.100.2", 3))
            .unwrap();
        t += 3 * HOUR + 7 * 60;
        k += 1;
    }
}

/// The ranges asked: October, November, both, November and some hours or days either side,
/// November in Europe/Berlin (read as the UTC month less its edges).
const RANGES: [(i64, i64); 6] = [
    (OCT, NOV),
    (NOV, DEC),
    (OCT, DEC),
    (NOV - 5 * HOUR, DEC + 11 * HOUR),
    (NOV + 3 * DAY + HOUR, DEC + 2 * DAY),
    (NOV - HOUR, DEC - HOUR),
];

fn all_equal(store: &PgStore) {
    for (from, to) in RANGES {
        let truth = at(store, Level::Samples, from, to);
        assert_eq!(truth.len(), 3);
        assert_eq!(planned(store, from, to), truth, "{from}..{to}");
        assert_eq!(
            store.stats(&q(from, to)).unwrap(),
            store.stats_at(Level::Samples, &q(from, to)).unwrap()
        );
    }
    for (from, to) in [(OCT, NOV), (NOV, DEC), (OCT, DEC)] {
        let truth = at(store, Level::Samples, from, to);
        for level in [Level::Hourly, Level::Daily, Level::Monthly] {
            assert_eq!(at(store, level, from, to), truth, "{}", level.name());
        }
    }
}

#[test]
fn months_roll_up_centrally_and_a_late_sample_joins_them() {
    let Some(pg) = PgCluster::start("months") else {
        return;
    };
    pg.psql("postgres", "CREATE DATABASE bw");
    let mut store = PgStore::open(&settings(pg.socket_conninfo("bw"))).unwrap();
    fill(&mut store);
    store.roll_up(DEC + 10 * HOUR, usize::MAX).unwrap();
    let marks = store.watermarks().unwrap();
    assert_eq!((marks.daily, marks.monthly), (Some(DEC), Some(DEC)));
    assert!(marks.hourly > Some(DEC) && marks.hourly <= Some(DEC + 10 * HOUR));
    assert_eq!(
        pg.psql("bw", "SELECT count(*) FROM monthly"),
        "6",
        "one row per sensor, address and month"
    );
    assert!(rollup::plan(NOV - 5 * HOUR, DEC + 11 * HOUR, &marks)
        .iter()
        .any(|p| p.level == Level::Monthly));
    assert!(rollup::plan_less_edges(NOV - HOUR, DEC - HOUR, &marks).is_some());
    all_equal(&store);
    // late samples of November: they join the month, its day and its hour at once
    store
        .write(&one_sample(
            "dom0-b",
            NOV + 14 * DAY + 120,
            "198.51.100.2",
            40,
        ))
        .unwrap();
    store
        .write(&one_sample("dom0-a", DEC - 60, "198.51.100.1", 5))
        .unwrap();
    assert_eq!(
        at(&store, Level::Monthly, NOV, DEC)[&"198.51.100.2".parse::<Host>().unwrap()].0[0],
        at(&store, Level::Samples, NOV, DEC)[&"198.51.100.2".parse::<Host>().unwrap()].0[0],
    );
    all_equal(&store);
}

#[test]
fn a_version_2_database_gives_the_same_month_totals_once_migrated_and_rolled() {
    let Some(pg) = PgCluster::start("months-upgrade") else {
        return;
    };
    pg.psql("postgres", "CREATE DATABASE bw");
    let conninfo = pg.socket_conninfo("bw");
    {
        let mut store = PgStore::open(&settings(conninfo.clone())).unwrap();
        fill(&mut store);
        store.roll_up(DEC + 10 * HOUR, usize::MAX).unwrap();
    }
    // what version 2 left: hours and days rolled the same way, no months
    pg.psql(
        "bw",
        "DROP TABLE monthly; DROP TABLE capture_stats_monthly;
         DELETE FROM rolled WHERE level = 'monthly'; UPDATE schema_version SET version = 2;",
    );
    let mut store = PgStore::open(&settings(conninfo)).unwrap();
    assert_eq!(store.schema_version().unwrap(), migrations().len() as i64);
    assert_eq!(
        store.watermarks().unwrap().monthly,
        None,
        "until the job runs"
    );
    let before: Vec<_> = RANGES
        .iter()
        .map(|&(from, to)| planned(&store, from, to))
        .collect();
    for (i, &(from, to)) in RANGES.iter().enumerate() {
        assert_eq!(before[i], at(&store, Level::Samples, from, to));
    }
    assert_eq!(store.roll_up(DEC + 10 * HOUR, usize::MAX).unwrap(), 2);
    assert_eq!(store.watermarks().unwrap().monthly, Some(DEC));
    for (i, &(from, to)) in RANGES.iter().enumerate() {
        assert_eq!(planned(&store, from, to), before[i]);
    }
    all_equal(&store);
}
