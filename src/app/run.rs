//! `run`: the long-running service. Capture threads (`capture.threads` per interface, in a
//! fanout group) count; the flush thread drains the counters at every interval boundary of the
//! wall clock, writes the store and logs kernel drops per interface and thread; the shutdown
//! trigger stops capture, flushes what is counted and returns.

use super::{AppError, Pipeline};
use crate::capture::fanout;
use crate::capture::live::{
    InterfaceSnapshot, InterfaceStats, KernelStats, LiveSource, StopHandle,
};
use crate::config::Config;
use crate::counters::{Counters, PacketStats};
use crate::flush::{bucket_start, Flusher};
use crate::store::{sqlite::SqliteStore, Sample};
use std::fmt;
use std::future::Future;
use std::sync::{mpsc, Arc};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What a run did, printed at exit.
#[derive(Debug, Clone, Default)]
pub struct RunSummary {
    pub stats: PacketStats,
    /// Kernel statistics per interface, with each capture thread's share.
    pub interfaces: Vec<InterfaceSnapshot>,
    pub intervals: usize,
}

impl fmt::Display for RunSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.stats;
        writeln!(
            f,
            "packets {} accounted {} foreign {} non-IP {} malformed {} length-mismatch {} intervals {}",
            s.packets, s.accounted, s.foreign, s.non_ip, s.malformed, s.length_mismatch, self.intervals
        )?;
        for (i, snap) in self.interfaces.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            let k = &snap.total;
            write!(
                f,
                "interface {}: kernel received {} dropped {} interface-dropped {}",
                snap.interface, k.received, k.dropped, k.if_dropped
            )?;
            if snap.threads.len() > 1 {
                for (n, t) in snap.threads.iter().enumerate() {
                    write!(
                        f,
                        "\n  thread {n}: kernel received {} dropped {}",
                        t.received, t.dropped
                    )?;
                }
            }
        }
        Ok(())
    }
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Runs until `shutdown` completes, then flushes and returns.
pub async fn run(cfg: Config, shutdown: impl Future<Output = ()>) -> Result<RunSummary, AppError> {
    let store = SqliteStore::open(&cfg.storage.sqlite)?;
    let pipeline = Pipeline::new(&cfg.accounting);
    let counters = Counters::new(super::layout(&cfg.accounting));
    let names: Vec<Option<&str>> = if cfg.capture.interfaces.is_empty() {
        vec![None]
    } else {
        cfg.capture
            .interfaces
            .iter()
            .map(|s| Some(s.as_str()))
            .collect()
    };
    let mut groups = Vec::new();
    for name in names {
        groups.push(LiveSource::open_threads(&cfg.capture, name)?);
    }
    let stop = StopHandle::default();
    let mut iface_stats = Vec::new();
    let mut threads = Vec::new();
    for group in groups {
        let Some(first) = group.first() else { continue };
        iface_stats.push(first.stats());
        tracing::info!(
            interface = first.interface(),
            link = ?first.link(),
            threads = group.len(),
            pinned = cfg.capture.pin,
            "capturing"
        );
        for mut src in group {
            src.attach(&stop);
            let acct = pipeline.accountant();
            let writer = counters.writer();
            let stop = stop.clone();
            let pin = cfg.capture.pin.then_some(threads.len());
            threads.push(
                std::thread::Builder::new()
                    .name(format!("cap-{}-{}", src.interface(), src.thread()))
                    .spawn(move || {
                        if let Some(n) = pin {
                            match fanout::pin_current_thread(n) {
                                Ok(cpu) => tracing::debug!(
                                    interface = src.interface(),
                                    thread = src.thread(),
                                    cpu,
                                    "pinned"
                                ),
                                Err(e) => tracing::warn!(
                                    interface = src.interface(),
                                    thread = src.thread(),
                                    "cannot pin the capture thread: {e}"
                                ),
                            }
                        }
                        src.run(&acct, &writer, &stop)
                    })?,
            );
        }
    }

    let (stop_flush, stop_rx) = mpsc::channel::<()>();
    let flush = {
        let counters = Arc::clone(&counters);
        let stats = iface_stats.clone();
        let sensor = cfg.sensor.clone();
        let interval = cfg.accounting.interval_s;
        std::thread::Builder::new()
            .name("flush".into())
            .spawn(move || {
                flush_loop(
                    counters,
                    Flusher::new(Box::new(store)),
                    stats,
                    sensor,
                    interval,
                    stop_rx,
                )
            })?
    };

    shutdown.await;
    tracing::info!("stopping: flushing what is counted");
    stop.stop();
    let joined = tokio::task::spawn_blocking(move || {
        for t in threads {
            let _ = t.join();
        }
        let _ = stop_flush.send(());
        flush.join()
    })
    .await
    .map_err(std::io::Error::other)?;
    let (intervals, unflushed) =
        joined.map_err(|_| std::io::Error::other("the flush thread panicked"))?;
    if unflushed > 0 {
        return Err(AppError::Unflushed {
            count: unflushed,
            store: cfg.storage.sqlite.display().to_string(),
        });
    }
    Ok(RunSummary {
        stats: counters.stats(),
        interfaces: iface_stats.iter().map(|s| s.snapshot()).collect(),
        intervals,
    })
}

