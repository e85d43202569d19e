//! Synchronisation scenarios: `_TestLock`, `_TestSemaphore`, `_TestEvent`,
//! `_TestCondition` and `_TestBarrier` of `_test_multiprocessing.py`.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use mproc::process::Process;
use mproc::shm::{SharedAtomicU32, Value};
use mproc::sync::{
    Barrier, BoundedSemaphore, BrokenReason, Condition, Event, Lock, LockTimeoutError, RLock,
    Semaphore, TryLockError,
};

use crate::common::{eventually, watchdog};
use crate::{LIMIT, LONG};

// ---- Lock and RLock ------------------------------------------------------------

/// Takes the lock, says so, and holds it until told to let go.
fn hold_lock((lock, held, release): (Lock, Event, Event)) -> bool {
    let g = lock.lock().unwrap();
    held.set();
    let ok = release.wait_timeout(LONG);
    drop(g);
    ok
}

/// Takes the lock, says so, and dies holding it.
fn die_holding((lock, held): (Lock, Event)) {
    let g = lock.lock().unwrap();
    held.set();
    std::mem::forget(g);
    std::process::abort();
}

/// `_TestLock.test_lock`: acquire, a second non-blocking acquire fails (also from
/// the holding thread), release, acquire again.
#[test]
fn test_lock() {
    let lock = Lock::new().unwrap();
    assert!(!lock.is_locked());
    let g = lock.try_lock().unwrap();
    assert!(lock.is_locked());
    assert_eq!(lock.holder_pid(), Some(std::process::id()));
    assert!(matches!(lock.try_lock(), Err(TryLockError::WouldBlock)));
    drop(g);
    assert!(!lock.is_locked());
    drop(lock.lock().unwrap());
}

/// `_TestLock.test_lock` (`acquire(timeout)`): a held lock times out for another
/// thread.
#[test]
fn test_lock_timeout() {
    let _w = watchdog("test_lock_timeout", LIMIT);
    let lock = Lock::new().unwrap();
    let g = lock.lock().unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            let t = Instant::now();
            assert!(matches!(
                lock.lock_timeout(Duration::from_millis(100)),
                Err(LockTimeoutError::Timeout)
            ));
            assert!(t.elapsed() >= Duration::from_millis(100));
        });
    });
    drop(g);
    drop(lock.lock_timeout(Duration::MAX).unwrap());
}

/// `_TestLock.test_lock_context`: the guard releases the lock at the end of its
/// scope, also when the scope is left by a panic.
#[test]
fn test_lock_context() {
    let lock = Lock::new().unwrap();
    {
        let _g = lock.lock().unwrap();
        assert!(lock.is_locked());
    }
    assert!(!lock.is_locked());
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _g = lock.lock().unwrap();
        panic!("inside the critical section");
    }));
    assert!(r.is_err());
    assert!(!lock.is_locked());
}

/// `_TestLock.test_lock_locked_2processes`: a lock held by a child is seen as
/// held by the parent, and free once the child lets go.
#[test]
fn test_lock_locked_2processes() {
    let _w = watchdog("test_lock_locked_2processes", LIMIT);
    let lock = Lock::new().unwrap();
    let (held, release) = (Event::new().unwrap(), Event::new().unwrap());
    let child = Process::start(hold_lock, (lock.clone(), held.clone(), release.clone())).unwrap();
    assert!(held.wait_timeout(LONG));
    assert!(lock.is_locked());
    assert_eq!(lock.holder_pid(), Some(child.pid()));
    assert!(matches!(lock.try_lock(), Err(TryLockError::WouldBlock)));
    release.set();
    assert!(child.join().unwrap());
    drop(lock.lock_timeout(LONG).unwrap());
}

