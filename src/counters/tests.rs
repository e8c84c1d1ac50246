//! Counter tables under concurrency: exact totals after drains taken while writers count.

use super::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

fn layout(nets: &[&str], max_hosts: u32) -> Layout {
    Layout {
        nets: nets.iter().map(|n| n.parse().unwrap()).collect(),
        ipv6_prefix: 128,
        max_hosts,
        direct_max_bits: 16,
    }
}

fn v4(s: &str) -> u128 {
    u128::from(u32::from(s.parse::<Ipv4Addr>().unwrap()))
}

fn sum(into: &mut HashMap<Host, Usage>, d: Drained) {
    for (h, u) in d.hosts {
        into.entry(h).or_default().merge(&u);
    }
}

/// Packets each writer counts in the concurrency test, and the cold peers it cycles through.
const PACKETS: u64 = 200_000;
const COLD: u64 = 1000;

/// One writer's load: every packet from the hot address (direct /24) to a cold one of the /8
/// (hashed v4), plus one from a cold IPv6 address of this writer (hashed v6) to a cold address
/// of the /24 (direct). Batches of 256 packets, as a busy ring block, and between two batches a
/// drain served if one is asked for (exclusive counters), as live capture does; each batch
/// after the rows were warmed, as a live read does (while another thread drains, retiring and
/// clearing the slots the warming reads).
fn hammer(w: &mut Writer, t: u64) {
    for start in (0..PACKETS).step_by(256) {
        w.warm();
        {
            let batch = w.batch();
            for i in start..PACKETS.min(start + 256) {
                one_packet(&batch, t, i);
            }
        }
        w.serve_drain();
    }
}

fn one_packet(batch: &Batch<'_>, t: u64, i: u64) {
    let hot = v4("198.51.100.1");
    let v6base = u128::from("2001:db8:100::".parse::<Ipv6Addr>().unwrap());
    batch.add(0, hot, Dir::Tx, Proto::Tcp, Some(App::Http), 100);
    batch.add(
        1,
        v4("10.0.0.0") + u128::from(i % COLD),
        Dir::Rx,
        Proto::Udp,
        None,
        10,
    );
    batch.add(
        2,
        v6base + u128::from(t * COLD + i % COLD),
        Dir::Tx,
        Proto::Icmp,
        None,
        1,
    );
    batch.add(
        0,
        v4("198.51.100.100") + u128::from(i % 100),
        Dir::Rx,
        Proto::Icmp,
        None,
        1,
    );
    batch.record(Outcome::Accounted {
        bytes: 111,
        length_mismatch: false,
    });
}

/// Runs `write` while another thread drains `counters` in a loop, then drains once more (the
/// writers are gone) and returns the sum of every drain, checking that drains ran meanwhile.
fn drained_while(
    counters: &Arc<Counters>,
    write: impl FnOnce(),
) -> (HashMap<Host, Usage>, PacketStats) {
    let done = Arc::new(AtomicBool::new(false));
    let drainer = {
        let counters = Arc::clone(counters);
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            let mut got = HashMap::new();
            let mut stats = PacketStats::default();
            let mut drains = 0;
            while !done.load(Relaxed) {
                let d = counters.drain();
                stats.merge(&d.stats);
                sum(&mut got, d);
                drains += 1;
            }
            (got, stats, drains)
        })
    };
    write();
    done.store(true, Relaxed);
    let (mut total, mut stats, drains) = drainer.join().unwrap();
    let last = counters.drain();
    stats.merge(&last.stats);
    sum(&mut total, last);
    assert!(drains > 1, "the drainer ran {drains} times");
    (total, stats)
}

