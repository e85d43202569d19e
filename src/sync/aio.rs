//! Synchronisation primitives from async code.
//!
//! `Event::wait_async`: the event keeps a table of async waiters in its tail
//! (`crate::aio::registry`); `set`, which wakes the futex sleepers when the
//! waiters bit is set, signals the table's wake sockets in the same case.

use std::sync::atomic::Ordering;

use super::event::{Event, GEN_MASK, SET, WAITERS};

impl Event {
    /// Waits until the flag is raised, as [`wait`](Event::wait) does, without
    /// blocking the thread: a raised flag returns at once; otherwise the task
    /// sleeps until a [`set`](Event::set) from any process wakes it through the
    /// runtime's reactor. Like `wait`, it returns once the flag has been raised
    /// since it began, even if it was cleared again.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime with I/O and time enabled (only when it has to wait).
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: it only waits; a dropped `wait_async` leaves the event as it was.
    ///
    /// # Examples
    ///
    /// ```
    /// # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    /// # rt.block_on(async {
    /// use mproc::process::Process;
    /// use mproc::sync::Event;
    ///
    /// let ready = Event::new()?;
    /// let child = Process::start(|e: Event| e.set(), ready.clone())?;
    /// ready.wait_async().await;
    /// assert!(ready.is_set());
    /// child.join_async().await?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn wait_async(&self) {
        let word = &self.shared_word();
        let start = word.load(Ordering::Acquire);
        if start & SET != 0 {
            return;
        }
        let generation = start & GEN_MASK;
        let done = |w: u32| w & SET != 0 || w & GEN_MASK != generation;
        let Some(waiters) = self.async_waiters() else {
            // Cannot happen (a region without the table is refused when opened);
            // without a table, look again now and then.
            while !done(word.load(Ordering::Acquire)) {
                tokio::time::sleep(crate::aio::registry::POLL).await;
            }
            return;
        };
        let table = waiters.table();
        let reg = crate::aio::registry::Registration::new(&table, 0);
        loop {
            reg.drain();
            let cur = word.load(Ordering::Acquire);
            if done(cur) {
                return;
            }
            // Announce a waiter, as a sleeping thread does, after the slot is
            // written (`SeqCst`): a `set` that sees the bit sees the slot.
            if cur & WAITERS == 0
                && word
                    .compare_exchange(cur, cur | WAITERS, Ordering::SeqCst, Ordering::Acquire)
                    .is_err()
            {
                continue;
            }
            reg.sleep().await;
        }
    }
}
