//! Synchronisation between processes: locks that survive a dead holder, semaphores,
//! events, conditions and barriers.
//!
//! Every type here lives in shared memory and is a *handle*: clone it, or pass it
//! to a child process as a task argument (or through a `Pipe`), and every copy is
//! the same object. Every blocking call has `try_` (where it makes sense),
//! `_timeout` and `_deadline` siblings.
//!
//! | Python (`multiprocessing`) | mproc | use it to |
//! |---|---|---|
//! | `Lock` | [`Lock`] | let one process at a time into a critical section |
//! | `RLock` | [`RLock`] | the same, re-entrant for the holding thread |
//! | `Semaphore`, `BoundedSemaphore` | [`Semaphore`], [`BoundedSemaphore`] | limit how many at a time; count resources |
//! | `Event` | [`Event`] | announce "ready" or "stop" to any number of processes |
//! | `Condition` | [`Condition`] | wait for a change of shared state made by others |
//! | `Barrier`, `BrokenBarrierError` | [`Barrier`], [`BrokenBarrierError`] | make a group move in lock-step |
//!
//! Neighbours: to pass *data* between processes, use a queue or a pipe, which
//! include their own synchronisation; to share plain data in place, use
//! [`crate::shm`] (whose [`Value`](crate::shm::Value) carries an optional lock).
//!
//! # A holder's death is not a deadlock
//!
//! Python's `multiprocessing.Lock` is a POSIX semaphore that does not know its
//! holder: when the holder is killed, everyone waiting for the lock hangs forever
//! (cpython #88304). An mproc [`Lock`] or [`RLock`] (and so a [`Condition`]'s lock
//! and the lock of a [`Value`](crate::shm::Value)) is *robust*: it records its
//! holder thread, and when that thread dies, even by `SIGKILL` of its process, the
//! next process to acquire the lock gets the lock **and** an [`OwnerDied`] error
//! around the guard, like a poisoned `std::sync::Mutex`. The
//! survivor repairs what the dead holder left half-done and calls
//! [`LockGuard::mark_consistent`]; until then every acquisition reports it again.
//!
//! ```
//! use mproc::sync::Lock;
//!
//! let lock = Lock::new()?;
//! let guard = lock.lock().unwrap_or_else(|died| {
//!     // A previous holder was killed mid-update: repair, then carry on.
//!     let guard = died.into_inner();
//!     guard.mark_consistent();
//!     guard
//! });
//! drop(guard);
//! # Ok::<(), mproc::sync::CreateError>(())
//! ```
//!
//! A party killed while waiting at a [`Barrier`] breaks the barrier for the
//! others ([`BrokenReason::PartyDied`]) instead of leaving them waiting. Owner-less
//! primitives cannot know: a permit of a [`Semaphore`] held by a killed process is
//! lost, and an [`Event`] that a killed process would have set stays unset. Wait
//! for those with a timeout.
//!
//! # How the lock knows its holder
//!
//! A [`Lock`] is one 64-bit word in shared memory holding its holder's *thread
//! mark*: the thread id and the thread's start time, which a recycled thread id
//! cannot impersonate. Uncontended, acquiring is one compare-and-swap and
//! releasing one swap, whose result says whether a waiter sleeps (a bit that every
//! sleeper, blocking or async, sets before it sleeps): no system call, no fence.
//! A waiter that has waited on one holder for a while asks the kernel (`/proc`)
//! whether that thread still runs, and takes a dead holder's lock over with one
//! compare-and-swap of its exact mark. (Robust pthread mutexes, which the kernel
//! marks at the holder's death, cost glibc's robust-list bookkeeping on every lock
//! and unlock; the polling costs a waiter one look every 10 to 160 ms, and only
//! while it waits.) The
//! other primitives need no owner and are built directly on futex words in shared
//! memory (non-private futexes, so that a waker in one process wakes a sleeper in
//! another); their waiters spin briefly before they sleep, since waking a sleeping
//! process on another CPU costs tens of microseconds.
//!
//! # Caveats
//!
//! - **Drop.** Dropping a handle never releases anything but the handle; a guard
//!   releases its lock when dropped. Memory is freed when the last handle in the
//!   last process goes away. A guard leaked with `mem::forget` keeps its lock held
//!   (until its thread exits: the next acquirer then hears [`OwnerDied`]).
//! - **Child crash.** Locks report [`OwnerDied`]; barriers break; semaphores lose
//!   the dead process's permits; a dead [`Condition`] waiter may make one later
//!   wait return as if notified (a spurious wake-up, which `wait_for` absorbs).
//! - **Parent death.** Children keep working with their handles; nothing depends on
//!   the process that created a primitive.
//! - **Ctrl-C.** A process interrupted while holding a lock dies like any other:
//!   the next acquirer gets [`OwnerDied`].
//! - **Fork.** A forked child shares every primitive with its parent, but does not
//!   hold the locks its parent held when it forked (the holder is a thread of the
//!   parent).
//! - **Trust.** Other processes are trusted not to scribble over a lock's memory
//!   (a scribbled lock word excludes wrongly, but is never undefined behaviour);
//!   the slots of a [`Barrier`] are robust pthread mutexes, which cannot be
//!   validated before use. All other shared state is checked before use, and bad
//!   values are reported, never undefined behaviour.
//! - **PID namespaces.** Lock holders are named by thread id: a dead holder is
//!   recognised only by processes in the lock creator's PID namespace (elsewhere
//!   the lock still excludes, but waits for a dead holder forever).
//! - **Threads.** Lock guards are not `Send`: the thread that acquires a lock
//!   releases it. An [`RLock`] is re-entrant per thread, not per process.

#[cfg(feature = "tokio")]
mod aio;
mod barrier;
mod condition;
mod error;
mod event;
mod lock;
mod raw;
mod semaphore;
#[cfg(all(test, loom))]
mod tests;
pub(crate) mod wait;

pub use barrier::{Barrier, BarrierBuilder, CHECK_INTERVAL, MAX_PARTIES};
pub use condition::{Condition, WaitTimeoutResult};
pub use error::{
    BrokenBarrierError, BrokenReason, CreateError, LockResult, LockTimeoutError, OwnerDied,
    ReleaseError, TryLockError,
};
pub use event::Event;
pub use lock::{
    Lock, LockGuard, LockKind, NonReentrant, RLock, RLockGuard, Reentrant, RobustLock,
    RobustLockGuard,
};
pub use semaphore::{
    Bounded, BoundedSemaphore, CountingSemaphore, SEMAPHORE_MAX, Semaphore, SemaphoreGuard,
    SemaphoreKind, Unbounded,
};
#[cfg(all(test, loom))]
pub(crate) use wait::{FutexWord, Sleep};
