//! `import-cdf`: BandwidthD's CDF logs into the store. Each line becomes the interval that ends
//! at its time; lines of the same time make one sample. BandwidthD writes the same traffic to
//! four series (log.1: 200 s, log.2: 600 s, log.3: 1 hour, log.4: 12 hours), so where a finer
//! series covers a time the coarser ones are skipped there. One transaction per file, recorded
//! by content digest: importing a file twice does not count it twice.

use super::AppError;
use crate::cdf::{Record, Shape};
use crate::config::Config;
use crate::store::sqlite::SqliteStore;
use crate::store::{Sample, Store};
use crate::usage::{Host, Usage};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

/// What to import and how.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Seconds per line for files not named `log.N.M.cdf`.
    pub interval: Option<u32>,
    /// Sensor name to store under (default: the configured one).
    pub sensor: Option<String>,
    /// Skip unreadable lines instead of stopping at the first.
    pub skip_bad_lines: bool,
    /// Import files whose content was imported before.
    pub force: bool,
}

/// What an import did.
#[derive(Debug, Clone, Default)]
pub struct ImportSummary {
    pub files: usize,
    pub files_seen_before: Vec<String>,
    pub lines: usize,
    pub imported: usize,
    /// Lines of a coarser series whose interval a finer series covers.
    pub covered: usize,
    /// BandwidthD's all-hosts line (address 0.0.0.0).
    pub totals_lines: usize,
    /// Upstream lines with the missing comma, split unambiguously / by the closest fit.
    pub joined_exact: usize,
    pub joined_guessed: usize,
    pub bad_lines: usize,
    /// The first few unreadable lines, `file:line: reason`.
    pub bad_examples: Vec<String>,
    pub first: Option<i64>,
    pub last: Option<i64>,
    pub bytes: u64,
}

impl fmt::Display for ImportSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let time = |t: Option<i64>| {
            t.and_then(|t| chrono::DateTime::from_timestamp(t, 0))
                .map_or_else(|| "-".to_owned(), |t| t.to_rfc3339())
        };
        writeln!(f, "files            {}", self.files)?;
        writeln!(f, "lines            {}", self.lines)?;
        writeln!(f, "imported         {}", self.imported)?;
        writeln!(f, "covered by finer {}", self.covered)?;
        writeln!(f, "totals lines     {}", self.totals_lines)?;
        writeln!(f, "joined, exact    {}", self.joined_exact)?;
        writeln!(f, "joined, guessed  {}", self.joined_guessed)?;
        writeln!(f, "bad lines        {}", self.bad_lines)?;
        writeln!(f, "bytes            {}", self.bytes)?;
        writeln!(f, "from             {}", time(self.first))?;
        write!(f, "to               {}", time(self.last))?;
        for name in &self.files_seen_before {
            write!(
                f,
                "\nimported before  {name} (skipped; --force imports it again)"
            )?;
        }
        for e in &self.bad_examples {
            write!(f, "\nbad line         {e}")?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not named log.N.M.cdf (N = 1 to 4), so its interval is unknown: give --interval SECONDS")]
    Interval { path: String },
    #[error("{path}:{line}: {reason} (--skip-bad-lines skips such lines); nothing was imported")]
    Line {
        path: String,
        line: usize,
        reason: crate::cdf::CdfError,
    },
}

/// BandwidthD's interval for `log.N.M.cdf`.
fn series_interval(path: &Path) -> Option<u32> {
    let name = path.file_name()?.to_str()?;
    let mut parts = name.split('.');
    let (Some("log"), Some(tag), Some(_), Some("cdf"), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    match tag {
        "1" => Some(200),
        "2" => Some(600),
        "3" => Some(3600),
        "4" => Some(43_200),
        _ => None,
    }
}

/// FNV-1a over the content: stable across versions, enough to recognise a file seen before.
fn digest(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("fnv1a64:{h:016x}:{}", bytes.len())
}

/// One file, read.
struct File {
    path: String,
    digest: String,
    interval: u32,
    /// Lines by time.
    lines: BTreeMap<i64, Vec<Record>>,
}

impl File {
    fn span(&self) -> Option<(i64, i64)> {
        let first = *self.lines.keys().next()?;
        let last = *self.lines.keys().next_back()?;
        Some((first - i64::from(self.interval), last))
    }
}

fn read(path: &Path, opts: &ImportOptions, sum: &mut ImportSummary) -> Result<File, ImportError> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| ImportError::Read {
        path: name.clone(),
        source,
    })?;
    let interval = series_interval(path)
        .or(opts.interval)
        .ok_or_else(|| ImportError::Interval { path: name.clone() })?;
    let mut lines: BTreeMap<i64, Vec<Record>> = BTreeMap::new();
    for (i, line) in String::from_utf8_lossy(&bytes).lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        sum.lines += 1;
        let (rec, shape) = match Record::parse(line) {
            Ok(r) => r,
            Err(reason) if opts.skip_bad_lines => {
                sum.bad_lines += 1;
                if sum.bad_examples.len() < 5 {
                    sum.bad_examples.push(format!("{name}:{}: {reason}", i + 1));
                }
                continue;
            }
            Err(reason) => {
                return Err(ImportError::Line {
                    path: name,
                    line: i + 1,
                    reason,
                })
            }
        };
        match shape {
            Shape::Joined { exact: true } => sum.joined_exact += 1,
            Shape::Joined { exact: false } => sum.joined_guessed += 1,
            Shape::Fixed | Shape::NoMail => {}
        }
        if matches!(rec.host, Host::Addr(a) if a.is_unspecified()) {
            sum.totals_lines += 1;
            continue;
        }
        lines.entry(rec.time).or_default().push(rec);
    }
    Ok(File {
        path: name,
        digest: digest(&bytes),
        interval,
        lines,
    })
}

