//! Link layers: finds where the outermost IP header starts and which version the link announces.
//! Dispatches on the capture's link type only; never guesses from the bytes (except raw IP).
#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use super::Family;
use etherparse::{EtherType, Ethernet2HeaderSlice, SingleVlanHeaderSlice};

/// The link types bwacct reads, by their pcap `DLT_`/`LINKTYPE_` numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkType {
    /// 1: Ethernet, with 802.1Q / 802.1ad tags, MACsec (integrity only), NSH, Arista timestamps,
    /// MPLS or PPPoE in front of IP.
    Ethernet,
    /// 113: Linux cooked capture v1 (16-byte header).
    LinuxSll,
    /// 276: Linux cooked capture v2 (20-byte header, what `tcpdump -i any` writes).
    LinuxSll2,
    /// 12, 14, 101: raw IP, the version nibble tells v4 from v6.
    Raw,
    /// 228: raw IPv4 only.
    RawV4,
    /// 229: raw IPv6 only.
    RawV6,
    /// 0: BSD loopback, address family in the capturing host's byte order.
    Null,
    /// 108: OpenBSD loopback, address family in network byte order.
    Loop,
}

/// A link type this program cannot read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unsupported link type {dlt} ({name}); bwacct reads Ethernet (1), Linux cooked SLL (113) and SLL2 (276), raw IP (12, 14, 101, 228, 229) and BSD loopback (0, 108)")]
pub struct UnsupportedLinkType {
    pub dlt: i32,
    pub name: &'static str,
}

impl LinkType {
    /// Maps a pcap data-link type number to a link type, or a clear error naming it.
    pub fn from_dlt(dlt: i32) -> Result<Self, UnsupportedLinkType> {
        Ok(match dlt {
            1 => Self::Ethernet,
            113 => Self::LinuxSll,
            276 => Self::LinuxSll2,
            12 | 14 | 101 => Self::Raw,
            228 => Self::RawV4,
            229 => Self::RawV6,
            0 => Self::Null,
            108 => Self::Loop,
            _ => {
                return Err(UnsupportedLinkType {
                    dlt,
                    name: dlt_name(dlt),
                })
            }
        })
    }
}

/// Names of common link types, for error messages.
fn dlt_name(dlt: i32) -> &'static str {
    match dlt {
        6 => "IEEE 802.5 Token Ring",
        9 => "PPP",
        10 => "FDDI",
        50 => "PPP in HDLC framing",
        104 => "Cisco HDLC",
        105 => "IEEE 802.11",
        107 => "Frame Relay",
        119 => "Prism monitor mode",
        127 => "IEEE 802.11 radiotap",
        147..=162 => "user-defined",
        192 => "PPI",
        195 => "IEEE 802.15.4",
        220 => "USB Linux mmapped",
        _ => "unknown",
    }
}

/// Where the IP header starts, or why there is none.
pub(super) enum Located {
    Ip {
        offset: usize,
        family: Family,
    },
    NonIp,
    /// Another protocol announced by an ethertype (ARP, LLDP, ...), its payload at `offset`.
    Other {
        offset: usize,
        ether_type: u16,
    },
    Malformed,
}

