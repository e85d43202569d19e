//! `Barrier`: parties wait for each other, cycle after cycle.
//!
//! # How it works
//!
//! A robust state lock guards the arrival count and the broken flag. Each party
//! that arrives takes the next *slot* (its arrival index), locks that slot's own
//! robust mutex and keeps it locked for as long as it waits. The last party to
//! arrive runs the action (still under the state lock), writes "passed" into every
//! waiter's slot, bumps the futex word and wakes them all. A break (timeout, abort,
//! reset, a panicking action, a dead party) writes "broken, because…" instead.
//!
//! Death is detected through the slot mutexes: a sleeping waiter wakes up every
//! [`CHECK_INTERVAL`] and tries the slot mutexes of the other parties of its cycle.
//! The kernel marks the mutex of a party that died as owner-died, so the check
//! finds it, even when the pid was reused since, and breaks the barrier. A party
//! that dies while running the action leaves the state lock owner-died, which the
//! next party to take it turns into a break the same way.
//!
//! A waiter never blocks on the state lock without a time limit while it occupies
//! a slot: the next cycle's arrival may hold the state lock while it waits for
//! that very slot.
//!
//! # Async parties
//!
//! An async party (`wait_async`, feature `tokio`) cannot hold a slot mutex: a
//! pthread mutex belongs to a thread, and a task may move between threads at
//! every `.await`. It occupies its slot by writing its wake socket's name in the
//! slot's `waker` word instead (`aio::registry::Parked`). That word does what the
//! mutex does for a thread:
//!
//! - a release or a break signals the socket of every async occupant beside the
//!   futex wake;
//! - the next cycle's arrival at that slot waits until the word is 0 again (the
//!   occupant clears it once it has read its outcome, and bumps `seq` to wake the
//!   arrival), as it waits for a thread's mutex;
//! - death: a socket's name disappears with its process, so a signal that finds
//!   no socket means the occupant died (the liveness check, immune to pid reuse
//!   because the name carries a nonce).
//!
//! An async party never blocks its thread: it takes the state lock only with
//! `try` (and tries again after a pause), and everything it does under the lock is
//! synchronous. A party that is dropped after arriving marks its slot
//! [`CANCELLED`]; the party that finds the mark (itself, if the state lock is free
//! at once; else the last arrival, or any waiter's periodic check) breaks the
//! barrier with `BrokenReason::Cancelled`.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::error::{BrokenBarrierError, BrokenReason, CreateError};
use super::lock::LockGuard;
use super::raw::{Outcome, RawLock, Wait};
use super::wait;
use crate::shm::handle::{RegionIn, RegionOut};
use crate::shm::raw::{BarrierHeader, MutexSlot, Shared};
use crate::sys::code::FnRef;
use crate::sys::pthread::{Acquire, MutexKind, cached_pid};

const BARRIER_MAGIC: u64 = u64::from_le_bytes(*b"mprocBA\x02");

/// The most parties a [`Barrier`] can have.
pub const MAX_PARTIES: usize = 1024;

/// How often a waiting party checks whether another party died.
pub const CHECK_INTERVAL: Duration = Duration::from_millis(100);

const PENDING: u32 = 0;
const PASSED: u32 = 1;
const BROKEN: u32 = 2;
/// A slot whose async party was dropped while pending (`BrokenReason::Cancelled`).
const CANCELLED: u32 = BROKEN | 7 << 8;

fn broken_state(reason: BrokenReason) -> u32 {
    BROKEN | reason.code() << 8
}

/// A barrier shared between processes (Python's `multiprocessing.Barrier`): each
/// of `parties` parties calls [`wait`](Barrier::wait), and all of them continue
/// once the last one has arrived. Then the barrier is ready for the next cycle.
///
/// - The optional **action** runs exactly once per cycle, in the process of the
///   last party to arrive, before anyone is released. It must be a plain `fn()`
///   (not a closure that captures), because it runs in whichever process arrives
///   last; the compiler rejects a capturing closure.
/// - [`wait`](Barrier::wait) returns the party's **arrival index**, from 0 to
///   `parties - 1`, different for each party of a cycle (Python's return value).
/// - The barrier **breaks** when a wait times out, when [`abort`](Barrier::abort)
///   is called, when the action panics, or when a party **dies** while it waits or
///   runs the action (detected within [`CHECK_INTERVAL`]). Every waiting party
///   then gets [`BrokenBarrierError`] with the [reason](BrokenBarrierError::reason),
///   and so does every later `wait` until [`reset`](Barrier::reset).
///
/// A party that dies *before* reaching the barrier is not detected: the others
/// wait for it until their timeout, as in Python. Give waits a timeout.
///
/// The action runs while the barrier's internal lock is held (as in Python, where
/// it runs under the barrier's condition lock): a `wait` that times out during a
/// long action, an `abort` or a `reset` waits for the action to finish first.
///
/// A handle: clone it, or pass it to a child as a task argument.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use mproc::sync::Barrier;
///
/// static CYCLES: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
/// fn tick() {
///     CYCLES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
/// }
///
/// let barrier = Barrier::builder(3).action(tick).timeout(Duration::from_secs(10)).build()?;
/// let mut indexes: Vec<usize> = std::thread::scope(|s| {
///     let hs: Vec<_> = (0..3).map(|_| s.spawn(|| barrier.wait().unwrap())).collect();
///     hs.into_iter().map(|h| h.join().unwrap()).collect()
/// });
/// indexes.sort();
/// assert_eq!(indexes, [0, 1, 2]);
/// assert_eq!(CYCLES.load(std::sync::atomic::Ordering::Relaxed), 1);
/// # Ok::<(), mproc::sync::CreateError>(())
/// ```
#[derive(Clone)]
pub struct Barrier {
    shared: Arc<Shared<BarrierHeader>>,
    parties: u32,
    action: Option<FnRef>,
    timeout: Option<Duration>,
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier")
            .field("parties", &self.parties)
            .field("n_waiting", &self.n_waiting())
            .field("broken", &self.is_broken())
            .finish()
    }
}