/// `_TestLock.test_lock_locked_2processes` (mutual exclusion): four processes
/// increment a plain shared value under the lock; no update is lost.
#[test]
fn test_lock_mutual_exclusion() {
    let _w = watchdog("test_lock_mutual_exclusion", LIMIT);
    fn bump((lock, v): (Lock, Value<u64>)) {
        for _ in 0..500 {
            let _g = lock.lock().unwrap();
            v.set(v.get() + 1);
        }
    }
    let lock = Lock::new().unwrap();
    let v = Value::new(0u64).unwrap();
    let children: Vec<_> = (0..4)
        .map(|_| Process::start(bump, (lock.clone(), v.clone())).unwrap())
        .collect();
    for c in children {
        c.join().unwrap();
    }
    assert_eq!(v.get(), 2000);
}

/// `_TestLock.test_lock_locked_2processes` with the holder killed (Python
/// deadlocks, cpython #88304): mproc's promise is that the next acquirer gets the
/// lock with `OwnerDied` naming the dead holder, and after `mark_consistent` the
/// lock is normal again.
#[test]
fn test_lock_holder_killed_gives_owner_died() {
    let _w = watchdog("test_lock_holder_killed_gives_owner_died", LIMIT);
    let lock = Lock::new().unwrap();
    let held = Event::new().unwrap();
    let child = Process::start(die_holding, (lock.clone(), held.clone())).unwrap();
    let pid = child.pid();
    assert!(child.join().unwrap_err().is_signaled());
    assert!(held.is_set());
    let died = match lock.lock_timeout(LONG) {
        Err(LockTimeoutError::OwnerDied(d)) => d,
        other => panic!("expected OwnerDied, got {other:?}"),
    };
    assert_eq!(died.pid(), Some(pid));
    let g = died.into_inner();
    g.mark_consistent();
    drop(g);
    assert!(!lock.is_owner_died());
    drop(lock.lock().unwrap());
}

/// `_TestLock.test_lock_locked_2processes` with the holder killed, not repaired:
/// every acquisition reports `OwnerDied` until someone marks it consistent.
#[test]
fn test_lock_owner_died_until_consistent() {
    let _w = watchdog("test_lock_owner_died_until_consistent", LIMIT);
    let lock = Lock::new().unwrap();
    let held = Event::new().unwrap();
    let child = Process::start(die_holding, (lock.clone(), held)).unwrap();
    let _ = child.join();
    drop(lock.lock().unwrap_err());
    assert!(lock.is_owner_died());
    let again = lock.lock().unwrap_err();
    again.get_ref().mark_consistent();
    drop(again);
    drop(lock.lock().unwrap());
}

/// `_TestLock.test_rlock`: the holding thread re-enters; another thread cannot
/// take it until every level is released.
#[test]
fn test_rlock() {
    let _w = watchdog("test_rlock", LIMIT);
    let lock = RLock::new().unwrap();
    let a = lock.lock().unwrap();
    let b = lock.lock().unwrap();
    let c = lock.try_lock().unwrap();
    std::thread::scope(|s| {
        s.spawn(|| assert!(matches!(lock.try_lock(), Err(TryLockError::WouldBlock))));
    });
    drop(c);
    drop(b);
    std::thread::scope(|s| {
        s.spawn(|| assert!(matches!(lock.try_lock(), Err(TryLockError::WouldBlock))));
    });
    drop(a);
    assert!(!lock.is_locked());
    std::thread::scope(|s| {
        s.spawn(|| drop(lock.lock_timeout(LONG).unwrap()));
    });
}

/// `_TestLock.test_rlock` across processes: a child cannot take an `RLock` the
/// parent holds; it can once the parent lets go.
#[test]
fn test_rlock_2processes() {
    let _w = watchdog("test_rlock_2processes", LIMIT);
    let lock = RLock::new().unwrap();
    let g = lock.lock().unwrap();
    let busy = Process::start(|l: RLock| l.try_lock().is_ok(), lock.clone()).unwrap();
    assert!(!busy.join().unwrap());
    drop(g);
    let free = Process::start(|l: RLock| l.lock_timeout(LONG).is_ok(), lock.clone()).unwrap();
    assert!(free.join().unwrap());
}

