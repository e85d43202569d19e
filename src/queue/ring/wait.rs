//! Waiting: a bounded, adaptive spin, then a sleep on a futex word with a waiter
//! count, so that a waker makes a system call only when someone sleeps.

use std::sync::atomic::{AtomicU32, Ordering, compiler_fence, fence};
use std::time::{Duration, Instant};

use super::layout::*;
use super::{Ring, fault};
use crate::sys::barrier;
use crate::sys::futex::{futex_wait, futex_wake};

/// Longest single futex sleep before a waiter re-checks on its own.
pub(crate) const NAP: Duration = Duration::from_millis(50);
const SPIN_MIN_NS: u32 = 2_000;
const SPIN_MAX_NS: u32 = 80_000;
pub(super) const SPIN_START_NS: u32 = 20_000;

#[derive(Clone, Copy)]
pub(super) enum Wait {
    Data,
    Space,
    Join,
    Lock,
}

impl Wait {
    pub(super) fn offs(self) -> (usize, usize) {
        match self {
            Wait::Data => (W_DATA_SEQ, W_DATA_WAITERS),
            Wait::Space => (W_SPACE_SEQ, W_SPACE_WAITERS),
            Wait::Join => (J_SEQ, J_WAITERS),
            Wait::Lock => (W_LOCK_SEQ, W_LOCK_WAITERS),
        }
    }
}

impl Ring {
    /// Wakes waiters of `w`, if any are registered. `need_fence`: false when the
    /// caller's last store that the waiters' condition reads was a `SeqCst`
    /// read-modify-write (the claim and head CASes of `take`, the `put_count` swap
    /// of a put): a waiter registers with a `SeqCst` RMW and a `SeqCst` fence before
    /// it checks, so either it sees that store or this `SeqCst` load sees it
    /// registered, without a second fence here.
    #[inline(always)]
    pub(super) fn wake(&self, w: Wait, all: bool, need_fence: bool) {
        if need_fence {
            fence(Ordering::SeqCst);
        } else {
            // Keeps the caller's last store before the load below in program
            // order; the CPU may still swap them, which is what the caller's
            // `SeqCst` RMW or the waiter's `membarrier` covers.
            compiler_fence(Ordering::SeqCst);
        }
        let waiters = match w {
            Wait::Data => self.region.hdr_u32::<W_DATA_WAITERS>(),
            Wait::Space => self.region.hdr_u32::<W_SPACE_WAITERS>(),
            Wait::Join => self.region.hdr_u32::<J_WAITERS>(),
            Wait::Lock => self.region.hdr_u32::<W_LOCK_WAITERS>(),
        };
        if waiters.load(Ordering::SeqCst) != 0 {
            self.wake_slow(w, all);
        }
    }

    /// The rest of [`wake`](Self::wake), once waiters were seen.
    #[cold]
    #[inline(never)]
    pub(super) fn wake_slow(&self, w: Wait, all: bool) {
        let (seq_off, waiters_off) = w.offs();
        let waiters = self.u32(waiters_off);
        let seq = self.u32(seq_off);
        seq.fetch_add(1, Ordering::Release);
        let woken = futex_wake(seq, if all { i32::MAX as u32 } else { 1 });
        // Async waiters count among `waiters` too, and are signalled through their
        // sockets (`ring::aio`).
        let woken = woken + self.wake_async(w);
        let misses = &self.wake_misses[w as usize];
        if woken > 0 {
            misses.store(0, Ordering::Relaxed);
        } else if misses.fetch_add(1, Ordering::Relaxed) >= 64 {
            // Waiters were registered, yet 64 wakes in a row found no sleeper: a
            // waiter died asleep and left the count high. Take one off; should this
            // be wrong, that waiter still wakes on its own within `NAP`.
            misses.store(0, Ordering::Relaxed);
            decrement(waiters);
        }
    }

