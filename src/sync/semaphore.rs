//! `Semaphore` and `BoundedSemaphore`: counters of permits, one generic type
//! ([`CountingSemaphore`]) over the raw semaphore, whose kind fixes the bound.
//!
//! The count is the futex word. An acquirer takes a permit with a compare-exchange;
//! when there is none, it spins briefly, then announces itself in `sleepers` and
//! sleeps while the count is 0. A releaser adds to the count and wakes as many
//! sleepers as it added permits, making the system call only when `sleepers` says
//! someone may be asleep. (Each side writes its word, then a sequentially
//! consistent fence, then reads the other's word, so one of them always sees the
//! other: no lost wake-up. Checked by the loom models in `tests/loom_semaphore.rs`.)

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::error::{CreateError, ReleaseError};
use super::raw::{Outcome, RawLock, Wait};
use super::wait::{self, FutexWord, Sleep};
use crate::shm::handle::{RegionIn, RegionOut};
use crate::shm::raw::{AsyncWaiters, SemaphoreHeader, Shared};

/// The tail of a semaphore's region: its table of async waiters.
const TAIL: usize = size_of::<AsyncWaiters>();

/// The largest count a semaphore can hold.
pub const SEMAPHORE_MAX: u32 = i32::MAX as u32;

#[derive(Clone)]
struct Core {
    shared: Arc<Shared<SemaphoreHeader>>,
    /// Our private copy of the bound (`SEMAPHORE_MAX` for a plain semaphore).
    bound: u32,
}

impl Core {
    fn new(value: u32, bound: u32, magic: u64, what: &'static str) -> Result<Core, CreateError> {
        if value > SEMAPHORE_MAX {
            return Err(CreateError::new(
                what,
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("initial value {value} exceeds the maximum of {SEMAPHORE_MAX}"),
                ),
            ));
        }
        let shared = Shared::<SemaphoreHeader>::create(c"mproc-semaphore", TAIL, |h, _, _| {
            h.count.store(value, Ordering::Relaxed);
            h.bound.store(bound, Ordering::Relaxed);
            h.magic.store(magic, Ordering::Release);
            Ok(())
        })
        .map_err(|e| CreateError::new(what, e))?;
        Ok(Core {
            shared: Arc::new(shared),
            bound,
        })
    }

    #[inline]
    fn count(&self) -> &AtomicU32 {
        &self.shared.header().count
    }

    /// Adds `n` permits, failing (and adding none) when that would exceed the bound.
    fn give(&self, n: u32) -> Result<(), u32> {
        let sleepers = &self.shared.header().sleepers;
        give(self.count(), sleepers, self.bound, n)?;
        // Async waiters count among the sleepers too (`acquire_async`): when any
        // may sleep, signal the table's too (it checks its own count first).
        if sleepers.load(Ordering::SeqCst) > 0 {
            if let Some(w) = self.async_waiters() {
                w.table().wake(0);
            }
        }
        Ok(())
    }

    /// The table of async waiters in the tail.
    fn async_waiters(&self) -> Option<&AsyncWaiters> {
        self.shared
            .tail_slots::<AsyncWaiters>(1)
            .and_then(|s| s.first())
    }

    fn value(&self) -> u32 {
        self.count().load(Ordering::Relaxed)
    }
}

/// The raw semaphore: acquiring takes a permit, releasing gives one back.
impl RawLock for Core {
    #[inline]
    fn acquire(&self, wait: Wait) -> Outcome {
        let count = self.count();
        let took = match wait {
            Wait::No => try_take(count),
            Wait::Until(deadline) => take_until(count, &self.shared.header().sleepers, deadline),
        };
        match (took, wait) {
            (true, _) => Outcome::Locked,
            (false, Wait::No) => Outcome::WouldBlock,
            (false, Wait::Until(_)) => Outcome::TimedOut,
        }
    }

    fn release(&self) {
        // For a bounded semaphore this fails only if someone released a permit
        // they never acquired while this one was out; that release already took
        // our slot, and there is nobody to report to from a drop.
        let _ = self.give(1);
    }
}

/// Takes a permit from `count` if there is one.
#[inline]
pub(crate) fn try_take<W: FutexWord>(count: &W) -> bool {
    let mut cur = count.load(Ordering::Relaxed);
    while cur > 0 {
        match count.compare_exchange_weak(cur, cur - 1, Ordering::SeqCst, Ordering::Relaxed) {
            Ok(_) => return true,
            Err(now) => cur = now,
        }
    }
    false
}

