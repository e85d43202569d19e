//! Robust, process-shared pthread mutexes (glibc), for locks in shared memory that
//! report a dead holder instead of deadlocking.
//!
//! A mutex made with `PTHREAD_PROCESS_SHARED` and `PTHREAD_MUTEX_ROBUST` records the
//! kernel thread id of its holder in its lock word and sits, while held, on the
//! holder thread's *robust list* (registered with the kernel by glibc for every
//! thread). When a thread exits or its process dies, even by `SIGKILL`, the kernel
//! walks that list, sets `FUTEX_OWNER_DIED` in the word of each mutex still held and
//! wakes one waiter. The next locker gets `EOWNERDEAD` and holds the mutex; it must
//! call `pthread_mutex_consistent` before unlocking, or the mutex becomes unusable.
//!
//! # Safety
//!
//! `pthread_mutex_*` take a raw pointer. What this file relies on:
//! - A [`RobustMutex`] is only ever viewed in place (`&RobustMutex`) inside a live
//!   mapping, never moved or copied once initialised; its storage is an
//!   `UnsafeCell`, so a shared reference does not claim the bytes are immutable
//!   (glibc and other processes change them with atomic instructions).
//! - A held mutex is linked into the holder thread's robust list through pointers
//!   stored *inside* the mutex. The memory must therefore stay mapped while any
//!   thread of this process holds it; that is the precondition of the `unsafe` lock
//!   functions below, discharged by `shm::raw`, which never unmaps a region holding a
//!   mutex that a thread of this process still holds ([`RobustMutex::held_by_this_process`]).
//! - The bytes are shared with other processes, which are trusted to touch them
//!   only through glibc's mutex functions (as with any process-shared pthread mutex);
//!   a peer that scribbles over a mutex can corrupt the robust lists of threads that
//!   use it. Everything else in mproc's shared memory is validated before use.

use std::cell::UnsafeCell;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

/// The holder's thread id in glibc's lock word (`__lock`, the first `int`).
const FUTEX_TID_MASK: u32 = 0x3fff_ffff;

/// What an attempt to lock a [`RobustMutex`] came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Acquire {
    /// The caller holds the mutex.
    Locked,
    /// The caller holds the mutex, and its previous holder died holding it. The
    /// mutex must be made consistent ([`RobustMutex::make_consistent`]) before it is
    /// unlocked.
    OwnerDied,
    /// `try_lock`: another thread holds it.
    WouldBlock,
    /// `lock_timeout`: the time ran out.
    TimedOut,
    /// The calling thread already holds this (error-checking) mutex.
    Deadlock,
}

/// What kind of mutex [`RobustMutex::init`] makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MutexKind {
    /// Relocking by the holder is an error (`EDEADLK`), not a deadlock.
    ErrorCheck,
    /// The holder may lock it again; it is free after as many unlocks.
    Recursive,
}

/// A `pthread_mutex_t` in memory shared between processes.
#[repr(C)]
pub(crate) struct RobustMutex {
    inner: UnsafeCell<libc::pthread_mutex_t>,
}

// SAFETY: the mutex is made for concurrent use by many threads and processes; all
// access goes through glibc's functions, which synchronise with atomic instructions.
unsafe impl Sync for RobustMutex {}
// SAFETY: as above; a `RobustMutex` holds no thread-affine state of its own (which
// thread holds it is recorded in the shared bytes).
unsafe impl Send for RobustMutex {}

fn errno_result(rc: libc::c_int) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(rc))
    }
}

unsafe extern "C" {
    /// glibc >= 2.30: like `pthread_mutex_timedlock`, on a chosen clock.
    #[cfg(target_env = "gnu")]
    #[cfg_attr(not(test), allow(dead_code))] // only the tests time out on a mutex now
    fn pthread_mutex_clocklock(
        mutex: *mut libc::pthread_mutex_t,
        clockid: libc::clockid_t,
        abstime: *const libc::timespec,
    ) -> libc::c_int;
}

