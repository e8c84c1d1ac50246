//! `run`: the long-running service. Capture threads (`capture.threads` per interface, in a
//! fanout group) count; the flush thread drains the counters at every interval boundary of the
//! wall clock, writes the store, logs kernel drops per interface and thread, then asks the quota
//! service to check; with `[guard]`, each capture thread also feeds the guard, which decides once
//! per interval; SIGHUP reloads customers; the shutdown trigger stops capture, flushes what is
//! counted, lets the last quota check and guard verdict finish and returns. Root is dropped as
//! soon as the capture handles (and the web socket) are open.

use super::{AppError, Pipeline};
use crate::capture::fanout;
use crate::capture::live::{
    InterfaceSnapshot, InterfaceStats, KernelStats, LiveSource, StopHandle,
};
use crate::config::Config;
use crate::counters::{Counters, PacketStats};
use crate::flush::{bucket_start, FlushReport, Flusher, Leftover, Upkeep};
use crate::guard::{self, service::GuardService};
use crate::journal;
use crate::parse::LinkType;
use crate::preflight;
use crate::privilege::{self, Account, Dropped};
use crate::quota::service::{Msg, QuotaService};
use crate::rollup::Retention;
use crate::status::{Source, Status};
use crate::store::Sample;
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
    // An exposed dashboard without access control is refused before anything starts.
    if let Some(w) = &cfg.web {
        crate::web::auth::check_exposure(w.listen, &w.access)?;
    }
    // Everything that can be checked is checked before a capture handle is opened.
    let account = Account::for_service(&cfg.service)?;
    preflight::interfaces(&cfg.capture.interfaces)?;
    if privilege::running_as_root() && !account.is_root() {
        preflight::prepare_store_dir(&cfg.storage.sqlite, &account)?;
    }
    preflight::store_writable(&cfg.storage.sqlite, &account)?;
    let pipeline = Pipeline::new(&cfg.accounting);
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
        groups.push(LiveSource::open_threads(
            &cfg.capture,
            &cfg.accounting,
            name,
            cfg.guard.is_some(),
        )?);
    }
    // One capture thread in all: it adds with plain stores and drains the counters itself when
    // the flush thread asks (no lock-prefixed add per packet); several share atomic counters.
    let layout = super::layout(&cfg.accounting);
    let counters = if groups.iter().map(Vec::len).sum::<usize>() == 1 {
        Counters::one_writer(layout)
    } else {
        Counters::new(layout)
    };
    // Bind before dropping root and before capturing: a taken port is a clear error at start,
    // and a privileged port (443) stays possible.
    let listener = match &cfg.web {
        Some(w) => Some(super::serve::bind(w.listen, w).await?),
        None => None,
    };
    let customers = Arc::new(crate::customer::Customers::new(cfg.customers.clone()));
    let names = match &listener {
        Some(_) => super::serve::names(&cfg, &customers)?,
        None => None,
    };
    // Root was needed for the capture handles only: from here on, the service account. This
    // runs before any other thread exists (capabilities are per thread).
    match privilege::drop_privileges(&account, privilege::capabilities_to_keep(cfg.shaping.auto))? {
        Dropped::To {
            user, uid, kept, ..
        } => {
            tracing::info!(
                user,
                uid,
                capabilities = format!("{kept:#x}"),
                "dropped root"
            )
        }
        Dropped::NotRoot { uid } => tracing::info!(uid, "not started as root: nothing to drop"),
        Dropped::KeptRoot => tracing::warn!(
            "[service] user = \"root\": running with every privilege (not recommended)"
        ),
    }
    // Now as the account that writes it: a file system gone read-only shows here.
    preflight::store_writable(&cfg.storage.sqlite, &account)?;
    // Quotas (and automatic shaping) start once capture can, as the service account.
    let quota = QuotaService::start(&cfg)?;
    // With a central store, each batch delivered there is worth a quota check.
    let delivered = quota.sender();
    let (store, forwarder) = super::forwarding::flush_store(
        &cfg,
        true,
        Some(Box::new(move || {
            let _ = delivered.send(Msg::Check(now_secs()));
        })),
    )?;
    // The guard's service writes the store: it starts as the service account, and before the
    // capture threads that feed it (one tap per thread).
    let iface_stats: Vec<Arc<InterfaceStats>> = groups
        .iter()
        .filter_map(|g| g.first().map(LiveSource::stats))
        .collect();
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
                groups.iter().map(Vec::len).sum(),
                true,
                Some(Arc::clone(&status)),
            )?;
            Some((policy, service))
        }
        None => None,
    };
    let stop = StopHandle::default();
    let mut threads = Vec::new();
    for group in groups {
        let Some(first) = group.first() else { continue };
        tracing::info!(
            interface = first.interface(),
            link = ?first.link(),
            threads = group.len(),
            pinned = cfg.capture.pin,
            "capturing"
        );
        if guard.is_some() && first.link() != LinkType::Ethernet {
            tracing::warn!(interface = first.interface(), link = ?first.link(), "the guard sees ARP here but no Ethernet headers: MAC flooding and spoofed sources are not checked on this interface");
        }
        for mut src in group {
            src.attach(&stop);
            let acct = pipeline.accountant();
            let mut writer = counters.writer();
            let stop = stop.clone();
            let pin = cfg.capture.pin.then_some(threads.len());
            let tap = guard.as_ref().map(|(policy, service)| {
                service.tap(threads.len(), pipeline.observer(policy, src.interface()))
            });
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
                        src.run(&acct, &mut writer, &stop, tap)
                    })?,
            );
        }
    }

    let (stop_web, web_stopped) = tokio::sync::watch::channel(false);
    let server = match listener {
        Some(bound) => {
            let ctx = super::serve::context(&cfg, Arc::clone(&status), customers, names);
            let mut stopped = web_stopped.clone();
            Some(tokio::spawn(bound.serve(ctx, async move {
                let _ = stopped.changed().await;
            })))
        }
        None => None,
    };

    // Intervals a previous run could not write are merged before anything new.
    let flusher = Flusher::new(store)
        .with_memory_bound(cfg.storage.max_pending_bytes)
        .with_journal(journal::path_for(&cfg.storage.sqlite));
    let (stop_flush, stop_rx) = mpsc::channel::<()>();
    let flush = {
        let counters = Arc::clone(&counters);
        let status = Arc::clone(&status);
        let stats = iface_stats.clone();
        let sensor = cfg.sensor.clone();
        let interval = cfg.accounting.interval_s;
        let retry_on_stop = cfg.storage.retry_on_stop;
        let checks = quota.sender();
        let retention = cfg.storage.retention;
        std::thread::Builder::new()
            .name("flush".into())
            .spawn(move || {
                flush_loop(
                    counters,
                    flusher,
                    FlushContext {
                        stats,
                        status,
                        sensor,
                        interval,
                        retry_on_stop,
                        retention,
                    },
                    stop_rx,
                    checks,
                )
            })?
    };

    let store_path = cfg.storage.sqlite.clone();
    let retry_on_stop = cfg.storage.retry_on_stop;
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
        // what the last flush queued goes to PostgreSQL now if it can (else at the next start)
        super::forwarding::finish(forwarder, retry_on_stop);
        quota.stop();
        joined
    })
    .await
    .map_err(std::io::Error::other)?;
    let (intervals, left) =
        joined.map_err(|_| std::io::Error::other("the flush thread panicked"))?;
    if let Some(e) = AppError::leftover(left, &store_path) {
        return Err(e);
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

/// What the flush thread needs besides the counters and the store.
struct FlushContext {
    stats: Vec<Arc<InterfaceStats>>,
    /// Shown by the dashboard and `/metrics`.
    status: Arc<Status>,
    sensor: String,
    interval: u32,
    /// How long the last flush keeps retrying a failing store before the journal.
    retry_on_stop: Duration,
    /// How long each level of the store is kept.
    retention: Retention,
}

/// The flush thread: at every interval boundary, drain and write; in between, roll complete
/// hours and days up and prune what is past the retention, a bounded amount per wake-up and
/// never close to a boundary; on stop, a last flush of the open interval. After every write
/// that leaves nothing pending, a quota check is asked for. Returns (intervals flushed, what
/// could not be written).
fn flush_loop(
    counters: Arc<Counters>,
    mut flusher: Flusher,
    cx: FlushContext,
    stop: mpsc::Receiver<()>,
    checks: mpsc::Sender<Msg>,
) -> (usize, Leftover) {
    let FlushContext {
        stats,
        status,
        sensor,
        interval,
        retry_on_stop,
        retention,
    } = cx;
    let stored = |report: &FlushReport| {
        if report.written > 0 && report.pending == 0 {
            let _ = checks.send(Msg::Check(now_secs()));
        }
    };
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
        let active_ips = drained.hosts.len();
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
            dropped = kernel.dropped + kernel.if_dropped,
            active_ips,
            flush_ms = report.took.as_millis() as u64,
            pending = report.pending,
            "interval flushed"
        );
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
        // Wake right at the boundary (a SIGKILL then loses as little as possible), and at least
        // every second to retry a failed write.
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let wait = Duration::from_secs(u64::try_from(next).unwrap_or(0)).saturating_sub(now);
        match stop.recv_timeout(wait.min(Duration::from_secs(1))) {
            Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if now_secs() >= next {
            flush(open, &mut flusher);
            open = bucket_start(now_secs(), interval);
            upkeep_due = true;
        } else if let Some(report) = flusher.retry() {
            // a retry took this wake-up
            status.flushed(report.took, flusher.errors(), report.pending, now_secs());
            stored(&report);
            continue;
        } else if next - now_secs() < 2 {
            // the boundary is close
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
    let left = flusher.finish(retry_on_stop);
    (intervals, left)
}