/// Takes a permit from `count`, waiting until `deadline` for one; `sleepers`
/// counts the waiters that may be asleep on `count`.
pub(crate) fn take_until<W: FutexWord>(count: &W, sleepers: &W, deadline: Option<Instant>) -> bool {
    if try_take(count) {
        return true;
    }
    if count.spin_until(deadline, || {
        count.load(Ordering::Relaxed) > 0 && try_take(count)
    }) {
        return true;
    }
    loop {
        sleepers.fetch_add(1, Ordering::SeqCst);
        count.fence();
        let r = if count.load(Ordering::SeqCst) == 0 {
            count.sleep(0, deadline)
        } else {
            Sleep::Woken
        };
        sleepers.fetch_sub(1, Ordering::SeqCst);
        if try_take(count) {
            return true;
        }
        if r == Sleep::TimedOut || wait::expired(deadline) {
            return false;
        }
    }
}

/// Adds `n` permits to `count`, failing (and adding none) with the count when that
/// would exceed `bound`; wakes up to `n` sleepers when `sleepers` says there may be
/// any.
pub(crate) fn give<W: FutexWord>(count: &W, sleepers: &W, bound: u32, n: u32) -> Result<(), u32> {
    let mut cur = count.load(Ordering::Relaxed);
    loop {
        let new = match cur.checked_add(n) {
            Some(v) if v <= bound => v,
            _ => return Err(cur),
        };
        match count.compare_exchange_weak(cur, new, Ordering::SeqCst, Ordering::Relaxed) {
            Ok(_) => break,
            Err(now) => cur = now,
        }
    }
    count.fence();
    if sleepers.load(Ordering::SeqCst) > 0 {
        count.wake(n);
    }
    Ok(())
}

mod sealed {
    /// What a kind of semaphore fixes; not nameable outside the crate.
    pub trait Kind: 'static {
        /// The tag in shared memory that tells a received semaphore's kind.
        const MAGIC: u64;
        /// How errors name it.
        const WHAT: &'static str;
    }
}

/// The kind of a [`CountingSemaphore`]: [`Unbounded`] ([`Semaphore`]) or
/// [`Bounded`] ([`BoundedSemaphore`]). Sealed: there are exactly these two.
pub trait SemaphoreKind: sealed::Kind {}

/// The kind of a [`Semaphore`]: released up to [`SEMAPHORE_MAX`].
#[derive(Debug)]
pub enum Unbounded {}

/// The kind of a [`BoundedSemaphore`]: never released above its initial value.
#[derive(Debug)]
pub enum Bounded {}

impl sealed::Kind for Unbounded {
    const MAGIC: u64 = u64::from_le_bytes(*b"mprocSE\x01");
    const WHAT: &'static str = "semaphore";
}
impl SemaphoreKind for Unbounded {}

impl sealed::Kind for Bounded {
    const MAGIC: u64 = u64::from_le_bytes(*b"mprocBS\x01");
    const WHAT: &'static str = "bounded semaphore";
}
impl SemaphoreKind for Bounded {}

/// A semaphore shared between processes: [`Semaphore`] or [`BoundedSemaphore`],
/// by its kind `K`. Use those names; this type carries the methods both share
/// (see each alias for what differs).
///
/// A handle: clone it, or pass it to a child as a task argument; every copy is the
/// same semaphore.
pub struct CountingSemaphore<K: SemaphoreKind> {
    core: Core,
    _kind: PhantomData<fn() -> K>,
}

impl<K: SemaphoreKind> Clone for CountingSemaphore<K> {
    fn clone(&self) -> Self {
        CountingSemaphore {
            core: self.core.clone(),
            _kind: PhantomData,
        }
    }
}

impl<K: SemaphoreKind> CountingSemaphore<K> {
    fn with_bound(value: u32, bound: u32) -> Result<Self, CreateError> {
        Ok(CountingSemaphore {
            core: Core::new(value, bound, K::MAGIC, K::WHAT)?,
            _kind: PhantomData,
        })
    }

