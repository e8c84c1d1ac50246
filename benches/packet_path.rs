//! The packet path (decode + classify + count) on real frames from the test captures, in
//! packets per second: a realistic mix and minimum-size frames, exclusive and shared counters,
//! and with the layer-2 guard looking at every frame (`guard/`), as live capture does with
//! `[guard]`: source MAC table, ARP, sampled bindings, bound customers' source check.

use bwacct::account::{Accountant, CountMode};
use bwacct::classify::{LocalNets, PortTable};
use bwacct::config::default_ports;
use bwacct::config::Config;
use bwacct::counters::{Counters, Layout};
use bwacct::guard::{Observer, Policy};
use bwacct::parse::{self, LinkType};
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

/// The guard's policy with defaults and two bound customers (one address, one /28).
fn guard_policy() -> Policy {
    let text = "[accounting]\nlocal = [\"198.51.100.0/24\", \"2001:db8:100::/56\"]\n[guard]\n\
        [[customer]]\nname = \"a\"\naddresses = [\"198.51.100.10\"]\nmacs = [\"02:00:00:00:00:0a\"]\n\
        [[customer]]\nname = \"b\"\naddresses = [\"198.51.100.16/28\"]\nmacs = [\"02:00:00:00:00:0b\"]\n";
    let cfg = Config::parse(std::path::Path::new("bench.toml"), text).expect("bench config");
    let guard = cfg.guard.clone().expect("[guard]");
    Policy::new(&cfg, &guard)
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
        let policy = guard_policy();
        let mut observer = Observer::new(
            &policy.guard,
            Arc::clone(&policy.bound),
            Arc::clone(&nets),
            CountMode::Ip,
            "bench",
        );
        let mut guarded = Counters::exclusive(layout());
        group.bench_function(format!("guard/{file}"), |b| {
            b.iter(|| {
                {
                    let batch = guarded.batch();
                    for (data, len) in &frames {
                        let decoded = parse::decode(link, data, *len);
                        observer.frame(0, link, data, *len, &decoded);
                        acct.count(&batch, decoded, *len);
                    }
                }
                passes += 1;
                if passes % 100 == 0 {
                    guarded.drain();
                    observer.rotate(0, None);
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
