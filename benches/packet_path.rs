//! The packet path (decode + classify + count) on real frames from the test captures, in
//! packets per second: a realistic mix and minimum-size frames, exclusive and shared counters.

use bwacct::account::{Accountant, CountMode};
use bwacct::classify::{LocalNets, PortTable};
use bwacct::config::default_ports;
use bwacct::counters::{Counters, Layout};
use bwacct::parse::LinkType;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::sync::Arc;

fn frames(file: &str) -> (LinkType, Vec<(Vec<u8>, u32)>) {
    let path = format!("{}/tests/data/{file}", env!("CARGO_MANIFEST_DIR"));
    let mut cap = pcap::Capture::from_file(&path).expect("test capture");
    let link = LinkType::from_dlt(cap.get_datalink().0).expect("link type");
    let mut out = Vec::new();
    while let Ok(p) = cap.next_packet() {
        out.push((p.data.to_vec(), p.header.len));
    }
    (link, out)
}

fn layout() -> Layout {
    Layout {
        nets: vec![
            "198.51.100.0/24".parse().unwrap(),
            "2001:db8:100::/56".parse().unwrap(),
        ],
        ipv6_prefix: 128,
        max_hosts: 131_072,
        direct_max_bits: 16,
    }
}

fn bench(c: &mut Criterion) {
    // plotters (criterion's plots) draws text with bwacct's embedded font: no system fonts
    bwacct::graph::register_fonts().expect("embedded font");
    let l = layout();
    let nets = Arc::new(LocalNets::new(&l.nets, l.ipv6_prefix));
    let ports = Arc::new(PortTable::new(&default_ports()));
    let mut group = c.benchmark_group("packet_path");
    for file in [
        "realistic-eth-3k.pcap",
        "small-eth-2k.pcap",
        "adversarial-eth-4k.pcap",
    ] {
        let (link, frames) = frames(file);
        let acct = Accountant::new(Arc::clone(&nets), Arc::clone(&ports), CountMode::Ip);
        group.throughput(Throughput::Elements(frames.len() as u64));
        // a drain every 100 passes, as an interval boundary would come
        let mut exclusive = Counters::exclusive(layout());
        let mut passes = 0u32;
        group.bench_function(format!("exclusive/{file}"), |b| {
            b.iter(|| {
                {
                    let batch = exclusive.batch();
                    for (data, len) in &frames {
                        acct.process(&batch, link, data, *len);
                    }
                }
                passes += 1;
                if passes % 100 == 0 {
                    exclusive.drain();
                }
            })
        });
        let shared = Counters::new(layout());
        let writer = shared.writer();
        group.bench_function(format!("shared/{file}"), |b| {
            b.iter(|| {
                {
                    let batch = writer.batch();
                    for (data, len) in &frames {
                        acct.process(&batch, link, data, *len);
                    }
                }
                passes += 1;
                if passes % 100 == 0 {
                    shared.drain();
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
