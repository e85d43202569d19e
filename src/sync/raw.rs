//! The raw layer under the safe lock and semaphore types, in the manner of
//! `lock_api`: [`RawLock`] is what a primitive in shared memory offers (acquire
//! now, by a deadline or without one; release; report a dead holder), and the
//! public types are thin generic wrappers that add the handle, the RAII guard and
//! the error shapes, written once for each pair (`Lock`/`RLock`,
//! `Semaphore`/`BoundedSemaphore`).
//!
//! The robust lock's implementation lives here: a robust pthread mutex plus the
//! owner-died bookkeeping ([`LockState`], in shared memory). The semaphore's raw
//! operations are in `semaphore.rs`, beside their loom-checked algorithm.

use std::sync::atomic::Ordering;
use std::time::Instant;

use super::wait;
use crate::shm::raw::{Fresh, LockState};
use crate::sys::pthread::{Acquire, MutexKind, cached_pid};

/// The raw operations of a primitive that is acquired and released: a robust lock
/// (which reports a dead holder) or a semaphore (which takes and gives permits).
///
/// Implementations do the waiting (spin, then sleep in the kernel) and the shared
/// bookkeeping; the safe wrappers only turn an [`Outcome`] into a guard or an
/// error. A safe trait: the wrappers protect no memory of their own (whatever a
/// lock protects lives elsewhere, in shared memory the user reads through atomics
/// or copies), so a wrong implementation is a logic error, not undefined
/// behaviour; `lock_api`'s `RawMutex` is `unsafe` because its `Mutex` hands out
/// `&mut T` on the strength of it.
pub(crate) trait RawLock {
    /// One acquisition attempt that waits as `wait` allows. Never returns
    /// [`Outcome::WouldBlock`] for [`Wait::Until`], nor [`Outcome::TimedOut`] for
    /// [`Wait::No`] or a wait without deadline.
    fn acquire(&self, wait: Wait) -> Outcome;

    /// Gives back one acquisition (one level of a recursive lock; one permit).
    /// For a lock, the calling thread holds it.
    fn release(&self);
}

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

/// The robust lock: Lock, RLock, and the locks inside Condition, Barrier and Value.
impl RawLock for LockState {
    /// Acquires the lock: a non-blocking attempt first (the uncontended fast path:
    /// one `pthread_mutex_trylock`, no system call), then a bounded spin while it is
    /// held, then a sleep in the kernel until `wait`'s deadline.
    #[inline]
    fn acquire(&self, wait: Wait) -> Outcome {
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

    /// Releases the lock (once, for a recursive one).
    #[inline]
    fn release(&self) {
        let r = self.mutex.unlock();
        debug_assert!(
            r.is_ok(),
            "unlock of a lock this thread does not hold: {r:?}"
        );
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
