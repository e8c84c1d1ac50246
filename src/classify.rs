//! Packet facts × configuration → where a packet counts: the local network (and so the counter
//! table) of each end, and the traffic classes. Pure lookups, no allocation on the packet path.
#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use crate::parse::{IpFacts, Proto};
use ipnet::IpNet;

/// Application classes, looked up by port as BandwidthD does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum App {
    Http,
    Ftp,
    Mail,
    P2p,
}

impl App {
    pub const ALL: [App; 4] = [App::Http, App::Ftp, App::Mail, App::P2p];

    pub fn name(self) -> &'static str {
        match self {
            App::Http => "http",
            App::Ftp => "ftp",
            App::Mail => "mail",
            App::P2p => "p2p",
        }
    }
}

/// Every traffic class a counter keeps, in storage and report order: the four protocol classes
/// (which sum to the total) and the four application classes (a breakdown of tcp and udp).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Class {
    Proto(Proto),
    App(App),
}

impl Class {
    pub const ALL: [Class; 8] = [
        Class::Proto(Proto::Tcp),
        Class::Proto(Proto::Udp),
        Class::Proto(Proto::Icmp),
        Class::Proto(Proto::Other),
        Class::App(App::Http),
        Class::App(App::Ftp),
        Class::App(App::Mail),
        Class::App(App::P2p),
    ];

    /// Position in [`Class::ALL`].
    #[inline]
    pub fn index(self) -> usize {
        match self {
            Class::Proto(p) => p as usize,
            Class::App(a) => 4 + a as usize,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Class::Proto(Proto::Tcp) => "tcp",
            Class::Proto(Proto::Udp) => "udp",
            Class::Proto(Proto::Icmp) => "icmp",
            Class::Proto(Proto::Other) => "other",
            Class::App(a) => a.name(),
        }
    }
}

/// Port → application class: a bitmap of the listed ports (8 KiB, stays in L1 cache: most
/// ports are in no list) in front of a byte per port (64 KiB, read only for listed ports), and
/// one more byte, always 0, read for packets with no listed port.
pub struct PortTable {
    listed: Box<[u64; 1024]>,
    class: Box<[u8; UNLISTED + 1]>,
}

/// [`PortTable`]'s byte read for a packet with no listed port.
const UNLISTED: usize = 65536;

/// [`PortTable`]'s byte → class.
const APP_BY_CODE: [Option<App>; 5] = [
    None,
    Some(App::Http),
    Some(App::Ftp),
    Some(App::Mail),
    Some(App::P2p),
];

impl PortTable {
    /// Builds the table; a port listed for two classes keeps the first class in `lists` order.
    pub fn new(lists: &[(App, Vec<u16>)]) -> Self {
        let mut listed = Box::new([0u64; 1024]);
        let mut class = Box::new([0u8; UNLISTED + 1]);
        for (app, ports) in lists {
            for &port in ports {
                if let Some(slot) = class.get_mut(usize::from(port)) {
                    if *slot == 0 {
                        *slot = *app as u8 + 1;
                    }
                }
                if let Some(word) = listed.get_mut(usize::from(port >> 6)) {
                    *word |= 1 << (port & 63);
                }
            }
        }
        Self { listed, class }
    }

    #[inline(always)]
    fn listed(&self, port: u16) -> bool {
        let word = self.listed.get(usize::from(port >> 6)).copied();
        word.unwrap_or(0) & (1 << (port & 63)) != 0
    }

    /// The application class of a TCP/UDP packet: the destination port first, then the source.
    /// Selects rather than branches (which port is listed, if one is, changes from packet to
    /// packet and a branch on it is mispredicted often): the class byte read is the chosen
    /// port's, or the always-0 one.
    #[inline(always)]
    pub fn classify(&self, facts: &IpFacts) -> Option<App> {
        let (src, dst) = facts.ports?;
        let src_or_none = if self.listed(src) {
            usize::from(src)
        } else {
            UNLISTED
        };
        let at = if self.listed(dst) {
            usize::from(dst)
        } else {
            src_or_none
        };
        let code = self.class.get(at).copied().unwrap_or(0);
        APP_BY_CODE.get(usize::from(code)).copied().flatten()
    }
}

/// Index of a local network in the configuration order (and of its counter table).
pub type NetId = usize;

