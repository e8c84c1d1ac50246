//! BandwidthD's CDF log lines (`log.N.M.cdf`): one address and interval per line, bytes sent
//! then received for total, icmp, udp, tcp, ftp, http, mail and p2p. Parses the three lines found
//! in the wild — the fixed one (18 fields), the upstream one whose sent p2p and received total
//! run together for want of a comma (17 fields), and 2.0.1's without mail (16 fields) — and
//! writes the fixed one. Text ↔ values only: importing is `app::import_cdf`.

use crate::classify::{App, Class};
use crate::parse::Proto;
use crate::usage::{Dir, Host, Usage};
use std::fmt;

/// Bytes of one direction, in CDF order: total, icmp, udp, tcp, ftp, http, mail, p2p.
pub type Traffic = [u64; 8];

const TOTAL: usize = 0;
const ICMP: usize = 1;
const UDP: usize = 2;
const TCP: usize = 3;
/// The classes after `total`, in CDF order.
const CLASSES: [Class; 7] = [
    Class::Proto(Proto::Icmp),
    Class::Proto(Proto::Udp),
    Class::Proto(Proto::Tcp),
    Class::App(App::Ftp),
    Class::App(App::Http),
    Class::App(App::Mail),
    Class::App(App::P2p),
];

/// One line: an address, BandwidthD's timestamp (the *end* of its interval), and the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    pub host: Host,
    pub time: i64,
    pub sent: Traffic,
    pub received: Traffic,
}

/// How a line was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// 18 fields, as written by a fixed BandwidthD and by `report --format cdf`.
    Fixed,
    /// 16 fields: BandwidthD 2.0.1, no mail class.
    NoMail,
    /// 17 fields: the upstream line with the missing comma. The joined field is split where
    /// the sent p2p fits in the sent tcp + udp and the received total is at least its icmp +
    /// udp + tcp. `exact` when only one split fits; otherwise the split whose received total
    /// equals that sum (no other protocols), or failing that comes closest to it, was taken.
    Joined { exact: bool },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CdfError {
    #[error("{0} fields: a CDF line has 16 (BandwidthD 2.0.1), 17 (the upstream line with a missing comma) or 18")]
    Fields(usize),
    #[error("{0:?} is not an IP address")]
    Address(String),
    #[error("field {field} ({value:?}) is not a byte count")]
    Number { field: usize, value: String },
    #[error("the joined sent-p2p/received-total field {0:?} cannot be split consistently with the other counts")]
    Split(String),
}

/// A byte count as printed by `%llu`: digits only, no sign, no leading zero.
fn count(field: usize, s: &str) -> Result<u64, CdfError> {
    let bad = || CdfError::Number {
        field,
        value: s.to_owned(),
    };
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return Err(bad());
    }
    s.parse().map_err(|_| bad())
}

fn counts(first: usize, fields: &[&str]) -> Result<Vec<u64>, CdfError> {
    fields
        .iter()
        .enumerate()
        .map(|(i, f)| count(first + i + 1, f))
        .collect()
}

impl Record {
    /// Parses one line (without its newline).
    pub fn parse(line: &str) -> Result<(Record, Shape), CdfError> {
        let line = line.trim_end_matches(['\r', '\n']).trim();
        let mut fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.last() == Some(&"") {
            fields.pop();
        }
        let n = fields.len();
        if !(16..=18).contains(&n) {
            return Err(CdfError::Fields(n));
        }
        let addr = fields.first().copied().unwrap_or_default();
        if addr.contains('/') {
            return Err(CdfError::Address(addr.to_owned()));
        }
        let host: Host = addr
            .parse()
            .map_err(|_| CdfError::Address(addr.to_owned()))?;
        let time_field = fields.get(1).copied().unwrap_or_default();
        let time = i64::try_from(count(2, time_field)?).map_err(|_| CdfError::Number {
            field: 2,
            value: time_field.to_owned(),
        })?;
        let v = counts(2, fields.get(2..).unwrap_or_default());
        let mut sent = [0u64; 8];
        let mut received = [0u64; 8];
        let shape = match n {
            18 => {
                let v = v?;
                sent.copy_from_slice(v.get(..8).unwrap_or_default());
                received.copy_from_slice(v.get(8..).unwrap_or_default());
                Shape::Fixed
            }
            16 => {
                // total, icmp, udp, tcp, ftp, http, p2p: no mail
                let v = v?;
                for (i, slot) in [0, 1, 2, 3, 4, 5, 7].into_iter().enumerate() {
                    sent[slot] = v.get(i).copied().unwrap_or(0);
                    received[slot] = v.get(7 + i).copied().unwrap_or(0);
                }
                Shape::NoMail
            }
            _ => {
                // sent total..mail (7), joined sent p2p + received total, received icmp..p2p (7)
                let joined = fields.get(9).copied().unwrap_or_default();
                let before = counts(2, fields.get(2..9).unwrap_or_default())?;
                let after = counts(9, fields.get(10..).unwrap_or_default())?;
                sent.get_mut(..7)
                    .unwrap_or_default()
                    .copy_from_slice(&before);
                received
                    .get_mut(1..)
                    .unwrap_or_default()
                    .copy_from_slice(&after);
                let (p2p, total, exact) = split_joined(joined, &sent, &received)?;
                sent[7] = p2p;
                received[TOTAL] = total;
                Shape::Joined { exact }
            }
        };
        Ok((
            Record {
                host,
                time,
                sent,
                received,
            },
            shape,
        ))
    }

