//! Query parameters of the pages and the API, parsed and bounded: periods in the syntax of
//! `report` (`day`, `month`, `from`/`to`), graph windows, host lists, sizes. Every failure is a
//! clear 400; no request can ask for more than a year, for a time outside 1970 to 9999, or for
//! more than a bounded number of buckets.

use super::{Context, WebError};
use crate::graph::{self, Window};
use crate::period::{self, Period, PeriodArgs};
use crate::store::series::MAX_POINTS;
use crate::usage::Host;
use chrono::{DateTime, Duration, Utc};
use ipnet::IpNet;
use serde::Deserialize;

/// The longest period a request may cover.
pub const MAX_DAYS: i64 = 366;
/// At most this many addresses or networks in one `ip=` list.
const MAX_NETS: usize = 64;
/// Rows a request may ask for.
const MAX_TOP: usize = 100_000;
/// The first and the last second a request may name: 1970-01-01 to 9999-12-31.
const FIRST_TIME: i64 = 0;
const END_OF_TIME: i64 = 253_402_300_800;

/// Every parameter any page or endpoint reads (others are ignored).
#[derive(Debug, Default, Deserialize)]
pub struct Params {
    pub day: Option<String>,
    pub month: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub top: Option<String>,
    pub sensor: Option<String>,
    pub ip: Option<String>,
    pub customer: Option<String>,
    pub window: Option<String>,
    pub end: Option<String>,
    pub step: Option<String>,
    pub width: Option<String>,
    pub height: Option<String>,
    /// `/events`: only this kind.
    pub kind: Option<String>,
}

/// The period when a request names none.
#[derive(Debug, Clone, Copy)]
pub enum DefaultPeriod {
    /// Today so far (UTC): the dashboard.
    Today,
    /// Yesterday: what `report` does, and so the API.
    Yesterday,
}

fn bad(msg: impl Into<String>) -> WebError {
    WebError::BadRequest(msg.into())
}

fn number<T: std::str::FromStr + PartialOrd + std::fmt::Display>(
    name: &str,
    v: &str,
    min: T,
    max: T,
) -> Result<T, WebError> {
    match v.trim().parse::<T>() {
        Ok(n) if n >= min && n <= max => Ok(n),
        _ => Err(bad(format!(
            "{name}={v:?}: expected a number from {min} to {max}"
        ))),
    }
}

fn outside_time(t: DateTime<Utc>) -> bool {
    !(FIRST_TIME..END_OF_TIME).contains(&t.timestamp())
}

fn bounded(p: Period) -> Result<Period, WebError> {
    if outside_time(p.from) || p.to.timestamp() > END_OF_TIME {
        return Err(bad(format!(
            "the period {} to {} is not within 1970-01-01 to 9999-12-31",
            p.from.to_rfc3339(),
            p.to.to_rfc3339()
        )));
    }
    if p.to - p.from > Duration::days(MAX_DAYS) {
        return Err(bad(format!(
            "the period {} to {} is longer than {MAX_DAYS} days",
            p.from.to_rfc3339(),
            p.to.to_rfc3339()
        )));
    }
    Ok(p)
}

impl Params {
    fn names_a_period(&self) -> bool {
        self.day.is_some() || self.month.is_some() || self.from.is_some() || self.to.is_some()
    }

    /// The period of a table or report.
    pub fn period(&self, now: DateTime<Utc>, default: DefaultPeriod) -> Result<Period, WebError> {
        if !self.names_a_period() {
            return Ok(match default {
                DefaultPeriod::Today => period::day(now.date_naive()),
                DefaultPeriod::Yesterday => period::day(now.date_naive() - Duration::days(1)),
            });
        }
        let args = PeriodArgs {
            day: self.day.clone(),
            month: self.month.clone(),
            from: self.from.clone(),
            to: self.to.clone(),
        };
        let p = args
            .resolve(now)
            .map_err(|e| bad(e.to_string().replace("--", "")))?;
        bounded(p)
    }

