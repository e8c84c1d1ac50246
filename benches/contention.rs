//! Counters under contention: N threads count packets that all involve one heavy-hitter address
//! (its tx cells) and a cold peer each (rx), into shared atomic tables (`Counters::new`, one
//! writer per thread) or into one exclusive table per thread merged at the drain
//! (`Counters::exclusive`). Throughput in packets per CPU-second: each iteration returns the CPU
//! time its threads used (summed), so that other work on a shared machine does not count, while
//! contention (cache lines bouncing between cores) does.

use bwacct::classify::App;
use bwacct::counters::{Counters, Layout, Writer};
use bwacct::parse::Proto;
use bwacct::usage::Dir;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::sync::{Arc, Barrier};
use std::time::Duration;

/// Packets each thread counts per measured iteration.
const PACKETS: u64 = 1 << 20;
/// Packets per batch (one `pcap_dispatch` of a busy ring).
const BATCH: u64 = 512;

fn layout() -> Layout {
    Layout {
        nets: vec!["198.18.0.0/16".parse().unwrap()],
        ipv6_prefix: 128,
        max_hosts: 131_072,
        direct_max_bits: 16,
    }
}

const BASE: u128 = 0xC612_0000; // 198.18.0.0

/// One thread's work: the hot address sends, a cold peer of this thread's receives.
fn count(writer: &Writer, thread: u64) {
    let hot = BASE + 1;
    let mut batch = writer.batch();
    for i in 0..PACKETS {
        if i % BATCH == 0 {
            drop(batch);
            batch = writer.batch();
        }
        batch.add(0, hot, Dir::Tx, Proto::Tcp, Some(App::Http), 1000);
        let cold = BASE + 256 + u128::from((thread * 8192 + i % 4096) % 65000);
        batch.add(0, cold, Dir::Rx, Proto::Tcp, Some(App::Http), 1000);
    }
}

/// The calling thread's CPU time.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is valid for writes.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Runs one thread per writer once, from a common start; returns their CPU time, summed.
fn run(writers: &[Writer]) -> Duration {
    let start = Arc::new(Barrier::new(writers.len()));
    std::thread::scope(|s| {
        let threads: Vec<_> = writers
            .iter()
            .enumerate()
            .map(|(t, w)| {
                let start = Arc::clone(&start);
                s.spawn(move || {
                    start.wait();
                    let t0 = thread_cpu();
                    count(w, t as u64);
                    thread_cpu() - t0
                })
            })
            .collect();
        threads.into_iter().filter_map(|t| t.join().ok()).sum()
    })
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("contention");
    group.sample_size(10);
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    for threads in [1, 2, cores.max(2) * 2]
        .into_iter()
        .collect::<std::collections::BTreeSet<_>>()
    {
        group.throughput(Throughput::Elements(PACKETS * threads as u64));
        let shared = Counters::new(layout());
        let writers: Vec<Writer> = (0..threads).map(|_| shared.writer()).collect();
        group.bench_function(format!("shared_atomics/{threads}_threads"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += run(&writers);
                    shared.drain();
                }
                total
            })
        });
        let mut exclusive: Vec<Writer> = (0..threads)
            .map(|_| Counters::exclusive(layout()))
            .collect();
        group.bench_function(format!("per_thread_tables/{threads}_threads"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += run(&exclusive);
                    // the merge at the drain: every thread's table summed per host
                    let t0 = thread_cpu();
                    let mut merged = std::collections::HashMap::new();
                    for w in &mut exclusive {
                        for (host, usage) in w.drain().hosts {
                            merged
                                .entry(host)
                                .or_insert_with(bwacct::usage::Usage::default)
                                .merge(&usage);
                        }
                    }
                    total += thread_cpu() - t0;
                    std::hint::black_box(merged);
                }
                total
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
