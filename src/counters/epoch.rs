//! Quiescence for the hashed tables: each writer publishes the epoch in which its current batch
//! began, so the drainer knows when no writer can still hold a reference into a retired
//! generation. Writers only store (once per batch); only the drainer waits.

use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// A writer outside any batch.
pub const IDLE: u64 = u64::MAX;

/// The global epoch and every writer's published epoch.
#[derive(Default)]
pub struct Epochs {
    global: AtomicU64,
    writers: Mutex<Vec<Weak<AtomicU64>>>,
}

impl Epochs {
    /// A new writer's slot (registration happens once per capture thread, never per packet).
    pub fn register(&self) -> Arc<AtomicU64> {
        let slot = Arc::new(AtomicU64::new(IDLE));
        let mut writers = self.writers.lock().unwrap_or_else(|e| e.into_inner());
        writers.retain(|w| w.strong_count() > 0);
        writers.push(Arc::downgrade(&slot));
        slot
    }

    /// Called by a writer at the start of a batch: publishes the current epoch. Everything the
    /// writer loads afterwards (SeqCst) is ordered after that publication.
    #[inline]
    pub fn enter(&self, slot: &AtomicU64) {
        slot.store(self.global.load(SeqCst), SeqCst);
    }

    /// Called by a writer at the end of a batch.
    #[inline]
    pub fn leave(slot: &AtomicU64) {
        slot.store(IDLE, SeqCst);
    }

    /// Advances the epoch and waits until every writer is idle or has entered a batch in the new
    /// epoch. Must not be called from a thread that holds an open batch.
    pub fn synchronize(&self) {
        let target = self.global.fetch_add(1, SeqCst) + 1;
        let slots: Vec<Arc<AtomicU64>> = {
            let writers = self.writers.lock().unwrap_or_else(|e| e.into_inner());
            writers.iter().filter_map(Weak::upgrade).collect()
        };
        let start = Instant::now();
        let mut warned = false;
        for slot in slots {
            let mut spins = 0u32;
            loop {
                let seen = slot.load(SeqCst);
                if seen == IDLE || seen >= target {
                    break;
                }
                spins += 1;
                if spins < 64 {
                    std::hint::spin_loop();
                } else {
                    std::thread::sleep(Duration::from_micros(200));
                }
                if !warned && start.elapsed() > Duration::from_secs(5) {
                    tracing::warn!("a capture thread has held one batch for over 5 s");
                    warned = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synchronize_waits_for_a_batch_from_an_older_epoch() {
        let epochs = Arc::new(Epochs::default());
        let slot = epochs.register();
        epochs.enter(&slot);
        let e2 = Arc::clone(&epochs);
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let d2 = Arc::clone(&done);
        let t = std::thread::spawn(move || {
            e2.synchronize();
            d2.store(true, SeqCst);
        });
        std::thread::sleep(Duration::from_millis(50));
        assert!(
            !done.load(SeqCst),
            "synchronize returned while a batch was open"
        );
        Epochs::leave(&slot);
        t.join().unwrap();
        assert!(done.load(SeqCst));
        // an idle or dropped writer never blocks
        drop(slot);
        epochs.synchronize();
    }
}