/// Builds a [`Barrier`] with an action and a default timeout (Python's
/// `Barrier(parties, action, timeout)`).
#[derive(Debug, Clone)]
pub struct BarrierBuilder {
    parties: usize,
    action: Option<fn()>,
    timeout: Option<Duration>,
}

impl BarrierBuilder {
    /// The function the last party to arrive runs, once per cycle, before the
    /// parties are released.
    ///
    /// # Examples
    ///
    /// ```
    /// fn report() {}
    /// let b = mproc::sync::Barrier::builder(1).action(report).build()?;
    /// assert_eq!(b.wait().unwrap(), 0); // one party: runs `report`, passes
    /// # Ok::<(), mproc::sync::CreateError>(())
    /// ```
    pub fn action(&mut self, action: fn()) -> &mut Self {
        self.action = Some(action);
        self
    }

    /// The timeout that [`wait`](Barrier::wait) uses.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let b = mproc::sync::Barrier::builder(2).timeout(Duration::from_millis(10)).build()?;
    /// assert!(b.wait().is_err()); // nobody else came: timed out, barrier broken
    /// # Ok::<(), mproc::sync::CreateError>(())
    /// ```
    pub fn timeout(&mut self, timeout: Duration) -> &mut Self {
        self.timeout = Some(timeout);
        self
    }

    /// Creates the barrier.
    ///
    /// # Errors
    ///
    /// [`CreateError`] when `parties` is 0 or above [`MAX_PARTIES`], or the system
    /// refuses the shared memory.
    ///
    /// # Examples
    ///
    /// ```
    /// let b = mproc::sync::Barrier::builder(4).build()?;
    /// assert_eq!(b.parties(), 4);
    /// assert!(mproc::sync::Barrier::builder(0).build().is_err());
    /// # Ok::<(), mproc::sync::CreateError>(())
    /// ```
    pub fn build(&self) -> Result<Barrier, CreateError> {
        let parties = self.parties;
        if parties == 0 || parties > MAX_PARTIES {
            return Err(CreateError::new(
                "barrier",
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("a barrier needs between 1 and {MAX_PARTIES} parties, not {parties}"),
                ),
            ));
        }
        let tail = parties * size_of::<MutexSlot>();
        let shared = Shared::<BarrierHeader>::create(c"mproc-barrier", tail, |h, shared, fresh| {
            h.lock.init(fresh, MutexKind::ErrorCheck)?;
            let slots = shared
                .tail_slots::<MutexSlot>(parties)
                .ok_or_else(|| std::io::Error::other("barrier slots do not fit"))?;
            for slot in slots {
                slot.mutex.init(fresh, MutexKind::ErrorCheck)?;
            }
            h.parties.store(parties as u32, Ordering::Relaxed);
            h.magic.store(BARRIER_MAGIC, Ordering::Release);
            Ok(())
        })
        .map_err(|e| CreateError::new("barrier", e))?;
        Ok(Barrier {
            shared: Arc::new(shared),
            parties: parties as u32,
            action: self.action.map(FnRef::new),
            timeout: self.timeout,
        })
    }
}

/// What a waiter learns from its slot.
fn outcome(state: u32, header: &BarrierHeader) -> Result<(), BrokenBarrierError> {
    if state == PASSED {
        Ok(())
    } else {
        Err(BrokenBarrierError {
            reason: BrokenReason::from_code(state >> 8, header.broken_pid.load(Ordering::Relaxed)),
        })
    }
}

