//! The real SQLite stores the quota and series benches read, filled as `run` fills them (one
//! interval per transaction, the rollup job after each write; at the last second the hourly
//! level holds all but the last hour and the daily level all but the last day). Every host
//! sends 1 MB in 700 packets and receives 50 kB in each interval.
//! - [`MONTH`]: 240 addresses of 198.51.100.0/24 every minute of April 2024 (43,200 intervals,
//!   10.4 million rows);
//! - [`MANY`]: 10,000 addresses of 2001:db8:1::/112 every 5 minutes of 1–3 April 2024 (864
//!   intervals, 8.6 million rows).
//!
//! In both the first 40 addresses are 20 customers of two addresses each. The stores are kept
//! in `BWACCT_BENCH_DIR` (default `target/bench-store`) and reused by the next run (delete one
//! to fill it again).

use bwacct::classify::Class;
use bwacct::parse::Proto;
use bwacct::store::sqlite::SqliteStore;
use bwacct::store::{Sample, Store};
use bwacct::usage::{Dir, Host, Usage};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// 2024-04-01T00:00:00Z: the first interval of both stores.
const START: i64 = 1_711_929_600;

/// What a store holds.
pub struct Shape {
    pub name: &'static str,
    pub hosts: usize,
    pub interval_s: i64,
    pub intervals: i64,
    /// Address `i` (1-based).
    pub addr: fn(usize) -> String,
    /// A network of the first 240 addresses or so.
    pub net: &'static str,
}

pub const MONTH: Shape = Shape {
    name: "240 hosts x 30 days",
    hosts: 240,
    interval_s: 60,
    intervals: 30 * 24 * 60,
    addr: |i| format!("198.51.100.{i}"),
    net: "198.51.100.0/24",
};

pub const MANY: Shape = Shape {
    name: "10k hosts x 3 days",
    hosts: 10_000,
    interval_s: 300,
    intervals: 3 * 24 * 12,
    addr: |i| format!("2001:db8:1::{i:x}"),
    net: "2001:db8:1::/120",
};

impl Shape {
    /// The last second of the stored time.
    pub fn last(&self) -> i64 {
        START + self.intervals * self.interval_s - 1
    }

    /// The filled store's path (filled on first use).
    pub fn path(&self) -> PathBuf {
        let dir = std::env::var_os("BWACCT_BENCH_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-store"));
        std::fs::create_dir_all(&dir).expect("bench dir");
        let stem = format!("{}x{}s-{}ips", self.intervals, self.interval_s, self.hosts);
        let db = dir.join(format!("{stem}.db"));
        let done = dir.join(format!("{stem}.done"));
        if !done.exists() {
            let _ = std::fs::remove_file(&db);
            self.fill(&db);
            std::fs::write(&done, b"").expect("marker");
        }
        db
    }

    pub fn open(&self) -> SqliteStore {
        SqliteStore::open_read_only(&self.path()).expect("store")
    }

    fn fill(&self, db: &Path) {
        let started = Instant::now();
        let mut store = SqliteStore::open(db).expect("store");
        let mut u = Usage::default();
        u.set(Dir::Tx, Class::Proto(Proto::Tcp), false, 1_000_000);
        u.set(Dir::Tx, Class::Proto(Proto::Tcp), true, 700);
        u.set(Dir::Rx, Class::Proto(Proto::Udp), false, 50_000);
        let hosts: Vec<(Host, Usage)> = (1..=self.hosts)
            .map(|i| ((self.addr)(i).parse().expect("host"), u))
            .collect();
        for k in 0..self.intervals {
            let start = START + k * self.interval_s;
            store
                .write(&Sample {
                    sensor: "bench".into(),
                    start,
                    interval_s: self.interval_s as u32,
                    hosts: hosts.clone(),
                    ..Default::default()
                })
                .expect("write");
            // the open interval's hour is not complete
            store
                .roll_up(start - start.rem_euclid(3600), 2)
                .expect("roll up");
        }
        eprintln!(
            "filled {} in {:.0} s",
            db.display(),
            started.elapsed().as_secs_f64()
        );
    }
}
