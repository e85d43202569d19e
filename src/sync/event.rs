//! `Event`: a flag that processes wait for.
//!
//! One futex word holds everything: bit 0 is the flag, bit 1 says that someone may
//! be asleep on the word, and the rest count the times the flag was set. A waiter
//! that sleeps remembers the count; [`Event::set`] bumps it, so a waiter woken by a
//! `set` returns `true` even when a `clear` follows at once (the semantics of
//! Python's `threading.Event`). Setting wakes the sleepers only when bit 1 says
//! there are any: an `Event` that nobody sleeps on is set, cleared and waited for
//! without a system call.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::error::CreateError;
use super::wait::{FutexWord, Sleep};
use crate::shm::handle::{RegionIn, RegionOut};
use crate::shm::raw::{AsyncWaiters, EventHeader, Shared};

const EVENT_MAGIC: u64 = u64::from_le_bytes(*b"mprocEV\x01");

pub(crate) const SET: u32 = 1;
pub(crate) const WAITERS: u32 = 2;
const GEN_ONE: u32 = 4;
pub(crate) const GEN_MASK: u32 = !(SET | WAITERS);
/// The tail: a table of async waiters (`Event::wait_async`).
const TAIL: usize = size_of::<AsyncWaiters>();

/// An event flag shared between processes (Python's `multiprocessing.Event`).
///
/// [`set`](Event::set) raises the flag and wakes every waiter;
/// [`clear`](Event::clear) lowers it; [`wait`](Event::wait) blocks until it is
/// raised. A waiter spins briefly before it sleeps, so a hand-over between two busy
/// processes takes well under a microsecond; an idle waiter sleeps in the kernel.
/// When nobody sleeps, `set`, `clear`, `is_set` and a `wait` on a raised flag make
/// no system call.
///
/// A handle: clone it, or pass it to a child as a task argument.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use mproc::sync::Event;
///
/// let ready = Event::new()?;
/// assert!(!ready.wait_timeout(Duration::from_millis(1)));
/// std::thread::scope(|s| {
///     s.spawn(|| ready.set()); // e.g. a worker process announcing it is ready
///     ready.wait();
/// });
/// assert!(ready.is_set());
/// # Ok::<(), mproc::sync::CreateError>(())
/// ```
#[derive(Clone)]
pub struct Event {
    shared: Arc<Shared<EventHeader>>,
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("is_set", &self.is_set())
            .finish()
    }
}

impl Event {
    /// A new event, not set.
    ///
    /// # Errors
    ///
    /// [`CreateError`] when the system refuses the shared memory.
    ///
    /// # Examples
    ///
    /// ```
    /// let e = mproc::sync::Event::new()?;
    /// assert!(!e.is_set());
    /// # Ok::<(), mproc::sync::CreateError>(())
    /// ```
    pub fn new() -> Result<Event, CreateError> {
        let shared = Shared::<EventHeader>::create(c"mproc-event", TAIL, |h, _, _| {
            h.magic.store(EVENT_MAGIC, Ordering::Release);
            Ok(())
        })
        .map_err(|e| CreateError::new("event", e))?;
        Ok(Event {
            shared: Arc::new(shared),
        })
    }

    #[inline]
    fn word(&self) -> &std::sync::atomic::AtomicU32 {
        &self.shared.header().word
    }

    /// The futex word (for `wait_async`).
    #[cfg(feature = "tokio")]
    pub(crate) fn shared_word(&self) -> &std::sync::atomic::AtomicU32 {
        self.word()
    }

    /// Whether the flag is raised.
    ///
    /// # Examples
    ///
    /// ```
    /// let e = mproc::sync::Event::new()?;
    /// e.set();
    /// assert!(e.is_set());
    /// # Ok::<(), mproc::sync::CreateError>(())
    /// ```
    #[inline]
    pub fn is_set(&self) -> bool {
        self.word().load(Ordering::Acquire) & SET != 0
    }

    /// Raises the flag and wakes every waiter. No effect when it is raised already.
    ///
    /// # Examples
    ///
    /// ```
    /// let e = mproc::sync::Event::new()?;
    /// e.set();
    /// e.set();
    /// assert!(e.is_set());
    /// # Ok::<(), mproc::sync::CreateError>(())
    /// ```
    #[inline]
    pub fn set(&self) {
        if raise_woke(self.word()) {
            if let Some(w) = self.async_waiters() {
                w.table().wake(0);
            }
        }
    }

    /// The table of async waiters in the tail (`None` only for a region too small,
    /// which `open` refuses).
    pub(crate) fn async_waiters(&self) -> Option<&AsyncWaiters> {
        self.shared
            .tail_slots::<AsyncWaiters>(1)
            .and_then(|s| s.first())
    }

    /// Lowers the flag. Waiters that were woken by an earlier [`set`](Event::set)
    /// still return `true`.
    ///
    /// # Examples
    ///
    /// ```
    /// let e = mproc::sync::Event::new()?;
    /// e.set();
    /// e.clear();
    /// assert!(!e.is_set());
    /// # Ok::<(), mproc::sync::CreateError>(())
    /// ```
    #[inline]
    pub fn clear(&self) {
        lower(self.word());
    }

