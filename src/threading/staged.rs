//! The queue core behind [`PriorityQueue`](super::PriorityQueue) (the FIFO and
//! LIFO queues use [`locked`](super::locked), one lock, faster for them: see
//! there).
//!
//! # Two sides, two locks
//!
//! Putters and getters do not share a lock per item. A put appends its item to a
//! *staging* buffer (a `VecDeque` under its own small mutex, taken for a few
//! nanoseconds) and returns. The ordered items (a binary heap, a stack or a FIFO)
//! live under the *main* lock, which only getters take on their fast path: a get
//! takes the main lock, takes over the whole staging buffer in one swap when it is
//! not empty (the two buffers trade places, so no allocation in the steady state),
//! merges it into the ordered items and pops. So the hand-off between a producer's
//! CPU and a consumer's is paid once per batch, not once per item, and the heap's
//! cache lines stay with the getters.
//!
//! Order is Python's: a get sees every put that returned before it (the put count
//! is published under the staging lock, and a get that finds it moved takes the
//! buffer over), so it returns the best of all completed puts. The staging buffer
//! keeps put order, and items are merged in that order, so equal items of a
//! `PriorityQueue` still come out in put order (the heap numbers them as they
//! arrive).
//!
//! # Counting
//!
//! The length is `put - out`: `put` counts items ever put (under the staging lock),
//! `out` those that left by a get or an immediate shutdown (under the main lock);
//! `unfinished` is `put - finished`. A bounded put checks for room under the
//! staging lock against a *published* copy of `out` that getters refresh every
//! [`Core::publish_every`] gets (and whenever a putter sleeps): refreshing it on
//! every get would move its cache line to the putters on every item. The copy
//! lags behind, never ahead, so a fast put never overfills the queue; a put that
//! finds the queue full by the copy asks the main lock for the exact count before
//! it reports `Full` (`try_put`) or sleeps, so `try_put` fails only on a queue that
//! is really full, as in Python.
//!
//! # Waiting without lost wake-ups
//!
//! Sleepers sleep on condition variables of the main lock, counted under it, and
//! a sleeper is signalled once, not on every op: the signals sent and not yet taken
//! up are counted too, and a put (get) signals only while more getters (putters)
//! sleep than were signalled.
//!
//! A getter about to sleep announces itself (an atomic count of sleeping getters
//! not yet signalled) and then looks at the staging buffer once more under the
//! staging lock; a put reads that count under the same lock after it appended its
//! item. Of the two critical sections one comes first: either the getter sees the
//! item, or the put sees the getter and signals it under the main lock (which the
//! getter holds until it is parked on the condition variable). Putters sleep only
//! after an exact check under the main lock, and only gets (under it) make room,
//! so they need no such care.
//!
//! Before it sleeps, a waiter backs off outside the locks ([`backoff_until`]):
//! a brief spin, then yields of its CPU, about 50 µs in all, watching the put count
//! (a getter) or the published `out` (a putter). The peer it waits for is a thread
//! of this process; when the machine has more runnable threads than CPUs, yielding
//! lets that peer run, where a sleep would cost a wake-up system call on each side
//! per batch.
//!
//! # Panics in `Ord`
//!
//! No user code runs under a lock except `Ord::cmp`, when a getter merges the
//! staged items into the heap or pops. A panic there propagates to that get (or
//! immediate shutdown, or a put that found [`MERGE_AT`] items staged and merged
//! them) and leaves the heap valid, the counts consistent and the
//! items not yet merged in the main side's batch, merged by the next get;
//! parking_lot's locks do not poison, so the queue stays usable.

use parking_lot::{Condvar, Mutex, MutexGuard};
use std::collections::VecDeque;
use std::ops::Deref;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::order::Order;
use super::sleepers::{Sleeper, Sleepers};

/// A put that leaves this many items in the staging buffer merges them into the
/// ordered items itself, if the main lock is free: with nobody getting (one thread
/// that puts a lot before it gets) the buffer stays small enough for the caches.
/// Between threads a get takes the buffer over long before.
const MERGE_AT: usize = 256;

/// How long a waiter backs off (spins, then yields) before it sleeps.
const BACKOFF_BUDGET: Duration = Duration::from_micros(50);

