//! `Lock` and `RLock`: robust, process-shared mutual exclusion.
//!
//! Both are one generic type, [`RobustLock`], over the raw robust lock
//! ([`LockState`](crate::shm::raw::LockState), see `raw.rs` for its protocol), in
//! the manner of `lock_api`: the kind ([`NonReentrant`] or [`Reentrant`]) picks
//! whether the holder may re-enter and the wire tag, and everything else (handle,
//! guard, error shapes, docs) is written once.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::error::{CreateError, LockResult, LockTimeoutError, OwnerDied, TryLockError};
use super::raw::{Outcome, RawLock, Wait};
use crate::shm::handle::{RegionIn, RegionOut};
use crate::shm::raw::{AsyncWaiters, LockHeader, LockState, Shared};
use crate::sys::pthread::MutexKind;

mod sealed {
    /// What a kind of lock fixes; not nameable outside the crate.
    pub trait Kind: 'static {
        /// Whether the holding thread may acquire it again.
        const REENTRANT: bool;
        /// The tag in shared memory that tells a received lock's kind.
        const MAGIC: u64;
        /// How errors name it.
        const WHAT: &'static str;
        /// Its public name, and its guard's, for `Debug`.
        const NAME: &'static str;
        /// Its guard's public name, for `Debug`.
        const GUARD: &'static str;
    }
}

/// The kind of a [`RobustLock`]: [`NonReentrant`] ([`Lock`]) or [`Reentrant`]
/// ([`RLock`]). Sealed: there are exactly these two.
pub trait LockKind: sealed::Kind {}

/// The kind of a [`Lock`]: locking it again from the holding thread panics (it
/// would deadlock).
#[derive(Debug)]
pub enum NonReentrant {}

/// The kind of an [`RLock`]: the holding thread may acquire it again, and it is
/// released when every guard of that thread is dropped.
#[derive(Debug)]
pub enum Reentrant {}

impl sealed::Kind for NonReentrant {
    const REENTRANT: bool = false;
    const MAGIC: u64 = u64::from_le_bytes(*b"mprocLK\x02");
    const WHAT: &'static str = "lock";
    const NAME: &'static str = "Lock";
    const GUARD: &'static str = "LockGuard";
}
impl LockKind for NonReentrant {}

impl sealed::Kind for Reentrant {
    const REENTRANT: bool = true;
    const MAGIC: u64 = u64::from_le_bytes(*b"mprocRL\x02");
    const WHAT: &'static str = "re-entrant lock";
    const NAME: &'static str = "RLock";
    const GUARD: &'static str = "RLockGuard";
}
impl LockKind for Reentrant {}

#[cold]
#[track_caller]
fn relock_panic() -> ! {
    panic!(
        "Lock::lock called by the thread that already holds the lock, which would deadlock; use an RLock to re-enter"
    )
}

/// A lock shared between processes, which knows its holder and survives its
/// holder's death (Python's `multiprocessing.Lock`, made robust).
///
/// [`lock`](Lock::lock) returns an RAII [`LockGuard`]; the lock is released when
/// the guard is dropped, so it cannot be forgotten on an early return or a panic
/// (Python needs `with lock:` for that). The holder is a *thread*: only that
/// thread can release it (the guard is not `Send`), and locking it again from the
/// same thread panics rather than deadlocking; use an [`RLock`] to re-enter.
///
/// When a process (or thread) dies holding the lock, even by `SIGKILL`, the next
/// acquirer gets the lock with an [`OwnerDied`] error around the guard, instead of
/// waiting forever as Python's lock does. See [`OwnerDied`] for how to recover.
///
/// Uncontended, [`lock`](Lock::lock) is one compare-and-swap and the guard's drop
/// one swap, with no system call. Contended, a waiter spins briefly (not at all
/// when the machine has more runnable threads than CPUs) and then sleeps in the
/// kernel; a release wakes one sleeper. A dead holder is noticed by its waiters
/// within a fraction of a second (they look at it every 10 to 160 ms), and at once
/// by [`try_lock`](RobustLock::try_lock).
///
/// Holders are named by thread id: every process that uses a lock must be in the
/// PID namespace of its creator for a dead holder to be recognised (in another
/// namespace, the lock still excludes, but a dead holder is waited for forever).
///
/// A handle: clone it, or pass it to a child as a task argument; every copy is the
/// same lock.
///
/// # Examples
///
/// ```
/// use mproc::sync::Lock;
///
/// let lock = Lock::new()?;
/// {
///     let _guard = lock.lock().expect("no holder died");
///     assert!(lock.is_locked());
///     assert!(lock.try_lock().is_err()); // held (by us)
/// }
/// assert!(!lock.is_locked());
/// # Ok::<(), mproc::sync::CreateError>(())
/// ```
pub type Lock = RobustLock<NonReentrant>;

