//! Reads the TPACKET_V3 ring of a live libpcap handle directly, a block at a time, instead of
//! through `pcap_dispatch`: libpcap opens the socket, maps its ring and sets up the kernel
//! filter, the fanout and the statistics; this finds libpcap's mapping of that ring (the
//! socket's shared mapping in `/proc/self/maps`) and hands each frame over as libpcap would
//! (the VLAN tag the kernel took out put back, the loopback device's outgoing copies left out).
//! libpcap keeps owning the mapping: a [`Ring`] is only used while its handle is open.
//! Ethernet only, and only when the mapping has the size libpcap's geometry gives; otherwise
//! capture stays on `pcap_dispatch`.
#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU32, Ordering};

/// libpcap's TPACKET_V3 block: one "frame" of its largest snapshot length (262,144 bytes),
/// rounded up to a power-of-two number of pages.
const BLOCK: usize = 262_144;
const SOL_PACKET: libc::c_int = 263;
const PACKET_VERSION: libc::c_int = 10;
const TPACKET_V3: libc::c_int = 2;
const TP_STATUS_KERNEL: u32 = 0;
const TP_STATUS_USER: u32 = 1;
const TP_STATUS_VLAN_VALID: u32 = 1 << 4;
const TP_STATUS_VLAN_TPID_VALID: u32 = 1 << 6;
const PACKET_OUTGOING: u8 = 4;
const ETH_P_8021Q: u16 = 0x8100;
/// Block descriptor: status, packet count and offset of the first packet.
const BLOCK_STATUS: usize = 8;
const BLOCK_PACKETS: usize = 12;
const BLOCK_FIRST: usize = 16;
/// `tpacket3_hdr`: next offset, seconds, nanoseconds, captured and wire lengths, status, MAC
/// offset, VLAN TCI and TPID; the `sockaddr_ll` follows at 48 (its interface index and packet
/// type).
const HDR_NEXT: usize = 0;
const HDR_SEC: usize = 4;
const HDR_NSEC: usize = 8;
const HDR_SNAPLEN: usize = 12;
const HDR_LEN: usize = 16;
const HDR_STATUS: usize = 20;
const HDR_MAC: usize = 24;
const HDR_VLAN_TCI: usize = 32;
const HDR_VLAN_TPID: usize = 36;
const SLL_IFINDEX: usize = 52;
const SLL_PKTTYPE: usize = 58;
/// The two MAC addresses in front of where the tag goes back in.
const MACS: usize = 12;
const VLAN_TAG: usize = 4;

/// One frame as libpcap's callback would see it.
pub struct Frame<'a> {
    pub data: &'a [u8],
    /// The length on the wire (with the tag the kernel took out).
    pub wire_len: u32,
    pub sec: i64,
    pub usec: i64,
}

/// The ring of one live handle, read where libpcap mapped it.
pub struct Ring {
    base: *mut u8,
    blocks: usize,
    /// The next block to read: the kernel fills them in order.
    next: usize,
    snaplen: usize,
    /// The loopback device's index in this network namespace (0: none).
    loopback: i32,
    /// A frame with its VLAN tag put back.
    tagged: Vec<u8>,
}

// SAFETY: only the handle's own capture thread reads the mapping (libpcap does not while the
// ring is read here); the kernel shares it only through the block status words, read and
// written atomically.
unsafe impl Send for Ring {}

