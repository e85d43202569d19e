//! The raw layer under the safe lock and semaphore types, in the manner of
//! `lock_api`: [`RawLock`] is what a primitive in shared memory offers (acquire
//! now, by a deadline or without one; release; report a dead holder), and the
//! public types are thin generic wrappers that add the handle, the RAII guard and
//! the error shapes, written once for each pair (`Lock`/`RLock`,
//! `Semaphore`/`BoundedSemaphore`).
//!
//! The robust lock's implementation lives here ([`LockState`], in shared memory).
//! The semaphore's raw operations are in `semaphore.rs`, beside their loom-checked
//! algorithm.
//!
//! # The robust lock
//!
//! `owner` is 0 when the lock is free, else the holder's *thread mark*
//! (`sys::thread_mark`: its thread id and start time, which a recycled thread id
//! cannot impersonate), with [`WAITERS`] set while a waiter may sleep:
//!
//! - **Acquire**: one CAS of 0 to our mark. Contended: a bounded spin (50 µs; 10 µs
//!   when the machine is oversubscribed) that polls the word at gaps growing from
//!   250 ns to 2 µs, so as to leave the cache line to the holder
//!   (`wait::spin_for_release`); then set [`WAITERS`] (CAS) and sleep on the futex
//!   word `seq`, read *before* the owner word. A waiter that
//!   slept takes the lock with [`WAITERS`] set: the release that woke it woke one
//!   sleeper only, and others may still sleep (glibc's rule for its mutexes).
//! - **Release**: one swap of `owner` to 0, whose result says whether anyone must
//!   be woken; only then is `seq` bumped and one sleeper woken (and the async
//!   waiters signalled, by the guard). No fence and no extra load when nobody
//!   waits. A sleeper either set [`WAITERS`] before the swap (which then sees it
//!   and bumps `seq` after the sleeper read it) or finds `owner` changed.
//! - **A dead holder**: a waiter that has watched one holder for a while asks
//!   `thread_mark::liveness`; a holder proven dead is replaced with one CAS of its
//!   exact mark (so two waiters cannot both take over, and a live holder that
//!   happens to reuse the id is never displaced), and the taker hears
//!   [`Outcome::OwnerDied`]. A sleeping waiter looks every so often (from
//!   [`HOLDER_CHECK`], doubling to [`HOLDER_CHECK_MAX`]); `try_lock` looks at once.
//!
//! Async waiters (`Lock::lock_async`) set [`WAITERS`] in the same way before they
//! sleep on their wake socket, after registering in the lock's table, so the
//! release that sees the bit signals the table too.

use std::sync::OnceLock;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::wait::{self, FutexWord};
use crate::shm::raw::{Fresh, LockState};
use crate::sys::pthread::{MutexKind, cached_pid};
use crate::sys::thread_mark::{self, Liveness};
use crate::word::AtomicWord;

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

/// The bit of [`LockState::owner`] that says a waiter may sleep (thread marks have
/// a thread id below 2^31 in their high half, so it is never part of a mark).
pub(crate) const WAITERS: u64 = 1 << 63;

/// How long a waiter watches one holder before it asks whether the holder still
/// runs (and its longest sleep meanwhile); doubled after each answer "alive".
const HOLDER_CHECK: Duration = if cfg!(loom) {
    // The models have no clock: a holder is asked about at its second sighting.
    Duration::ZERO
} else {
    Duration::from_millis(10)
};
/// The longest interval between two such questions.
const HOLDER_CHECK_MAX: Duration = Duration::from_millis(160);

/// Whether a failed `try_lock` of this thread asks now whether holder `owner` still
/// runs. The answer costs a read of `/proc`, so a thread that polls `try_lock` (or an
/// async waiter that only ever tries) asks about one holder at most once per
/// [`HOLDER_CHECK`]; its first failure against a holder always asks.
fn try_may_ask(owner: u64) -> bool {
    if cfg!(loom) {
        return true;
    }
    thread_local! {
        static ASKED: std::cell::Cell<(u64, Option<Instant>)> =
            const { std::cell::Cell::new((0, None)) };
    }
    let mark = owner & !WAITERS;
    let now = Instant::now();
    ASKED
        .try_with(|asked| {
            let (last, at) = asked.get();
            if last == mark && at.is_some_and(|t| now.duration_since(t) < HOLDER_CHECK) {
                return false;
            }
            asked.set((mark, Some(now)));
            true
        })
        .unwrap_or(true)
}