    /// The time range of a graph or series: a window (`window=day|week|month|year`, ending at
    /// `end` or now), or a period; a day ending now by default. (from, to) in Unix seconds.
    pub fn range(&self, now: DateTime<Utc>) -> Result<(i64, i64), WebError> {
        if self.window.is_some() || !self.names_a_period() {
            let window = match self.window.as_deref().map(str::trim) {
                None | Some("day") => Window::Day,
                Some("week") => Window::Week,
                Some("month") => Window::Month,
                Some("year") => Window::Year,
                Some(w) => {
                    return Err(bad(format!(
                        "window={w:?}: expected day, week, month or year"
                    )))
                }
            };
            if self.names_a_period() {
                return Err(bad("give either window (with end) or a period, not both"));
            }
            let end = self.end()?.unwrap_or(now);
            return Ok(window.ending(end.timestamp()));
        }
        let p = self.period(now, DefaultPeriod::Today)?;
        Ok((p.from.timestamp(), p.to.timestamp()))
    }

    /// `end=T`, the end of a graph window, if given.
    pub fn end(&self) -> Result<Option<DateTime<Utc>>, WebError> {
        let Some(e) = &self.end else {
            return Ok(None);
        };
        let t = period::parse_time(e).map_err(|e| bad(e.to_string()))?;
        if outside_time(t) {
            return Err(bad(format!(
                "end={e:?} is not within 1970-01-01 to 9999-12-31"
            )));
        }
        Ok(Some(t))
    }

    /// The bucket width of a series: `step` seconds, or one that suits the range.
    pub fn step(&self, (from, to): (i64, i64)) -> Result<i64, WebError> {
        let span = to - from;
        match &self.step {
            None => Ok(graph::step_for(span)),
            Some(s) => {
                let step = number("step", s, 1i64, MAX_DAYS * 86_400)?;
                if span / step > MAX_POINTS {
                    return Err(bad(format!(
                        "step={step} gives {} buckets; at most {MAX_POINTS} (use step={} or more)",
                        span / step,
                        (span + MAX_POINTS - 1) / MAX_POINTS
                    )));
                }
                Ok(step)
            }
        }
    }

    pub fn top(&self, default: Option<usize>) -> Result<Option<usize>, WebError> {
        match &self.top {
            None => Ok(default),
            Some(t) => number("top", t, 1, MAX_TOP).map(Some),
        }
    }

    /// One sensor's counts (a plain name, as the config validates it), or the sum.
    pub fn sensor(&self) -> Result<Option<String>, WebError> {
        match self.sensor.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(s)
                if s.len() <= 64
                    && s.chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) =>
            {
                Ok(Some(s.to_owned()))
            }
            Some(s) => Err(bad(format!("sensor={s:?} is not a sensor name"))),
        }
    }

    pub fn size(&self) -> Result<(u32, u32), WebError> {
        let (min, max, def) = (graph::MIN_SIZE, graph::MAX_SIZE, graph::DEFAULT_SIZE);
        let w = match &self.width {
            None => def.0,
            Some(v) => number("width", v, min.0, max.0)?,
        };
        let h = match &self.height {
            None => def.1,
            Some(v) => number("height", v, min.1, max.1)?,
        };
        Ok((w, h))
    }

    /// Whose traffic: `customer=NAME`, or `ip=` a comma-separated list of addresses and
    /// networks. Returns a title and the networks.
    pub fn selection(&self, ctx: &Context) -> Result<(String, Vec<IpNet>), WebError> {
        match (&self.customer, &self.ip) {
            (Some(name), None) => ctx
                .customer(name)
                .map(|c| (c.name.clone(), c.networks.clone()))
                .ok_or_else(|| WebError::NotFound(format!("no customer {name:?}"))),
            (None, Some(list)) => {
                let nets = nets(list)?;
                Ok((list.trim().to_owned(), nets))
            }
            _ => Err(bad(
                "give ip=ADDRESS[,ADDRESS or NETWORK...] or customer=NAME (one of them)",
            )),
        }
    }
}

/// One address or network as the networks it covers (an address is a /32 or /128).
pub fn host_nets(s: &str) -> Result<IpNet, WebError> {
    s.trim()
        .parse::<Host>()
        .map(|h| graph::host_net(&h))
        .map_err(|_| bad(format!("{s:?} is not an IP address or network")))
}

