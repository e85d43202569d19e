//! Proxies for synchronization: locks, semaphores, events, conditions, barriers.
//!
//! A lock is owned by a thread of a client process. When that process dies (every
//! connection to the manager closes), the manager frees what it held and the next
//! acquirer gets [`LockError::OwnerDied`] with the guard, as with
//! [`mproc::sync`](crate::sync) locks.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use super::client::{ObjRef, thread_tag};
use super::proto::{Op, Reply};
use super::{LockError, ManagerError, proxy_impl, unexpected};
use crate::sync::OwnerDied;

fn ms(d: Duration) -> Option<u64> {
    Some(d.as_millis().min(u64::MAX as u128) as u64)
}

/// Acquires; `Ok(None)` on timeout, `Ok(Some(pid))` if the last holder died.
fn acquire(
    r: &ObjRef,
    timeout_ms: Option<u64>,
) -> Result<Option<Option<Option<u32>>>, ManagerError> {
    match r.op(Op::Acquire {
        thread: thread_tag(),
        timeout_ms,
    })? {
        Reply::Bool(true) => Ok(Some(None)),
        Reply::Bool(false) => Ok(None),
        Reply::AcquiredOwnerDied { pid } => Ok(Some(Some(pid))),
        other => Err(unexpected(other)),
    }
}

fn guarded<G>(
    r: &ObjRef,
    timeout_ms: Option<u64>,
    make: impl FnOnce() -> G,
) -> Result<G, LockError<G>> {
    match acquire(r, timeout_ms)? {
        None => Err(LockError::Manager(ManagerError::Timeout)),
        Some(None) => Ok(make()),
        Some(Some(pid)) => Err(LockError::OwnerDied(OwnerDied::new(make(), pid))),
    }
}

fn release(r: &ObjRef) -> Result<(), ManagerError> {
    r.unit(Op::Release {
        thread: thread_tag(),
    })
}

fn state(r: &ObjRef) -> Result<(bool, Option<u32>), ManagerError> {
    match r.op(Op::LockState)? {
        Reply::LockState { held, pid, .. } => Ok((held, pid)),
        other => Err(unexpected(other)),
    }
}

macro_rules! lock_type {
    ($(#[$m:meta])* $ty:ident, $guard:ident, $name:literal) => {
        $(#[$m])*
        pub struct $ty {
            r: Arc<ObjRef>,
            _t: PhantomData<()>,
        }

        proxy_impl!($name, $ty);

        /// Holds the lock; dropping it releases the lock (on the manager).
        #[must_use = "the lock is released when the guard is dropped"]
        pub struct $guard<'a> {
            lock: &'a $ty,
            // Owned by this thread: not Send.
            _not_send: PhantomData<*const ()>,
        }

        impl std::fmt::Debug for $guard<'_> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}({:?})", stringify!($guard), self.lock.r)
            }
        }

        impl Drop for $guard<'_> {
            fn drop(&mut self) {
                // A manager that is gone holds no lock any more.
                let _ = release(&self.lock.r);
            }
        }

        impl $ty {
            fn guard(&self) -> $guard<'_> {
                $guard {
                    lock: self,
                    _not_send: PhantomData,
                }
            }

            /// Takes the lock, waiting as long as it takes.
            ///
            /// # Errors
            ///
            /// [`LockError::OwnerDied`] (the lock *is* held) if the previous holder's
            /// process died holding it; [`LockError::Manager`] if the manager is gone.
            pub fn lock(&self) -> Result<$guard<'_>, LockError<$guard<'_>>> {
                guarded(&self.r, None, || self.guard())
            }

            /// Takes the lock if it is free now (a `Timeout` error if not).
            pub fn try_lock(&self) -> Result<$guard<'_>, LockError<$guard<'_>>> {
                guarded(&self.r, Some(0), || self.guard())
            }

            /// Takes the lock, waiting at most `timeout` (a `Timeout` error after).
            pub fn lock_timeout(&self, timeout: Duration) -> Result<$guard<'_>, LockError<$guard<'_>>> {
                guarded(&self.r, ms(timeout), || self.guard())
            }

            /// Whether some thread holds the lock.
            pub fn is_locked(&self) -> Result<bool, ManagerError> {
                Ok(state(&self.r)?.0)
            }

            /// The pid of the process holding the lock.
            pub fn holder_pid(&self) -> Result<Option<u32>, ManagerError> {
                Ok(state(&self.r)?.1)
            }
        }
    };
}

lock_type!(
    /// A lock held by a manager: Python's `Manager().Lock()`, that comes back as
    /// `OwnerDied` instead of staying locked forever when its holder dies.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = mproc::manager::Manager::start()?;
    /// let lock = m.lock()?;
    /// let g = lock.lock().unwrap();
    /// assert!(lock.is_locked()?);
    /// assert!(lock.try_lock().is_err());
    /// drop(g);
    /// assert!(!lock.is_locked()?);
    /// # Ok::<(), mproc::manager::ManagerError>(())
    /// ```
    Lock,
    LockGuard,
    "lock"
);

