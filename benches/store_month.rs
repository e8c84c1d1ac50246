//! The store over a month of 10,000 addresses, through the real write path (one transaction
//! per interval, the rollup job after each write as `run` does):
//! 1. size: 1-minute samples for `BWACCT_BENCH_SIZE_DAYS` days (default 2): flush and rollup
//!    times, bytes on disk per address per day;
//! 2. month: a whole month (October 2026) for the same addresses, samples every
//!    `BWACCT_BENCH_MONTH_INTERVAL` seconds (default 3600: the hourly and daily rows a month's
//!    report reads are the same as with 1-minute samples; 60 fills the month minute by minute,
//!    tens of GB and hours), then `report --month` (build and render, as the command does) in
//!    UTC and in Europe/Berlin, as JSON, table and HTML;
//! 3. one interval of 100,000 addresses (DESIGN: commits in under a second).
//!
//! `cargo bench --bench store_month`. `BWACCT_BENCH_IPS` (default 10000) and `BWACCT_BENCH_DIR`
//! (default `target/bench-store`; a store filled before with the same settings is reused).

use bwacct::classify::{App, Class};
use bwacct::parse::Proto;
use bwacct::period;
use bwacct::report::{self, By, Format};
use bwacct::rollup::Level;
use bwacct::store::sqlite::SqliteStore;
use bwacct::store::{Query, Sample, Store};
use bwacct::usage::{Dir, Host, Usage};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// 2026-10-01T00:00:00Z
const START: i64 = 1_790_812_800;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A deterministic, varied minute of traffic for host `i` at minute `m`.
fn usage(i: u64, m: u64) -> Usage {
    let mut x = (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ m.wrapping_mul(0xC2B2_AE3D_27D4_EB4F)) | 1;
    let mut next = |max: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % max
    };
    let mut u = Usage::default();
    let tcp_tx = next(2_000_000);
    let tcp_rx = next(8_000_000);
    let udp = next(50_000);
    let http = tcp_rx / 2;
    for (dir, class, bytes) in [
        (Dir::Tx, Class::Proto(Proto::Tcp), tcp_tx),
        (Dir::Rx, Class::Proto(Proto::Tcp), tcp_rx),
        (Dir::Tx, Class::Proto(Proto::Udp), udp),
        (Dir::Rx, Class::Proto(Proto::Udp), udp / 2),
        (Dir::Rx, Class::Proto(Proto::Icmp), next(300)),
        (Dir::Rx, Class::App(App::Http), http),
        (Dir::Tx, Class::App(App::Http), tcp_tx / 3),
    ] {
        u.set(dir, class, false, bytes);
        u.set(dir, class, true, bytes / 700 + 1);
    }
    u
}

fn host(i: u64) -> Host {
    // 10.0.0.0/8 is not a documentation range, but this never leaves the process:
    // documentation ranges hold too few addresses for 100,000 hosts.
    Host::Addr(IpAddr::V4(Ipv4Addr::from(0x0A00_0000 + i as u32)))
}

fn sample(ips: u64, minute: u64) -> Sample {
    Sample {
        sensor: "bench".into(),
        start: START + minute as i64 * 60,
        interval_s: 60,
        hosts: (0..ips).map(|i| (host(i), usage(i, minute))).collect(),
        ..Default::default()
    }
}

fn disk_size(db: &Path) -> u64 {
    ["", "-wal", "-shm"]
        .iter()
        .filter_map(|s| std::fs::metadata(format!("{}{s}", db.display())).ok())
        .map(|m| m.len())
        .sum()
}

/// Writes `days` of samples every `interval` seconds, rolling up as `run` does; returns the
/// total time, the slowest write and the time spent rolling up.
fn fill(db: &Path, ips: u64, days: u64, interval: u64) -> (Duration, Duration, Duration) {
    let started = Instant::now();
    let mut store = SqliteStore::open(db).expect("open the bench store");
    let steps = days * 86_400 / interval;
    let (mut slowest, mut rolling) = (Duration::ZERO, Duration::ZERO);
    for step in 0..steps {
        let mut s = sample(ips, step);
        s.start = START + (step * interval) as i64;
        s.interval_s = interval as u32;
        let t = Instant::now();
        store.write(&s).expect("write");
        slowest = slowest.max(t.elapsed());
        let t = Instant::now();
        // the open interval's hour is not complete
        store
            .roll_up(s.start - s.start.rem_euclid(3600), 2)
            .expect("roll up");
        rolling += t.elapsed();
        if (step + 1) % (86_400 / interval) == 0 {
            eprintln!(
                "day {} of {days} filled, {:.0} s so far",
                (step + 1) * interval / 86_400,
                started.elapsed().as_secs_f64()
            );
        }
    }
    store.roll_up(i64::MAX, usize::MAX).expect("roll up");
    drop(store);
    let conn = rusqlite::Connection::open(db).expect("reopen");
    conn.pragma_update(None, "wal_checkpoint", "TRUNCATE")
        .expect("checkpoint");
    (started.elapsed(), slowest, rolling)
}