/// Rounds of the spin before a waiter yields: round `k` spins `2^k` times.
const SPIN_STEPS: u32 = 6;

/// How many gets may pass before the getters publish their count to the putters,
/// at most: a bounded queue of `maxsize` publishes every `maxsize / 16` gets
/// (capped), so a putter waiting for room finds some room at once.
const PUBLISH_EVERY_MAX: usize = 64;

/// How long an operation may wait.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Wait {
    /// Not at all (`try_*`).
    Never,
    /// Until it can proceed or the queue is shut down.
    Forever,
    /// Until this instant at the latest.
    Until(Instant),
}

impl Wait {
    /// `Until(deadline)`, or `Forever` when there is none.
    pub(crate) fn until(deadline: Option<Instant>) -> Wait {
        deadline.map_or(Wait::Forever, Wait::Until)
    }

    /// The deadline of a wait that may wait; `None` inside `Some` for ever.
    fn deadline(self) -> Option<Option<Instant>> {
        match self {
            Wait::Never => None,
            Wait::Forever => Some(None),
            Wait::Until(d) => Some(Some(d)),
        }
    }
}

/// Why an operation did not complete.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Fail {
    /// Full (put) or empty (get) when the allowed wait ended.
    NotNow,
    /// The queue was shut down (and, for a get, is empty).
    ShutDown,
}

/// A value on cache lines of its own (two lines: adjacent-line prefetch pairs
/// them), so that the putters' writes do not evict the getters' data and back.
#[repr(align(128))]
struct Padded<T>(T);

impl<T> Deref for Padded<T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        &self.0
    }
}

/// The putters' side, under the staging lock.
struct Staging<T> {
    /// Items put and not yet taken over by a getter, in put order.
    items: VecDeque<T>,
    /// Items ever put.
    put: usize,
    shutdown: bool,
}

/// The staging lock with a copy of its put count that getters read without it.
struct PutSide<T> {
    lock: Mutex<Staging<T>>,
    /// `Staging::put`, stored under the staging lock.
    put: AtomicUsize,
}

/// What the getters' side announces to putters (written under the main lock).
struct Announced {
    /// `State::out` as of the last publication: never ahead of it.
    out: AtomicUsize,
    /// Sleeping getters not yet signalled.
    getters_asleep: AtomicUsize,
    shutdown: AtomicBool,
}

/// The getters' side, under the main lock.
struct State<O: Order> {
    items: O,
    /// Items taken over from the staging buffer and not yet merged into `items`:
    /// empty between operations, unless an `Ord` panicked during a merge. Between
    /// take-overs it holds the spare buffer the next take-over trades.
    batch: VecDeque<O::Item>,
    /// Items taken over from the staging buffer so far.
    taken_over: usize,
    /// Items that left the queue: got, or removed by an immediate shutdown.
    out: usize,
    /// `out` as last published in [`Announced::out`].
    published: usize,
    /// Tasks marked done, plus items an immediate shutdown removed (Python counts
    /// those as done).
    finished: usize,
    shutdown: bool,
    sleepers: Sleepers,
}

pub(crate) struct Core<O: Order> {
    state: Padded<Mutex<State<O>>>,
    not_empty: Condvar,
    not_full: Condvar,
    all_done: Condvar,
    staging: Padded<PutSide<O::Item>>,
    announced: Padded<Announced>,
    /// 0: unbounded.
    maxsize: usize,
    /// Gets between two publications of `out` (`usize::MAX`: unbounded, never
    /// needed).
    publish_every: usize,
}

/// How a put went on the fast path.
enum Staged<T> {
    /// Put; `true`: a getter sleeps and may need a signal; then whether the
    /// staging buffer reached [`MERGE_AT`] items.
    Done(bool, bool),
    /// Full as far as the published count tells.
    Full(T),
    ShutDown(T),
}

