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

/// Wakes up to `n` waiters sleeping on `word`; returns how many were woken.
pub(crate) fn futex_wake(word: &AtomicU32, n: u32) -> usize {
    futex::wake(word, futex::Flags::empty(), n).unwrap_or(0)
}
