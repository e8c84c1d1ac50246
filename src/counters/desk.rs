//! The hand-over of a drain between a thread that wants one (the flush thread) and the one writer
//! of exclusive counters, the only thread that may read and zero their plain cells, which it does
//! between two of its batches. With no writer (not made yet, or gone) the asking thread drains.

use super::Drained;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long an asker waits before it warns that the writer does not come round.
const SLOW: Duration = Duration::from_secs(5);

#[derive(Default)]
pub struct Desk {
    /// Set while a drain is asked for: all the writer pays per batch is loading it.
    asked: AtomicBool,
    state: Mutex<State>,
    changed: Condvar,
    /// One asker at a time.
    askers: Mutex<()>,
}

#[derive(Default)]
struct State {
    writer: bool,
    result: Option<Drained>,
}

impl Desk {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A writer is made: false if there was one already. It waits for a drain the asker is
    /// doing itself.
    pub fn writer_arrives(&self) -> bool {
        !std::mem::replace(&mut self.state().writer, true)
    }

    /// The writer is gone: an asker waiting for it drains itself.
    pub fn writer_leaves(&self) {
        self.state().writer = false;
        self.changed.notify_all();
    }

    #[inline]
    pub fn asked(&self) -> bool {
        self.asked.load(Relaxed)
    }

    /// The writer's side, while it waits for packets: sleeps up to `timeout`, woken as soon as
    /// a drain is asked; true if one is.
    pub fn await_ask(&self, timeout: Duration) -> bool {
        let _ = self
            .changed
            .wait_timeout_while(self.state(), timeout, |_| !self.asked.load(Relaxed));
        self.asked.load(Relaxed)
    }

    /// The writer's side, between its batches: drains with `drain` and hands the result over.
    #[cold]
    pub fn serve(&self, drain: impl FnOnce() -> Drained) {
        let mut state = self.state();
        if !self.asked.load(Relaxed) {
            return;
        }
        state.result = Some(drain());
        self.asked.store(false, Relaxed);
        drop(state);
        self.changed.notify_all();
    }

    /// The asking side: waits until the writer has drained, or drains with `drain` itself when
    /// there is no writer (then no writer can arrive before it is done).
    pub fn ask(&self, drain: impl FnOnce() -> Drained) -> Drained {
        let _one = self.askers.lock().unwrap_or_else(|e| e.into_inner());
        let mut state = self.state();
        if state.writer {
            self.asked.store(true, Relaxed);
            // a writer waiting for packets comes round at once
            self.changed.notify_all();
            let start = Instant::now();
            let mut warned = false;
            loop {
                if let Some(drained) = state.result.take() {
                    return drained;
                }
                if !state.writer {
                    break;
                }
                state = match self.changed.wait_timeout(state, SLOW) {
                    Ok((s, _)) => s,
                    Err(e) => e.into_inner().0,
                };
                if !warned && start.elapsed() >= SLOW {
                    tracing::warn!(
                        "the capture thread has not come round to drain its counters for 5 s"
                    );
                    warned = true;
                }
            }
            self.asked.store(false, Relaxed);
        }
        drain()
    }
}
