//! The hashed counter table of one address family, for IPv6 and for IPv4 networks too large to
//! index directly. Open addressing over two generations of key slots (writers insert into the
//! active one; the drainer retires the other after quiescence), cells in a shared arena whose
//! indices come from a lock-free pool. Memory is bounded: past `max_hosts` new addresses in an
//! interval, a lookup answers None and the caller counts into the network's overflow bucket.
#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use super::cells::{self, Cells};
use super::pool::IndexPool;
use crate::usage::Usage;
use std::sync::atomic::{
    AtomicU32, AtomicU64,
    Ordering::{Acquire, Relaxed, Release},
};

const EMPTY: u64 = 0;
const BUSY: u64 = 1;
/// The key is present but got no cells: it counts into the overflow bucket.
const NO_CELLS: u64 = 2;
/// Ready states hold the arena index plus this.
const READY_BASE: u64 = 3;

/// A key slot: state, then the key's high and low halves. Allocated zeroed (all EMPTY), so
/// untouched slots cost no resident memory.
type Slot = [AtomicU64; 3];

struct Generation {
    slots: Box<[Slot]>,
    /// Keys claimed in this generation; `used[..inserted]` lists their slots, so a drain
    /// visits only those.
    inserted: AtomicU64,
    used: Box<[AtomicU32]>,
}

impl Generation {
    fn new(slots: usize, max_hosts: u32) -> Self {
        Self {
            slots: bytemuck::zeroed_slice_box(slots),
            inserted: AtomicU64::new(0),
            // a few writers may pass the cap check at once: room for them too
            used: bytemuck::zeroed_slice_box(max_hosts as usize + 64),
        }
    }
}

pub struct HashedTable {
    gens: [Generation; 2],
    arena: Box<[Cells]>,
    pool: IndexPool,
    hasher: ahash::RandomState,
    mask: usize,
    max_hosts: u64,
}

impl HashedTable {
    /// Room for `max_hosts` addresses per interval. Key slots are twice that (load ≤ 1/2); the
    /// arena holds two intervals' worth so the retiring generation never starves the new one.
    pub fn new(max_hosts: u32) -> Self {
        let max_hosts = max_hosts.max(1);
        let slots = (max_hosts as usize * 2).next_power_of_two();
        let arena_len = max_hosts.saturating_mul(2);
        Self {
            gens: [
                Generation::new(slots, max_hosts),
                Generation::new(slots, max_hosts),
            ],
            arena: bytemuck::zeroed_slice_box(arena_len as usize),
            pool: IndexPool::new(arena_len),
            hasher: ahash::RandomState::new(),
            mask: slots - 1,
            max_hosts: u64::from(max_hosts),
        }
    }

    /// Keys claimed in generation `gen` so far.
    pub fn keys(&self, gen: usize) -> u64 {
        self.gens.get(gen).map_or(0, |g| g.inserted.load(Relaxed))
    }

    /// Asks the processor to bring in the key slots generation `gen` has claimed, then the
    /// cells they point to (a hint: no effect on the counts; a slot being claimed or cleared
    /// meanwhile is only not brought in).
    pub fn warm(&self, gen: usize) {
        let Some(generation) = self.gens.get(gen) else {
            return;
        };
        let claimed = generation.inserted.load(Relaxed) as usize;
        let used = generation
            .used
            .get(..claimed.min(generation.used.len()))
            .unwrap_or_default();
        let slots = || {
            used.iter()
                .filter_map(|at| generation.slots.get(at.load(Relaxed) as usize))
        };
        // every slot's line requested before the first state is read: the loads overlap
        slots().for_each(|[state, ..]| cells::hint(Some(state)));
        for [state, ..] in slots() {
            if let Some(row) = self.cells_of(state.load(Relaxed)) {
                cells::prefetch_row(row);
            }
        }
    }

    /// The cells of `key` in generation `gen`, inserting it if new. None: the table is full for
    /// this interval (count into the overflow bucket).
    #[inline]
    pub fn row(&self, gen: usize, key: u128) -> Option<&Cells> {
        let generation = self.gens.get(gen)?;
        let hi = (key >> 64) as u64;
        let lo = key as u64;
        let mut at = self.hasher.hash_one(key) as usize & self.mask;
        for _ in 0..=self.mask {
            let slot = generation.slots.get(at)?;
            let [slot_state, slot_hi, slot_lo] = slot;
            let mut state = slot_state.load(Acquire);
            if state == EMPTY {
                if generation.inserted.load(Relaxed) >= self.max_hosts {
                    return None;
                }
                match slot_state.compare_exchange(EMPTY, BUSY, Acquire, Acquire) {
                    Ok(_) => return self.claim(generation, at, hi, lo),
                    Err(now) => state = now,
                }
            }
            while state == BUSY {
                std::hint::spin_loop();
                state = slot_state.load(Acquire);
            }
            if slot_hi.load(Relaxed) == hi && slot_lo.load(Relaxed) == lo {
                return self.cells_of(state);
            }
            at = (at + 1) & self.mask;
        }
        None
    }

