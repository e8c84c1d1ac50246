//! Traffic of one host (or network) over some time: bytes and packets, sent and received, per
//! traffic class. The value type shared by the counters, the stores and the reports.

use crate::classify::{App, Class};
use crate::parse::Proto;
use serde::Serialize;
use std::fmt;
use std::net::IpAddr;

/// Direction of a packet relative to a local host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// Sent by the host (its address is the source).
    Tx = 0,
    /// Received by the host (its address is the destination).
    Rx = 1,
}

/// Number of 64-bit values in a [`Usage`]: 2 directions × 8 classes × (bytes, packets).
pub const CELLS: usize = 32;

/// Index of one value: direction, class, and bytes (0) or packets (1).
#[inline]
pub const fn cell(dir: Dir, class: usize, packets: bool) -> usize {
    (dir as usize) * 16 + class * 2 + packets as usize
}

/// Index of the bytes cell for a protocol class.
#[inline]
pub const fn proto_cell(dir: Dir, proto: Proto) -> usize {
    cell(dir, proto as usize, false)
}

/// Index of the bytes cell for an application class.
#[inline]
pub const fn app_cell(dir: Dir, app: App) -> usize {
    cell(dir, 4 + app as usize, false)
}

/// Bytes and packets per direction and class. Totals are the sums of the protocol classes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Usage(pub [u64; CELLS]);

impl Default for Usage {
    fn default() -> Self {
        Self([0; CELLS])
    }
}

impl fmt::Debug for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Usage")
            .field("tx_bytes", &self.total_bytes(Dir::Tx))
            .field("rx_bytes", &self.total_bytes(Dir::Rx))
            .field("tx_packets", &self.total_packets(Dir::Tx))
            .field("rx_packets", &self.total_packets(Dir::Rx))
            .finish()
    }
}

impl Usage {
    pub fn get(&self, dir: Dir, class: Class, packets: bool) -> u64 {
        self.0
            .get(cell(dir, class.index(), packets))
            .copied()
            .unwrap_or(0)
    }

    pub fn set(&mut self, dir: Dir, class: Class, packets: bool, value: u64) {
        if let Some(v) = self.0.get_mut(cell(dir, class.index(), packets)) {
            *v = value;
        }
    }

    pub fn total_bytes(&self, dir: Dir) -> u64 {
        Self::protos().map(|c| self.get(dir, c, false)).sum()
    }

    pub fn total_packets(&self, dir: Dir) -> u64 {
        Self::protos().map(|c| self.get(dir, c, true)).sum()
    }

    fn protos() -> impl Iterator<Item = Class> {
        Class::ALL
            .into_iter()
            .filter(|c| matches!(c, Class::Proto(_)))
    }

    pub fn is_zero(&self) -> bool {
        self.0.iter().all(|&v| v == 0)
    }

    /// Adds another usage into this one (saturating: a 64-bit counter never wraps silently).
    pub fn merge(&mut self, other: &Usage) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a = a.saturating_add(*b);
        }
    }

    /// Takes away a part of this usage (a part counted into it: never more than it holds,
    /// so saturating at zero changes nothing).
    pub fn subtract(&mut self, part: &Usage) {
        for (a, b) in self.0.iter_mut().zip(part.0.iter()) {
            *a = a.saturating_sub(*b);
        }
    }

    /// Bytes sent plus received.
    pub fn total(&self) -> u64 {
        self.total_bytes(Dir::Tx)
            .saturating_add(self.total_bytes(Dir::Rx))
    }
}

/// What a usage row belongs to: one address, or a network (an IPv6 aggregate when
/// `ipv6_prefix` < 128, or a local network's overflow bucket).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Host {
    Addr(IpAddr),
    Net(ipnet::IpNet),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Addr(a) => a.fmt(f),
            Host::Net(n) => n.fmt(f),
        }
    }
}

/// Text that is neither an address nor a network.
#[derive(Debug, thiserror::Error)]
#[error("not an IP address or network: {0:?}")]
pub struct BadHost(pub String);

impl std::str::FromStr for Host {
    type Err = BadHost;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let host = if s.contains('/') {
            s.parse().map(Host::Net).ok()
        } else {
            s.parse().map(Host::Addr).ok()
        };
        host.ok_or_else(|| BadHost(s.to_owned()))
    }
}

impl Serialize for Host {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_are_proto_sums_and_apps_are_a_breakdown() {
        let mut u = Usage::default();
        u.set(Dir::Tx, Class::Proto(Proto::Tcp), false, 100);
        u.set(Dir::Tx, Class::Proto(Proto::Udp), false, 50);
        u.set(Dir::Tx, Class::App(App::Http), false, 100);
        assert_eq!(u.total_bytes(Dir::Tx), 150);
        assert_eq!(u.total(), 150);
        let mut v = u;
        v.merge(&u);
        assert_eq!(v.total_bytes(Dir::Tx), 300);
        assert_eq!(v.get(Dir::Tx, Class::App(App::Http), false), 200);
    }

    #[test]
    fn host_round_trips_through_text() {
        for s in ["198.51.100.7", "2001:db8:100::1a", "2001:db8:100:1::/64"] {
            assert_eq!(s.parse::<Host>().unwrap().to_string(), s);
        }
    }
}
