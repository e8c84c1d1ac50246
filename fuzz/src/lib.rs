//! Shared by the fuzz targets: how one fuzz input encodes a captured frame. Owns only that
//! encoding (which `scripts/fuzz-seed` writes); the code under test is the `bwacct` library.

use bwacct::parse::LinkType;

/// Every link type `bwacct::parse::decode` reads: where the input's DLT is not one bwacct
/// knows, it picks one of these, so random inputs reach them all.
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

/// Bytes in front of the frame: the pcap link type (u16) and the wire length (u32), both
/// little-endian.
pub const HEADER_LEN: usize = 6;

/// One fuzz input: which link type, libpcap's `len`, and the captured bytes.
pub struct Frame<'a> {
    pub link: LinkType,
    pub wire_len: u32,
    pub data: &'a [u8],
}

impl<'a> Frame<'a> {
    /// Splits an input; too short ones are None.
    pub fn from_input(input: &'a [u8]) -> Option<Self> {
        let (&[d0, d1, a, b, c, d], data) = input.split_first_chunk::<HEADER_LEN>()?;
        let dlt = u16::from_le_bytes([d0, d1]);
        let link = match LinkType::from_dlt(i32::from(dlt)) {
            Ok(link) => link,
            Err(_) => *LINKS.get(usize::from(dlt) % LINKS.len())?,
        };
        Some(Self {
            link,
            wire_len: u32::from_le_bytes([a, b, c, d]),
            data,
        })
    }
}
