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
    #[cfg(feature = "tokio")]
    async fn wait_async(&self, w: Wait, cond: impl Fn() -> bool) {
        use std::sync::atomic::fence;

        if cond() {
            return;
        }
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
    pub(crate) async fn data_async(&self) {
        self.wait_async(Wait::Data, || self.has_data() || self.is_closed())
            .await
    }

    /// Waits until a get happened since [`gets`](Ring::gets) read `seen` (or the
    /// close).
    #[cfg(feature = "tokio")]
    pub(crate) async fn space_async(&self, seen: u64) {
        self.wait_async(Wait::Space, || self.gets() != seen || self.is_closed())
            .await
    }

    /// Waits until every put is matched by a `task_done`.
    #[cfg(feature = "tokio")]
    pub(crate) async fn join_async(&self) {
        self.wait_async(Wait::Join, || self.done() >= self.puts())
            .await
    }
}
