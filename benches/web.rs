//! The dashboard's answers on a month of 10,000 active addresses: the top-talkers JSON and page
//! over real HTTP on loopback (cached, and cold: the first request to a fresh server), the
//! report behind them, and a day graph (store read + drawing).
//!
//! The month is written as one sample per host and day (300,000 rows) and rolled up by the
//! store's own job as `run` does: hourly and daily rows of the same count, and one monthly row
//! per host (10,000), which is what a month's report reads. Raw 60-second samples for a month
//! would be 432 million rows; long ranges are meant to read rollups.

use bwacct::classify::Class;
use bwacct::customer::Customers;
use bwacct::graph::{Chart, GraphRequest, ImageFormat, DEFAULT_SIZE};
use bwacct::parse::Proto;
use bwacct::period;
use bwacct::report::{self, By};
use bwacct::status::{Source, Status};
use bwacct::store::sqlite::SqliteStore;
use bwacct::store::{Sample, Store};
use bwacct::usage::{Dir, Host, Usage};
use bwacct::web::{self, Context};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use ipnet::IpNet;
use std::io::{Read, Write};
use std::net::IpAddr;
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const HOSTS: u32 = 10_000;
const MONTH_START: i64 = 1_701_388_800; // 2023-12-01T00:00:00Z
const DAYS: i64 = 30;
/// The day of the graph (60-second samples of one host).
const GRAPH_DAY: i64 = 1_704_067_200; // 2024-01-01T00:00:00Z
const GRAPH_HOST: &str = "198.51.100.7";

fn host(i: u32) -> Host {
    if i < 256 {
        format!("198.51.100.{i}").parse().unwrap()
    } else {
        format!("2001:db8:100:{:x}::{:x}", i >> 8, i & 0xff)
            .parse()
            .unwrap()
    }
}

/// Deterministic pseudo-random usage.
fn usage(seed: &mut u64) -> Usage {
    let mut u = Usage::default();
    for (dir, class) in [
        (Dir::Tx, Class::Proto(Proto::Tcp)),
        (Dir::Rx, Class::Proto(Proto::Tcp)),
        (Dir::Tx, Class::Proto(Proto::Udp)),
        (Dir::Rx, Class::Proto(Proto::Udp)),
        (Dir::Rx, Class::Proto(Proto::Icmp)),
    ] {
        *seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let bytes = (*seed >> 33) % 50_000_000;
        u.set(dir, class, false, bytes);
        u.set(dir, class, true, bytes / 700 + 1);
    }
    u
}

fn fill(path: &Path) {
    let mut store = SqliteStore::open(path).unwrap();
    let mut seed = 7;
    for day in 0..DAYS {
        let hosts = (0..HOSTS).map(|i| (host(i), usage(&mut seed))).collect();
        store
            .write(&Sample {
                sensor: "bench".into(),
                start: MONTH_START + day * 86_400,
                interval_s: 86_400,
                hosts,
                ..Default::default()
            })
            .unwrap();
    }
    for minute in 0..1440 {
        store
            .write(&Sample {
                sensor: "bench".into(),
                start: GRAPH_DAY + minute * 60,
                interval_s: 60,
                hosts: vec![(GRAPH_HOST.parse().unwrap(), usage(&mut seed))],
                ..Default::default()
            })
            .unwrap();
    }
    // the rollup job as of the day after the graph's: December whole, its days and hours
    let rolled = store.roll_up(GRAPH_DAY + 86_400, usize::MAX).unwrap();
    assert_eq!(rolled, (DAYS + 24) as usize + (DAYS + 1) as usize + 1);
}

/// A fresh dashboard on the store (its own store connection and empty caches) on loopback:
/// its address, and what stops it when dropped.
fn serve(rt: &tokio::runtime::Runtime, db: &Path) -> (String, tokio::sync::oneshot::Sender<()>) {
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let open_path = db.to_owned();
    let ctx = Arc::new(Context::new(
        Box::new(move || Ok(Box::new(SqliteStore::open_read_only(&open_path)?) as Box<dyn Store>)),
        Arc::new(Status::new(Source::Store, 0)),
        Arc::new(Customers::default()),
    ));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    rt.spawn(web::serve(listener, ctx, async {
        let _ = stopped.await;
    }));
    (addr, stop)
}

