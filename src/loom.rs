//! Loom's stand-ins for what the lock-free algorithms run on (`--cfg loom` only).
//!
//! The futex-word algorithms of `sync` are written against
//! [`FutexWord`](crate::sync::FutexWord); in a program the word is an `AtomicU32` in
//! shared memory and a sleeper waits in the kernel. Here it is [`Word`]: a loom
//! atomic, plus a model of `futex_wait`/`futex_wake` built from a loom mutex and
//! condition variable. As in the kernel, the check "the word still holds the
//! expected value" and going to sleep happen under the lock that a waker takes,
//! so a wake-up between them cannot be lost by the model, only by the algorithm.
//! Threads stand in for processes; the shared word lives in an `Arc`.
//!
//! Run the models with
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test --lib --release loom_`.

use std::sync::atomic::Ordering;
use std::time::Instant;

use loom::sync::atomic::AtomicU32;
use loom::sync::{Condvar, Mutex};

use crate::sync::{FutexWord, Sleep};

/// A futex word for loom models.
#[derive(Debug)]
pub(crate) struct Word {
    value: AtomicU32,
    queue: Mutex<()>,
    sleepers: Condvar,
}

impl Word {
    /// A word holding `value`.
    pub(crate) fn new(value: u32) -> Word {
        Word {
            value: AtomicU32::new(value),
            queue: Mutex::new(()),
            sleepers: Condvar::new(),
        }
    }
}

impl FutexWord for Word {
    fn load(&self, order: Ordering) -> u32 {
        self.value.load(order)
    }
    fn compare_exchange(
        &self,
        current: u32,
        new: u32,
        success: Ordering,
        failure: Ordering,
    ) -> Result<u32, u32> {
        self.value.compare_exchange(current, new, success, failure)
    }
    fn compare_exchange_weak(
        &self,
        current: u32,
        new: u32,
        success: Ordering,
        failure: Ordering,
    ) -> Result<u32, u32> {
        self.value
            .compare_exchange_weak(current, new, success, failure)
    }
    fn fetch_add(&self, value: u32, order: Ordering) -> u32 {
        self.value.fetch_add(value, order)
    }
    fn fetch_sub(&self, value: u32, order: Ordering) -> u32 {
        self.value.fetch_sub(value, order)
    }
    fn fetch_and(&self, value: u32, order: Ordering) -> u32 {
        self.value.fetch_and(value, order)
    }
    fn fence(&self) {
        loom::sync::atomic::fence(Ordering::SeqCst);
    }
    fn sleep(&self, expected: u32, deadline: Option<Instant>) -> Sleep {
        // Loom has no clock: a model that needs a timeout is not a loom model.
        assert!(deadline.is_none(), "loom models wait without a deadline");
        let queue = self.queue.lock().unwrap();
        if self.value.load(Ordering::SeqCst) != expected {
            return Sleep::Woken;
        }
        drop(self.sleepers.wait(queue).unwrap());
        Sleep::Woken
    }
    fn wake(&self, n: u32) {
        let _queue = self.queue.lock().unwrap();
        if n == u32::MAX {
            self.sleepers.notify_all();
        } else {
            for _ in 0..n {
                self.sleepers.notify_one();
            }
        }
    }
    fn spin_until(&self, _deadline: Option<Instant>, mut done: impl FnMut() -> bool) -> bool {
        // One look instead of a spin: every extra look is a branch for loom to
        // explore, and the sleep path is the one that can lose a wake-up.
        done()
    }
}

/// Loom's 64-bit atomic as the protocols' shared word (the queue ring's words, a
/// lock's owner word).
impl crate::word::AtomicWord for loom::sync::atomic::AtomicU64 {
    fn load(&self, order: Ordering) -> u64 {
        loom::sync::atomic::AtomicU64::load(self, order)
    }
    fn store(&self, value: u64, order: Ordering) {
        loom::sync::atomic::AtomicU64::store(self, value, order);
    }
    fn swap(&self, value: u64, order: Ordering) -> u64 {
        loom::sync::atomic::AtomicU64::swap(self, value, order)
    }
    fn compare_exchange(
        &self,
        current: u64,
        new: u64,
        success: Ordering,
        failure: Ordering,
    ) -> Result<u64, u64> {
        loom::sync::atomic::AtomicU64::compare_exchange(self, current, new, success, failure)
    }
}
