//! The checker on a real SQLite store: states decided from stored ones, one event per change
//! across restarts (new checkers), billing days, period resets, the 95th percentile over real
//! samples, and hysteresis when the allotment is raised.

use super::check::{Checker, Policy};
use super::state::State;
use crate::classify::Class;
use crate::config::Config;
use crate::parse::Proto;
use crate::period::parse_time;
use crate::store::quota::{EventFilter, QuotaStore};
use crate::store::sqlite::SqliteStore;
use crate::store::{Sample, Store};
use crate::usage::{Dir, Usage};
use std::path::Path;
use std::sync::Arc;

fn at(s: &str) -> i64 {
    parse_time(s).unwrap().timestamp()
}

fn policy(customers: &str) -> Arc<Policy> {
    policy_with(customers, "")
}

fn policy_with(customers: &str, alerts: &str) -> Arc<Policy> {
    let text = format!(
        "[accounting]\nlocal = [\"198.51.100.0/24\"]\n{customers}\n[alerts]\nhooks = [[\"true\"]]\n{alerts}"
    );
    Arc::new(Policy::new(
        &Config::parse(Path::new("t.toml"), &text).unwrap(),
    ))
}

fn write(store: &mut SqliteStore, ts: i64, host: &str, tx: u64, rx: u64) {
    let mut u = Usage::default();
    u.set(Dir::Tx, Class::Proto(Proto::Tcp), false, tx);
    u.set(Dir::Rx, Class::Proto(Proto::Udp), false, rx);
    store
        .write(&Sample {
            sensor: "s".into(),
            start: ts,
            interval_s: 60,
            hosts: vec![(host.parse().unwrap(), u)],
            ..Default::default()
        })
        .unwrap();
}

/// A fresh checker (as after a restart) checks and stores at `t`; returns the changes.
fn check(store: &mut SqliteStore, p: &Arc<Policy>, t: i64) -> Vec<(String, String)> {
    let mut c = Checker::new(Arc::clone(p));
    let statuses = c.evaluate(store, t).unwrap();
    c.commit(store, &statuses, t)
        .unwrap()
        .into_iter()
        .map(|e| (e.old_state, e.new_state))
        .collect()
}

fn pair(a: &str, b: &str) -> (String, String) {
    (a.into(), b.into())
}

#[test]
fn volume_states_persist_and_each_change_is_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(&dir.path().join("bw.db")).unwrap();
    let p = policy(
        "[[customer]]\nname = \"goneril\"\naddresses = [\"198.51.100.1\"]\n\
         allotment = { monthly_gb = 0.000001 }\nbilling_day = 15\n",
    );
    // Before the period (14 January): not counted in the period from 15 January.
    write(
        &mut store,
        at("2024-01-14T12:00:00Z"),
        "198.51.100.1",
        5000,
        0,
    );
    write(
        &mut store,
        at("2024-01-20T00:00:00Z"),
        "198.51.100.1",
        600,
        300,
    );
    write(
        &mut store,
        at("2024-01-20T00:00:00Z"),
        "198.51.100.2",
        9999,
        0,
    );
    assert_eq!(
        check(&mut store, &p, at("2024-01-20T01:00:00Z")),
        vec![pair("ok", "warn")]
    );
    assert_eq!(check(&mut store, &p, at("2024-01-20T02:00:00Z")), vec![]);
    write(
        &mut store,
        at("2024-01-21T00:00:00Z"),
        "198.51.100.1",
        200,
        0,
    );
    assert_eq!(
        check(&mut store, &p, at("2024-01-21T01:00:00Z")),
        vec![pair("warn", "over")]
    );
    assert_eq!(check(&mut store, &p, at("2024-01-22T00:00:00Z")), vec![]);
    // The next period starts on 15 February: back to ok, dated at its start.
    assert_eq!(
        check(&mut store, &p, at("2024-02-20T00:00:00Z")),
        vec![pair("over", "ok")]
    );
    let events = store.quota_events(&EventFilter::default()).unwrap();
    assert_eq!(events.len(), 3);
    assert_eq!(events[0].used, 900);
    assert_eq!(events[1].used, 1100);
    assert_eq!(events[1].reason, "used 110.0% of the allotment");
    assert_eq!(events[2].ts, at("2024-02-15T00:00:00Z"));
    assert_eq!(events[2].reason, "new billing period");
    let states = store.quota_states().unwrap();
    assert_eq!(
        (states[0].state.as_str(), states[0].period_start),
        ("ok", at("2024-02-15"))
    );
    // A late look at January decides nothing any more.
    assert_eq!(check(&mut store, &p, at("2024-01-25T00:00:00Z")), vec![]);
}

