//! The customers bound to MACs (`macs = [...]`), indexed for the packet path: [`Sources`],
//! which the observers keep, passes the packets from unbound addresses and from their
//! customer's first MAC without a lookup; the rest go through a 65,536-bit filter on the low 16
//! bits of IPv4 sources, then the customer lookup (`crate::customer::Customers`, shared with
//! reports and quotas).
#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use super::macs::Wire;
use crate::config::Customer;
use crate::customer::Customers;
use crate::parse::l2::Mac;
use crate::usage::Host;
use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

const FILTER_WORDS: usize = 65_536 / 64;

/// Bound IPv4 addresses at most in the span that [`Sources`] indexes directly (512 KiB).
const DIRECT_MAX: u64 = 65_536;
/// A [`Sources`] entry of an address nobody binds (no 48-bit [`Wire`] equals it).
const NOBODY: u64 = u64::MAX;

/// The packet path's test of a source address and MAC, kept by each observer: true when
/// [`Bound::customer_of`] and [`Bound::allows`] must decide (the packet may be spoofed).
/// When the bound IPv4 addresses lie within [`DIRECT_MAX`] of each other, a table indexed by
/// the address gives the first MAC of its customer: a packet from an unbound address or from
/// its customer's first MAC costs one load and two compares, with no branch that depends on
/// the address. Wider, every address between the lowest and the highest bound one is looked
/// up. IPv6 sources are looked up when a customer binds an IPv6 network. Nobody bound: no
/// packet is looked up.
#[derive(Clone, Debug)]
pub struct Sources {
    v4_lo: u32,
    /// Wide spans: addresses from `v4_lo` on that are looked up.
    v4_len: u64,
    /// Narrow spans: per address from `v4_lo`, its customer's first MAC or [`NOBODY`], and a
    /// last [`NOBODY`] that every address past the span reads. Empty when wide.
    direct: Arc<[u64]>,
    v6: bool,
}

impl Sources {
    #[inline]
    pub fn suspect(&self, v6: bool, addr: u128, mac: Wire) -> bool {
        if v6 {
            return self.v6;
        }
        let i = u64::from((addr as u32).wrapping_sub(self.v4_lo));
        if self.direct.is_empty() {
            return i < self.v4_len;
        }
        let last = self.direct.len() - 1;
        let first_mac = self.direct.get((i as usize).min(last)).copied();
        first_mac.is_some_and(|m| m != mac.bits() && m != NOBODY)
    }
}

/// Bound customers and their MACs.
#[derive(Debug)]
pub struct Bound {
    customers: Customers,
    /// Inline, not boxed: one pointer from the observer to the bits.
    v4_filter: [u64; FILTER_WORDS],
    any_v6: bool,
    sources: Sources,
}

impl Bound {
    /// The customers of `list` that have MACs.
    pub fn new(list: &[Customer]) -> Self {
        let bound: Vec<Customer> = list
            .iter()
            .filter(|c| !c.macs.is_empty())
            .cloned()
            .collect();
        let mut v4_filter = [0u64; FILTER_WORDS];
        let mut any_v6 = false;
        let mut v4_span: Option<(u32, u32)> = None;
        for c in &bound {
            for net in &c.networks {
                if let IpNet::V4(n) = net {
                    let (lo, hi) = (u32::from(n.network()), u32::from(n.broadcast()));
                    v4_span = Some(v4_span.map_or((lo, hi), |(l, h)| (l.min(lo), h.max(hi))));
                }
                match net {
                    IpNet::V4(n) if n.prefix_len() <= 16 => v4_filter.fill(u64::MAX),
                    IpNet::V4(n) => {
                        for a in u32::from(n.network())..=u32::from(n.broadcast()) {
                            let bit = (a & 0xffff) as usize;
                            if let Some(w) = v4_filter.get_mut(bit / 64) {
                                *w |= 1 << (bit % 64);
                            }
                        }
                    }
                    IpNet::V6(_) => any_v6 = true,
                }
            }
        }
        let (v4_lo, v4_len) = v4_span.map_or((0, 0), |(lo, hi)| (lo, u64::from(hi - lo) + 1));
        let mut b = Self {
            customers: Customers::new(bound),
            v4_filter,
            any_v6,
            sources: Sources {
                v4_lo,
                v4_len,
                direct: Arc::new([]),
                v6: any_v6,
            },
        };
        if v4_len <= DIRECT_MAX {
            let direct: Vec<u64> = (0..v4_len as u32)
                .map(|i| {
                    let addr = u128::from(v4_lo.wrapping_add(i));
                    b.customer_of(false, addr)
                        .and_then(|c| b.macs(c).first())
                        .map_or(NOBODY, |&m| Wire::of(m).bits())
                })
                .chain([NOBODY])
                .collect();
            b.sources.direct = direct.into();
        }
        b
    }

    /// How many customers are bound.
    pub fn customers(&self) -> usize {
        self.customers.iter().count()
    }

    pub fn is_empty(&self) -> bool {
        self.customers.is_empty()
    }

    /// The observers' test of a source address and MAC.
    pub fn sources(&self) -> Sources {
        self.sources.clone()
    }

    pub fn name(&self, i: usize) -> Option<&str> {
        self.customers.at(i).map(|c| c.name.as_str())
    }

    /// The MACs of bound customer `i`.
    pub fn macs(&self, i: usize) -> &[Mac] {
        self.customers.at(i).map_or(&[], |c| c.macs.as_slice())
    }

