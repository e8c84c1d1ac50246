//! `[storage.retention]`: how many days each rollup level is kept (0: forever), a coarser level
//! at least as long as a finer one.

use super::raw::RawRetention;
use super::{VResult, Validator};
use crate::rollup::{Level, Retention};
use toml::Spanned;

/// `35 days`, or `forever` for 0.
pub fn shown(days: u32) -> String {
    match days {
        0 => "forever".to_owned(),
        d => format!("{d} days"),
    }
}

/// Longest retention accepted: a century.
const MAX_DAYS: i64 = 36_525;

impl Validator<'_> {
    pub(super) fn retention(&self, raw: RawRetention) -> VResult<Retention> {
        let d = Retention::default();
        let r = Retention {
            samples_days: self.int(&raw.samples_days, d.samples_days.into(), 0, MAX_DAYS)? as u32,
            hourly_days: self.int(&raw.hourly_days, d.hourly_days.into(), 0, MAX_DAYS)? as u32,
            daily_days: self.int(&raw.daily_days, d.daily_days.into(), 0, MAX_DAYS)? as u32,
            monthly_days: self.int(&raw.monthly_days, d.monthly_days.into(), 0, MAX_DAYS)? as u32,
        };
        // 0 keeps a level forever: longer than any number of days
        let keep = |days: u32| if days == 0 { u64::MAX } else { u64::from(days) };
        let spans: [(Level, &Option<Spanned<i64>>); 4] = [
            (Level::Samples, &raw.samples_days),
            (Level::Hourly, &raw.hourly_days),
            (Level::Daily, &raw.daily_days),
            (Level::Monthly, &raw.monthly_days),
        ];
        for pair in spans.windows(2) {
            let [(finer, fs), (coarser, cs)] = pair else {
                continue;
            };
            if keep(r.days(*coarser)) < keep(r.days(*finer)) {
                let span = cs.as_ref().or(fs.as_ref()).map(Spanned::span);
                return Err(self.src.error(
                    span,
                    format!(
                        "{} rollups would be kept {}, less than {} ({}): a coarser level must be kept at least as long, or reports lose what a finer level still has",
                        coarser.name(),
                        shown(r.days(*coarser)),
                        finer.name(),
                        shown(r.days(*finer))
                    ),
                ));
            }
        }
        Ok(r)
    }
}
