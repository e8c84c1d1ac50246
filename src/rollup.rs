//! Rollup levels (per-interval samples, hourly, daily, monthly: UTC buckets, months by the
//! calendar), the plan that answers a time range from the coarsest levels that answer it
//! exactly, and the retention per level. Pure arithmetic on Unix seconds: the stores keep the
//! tables, this module does no I/O.
//!
//! A rollup level holds exactly the samples that start before its watermark: a periodic job
//! sums whole buckets of the finer level and moves the watermark past them, and a sample
//! written later below a watermark is added to that level in the same transaction. So every
//! level below its watermark sums to the samples, bucket by bucket, and the plan reads a level
//! only there.

use chrono::{DateTime, Datelike, Months, NaiveDate};

/// Seconds in an hour bucket.
pub const HOUR: i64 = 3600;
/// Seconds in a (UTC) day bucket.
pub const DAY: i64 = 86_400;

/// Where usage is kept: every flushed interval, or summed per UTC hour, UTC day or UTC calendar
/// month. A row of a level holds everything whose interval *starts* in its bucket, so a range
/// whose ends fall on bucket boundaries sums to the same totals at every level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Level {
    Samples,
    Hourly,
    Daily,
    Monthly,
}

impl Level {
    /// Finest first.
    pub const ALL: [Level; 4] = [Level::Samples, Level::Hourly, Level::Daily, Level::Monthly];

    /// Width of a bucket in seconds when all its buckets have one; samples have no bucket of
    /// their own and calendar months no fixed width ([`Level::floor`], [`Level::next`]).
    pub fn bucket(self) -> Option<i64> {
        match self {
            Level::Samples | Level::Monthly => None,
            Level::Hourly => Some(HOUR),
            Level::Daily => Some(DAY),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Level::Samples => "samples",
            Level::Hourly => "hourly",
            Level::Daily => "daily",
            Level::Monthly => "monthly",
        }
    }

    /// The next finer level (samples have none).
    pub fn finer(self) -> Option<Level> {
        match self {
            Level::Samples => None,
            Level::Hourly => Some(Level::Samples),
            Level::Daily => Some(Level::Hourly),
            Level::Monthly => Some(Level::Daily),
        }
    }

    /// The next coarser level (monthly has none).
    pub fn coarser(self) -> Option<Level> {
        match self {
            Level::Samples => Some(Level::Hourly),
            Level::Hourly => Some(Level::Daily),
            Level::Daily => Some(Level::Monthly),
            Level::Monthly => None,
        }
    }

    /// The start of the bucket holding `ts` (samples: `ts` itself).
    pub fn floor(self, ts: i64) -> i64 {
        match self {
            Level::Monthly => month_floor(ts),
            _ => self.bucket().map_or(ts, |w| floor(ts, w)),
        }
    }

    /// The first bucket boundary at or after `ts` (samples: `ts` itself).
    pub fn ceil(self, ts: i64) -> i64 {
        let f = self.floor(ts);
        if f == ts {
            ts
        } else {
            self.next(f)
        }
    }

    /// The start of the bucket after the one holding `ts` (samples: `ts` itself).
    pub fn next(self, ts: i64) -> i64 {
        match self {
            Level::Samples => ts,
            Level::Monthly => month_next(ts),
            _ => self.bucket().map_or(ts, |w| floor(ts, w).saturating_add(w)),
        }
    }

    /// The coarsest level each of whose buckets lies inside one bucket of a series of
    /// `step`-second buckets starting at `origin` (its width divides `step` and `origin` is on
    /// its boundaries): a series, or clock-aligned buckets (`origin` 0), read from that level
    /// and the finer ones ([`plan_up_to`]) sum to the same numbers as from the samples alone.
    pub fn coarsest_within(origin: i64, step: i64) -> Level {
        [Level::Daily, Level::Hourly]
            .into_iter()
            .find(|l| {
                l.bucket()
                    .is_some_and(|w| step > 0 && step % w == 0 && origin.rem_euclid(w) == 0)
            })
            .unwrap_or(Level::Samples)
    }
}

