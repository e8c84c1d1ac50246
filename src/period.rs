//! Report periods: `--day`, `--month`, `--from/--to` (RFC 3339 or a date), default yesterday;
//! always a half-open range [from, to) of instants. Days and months start at midnight in the
//! period's time zone (UTC unless configured), so a day may last 23 or 25 hours.

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// The zone whose midnights bound days and months, and in which times are shown.
    pub zone: Tz,
}

impl Period {
    /// The first day of the period, in its zone (for file names: `report-2026-11-24.html`).
    pub fn first_day(&self) -> NaiveDate {
        self.from.with_timezone(&self.zone).date_naive()
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PeriodError {
    #[error("{0:?} is not a date (YYYY-MM-DD)")]
    Day(String),
    #[error("{0:?} is not a month (YYYY-MM)")]
    Month(String),
    #[error("{0:?} is not a time (RFC 3339, e.g. 2026-11-24T06:00:00Z, or a date YYYY-MM-DD)")]
    Time(String),
    #[error("--from and --to go together")]
    HalfRange,
    #[error("the period is empty: --to ({to}) is not after --from ({from})")]
    Empty { from: String, to: String },
    #[error("give one of --day, --month or --from/--to")]
    Ambiguous,
}

/// What the command line asked for.
#[derive(Debug, Clone, Default)]
pub struct PeriodArgs {
    pub day: Option<String>,
    pub month: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// The first instant of day `d` in `zone`: midnight, or the end of the gap when a daylight
/// saving change skips midnight.
fn midnight(d: NaiveDate, zone: Tz) -> DateTime<Utc> {
    let mut local = d.and_time(NaiveTime::MIN);
    // Gaps are at most a few hours; step through them a quarter of an hour at a time.
    for _ in 0..24 {
        match zone.from_local_datetime(&local) {
            LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => return t.with_timezone(&Utc),
            LocalResult::None => local += Duration::minutes(15),
        }
    }
    Utc.from_utc_datetime(&d.and_time(NaiveTime::MIN))
}

/// A day as a period (UTC).
pub fn day(d: NaiveDate) -> Period {
    day_in(d, Tz::UTC)
}

/// A day in a time zone, midnight to midnight.
pub fn day_in(d: NaiveDate, zone: Tz) -> Period {
    let next = d.succ_opt().unwrap_or(d);
    Period {
        from: midnight(d, zone),
        to: midnight(next, zone),
        zone,
    }
}

/// Parses a date (`YYYY-MM-DD`).
pub fn parse_date(s: &str) -> Result<NaiveDate, PeriodError> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|_| PeriodError::Day(s.to_owned()))
}

/// Parses an RFC 3339 time or a date (its midnight, UTC).
pub fn parse_time(s: &str) -> Result<DateTime<Utc>, PeriodError> {
    parse_time_in(s, Tz::UTC)
}

/// Parses an RFC 3339 time (its own offset) or a date (its midnight in `zone`).
pub fn parse_time_in(s: &str, zone: Tz) -> Result<DateTime<Utc>, PeriodError> {
    let t = s.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Ok(dt.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(t, "%Y-%m-%d")
        .map(|d| midnight(d, zone))
        .map_err(|_| PeriodError::Time(s.to_owned()))
}

/// The month holding `d` (UTC).
pub fn month_of(d: NaiveDate) -> Period {
    month_in(d, Tz::UTC)
}

/// The month holding `d`, in a time zone.
pub fn month_in(d: NaiveDate, zone: Tz) -> Period {
    let first = d.with_day(1).unwrap_or(d);
    let next = if first.month() == 12 {
        NaiveDate::from_ymd_opt(first.year() + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(first.year(), first.month() + 1, 1)
    }
    .unwrap_or(first);
    Period {
        from: midnight(first, zone),
        to: midnight(next, zone),
        zone,
    }
}

impl PeriodArgs {
    /// The period asked for, relative to `now` for the default (yesterday), in UTC.
    pub fn resolve(&self, now: DateTime<Utc>) -> Result<Period, PeriodError> {
        self.resolve_in(now, Tz::UTC)
    }

    /// The period asked for, with days and months in `zone`; the default is yesterday there.
    pub fn resolve_in(&self, now: DateTime<Utc>, zone: Tz) -> Result<Period, PeriodError> {
        let given = [
            self.day.is_some(),
            self.month.is_some(),
            self.from.is_some() || self.to.is_some(),
        ];
        if given.iter().filter(|g| **g).count() > 1 {
            return Err(PeriodError::Ambiguous);
        }
        if let Some(d) = &self.day {
            return Ok(day_in(parse_date(d)?, zone));
        }
        if let Some(m) = &self.month {
            let d = NaiveDate::parse_from_str(&format!("{}-01", m.trim()), "%Y-%m-%d")
                .map_err(|_| PeriodError::Month(m.clone()))?;
            return Ok(month_in(d, zone));
        }
        match (&self.from, &self.to) {
            (Some(f), Some(t)) => {
                let (from, to) = (parse_time_in(f, zone)?, parse_time_in(t, zone)?);
                if to <= from {
                    return Err(PeriodError::Empty {
                        from: from.to_rfc3339(),
                        to: to.to_rfc3339(),
                    });
                }
                Ok(Period { from, to, zone })
            }
            (None, None) => Ok(day_in(
                now.with_timezone(&zone).date_naive() - Duration::days(1),
                zone,
            )),
            _ => Err(PeriodError::HalfRange),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(
        day: Option<&str>,
        month: Option<&str>,
        from: Option<&str>,
        to: Option<&str>,
    ) -> PeriodArgs {
        PeriodArgs {
            day: day.map(str::to_owned),
            month: month.map(str::to_owned),
            from: from.map(str::to_owned),
            to: to.map(str::to_owned),
        }
    }

    #[test]
    fn periods() {
        let now = parse_time("2026-11-25T10:00:00Z").unwrap();
        let p = args(None, None, None, None).resolve(now).unwrap();
        assert_eq!(p.from.to_rfc3339(), "2026-11-24T00:00:00+00:00");
        assert_eq!(p.to.to_rfc3339(), "2026-11-25T00:00:00+00:00");
        let p = args(None, Some("2026-12"), None, None)
            .resolve(now)
            .unwrap();
        assert_eq!(p.to.to_rfc3339(), "2027-01-01T00:00:00+00:00");
        let p = args(
            None,
            None,
            Some("2026-11-01"),
            Some("2026-11-02T06:00:00+01:00"),
        )
        .resolve(now)
        .unwrap();
        assert_eq!(p.to.to_rfc3339(), "2026-11-02T05:00:00+00:00");
        assert_eq!(
            args(None, None, Some("2026-11-02"), None).resolve(now),
            Err(PeriodError::HalfRange)
        );
        assert!(matches!(
            args(None, None, Some("2026-11-02"), Some("2026-11-01")).resolve(now),
            Err(PeriodError::Empty { .. })
        ));
        assert_eq!(
            args(Some("x"), None, None, None).resolve(now),
            Err(PeriodError::Day("x".into()))
        );
        assert_eq!(
            args(Some("2026-11-01"), Some("2026-11"), None, None).resolve(now),
            Err(PeriodError::Ambiguous)
        );
    }

    #[test]
    fn days_and_months_start_at_local_midnight() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let now = parse_time("2026-11-25T00:30:00Z").unwrap();
        // 01:30 in Berlin: yesterday there is the 24th, which began at 23:00Z on the 23rd
        let p = args(None, None, None, None)
            .resolve_in(now, berlin)
            .unwrap();
        assert_eq!(p.from.to_rfc3339(), "2026-11-23T23:00:00+00:00");
        assert_eq!(p.to.to_rfc3339(), "2026-11-24T23:00:00+00:00");
        assert_eq!(p.first_day().to_string(), "2026-11-24");
        // the day daylight saving ends lasts 25 hours, the day it starts 23
        let p = args(Some("2026-10-25"), None, None, None)
            .resolve_in(now, berlin)
            .unwrap();
        assert_eq!((p.to - p.from).num_hours(), 25);
        let p = args(Some("2026-03-29"), None, None, None)
            .resolve_in(now, berlin)
            .unwrap();
        assert_eq!((p.to - p.from).num_hours(), 23);
        let p = args(None, Some("2026-10"), None, None)
            .resolve_in(now, berlin)
            .unwrap();
        assert_eq!(p.from.to_rfc3339(), "2026-09-30T22:00:00+00:00");
        assert_eq!(p.to.to_rfc3339(), "2026-10-31T23:00:00+00:00");
        // dates in --from/--to are local midnights, RFC 3339 times keep their offset
        let p = args(None, None, Some("2026-11-01"), Some("2026-11-02T06:00:00Z"))
            .resolve_in(now, berlin)
            .unwrap();
        assert_eq!(p.from.to_rfc3339(), "2026-10-31T23:00:00+00:00");
        assert_eq!(p.to.to_rfc3339(), "2026-11-02T06:00:00+00:00");
        // Sao Paulo skipped midnight on 2018-11-04: the day starts at 01:00 local
        let sp: Tz = "America/Sao_Paulo".parse().unwrap();
        let p = day_in(NaiveDate::from_ymd_opt(2018, 11, 4).unwrap(), sp);
        assert_eq!(p.from.to_rfc3339(), "2018-11-04T03:00:00+00:00");
        assert_eq!((p.to - p.from).num_hours(), 23);
    }
}
