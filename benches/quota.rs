//! The quota check that `run` makes after every flush, on the real SQLite stores of
//! `common/stores.rs` (a month of one-minute samples of 240 hosts; 3 days of 5-minute samples of
//! 10,000 hosts). A fresh checker (the `quota` command, replay's check, `run`'s first check,
//! the HTML report) reads each customer's whole period: one customer of two addresses with a
//! monthly volume, one with a 95th percentile, all 20 (10 of each kind); the checker of a
//! running service re-reads only the last two hours of the 95th-percentile customers.

#[path = "common/stores.rs"]
mod stores;

use bwacct::config::Config;
use bwacct::quota::{Checker, Policy};
use criterion::{criterion_group, criterion_main, Criterion};
use std::path::Path;
use std::sync::Arc;
use stores::{Shape, MANY, MONTH};

/// Customers of two addresses each (even: a monthly volume, odd: a 95th percentile).
fn policy(shape: &Shape, customers: &[usize]) -> Arc<Policy> {
    let mut text = format!("[accounting]\nlocal = [\"{}\"]\n", shape.net);
    for &i in customers {
        text.push_str(&format!(
            "[[customer]]\nname = \"c{i}\"\naddresses = [\"{}\", \"{}\"]\nallotment = {{ {} }}\n",
            (shape.addr)(2 * i + 1),
            (shape.addr)(2 * i + 2),
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

fn checks(c: &mut Criterion) {
    let all: Vec<usize> = (0..20).collect();
    for shape in [MANY, MONTH] {
        let store = shape.open();
        let last = shape.last();
        let mut g = c.benchmark_group(format!("quota_check {}", shape.name));
        g.sample_size(10);
        for (name, customers) in [
            ("fresh checker, 1 volume customer", &[4][..]),
            ("fresh checker, 1 p95 customer", &[5][..]),
            ("fresh checker, 20 customers", &all[..]),
        ] {
            let policy = policy(&shape, customers);
            let mut checker = Checker::new(Arc::clone(&policy));
            let statuses = checker.evaluate(&store, last).expect("evaluate");
            assert!(statuses.iter().all(|s| s.measured.used > 0), "{name}");
            g.bench_function(name, |b| {
                b.iter(|| {
                    let mut checker = Checker::new(Arc::clone(&policy));
                    checker.evaluate(&store, last).expect("evaluate").len()
                })
            });
        }
        let mut running = Checker::new(policy(&shape, &all));
        running.evaluate(&store, last).expect("evaluate");
        g.bench_function("running checker, 20 customers, after a flush", |b| {
            b.iter(|| running.evaluate(&store, last).expect("evaluate").len())
        });
        g.finish();
    }
}

criterion_group!(benches, checks);
criterion_main!(benches);
