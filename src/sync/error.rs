//! Errors of the `sync` module.

use std::fmt;
use std::io;

/// The previous holder of a lock died while holding it (was killed, crashed, or
/// its thread exited), like a poisoned [`std::sync::Mutex`].
///
/// The lock *is* held now, by the caller: the guard is inside. Whatever the lock
/// protects may be half-updated. Inspect or repair it, then call `mark_consistent`
/// on the guard ([`LockGuard::mark_consistent`](super::LockGuard::mark_consistent),
/// [`RLockGuard::mark_consistent`](super::RLockGuard::mark_consistent)); until
/// then, every acquisition by any process reports `OwnerDied` again, as std's
/// poisoning does. Python's `multiprocessing.Lock` deadlocks in this situation
/// instead (cpython #88304).
///
/// # Examples
///
/// ```
/// use mproc::process::Process;
/// use mproc::sync::Lock;
///
/// fn exit_holding(lock: Lock) {
///     std::mem::forget(lock.lock()); // the process ends with the lock held
/// }
///
/// let lock = Lock::new()?;
/// let child = Process::start(exit_holding, lock.clone())?;
/// let pid = child.pid();
/// child.join()?;
///
/// let died = lock.lock().unwrap_err();
/// assert_eq!(died.pid(), Some(pid));
/// let guard = died.into_inner(); // we hold the lock
/// // ... repair what the lock protects ...
/// guard.mark_consistent();
/// drop(guard);
/// assert!(lock.lock().is_ok());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct OwnerDied<G> {
    guard: G,
    pid: Option<u32>,
}

impl<G> OwnerDied<G> {
    pub(crate) fn new(guard: G, pid: Option<u32>) -> OwnerDied<G> {
        OwnerDied { guard, pid }
    }

    /// The guard: the caller holds the lock.
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::sync::{Lock, OwnerDied};
    /// # fn exit_holding(lock: Lock) { std::mem::forget(lock.lock()); }
    /// # let lock = Lock::new()?;
    /// # mproc::process::Process::start(exit_holding, lock.clone())?.join()?;
    /// // `lock`'s last holder died holding it (see `OwnerDied`).
    /// let guard = lock.lock().unwrap_or_else(OwnerDied::into_inner);
    /// assert_eq!(lock.holder_pid(), Some(std::process::id()));
    /// # drop(guard);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn into_inner(self) -> G {
        self.guard
    }

    /// A reference to the guard.
    ///
    /// # Examples
    ///
    /// ```
    /// # use mproc::sync::Lock;
    /// # fn exit_holding(lock: Lock) { std::mem::forget(lock.lock()); }
    /// # let lock = Lock::new()?;
    /// # mproc::process::Process::start(exit_holding, lock.clone())?.join()?;
    /// let died = lock.lock().unwrap_err();
    /// died.get_ref().mark_consistent();
    /// drop(died); // releases the lock
    /// assert!(!lock.is_owner_died());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_ref(&self) -> &G {
        &self.guard
    }

    /// A mutable reference to the guard.
    ///
    /// # Examples
    ///
    /// ```
    /// # use mproc::sync::Lock;
    /// # fn exit_holding(lock: Lock) { std::mem::forget(lock.lock()); }
    /// # let lock = Lock::new()?;
    /// # mproc::process::Process::start(exit_holding, lock.clone())?.join()?;
    /// let mut died = lock.lock().unwrap_err();
    /// died.get_mut().mark_consistent();
    /// drop(died);
    /// assert!(!lock.is_owner_died());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_mut(&mut self) -> &mut G {
        &mut self.guard
    }

    /// The process id of the holder that died, when known.
    ///
    /// # Examples
    ///
    /// ```
    /// # use mproc::sync::Lock;
    /// # fn exit_holding(lock: Lock) { std::mem::forget(lock.lock()); }
    /// # let lock = Lock::new()?;
    /// let child = mproc::process::Process::start(exit_holding, lock.clone())?;
    /// let pid = child.pid();
    /// child.join()?;
    /// assert_eq!(lock.lock().unwrap_err().pid(), Some(pid));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// Maps the guard inside, keeping the owner-died report.
    ///
    /// # Examples
    ///
    /// ```
    /// # use mproc::sync::Lock;
    /// # fn exit_holding(lock: Lock) { std::mem::forget(lock.lock()); }
    /// # let lock = Lock::new()?;
    /// # mproc::process::Process::start(exit_holding, lock.clone())?.join()?;
    /// let died = lock.lock().unwrap_err().map(|g| (g, "context"));
    /// assert_eq!(died.get_ref().1, "context");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn map<U>(self, f: impl FnOnce(G) -> U) -> OwnerDied<U> {
        OwnerDied {
            guard: f(self.guard),
            pid: self.pid,
        }
    }
}

