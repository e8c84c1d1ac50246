//! The outermost IPv4/IPv6 header: validity, the byte count DESIGN.md defines, protocol class
//! and ports. Reads named offsets from `get`-checked slices; allocates nothing, never panics.
#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use super::{Decoded, Family};
use etherparse::{IpNumber, Ipv6HeaderSlice};

/// Protocol class of a packet, from the protocol number after the IPv6 extension headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Proto {
    Tcp = 0,
    Udp = 1,
    Icmp = 2,
    Other = 3,
}

impl Proto {
    #[inline(always)]
    fn from_number(n: u8) -> Self {
        match IpNumber(n) {
            IpNumber::TCP => Self::Tcp,
            IpNumber::UDP => Self::Udp,
            IpNumber::ICMP | IpNumber::IPV6_ICMP => Self::Icmp,
            _ => Self::Other,
        }
    }
}

/// What counting needs from one readable packet. Addresses are kept as integers (IPv4 in a
/// `u32`, IPv6 in a `u128`) so nothing is built per packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpFacts {
    pub v6: bool,
    pub src: u128,
    pub dst: u128,
    /// Layer-3 bytes: the declared length, capped at the wire.
    pub bytes: u64,
    pub proto: Proto,
    /// (source, destination) ports of TCP and UDP when present (not in non-first fragments).
    pub ports: Option<(u16, u16)>,
    /// The header declared more than was on the wire (the count was capped).
    pub length_mismatch: bool,
}

const V4_MIN_HEADER: usize = 20;
const V4_TOTAL_LEN: usize = 2;
const V4_FRAG: usize = 6;
const V4_PROTOCOL: usize = 9;
const V4_SRC: usize = 12;
const V4_DST: usize = 16;
const V4_FRAG_OFFSET_MASK: u16 = 0x1fff;
const V6_HEADER: usize = 40;
/// IPv6 extension headers walked to find the protocol, at most.
const MAX_EXT_HEADERS: usize = 8;
const EXT_HOP_BY_HOP: u8 = 0;
const EXT_ROUTING: u8 = 43;
const EXT_FRAGMENT: u8 = 44;
const EXT_DEST_OPTS: u8 = 60;
const FRAGMENT_HEADER_LEN: usize = 8;
const OPT_PAD1: u8 = 0;
const OPT_JUMBO: u8 = 0xc2;
const OPT_JUMBO_LEN: u8 = 4;
/// Bytes of a TCP or UDP header that hold the two ports.
const PORTS_LEN: usize = 4;

#[inline(always)]
fn be16(data: &[u8], at: usize) -> Option<u16> {
    match data.get(at..at + 2) {
        Some(&[a, b]) => Some(u16::from_be_bytes([a, b])),
        _ => None,
    }
}

#[inline(always)]
fn be32(data: &[u8], at: usize) -> Option<u32> {
    match data.get(at..at + 4) {
        Some(&[a, b, c, d]) => Some(u32::from_be_bytes([a, b, c, d])),
        _ => None,
    }
}

/// `l3` starts at the IP header; `wire_l3` is the wire length minus the link-layer header.
#[inline(always)]
pub(super) fn decode(family: Family, l3: &[u8], wire_l3: u64) -> Decoded {
    let nibble = l3.first().map(|b| b >> 4);
    match (family, nibble) {
        (Family::V4 | Family::Either, Some(4)) => v4(l3, wire_l3),
        (Family::V6 | Family::Either, Some(6)) => v6(l3, wire_l3),
        _ => Decoded::Malformed,
    }
}

/// Caps a declared length at the wire.
#[inline(always)]
fn cap(declared: u64, wire_l3: u64) -> (u64, bool) {
    if declared > wire_l3 {
        (wire_l3, true)
    } else {
        (declared, false)
    }
}

/// Ports of a TCP/UDP header starting at `at`, if its first four bytes are inside both the
/// captured bytes and the declared packet (`end`).
#[inline(always)]
fn ports(l3: &[u8], at: usize, end: usize) -> Option<(u16, u16)> {
    if at + PORTS_LEN > end {
        return None;
    }
    Some((be16(l3, at)?, be16(l3, at + 2)?))
}