    #[inline]
    fn guard_if(&self, outcome: Outcome) -> Option<SemaphoreGuard<'_>> {
        (outcome == Outcome::Locked).then(|| SemaphoreGuard { core: &self.core })
    }

    /// Takes a permit, waiting as long as it takes.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = mproc::sync::Semaphore::new(1)?;
    /// let permit = s.acquire();
    /// assert_eq!(s.value(), 0);
    /// drop(permit);
    /// assert_eq!(s.value(), 1);
    /// # Ok::<(), mproc::sync::CreateError>(())
    /// ```
    pub fn acquire(&self) -> SemaphoreGuard<'_> {
        let outcome = self.core.acquire(Wait::Until(None));
        debug_assert_eq!(outcome, Outcome::Locked, "waited without deadline");
        SemaphoreGuard { core: &self.core }
    }

    /// Takes a permit, as [`acquire`](Self::acquire) does, without blocking the
    /// thread: a permit that is there is taken at once; otherwise the task sleeps
    /// until a release, in any process, wakes it through the runtime's reactor.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime with I/O and time enabled (only when it has to wait).
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: a permit is taken only by the attempt that returns the guard,
    /// which does not await; an `acquire_async` dropped while it waits holds none.
    ///
    /// # Examples
    ///
    /// ```
    /// # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    /// # rt.block_on(async {
    /// use mproc::process::Process;
    /// use mproc::sync::Semaphore;
    ///
    /// let s = Semaphore::new(0)?;
    /// let child = Process::start(|s: Semaphore| s.release(), s.clone())?;
    /// let permit = s.acquire_async().await;
    /// assert_eq!(s.value(), 0);
    /// drop(permit);
    /// assert_eq!(s.value(), 1);
    /// child.join_async().await?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "tokio")]
    pub async fn acquire_async(&self) -> SemaphoreGuard<'_> {
        if let Some(g) = self.try_acquire() {
            return g;
        }
        let Some(waiters) = self.core.async_waiters() else {
            // Cannot happen (a region without the table is refused when opened).
            loop {
                tokio::time::sleep(crate::aio::registry::POLL).await;
                if let Some(g) = self.try_acquire() {
                    return g;
                }
            }
        };
        let table = waiters.table();
        let reg = crate::aio::registry::Registration::new(&table, 0);
        // Counted among the sleepers (after the slot, both `SeqCst`), so that a
        // release looks at the table; uncounted when done or dropped.
        struct Sleeper<'a>(&'a AtomicU32);
        impl Drop for Sleeper<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        let sleepers = &self.core.shared.header().sleepers;
        sleepers.fetch_add(1, Ordering::SeqCst);
        let _sleeper = Sleeper(sleepers);
        loop {
            reg.drain();
            std::sync::atomic::fence(Ordering::SeqCst);
            if let Some(g) = self.try_acquire() {
                return g;
            }
            reg.sleep().await;
        }
    }

    /// Takes a permit if one is available now (Python's `acquire(False)`).
    ///
    /// # Examples
    ///
    /// ```
    /// let s = mproc::sync::Semaphore::new(0)?;
    /// assert!(s.try_acquire().is_none());
    /// # Ok::<(), mproc::sync::CreateError>(())
    /// ```
    pub fn try_acquire(&self) -> Option<SemaphoreGuard<'_>> {
        self.guard_if(self.core.acquire(Wait::No))
    }

    /// Takes a permit, waiting at most `timeout`; `None` on timeout.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let s = mproc::sync::Semaphore::new(0)?;
    /// assert!(s.acquire_timeout(Duration::from_millis(5)).is_none());
    /// s.release();
    /// assert!(s.acquire_timeout(Duration::from_millis(5)).is_some());
    /// # Ok::<(), mproc::sync::CreateError>(())
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<SemaphoreGuard<'_>> {
        self.guard_if(
            self.core
                .acquire(Wait::Until(crate::deadline::after(timeout))),
        )
    }

    /// Takes a permit, waiting until `deadline` at the latest; `None` on timeout.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    ///
    /// let s = mproc::sync::Semaphore::new(1)?;
    /// assert!(s.acquire_deadline(Instant::now() + Duration::from_secs(1)).is_some());
    /// # Ok::<(), mproc::sync::CreateError>(())
    /// ```
    pub fn acquire_deadline(&self, deadline: Instant) -> Option<SemaphoreGuard<'_>> {
        self.guard_if(self.core.acquire(Wait::Until(Some(deadline))))
    }

    /// The number of permits available now (a snapshot; Python's `get_value()`,
    /// which here works on every platform).
    ///
    /// # Examples
    ///
    /// ```
    /// let s = mproc::sync::Semaphore::new(4)?;
    /// assert_eq!(s.value(), 4);
    /// # Ok::<(), mproc::sync::CreateError>(())
    /// ```
    #[doc(alias = "get_value")]
    pub fn value(&self) -> u32 {
        self.core.value()
    }
}