fn floor(ts: i64, width: i64) -> i64 {
    ts - ts.rem_euclid(width)
}

/// The first day of the month holding `ts` (none beyond the calendar's range).
fn month_start(ts: i64) -> Option<NaiveDate> {
    let day = DateTime::from_timestamp(ts, 0)?.date_naive();
    NaiveDate::from_ymd_opt(day.year(), day.month(), 1)
}

fn midnight(day: NaiveDate) -> i64 {
    day.and_time(chrono::NaiveTime::MIN).and_utc().timestamp()
}

/// 00:00 UTC on the first of the month holding `ts` (beyond the calendar: `ts`).
fn month_floor(ts: i64) -> i64 {
    month_start(ts).map_or(ts, midnight)
}

/// 00:00 UTC on the first of the month after the one holding `ts` (beyond the calendar: the
/// end of time, so that no bucket is made up there).
fn month_next(ts: i64) -> i64 {
    month_start(ts)
        .and_then(|d| d.checked_add_months(Months::new(1)))
        .map_or(i64::MAX, midnight)
}

/// One part of a range and the level that answers it: `[from, to)`, both on `level`'s bucket
/// boundaries (any second for samples).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    pub level: Level,
    pub from: i64,
    pub to: i64,
}

/// Up to where each rollup level holds every sample (exclusive; `None`: it holds nothing).
/// Aligned on the level's buckets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Watermarks {
    pub hourly: Option<i64>,
    pub daily: Option<i64>,
    pub monthly: Option<i64>,
}

impl Watermarks {
    /// Levels that hold everything (a plan that may read any level anywhere).
    pub const ALL: Watermarks = Watermarks {
        hourly: Some(i64::MAX),
        daily: Some(i64::MAX),
        monthly: Some(i64::MAX),
    };

    /// Where `level` answers up to (samples: everywhere).
    pub fn of(&self, level: Level) -> Option<i64> {
        match level {
            Level::Samples => Some(i64::MAX),
            Level::Hourly => self.hourly,
            Level::Daily => self.daily,
            Level::Monthly => self.monthly,
        }
    }

    /// Records where `level` answers up to, by the name it is stored under (others ignored).
    pub fn set(&mut self, level: &str, upto: Option<i64>) {
        match level {
            l if l == Level::Hourly.name() => self.hourly = upto,
            l if l == Level::Daily.name() => self.daily = upto,
            l if l == Level::Monthly.name() => self.monthly = upto,
            _ => {}
        }
    }
}

/// Splits `[from, to)` into at most nine pieces, each answered exactly by the coarsest level
/// whose buckets it spans and that holds it (below its watermark): whole UTC months from
/// `monthly`, whole UTC days from `daily`, whole hours from `hourly`, the rest from samples.
/// In time order.
pub fn plan(from: i64, to: i64, marks: &Watermarks) -> Vec<Piece> {
    plan_up_to(from, to, Level::Monthly, marks)
}

/// Rows per address that reading `pieces` takes at most (samples counted as one a minute):
/// what two plans are compared by.
fn rows(pieces: &[Piece]) -> i64 {
    pieces
        .iter()
        .map(|p| {
            let span = p.to.saturating_sub(p.from);
            match p.level {
                Level::Samples => span / 60 + 1,
                Level::Monthly => span / (28 * DAY) + 1,
                l => span / l.bucket().unwrap_or(1),
            }
        })
        .sum()
}

