//! `Lock` and `RLock`: mutual exclusion, re-entrance, timeouts, handles that travel.

use std::time::Duration;

use mproc::process::Process;
use mproc::shm::Value;
use mproc::sync::{Event, Lock, LockTimeoutError, RLock, TryLockError};

use crate::{LONG, eventually, watchdog};

#[test]
fn lock_excludes_threads() {
    let _w = watchdog("lock_excludes_threads", LONG);
    let lock = Lock::new().unwrap();
    let counter = Value::new(0u64).unwrap();
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                for _ in 0..20_000 {
                    let _g = lock.lock().unwrap();
                    counter.set(counter.get() + 1);
                }
            });
        }
    });
    assert_eq!(counter.get(), 40_000);
}

#[test]
fn lock_try_and_timeout() {
    let _w = watchdog("lock_try_and_timeout", LONG);
    let lock = Lock::new().unwrap();
    let g = lock.lock().unwrap();
    // The holder itself: try fails, a timed lock fails at once (it could never succeed).
    assert!(matches!(lock.try_lock(), Err(TryLockError::WouldBlock)));
    assert!(matches!(
        lock.lock_timeout(Duration::from_secs(60)),
        Err(LockTimeoutError::Timeout)
    ));
    std::thread::scope(|s| {
        s.spawn(|| {
            assert!(matches!(lock.try_lock(), Err(TryLockError::WouldBlock)));
            assert!(matches!(
                lock.lock_timeout(Duration::from_millis(20)),
                Err(LockTimeoutError::Timeout)
            ));
        });
    });
    drop(g);
    assert!(lock.try_lock().is_ok());
}

#[test]
#[should_panic(expected = "already holds the lock")]
fn relocking_a_lock_panics_instead_of_deadlocking() {
    let lock = Lock::new().unwrap();
    let _g = lock.lock().unwrap();
    let _again = lock.lock();
}

#[test]
fn rlock_reenters_per_thread() {
    let _w = watchdog("rlock_reenters_per_thread", LONG);
    let rlock = RLock::new().unwrap();
    let a = rlock.lock().unwrap();
    let b = rlock.try_lock().unwrap();
    let c = rlock.lock_timeout(Duration::from_millis(1)).unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            assert!(matches!(rlock.try_lock(), Err(TryLockError::WouldBlock)));
        });
    });
    drop((c, b));
    assert!(rlock.is_locked());
    drop(a);
    assert!(!rlock.is_locked());
    assert!(rlock.try_lock().is_ok());
}

fn add_under_lock((lock, counter, n): (Lock, Value<u64>, u32)) -> u32 {
    for _ in 0..n {
        let _g = lock.lock().expect("no holder died");
        // A deliberately non-atomic read-modify-write.
        let v = counter.get();
        std::hint::black_box(());
        counter.set(v + 1);
    }
    n
}

#[test]
fn lock_excludes_processes() {
    let _w = watchdog("lock_excludes_processes", LONG * 2);
    let lock = Lock::new().unwrap();
    let counter = Value::new(0u64).unwrap();
    let children: Vec<_> = (0..4)
        .map(|_| Process::start(add_under_lock, (lock.clone(), counter.clone(), 5_000)).unwrap())
        .collect();
    for c in children {
        assert_eq!(c.join().unwrap(), 5_000);
    }
    assert_eq!(counter.get(), 20_000);
    assert!(!lock.is_locked());
    assert!(!lock.is_owner_died());
}

fn hold_then_report((lock, held, release): (Lock, Event, Event)) -> u32 {
    let g = lock.lock().unwrap();
    held.set();
    assert!(release.wait_timeout(LONG), "parent never released us");
    drop(g);
    std::process::id()
}

#[test]
fn lock_records_its_holder_across_processes() {
    let _w = watchdog("lock_records_its_holder_across_processes", LONG * 2);
    let lock = Lock::new().unwrap();
    let (held, release) = (Event::new().unwrap(), Event::new().unwrap());
    let child = Process::start(
        hold_then_report,
        (lock.clone(), held.clone(), release.clone()),
    )
    .unwrap();
    assert!(held.wait_timeout(LONG));
    assert_eq!(lock.holder_pid(), Some(child.pid()));
    assert!(matches!(lock.try_lock(), Err(TryLockError::WouldBlock)));
    assert!(matches!(
        lock.lock_timeout(Duration::from_millis(20)),
        Err(LockTimeoutError::Timeout)
    ));
    release.set();
    let pid = child.join().unwrap();
    let g = lock.lock_timeout(LONG).unwrap();
    assert_eq!(lock.holder_pid(), Some(std::process::id()));
    assert_ne!(pid, std::process::id());
    drop(g);
}

