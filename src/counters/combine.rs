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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usage::{app_cell, proto_cell};
    use std::sync::atomic::Ordering::Relaxed;

    #[test]
    fn every_count_reaches_its_cells_once_flushed() {
        // more rows than slots, so slots are taken over again and again
        let rows: Box<[Cells]> = bytemuck::zeroed_slice_box(300);
        let combiner = Combiner::default();
        for round in 0..10u64 {
            for (i, row) in rows.iter().enumerate() {
                combiner.add(row, Dir::Tx, Proto::Tcp, Some(App::Http), 100 + round);
                if i % 3 == 0 {
                    combiner.add(row, Dir::Rx, Proto::Udp, None, 7);
                }
            }
            // one hot row, many times in a row
            for _ in 0..50 {
                combiner.add(&rows[0], Dir::Tx, Proto::Tcp, Some(App::Http), 1);
            }
        }
        combiner.flush();
        let get = |row: &Cells, i: usize| row[i].load(Relaxed);
        let tcp_tx = proto_cell(Dir::Tx, Proto::Tcp);
        let http_tx = app_cell(Dir::Tx, App::Http);
        let udp_rx = proto_cell(Dir::Rx, Proto::Udp);
        let sent: u64 = (0..10).map(|r| 100 + r).sum();
        for (i, row) in rows.iter().enumerate() {
            let hot = if i == 0 { 500 } else { 0 };
            assert_eq!(get(row, tcp_tx), sent + hot, "row {i}");
            assert_eq!(get(row, tcp_tx + 1), 10 + hot, "row {i} packets");
            assert_eq!(get(row, http_tx), sent + hot, "row {i} http");
            let udp = if i % 3 == 0 { 70 } else { 0 };
            assert_eq!(get(row, udp_rx), udp, "row {i} udp");
        }
        // nothing is left pending: a second flush adds nothing
        combiner.flush();
        assert_eq!(get(&rows[0], tcp_tx), sent + 500);
    }
}