impl RobustMutex {
    #[inline]
    fn ptr(&self) -> *mut libc::pthread_mutex_t {
        self.inner.get()
    }

    /// Initialises the mutex in place: process-shared, robust, of `kind`.
    ///
    /// # Safety
    ///
    /// - No other thread or process may use these bytes during the call (the caller
    ///   has just created the memory and not yet shared it).
    /// - The mutex must not be held (re-initialising a held mutex corrupts the
    ///   holder's robust list).
    pub(crate) unsafe fn init(&self, kind: MutexKind) -> io::Result<()> {
        let mut attr = std::mem::MaybeUninit::<libc::pthread_mutexattr_t>::uninit();
        // SAFETY: `attr` is valid, writable storage for one attribute object.
        errno_result(unsafe { libc::pthread_mutexattr_init(attr.as_mut_ptr()) })?;
        let result = (|| {
            let ty = match kind {
                MutexKind::ErrorCheck => libc::PTHREAD_MUTEX_ERRORCHECK,
                MutexKind::Recursive => libc::PTHREAD_MUTEX_RECURSIVE,
            };
            // SAFETY: `attr` was initialised above and is destroyed only after this
            // closure.
            errno_result(unsafe {
                libc::pthread_mutexattr_setpshared(attr.as_mut_ptr(), libc::PTHREAD_PROCESS_SHARED)
            })?;
            // SAFETY: as above.
            errno_result(unsafe {
                libc::pthread_mutexattr_setrobust(attr.as_mut_ptr(), libc::PTHREAD_MUTEX_ROBUST)
            })?;
            // SAFETY: as above.
            errno_result(unsafe { libc::pthread_mutexattr_settype(attr.as_mut_ptr(), ty) })?;
            // SAFETY:
            // - `self.ptr()` points to storage for one `pthread_mutex_t` that lives as
            //   long as `self`;
            // - nobody else uses it and it is not held (the caller's promise);
            // - `attr` is an initialised attribute object.
            errno_result(unsafe { libc::pthread_mutex_init(self.ptr(), attr.as_ptr()) })
        })();
        // SAFETY: `attr` was initialised by `pthread_mutexattr_init`.
        unsafe { libc::pthread_mutexattr_destroy(attr.as_mut_ptr()) };
        result
    }

    #[inline]
    fn acquire_result(rc: libc::c_int) -> io::Result<Acquire> {
        match rc {
            0 => Ok(Acquire::Locked),
            libc::EOWNERDEAD => Ok(Acquire::OwnerDied),
            libc::EBUSY => Ok(Acquire::WouldBlock),
            libc::ETIMEDOUT => Ok(Acquire::TimedOut),
            libc::EDEADLK => Ok(Acquire::Deadlock),
            rc => Err(io::Error::from_raw_os_error(rc)),
        }
    }

    /// Locks the mutex, sleeping while another thread holds it.
    ///
    /// `Err` means the mutex is unusable (`ENOTRECOVERABLE`, or bytes that are not
    /// an initialised mutex).
    ///
    /// # Safety
    ///
    /// The mutex was initialised with [`RobustMutex::init`], and the memory stays
    /// mapped in this process for as long as the calling thread holds it.
    #[inline]
    pub(crate) unsafe fn lock(&self) -> io::Result<Acquire> {
        // SAFETY:
        // - the pointer is valid for the call (it comes from `&self`);
        // - the mutex is initialised and stays mapped while held (caller's promise).
        Self::acquire_result(unsafe { libc::pthread_mutex_lock(self.ptr()) })
    }

    /// Locks the mutex if no thread holds it; [`Acquire::WouldBlock`] otherwise.
    ///
    /// # Safety
    ///
    /// As for [`RobustMutex::lock`].
    #[inline]
    pub(crate) unsafe fn try_lock(&self) -> io::Result<Acquire> {
        // SAFETY: as in `lock`.
        Self::acquire_result(unsafe { libc::pthread_mutex_trylock(self.ptr()) })
    }

