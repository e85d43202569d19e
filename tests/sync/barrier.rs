//! `Barrier` (Python: `wait` returns a distinct index per party, the action runs
//! once per cycle in one party, a timeout breaks the barrier, `abort`, `reset`,
//! `n_waiting`, `broken`, `BrokenBarrierError` for every waiter).

use std::collections::BTreeSet;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use mproc::process::Process;
use mproc::shm::SharedAtomicU64;
use mproc::sync::{Barrier, BrokenReason};

use crate::{LONG, eventually, watchdog};

static THREAD_CYCLES: AtomicU32 = AtomicU32::new(0);
fn count_thread_cycle() {
    THREAD_CYCLES.fetch_add(1, Ordering::SeqCst);
}

#[test]
fn threads_pass_in_cycles_with_one_action_each() {
    let _w = watchdog("threads_pass_in_cycles_with_one_action_each", LONG);
    let b = Barrier::builder(3)
        .action(count_thread_cycle)
        .build()
        .unwrap();
    let per_thread: Vec<Vec<usize>> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..3)
            .map(|_| s.spawn(|| (0..10).map(|_| b.wait_timeout(LONG).unwrap()).collect()))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for cycle in 0..10 {
        let idx: BTreeSet<usize> = per_thread.iter().map(|v| v[cycle]).collect();
        assert_eq!(idx, BTreeSet::from([0, 1, 2]), "cycle {cycle}");
    }
    assert_eq!(THREAD_CYCLES.load(Ordering::SeqCst), 10);
    assert_eq!(b.n_waiting(), 0);
    assert!(!b.is_broken());
}

#[test]
fn timeout_breaks_the_barrier_for_everyone() {
    let _w = watchdog("timeout_breaks_the_barrier_for_everyone", LONG);
    let b = Barrier::new(3).unwrap();
    std::thread::scope(|s| {
        let patient = s.spawn(|| b.wait_timeout(LONG));
        assert!(eventually(LONG, || b.n_waiting() == 1));
        let e = b.wait_timeout(Duration::from_millis(20)).unwrap_err();
        assert_eq!(e.reason(), BrokenReason::TimedOut);
        let e = patient.join().unwrap().unwrap_err();
        assert_eq!(e.reason(), BrokenReason::TimedOut);
    });
    assert!(b.is_broken());
    assert_eq!(b.n_waiting(), 0);
    // Broken until reset: a wait fails at once.
    assert_eq!(b.wait().unwrap_err().reason(), BrokenReason::TimedOut);
    b.reset();
    assert!(!b.is_broken());
}

#[test]
fn default_timeout_from_the_builder() {
    let _w = watchdog("default_timeout_from_the_builder", LONG);
    let b = Barrier::builder(2)
        .timeout(Duration::from_millis(20))
        .build()
        .unwrap();
    assert_eq!(b.wait().unwrap_err().reason(), BrokenReason::TimedOut);
}

#[test]
fn abort_breaks_waiters_and_later_waits() {
    let _w = watchdog("abort_breaks_waiters_and_later_waits", LONG);
    let b = Barrier::new(2).unwrap();
    std::thread::scope(|s| {
        let t = s.spawn(|| b.wait_timeout(LONG));
        assert!(eventually(LONG, || b.n_waiting() == 1));
        b.abort();
        assert_eq!(
            t.join().unwrap().unwrap_err().reason(),
            BrokenReason::Aborted
        );
    });
    assert_eq!(
        b.wait_timeout(LONG).unwrap_err().reason(),
        BrokenReason::Aborted
    );
    b.reset();
    std::thread::scope(|s| {
        let t = s.spawn(|| b.wait_timeout(LONG));
        let mine = b.wait_timeout(LONG).unwrap();
        assert_eq!(mine + t.join().unwrap().unwrap(), 1);
    });
}

#[test]
fn reset_releases_waiters_with_an_error_and_rearms() {
    let _w = watchdog("reset_releases_waiters_with_an_error_and_rearms", LONG);
    let b = Barrier::new(3).unwrap();
    std::thread::scope(|s| {
        let t = s.spawn(|| b.wait_timeout(LONG));
        assert!(eventually(LONG, || b.n_waiting() == 1));
        b.reset();
        assert_eq!(t.join().unwrap().unwrap_err().reason(), BrokenReason::Reset);
    });
    assert!(!b.is_broken());
    assert_eq!(b.n_waiting(), 0);
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..2).map(|_| s.spawn(|| b.wait_timeout(LONG))).collect();
        let mine = b.wait_timeout(LONG).unwrap();
        let sum: usize = hs.into_iter().map(|h| h.join().unwrap().unwrap()).sum();
        assert_eq!(mine + sum, 3);
    });
}

static PANIC_IN_ACTION: AtomicBool = AtomicBool::new(false);
fn maybe_panic() {
    if PANIC_IN_ACTION.load(Ordering::SeqCst) {
        panic!("action failed");
    }
}

