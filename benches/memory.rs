//! Resident memory of the counters at their design load: a fully active /16 (direct table) and
//! 100,000 IPv6 addresses (hashed table, default `max_hosts`), counted by one writer per core
//! over several intervals (both generations of key slots in use), read from /proc/self/status.
//! The counters are measured just before each drain (every row filled); the drain's output
//! (a list of every active host, the flusher's) is reported apart. Fails if the counters' growth
//! passes 64 MiB. `cargo bench --bench memory`.

use bwacct::classify::App;
use bwacct::counters::{Counters, Layout};
use bwacct::parse::Proto;
use bwacct::usage::Dir;

const LIMIT_MIB: f64 = 64.0;
const V6_HOSTS: u128 = 100_000;
const INTERVALS: usize = 4;

/// (VmRSS, VmHWM) in MiB.
fn resident() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
            .map_or(0.0, |kib| kib / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn main() {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let (rss0, hwm0) = resident();
    let counters = Counters::new(Layout {
        nets: vec![
            "198.18.0.0/16".parse().unwrap(),
            "2001:db8:100::/40".parse().unwrap(),
        ],
        ipv6_prefix: 128,
        max_hosts: 131_072,
        direct_max_bits: 16,
    });
    let v4base: u128 = 0xC612_0000;
    let v6base = u128::from("2001:db8:100::".parse::<std::net::Ipv6Addr>().unwrap());
    let mut hosts = 0;
    let mut counters_peak: f64 = 0.0;
    for interval in 0..INTERVALS {
        std::thread::scope(|s| {
            for t in 0..threads {
                let w = counters.writer();
                s.spawn(move || {
                    let b = w.batch();
                    // every address of the /16 and every IPv6 address, in both directions and
                    // several classes; the threads share the addresses as fanout would
                    for a in (t as u128..65_536).step_by(threads) {
                        b.add(0, v4base + a, Dir::Tx, Proto::Tcp, Some(App::Http), 1500);
                        b.add(0, v4base + a, Dir::Rx, Proto::Udp, None, 80);
                    }
                    for a in (t as u128..V6_HOSTS).step_by(threads) {
                        // a different set of addresses every other interval
                        let key = v6base + (a << 16) + (interval % 2) as u128;
                        b.add(1, key, Dir::Tx, Proto::Tcp, Some(App::Mail), 1500);
                        b.add(1, key, Dir::Rx, Proto::Icmp, None, 64);
                    }
                });
            }
        });
        counters_peak = counters_peak.max(resident().0);
        let d = counters.drain();
        assert!(!d.overflowed, "the hashed table overflowed");
        hosts = d.hosts.len();
    }
    let (rss, hwm) = resident();
    let grown = counters_peak - rss0;
    println!(
        "counters: {hosts} active hosts per interval (65,536 IPv4 + {V6_HOSTS} IPv6), {threads} writers, {INTERVALS} intervals"
    );
    println!(
        "counters resident: {grown:.1} MiB at most (VmRSS {rss0:.1} -> {counters_peak:.1} MiB before a drain; limit {LIMIT_MIB} MiB)"
    );
    println!("with the drain's host list: VmHWM {hwm0:.1} -> {hwm:.1} MiB, VmRSS now {rss:.1} MiB");
    if grown > LIMIT_MIB {
        eprintln!("over the limit");
        std::process::exit(1);
    }
}