    /// Locks the mutex, waiting at most `timeout` (measured on the monotonic clock
    /// with glibc; on the real-time clock elsewhere).
    ///
    /// # Safety
    ///
    /// As for [`RobustMutex::lock`].
    #[cfg_attr(not(test), allow(dead_code))] // only the tests time out on a mutex now
    pub(crate) unsafe fn lock_timeout(&self, timeout: Duration) -> io::Result<Acquire> {
        #[cfg(target_env = "gnu")]
        let clock = libc::CLOCK_MONOTONIC;
        #[cfg(not(target_env = "gnu"))]
        let clock = libc::CLOCK_REALTIME;
        // libc's clock (not rustix's vDSO lookup) so that the clock matches the one
        // glibc's timed lock reads, and tools such as valgrind can follow it.
        let mut now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `now` is a valid, writable timespec; the clock id is supported.
        unsafe { libc::clock_gettime(clock, &mut now) };
        let now = Duration::new(
            now.tv_sec.max(0) as u64,
            now.tv_nsec.clamp(0, 999_999_999) as u32,
        );
        let at = now.saturating_add(timeout);
        let abstime = libc::timespec {
            tv_sec: at.as_secs().min(i64::MAX as u64) as libc::time_t,
            tv_nsec: at.subsec_nanos() as _,
        };
        #[cfg(target_env = "gnu")]
        // SAFETY:
        // - the mutex pointer is valid, initialised and stays mapped while held (as
        //   in `lock`);
        // - `abstime` is a valid timespec that outlives the call;
        // - `CLOCK_MONOTONIC` is supported by `pthread_mutex_clocklock`.
        let rc = unsafe { pthread_mutex_clocklock(self.ptr(), libc::CLOCK_MONOTONIC, &abstime) };
        #[cfg(not(target_env = "gnu"))]
        // SAFETY: as above, with the real-time clock that `timedlock` uses.
        let rc = unsafe { libc::pthread_mutex_timedlock(self.ptr(), &abstime) };
        Self::acquire_result(rc)
    }

    /// Marks the state protected by the mutex consistent again after
    /// [`Acquire::OwnerDied`]; the calling thread must hold the mutex.
    pub(crate) fn make_consistent(&self) -> io::Result<()> {
        // SAFETY: the pointer is valid for the call; glibc checks that the mutex is
        // robust, held by the caller and in the owner-died state (`EINVAL` if not).
        errno_result(unsafe { libc::pthread_mutex_consistent(self.ptr()) })
    }

    /// Unlocks the mutex (once, for a recursive one). Fails with `EPERM` when the
    /// calling thread does not hold it: glibc checks the owner of robust mutexes.
    #[inline]
    pub(crate) fn unlock(&self) -> io::Result<()> {
        // SAFETY: the pointer is valid for the call. Unlocking removes the mutex from
        // the caller's robust list; glibc refuses (EPERM) when the caller is not the
        // holder, so no list is touched in that case.
        errno_result(unsafe { libc::pthread_mutex_unlock(self.ptr()) })
    }

    /// The lock word (`__lock`, the first field of glibc's `pthread_mutex_t`):
    /// the holder's thread id, plus waiter and owner-died bits.
    fn word(&self) -> &AtomicU32 {
        // SAFETY:
        // - the first field of glibc's `struct __pthread_mutex_s` (public ABI in
        //   `bits/struct_mutex.h`) is the `int __lock` word, at offset 0, 4-aligned
        //   (the whole mutex is 8-aligned);
        // - glibc and the kernel access it only with atomic instructions, so viewing
        //   it as an `AtomicU32` for the lifetime of `&self` is sound (the storage is
        //   in an `UnsafeCell`).
        unsafe { &*self.ptr().cast::<AtomicU32>() }
    }

    /// The thread id of the current holder, if any (a snapshot).
    pub(crate) fn holder_tid(&self) -> Option<u32> {
        match self.word().load(Ordering::Relaxed) & FUTEX_TID_MASK {
            0 => None,
            tid => Some(tid),
        }
    }

