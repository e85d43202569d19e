//! `Lock` and `RLock`: robust, process-shared mutual exclusion.
//!
//! Both sit on one raw primitive, [`LockState`] (a robust pthread mutex plus the
//! owner-died bookkeeping, in shared memory), in the manner of `lock_api`: the raw
//! operations are crate-private methods on the state, and the public types add the
//! handle, the RAII guard and the error shapes on top.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::error::{CreateError, LockResult, LockTimeoutError, OwnerDied, TryLockError};
use super::wait;
use crate::shm::handle::{RegionIn, RegionOut};
use crate::shm::raw::{Fresh, LockHeader, LockState, Shared};
use crate::sys::pthread::{Acquire, MutexKind, cached_pid};

const LOCK_MAGIC: u64 = u64::from_le_bytes(*b"mprocLK\x01");
const RLOCK_MAGIC: u64 = u64::from_le_bytes(*b"mprocRL\x01");

/// What one acquisition attempt of the raw lock came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Held, state consistent.
    Locked,
    /// Held; the previous holder (this pid, if known) died, and the state has not
    /// been marked consistent since.
    OwnerDied(Option<u32>),
    /// Not held: someone else holds it (or, for an error-checking lock, we do).
    WouldBlock,
    /// Not held: the deadline passed.
    TimedOut,
    /// Not held: the calling thread holds this error-checking lock already.
    Deadlock,
}

/// How long an acquisition may wait.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Wait {
    /// Not at all.
    No,
    /// Until the deadline (`None`: forever).
    Until(Option<Instant>),
}

impl LockState {
    /// Initialises a lock in a fresh mapping.
    pub(crate) fn init(&self, fresh: &Fresh, kind: MutexKind) -> std::io::Result<()> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let id = (u64::from(cached_pid()) << 40)
            ^ nanos.rotate_left(20)
            ^ NEXT.fetch_add(1, Ordering::Relaxed);
        self.id.store(id, Ordering::Relaxed);
        self.mutex.init(fresh, kind)
    }

    /// Whether `self` and `other` are the same lock (possibly mapped twice).
    pub(crate) fn is_same(&self, other: &LockState) -> bool {
        std::ptr::eq(self, other)
            || self.id.load(Ordering::Relaxed) == other.id.load(Ordering::Relaxed)
    }

    /// Books an acquisition: records the holder, turns `EOWNERDEAD` into the
    /// persistent owner-died state (making the mutex itself consistent at once, so
    /// that it never becomes unusable).
    #[inline]
    fn acquired(&self, acq: Acquire) -> Outcome {
        match acq {
            Acquire::Locked => {
                self.holder_pid.store(cached_pid(), Ordering::Relaxed);
                if self.owner_died.load(Ordering::Relaxed) == 0 {
                    Outcome::Locked
                } else {
                    Outcome::OwnerDied(pid(self.dead_pid.load(Ordering::Relaxed)))
                }
            }
            Acquire::OwnerDied => {
                let dead = self.holder_pid.load(Ordering::Relaxed);
                // Cannot fail: we hold the mutex and it is in the owner-died state.
                let _ = self.mutex.make_consistent();
                self.dead_pid.store(dead, Ordering::Relaxed);
                self.owner_died.store(1, Ordering::Relaxed);
                self.holder_pid.store(cached_pid(), Ordering::Relaxed);
                Outcome::OwnerDied(pid(dead))
            }
            Acquire::WouldBlock => Outcome::WouldBlock,
            Acquire::TimedOut => Outcome::TimedOut,
            Acquire::Deadlock => Outcome::Deadlock,
        }
    }

    /// Acquires the lock: a non-blocking attempt first (the uncontended fast path:
    /// one `pthread_mutex_trylock`, no system call), then a bounded spin while it is
    /// held, then a sleep in the kernel until `wait`'s deadline.
    #[inline]
    pub(crate) fn acquire(&self, wait: Wait) -> Outcome {
        match self.try_acquire() {
            Outcome::WouldBlock => {}
            other => return other,
        }
        let deadline = match wait {
            Wait::No => return Outcome::WouldBlock,
            Wait::Until(d) => d,
        };
        self.acquire_slow(deadline)
    }

    #[inline]
    fn try_acquire(&self) -> Outcome {
        match self.mutex.try_lock() {
            Ok(acq) => self.acquired(acq),
            Err(e) => unusable(e),
        }
    }

    #[cold]
    fn acquire_slow(&self, deadline: Option<Instant>) -> Outcome {
        if wait::spin_until(deadline, || !self.mutex.is_locked()) {
            match self.try_acquire() {
                Outcome::WouldBlock => {}
                other => return other,
            }
        }
        let acq = match deadline {
            None => self.mutex.lock(),
            Some(d) => match d.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => self.mutex.lock_timeout(left),
                _ => return Outcome::TimedOut,
            },
        };
        match acq {
            Ok(acq) => self.acquired(acq),
            Err(e) => unusable(e),
        }
    }

    /// Releases the lock (once, for a recursive one).
    #[inline]
    pub(crate) fn release(&self) {
        let r = self.mutex.unlock();
        debug_assert!(
            r.is_ok(),
            "unlock of a lock this thread does not hold: {r:?}"
        );
    }

    /// Clears the owner-died state (the caller holds the lock).
    pub(crate) fn mark_consistent(&self) {
        self.owner_died.store(0, Ordering::Relaxed);
    }

    /// Whether the owner-died state is set.
    pub(crate) fn is_owner_died(&self) -> bool {
        self.owner_died.load(Ordering::Relaxed) != 0
    }

    /// The pid of the current holder (a snapshot; `None` when free).
    pub(crate) fn holder(&self) -> Option<u32> {
        if self.mutex.is_locked() {
            pid(self.holder_pid.load(Ordering::Relaxed))
        } else {
            None
        }
    }
}

