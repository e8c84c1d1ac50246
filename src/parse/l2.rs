//! Layer-2 facts for the guard: the Ethernet source address and outer VLAN of a frame, and ARP
//! (Ethernet/IPv4) packets wherever the link layer carries them. Named offsets on `get`-checked
//! slices; allocates nothing, never panics. Knows nothing of bindings or alarms.
#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use super::link::{self, LinkType, Located};
use std::fmt;

/// A MAC address in the low 48 bits of a `u64` (cheap to hash, compare and copy).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mac(pub u64);

impl Mac {
    pub fn from_bytes(b: [u8; 6]) -> Self {
        let [a, b, c, d, e, f] = b;
        Mac(u64::from_be_bytes([0, 0, a, b, c, d, e, f]))
    }

    /// Group (multicast or broadcast) addresses never send frames: they cannot be bound.
    pub fn is_group(self) -> bool {
        (self.0 >> 40) & 1 == 1
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0.to_be_bytes();
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[2], b[3], b[4], b[5], b[6], b[7]
        )
    }
}

/// Text that is not a MAC address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a MAC address (expected six hex octets such as 02:00:5e:10:00:01)")]
pub struct BadMac(pub String);

impl std::str::FromStr for Mac {
    type Err = BadMac;

    /// `02:00:5e:10:00:01` or `02-00-5e-10-00-01`, either case.
    fn from_str(s: &str) -> Result<Self, BadMac> {
        let bad = || BadMac(s.to_owned());
        let sep = if s.contains('-') { '-' } else { ':' };
        let mut out = [0u8; 6];
        let mut parts = s.split(sep);
        for byte in &mut out {
            let p = parts.next().ok_or_else(bad)?;
            if p.len() != 2 {
                return Err(bad());
            }
            *byte = u8::from_str_radix(p, 16).map_err(|_| bad())?;
        }
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(Mac::from_bytes(out))
    }
}

impl serde::Serialize for Mac {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

const ETH_SOURCE: usize = 6;
const ETH_TYPE: usize = 12;
const ETH_TCI: usize = 14;
const VLAN_ID_MASK: u16 = 0x0fff;
const TPID: [u16; 3] = [0x8100, 0x88a8, 0x9100];

/// The source address of an Ethernet frame.
#[inline]
pub fn ethernet_source(frame: &[u8]) -> Option<Mac> {
    match frame.get(ETH_SOURCE..ETH_SOURCE + 6) {
        Some(&[a, b, c, d, e, f]) => Some(Mac(u64::from_be_bytes([0, 0, a, b, c, d, e, f]))),
        _ => None,
    }
}

/// The VLAN id of an Ethernet frame's outer tag; 0 when untagged.
#[inline]
pub fn outer_vlan(frame: &[u8]) -> u16 {
    let be16 = |at: usize| match frame.get(at..at + 2) {
        Some(&[a, b]) => Some(u16::from_be_bytes([a, b])),
        _ => None,
    };
    match be16(ETH_TYPE) {
        Some(t) if TPID.contains(&t) => be16(ETH_TCI).map_or(0, |tci| tci & VLAN_ID_MASK),
        _ => 0,
    }
}

/// What an ARP packet says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArpOp {
    Request,
    Reply,
    /// RARP, InARP and the rest: not about bindings.
    Other,
}

/// An ARP packet for IPv4 over Ethernet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arp {
    pub op: ArpOp,
    pub sender_mac: Mac,
    pub sender_ip: u32,
    pub target_mac: Mac,
    pub target_ip: u32,
}

impl Arp {
    /// Announces the sender's own binding to everyone (sender and target address the same).
    pub fn gratuitous(&self) -> bool {
        self.sender_ip == self.target_ip && self.sender_ip != 0
    }

    /// An address probe (RFC 5227): sender address 0.0.0.0, claims nothing.
    pub fn probe(&self) -> bool {
        self.sender_ip == 0
    }
}

const ETHERTYPE_ARP: u16 = 0x0806;
const ARP_LEN: usize = 28;
const HTYPE_ETHERNET: u16 = 1;
const PTYPE_IPV4: u16 = 0x0800;
const OP_REQUEST: u16 = 1;
const OP_REPLY: u16 = 2;