/// `_TestLock.test_rlock` with the holder killed (mproc's promise): `OwnerDied`.
#[test]
fn test_rlock_holder_killed() {
    let _w = watchdog("test_rlock_holder_killed", LIMIT);
    let lock = RLock::new().unwrap();
    let child = Process::start(
        |l: RLock| -> u8 {
            std::mem::forget(l.lock().unwrap());
            std::mem::forget(l.lock().unwrap());
            std::process::abort();
        },
        lock.clone(),
    )
    .unwrap();
    let pid = child.pid();
    let _ = child.join();
    let died = lock.lock().unwrap_err();
    assert_eq!(died.pid(), Some(pid));
    let g = died.into_inner();
    g.mark_consistent();
    drop(g);
    assert!(!lock.is_locked());
}

// ---- Semaphores ----------------------------------------------------------------

/// `_TestSemaphore.test_semaphore`: the count goes down with each acquire, a
/// non-blocking acquire at zero fails, releases bring it back up.
#[test]
fn test_semaphore() {
    let sem = Semaphore::new(2).unwrap();
    assert_eq!(sem.value(), 2);
    sem.acquire().forget();
    assert_eq!(sem.value(), 1);
    sem.try_acquire().unwrap().forget();
    assert_eq!(sem.value(), 0);
    assert!(sem.try_acquire().is_none());
    sem.release();
    assert_eq!(sem.value(), 1);
    sem.release();
    sem.release();
    assert_eq!(
        sem.value(),
        3,
        "a plain semaphore may go above its start value"
    );
    {
        let _g = sem.acquire();
        assert_eq!(sem.value(), 2);
    }
    assert_eq!(sem.value(), 3);
}

/// `_TestSemaphore.test_bounded_semaphore`: releasing above the bound raises.
#[test]
fn test_bounded_semaphore() {
    let sem = BoundedSemaphore::new(2).unwrap();
    sem.acquire().forget();
    assert_eq!(sem.value(), 1);
    sem.release().unwrap();
    let err = sem.release().unwrap_err();
    assert_eq!(err.bound(), 2);
    assert_eq!(sem.value(), 2);
    assert_eq!(sem.bound(), 2);
}

/// `_TestSemaphore.test_timeout`: an acquire with a timeout at zero returns
/// nothing after (at least) the timeout; a huge timeout means none.
#[test]
fn test_semaphore_timeout() {
    let sem = Semaphore::new(0).unwrap();
    assert!(sem.acquire_timeout(Duration::ZERO).is_none());
    let t = Instant::now();
    assert!(sem.acquire_timeout(Duration::from_millis(100)).is_none());
    assert!(t.elapsed() >= Duration::from_millis(100));
    sem.release();
    assert!(sem.acquire_timeout(Duration::MAX).is_some());
}

/// `_TestSemaphore.test_semaphore` across processes: a child's release wakes the
/// parent waiting at zero.
#[test]
fn test_semaphore_2processes() {
    let _w = watchdog("test_semaphore_2processes", LIMIT);
    let sem = Semaphore::new(0).unwrap();
    let child = Process::start(|s: Semaphore| s.release(), sem.clone()).unwrap();
    sem.acquire_timeout(LONG)
        .expect("the child's release did not arrive")
        .forget();
    child.join().unwrap();
    assert_eq!(sem.value(), 0);
}

/// `_TestSemaphore.test_semaphore` (limiting concurrency): a semaphore of 2 lets
/// at most two of four processes in at once.
#[test]
fn test_semaphore_limits_concurrency() {
    let _w = watchdog("test_semaphore_limits_concurrency", LIMIT);
    fn enter((sem, inside, max): (Semaphore, SharedAtomicU32, SharedAtomicU32)) {
        for _ in 0..20 {
            let _g = sem.acquire_timeout(LONG).unwrap();
            let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
            max.fetch_max(now, Ordering::SeqCst);
            std::thread::yield_now();
            inside.fetch_sub(1, Ordering::SeqCst);
        }
    }
    let sem = Semaphore::new(2).unwrap();
    let inside = SharedAtomicU32::new(0).unwrap();
    let max = SharedAtomicU32::new(0).unwrap();
    let children: Vec<_> = (0..4)
        .map(|_| Process::start(enter, (sem.clone(), inside.clone(), max.clone())).unwrap())
        .collect();
    for c in children {
        c.join().unwrap();
    }
    assert!(max.load(Ordering::SeqCst) <= 2);
    assert_eq!(sem.value(), 2);
}