/// A re-entrant lock shared between processes (Python's `multiprocessing.RLock`),
/// robust to its holder's death like [`Lock`].
///
/// The thread that holds it may acquire it again; it is released when every
/// guard of that thread is dropped. Other threads, in this or another process,
/// wait. Everything else, including [`OwnerDied`] when a holder dies, is as for
/// [`Lock`].
///
/// # Examples
///
/// ```
/// let rlock = mproc::sync::RLock::new()?;
/// let outer = rlock.lock().unwrap();
/// let inner = rlock.lock().unwrap(); // same thread: fine
/// drop(inner);
/// assert!(rlock.is_locked());
/// drop(outer);
/// assert!(!rlock.is_locked());
/// # Ok::<(), mproc::sync::CreateError>(())
/// ```
pub type RLock = RobustLock<Reentrant>;

/// A lock shared between processes that knows its holder and survives its
/// holder's death: [`Lock`] or [`RLock`], by its kind `K`. Use those names; this
/// type carries the methods both share (see each alias for what differs).
///
/// A handle: clone it, or pass it to a child as a task argument; every copy is the
/// same lock.
pub struct RobustLock<K: LockKind> {
    shared: Arc<Shared<LockHeader>>,
    _kind: PhantomData<fn() -> K>,
}

impl<K: LockKind> Clone for RobustLock<K> {
    fn clone(&self) -> Self {
        RobustLock {
            shared: Arc::clone(&self.shared),
            _kind: PhantomData,
        }
    }
}

impl<K: LockKind> fmt::Debug for RobustLock<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(K::NAME)
            .field("holder", &self.holder_pid())
            .field("owner_died", &self.is_owner_died())
            .finish()
    }
}

impl<K: LockKind> RobustLock<K> {
    /// A new, unlocked lock.
    ///
    /// # Errors
    ///
    /// [`CreateError`] when the system refuses the shared memory.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = mproc::sync::Lock::new()?;
    /// assert!(!lock.is_locked());
    /// let rlock = mproc::sync::RLock::new()?;
    /// assert!(!rlock.is_locked());
    /// # Ok::<(), mproc::sync::CreateError>(())
    /// ```
    pub fn new() -> Result<Self, CreateError> {
        let kind = if K::REENTRANT {
            MutexKind::Recursive
        } else {
            MutexKind::ErrorCheck
        };
        let shared = Shared::<LockHeader>::create(c"mproc-lock", TAIL, |h, _, fresh| {
            h.state.init(fresh, kind)?;
            h.magic.store(K::MAGIC, Ordering::Release);
            Ok(())
        })
        .map_err(|e| CreateError::new(K::WHAT, e))?;
        Ok(RobustLock {
            shared: Arc::new(shared),
            _kind: PhantomData,
        })
    }

    #[inline]
    pub(crate) fn state(&self) -> &LockState {
        &self.shared.header().state
    }

    /// The table of async waiters in the tail (`lock_async`).
    #[cfg(feature = "tokio")]
    #[inline]
    pub(crate) fn async_waiters(&self) -> Option<&AsyncWaiters> {
        async_waiters(&self.shared)
    }

