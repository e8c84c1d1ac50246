//! `replay`: capture files through the same pipeline as live capture, bucketed by the packets'
//! own timestamps, flushed to the store as each interval ends; with `[guard]` the reader also
//! feeds the guard (by the same clock); then quotas are checked as of the end of the replayed
//! data (states, events, hooks; never shaping).

use super::{AppError, Pipeline};
use crate::capture::file::FileSource;
use crate::config::Config;
use crate::counters::{Counters, Drained, PacketStats};
use crate::flush::{bucket_start, Flusher};
use crate::guard::{self, service::GuardService, service::Tap};
use crate::parse::{self, Decoded};
use crate::store::Sample;
use std::fmt;
use std::path::PathBuf;
use std::sync::{mpsc, Arc};
use std::time::Instant;

/// What a replay did.
#[derive(Debug, Clone, Default)]
pub struct ReplaySummary {
    pub files: usize,
    pub intervals: usize,
    pub stats: PacketStats,
    pub seconds: f64,
    /// Files that ended in a damaged record (their packets up to it were counted).
    pub damaged: Vec<String>,
    /// Quota state changes found at the end of the data.
    pub quota_changes: usize,
    /// Layer-2 events raised (with `[guard]`).
    pub guard_events: Option<usize>,
    /// Batches still waiting for the central store (kept in the local store's outbox).
    pub queued: usize,
}

impl fmt::Display for ReplaySummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.stats;
        let rate = if self.seconds > 0.0 {
            s.packets as f64 / self.seconds
        } else {
            0.0
        };
        writeln!(f, "files            {}", self.files)?;
        writeln!(f, "packets          {}", s.packets)?;
        writeln!(f, "accounted        {}", s.accounted)?;
        writeln!(f, "foreign          {}", s.foreign)?;
        writeln!(f, "non-IP           {}", s.non_ip)?;
        writeln!(f, "malformed        {}", s.malformed)?;
        writeln!(f, "length mismatch  {}", s.length_mismatch)?;
        writeln!(f, "intervals        {}", self.intervals)?;
        writeln!(f, "seconds          {:.3}", self.seconds)?;
        writeln!(f, "packets/s        {rate:.0}")?;
        write!(f, "quota changes    {}", self.quota_changes)?;
        if let Some(n) = self.guard_events {
            write!(f, "\nlayer-2 events   {n}")?;
        }
        if self.queued > 0 {
            write!(f, "\nqueued batches   {}", self.queued)?;
        }
        for d in &self.damaged {
            write!(f, "\ndamaged file     {d}")?;
        }
        Ok(())
    }
}

/// Decoded packets handed from the reader to the counter at a time.
const CHUNK: usize = 4096;
/// Chunks in flight between the two threads (recycled: nothing is allocated per packet).
const CHUNKS: usize = 4;
/// Per-record overhead of a pcap file, for the progress estimate.
const RECORD_HEADER: u64 = 16;

/// One packet as the reader hands it over: its second, wire length and decoded header facts
/// (never the packet's bytes).
#[derive(Clone, Copy)]
struct Record {
    ts_sec: i64,
    wire_len: u32,
    decoded: Decoded,
}

struct Chunk {
    records: Vec<Record>,
    /// File bytes read up to the end of this chunk, for the progress bar.
    read_bytes: u64,
}

/// The reader thread: libpcap reads and the zero-copy decode run here, on libpcap's buffer; the
/// facts go to the counting thread in recycled chunks. Returns the damaged-file messages.
fn read_files(
    sources: Vec<(String, FileSource)>,
    full: mpsc::SyncSender<Chunk>,
    empty: mpsc::Receiver<Chunk>,
    mut tap: Option<Tap>,
) -> Vec<String> {
    let mut damaged = Vec::new();
    let mut read_bytes = 0u64;
    let Ok(mut chunk) = empty.recv() else {
        return damaged;
    };
    for (name, mut src) in sources {
        let link = src.link();
        if let Some(t) = tap.as_mut() {
            t.set_port(&name);
        }
        loop {
            let p = match src.next_packet() {
                Ok(Some(p)) => p,
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!("{e}; the packets before it were counted");
                    damaged.push(e.to_string());
                    break;
                }
            };
            read_bytes += p.data.len() as u64 + RECORD_HEADER;
            let decoded = parse::decode(link, p.data, p.wire_len);
            if let Some(t) = tap.as_mut() {
                t.clock(p.ts_sec);
                t.frame(p.ts_sec, link, p.data, p.wire_len, &decoded);
            }
            chunk.records.push(Record {
                ts_sec: p.ts_sec,
                wire_len: p.wire_len,
                decoded,
            });
            if chunk.records.len() == CHUNK {
                chunk.read_bytes = read_bytes;
                // The counter hangs up only if it failed: then stop reading.
                if full.send(chunk).is_err() {
                    return damaged;
                }
                match empty.recv() {
                    Ok(c) => chunk = c,
                    Err(_) => return damaged,
                }
            }
        }
    }
    chunk.read_bytes = read_bytes;
    let _ = full.send(chunk);
    if let Some(t) = tap {
        t.finish();
    }
    damaged
}

