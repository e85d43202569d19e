//! The queue core behind [`Queue`](super::Queue) and [`LifoQueue`](super::LifoQueue):
//! one mutex over the items and the counters, three condition variables (not
//! empty, not full, all tasks done), as in CPython's `queue.py`.
//!
//! The [`PriorityQueue`](super::PriorityQueue) has its own core,
//! [`staged`](super::staged), where putters stage items under a lock of their own
//! and a get takes them over in batches: a heap operation is slow enough that a
//! hand-off of the lock per item dominated it. A push onto a `VecDeque` or a `Vec`
//! is not, and for them one lock is faster: measured with the `threading` bench
//! area (FIFO and LIFO rows), the staged core made them about a fifth slower.
//!
//! Waiters are counted under the lock, and a condition variable is signalled only
//! when someone waits on it: an uncontended put or get takes the lock once and makes
//! no system call (std's `Condvar::notify_one` always enters the kernel). Nor is a
//! waiter signalled twice: the signals sent and not yet taken up are counted too,
//! and a put (get) signals only while more getters (putters) sleep than were
//! signalled. A consumer that takes item after item from a full queue while the
//! producer it woke has not run yet (a loaded machine) then makes one system call,
//! not one per item.
//!
//! A get that finds the queue empty (or a put that finds it full) first spins
//! briefly outside the lock, watching a relaxed copy of the length, before it
//! sleeps on the condition variable (the crate's spin-then-sleep budget,
//! `crate::sync::wait::spin_until`): a hand-off between two running threads then
//! costs no wake-up system call on either side.
//!
//! The mutex is parking_lot's: a contended lock spins briefly before it parks, so
//! a producer and a consumer taking turns on it rarely sleep (std's parks at once).

use parking_lot::{Condvar, Mutex, MutexGuard};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use super::order::Order;
use super::sleepers::{Sleeper, Sleepers};
use super::staged::{Fail, Wait};

struct State<O> {
    items: O,
    /// Items put and not yet matched by a `task_done`.
    unfinished: usize,
    shutdown: bool,
    sleepers: Sleepers,
}

pub(crate) struct Core<O> {
    state: Mutex<State<O>>,
    not_empty: Condvar,
    not_full: Condvar,
    all_done: Condvar,
    /// 0: unbounded.
    maxsize: usize,
    /// Copies of the length and the shutdown flag, written under the lock and read
    /// without it by spinning waiters (a hint: they recheck under the lock).
    len_hint: AtomicUsize,
    shutdown_hint: AtomicBool,
}

impl<O: Order> Core<O> {
    pub(crate) fn new(maxsize: usize) -> Core<O> {
        Core {
            state: Mutex::new(State {
                items: O::default(),
                unfinished: 0,
                shutdown: false,
                sleepers: Sleepers::default(),
            }),
            not_empty: Condvar::new(),
            not_full: Condvar::new(),
            all_done: Condvar::new(),
            maxsize,
            len_hint: AtomicUsize::new(0),
            shutdown_hint: AtomicBool::new(false),
        }
    }

