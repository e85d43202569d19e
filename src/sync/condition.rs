//! `Condition`: wait for a change announced by another process.
//!
//! One 64-bit word holds three counters: registered waiters, granted wake-up
//! *tokens*, and a notify generation. A waiter registers (remembering the
//! generation) before it releases the lock. A notify grants tokens, never more
//! than there are registered waiters without one, and moves the generation on in
//! the same compare-exchange; then it bumps the futex word and wakes that many
//! sleepers. A waiter returns as notified only by consuming a token, and only a
//! waiter that registered *before* some notify (its generation is old) may take
//! one, so `notify(n)` ends at most `n` waits and a waiter that arrives later
//! cannot steal a notification meant for one already waiting. The word changes
//! only by compare-exchange, so notify does not need the lock for correctness.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::error::{CreateError, LockResult, OwnerDied};
use super::lock::{Lock, LockGuard};
use super::raw::{Outcome, RawLock, Wait};
use super::wait::{self, Sleep};
use crate::shm::handle::{RegionIn, RegionOut};
use crate::shm::raw::{ConditionHeader, Shared};

const COND_MAGIC: u64 = u64::from_le_bytes(*b"mprocCV\x01");

// counts: waiters in bits 0..20, tokens in bits 20..40, generation in bits 40..64.
const WAITER: u64 = 1;
const TOKEN: u64 = 1 << 20;
const GENERATION: u64 = 1 << 40;
const FIELD: u64 = (1 << 20) - 1;

fn waiters(c: u64) -> u64 {
    c & FIELD
}

fn tokens(c: u64) -> u64 {
    (c >> 20) & FIELD
}

fn generation(c: u64) -> u64 {
    c >> 40
}

/// Whether [`Condition::wait_timeout`] returned because of a notification or
/// because its time ran out (std's `WaitTimeoutResult`; Python's `wait` returns
/// `False` on timeout).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitTimeoutResult(bool);

impl WaitTimeoutResult {
    /// `true` when the wait ended because the time ran out.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let cond = mproc::sync::Condition::new()?;
    /// let g = cond.lock().unwrap();
    /// let (_g, r) = cond.wait_timeout(g, Duration::from_millis(1)).unwrap();
    /// assert!(r.timed_out());
    /// # Ok::<(), mproc::sync::CreateError>(())
    /// ```
    pub fn timed_out(&self) -> bool {
        self.0
    }
}

/// A condition variable shared between processes, with its lock (Python's
/// `multiprocessing.Condition`).
///
/// Take the lock with [`lock`](Condition::lock), check the shared state, and if it
/// is not what you need, [`wait`](Condition::wait): that releases the lock, sleeps
/// until another process calls [`notify`](Condition::notify) or
/// [`notify_all`](Condition::notify_all), and takes the lock back. Because a
/// notification can come before the state you need (or be taken by another
/// waiter), check in a loop, or use [`wait_for`](Condition::wait_for) with a
/// predicate. The shared state itself lives elsewhere: a [`Value`](crate::shm::Value)
/// or [`SharedMemory`](crate::shm::SharedMemory).
///
/// Rust differences from Python: the guard is moved into `wait` and handed back
/// (so the lock cannot be forgotten), the lock is a [`Lock`] (not re-entrant), and
/// `notify` may be called without holding the lock. If a process dies holding the
/// lock, the next `lock` or `wait` returns [`OwnerDied`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use mproc::shm::Value;
/// use mproc::sync::Condition;
///
/// let cond = Condition::new()?;
/// let items = Value::new(0u32)?;
/// std::thread::scope(|s| {
///     s.spawn(|| {
///         // A producer (another process, in real use).
///         let _g = cond.lock().unwrap();
///         items.set(items.get() + 1);
///         cond.notify(1);
///     });
///     let g = cond.lock().unwrap();
///     let (_g, ok) = cond
///         .wait_for_timeout(g, Duration::from_secs(10), || items.get() > 0)
///         .unwrap();
///     assert!(ok);
/// });
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Condition {
    lock: Lock,
    shared: Arc<Shared<ConditionHeader>>,
}

impl fmt::Debug for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = self.counts().load(Ordering::Relaxed);
        f.debug_struct("Condition")
            .field("lock", &self.lock)
            .field("waiters", &waiters(c))
            .field("pending_notifications", &tokens(c))
            .finish()
    }
}