    /// A guard for this lock, acquired by the calling thread: its drop also wakes
    /// async waiters.
    #[inline]
    pub(crate) fn guard(&self) -> RobustLockGuard<'_, K> {
        let mut g = RobustLockGuard::new(self.state());
        g.region = Some(&self.shared);
        g
    }

    /// `lock` when the lock was not simply taken.
    #[cold]
    #[inline(never)]
    fn lock_not_taken(&self, outcome: Outcome) -> LockResult<RobustLockGuard<'_, K>> {
        match outcome {
            Outcome::Locked => Ok(self.guard()),
            Outcome::OwnerDied(pid) => Err(OwnerDied::new(self.guard(), pid)),
            Outcome::Deadlock => relock_panic(),
            Outcome::WouldBlock | Outcome::TimedOut => unreachable!("waited without deadline"),
        }
    }

    /// One attempt of `lock_async`: the guard when the lock could be taken (see
    /// `LockState::acquire_or_announce`), `None` when the task must sleep until a
    /// release signals the lock's table of async waiters (it is registered there
    /// already). `watch` is kept across the attempts of one wait.
    #[cfg(feature = "tokio")]
    pub(crate) fn lock_or_announce(
        &self,
        watch: &mut super::raw::HolderWatch,
    ) -> Option<LockResult<RobustLockGuard<'_, K>>> {
        match self.state().acquire_or_announce(watch) {
            Outcome::Locked => Some(Ok(self.guard())),
            Outcome::OwnerDied(pid) => Some(Err(OwnerDied::new(self.guard(), pid))),
            Outcome::WouldBlock | Outcome::TimedOut | Outcome::Deadlock => None,
        }
    }

    /// Acquires the lock, waiting as long as it takes (Python's `acquire()`). The
    /// thread that holds an [`RLock`] re-enters it at once.
    ///
    /// # Errors
    ///
    /// [`OwnerDied`] (holding the guard) when a previous holder died while holding
    /// the lock and nobody has marked the state consistent since.
    ///
    /// # Panics
    ///
    /// For a [`Lock`], when the calling thread already holds it (which would
    /// deadlock).
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = mproc::sync::Lock::new()?;
    /// let guard = lock.lock().unwrap();
    /// assert_eq!(lock.holder_pid(), Some(std::process::id()));
    /// drop(guard);
    /// assert!(!lock.is_locked());
    ///
    /// let rlock = mproc::sync::RLock::new()?;
    /// let a = rlock.lock().unwrap();
    /// let b = rlock.lock().unwrap(); // same thread: re-entered
    /// drop(b);
    /// assert!(rlock.is_locked()); // still held once
    /// drop(a);
    /// assert!(!rlock.is_locked());
    /// # Ok::<(), mproc::sync::CreateError>(())
    /// ```
    #[doc(alias = "acquire")]
    #[inline]
    pub fn lock(&self) -> LockResult<RobustLockGuard<'_, K>> {
        match self.state().acquire(Wait::Until(None)) {
            Outcome::Locked => Ok(self.guard()),
            other => self.lock_not_taken(other),
        }
    }

    /// Acquires the lock if that is possible without waiting (Python's
    /// `acquire(block=False)`): it is free, or this thread holds an [`RLock`].
    ///
    /// # Errors
    ///
    /// [`TryLockError::WouldBlock`] when another thread holds it (for a [`Lock`],
    /// also when the calling thread does); [`TryLockError::OwnerDied`] as for
    /// [`lock`](RobustLock::lock).
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::sync::{Lock, RLock, TryLockError};
    ///
    /// let lock = Lock::new()?;
    /// let g = lock.try_lock().unwrap();
    /// assert!(matches!(lock.try_lock(), Err(TryLockError::WouldBlock)));
    /// drop(g);
    ///
    /// let rlock = RLock::new()?;
    /// let a = rlock.try_lock().unwrap();
    /// let b = rlock.try_lock().unwrap(); // re-entered
    /// std::thread::scope(|s| {
    ///     s.spawn(|| assert!(rlock.try_lock().is_err())); // another thread: held
    /// });
    /// drop((b, a));
    /// # Ok::<(), mproc::sync::CreateError>(())
    /// ```
    pub fn try_lock(&self) -> Result<RobustLockGuard<'_, K>, TryLockError<RobustLockGuard<'_, K>>> {
        let state = self.state();
        match state.acquire(Wait::No) {
            Outcome::Locked => Ok(self.guard()),
            Outcome::OwnerDied(pid) => Err(OwnerDied::new(self.guard(), pid).into()),
            _ => Err(TryLockError::WouldBlock),
        }
    }

    /// Acquires the lock, waiting at most `timeout` (Python's
    /// `acquire(timeout=t)`).
    ///
    /// # Errors
    ///
    /// [`LockTimeoutError::Timeout`] when the time runs out (for a [`Lock`], at
    /// once when the calling thread holds it itself);
    /// [`LockTimeoutError::OwnerDied`] as for [`lock`](RobustLock::lock).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use mproc::sync::{Lock, LockTimeoutError};
    ///
    /// let lock = Lock::new()?;
    /// let held = lock.lock().unwrap();
    /// std::thread::scope(|s| {
    ///     s.spawn(|| {
    ///         let r = lock.lock_timeout(Duration::from_millis(10));
    ///         assert!(matches!(r, Err(LockTimeoutError::Timeout)));
    ///     });
    /// });
    /// drop(held);
    /// # Ok::<(), mproc::sync::CreateError>(())
    /// ```
    pub fn lock_timeout(
        &self,
        timeout: Duration,
    ) -> Result<RobustLockGuard<'_, K>, LockTimeoutError<RobustLockGuard<'_, K>>> {
        self.lock_until(crate::deadline::after(timeout))
    }

    /// Acquires the lock, waiting until `deadline` at the latest.
    ///
    /// # Errors
    ///
    /// As [`lock_timeout`](RobustLock::lock_timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    ///
    /// let rlock = mproc::sync::RLock::new()?;
    /// let g = rlock.lock_deadline(Instant::now() + Duration::from_secs(1)).unwrap();
    /// assert!(rlock.is_locked());
    /// drop(g);
    /// # Ok::<(), mproc::sync::CreateError>(())
    /// ```
    pub fn lock_deadline(
        &self,
        deadline: Instant,
    ) -> Result<RobustLockGuard<'_, K>, LockTimeoutError<RobustLockGuard<'_, K>>> {
        self.lock_until(Some(deadline))
    }

    fn lock_until(
        &self,
        deadline: Option<Instant>,
    ) -> Result<RobustLockGuard<'_, K>, LockTimeoutError<RobustLockGuard<'_, K>>> {
        let state = self.state();
        match state.acquire(Wait::Until(deadline)) {
            Outcome::Locked => Ok(self.guard()),
            Outcome::OwnerDied(pid) => Err(OwnerDied::new(self.guard(), pid).into()),
            _ => Err(LockTimeoutError::Timeout),
        }
    }

    /// Whether some thread holds the lock now (Python's `locked()`; a snapshot).
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = mproc::sync::Lock::new()?;
    /// let g = lock.lock().unwrap();
    /// assert!(lock.is_locked());
    /// drop(g);
    /// assert!(!lock.is_locked());
    /// # Ok::<(), mproc::sync::CreateError>(())
    /// ```
    #[doc(alias = "locked")]
    pub fn is_locked(&self) -> bool {
        self.state().is_locked()
    }

    /// The process id of the current holder (a snapshot; `None` when free).
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = mproc::sync::Lock::new()?;
    /// assert_eq!(lock.holder_pid(), None);
    /// let g = lock.lock().unwrap();
    /// assert_eq!(lock.holder_pid(), Some(std::process::id()));
    /// # drop(g);
    /// # Ok::<(), mproc::sync::CreateError>(())
    /// ```
    pub fn holder_pid(&self) -> Option<u32> {
        self.state().holder()
    }

    /// Whether a holder died and nobody has marked the state consistent since
    /// (like std's `Mutex::is_poisoned`).
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = mproc::sync::Lock::new()?;
    /// assert!(!lock.is_owner_died());
    /// # Ok::<(), mproc::sync::CreateError>(())
    /// ```
    pub fn is_owner_died(&self) -> bool {
        self.state().is_owner_died()
    }
}