fn pid(raw: u32) -> Option<u32> {
    (raw != 0).then_some(raw)
}

#[cold]
#[track_caller]
fn unusable(e: std::io::Error) -> ! {
    panic!(
        "a shared lock is unusable ({e}); its shared memory was overwritten by something other than mproc"
    )
}

#[cold]
#[track_caller]
fn relock_panic() -> ! {
    panic!(
        "Lock::lock called by the thread that already holds the lock, which would deadlock; use an RLock to re-enter"
    )
}

/// The handle shared by `Lock` and `RLock`.
#[derive(Clone)]
struct Handle {
    shared: Arc<Shared<LockHeader>>,
}

impl Handle {
    fn new(kind: MutexKind, magic: u64, what: &'static str) -> Result<Handle, CreateError> {
        let shared = Shared::<LockHeader>::create(c"mproc-lock", 0, |h, _, fresh| {
            h.state.init(fresh, kind)?;
            h.magic.store(magic, Ordering::Release);
            Ok(())
        })
        .map_err(|e| CreateError::new(what, e))?;
        Ok(Handle {
            shared: Arc::new(shared),
        })
    }

    #[inline]
    fn state(&self) -> &LockState {
        &self.shared.header().state
    }

    fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
        magic: u64,
        what: &str,
    ) -> Result<Handle, D::Error> {
        let shared = RegionIn::deserialize(d)?.into_shared::<LockHeader, D::Error>(|_| Ok(0))?;
        if shared.header().magic.load(Ordering::Acquire) != magic {
            return Err(serde::de::Error::custom(format!(
                "received descriptor is not an mproc {what}"
            )));
        }
        Ok(Handle {
            shared: Arc::new(shared),
        })
    }
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
/// Uncontended, [`lock`](Lock::lock) and the guard's drop make no system call.
/// Contended, a waiter spins briefly and then sleeps in the kernel.
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
#[derive(Clone)]
pub struct Lock {
    handle: Handle,
}

impl fmt::Debug for Lock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lock")
            .field("holder", &self.holder_pid())
            .field("owner_died", &self.is_owner_died())
            .finish()
    }
}

impl Lock {
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
    /// # Ok::<(), mproc::sync::CreateError>(())
    /// ```
    pub fn new() -> Result<Lock, CreateError> {
        Ok(Lock {
            handle: Handle::new(MutexKind::ErrorCheck, LOCK_MAGIC, "lock")?,
        })
    }