impl<G> fmt::Debug for OwnerDied<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnerDied")
            .field("pid", &self.pid)
            .finish_non_exhaustive()
    }
}

impl<G> fmt::Display for OwnerDied<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.pid {
            Some(pid) => write!(
                f,
                "the previous holder of the lock (pid {pid}) died while holding it; the state it protects may be inconsistent"
            ),
            None => f.write_str(
                "the previous holder of the lock died while holding it; the state it protects may be inconsistent",
            ),
        }
    }
}

impl<G> std::error::Error for OwnerDied<G> {}

/// The result of acquiring a robust lock: the guard, or the guard with the news
/// that the previous holder died ([`OwnerDied`]).
pub type LockResult<G> = Result<G, OwnerDied<G>>;

/// Why [`try_lock`](super::Lock::try_lock) did not return a plain guard.
pub enum TryLockError<G> {
    /// The lock was free and is now held, but its previous holder had died.
    OwnerDied(OwnerDied<G>),
    /// Another thread (of this or another process) holds the lock; for a
    /// [`Lock`](super::Lock), this includes the calling thread itself.
    WouldBlock,
}

impl<G> From<OwnerDied<G>> for TryLockError<G> {
    fn from(e: OwnerDied<G>) -> Self {
        TryLockError::OwnerDied(e)
    }
}

impl<G> fmt::Debug for TryLockError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryLockError::OwnerDied(e) => f.debug_tuple("OwnerDied").field(e).finish(),
            TryLockError::WouldBlock => f.write_str("WouldBlock"),
        }
    }
}

impl<G> fmt::Display for TryLockError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryLockError::OwnerDied(e) => e.fmt(f),
            TryLockError::WouldBlock => f.write_str("the lock is held by another thread"),
        }
    }
}

impl<G> std::error::Error for TryLockError<G> {}

/// Why [`lock_timeout`](super::Lock::lock_timeout) did not return a plain guard.
pub enum LockTimeoutError<G> {
    /// The lock is held, but its previous holder had died.
    OwnerDied(OwnerDied<G>),
    /// The time ran out (or, for a [`Lock`](super::Lock), the calling thread
    /// already holds it, so waiting could never succeed).
    Timeout,
}

impl<G> From<OwnerDied<G>> for LockTimeoutError<G> {
    fn from(e: OwnerDied<G>) -> Self {
        LockTimeoutError::OwnerDied(e)
    }
}

impl<G> fmt::Debug for LockTimeoutError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockTimeoutError::OwnerDied(e) => f.debug_tuple("OwnerDied").field(e).finish(),
            LockTimeoutError::Timeout => f.write_str("Timeout"),
        }
    }
}

impl<G> fmt::Display for LockTimeoutError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockTimeoutError::OwnerDied(e) => e.fmt(f),
            LockTimeoutError::Timeout => f.write_str("timed out waiting for the lock"),
        }
    }
}

impl<G> std::error::Error for LockTimeoutError<G> {}

/// A synchronisation object could not be created: the system refused the shared
/// memory (descriptor or memory limits), or an argument was out of range.
#[derive(Debug, thiserror::Error)]
#[error("cannot create a shared {what}: {source}")]
pub struct CreateError {
    what: &'static str,
    #[source]
    source: io::Error,
}

impl CreateError {
    pub(crate) fn new(what: &'static str, source: io::Error) -> CreateError {
        CreateError { what, source }
    }
}

