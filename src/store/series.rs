//! Time series over a set of hosts: the query (which hosts, range, step) and its answer, summed
//! per time bucket. Stores fill it; graphs and the API read it. No drawing, no I/O here.

use super::{Query, StoreError};
use crate::usage::Usage;
use ipnet::IpNet;

/// At most this many stored hosts may fall inside one selection: a graph of a customer or a few
/// networks, never a scan of the whole store.
pub const MAX_SELECTED_HOSTS: usize = 4096;

/// At most this many buckets in one series.
pub const MAX_POINTS: i64 = 10_000;

/// One time series request: the hosts inside any of `nets` (an address is a /32 or /128), summed.
#[derive(Debug, Clone)]
pub struct SeriesQuery {
    pub range: Query,
    /// Bucket width in seconds; bucket `k` starts at `range.from + k * step`.
    pub step: i64,
    pub nets: Vec<IpNet>,
}

/// Usage per bucket. Buckets without samples are absent from `points`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    pub from: i64,
    pub to: i64,
    pub step: i64,
    /// (bucket start, usage summed over the bucket), in time order.
    pub points: Vec<(i64, Usage)>,
    /// The longest sample interval met (0 if none): a step shorter than that would show a
    /// sample's bytes in one bucket and nothing in the next.
    pub interval_s: i64,
}

impl SeriesQuery {
    /// The step, raised so the series has at most [`MAX_POINTS`] buckets.
    pub fn bounded_step(&self) -> i64 {
        let span = (self.range.to - self.range.from).max(1);
        self.step.max(1).max((span + MAX_POINTS - 1) / MAX_POINTS)
    }

    /// The answer with no point yet, in buckets of [`SeriesQuery::bounded_step`].
    pub fn empty_series(&self) -> Series {
        Series {
            from: self.range.from,
            to: self.range.to,
            step: self.bounded_step(),
            points: Vec::new(),
            interval_s: 0,
        }
    }
}

/// The stored hosts a selection found, refused past [`MAX_SELECTED_HOSTS`].
pub fn capped_selection(ids: Vec<i64>) -> Result<Vec<i64>, StoreError> {
    if ids.len() > MAX_SELECTED_HOSTS {
        return Err(StoreError::SelectionTooLarge {
            hosts: ids.len(),
            max: MAX_SELECTED_HOSTS,
        });
    }
    Ok(ids)
}

impl Series {
    /// The same series in buckets of a multiple of the current step that is at least
    /// `min_step` (the samples' interval), summing the merged buckets.
    pub fn coarsen(self, min_step: i64) -> Series {
        if min_step <= self.step || self.step <= 0 {
            return self;
        }
        let step = self.step * ((min_step + self.step - 1) / self.step);
        let mut points: Vec<(i64, Usage)> = Vec::new();
        for (t, u) in self.points {
            let b = self.from + (t - self.from).div_euclid(step) * step;
            match points.last_mut() {
                Some((last, acc)) if *last == b => acc.merge(&u),
                _ => points.push((b, u)),
            }
        }
        Series {
            step,
            points,
            ..self
        }
    }

    /// Every bucket of the range in order, with zero usage where nothing was stored.
    pub fn dense(&self) -> Vec<(i64, Usage)> {
        let n = ((self.to - self.from + self.step - 1) / self.step.max(1)).max(0) as usize;
        let mut out: Vec<(i64, Usage)> = (0..n)
            .map(|k| (self.from + k as i64 * self.step, Usage::default()))
            .collect();
        for (t, u) in &self.points {
            let k = (t - self.from).div_euclid(self.step.max(1));
            if let Some(slot) = usize::try_from(k).ok().and_then(|k| out.get_mut(k)) {
                slot.1.merge(u);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::Class;
    use crate::parse::Proto;
    use crate::usage::Dir;

    fn u(v: u64) -> Usage {
        let mut u = Usage::default();
        u.set(Dir::Tx, Class::Proto(Proto::Tcp), false, v);
        u
    }

    #[test]
    fn coarsen_merges_buckets_and_dense_fills_gaps() {
        let s = Series {
            from: 1000,
            to: 1600,
            step: 60,
            points: vec![(1000, u(1)), (1060, u(2)), (1300, u(4))],
            interval_s: 300,
        };
        let c = s.clone().coarsen(300);
        assert_eq!(c.step, 300);
        assert_eq!(c.points, vec![(1000, u(3)), (1300, u(4))]);
        let d = c.dense();
        assert_eq!(d.len(), 2);
        let d = s.dense();
        assert_eq!(d.len(), 10);
        assert_eq!(d[5], (1300, u(4)));
        assert_eq!(d[9], (1540, Usage::default()));
    }

    #[test]
    fn steps_are_bounded() {
        let q = SeriesQuery {
            range: Query {
                from: 0,
                to: 366 * 86_400,
                sensor: None,
            },
            step: 1,
            nets: vec![],
        };
        assert!((366 * 86_400) / q.bounded_step() <= MAX_POINTS);
    }
}