    /// Acquires the lock, waiting as long as it takes (Python's `acquire()`).
    ///
    /// # Errors
    ///
    /// [`OwnerDied`] (holding the guard) when a previous holder died while holding
    /// the lock and nobody has marked the state consistent since.
    ///
    /// # Panics
    ///
    /// When the calling thread already holds this lock (which would deadlock).
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = mproc::sync::Lock::new()?;
    /// let guard = lock.lock().unwrap();
    /// assert_eq!(lock.holder_pid(), Some(std::process::id()));
    /// drop(guard);
    /// assert!(!lock.is_locked());
    /// # Ok::<(), mproc::sync::CreateError>(())
    /// ```
    #[doc(alias = "acquire")]
    #[inline]
    pub fn lock(&self) -> LockResult<LockGuard<'_>> {
        let state = self.handle.state();
        match state.acquire(Wait::Until(None)) {
            Outcome::Locked => Ok(LockGuard::new(state)),
            Outcome::OwnerDied(pid) => Err(OwnerDied::new(LockGuard::new(state), pid)),
            Outcome::Deadlock => relock_panic(),
            Outcome::WouldBlock | Outcome::TimedOut => unreachable!("waited without deadline"),
        }
    }

    /// Acquires the lock if it is free now (Python's `acquire(block=False)`).
    ///
    /// # Errors
    ///
    /// [`TryLockError::WouldBlock`] when it is held (by anyone, including the
    /// calling thread); [`TryLockError::OwnerDied`] as for [`lock`](Lock::lock).
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::sync::{Lock, TryLockError};
    ///
    /// let lock = Lock::new()?;
    /// let g = lock.try_lock().unwrap();
    /// assert!(matches!(lock.try_lock(), Err(TryLockError::WouldBlock)));
    /// drop(g);
    /// # Ok::<(), mproc::sync::CreateError>(())
    /// ```
    pub fn try_lock(&self) -> Result<LockGuard<'_>, TryLockError<LockGuard<'_>>> {
        let state = self.handle.state();
        match state.acquire(Wait::No) {
            Outcome::Locked => Ok(LockGuard::new(state)),
            Outcome::OwnerDied(pid) => Err(OwnerDied::new(LockGuard::new(state), pid).into()),
            _ => Err(TryLockError::WouldBlock),
        }
    }

    /// Acquires the lock, waiting at most `timeout` (Python's
    /// `acquire(timeout=t)`).
    ///
    /// # Errors
    ///
    /// [`LockTimeoutError::Timeout`] when the time runs out (at once when the
    /// calling thread holds the lock itself); [`LockTimeoutError::OwnerDied`] as for
    /// [`lock`](Lock::lock).
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
    ) -> Result<LockGuard<'_>, LockTimeoutError<LockGuard<'_>>> {
        self.lock_until(crate::deadline::after(timeout))
    }

    /// Acquires the lock, waiting until `deadline` at the latest.
    ///
    /// # Errors
    ///
    /// As [`lock_timeout`](Lock::lock_timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    ///
    /// let lock = mproc::sync::Lock::new()?;
    /// let g = lock.lock_deadline(Instant::now() + Duration::from_secs(1)).unwrap();
    /// assert!(lock.is_locked());
    /// drop(g);
    /// # Ok::<(), mproc::sync::CreateError>(())
    /// ```
    pub fn lock_deadline(
        &self,
        deadline: Instant,
    ) -> Result<LockGuard<'_>, LockTimeoutError<LockGuard<'_>>> {
        self.lock_until(Some(deadline))
    }

    fn lock_until(
        &self,
        deadline: Option<Instant>,
    ) -> Result<LockGuard<'_>, LockTimeoutError<LockGuard<'_>>> {
        let state = self.handle.state();
        match state.acquire(Wait::Until(deadline)) {
            Outcome::Locked => Ok(LockGuard::new(state)),
            Outcome::OwnerDied(pid) => Err(OwnerDied::new(LockGuard::new(state), pid).into()),
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
        self.handle.state().mutex.is_locked()
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
        self.handle.state().holder()
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
        self.handle.state().is_owner_died()
    }

    pub(crate) fn state(&self) -> &LockState {
        self.handle.state()
    }
}

impl Serialize for Lock {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        RegionOut::new(self.handle.shared.region()).serialize(s)
    }
}