/// Fills (unless filled before with the same settings) and returns the store's path.
fn filled(dir: &Path, ips: u64, days: u64, interval: u64) -> PathBuf {
    let name = format!("store-{ips}ips-{days}d-{interval}s");
    let db = dir.join(format!("{name}.db"));
    let done = dir.join(format!("{name}.done"));
    if !done.exists() {
        let _ = std::fs::remove_file(&db);
        let (took, slowest, rolling) = fill(&db, ips, days, interval);
        let writes = days * 86_400 / interval;
        println!(
            "fill {name}: {} writes of {ips} addresses in {:.0} s: {:.1} ms per write (slowest {:.0} ms), rollup job {:.1} ms per write",
            writes,
            took.as_secs_f64(),
            (took - rolling).as_secs_f64() * 1e3 / writes as f64,
            slowest.as_secs_f64() * 1e3,
            rolling.as_secs_f64() * 1e3 / writes as f64
        );
        std::fs::write(&done, b"").expect("marker");
    }
    db
}

fn main() {
    // `cargo test --benches` runs benches with `--bench` absent: stay quick then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let ips = env("BWACCT_BENCH_IPS", 10_000);
    let size_days = env("BWACCT_BENCH_SIZE_DAYS", 2);
    let month_interval = env("BWACCT_BENCH_MONTH_INTERVAL", 3600);
    let dir = std::env::var_os("BWACCT_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-store"));
    std::fs::create_dir_all(&dir).expect("bench dir");

    let db = filled(&dir, ips, size_days, 60);
    let size = disk_size(&db);
    println!(
        "size: {size} bytes for {ips} addresses x {size_days} days of 1-minute samples = {:.0} bytes per address per day",
        size as f64 / (ips * size_days) as f64,
    );
    // one address's day, minute by minute (a graph): found without an index by host
    let store = SqliteStore::open_read_only(&db).expect("open read-only");
    let day = Query {
        from: START,
        to: START + 86_400,
        sensor: None,
    };
    let mut times = Vec::new();
    for i in 0..5 {
        let t = Instant::now();
        let points = store
            .series_at(Level::Samples, &day, Some(&host(i * 997)))
            .expect("series");
        times.push(t.elapsed());
        assert_eq!(points.len(), 1440);
    }
    times.sort();
    println!(
        "one address, one day of 1-minute samples: median {:.1} ms",
        times[2].as_secs_f64() * 1e3
    );
    drop(store);

    let db = filled(&dir, ips, 31, month_interval);
    println!(
        "month store: {:.2} GiB",
        disk_size(&db) as f64 / f64::from(1u32 << 30)
    );
    let store = SqliteStore::open_read_only(&db).expect("open read-only");
    let october = chrono::NaiveDate::from_ymd_opt(2026, 10, 1).expect("date");
    let berlin: chrono_tz::Tz = "Europe/Berlin".parse().expect("zone");
    for (zone, format) in [
        (chrono_tz::Tz::UTC, Format::Json),
        (chrono_tz::Tz::UTC, Format::Table),
        (chrono_tz::Tz::UTC, Format::Html),
        (berlin, Format::Json),
    ] {
        let month = period::month_in(october, zone);
        let mut times = Vec::new();
        for _ in 0..5 {
            let t = Instant::now();
            let mut rep = report::build(
                &store,
                month,
                By::Ip,
                None,
                None,
                &bwacct::customer::Customers::default(),
            )
            .expect("report");
            if format == Format::Html {
                rep.add_series(&store, None).expect("series");
            }
            report::render(&rep, format, &mut std::io::sink()).expect("render");
            times.push(t.elapsed());
            assert_eq!(rep.rows.len() as u64, ips);
        }
        times.sort();
        println!(
            "report --month 2026-10 --format {format:?} ({}): median {:.3} s, min {:.3} s, {ips} rows",
            zone.name(),
            times[2].as_secs_f64(),
            times[0].as_secs_f64()
        );
    }

    // One interval of 100,000 active addresses (DESIGN: commits in under a second).
    let big = dir.join("flush-100k.db");
    let _ = std::fs::remove_file(&big);
    let mut store = SqliteStore::open(&big).expect("open");
    let mut times = Vec::new();
    for m in 0..5 {
        let s = sample(100_000, m);
        let t = Instant::now();
        store.write(&s).expect("write");
        times.push(t.elapsed());
    }
    println!(
        "flush of 100000 addresses: first (new hosts) {:.3} s, then {:.3} s / {:.3} s / {:.3} s / {:.3} s",
        times[0].as_secs_f64(),
        times[1].as_secs_f64(),
        times[2].as_secs_f64(),
        times[3].as_secs_f64(),
        times[4].as_secs_f64()
    );
}
