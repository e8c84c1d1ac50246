//! One host's atomic counter cells and the two operations on them: add (packet path) and take
//! (drain, an atomic swap to zero).
#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use crate::classify::App;
use crate::parse::Proto;
use crate::usage::{app_cell, proto_cell, Dir, Usage, CELLS};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Atomic cells laid out as [`Usage`].
pub type Cells = [AtomicU64; CELLS];

/// Who may touch the cells while a writer counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sharing {
    /// Several writers, and a drain from another thread: atomic read-modify-write.
    Shared,
    /// One writer that also drains, between its batches (replay): a plain load and store,
    /// no `lock`-prefixed instruction.
    Exclusive,
}

/// Counts `packets` packets of `bytes` in all in one direction: their protocol class, and their
/// application class when they have one.
#[inline]
pub fn add(
    cells: &Cells,
    sharing: Sharing,
    dir: Dir,
    proto: Proto,
    app: Option<App>,
    bytes: u64,
    packets: u64,
) {
    bump(cells, sharing, proto_cell(dir, proto), bytes, packets);
    match sharing {
        // one writer: a select rather than a branch on the class, which changes from packet to
        // packet (without one, the protocol cell is added 0 a second time)
        Sharing::Exclusive => {
            let (at, times) = match app {
                Some(app) => (app_cell(dir, app), 1),
                None => (proto_cell(dir, proto), 0),
            };
            bump(cells, sharing, at, bytes * times, packets * times);
        }
        Sharing::Shared => {
            if let Some(app) = app {
                bump(cells, sharing, app_cell(dir, app), bytes, packets);
            }
        }
    }
}

/// Asks the processor to bring in the cells [`add`] would touch (a hint: no effect on the values).
#[inline(always)]
pub fn prefetch(cells: &Cells, dir: Dir, proto: Proto, app: Option<App>) {
    hint(cells.get(proto_cell(dir, proto)));
    if let Some(app) = app {
        hint(cells.get(app_cell(dir, app)));
    }
}

/// Asks the processor to bring in every cache line of a row (a hint, as [`prefetch`]).
#[inline(always)]
pub fn prefetch_row(cells: &Cells) {
    for line in cells.chunks(8) {
        hint(line.first());
    }
}

/// Asks the processor to bring the cache line of one cell into its nearest cache.
#[inline(always)]
pub fn hint(cell: Option<&AtomicU64>) {
    #[cfg(target_arch = "x86_64")]
    if let Some(cell) = cell {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: a prefetch never faults and changes no memory; SSE is in every x86-64.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(cell.as_ptr().cast::<i8>()) };
    }
}

#[inline]
fn bump(cells: &Cells, sharing: Sharing, bytes_at: usize, bytes: u64, packets: u64) {
    if let Some([b, p]) = cells.get(bytes_at..bytes_at + 2) {
        match sharing {
            Sharing::Shared => {
                b.fetch_add(bytes, Relaxed);
                p.fetch_add(packets, Relaxed);
            }
            Sharing::Exclusive => {
                b.store(b.load(Relaxed).wrapping_add(bytes), Relaxed);
                p.store(p.load(Relaxed).wrapping_add(packets), Relaxed);
            }
        }
    }
}

/// Swaps the cells to zero and returns what they held, or None if they held nothing.
/// Reading first keeps idle rows read-only (no cache-line ownership taken).
#[inline]
pub fn take(cells: &Cells) -> Option<Usage> {
    if cells.iter().all(|c| c.load(Relaxed) == 0) {
        return None;
    }
    let mut usage = Usage::default();
    for (v, c) in usage.0.iter_mut().zip(cells.iter()) {
        *v = c.swap(0, Relaxed);
    }
    Some(usage)
}