// ---- Event -----------------------------------------------------------------------

/// `_TestEvent.test_event`: unset, a wait times out; set (by a child), every wait
/// returns true; clear, unset again.
#[test]
fn test_event() {
    let _w = watchdog("test_event", LIMIT);
    let e = Event::new().unwrap();
    assert!(!e.is_set());
    assert!(!e.wait_timeout(Duration::ZERO));
    let t = Instant::now();
    assert!(!e.wait_timeout(Duration::from_millis(100)));
    assert!(t.elapsed() >= Duration::from_millis(100));
    let child = Process::start(|e: Event| e.set(), e.clone()).unwrap();
    assert!(e.wait_timeout(LONG));
    child.join().unwrap();
    assert!(e.is_set());
    assert!(e.wait_timeout(Duration::ZERO));
    assert!(e.wait_timeout(Duration::MAX));
    e.clear();
    assert!(!e.is_set());
    assert!(!e.wait_timeout(Duration::from_millis(1)));
}

/// `_TestEvent.test_event` (several waiting processes): one `set` wakes every
/// waiter (issue 10 item 1).
#[test]
fn test_event_wakes_every_process() {
    let _w = watchdog("test_event_wakes_every_process", LIMIT);
    let e = Event::new().unwrap();
    let asleep = SharedAtomicU32::new(0).unwrap();
    let children: Vec<_> = (0..4)
        .map(|_| {
            Process::start(
                |(e, n): (Event, SharedAtomicU32)| {
                    n.fetch_add(1, Ordering::SeqCst);
                    e.wait_timeout(LONG)
                },
                (e.clone(), asleep.clone()),
            )
            .unwrap()
        })
        .collect();
    assert!(eventually(LONG, || asleep.load(Ordering::SeqCst) == 4));
    let pids: Vec<u32> = children.iter().map(|c| c.pid()).collect();
    assert!(eventually(LONG, || pids
        .iter()
        .all(|&p| crate::common::all_threads_asleep(p))));
    e.set();
    let start = Instant::now();
    for c in children {
        assert!(c.join().unwrap(), "a waiter was not woken");
    }
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "waiters woke only at their timeout"
    );
}

/// `_TestEvent.test_event` (several waiting threads, plain `wait`): one `set`
/// releases them all (issue 10 item 1).
#[test]
fn test_event_wakes_every_thread() {
    let _w = watchdog("test_event_wakes_every_thread", LIMIT);
    let e = Event::new().unwrap();
    let n = AtomicU32::new(0);
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..5)
            .map(|_| {
                s.spawn(|| {
                    n.fetch_add(1, Ordering::SeqCst);
                    e.wait();
                })
            })
            .collect();
        assert!(eventually(LONG, || n.load(Ordering::SeqCst) == 5));
        e.set();
        for h in hs {
            h.join().unwrap();
        }
    });
}

// ---- Condition --------------------------------------------------------------------

/// A waiter process: counts itself as sleeping, waits (bounded), counts itself as
/// woken; returns whether it was notified rather than timed out.
fn cond_waiter((cond, sleeping, woken): (Condition, SharedAtomicU32, SharedAtomicU32)) -> bool {
    let g = cond.lock().unwrap();
    sleeping.fetch_add(1, Ordering::SeqCst);
    let (g, r) = cond.wait_timeout(g, LONG).unwrap();
    woken.fetch_add(1, Ordering::SeqCst);
    drop(g);
    !r.timed_out()
}

struct Waiters {
    cond: Condition,
    sleeping: SharedAtomicU32,
    woken: SharedAtomicU32,
    children: Vec<Process<bool>>,
}