    #[inline]
    fn lock(&self) -> MutexGuard<'_, State<O>> {
        self.state.lock()
    }

    /// Sleeps once on `cv`, counted in the waiter count `who` picks, unless `wait`
    /// allows no (more) waiting: then `None`. The caller rechecks its condition after
    /// every wake-up and asks again, so the condition is always checked before the
    /// deadline: a waiter that was signalled just as its time ran out still takes
    /// what it was signalled for.
    ///
    /// The first time (`*spun == false`) it spins outside the lock instead, until
    /// `ready` holds or the spin budget is spent, and comes back locked.
    fn block<'a>(
        &'a self,
        cv: &Condvar,
        mut st: MutexGuard<'a, State<O>>,
        wait: Wait,
        who: Sleeper,
        spun: &mut bool,
        ready: fn(&Self) -> bool,
    ) -> Option<MutexGuard<'a, State<O>>> {
        if !*spun {
            let deadline = match wait {
                Wait::Never => return None,
                Wait::Forever => None,
                Wait::Until(d) => Some(d),
            };
            *spun = true;
            drop(st);
            crate::sync::wait::spin_until(deadline, || ready(self));
            return Some(self.lock());
        }
        st.sleepers.enter(who);
        let mut st = match wait {
            Wait::Never => {
                st.sleepers.cancel(who);
                return None;
            }
            Wait::Forever => {
                cv.wait(&mut st);
                st
            }
            Wait::Until(deadline) => {
                let now = Instant::now();
                if now >= deadline {
                    st.sleepers.cancel(who);
                    return None;
                }
                cv.wait_until(&mut st, deadline);
                st
            }
        };
        st.sleepers.leave(who);
        Some(st)
    }

    #[inline]
    fn has_room(&self, st: &State<O>) -> bool {
        self.maxsize == 0 || st.items.len() < self.maxsize
    }

    /// Spin condition of a waiting get.
    fn may_get(&self) -> bool {
        self.len_hint.load(Ordering::Relaxed) > 0 || self.shutdown_hint.load(Ordering::Relaxed)
    }

    /// Spin condition of a waiting put.
    fn may_put(&self) -> bool {
        self.len_hint.load(Ordering::Relaxed) < self.maxsize
            || self.shutdown_hint.load(Ordering::Relaxed)
    }

    /// Spin condition of a waiting join: never spins (tasks take long).
    fn no_spin(&self) -> bool {
        true
    }

    pub(crate) fn maxsize(&self) -> usize {
        self.maxsize
    }

    pub(crate) fn put(&self, item: O::Item, wait: Wait) -> Result<(), (O::Item, Fail)> {
        let mut st = self.lock();
        let mut spun = false;
        loop {
            if st.shutdown {
                return Err((item, Fail::ShutDown));
            }
            if self.has_room(&st) {
                break;
            }
            st = match self.block(
                &self.not_full,
                st,
                wait,
                Sleeper::Putter,
                &mut spun,
                Self::may_put,
            ) {
                Some(st) => st,
                None => return Err((item, Fail::NotNow)),
            };
        }
        // Counted before the push: should `Ord::cmp` panic inside it, the item is in
        // the heap all the same, and the count matches.
        st.unfinished += 1;
        st.items.push(item);
        self.len_hint.store(st.items.len(), Ordering::Relaxed);
        let wake = st.sleepers.signal_getter();
        drop(st);
        if wake {
            self.not_empty.notify_one();
        }
        Ok(())
    }

    pub(crate) fn get(&self, wait: Wait) -> Result<O::Item, Fail> {
        let mut st = self.lock();
        let mut spun = false;
        loop {
            if let Some(item) = st.items.pop() {
                self.len_hint.store(st.items.len(), Ordering::Relaxed);
                let wake = st.sleepers.signal_putter();
                drop(st);
                if wake {
                    self.not_full.notify_one();
                }
                return Ok(item);
            }
            if st.shutdown {
                return Err(Fail::ShutDown);
            }
            st = match self.block(
                &self.not_empty,
                st,
                wait,
                Sleeper::Getter,
                &mut spun,
                Self::may_get,
            ) {
                Some(st) => st,
                None => return Err(Fail::NotNow),
            };
        }
    }

    /// `Err(())` when no task is unfinished.
    pub(crate) fn task_done(&self) -> Result<(), ()> {
        let mut st = self.lock();
        if st.unfinished == 0 {
            return Err(());
        }
        st.unfinished -= 1;
        let wake = st.unfinished == 0 && st.sleepers.joiners > 0;
        drop(st);
        if wake {
            self.all_done.notify_all();
        }
        Ok(())
    }

    /// `Err(unfinished)` when the wait ended first.
    pub(crate) fn join(&self, wait: Wait) -> Result<(), usize> {
        let mut st = self.lock();
        let mut spun = true;
        while st.unfinished > 0 {
            let unfinished = st.unfinished;
            st = match self.block(
                &self.all_done,
                st,
                wait,
                Sleeper::Joiner,
                &mut spun,
                Self::no_spin,
            ) {
                Some(st) => st,
                None => return Err(unfinished),
            };
        }
        Ok(())
    }

    /// Python 3.13's `shutdown(immediate)`; returns what an immediate shutdown took
    /// out of the queue, in the order gets would have returned it.
    pub(crate) fn shutdown(&self, immediate: bool) -> Vec<O::Item> {
        let mut st = self.lock();
        st.shutdown = true;
        self.shutdown_hint.store(true, Ordering::Relaxed);
        let mut removed = Vec::new();
        if immediate {
            removed.reserve(st.items.len());
            while let Some(item) = st.items.pop() {
                removed.push(item);
                // Python: `if self.unfinished_tasks > 0: self.unfinished_tasks -= 1`.
                st.unfinished = st.unfinished.saturating_sub(1);
            }
            self.len_hint.store(0, Ordering::Relaxed);
        }
        let (getters, putters, joiners) = st.sleepers.signal_all();
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
        self.lock().shutdown
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().items.len()
    }

    pub(crate) fn is_full(&self) -> bool {
        !self.has_room(&self.lock())
    }

    pub(crate) fn unfinished(&self) -> usize {
        self.lock().unfinished
    }
}