/// The ARP packet of a frame, if it is one for IPv4 over Ethernet and was captured whole
/// (behind any VLAN tags; on Ethernet and Linux cooked captures).
pub fn arp(link: LinkType, frame: &[u8]) -> Option<Arp> {
    let Located::Other {
        offset,
        ether_type: ETHERTYPE_ARP,
    } = link::locate_ip(link, frame)
    else {
        return None;
    };
    let body: &[u8; ARP_LEN] = frame.get(offset..offset + ARP_LEN)?.try_into().ok()?;
    let [h0, h1, p0, p1, hlen, plen, o0, o1, s0, s1, s2, s3, s4, s5, i0, i1, i2, i3, t0, t1, t2, t3, t4, t5, j0, j1, j2, j3] =
        *body;
    if u16::from_be_bytes([h0, h1]) != HTYPE_ETHERNET
        || u16::from_be_bytes([p0, p1]) != PTYPE_IPV4
        || hlen != 6
        || plen != 4
    {
        return None;
    }
    Some(Arp {
        op: match u16::from_be_bytes([o0, o1]) {
            OP_REQUEST => ArpOp::Request,
            OP_REPLY => ArpOp::Reply,
            _ => ArpOp::Other,
        },
        sender_mac: Mac::from_bytes([s0, s1, s2, s3, s4, s5]),
        sender_ip: u32::from_be_bytes([i0, i1, i2, i3]),
        target_mac: Mac::from_bytes([t0, t1, t2, t3, t4, t5]),
        target_ip: u32::from_be_bytes([j0, j1, j2, j3]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arp_frame(tags: &[u16], op: u16, sender: ([u8; 6], [u8; 4]), target: [u8; 4]) -> Vec<u8> {
        let mut f = vec![0xff; 6];
        f.extend_from_slice(&sender.0);
        for t in tags {
            f.extend_from_slice(&t.to_be_bytes());
            f.extend_from_slice(&[0x00, 0x0a]);
        }
        f.extend_from_slice(&[0x08, 0x06, 0, 1, 8, 0, 6, 4]);
        f.extend_from_slice(&op.to_be_bytes());
        f.extend_from_slice(&sender.0);
        f.extend_from_slice(&sender.1);
        f.extend_from_slice(&[0; 6]);
        f.extend_from_slice(&target);
        f
    }

    #[test]
    fn macs_parse_print_and_know_group_addresses() {
        let m: Mac = "02:00:5E:10:00:01".parse().unwrap();
        assert_eq!(m.to_string(), "02:00:5e:10:00:01");
        assert_eq!("02-00-5e-10-00-01".parse::<Mac>().unwrap(), m);
        assert!(!m.is_group());
        assert!("01:00:5e:00:00:01".parse::<Mac>().unwrap().is_group());
        for bad in [
            "",
            "02:00:5e:10:00",
            "02:00:5e:10:00:01:02",
            "2:00:5e:10:00:01",
            "zz:00:00:00:00:00",
        ] {
            assert!(bad.parse::<Mac>().is_err(), "{bad}");
        }
    }

    #[test]
    fn source_vlan_and_arp_behind_tags() {
        let sender = ([2, 0, 0, 0, 0, 0xaa], [198, 51, 100, 1]);
        for tags in [&[][..], &[0x8100], &[0x88a8, 0x8100]] {
            let f = arp_frame(tags, 2, sender, [198, 51, 100, 1]);
            assert_eq!(ethernet_source(&f), Some(Mac(0x0200_0000_00aa)));
            assert_eq!(outer_vlan(&f), if tags.is_empty() { 0 } else { 10 });
            let a = arp(LinkType::Ethernet, &f).unwrap();
            assert_eq!(a.op, ArpOp::Reply);
            assert_eq!(a.sender_mac.to_string(), "02:00:00:00:00:aa");
            assert_eq!(a.sender_ip, 0xc633_6401);
            assert!(a.gratuitous());
            assert!(!a.probe());
            // cut anywhere: no ARP, no panic
            for n in 0..f.len() {
                assert_eq!(arp(LinkType::Ethernet, &f[..n]), None);
            }
        }
        let request = arp_frame(
            &[],
            1,
            ([2, 0, 0, 0, 0, 1], [0, 0, 0, 0]),
            [198, 51, 100, 9],
        );
        let a = arp(LinkType::Ethernet, &request).unwrap();
        assert_eq!(a.op, ArpOp::Request);
        assert!(a.probe() && !a.gratuitous());
        // IPv4 is not ARP
        let mut ip = request.clone();
        ip[12..14].copy_from_slice(&[0x08, 0x00]);
        assert_eq!(arp(LinkType::Ethernet, &ip), None);
        assert_eq!(ethernet_source(&[0; 11]), None);
        assert_eq!(outer_vlan(&[0; 13]), 0);
    }
}
