//! Rates, sizes and durations as `tc` writes them (`1mbit`, `40mb`, `50ms`): parsed from the
//! configuration and formatted back for the shaping commands, exactly and in `tc`'s own units.
//! Pure text ↔ number conversions; nothing here runs a command.

use std::fmt;

/// A rate in bits per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rate(pub u64);

/// A size in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Size(pub u64);

/// A duration in microseconds (tc's time unit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Micros(pub u64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    #[error("{0:?} is not a rate: write a number and a unit, e.g. \"1mbit\", \"500kbit\", \"10mbps\" (bytes/s)")]
    Rate(String),
    #[error("{0:?} is not a size: write a number and a unit, e.g. \"1600b\", \"32kb\", \"40mb\" (kb, mb, gb are 1024-based as in tc)")]
    Size(String),
    #[error(
        "{0:?} is not a duration: write a number and a unit, e.g. \"50ms\", \"1s\", \"400us\""
    )]
    Duration(String),
    #[error("{0:?} is zero or too large")]
    Range(String),
}

/// Splits `"1.5mbit"` into `(1.5, "mbit")`.
fn split(s: &str) -> Option<(f64, String)> {
    let t = s.trim();
    let at = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(at);
    if num.is_empty() || num.starts_with('.') {
        return None;
    }
    let v: f64 = num.parse().ok()?;
    Some((v, unit.trim().to_ascii_lowercase()))
}

/// `v × scale`, exact to the unit and non-zero, or an error.
fn scaled(s: &str, v: f64, scale: f64) -> Result<u64, QuantityError> {
    let x = (v * scale).round();
    if !(1.0..=(u64::MAX as f64 / 2.0)).contains(&x) {
        return Err(QuantityError::Range(s.to_owned()));
    }
    Ok(x as u64)
}

impl Rate {
    /// tc's rate units: `bit`, `kbit`, `mbit`, `gbit`, `tbit` (powers of 1000) and `bps`, `kbps`,
    /// `mbps`, `gbps`, `tbps` (bytes per second). A bare number is refused (tc would read bytes).
    pub fn parse(s: &str) -> Result<Self, QuantityError> {
        let bad = || QuantityError::Rate(s.to_owned());
        let (v, unit) = split(s).ok_or_else(bad)?;
        let scale = match unit.as_str() {
            "bit" => 1.0,
            "kbit" => 1e3,
            "mbit" => 1e6,
            "gbit" => 1e9,
            "tbit" => 1e12,
            "bps" => 8.0,
            "kbps" => 8e3,
            "mbps" => 8e6,
            "gbps" => 8e9,
            "tbps" => 8e12,
            _ => return Err(bad()),
        };
        scaled(s, v, scale).map(Rate)
    }

    /// Bytes per second, rounded down.
    pub fn bytes_per_s(self) -> u64 {
        self.0 / 8
    }
}

impl fmt::Display for Rate {
    /// The largest unit that keeps the number whole: `1mbit`, `1500kbit`, `1234bit`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (unit, scale) in [("tbit", 1e12), ("gbit", 1e9), ("mbit", 1e6), ("kbit", 1e3)] {
            let scale = scale as u64;
            if self.0 % scale == 0 {
                return write!(f, "{}{unit}", self.0 / scale);
            }
        }
        write!(f, "{}bit", self.0)
    }
}

impl Size {
    /// tc's size units: `b`, `kb`/`k`, `mb`/`m`, `gb`/`g` (bytes, powers of 1024) and `kbit`,
    /// `mbit`, `gbit` (bits, powers of 1024, as tc reads them). A bare number is bytes.
    pub fn parse(s: &str) -> Result<Self, QuantityError> {
        let bad = || QuantityError::Size(s.to_owned());
        let (v, unit) = split(s).ok_or_else(bad)?;
        let k = 1024.0;
        let scale = match unit.as_str() {
            "" | "b" => 1.0,
            "k" | "kb" => k,
            "m" | "mb" => k * k,
            "g" | "gb" => k * k * k,
            "kbit" => k / 8.0,
            "mbit" => k * k / 8.0,
            "gbit" => k * k * k / 8.0,
            _ => return Err(bad()),
        };
        scaled(s, v, scale).map(Size)
    }
}

impl fmt::Display for Size {
    /// The largest 1024-based unit that keeps the number whole: `40mb`, `32kb`, `1600b`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (unit, scale) in [("gb", 1u64 << 30), ("mb", 1 << 20), ("kb", 1 << 10)] {
            if self.0 % scale == 0 {
                return write!(f, "{}{unit}", self.0 / scale);
            }
        }
        write!(f, "{}b", self.0)
    }
}

impl Micros {
    /// `s`, `ms`, `us` (tc's time units).
    pub fn parse(s: &str) -> Result<Self, QuantityError> {
        let bad = || QuantityError::Duration(s.to_owned());
        let (v, unit) = split(s).ok_or_else(bad)?;
        let scale = match unit.as_str() {
            "s" | "sec" | "secs" => 1e6,
            "ms" | "msec" | "msecs" => 1e3,
            "us" | "usec" | "usecs" => 1.0,
            _ => return Err(bad()),
        };
        scaled(s, v, scale).map(Micros)
    }
}

impl fmt::Display for Micros {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 % 1_000_000 == 0 {
            write!(f, "{}s", self.0 / 1_000_000)
        } else if self.0 % 1000 == 0 {
            write!(f, "{}ms", self.0 / 1000)
        } else {
            write!(f, "{}us", self.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_and_print_in_tc_units() {
        assert_eq!(Rate::parse("1mbit"), Ok(Rate(1_000_000)));
        assert_eq!(Rate::parse("1.5mbit"), Ok(Rate(1_500_000)));
        assert_eq!(Rate::parse("10mbps"), Ok(Rate(80_000_000)));
        assert_eq!(Rate::parse(" 2 Gbit "), Ok(Rate(2_000_000_000)));
        assert_eq!(Rate(1_000_000).to_string(), "1mbit");
        assert_eq!(Rate(1_500_000).to_string(), "1500kbit");
        assert_eq!(Rate(1234).to_string(), "1234bit");
        for bad in ["", "1", "mbit", "1 furlong", "-1mbit", "0mbit", ".5mbit"] {
            assert!(Rate::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sizes_are_1024_based_like_tc() {
        assert_eq!(Size::parse("40mb"), Ok(Size(40 << 20)));
        assert_eq!(Size::parse("32k"), Ok(Size(32 << 10)));
        assert_eq!(Size::parse("1600"), Ok(Size(1600)));
        assert_eq!(Size::parse("1600b"), Ok(Size(1600)));
        assert_eq!(Size::parse("8kbit"), Ok(Size(1024)));
        assert_eq!(Size(40 << 20).to_string(), "40mb");
        assert_eq!(Size(1600).to_string(), "1600b");
        assert_eq!(Size(3 << 10).to_string(), "3kb");
        assert!(Size::parse("40 parsecs").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(Micros::parse("50ms"), Ok(Micros(50_000)));
        assert_eq!(Micros::parse("1s"), Ok(Micros(1_000_000)));
        assert_eq!(Micros::parse("250us"), Ok(Micros(250)));
        assert_eq!(Micros(50_000).to_string(), "50ms");
        assert_eq!(Micros(2_000_000).to_string(), "2s");
        assert_eq!(Micros(1500).to_string(), "1500us");
        assert!(Micros::parse("5").is_err());
    }
}