    /// The bound customer holding a source address (integer form, as the parser gives it).
    #[inline]
    pub fn customer_of(&self, v6: bool, addr: u128) -> Option<usize> {
        if v6 {
            if !self.any_v6 {
                return None;
            }
            return self
                .customers
                .index_of(&Host::Addr(IpAddr::V6(Ipv6Addr::from(addr))));
        }
        let bit = (addr as u32 & 0xffff) as usize;
        let word = self.v4_filter.get(bit / 64).copied().unwrap_or(0);
        if word >> (bit % 64) & 1 == 0 {
            return None;
        }
        self.customers
            .index_of(&Host::Addr(IpAddr::V4(Ipv4Addr::from(addr as u32))))
    }

    /// Whether bound customer `i` may send from `mac`.
    #[inline]
    pub fn allows(&self, i: usize, mac: Mac) -> bool {
        self.macs(i).contains(&mac)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn customer(name: &str, nets: &[&str], macs: &[u64]) -> Customer {
        Customer {
            name: name.into(),
            networks: nets.iter().map(|n| n.parse().unwrap()).collect(),
            vif: None,
            mark: None,
            allotment: None,
            shape: None,
            billing_day: 1,
            macs: macs.iter().map(|&m| Mac(m)).collect(),
        }
    }

    #[test]
    fn only_bound_customers_and_their_addresses_are_found() {
        let b = Bound::new(&[
            customer(
                "goneril",
                &["198.51.100.10/32", "2001:db8:100:1::/64"],
                &[0xa],
            ),
            customer("regan", &["198.51.100.16/28"], &[]),
            customer("cordelia", &["203.0.113.0/24"], &[0xc, 0xd]),
        ]);
        assert_eq!(b.customers(), 2);
        let v4 = |s: &str| u128::from(u32::from(s.parse::<Ipv4Addr>().unwrap()));
        let v6 = |s: &str| u128::from(s.parse::<Ipv6Addr>().unwrap());
        let g = b.customer_of(false, v4("198.51.100.10")).unwrap();
        assert_eq!(b.name(g), Some("goneril"));
        assert!(b.allows(g, Mac(0xa)) && !b.allows(g, Mac(0xb)));
        assert_eq!(
            b.customer_of(false, v4("198.51.100.17")),
            None,
            "regan is not bound"
        );
        assert_eq!(b.customer_of(false, v4("198.51.100.11")), None);
        let c = b.customer_of(false, v4("203.0.113.77")).unwrap();
        assert_eq!(b.macs(c), &[Mac(0xc), Mac(0xd)]);
        // same low 16 bits, another network: passes the filter, not the lookup
        assert_eq!(b.customer_of(false, v4("10.0.100.10")), None);
        assert_eq!(b.customer_of(true, v6("2001:db8:100:1::5")), Some(g));
        assert_eq!(b.customer_of(true, v6("2001:db8:100:2::5")), None);
        let none = Bound::new(&[]);
        assert_eq!(none.customer_of(false, v4("198.51.100.10")), None);
        assert_eq!(none.customer_of(true, v6("2001:db8:100:1::5")), None);
        // the source check: direct (every bound address within 65,536 of each other)
        let w = |m: u64| Wire::of(Mac(m));
        let ok = |s: &Sources, a: &str, m: u64| !s.suspect(false, v4(a), w(m));
        let narrow = Bound::new(&[
            customer("goneril", &["198.51.100.10/32"], &[0xa, 0xb]),
            customer("regan", &["198.51.100.16/28"], &[]),
            customer("cordelia", &["198.51.101.0/24"], &[0xc]),
        ]);
        let s = narrow.sources();
        assert_eq!(s.direct.len(), 256 + 246 + 1);
        assert!(ok(&s, "198.51.100.10", 0xa) && ok(&s, "198.51.101.77", 0xc));
        assert!(!ok(&s, "198.51.100.10", 0xc) && !ok(&s, "198.51.101.0", 0xa));
        assert!(
            !ok(&s, "198.51.100.10", 0xb),
            "a second MAC: the lookup allows it"
        );
        assert!(ok(&s, "198.51.100.17", 0xa), "regan is not bound");
        for outside in ["198.51.100.9", "198.51.102.0", "0.0.0.0", "255.255.255.255"] {
            assert!(ok(&s, outside, 0xe), "{outside}");
        }
        assert!(!s.suspect(true, v6("2001:db8:100:1::5"), w(0xe)));
        // wide: every address between the lowest and the highest bound one is looked up
        let s = b.sources();
        assert!(s.direct.is_empty());
        assert!(!ok(&s, "198.51.100.10", 0xa) && !ok(&s, "200.1.2.3", 0xa));
        assert!(!ok(&s, "203.0.113.255", 0xc));
        assert!(ok(&s, "198.51.100.9", 0xa) && ok(&s, "203.0.114.0", 0xc));
        assert!(s.suspect(true, v6("2001:db8:ffff::1"), w(0xa)));
        // nobody bound: nothing
        let s = none.sources();
        assert!(ok(&s, "0.0.0.0", 0xa) && ok(&s, "255.255.255.255", 0xa));
        assert!(!s.suspect(true, v6("2001:db8:100:1::5"), w(0xa)));
        let all = Bound::new(&[customer("all", &["0.0.0.0/0"], &[0xa])]).sources();
        assert!(!ok(&all, "0.0.0.0", 0xa) && !ok(&all, "255.255.255.255", 0xa));
    }
}
