//! The ring's table of async waiters (`crate::aio::registry`), in the header's
//! free space after the wait words, and the async waits built on it.

use std::sync::atomic::Ordering;

use super::Ring;
use super::wait::Wait;
use crate::aio::registry::{SLOTS, Table};

/// The table: its count, then [`SLOTS`] slots (zero in a fresh memfd: empty).
const A_COUNT: usize = 1280;
const A_SLOTS: usize = 1344;
const _: () = assert!(A_SLOTS + SLOTS * 8 <= super::layout::RING_OFF);

impl Ring {
    fn async_table(&self) -> Table<'_> {
        Table {
            count: self.u32(A_COUNT),
            slots: std::array::from_fn(|i| self.u64(A_SLOTS + 8 * i)),
        }
    }

    /// Signals the async waiters of `w` (from `wake_slow`: someone waits); how
    /// many were signalled.
    #[inline]
    pub(super) fn wake_async(&self, w: Wait) -> usize {
        if self.u32(A_COUNT).load(Ordering::SeqCst) == 0 {
            return 0;
        }
        self.async_table().wake(w as u8)
    }

    /// The number of messages taken so far (moves at every get: what a full
    /// queue's async putter waits on).
    #[cfg(feature = "tokio")]
    pub(crate) fn gets(&self) -> u64 {
        self.region
            .hdr_u64::<{ super::layout::C_COUNT }>()
            .load(Ordering::Acquire)
    }

    /// Waits, without blocking the thread, until `cond()`: registered in the
    /// table and counted among the ring's waiters of `w`, so that the wake path
    /// that wakes futex sleepers of `w` signals this waiter's socket too.
    ///
    /// Before it registers, it looks again for a while, as the blocking wait spins
    /// before it sleeps (the same adaptive budget, `Ring::spin_ns`): a hand-off
    /// between two running processes then costs neither side a registration, a
    /// `membarrier` or a wake-up. It never holds the thread for more than a few
    /// microseconds: between short bursts of looks it yields to the runtime, so
    /// that other tasks (and the reactor) run meanwhile.
    ///
    /// `spin`: the condition to look for while spinning (`None`: no spin), which
    /// may ask for more than `cond` (a batch of items rather than one).
    #[cfg(feature = "tokio")]
    async fn wait_async(
        &self,
        w: Wait,
        spin: Option<&mut (dyn FnMut() -> bool + Send)>,
        cond: impl Fn() -> bool,
    ) {
        if cond() {
            return;
        }
        let start = std::time::Instant::now();
        if let Some(spin) = spin {
            if self.spin_async(spin, start).await || cond() {
                return;
            }
        }
        self.register_and_wait(w, &cond).await;
        self.adapt_spin(start.elapsed(), true);
    }

    /// The look-again phase of [`wait_async`](Ring::wait_async): whether `cond()`
    /// came true within the spin budget.
    #[cfg(feature = "tokio")]
    async fn spin_async(
        &self,
        cond: &mut (dyn FnMut() -> bool + Send),
        start: std::time::Instant,
    ) -> bool {
        // Looks between two yields to the runtime; with the pause capped at
        // `MAX_PAUSE` `spin_loop`s, a burst lasts a few microseconds at most.
        const BURST: u32 = 4;
        const MAX_PAUSE: u32 = 16;
        let budget =
            std::time::Duration::from_nanos(u64::from(self.spin_ns.load(Ordering::Relaxed)));
        let mut pause = 2u32;
        let mut looks = 0u32;
        loop {
            for _ in 0..pause {
                std::hint::spin_loop();
            }
            if cond() {
                return true;
            }
            pause = (pause * 2).min(MAX_PAUSE);
            looks = looks.wrapping_add(1);
            if looks % BURST == 0 {
                if start.elapsed() >= budget {
                    return false;
                }
                // Let a process that waits for this CPU run (perhaps the very one
                // this task waits for: on a loaded machine the producer is often
                // not running), as the blocking wait does; this returns at once
                // when nothing else is runnable here, and otherwise costs this
                // thread no more than a preemption would.
                std::thread::yield_now();
                tokio::task::yield_now().await;
                if cond() {
                    return true;
                }
            }
        }
    }

    /// The sleeping phase of [`wait_async`](Ring::wait_async).
    #[cfg(feature = "tokio")]
    async fn register_and_wait(&self, w: Wait, cond: &impl Fn() -> bool) {
        use std::sync::atomic::fence;

        let table = self.async_table();
        let reg = crate::aio::registry::Registration::new(&table, w as u8);
        let waiters = self.u32(w.offs().1);
        // Counted after the slot is written (both `SeqCst`): a waker that sees the
        // count sees the slot.
        waiters.fetch_add(1, Ordering::SeqCst);
        struct Uncount<'a>(&'a std::sync::atomic::AtomicU32);
        impl Drop for Uncount<'_> {
            fn drop(&mut self) {
                super::wait::decrement(self.0);
            }
        }
        let _uncount = Uncount(waiters);
        loop {
            reg.drain();
            fence(Ordering::SeqCst);
            if self.asymmetric && matches!(w, Wait::Data) {
                // As the blocking wait: producers skip their fence, this barrier
                // runs one on their CPUs (see `wait`).
                let _ = crate::sys::barrier::global_barrier();
            }
            if cond() {
                return;
            }
            reg.sleep().await;
        }
    }

    /// Waits until a message (or the close) is there.
    #[cfg(feature = "tokio")]
    ///
    /// While it spins it waits for a small batch, as the blocking get does (see
    /// `Ring::get`): a consumer that takes each message the moment it is counted
    /// pulls the producer's cache lines away at every put.
    pub(crate) async fn data_async(&self) {
        use super::layout::{C_COUNT, P_COUNT};
        const BATCH: u64 = 16;
        const BATCH_LOOKS: u32 = 6;
        let batch = self.capacity.min(BATCH);
        let (mut prev, mut looks) = (0u64, 0u32);
        let mut spin = || {
            let p = self.region.hdr_u64::<P_COUNT>().load(Ordering::Acquire);
            let g = self.region.hdr_u64::<C_COUNT>().load(Ordering::Acquire);
            if self.is_closed() {
                return true;
            }
            if p <= g {
                return false;
            }
            let seen = std::mem::replace(&mut prev, p);
            looks += 1;
            p - g >= batch || p == seen || looks >= BATCH_LOOKS
        };
        self.wait_async(Wait::Data, Some(&mut spin), || {
            self.has_data() || self.is_closed()
        })
        .await
    }

    /// Waits until a get happened since [`gets`](Ring::gets) read `seen` (or the
    /// close).
    #[cfg(feature = "tokio")]
    pub(crate) async fn space_async(&self, seen: u64) {
        self.wait_async(
            Wait::Space,
            Some(&mut || self.gets() != seen || self.is_closed()),
            || self.gets() != seen || self.is_closed(),
        )
        .await
    }

    /// Waits until every put is matched by a `task_done` (without spinning first:
    /// tasks take long).
    #[cfg(feature = "tokio")]
    pub(crate) async fn join_async(&self) {
        self.wait_async(Wait::Join, None, || self.done() >= self.puts())
            .await
    }
}
