//! A lock-free pool of arena indices for the hashed tables: a bump allocator for indices never
//! used, and a tagged Treiber stack for recycled ones (the tag defeats ABA).

use std::sync::atomic::{
    AtomicU32, AtomicU64,
    Ordering::{AcqRel, Acquire, Relaxed},
};

pub struct IndexPool {
    capacity: u32,
    fresh: AtomicU32,
    /// (tag << 32) | (index + 1); 0 in the low half means empty.
    head: AtomicU64,
    next: Box<[AtomicU32]>,
}

impl IndexPool {
    pub fn new(capacity: u32) -> Self {
        Self {
            capacity,
            fresh: AtomicU32::new(0),
            head: AtomicU64::new(0),
            next: bytemuck::zeroed_slice_box(capacity as usize),
        }
    }

    /// An unused index, or None when all are taken. Recycled indices first: their memory is
    /// already resident.
    #[inline]
    pub fn take(&self) -> Option<u32> {
        let mut head = self.head.load(Acquire);
        loop {
            let top = head as u32;
            if top == 0 {
                break;
            }
            let index = top - 1;
            let below = self.next.get(index as usize).map_or(0, |n| n.load(Relaxed));
            let new = (((head >> 32) + 1) << 32) | u64::from(below);
            match self.head.compare_exchange_weak(head, new, AcqRel, Acquire) {
                Ok(_) => return Some(index),
                Err(h) => head = h,
            }
        }
        let mut fresh = self.fresh.load(Relaxed);
        while fresh < self.capacity {
            match self
                .fresh
                .compare_exchange_weak(fresh, fresh + 1, Relaxed, Relaxed)
            {
                Ok(_) => return Some(fresh),
                Err(f) => fresh = f,
            }
        }
        None
    }

    /// Returns an index taken earlier.
    pub fn give(&self, index: u32) {
        let Some(link) = self.next.get(index as usize) else {
            return;
        };
        let mut head = self.head.load(Acquire);
        loop {
            link.store(head as u32, Relaxed);
            let new = (((head >> 32) + 1) << 32) | u64::from(index + 1);
            match self.head.compare_exchange_weak(head, new, AcqRel, Acquire) {
                Ok(_) => return,
                Err(h) => head = h,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::Arc;

    #[test]
    fn every_index_once_until_given_back() {
        let pool = IndexPool::new(4);
        let taken: Vec<u32> = std::iter::from_fn(|| pool.take()).collect();
        assert_eq!(taken, vec![0, 1, 2, 3]);
        pool.give(2);
        pool.give(0);
        assert_eq!(pool.take(), Some(0));
        assert_eq!(pool.take(), Some(2));
        assert_eq!(pool.take(), None);
    }

    #[test]
    fn concurrent_take_and_give_never_hands_out_an_index_twice() {
        use std::sync::atomic::AtomicBool;
        let pool = Arc::new(IndexPool::new(64));
        let owned: Arc<Vec<AtomicBool>> =
            Arc::new((0..64).map(|_| AtomicBool::new(false)).collect());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let pool = Arc::clone(&pool);
                let owned = Arc::clone(&owned);
                std::thread::spawn(move || {
                    for _ in 0..20_000 {
                        let mine: Vec<u32> = (0..8).filter_map(|_| pool.take()).collect();
                        for &i in &mine {
                            assert!(
                                !owned[i as usize].swap(true, Relaxed),
                                "index {i} handed out twice"
                            );
                        }
                        for i in mine {
                            owned[i as usize].store(false, Relaxed);
                            pool.give(i);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let all: HashSet<u32> = std::iter::from_fn(|| pool.take()).collect();
        assert_eq!(all.len(), 64);
    }
}