impl Barrier {
    /// A barrier for `parties` parties, without action or default timeout.
    ///
    /// # Errors
    ///
    /// [`CreateError`] when `parties` is 0 or above [`MAX_PARTIES`], or the system
    /// refuses the shared memory.
    ///
    /// # Examples
    ///
    /// ```
    /// let b = mproc::sync::Barrier::new(2)?;
    /// assert_eq!(b.parties(), 2);
    /// assert_eq!(b.n_waiting(), 0);
    /// # Ok::<(), mproc::sync::CreateError>(())
    /// ```
    pub fn new(parties: usize) -> Result<Barrier, CreateError> {
        Barrier::builder(parties).build()
    }

    /// A builder, to add an action or a default timeout.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let b = mproc::sync::Barrier::builder(2).timeout(Duration::from_secs(5)).build()?;
    /// assert_eq!(b.parties(), 2);
    /// # Ok::<(), mproc::sync::CreateError>(())
    /// ```
    pub fn builder(parties: usize) -> BarrierBuilder {
        BarrierBuilder {
            parties,
            action: None,
            timeout: None,
        }
    }

    #[inline]
    fn header(&self) -> &BarrierHeader {
        self.shared.header()
    }

    fn slots(&self) -> &[MutexSlot] {
        self.shared
            .tail_slots(self.parties as usize)
            .expect("slots validated when the handle was made")
    }

    /// Waits until all parties have called `wait` (with the barrier's default
    /// timeout, if it has one) and returns this party's arrival index.
    ///
    /// # Errors
    ///
    /// [`BrokenBarrierError`] when the barrier is or becomes broken while waiting,
    /// including by this party's own timeout.
    ///
    /// # Panics
    ///
    /// When the action panics (in the party that ran it; the others get
    /// [`BrokenReason::ActionPanicked`]), or when the action calls this barrier.
    ///
    /// # Examples
    ///
    /// ```
    /// let b = mproc::sync::Barrier::new(2)?;
    /// let idx = std::thread::scope(|s| {
    ///     let other = s.spawn(|| b.wait().unwrap());
    ///     b.wait().unwrap() + other.join().unwrap()
    /// });
    /// assert_eq!(idx, 1); // 0 + 1
    /// # Ok::<(), mproc::sync::CreateError>(())
    /// ```
    pub fn wait(&self) -> Result<usize, BrokenBarrierError> {
        self.wait_until(self.timeout.and_then(crate::deadline::after))
    }

    /// As [`wait`](Barrier::wait), but for at most `timeout`. A timeout breaks the
    /// barrier (for every party), as in Python.
    ///
    /// # Errors
    ///
    /// As [`wait`](Barrier::wait).
    ///
    /// # Panics
    ///
    /// As [`wait`](Barrier::wait).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use mproc::sync::{Barrier, BrokenReason};
    ///
    /// let b = Barrier::new(2)?;
    /// let err = b.wait_timeout(Duration::from_millis(5)).unwrap_err();
    /// assert_eq!(err.reason(), BrokenReason::TimedOut);
    /// assert!(b.is_broken());
    /// # Ok::<(), mproc::sync::CreateError>(())
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> Result<usize, BrokenBarrierError> {
        self.wait_until(crate::deadline::after(timeout))
    }

    /// As [`wait`](Barrier::wait), until `deadline` at the latest.
    ///
    /// # Errors
    ///
    /// As [`wait`](Barrier::wait).
    ///
    /// # Panics
    ///
    /// As [`wait`](Barrier::wait).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    ///
    /// let b = mproc::sync::Barrier::new(1)?;
    /// assert_eq!(b.wait_deadline(Instant::now() + Duration::from_secs(1)), Ok(0));
    /// # Ok::<(), mproc::sync::CreateError>(())
    /// ```
    pub fn wait_deadline(&self, deadline: Instant) -> Result<usize, BrokenBarrierError> {
        self.wait_until(Some(deadline))
    }

    /// Breaks the barrier: parties waiting now, and every later `wait`, get
    /// [`BrokenBarrierError`] ([`BrokenReason::Aborted`]) until
    /// [`reset`](Barrier::reset). Python's `abort()`, for when a party cannot
    /// continue and the others must not wait for it.
    ///
    /// # Examples
    ///
    /// ```
    /// let b = mproc::sync::Barrier::new(3)?;
    /// b.abort();
    /// assert!(b.is_broken());
    /// assert!(b.wait().is_err());
    /// # Ok::<(), mproc::sync::CreateError>(())
    /// ```
    pub fn abort(&self) {
        let guard = self.lock_state();
        self.break_locked(BrokenReason::Aborted, 0);
        drop(guard);
    }