impl<O: Order> Core<O> {
    pub(crate) fn new(maxsize: usize) -> Core<O> {
        Core {
            state: Padded(Mutex::new(State {
                items: O::default(),
                batch: VecDeque::new(),
                taken_over: 0,
                out: 0,
                published: 0,
                finished: 0,
                shutdown: false,
                sleepers: Sleepers::default(),
            })),
            not_empty: Condvar::new(),
            not_full: Condvar::new(),
            all_done: Condvar::new(),
            staging: Padded(PutSide {
                lock: Mutex::new(Staging {
                    items: VecDeque::new(),
                    put: 0,
                    shutdown: false,
                }),
                put: AtomicUsize::new(0),
            }),
            announced: Padded(Announced {
                out: AtomicUsize::new(0),
                getters_asleep: AtomicUsize::new(0),
                shutdown: AtomicBool::new(false),
            }),
            maxsize,
            publish_every: if maxsize == 0 {
                usize::MAX
            } else {
                (maxsize / 16).clamp(1, PUBLISH_EVERY_MAX)
            },
        }
    }

    #[inline]
    fn lock(&self) -> MutexGuard<'_, State<O>> {
        self.state.lock()
    }

    pub(crate) fn maxsize(&self) -> usize {
        self.maxsize
    }

    /// Tells putters the exact `out`.
    #[inline]
    fn publish(&self, st: &mut State<O>) {
        st.published = st.out;
        self.announced.out.store(st.out, Ordering::Release);
    }

    /// Tells putters how many getters sleep unsignalled.
    #[inline]
    fn announce_getters(&self, st: &State<O>) {
        self.announced
            .getters_asleep
            .store(st.sleepers.getters_unsignalled(), Ordering::Relaxed);
    }

    /// Takes the staged items over and merges them into the ordered items, in put
    /// order. Merging runs `Ord::cmp`; should it panic, the items not yet merged
    /// stay in `st.batch` for the next call.
    #[inline]
    fn take_over(&self, st: &mut State<O>) {
        if st.batch.is_empty() && self.staging.put.load(Ordering::Acquire) == st.taken_over {
            return;
        }
        self.merge(st);
    }

    /// [`take_over`](Self::take_over) when there is something to take over.
    #[inline(never)]
    fn merge(&self, st: &mut State<O>) {
        // What a panicking `Ord` left over was put before anything staged now.
        while let Some(item) = st.batch.pop_front() {
            st.items.push(item);
        }
        if self.staging.put.load(Ordering::Acquire) == st.taken_over {
            return;
        }
        let mut staging = self.staging.lock.lock();
        std::mem::swap(&mut staging.items, &mut st.batch);
        drop(staging);
        st.taken_over += st.batch.len();
        while let Some(item) = st.batch.pop_front() {
            st.items.push(item);
        }
    }

    /// A put's merge of a long staging buffer, unless a get holds the main lock
    /// (and so is at it).
    #[cold]
    fn help_merge(&self) {
        if let Some(mut st) = self.state.try_lock() {
            self.take_over(&mut st);
        }
    }

    /// Sleeps once on `cv`, counted in the waiter count `who` picks, unless `wait`
    /// allows no (more) waiting: then `None`. `recheck` runs once the waiter is
    /// counted, before it sleeps: `true` returns at once (something changed). The
    /// caller rechecks its condition after every wake-up and asks again, so the
    /// condition is always checked before the deadline: a waiter that was
    /// signalled just as its time ran out still takes what it was signalled for.
    fn sleep<'a>(
        &'a self,
        cv: &Condvar,
        mut st: MutexGuard<'a, State<O>>,
        wait: Wait,
        who: Sleeper,
        recheck: impl FnOnce(&Self, &State<O>) -> bool,
    ) -> Option<MutexGuard<'a, State<O>>> {
        let deadline = wait.deadline()?;
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return None;
        }
        st.sleepers.enter(who);
        self.announce_getters(&st);
        if recheck(self, &st) {
            st.sleepers.cancel(who);
            self.announce_getters(&st);
            return Some(st);
        }
        match deadline {
            None => {
                cv.wait(&mut st);
            }
            Some(d) => {
                cv.wait_until(&mut st, d);
            }
        }
        st.sleepers.leave(who);
        self.announce_getters(&st);
        Some(st)
    }

    /// Appends `item` to the staging buffer if the queue has room by the published
    /// count.
    #[inline]
    fn stage(&self, item: O::Item) -> Staged<O::Item> {
        let mut staging = self.staging.lock.lock();
        if staging.shutdown {
            return Staged::ShutDown(item);
        }
        if self.maxsize != 0
            && staging.put - self.announced.out.load(Ordering::Relaxed) >= self.maxsize
        {
            return Staged::Full(item);
        }
        staging.items.push_back(item);
        staging.put += 1;
        self.staging.put.store(staging.put, Ordering::Release);
        // Read under the staging lock: see the module docs on lost wake-ups.
        let asleep = self.announced.getters_asleep.load(Ordering::Relaxed) > 0;
        Staged::Done(asleep, staging.items.len() >= MERGE_AT)
    }

    /// Signals a sleeping getter, if one still needs it.
    #[cold]
    fn wake_getter(&self) {
        let mut st = self.lock();
        let wake = st.sleepers.signal_getter();
        self.announce_getters(&st);
        drop(st);
        if wake {
            self.not_empty.notify_one();
        }
    }

    /// Spin condition of a waiting put: room by the published count.
    fn may_put(&self) -> bool {
        // `out` first: the puts it counts are visible after it (Acquire).
        let out = self.announced.out.load(Ordering::Acquire);
        let put = self.staging.put.load(Ordering::Relaxed);
        self.announced.shutdown.load(Ordering::Relaxed) || put.saturating_sub(out) < self.maxsize
    }

    pub(crate) fn put(&self, item: O::Item, wait: Wait) -> Result<(), (O::Item, Fail)> {
        let mut item = item;
        let mut backed_off = false;
        loop {
            match self.stage(item) {
                Staged::Done(asleep, long) => {
                    if asleep {
                        self.wake_getter();
                    } else if long {
                        // Nobody gets, it seems.
                        self.help_merge();
                    }
                    return Ok(());
                }
                Staged::ShutDown(it) => return Err((it, Fail::ShutDown)),
                Staged::Full(it) => item = it,
            }
            match wait.deadline() {
                Some(deadline) if !backed_off => {
                    backed_off = true;
                    backoff_until(deadline, || self.may_put());
                }
                _ => return self.put_locked(item, wait),
            }
        }
    }

    /// A put into a queue that looked full: checks the exact count under the main
    /// lock, and sleeps there while the queue is full.
    #[cold]
    fn put_locked(&self, item: O::Item, wait: Wait) -> Result<(), (O::Item, Fail)> {
        let mut st = self.lock();
        loop {
            // The exact count, for this put and the fast path of the others.
            self.publish(&mut st);
            let mut staging = self.staging.lock.lock();
            if staging.shutdown {
                return Err((item, Fail::ShutDown));
            }
            if staging.put - st.out < self.maxsize {
                staging.items.push_back(item);
                staging.put += 1;
                self.staging.put.store(staging.put, Ordering::Release);
                drop(staging);
                let wake = st.sleepers.signal_getter();
                self.announce_getters(&st);
                drop(st);
                if wake {
                    self.not_empty.notify_one();
                }
                return Ok(());
            }
            drop(staging);
            st = match self.sleep(&self.not_full, st, wait, Sleeper::Putter, |_, _| false) {
                Some(st) => st,
                None => return Err((item, Fail::NotNow)),
            };
        }
    }

    pub(crate) fn get(&self, wait: Wait) -> Result<O::Item, Fail> {
        let mut st = self.lock();
        let mut backed_off = false;
        loop {
            self.take_over(&mut st);
            if let Some(item) = st.items.pop() {
                st.out += 1;
                let wake = st.sleepers.signal_putter();
                if wake || st.out - st.published >= self.publish_every {
                    self.publish(&mut st);
                }
                drop(st);
                if wake {
                    self.not_full.notify_one();
                }
                return Ok(item);
            }
            if st.shutdown {
                return Err(Fail::ShutDown);
            }
            let deadline = wait.deadline().ok_or(Fail::NotNow)?;
            if !backed_off {
                backed_off = true;
                let seen = st.taken_over;
                drop(st);
                backoff_until(deadline, || {
                    self.staging.put.load(Ordering::Relaxed) != seen
                        || self.announced.shutdown.load(Ordering::Relaxed)
                });
                st = self.lock();
                continue;
            }
            st = self
                .sleep(
                    &self.not_empty,
                    st,
                    wait,
                    Sleeper::Getter,
                    // Announced as asleep: one more look, under the staging lock
                    // (a put that staged before this sees no sleeper).
                    |core, st| core.staging.lock.lock().put != st.taken_over,
                )
                .ok_or(Fail::NotNow)?;
        }
    }

    /// `Err(())` when no task is unfinished.
    pub(crate) fn task_done(&self) -> Result<(), ()> {
        let mut st = self.lock();
        let put = self.staging.put.load(Ordering::Acquire);
        if put == st.finished {
            return Err(());
        }
        st.finished += 1;
        let wake = put == st.finished && st.sleepers.joiners > 0;
        drop(st);
        if wake {
            self.all_done.notify_all();
        }
        Ok(())
    }

    /// `Err(unfinished)` when the wait ended first.
    pub(crate) fn join(&self, wait: Wait) -> Result<(), usize> {
        let mut st = self.lock();
        loop {
            let unfinished = self.staging.put.load(Ordering::Acquire) - st.finished;
            if unfinished == 0 {
                return Ok(());
            }
            st = self
                .sleep(&self.all_done, st, wait, Sleeper::Joiner, |_, _| false)
                .ok_or(unfinished)?;
        }
    }

    /// Python 3.13's `shutdown(immediate)`; returns what an immediate shutdown took
    /// out of the queue, in the order gets would have returned it.
    pub(crate) fn shutdown(&self, immediate: bool) -> Vec<O::Item> {
        let mut st = self.lock();
        self.staging.lock.lock().shutdown = true;
        st.shutdown = true;
        self.announced.shutdown.store(true, Ordering::Release);
        let mut removed = Vec::new();
        if immediate {
            // No put stages any more: this takes over every item put.
            self.take_over(&mut st);
            while let Some(item) = st.items.pop() {
                removed.push(item);
            }
            st.out += removed.len();
            // Python: `if self.unfinished_tasks > 0: self.unfinished_tasks -= 1`
            // for each item removed.
            let unfinished = st.taken_over - st.finished;
            st.finished += removed.len().min(unfinished);
            self.publish(&mut st);
        }
        let (getters, putters, joiners) = st.sleepers.signal_all();
        self.announce_getters(&st);
        drop(st);
        // Every blocked waiter wakes and sees the shutdown: getters (of an empty
        // queue) and putters fail, joiners recheck the count.
        if getters > 0 {
            self.not_empty.notify_all();
        }
        if putters > 0 {
            self.not_full.notify_all();
        }
        if joiners > 0 {
            self.all_done.notify_all();
        }
        removed
    }

    pub(crate) fn is_shutdown(&self) -> bool {
        self.announced.shutdown.load(Ordering::Acquire)
    }

    pub(crate) fn len(&self) -> usize {
        let st = self.lock();
        self.staging.put.load(Ordering::Acquire) - st.out
    }

    pub(crate) fn is_full(&self) -> bool {
        self.maxsize != 0 && self.len() >= self.maxsize
    }

    pub(crate) fn unfinished(&self) -> usize {
        let st = self.lock();
        self.staging.put.load(Ordering::Acquire) - st.finished
    }
}