    /// The record of a host's usage, stamped `time`.
    pub fn from_usage(host: Host, time: i64, usage: &Usage) -> Record {
        let traffic = |dir: Dir| {
            let mut t = [0u64; 8];
            t[TOTAL] = usage.total_bytes(dir);
            for (slot, class) in t.iter_mut().skip(1).zip(CLASSES) {
                *slot = usage.get(dir, class, false);
            }
            t
        };
        Record {
            host,
            time,
            sent: traffic(Dir::Tx),
            received: traffic(Dir::Rx),
        }
    }

    /// The record as bwacct usage: tcp, udp, icmp as given, *other* the rest of the total,
    /// the application classes as given; BandwidthD kept no packet counts.
    pub fn usage(&self) -> Usage {
        let mut u = Usage::default();
        for (dir, t) in [(Dir::Tx, &self.sent), (Dir::Rx, &self.received)] {
            for (value, class) in t.iter().skip(1).zip(CLASSES) {
                u.set(dir, class, false, *value);
            }
            let known = t[ICMP].saturating_add(t[UDP]).saturating_add(t[TCP]);
            u.set(
                dir,
                Class::Proto(Proto::Other),
                false,
                t[TOTAL].saturating_sub(known),
            );
        }
        u
    }
}

/// Splits the joined field of the upstream line into (sent p2p, received total, exact).
fn split_joined(
    joined: &str,
    sent: &Traffic,
    received: &Traffic,
) -> Result<(u64, u64, bool), CdfError> {
    let err = || CdfError::Split(joined.to_owned());
    if joined.len() < 2 || !joined.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err());
    }
    let known = received[ICMP]
        .saturating_add(received[UDP])
        .saturating_add(received[TCP]);
    // p2p is a part of tcp and udp, and of the total
    let p2p_max = sent[TCP].saturating_add(sent[UDP]).min(sent[TOTAL]);
    let mut fits = Vec::new();
    for k in 1..joined.len() {
        let (Some(left), Some(right)) = (joined.get(..k), joined.get(k..)) else {
            continue;
        };
        if let (Ok(p2p), Ok(total)) = (count(9, left), count(10, right)) {
            if p2p <= p2p_max && total >= known {
                fits.push((p2p, total));
            }
        }
    }
    let exact = fits.len() == 1;
    // the smallest total is the one closest to icmp + udp + tcp (equal when nothing else)
    fits.into_iter()
        .min_by_key(|&(_, total)| total)
        .map(|(p2p, total)| (p2p, total, exact))
        .ok_or_else(err)
}