#[inline(always)]
fn v4(l3: &[u8], wire_l3: u64) -> Decoded {
    let Some(header) = l3.get(..V4_MIN_HEADER) else {
        return Decoded::Malformed;
    };
    let ihl_bytes = usize::from(header.first().map_or(0, |b| b & 0x0f)) * 4;
    let (Some(total), Some(frag), Some(&protocol), Some(src), Some(dst)) = (
        be16(header, V4_TOTAL_LEN),
        be16(header, V4_FRAG),
        header.get(V4_PROTOCOL),
        be32(header, V4_SRC),
        be32(header, V4_DST),
    ) else {
        return Decoded::Malformed;
    };
    if ihl_bytes < V4_MIN_HEADER || (total != 0 && usize::from(total) < ihl_bytes) {
        return Decoded::Malformed;
    }
    // Total length 0: a TSO/GSO or BIG TCP super-packet seen on the sender; the wire decides.
    let declared = if total == 0 {
        wire_l3
    } else {
        u64::from(total)
    };
    let (bytes, length_mismatch) = cap(declared, wire_l3);
    let proto = Proto::from_number(protocol);
    let first_fragment = frag & V4_FRAG_OFFSET_MASK == 0;
    let ports = match proto {
        Proto::Tcp | Proto::Udp if first_fragment => {
            let end = if total == 0 {
                l3.len()
            } else {
                usize::from(total)
            };
            ports(l3, ihl_bytes, end)
        }
        _ => None,
    };
    Decoded::Ip(IpFacts {
        v6: false,
        src: u128::from(src),
        dst: u128::from(dst),
        bytes,
        proto,
        ports,
        length_mismatch,
    })
}

#[inline(always)]
fn v6(l3: &[u8], wire_l3: u64) -> Decoded {
    let Ok(header) = Ipv6HeaderSlice::from_slice(l3) else {
        return Decoded::Malformed;
    };
    let payload_len = header.payload_length();
    let first_next = header.next_header().0;
    let declared = if payload_len != 0 {
        (V6_HEADER as u64) + u64::from(payload_len)
    } else if first_next == EXT_HOP_BY_HOP {
        // RFC 2675: payload length 0 with a hop-by-hop header needs a Jumbo Payload option.
        match jumbo_length(l3) {
            Some(jumbo) => (V6_HEADER as u64) + u64::from(jumbo),
            None => return Decoded::Malformed,
        }
    } else {
        // TSO/GSO super-packet without a hop-by-hop header: the wire decides.
        wire_l3
    };
    let (bytes, length_mismatch) = cap(declared, wire_l3);
    let end = if payload_len == 0 {
        l3.len()
    } else {
        V6_HEADER + usize::from(payload_len)
    };
    let (protocol, l4_offset, first_fragment) = walk_extensions(l3, first_next);
    let proto = protocol.map_or(Proto::Other, Proto::from_number);
    let ports = match (proto, l4_offset) {
        (Proto::Tcp | Proto::Udp, Some(at)) if first_fragment => ports(l3, at, end),
        _ => None,
    };
    Decoded::Ip(IpFacts {
        v6: true,
        src: u128::from_be_bytes(header.source()),
        dst: u128::from_be_bytes(header.destination()),
        bytes,
        proto,
        ports,
        length_mismatch,
    })
}

/// Walks hop-by-hop, routing, fragment and destination-options headers. Returns the final
/// protocol number (None when an extension header was cut before its next-header byte), where
/// the transport header starts (None when it cannot be located), and whether this is a first
/// fragment or no fragment at all.
#[inline(always)]
fn walk_extensions(l3: &[u8], mut next: u8) -> (Option<u8>, Option<usize>, bool) {
    let mut offset = V6_HEADER;
    let mut first_fragment = true;
    for _ in 0..MAX_EXT_HEADERS {
        let len = match next {
            EXT_HOP_BY_HOP | EXT_ROUTING | EXT_DEST_OPTS => match l3.get(offset + 1) {
                Some(&units) => (usize::from(units) + 1) * 8,
                None => return (None, None, first_fragment),
            },
            EXT_FRAGMENT => {
                match be16(l3, offset + 2) {
                    Some(off_flags) => first_fragment = off_flags >> 3 == 0,
                    None => return (None, None, false),
                }
                FRAGMENT_HEADER_LEN
            }
            _ => return (Some(next), Some(offset), first_fragment),
        };
        match l3.get(offset) {
            Some(&n) => next = n,
            None => return (None, None, first_fragment),
        }
        offset += len;
    }
    (Some(next), None, first_fragment)
}

/// The Jumbo Payload length from the hop-by-hop header right after the IPv6 header, if the
/// header was captured and carries that option.
fn jumbo_length(l3: &[u8]) -> Option<u32> {
    let units = *l3.get(V6_HEADER + 1)?;
    let end = V6_HEADER + (usize::from(units) + 1) * 8;
    let mut at = V6_HEADER + 2;
    while at < end {
        let kind = *l3.get(at)?;
        if kind == OPT_PAD1 {
            at += 1;
            continue;
        }
        let len = *l3.get(at + 1)?;
        if kind == OPT_JUMBO && len == OPT_JUMBO_LEN {
            return be32(l3, at + 2);
        }
        at += 2 + usize::from(len);
    }
    None
}