/// Imports `files` into the configured store.
pub fn import_cdf(
    cfg: &Config,
    files: &[PathBuf],
    opts: &ImportOptions,
) -> Result<ImportSummary, AppError> {
    let mut sum = ImportSummary {
        files: files.len(),
        ..Default::default()
    };
    // Read everything first: a bad file stops the import before anything is written.
    let mut read_files = Vec::with_capacity(files.len());
    for f in files {
        read_files.push(read(f, opts, &mut sum)?);
    }
    let mut store = SqliteStore::open(&cfg.storage.sqlite)?;
    if !opts.force {
        let mut fresh = Vec::new();
        for f in read_files {
            if store.imported(&f.digest)? {
                sum.files_seen_before.push(f.path);
            } else {
                fresh.push(f);
            }
        }
        read_files = fresh;
    }
    // Finest series first; a coarser line is kept only outside what finer series cover.
    read_files.sort_by_key(|f| f.interval);
    let mut covered: Vec<(u32, i64, i64)> = Vec::new();
    let sensor = opts.sensor.clone().unwrap_or_else(|| cfg.sensor.clone());
    for f in &read_files {
        let interval = i64::from(f.interval);
        let mut samples = Vec::new();
        for (&time, recs) in &f.lines {
            let (start, end) = (time - interval, time);
            if covered
                .iter()
                .any(|&(iv, from, to)| iv < f.interval && start < to && end > from)
            {
                sum.covered += recs.len();
                continue;
            }
            let mut hosts: HashMap<Host, Usage> = HashMap::new();
            for r in recs {
                let u = r.usage();
                sum.bytes = sum.bytes.saturating_add(u.total());
                hosts.entry(r.host).or_default().merge(&u);
            }
            sum.imported += recs.len();
            sum.first = Some(sum.first.map_or(start, |t| t.min(start)));
            sum.last = Some(sum.last.map_or(end, |t| t.max(end)));
            samples.push(Sample {
                sensor: sensor.clone(),
                start,
                interval_s: f.interval,
                hosts: hosts.into_iter().collect(),
                ..Default::default()
            });
        }
        if opts.force {
            // a forced import is recorded under a digest of its own
            let stamp = format!(
                "{}:forced:{}",
                f.digest,
                chrono::Utc::now().timestamp_micros()
            );
            store.import(&stamp, &f.path, &samples)?;
        } else if !store.import(&f.digest, &f.path, &samples)? {
            sum.files_seen_before.push(f.path.clone());
        }
        if let Some((from, to)) = f.span() {
            covered.push((f.interval, from, to));
        }
        tracing::info!(file = %f.path, samples = samples.len(), "imported");
    }
    // everything before the hour being captured, if `run` is writing it
    let now = chrono::Utc::now().timestamp();
    store.roll_up(now - now.rem_euclid(3600), usize::MAX)?;
    Ok(sum)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_are_known_by_name() {
        assert_eq!(
            series_interval(Path::new("/var/log/bandwidthd/log.1.0.cdf")),
            Some(200)
        );
        assert_eq!(series_interval(Path::new("log.4.5.cdf")), Some(43_200));
        assert_eq!(series_interval(Path::new("log.5.0.cdf")), None);
        assert_eq!(series_interval(Path::new("traffic.cdf")), None);
        assert_ne!(digest(b"a"), digest(b"b"));
        assert_eq!(digest(b""), "fnv1a64:cbf29ce484222325:0");
    }
}
