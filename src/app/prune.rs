//! `prune`: applies the retention of every level now, in the same small batches as `run` does
//! between flushes (for stores that `run` does not write, or after lowering a retention).

use super::AppError;
use crate::config::Config;
use crate::rollup::Level;
use crate::store::sqlite::SqliteStore;
use crate::store::Store;
use std::fmt;

/// Rows per call of [`Store::prune`]: each call is a few short transactions.
const ROWS_PER_CALL: usize = 20_000;

/// What a prune did.
#[derive(Debug, Clone, Default)]
pub struct PruneSummary {
    pub rows: usize,
    /// What each level still holds from (`None`: kept forever).
    pub kept_since: Vec<(Level, Option<i64>)>,
}

impl fmt::Display for PruneSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rows deleted     {}", self.rows)?;
        for (level, since) in &self.kept_since {
            let since = since
                .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
                .map_or_else(
                    || "all kept".to_owned(),
                    |t| format!("kept from {}", t.to_rfc3339()),
                );
            write!(f, "\n{:<16} {since}", level.name())?;
        }
        Ok(())
    }
}

/// Prunes the configured store as of `now` (Unix seconds).
pub fn prune(cfg: &Config, now: i64) -> Result<PruneSummary, AppError> {
    let mut store = SqliteStore::open(&cfg.storage.sqlite)?;
    let mut summary = PruneSummary::default();
    loop {
        let n = store.prune(&cfg.storage.retention, now, ROWS_PER_CALL)?;
        summary.rows += n;
        if n < ROWS_PER_CALL {
            break;
        }
    }
    for level in Level::ALL {
        summary.kept_since.push((level, store.kept_since(level)?));
    }
    Ok(summary)
}