/// A range as whole months less what lies outside it, when that reads fewer rows than
/// [`plan`]: `(add, take_away)`, the pieces of the range stretched to the start or end of its
/// months, and those of the stretches. A month in a zone other than UTC (Europe/Berlin: 23:00
/// to 23:00 UTC) is then its UTC month and the hour before it less the hour at its end,
/// instead of 30 days and 24 hours. `None`: the plain plan reads as few rows.
pub fn plan_less_edges(from: i64, to: i64, marks: &Watermarks) -> Option<(Vec<Piece>, Vec<Piece>)> {
    if from >= to {
        return None;
    }
    let mut best = rows(&plan(from, to, marks));
    let mut out = None;
    let (wide_from, wide_to) = (Level::Monthly.floor(from), Level::Monthly.ceil(to));
    for (f, t) in [(wide_from, to), (from, wide_to), (wide_from, wide_to)] {
        if (f, t) == (from, to) || t == i64::MAX {
            continue;
        }
        let add = plan(f, t, marks);
        let mut away = plan(f, from, marks);
        away.extend(plan(to, t, marks));
        let n = rows(&add) + rows(&away);
        if n < best {
            best = n;
            out = Some((add, away));
        }
    }
    out
}

/// [`plan`] with no level coarser than `coarsest` (e.g. a graph that wants hourly points).
pub fn plan_up_to(from: i64, to: i64, coarsest: Level, marks: &Watermarks) -> Vec<Piece> {
    let mut out = Vec::new();
    split(from, to, coarsest, marks, &mut out);
    out
}

fn split(from: i64, to: i64, level: Level, marks: &Watermarks, out: &mut Vec<Piece>) {
    if from >= to {
        return;
    }
    let Some(finer) = level.finer() else {
        out.push(Piece { level, from, to });
        return;
    };
    // the level answers below its watermark only
    let mark = marks.of(level).unwrap_or(i64::MIN);
    if from >= mark {
        return split(from, to, finer, marks, out);
    }
    if to > mark {
        split(from, mark, level, marks, out);
        return split(mark, to, finer, marks, out);
    }
    let (a, b) = (level.ceil(from), level.floor(to));
    if a >= b {
        split(from, to, finer, marks, out);
    } else {
        split(from, a, finer, marks, out);
        out.push(Piece {
            level,
            from: a,
            to: b,
        });
        split(b, to, finer, marks, out);
    }
}

/// How long each level is kept, in days; 0 keeps it forever. A coarser level is kept at least
/// as long as a finer one (the configuration checks it), so the plan never reads a pruned level
/// where a finer one would still answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub samples_days: u32,
    pub hourly_days: u32,
    pub daily_days: u32,
    pub monthly_days: u32,
}

impl Default for Retention {
    /// Samples 35 days (a billing month and some), hourly 400 days, daily 10 years, monthly
    /// forever (twelve rows per host and year).
    fn default() -> Self {
        Self {
            samples_days: 35,
            hourly_days: 400,
            daily_days: 3653,
            monthly_days: 0,
        }
    }
}

impl Retention {
    pub fn days(&self, level: Level) -> u32 {
        match level {
            Level::Samples => self.samples_days,
            Level::Hourly => self.hourly_days,
            Level::Daily => self.daily_days,
            Level::Monthly => self.monthly_days,
        }
    }