#[test]
fn p95_over_real_samples_with_hysteresis_on_a_raised_allotment() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(&dir.path().join("bw.db")).unwrap();
    let customer = |mbit: &str| {
        policy(&format!(
            "[[customer]]\nname = \"regan\"\naddresses = [\"198.51.100.16/30\"]\nallotment = {{ p95_mbit = {mbit} }}\n"
        ))
    };
    // February 2024: 29 days, 8352 five-minute samples, the top 417 discarded.
    let feb = at("2024-02-01T00:00:00Z");
    let end = at("2024-03-01T00:00:00Z") - 1;
    // 417 busy five-minute samples at 1 Mbit/s, sent as five one-minute samples of 7.5 MB
    // spread over two addresses.
    for b in 0..417 {
        for m in 0..5 {
            let host = if m % 2 == 0 {
                "198.51.100.17"
            } else {
                "198.51.100.18"
            };
            write(&mut store, feb + b * 300 + m * 60, host, 7_500_000, 1000);
        }
    }
    let p = customer("1");
    let mut c = Checker::new(Arc::clone(&p));
    let s = &c.evaluate(&store, end).unwrap()[0];
    // All of them fit in the discarded 5 %: nothing is billed yet.
    assert_eq!((s.measured.used, s.state), (0, State::Ok));
    // Judged on the first day alone, the pace is 1 Mbit/s.
    let s = &c.evaluate(&store, feb + 86_400).unwrap()[0];
    assert_eq!(s.measured.estimate, 1_000_000);
    // One busy sample more: the 418th largest is billed.
    for m in 0..5 {
        write(
            &mut store,
            feb + 417 * 300 + m * 60,
            "198.51.100.17",
            7_500_000,
            0,
        );
    }
    // The checker that read the month before sees the new sample (it re-reads the last hours).
    assert_eq!(c.evaluate(&store, end).unwrap()[0].measured.used, 1_000_000);
    assert_eq!(check(&mut store, &p, end), vec![pair("ok", "over")]);
    let events = store.quota_events(&EventFilter::default()).unwrap();
    assert_eq!(
        (events[0].used, events[0].allotment, events[0].unit.as_str()),
        (1_000_000, 1_000_000, "bit/s")
    );
    assert_eq!(events[0].used_bytes, 418 * 5 * 7_500_000 + 417 * 5 * 1000);
    // Raised by 2 %: 98 % is within the 5 points of hysteresis, still over.
    assert_eq!(check(&mut store, &customer("1.02"), end), vec![]);
    // Raised to 1.2 Mbit/s: 83 %, over → warn.
    assert_eq!(
        check(&mut store, &customer("1.2"), end),
        vec![pair("over", "warn")]
    );
    assert_eq!(check(&mut store, &customer("1.2"), end), vec![]);
}

