//! The pending-samples journal: where the flusher spills intervals it could not write when it
//! must stop (SIGTERM with the store still failing), and where the next start finds them and
//! merges them into the store. A plain text file beside the store (`STORE.pending`), written
//! with fsync; a torn tail (killed while writing) is ignored, never misread.
//!
//! Format, one sample after another:
//! `S sensor start interval_s packets accounted bytes foreign non_ip malformed length_mismatch
//! kernel_received kernel_dropped kernel_if_dropped hosts`, then `hosts` lines of
//! `H address value...` (the 32 usage cells).

use crate::capture::live::KernelStats;
use crate::counters::PacketStats;
use crate::store::{Sample, Store, StoreError};
use crate::usage::{Host, Usage, CELLS};
use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("journal {path}, line {line}: {message}")]
    Bad {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

/// The journal of the store at `store`.
pub fn path_for(store: &Path) -> PathBuf {
    let mut p = store.as_os_str().to_owned();
    p.push(".pending");
    PathBuf::from(p)
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> JournalError + '_ {
    move |source| JournalError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The samples as journal text (also the body of an outbox batch, `store::outbox`).
pub fn encode(samples: &[Sample]) -> String {
    let mut out = String::new();
    for s in samples {
        let p = &s.stats;
        let k = &s.kernel;
        out.push_str(&format!(
            "S {} {} {} {} {} {} {} {} {} {} {} {} {} {}\n",
            s.sensor,
            s.start,
            s.interval_s,
            p.packets,
            p.accounted,
            p.bytes,
            p.foreign,
            p.non_ip,
            p.malformed,
            p.length_mismatch,
            k.received,
            k.dropped,
            k.if_dropped,
            s.hosts.len()
        ));
        for (host, usage) in &s.hosts {
            out.push_str("H ");
            let _ = write!(out, "{host}");
            for v in usage.0 {
                // most cells are zero: no formatting for them (an outbox body per flush)
                if v == 0 {
                    out.push_str(" 0");
                } else {
                    let _ = write!(out, " {v}");
                }
            }
            out.push('\n');
        }
    }
    out
}

/// Appends samples to the journal and syncs it to disk.
pub fn append(path: &Path, samples: &[Sample]) -> Result<(), JournalError> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io(path))?;
    f.write_all(encode(samples).as_bytes()).map_err(io(path))?;
    f.sync_all().map_err(io(path))
}

/// Replaces the journal with `samples` (atomically: a synced temporary file renamed over it),
/// or removes it when there are none.
fn rewrite(path: &Path, samples: &[Sample]) -> Result<(), JournalError> {
    if samples.is_empty() {
        return match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(path)(e)),
            _ => Ok(()),
        };
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    f.write_all(encode(samples).as_bytes()).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

/// Reads every complete sample of the journal (none if there is no journal). A sample cut
/// short at the end of the file (a crash while spilling) is left out.
pub fn read(path: &Path) -> Result<Vec<Sample>, JournalError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(path)(e)),
    };
    decode(&text, path)
}

/// Reads every complete sample of journal text; `path` names it in errors.
pub fn decode(text: &str, path: &Path) -> Result<Vec<Sample>, JournalError> {
    // Every line was written with its newline: text after the last one is a torn write.
    let whole = text.rfind('\n').map_or("", |end| &text[..=end]);
    let mut samples = Vec::new();
    let mut current: Option<(Sample, usize)> = None;
    for (i, line) in whole.lines().enumerate() {
        let bad = |message: &str| JournalError::Bad {
            path: path.to_owned(),
            line: i + 1,
            message: message.to_owned(),
        };
        let mut words = line.split_ascii_whitespace();
        match words.next() {
            Some("S") => {
                if current.is_some() {
                    return Err(bad("a sample starts before the previous one ended"));
                }
                let sensor = words.next().ok_or_else(|| bad("no sensor"))?.to_owned();
                let n: Vec<u64> = words
                    .map(str::parse)
                    .collect::<Result<_, _>>()
                    .map_err(|_| bad("not a number"))?;
                let [start, interval_s, packets, accounted, bytes, foreign, non_ip, malformed, length_mismatch, received, dropped, if_dropped, hosts] =
                    n[..]
                else {
                    return Err(bad("expected 13 numbers after the sensor"));
                };
                let sample = Sample {
                    sensor,
                    start: i64::try_from(start).map_err(|_| bad("start out of range"))?,
                    interval_s: u32::try_from(interval_s).map_err(|_| bad("bad interval"))?,
                    hosts: Vec::new(),
                    stats: PacketStats {
                        packets,
                        accounted,
                        bytes,
                        foreign,
                        non_ip,
                        malformed,
                        length_mismatch,
                    },
                    kernel: KernelStats {
                        received,
                        dropped,
                        if_dropped,
                    },
                };
                let hosts = usize::try_from(hosts).map_err(|_| bad("bad host count"))?;
                current = Some((sample, hosts));
            }
            Some("H") => {
                let Some((sample, _)) = current.as_mut() else {
                    return Err(bad("a host line outside a sample"));
                };
                let host: Host = words
                    .next()
                    .ok_or_else(|| bad("no address"))?
                    .parse()
                    .map_err(|_| bad("not an address"))?;
                let mut usage = Usage::default();
                let mut count = 0;
                for (cell, w) in usage.0.iter_mut().zip(words.by_ref()) {
                    *cell = w.parse().map_err(|_| bad("not a number"))?;
                    count += 1;
                }
                if count != CELLS || words.next().is_some() {
                    return Err(bad("expected 32 values"));
                }
                sample.hosts.push((host, usage));
            }
            None => continue,
            _ => return Err(bad("unknown line")),
        }
        if let Some((sample, hosts)) = current.take_if(|(s, n)| s.hosts.len() == *n) {
            let _ = hosts;
            samples.push(sample);
        }
    }
    if current.is_some() {
        tracing::warn!(journal = %path.display(), "the journal ends in the middle of a sample (a crash while writing it): that sample is left out");
    }
    Ok(samples)
}

