//! Graph series as the graphs, the static site and the dashboard read them (`Chart::fetch`:
//! `Store::series`, then buckets no shorter than the samples), on the real SQLite stores of
//! `common/stores.rs` (a month of one-minute samples of 240 hosts; 3 days of 5-minute samples of
//! 10,000 hosts; both rolled up as `run` does): one address, a customer of two, and a network
//! (the /24 of 240 hosts; a /120 of 255), over the graph windows ending at the stored time's end (a day in 5-minute steps,
//! a week in half hours, a month in 2 hours, a year in days).

#[path = "common/stores.rs"]
mod stores;

use bwacct::graph::{Chart, GraphRequest, Window};
use criterion::{criterion_group, criterion_main, Criterion};
use ipnet::IpNet;
use stores::{MANY, MONTH};

fn series(c: &mut Criterion) {
    for shape in [MANY, MONTH] {
        let store = shape.open();
        let mut g = c.benchmark_group(format!("series {}", shape.name));
        g.sample_size(10);
        let net = |s: &str| s.parse::<IpNet>().expect("net").trunc();
        let single = |i: usize| {
            let a: std::net::IpAddr = (shape.addr)(i).parse().expect("addr");
            IpNet::from(a)
        };
        for (who, nets) in [
            ("one address", vec![single(7)]),
            ("customer of 2", vec![single(17), single(18)]),
            ("network", vec![net(shape.net)]),
        ] {
            for window in Window::ALL {
                let (from, to) = window.ending(shape.last() + 1);
                let req = GraphRequest {
                    title: who.into(),
                    nets: nets.clone(),
                    from,
                    to,
                    sensor: None,
                };
                let points = Chart::fetch(&store, &req)
                    .expect("series")
                    .series
                    .points
                    .len();
                assert!(points > 0, "{who}, {}", window.name());
                g.bench_function(format!("{who}, {}", window.name()), |b| {
                    b.iter(|| {
                        Chart::fetch(&store, &req)
                            .expect("series")
                            .series
                            .points
                            .len()
                    })
                });
            }
        }
        g.finish();
    }
}

criterion_group!(benches, series);
criterion_main!(benches);