const ETHERTYPE_MPLS_UNICAST: u16 = 0x8847;
const ETHERTYPE_MPLS_MULTICAST: u16 = 0x8848;
const ETHERTYPE_PPPOE_SESSION: u16 = 0x8864;
/// IEEE 802.1AE MACsec.
const ETHERTYPE_MACSEC: u16 = 0x88e5;
/// Network Service Header (RFC 8300).
const ETHERTYPE_NSH: u16 = 0x894f;
/// Arista's vendor-specific protocol (a timestamp inserted by the switch before the EtherType).
const ETHERTYPE_ARISTA: u16 = 0xd28b;
const PPP_IPV4: u16 = 0x0021;
const PPP_IPV6: u16 = 0x0057;
/// Shim headers (VLAN tags, MACsec, NSH, Arista timestamps, inner Ethernet) walked at most
/// (QinQ needs two; a long chain is a loop of garbage).
const MAX_LAYERS: usize = 8;
/// An inner Ethernet header's EtherType, after the two addresses; the header is 14 bytes.
const ETHERNET_TYPE: usize = 12;
/// MACsec SecTAG: TCI/AN, short length, packet number; the 8-byte SCI follows when TCI.SC is set.
const MACSEC_TCI: usize = 0;
const MACSEC_TAG_LEN: usize = 6;
const MACSEC_SCI_LEN: usize = 8;
const MACSEC_TCI_VERSION: u8 = 0x80;
const MACSEC_TCI_SC: u8 = 0x20;
/// Encrypted (E) or changed (C) user data: the payload cannot be read.
const MACSEC_TCI_E_OR_C: u8 = 0x0c;
/// NSH base header: version (2 bits) in byte 0, length in 4-byte words (6 bits) in byte 1, next
/// protocol in byte 3.
const NSH_VERSION_BYTE: usize = 0;
const NSH_LENGTH_BYTE: usize = 1;
const NSH_NEXT: usize = 3;
const NSH_LENGTH_MASK: u8 = 0x3f;
/// Base header and service path header: the least an NSH can be.
const NSH_MIN_WORDS: usize = 2;
const NSH_NEXT_IPV4: u8 = 1;
const NSH_NEXT_IPV6: u8 = 2;
const NSH_NEXT_ETHERNET: u8 = 3;
const NSH_NEXT_NSH: u8 = 4;
const NSH_NEXT_MPLS: u8 = 5;
/// Arista: subtype (2 bytes), version (2 bytes), then a 64- or 48-bit timestamp.
const ARISTA_SUBTYPE: usize = 0;
const ARISTA_VERSION: usize = 2;
const ARISTA_HEADER_LEN: usize = 4;
const ARISTA_SUBTYPE_TIMESTAMP: u16 = 0x0001;
/// Bits 4..8 of the version: the timestamp format (the low bits name the stamping hardware,
/// bits 8.. the timescale; neither changes the layout).
const ARISTA_FORMAT_SHIFT: u16 = 4;
const ARISTA_FORMAT_MASK: u16 = 0x0f;
const ARISTA_FORMAT_64: u16 = 1;
const ARISTA_FORMAT_48: u16 = 2;
/// MPLS labels walked at most.
const MAX_LABELS: usize = 8;
const VLAN_TAG_LEN: usize = 4;
const MPLS_LABEL_LEN: usize = 4;
const PPPOE_LEN: usize = 8;
const SLL_LEN: usize = 16;
const SLL_PROTOCOL: usize = 14;
const SLL2_LEN: usize = 20;
const SLL2_PROTOCOL: usize = 0;
const NULL_LEN: usize = 4;
/// `AF_INET` on every BSD and Linux.
const AF_INET: u32 = 2;
/// `AF_INET6` on Linux, NetBSD/OpenBSD, FreeBSD and Darwin.
const AF_INET6: [u32; 4] = [10, 24, 28, 30];

#[inline(always)]
fn be16(data: &[u8], at: usize) -> Option<u16> {
    match data.get(at..at + 2) {
        Some(&[a, b]) => Some(u16::from_be_bytes([a, b])),
        _ => None,
    }
}

#[inline(always)]
pub(super) fn locate_ip(link: LinkType, frame: &[u8]) -> Located {
    match link {
        LinkType::Ethernet => ethernet(frame),
        LinkType::LinuxSll => match be16(frame, SLL_PROTOCOL) {
            Some(proto) => ether_type(frame, SLL_LEN, proto),
            None => Located::Malformed,
        },
        LinkType::LinuxSll2 => match be16(frame, SLL2_PROTOCOL) {
            Some(proto) if frame.len() >= SLL2_LEN => ether_type(frame, SLL2_LEN, proto),
            _ => Located::Malformed,
        },
        LinkType::Raw => Located::Ip {
            offset: 0,
            family: Family::Either,
        },
        LinkType::RawV4 => Located::Ip {
            offset: 0,
            family: Family::V4,
        },
        LinkType::RawV6 => Located::Ip {
            offset: 0,
            family: Family::V6,
        },
        LinkType::Null | LinkType::Loop => loopback(link, frame),
    }
}

