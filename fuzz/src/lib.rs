//! Shared by the fuzz targets and the seed writer: how one fuzz input encodes a captured frame.
//! Owns only that encoding; the code under test is the `bwacct` library.

use bwacct::parse::LinkType;

/// Every link type `bwacct::parse::decode` reads, indexed by the input's first byte.
pub const LINKS: [LinkType; 8] = [
    LinkType::Ethernet,
    LinkType::LinuxSll,
    LinkType::LinuxSll2,
    LinkType::Raw,
    LinkType::RawV4,
    LinkType::RawV6,
    LinkType::Null,
    LinkType::Loop,
];

/// Bytes in front of the frame: link selector, then the wire length (u32, little-endian).
pub const HEADER_LEN: usize = 5;

/// One fuzz input: which link type, libpcap's `len`, and the captured bytes.
pub struct Frame<'a> {
    pub link: LinkType,
    pub wire_len: u32,
    pub data: &'a [u8],
}

impl<'a> Frame<'a> {
    /// Splits an input; too short ones are None.
    pub fn from_input(input: &'a [u8]) -> Option<Self> {
        let (&[sel, a, b, c, d], data) = input.split_first_chunk::<HEADER_LEN>()?;
        let link = *LINKS.get(usize::from(sel) % LINKS.len())?;
        Some(Self {
            link,
            wire_len: u32::from_le_bytes([a, b, c, d]),
            data,
        })
    }

    /// The input that encodes a frame of `link` (for seeds).
    pub fn encode(link: LinkType, wire_len: u32, data: &[u8]) -> Option<Vec<u8>> {
        let sel = LINKS.iter().position(|l| *l == link)?;
        let mut v = Vec::with_capacity(HEADER_LEN + data.len());
        v.push(u8::try_from(sel).ok()?);
        v.extend_from_slice(&wire_len.to_le_bytes());
        v.extend_from_slice(data);
        Some(v)
    }
}
