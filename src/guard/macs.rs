//! The distinct source MACs of an interval for one capture thread ([`MacTable`]), behind a
//! direct-mapped cache keyed by the MAC's bytes as they lie in the frame ([`Wire`]): a MAC seen
//! before in the interval costs one load, a mask, one cached load and a compare. Exact: every
//! MAC is looked up in the table the first time it comes in an interval, whatever shares its
//! cache entry. No allocation after construction, no panic; knows nothing of events.
#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use crate::parse::l2::{self, Mac};

/// Ethernet source address offset, and the end of the 8 bytes read with it (the EtherType's).
const SOURCE: usize = 6;
const SOURCE_END: usize = SOURCE + 8;
/// The 48 bits of a MAC in a [`Wire`].
const MAC_BITS: u64 = (1 << 48) - 1;

/// A frame's source MAC as its six bytes on the wire read little-endian (one unaligned load and
/// a mask, no byte swap): the cache's key. [`Wire::mac`] gives the [`Mac`], off the hot path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wire(u64);

impl Wire {
    /// The source MAC of an Ethernet frame that holds its 14-byte header.
    #[inline]
    pub fn source(frame: &[u8]) -> Option<Wire> {
        let b: [u8; 8] = frame.get(SOURCE..SOURCE_END)?.try_into().ok()?;
        Some(Wire(u64::from_le_bytes(b) & MAC_BITS))
    }

    pub fn mac(self) -> Mac {
        let [a, b, c, d, e, f, _, _] = self.0.to_le_bytes();
        Mac::from_bytes([a, b, c, d, e, f])
    }

    #[cfg(test)]
    pub fn of(mac: Mac) -> Wire {
        let [_, _, a, b, c, d, e, f] = mac.0.to_be_bytes();
        Wire(u64::from_le_bytes([a, b, c, d, e, f, 0, 0]))
    }
}

/// Slots probed for a MAC before the table doubles (while it can), then before the MAC is
/// counted as past the table (bounds the work per frame whatever the addresses an attacker
/// picks).
const MAX_PROBES: usize = 32;
/// Entries of the direct-mapped cache of MACs already in the table (8 KiB: it stays in the
/// first-level cache while frames stream through).
const SEEN_SLOTS: usize = 1024;
/// A cache entry no MAC (48 bits) can equal.
const NO_MAC: u64 = u64::MAX;

/// Slots the MAC table starts each interval with (4 KiB of fingerprints: a normal segment's
/// MACs stay in the first-level cache); it doubles, within its preallocated room, as MACs
/// arrive.
const FIRST_SLOTS: usize = 1024;

/// Distinct source MACs of one interval: where each was first seen. Open addressing over the
/// first `slots` of preallocated arrays, kept at most half full by doubling (a rehash through a
/// preallocated scratch list: no allocation after construction). A lookup reads one 32-bit
/// fingerprint (never 0; two MACs of one probe sequence share one with odds of 2⁻³¹); the MACs
/// themselves are read only when the interval is handed over.
pub struct MacTable {
    prints: Box<[u32]>,
    macs: Box<[Mac]>,
    /// `vlan | port << 16` of each taken slot.
    meta: Box<[u32]>,
    used: Vec<u32>,
    scratch: Vec<(Mac, u32)>,
    max: usize,
    slots: usize,
    /// 64 − log2(slots): the hash's top bits pick the slot, its low bits make the print.
    shift: u32,
    seed: u64,
    /// MACs the table already holds (or found no room for), in their [`Wire`] form,
    /// direct-mapped by their last bytes: a hit skips the table, a miss looks it up. Emptied with the table, so a MAC is counted
    /// once per interval whatever it shares a cache entry with.
    seen: Box<[u64; SEEN_SLOTS]>,
    /// Sightings of MACs that found no room (the table is full or its probe too long).
    past_cap: u64,
}

impl MacTable {
    pub fn new(max: usize, seed: u64) -> Self {
        let room = (max * 2).next_power_of_two().max(FIRST_SLOTS);
        let mut t = Self {
            prints: vec![0; room].into_boxed_slice(),
            macs: vec![Mac(0); room].into_boxed_slice(),
            meta: vec![0; room].into_boxed_slice(),
            used: Vec::with_capacity(max),
            scratch: Vec::with_capacity(max),
            max,
            slots: FIRST_SLOTS,
            shift: 0,
            seed,
            seen: Box::new([NO_MAC; SEEN_SLOTS]),
            past_cap: 0,
        };
        t.resize(FIRST_SLOTS);
        t
    }

    fn resize(&mut self, slots: usize) {
        self.slots = slots;
        self.shift = 64 - slots.trailing_zeros();
    }

