//! Rollups and retention end to end, on a capture spread over nine days (2026-10-24 12:00 UTC to
//! 2026-11-02, across the end of daylight saving time in Europe and a month boundary), made
//! with `gen_pcap.py --packets 3000 --pps 0.00386 --start 2026-10-24T12:00:00Z --snaplen 96
//! --seed 5`: the samples, hourly, daily and monthly levels hold the same totals per address and class,
//! equal to the truth, whichever levels and time zone a report reads.

use crate::common::*;
use bwacct::rollup::{Level, Retention};
use bwacct::store::sqlite::SqliteStore;
use bwacct::store::{Query, Store};
use bwacct::usage::{Host, Usage};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const LOCAL: [&str; 2] = ["198.51.100.0/24", "2001:db8:100::/56"];
/// 2026-10-24T00:00:00Z and 2026-11-03T00:00:00Z: whole UTC days around the capture.
const FROM: i64 = 1_792_800_000;
const TO: i64 = FROM + 10 * 86_400;

fn capture() -> PathBuf {
    data("multiday-eth-3k.pcap")
}

/// A store with the capture replayed into it; returns (tempdir, config).
fn replayed(extra: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &LOCAL, extra);
    run_ok(bwacct().arg("-c").arg(&cfg).arg("replay").arg(capture()));
    (dir, cfg)
}

fn level(store: &SqliteStore, level: Level, from: i64, to: i64) -> BTreeMap<Host, Usage> {
    let q = Query {
        from,
        to,
        sensor: None,
    };
    store.usage_at(level, &q).unwrap().into_iter().collect()
}

fn assert_truth(rows: &BTreeMap<String, serde_json::Value>, what: &str) {
    let diffs = diff_truth(rows, &truth_of(&capture()));
    assert!(
        diffs.is_empty(),
        "{what}: {} differences from the truth, first: {:#?}",
        diffs.len(),
        &diffs[..diffs.len().min(10)]
    );
}

#[test]
fn samples_hourly_daily_and_monthly_hold_the_same_totals_as_the_truth() {
    let (dir, cfg) = replayed("");
    let store = SqliteStore::open_read_only(&dir.path().join("bw.db")).unwrap();
    let samples = level(&store, Level::Samples, FROM, TO);
    assert_eq!(
        samples.len(),
        truth_of(&capture())["hosts"].as_object().unwrap().len()
    );
    // every address, every class, bytes and packets: the 32 numbers of a usage row
    assert_eq!(level(&store, Level::Hourly, FROM, TO), samples);
    assert_eq!(level(&store, Level::Daily, FROM, TO), samples);
    // day by day and hour by hour too
    for day in 0..10 {
        let (a, b) = (FROM + day * 86_400, FROM + (day + 1) * 86_400);
        let s = level(&store, Level::Samples, a, b);
        assert_eq!(level(&store, Level::Daily, a, b), s, "day {day}");
        assert_eq!(level(&store, Level::Hourly, a, b), s, "day {day}");
    }
    // and month by month: October and November, one row per address and month. The replay
    // rolled October (complete by the wall clock); the job rolls November once it is over.
    let months = [1_790_812_800, 1_793_491_200, 1_796_083_200]; // 2026-10-01, -11-01, -12-01
    assert!(store.watermarks().unwrap().monthly >= Some(months[1]));
    assert_eq!(
        level(&store, Level::Monthly, months[0], months[1]),
        level(&store, Level::Samples, months[0], months[1])
    );
    SqliteStore::open(&dir.path().join("bw.db"))
        .unwrap()
        .roll_up(months[2], usize::MAX)
        .unwrap();
    assert_eq!(store.watermarks().unwrap().monthly, Some(months[2]));
    assert_eq!(level(&store, Level::Monthly, months[0], months[2]), samples);
    for m in months.windows(2) {
        let s = level(&store, Level::Samples, m[0], m[1]);
        assert!(!s.is_empty());
        assert_eq!(level(&store, Level::Monthly, m[0], m[1]), s);
        assert_eq!(level(&store, Level::Daily, m[0], m[1]), s);
    }
    for hour in (0..240).step_by(7) {
        let (a, b) = (FROM + hour * 3600, FROM + (hour + 1) * 3600);
        assert_eq!(
            level(&store, Level::Hourly, a, b),
            level(&store, Level::Samples, a, b),
            "hour {hour}"
        );
    }

    // the reports: whole UTC days (daily rows), an unaligned range (samples, hourly and daily
    // rows), UTC months
    assert_truth(
        &report_rows(&cfg, &["--from", "2026-10-24", "--to", "2026-11-03"]),
        "whole days",
    );
    assert_truth(
        &report_rows(
            &cfg,
            &[
                "--from",
                "2026-10-24T11:59:00Z",
                "--to",
                "2026-11-02T09:01:00Z",
            ],
        ),
        "an unaligned range",
    );
    let months = [
        report_rows(&cfg, &["--month", "2026-10"]),
        report_rows(&cfg, &["--month", "2026-11"]),
    ];
    assert_truth(&sum_rows(&months), "October + November");
}