lock_type!(
    /// A reentrant lock held by a manager: the owning thread may take it again.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = mproc::manager::Manager::start()?;
    /// let l = m.rlock()?;
    /// let a = l.lock().unwrap();
    /// let b = l.lock().unwrap(); // same thread: fine
    /// drop(b);
    /// assert!(l.is_locked()?);
    /// drop(a);
    /// assert!(!l.is_locked()?);
    /// # Ok::<(), mproc::manager::ManagerError>(())
    /// ```
    RLock,
    RLockGuard,
    "rlock"
);

/// A condition variable held by a manager, with its own reentrant lock: Python's
/// `Manager().Condition()`.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let m = mproc::manager::Manager::start()?;
/// let c = m.condition()?;
/// let mut g = c.lock().unwrap();
/// assert!(!g.wait_timeout(Duration::from_millis(10))?); // nobody notified
/// g.notify_all()?;
/// # Ok::<(), mproc::manager::ManagerError>(())
/// ```
pub struct Condition {
    r: Arc<ObjRef>,
    _t: PhantomData<()>,
}

proxy_impl!("condition", Condition);

/// Holds a [`Condition`]'s lock.
#[must_use = "the lock is released when the guard is dropped"]
pub struct ConditionGuard<'a> {
    cond: &'a Condition,
    _not_send: PhantomData<*const ()>,
}

impl std::fmt::Debug for ConditionGuard<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ConditionGuard({:?})", self.cond.r)
    }
}

impl Drop for ConditionGuard<'_> {
    fn drop(&mut self) {
        let _ = release(&self.cond.r);
    }
}

impl Condition {
    /// Takes the condition's lock.
    pub fn lock(&self) -> Result<ConditionGuard<'_>, LockError<ConditionGuard<'_>>> {
        guarded(&self.r, None, || ConditionGuard {
            cond: self,
            _not_send: PhantomData,
        })
    }
}

impl ConditionGuard<'_> {
    /// Releases the lock, waits for a notification, and takes the lock again.
    pub fn wait(&mut self) -> Result<(), ManagerError> {
        self.wait_inner(None).map(|_| ())
    }

    /// As [`wait`](ConditionGuard::wait), for at most `timeout`; `false` if no
    /// notification came (the lock is held again either way).
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<bool, ManagerError> {
        self.wait_inner(ms(timeout))
    }

    fn wait_inner(&mut self, timeout_ms: Option<u64>) -> Result<bool, ManagerError> {
        match self.cond.r.op(Op::CondWait {
            thread: thread_tag(),
            timeout_ms,
        })? {
            Reply::Bool(b) => Ok(b),
            other => Err(unexpected(other)),
        }
    }

    /// Wakes up to `n` waiters.
    pub fn notify(&self, n: u32) -> Result<(), ManagerError> {
        self.cond.r.unit(Op::Notify(n))
    }

    /// Wakes every waiter.
    pub fn notify_all(&self) -> Result<(), ManagerError> {
        self.notify(u32::MAX)
    }
}

