//! Futex wait and wake on words that may live in memory shared between processes.
//!
//! The operations are *not* `FUTEX_PRIVATE_FLAG`: the kernel keys the wait queue on
//! the physical page, so a waiter in one process is woken by a waker in another.
//!
//! # Safety
//!
//! The only unsafe code here is none: rustix's futex calls take `&AtomicU32`, so the
//! type proves the address is valid and aligned for the duration of the call.

use std::io;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use rustix::thread::futex;

/// Sleeps while `*word == expected`, for at most `timeout` (forever when `None`).
///
/// Returns `Ok(())` when woken, when the value already differs, or on a spurious
/// wake-up; `Err` with `ErrorKind::TimedOut` at the timeout. Callers re-check their
/// condition in a loop either way.
pub(crate) fn futex_wait(
    word: &AtomicU32,
    expected: u32,
    timeout: Option<Duration>,
) -> io::Result<()> {
    let ts = timeout.map(|d| rustix::time::Timespec {
        tv_sec: d.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: d.subsec_nanos() as _,
    });
    match futex::wait(word, futex::Flags::empty(), expected, ts.as_ref()) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::AGAIN) | Err(rustix::io::Errno::INTR) => Ok(()),
        Err(rustix::io::Errno::TIMEDOUT) => Err(io::ErrorKind::TimedOut.into()),
        Err(e) => Err(e.into()),
    }
}

/// The largest count `FUTEX_WAKE` takes: "wake everyone".
///
/// The kernel reads the count as a signed `int`, and any value that is not
/// positive (`u32::MAX` is -1) wakes exactly one waiter. Every count handed to the
/// kernel is therefore clamped to this.
pub(crate) const WAKE_ALL: u32 = i32::MAX as u32;

/// Wakes up to `n` waiters sleeping on `word` (every one of them for `n` of
/// [`WAKE_ALL`] or more, `u32::MAX` included); returns how many were woken.
pub(crate) fn futex_wake(word: &AtomicU32, n: u32) -> usize {
    // Clamped here, in the one place every wake goes through: a count above
    // `i32::MAX` would reach the kernel as a negative int and wake only one, and a
    // count of 0 would wake one too.
    if n == 0 {
        return 0;
    }
    futex::wake(word, futex::Flags::empty(), n.min(WAKE_ALL)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;
    use std::time::{Duration, Instant};

    use super::*;

    /// Puts `n` threads to sleep on `word` and wakes with `count` until one call
    /// reports more than one woken thread (or 20 s pass); returns the largest
    /// number a single call woke.
    fn most_woken_at_once(n: usize, count: u32) -> usize {
        let word = AtomicU32::new(0);
        std::thread::scope(|s| {
            for _ in 0..n {
                s.spawn(|| {
                    while word.load(Ordering::Acquire) == 0 {
                        let _ = futex_wait(&word, 0, Some(Duration::from_secs(20)));
                    }
                });
            }
            let end = Instant::now() + Duration::from_secs(20);
            let mut most = 0;
            while most < 2 && Instant::now() < end {
                most = most.max(futex_wake(&word, count));
                std::thread::yield_now();
            }
            word.store(1, Ordering::Release);
            futex_wake(&word, WAKE_ALL);
            most
        })
    }

    #[test]
    fn a_wake_of_u32_max_reaches_more_than_one_sleeper() {
        // With `u32::MAX` passed through, the kernel reads -1 and wakes exactly
        // one: the bug behind `Event::set` waking a single waiter.
        assert!(most_woken_at_once(4, u32::MAX) > 1);
    }

    #[test]
    fn a_wake_of_zero_wakes_nobody() {
        let word = AtomicU32::new(0);
        assert_eq!(futex_wake(&word, 0), 0);
    }
}