impl Condition {
    /// A new condition with a new [`Lock`].
    ///
    /// # Errors
    ///
    /// [`CreateError`] when the system refuses the shared memory.
    ///
    /// # Examples
    ///
    /// ```
    /// let cond = mproc::sync::Condition::new()?;
    /// let g = cond.lock().unwrap();
    /// assert!(cond.get_lock().is_locked());
    /// drop(g);
    /// # Ok::<(), mproc::sync::CreateError>(())
    /// ```
    pub fn new() -> Result<Condition, CreateError> {
        Condition::with_lock(Lock::new()?)
    }

    /// A new condition that uses `lock` (Python's `Condition(lock)`): several
    /// conditions may share one lock, say "not empty" and "not full" of a buffer.
    ///
    /// # Errors
    ///
    /// [`CreateError`] when the system refuses the shared memory.
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::sync::{Condition, Lock};
    ///
    /// let lock = Lock::new()?;
    /// let not_empty = Condition::with_lock(lock.clone())?;
    /// let not_full = Condition::with_lock(lock)?;
    /// let g = not_empty.lock().unwrap();
    /// assert!(not_full.get_lock().is_locked()); // the same lock, held by `g`
    /// let (g, r) = not_full.wait_timeout(g, std::time::Duration::from_millis(1)).unwrap();
    /// assert!(r.timed_out());
    /// drop(g);
    /// # Ok::<(), mproc::sync::CreateError>(())
    /// ```
    pub fn with_lock(lock: Lock) -> Result<Condition, CreateError> {
        let shared = Shared::<ConditionHeader>::create(c"mproc-condition", 0, |h, _, _| {
            h.magic.store(COND_MAGIC, Ordering::Release);
            Ok(())
        })
        .map_err(|e| CreateError::new("condition", e))?;
        Ok(Condition {
            lock,
            shared: Arc::new(shared),
        })
    }

    #[inline]
    fn counts(&self) -> &AtomicU64 {
        &self.shared.header().counts
    }

