//! Which customer a usage row belongs to. A row is an address or a network (an IPv6 aggregate,
//! or a local network's overflow row); it belongs to the customer whose networks contain it
//! whole. A network row larger than any customer's network (an overflow row) belongs to nobody:
//! it cannot be split, so it is never billed to anyone. Lookups are binary searches over the
//! customers' ranges, which never overlap (the configuration refuses that).

use crate::config::Customer;
use crate::usage::Host;
use ipnet::IpNet;
use std::net::IpAddr;

/// The configured customers, indexed for lookups by address.
#[derive(Debug, Clone, Default)]
pub struct Customers {
    list: Vec<Customer>,
    /// (first, last, customer index), sorted by first address.
    v4: Vec<(u32, u32, usize)>,
    v6: Vec<(u128, u128, usize)>,
}

impl Customers {
    pub fn new(list: Vec<Customer>) -> Self {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for (i, c) in list.iter().enumerate() {
            for net in &c.networks {
                match net {
                    IpNet::V4(n) => v4.push((u32::from(n.network()), u32::from(n.broadcast()), i)),
                    IpNet::V6(n) => {
                        v6.push((u128::from(n.network()), u128::from(n.broadcast()), i))
                    }
                }
            }
        }
        v4.sort_unstable();
        v6.sort_unstable();
        Self { list, v4, v6 }
    }

    pub fn iter(&self) -> impl Iterator<Item = &Customer> {
        self.list.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn get(&self, name: &str) -> Option<&Customer> {
        self.list.iter().find(|c| c.name == name)
    }

    /// The customer whose networks hold all of `host`.
    pub fn of(&self, host: &Host) -> Option<&Customer> {
        self.index_of(host).and_then(|i| self.list.get(i))
    }

    /// The position (in configuration order) of the customer whose networks hold all of `host`.
    #[inline]
    pub fn index_of(&self, host: &Host) -> Option<usize> {
        match host {
            Host::Addr(IpAddr::V4(a)) => find(&self.v4, u32::from(*a), u32::from(*a)),
            Host::Addr(IpAddr::V6(a)) => find(&self.v6, u128::from(*a), u128::from(*a)),
            Host::Net(IpNet::V4(n)) => {
                find(&self.v4, u32::from(n.network()), u32::from(n.broadcast()))
            }
            Host::Net(IpNet::V6(n)) => {
                find(&self.v6, u128::from(n.network()), u128::from(n.broadcast()))
            }
        }
    }

    /// The customer at a position of [`Customers::index_of`].
    pub fn at(&self, i: usize) -> Option<&Customer> {
        self.list.get(i)
    }
}

/// The entry whose range holds [lo, hi].
#[inline]
fn find<T: Ord + Copy>(ranges: &[(T, T, usize)], lo: T, hi: T) -> Option<usize> {
    let at = ranges.partition_point(|(first, _, _)| *first <= lo);
    let (first, last, i) = *ranges.get(at.checked_sub(1)?)?;
    (first <= lo && hi <= last).then_some(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn customer(name: &str, nets: &[&str]) -> Customer {
        Customer {
            name: name.into(),
            networks: nets.iter().map(|n| n.parse().unwrap()).collect(),
            vif: None,
            mark: None,
            allotment: None,
            shape: None,
            billing_day: 1,
            macs: Vec::new(),
        }
    }

    #[test]
    fn rows_belong_to_the_customer_that_holds_them_whole() {
        let cs = Customers::new(vec![
            customer("goneril", &["198.51.100.10/32", "2001:db8:100:1::/64"]),
            customer("regan", &["198.51.100.16/28", "2001:db8:100:2::5/128"]),
        ]);
        let of = |h: &str| cs.of(&h.parse().unwrap()).map(|c| c.name.clone());
        assert_eq!(of("198.51.100.10").as_deref(), Some("goneril"));
        assert_eq!(of("198.51.100.11"), None);
        assert_eq!(of("198.51.100.16").as_deref(), Some("regan"));
        assert_eq!(of("198.51.100.31").as_deref(), Some("regan"));
        assert_eq!(of("198.51.100.32"), None);
        assert_eq!(of("198.51.100.9"), None);
        assert_eq!(of("2001:db8:100:1::abcd").as_deref(), Some("goneril"));
        assert_eq!(of("2001:db8:100:1::/64").as_deref(), Some("goneril"));
        assert_eq!(of("2001:db8:100:1:8000::/65").as_deref(), Some("goneril"));
        assert_eq!(of("2001:db8:100:2::5").as_deref(), Some("regan"));
        assert_eq!(of("2001:db8:100:2::6"), None);
        // Overflow rows and aggregates wider than a customer belong to nobody.
        assert_eq!(of("198.51.100.0/24"), None);
        assert_eq!(of("2001:db8:100:2::/64"), None);
        assert_eq!(of("2001:db8:100::/56"), None);
        assert_eq!(cs.get("regan").unwrap().networks.len(), 2);
    }
}