    /// Rows of `level` whose bucket starts before this time are pruned (`None`: kept forever).
    /// Aligned on the next coarser bucket (samples on the hour, hourly on the UTC day, daily
    /// and monthly on the UTC month), so what a finer level lost is still answered whole by a
    /// coarser one.
    pub fn cutoff(&self, level: Level, now: i64) -> Option<i64> {
        let days = self.days(level);
        if days == 0 {
            return None;
        }
        let align = level.coarser().unwrap_or(level);
        Some(align.floor(now.saturating_sub(i64::from(days) * DAY)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_793_491_200; // 2026-11-01T00:00:00Z

    fn p(level: Level, from: i64, to: i64) -> Piece {
        Piece { level, from, to }
    }

    fn plan(from: i64, to: i64) -> Vec<Piece> {
        super::plan(from, to, &Watermarks::ALL)
    }

    #[test]
    fn whole_days_come_from_daily_and_the_edges_from_finer_levels() {
        use Level::*;
        // 2026-11-01T10:30 .. 2026-11-04T05:15
        let from = T0 + 10 * HOUR + 1800;
        let to = T0 + 3 * DAY + 5 * HOUR + 900;
        assert_eq!(
            plan(from, to),
            vec![
                p(Samples, from, T0 + 11 * HOUR),
                p(Hourly, T0 + 11 * HOUR, T0 + DAY),
                p(Daily, T0 + DAY, T0 + 3 * DAY),
                p(Hourly, T0 + 3 * DAY, T0 + 3 * DAY + 5 * HOUR),
                p(Samples, T0 + 3 * DAY + 5 * HOUR, to),
            ]
        );
        // a UTC day is one daily piece
        assert_eq!(plan(T0, T0 + DAY), vec![p(Daily, T0, T0 + DAY)]);
        // a Berlin day (23:00Z .. 23:00Z) is answered by hourly rows only
        assert_eq!(
            plan(T0 - HOUR, T0 + 23 * HOUR),
            vec![p(Hourly, T0 - HOUR, T0 + 23 * HOUR)]
        );
        // an Indian day (18:30Z .. 18:30Z): half hours from samples
        assert_eq!(
            plan(T0 - 5 * HOUR - 1800, T0 + 18 * HOUR + 1800),
            vec![
                p(Samples, T0 - 5 * HOUR - 1800, T0 - 5 * HOUR),
                p(Hourly, T0 - 5 * HOUR, T0 + 18 * HOUR),
                p(Samples, T0 + 18 * HOUR, T0 + 18 * HOUR + 1800),
            ]
        );
        assert_eq!(plan(T0 + 60, T0 + 120), vec![p(Samples, T0 + 60, T0 + 120)]);
        assert!(plan(T0, T0).is_empty());
        assert_eq!(
            plan_up_to(T0, T0 + 2 * DAY, Hourly, &Watermarks::ALL),
            vec![p(Hourly, T0, T0 + 2 * DAY)]
        );
    }

    #[test]
    fn series_buckets_read_the_coarsest_level_they_hold_whole() {
        use Level::*;
        // the graph windows: a day in 5 minutes, a week in half hours, a month in 2 hours,
        // a year in days (each window starts on its step)
        assert_eq!(Level::coarsest_within(T0, 300), Samples);
        assert_eq!(Level::coarsest_within(T0, 1800), Samples);
        assert_eq!(Level::coarsest_within(T0 - 2 * HOUR, 7200), Hourly);
        assert_eq!(Level::coarsest_within(T0, DAY), Daily);
        assert_eq!(Level::coarsest_within(T0, 7 * DAY), Daily);
        // a start off the level's boundaries, clock-aligned buckets, nonsense steps
        assert_eq!(Level::coarsest_within(T0 + HOUR, DAY), Hourly);
        assert_eq!(Level::coarsest_within(T0 + 60, DAY), Samples);
        assert_eq!(Level::coarsest_within(0, 2 * DAY), Daily);
        assert_eq!(Level::coarsest_within(-HOUR, 3 * HOUR), Hourly);
        assert_eq!(Level::coarsest_within(T0, 0), Samples);
        assert_eq!(Level::coarsest_within(T0, -DAY), Samples);
    }

    #[test]
    fn levels_answer_only_below_their_watermarks() {
        use Level::*;
        // daily holds up to day 2, hourly up to 05:00 of day 3
        let marks = Watermarks {
            hourly: Some(T0 + 2 * DAY + 5 * HOUR),
            daily: Some(T0 + 2 * DAY),
            monthly: None,
        };
        assert_eq!(
            super::plan(T0, T0 + 4 * DAY, &marks),
            vec![
                p(Daily, T0, T0 + 2 * DAY),
                p(Hourly, T0 + 2 * DAY, T0 + 2 * DAY + 5 * HOUR),
                p(Samples, T0 + 2 * DAY + 5 * HOUR, T0 + 4 * DAY),
            ]
        );
        // nothing rolled up: samples only
        assert_eq!(
            super::plan(T0, T0 + 4 * DAY, &Watermarks::default()),
            vec![p(Samples, T0, T0 + 4 * DAY)]
        );
    }

    #[test]
    fn pieces_tile_the_range() {
        let some = Watermarks {
            hourly: Some(T0 + 7 * HOUR),
            daily: Some(T0),
            monthly: Some(T0),
        };
        for marks in [Watermarks::ALL, some, Watermarks::default()] {
            for (from, to) in [
                (T0 - 7, T0 + 40 * DAY + 17),
                (-DAY - 5, DAY + 5),
                (T0 + 3599, T0 + 3601),
            ] {
                let pieces = super::plan(from, to, &marks);
                assert_eq!(pieces.first().map(|p| p.from), Some(from));
                assert_eq!(pieces.last().map(|p| p.to), Some(to));
                for w in pieces.windows(2) {
                    assert_eq!(w[0].to, w[1].from);
                }
                for piece in &pieces {
                    if piece.level != Level::Samples {
                        assert_eq!(piece.level.floor(piece.from), piece.from);
                        assert_eq!(piece.level.floor(piece.to), piece.to);
                        assert!(piece.to <= marks.of(piece.level).unwrap());
                    }
                }
            }
        }
    }

    #[test]
    fn cutoffs_align_on_the_next_coarser_bucket() {
        let r = Retention::default();
        let now = T0 + 40 * DAY + 5 * HOUR + 1234;
        assert_eq!(r.cutoff(Level::Samples, now), Some(T0 + 5 * DAY + 5 * HOUR));
        assert_eq!(
            r.cutoff(Level::Hourly, now),
            Some(T0 + 40 * DAY - 400 * DAY)
        );
        // daily on the month: 2016-12-10T05:20 is cut at 2016-12-01
        assert_eq!(r.cutoff(Level::Daily, now), Some(1_480_550_400));
        assert_eq!(r.cutoff(Level::Monthly, now), None);
        let forever = Retention { daily_days: 0, ..r };
        assert_eq!(forever.cutoff(Level::Daily, now), None);
        let months = Retention {
            monthly_days: 3653,
            ..r
        };
        assert_eq!(months.cutoff(Level::Monthly, now), Some(1_480_550_400));
    }

    const DEC: i64 = 1_796_083_200; // 2026-12-01T00:00:00Z
    const JAN: i64 = 1_798_761_600; // 2027-01-01T00:00:00Z

    #[test]
    fn a_month_in_another_zone_is_the_utc_month_less_its_edges() {
        use Level::*;
        // November in Berlin: 2026-10-31T23:00Z .. 2026-11-30T23:00Z
        let (from, to) = (T0 - HOUR, DEC - HOUR);
        assert_eq!(
            plan_less_edges(from, to, &Watermarks::ALL),
            Some((
                vec![p(Hourly, from, T0), p(Monthly, T0, DEC)],
                vec![p(Hourly, DEC - HOUR, DEC)]
            ))
        );
        // in New York: 04:00Z .. 05:00Z (daylight saving ends)
        let (from, to) = (T0 + 4 * HOUR, DEC + 5 * HOUR);
        assert_eq!(
            plan_less_edges(from, to, &Watermarks::ALL),
            Some((
                vec![p(Monthly, T0, DEC), p(Hourly, DEC, to)],
                vec![p(Hourly, T0, from)]
            ))
        );
        // near a month's end or start, days less an hour too
        assert_eq!(
            plan_less_edges(DEC - 7 * DAY, DEC - HOUR, &Watermarks::ALL),
            Some((
                vec![p(Daily, DEC - 7 * DAY, DEC)],
                vec![p(Hourly, DEC - HOUR, DEC)]
            ))
        );
        assert_eq!(
            plan_less_edges(T0 + HOUR, T0 + DAY, &Watermarks::ALL),
            Some((vec![p(Daily, T0, T0 + DAY)], vec![p(Hourly, T0, T0 + HOUR)]))
        );
        // whole UTC months, a week in the middle of one: the plain plan
        assert_eq!(plan_less_edges(T0, DEC, &Watermarks::ALL), None);
        assert_eq!(
            plan_less_edges(T0 + 7 * DAY, T0 + 14 * DAY + HOUR, &Watermarks::ALL),
            None
        );
        // no months rolled up yet: whole days less the last hour
        let days = Watermarks {
            monthly: None,
            ..Watermarks::ALL
        };
        assert_eq!(
            plan_less_edges(T0 - HOUR, DEC - HOUR, &days),
            Some((
                vec![p(Hourly, T0 - HOUR, T0), p(Daily, T0, DEC)],
                vec![p(Hourly, DEC - HOUR, DEC)]
            ))
        );
        assert_eq!(plan_less_edges(T0, T0, &Watermarks::ALL), None);
        assert_eq!(plan_less_edges(i64::MIN, i64::MAX, &Watermarks::ALL), None);
    }

    #[test]
    fn months_are_calendar_months() {
        use Level::*;
        assert_eq!(Monthly.floor(T0), T0);
        assert_eq!(Monthly.floor(DEC - 1), T0);
        assert_eq!(Monthly.next(T0), DEC);
        assert_eq!(Monthly.next(T0 + 17 * DAY + 5), DEC);
        assert_eq!(Monthly.ceil(T0 + 1), DEC);
        assert_eq!(Monthly.ceil(DEC), DEC);
        // 30 days in November, 31 in December, 29 in February 2024, and before 1970
        assert_eq!(DEC - T0, 30 * DAY);
        assert_eq!(Monthly.next(DEC), JAN);
        assert_eq!(JAN - DEC, 31 * DAY);
        let feb_2024 = 1_706_745_600;
        assert_eq!(Monthly.next(feb_2024) - feb_2024, 29 * DAY);
        assert_eq!(Monthly.floor(-1), -31 * DAY);
        assert_eq!(Monthly.next(-1), 0);
        // beyond the calendar: no bucket is made up
        assert_eq!(Monthly.floor(i64::MIN), i64::MIN);
        assert_eq!(Monthly.next(i64::MAX), i64::MAX);
        assert_eq!(Daily.next(T0 + 5), T0 + DAY);
        assert_eq!(Samples.next(T0 + 5), T0 + 5);
    }

    #[test]
    fn whole_months_come_from_monthly() {
        use Level::*;
        // 2026-10-31T22:00 .. 2027-01-02T03:00: November and December whole
        let from = T0 - 2 * HOUR;
        let to = JAN + DAY + 3 * HOUR;
        assert_eq!(
            plan(from, to),
            vec![
                p(Hourly, from, T0),
                p(Monthly, T0, JAN),
                p(Daily, JAN, JAN + DAY),
                p(Hourly, JAN + DAY, to),
            ]
        );
        // a month that ends mid-way: days, not the month
        assert_eq!(plan(T0, DEC - DAY), vec![p(Daily, T0, DEC - DAY)]);
        // November rolled into months, December only into days
        let marks = Watermarks {
            monthly: Some(DEC),
            ..Watermarks::ALL
        };
        assert_eq!(
            super::plan(T0, JAN, &marks),
            vec![p(Monthly, T0, DEC), p(Daily, DEC, JAN)]
        );
        // a month step series and a graph stop at days
        assert_eq!(Level::coarsest_within(T0, 30 * DAY), Daily);
        assert_eq!(
            plan_up_to(T0, JAN, Daily, &Watermarks::ALL),
            vec![p(Daily, T0, JAN)]
        );
    }
}