#[test]
fn many_writers_one_hot_ip_exact_after_repeated_drains() {
    // a /24 (direct), a /8 (hashed v4) and an IPv6 /56 (hashed v6)
    let counters = Counters::new(layout(
        &["198.51.100.0/24", "10.0.0.0/8", "2001:db8:100::/56"],
        16_384,
    ));
    // more writers than cores; the last one starts late and leaves early, while drains run
    const THREADS: u64 = 8;
    let (total, stats) = drained_while(&counters, || {
        let writers: Vec<_> = (0..THREADS)
            .map(|t| {
                let counters = Arc::clone(&counters);
                std::thread::spawn(move || {
                    if t == THREADS - 1 {
                        std::thread::sleep(std::time::Duration::from_millis(20));
                    }
                    hammer(&mut counters.writer(), t);
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
    });
    check_hammered(&counters, THREADS, &total, &stats);
}

/// Everything `threads` writers counted with [`hammer`] is in `total` and `stats`, exactly.
fn check_hammered(
    counters: &Counters,
    threads: u64,
    total: &HashMap<Host, Usage>,
    stats: &PacketStats,
) {
    let hot_usage = total[&Host::Addr("198.51.100.1".parse().unwrap())];
    assert_eq!(hot_usage.total_bytes(Dir::Tx), threads * PACKETS * 100);
    assert_eq!(hot_usage.total_packets(Dir::Tx), threads * PACKETS);
    assert_eq!(
        hot_usage.get(Dir::Tx, crate::classify::Class::App(App::Http), false),
        threads * PACKETS * 100
    );
    // every cold host exactly, not only their sum
    let per_cold = threads * PACKETS / COLD;
    for i in 0..COLD {
        let a = Ipv4Addr::from(v4("10.0.0.0") as u32 + i as u32);
        let u = total[&Host::Addr(IpAddr::V4(a))];
        assert_eq!(
            (u.total_packets(Dir::Rx), u.total_bytes(Dir::Rx)),
            (per_cold, per_cold * 10),
            "{a}"
        );
    }
    for i in 0..100u32 {
        let a = Ipv4Addr::from(v4("198.51.100.100") as u32 + i);
        let u = total[&Host::Addr(IpAddr::V4(a))];
        assert_eq!(u.total_packets(Dir::Rx), threads * PACKETS / 100, "{a}");
    }
    let v6: Vec<_> = total
        .iter()
        .filter(|(h, _)| matches!(h, Host::Addr(IpAddr::V6(_))))
        .collect();
    assert_eq!(v6.len() as u64, threads * COLD);
    assert!(v6
        .iter()
        .all(|(_, u)| u.total_packets(Dir::Tx) == PACKETS / COLD));
    // the statistics handed out with the drains add up too
    assert_eq!(stats.accounted, threads * PACKETS);
    assert_eq!(stats.bytes, threads * PACKETS * 111);
    assert_eq!(counters.stats().accounted, threads * PACKETS);
}

#[test]
fn one_writer_serves_the_drains_asked_while_it_counts_and_loses_nothing() {
    let counters = Counters::one_writer(layout(
        &["198.51.100.0/24", "10.0.0.0/8", "2001:db8:100::/56"],
        16_384,
    ));
    // asked before the writer exists: the asker drains
    assert!(counters.drain().hosts.is_empty());
    let mut writer = counters.writer();
    let (total, stats) = drained_while(&counters, || {
        // the writer counts on its own thread, serving drains between batches, then goes
        // away with counts it has not handed over (the last drain, here, finds them)
        std::thread::spawn(move || {
            hammer(&mut writer, 0);
            let late = v4("198.51.100.250");
            writer.batch().add(0, late, Dir::Tx, Proto::Udp, None, 77);
        })
        .join()
        .unwrap();
    });
    let late = total[&Host::Addr("198.51.100.250".parse().unwrap())];
    assert_eq!(
        (late.total_bytes(Dir::Tx), late.total_packets(Dir::Tx)),
        (77, 1)
    );
    check_hammered(&counters, 1, &total, &stats);
}

/// A capture thread waiting for packets is woken by a drain asked of it, serves it, and the
/// drain holds what it had counted; shared counters are never asked (the wait is slept out).
#[test]
fn a_writer_waiting_for_packets_comes_round_at_once_to_a_drain() {
    let counters = Counters::one_writer(layout(&["198.51.100.0/24"], 16));
    let mut writer = counters.writer();
    writer
        .batch()
        .add(0, v4("198.51.100.7"), Dir::Rx, Proto::Tcp, None, 60);
    let capture = std::thread::spawn(move || {
        let start = std::time::Instant::now();
        let asked = writer.await_drain_ask(Duration::from_secs(60));
        writer.serve_drain();
        (asked, start.elapsed())
    });
    let drained = counters.drain();
    let (asked, waited) = capture.join().unwrap();
    assert!(asked);
    assert!(waited < Duration::from_secs(30), "woken after {waited:?}");
    assert_eq!(drained.hosts.len(), 1);
    assert_eq!(drained.hosts[0].1.total_bytes(Dir::Rx), 60);

    let shared = Counters::new(layout(&["198.51.100.0/24"], 16));
    let w = shared.writer();
    assert!(!w.await_drain_ask(Duration::from_millis(20)));
    assert!(!w.drain_asked());
}

#[test]
fn a_scan_overflows_into_the_network_bucket_and_loses_nothing() {
    let counters = Counters::new(layout(&["2001:db8:100::/56"], 16));
    let w = counters.writer();
    let base = u128::from("2001:db8:100::".parse::<Ipv6Addr>().unwrap());
    {
        let b = w.batch();
        for i in 0..1000u128 {
            b.add(0, base + i, Dir::Rx, Proto::Tcp, None, 60);
        }
    }
    // warming reads the claimed slots, those without cells too
    w.warm();
    let d = counters.drain();
    assert!(d.overflowed);
    let total: u64 = d.hosts.iter().map(|(_, u)| u.total_bytes(Dir::Rx)).sum();
    assert_eq!(total, 60_000);
    let overflow = d
        .hosts
        .iter()
        .find(|(h, _)| *h == Host::Net("2001:db8:100::/56".parse().unwrap()))
        .expect("an overflow row for the network");
    assert_eq!(overflow.1.total_packets(Dir::Rx), 1000 - 16);
    // the next interval has room for new addresses again
    {
        let b = w.batch();
        b.add(0, base + 5000, Dir::Rx, Proto::Tcp, None, 1);
    }
    let d = counters.drain();
    assert!(!d.overflowed);
    assert_eq!(d.hosts.len(), 1);
}

#[test]
fn ipv6_aggregates_to_the_prefix_and_a_slash_16_is_direct() {
    let mut l = layout(&["2001:db8:100::/56", "198.18.0.0/16"], 1024);
    l.ipv6_prefix = 64;
    let counters = Counters::new(l);
    let nets = crate::classify::LocalNets::new(&counters.layout().nets, 64);
    let w = counters.writer();
    {
        let b = w.batch();
        for a in [
            "2001:db8:100:1::1",
            "2001:db8:100:1::2",
            "2001:db8:100:2::1",
        ] {
            let (net, key) = nets
                .lookup(true, u128::from(a.parse::<Ipv6Addr>().unwrap()))
                .unwrap();
            b.add(net, key, Dir::Tx, Proto::Udp, None, 10);
        }
        for i in 0..65536u128 {
            b.add(1, v4("198.18.0.0") + i, Dir::Rx, Proto::Tcp, None, 1);
        }
    }
    let d = counters.drain();
    let nets: HashMap<String, u64> = d
        .hosts
        .iter()
        .filter(|(h, _)| matches!(h, Host::Net(_)))
        .map(|(h, u)| (h.to_string(), u.total_bytes(Dir::Tx)))
        .collect();
    assert_eq!(nets["2001:db8:100:1::/64"], 20);
    assert_eq!(nets["2001:db8:100:2::/64"], 10);
    assert_eq!(
        d.hosts
            .iter()
            .filter(|(h, _)| matches!(h, Host::Addr(IpAddr::V4(_))))
            .count(),
        65536
    );
    assert!(!d.overflowed);
}
