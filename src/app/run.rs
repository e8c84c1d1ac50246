//! `run`: the long-running service. Capture threads (one per interface) count; the flush thread
//! drains the counters at every interval boundary of the wall clock and writes the store, then
//! asks the quota service to check; with `[guard]`, each capture thread also feeds the guard,
//! which decides once per interval; SIGHUP reloads customers; the shutdown trigger stops
//! capture, flushes what is counted, lets the last quota check and guard verdict finish and
//! returns.

use super::{AppError, Pipeline};
use crate::capture::live::{InterfaceStats, KernelStats, LiveSource, StopHandle};
use crate::config::Config;
use crate::counters::{Counters, PacketStats};
use crate::flush::{bucket_start, FlushReport, Flusher};
use crate::guard::{self, service::GuardService};
use crate::parse::LinkType;
use crate::quota::service::{Msg, QuotaService};
use crate::status::{Source, Status};
use crate::store::{sqlite::SqliteStore, Sample};
use crate::web;
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
        sources.push(LiveSource::open(&cfg.capture, name, cfg.guard.is_some())?);
    }
    // Quotas (and automatic shaping) start once capture can.
    let quota = QuotaService::start(&cfg)?;
    // Bind before capturing: a taken port is a clear error at start, not a silent omission.
    let listener = match &cfg.web {
        Some(w) => Some(super::serve::bind(w.listen).await?),
        None => None,
    };
    let iface_stats: Vec<Arc<InterfaceStats>> = sources.iter().map(LiveSource::stats).collect();
    let status = Arc::new(Status::new(
        Source::Live {
            counters: Arc::clone(&counters),
            interfaces: iface_stats.clone(),
        },
        now_secs(),
    ));
    let guard = match &cfg.guard {
        Some(g) => {
            let policy = Arc::new(guard::Policy::new(&cfg, g));
            let service = GuardService::start(
                Arc::clone(&policy),
                &cfg.storage.sqlite,
                sources.len(),
                true,
                Some(Arc::clone(&status)),
            )?;
            Some((policy, service))
        }
        None => None,
    };
    let stop = StopHandle::default();
    let mut threads = Vec::new();
    for (i, mut src) in sources.into_iter().enumerate() {
        src.attach(&stop);
        let acct = pipeline.accountant();
        let writer = counters.writer();
        let stop = stop.clone();
        let tap = guard.as_ref().map(|(policy, service)| {
            if src.link() != LinkType::Ethernet {
                tracing::warn!(interface = src.interface(), link = ?src.link(), "the guard sees ARP here but no Ethernet headers: MAC flooding and spoofed sources are not checked on this interface");
            }
            service.tap(i, pipeline.observer(policy, src.interface()))
        });
        tracing::info!(interface = src.interface(), link = ?src.link(), "capturing");
        threads.push(
            std::thread::Builder::new()
                .name(format!("capture-{}", src.interface()))
                .spawn(move || src.run(&acct, &writer, &stop, tap))?,
        );
    }

    let (stop_web, web_stopped) = tokio::sync::watch::channel(false);
    let server = listener.map(|listener| {
        let ctx = Arc::new(web::Context::new(
            super::serve::sqlite_reader(cfg.storage.sqlite.clone()),
            Arc::clone(&status),
            Arc::new(crate::customer::Customers::new(cfg.customers.clone())),
        ));
        let mut stopped = web_stopped.clone();
        tokio::spawn(web::serve(listener, ctx, async move {
            let _ = stopped.changed().await;
        }))
    });

    let (stop_flush, stop_rx) = mpsc::channel::<()>();
    let flush = {
        let counters = Arc::clone(&counters);
        let status = Arc::clone(&status);
        let stats = iface_stats.clone();
        let sensor = cfg.sensor.clone();
        let interval = cfg.accounting.interval_s;
        let checks = quota.sender();
        std::thread::Builder::new()
            .name("flush".into())
            .spawn(move || {
                flush_loop(
                    counters,
                    Flusher::new(Box::new(store)),
                    FlushContext {
                        stats,
                        status,
                        sensor,
                        interval,
                    },
                    stop_rx,
                    checks,
                )
            })?
    };

    let store_path = cfg.storage.sqlite.display().to_string();
    let (guard_tx, guard) = match guard {
        Some((_, service)) => (Some(service.sender()), Some(service)),
        None => (None, None),
    };
    super::reload::serve_until(shutdown, cfg, quota.sender(), guard_tx).await;
    tracing::info!("stopping: flushing what is counted");
    let _ = stop_web.send(true);
    if let Some(server) = server {
        match tokio::time::timeout(Duration::from_secs(5), server).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => tracing::warn!("the dashboard stopped with an error: {e}"),
            Ok(Err(e)) => tracing::warn!("the dashboard task failed: {e}"),
            Err(_) => tracing::warn!("the dashboard did not stop within 5 s"),
        }
    }
    stop.stop();
    let joined = tokio::task::spawn_blocking(move || {
        for t in threads {
            let _ = t.join();
        }
        if let Some(g) = guard {
            g.stop();
        }
        let _ = stop_flush.send(());
        let joined = flush.join();
        quota.stop();
        joined
    })
    .await
    .map_err(std::io::Error::other)?;
    let (intervals, unflushed) =
        joined.map_err(|_| std::io::Error::other("the flush thread panicked"))?;
    if unflushed > 0 {
        return Err(AppError::Unflushed {
            count: unflushed,
            store: store_path,
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

/// What the flush thread needs besides the counters and the store.
struct FlushContext {
    stats: Vec<Arc<InterfaceStats>>,
    /// Shown by the dashboard and `/metrics`.
    status: Arc<Status>,
    sensor: String,
    interval: u32,
}

/// The flush thread: at every interval boundary, drain and write; on stop, a last flush of the
/// open interval. After every write that leaves nothing pending, a quota check is asked for.
/// Returns (intervals flushed, intervals left unwritten).
fn flush_loop(
    counters: Arc<Counters>,
    mut flusher: Flusher,
    cx: FlushContext,
    stop: mpsc::Receiver<()>,
    checks: mpsc::Sender<Msg>,
) -> (usize, usize) {
    let FlushContext {
        stats,
        status,
        sensor,
        interval,
    } = cx;
    let stored = |report: &FlushReport| {
        if report.written > 0 && report.pending == 0 {
            let _ = checks.send(Msg::Check(now_secs()));
        }
    };
    let mut kernel_seen = KernelStats::default();
    let mut intervals = 0;
    let mut flush = |start: i64, flusher: &mut Flusher| {
        let drained = counters.drain();
        let kernel_now = kernel_total(&stats);
        let kernel = kernel_now.since(&kernel_seen);
        kernel_seen = kernel_now;
        let hosts = drained.hosts.len();
        let s = drained.stats;
        let sample = Sample {
            sensor: sensor.clone(),
            start,
            interval_s: interval,
            hosts: drained.hosts,
            stats: drained.stats,
            kernel,
        };
        status.observe(&sample);
        let report = flusher.submit(sample);
        status.flushed(report.took, flusher.errors(), report.pending, now_secs());
        stored(&report);
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
        } else if let Some(report) = flusher.retry() {
            status.flushed(report.took, flusher.errors(), report.pending, now_secs());
            stored(&report);
        }
    }
    flush(open, &mut flusher);
    let left = flusher.finish(Duration::from_secs(30));
    (intervals, left)
}