#[test]
fn a_panicking_action_breaks_the_barrier() {
    let _w = watchdog("a_panicking_action_breaks_the_barrier", LONG);
    let b = Barrier::builder(2).action(maybe_panic).build().unwrap();
    PANIC_IN_ACTION.store(true, Ordering::SeqCst);
    std::thread::scope(|s| {
        let t = s.spawn(|| b.wait_timeout(LONG));
        assert!(eventually(LONG, || b.n_waiting() == 1));
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| b.wait_timeout(LONG)));
        assert!(r.is_err(), "the party that ran the action sees its panic");
        assert_eq!(
            t.join().unwrap().unwrap_err().reason(),
            BrokenReason::ActionPanicked
        );
    });
    PANIC_IN_ACTION.store(false, Ordering::SeqCst);
    assert!(b.is_broken());
}

#[test]
fn invalid_parties() {
    assert!(Barrier::new(0).is_err());
    assert!(Barrier::new(mproc::sync::MAX_PARTIES + 1).is_err());
    assert_eq!(Barrier::new(1).unwrap().wait(), Ok(0));
}

static PROCESS_CYCLES: OnceLock<SharedAtomicU64> = OnceLock::new();
fn count_process_cycle() {
    PROCESS_CYCLES
        .get()
        .expect("set by the party before it waits")
        .fetch_add(1, Ordering::SeqCst);
}

fn party((b, cycles_counter, cycles): (Barrier, SharedAtomicU64, u32)) -> Vec<usize> {
    let _ = PROCESS_CYCLES.set(cycles_counter);
    (0..cycles).map(|_| b.wait_timeout(LONG).unwrap()).collect()
}

#[test]
fn processes_pass_in_cycles_with_one_action_each() {
    let _w = watchdog("processes_pass_in_cycles_with_one_action_each", LONG * 2);
    let counter = SharedAtomicU64::new(0).unwrap();
    let b = Barrier::builder(3)
        .action(count_process_cycle)
        .build()
        .unwrap();
    let children: Vec<_> = (0..3)
        .map(|_| Process::start(party, (b.clone(), counter.clone(), 20)).unwrap())
        .collect();
    let per_child: Vec<Vec<usize>> = children.into_iter().map(|c| c.join().unwrap()).collect();
    for cycle in 0..20 {
        let idx: BTreeSet<usize> = per_child.iter().map(|v| v[cycle]).collect();
        assert_eq!(idx, BTreeSet::from([0, 1, 2]), "cycle {cycle}");
    }
    assert_eq!(counter.load(Ordering::SeqCst), 20, "one action per cycle");
}

fn wait_once((b, ms): (Barrier, u64)) -> Result<usize, String> {
    b.wait_timeout(Duration::from_millis(ms))
        .map_err(|e| format!("{:?}", e.reason()))
}

#[test]
fn a_child_timeout_breaks_the_barrier_for_the_parent() {
    let _w = watchdog("a_child_timeout_breaks_the_barrier_for_the_parent", LONG);
    let b = Barrier::new(3).unwrap();
    let child = Process::start(wait_once, (b.clone(), 50)).unwrap();
    assert_eq!(child.join().unwrap(), Err("TimedOut".to_string()));
    assert!(b.is_broken());
    assert_eq!(
        b.wait_timeout(LONG).unwrap_err().reason(),
        BrokenReason::TimedOut
    );
}

#[test]
fn abort_and_reset_from_the_parent_reach_a_waiting_child() {
    let _w = watchdog(
        "abort_and_reset_from_the_parent_reach_a_waiting_child",
        LONG * 2,
    );
    let b = Barrier::new(2).unwrap();
    let long = LONG.as_millis() as u64;
    let child = Process::start(wait_once, (b.clone(), long)).unwrap();
    assert!(eventually(LONG, || b.n_waiting() == 1));
    b.abort();
    assert_eq!(child.join().unwrap(), Err("Aborted".to_string()));
    b.reset();
    let child = Process::start(wait_once, (b.clone(), long)).unwrap();
    assert!(eventually(LONG, || b.n_waiting() == 1));
    b.reset();
    assert_eq!(child.join().unwrap(), Err("Reset".to_string()));
    // Usable again: the parent and a child pass together.
    let child = Process::start(wait_once, (b.clone(), long)).unwrap();
    let mine = b.wait_timeout(LONG).unwrap();
    assert_eq!(mine + child.join().unwrap().unwrap(), 1);
}

/// Regression: the last arrival woke one sleeping party only (the futex wake
/// count reached the kernel as -1). Four threads are asleep in `wait()` before the
/// fifth arrives; all of them must pass.
#[test]
fn the_last_arrival_wakes_every_sleeping_party() {
    let _w = watchdog("the_last_arrival_wakes_every_sleeping_party", LONG * 2);
    let b = Barrier::new(5).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let parties: Vec<_> = (0..4)
        .map(|_| {
            let (b, tx) = (b.clone(), tx.clone());
            std::thread::spawn(move || {
                tx.send(rustix::thread::gettid().as_raw_nonzero().get() as u32)
                    .unwrap();
                b.wait().unwrap()
            })
        })
        .collect();
    let tids: Vec<u32> = (0..4).map(|_| rx.recv_timeout(LONG).unwrap()).collect();
    assert!(
        eventually(LONG, || tids
            .iter()
            .all(|&t| crate::common::thread_state(t) == Some('S'))),
        "the parties never went to sleep"
    );
    let mut seen: BTreeSet<usize> = BTreeSet::new();
    seen.insert(b.wait().unwrap());
    for p in parties {
        seen.insert(p.join().unwrap());
    }
    assert_eq!(seen, (0..5).collect());
}
