//! `run`: the long-running service. Capture threads (one per interface) count; the flush thread
//! drains the counters at every interval boundary of the wall clock and writes the store; the
//! shutdown trigger stops capture, flushes what is counted and returns.

use super::{AppError, Pipeline};
use crate::capture::live::{InterfaceStats, KernelStats, LiveSource, StopHandle};
use crate::config::Config;
use crate::counters::{Counters, PacketStats};
use crate::flush::{bucket_start, Flusher, Upkeep};
use crate::rollup::Retention;
use crate::store::{sqlite::SqliteStore, Sample};
use std::fmt;
use std::future::Future;
use std::sync::{mpsc, Arc};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What a run did, printed at exit.
#[derive(Debug, Clone, Default)]
pub struct RunSummary {
    pub stats: PacketStats,
    pub interfaces: Vec<(String, KernelStats)>,
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
        for (i, (name, k)) in self.interfaces.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(
                f,
                "interface {name}: kernel received {} dropped {} interface-dropped {}",
                k.received, k.dropped, k.if_dropped
            )?;
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
    let mut sources = Vec::new();
    for name in names {
        sources.push(LiveSource::open(&cfg.capture, name)?);
    }
    let stop = StopHandle::default();
    let mut iface_stats = Vec::new();
    let mut threads = Vec::new();
    for mut src in sources {
        src.attach(&stop);
        iface_stats.push(src.stats());
        let acct = pipeline.accountant(src.link());
        let writer = counters.writer();
        let stop = stop.clone();
        tracing::info!(interface = src.interface(), link = ?src.link(), "capturing");
        threads.push(
            std::thread::Builder::new()
                .name(format!("capture-{}", src.interface()))
                .spawn(move || src.run(&acct, &writer, &stop))?,
        );
    }

    let (stop_flush, stop_rx) = mpsc::channel::<()>();
    let flush = {
        let counters = Arc::clone(&counters);
        let stats = iface_stats.clone();
        let sensor = cfg.sensor.clone();
        let interval = cfg.accounting.interval_s;
        let retention = cfg.storage.retention;
        std::thread::Builder::new()
            .name("flush".into())
            .spawn(move || {
                flush_loop(
                    counters,
                    Flusher::new(Box::new(store)),
                    stats,
                    (sensor, interval),
                    retention,
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
        interfaces: iface_stats
            .iter()
            .map(|s| (s.interface.clone(), s.read()))
            .collect(),
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

/// The flush thread: at every interval boundary, drain and write; in between, roll complete
/// hours and days up and prune what is past the retention, a bounded amount per wake-up and
/// never close to a boundary; on stop, a last flush of the open interval. Returns (intervals
/// flushed, intervals left unwritten).
fn flush_loop(
    counters: Arc<Counters>,
    mut flusher: Flusher,
    stats: Vec<Arc<InterfaceStats>>,
    (sensor, interval): (String, u32),
    retention: Retention,
    stop: mpsc::Receiver<()>,
) -> (usize, usize) {
    let mut kernel_seen = KernelStats::default();
    let mut intervals = 0;
    let mut flush = |start: i64, flusher: &mut Flusher| {
        let drained = counters.drain();
        let kernel_now = kernel_total(&stats);
        let kernel = kernel_now.since(&kernel_seen);
        kernel_seen = kernel_now;
        let active_ips = drained.hosts.len();
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
            dropped = kernel.dropped + kernel.if_dropped,
            active_ips,
            flush_ms = report.took.as_millis() as u64,
            pending = report.pending,
            "interval flushed"
        );
        if kernel.dropped > 0 || kernel.if_dropped > 0 {
            tracing::warn!(
                dropped = kernel.dropped,
                if_dropped = kernel.if_dropped,
                "the kernel dropped packets: counts are short for this interval"
            );
        }
        if drained.overflowed {
            tracing::warn!("more new addresses than accounting.max_hosts in one interval: the excess is counted in per-network overflow rows");
        }
    };
    let mut open = bucket_start(now_secs(), interval);
    // Upkeep at start and after every flush, until a call finds nothing more to do.
    let mut upkeep_due = true;
    let mut done = Upkeep::default();
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
            upkeep_due = true;
        } else if flusher.retry().is_some() || next - now_secs() < 2 {
            // a retry took this wake-up, or the boundary is close
            continue;
        }
        if !upkeep_due {
            continue;
        }
        // right after a flush, or between flushes: the open interval's hour is not complete
        match flusher.upkeep(&retention, bucket_start(open, 3600), now_secs()) {
            Some(u) => {
                done.rolled += u.rolled;
                done.pruned += u.pruned;
                if !u.busy() {
                    upkeep_due = false;
                    if done != Upkeep::default() {
                        tracing::info!(
                            buckets_rolled_up = done.rolled,
                            rows_pruned = done.pruned,
                            "store upkeep"
                        );
                    }
                    done = Upkeep::default();
                }
            }
            None => upkeep_due = false,
        }
    }
    flush(open, &mut flusher);
    let left = flusher.finish(Duration::from_secs(30));
    (intervals, left)
}
