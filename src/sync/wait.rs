//! Waiting: a brief bounded spin, then a futex sleep, against a deadline.
//!
//! On the machines mproc targets, waking a process asleep on the other CPU costs
//! about 30 µs, while a hand-over between two spinning processes takes about 60 ns.
//! So a waiter first spins for a short, fixed budget, watching the shared word
//! with plain loads; only then does it sleep in the kernel. The budget is about
//! twice the cost of a wake-up (the classic bound for competitive spinning: a
//! waiter never wastes more than about twice what sleeping at once would have
//! cost). An idle waiter therefore burns at most one budget of CPU per wait. On a
//! single CPU there is nobody to spin for, and the spin is skipped.

use std::hint;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::sys::futex;

/// How long a waiter spins before it sleeps.
const SPIN_BUDGET: Duration = Duration::from_micros(50);

fn may_spin() -> bool {
    static MULTI_CPU: OnceLock<bool> = OnceLock::new();
    *MULTI_CPU.get_or_init(|| crate::sys::process::cpu_count() > 1)
}

/// Spins until `done()` is true or the spin budget (or `deadline`) is spent.
/// Returns whether `done()` became true.
#[inline]
pub(crate) fn spin_until(deadline: Option<Instant>, mut done: impl FnMut() -> bool) -> bool {
    if done() {
        return true;
    }
    if !may_spin() {
        return false;
    }
    let start = Instant::now();
    let mut end = start + SPIN_BUDGET;
    if let Some(d) = deadline {
        end = end.min(d);
    }
    let mut n: u32 = 0;
    loop {
        // Exponential back-off between polls, capped, as crossbeam's `Backoff`.
        for _ in 0..(1u32 << n.min(6)) {
            hint::spin_loop();
        }
        if done() {
            return true;
        }
        n += 1;
        if Instant::now() >= end {
            return false;
        }
    }
}

/// What a futex sleep came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sleep {
    /// Woken, or the word no longer held `expected`, or a spurious wake-up: check
    /// the condition again.
    Woken,
    /// The deadline passed.
    TimedOut,
}

/// Sleeps while `*word == expected`, until `deadline`, but never longer than
/// `max` (for waiters that must look around now and then).
pub(crate) fn sleep(
    word: &AtomicU32,
    expected: u32,
    deadline: Option<Instant>,
    max: Option<Duration>,
) -> Sleep {
    let mut timeout = match deadline {
        None => None,
        Some(d) => match d.checked_duration_since(Instant::now()) {
            None => return Sleep::TimedOut,
            Some(left) if left.is_zero() => return Sleep::TimedOut,
            Some(left) => Some(left),
        },
    };
    if let Some(m) = max {
        timeout = Some(timeout.map_or(m, |t| t.min(m)));
    }
    match futex::futex_wait(word, expected, timeout) {
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                Sleep::TimedOut
            } else {
                Sleep::Woken
            }
        }
        // Woken, value changed, interrupted, or an unexpected error: the caller
        // re-checks its condition and its deadline either way.
        _ => Sleep::Woken,
    }
}

/// Wakes up to `n` processes asleep on `word`.
#[inline]
pub(crate) fn wake(word: &AtomicU32, n: u32) {
    futex::futex_wake(word, n);
}

/// Whether `deadline` has passed.
pub(crate) fn expired(deadline: Option<Instant>) -> bool {
    deadline.is_some_and(|d| Instant::now() >= d)
}

/// A 32-bit word that the futex-based algorithms (`Event`, `Semaphore`) work on.
///
/// In a program it is an `AtomicU32` in shared memory, waited on with a futex.
/// Under `--cfg loom` it is `crate::loom::Word`, a loom atomic with a model of
/// futex wait and wake, so that loom can check the algorithms for lost wake-ups
/// with threads standing in for processes (`src/sync/tests/loom_*.rs`).
pub(crate) trait FutexWord {
    fn load(&self, order: Ordering) -> u32;
    fn compare_exchange(
        &self,
        current: u32,
        new: u32,
        success: Ordering,
        failure: Ordering,
    ) -> Result<u32, u32>;
    fn compare_exchange_weak(
        &self,
        current: u32,
        new: u32,
        success: Ordering,
        failure: Ordering,
    ) -> Result<u32, u32>;
    fn fetch_add(&self, value: u32, order: Ordering) -> u32;
    fn fetch_sub(&self, value: u32, order: Ordering) -> u32;
    fn fetch_and(&self, value: u32, order: Ordering) -> u32;
    /// A sequentially consistent fence (`std::sync::atomic::fence(SeqCst)`). The
    /// "announce, then check the other side" handshakes between a sleeper and a
    /// waker put one between their store and their load: loom models `SeqCst`
    /// fences, but not `SeqCst` loads and stores.
    fn fence(&self);
    /// Sleeps while the word holds `expected`, until `deadline` (see [`sleep`]).
    fn sleep(&self, expected: u32, deadline: Option<Instant>) -> Sleep;
    /// Wakes up to `n` sleepers (see [`wake`]).
    fn wake(&self, n: u32);
    /// Spins until `done()` (see [`spin_until`]).
    fn spin_until(&self, deadline: Option<Instant>, done: impl FnMut() -> bool) -> bool;
}

impl FutexWord for AtomicU32 {
    #[inline]
    fn load(&self, order: Ordering) -> u32 {
        AtomicU32::load(self, order)
    }
    #[inline]
    fn compare_exchange(
        &self,
        current: u32,
        new: u32,
        success: Ordering,
        failure: Ordering,
    ) -> Result<u32, u32> {
        AtomicU32::compare_exchange(self, current, new, success, failure)
    }
    #[inline]
    fn compare_exchange_weak(
        &self,
        current: u32,
        new: u32,
        success: Ordering,
        failure: Ordering,
    ) -> Result<u32, u32> {
        AtomicU32::compare_exchange_weak(self, current, new, success, failure)
    }
    #[inline]
    fn fetch_add(&self, value: u32, order: Ordering) -> u32 {
        AtomicU32::fetch_add(self, value, order)
    }
    #[inline]
    fn fetch_sub(&self, value: u32, order: Ordering) -> u32 {
        AtomicU32::fetch_sub(self, value, order)
    }
    #[inline]
    fn fetch_and(&self, value: u32, order: Ordering) -> u32 {
        AtomicU32::fetch_and(self, value, order)
    }
    #[inline]
    fn fence(&self) {
        std::sync::atomic::fence(Ordering::SeqCst);
    }
    #[inline]
    fn sleep(&self, expected: u32, deadline: Option<Instant>) -> Sleep {
        sleep(self, expected, deadline, None)
    }
    #[inline]
    fn wake(&self, n: u32) {
        wake(self, n);
    }
    #[inline]
    fn spin_until(&self, deadline: Option<Instant>, done: impl FnMut() -> bool) -> bool {
        spin_until(deadline, done)
    }
}
