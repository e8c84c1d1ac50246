//! `replay`: capture files through the same pipeline as live capture, bucketed by the packets'
//! own timestamps, flushed to the store as each interval ends.

use super::{AppError, Pipeline};
use crate::capture::file::FileSource;
use crate::config::Config;
use crate::counters::{Counters, Drained, PacketStats};
use crate::flush::{bucket_start, Flusher};
use crate::store::{sqlite::SqliteStore, Sample};
use std::fmt;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// What a replay did.
#[derive(Debug, Clone, Default)]
pub struct ReplaySummary {
    pub files: usize,
    pub intervals: usize,
    pub stats: PacketStats,
    pub seconds: f64,
    /// Files that ended in a damaged record (their packets up to it were counted).
    pub damaged: Vec<String>,
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
        write!(f, "packets/s        {rate:.0}")?;
        for d in &self.damaged {
            write!(f, "\ndamaged file     {d}")?;
        }
        Ok(())
    }
}

/// Packets between progress updates.
const PROGRESS_EVERY: u64 = 1 << 14;
/// Per-record overhead of a pcap file, for the progress estimate.
const RECORD_HEADER: u64 = 16;

/// Replays `files` in order into the configured store.
pub fn replay(cfg: &Config, files: &[PathBuf]) -> Result<ReplaySummary, AppError> {
    let started = Instant::now();
    // Open everything first: a missing file or an unknown link type stops before any counting.
    let mut sources = Vec::with_capacity(files.len());
    let mut total_bytes = 0;
    for f in files {
        let path = f.display().to_string();
        total_bytes += std::fs::metadata(f).map(|m| m.len()).unwrap_or(0);
        sources.push(FileSource::open(&path)?);
    }
    let store = SqliteStore::open(&cfg.storage.sqlite)?;
    let pipeline = Pipeline::new(&cfg.accounting);
    let interval = cfg.accounting.interval_s;

    let (tx, rx) = mpsc::sync_channel::<Sample>(8);
    let store_name = cfg.storage.sqlite.display().to_string();
    let flusher = std::thread::Builder::new()
        .name("flush".into())
        .spawn(move || {
            let mut flusher = Flusher::new(Box::new(store));
            for sample in rx {
                flusher.submit(sample);
            }
            let left = flusher.finish(Duration::from_secs(30));
            flusher.roll_up_before(chrono::Utc::now().timestamp());
            left
        })?;

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
    let mut read_bytes = 0u64;
    let mut since_progress = 0u64;
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
    for mut src in sources {
        let acct = pipeline.accountant(src.link());
        let mut batch = writer.batch();
        loop {
            let p = match src.next_packet() {
                Ok(Some(p)) => p,
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!("{e}; the packets before it were counted");
                    summary.damaged.push(e.to_string());
                    break;
                }
            };
            if p.ts_sec != last_second.0 {
                last_second = (p.ts_sec, bucket_start(p.ts_sec, interval));
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
            acct.process(&batch, p.data, p.wire_len);
            read_bytes += p.data.len() as u64 + RECORD_HEADER;
            since_progress += 1;
            if since_progress == PROGRESS_EVERY {
                since_progress = 0;
                progress.set_position(read_bytes);
            }
        }
    }
    if let Some(c) = current {
        send(writer.drain(), c, &mut summary);
    }
    drop(tx);
    progress.finish_and_clear();
    summary.stats = writer.counters().stats();
    let unflushed = flusher
        .join()
        .map_err(|_| std::io::Error::other("the flush thread panicked"))?;
    summary.seconds = started.elapsed().as_secs_f64();
    if unflushed > 0 {
        return Err(AppError::Unflushed {
            count: unflushed,
            store: store_name,
        });
    }
    Ok(summary)
}
