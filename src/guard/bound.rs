//! The customers bound to MACs (`macs = [...]`), indexed for the packet path: a 65,536-bit
//! filter on the low 16 bits of IPv4 sources rejects most packets with one load before the
//! customer lookup (`crate::customer::Customers`, shared with reports and quotas).
#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use crate::config::Customer;
use crate::customer::Customers;
use crate::parse::l2::Mac;
use crate::usage::Host;
use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const FILTER_WORDS: usize = 65_536 / 64;

/// Bound customers and their MACs.
#[derive(Debug)]
pub struct Bound {
    customers: Customers,
    /// Inline, not boxed: one pointer from the observer to the bits.
    v4_filter: [u64; FILTER_WORDS],
    any_v6: bool,
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
        for c in &bound {
            for net in &c.networks {
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
        }
    }

    /// How many customers are bound.
    pub fn customers(&self) -> usize {
        self.customers.iter().count()
    }

    pub fn is_empty(&self) -> bool {
        self.customers.is_empty()
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
    }
}