    /// Returns the barrier to its initial state: not broken, nobody waiting.
    /// Parties waiting now get [`BrokenBarrierError`] ([`BrokenReason::Reset`]), as
    /// in Python.
    ///
    /// # Examples
    ///
    /// ```
    /// let b = mproc::sync::Barrier::new(1)?;
    /// b.abort();
    /// b.reset();
    /// assert!(!b.is_broken());
    /// assert_eq!(b.wait(), Ok(0));
    /// # Ok::<(), mproc::sync::CreateError>(())
    /// ```
    pub fn reset(&self) {
        let h = self.header();
        let guard = self.lock_state();
        let count = (h.count.load(Ordering::Relaxed) as usize).min(self.parties as usize);
        if count > 0 {
            for slot in &self.slots()[..count] {
                let _ = slot.state.compare_exchange(
                    PENDING,
                    broken_state(BrokenReason::Reset),
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                );
            }
            h.count.store(0, Ordering::Relaxed);
            self.wake_all(count);
        }
        h.broken.store(0, Ordering::Relaxed);
        h.broken_pid.store(0, Ordering::Relaxed);
        drop(guard);
    }

    /// The number of parties needed to pass the barrier.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(mproc::sync::Barrier::new(5)?.parties(), 5);
    /// # Ok::<(), mproc::sync::CreateError>(())
    /// ```
    pub fn parties(&self) -> usize {
        self.parties as usize
    }

    /// The number of parties waiting now (a snapshot; 0 when broken).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(mproc::sync::Barrier::new(2)?.n_waiting(), 0);
    /// # Ok::<(), mproc::sync::CreateError>(())
    /// ```
    pub fn n_waiting(&self) -> usize {
        let h = self.header();
        if h.broken.load(Ordering::Relaxed) != 0 {
            return 0;
        }
        (h.count.load(Ordering::Relaxed) as usize).min(self.parties as usize)
    }

    /// Whether the barrier is broken (Python's `broken`).
    ///
    /// # Examples
    ///
    /// ```
    /// let b = mproc::sync::Barrier::new(2)?;
    /// assert!(!b.is_broken());
    /// # Ok::<(), mproc::sync::CreateError>(())
    /// ```
    #[doc(alias = "broken")]
    pub fn is_broken(&self) -> bool {
        self.header().broken.load(Ordering::Relaxed) != 0
    }

    /// Wakes every waiter: the threads asleep on `seq`, and the async occupants of
    /// the first `n` slots (the cycle's), through their wake sockets.
    fn wake_all(&self, n: usize) {
        let seq = &self.header().seq;
        seq.fetch_add(1, Ordering::Release);
        wait::wake(seq, u32::MAX);
        for slot in &self.slots()[..n.min(self.parties as usize)] {
            let w = slot.waker.load(Ordering::Acquire);
            if w != 0 {
                let _ = crate::aio::registry::signal(w);
            }
        }
    }

    /// An async occupant leaves its slot (after reading its outcome, or
    /// cancelled): the next cycle's arrival there may be waiting for that.
    #[cfg(feature = "tokio")]
    fn leave_async_slot(&self, slot: &MutexSlot) {
        slot.waker.store(0, Ordering::Release);
        let seq = &self.header().seq;
        seq.fetch_add(1, Ordering::Release);
        wait::wake(seq, u32::MAX);
    }

    /// Waits until no async party of an earlier cycle occupies `slot` (it leaves
    /// as soon as it has read its outcome), or its process is found dead. The
    /// caller holds the state lock and the slot's mutex.
    fn await_async_leaver(&self, slot: &MutexSlot) {
        let seq = &self.header().seq;
        loop {
            let s = seq.load(Ordering::Acquire);
            let w = slot.waker.load(Ordering::Acquire);
            if w == 0 {
                return;
            }
            // Also a nudge, should its wake-up have been lost.
            if crate::aio::registry::signal(w) == Some(false) {
                let _ = slot
                    .waker
                    .compare_exchange(w, 0, Ordering::AcqRel, Ordering::Relaxed);
                continue;
            }
            wait::sleep(seq, s, None, Some(Duration::from_millis(1)));
        }
    }

    /// Breaks the barrier for the current cycle; the caller holds the state lock.
    fn break_locked(&self, reason: BrokenReason, pid: u32) {
        let h = self.header();
        if h.broken.load(Ordering::Relaxed) == 0 {
            h.broken_pid.store(pid, Ordering::Relaxed);
            h.broken.store(reason.code(), Ordering::Relaxed);
        }
        let state = broken_state(BrokenReason::from_code(h.broken.load(Ordering::Relaxed), 0));
        let count = (h.count.load(Ordering::Relaxed) as usize).min(self.parties as usize);
        for slot in &self.slots()[..count] {
            let _ =
                slot.state
                    .compare_exchange(PENDING, state, Ordering::AcqRel, Ordering::Relaxed);
        }
        h.count.store(0, Ordering::Relaxed);
        self.wake_all(count);
    }