impl<K: LockKind> Serialize for RobustLock<K> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        RegionOut::new(self.shared.region()).serialize(s)
    }
}

impl<'de, K: LockKind> Deserialize<'de> for RobustLock<K> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let shared = RegionIn::deserialize(d)?.into_shared::<LockHeader, D::Error>(|_| Ok(TAIL))?;
        if shared.header().magic.load(Ordering::Acquire) != K::MAGIC {
            return Err(serde::de::Error::custom(format!(
                "received descriptor is not an mproc {}",
                K::WHAT
            )));
        }
        Ok(RobustLock {
            shared: Arc::new(shared),
            _kind: PhantomData,
        })
    }
}

/// The tail of a lock's region: its table of async waiters.
const TAIL: usize = size_of::<AsyncWaiters>();

/// The table of async waiters in a lock's region.
#[inline]
fn async_waiters(shared: &Shared<LockHeader>) -> Option<&AsyncWaiters> {
    shared.tail_slots::<AsyncWaiters>(1).and_then(|s| s.first())
}

/// Holds a [`Lock`]; releases it when dropped. Not `Send`: the thread that
/// acquired the lock releases it.
pub type LockGuard<'a> = RobustLockGuard<'a, NonReentrant>;

/// Holds an [`RLock`] (one level of it); released when dropped. Not `Send`.
pub type RLockGuard<'a> = RobustLockGuard<'a, Reentrant>;