fn start_waiters(n: u32) -> Waiters {
    let cond = Condition::new().unwrap();
    let sleeping = SharedAtomicU32::new(0).unwrap();
    let woken = SharedAtomicU32::new(0).unwrap();
    let children = (0..n)
        .map(|_| {
            Process::start(cond_waiter, (cond.clone(), sleeping.clone(), woken.clone())).unwrap()
        })
        .collect();
    // Each counted itself under the lock, and `wait` releases that lock only once
    // it is registered: after taking the lock here, all `n` are waiting.
    assert!(eventually(LONG, || sleeping.load(Ordering::SeqCst) == n));
    drop(cond.lock().unwrap());
    Waiters {
        cond,
        sleeping,
        woken,
        children,
    }
}

/// `_TestCondition.test_notify`: each `notify()` wakes one waiter.
#[test]
fn test_notify() {
    let _w = watchdog("test_notify", LIMIT);
    let w = start_waiters(2);
    w.cond.notify(1);
    assert!(eventually(LONG, || w.woken.load(Ordering::SeqCst) >= 1));
    w.cond.notify(1);
    assert!(eventually(LONG, || w.woken.load(Ordering::SeqCst) == 2));
    assert_eq!(w.sleeping.load(Ordering::SeqCst), 2);
    for c in w.children {
        assert!(
            c.join().unwrap(),
            "a waiter timed out instead of being notified"
        );
    }
}

/// `_TestCondition.test_notify_all`: one `notify_all` wakes every waiter.
#[test]
fn test_notify_all() {
    let _w = watchdog("test_notify_all", LIMIT);
    let w = start_waiters(3);
    w.cond.notify_all();
    for c in w.children {
        assert!(
            c.join().unwrap(),
            "a waiter timed out instead of being notified"
        );
    }
    assert_eq!(w.woken.load(Ordering::SeqCst), 3);
}

/// `_TestCondition.test_notify_n`: `notify(n)` wakes `n` waiters.
#[test]
fn test_notify_n() {
    let _w = watchdog("test_notify_n", LIMIT);
    let w = start_waiters(4);
    w.cond.notify(2);
    assert!(eventually(LONG, || w.woken.load(Ordering::SeqCst) >= 2));
    w.cond.notify(2);
    for c in w.children {
        assert!(
            c.join().unwrap(),
            "a waiter timed out instead of being notified"
        );
    }
    assert_eq!(w.woken.load(Ordering::SeqCst), 4);
}

/// `_TestCondition.test_timeout`: a wait nobody notifies times out (after at
/// least the timeout) and holds the lock again.
#[test]
fn test_condition_timeout() {
    let cond = Condition::new().unwrap();
    let g = cond.lock().unwrap();
    let t = Instant::now();
    let (g, r) = cond.wait_timeout(g, Duration::from_millis(100)).unwrap();
    assert!(r.timed_out());
    assert!(t.elapsed() >= Duration::from_millis(100));
    assert!(cond.get_lock().is_locked());
    drop(g);
    assert!(!cond.get_lock().is_locked());
}

/// `_TestCondition.test_waitfor`: `wait_for` returns once a child has made the
/// predicate true (notifying after each change).
#[test]
fn test_waitfor() {
    let _w = watchdog("test_waitfor", LIMIT);
    fn advance((cond, state): (Condition, SharedAtomicU32)) {
        for _ in 0..5 {
            let g = cond.lock().unwrap();
            state.fetch_add(1, Ordering::SeqCst);
            cond.notify_all();
            drop(g);
        }
    }
    let cond = Condition::new().unwrap();
    let state = SharedAtomicU32::new(0).unwrap();
    let child = Process::start(advance, (cond.clone(), state.clone())).unwrap();
    let g = cond.lock().unwrap();
    let (g, ok) = cond
        .wait_for_timeout(g, LONG, || state.load(Ordering::SeqCst) == 5)
        .unwrap();
    assert!(ok);
    drop(g);
    child.join().unwrap();
}