    /// Handles an acquisition of the state lock: a dead previous holder breaks the
    /// barrier (it died in the action or while updating the state).
    fn state_acquired(&self, outcome: Outcome) -> Option<LockGuard<'_>> {
        let lock = &self.header().lock;
        match outcome {
            Outcome::Locked => Some(LockGuard::new(lock)),
            Outcome::OwnerDied(pid) => {
                let guard = LockGuard::new(lock);
                self.break_locked(BrokenReason::PartyDied { pid }, pid.unwrap_or(0));
                guard.mark_consistent();
                Some(guard)
            }
            Outcome::Deadlock => panic!(
                "a barrier's action used the barrier itself (wait, abort or reset), which would deadlock"
            ),
            Outcome::WouldBlock | Outcome::TimedOut => None,
        }
    }

    fn lock_state(&self) -> LockGuard<'_> {
        let outcome = self.header().lock.acquire(Wait::Until(None));
        self.state_acquired(outcome)
            .expect("waited for the lock without a deadline")
    }

    /// Takes the state lock, unless the slot's state is decided first (then
    /// `None`). Never blocks for long while the caller occupies its slot.
    fn lock_state_or_decided(&self, slot: &MutexSlot) -> Option<LockGuard<'_>> {
        loop {
            if slot.state.load(Ordering::Acquire) != PENDING {
                return None;
            }
            let outcome = self
                .header()
                .lock
                .acquire(Wait::Until(crate::deadline::after(Duration::from_millis(
                    2,
                ))));
            if let Some(g) = self.state_acquired(outcome) {
                return Some(g);
            }
        }
    }

    fn wait_until(&self, deadline: Option<Instant>) -> Result<usize, BrokenBarrierError> {
        let h = self.header();
        let slots = self.slots();
        let guard = self.lock_state();
        let broken = h.broken.load(Ordering::Relaxed);
        if broken != 0 {
            return Err(BrokenBarrierError {
                reason: BrokenReason::from_code(broken, h.broken_pid.load(Ordering::Relaxed)),
            });
        }
        let idx = h.count.load(Ordering::Relaxed) as usize;
        let Some(slot) = slots.get(idx) else {
            self.break_locked(BrokenReason::Inconsistent, 0);
            return Err(BrokenBarrierError {
                reason: BrokenReason::Inconsistent,
            });
        };
        // Occupy the slot. Its previous occupant, if any, was released or broken
        // already and is on its way out; if it died on the way, that is no news.
        match slot.mutex.lock() {
            Ok(Acquire::Locked) => {}
            Ok(Acquire::OwnerDied) => {
                let _ = slot.mutex.make_consistent();
            }
            _ => {
                self.break_locked(BrokenReason::Inconsistent, 0);
                return Err(BrokenBarrierError {
                    reason: BrokenReason::Inconsistent,
                });
            }
        }
        self.await_async_leaver(slot);
        slot.pid.store(cached_pid(), Ordering::Relaxed);
        slot.state.store(PENDING, Ordering::Relaxed);
        h.count.store(idx as u32 + 1, Ordering::Relaxed);

        if idx + 1 == self.parties as usize {
            return self.release_last(guard, slot, true, idx);
        }

        let s = h.seq.load(Ordering::Acquire);
        drop(guard);
        let result = self.await_slot(idx, slot, s, deadline);
        let _ = slot.mutex.unlock();
        result.map(|()| idx)
    }

    /// The last party: runs the action, then releases everyone. `holds_mutex`:
    /// whether the caller holds `slot`'s mutex (a thread does, an async party not).
    fn release_last(
        &self,
        guard: LockGuard<'_>,
        slot: &MutexSlot,
        holds_mutex: bool,
        idx: usize,
    ) -> Result<usize, BrokenBarrierError> {
        let h = self.header();
        let unlock = || {
            if holds_mutex {
                let _ = slot.mutex.unlock();
            }
        };
        // A party of this cycle that was cancelled after arriving is not here:
        // the cycle must not pass as if it were.
        if self.slots()[..idx]
            .iter()
            .any(|s| s.state.load(Ordering::Acquire) == CANCELLED)
        {
            self.break_locked(BrokenReason::Cancelled, 0);
            unlock();
            drop(guard);
            return Err(BrokenBarrierError {
                reason: BrokenReason::Cancelled,
            });
        }
        if let Some(action) = self.action {
            let Some(f) = action.get() else {
                self.break_locked(BrokenReason::Inconsistent, 0);
                unlock();
                drop(guard);
                return Err(BrokenBarrierError {
                    reason: BrokenReason::Inconsistent,
                });
            };
            if let Err(panic) = std::panic::catch_unwind(f) {
                self.break_locked(BrokenReason::ActionPanicked, 0);
                unlock();
                drop(guard);
                std::panic::resume_unwind(panic);
            }
        }
        for other in &self.slots()[..idx] {
            other.state.store(PASSED, Ordering::Release);
        }
        slot.state.store(PASSED, Ordering::Relaxed);
        h.count.store(0, Ordering::Relaxed);
        self.wake_all(idx + 1);
        unlock();
        drop(guard);
        Ok(idx)
    }

    /// A waiting party: waits until its slot says passed or broken.
    fn await_slot(
        &self,
        idx: usize,
        slot: &MutexSlot,
        mut s: u32,
        deadline: Option<Instant>,
    ) -> Result<(), BrokenBarrierError> {
        let h = self.header();
        let decided = || slot.state.load(Ordering::Acquire) != PENDING;
        wait::spin_until(deadline, decided);
        let mut last_check = Instant::now();
        loop {
            let st = slot.state.load(Ordering::Acquire);
            if st != PENDING {
                return outcome(st, h);
            }
            if wait::expired(deadline) {
                if let Some(guard) = self.lock_state_or_decided(slot) {
                    if slot.state.load(Ordering::Acquire) == PENDING {
                        self.break_locked(BrokenReason::TimedOut, 0);
                    }
                    drop(guard);
                }
                continue;
            }
            wait::sleep(&h.seq, s, deadline, Some(CHECK_INTERVAL));
            s = h.seq.load(Ordering::Acquire);
            if last_check.elapsed() >= CHECK_INTERVAL {
                self.check_parties(idx);
                last_check = Instant::now();
            }
        }
    }

    /// Breaks the barrier if another party of this cycle died while waiting, or
    /// was cancelled (an async party dropped after arriving). Skips the check when
    /// the state lock is busy (someone is arriving or running the action; the next
    /// check will see).
    fn check_parties(&self, own: usize) {
        let h = self.header();
        let outcome = h.lock.acquire(Wait::No);
        let Some(guard) = self.state_acquired(outcome) else {
            return;
        };
        if h.broken.load(Ordering::Relaxed) == 0 {
            let count = (h.count.load(Ordering::Relaxed) as usize).min(self.parties as usize);
            for (j, other) in self.slots()[..count].iter().enumerate() {
                if j == own {
                    continue;
                }
                if other.state.load(Ordering::Acquire) == CANCELLED {
                    self.break_locked(BrokenReason::Cancelled, 0);
                    break;
                }
                // An async occupant: alive while its wake socket is.
                let w = other.waker.load(Ordering::Acquire);
                if w != 0 {
                    if crate::aio::registry::signal(w) == Some(false) {
                        let pid = w as u32;
                        let _ =
                            other
                                .waker
                                .compare_exchange(w, 0, Ordering::AcqRel, Ordering::Relaxed);
                        self.break_locked(BrokenReason::PartyDied { pid: Some(pid) }, pid);
                        break;
                    }
                    continue;
                }
                match other.mutex.try_lock() {
                    Ok(Acquire::OwnerDied) => {
                        let _ = other.mutex.make_consistent();
                        let _ = other.mutex.unlock();
                        let pid = other.pid.load(Ordering::Relaxed);
                        self.break_locked(BrokenReason::PartyDied { pid: Some(pid) }, pid);
                        break;
                    }
                    Ok(Acquire::Locked) => {
                        // Nobody occupies a slot that the count says is taken.
                        let _ = other.mutex.unlock();
                    }
                    _ => {}
                }
            }
        }
        drop(guard);
    }
}