/// Holds a [`RobustLock`] ([`LockGuard`] or [`RLockGuard`]; one level of an
/// [`RLock`]); releases it when dropped. Not `Send`: the thread that acquired the
/// lock releases it.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct RobustLockGuard<'a, K: LockKind> {
    state: &'a LockState,
    /// The lock's region, whose table of async waiters a release signals when
    /// a waiter announced itself (guards of the locks inside conditions and
    /// barriers have none).
    region: Option<&'a Shared<LockHeader>>,
    _kind: PhantomData<fn() -> K>,
    _not_send: PhantomData<*const ()>,
}

impl<'a, K: LockKind> RobustLockGuard<'a, K> {
    #[inline]
    pub(crate) fn new(state: &'a LockState) -> Self {
        RobustLockGuard {
            state,
            region: None,
            _kind: PhantomData,
            _not_send: PhantomData,
        }
    }

    /// Marks the state protected by the lock consistent again after an
    /// [`OwnerDied`]: later acquisitions succeed normally. Call it once whatever
    /// the dead holder may have left half-done is repaired. (pthread's
    /// `pthread_mutex_consistent`; std's `clear_poison`.) Harmless when nobody died.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = mproc::sync::Lock::new()?;
    /// let g = lock.lock().unwrap_or_else(|died| {
    ///     let g = died.into_inner();
    ///     // ... repair the shared state ...
    ///     g.mark_consistent();
    ///     g
    /// });
    /// drop(g);
    /// assert!(!lock.is_owner_died());
    /// # Ok::<(), mproc::sync::CreateError>(())
    /// ```
    pub fn mark_consistent(&self) {
        self.state.mark_consistent();
    }

    pub(crate) fn state(&self) -> &'a LockState {
        self.state
    }
}

impl<K: LockKind> Drop for RobustLockGuard<'_, K> {
    #[inline]
    fn drop(&mut self) {
        // The release's swap says whether a waiter announced itself; an async one
        // registered in the table before it did.
        if self.state.unlock() {
            wake_async(self.region);
        }
    }
}

/// Signals the async waiters of a lock whose release found a waiter announced.
#[cold]
#[inline(never)]
fn wake_async(region: Option<&Shared<LockHeader>>) {
    if let Some(w) = region.and_then(async_waiters) {
        w.table().wake(0);
    }
}

impl<K: LockKind> fmt::Debug for RobustLockGuard<'_, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(K::GUARD).finish_non_exhaustive()
    }
}
