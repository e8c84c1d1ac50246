//! Flushing 100,000 active addresses (DESIGN: under a second) to each store a sensor writes:
//! the local SQLite store alone, the SQLite store with its outbox (what a sensor with a central
//! store does at every flush), and the central PostgreSQL store on loopback TCP (binary COPY,
//! one transaction, the batch id recorded), on a throwaway server this bench starts; and the
//! same PostgreSQL flush with an index by (host, time) on the samples, the index the schema
//! leaves out. First the interval that adds the 100,000 hosts, then `BWACCT_BENCH_FLUSHES`
//! (default 10) steady intervals: median and slowest.
//!
//! `cargo bench --bench flush_central` (PostgreSQL's server binaries needed for its part).

#[path = "../tests/e2e/pg.rs"]
mod pg;

use bwacct::config::Postgres;
use bwacct::store::postgres::{BatchId, PgStore};
use bwacct::store::sqlite::SqliteStore;
use bwacct::store::{Sample, Store};
use bwacct::usage::{Host, Usage};
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

const HOSTS: u32 = 100_000;
/// 2026-11-02T00:00:00Z
const START: i64 = 1_793_577_600;

/// Host `i`'s traffic in interval `m`: tcp and http both ways, some udp (7 of 32 cells).
fn sample(m: i64) -> Sample {
    let hosts = (0..HOSTS)
        .map(|i| {
            // 10.0.0.0/8 never leaves the process: documentation ranges are too small
            let host = Host::Addr(IpAddr::V4(Ipv4Addr::from(0x0A00_0000 + i)));
            let x = u64::from(i) * 7919 + m as u64 * 104_729;
            let mut u = Usage::default();
            for (cell, v) in [
                (0, x % 90_000),
                (1, x % 60 + 1),
                (16, x % 900_000),
                (17, x % 600 + 1),
                (2, x % 700),
                (3, 1),
                (24, x % 400_000),
            ] {
                u.0[cell] = v;
            }
            (host, u)
        })
        .collect();
    Sample {
        sensor: "bench".into(),
        start: START + m * 60,
        interval_s: 60,
        hosts,
        ..Default::default()
    }
}

fn flushes() -> i64 {
    std::env::var("BWACCT_BENCH_FLUSHES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10)
}

/// Times the first write (new hosts) and `flushes()` more; prints and returns the median.
fn measure(name: &str, mut write: impl FnMut(&Sample)) -> Duration {
    let samples: Vec<Sample> = (0..=flushes()).map(sample).collect();
    let mut times = Vec::new();
    for s in &samples {
        let t = Instant::now();
        write(s);
        times.push(t.elapsed());
    }
    let first = times.remove(0);
    times.sort();
    let median = times[times.len() / 2];
    println!(
        "{name:<34} first (100,000 new hosts) {:>6.0} ms   steady median {:>6.0} ms   slowest {:>6.0} ms   ({} flushes)",
        first.as_secs_f64() * 1e3,
        median.as_secs_f64() * 1e3,
        times.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        times.len()
    );
    median
}

fn main() {
    let dir = tempfile::tempdir().expect("bench dir");
    let mut sqlite = SqliteStore::open(&dir.path().join("plain.db")).expect("sqlite");
    let plain = measure("sqlite", |s| sqlite.write(s).expect("write"));
    let mut outboxed = SqliteStore::open(&dir.path().join("outbox.db")).expect("sqlite");
    outboxed.outbox_origin().expect("outbox");
    let outbox = measure("sqlite + outbox", |s| {
        outboxed.write_queued(s).expect("write");
    });
    let Some(cluster) = pg::PgCluster::start("bench") else {
        return;
    };
    cluster.create_db("bwacct", "bwacct", "bench-password");
    let mut central = None;
    for (db, index) in [("bwacct", false), ("indexed", true)] {
        if index {
            cluster.psql("postgres", "CREATE DATABASE indexed OWNER bwacct");
        }
        let settings = Postgres {
            conninfo: format!(
                "{} password=bench-password",
                cluster.tcp_conninfo(db, "bwacct")
            ),
            password_file: None,
        };
        let mut store = PgStore::open(&settings).expect("postgres");
        if index {
            cluster.psql(db, "CREATE INDEX samples_by_host ON samples (host_id, ts)");
        }
        let mut seq = 0;
        let name = if index {
            "postgres (loopback), +(host,ts) index"
        } else {
            "postgres (loopback)"
        };
        let median = measure(name, |s| {
            seq += 1;
            store
                .deliver(BatchId { origin: 1, seq }, s)
                .expect("deliver");
        });
        central.get_or_insert(median);
    }
    let central = central.unwrap_or_default();
    println!(
        "ratios: outbox/sqlite {:.2}, postgres/sqlite {:.2}",
        outbox.as_secs_f64() / plain.as_secs_f64(),
        central.as_secs_f64() / plain.as_secs_f64()
    );
}
