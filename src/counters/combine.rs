//! Write combining for shared counters: a small direct-mapped cache that lives as long as one
//! batch and sums consecutive counts for the same host row, direction and class, then adds them
//! to the row's atomic cells once, when the slot is needed for another row or when the batch
//! ends. A heavy hitter that every capture thread sees then costs an atomic add per batch (or
//! per eviction) instead of one per packet, and its cache lines stop bouncing between cores.
//! It only delays adds within a batch: a drain waits for open batches, so nothing is lost.
#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use super::cells::{self, Cells, Sharing};
use crate::classify::App;
use crate::parse::Proto;
use crate::usage::Dir;
use std::cell::Cell;

/// Slots in the cache (a power of two): enough for the few heavy hitters of a batch in each of
/// their directions and classes, small enough to stay in L1.
const SLOTS: usize = 64;

/// Counts waiting to be added to one row.
#[derive(Clone, Copy)]
struct Pending<'a> {
    row: Option<&'a Cells>,
    dir: Dir,
    proto: Proto,
    app: Option<App>,
    bytes: u64,
    packets: u64,
}

const EMPTY: Pending<'static> = Pending {
    row: None,
    dir: Dir::Tx,
    proto: Proto::Other,
    app: None,
    bytes: 0,
    packets: 0,
};

pub struct Combiner<'a> {
    slots: [Cell<Pending<'a>>; SLOTS],
}

impl Default for Combiner<'_> {
    fn default() -> Self {
        Self {
            slots: [const { Cell::new(EMPTY) }; SLOTS],
        }
    }
}

/// The slot of a (row, direction, class): rows are 256-byte arrays, so the address above its low
/// bits tells rows apart; a multiplicative hash spreads them.
#[inline]
fn slot_of(row: &Cells, dir: Dir, proto: Proto, app: Option<App>) -> usize {
    let class = (proto as usize) << 1 | dir as usize | app.map_or(0, |a| (a as usize + 1) << 3);
    let h = ((row as *const Cells as usize) >> 8 ^ class << 40).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    h >> (usize::BITS - SLOTS.trailing_zeros())
}

impl<'a> Combiner<'a> {
    /// Counts one packet of `bytes` for `row`, now or later.
    #[inline]
    pub fn add(&self, row: &'a Cells, dir: Dir, proto: Proto, app: Option<App>, bytes: u64) {
        let Some(slot) = self.slots.get(slot_of(row, dir, proto, app)) else {
            return cells::add(row, Sharing::Shared, dir, proto, app, bytes, 1);
        };
        let p = slot.get();
        if p.row.is_some_and(|r| std::ptr::eq(r, row))
            && p.dir == dir
            && p.proto == proto
            && p.app == app
        {
            slot.set(Pending {
                bytes: p.bytes + bytes,
                packets: p.packets + 1,
                ..p
            });
            return;
        }
        apply(&p);
        slot.set(Pending {
            row: Some(row),
            dir,
            proto,
            app,
            bytes,
            packets: 1,
        });
    }

    /// Adds everything pending to the cells.
    pub fn flush(&self) {
        for slot in &self.slots {
            apply(&slot.replace(EMPTY));
        }
    }
}

#[inline]
fn apply(p: &Pending<'_>) {
    if let Some(row) = p.row {
        cells::add(
            row,
            Sharing::Shared,
            p.dir,
            p.proto,
            p.app,
            p.bytes,
            p.packets,
        );
    }
}