    /// The slot holding `mac`, or the empty slot where it goes (with its print); None past the
    /// probe limit.
    #[inline]
    fn find(&self, mac: Mac) -> Option<(usize, bool, u32)> {
        let h = (mac.0 ^ self.seed).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let print = h as u32 | 1;
        let mask = self.slots - 1;
        let mut i = (h >> self.shift) as usize & mask;
        for _ in 0..MAX_PROBES {
            match self.prints.get(i).copied() {
                Some(p) if p == print => return Some((i, true, print)),
                Some(0) => return Some((i, false, print)),
                Some(_) => i = (i + 1) & mask,
                None => return None,
            }
        }
        None
    }

    /// The cache entry of a MAC: its last byte (the NIC-specific end, which varies most) folded
    /// with its fourth, and the low 2 bits of its fifth above them (MACs numbered in sequence
    /// never share one).
    #[inline]
    fn seen_slot(wire: Wire) -> usize {
        ((wire.0 >> 40) ^ (wire.0 >> 24)) as usize % SEEN_SLOTS
    }

    /// Counts the source MAC of `frame` (its [`Wire`] form) arriving on `port`.
    #[inline]
    pub fn see(&mut self, wire: Wire, frame: &[u8], port: u16) {
        let Some(seen) = self.seen.get_mut(Self::seen_slot(wire)) else {
            return;
        };
        if *seen == wire.0 {
            return;
        }
        *seen = wire.0;
        self.look_up(wire.mac(), frame, port);
    }

    /// A MAC not in the cache: finds it in the table or adds it. A probe past [`MAX_PROBES`]
    /// (a long run of taken slots, which a half-full table has now and then) doubles the table
    /// first if it can.
    #[cold]
    fn look_up(&mut self, mac: Mac, frame: &[u8], port: u16) {
        let found = match self.find(mac) {
            None if self.can_grow() => {
                self.grow();
                self.find(mac)
            }
            found => found,
        };
        match found {
            Some((_, true, _)) => {}
            Some((i, false, print)) if self.used.len() < self.max => {
                let meta = u32::from(l2::outer_vlan(frame)) | (u32::from(port) << 16);
                self.insert(i, print, mac, meta);
            }
            _ => self.past_cap += 1,
        }
    }

    #[cold]
    fn insert(&mut self, i: usize, print: u32, mac: Mac, meta: u32) {
        self.put(i, print, mac, meta);
        if self.used.len() * 2 > self.slots && self.can_grow() {
            self.grow();
        }
    }

    /// Whether the slots in use can double within the preallocated room.
    fn can_grow(&self) -> bool {
        self.slots * 2 <= self.prints.len()
    }

    fn put(&mut self, i: usize, print: u32, mac: Mac, meta: u32) {
        if let (Some(p), Some(k), Some(m)) = (
            self.prints.get_mut(i),
            self.macs.get_mut(i),
            self.meta.get_mut(i),
        ) {
            *p = print;
            *k = mac;
            *m = meta;
            self.used.push(i as u32);
        }
    }

    /// Doubles the slots in use and puts every MAC in its new place.
    fn grow(&mut self) {
        self.scratch.clear();
        for &i in &self.used {
            let i = i as usize;
            if let (Some(p), Some(k), Some(m)) =
                (self.prints.get_mut(i), self.macs.get(i), self.meta.get(i))
            {
                self.scratch.push((*k, *m));
                *p = 0;
            }
        }
        self.used.clear();
        self.resize(self.slots * 2);
        let moved = std::mem::take(&mut self.scratch);
        for &(mac, meta) in &moved {
            match self.find(mac) {
                Some((i, false, print)) => self.put(i, print, mac, meta),
                _ => self.past_cap += 1,
            }
        }
        self.scratch = moved;
    }

