//! Synchronisation primitives from async code.
//!
//! `Event::wait_async` and `Lock::lock_async` (`Barrier::wait_async` lives in
//! `barrier.rs`, beside the slots it occupies): the object keeps a table of async waiters in its tail
//! (`crate::aio::registry`); `Event::set`, which wakes the futex sleepers when the
//! waiters bit is set, signals the table's wake sockets in the same case; a lock
//! guard's drop signals them when the table counts a waiter.

use std::sync::atomic::Ordering;

use super::error::{LockResult, TryLockError};
use super::event::{Event, GEN_MASK, SET, WAITERS};
use super::lock::{LockKind, RobustLock, RobustLockGuard};

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

impl<K: LockKind> RobustLock<K> {
    /// Acquires the lock, as [`lock`](RobustLock::lock) does, without blocking the
    /// thread: a free lock is taken at once (one compare-and-swap);
    /// otherwise the task sleeps until a release, in any process, wakes it through
    /// the runtime's reactor, and tries again.
    ///
    /// The lock is held by the runtime thread that ran the successful attempt, and
    /// the guard is not `Send`: drop it on that thread, without an `.await` in
    /// between on a multi-threaded runtime (use it from a current-thread runtime,
    /// or keep the critical section free of awaits). Another task holding this
    /// [`Lock`](super::Lock) on the same thread makes this one wait, not fail.
    ///
    /// # Errors
    ///
    /// [`OwnerDied`](super::OwnerDied) (holding the guard) as for `lock`.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime with I/O and time enabled (only when it has to wait).
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: the lock is taken only by the attempt that returns the guard,
    /// which does not await; a `lock_async` dropped while it waits holds nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    /// # rt.block_on(async {
    /// use std::time::Duration;
    /// use mproc::process::Process;
    /// use mproc::sync::{Event, Lock};
    ///
    /// let lock = Lock::new()?;
    /// let held = Event::new()?;
    /// let child = Process::start(
    ///     |(lock, held): (Lock, Event)| {
    ///         let _g = lock.lock().unwrap();
    ///         held.set();
    ///         std::thread::sleep(Duration::from_millis(100));
    ///     },
    ///     (lock.clone(), held.clone()),
    /// )?;
    /// held.wait_async().await;
    /// let guard = lock.lock_async().await.unwrap(); // after the child's release
    /// assert_eq!(lock.holder_pid(), Some(std::process::id()));
    /// drop(guard);
    /// child.join_async().await?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "acquire")]
    pub async fn lock_async(&self) -> LockResult<RobustLockGuard<'_, K>> {
        let attempt = || match self.try_lock() {
            Ok(g) => Some(Ok(g)),
            Err(TryLockError::OwnerDied(d)) => Some(Err(d)),
            Err(TryLockError::WouldBlock) => None,
        };
        if let Some(r) = attempt() {
            return r;
        }
        let Some(waiters) = self.async_waiters() else {
            // Cannot happen (a region without the table is refused when opened).
            loop {
                tokio::time::sleep(crate::aio::registry::POLL).await;
                if let Some(r) = attempt() {
                    return r;
                }
            }
        };
        let table = waiters.table();
        let reg = crate::aio::registry::Registration::new(&table, 0);
        let mut watch = Default::default();
        loop {
            reg.drain();
            // Takes the lock, or announces this registered waiter in the lock word
            // so that the release signals the table.
            if let Some(r) = self.lock_or_announce(&mut watch) {
                return r;
            }
            reg.sleep().await;
        }
    }
}