/// What an async party's attempt to arrive came to.
#[cfg(feature = "tokio")]
enum Arrival {
    /// It arrived at this index and waits.
    Waiting(usize),
    /// It arrived last: the cycle is decided.
    Done(Result<usize, BrokenBarrierError>),
    /// The state lock is busy, or the slot's previous occupant has not left yet.
    Busy,
}

#[cfg(feature = "tokio")]
impl Barrier {
    /// Waits until all parties have called `wait` or `wait_async`, as
    /// [`wait`](Barrier::wait) does (with the barrier's default timeout, if it has
    /// one), without blocking the thread: the task sleeps on a wake socket that
    /// the runtime's reactor watches, signalled by the release or break in
    /// whichever process it happens. Threads and tasks, in any processes, can be
    /// parties of the same barrier.
    ///
    /// When this party arrives last, the action runs in this call, on the runtime
    /// thread (keep it short, as it holds the barrier's lock anyway).
    ///
    /// # Errors
    ///
    /// [`BrokenBarrierError`] as for `wait`: a timeout, an abort, a reset, a
    /// panicking action, a party that died while waiting (within
    /// [`CHECK_INTERVAL`], as for `wait`), or a party whose `wait_async` was
    /// cancelled ([`BrokenReason::Cancelled`]).
    ///
    /// # Panics
    ///
    /// As [`wait`](Barrier::wait); and outside a tokio runtime with I/O and time
    /// enabled (only when it has to wait).
    ///
    /// # Cancel safety
    ///
    /// **Not cancel-safe: dropping a pending `wait_async` breaks the barrier.** A
    /// party that has arrived cannot un-arrive (the others' arrival indexes and
    /// the count depend on it), and letting the cycle pass without it would tell
    /// the others that everyone reached the barrier when one party gave up, which
    /// is the one thing a barrier must not get wrong. So a party dropped while it
    /// waits counts as a party that gave up, as a timeout does in Python: the
    /// other parties of that cycle get [`BrokenReason::Cancelled`] (at once when
    /// the barrier's lock is free; else from the next party to arrive or from a
    /// waiter's next check, within [`CHECK_INTERVAL`]), and so does every later
    /// wait until [`reset`](Barrier::reset). A cancellation that races with the
    /// release of its cycle counts as passed (the party was there). A
    /// `wait_async` dropped before it arrived (still waiting for the barrier's
    /// lock, which is rare and short) changes nothing. Use the barrier's default
    /// timeout (`Barrier::builder(n).timeout(..)`) rather than wrapping the call
    /// in `tokio::time::timeout`: both break the barrier, the first with
    /// [`BrokenReason::TimedOut`].
    ///
    /// # Examples
    ///
    /// ```
    /// # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    /// # rt.block_on(async {
    /// use mproc::process::Process;
    /// use mproc::sync::Barrier;
    ///
    /// let barrier = Barrier::new(2)?;
    /// let child = Process::start(|b: Barrier| b.wait().unwrap(), barrier.clone())?;
    /// let mine = barrier.wait_async().await?; // sleeps until the child arrives
    /// let theirs = child.join_async().await?;
    /// assert_eq!(mine + theirs, 1); // indexes 0 and 1
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn wait_async(&self) -> Result<usize, BrokenBarrierError> {
        use crate::aio::registry::{POLL, Parked};

        let deadline = self.timeout.and_then(crate::deadline::after);
        // A wake socket, which names this party while it waits (out of
        // descriptors: look again now and then, without having arrived).
        let parked = loop {
            if let Some(p) = Parked::new() {
                break p;
            }
            if wait::expired(deadline) {
                return self.time_out_unarrived();
            }
            tokio::time::sleep(POLL).await;
        };
        let mut busy = 0u32;
        let idx = loop {
            match self.try_arrive(parked.id()) {
                Arrival::Waiting(idx) => break idx,
                Arrival::Done(result) => return result,
                Arrival::Busy => {
                    // Someone holds the state lock for a moment (an arrival, a
                    // check), or the slot's previous occupant is on its way out.
                    busy += 1;
                    if busy < 8 {
                        tokio::task::yield_now().await;
                    } else {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                }
            }
        };
        let slot = &self.slots()[idx];
        let party = AsyncParty {
            barrier: self,
            slot,
            idx,
        };
        let h = self.header();
        let mut last_check = Instant::now();
        loop {
            parked.drain();
            let st = slot.state.load(Ordering::Acquire);
            if st != PENDING {
                drop(party);
                return outcome(st, h).map(|()| idx);
            }
            if wait::expired(deadline) {
                if !self.break_if_pending(slot, BrokenReason::TimedOut) {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                continue;
            }
            let mut nap = CHECK_INTERVAL;
            if let Some(d) = deadline {
                nap = nap.min(d.saturating_duration_since(Instant::now()));
            }
            parked.sleep(nap).await;
            if last_check.elapsed() >= CHECK_INTERVAL {
                self.check_parties(idx);
                last_check = Instant::now();
            }
        }
    }

    /// An async party's attempt to arrive: synchronous, never blocks (the state
    /// lock is only tried).
    fn try_arrive(&self, waker: u64) -> Arrival {
        let h = self.header();
        let Some(guard) = self.state_acquired(h.lock.acquire(Wait::No)) else {
            return Arrival::Busy;
        };
        let broken = h.broken.load(Ordering::Relaxed);
        if broken != 0 {
            return Arrival::Done(Err(BrokenBarrierError {
                reason: BrokenReason::from_code(broken, h.broken_pid.load(Ordering::Relaxed)),
            }));
        }
        let idx = h.count.load(Ordering::Relaxed) as usize;
        let inconsistent = || {
            self.break_locked(BrokenReason::Inconsistent, 0);
            Arrival::Done(Err(BrokenBarrierError {
                reason: BrokenReason::Inconsistent,
            }))
        };
        let Some(slot) = self.slots().get(idx) else {
            return inconsistent();
        };
        // The slot's previous occupant must have left: an async one clears the
        // waker word, a thread unlocks the mutex (which this party then leaves
        // free: it cannot hold a thread's mutex across awaits).
        let w = slot.waker.load(Ordering::Acquire);
        if w != 0 {
            if crate::aio::registry::signal(w) != Some(false) {
                return Arrival::Busy;
            }
            // It died on its way out: no news.
            slot.waker.store(0, Ordering::Relaxed);
        }
        match slot.mutex.try_lock() {
            Ok(Acquire::Locked) => {
                let _ = slot.mutex.unlock();
            }
            Ok(Acquire::OwnerDied) => {
                let _ = slot.mutex.make_consistent();
                let _ = slot.mutex.unlock();
            }
            Ok(Acquire::WouldBlock) => return Arrival::Busy,
            _ => return inconsistent(),
        }
        slot.pid.store(cached_pid(), Ordering::Relaxed);
        slot.state.store(PENDING, Ordering::Relaxed);
        h.count.store(idx as u32 + 1, Ordering::Relaxed);
        if idx + 1 == self.parties as usize {
            return Arrival::Done(self.release_last(guard, slot, false, idx));
        }
        slot.waker.store(waker, Ordering::Release);
        drop(guard);
        Arrival::Waiting(idx)
    }

    /// Breaks the barrier with `reason` if `slot` is still pending, when the state
    /// lock is free now; returns whether it was (the caller looks again).
    fn break_if_pending(&self, slot: &MutexSlot, reason: BrokenReason) -> bool {
        let outcome = self.header().lock.acquire(Wait::No);
        let Some(guard) = self.state_acquired(outcome) else {
            return false;
        };
        if slot.state.load(Ordering::Acquire) == PENDING {
            self.break_locked(reason, 0);
        }
        drop(guard);
        true
    }

    /// A `wait_async` whose deadline passed before it could arrive: a timeout
    /// breaks the barrier, as for an arrived party.
    fn time_out_unarrived(&self) -> Result<usize, BrokenBarrierError> {
        let h = self.header();
        if let Some(guard) = self.state_acquired(h.lock.acquire(Wait::No)) {
            self.break_locked(BrokenReason::TimedOut, 0);
            drop(guard);
        }
        Err(BrokenBarrierError {
            reason: BrokenReason::TimedOut,
        })
    }
}

/// An async party in its slot: leaves it when dropped, and when dropped before
/// its cycle was decided (cancelled), marks the slot [`CANCELLED`] and breaks the
/// barrier if it can do so without waiting.
#[cfg(feature = "tokio")]
struct AsyncParty<'a> {
    barrier: &'a Barrier,
    slot: &'a MutexSlot,
    idx: usize,
}

#[cfg(feature = "tokio")]
impl Drop for AsyncParty<'_> {
    fn drop(&mut self) {
        let (b, slot) = (self.barrier, self.slot);
        if slot
            .state
            .compare_exchange(PENDING, CANCELLED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            let h = b.header();
            if let Some(guard) = b.state_acquired(h.lock.acquire(Wait::No)) {
                // Still this cycle's (the slot cannot be reused before `leave`),
                // and not decided meanwhile.
                if slot.state.load(Ordering::Acquire) == CANCELLED
                    && self.idx < h.count.load(Ordering::Relaxed) as usize
                    && h.broken.load(Ordering::Relaxed) == 0
                {
                    b.break_locked(BrokenReason::Cancelled, 0);
                }
                drop(guard);
            }
        }
        b.leave_async_slot(slot);
    }
}