    /// Takes the condition's lock (see [`Lock::lock`]).
    ///
    /// # Errors
    ///
    /// [`OwnerDied`] when a holder died; the guard inside holds the lock.
    ///
    /// # Panics
    ///
    /// When the calling thread holds the lock already.
    ///
    /// # Examples
    ///
    /// ```
    /// let cond = mproc::sync::Condition::new()?;
    /// let g = cond.lock().unwrap();
    /// assert!(cond.get_lock().try_lock().is_err());
    /// drop(g);
    /// # Ok::<(), mproc::sync::CreateError>(())
    /// ```
    #[doc(alias = "acquire")]
    pub fn lock(&self) -> LockResult<LockGuard<'_>> {
        self.lock.lock()
    }

    /// The condition's lock.
    ///
    /// # Examples
    ///
    /// ```
    /// let cond = mproc::sync::Condition::new()?;
    /// assert!(!cond.get_lock().is_locked());
    /// # Ok::<(), mproc::sync::CreateError>(())
    /// ```
    pub fn get_lock(&self) -> &Lock {
        &self.lock
    }

    /// Releases the lock, waits for a notification, and takes the lock back.
    /// May return without a notification in rare cases (a spurious wake-up, as in
    /// every condition variable), so check the state in a loop or use
    /// [`wait_for`](Condition::wait_for).
    ///
    /// # Errors
    ///
    /// [`OwnerDied`] (with the guard) when a process died holding the lock while
    /// this one waited.
    ///
    /// # Panics
    ///
    /// When `guard` is not a guard of this condition's lock.
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::sync::Condition;
    ///
    /// let cond = Condition::new()?;
    /// std::thread::scope(|s| {
    ///     let g = cond.lock().unwrap();
    ///     s.spawn(|| {
    ///         let _g = cond.lock().unwrap(); // waits until `wait` releases it
    ///         cond.notify_all();
    ///     });
    ///     let g = cond.wait(g).unwrap();
    ///     assert!(cond.get_lock().is_locked()); // ours again
    ///     drop(g);
    /// });
    /// # Ok::<(), mproc::sync::CreateError>(())
    /// ```
    pub fn wait<'a>(&self, guard: LockGuard<'a>) -> LockResult<LockGuard<'a>> {
        match self.wait_until(guard, None) {
            Ok((g, _)) => Ok(g),
            Err(died) => Err(died.map(|(g, _)| g)),
        }
    }

    /// As [`wait`](Condition::wait), for at most `timeout`.
    ///
    /// # Errors
    ///
    /// As [`wait`](Condition::wait).
    ///
    /// # Panics
    ///
    /// As [`wait`](Condition::wait).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let cond = mproc::sync::Condition::new()?;
    /// let g = cond.lock().unwrap();
    /// let (g, r) = cond.wait_timeout(g, Duration::from_millis(5)).unwrap();
    /// assert!(r.timed_out());
    /// drop(g);
    /// # Ok::<(), mproc::sync::CreateError>(())
    /// ```
    #[allow(clippy::type_complexity)]
    pub fn wait_timeout<'a>(
        &self,
        guard: LockGuard<'a>,
        timeout: Duration,
    ) -> LockResult<(LockGuard<'a>, WaitTimeoutResult)> {
        self.wait_until(guard, crate::deadline::after(timeout))
    }

    /// As [`wait`](Condition::wait), until `deadline` at the latest.
    ///
    /// # Errors
    ///
    /// As [`wait`](Condition::wait).
    ///
    /// # Panics
    ///
    /// As [`wait`](Condition::wait).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    ///
    /// let cond = mproc::sync::Condition::new()?;
    /// let g = cond.lock().unwrap();
    /// let (_g, r) = cond
    ///     .wait_deadline(g, Instant::now() + Duration::from_millis(5))
    ///     .unwrap();
    /// assert!(r.timed_out());
    /// # Ok::<(), mproc::sync::CreateError>(())
    /// ```
    #[allow(clippy::type_complexity)]
    pub fn wait_deadline<'a>(
        &self,
        guard: LockGuard<'a>,
        deadline: Instant,
    ) -> LockResult<(LockGuard<'a>, WaitTimeoutResult)> {
        self.wait_until(guard, Some(deadline))
    }

    /// Waits until `predicate()` is true (checked with the lock held, first
    /// before any wait), as Python's `wait_for(predicate)`.
    ///
    /// # Errors
    ///
    /// As [`wait`](Condition::wait).
    ///
    /// # Panics
    ///
    /// As [`wait`](Condition::wait).
    ///
    /// # Examples
    ///
    /// ```
    /// let cond = mproc::sync::Condition::new()?;
    /// let g = cond.lock().unwrap();
    /// let mut checks = 0;
    /// let g = cond.wait_for(g, || { checks += 1; true }).unwrap(); // already true: no wait
    /// assert_eq!(checks, 1);
    /// # drop(g);
    /// # Ok::<(), mproc::sync::CreateError>(())
    /// ```
    pub fn wait_for<'a>(
        &self,
        guard: LockGuard<'a>,
        predicate: impl FnMut() -> bool,
    ) -> LockResult<LockGuard<'a>> {
        match self.wait_for_until(guard, None, predicate) {
            Ok((g, _)) => Ok(g),
            Err(died) => Err(died.map(|(g, _)| g)),
        }
    }

    /// Waits until `predicate()` is true or `timeout` passes, and returns the
    /// predicate's last value (Python's `wait_for(predicate, timeout)`).
    ///
    /// # Errors
    ///
    /// As [`wait`](Condition::wait); the value inside is the predicate's last
    /// value.
    ///
    /// # Panics
    ///
    /// As [`wait`](Condition::wait).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let cond = mproc::sync::Condition::new()?;
    /// let g = cond.lock().unwrap();
    /// let (_g, ok) = cond
    ///     .wait_for_timeout(g, Duration::from_millis(5), || false)
    ///     .unwrap();
    /// assert!(!ok);
    /// # Ok::<(), mproc::sync::CreateError>(())
    /// ```
    pub fn wait_for_timeout<'a>(
        &self,
        guard: LockGuard<'a>,
        timeout: Duration,
        predicate: impl FnMut() -> bool,
    ) -> LockResult<(LockGuard<'a>, bool)> {
        self.wait_for_until(guard, crate::deadline::after(timeout), predicate)
    }

    /// As [`wait_for_timeout`](Condition::wait_for_timeout), until `deadline`.
    ///
    /// # Errors
    ///
    /// As [`wait_for_timeout`](Condition::wait_for_timeout).
    ///
    /// # Panics
    ///
    /// As [`wait`](Condition::wait).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    ///
    /// let cond = mproc::sync::Condition::new()?;
    /// let g = cond.lock().unwrap();
    /// let at = Instant::now() + Duration::from_millis(5);
    /// let (_g, ok) = cond.wait_for_deadline(g, at, || false).unwrap();
    /// assert!(!ok);
    /// # Ok::<(), mproc::sync::CreateError>(())
    /// ```
    pub fn wait_for_deadline<'a>(
        &self,
        guard: LockGuard<'a>,
        deadline: Instant,
        predicate: impl FnMut() -> bool,
    ) -> LockResult<(LockGuard<'a>, bool)> {
        self.wait_for_until(guard, Some(deadline), predicate)
    }

    fn wait_for_until<'a>(
        &self,
        mut guard: LockGuard<'a>,
        deadline: Option<Instant>,
        mut predicate: impl FnMut() -> bool,
    ) -> LockResult<(LockGuard<'a>, bool)> {
        let mut died: Option<Option<u32>> = None;
        loop {
            let ok = predicate();
            if ok || wait::expired(deadline) {
                return match died {
                    None => Ok((guard, ok)),
                    Some(pid) => Err(OwnerDied::new((guard, ok), pid)),
                };
            }
            guard = match self.wait_until(guard, deadline) {
                Ok((g, _)) => g,
                Err(e) => {
                    died = Some(e.pid());
                    e.into_inner().0
                }
            };
        }
    }

    /// Wakes up to `n` waiters (Python's `notify(n)`). Each wait ends for at most
    /// one notification, and a notification with nobody waiting is lost (as in
    /// Python). Usually called with the lock held, after changing the state the
    /// waiters check, but that is not required.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let cond = mproc::sync::Condition::new()?;
    /// cond.notify(1); // nobody waits: the notification is lost...
    /// let g = cond.lock().unwrap();
    /// let (_g, r) = cond.wait_timeout(g, Duration::from_millis(1)).unwrap();
    /// assert!(r.timed_out()); // ...so a later wait is not ended by it
    /// # Ok::<(), mproc::sync::CreateError>(())
    /// ```
    pub fn notify(&self, n: u32) {
        let counts = self.counts();
        let mut cur = counts.load(Ordering::Relaxed);
        let granted = loop {
            let free = waiters(cur).saturating_sub(tokens(cur));
            let k = free.min(u64::from(n));
            if k == 0 {
                return;
            }
            let new = (cur + k * TOKEN).wrapping_add(GENERATION);
            match counts.compare_exchange_weak(cur, new, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => break k,
                Err(now) => cur = now,
            }
        };
        let seq = &self.shared.header().seq;
        seq.fetch_add(1, Ordering::Release);
        wait::wake(seq, granted as u32);
    }

    /// Wakes every waiter (Python's `notify_all`).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let cond = mproc::sync::Condition::new()?;
    /// std::thread::scope(|s| {
    ///     let waiters: Vec<_> = (0..2)
    ///         .map(|_| s.spawn(|| {
    ///             let g = cond.lock().unwrap();
    ///             let (_g, r) = cond.wait_timeout(g, Duration::from_secs(10)).unwrap();
    ///             !r.timed_out()
    ///         }))
    ///         .collect();
    ///     // Keep notifying until both are done: a notify before a thread waits is lost.
    ///     while !waiters.iter().all(|w| w.is_finished()) {
    ///         cond.notify_all();
    ///         std::thread::yield_now();
    ///     }
    ///     assert!(waiters.into_iter().all(|w| w.join().unwrap()));
    /// });
    /// # Ok::<(), mproc::sync::CreateError>(())
    /// ```
    pub fn notify_all(&self) {
        self.notify(u32::MAX);
    }

    /// Consumes a token if one is granted and this waiter (registered in
    /// generation `mine`) may take it: `Some(true)`. When `leaving`, a waiter
    /// without a token unregisters: `Some(false)`. Otherwise `None`.
    fn take_token(&self, mine: u64, leaving: bool) -> Option<bool> {
        let counts = self.counts();
        let mut cur = counts.load(Ordering::Acquire);
        loop {
            let eligible = generation(cur) != mine;
            let (new, took) = if eligible && tokens(cur) > 0 && waiters(cur) > 0 {
                (cur - TOKEN - WAITER, true)
            } else if leaving && waiters(cur) > 0 {
                (cur - WAITER, false)
            } else if leaving {
                // The count was corrupted: nothing to undo.
                return Some(false);
            } else {
                return None;
            };
            match counts.compare_exchange_weak(cur, new, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Some(took),
                Err(now) => cur = now,
            }
        }
    }

    fn wait_until<'a>(
        &self,
        guard: LockGuard<'a>,
        deadline: Option<Instant>,
    ) -> LockResult<(LockGuard<'a>, WaitTimeoutResult)> {
        let state = guard.state();
        assert!(
            state.is_same(self.lock.state()),
            "Condition::wait called with the guard of a different lock"
        );
        let seq = &self.shared.header().seq;
        // Register, and read the futex word, while still holding the lock: a
        // notify after this point either finds us counted or changes the word.
        let mine = generation(self.counts().fetch_add(WAITER, Ordering::AcqRel));
        let mut s = seq.load(Ordering::Acquire);
        drop(guard);

        let notified = if wait::spin_until(deadline, || {
            let c = self.counts().load(Ordering::Relaxed);
            generation(c) != mine && tokens(c) > 0 && self.take_token(mine, false) == Some(true)
        }) {
            true
        } else {
            loop {
                let r = wait::sleep(seq, s, deadline, None);
                if let Some(true) = self.take_token(mine, false) {
                    break true;
                }
                if r == Sleep::TimedOut || wait::expired(deadline) {
                    break self.take_token(mine, true) == Some(true);
                }
                s = seq.load(Ordering::Acquire);
                if let Some(true) = self.take_token(mine, false) {
                    break true;
                }
            }
        };
        let result = WaitTimeoutResult(!notified);
        match state.acquire(Wait::Until(None)) {
            Outcome::Locked => Ok((LockGuard::new(state), result)),
            Outcome::OwnerDied(pid) => Err(OwnerDied::new((LockGuard::new(state), result), pid)),
            other => unreachable!("re-locking after a wait: {other:?}"),
        }
    }
}