#[test]
fn the_estimate_warns_only_after_the_first_day() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(&dir.path().join("bw.db")).unwrap();
    let p = policy_with(
        "[[customer]]\nname = \"goneril\"\naddresses = [\"198.51.100.1\"]\nallotment = { monthly_gb = 0.000001 }\n",
        "warn_on_estimate = true\n",
    );
    write(
        &mut store,
        at("2024-04-01T00:00:00Z"),
        "198.51.100.1",
        100,
        0,
    );
    // An hour in, 100 bytes project to 72,000: too early to say.
    let mut c = Checker::new(Arc::clone(&p));
    assert_eq!(
        c.evaluate(&store, at("2024-04-01T01:00:00Z")).unwrap()[0]
            .measured
            .estimate,
        72_000
    );
    assert_eq!(check(&mut store, &p, at("2024-04-01T01:00:00Z")), vec![]);
    // Two days in, the pace (1,500 by the end) passes the 1,000 allotted: warn.
    assert_eq!(
        check(&mut store, &p, at("2024-04-03T00:00:00Z")),
        vec![pair("ok", "warn")]
    );
    let e = &store.quota_events(&EventFilter::default()).unwrap()[0];
    assert_eq!((e.used, e.estimate), (100, 1500));
    assert_eq!(
        e.reason,
        "estimate 150.0% of the allotment by the end of the period"
    );
}

#[test]
fn volume_from_rollups_counts_exactly_what_the_samples_count() {
    use crate::rollup::{Retention, DAY, HOUR};
    let dir = tempfile::tempdir().unwrap();
    // the same writes to a store that rolls up (and prunes) and to one of samples only
    let mut rolled = SqliteStore::open(&dir.path().join("rolled.db")).unwrap();
    let mut samples = SqliteStore::open(&dir.path().join("samples.db")).unwrap();
    let nov = at("2026-11-01T00:00:00Z");
    let last = nov + 2 * DAY + 10 * HOUR + 7 * 60;
    let mut sent: Vec<(i64, u64)> = Vec::new();
    let mut times: Vec<i64> = (nov - 3600..nov + 2 * DAY + 10 * HOUR)
        .step_by(300)
        .collect();
    // around 10:00 on the 3rd, minute by minute
    times.extend([3, 5, 7].map(|m| nov + 2 * DAY + 10 * HOUR + m * 60));
    for t in times {
        let tx = 1000 + (t - nov).rem_euclid(7919) as u64;
        for store in [&mut rolled, &mut samples] {
            write(store, t, "198.51.100.1", tx, 7);
            write(store, t, "198.51.100.5", 3 * tx, 0);
        }
        sent.push((t, tx + 7));
    }
    rolled
        .roll_up(nov + 2 * DAY + 10 * HOUR, usize::MAX)
        .unwrap();
    let p = policy(
        "[[customer]]\nname = \"goneril\"\naddresses = [\"198.51.100.1\"]\nallotment = { monthly_gb = 1 }\n\
         [[customer]]\nname = \"regan\"\naddresses = [\"198.51.100.5\"]\nallotment = { p95_mbit = 1 }\n",
    );
    // what the 5-minute buckets that start in November before `at` hold
    let truth = |at: i64| -> u64 {
        let end = at + (300 - at.rem_euclid(300)) % 300;
        sent.iter()
            .filter(|(t, _)| *t >= nov && *t < end)
            .map(|(_, b)| b)
            .sum()
    };
    let measured = |store: &SqliteStore, at: i64| -> Vec<(u64, u64, u64)> {
        Checker::new(Arc::clone(&p))
            .evaluate(store, at)
            .unwrap()
            .iter()
            .map(|s| (s.measured.used, s.measured.estimate, s.measured.used_bytes))
            .collect()
    };
    let edge = nov + 2 * DAY + 10 * HOUR;
    for t in [
        nov + DAY + 13 * HOUR + 37 * 60,
        nov + DAY,
        edge,
        edge + 4 * 60,
        edge + 5 * 60,
        edge + 5 * 60 + 1,
        last,
        nov + 20 * DAY,
    ] {
        let want = measured(&samples, t);
        assert_eq!(want[0].0, truth(t), "at {t}");
        assert_eq!(measured(&rolled, t), want, "at {t}");
    }
    // samples before 10:00 on the 2nd pruned: the volume still adds up, from the rollups
    let retention = Retention {
        samples_days: 1,
        ..Retention::default()
    };
    assert!(rolled.prune(&retention, edge + 600, usize::MAX).unwrap() > 0);
    for t in [edge, edge + 4 * 60, edge + 5 * 60, last] {
        assert_eq!(measured(&rolled, t)[0], measured(&samples, t)[0], "at {t}");
    }
}