fn nets(list: &str) -> Result<Vec<IpNet>, WebError> {
    let parts: Vec<&str> = list.split(',').filter(|p| !p.trim().is_empty()).collect();
    if parts.is_empty() || parts.len() > MAX_NETS {
        return Err(bad(format!(
            "ip= takes 1 to {MAX_NETS} comma-separated addresses or networks"
        )));
    }
    parts.into_iter().map(host_nets).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        period::parse_time("2026-11-25T10:30:00Z").unwrap()
    }

    fn p(f: impl FnOnce(&mut Params)) -> Params {
        let mut p = Params::default();
        f(&mut p);
        p
    }

    #[test]
    fn periods_default_and_are_bounded() {
        let t = Params::default()
            .period(now(), DefaultPeriod::Today)
            .unwrap();
        assert_eq!(t.from.to_rfc3339(), "2026-11-25T00:00:00+00:00");
        let y = Params::default()
            .period(now(), DefaultPeriod::Yesterday)
            .unwrap();
        assert_eq!(y.from.to_rfc3339(), "2026-11-24T00:00:00+00:00");
        let m = p(|p| p.month = Some("2026-02".into()))
            .period(now(), DefaultPeriod::Today)
            .unwrap();
        assert_eq!(m.to.to_rfc3339(), "2026-03-01T00:00:00+00:00");
        let long = p(|p| {
            p.from = Some("2020-01-01".into());
            p.to = Some("2026-01-01".into());
        });
        let e = long
            .period(now(), DefaultPeriod::Today)
            .unwrap_err()
            .to_string();
        assert!(e.contains("longer than 366 days"), "{e}");
        let half = p(|p| p.from = Some("2020-01-01".into()));
        let e = half
            .period(now(), DefaultPeriod::Today)
            .unwrap_err()
            .to_string();
        assert_eq!(e, "from and to go together");
        let ancient = p(|p| {
            p.from = Some("-262143-01-01".into());
            p.to = Some("-262143-01-02".into());
        });
        let e = ancient
            .period(now(), DefaultPeriod::Today)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not within 1970-01-01 to 9999-12-31"), "{e}");
        assert!(p(|p| p.end = Some("1969-12-31".into())).end().is_err());
        assert!(p(|p| p.end = Some("9999-12-31T23:59:59Z".into()))
            .range(now())
            .is_ok());
        let junk = p(|p| p.day = Some("yesterday".into()));
        assert!(matches!(
            junk.period(now(), DefaultPeriod::Today),
            Err(WebError::BadRequest(_))
        ));
    }

    #[test]
    fn ranges_steps_sizes_and_hosts() {
        let (from, to) = Params::default().range(now()).unwrap();
        assert_eq!(to - from, 86_400);
        assert_eq!(to % 300, 0);
        let w = p(|p| {
            p.window = Some("week".into());
            p.end = Some("2024-01-02".into());
        });
        assert_eq!(
            w.range(now()).unwrap(),
            (1_704_153_600 - 7 * 86_400, 1_704_153_600)
        );
        assert!(p(|p| p.window = Some("fortnight".into()))
            .range(now())
            .is_err());
        assert!(p(|p| {
            p.window = Some("day".into());
            p.day = Some("2024-01-01".into());
        })
        .range(now())
        .is_err());
        assert_eq!(Params::default().step((0, 86_400)).unwrap(), 300);
        assert!(p(|p| p.step = Some("1".into()))
            .step((0, 86_400 * 30))
            .is_err());
        assert!(p(|p| p.step = Some("0".into())).step((0, 60)).is_err());
        assert!(p(|p| p.width = Some("99999".into())).size().is_err());
        assert!(p(|p| p.top = Some("-1".into())).top(None).is_err());
        assert_eq!(nets("198.51.100.7, 2001:db8::/32").unwrap().len(), 2);
        assert_eq!(
            nets("198.51.100.7/24").unwrap()[0].to_string(),
            "198.51.100.0/24"
        );
        assert!(nets("nonsense").is_err());
        assert!(nets("").is_err());
        assert!(p(|p| p.sensor = Some("a b".into())).sensor().is_err());
    }
}