#[inline(always)]
fn ethernet(frame: &[u8]) -> Located {
    match Ethernet2HeaderSlice::from_slice(frame) {
        Ok(eth) => ether_type(frame, eth.slice().len(), eth.ether_type().0),
        Err(_) => Located::Malformed,
    }
}

/// Walks VLAN tags, MACsec (integrity only), NSH, Arista timestamps, MPLS labels and PPPoE
/// from `offset`, where `ether_type` announces what follows, down to the IP header.
#[inline(always)]
fn ether_type(frame: &[u8], mut offset: usize, mut ether_type: u16) -> Located {
    for _ in 0..MAX_LAYERS {
        let next = match EtherType(ether_type) {
            EtherType::IPV4 => {
                return Located::Ip {
                    offset,
                    family: Family::V4,
                }
            }
            EtherType::IPV6 => {
                return Located::Ip {
                    offset,
                    family: Family::V6,
                }
            }
            EtherType::VLAN_TAGGED_FRAME
            | EtherType::PROVIDER_BRIDGING
            | EtherType::VLAN_DOUBLE_TAGGED_FRAME => {
                match frame
                    .get(offset..)
                    .and_then(|rest| SingleVlanHeaderSlice::from_slice(rest).ok())
                {
                    Some(tag) => Shim::Next(offset + VLAN_TAG_LEN, tag.ether_type().0),
                    None => Shim::Stop(Located::Malformed),
                }
            }
            EtherType(ETHERTYPE_MACSEC) => macsec(frame, offset),
            EtherType(ETHERTYPE_ARISTA) => arista(frame, offset),
            EtherType(ETHERTYPE_NSH) => nsh(frame, offset),
            EtherType(ETHERTYPE_MPLS_UNICAST | ETHERTYPE_MPLS_MULTICAST) => {
                return mpls(frame, offset);
            }
            EtherType(ETHERTYPE_PPPOE_SESSION) => {
                return match be16(frame, offset + PPPOE_LEN - 2) {
                    Some(PPP_IPV4) => Located::Ip {
                        offset: offset + PPPOE_LEN,
                        family: Family::V4,
                    },
                    Some(PPP_IPV6) => Located::Ip {
                        offset: offset + PPPOE_LEN,
                        family: Family::V6,
                    },
                    Some(_) => Located::NonIp,
                    None => Located::Malformed,
                };
            }
            EtherType(other) => {
                return Located::Other {
                    offset,
                    ether_type: other,
                }
            }
        };
        match next {
            Shim::Next(at, t) => (offset, ether_type) = (at, t),
            Shim::Stop(located) => return located,
        }
    }
    Located::NonIp
}

/// After one shim header: where the next EtherType-announced layer starts, or a verdict.
enum Shim {
    Next(usize, u16),
    Stop(Located),
}

/// EtherType and offset after the 2-byte type field at `at`.
#[inline(always)]
fn next_type(frame: &[u8], at: usize) -> Shim {
    match be16(frame, at) {
        Some(t) => Shim::Next(at + 2, t),
        None => Shim::Stop(Located::Malformed),
    }
}

/// An 802.1AE SecTAG. With integrity only (neither E nor C set) the original EtherType and
/// payload follow in clear; an encrypted payload is not IP that can be read.
fn macsec(frame: &[u8], offset: usize) -> Shim {
    let Some(&tci) = frame.get(offset + MACSEC_TCI) else {
        return Shim::Stop(Located::Malformed);
    };
    if tci & MACSEC_TCI_VERSION != 0 || tci & MACSEC_TCI_E_OR_C != 0 {
        return Shim::Stop(Located::NonIp);
    }
    let sci = if tci & MACSEC_TCI_SC != 0 {
        MACSEC_SCI_LEN
    } else {
        0
    };
    next_type(frame, offset + MACSEC_TAG_LEN + sci)
}