fn get(addr: &str, path: &str) -> usize {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut body = Vec::new();
    s.read_to_end(&mut body).unwrap();
    assert!(
        body.starts_with(b"HTTP/1.0 200") || body.starts_with(b"HTTP/1.1 200"),
        "{path}: {}",
        String::from_utf8_lossy(&body[..body.len().min(300)])
    );
    body.len()
}

fn bench(c: &mut Criterion) {
    // plotters (criterion's plots) draws text with bwacct's embedded font: no system fonts
    bwacct::graph::register_fonts().expect("embedded font");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bench.db");
    fill(&db);
    let month = period::month_of(chrono::NaiveDate::from_ymd_opt(2023, 12, 1).unwrap());
    let store = SqliteStore::open_read_only(&db).unwrap();
    assert_eq!(
        report::build(&store, month, By::Ip, None, None, &Customers::default())
            .unwrap()
            .rows
            .len(),
        HOSTS as usize
    );

    let rt = tokio::runtime::Runtime::new().unwrap();
    let (addr, stop) = serve(&rt, &db);

    let mut g = c.benchmark_group("month_10k_hosts");
    g.sample_size(20).measurement_time(Duration::from_secs(8));
    g.bench_function("report_build", |b| {
        b.iter(|| {
            report::build(&store, month, By::Ip, None, None, &Customers::default())
                .unwrap()
                .rows
                .len()
        })
    });
    let rep = report::build(&store, month, By::Ip, None, None, &Customers::default()).unwrap();
    g.bench_function("report_json_serialize", |b| {
        b.iter(|| serde_json::to_vec(&rep).unwrap().len())
    });
    // The server caches a period's report for 60 s: these measure repeated views.
    g.bench_function("api_hosts_json_http_cached", |b| {
        b.iter(|| get(&addr, "/api/v1/hosts?month=2023-12"))
    });
    g.bench_function("top_talkers_page_http_cached", |b| {
        b.iter(|| get(&addr, "/?month=2023-12&top=100"))
    });
    // The first view: a fresh server (started outside the measured time, stopped when its
    // sender is dropped after it) opens the store and builds the month's report.
    for (name, path) in [
        ("api_hosts_json_http_cold", "/api/v1/hosts?month=2023-12"),
        ("top_talkers_page_http_cold", "/?month=2023-12&top=100"),
    ] {
        g.bench_function(name, |b| {
            b.iter_batched(
                || serve(&rt, &db),
                |(addr, stop)| (get(&addr, path), stop),
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();

    let mut g = c.benchmark_group("day_graph");
    g.sample_size(30);
    let req = GraphRequest {
        title: GRAPH_HOST.into(),
        nets: vec![IpNet::from(GRAPH_HOST.parse::<IpAddr>().unwrap())],
        from: GRAPH_DAY,
        to: GRAPH_DAY + 86_400,
        sensor: None,
    };
    let month_req = GraphRequest {
        from: MONTH_START,
        to: MONTH_START + DAYS * 86_400,
        ..req.clone()
    };
    assert_eq!(Chart::fetch(&store, &req).unwrap().series.points.len(), 288);
    for (name, r, format) in [
        ("png_1440_samples", &req, ImageFormat::Png),
        ("svg_1440_samples", &req, ImageFormat::Svg),
        ("png_month_of_daily_rows", &month_req, ImageFormat::Png),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                Chart::fetch(&store, r)
                    .unwrap()
                    .render(format, DEFAULT_SIZE)
                    .unwrap()
                    .bytes
                    .len()
            })
        });
    }
    g.finish();

    drop(stop);
}

criterion_group!(benches, bench);
criterion_main!(benches);