/// A waiter's view of the holder it waits for: which one, and when to ask next
/// whether it still runs. Kept across the attempts of one wait.
#[derive(Debug, Default)]
pub(crate) struct HolderWatch {
    holder: u64,
    next: Option<Instant>,
    every: Duration,
}

impl HolderWatch {
    /// Whether `holder` (the owner word without [`WAITERS`]) has been watched long
    /// enough that its liveness should be asked now; starts watching a new holder.
    fn due(&mut self, holder: u64, now: Instant) -> bool {
        if holder != self.holder || self.next.is_none() {
            self.holder = holder;
            self.every = HOLDER_CHECK;
            self.next = Some(now + HOLDER_CHECK);
            return HOLDER_CHECK.is_zero();
        }
        self.next.is_some_and(|at| now >= at)
    }

    /// The holder was asked about and still runs: ask again later.
    fn alive(&mut self, now: Instant) {
        self.every = (self.every * 2).min(HOLDER_CHECK_MAX);
        self.next = Some(now + self.every);
    }

    /// How long a sleep may last before the next question.
    fn nap(&self, now: Instant) -> Duration {
        self.next
            .map_or(HOLDER_CHECK, |at| at.saturating_duration_since(now))
            .max(Duration::from_millis(1))
    }
}

/// This process's PID namespace, read once.
fn our_namespace() -> u64 {
    static NS: OnceLock<u64> = OnceLock::new();
    *NS.get_or_init(thread_mark::pid_namespace)
}

/// What a contended acquisition came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Contended {
    /// Taken from a live holder's release.
    Taken,
    /// Taken over from a holder that `dead` said had died.
    TakenFromDead,
    /// The deadline passed.
    TimedOut,
}

