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

const FILTER_WORDS: usize = 65_536 / 64;

/// Entries of a [`Sources`] table at most (512 KiB; only those of addresses in use are read).
const ENTRIES_MAX: u64 = 65_536;
/// The entry of addresses nobody binds.
const NOBODY: u64 = u64::MAX;
/// The entry of a block of addresses that holds bound ones (wide spans).
const SOMEBODY: u64 = u64::MAX - 1;

/// The packet path's test of a source address and MAC, kept by each observer: true when
/// [`Bound::customer_of`] and [`Bound::allows`] must decide (the packet may be spoofed).
/// A table indexed by the IPv4 address from the lowest bound one gives, when the bound
/// addresses span at most [`ENTRIES_MAX`], the first MAC of the address's customer; wider, one
/// entry stands for a block of 2^`shift` addresses and says whether any of them is bound.
/// Either way a packet costs one load and a few compares, with no branch that depends on the
/// address or its family: a mismatch with a [`Wire`] (no 48-bit MAC equals [`NOBODY`] or [`SOMEBODY`]) means
/// a look-up, which a packet from an unbound address, or from its customer's first MAC (then
/// the last one allowed for the address) in a narrow span, never needs. IPv6 sources are looked up when a customer binds an IPv6 network.
/// Nobody bound, observers keep no test and look nothing up.
#[derive(Clone, Debug)]
pub struct Sources {
    v4_lo: u32,
    shift: u32,
    /// The entries from `v4_lo` on, then one [`NOBODY`] that every address past them reads
    /// (addresses below `v4_lo` wrap past them too). Never empty. Each observer has its own
    /// copy: an entry learns the last MAC the look-up allowed for its address.
    table: Box<[u64]>,
    /// The index of that last entry.
    last: usize,
    v6: bool,
}

impl Sources {
    fn new(v4: &[(u32, u32, Mac)], v6: bool) -> Self {
        let lo = v4.iter().map(|r| r.0).min().unwrap_or(0);
        let span = v4
            .iter()
            .map(|r| u64::from(r.1 - lo) + 1)
            .max()
            .unwrap_or(0);
        let mut shift = 0;
        while span.div_ceil(1 << shift) > ENTRIES_MAX {
            shift += 1;
        }
        let mut table = vec![NOBODY; span.div_ceil(1 << shift) as usize + 1];
        for &(first, last, mac) in v4 {
            let entry = if shift == 0 {
                Wire::of(mac).bits()
            } else {
                SOMEBODY
            };
            let (from, to) = ((first - lo) >> shift, (last - lo) >> shift);
            if let Some(block) = table.get_mut(from as usize..=to as usize) {
                block.fill(entry);
            }
        }
        Self {
            v4_lo: lo,
            shift,
            last: table.len() - 1,
            table: table.into(),
            v6,
        }
    }

    /// From now on, a packet from bound IPv4 address `addr` sent by `mac` (which the look-up
    /// allowed: another MAC of its customer) needs none (narrow spans; the entry holds one MAC).
    pub fn passes(&mut self, addr: u32, mac: Wire) {
        let i = addr.wrapping_sub(self.v4_lo) as usize;
        if let (0, Some(entry)) = (self.shift, self.table.get_mut(i)) {
            if *entry != NOBODY && i < self.last {
                *entry = mac.bits();
            }
        }
    }

    /// Whether a packet from `addr` sent by `mac` needs a look-up. IPv4 and IPv6 packets come
    /// mixed and a branch on the family would be mispredicted: an IPv6 packet reads the table
    /// at its low 32 bits too (an entry that does not match sends it to the look-up, which
    /// decides), and the answers are combined with `&` and `|`.
    #[inline]
    pub fn suspect(&self, v6: bool, addr: u128, mac: Wire) -> bool {
        let i = ((addr as u32).wrapping_sub(self.v4_lo) >> self.shift) as usize;
        let entry = self.table.get(i.min(self.last)).copied().unwrap_or(NOBODY);
        ((entry != mac.bits()) & (entry != NOBODY)) | (v6 & self.v6)
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
        let mut v4_nets = Vec::new();
        for c in &bound {
            for net in &c.networks {
                if let (IpNet::V4(n), Some(&mac)) = (net, c.macs.first()) {
                    v4_nets.push((u32::from(n.network()), u32::from(n.broadcast()), mac));
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
        Self {
            customers: Customers::new(bound),
            v4_filter,
            any_v6,
            sources: Sources::new(&v4_nets, any_v6),
        }
    }

    /// How many customers are bound.
    pub fn customers(&self) -> usize {
        self.customers.iter().count()
    }

    pub fn is_empty(&self) -> bool {
        self.customers.is_empty()
    }

    /// The observers' test of a source address and MAC; None when nobody is bound.
    pub fn sources(&self) -> Option<Sources> {
        (!self.is_empty()).then(|| self.sources.clone())
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
        // the source check: per address (every bound address within 65,536 of each other)
        let w = |m: u64| Wire::of(Mac(m));
        let ok = |s: &Sources, a: &str, m: u64| !s.suspect(false, v4(a), w(m));
        let narrow = Bound::new(&[
            customer("goneril", &["198.51.100.10/32"], &[0xa, 0xb]),
            customer("regan", &["198.51.100.16/28"], &[]),
            customer("cordelia", &["198.51.101.0/24"], &[0xc]),
        ]);
        let s = narrow.sources().unwrap();
        assert_eq!((s.shift, s.table.len()), (0, 256 + 246 + 1));
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
        // an IPv6 address whose low 32 bits are a bound IPv4 address goes to the look-up
        assert!(s.suspect(true, v6("2001:db8::c633:640a"), w(0xe)));
        assert_eq!(narrow.customer_of(true, v6("2001:db8::c633:640a")), None);
        // wide: the addresses of blocks (2^11 from 198.51.100.10 on) that hold bound ones
        let s = b.sources().unwrap();
        assert_eq!((s.shift, s.table.len()), (11, 39_330 + 1));
        assert!(!ok(&s, "198.51.100.10", 0xa) && !ok(&s, "198.51.108.9", 0xa));
        assert!(!ok(&s, "203.0.113.255", 0xc) && !ok(&s, "203.0.116.9", 0xc));
        assert!(ok(&s, "198.51.108.10", 0xa) && ok(&s, "200.1.2.3", 0xa));
        assert!(ok(&s, "198.51.100.9", 0xa) && ok(&s, "203.0.116.10", 0xc));
        assert!(s.suspect(true, v6("2001:db8:ffff::1"), w(0xa)));
        // nobody bound: no test at all
        assert!(none.sources().is_none());
        let all = Bound::new(&[customer("all", &["0.0.0.0/0"], &[0xa])])
            .sources()
            .unwrap();
        assert_eq!((all.shift, all.table.len()), (16, 65_537));
        assert!(!ok(&all, "0.0.0.0", 0xa) && !ok(&all, "255.255.255.255", 0xa));
    }
}