fn reenter_in_child(rlock: RLock) -> u32 {
    let a = rlock.lock().unwrap();
    let b = rlock.lock().unwrap();
    let c = rlock.try_lock().unwrap();
    drop((c, b, a));
    u32::from(rlock.is_locked())
}

#[test]
fn rlock_travels_and_reenters_in_a_child() {
    let _w = watchdog("rlock_travels_and_reenters_in_a_child", LONG);
    let rlock = RLock::new().unwrap();
    let child = Process::start(reenter_in_child, rlock.clone()).unwrap();
    assert_eq!(child.join().unwrap(), 0);
    assert!(rlock.try_lock().is_ok());
}

#[test]
fn forgotten_guard_keeps_lock_held_and_mapping_alive() {
    let _w = watchdog("forgotten_guard_keeps_lock_held_and_mapping_alive", LONG);
    let lock = Lock::new().unwrap();
    let other = lock.clone();
    std::mem::forget(lock.lock().unwrap());
    drop(lock);
    // The clone still works; the lock is still held by this thread.
    assert!(other.is_locked());
    drop(other);
    // Other locks are unaffected.
    let fresh = Lock::new().unwrap();
    drop(fresh.lock().unwrap());
}

/// A thread that exits holding the lock: a blocked waiter notices the dead holder
/// (its thread mark no longer names a running thread) and takes over with
/// `OwnerDied`; the lock is usable again once marked consistent.
#[test]
fn a_thread_that_exits_holding_the_lock_is_taken_over() {
    let _w = watchdog(
        "a_thread_that_exits_holding_the_lock_is_taken_over",
        LONG * 2,
    );
    let lock = Lock::new().unwrap();
    std::thread::scope(|s| {
        s.spawn(|| std::mem::forget(lock.lock().unwrap()));
    });
    let died = match lock.lock_timeout(LONG) {
        Err(LockTimeoutError::OwnerDied(d)) => d,
        other => panic!("expected OwnerDied, got {other:?}"),
    };
    assert_eq!(died.pid(), Some(std::process::id()));
    let g = died.into_inner();
    g.mark_consistent();
    drop(g);
    drop(lock.lock().expect("consistent again"));

    // `try_lock` asks about the holder at once (after the kernel has let the
    // thread's id go, a moment after `join`).
    let rlock = RLock::new().unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            std::mem::forget(rlock.lock().unwrap());
            std::mem::forget(rlock.lock().unwrap());
        });
    });
    assert!(eventually(LONG, || matches!(
        rlock.try_lock(),
        Err(TryLockError::OwnerDied(_))
    )));
    // Held once by nobody now: the taker released it on drop.
    assert!(!rlock.is_locked());
    assert!(rlock.is_owner_died());
}

/// Blocked waiters, threads of two processes, all get the lock in turn after the
/// holder releases it, and the count under the lock is exact.
fn lock_and_add((lock, counter, n): (Lock, Value<u64>, u32)) -> u32 {
    for _ in 0..n {
        let _g = lock.lock().unwrap();
        counter.set(counter.get() + 1);
    }
    n
}

#[test]
fn sleeping_waiters_of_several_processes_all_get_the_lock() {
    let _w = watchdog(
        "sleeping_waiters_of_several_processes_all_get_the_lock",
        LONG * 2,
    );
    let lock = Lock::new().unwrap();
    let counter = Value::new(0u64).unwrap();
    let held = lock.lock().unwrap();
    let children: Vec<_> = (0..3)
        .map(|_| Process::start(lock_and_add, (lock.clone(), counter.clone(), 2_000)).unwrap())
        .collect();
    std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| lock_and_add((lock.clone(), counter.clone(), 2_000)));
        }
        // Let the waiters block on the held lock (they sleep once their spin ends).
        std::thread::sleep(Duration::from_millis(50));
        drop(held);
    });
    for c in children {
        assert_eq!(c.join().unwrap(), 2_000);
    }
    assert_eq!(counter.get(), 12_000);
    assert!(!lock.is_locked());
    assert!(!lock.is_owner_died());
}