impl<'de> Deserialize<'de> for Lock {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Lock {
            handle: Handle::deserialize(d, LOCK_MAGIC, "lock")?,
        })
    }
}

/// Holds a [`Lock`]; releases it when dropped. Not `Send`: the thread that
/// acquired the lock releases it.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct LockGuard<'a> {
    state: &'a LockState,
    _not_send: PhantomData<*const ()>,
}

impl<'a> LockGuard<'a> {
    #[inline]
    pub(crate) fn new(state: &'a LockState) -> LockGuard<'a> {
        LockGuard {
            state,
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

impl Drop for LockGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        self.state.release();
    }
}

impl fmt::Debug for LockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockGuard").finish_non_exhaustive()
    }
}

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
#[derive(Clone)]
pub struct RLock {
    handle: Handle,
}

impl fmt::Debug for RLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RLock")
            .field("holder", &self.holder_pid())
            .field("owner_died", &self.is_owner_died())
            .finish()
    }
}

impl RLock {
    /// A new, unlocked re-entrant lock.
    ///
    /// # Errors
    ///
    /// [`CreateError`] when the system refuses the shared memory.
    ///
    /// # Examples
    ///
    /// ```
    /// let rlock = mproc::sync::RLock::new()?;
    /// assert!(!rlock.is_locked());
    /// # Ok::<(), mproc::sync::CreateError>(())
    /// ```
    pub fn new() -> Result<RLock, CreateError> {
        Ok(RLock {
            handle: Handle::new(MutexKind::Recursive, RLOCK_MAGIC, "re-entrant lock")?,
        })
    }