    /// Spins, then sleeps, until `cond()` or `deadline`. Returns whether `cond()`
    /// held.
    pub(super) fn wait(
        &self,
        w: Wait,
        deadline: Option<Instant>,
        spin_cond: impl Fn() -> bool,
        cond: impl Fn() -> bool,
    ) -> bool {
        // Spin on a cheap check, backing off between looks: a look at a cache line
        // the other side is writing steals that line from it, and letting it write
        // several items before we look turns a per-item handoff into a batch.
        let budget = Duration::from_nanos(u64::from(self.spin_ns.load(Ordering::Relaxed)));
        let start = Instant::now();
        let mut pause = 2u32;
        let mut looks = 0u32;
        let mut stall = Stall::new(self.progress(w));
        loop {
            if spin_cond() {
                return true;
            }
            for _ in 0..pause {
                std::hint::spin_loop();
            }
            pause = (pause * 2).min(64);
            looks = looks.wrapping_add(1);
            if stall.stands_still(self.progress(w)) && fault::may_yield() {
                // The side we wait for did nothing since our last look: it is idle,
                // or not running, perhaps queued behind us on this very CPU. Let it
                // (or whatever waits for this CPU) run. While it does make progress it
                // runs elsewhere, and we keep the CPU: a yield then only hands it to
                // a process of our own kind, which contends with our counterpart on
                // the other CPU. Measured in `scaling_queue`'s shapes (64-byte items,
                // 2 CPUs), against a yield every 8 looks: all processes on one CPU
                // (`taskset -c 0`), 1->1 12.3 -> 15.9M items/s, 4->4 7.7 -> 13.8M,
                // 8->1 3.6 -> 8.8M, 1->8 4.6 -> 8.9M; on two CPUs, no shape slower.
                std::thread::yield_now();
            }
            // The clock every 8 looks, yields or not. A yield may last as long as
            // other processes run, which on one CPU is usually longer than the
            // budget; a look at the clock after each yield would end nearly every
            // such wait in a sleep, and make every put pay a wake: 8->1 on one CPU
            // ran at half the rate (4.6M against 9.2M). So a wait yields at most 8
            // times between two looks at the clock.
            if looks % 8 == 0 {
                let now = Instant::now();
                if now - start >= budget || deadline.is_some_and(|d| now >= d) {
                    break;
                }
            }
        }
        let (seq_off, waiters_off) = w.offs();
        let seq = self.u32(seq_off);
        let waiters = self.u32(waiters_off);
        loop {
            let s = seq.load(Ordering::Acquire);
            waiters.fetch_add(1, Ordering::SeqCst);
            fence(Ordering::SeqCst);
            if self.asymmetric && matches!(w, Wait::Data) {
                // Producers count their puts with a plain store and then look at
                // the waiter count without a fence: this barrier runs one on their
                // CPUs, so that either they see us registered or we see their put.
                // Should it fail, a missed wake costs at most one `NAP`.
                let _ = barrier::global_barrier();
            }
            if cond() {
                decrement(waiters);
                self.adapt_spin(start.elapsed(), true);
                return true;
            }
            let nap = match deadline {
                None => NAP,
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        decrement(waiters);
                        return false;
                    }
                    left.min(NAP)
                }
            };
            fault::sleeping();
            let _ = futex_wait(seq, s, Some(nap));
            decrement(waiters);
            if cond() {
                self.adapt_spin(start.elapsed(), true);
                return true;
            }
            if start.elapsed() > Duration::from_nanos(u64::from(SPIN_MAX_NS)) {
                self.adapt_spin(start.elapsed(), true);
            }
        }
    }

    /// The count that moves when the side a `w` waiter waits for acts: puts for a
    /// consumer, gets for a producer waiting for room, `task_done` calls for a
    /// joiner. (Lock waiters wait in `lock_contended`; for them, the holder's puts.)
    #[inline(always)]
    fn progress(&self, w: Wait) -> u64 {
        match w {
            Wait::Data | Wait::Lock => self.region.hdr_u64::<P_COUNT>(),
            Wait::Space => self.region.hdr_u64::<C_COUNT>(),
            Wait::Join => self.region.hdr_u64::<J_DONE>(),
        }
        .load(Ordering::Relaxed)
    }

    /// Gives the CPU to another process, if one waits for it, after this one met a
    /// process of its own kind at work on the queue: a producer found the lock
    /// held, a consumer lost a claim. That one runs on another CPU (or was
    /// preempted here holding the lock), and two of a kind running at once each pull
    /// the same lines across CPUs: with 2 producers and 2 consumers on 2 CPUs, one
    /// of each on each CPU, the pairs ran in step, producer beside producer, then
    /// consumer beside consumer, at 4.5-6M items/s. Yielding then lets this CPU's
    /// process of the other kind run beside the busy one, which streams at 10M
    /// (every sample 10.3-10.9M, against 5.4-10.4M). With nothing else runnable here,
    /// the yield returns at once.
    #[inline]
    pub(super) fn yield_to_other_kind(&self) {
        std::thread::yield_now();
    }

    /// Tunes the spin budget from how long a wait really took: a wait that needed a
    /// sleep but was over soon (within [`SPIN_MAX_NS`], wake-up included) would have
    /// been cheaper as a longer spin; a long one means the other side is idle, and
    /// spinning for it wastes a CPU.
    pub(super) fn adapt_spin(&self, waited: Duration, slept: bool) {
        let cur = self.spin_ns.load(Ordering::Relaxed);
        let waited = waited.as_nanos().min(u128::from(u32::MAX)) as u32;
        let next = if !slept {
            cur
        } else if waited <= SPIN_MAX_NS {
            cur.max(waited.saturating_add(waited / 4)).min(SPIN_MAX_NS)
        } else {
            (cur / 2).max(SPIN_MIN_NS)
        };
        if next != cur {
            self.spin_ns.store(next, Ordering::Relaxed);
        }
    }
}

/// Whether a count a waiter watches stood still between two looks.
struct Stall {
    last: u64,
}

impl Stall {
    fn new(count: u64) -> Stall {
        Stall { last: count }
    }

    /// Takes the count of this look; true if it is the last look's.
    #[inline(always)]
    fn stands_still(&mut self, count: u64) -> bool {
        std::mem::replace(&mut self.last, count) == count
    }
}

pub(super) fn decrement(w: &AtomicU32) {
    let _ = w.fetch_update(Ordering::SeqCst, Ordering::Relaxed, |v| v.checked_sub(1));
}

#[cfg(test)]
mod tests {
    use super::Stall;

    #[test]
    fn a_count_stands_still_only_when_it_did_not_move_since_the_last_look() {
        let mut stall = Stall::new(5);
        assert!(stall.stands_still(5), "unchanged since the wait began");
        assert!(!stall.stands_still(6), "moved");
        assert!(stall.stands_still(6), "unchanged since the last look");
        assert!(!stall.stands_still(9), "moved by several");
        assert!(!stall.stands_still(0), "any change counts, wrapping too");
    }
}
