//! The producer lock: a thread mark in `P_LOCK`, taken with one CAS, released with
//! a plain store; a holder proven dead is taken over and its put repaired.

use std::io;
use std::sync::atomic::{Ordering, fence};
use std::time::{Duration, Instant};

use super::algorithm::Protocol;
use super::layout::*;
use super::wait::{Wait, decrement};
use super::{Ring, fault};
use crate::sys::barrier;
use crate::sys::futex::futex_wait;
use crate::sys::thread_mark::{self, Liveness};

const LOCK_SPINS: u32 = 200;
/// How long a producer waits on one lock holder before it asks whether that holder
/// is still alive (and its longest sleep meanwhile).
const HOLDER_CHECK: Duration = Duration::from_millis(10);

/// The producer lock, held.
pub(super) struct Guard<'a> {
    ring: &'a Ring,
}

impl<'a> Guard<'a> {
    /// The guard of a lock this thread has just taken from free (no repair due).
    #[inline(always)]
    pub(super) fn held(ring: &'a Ring) -> Guard<'a> {
        Guard { ring }
    }
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        if !fault::crashed() {
            self.ring.unlock();
        }
    }
}

impl Ring {
    /// Takes the producer lock: one CAS of this thread's mark into `P_LOCK` when it
    /// is free (see [`lock_contended`](Self::lock_contended) otherwise), then repairs
    /// what a dead holder left.
    #[inline]
    pub(super) fn lock(&self, deadline: Option<Instant>) -> io::Result<Guard<'_>> {
        let me = thread_mark::current();
        let took_from_dead = if self.acquire(0, me) {
            false
        } else {
            self.lock_contended(me, deadline)?
        };
        let guard = Guard { ring: self };
        if took_from_dead {
            self.recover();
        }
        Ok(guard)
    }

    /// Releases the producer lock ([`Protocol::release`]) and wakes a producer
    /// that sleeps on it.
    #[inline]
    pub(super) fn unlock(&self) {
        self.release();
        self.wake(Wait::Lock, false, false);
    }

    /// [`lock`](Self::lock) when the first try found the lock held: spin, then
    /// sleep, and take over from a holder that [`thread_mark::liveness`] proves dead
    /// (returns `true` then). A live holder is waited for however long it holds on.
    #[cold]
    #[inline(never)]
    pub(super) fn lock_contended(&self, me: u64, deadline: Option<Instant>) -> io::Result<bool> {
        let word = self.region.hdr_u64::<P_LOCK>();
        let take = |from: u64| self.acquire(from, me);
        // Another producer holds the lock: it runs on another CPU, or was preempted
        // on this one. Either way, let this CPU's other process (a consumer, or the
        // holder) run first.
        self.yield_to_other_kind();
        if word.load(Ordering::Relaxed) == 0 && take(0) {
            return Ok(false);
        }
        for _ in 0..LOCK_SPINS {
            std::hint::spin_loop();
            if word.load(Ordering::Relaxed) == 0 && take(0) {
                return Ok(false);
            }
        }
        let (seq_off, waiters_off) = Wait::Lock.offs();
        let seq = self.u32(seq_off);
        let waiters = self.u32(waiters_off);
        // The holder we have been waiting on, and since when.
        let mut watched = (0u64, Instant::now());
        loop {
            let holder = word.load(Ordering::Acquire);
            if holder == 0 {
                if take(0) {
                    return Ok(false);
                }
                continue;
            }
            let now = Instant::now();
            if holder != watched.0 {
                watched = (holder, now);
            } else if now - watched.1 >= HOLDER_CHECK {
                if thread_mark::liveness(holder) == Liveness::Dead {
                    if take(holder) {
                        return Ok(true);
                    }
                    continue;
                }
                watched.1 = now;
            }
            if deadline.is_some_and(|d| now >= d) {
                return Err(io::ErrorKind::TimedOut.into());
            }
            let s = seq.load(Ordering::Acquire);
            waiters.fetch_add(1, Ordering::SeqCst);
            fence(Ordering::SeqCst);
            if self.asymmetric {
                // As for data waits: the holder releases with a plain store and
                // looks at the waiter count without a fence.
                let _ = barrier::global_barrier();
            }
            if word.load(Ordering::SeqCst) == holder {
                let nap = deadline.map_or(HOLDER_CHECK, |d| {
                    d.saturating_duration_since(now).min(HOLDER_CHECK)
                });
                let _ = futex_wait(seq, s, Some(nap));
            }
            decrement(waiters);
        }
    }

    /// Counts and repairs a producer's death (the lock is held).
    #[cold]
    #[inline(never)]
    pub(super) fn recover(&self) {
        self.region
            .hdr_u64::<H_RECOVERIES>()
            .fetch_add(1, Ordering::Relaxed);
        self.repair_producer();
    }
}
