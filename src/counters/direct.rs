//! The direct-indexed counter table of one IPv4 local network (up to a /16): one row of atomic
//! cells per address, indexed by `address − network`. No keys, no hashing, no epochs.
#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use super::cells::{self, Cells};
use crate::usage::Usage;

pub struct DirectTable {
    base: u32,
    rows: Box<[Cells]>,
}

impl DirectTable {
    /// A table for `size` addresses from `base`. The memory is zeroed by the allocator, so pages
    /// of addresses never seen are never made resident.
    pub fn new(base: u32, size: usize) -> Self {
        Self {
            base,
            rows: bytemuck::zeroed_slice_box(size),
        }
    }

    /// Rows (addresses) in the table.
    pub fn size(&self) -> usize {
        self.rows.len()
    }

    /// Asks the processor to bring in every row (a hint: no effect on the counts).
    pub fn warm(&self) {
        self.rows.iter().for_each(cells::prefetch_row);
    }

    #[inline]
    pub fn row(&self, addr: u32) -> Option<&Cells> {
        self.rows.get(addr.wrapping_sub(self.base) as usize)
    }

    /// Swaps every active row to zero and hands out (address, usage). Counts added while this
    /// runs land either in this drain or the next one: none is lost.
    pub fn drain(&self, mut out: impl FnMut(u32, Usage)) {
        for (i, row) in self.rows.iter().enumerate() {
            if let Some(usage) = cells::take(row) {
                out(self.base.wrapping_add(i as u32), usage);
            }
        }
    }
}