/// Replays `files` in order into the configured store. Three threads: the reader (libpcap and
/// decode), this one (classify and count, drain at each interval boundary of the packets'
/// clock), and the flusher (SQLite).
pub fn replay(cfg: &Config, files: &[PathBuf]) -> Result<ReplaySummary, AppError> {
    let started = Instant::now();
    // Open everything first: a missing file or an unknown link type stops before any counting.
    let mut sources = Vec::with_capacity(files.len());
    let mut total_bytes = 0;
    for f in files {
        let path = f.display().to_string();
        total_bytes += std::fs::metadata(f).map(|m| m.len()).unwrap_or(0);
        let name = f
            .file_name()
            .map_or_else(|| path.clone(), |n| n.to_string_lossy().into_owned());
        sources.push((name, FileSource::open(&path)?));
    }
    let (store, forwarder) = super::forwarding::flush_store(cfg, false, None)?;
    let pipeline = Pipeline::new(&cfg.accounting);
    let acct = pipeline.accountant();
    let guard = match &cfg.guard {
        Some(g) => {
            let policy = Arc::new(guard::Policy::new(cfg, g));
            let service =
                GuardService::start(Arc::clone(&policy), &cfg.storage.sqlite, 1, false, None)?;
            let port = sources.first().map_or("", |(n, _)| n.as_str());
            let tap = service.tap(0, pipeline.observer(&policy, port));
            Some((service, tap))
        }
        None => None,
    };
    let (guard, tap) = match guard {
        Some((s, t)) => (Some(s), Some(t)),
        None => (None, None),
    };
    let interval = cfg.accounting.interval_s;

    let (tx, rx) = mpsc::sync_channel::<Sample>(8);
    let max_pending = cfg.storage.max_pending_bytes;
    let retry_on_stop = cfg.storage.retry_on_stop;
    let journal = crate::journal::path_for(&cfg.storage.sqlite);
    let flusher = std::thread::Builder::new()
        .name("flush".into())
        .spawn(move || {
            let mut flusher = Flusher::new(store)
                .with_memory_bound(max_pending)
                .with_journal(journal);
            for sample in rx {
                flusher.submit(sample);
            }
            let left = flusher.finish(retry_on_stop);
            flusher.roll_up_before(chrono::Utc::now().timestamp());
            left
        })?;

    let (full_tx, full_rx) = mpsc::sync_channel::<Chunk>(CHUNKS);
    let (empty_tx, empty_rx) = mpsc::channel::<Chunk>();
    for _ in 0..CHUNKS {
        let _ = empty_tx.send(Chunk {
            records: Vec::with_capacity(CHUNK),
            read_bytes: 0,
        });
    }
    let reader = std::thread::Builder::new()
        .name("read".into())
        .spawn(move || read_files(sources, full_tx, empty_rx, tap))?;

    let progress = indicatif::ProgressBar::new(total_bytes);
    progress.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} {bytes}/{total_bytes} {wide_bar} {percent}% eta {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );

    let mut writer = Counters::exclusive(super::layout(&cfg.accounting));
    let mut summary = ReplaySummary {
        files: files.len(),
        ..Default::default()
    };
    let mut current: Option<i64> = None;
    // The bucket of the last timestamp seen: packets of the same second skip the division.
    let mut last_second = (i64::MIN, 0);
    let send = |drained: Drained, start: i64, summary: &mut ReplaySummary| {
        summary.intervals += 1;
        // The flusher thread only stops when this side hangs up: a send cannot fail.
        let _ = tx.send(Sample {
            sensor: cfg.sensor.clone(),
            start,
            interval_s: interval,
            hosts: drained.hosts,
            stats: drained.stats,
            kernel: Default::default(),
        });
        if drained.overflowed {
            tracing::warn!("more new addresses than accounting.max_hosts in one interval: the excess is counted in per-network overflow rows");
        }
    };
    for mut chunk in full_rx {
        let mut batch = writer.batch();
        for r in chunk.records.drain(..) {
            if r.ts_sec != last_second.0 {
                last_second = (r.ts_sec, bucket_start(r.ts_sec, interval));
            }
            let bucket = last_second.1;
            match current {
                Some(c) if bucket > c => {
                    drop(batch);
                    send(writer.drain(), c, &mut summary);
                    current = Some(bucket);
                    batch = writer.batch();
                }
                None => current = Some(bucket),
                // Late packets (older than the open interval) count in the open interval.
                Some(_) => {}
            }
            acct.count(&batch, r.decoded, r.wire_len);
        }
        drop(batch);
        progress.set_position(chunk.read_bytes);
        // The reader may have finished and gone: then the chunk is simply dropped.
        let _ = empty_tx.send(chunk);
    }
    if let Some(c) = current {
        send(writer.drain(), c, &mut summary);
    }
    drop(tx);
    progress.finish_and_clear();
    summary.damaged = reader
        .join()
        .map_err(|_| std::io::Error::other("the reader thread panicked"))?;
    summary.guard_events = guard.map(GuardService::stop);
    summary.stats = writer.counters().stats();
    let left = flusher
        .join()
        .map_err(|_| std::io::Error::other("the flush thread panicked"))?;
    if let Some(e) = AppError::leftover(left, &cfg.storage.sqlite) {
        return Err(e);
    }
    // Everything is in the local store; PostgreSQL gets it now, or at the next start.
    summary.queued = super::forwarding::finish(forwarder, retry_on_stop).batches;
    summary.seconds = started.elapsed().as_secs_f64();
    if let Some(last) = current {
        let end = last + i64::from(interval);
        summary.quota_changes = crate::quota::service::check_once(cfg, end)?.len();
    }
    Ok(summary)
}
