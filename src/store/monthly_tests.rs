//! The monthly level of the SQLite store on real files: months crossing a boundary roll up
//! from the days, every level and any range sum to the samples, a late sample joins the month
//! already rolled up, pruning keeps what the months answer, and a version 4 store (daily rows,
//! no months) gives the same month totals before and after the new code rolls its months.

use super::rollup_tests::{q, sample, sorted};
use super::sqlite::SqliteStore;
use super::*;
use crate::rollup::{Retention, DAY, HOUR};
use std::path::Path;

/// 2026-10-01, 2026-11-01, 2026-12-01, 2027-01-01 (00:00Z)
const OCT: i64 = 1_790_812_800;
const NOV: i64 = 1_793_491_200;
const DEC: i64 = 1_796_083_200;
const JAN: i64 = 1_798_761_600;

/// Every 47 minutes from 2026-10-29T20:00 to 2026-12-02T06:00 for three hosts, the third only
/// from November on.
fn fill(s: &mut SqliteStore) {
    let mut t = NOV - 2 * DAY - 4 * HOUR;
    let mut k = 0;
    while t < DEC + DAY + 6 * HOUR {
        let mut hosts = vec![("198.51.100.1", k), ("2001:db8:100::1", k * 7 % 31)];
        if t >= NOV {
            hosts.push(("198.51.100.2", 3));
        }
        s.write(&sample(t, &hosts)).unwrap();
        t += 47 * 60;
        k += 1;
    }
}

/// Every level that answers `from..to` whole, and the planned answer, equal the samples.
fn all_equal(s: &SqliteStore, from: i64, to: i64) {
    let truth = sorted(s.usage_at(Level::Samples, &q(from, to)).unwrap());
    assert!(!truth.is_empty());
    assert_eq!(sorted(s.usage_by_host(&q(from, to)).unwrap()), truth);
    assert_eq!(
        s.stats(&q(from, to)).unwrap(),
        s.stats_at(Level::Samples, &q(from, to)).unwrap()
    );
    let marks = s.watermarks().unwrap();
    for level in [Level::Hourly, Level::Daily, Level::Monthly] {
        let whole = level.floor(from) == from && level.floor(to) == to;
        if whole && marks.of(level).is_some_and(|m| to <= m) {
            assert_eq!(
                sorted(s.usage_at(level, &q(from, to)).unwrap()),
                truth,
                "{} {from}..{to}",
                level.name()
            );
            assert_eq!(
                s.stats_at(level, &q(from, to)).unwrap(),
                s.stats_at(Level::Samples, &q(from, to)).unwrap()
            );
        }
    }
}

/// Ranges around November: the month, the month and some hours or days either side, parts.
fn ranges() -> Vec<(i64, i64)> {
    vec![
        (OCT, NOV),
        (NOV, DEC),
        (OCT, DEC),
        (NOV - 5 * HOUR, DEC + 11 * HOUR),
        (NOV + 3 * DAY, DEC + 2 * DAY),
        (NOV - DAY - 1234, DEC - 2 * DAY),
        (NOV + HOUR, DEC - HOUR),
        (OCT, JAN),
    ]
}