    #[inline]
    fn claim(&self, generation: &Generation, at: usize, hi: u64, lo: u64) -> Option<&Cells> {
        let [slot_state, slot_hi, slot_lo] = generation.slots.get(at)?;
        slot_hi.store(hi, Relaxed);
        slot_lo.store(lo, Relaxed);
        let position = generation.inserted.fetch_add(1, Relaxed);
        let recorded = generation
            .used
            .get(position as usize)
            .map(|u| u.store(at as u32, Relaxed))
            .is_some();
        let state = match self.pool.take() {
            // a slot the drain would not find must not hold cells (their counts would stay)
            Some(index) if recorded => READY_BASE + u64::from(index),
            Some(index) => {
                self.pool.give(index);
                NO_CELLS
            }
            None => NO_CELLS,
        };
        slot_state.store(state, Release);
        self.cells_of(state)
    }

    #[inline]
    fn cells_of(&self, state: u64) -> Option<&Cells> {
        let index = state.checked_sub(READY_BASE)?;
        self.arena.get(index as usize)
    }

    /// Empties generation `gen`, handing out (key, usage) for every key that counted something.
    /// Only after quiescence: no writer may still use that generation.
    pub fn drain(&self, gen: usize, mut out: impl FnMut(u128, Usage)) {
        let Some(generation) = self.gens.get(gen) else {
            return;
        };
        let inserted = generation.inserted.swap(0, Relaxed) as usize;
        if inserted == 0 {
            return;
        }
        if inserted > generation.used.len() {
            // more claims than the list holds (only if writers raced far past the cap): the
            // unlisted slots hold no cells, clear them all the slow way after the listed ones
            self.drain_listed(generation, generation.used.len(), &mut out);
            generation.slots.iter().for_each(clear);
            return;
        }
        self.drain_listed(generation, inserted, &mut out);
    }

    fn drain_listed(
        &self,
        generation: &Generation,
        count: usize,
        out: &mut impl FnMut(u128, Usage),
    ) {
        for at in generation.used.iter().take(count) {
            let Some(slot) = generation.slots.get(at.load(Relaxed) as usize) else {
                continue;
            };
            let [slot_state, slot_hi, slot_lo] = slot;
            let state = slot_state.load(Acquire);
            if state == EMPTY {
                continue;
            }
            let key = (u128::from(slot_hi.load(Relaxed)) << 64) | u128::from(slot_lo.load(Relaxed));
            if let Some(row) = self.cells_of(state) {
                if let Some(usage) = cells::take(row) {
                    out(key, usage);
                }
                self.pool.give((state - READY_BASE) as u32);
            }
            clear(slot);
        }
    }
}

fn clear([state, hi, lo]: &Slot) {
    hi.store(0, Relaxed);
    lo.store(0, Relaxed);
    state.store(EMPTY, Release);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::Proto;
    use crate::usage::Dir;

    #[test]
    fn counts_per_key_and_overflows_past_the_cap() {
        let t = HashedTable::new(4);
        for k in 0..4u128 {
            let row = t.row(0, k << 70 | k).unwrap();
            cells::add(
                row,
                cells::Sharing::Shared,
                Dir::Tx,
                Proto::Udp,
                None,
                100,
                1,
            );
        }
        // the same keys again find their rows
        cells::add(
            t.row(0, 1 << 70 | 1).unwrap(),
            cells::Sharing::Shared,
            Dir::Rx,
            Proto::Tcp,
            None,
            7,
            1,
        );
        // a fifth key does not fit this interval
        assert!(t.row(0, 99).is_none());
        let mut got = Vec::new();
        t.drain(0, |k, u| got.push((k, u)));
        got.sort_by_key(|(k, _)| *k);
        assert_eq!(got.len(), 4);
        assert_eq!(got[1].0, 1 << 70 | 1);
        assert_eq!(got[1].1.total_bytes(Dir::Rx), 7);
        assert_eq!(got[1].1.total_bytes(Dir::Tx), 100);
        // after the drain the generation is empty and has room again
        assert!(t.row(0, 99).is_some());
    }
}
