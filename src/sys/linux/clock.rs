//! The system-wide monotonic clock, comparable between processes (unlike
//! `Instant`, whose value cannot travel).
//!
//! # Safety
//!
//! No unsafe code.

/// Nanoseconds on `CLOCK_MONOTONIC`: the same clock in every process.
pub(crate) fn monotonic_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    (t.tv_sec.max(0) as u64) * 1_000_000_000 + t.tv_nsec.max(0) as u64
}