#[test]
fn months_roll_up_from_days_and_answer_with_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = SqliteStore::open(&dir.path().join("bw.db")).unwrap();
    fill(&mut s);
    // at 2026-12-01T10:00: November and the days of October it saw are complete
    let rolled = s.roll_up(DEC + 10 * HOUR, usize::MAX).unwrap();
    let marks = s.watermarks().unwrap();
    assert_eq!(marks.hourly, Some(DEC + 10 * HOUR));
    assert_eq!(marks.daily, Some(DEC));
    assert_eq!(marks.monthly, Some(DEC));
    // hours from 2026-10-29T20:00, days from 2026-10-29, October and November
    assert_eq!(rolled, (4 + 2 * 24 + 30 * 24 + 10) + (3 + 30) + 2);
    assert_eq!(s.roll_up(DEC + 10 * HOUR, usize::MAX).unwrap(), 0);
    // one row per host and month
    assert_eq!(s.usage_at(Level::Monthly, &q(NOV, DEC)).unwrap().len(), 3);
    assert_eq!(s.usage_at(Level::Monthly, &q(OCT, NOV)).unwrap().len(), 2);
    assert_eq!(
        rollup::plan(NOV - 5 * HOUR, DEC + 11 * HOUR, &marks)
            .iter()
            .map(|p| p.level)
            .collect::<Vec<_>>(),
        [Level::Hourly, Level::Monthly, Level::Hourly, Level::Samples]
    );
    for (from, to) in ranges() {
        all_equal(&s, from, to);
    }

    // a late sample in the middle of November (the restart of a sensor that was down) and one
    // on its last minute join the month, its day and its hour at once
    s.write(&sample(NOV + 14 * DAY + 30, &[("198.51.100.9", 4)]))
        .unwrap();
    s.write(&sample(DEC - 60, &[("198.51.100.1", 5)])).unwrap();
    assert_eq!(s.usage_at(Level::Monthly, &q(NOV, DEC)).unwrap().len(), 4);
    for (from, to) in ranges() {
        all_equal(&s, from, to);
    }

    // December completes once everything is rolled up
    s.roll_up(i64::MAX, usize::MAX).unwrap();
    assert_eq!(s.watermarks().unwrap().monthly, Some(JAN));
    all_equal(&s, DEC, JAN);
    all_equal(&s, OCT, JAN);
}

#[test]
fn pruning_the_days_keeps_the_months() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = SqliteStore::open(&dir.path().join("bw.db")).unwrap();
    fill(&mut s);
    s.roll_up(DEC + 10 * HOUR, usize::MAX).unwrap();
    let before: Vec<_> = ranges()
        .into_iter()
        .map(|(from, to)| sorted(s.usage_by_host(&q(from, to)).unwrap()))
        .collect();
    // a year later with days kept 10 days (and the finer levels less): every day before
    // December went, November is answered by its month
    let now = DEC + 375 * DAY;
    let retention = Retention {
        samples_days: 1,
        hourly_days: 1,
        daily_days: 10,
        monthly_days: 0,
    };
    assert!(s.prune(&retention, now, usize::MAX).unwrap() > 0);
    assert_eq!(s.kept_since(Level::Daily).unwrap(), Some(DEC));
    assert_eq!(s.kept_since(Level::Monthly).unwrap(), None);
    assert!(s.usage_at(Level::Daily, &q(OCT, DEC)).unwrap().is_empty());
    // October and November whole, each from its month
    for (i, (from, to)) in ranges().into_iter().enumerate().take(2) {
        assert_eq!(sorted(s.usage_by_host(&q(from, to)).unwrap()), before[i]);
    }
    assert_eq!(sorted(s.usage_by_host(&q(OCT, DEC)).unwrap()), before[2]);
}

/// November 2026 in `zone`, in Unix seconds.
fn november_in(zone: &str) -> (i64, i64) {
    let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
    let p = crate::period::month_in(day, zone.parse().unwrap());
    (p.from.timestamp(), p.to.timestamp())
}

/// The usage summed over the pieces of the plain plan (what a report read before months).
fn plain(s: &SqliteStore, from: i64, to: i64) -> Vec<(Host, Usage)> {
    let mut sum: std::collections::BTreeMap<Host, Usage> = Default::default();
    for p in rollup::plan(from, to, &s.watermarks().unwrap()) {
        for (h, u) in s.usage_at(p.level, &q(p.from, p.to)).unwrap() {
            sum.entry(h).or_default().merge(&u);
        }
    }
    sum.into_iter().collect()
}