/// Sums the kernel statistics of every interface.
fn kernel_total(stats: &[Arc<InterfaceStats>]) -> KernelStats {
    let mut total = KernelStats::default();
    for s in stats {
        total.merge(&s.read());
    }
    total
}

/// Logs, per interface and capture thread, the packets the kernel dropped since `seen`: ring
/// drops (the capture fell behind: counts are short) as warnings; the interface's own drops
/// (frames the network stack refused, often after the capture saw them) as information.
fn warn_drops(now: &[InterfaceSnapshot], seen: &[InterfaceSnapshot]) {
    for (n, s) in now.iter().zip(seen) {
        let delta = n.total.since(&s.total);
        if delta.dropped > 0 {
            let per_thread: Vec<u64> = n
                .threads
                .iter()
                .zip(&s.threads)
                .map(|(a, b)| a.since(b).dropped)
                .collect();
            tracing::warn!(
                interface = %n.interface,
                dropped = delta.dropped,
                received = delta.received,
                per_thread = ?per_thread,
                "the kernel dropped packets: counts are short for this interval (raise capture.buffer_mib or capture.threads)"
            );
        }
        if delta.if_dropped > 0 {
            tracing::info!(interface = %n.interface, if_dropped = delta.if_dropped, "the interface dropped packets");
        }
    }
}

/// The flush thread: at every interval boundary, drain and write; on stop, a last flush of the
/// open interval. Returns (intervals flushed, intervals left unwritten).
fn flush_loop(
    counters: Arc<Counters>,
    mut flusher: Flusher,
    stats: Vec<Arc<InterfaceStats>>,
    sensor: String,
    interval: u32,
    stop: mpsc::Receiver<()>,
) -> (usize, usize) {
    let mut kernel_seen = KernelStats::default();
    let mut seen: Vec<InterfaceSnapshot> = stats.iter().map(|s| s.snapshot()).collect();
    let mut intervals = 0;
    let mut flush = |start: i64, flusher: &mut Flusher| {
        let drained = counters.drain();
        let kernel_now = kernel_total(&stats);
        let kernel = kernel_now.since(&kernel_seen);
        kernel_seen = kernel_now;
        let now: Vec<InterfaceSnapshot> = stats.iter().map(|s| s.snapshot()).collect();
        warn_drops(&now, &seen);
        seen = now;
        let hosts = drained.hosts.len();
        let s = drained.stats;
        let report = flusher.submit(Sample {
            sensor: sensor.clone(),
            start,
            interval_s: interval,
            hosts: drained.hosts,
            stats: drained.stats,
            kernel,
        });
        intervals += 1;
        tracing::info!(
            packets = s.packets,
            bytes = s.bytes,
            active_hosts = hosts,
            kernel_dropped = kernel.dropped,
            flush_ms = report.took.as_millis() as u64,
            pending = report.pending,
            "interval flushed"
        );
        if drained.overflowed {
            tracing::warn!("more new addresses than accounting.max_hosts in one interval: the excess is counted in per-network overflow rows");
        }
    };
    let mut open = bucket_start(now_secs(), interval);
    loop {
        let next = open + i64::from(interval);
        let wait = (next - now_secs()).max(0) as u64;
        // Wake at least every second to retry a failed write.
        match stop.recv_timeout(Duration::from_secs(wait.min(1))) {
            Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if now_secs() >= next {
            flush(open, &mut flusher);
            open = bucket_start(now_secs(), interval);
        } else {
            flusher.retry();
        }
    }
    flush(open, &mut flusher);
    let left = flusher.finish(Duration::from_secs(30));
    (intervals, left)
}
