//! `Semaphore` and `BoundedSemaphore` (Python: `acquire(block, timeout)`,
//! `release(n)`, `get_value`, `BoundedSemaphore` over-release is a `ValueError`).

use std::sync::atomic::Ordering;
use std::time::Duration;

use mproc::process::Process;
use mproc::shm::SharedAtomicU32;
use mproc::sync::{BoundedSemaphore, Semaphore};

use crate::{LONG, watchdog};

#[test]
fn counts_permits() {
    let _w = watchdog("counts_permits", LONG);
    let s = Semaphore::new(2).unwrap();
    let a = s.acquire();
    let b = s.try_acquire().unwrap();
    assert_eq!(s.value(), 0);
    assert!(s.try_acquire().is_none());
    assert!(s.acquire_timeout(Duration::from_millis(10)).is_none());
    drop(a);
    assert_eq!(s.value(), 1);
    b.forget();
    assert_eq!(s.value(), 1);
    s.release_n(3);
    assert_eq!(s.value(), 4);
}

#[test]
fn release_wakes_a_waiting_thread() {
    let _w = watchdog("release_wakes_a_waiting_thread", LONG);
    let s = Semaphore::new(0).unwrap();
    std::thread::scope(|sc| {
        let t = sc.spawn(|| s.acquire_timeout(LONG).map(|g| g.forget()).is_some());
        s.release();
        assert!(t.join().unwrap());
    });
    assert_eq!(s.value(), 0);
}

#[test]
fn bounded_semaphore_refuses_over_release() {
    let _w = watchdog("bounded_semaphore_refuses_over_release", LONG);
    let s = BoundedSemaphore::new(2).unwrap();
    let err = s.release().unwrap_err();
    assert_eq!(err.bound(), 2);
    assert!(err.to_string().contains("released too many times"), "{err}");
    assert_eq!(s.value(), 2);
    s.acquire().forget();
    s.acquire().forget();
    s.release().unwrap();
    s.release().unwrap();
    assert!(s.release().is_err());
    assert_eq!(s.value(), 2);
    assert!(BoundedSemaphore::new(0).is_err());
}

#[test]
#[should_panic(expected = "semaphore overflow")]
fn plain_semaphore_overflow_panics() {
    let s = Semaphore::new(mproc::sync::SEMAPHORE_MAX).unwrap();
    s.release();
}

fn limited_worker((sem, inside, max): (Semaphore, SharedAtomicU32, SharedAtomicU32)) -> u32 {
    for _ in 0..200 {
        let _permit = sem
            .acquire_timeout(LONG)
            .expect("a permit within the timeout");
        let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
        max.fetch_max(now, Ordering::SeqCst);
        std::hint::spin_loop();
        inside.fetch_sub(1, Ordering::SeqCst);
    }
    200
}

#[test]
fn semaphore_limits_concurrency_across_processes() {
    let _w = watchdog("semaphore_limits_concurrency_across_processes", LONG * 2);
    let sem = Semaphore::new(2).unwrap();
    let inside = SharedAtomicU32::new(0).unwrap();
    let max = SharedAtomicU32::new(0).unwrap();
    let children: Vec<_> = (0..4)
        .map(|_| {
            Process::start(limited_worker, (sem.clone(), inside.clone(), max.clone())).unwrap()
        })
        .collect();
    for c in children {
        assert_eq!(c.join().unwrap(), 200);
    }
    assert!(max.load(Ordering::SeqCst) <= 2);
    assert!(max.load(Ordering::SeqCst) >= 1);
    assert_eq!(sem.value(), 2);
}

fn over_release(sem: BoundedSemaphore) -> (bool, bool) {
    let first = sem.release().is_ok();
    let second = sem.release().is_ok();
    (first, second)
}

#[test]
fn bounded_over_release_in_a_child_is_an_error() {
    let _w = watchdog("bounded_over_release_in_a_child_is_an_error", LONG);
    let sem = BoundedSemaphore::new(1).unwrap();
    sem.acquire().forget(); // the parent holds the only permit...
    // ...and the child, which holds nothing, gives it back once (allowed: no owner),
    // then once too often.
    let child = Process::start(over_release, sem.clone()).unwrap();
    assert_eq!(child.join().unwrap(), (true, false));
    assert_eq!(sem.value(), 1);
}

fn take_one((sem, timeout_ms): (Semaphore, u64)) -> bool {
    sem.acquire_timeout(Duration::from_millis(timeout_ms))
        .map(|p| p.forget())
        .is_some()
}

#[test]
fn release_in_parent_wakes_child() {
    let _w = watchdog("release_in_parent_wakes_child", LONG);
    let sem = Semaphore::new(0).unwrap();
    let child = Process::start(take_one, (sem.clone(), LONG.as_millis() as u64)).unwrap();
    sem.release();
    assert!(child.join().unwrap());
    let child = Process::start(take_one, (sem.clone(), 30)).unwrap();
    assert!(
        !child.join().unwrap(),
        "no permit: the child's wait times out"
    );
}