    /// Acquires the lock, or re-enters it when this thread holds it already.
    ///
    /// # Errors
    ///
    /// [`OwnerDied`] (holding the guard) when a previous holder died while holding
    /// it and nobody has marked the state consistent since.
    ///
    /// # Examples
    ///
    /// ```
    /// let rlock = mproc::sync::RLock::new()?;
    /// let a = rlock.lock().unwrap();
    /// let b = rlock.lock().unwrap();
    /// drop(b);
    /// assert!(rlock.is_locked()); // still held once
    /// drop(a);
    /// assert!(!rlock.is_locked());
    /// # Ok::<(), mproc::sync::CreateError>(())
    /// ```
    #[doc(alias = "acquire")]
    #[inline]
    pub fn lock(&self) -> LockResult<RLockGuard<'_>> {
        let state = self.handle.state();
        match state.acquire(Wait::Until(None)) {
            Outcome::Locked => Ok(RLockGuard::new(state)),
            Outcome::OwnerDied(pid) => Err(OwnerDied::new(RLockGuard::new(state), pid)),
            other => unreachable!("a recursive lock waited without deadline: {other:?}"),
        }
    }

    /// Acquires or re-enters the lock if that is possible without waiting.
    ///
    /// # Errors
    ///
    /// [`TryLockError::WouldBlock`] when another thread holds it;
    /// [`TryLockError::OwnerDied`] as for [`lock`](RLock::lock).
    ///
    /// # Examples
    ///
    /// ```
    /// let rlock = mproc::sync::RLock::new()?;
    /// let a = rlock.try_lock().unwrap();
    /// let b = rlock.try_lock().unwrap(); // re-entered
    /// std::thread::scope(|s| {
    ///     s.spawn(|| assert!(rlock.try_lock().is_err())); // another thread: held
    /// });
    /// drop((b, a));
    /// # Ok::<(), mproc::sync::CreateError>(())
    /// ```
    pub fn try_lock(&self) -> Result<RLockGuard<'_>, TryLockError<RLockGuard<'_>>> {
        let state = self.handle.state();
        match state.acquire(Wait::No) {
            Outcome::Locked => Ok(RLockGuard::new(state)),
            Outcome::OwnerDied(pid) => Err(OwnerDied::new(RLockGuard::new(state), pid).into()),
            _ => Err(TryLockError::WouldBlock),
        }
    }

    /// Acquires or re-enters the lock, waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`LockTimeoutError::Timeout`], or [`LockTimeoutError::OwnerDied`] as for
    /// [`lock`](RLock::lock).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let rlock = mproc::sync::RLock::new()?;
    /// let held = rlock.lock().unwrap();
    /// std::thread::scope(|s| {
    ///     s.spawn(|| assert!(rlock.lock_timeout(Duration::from_millis(10)).is_err()));
    /// });
    /// drop(held);
    /// # Ok::<(), mproc::sync::CreateError>(())
    /// ```
    pub fn lock_timeout(
        &self,
        timeout: Duration,
    ) -> Result<RLockGuard<'_>, LockTimeoutError<RLockGuard<'_>>> {
        self.lock_until(crate::deadline::after(timeout))
    }

    /// Acquires or re-enters the lock, waiting until `deadline` at the latest.
    ///
    /// # Errors
    ///
    /// As [`lock_timeout`](RLock::lock_timeout).
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
    ) -> Result<RLockGuard<'_>, LockTimeoutError<RLockGuard<'_>>> {
        self.lock_until(Some(deadline))
    }

    fn lock_until(
        &self,
        deadline: Option<Instant>,
    ) -> Result<RLockGuard<'_>, LockTimeoutError<RLockGuard<'_>>> {
        let state = self.handle.state();
        match state.acquire(Wait::Until(deadline)) {
            Outcome::Locked => Ok(RLockGuard::new(state)),
            Outcome::OwnerDied(pid) => Err(OwnerDied::new(RLockGuard::new(state), pid).into()),
            _ => Err(LockTimeoutError::Timeout),
        }
    }

    /// Whether some thread holds the lock now (a snapshot).
    ///
    /// # Examples
    ///
    /// ```
    /// let rlock = mproc::sync::RLock::new()?;
    /// assert!(!rlock.is_locked());
    /// # Ok::<(), mproc::sync::CreateError>(())
    /// ```
    pub fn is_locked(&self) -> bool {
        self.handle.state().mutex.is_locked()
    }

    /// The process id of the current holder (a snapshot; `None` when free).
    ///
    /// # Examples
    ///
    /// ```
    /// let rlock = mproc::sync::RLock::new()?;
    /// let g = rlock.lock().unwrap();
    /// assert_eq!(rlock.holder_pid(), Some(std::process::id()));
    /// # drop(g);
    /// # Ok::<(), mproc::sync::CreateError>(())
    /// ```
    pub fn holder_pid(&self) -> Option<u32> {
        self.handle.state().holder()
    }

    /// Whether a holder died and nobody has marked the state consistent since.
    ///
    /// # Examples
    ///
    /// ```
    /// let rlock = mproc::sync::RLock::new()?;
    /// assert!(!rlock.is_owner_died());
    /// # Ok::<(), mproc::sync::CreateError>(())
    /// ```
    pub fn is_owner_died(&self) -> bool {
        self.handle.state().is_owner_died()
    }
}

impl Serialize for RLock {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        RegionOut::new(self.handle.shared.region()).serialize(s)
    }
}

impl<'de> Deserialize<'de> for RLock {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(RLock {
            handle: Handle::deserialize(d, RLOCK_MAGIC, "re-entrant lock")?,
        })
    }
}

/// Holds an [`RLock`] (one level of it); released when dropped. Not `Send`.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct RLockGuard<'a> {
    state: &'a LockState,
    _not_send: PhantomData<*const ()>,
}

impl<'a> RLockGuard<'a> {
    fn new(state: &'a LockState) -> RLockGuard<'a> {
        RLockGuard {
            state,
            _not_send: PhantomData,
        }
    }

    /// Marks the protected state consistent again after an [`OwnerDied`] (see
    /// [`LockGuard::mark_consistent`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let rlock = mproc::sync::RLock::new()?;
    /// let g = rlock.lock().unwrap_or_else(|died| {
    ///     let g = died.into_inner();
    ///     g.mark_consistent();
    ///     g
    /// });
    /// drop(g);
    /// assert!(!rlock.is_owner_died());
    /// # Ok::<(), mproc::sync::CreateError>(())
    /// ```
    pub fn mark_consistent(&self) {
        self.state.mark_consistent();
    }
}

impl Drop for RLockGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        self.state.release();
    }
}

impl fmt::Debug for RLockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RLockGuard").finish_non_exhaustive()
    }
}