/// Arista's timestamp header: subtype 1, a version whose format nibble gives the size.
fn arista(frame: &[u8], offset: usize) -> Shim {
    let (Some(subtype), Some(version)) = (
        be16(frame, offset + ARISTA_SUBTYPE),
        be16(frame, offset + ARISTA_VERSION),
    ) else {
        return Shim::Stop(Located::Malformed);
    };
    if subtype != ARISTA_SUBTYPE_TIMESTAMP {
        return Shim::Stop(Located::NonIp);
    }
    let stamp = match (version >> ARISTA_FORMAT_SHIFT) & ARISTA_FORMAT_MASK {
        ARISTA_FORMAT_64 => 8,
        ARISTA_FORMAT_48 => 6,
        _ => return Shim::Stop(Located::NonIp),
    };
    next_type(frame, offset + ARISTA_HEADER_LEN + stamp)
}

/// A Network Service Header (RFC 8300) and the IP, MPLS, Ethernet or NSH payload it announces.
fn nsh(frame: &[u8], offset: usize) -> Shim {
    let (Some(&first), Some(&length), Some(&next)) = (
        frame.get(offset + NSH_VERSION_BYTE),
        frame.get(offset + NSH_LENGTH_BYTE),
        frame.get(offset + NSH_NEXT),
    ) else {
        return Shim::Stop(Located::Malformed);
    };
    let words = usize::from(length & NSH_LENGTH_MASK);
    if first >> 6 != 0 || words < NSH_MIN_WORDS {
        return Shim::Stop(Located::Malformed);
    }
    let payload = offset + words * 4;
    match next {
        NSH_NEXT_IPV4 => Shim::Stop(Located::Ip {
            offset: payload,
            family: Family::V4,
        }),
        NSH_NEXT_IPV6 => Shim::Stop(Located::Ip {
            offset: payload,
            family: Family::V6,
        }),
        NSH_NEXT_MPLS => Shim::Stop(mpls(frame, payload)),
        NSH_NEXT_ETHERNET => next_type(frame, payload + ETHERNET_TYPE),
        NSH_NEXT_NSH => Shim::Next(payload, ETHERTYPE_NSH),
        _ => Shim::Stop(Located::NonIp),
    }
}

/// An MPLS label stack: the payload after the bottom label is IP when its version nibble says so.
fn mpls(frame: &[u8], mut offset: usize) -> Located {
    for _ in 0..MAX_LABELS {
        let Some(label) = frame.get(offset..offset + MPLS_LABEL_LEN) else {
            return Located::Malformed;
        };
        offset += MPLS_LABEL_LEN;
        let bottom = label.get(2).is_some_and(|b| b & 1 == 1);
        if bottom {
            return match frame.get(offset).map(|b| b >> 4) {
                Some(4) => Located::Ip {
                    offset,
                    family: Family::V4,
                },
                Some(6) => Located::Ip {
                    offset,
                    family: Family::V6,
                },
                Some(_) => Located::NonIp,
                None => Located::Malformed,
            };
        }
    }
    Located::NonIp
}

/// BSD loopback: a 4-byte address family, host order (`Null`, either order accepted) or network
/// order (`Loop`).
fn loopback(link: LinkType, frame: &[u8]) -> Located {
    let Some(&[a, b, c, d]) = frame.get(..NULL_LEN) else {
        return Located::Malformed;
    };
    let be = u32::from_be_bytes([a, b, c, d]);
    let family_of = |af: u32| {
        if af == AF_INET {
            Some(Family::V4)
        } else if AF_INET6.contains(&af) {
            Some(Family::V6)
        } else {
            None
        }
    };
    let family = match link {
        LinkType::Loop => family_of(be),
        _ => family_of(be).or_else(|| family_of(u32::from_le_bytes([a, b, c, d]))),
    };
    match family {
        Some(family) => Located::Ip {
            offset: NULL_LEN,
            family,
        },
        None => Located::NonIp,
    }
}
