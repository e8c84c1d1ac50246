//! Report periods: `--day`, `--month`, `--from/--to` (RFC 3339 or a date), default yesterday;
//! always a half-open UTC range [from, to).

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
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

fn midnight(d: NaiveDate) -> DateTime<Utc> {
    Utc.from_utc_datetime(&d.and_time(NaiveTime::MIN))
}

/// A day as a period.
pub fn day(d: NaiveDate) -> Period {
    let from = midnight(d);
    Period {
        from,
        to: from + Duration::days(1),
    }
}

/// Parses a date (`YYYY-MM-DD`).
pub fn parse_date(s: &str) -> Result<NaiveDate, PeriodError> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|_| PeriodError::Day(s.to_owned()))
}

/// Parses an RFC 3339 time or a date (its midnight, UTC).
pub fn parse_time(s: &str) -> Result<DateTime<Utc>, PeriodError> {
    let t = s.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Ok(dt.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(t, "%Y-%m-%d")
        .map(midnight)
        .map_err(|_| PeriodError::Time(s.to_owned()))
}

/// The month holding `d`.
pub fn month_of(d: NaiveDate) -> Period {
    let first = d.with_day(1).unwrap_or(d);
    let next = if first.month() == 12 {
        NaiveDate::from_ymd_opt(first.year() + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(first.year(), first.month() + 1, 1)
    }
    .unwrap_or(first);
    Period {
        from: midnight(first),
        to: midnight(next),
    }
}

impl PeriodArgs {
    /// The period asked for, relative to `now` for the default (yesterday).
    pub fn resolve(&self, now: DateTime<Utc>) -> Result<Period, PeriodError> {
        let given = [
            self.day.is_some(),
            self.month.is_some(),
            self.from.is_some() || self.to.is_some(),
        ];
        if given.iter().filter(|g| **g).count() > 1 {
            return Err(PeriodError::Ambiguous);
        }
        if let Some(d) = &self.day {
            return Ok(day(parse_date(d)?));
        }
        if let Some(m) = &self.month {
            let d = NaiveDate::parse_from_str(&format!("{}-01", m.trim()), "%Y-%m-%d")
                .map_err(|_| PeriodError::Month(m.clone()))?;
            return Ok(month_of(d));
        }
        match (&self.from, &self.to) {
            (Some(f), Some(t)) => {
                let (from, to) = (parse_time(f)?, parse_time(t)?);
                if to <= from {
                    return Err(PeriodError::Empty {
                        from: from.to_rfc3339(),
                        to: to.to_rfc3339(),
                    });
                }
                Ok(Period { from, to })
            }
            (None, None) => Ok(day(now.date_naive() - Duration::days(1))),
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
}
