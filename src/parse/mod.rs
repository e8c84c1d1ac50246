//! Packet decoding: (link type, captured bytes, wire length) → the outermost IP header's facts.
//! Owns the counting rules of DESIGN.md for lengths and validity; allocates nothing, never panics.
//!
//! Every accessor works on `get`-checked slices: a frame of any length and content yields one of
//! [`Decoded::Ip`], [`Decoded::NonIp`] or [`Decoded::Malformed`].

mod ip;
pub mod l2;
mod link;

pub use ip::{IpFacts, Proto};
pub use link::{LinkType, UnsupportedLinkType};

/// What one frame turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decoded {
    /// The outermost IP header is readable and sane: this packet counts.
    Ip(IpFacts),
    /// Not IP at all (ARP, LLDP, STP, ...).
    NonIp,
    /// The link layer says IP but the header is missing, cut, or insane.
    Malformed,
}

/// Decodes one frame. `wire_len` is libpcap's `len` (the original length on the wire), not the
/// captured length; lengths are capped by it as DESIGN.md says. Always inlined, as
/// [`crate::account::Accountant::count`] and the link-layer and IP decoders it calls are, so
/// that a capture loop's callback decodes and counts with the facts in registers: as two calls
/// the facts went through memory, and live capture spent about a fifth more CPU per packet;
/// with the decoders left to the compiler (`#[inline]`), `locate_ip` and `ip::decode` stayed
/// calls and counting a frame of the generated capture took about a fifth longer again.
#[inline(always)]
pub fn decode(link: LinkType, frame: &[u8], wire_len: u32) -> Decoded {
    match link::locate_ip(link, frame) {
        link::Located::Ip { offset, family } => {
            // The link-layer header is everything in front of the IP header.
            let wire_l3 = u64::from(wire_len).saturating_sub(offset as u64);
            match frame.get(offset..) {
                Some(l3) => ip::decode(family, l3, wire_l3),
                None => Decoded::Malformed,
            }
        }
        link::Located::NonIp | link::Located::Other { .. } => Decoded::NonIp,
        link::Located::Malformed => Decoded::Malformed,
    }
}

/// Which IP version the link layer announced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
    /// Raw IP with no announcement: the version nibble decides.
    Either,
}

#[cfg(test)]
mod tests;
