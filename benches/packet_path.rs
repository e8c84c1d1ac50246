//! The packet path (decode + classify + count) on real frames from the test captures, in
//! packets per second: a realistic mix and minimum-size frames, exclusive and shared counters,
//! and with the layer-2 guard looking at every frame (`guard/`), as live capture does with
//! `[guard]`: source MAC table, ARP, sampled bindings, bound customers' source check. Two
//! paired comparisons run alone when named: `guard_overhead` (the guard against counting
//! alone) and `deferral` (live capture's deferred counting against counting at once, on hosts
//! that fit in the caches and on hosts that do not).

use bwacct::account::{Accountant, AtOnce, CountMode, Counting, Deferred};
use bwacct::classify::{LocalNets, PortTable};
use bwacct::config::default_ports;
use bwacct::config::Config;
use bwacct::counters::{Counters, Layout, Writer};
use bwacct::guard::{Observer, Policy};
use bwacct::parse::{self, LinkType};
use criterion::{criterion_group, Criterion, Throughput};
use std::sync::Arc;
use std::time::Instant;

fn frames(file: &str) -> (LinkType, Vec<(Vec<u8>, u32)>) {
    read_capture(
        &format!("{}/tests/data/{file}", env!("CARGO_MANIFEST_DIR")),
        usize::MAX,
        usize::MAX,
    )
}