#[test]
fn reports_in_another_time_zone_add_up_to_the_truth() {
    let (_dir, cfg) = replayed("[report]\ntimezone = \"Europe/Berlin\"\n");
    // Berlin days: 23 or 24 hours of UTC, 25 on 2026-10-25 (answered from hourly rows)
    let mut days = Vec::new();
    for d in 24..=31 {
        days.push(report_rows(&cfg, &["--day", &format!("2026-10-{d}")]));
    }
    for d in 1..=2 {
        days.push(report_rows(&cfg, &["--day", &format!("2026-11-0{d}")]));
    }
    assert_truth(&sum_rows(&days), "Berlin days");
    // the day daylight saving ends holds 25 hours: more than the UTC day of the same date
    let berlin = report_rows(&cfg, &["--day", "2026-10-25"]);
    let utc = report_rows(&cfg, &["--day", "2026-10-25", "--timezone", "UTC"]);
    let total = |rows: &BTreeMap<String, serde_json::Value>| -> u64 {
        rows.values()
            .map(|r| r["tx_bytes"].as_u64().unwrap() + r["rx_bytes"].as_u64().unwrap())
            .sum()
    };
    assert_ne!(total(&berlin), total(&utc));
    let months = [
        report_rows(&cfg, &["--month", "2026-10"]),
        report_rows(&cfg, &["--month", "2026-11"]),
    ];
    assert_truth(&sum_rows(&months), "Berlin months");
    // the JSON shows the period in its zone
    let out = run_ok(bwacct().arg("-c").arg(&cfg).args([
        "report",
        "--day",
        "2026-10-25",
        "--format",
        "json",
    ]));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["from"], "2026-10-25T00:00:00+02:00");
    assert_eq!(v["to"], "2026-10-26T00:00:00+01:00");
}

/// Sample rows per level in the store file.
fn rows_per_level(db: &Path) -> [i64; 3] {
    let conn = rusqlite::Connection::open(db).unwrap();
    ["samples", "hourly", "daily"].map(|t| {
        conn.query_row(&format!("SELECT count(*) FROM {t}"), [], |r| r.get(0))
            .unwrap()
    })
}

#[test]
fn retention_prunes_old_rows_and_the_rollups_still_answer() {
    let (dir, cfg) = replayed("");
    let db = dir.path().join("bw.db");
    let [samples_before, hourly_before, daily_before] = rows_per_level(&db);
    // as of 2026-11-05: samples kept 7 days (from 2026-10-29), hourly 8 (from 2026-10-28)
    let now = FROM + 12 * 86_400;
    let retention = Retention {
        samples_days: 7,
        hourly_days: 8,
        daily_days: 0,
        monthly_days: 0,
    };
    let mut store = SqliteStore::open(&db).unwrap();
    let kept_samples = level(&store, Level::Samples, FROM + 5 * 86_400, TO);
    let kept_hourly = level(&store, Level::Hourly, FROM + 4 * 86_400, TO);
    let mut deleted = 0;
    loop {
        let n = store.prune(&retention, now, 500).unwrap();
        deleted += n;
        if n < 500 {
            break;
        }
    }
    assert!(deleted > 0);
    // older than the retention: gone; newer: kept, unchanged
    assert!(level(&store, Level::Samples, FROM, FROM + 5 * 86_400).is_empty());
    assert_eq!(
        level(&store, Level::Samples, FROM + 5 * 86_400, TO),
        kept_samples
    );
    assert!(level(&store, Level::Hourly, FROM, FROM + 4 * 86_400).is_empty());
    assert_eq!(
        level(&store, Level::Hourly, FROM + 4 * 86_400, TO),
        kept_hourly
    );
    let [samples_after, hourly_after, daily_after] = rows_per_level(&db);
    assert!(samples_after < samples_before && hourly_after < hourly_before);
    assert_eq!(daily_after, daily_before);
    assert_eq!(
        store.kept_since(Level::Samples).unwrap(),
        Some(FROM + 5 * 86_400)
    );
    drop(store);
    // the rollups still answer for the pruned days, exactly
    assert_truth(
        &report_rows(&cfg, &["--from", "2026-10-24", "--to", "2026-11-03"]),
        "after pruning",
    );
    // a range that needs the pruned samples says so
    let out = run_ok(bwacct().arg("-c").arg(&cfg).args([
        "report",
        "--from",
        "2026-10-25T10:30:00Z",
        "--to",
        "2026-10-25T12:00:00Z",
        "--format",
        "csv",
    ]));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("samples rows, which are only kept from 2026-10-29 00:00 UTC"),
        "{err}"
    );
}

#[test]
fn the_prune_command_applies_the_configured_retention() {
    // samples kept a day: by now (after 2026-11-03) every sample of the capture is older
    let (dir, cfg) =
        replayed("[storage.retention]\nsamples_days = 1\nhourly_days = 36500\ndaily_days = 0\n");
    let out = run_ok(bwacct().arg("-c").arg(&cfg).arg("prune"));
    let text = String::from_utf8_lossy(&out.stdout);
    let deleted: usize = text
        .lines()
        .find_map(|l| l.strip_prefix("rows deleted"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("{text}"));
    let [samples, hourly, _] = rows_per_level(&dir.path().join("bw.db"));
    assert_eq!(samples, 0);
    assert!(deleted > 0 && hourly > 0, "{text}");
    assert!(text.contains("daily            all kept"), "{text}");
    assert_truth(
        &report_rows(&cfg, &["--from", "2026-10-24", "--to", "2026-11-03"]),
        "after bwacct prune",
    );
}