    /// Waits until the flag is raised (Python's `wait()`, which then returns
    /// `True`).
    ///
    /// # Examples
    ///
    /// ```
    /// let e = mproc::sync::Event::new()?;
    /// std::thread::scope(|s| {
    ///     s.spawn(|| e.set());
    ///     e.wait();
    /// });
    /// assert!(e.is_set());
    /// # Ok::<(), mproc::sync::CreateError>(())
    /// ```
    pub fn wait(&self) {
        self.wait_until(None);
    }

    /// Waits until the flag is raised or `timeout` passes. Returns `true` when it
    /// was raised (even if cleared again since), `false` on timeout (Python's
    /// `wait(timeout)`).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let e = mproc::sync::Event::new()?;
    /// assert!(!e.wait_timeout(Duration::from_millis(5)));
    /// e.set();
    /// assert!(e.wait_timeout(Duration::from_millis(5)));
    /// # Ok::<(), mproc::sync::CreateError>(())
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_until(crate::deadline::after(timeout))
    }

    /// Waits until the flag is raised or `deadline` passes; as
    /// [`wait_timeout`](Event::wait_timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    ///
    /// let e = mproc::sync::Event::new()?;
    /// assert!(!e.wait_deadline(Instant::now() + Duration::from_millis(5)));
    /// # Ok::<(), mproc::sync::CreateError>(())
    /// ```
    pub fn wait_deadline(&self, deadline: Instant) -> bool {
        self.wait_until(Some(deadline))
    }

    #[inline]
    fn wait_until(&self, deadline: Option<Instant>) -> bool {
        wait_raised(self.word(), deadline)
    }
}

/// Raises the flag in `word` and wakes every sleeper ([`Event::set`]).
#[cfg(all(test, loom))]
#[inline]
pub(crate) fn raise<W: FutexWord>(word: &W) {
    raise_woke(word);
}

/// As [`raise`]; whether waiters were registered (and were woken).
#[inline]
pub(crate) fn raise_woke<W: FutexWord>(word: &W) -> bool {
    let mut cur = word.load(Ordering::Relaxed);
    loop {
        if cur & SET != 0 {
            return false; // already raised: nothing to publish, nobody to wake
        }
        let new = (cur & GEN_MASK).wrapping_add(GEN_ONE) | SET;
        match word.compare_exchange_weak(cur, new, Ordering::AcqRel, Ordering::Relaxed) {
            Ok(_) => break,
            Err(now) => cur = now,
        }
    }
    if cur & WAITERS != 0 {
        word.wake(u32::MAX);
        return true;
    }
    false
}

/// Lowers the flag in `word` ([`Event::clear`]).
#[inline]
pub(crate) fn lower<W: FutexWord>(word: &W) {
    if word.load(Ordering::Relaxed) & SET != 0 {
        word.fetch_and(!SET, Ordering::AcqRel);
    }
}

/// Waits until the flag in `word` is raised, or has been raised since the wait
/// began, or `deadline` passes ([`Event::wait_deadline`]).
#[inline]
pub(crate) fn wait_raised<W: FutexWord>(word: &W, deadline: Option<Instant>) -> bool {
    let start = word.load(Ordering::Acquire);
    if start & SET != 0 {
        return true;
    }
    wait_raised_slow(word, start & GEN_MASK, deadline)
}

#[cold]
fn wait_raised_slow<W: FutexWord>(word: &W, generation: u32, deadline: Option<Instant>) -> bool {
    let done = |w: u32| w & SET != 0 || w & GEN_MASK != generation;
    if word.spin_until(deadline, || done(word.load(Ordering::Acquire))) {
        return true;
    }
    loop {
        let mut cur = word.load(Ordering::Acquire);
        if done(cur) {
            return true;
        }
        if cur & WAITERS == 0 {
            match word.compare_exchange(cur, cur | WAITERS, Ordering::Acquire, Ordering::Acquire) {
                Ok(_) => cur |= WAITERS,
                Err(_) => continue,
            }
        }
        if word.sleep(cur, deadline) == Sleep::TimedOut {
            return done(word.load(Ordering::Acquire));
        }
    }
}

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        RegionOut::new(self.shared.region()).serialize(s)
    }
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let shared =
            RegionIn::deserialize(d)?.into_shared::<EventHeader, D::Error>(|_| Ok(TAIL))?;
        if shared.header().magic.load(Ordering::Acquire) != EVENT_MAGIC {
            return Err(serde::de::Error::custom(
                "received descriptor is not an mproc event",
            ));
        }
        Ok(Event {
            shared: Arc::new(shared),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sleeping_waiter_is_woken_by_a_set_followed_by_a_clear() {
        let e = Event::new().unwrap();
        std::thread::scope(|s| {
            let waiter = s.spawn(|| e.wait_timeout(Duration::from_secs(20)));
            // Until the waiter has announced that it sleeps (past its spin).
            let end = Instant::now() + Duration::from_secs(20);
            while e.word().load(Ordering::Acquire) & WAITERS == 0 && Instant::now() < end {
                std::thread::yield_now();
            }
            assert_ne!(e.word().load(Ordering::Acquire) & WAITERS, 0);
            e.set();
            e.clear();
            assert!(waiter.join().unwrap(), "the waiter missed the set");
        });
        // The set cleared the waiters bit; the generation moved on.
        assert_eq!(e.word().load(Ordering::Acquire), GEN_ONE);
    }
}