/// The first `count` frames of a capture file, each cut to `snaplen` bytes.
fn read_capture(path: &str, count: usize, snaplen: usize) -> (LinkType, Vec<(Vec<u8>, u32)>) {
    let mut cap = pcap::Capture::from_file(path).expect("capture file");
    let link = LinkType::from_dlt(cap.get_datalink().0).expect("link type");
    let mut out = Vec::new();
    while out.len() < count {
        let Ok(p) = cap.next_packet() else { break };
        out.push((p.data[..p.data.len().min(snaplen)].to_vec(), p.header.len));
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

/// One pass over `frames` into exclusive counters, without the guard.
fn count_pass(acct: &Accountant, counters: &Writer, link: LinkType, frames: &[(Vec<u8>, u32)]) {
    let batch = counters.batch();
    for (data, len) in frames {
        acct.process(&batch, link, data, *len);
    }
}

/// One pass with the guard looking at every frame, as live capture calls them.
fn guard_pass(
    acct: &Accountant,
    counters: &Writer,
    observer: &mut Observer,
    link: LinkType,
    frames: &[(Vec<u8>, u32)],
) {
    let batch = counters.batch();
    for (data, len) in frames {
        let decoded = parse::decode(link, data, *len);
        observer.frame(0, link, data, *len, &decoded);
        acct.count(&batch, decoded, *len);
    }
}

fn observer(nets: &Arc<LocalNets>) -> Observer {
    let policy = guard_policy();
    Observer::new(
        &policy.guard,
        Arc::clone(&policy.bound),
        Arc::clone(nets),
        CountMode::Ip,
        "bench",
    )
}

const FILES: [&str; 3] = [
    "realistic-eth-3k.pcap",
    "small-eth-2k.pcap",
    "adversarial-eth-4k.pcap",
];

fn bench(c: &mut Criterion) {
    // plotters (criterion's plots) draws text with bwacct's embedded font: no system fonts
    bwacct::graph::register_fonts().expect("embedded font");
    let l = layout();
    let nets = Arc::new(LocalNets::new(&l.nets, l.ipv6_prefix));
    let ports = Arc::new(PortTable::new(&default_ports()));
    let mut group = c.benchmark_group("packet_path");
    for file in FILES {
        let (link, frames) = frames(file);
        let acct = Accountant::new(Arc::clone(&nets), Arc::clone(&ports), CountMode::Ip);
        group.throughput(Throughput::Elements(frames.len() as u64));
        // a drain every 100 passes, as an interval boundary would come
        let mut exclusive = Counters::exclusive(layout());
        let mut passes = 0u32;
        group.bench_function(format!("exclusive/{file}"), |b| {
            b.iter(|| {
                count_pass(&acct, &exclusive, link, &frames);
                passes += 1;
                if passes % 100 == 0 {
                    exclusive.drain();
                }
            })
        });
        let mut observer = observer(&nets);
        let mut guarded = Counters::exclusive(layout());
        group.bench_function(format!("guard/{file}"), |b| {
            b.iter(|| {
                guard_pass(&acct, &guarded, &mut observer, link, &frames);
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

/// Pairs of passes compared in `guard_overhead`.
const PAIRS: usize = 20_000;

/// The median of a sample (sorted here).
fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// What [`paired`] measured: the median time of each kind of pass, and the median ratio of the
/// second kind to the first with the first kind run first and with it run second.
struct Paired {
    first: f64,
    second: f64,
    ratio_first_first: f64,
    ratio_second_first: f64,
}

impl Paired {
    /// The second kind against the first with the order's effect cancelled: the pass that
    /// repeats the kind of the pass before it runs faster (warm branch history), so this is the
    /// geometric mean of the two orders' median ratios.
    fn ratio(&self) -> f64 {
        (self.ratio_first_first * self.ratio_second_first).sqrt()
    }
}

/// Times `pairs` pairs of passes on one `state`, each pair one pass of each kind back to back
/// (so that what the machine does meanwhile, other guests or clock changes, hits both alike),
/// the order alternating, after a tenth as many to warm up; `between` runs after every
/// `every`-th pair (an interval boundary).
fn paired<S>(
    state: &mut S,
    pairs: usize,
    every: usize,
    first: &mut dyn FnMut(&mut S),
    second: &mut dyn FnMut(&mut S),
    between: &mut dyn FnMut(&mut S),
) -> Paired {
    let time = |f: &mut dyn FnMut(&mut S), state: &mut S| {
        let t = Instant::now();
        f(state);
        t.elapsed().as_secs_f64()
    };
    let mut ratios = [Vec::new(), Vec::new()];
    let (mut firsts, mut seconds) = (Vec::new(), Vec::new());
    for i in 0..pairs + pairs / 10 {
        let (a, b) = if i % 2 == 0 {
            let a = time(first, state);
            (a, time(second, state))
        } else {
            let b = time(second, state);
            (time(first, state), b)
        };
        if i >= pairs / 10 {
            ratios[i % 2].push(b / a);
            firsts.push(a);
            seconds.push(b);
        }
        if i % every == every - 1 {
            between(state);
        }
    }
    let [ratio_first_first, ratio_second_first] = ratios.map(|mut r| median(&mut r));
    Paired {
        first: median(&mut firsts),
        second: median(&mut seconds),
        ratio_first_first,
        ratio_second_first,
    }
}

/// The guard's cost against counting alone, measured pair by pair ([`paired`]) on one set of
/// counters: each pair one pass without and one with the guard. Runs, alone, when
/// `guard_overhead` is among the bench's arguments.
fn guard_overhead() {
    let l = layout();
    let nets = Arc::new(LocalNets::new(&l.nets, l.ipv6_prefix));
    let ports = Arc::new(PortTable::new(&default_ports()));
    let acct = Accountant::new(Arc::clone(&nets), Arc::clone(&ports), CountMode::Ip);
    for file in FILES {
        let (link, frames) = frames(file);
        let mut state = (Counters::exclusive(layout()), observer(&nets));
        let p = paired(
            &mut state,
            PAIRS,
            // an interval boundary every 100 passes, as in the criterion cases
            100,
            &mut |(counters, _)| count_pass(&acct, counters, link, &frames),
            &mut |(counters, observer)| guard_pass(&acct, counters, observer, link, &frames),
            &mut |(counters, observer)| {
                counters.drain();
                observer.rotate(0, None);
            },
        );
        println!(
            "guard_overhead/{file}: median pass {:.1} µs without the guard, {:.1} µs with it; \
             overhead {:+.1} % (median ratio {:+.1} % with the plain pass first, {:+.1} % guard first)",
            p.first * 1e6,
            p.second * 1e6,
            (p.ratio() - 1.0) * 100.0,
            (p.ratio_first_first - 1.0) * 100.0,
            (p.ratio_second_first - 1.0) * 100.0,
        );
    }
}

/// Distinct local IPv6 hosts in `deferral`'s traffic, from rows that fit in the caches to rows
/// and key slots that span far more (live capture defers above `account::DEFER_ABOVE_ROWS`
/// rows), and its frames per pass and per ring read.
const SPREAD_HOSTS: [u64; 4] = [1_000, 4_000, 16_000, 50_000];
const SPREAD_FRAMES: usize = 200_000;
const RING_READ: usize = 1_000;

/// Minimum-size UDP frames between random local hosts (IPv6 over `hosts` addresses, IPv4 over
/// the /24) and remote ones, both directions, in random order.
fn spread_frames(hosts: u64) -> Vec<(Vec<u8>, u32)> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mac = [2, 0, 0, 0, 0, 1];
    (0..SPREAD_FRAMES)
        .map(|_| {
            let r = next();
            let body = [0u8; 18];
            let mut out = Vec::new();
            let eth = etherparse::PacketBuilder::ethernet2(mac, mac);
            let (local6, remote6) = (
                0x2001_0db8_0100_0000_0000_0000_0000_0000u128 | u128::from(r % hosts),
                0x2001_0db8_ff00_0000_0000_0000_0000_0007u128,
            );
            let (local4, remote4) = ([198, 51, 100, 1 + (r >> 20) as u8 % 254], [203, 0, 113, 7]);
            let built = match r >> 40 & 3 {
                0 => eth.ipv6(local6.to_be_bytes(), remote6.to_be_bytes(), 64),
                1 => eth.ipv6(remote6.to_be_bytes(), local6.to_be_bytes(), 64),
                2 => eth.ipv4(local4, remote4, 64),
                _ => eth.ipv4(remote4, local4, 64),
            };
            built
                .udp(40_000, 443)
                .write(&mut out, &body)
                .expect("frame");
            let len = out.len() as u32;
            (out, len)
        })
        .collect()
}

/// Live capture's deferred counting (`account::Deferred`) against counting each frame at once
/// (`account::AtOnce`), pair by pair ([`paired`]), each pass read in rings of [`RING_READ`]
/// frames; on traffic over each of [`SPREAD_HOSTS`] hosts into exclusive counters (live capture
/// on one thread, replay), over the most hosts into shared ones too (several capture threads),
/// on the test captures and on the capture named by [`LIVE_CAPTURE`] (exclusive). Runs, alone,
/// when `deferral` is among the bench's arguments.
fn deferral() {
    let l = layout();
    let nets = Arc::new(LocalNets::new(&l.nets, l.ipv6_prefix));
    let ports = Arc::new(PortTable::new(&default_ports()));
    let acct = Accountant::new(nets, ports, CountMode::Ip);
    for hosts in SPREAD_HOSTS {
        let spread = spread_frames(hosts);
        let exclusive = Counters::exclusive(layout());
        compare_deferral(
            &format!("{hosts}-ipv6-hosts/exclusive"),
            &acct,
            LinkType::Ethernet,
            &spread,
            exclusive,
            60,
            &mut |w| drop(w.drain()),
        );
        if hosts == SPREAD_HOSTS[SPREAD_HOSTS.len() - 1] {
            let shared = Counters::new(layout());
            compare_deferral(
                &format!("{hosts}-ipv6-hosts/shared"),
                &acct,
                LinkType::Ethernet,
                &spread,
                shared.writer(),
                60,
                &mut |_| drop(shared.drain()),
            );
        }
    }
    for file in FILES {
        let (link, frames) = frames(file);
        let exclusive = Counters::exclusive(layout());
        let pairs = 40 * SPREAD_FRAMES / frames.len();
        compare_deferral(file, &acct, link, &frames, exclusive, pairs, &mut |w| {
            drop(w.drain())
        });
    }
    match std::env::var(LIVE_CAPTURE) {
        Ok(path) => {
            // as live capture sees them: cut to the default snaplen
            let (link, frames) = read_capture(&path, SPREAD_FRAMES, 128);
            let exclusive = Counters::exclusive(layout());
            compare_deferral(&path, &acct, link, &frames, exclusive, 60, &mut |w| {
                drop(w.drain())
            });
        }
        Err(_) => println!(
            "deferral: {LIVE_CAPTURE} not set: skipping the live bench's capture (set it to \
             benches/live/run.sh's realistic-2000000.pcap, for instance)"
        ),
    }
}

/// Names a capture (as `benches/live/run.sh` generates) whose first [`SPREAD_FRAMES`] frames
/// `deferral` also counts: the traffic of the live bench, decoded as the live capture does.
const LIVE_CAPTURE: &str = "BWACCT_BENCH_CAPTURE";

/// One ring read's frames, counted by `counting`.
fn ring_read(mut counting: impl Counting, link: LinkType, read: &[(Vec<u8>, u32)]) {
    for (data, len) in read {
        counting.process(link, data, *len);
    }
}

/// One of `deferral`'s comparisons: `pairs` pairs of passes over `frames` into `writer`'s
/// counters, drained every 10 pairs.
fn compare_deferral(
    name: &str,
    acct: &Accountant,
    link: LinkType,
    frames: &[(Vec<u8>, u32)],
    mut writer: Writer,
    pairs: usize,
    drain: &mut dyn FnMut(&mut Writer),
) {
    let p = paired(
        &mut writer,
        pairs,
        10,
        &mut |writer| {
            for read in frames.chunks(RING_READ) {
                ring_read(AtOnce::new(acct, writer), link, read);
            }
        },
        &mut |writer| {
            for read in frames.chunks(RING_READ) {
                ring_read(Deferred::new(acct, writer), link, read);
            }
        },
        drain,
    );
    let per = |t: f64| t * 1e9 / frames.len() as f64;
    println!(
        "deferral/{name}: median {:.1} ns per frame counted at once, {:.1} ns deferred; \
         deferred/at once {:.3} (median ratio {:.3} at once first, {:.3} deferred first)",
        per(p.first),
        per(p.second),
        p.ratio(),
        p.ratio_first_first,
        p.ratio_second_first,
    );
}

criterion_group!(benches, bench);

fn main() {
    if std::env::args().any(|a| a == "guard_overhead") {
        guard_overhead();
        return;
    }
    if std::env::args().any(|a| a == "deferral") {
        deferral();
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