/// What a recovery did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Recovered {
    pub written: usize,
    pub left: usize,
}

/// Merges the journal's samples into `store`, oldest first, shrinking the journal after each
/// one written (the store adds to what it holds, so a half-counted interval merges). Stops at
/// the first failure and leaves the rest in the journal for the next start.
pub fn recover(path: &Path, store: &mut dyn Store) -> Result<Recovered, JournalError> {
    let mut samples = read(path)?;
    let mut done = Recovered::default();
    while !samples.is_empty() {
        if let Err(e) = store.write(&samples[0]) {
            log_left(path, samples.len(), &e);
            break;
        }
        samples.remove(0);
        done.written += 1;
        rewrite(path, &samples)?;
    }
    done.left = samples.len();
    Ok(done)
}

fn log_left(path: &Path, left: usize, e: &StoreError) {
    tracing::error!(
        journal = %path.display(),
        intervals = left,
        "cannot merge the journal into the store yet ({e:#}); it is kept for the next start"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::SqliteStore;
    use crate::store::Query;

    fn sample(start: i64, host: &str, bytes: u64) -> Sample {
        let mut usage = Usage::default();
        usage.0[0] = bytes;
        usage.0[1] = 1;
        Sample {
            sensor: "s-1".into(),
            start,
            interval_s: 60,
            hosts: vec![(host.parse().unwrap(), usage)],
            stats: PacketStats {
                packets: 1,
                accounted: 1,
                bytes,
                ..Default::default()
            },
            kernel: KernelStats {
                received: 1,
                ..Default::default()
            },
        }
    }

    #[test]
    fn samples_round_trip_and_a_torn_tail_is_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_for(&dir.path().join("bw.db"));
        assert!(path.ends_with("bw.db.pending"));
        let a = sample(60, "198.51.100.7", 500);
        let mut b = sample(120, "2001:db8::1", u64::MAX);
        b.hosts
            .push(("198.51.100.0/24".parse().unwrap(), Usage([7; CELLS])));
        append(&path, std::slice::from_ref(&a)).unwrap();
        append(&path, std::slice::from_ref(&b)).unwrap();
        let back = read(&path).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!((back[0].start, &back[0].hosts), (60, &a.hosts));
        assert_eq!((back[1].stats, back[1].kernel), (b.stats, b.kernel));
        assert_eq!(back[1].hosts, b.hosts);
        // killed while spilling a third sample: its header and half a host line
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(b"S s-1 180 60 1 1 1 0 0 0 0 1 0 0 2\nH 198.51.100.9 1 2")
            .unwrap();
        assert_eq!(read(&path).unwrap().len(), 2);
        std::fs::write(&path, "X nonsense\n").unwrap();
        assert!(read(&path).unwrap_err().to_string().contains("line 1"));
    }

    #[test]
    fn recovery_merges_into_the_store_and_removes_the_journal() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("bw.db");
        let path = path_for(&db);
        let mut store = SqliteStore::open(&db).unwrap();
        // the store already holds part of interval 60 (written before the failure)
        store.write(&sample(60, "198.51.100.7", 100)).unwrap();
        append(
            &path,
            &[
                sample(60, "198.51.100.7", 500),
                sample(120, "198.51.100.7", 7),
            ],
        )
        .unwrap();
        let done = recover(&path, &mut store).unwrap();
        assert_eq!(
            done,
            Recovered {
                written: 2,
                left: 0
            }
        );
        assert!(!path.exists());
        let q = Query {
            from: 0,
            to: 1000,
            sensor: None,
        };
        let rows = store.usage_by_host(&q).unwrap();
        assert_eq!(rows[0].1 .0[0], 607);
        assert_eq!(rows[0].1 .0[1], 3);
        assert_eq!(recover(&path, &mut store).unwrap(), Recovered::default());
    }
}