/// `_TestCondition.test_waitfor_timeout`: a predicate that stays false returns
/// false at the timeout.
#[test]
fn test_waitfor_timeout() {
    let cond = Condition::new().unwrap();
    let g = cond.lock().unwrap();
    let mut calls = 0;
    let (g, ok) = cond
        .wait_for_timeout(g, Duration::from_millis(100), || {
            calls += 1;
            false
        })
        .unwrap();
    assert!(!ok);
    assert!(calls >= 1);
    drop(g);
}

/// `_TestCondition.test_wait_result`: a notified wait reports it was not a timeout.
#[test]
fn test_wait_result() {
    let _w = watchdog("test_wait_result", LIMIT);
    let w = start_waiters(1);
    w.cond.notify(1);
    for c in w.children {
        assert!(c.join().unwrap());
    }
}

// ---- Barrier ----------------------------------------------------------------------

/// One party: passes the barrier `cycles` times, returning its arrival indexes.
fn party((b, cycles): (Barrier, usize)) -> Vec<usize> {
    (0..cycles).map(|_| b.wait_timeout(LONG).unwrap()).collect()
}

/// `_TestBarrier.test_barrier`: three processes pass the barrier together, cycle
/// after cycle.
#[test]
fn test_barrier() {
    let _w = watchdog("test_barrier", LIMIT);
    let b = Barrier::new(3).unwrap();
    let children: Vec<_> = (0..2)
        .map(|_| Process::start(party, (b.clone(), 5)).unwrap())
        .collect();
    let mine = party((b.clone(), 5));
    let mut all = vec![mine];
    for c in children {
        all.push(c.join().unwrap());
    }
    for cycle in 0..5 {
        let mut idx: Vec<usize> = all.iter().map(|v| v[cycle]).collect();
        idx.sort();
        assert_eq!(idx, [0, 1, 2], "cycle {cycle}");
    }
    assert!(!b.is_broken());
}

/// `_TestBarrier.test_wait_return`: the arrival indexes of one cycle are 0..n,
/// each once.
#[test]
fn test_wait_return() {
    let _w = watchdog("test_wait_return", LIMIT);
    let b = Barrier::new(4).unwrap();
    let mut idx: Vec<usize> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..4)
            .map(|_| s.spawn(|| b.wait_timeout(LONG).unwrap()))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    idx.sort();
    assert_eq!(idx, [0, 1, 2, 3]);
}

static ACTIONS: AtomicU32 = AtomicU32::new(0);

fn count_action() {
    ACTIONS.fetch_add(1, Ordering::SeqCst);
}

/// `_TestBarrier.test_action`: the action runs exactly once per cycle.
#[test]
fn test_action() {
    let _w = watchdog("test_action", LIMIT);
    let b = Barrier::builder(3).action(count_action).build().unwrap();
    std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| {
                for _ in 0..4 {
                    b.wait_timeout(LONG).unwrap();
                }
            });
        }
    });
    assert_eq!(ACTIONS.load(Ordering::SeqCst), 4);
}

/// `_TestBarrier.test_abort`: `abort` breaks the barrier for the party waiting
/// and for every later wait.
#[test]
fn test_abort() {
    let _w = watchdog("test_abort", LIMIT);
    let b = Barrier::new(3).unwrap();
    std::thread::scope(|s| {
        let h = s.spawn(|| b.wait_timeout(LONG));
        assert!(eventually(LONG, || b.n_waiting() == 1));
        b.abort();
        assert_eq!(
            h.join().unwrap().unwrap_err().reason(),
            BrokenReason::Aborted
        );
    });
    assert!(b.is_broken());
    assert_eq!(b.wait().unwrap_err().reason(), BrokenReason::Aborted);
}