/// The configured local networks, as masks for a fast linear match (operators configure a
/// handful; networks do not overlap, the config checks that).
#[derive(Debug, Clone)]
pub struct LocalNets {
    v4: Vec<(u32, u32, NetId)>,
    v6: Vec<(u128, u128, NetId)>,
    v6_key_mask: u128,
}

impl LocalNets {
    /// `ipv6_prefix` aggregates IPv6 addresses to that prefix length (128 = per address).
    pub fn new(nets: &[IpNet], ipv6_prefix: u8) -> Self {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for (id, net) in nets.iter().enumerate() {
            match net {
                IpNet::V4(n) => v4.push((u32::from(n.network()), u32::from(n.netmask()), id)),
                IpNet::V6(n) => v6.push((u128::from(n.network()), u128::from(n.netmask()), id)),
            }
        }
        let v6_key_mask = match ipv6_prefix {
            0 => 0,
            p if p >= 128 => u128::MAX,
            p => u128::MAX << (128 - u32::from(p)),
        };
        Self {
            v4,
            v6,
            v6_key_mask,
        }
    }

    /// The local network holding an address, and the counter key for it (the address itself, or
    /// its aggregate for IPv6 when `ipv6_prefix` < 128).
    #[inline]
    pub fn lookup(&self, v6: bool, addr: u128) -> Option<(NetId, u128)> {
        if v6 {
            self.v6
                .iter()
                .find(|(net, mask, _)| addr & mask == *net)
                .map(|&(_, _, id)| (id, addr & self.v6_key_mask))
        } else {
            let a = addr as u32;
            self.v4
                .iter()
                .find(|(net, mask, _)| a & mask == *net)
                .map(|&(_, _, id)| (id, addr))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::Proto;

    fn facts(ports: Option<(u16, u16)>) -> IpFacts {
        IpFacts {
            v6: false,
            src: 0,
            dst: 0,
            bytes: 40,
            proto: Proto::Tcp,
            ports,
            length_mismatch: false,
        }
    }

    fn table() -> PortTable {
        PortTable::new(&[
            (App::Mail, vec![25, 587]),
            (App::Http, vec![80, 443]),
            (App::Ftp, vec![20, 21]),
            (App::P2p, (6881..=6889).collect()),
        ])
    }

    #[test]
    fn destination_port_wins_then_source() {
        let t = table();
        assert_eq!(t.classify(&facts(Some((25, 443)))), Some(App::Http));
        assert_eq!(t.classify(&facts(Some((443, 51000)))), Some(App::Http));
        assert_eq!(t.classify(&facts(Some((51000, 6881)))), Some(App::P2p));
        assert_eq!(t.classify(&facts(Some((51000, 53)))), None);
        assert_eq!(t.classify(&facts(None)), None);
    }

    #[test]
    fn the_lowest_and_highest_ports_classify_like_any_other() {
        let t = PortTable::new(&[(App::Ftp, vec![0]), (App::P2p, vec![65535])]);
        assert_eq!(t.classify(&facts(Some((0, 1)))), Some(App::Ftp));
        assert_eq!(t.classify(&facts(Some((1, 65535)))), Some(App::P2p));
        assert_eq!(t.classify(&facts(Some((65535, 0)))), Some(App::Ftp));
        assert_eq!(t.classify(&facts(Some((1, 65534)))), None);
    }

    #[test]
    fn local_lookup_and_v6_aggregation() {
        let nets: Vec<IpNet> = vec![
            "198.51.100.0/24".parse().unwrap(),
            "2001:db8:100::/56".parse().unwrap(),
        ];
        let l = LocalNets::new(&nets, 64);
        let a4 = u128::from(u32::from(std::net::Ipv4Addr::new(198, 51, 100, 7)));
        assert_eq!(l.lookup(false, a4), Some((0, a4)));
        assert_eq!(
            l.lookup(
                false,
                u128::from(u32::from(std::net::Ipv4Addr::new(198, 51, 101, 7)))
            ),
            None
        );
        let a6 = u128::from("2001:db8:100:1::5".parse::<std::net::Ipv6Addr>().unwrap());
        let k6 = u128::from("2001:db8:100:1::".parse::<std::net::Ipv6Addr>().unwrap());
        assert_eq!(l.lookup(true, a6), Some((1, k6)));
        assert_eq!(
            l.lookup(
                true,
                u128::from("2001:db8:200::1".parse::<std::net::Ipv6Addr>().unwrap())
            ),
            None
        );
    }
}