/// Whether spinning can help: with one CPU the thread waited for cannot run
/// meanwhile (yielding still can).
fn multi_cpu() -> bool {
    static MULTI: OnceLock<bool> = OnceLock::new();
    *MULTI.get_or_init(|| std::thread::available_parallelism().is_ok_and(|n| n.get() > 1))
}

/// Waits for `ready` outside the locks: a brief spin with exponential back-off
/// (as crossbeam's `Backoff`), then yields of the CPU, for about
/// [`BACKOFF_BUDGET`] in all (less if `deadline` comes first). Returns whether
/// `ready` held.
///
/// The thread waited for belongs to this process; on a machine with more runnable
/// threads than CPUs it may be waiting for this very CPU, which a yield hands it,
/// where spinning would keep it out and sleeping would cost a wake-up system call
/// on both sides (the crate's cross-process `spin_until` sleeps at once then).
fn backoff_until(deadline: Option<Instant>, ready: impl Fn() -> bool) -> bool {
    if ready() {
        return true;
    }
    if multi_cpu() {
        for step in 0..=SPIN_STEPS {
            for _ in 0..1u32 << step {
                std::hint::spin_loop();
            }
            if ready() {
                return true;
            }
        }
    }
    let start = Instant::now();
    let mut end = start + BACKOFF_BUDGET;
    if let Some(d) = deadline {
        end = end.min(d);
    }
    loop {
        std::thread::yield_now();
        if ready() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
    }
}