/// The contended acquisition (see the module docs): take the word when free (with
/// [`WAITERS`] once this waiter has slept), else set [`WAITERS`] and sleep on `seq`
/// (read before `owner`), asking `dead` about a holder that `watch` says has held
/// on for a while. `sleep(seq, s, nap)` sleeps while `seq` holds `s`, at most `nap`.
pub(crate) fn acquire_contended<O: AtomicWord + ?Sized, S: FutexWord + ?Sized>(
    owner: &O,
    seq: &S,
    me: u64,
    deadline: Option<Instant>,
    watch: &mut HolderWatch,
    dead: impl Fn(u64) -> bool,
    sleep: impl Fn(&S, u32, Duration),
) -> Contended {
    let take = |from: u64, to: u64| {
        owner
            .compare_exchange(from, to, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    };
    // WAITERS once this waiter has slept: the release that woke it woke one
    // sleeper only, and others may still sleep.
    let mut slept = 0;
    loop {
        // `seq` before `owner`: a release after this read bumps it (when it sees
        // WAITERS) and the sleep below returns at once.
        let s = seq.load(Ordering::Acquire);
        let cur = owner.load(Ordering::Acquire);
        if cur & !WAITERS == 0 {
            if take(cur, me | slept) {
                return Contended::Taken;
            }
            continue;
        }
        let now = Instant::now();
        if watch.due(cur & !WAITERS, now) {
            if dead(cur) {
                // Its exact mark, so that only one survivor takes over; WAITERS
                // kept, for the dead holder's other waiters.
                if take(cur, me | (cur & WAITERS)) {
                    return Contended::TakenFromDead;
                }
                continue;
            }
            watch.alive(now);
        }
        if deadline.is_some_and(|d| now >= d) {
            return Contended::TimedOut;
        }
        if cur & WAITERS == 0
            && owner
                .compare_exchange(cur, cur | WAITERS, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
        {
            continue;
        }
        sleep(seq, s, watch.nap(now));
        slept = WAITERS;
    }
}

/// The release: one swap of the owner word to 0; when it held [`WAITERS`], bumps
/// `seq` and wakes one sleeper, and returns `true` (async waiters are then
/// signalled by the caller).
#[inline]
pub(crate) fn release<O: AtomicWord + ?Sized, S: FutexWord + ?Sized>(owner: &O, seq: &S) -> bool {
    let old = owner.swap(0, Ordering::AcqRel);
    if old & WAITERS != 0 {
        wake_one(seq);
        true
    } else {
        false
    }
}

#[cold]
#[inline(never)]
fn wake_one<S: FutexWord + ?Sized>(seq: &S) {
    seq.fetch_add(1, Ordering::Release);
    seq.wake(1);
}

impl LockState {
    /// Initialises a lock in a fresh mapping (nobody else sees it yet).
    pub(crate) fn init(&self, _fresh: &Fresh, kind: MutexKind) -> std::io::Result<()> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let id = (u64::from(cached_pid()) << 40)
            ^ nanos.rotate_left(20)
            ^ NEXT.fetch_add(1, Ordering::Relaxed);
        self.id.store(id, Ordering::Relaxed);
        self.reentrant
            .store(u32::from(kind == MutexKind::Recursive), Ordering::Relaxed);
        self.namespace.store(our_namespace(), Ordering::Relaxed);
        Ok(())
    }

    /// Whether `self` and `other` are the same lock (possibly mapped twice).
    pub(crate) fn is_same(&self, other: &LockState) -> bool {
        std::ptr::eq(self, other)
            || self.id.load(Ordering::Relaxed) == other.id.load(Ordering::Relaxed)
    }

    /// One CAS of a free owner word to `to`.
    #[inline]
    fn take(&self, from: u64, to: u64) -> bool {
        self.owner
            .compare_exchange(from, to, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    /// Books an acquisition from a live (or no) previous holder.
    #[inline]
    fn took(&self) -> Outcome {
        self.holder_pid.store(cached_pid(), Ordering::Relaxed);
        self.depth.store(1, Ordering::Relaxed);
        self.died_or_locked()
    }

    /// `Locked`, or `OwnerDied` while the owner-died state is set.
    #[inline]
    fn died_or_locked(&self) -> Outcome {
        if self.owner_died.load(Ordering::Relaxed) == 0 {
            Outcome::Locked
        } else {
            Outcome::OwnerDied(pid(self.dead_pid.load(Ordering::Relaxed)))
        }
    }

    /// Books an acquisition taken over from a dead holder: the persistent
    /// owner-died state.
    #[cold]
    fn took_from_dead(&self) -> Outcome {
        let dead = self.holder_pid.load(Ordering::Relaxed);
        self.dead_pid.store(dead, Ordering::Relaxed);
        self.owner_died.store(1, Ordering::Relaxed);
        self.holder_pid.store(cached_pid(), Ordering::Relaxed);
        self.depth.store(1, Ordering::Relaxed);
        Outcome::OwnerDied(pid(dead))
    }

    /// The calling thread holds the lock already: re-enter an `RLock`, refuse
    /// otherwise.
    #[cold]
    fn relock(&self) -> Outcome {
        if self.reentrant.load(Ordering::Relaxed) == 0 {
            return Outcome::Deadlock;
        }
        let depth = self.depth.load(Ordering::Relaxed);
        let Some(depth) = depth.checked_add(1) else {
            panic!("an RLock was re-entered 2^32 times by one thread without a release");
        };
        self.depth.store(depth, Ordering::Relaxed);
        self.died_or_locked()
    }

    /// Whether the holder `owner` (a mark, maybe with [`WAITERS`]) is proven dead.
    /// Never for a lock made in another PID namespace, where its thread ids mean
    /// other threads.
    #[cold]
    fn holder_dead(&self, owner: u64) -> bool {
        let theirs = self.namespace.load(Ordering::Relaxed);
        let ours = our_namespace();
        if theirs != 0 && ours != 0 && theirs != ours {
            return false;
        }
        thread_mark::liveness(owner & !WAITERS) == Liveness::Dead
    }

    /// Takes the lock over from the dead holder `owner` (one CAS of its exact
    /// mark, keeping [`WAITERS`]: its sleepers still sleep).
    #[cold]
    fn take_from_dead(&self, owner: u64, me: u64) -> Option<Outcome> {
        self.take(owner, me | (owner & WAITERS))
            .then(|| self.took_from_dead())
    }

    /// `try_lock`: the word was not free at the first attempt.
    #[cold]
    #[inline(never)]
    fn try_acquire_slow(&self, me: u64) -> Outcome {
        loop {
            let cur = self.owner.load(Ordering::Relaxed);
            if cur == 0 {
                if self.take(0, me) {
                    return self.took();
                }
                continue;
            }
            if cur & !WAITERS == me {
                return self.relock();
            }
            if try_may_ask(cur) && self.holder_dead(cur) {
                match self.take_from_dead(cur, me) {
                    Some(outcome) => return outcome,
                    None => continue,
                }
            }
            return Outcome::WouldBlock;
        }
    }

    /// A blocking acquisition when the first attempt found the lock held: poll the
    /// word briefly and seldom (`wait::spin_for_release`), then sleep on `seq` with
    /// [`WAITERS`] set, watching the holder.
    #[cold]
    #[inline(never)]
    fn acquire_slow(&self, me: u64, deadline: Option<Instant>) -> Outcome {
        if self.owner.load(Ordering::Relaxed) & !WAITERS == me {
            return self.relock();
        }
        if wait::spin_for_release(deadline, || self.owner.load(Ordering::Relaxed) == 0)
            && self.take(0, me)
        {
            return self.took();
        }
        let mut watch = HolderWatch::default();
        match acquire_contended(
            &self.owner,
            &self.seq,
            me,
            deadline,
            &mut watch,
            |owner| self.holder_dead(owner),
            |seq, s, nap| {
                let _ = wait::sleep(seq, s, deadline, Some(nap));
            },
        ) {
            Contended::Taken => self.took(),
            Contended::TakenFromDead => self.took_from_dead(),
            Contended::TimedOut => Outcome::TimedOut,
        }
    }

    /// For an async waiter (registered in the lock's table): takes the lock if it
    /// is free (or re-enters an `RLock` this thread holds, or takes it from a dead
    /// holder); otherwise sets [`WAITERS`], so that the release signals the table,
    /// and returns [`Outcome::WouldBlock`]. A [`Lock`](super::Lock) held by the
    /// calling thread (another task) is waited for, not refused.
    #[cfg(feature = "tokio")]
    pub(crate) fn acquire_or_announce(&self, watch: &mut HolderWatch) -> Outcome {
        let me = thread_mark::current();
        loop {
            let cur = self.owner.load(Ordering::Acquire);
            if cur & !WAITERS == 0 {
                // Taken with WAITERS kept: other waiters may sleep.
                if self.take(cur, me | cur) {
                    return self.took();
                }
                continue;
            }
            if cur & !WAITERS == me && self.reentrant.load(Ordering::Relaxed) != 0 {
                return self.relock();
            }
            let now = Instant::now();
            if cur & !WAITERS != me && watch.due(cur & !WAITERS, now) {
                if self.holder_dead(cur) {
                    match self.take_from_dead(cur, me) {
                        Some(outcome) => return outcome,
                        None => continue,
                    }
                }
                watch.alive(now);
            }
            // Release: the registration before this is seen by the release that
            // reads the bit (its swap acquires it).
            if cur & WAITERS != 0
                || self
                    .owner
                    .compare_exchange(cur, cur | WAITERS, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
            {
                return Outcome::WouldBlock;
            }
        }
    }

    /// Releases the lock (one level of a re-entered one). Returns whether a waiter
    /// may sleep (the caller then signals the async waiters); sleeping threads are
    /// woken here.
    #[inline]
    pub(crate) fn unlock(&self) -> bool {
        let depth = self.depth.load(Ordering::Relaxed);
        if depth > 1 {
            self.depth.store(depth - 1, Ordering::Relaxed);
            return false;
        }
        debug_assert_eq!(
            self.owner.load(Ordering::Relaxed) & !WAITERS,
            thread_mark::current(),
            "a lock released by a thread that does not hold it"
        );
        release(&self.owner, &self.seq)
    }

    /// Clears the owner-died state (the caller holds the lock).
    pub(crate) fn mark_consistent(&self) {
        self.owner_died.store(0, Ordering::Relaxed);
    }

    /// Whether the owner-died state is set.
    pub(crate) fn is_owner_died(&self) -> bool {
        self.owner_died.load(Ordering::Relaxed) != 0
    }

    /// Whether some thread holds the lock (a snapshot).
    pub(crate) fn is_locked(&self) -> bool {
        self.owner.load(Ordering::Relaxed) != 0
    }

    /// The pid of the current holder (a snapshot; `None` when free).
    pub(crate) fn holder(&self) -> Option<u32> {
        if self.is_locked() {
            pid(self.holder_pid.load(Ordering::Relaxed))
        } else {
            None
        }
    }
}

/// The robust lock: Lock, RLock, and the locks inside Condition, Barrier and Value.
impl RawLock for LockState {
    /// Acquires the lock: one CAS of this thread's mark into a free owner word (the
    /// uncontended fast path, no system call); otherwise see `acquire_slow`.
    #[inline]
    fn acquire(&self, wait: Wait) -> Outcome {
        let me = thread_mark::current();
        if self.take(0, me) {
            return self.took();
        }
        match wait {
            Wait::No => self.try_acquire_slow(me),
            Wait::Until(deadline) => self.acquire_slow(me, deadline),
        }
    }

    /// Releases the lock (once, for a recursive one).
    #[inline]
    fn release(&self) {
        self.unlock();
    }
}

fn pid(raw: u32) -> Option<u32> {
    (raw != 0).then_some(raw)
}