impl<K: SemaphoreKind> Serialize for CountingSemaphore<K> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        RegionOut::new(self.core.shared.region()).serialize(s)
    }
}

impl<'de, K: SemaphoreKind> Deserialize<'de> for CountingSemaphore<K> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let shared =
            RegionIn::deserialize(d)?.into_shared::<SemaphoreHeader, D::Error>(|_| Ok(TAIL))?;
        let h = shared.header();
        let bound = h.bound.load(Ordering::Relaxed);
        if h.magic.load(Ordering::Acquire) != K::MAGIC || bound == 0 || bound > SEMAPHORE_MAX {
            return Err(serde::de::Error::custom(format!(
                "received descriptor is not an mproc {}",
                K::WHAT
            )));
        }
        Ok(CountingSemaphore {
            core: Core {
                shared: Arc::new(shared),
                bound,
            },
            _kind: PhantomData,
        })
    }
}

/// A counting semaphore shared between processes (Python's
/// `multiprocessing.Semaphore`).
///
/// [`acquire`](Semaphore::acquire) takes a permit, waiting while there is none,
/// and returns a [`SemaphoreGuard`] that gives it back when dropped.
/// [`release`](Semaphore::release) adds a permit by hand: a semaphore has no owner,
/// so any process may release (for example, a consumer releasing what a producer
/// acquired); use [`SemaphoreGuard::forget`] to keep a permit taken.
///
/// # Holder death
///
/// A semaphore does not know who holds its permits, so a process killed while
/// holding one never gives it back: the count stays one lower for good. This is
/// Python's behaviour too. Size the semaphore with that in mind, wait with
/// [`acquire_timeout`](Semaphore::acquire_timeout), or use a [`Lock`](super::Lock)
/// (which reports a dead holder) where ownership matters. A process killed while
/// *waiting* takes nothing with it; it only leaves its mark in the count of
/// sleepers, which costs later releases a (harmless) wake-up system call.
///
/// # Examples
///
/// ```
/// use mproc::sync::Semaphore;
///
/// let slots = Semaphore::new(2)?;
/// let a = slots.acquire();
/// let b = slots.acquire();
/// assert!(slots.try_acquire().is_none());
/// drop(a);
/// assert_eq!(slots.value(), 1);
/// # drop(b);
/// # Ok::<(), mproc::sync::CreateError>(())
/// ```
pub type Semaphore = CountingSemaphore<Unbounded>;

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("value", &self.value())
            .finish()
    }
}

impl Semaphore {
    /// A new semaphore holding `value` permits (Python's default is 1).
    ///
    /// # Errors
    ///
    /// [`CreateError`] when `value` exceeds [`SEMAPHORE_MAX`] or the system
    /// refuses the shared memory.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = mproc::sync::Semaphore::new(3)?;
    /// assert_eq!(s.value(), 3);
    /// # Ok::<(), mproc::sync::CreateError>(())
    /// ```
    pub fn new(value: u32) -> Result<Semaphore, CreateError> {
        Semaphore::with_bound(value, SEMAPHORE_MAX)
    }

    /// Adds one permit, waking one waiter.
    ///
    /// # Panics
    ///
    /// When the count would exceed [`SEMAPHORE_MAX`] (Python raises
    /// `OverflowError`).
    ///
    /// # Examples
    ///
    /// ```
    /// let s = mproc::sync::Semaphore::new(0)?;
    /// s.release();
    /// assert_eq!(s.value(), 1);
    /// # Ok::<(), mproc::sync::CreateError>(())
    /// ```
    pub fn release(&self) {
        self.release_n(1)
    }