#[test]
fn a_month_in_another_zone_is_the_utc_month_less_its_edges() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = SqliteStore::open(&dir.path().join("bw.db")).unwrap();
    fill(&mut s);
    // an address seen only in the hour after Berlin's November: not in its report
    s.write(&sample(DEC - 30 * 60, &[("203.0.113.5", 9)]))
        .unwrap();
    s.roll_up(DEC + 10 * HOUR, usize::MAX).unwrap();
    let marks = s.watermarks().unwrap();
    for zone in ["Europe/Berlin", "Asia/Kolkata", "America/New_York"] {
        let (from, to) = november_in(zone);
        assert!(
            rollup::plan_less_edges(from, to, &marks).is_some(),
            "{zone}: read as the UTC month less its edges"
        );
        let truth = sorted(s.usage_at(Level::Samples, &q(from, to)).unwrap());
        assert_eq!(
            sorted(s.usage_by_host(&q(from, to)).unwrap()),
            truth,
            "{zone}"
        );
        assert_eq!(plain(&s, from, to), truth, "{zone}");
    }
    let (from, to) = november_in("Europe/Berlin");
    let rows = s.usage_by_host(&q(from, to)).unwrap();
    assert!(rows.iter().all(|(h, _)| h.to_string() != "203.0.113.5"));
    assert_eq!(rows.len(), 3);

    // once the hours at the edges are pruned, the month less an hour cannot be read exactly:
    // the plain plan answers (and the report says which part is incomplete)
    let retention = Retention {
        samples_days: 1,
        hourly_days: 1,
        daily_days: 0,
        monthly_days: 0,
    };
    s.prune(&retention, DEC + 3 * DAY, usize::MAX).unwrap();
    assert!(s.kept_since(Level::Hourly).unwrap() > Some(to));
    assert_eq!(
        sorted(s.usage_by_host(&q(from, to)).unwrap()),
        plain(&s, from, to)
    );
}

/// Makes the store at `path` what version 4 left: no monthly tables, no monthly watermark.
fn as_version_4(path: &Path) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(
        "DROP TABLE monthly;
         DROP TABLE capture_stats_monthly;
         DELETE FROM rolled WHERE level = 'monthly';
         UPDATE schema_version SET version = 4;",
    )
    .unwrap();
}

#[test]
fn a_version_4_store_gives_the_same_month_totals_once_its_months_are_rolled() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v4.db");
    {
        let mut s = SqliteStore::open(&path).unwrap();
        fill(&mut s);
        // what the job had rolled by 2026-12-01T10:00 (hours and days are the same in v4)
        s.roll_up(DEC + 10 * HOUR, usize::MAX).unwrap();
    }
    as_version_4(&path);
    // the month as a version 4 bwacct reported it: from the days (and the samples)
    let v4 = SqliteStore::open_read_only(&path).unwrap();
    assert_eq!(v4.watermarks().unwrap().monthly, None);
    let month: Vec<_> = ranges()
        .into_iter()
        .map(|(from, to)| sorted(v4.usage_by_host(&q(from, to)).unwrap()))
        .collect();
    drop(v4);
    let mut s = SqliteStore::open(&path).unwrap();
    assert_eq!(
        s.schema_version().unwrap(),
        schema::sqlite_migrations().len() as i64
    );
    assert_eq!(s.watermarks().unwrap().monthly, None, "until the job runs");
    for (i, (from, to)) in ranges().into_iter().enumerate() {
        assert_eq!(sorted(s.usage_by_host(&q(from, to)).unwrap()), month[i]);
    }
    // the job rolls the completed months from the days it kept
    assert_eq!(s.roll_up(DEC + 10 * HOUR, usize::MAX).unwrap(), 2);
    assert_eq!(s.watermarks().unwrap().monthly, Some(DEC));
    for (i, (from, to)) in ranges().into_iter().enumerate() {
        assert_eq!(sorted(s.usage_by_host(&q(from, to)).unwrap()), month[i]);
        all_equal(&s, from, to);
    }
}
