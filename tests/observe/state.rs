//! Worker state: made once per worker, handed to every task there, made again
//! in a replacement worker.

use std::collections::HashMap;

use mproc::pool::{Pool, PoolError};
use mproc::process::StartMethod;

use crate::LIMIT;
use crate::common::watchdog;

struct Counter {
    base: u64,
    seen: u64,
}

fn counter(base: u64) -> Counter {
    Counter { base, seen: 0 }
}

fn count(c: &mut Counter, _x: u32) -> (u32, u64) {
    c.seen += 1;
    (std::process::id(), c.base + c.seen)
}

#[test]
fn each_worker_keeps_its_state_across_tasks() {
    let _w = watchdog("worker state", LIMIT);
    for method in StartMethod::ALL {
        let pool = Pool::builder()
            .processes(2)
            .start_method(method)
            .worker_state(counter, 1000)
            .handle_ctrl_c(false)
            .build()
            .unwrap();
        let out = pool.map_with_state(count, 0..200u32).unwrap();
        let mut per_worker: HashMap<u32, Vec<u64>> = HashMap::new();
        for (pid, n) in out {
            per_worker.entry(pid).or_default().push(n);
        }
        // Each worker's counts are 1001, 1002, ... in the order it ran its tasks.
        let mut total = 0;
        for counts in per_worker.values() {
            let mut sorted = counts.clone();
            sorted.sort_unstable();
            let expect: Vec<u64> = (1001..1001 + counts.len() as u64).collect();
            assert_eq!(sorted, expect, "{method:?}");
            total += counts.len();
        }
        assert_eq!(total, 200);
    }
}

#[test]
fn a_replacement_worker_starts_with_a_fresh_state() {
    let _w = watchdog("fresh state after a crash", LIMIT);
    let pool = Pool::builder()
        .processes(1)
        .worker_state(counter, 1000)
        .handle_ctrl_c(false)
        .build()
        .unwrap();
    let first = pool.map_with_state(count, 0..3u32).unwrap();
    assert_eq!(
        first.iter().map(|r| r.1).collect::<Vec<_>>(),
        [1001, 1002, 1003]
    );
    // A panic leaves the worker, and its state, in place.
    let err = pool
        .apply_with_state(
            |c: &mut Counter, _: ()| -> u8 { panic!("seen {}", c.seen) },
            (),
        )
        .unwrap_err();
    assert_eq!(err.panic_message(), Some("seen 3"));
    assert_eq!(pool.apply_with_state(count, 0).unwrap(), (first[0].0, 1004));
    // A worker that dies is replaced, with a fresh state.
    let err = pool
        .apply_with_state(|_: &mut Counter, _: ()| -> u8 { std::process::abort() }, ())
        .unwrap_err();
    assert!(err.is_worker_lost());
    let (pid, n) = pool.apply_with_state(count, 0).unwrap();
    assert_ne!(pid, first[0].0);
    assert_eq!(n, 1001);
}

#[test]
fn a_task_without_the_state_it_wants_fails_with_a_message() {
    let _w = watchdog("missing state", LIMIT);
    let pool = Pool::builder()
        .processes(1)
        .handle_ctrl_c(false)
        .build()
        .unwrap();
    let err = pool.apply_with_state(count, 1).unwrap_err();
    assert!(err.to_string().contains("worker_state"), "{err}");
    let pool = Pool::builder()
        .processes(1)
        .worker_state(|s: String| s, "not a counter".to_string())
        .handle_ctrl_c(false)
        .build()
        .unwrap();
    let err = pool.apply_with_state(count, 1).unwrap_err();
    assert!(err.to_string().contains("Counter"), "{err}");
    // The right type still works on the same worker.
    let n = pool
        .apply_with_state(|s: &mut String, x: usize| s.len() + x, 1)
        .unwrap();
    assert_eq!(n, 14);
}

#[test]
fn a_state_initializer_that_panics_fails_the_build() {
    let _w = watchdog("state init panics", LIMIT);
    let err = Pool::builder()
        .processes(1)
        .worker_state(|_: ()| -> Counter { panic!("no database") }, ())
        .handle_ctrl_c(false)
        .build()
        .unwrap_err();
    assert!(matches!(err, PoolError::Initializer { .. }), "{err}");
    assert!(err.to_string().contains("no database"), "{err}");
}
