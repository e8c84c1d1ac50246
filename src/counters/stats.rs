//! Per-writer packet statistics (what every frame turned out to be). Each writer owns its cells
//! and increments them without lock-prefixed instructions; readers sum cumulative values.

use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Packet outcomes, cumulative or over an interval.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PacketStats {
    /// Frames seen.
    pub packets: u64,
    /// Readable IP packets with at least one local end.
    pub accounted: u64,
    /// Layer-3 bytes of the accounted packets (once per packet).
    pub bytes: u64,
    /// Readable IP packets with no local end.
    pub foreign: u64,
    /// Frames that are not IP.
    pub non_ip: u64,
    /// Frames that say IP but whose header is missing, cut or insane.
    pub malformed: u64,
    /// Readable packets whose declared length exceeded the wire (capped).
    pub length_mismatch: u64,
}

impl PacketStats {
    pub fn merge(&mut self, o: &PacketStats) {
        self.packets += o.packets;
        self.accounted += o.accounted;
        self.bytes += o.bytes;
        self.foreign += o.foreign;
        self.non_ip += o.non_ip;
        self.malformed += o.malformed;
        self.length_mismatch += o.length_mismatch;
    }

    /// `self − earlier`, for cumulative values.
    pub fn since(&self, earlier: &PacketStats) -> PacketStats {
        PacketStats {
            packets: self.packets.wrapping_sub(earlier.packets),
            accounted: self.accounted.wrapping_sub(earlier.accounted),
            bytes: self.bytes.wrapping_sub(earlier.bytes),
            foreign: self.foreign.wrapping_sub(earlier.foreign),
            non_ip: self.non_ip.wrapping_sub(earlier.non_ip),
            malformed: self.malformed.wrapping_sub(earlier.malformed),
            length_mismatch: self.length_mismatch.wrapping_sub(earlier.length_mismatch),
        }
    }
}

/// One writer's cumulative statistics.
#[derive(Default)]
pub struct StatCells {
    pub packets: AtomicU64,
    pub accounted: AtomicU64,
    pub bytes: AtomicU64,
    pub foreign: AtomicU64,
    pub non_ip: AtomicU64,
    pub malformed: AtomicU64,
    pub length_mismatch: AtomicU64,
}

/// Adds to a cell that only this thread writes: a plain load and store, no `lock` prefix.
#[inline]
pub fn bump(cell: &AtomicU64, by: u64) {
    cell.store(cell.load(Relaxed).wrapping_add(by), Relaxed);
}

impl StatCells {
    pub fn read(&self) -> PacketStats {
        PacketStats {
            packets: self.packets.load(Relaxed),
            accounted: self.accounted.load(Relaxed),
            bytes: self.bytes.load(Relaxed),
            foreign: self.foreign.load(Relaxed),
            non_ip: self.non_ip.load(Relaxed),
            malformed: self.malformed.load(Relaxed),
            length_mismatch: self.length_mismatch.load(Relaxed),
        }
    }
}