    /// Adds `n` permits, waking up to `n` waiters (Python's `release(n)`).
    ///
    /// # Panics
    ///
    /// When the count would exceed [`SEMAPHORE_MAX`].
    ///
    /// # Examples
    ///
    /// ```
    /// let s = mproc::sync::Semaphore::new(0)?;
    /// s.release_n(3);
    /// assert_eq!(s.value(), 3);
    /// # Ok::<(), mproc::sync::CreateError>(())
    /// ```
    pub fn release_n(&self, n: u32) {
        if let Err(cur) = self.core.give(n) {
            panic!(
                "semaphore overflow: releasing {n} permits to a count of {cur} exceeds the maximum of {SEMAPHORE_MAX}"
            );
        }
    }
}

/// A semaphore that refuses to be released above its initial value (Python's
/// `multiprocessing.BoundedSemaphore`): an extra release is a bug, reported as a
/// [`ReleaseError`] instead of silently growing the count.
///
/// Holder death is as for [`Semaphore`]: a killed holder's permit is lost.
///
/// # Examples
///
/// ```
/// use mproc::sync::BoundedSemaphore;
///
/// let sem = BoundedSemaphore::new(1)?;
/// sem.acquire().forget();
/// sem.release()?; // gives the permit back
/// assert!(sem.release().is_err()); // one too many
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub type BoundedSemaphore = CountingSemaphore<Bounded>;

impl fmt::Debug for BoundedSemaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundedSemaphore")
            .field("value", &self.value())
            .field("bound", &self.bound())
            .finish()
    }
}

impl BoundedSemaphore {
    /// A new bounded semaphore holding `value` permits, which is also its bound.
    ///
    /// # Errors
    ///
    /// [`CreateError`] when `value` is 0 or exceeds [`SEMAPHORE_MAX`], or the
    /// system refuses the shared memory.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = mproc::sync::BoundedSemaphore::new(2)?;
    /// assert_eq!((s.value(), s.bound()), (2, 2));
    /// # Ok::<(), mproc::sync::CreateError>(())
    /// ```
    pub fn new(value: u32) -> Result<BoundedSemaphore, CreateError> {
        if value == 0 {
            return Err(CreateError::new(
                "bounded semaphore",
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "a bounded semaphore needs a bound of at least 1",
                ),
            ));
        }
        BoundedSemaphore::with_bound(value, value)
    }

    /// Gives back one permit, waking one waiter.
    ///
    /// # Errors
    ///
    /// [`ReleaseError`] when the count is already at the bound (nothing is
    /// added).
    ///
    /// # Examples
    ///
    /// ```
    /// let s = mproc::sync::BoundedSemaphore::new(1)?;
    /// assert!(s.release().is_err());
    /// # Ok::<(), mproc::sync::CreateError>(())
    /// ```
    pub fn release(&self) -> Result<(), ReleaseError> {
        self.core.give(1).map_err(|_| ReleaseError {
            bound: self.core.bound,
            released: 1,
        })
    }

    /// The bound (the initial value).
    ///
    /// # Examples
    ///
    /// ```
    /// let s = mproc::sync::BoundedSemaphore::new(3)?;
    /// assert_eq!(s.bound(), 3);
    /// # Ok::<(), mproc::sync::CreateError>(())
    /// ```
    pub fn bound(&self) -> u32 {
        self.core.bound
    }
}

/// A permit of a [`Semaphore`] or [`BoundedSemaphore`]; given back when dropped.
///
/// `Send`: a semaphore has no owner, so the permit may be given back from any
/// thread.
#[must_use = "the permit is given back as soon as the guard is dropped"]
pub struct SemaphoreGuard<'a> {
    core: &'a Core,
}

impl SemaphoreGuard<'_> {
    /// Keeps the permit taken: nothing is given back on drop. Someone calls
    /// `release` for it later (Python's plain `acquire()`).
    ///
    /// # Examples
    ///
    /// ```
    /// let s = mproc::sync::Semaphore::new(1)?;
    /// s.acquire().forget();
    /// assert_eq!(s.value(), 0);
    /// s.release();
    /// assert_eq!(s.value(), 1);
    /// # Ok::<(), mproc::sync::CreateError>(())
    /// ```
    pub fn forget(self) {
        std::mem::forget(self);
    }
}

impl Drop for SemaphoreGuard<'_> {
    fn drop(&mut self) {
        self.core.release();
    }
}

impl fmt::Debug for SemaphoreGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphoreGuard").finish_non_exhaustive()
    }
}