macro_rules! semaphore_type {
    ($(#[$m:meta])* $ty:ident, $name:literal) => {
        $(#[$m])*
        pub struct $ty {
            r: Arc<ObjRef>,
            _t: PhantomData<()>,
        }

        proxy_impl!($name, $ty);

        impl $ty {
            /// Takes a permit, waiting for one.
            pub fn acquire(&self) -> Result<(), ManagerError> {
                match acquire(&self.r, None)? {
                    Some(_) => Ok(()),
                    None => Err(ManagerError::Timeout),
                }
            }

            /// Takes a permit if one is free now.
            pub fn try_acquire(&self) -> Result<bool, ManagerError> {
                Ok(acquire(&self.r, Some(0))?.is_some())
            }

            /// Takes a permit, waiting at most `timeout`; `false` if none came.
            pub fn acquire_timeout(&self, timeout: Duration) -> Result<bool, ManagerError> {
                Ok(acquire(&self.r, ms(timeout))?.is_some())
            }

            /// Gives a permit back.
            pub fn release(&self) -> Result<(), ManagerError> {
                release(&self.r)
            }

            /// The free permits.
            pub fn value(&self) -> Result<u32, ManagerError> {
                match self.r.op(Op::LockState)? {
                    Reply::Len(n) => Ok(n as u32),
                    other => Err(unexpected(other)),
                }
            }
        }
    };
}

semaphore_type!(
    /// A semaphore held by a manager: Python's `Manager().Semaphore(n)`.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = mproc::manager::Manager::start()?;
    /// let s = m.semaphore(1)?;
    /// s.acquire()?;
    /// assert!(!s.try_acquire()?);
    /// s.release()?;
    /// s.release()?; // unbounded: fine
    /// assert_eq!(s.value()?, 2);
    /// # Ok::<(), mproc::manager::ManagerError>(())
    /// ```
    Semaphore,
    "semaphore"
);

semaphore_type!(
    /// A semaphore that refuses a release above its initial value:
    /// Python's `Manager().BoundedSemaphore(n)`.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = mproc::manager::Manager::start()?;
    /// let s = m.bounded_semaphore(1)?;
    /// assert!(s.release().is_err()); // over the bound
    /// # Ok::<(), mproc::manager::ManagerError>(())
    /// ```
    BoundedSemaphore,
    "bounded semaphore"
);

/// An event held by a manager: Python's `Manager().Event()`.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let m = mproc::manager::Manager::start()?;
/// let e = m.event()?;
/// assert!(!e.wait_timeout(Duration::from_millis(10))?);
/// e.set()?;
/// assert!(e.is_set()?);
/// e.wait()?;
/// e.clear()?;
/// assert!(!e.is_set()?);
/// # Ok::<(), mproc::manager::ManagerError>(())
/// ```
pub struct Event {
    r: Arc<ObjRef>,
    _t: PhantomData<()>,
}

proxy_impl!("event", Event);

impl Event {
    /// Sets the flag and wakes every waiter.
    pub fn set(&self) -> Result<(), ManagerError> {
        self.r.unit(Op::SetEvent)
    }

    /// Clears the flag.
    pub fn clear(&self) -> Result<(), ManagerError> {
        self.r.unit(Op::ClearEvent)
    }

    /// Whether the flag is set.
    pub fn is_set(&self) -> Result<bool, ManagerError> {
        match self.r.op(Op::IsSet)? {
            Reply::Bool(b) => Ok(b),
            other => Err(unexpected(other)),
        }
    }

    /// Waits until the flag is set.
    pub fn wait(&self) -> Result<(), ManagerError> {
        self.wait_inner(None).map(|_| ())
    }

    /// Waits at most `timeout`; whether the flag is set.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<bool, ManagerError> {
        self.wait_inner(ms(timeout))
    }

    fn wait_inner(&self, timeout_ms: Option<u64>) -> Result<bool, ManagerError> {
        match self.r.op(Op::WaitEvent { timeout_ms })? {
            Reply::Bool(b) => Ok(b),
            other => Err(unexpected(other)),
        }
    }
}

/// A barrier held by a manager: Python's `Manager().Barrier(parties)`.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let m = mproc::manager::Manager::start()?;
/// let b = m.barrier(1)?;
/// assert_eq!(b.wait()?, 0);
/// let b2 = m.barrier(2)?;
/// assert!(b2.wait_timeout(Duration::from_millis(10)).is_err()); // nobody came
/// assert!(b2.is_broken()?);
/// b2.reset()?;
/// assert!(!b2.is_broken()?);
/// # Ok::<(), mproc::manager::ManagerError>(())
/// ```
pub struct Barrier {
    r: Arc<ObjRef>,
    _t: PhantomData<()>,
}

proxy_impl!("barrier", Barrier);

impl Barrier {
    /// Waits until `parties` waiters arrived; returns this waiter's index
    /// (`0..parties`).
    ///
    /// # Errors
    ///
    /// [`ManagerError::BrokenBarrier`] if the barrier is or becomes broken.
    pub fn wait(&self) -> Result<usize, ManagerError> {
        self.wait_inner(None)
    }

    /// As [`wait`](Barrier::wait); after `timeout` the barrier breaks.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<usize, ManagerError> {
        self.wait_inner(ms(timeout))
    }

    fn wait_inner(&self, timeout_ms: Option<u64>) -> Result<usize, ManagerError> {
        match self.r.op(Op::BarrierWait { timeout_ms })? {
            Reply::Index(i) => Ok(i as usize),
            other => Err(unexpected(other)),
        }
    }

    /// Breaks the barrier: current and future waiters fail.
    pub fn abort(&self) -> Result<(), ManagerError> {
        self.r.unit(Op::BarrierAbort)
    }

    /// Returns the barrier to its initial state (current waiters fail).
    pub fn reset(&self) -> Result<(), ManagerError> {
        self.r.unit(Op::BarrierReset)
    }

    fn state(&self) -> Result<(u32, u32, bool), ManagerError> {
        match self.r.op(Op::BarrierState)? {
            Reply::BarrierState {
                parties,
                waiting,
                broken,
            } => Ok((parties, waiting, broken)),
            other => Err(unexpected(other)),
        }
    }

    /// The number of waiters needed.
    pub fn parties(&self) -> Result<usize, ManagerError> {
        Ok(self.state()?.0 as usize)
    }

    /// The number of waiters now waiting.
    pub fn n_waiting(&self) -> Result<usize, ManagerError> {
        Ok(self.state()?.1 as usize)
    }

    /// Whether the barrier is broken.
    pub fn is_broken(&self) -> Result<bool, ManagerError> {
        Ok(self.state()?.2)
    }
}