/// `_TestBarrier.test_reset`: `reset` releases the waiting party with an error,
/// and the barrier then works again.
#[test]
fn test_reset() {
    let _w = watchdog("test_reset", LIMIT);
    let b = Barrier::new(2).unwrap();
    std::thread::scope(|s| {
        let h = s.spawn(|| b.wait_timeout(LONG));
        assert!(eventually(LONG, || b.n_waiting() == 1));
        b.reset();
        assert_eq!(h.join().unwrap().unwrap_err().reason(), BrokenReason::Reset);
    });
    assert!(!b.is_broken());
    assert_eq!(b.n_waiting(), 0);
    std::thread::scope(|s| {
        let h = s.spawn(|| b.wait_timeout(LONG).unwrap());
        let mine = b.wait_timeout(LONG).unwrap();
        assert_eq!(mine + h.join().unwrap(), 1);
    });
}

/// `_TestBarrier.test_abort_and_reset`: after an abort, `reset` makes the barrier
/// usable again, across processes.
#[test]
fn test_abort_and_reset() {
    let _w = watchdog("test_abort_and_reset", LIMIT);
    let b = Barrier::new(2).unwrap();
    b.abort();
    assert!(b.wait_timeout(LONG).is_err());
    b.reset();
    let child = Process::start(party, (b.clone(), 3)).unwrap();
    let mine = party((b.clone(), 3));
    let theirs = child.join().unwrap();
    for i in 0..3 {
        assert_eq!(mine[i] + theirs[i], 1);
    }
}

/// `_TestBarrier.test_timeout`: a party's timeout breaks the barrier for every
/// party.
#[test]
fn test_barrier_timeout() {
    let _w = watchdog("test_barrier_timeout", LIMIT);
    let b = Barrier::new(3).unwrap();
    std::thread::scope(|s| {
        let other = s.spawn(|| b.wait_timeout(LONG));
        assert!(eventually(LONG, || b.n_waiting() == 1));
        let err = b.wait_timeout(Duration::from_millis(100)).unwrap_err();
        assert_eq!(err.reason(), BrokenReason::TimedOut);
        assert_eq!(
            other.join().unwrap().unwrap_err().reason(),
            BrokenReason::TimedOut
        );
    });
    assert!(b.is_broken());
}

/// `_TestBarrier.test_default_timeout`: the barrier's own timeout applies to
/// `wait`.
#[test]
fn test_default_timeout() {
    let _w = watchdog("test_default_timeout", LIMIT);
    let b = Barrier::builder(2)
        .timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    assert_eq!(b.wait().unwrap_err().reason(), BrokenReason::TimedOut);
}

/// `_TestBarrier.test_single_thread`: a barrier of one party never waits.
#[test]
fn test_single_thread() {
    let b = Barrier::new(1).unwrap();
    for _ in 0..3 {
        assert_eq!(b.wait().unwrap(), 0);
    }
}

/// `_TestBarrier.test_thousand`: many cycles in a row between two processes.
#[test]
fn test_thousand() {
    let _w = watchdog("test_thousand", LIMIT);
    let b = Barrier::new(2).unwrap();
    let child = Process::start(party, (b.clone(), 1000)).unwrap();
    let mine = party((b.clone(), 1000));
    let theirs = child.join().unwrap();
    assert!(mine.iter().zip(&theirs).all(|(a, b)| a + b == 1));
}

/// `_TestBarrier.test_barrier` with a party killed while it waits (Python's
/// others wait until their timeout): mproc's promise is that the barrier breaks
/// with `PartyDied`.
#[test]
fn test_barrier_party_killed() {
    let _w = watchdog("test_barrier_party_killed", LIMIT);
    let b = Barrier::new(3).unwrap();
    let child = Process::start(|b: Barrier| b.wait_timeout(LONG).is_ok(), b.clone()).unwrap();
    assert!(eventually(LONG, || b.n_waiting() == 1));
    child.kill().unwrap();
    assert!(child.join().unwrap_err().is_signaled());
    let err = b.wait_timeout(LONG).unwrap_err();
    assert!(
        matches!(err.reason(), BrokenReason::PartyDied { .. }),
        "{err}"
    );
}

/// `_TestBarrier` setup (`Barrier(0)` raises): zero parties is refused.
#[test]
fn test_barrier_zero_parties() {
    assert!(Barrier::new(0).is_err());
    assert_eq!(Barrier::new(5).unwrap().parties(), 5);
}
