//! Idle workers do not spin (issue 16): a pool with more workers than CPUs, once its
//! work is done, leaves the CPUs to others.

use std::time::{Duration, Instant};

use crate::common::watchdog;
use crate::{LIMIT, pool, square};

/// Time process `pid` has spent on a CPU (`/proc/<pid>/schedstat`, first field, ns).
fn on_cpu(pid: u32) -> Duration {
    let s = std::fs::read_to_string(format!("/proc/{pid}/schedstat"))
        .unwrap_or_else(|e| panic!("schedstat of worker {pid}: {e}"));
    let ns: u64 = s
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("unreadable schedstat of worker {pid}: {s:?}"));
    Duration::from_nanos(ns)
}

#[test]
fn idle_workers_use_under_one_percent_of_a_cpu() {
    let _w = watchdog("idle_workers_use_under_one_percent_of_a_cpu", LIMIT);
    // Four times the CPUs of the machine the issue is about: oversubscribed.
    let p = pool(8);
    // Every worker has had work (its waits were short, so an adaptive spin would be at
    // its longest) and then has none.
    let v = p.options().chunksize(1).map(square, 0..4_000u64).unwrap();
    assert_eq!(v.len(), 4_000);
    let pids = p.worker_pids();
    assert_eq!(pids.len(), 8);
    let before: Vec<Duration> = pids.iter().map(|&w| on_cpu(w)).collect();
    let t0 = Instant::now();
    // The observation window: the pool is left alone for it (a measurement, not a wait
    // for anything).
    std::thread::sleep(Duration::from_secs(3));
    let after: Vec<Duration> = pids.iter().map(|&w| on_cpu(w)).collect();
    let wall = t0.elapsed();
    let used: Duration = after.iter().zip(&before).map(|(a, b)| *a - *b).sum();
    // All eight workers together under 1% of one CPU over the window.
    assert!(
        used < wall / 100,
        "idle workers used {used:?} of CPU in {wall:?} (per worker: {:?})",
        after
            .iter()
            .zip(&before)
            .map(|(a, b)| *a - *b)
            .collect::<Vec<_>>()
    );
    // And the pool still works afterwards.
    assert_eq!(p.map(square, 0..10u64).unwrap()[3], 9);
}