#[derive(Serialize)]
struct BarrierOut<'a> {
    region: RegionOut<'a>,
    action: Option<FnRef>,
    timeout: Option<Duration>,
}

#[derive(Deserialize)]
struct BarrierIn {
    region: RegionIn,
    action: Option<FnRef>,
    timeout: Option<Duration>,
}

impl Serialize for Barrier {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        BarrierOut {
            region: RegionOut::new(self.shared.region()),
            action: self.action,
            timeout: self.timeout,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Barrier {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let wire = BarrierIn::deserialize(d)?;
        let mut parties = 0u32;
        let shared = wire
            .region
            .into_shared::<BarrierHeader, D::Error>(|region| {
                let h = region
                    .view::<BarrierHeader>(0)
                    .ok_or_else(|| "received barrier is too small".to_string())?;
                if h.magic.load(Ordering::Acquire) != BARRIER_MAGIC {
                    return Err("received descriptor is not an mproc barrier".to_string());
                }
                parties = h.parties.load(Ordering::Relaxed);
                if parties == 0 || parties as usize > MAX_PARTIES {
                    return Err(format!(
                        "received barrier has an impossible {parties} parties"
                    ));
                }
                Ok(parties as usize * size_of::<MutexSlot>())
            })?;
        if let Some(action) = wire.action {
            if action.get().is_none() {
                return Err(serde::de::Error::custom(
                    "received barrier's action was sent by a process running a different executable",
                ));
            }
        }
        Ok(Barrier {
            shared: Arc::new(shared),
            parties,
            action: wire.action,
            timeout: wire.timeout,
        })
    }
}