    /// The interval's MACs (mac, vlan, port), emptying the table back to its first size.
    pub fn take(&mut self) -> (Vec<(Mac, u16, u16)>, u64) {
        let mut out = Vec::with_capacity(self.used.len());
        for &i in &self.used {
            let i = i as usize;
            if let (Some(p), Some(k), Some(m)) =
                (self.prints.get_mut(i), self.macs.get(i), self.meta.get(i))
            {
                out.push((*k, *m as u16, (*m >> 16) as u16));
                *p = 0;
            }
        }
        self.used.clear();
        self.resize(FIRST_SLOTS.min(self.prints.len()));
        self.seen.fill(NO_MAC);
        (out, std::mem::take(&mut self.past_cap))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Ethernet header, behind a VLAN tag unless `vlan` is 0.
    fn tagged(vlan: u16) -> Vec<u8> {
        let mut f = vec![0xff; 6];
        f.extend_from_slice(&[2, 0, 0, 0, 0, 1]);
        if vlan != 0 {
            f.extend_from_slice(&[0x81, 0x00]);
            f.extend_from_slice(&vlan.to_be_bytes());
        }
        f.extend_from_slice(&[0x08, 0x00]);
        f
    }

    #[test]
    fn the_wire_form_is_the_frames_source_mac() {
        let mac: Mac = "02:00:5e:10:20:3f".parse().unwrap();
        let mut frame = tagged(7);
        frame[6..12].copy_from_slice(&[2, 0, 0x5e, 0x10, 0x20, 0x3f]);
        let wire = Wire::source(&frame).unwrap();
        assert_eq!((wire, wire.mac()), (Wire::of(mac), mac));
        assert_eq!(Some(mac), l2::ethernet_source(&frame));
        // the header must be whole
        assert_eq!(Wire::source(&frame[..13]), None);
        assert_eq!(Wire::source(&frame[..14]), Some(wire));
    }

    #[test]
    fn the_table_grows_for_a_flood_without_losing_a_mac_and_starts_small_again() {
        let mut t = MacTable::new(8192, 7);
        let frame = tagged(5);
        for i in 0..5000u64 {
            // every MAC twice, apart: the second sighting finds the first
            t.see(Wire::of(Mac(0x0200_0000_0000 + i * 7919)), &frame, 1);
            t.see(Wire::of(Mac(0x0200_0000_0000 + (i / 2) * 7919)), &frame, 1);
        }
        assert_eq!(t.slots, 16_384);
        let (macs, past) = t.take();
        assert_eq!(past, 0);
        let distinct: std::collections::HashSet<Mac> = macs.iter().map(|m| m.0).collect();
        assert_eq!(distinct.len(), 5000);
        assert!(macs.iter().all(|&(_, vlan, port)| vlan == 5 && port == 1));
        assert_eq!(t.slots, FIRST_SLOTS);
        assert!(t.prints.iter().all(|&p| p == 0));
        t.see(Wire::of(Mac(1)), &frame, 0);
        assert_eq!(t.take().0.len(), 1);
    }

    /// A flood of made-up MACs (as the guard's end-to-end test sends) under many seeds: a
    /// half-full table has now and then a run of taken slots longer than [`MAX_PROBES`]; the
    /// table doubles then instead of losing the MAC.
    #[test]
    fn a_flood_is_counted_whole_whatever_the_seed() {
        let frame = tagged(42);
        for seed in 0..300u64 {
            let mut t = MacTable::new(8192, seed.wrapping_mul(0x2545_f491_4f6c_dd1d));
            let mut x = seed + 1;
            for _ in 0..5000 {
                // xorshift: distinct locally administered MACs
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                t.see(Wire::of(Mac((x & MAC_BITS) | 0x0200_0000_0000)), &frame, 0);
            }
            let (macs, past) = t.take();
            let distinct: std::collections::HashSet<Mac> = macs.iter().map(|m| m.0).collect();
            assert_eq!(
                (macs.len(), distinct.len(), past),
                (5000, 5000, 0),
                "seed {seed}"
            );
        }
    }

    #[test]
    fn the_cache_never_hides_a_distinct_mac_and_is_emptied_with_the_interval() {
        let mut t = MacTable::new(64, 3);
        let frame = tagged(0);
        // three MACs of one cache entry, taking it from each other in turn
        let colliding = [0x0200_0000_0001, 0x0200_0100_0001, 0x0200_0200_0001].map(Mac);
        assert!(colliding
            .iter()
            .all(|&m| MacTable::seen_slot(Wire::of(m))
                == MacTable::seen_slot(Wire::of(colliding[0]))));
        for round in 0..3 {
            for (port, &mac) in colliding.iter().enumerate() {
                t.see(Wire::of(mac), &frame, port as u16 + round);
            }
        }
        let (mut macs, past) = t.take();
        macs.sort();
        let first_ports: Vec<(Mac, u16, u16)> = colliding
            .iter()
            .enumerate()
            .map(|(port, &mac)| (mac, 0, port as u16))
            .collect();
        assert_eq!((macs, past), (first_ports, 0));
        // the next interval counts a MAC the cache held at the end of the last one
        t.see(Wire::of(colliding[2]), &frame, 9);
        assert_eq!(t.take().0, vec![(colliding[2], 0, 9)]);
        // past the cap: a MAC the table has no room for is cached too, and counted once
        let mut small = MacTable::new(1, 3);
        for &mac in &colliding[..2] {
            small.see(Wire::of(mac), &frame, 0);
            small.see(Wire::of(mac), &frame, 0);
        }
        assert_eq!(small.take(), (vec![(colliding[0], 0, 0)], 1));
    }
}
