//! The quota check that `run` makes after every flush, on a month of one-minute samples in a
//! real SQLite store: 20 customers of 2 addresses each plus 200 addresses of nobody (a 30-day
//! month: 43,200 intervals, 10.4 million rows). A fresh checker reads each customer's whole
//! period; the checker of a running service re-reads only the last two hours.

use bwacct::classify::Class;
use bwacct::config::Config;
use bwacct::parse::Proto;
use bwacct::quota::{Checker, Policy};
use bwacct::store::sqlite::SqliteStore;
use bwacct::store::{Sample, Store};
use bwacct::usage::{Dir, Host, Usage};
use criterion::{criterion_group, criterion_main, Criterion};
use std::path::Path;
use std::sync::Arc;

const CUSTOMERS: usize = 20;
const OTHERS: usize = 200;
const MINUTES: i64 = 30 * 24 * 60;
/// 2024-04-01T00:00:00Z: a 30-day month.
const START: i64 = 1_711_929_600;

fn policy() -> Arc<Policy> {
    let mut text = String::from("[accounting]\nlocal = [\"198.51.100.0/24\"]\n");
    for i in 0..CUSTOMERS {
        text.push_str(&format!(
            "[[customer]]\nname = \"c{i}\"\naddresses = [\"198.51.100.{}\", \"198.51.100.{}\"]\n\
             allotment = {{ {} }}\n",
            2 * i + 1,
            2 * i + 2,
            if i % 2 == 0 {
                "monthly_gb = 500"
            } else {
                "p95_mbit = 10"
            }
        ));
    }
    Arc::new(Policy::new(
        &Config::parse(Path::new("bench.toml"), &text).expect("config"),
    ))
}

fn store(dir: &Path) -> SqliteStore {
    let mut store = SqliteStore::open(&dir.join("bw.db")).expect("store");
    let mut u = Usage::default();
    u.set(Dir::Tx, Class::Proto(Proto::Tcp), false, 1_000_000);
    u.set(Dir::Tx, Class::Proto(Proto::Tcp), true, 700);
    u.set(Dir::Rx, Class::Proto(Proto::Udp), false, 50_000);
    let hosts: Vec<(Host, Usage)> = (1..=(2 * CUSTOMERS + OTHERS).min(254))
        .map(|i| (format!("198.51.100.{i}").parse().expect("host"), u))
        .collect();
    for m in 0..MINUTES {
        store
            .write(&Sample {
                sensor: "bench".into(),
                start: START + m * 60,
                interval_s: 60,
                hosts: hosts.clone(),
                ..Default::default()
            })
            .expect("write");
    }
    store
}

fn checks(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store(dir.path());
    let at = START + MINUTES * 60 - 1;
    let mut g = c.benchmark_group("quota_check");
    g.sample_size(10);
    g.bench_function("fresh checker, whole month", |b| {
        b.iter(|| {
            let mut checker = Checker::new(policy());
            checker.evaluate(&store, at).expect("evaluate").len()
        })
    });
    let mut running = Checker::new(policy());
    running.evaluate(&store, at).expect("evaluate");
    g.bench_function("running checker, after a flush", |b| {
        b.iter(|| running.evaluate(&store, at).expect("evaluate").len())
    });
    g.finish();
}

criterion_group!(benches, checks);
criterion_main!(benches);
