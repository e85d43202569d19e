//! Shared atomics: lock-free counters across processes.

use std::sync::atomic::Ordering;

use mproc::process::Process;
use mproc::shm::{SharedAtomicI32, SharedAtomicU64};

use crate::{LONG, watchdog};

fn bump((c, n): (SharedAtomicU64, u64)) -> u64 {
    for _ in 0..n {
        c.fetch_add(1, Ordering::Relaxed);
    }
    n
}

#[test]
fn counter_across_processes() {
    let _w = watchdog("counter_across_processes", LONG * 2);
    let c = SharedAtomicU64::new(0).unwrap();
    let children: Vec<_> = (0..4)
        .map(|_| Process::start(bump, (c.clone(), 50_000)).unwrap())
        .collect();
    for ch in children {
        assert_eq!(ch.join().unwrap(), 50_000);
    }
    assert_eq!(c.load(Ordering::SeqCst), 200_000);
}

#[test]
fn std_atomic_api() {
    let a = SharedAtomicI32::new(-1).unwrap();
    assert_eq!(a.fetch_sub(1, Ordering::SeqCst), -1);
    assert_eq!(
        a.compare_exchange(-2, 10, Ordering::SeqCst, Ordering::SeqCst),
        Ok(-2)
    );
    assert_eq!(a.fetch_max(3, Ordering::SeqCst), 10);
    assert_eq!(format!("{a:?}"), "SharedAtomic(10)");
}