/// [`BoundedSemaphore::release`](super::BoundedSemaphore::release) would raise the
/// count above its bound (Python raises `ValueError` here).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "bounded semaphore released too many times: releasing {released} would exceed its bound of {bound}"
)]
pub struct ReleaseError {
    pub(crate) bound: u32,
    pub(crate) released: u32,
}

impl ReleaseError {
    /// The semaphore's bound (its initial value).
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = mproc::sync::BoundedSemaphore::new(1)?;
    /// assert_eq!(sem.release().unwrap_err().bound(), 1);
    /// # Ok::<(), mproc::sync::CreateError>(())
    /// ```
    pub fn bound(&self) -> u32 {
        self.bound
    }
}

/// Why a [`Barrier`](super::Barrier) is broken. (Serializable, so that a task can
/// return it from a child process.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum BrokenReason {
    /// [`Barrier::abort`](super::Barrier::abort) was called.
    Aborted,
    /// A party's wait timed out.
    TimedOut,
    /// [`Barrier::reset`](super::Barrier::reset) was called while parties waited.
    Reset,
    /// The barrier's action panicked.
    ActionPanicked,
    /// A party died (was killed) while waiting at the barrier or running its
    /// action.
    PartyDied {
        /// Its process id, when known.
        pid: Option<u32>,
    },
    /// The barrier's shared state was found corrupted.
    Inconsistent,
    /// A party's `Barrier::wait_async` (feature `tokio`) was dropped after
    /// the party had arrived (cancelled, e.g. by a `select!` or a timeout).
    Cancelled,
}

impl BrokenReason {
    pub(crate) fn code(self) -> u32 {
        match self {
            BrokenReason::Aborted => 1,
            BrokenReason::TimedOut => 2,
            BrokenReason::Reset => 3,
            BrokenReason::ActionPanicked => 4,
            BrokenReason::PartyDied { .. } => 5,
            BrokenReason::Inconsistent => 6,
            BrokenReason::Cancelled => 7,
        }
    }

    pub(crate) fn from_code(code: u32, pid: u32) -> BrokenReason {
        match code {
            1 => BrokenReason::Aborted,
            2 => BrokenReason::TimedOut,
            3 => BrokenReason::Reset,
            4 => BrokenReason::ActionPanicked,
            5 => BrokenReason::PartyDied {
                pid: (pid != 0).then_some(pid),
            },
            7 => BrokenReason::Cancelled,
            _ => BrokenReason::Inconsistent,
        }
    }
}

impl fmt::Display for BrokenReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BrokenReason::Aborted => f.write_str("it was aborted"),
            BrokenReason::TimedOut => f.write_str("a party timed out waiting"),
            BrokenReason::Reset => f.write_str("it was reset while parties were waiting"),
            BrokenReason::ActionPanicked => f.write_str("its action panicked"),
            BrokenReason::PartyDied { pid: Some(pid) } => {
                write!(f, "a party (pid {pid}) died at the barrier")
            }
            BrokenReason::PartyDied { pid: None } => f.write_str("a party died at the barrier"),
            BrokenReason::Inconsistent => f.write_str("its shared state is corrupted"),
            BrokenReason::Cancelled => {
                f.write_str("a party's wait_async was cancelled after it arrived")
            }
        }
    }
}

/// The barrier is, or became, broken while waiting (Python's
/// `BrokenBarrierError`). Every party waiting at the time gets it, and so does
/// every later [`wait`](super::Barrier::wait) until
/// [`reset`](super::Barrier::reset). [`reason`](BrokenBarrierError::reason) says
/// why, which Python does not.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize,
)]
#[error("barrier is broken: {reason}")]
pub struct BrokenBarrierError {
    pub(crate) reason: BrokenReason,
}

impl BrokenBarrierError {
    /// Why the barrier broke.
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::sync::{Barrier, BrokenReason};
    ///
    /// let b = Barrier::new(2)?;
    /// b.abort();
    /// assert_eq!(b.wait().unwrap_err().reason(), BrokenReason::Aborted);
    /// # Ok::<(), mproc::sync::CreateError>(())
    /// ```
    pub fn reason(&self) -> BrokenReason {
        self.reason
    }
}