impl Ring {
    /// The TPACKET_V3 ring libpcap set up and mapped on `fd` for a buffer of `buffer_bytes`, or
    /// None when the socket has another version or no mapping of that size. It must not be
    /// read once the handle is closed (libpcap unmaps it then).
    pub fn map(fd: RawFd, buffer_bytes: u32, snaplen: u32) -> Option<Self> {
        let mut version: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: `version` and `len` are valid for the call and sized as the option is.
        let got = unsafe {
            libc::getsockopt(
                fd,
                SOL_PACKET,
                PACKET_VERSION,
                (&mut version as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        if got != 0 || version != TPACKET_V3 {
            return None;
        }
        let blocks = (buffer_bytes as usize).div_ceil(BLOCK);
        let base = libpcap_mapping(fd, blocks * BLOCK)?;
        // SAFETY: a NUL-terminated name.
        let loopback = unsafe { libc::if_nametoindex(c"lo".as_ptr()) } as i32;
        Some(Self {
            base,
            blocks,
            next: 0,
            snaplen: snaplen as usize,
            loopback,
            tagged: vec![0; snaplen as usize],
        })
    }

    fn status(&self, block: usize) -> &AtomicU32 {
        // SAFETY: inside the mapping, 4-byte aligned (blocks are page aligned); the kernel
        // writes this word only atomically while the block is its own.
        unsafe { AtomicU32::from_ptr(self.base.add(block * BLOCK + BLOCK_STATUS).cast()) }
    }

    /// Whether a quarter of the ring's blocks (one at the least) are handed over and not read
    /// yet: the block that far on from the next to read is, as the kernel fills them in order.
    pub fn quarter_full(&self) -> bool {
        let ahead = (self.blocks / 4).max(1) - 1;
        self.status((self.next + ahead) % self.blocks)
            .load(Ordering::Acquire)
            & TP_STATUS_USER
            != 0
    }

    /// Hands every frame of the blocks the kernel has handed over to `f`, in order, and gives
    /// each block back after its frames. Returns how many frames there were.
    pub fn read(&mut self, mut f: impl FnMut(Frame<'_>)) -> usize {
        let mut frames = 0;
        while self.status(self.next).load(Ordering::Acquire) & TP_STATUS_USER != 0 {
            // SAFETY: the block is the reader's until its status is given back below; the
            // kernel does not write it meanwhile.
            let block =
                unsafe { std::slice::from_raw_parts(self.base.add(self.next * BLOCK), BLOCK) };
            frames += block_frames(block, self.snaplen, self.loopback, &mut self.tagged, &mut f);
            self.status(self.next)
                .store(TP_STATUS_KERNEL, Ordering::Release);
            self.next = (self.next + 1) % self.blocks;
        }
        frames
    }
}

/// Hands the frames of one block to `f`; returns how many. `snaplen` cuts them as libpcap
/// does, `tagged` (snaplen bytes) holds a frame whose tag is put back, and the copies the
/// `loopback` device sends out are left out (each comes back in).
fn block_frames(
    block: &[u8],
    snaplen: usize,
    loopback: i32,
    tagged: &mut [u8],
    f: &mut impl FnMut(Frame<'_>),
) -> usize {
    let packets = u32_at(block, BLOCK_PACKETS);
    let mut at = u32_at(block, BLOCK_FIRST) as usize;
    let mut frames = 0;
    for _ in 0..packets {
        let Some(hdr) = block.get(at..) else {
            break;
        };
        let next = u32_at(hdr, HDR_NEXT) as usize;
        let status = u32_at(hdr, HDR_STATUS);
        let outgoing_copy = hdr.get(SLL_PKTTYPE) == Some(&PACKET_OUTGOING)
            && u32_at(hdr, SLL_IFINDEX) as i32 == loopback;
        let mac = usize::from(u16_at(hdr, HDR_MAC));
        let caplen = (u32_at(hdr, HDR_SNAPLEN) as usize).min(snaplen);
        if !outgoing_copy {
            // a frame the block cannot hold (never from a sane kernel) is handed over empty:
            // it counts as malformed rather than vanishing
            let data = hdr.get(mac..mac + caplen).unwrap_or_default();
            let mut wire_len = u32_at(hdr, HDR_LEN);
            let tci = u32_at(hdr, HDR_VLAN_TCI);
            let data = if tci != 0 || status & TP_STATUS_VLAN_VALID != 0 {
                let tpid = if status & TP_STATUS_VLAN_TPID_VALID != 0 {
                    u16_at(hdr, HDR_VLAN_TPID)
                } else {
                    ETH_P_8021Q
                };
                wire_len = wire_len.saturating_add(VLAN_TAG as u32);
                retag(tagged, data, tpid, tci as u16)
            } else {
                data
            };
            f(Frame {
                data,
                wire_len,
                sec: i64::from(u32_at(hdr, HDR_SEC)),
                usec: i64::from(u32_at(hdr, HDR_NSEC) / 1000),
            });
            frames += 1;
        }
        if next == 0 {
            break;
        }
        at += next;
    }
    frames
}

/// `data` with the tag the kernel took out put back after the MAC addresses, as it was on
/// the wire, in `tagged` (cut to its length, the snapshot length).
fn retag<'a>(tagged: &'a mut [u8], data: &'a [u8], tpid: u16, tci: u16) -> &'a [u8] {
    let (Some(macs), Some(rest)) = (data.get(..MACS), data.get(MACS..)) else {
        return data;
    };
    let len = (data.len() + VLAN_TAG).min(tagged.len());
    let ([a, b], [c, d]) = (tpid.to_be_bytes(), tci.to_be_bytes());
    let rest = rest
        .get(..len.saturating_sub(MACS + VLAN_TAG))
        .unwrap_or(rest);
    match tagged.get_mut(..len) {
        Some(out) if len == MACS + VLAN_TAG + rest.len() => {
            let (head, tail) = out.split_at_mut(MACS + VLAN_TAG);
            let (out_macs, tag) = head.split_at_mut(MACS);
            out_macs.copy_from_slice(macs);
            tag.copy_from_slice(&[a, b, c, d]);
            tail.copy_from_slice(rest);
            out
        }
        _ => data,
    }
}

/// Where libpcap mapped the ring of socket `fd`: the shared mapping of that socket in
/// `/proc/self/maps`, if it has exactly `len` bytes.
fn libpcap_mapping(fd: RawFd, len: usize) -> Option<*mut u8> {
    // SAFETY: `st` is a valid stat buffer for the call.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return None;
    }
    let socket = format!("socket:[{}]", st.st_ino);
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines().find_map(|line| {
        let mut fields = line.split_whitespace();
        let (range, perms) = (fields.next()?, fields.next()?);
        if fields.nth(3)? != socket || !perms.starts_with("rw") || !perms.ends_with('s') {
            return None;
        }
        let (start, end) = range.split_once('-')?;
        let (start, end) = (
            usize::from_str_radix(start, 16).ok()?,
            usize::from_str_radix(end, 16).ok()?,
        );
        (end.checked_sub(start)? == len).then_some(start as *mut u8)
    })
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u32::from_ne_bytes)
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    b.get(at..at + 2)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u16::from_ne_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put32(b: &mut [u8], at: usize, v: u32) {
        b[at..at + 4].copy_from_slice(&v.to_ne_bytes());
    }

    fn put16(b: &mut [u8], at: usize, v: u16) {
        b[at..at + 2].copy_from_slice(&v.to_ne_bytes());
    }

    /// Writes one `tpacket3_hdr` at `at` with its frame at `at + 80`.
    #[allow(clippy::too_many_arguments)]
    fn packet(
        b: &mut [u8],
        at: usize,
        next: u32,
        frame: &[u8],
        len: u32,
        status: u32,
        vlan: (u16, u16),
        out: (u8, i32),
    ) {
        put32(b, at + HDR_NEXT, next);
        put32(b, at + HDR_SEC, 1_700_000_000);
        put32(b, at + HDR_NSEC, 123_456_789);
        put32(b, at + HDR_SNAPLEN, frame.len() as u32);
        put32(b, at + HDR_LEN, len);
        put32(b, at + HDR_STATUS, status);
        put16(b, at + HDR_MAC, 80);
        put32(b, at + HDR_VLAN_TCI, u32::from(vlan.1));
        put16(b, at + HDR_VLAN_TPID, vlan.0);
        b[at + SLL_PKTTYPE] = out.0;
        put32(b, at + SLL_IFINDEX, out.1 as u32);
        b[at + 80..at + 80 + frame.len()].copy_from_slice(frame);
    }

    /// A block as the kernel hands it over: a plain frame, a frame whose 802.1ad tag the kernel
    /// took out (longer than the snapshot length), and the loopback device's outgoing copy of a
    /// frame: the reader sees the first as it is, the second with its tag back and cut, and
    /// not the third.
    #[test]
    fn a_block_reads_as_libpcap_would_hand_its_frames_over() {
        let mut block = vec![0u8; 4096];
        put32(&mut block, BLOCK_PACKETS, 3);
        put32(&mut block, BLOCK_FIRST, 48);
        let plain: Vec<u8> = (0..60).collect();
        let stripped: Vec<u8> = (100..200).collect();
        packet(
            &mut block,
            48,
            256,
            &plain,
            60,
            TP_STATUS_USER,
            (0, 0),
            (0, 2),
        );
        let vlan = TP_STATUS_USER | TP_STATUS_VLAN_VALID | TP_STATUS_VLAN_TPID_VALID;
        packet(
            &mut block,
            304,
            256,
            &stripped,
            1496,
            vlan,
            (0x88a8, 42),
            (0, 2),
        );
        packet(
            &mut block,
            560,
            0,
            &plain,
            60,
            TP_STATUS_USER,
            (0, 0),
            (PACKET_OUTGOING, 1),
        );
        let snaplen = 64;
        let mut tagged = vec![0u8; snaplen];
        let mut seen = Vec::new();
        let n = block_frames(&block, snaplen, 1, &mut tagged, &mut |f| {
            seen.push((f.data.to_vec(), f.wire_len, f.sec, f.usec))
        });
        assert_eq!(n, 2);
        assert_eq!(seen[0], (plain.clone(), 60, 1_700_000_000, 123_456));
        let mut want = stripped[..12].to_vec();
        want.extend([0x88, 0xa8, 0, 42]);
        want.extend(&stripped[12..snaplen - 4]);
        assert_eq!(seen[1], (want, 1500, 1_700_000_000, 123_456));
        // the same copy on another interface is a frame like any other
        let mut seen = 0;
        let n = block_frames(&block, snaplen, 7, &mut tagged, &mut |_| seen += 1);
        assert_eq!((n, seen), (3, 3));
    }

    /// A header whose frame would lie past the block's end: the frame is handed over empty
    /// (decoding counts it malformed), not dropped.
    #[test]
    fn a_frame_outside_its_block_is_handed_over_empty() {
        let mut block = vec![0u8; 512];
        put32(&mut block, BLOCK_PACKETS, 1);
        put32(&mut block, BLOCK_FIRST, 48);
        packet(
            &mut block,
            48,
            0,
            &[1; 60],
            60,
            TP_STATUS_USER,
            (0, 0),
            (0, 2),
        );
        put16(&mut block, 48 + HDR_MAC, 500);
        let mut tagged = vec![0u8; 128];
        let mut seen = Vec::new();
        let n = block_frames(&block, 128, 1, &mut tagged, &mut |f| {
            seen.push((f.data.len(), f.wire_len))
        });
        assert_eq!((n, seen), (1, vec![(0, 60)]));
    }

    /// An 8-block ring in plain memory: the kernel's part played by writing the status words.
    #[test]
    fn a_quarter_of_the_ring_is_full_when_the_block_a_quarter_ahead_is_handed_over() {
        // u32s: the status words are read as atomics, 4-byte aligned
        let mut memory = vec![0u32; 8 * BLOCK / 4];
        let mut ring = Ring {
            base: memory.as_mut_ptr().cast(),
            blocks: 8,
            next: 0,
            snaplen: 128,
            loopback: 1,
            tagged: vec![0; 128],
        };
        let hand_over =
            |ring: &Ring, block: usize| ring.status(block).store(TP_STATUS_USER, Ordering::Release);
        assert!(!ring.quarter_full(), "empty");
        hand_over(&ring, 0);
        assert!(!ring.quarter_full(), "one block of eight");
        hand_over(&ring, 1);
        assert!(ring.quarter_full(), "two blocks of eight");
        // the reader gives them back (they hold no frame) and moves on to block 2
        assert_eq!(ring.read(|_| {}), 0);
        assert_eq!(ring.next, 2);
        assert!(!ring.quarter_full(), "read");
        // around the end of the ring
        ring.next = 7;
        hand_over(&ring, 7);
        assert!(!ring.quarter_full(), "block 7 only");
        hand_over(&ring, 0);
        assert!(ring.quarter_full(), "blocks 7 and 0");
        // a ring of fewer than four blocks: one is a quarter
        ring.blocks = 3;
        ring.next = 0;
        assert!(ring.quarter_full(), "block 0 of 3");
    }

    #[test]
    fn a_tag_goes_back_after_the_mac_addresses_of_a_short_frame() {
        let frame: Vec<u8> = (0..20).collect();
        let mut tagged = vec![0u8; 128];
        let out = retag(&mut tagged, &frame, 0x8100, 7).to_vec();
        assert_eq!(out.len(), 24);
        assert_eq!(out[..12], frame[..12]);
        assert_eq!(out[12..16], [0x81, 0, 0, 7]);
        assert_eq!(out[16..], frame[12..]);
        // too short to hold the addresses: left as it is
        assert_eq!(retag(&mut tagged, &frame[..10], 0x8100, 7), &frame[..10]);
    }
}