#[derive(Serialize)]
struct ConditionOut<'a> {
    lock: &'a Lock,
    region: RegionOut<'a>,
}

#[derive(Deserialize)]
struct ConditionIn {
    lock: Lock,
    region: RegionIn,
}

impl Serialize for Condition {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        ConditionOut {
            lock: &self.lock,
            region: RegionOut::new(self.shared.region()),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Condition {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let wire = ConditionIn::deserialize(d)?;
        let shared = wire
            .region
            .into_shared::<ConditionHeader, D::Error>(|_| Ok(0))?;
        if shared.header().magic.load(Ordering::Acquire) != COND_MAGIC {
            return Err(serde::de::Error::custom(
                "received descriptor is not an mproc condition",
            ));
        }
        Ok(Condition {
            lock: wire.lock,
            shared: Arc::new(shared),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A waiter that registers after a `notify_all` must not take the
    /// notification of a waiter that was already waiting.
    #[test]
    fn a_late_waiter_cannot_steal_an_earlier_waiters_notification() {
        let cond = Condition::new().unwrap();
        // Register an early waiter by hand (as `wait` does, without sleeping).
        let early = generation(cond.counts().fetch_add(WAITER, Ordering::AcqRel));
        cond.notify_all();
        // A late waiter registers after the notify.
        let late = generation(cond.counts().fetch_add(WAITER, Ordering::AcqRel));
        assert_eq!(
            cond.take_token(late, false),
            None,
            "the late waiter is not eligible"
        );
        assert_eq!(cond.take_token(early, false), Some(true));
        assert_eq!(cond.take_token(early, false), None, "one token only");
        assert_eq!(
            cond.take_token(late, true),
            Some(false),
            "leaves on timeout"
        );
        let c = cond.counts().load(Ordering::Relaxed);
        assert_eq!((waiters(c), tokens(c)), (0, 0));
    }

    #[test]
    fn notify_grants_no_more_tokens_than_waiters() {
        let cond = Condition::new().unwrap();
        cond.notify(5);
        assert_eq!(tokens(cond.counts().load(Ordering::Relaxed)), 0);
        let a = generation(cond.counts().fetch_add(WAITER, Ordering::AcqRel));
        let _b = generation(cond.counts().fetch_add(WAITER, Ordering::AcqRel));
        cond.notify(5);
        cond.notify(5);
        let c = cond.counts().load(Ordering::Relaxed);
        assert_eq!((waiters(c), tokens(c)), (2, 2));
        // A waiter whose time ran out while a token was pending takes it.
        assert_eq!(cond.take_token(a, true), Some(true));
    }
}
