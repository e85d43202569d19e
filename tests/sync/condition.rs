//! `Condition` (Python: `wait(timeout)` returning `False` on timeout, `wait_for`
//! with a predicate and timeout returning the predicate's last value, `notify(n)`
//! waking at most `n`, `notify_all`).

use std::sync::atomic::Ordering;
use std::time::Duration;

use mproc::process::Process;
use mproc::shm::{SharedAtomicU32, Value};
use mproc::sync::{Condition, Lock};

use crate::{LONG, eventually, watchdog};

#[test]
fn wait_timeout_times_out_and_keeps_the_lock() {
    let _w = watchdog("wait_timeout_times_out_and_keeps_the_lock", LONG);
    let cond = Condition::new().unwrap();
    cond.notify_all(); // a notification with nobody waiting is lost
    let g = cond.lock().unwrap();
    let (g, r) = cond.wait_timeout(g, Duration::from_millis(20)).unwrap();
    assert!(r.timed_out());
    assert!(cond.get_lock().is_locked());
    drop(g);
    assert!(!cond.get_lock().is_locked());
}

#[test]
fn wait_for_returns_the_predicate() {
    let _w = watchdog("wait_for_returns_the_predicate", LONG);
    let cond = Condition::new().unwrap();
    let g = cond.lock().unwrap();
    let mut calls = 0;
    let (g, ok) = cond
        .wait_for_timeout(g, Duration::from_millis(30), || {
            calls += 1;
            false
        })
        .unwrap();
    assert!(!ok);
    assert!(calls >= 2, "checked before waiting and after the timeout");
    let (g, ok) = cond.wait_for_timeout(g, Duration::ZERO, || true).unwrap();
    assert!(ok);
    drop(g);
}

#[test]
fn notify_wakes_a_waiting_thread() {
    let _w = watchdog("notify_wakes_a_waiting_thread", LONG);
    let cond = Condition::new().unwrap();
    let flag = Value::new(0u8).unwrap();
    std::thread::scope(|s| {
        let t = s.spawn(|| {
            let g = cond.lock().unwrap();
            let (_g, ok) = cond.wait_for_timeout(g, LONG, || flag.get() == 1).unwrap();
            ok
        });
        {
            let _g = cond.lock().unwrap();
            flag.set(1);
            cond.notify(1);
        }
        assert!(t.join().unwrap());
    });
}

#[test]
#[should_panic(expected = "guard of a different lock")]
fn waiting_with_another_locks_guard_panics() {
    let cond = Condition::new().unwrap();
    let other = Lock::new().unwrap();
    let g = other.lock().unwrap();
    let _ = cond.wait_timeout(g, Duration::from_millis(1));
}

fn cond_waiter((cond, registered, woken): (Condition, Value<u32>, SharedAtomicU32)) -> bool {
    let g = cond.lock().unwrap();
    registered.set(registered.get() + 1);
    let (g, r) = cond.wait_timeout(g, LONG).unwrap();
    woken.fetch_add(1, Ordering::SeqCst);
    drop(g);
    !r.timed_out()
}

#[test]
fn notify_n_wakes_at_most_n_processes() {
    let _w = watchdog("notify_n_wakes_at_most_n_processes", LONG * 3);
    let cond = Condition::new().unwrap();
    let registered = Value::new(0u32).unwrap();
    let woken = SharedAtomicU32::new(0).unwrap();
    let children: Vec<_> = (0..3)
        .map(|_| {
            Process::start(
                cond_waiter,
                (cond.clone(), registered.clone(), woken.clone()),
            )
            .unwrap()
        })
        .collect();
    // A child registers as a waiter before it releases the lock in `wait`, so once
    // we hold the lock and see 3, all three are waiting.
    assert!(eventually(LONG, || {
        let _g = cond.lock().unwrap();
        registered.get() == 3
    }));
    cond.notify(1);
    assert!(eventually(LONG, || woken.load(Ordering::SeqCst) >= 1));
    std::thread::sleep(Duration::from_millis(100)); // nothing else may wake meanwhile
    assert_eq!(woken.load(Ordering::SeqCst), 1);
    cond.notify(1);
    assert!(eventually(LONG, || woken.load(Ordering::SeqCst) >= 2));
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(woken.load(Ordering::SeqCst), 2);
    cond.notify_all();
    for c in children {
        assert!(
            c.join().unwrap(),
            "every child was notified, none timed out"
        );
    }
    assert_eq!(woken.load(Ordering::SeqCst), 3);
}

fn wait_for_count((cond, count, target, ms): (Condition, Value<u32>, u32, u64)) -> bool {
    let g = cond.lock().unwrap();
    let (_g, ok) = cond
        .wait_for_timeout(g, Duration::from_millis(ms), || count.get() >= target)
        .unwrap();
    ok
}

#[test]
fn wait_for_across_processes() {
    let _w = watchdog("wait_for_across_processes", LONG * 2);
    let cond = Condition::new().unwrap();
    let count = Value::new(0u32).unwrap();
    let child = Process::start(
        wait_for_count,
        (cond.clone(), count.clone(), 3, LONG.as_millis() as u64),
    )
    .unwrap();
    for _ in 0..3 {
        let _g = cond.lock().unwrap();
        count.set(count.get() + 1);
        cond.notify_all();
    }
    assert!(child.join().unwrap());
    // Never satisfied: the child's wait_for times out and returns false.
    let child = Process::start(wait_for_count, (cond.clone(), count.clone(), 100, 50)).unwrap();
    assert!(!child.join().unwrap());
}

#[test]
fn conditions_can_share_a_lock() {
    let _w = watchdog("conditions_can_share_a_lock", LONG);
    let lock = Lock::new().unwrap();
    let a = Condition::with_lock(lock.clone()).unwrap();
    let b = Condition::with_lock(lock.clone()).unwrap();
    let g = a.lock().unwrap();
    assert!(lock.is_locked());
    let (g, r) = b.wait_timeout(g, Duration::from_millis(5)).unwrap();
    assert!(r.timed_out());
    drop(g);
}

fn wait_with_separately_sent_lock((cond, lock): (Condition, Lock)) -> bool {
    // `lock` and `cond`'s own lock arrive as two mappings of the same lock.
    let g = lock.lock().unwrap();
    let (_g, r) = cond.wait_timeout(g, Duration::from_millis(1)).unwrap();
    r.timed_out()
}

#[test]
fn a_lock_received_twice_is_still_the_conditions_lock() {
    let _w = watchdog("a_lock_received_twice_is_still_the_conditions_lock", LONG);
    let lock = Lock::new().unwrap();
    let cond = Condition::with_lock(lock.clone()).unwrap();
    let child = Process::start(wait_with_separately_sent_lock, (cond, lock)).unwrap();
    assert!(child.join().unwrap());
}
