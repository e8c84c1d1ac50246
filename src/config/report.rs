//! `[report]`: the time zone whose midnights bound report days and months (default UTC).

use super::raw::RawReport;
use super::{VResult, Validator};
use chrono_tz::Tz;

#[derive(Debug, Clone)]
pub struct Report {
    pub timezone: Tz,
}

impl Default for Report {
    fn default() -> Self {
        Self { timezone: Tz::UTC }
    }
}

/// Parses an IANA time zone name (`Europe/Berlin`, `UTC`).
pub fn parse_zone(name: &str) -> Result<Tz, String> {
    name.trim().parse::<Tz>().map_err(|_| {
        format!(
            "{name:?} is not a time zone: use an IANA name such as \"UTC\" or \"Europe/Berlin\""
        )
    })
}

impl Validator<'_> {
    pub(super) fn report(&self, raw: RawReport) -> VResult<Report> {
        let Some(tz) = raw.timezone else {
            return Ok(Report::default());
        };
        match parse_zone(tz.get_ref()) {
            Ok(timezone) => Ok(Report { timezone }),
            Err(message) => self.err(tz.span(), message),
        }
    }
}
