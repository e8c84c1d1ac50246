//! Billing periods: a month that starts on the customer's billing day (UTC midnight). A billing
//! day past the end of a month means that month's last day (day 31 starts on 28 or 29 February).
//! Pure date arithmetic.

use chrono::{Datelike, NaiveDate, TimeZone, Utc};

/// A half-open range [start, end) of Unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BillingPeriod {
    pub start: i64,
    pub end: i64,
}

impl BillingPeriod {
    pub fn seconds(&self) -> i64 {
        self.end - self.start
    }
}

/// `(year, month)` shifted by `delta` months.
fn shift(year: i32, month: u32, delta: i32) -> (i32, u32) {
    let m = year * 12 + month as i32 - 1 + delta;
    (m.div_euclid(12), m.rem_euclid(12) as u32 + 1)
}

fn days_in(year: i32, month: u32) -> u32 {
    let (ny, nm) = shift(year, month, 1);
    NaiveDate::from_ymd_opt(ny, nm, 1)
        .and_then(|d| d.pred_opt())
        .map_or(28, |d| d.day())
}

/// Midnight UTC of the billing day in `(year, month)`.
fn start_in(year: i32, month: u32, billing_day: u32) -> i64 {
    let day = billing_day.clamp(1, days_in(year, month));
    NaiveDate::from_ymd_opt(year, month, day)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map_or(0, |t| Utc.from_utc_datetime(&t).timestamp())
}

/// The billing period holding `at`.
pub fn billing_period(at: i64, billing_day: u32) -> BillingPeriod {
    let t = Utc.timestamp_opt(at, 0).single().unwrap_or_default();
    let (y, m) = (t.year(), t.month());
    let this = start_in(y, m, billing_day);
    let (from, to) = if at >= this {
        let (ny, nm) = shift(y, m, 1);
        (this, start_in(ny, nm, billing_day))
    } else {
        let (py, pm) = shift(y, m, -1);
        (start_in(py, pm, billing_day), this)
    };
    BillingPeriod {
        start: from,
        end: to,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::period::parse_time;

    fn at(s: &str) -> i64 {
        parse_time(s).unwrap().timestamp()
    }

    fn period(t: &str, day: u32) -> (String, String) {
        let p = billing_period(at(t), day);
        let f = |x: i64| {
            Utc.timestamp_opt(x, 0)
                .unwrap()
                .format("%Y-%m-%dT%H:%M:%S")
                .to_string()
        };
        (f(p.start), f(p.end))
    }

    fn pair(a: &str, b: &str) -> (String, String) {
        (a.to_owned(), b.to_owned())
    }

    #[test]
    fn calendar_months_by_default() {
        assert_eq!(
            period("2024-01-01T00:00:00Z", 1),
            pair("2024-01-01T00:00:00", "2024-02-01T00:00:00")
        );
        assert_eq!(
            period("2024-01-31T23:59:59Z", 1),
            pair("2024-01-01T00:00:00", "2024-02-01T00:00:00")
        );
        assert_eq!(
            period("2024-12-31T23:59:59Z", 1),
            pair("2024-12-01T00:00:00", "2025-01-01T00:00:00")
        );
        // Midnight of the first belongs to the new period, one second before to the old one.
        assert_eq!(
            billing_period(at("2024-03-01T00:00:00Z"), 1).start,
            at("2024-03-01")
        );
        assert_eq!(
            billing_period(at("2024-02-29T23:59:59Z"), 1).end,
            at("2024-03-01")
        );
        assert_eq!(
            billing_period(at("2024-02-10T00:00:00Z"), 1).seconds(),
            29 * 86_400
        );
        assert_eq!(
            billing_period(at("2023-02-10T00:00:00Z"), 1).seconds(),
            28 * 86_400
        );
    }

    #[test]
    fn a_billing_day_moves_the_boundary() {
        assert_eq!(
            period("2024-01-15T00:00:00Z", 15),
            pair("2024-01-15T00:00:00", "2024-02-15T00:00:00")
        );
        assert_eq!(
            period("2024-01-14T23:59:59Z", 15),
            pair("2023-12-15T00:00:00", "2024-01-15T00:00:00")
        );
        // Across the new year, backwards.
        assert_eq!(
            period("2024-01-03T10:00:00Z", 20),
            pair("2023-12-20T00:00:00", "2024-01-20T00:00:00")
        );
    }

    #[test]
    fn a_billing_day_past_the_month_end_is_its_last_day() {
        assert_eq!(
            period("2024-02-29T12:00:00Z", 31),
            pair("2024-02-29T00:00:00", "2024-03-31T00:00:00")
        );
        assert_eq!(
            period("2024-02-28T12:00:00Z", 31),
            pair("2024-01-31T00:00:00", "2024-02-29T00:00:00")
        );
        assert_eq!(
            period("2023-02-28T00:00:00Z", 30),
            pair("2023-02-28T00:00:00", "2023-03-30T00:00:00")
        );
        assert_eq!(
            period("2024-04-30T00:00:00Z", 31),
            pair("2024-04-30T00:00:00", "2024-05-31T00:00:00")
        );
    }
}