impl fmt::Display for Record {
    /// The fixed line: `ip,time,` 8 sent, 8 received.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{},{}", self.host, self.time)?;
        for v in self.sent.iter().chain(self.received.iter()) {
            write!(f, ",{v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_shapes_read_the_same_counts() {
        let fixed =
            "198.51.100.7,1700000200,1000,10,90,900,0,500,100,300,5000,20,80,4800,0,4000,0,700";
        let (r, shape) = Record::parse(fixed).unwrap();
        assert_eq!(shape, Shape::Fixed);
        assert_eq!(r.sent, [1000, 10, 90, 900, 0, 500, 100, 300]);
        assert_eq!(r.received, [5000, 20, 80, 4800, 0, 4000, 0, 700]);
        assert_eq!(r.to_string(), fixed);
        // upstream: "300" and "5000" run together
        let joined =
            "198.51.100.7,1700000200,1000,10,90,900,0,500,100,3005000,20,80,4800,0,4000,0,700\n";
        assert_eq!(
            Record::parse(joined).unwrap(),
            (r, Shape::Joined { exact: true })
        );
        let old = "198.51.100.7,1700000200,1000,10,90,900,0,500,300,5000,20,80,4800,0,4000,700";
        let (o, shape) = Record::parse(old).unwrap();
        assert_eq!(shape, Shape::NoMail);
        assert_eq!(o.sent, [1000, 10, 90, 900, 0, 500, 0, 300]);
        assert_eq!(o.received[7], 700);
    }

    #[test]
    fn a_joined_field_is_split_where_the_counts_allow() {
        // received total 5100 = icmp + udp + tcp (4900) + 200 other; sent p2p 30:
        // "305100" splits as 3|05100 (leading zero), 30|5100, 305|100 (total < 4900),
        // 3051|00 and 30510|0 (leading zero, p2p > tcp + udp): one fits
        let line = "192.0.2.1,1,1000,0,100,900,0,0,0,305100,0,100,4800,0,0,0,0";
        let (r, shape) = Record::parse(line).unwrap();
        assert_eq!(shape, Shape::Joined { exact: true });
        assert_eq!((r.sent[7], r.received[0]), (30, 5100));
        let u = r.usage();
        assert_eq!(u.total_bytes(Dir::Rx), 5100);
        assert_eq!(u.get(Dir::Rx, Class::Proto(Proto::Other), false), 200);
        assert_eq!(u.get(Dir::Tx, Class::App(App::P2p), false), 30);
        // much sent tcp, little received: 30|5100 and 305|100 both fit; the total equal to
        // icmp + udp + tcp (100) wins, then the smallest
        let line = "192.0.2.1,1,900000,0,0,900000,0,0,0,305100,0,0,100,0,0,0,0";
        let (r, shape) = Record::parse(line).unwrap();
        assert_eq!(shape, Shape::Joined { exact: false });
        assert_eq!((r.sent[7], r.received[0]), (305, 100));
        let line = "192.0.2.1,1,900000,0,0,900000,0,0,0,305100,0,0,50,0,0,0,0";
        let (r, _) = Record::parse(line).unwrap();
        assert_eq!((r.sent[7], r.received[0]), (305, 100));
    }

    #[test]
    fn usage_round_trips_through_a_line() {
        let line =
            "2001:db8:100::7,1700000200,1000,10,90,800,0,500,100,300,5000,20,80,4800,0,4000,0,700";
        let (r, _) = Record::parse(line).unwrap();
        let u = r.usage();
        assert_eq!(u.total_bytes(Dir::Tx), 1000);
        assert_eq!(u.get(Dir::Tx, Class::Proto(Proto::Other), false), 100);
        assert_eq!(Record::from_usage(r.host, r.time, &u), r);
    }

    #[test]
    fn bad_lines_say_what_is_wrong() {
        assert_eq!(Record::parse("1.2.3.4,5,6"), Err(CdfError::Fields(3)));
        let base: Vec<String> = (0..16).map(|i| i.to_string()).collect();
        let line = |first: &str, f: &dyn Fn(&mut Vec<String>)| {
            let mut v = base.clone();
            v[0] = first.to_owned();
            f(&mut v);
            v.join(",")
        };
        assert!(matches!(
            Record::parse(&line("not-an-ip", &|_| {})),
            Err(CdfError::Address(_))
        ));
        assert!(matches!(
            Record::parse(&line("192.0.2.1", &|v| v[5] = "-3".into())),
            Err(CdfError::Number { field: 6, .. })
        ));
        assert!(matches!(
            Record::parse(&line("192.0.2.1", &|v| v[5] = "99999999999999999999999".into())),
            Err(CdfError::Number { .. })
        ));
        // 17 fields whose joined field cannot hold a received total >= icmp + udp + tcp
        let l = "192.0.2.1,1,0,0,0,0,0,0,0,11,0,0,900,0,0,0,0";
        assert!(matches!(Record::parse(l), Err(CdfError::Split(_))));
    }
}