    /// Whether a thread of this process holds the mutex now. Used before unmapping:
    /// a held mutex is linked into that thread's robust list.
    pub(crate) fn held_by_this_process(&self) -> bool {
        match self.holder_tid() {
            None => false,
            Some(tid) => {
                tid == rustix::thread::gettid().as_raw_nonzero().get() as u32
                    || std::fs::metadata(format!("/proc/self/task/{tid}")).is_ok()
            }
        }
    }
}

/// This process's id, cached: `getpid` is a system call in glibc, and lock fast
/// paths record the holder's pid. A fork handler clears the cache in the child.
#[inline]
pub(crate) fn cached_pid() -> u32 {
    match PID.load(Ordering::Relaxed) {
        0 => cache_pid(),
        pid => pid,
    }
}

static PID: AtomicU32 = AtomicU32::new(0);

#[cold]
fn cache_pid() -> u32 {
    extern "C" fn forget_pid() {
        // Async-signal-safe: one atomic store.
        PID.store(0, Ordering::Relaxed);
    }
    // Not a `Once`: a child forked while another thread ran a `Once` would find it
    // forever in progress. The swap lets exactly one caller register the handler.
    static REGISTERED: AtomicBool = AtomicBool::new(false);
    if !REGISTERED.swap(true, Ordering::AcqRel) {
        super::process::at_fork_child(forget_pid);
    }
    let pid = super::process::getpid();
    PID.store(pid, Ordering::Relaxed);
    pid
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh(kind: MutexKind) -> Box<RobustMutex> {
        // SAFETY: an all-zero `pthread_mutex_t` is a valid (default) mutex object.
        let m: Box<RobustMutex> = Box::new(unsafe { std::mem::zeroed() });
        // SAFETY: freshly allocated, unshared and not held.
        unsafe { m.init(kind) }.unwrap();
        m
    }

    #[test]
    fn errorcheck_detects_relock_and_foreign_unlock() {
        let m = fresh(MutexKind::ErrorCheck);
        // SAFETY: initialised; the box outlives every hold below.
        unsafe {
            assert_eq!(m.lock().unwrap(), Acquire::Locked);
            assert_eq!(m.lock().unwrap(), Acquire::Deadlock);
            assert_eq!(m.try_lock().unwrap(), Acquire::Deadlock);
        }
        assert!(m.held_by_this_process());
        let tid = m.holder_tid().unwrap();
        std::thread::scope(|s| {
            s.spawn(|| {
                assert!(m.unlock().is_err());
                // SAFETY: as above.
                let r = unsafe { m.lock_timeout(Duration::from_millis(10)) }.unwrap();
                assert_eq!(r, Acquire::TimedOut);
            });
        });
        assert_eq!(m.holder_tid(), Some(tid));
        m.unlock().unwrap();
        assert!(!m.held_by_this_process());
    }

    #[test]
    fn thread_exit_marks_owner_died() {
        let m = fresh(MutexKind::Recursive);
        std::thread::scope(|s| {
            s.spawn(|| {
                // SAFETY: as above; the thread exits holding it, on purpose.
                unsafe {
                    assert_eq!(m.lock().unwrap(), Acquire::Locked);
                    assert_eq!(m.lock().unwrap(), Acquire::Locked);
                }
            });
        });
        // SAFETY: as above.
        assert_eq!(unsafe { m.lock() }.unwrap(), Acquire::OwnerDied);
        m.make_consistent().unwrap();
        m.unlock().unwrap();
        // SAFETY: as above.
        assert_eq!(unsafe { m.try_lock() }.unwrap(), Acquire::Locked);
        m.unlock().unwrap();
    }

    #[test]
    fn pid_cache_matches() {
        assert_eq!(cached_pid(), super::super::process::getpid());
        assert_eq!(cached_pid(), std::process::id());
    }
}
