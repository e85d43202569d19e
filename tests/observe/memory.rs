//! Memory limits: a hard limit turns a runaway allocation into an
//! out-of-memory error (and the pool goes on); `max_memory_per_child` retires
//! exactly the workers whose memory passed it.

use std::collections::HashSet;
use std::time::Duration;

use mproc::pool::Pool;
use mproc::process::{Process, StartMethod};

use crate::LIMIT;
use crate::common::{eventually, watchdog};

const HARD: u64 = 256 << 20;

/// Allocates (and touches) `n` bytes; returns their sum.
fn allocate(n: usize) -> usize {
    let v = vec![1u8; n];
    v.iter().map(|b| *b as usize).sum()
}

#[test]
fn a_process_over_its_hard_limit_fails_out_of_memory() {
    let _w = watchdog("process memory limit", LIMIT);
    for method in StartMethod::ALL {
        let child = Process::builder()
            .start_method(method)
            .memory_limit(HARD)
            .start(allocate, 4 << 30)
            .unwrap();
        let err = child.join().unwrap_err();
        assert!(err.is_out_of_memory(), "{method:?}: {err}");
        assert!(err.to_string().contains("256 MiB"), "{err}");
        // Within the limit, the same task runs.
        let child = Process::builder()
            .start_method(method)
            .memory_limit(HARD)
            .start(allocate, 16 << 20)
            .unwrap();
        assert_eq!(child.join().unwrap(), 16 << 20, "{method:?}");
    }
}

#[test]
fn an_abort_without_a_failed_allocation_is_not_out_of_memory() {
    let _w = watchdog("plain abort under a limit", LIMIT);
    let child = Process::builder()
        .memory_limit(HARD)
        .start(|_: ()| -> u8 { std::process::abort() }, ())
        .unwrap();
    let err = child.join().unwrap_err();
    assert!(!err.is_out_of_memory(), "{err}");
    assert_eq!(err.signal(), Some(6));
}

#[test]
fn a_pool_task_over_the_hard_limit_fails_out_of_memory_and_the_next_runs() {
    let _w = watchdog("pool memory limit", LIMIT);
    for method in StartMethod::ALL {
        let pool = Pool::builder()
            .processes(2)
            .start_method(method)
            .memory_limit_per_worker(HARD)
            .retries(3)
            .handle_ctrl_c(false)
            .build()
            .unwrap();
        let err = pool.apply(allocate, 4 << 30).unwrap_err();
        assert!(err.is_out_of_memory(), "{method:?}: {err}");
        assert!(!err.is_worker_lost());
        assert_eq!(err.task_index(), Some(0));
        assert!(err.to_string().contains("ran out of memory"), "{err}");
        // The pool goes on, with a replacement worker.
        assert_eq!(pool.apply(allocate, 8 << 20).unwrap(), 8 << 20);
        let out = pool.map(allocate, vec![1 << 20; 8]).unwrap();
        assert_eq!(out, vec![1 << 20; 8]);
        assert_eq!(pool.replaced_workers(), 1, "{method:?}");
    }
}

/// Touches `mib` MiB when asked, and says which worker ran it.
fn maybe_grow((mib, _i): (usize, usize)) -> u32 {
    if mib > 0 {
        let v = vec![1u8; mib << 20];
        assert_eq!(v.iter().map(|b| *b as usize).sum::<usize>(), mib << 20);
    }
    std::process::id()
}

#[test]
fn max_memory_per_child_retires_exactly_the_workers_that_passed_it() {
    let _w = watchdog("max_memory_per_child", LIMIT);
    for method in [StartMethod::Forkserver, StartMethod::Spawn] {
        let pool = Pool::builder()
            .processes(2)
            .start_method(method)
            .max_memory_per_child(96 << 20)
            .handle_ctrl_c(false)
            .build()
            .unwrap();
        // Every 10th task touches 160 MiB; the others nothing.
        let items: Vec<(usize, usize)> = (0..60)
            .map(|i| (if i % 10 == 3 { 160 } else { 0 }, i))
            .collect();
        let pids = pool
            .options()
            .chunksize(1)
            .map(maybe_grow, items.clone())
            .unwrap();
        let grew: HashSet<u32> = items
            .iter()
            .zip(&pids)
            .filter(|((m, _), _)| *m > 0)
            .map(|(_, p)| *p)
            .collect();
        // Each growing task ran on a worker of its own, which was then retired.
        assert_eq!(grew.len(), 6, "{method:?}: {pids:?}");
        assert!(
            eventually(Duration::from_secs(30), || pool.replaced_workers() == 6
                && pool.worker_pids().iter().all(|p| !grew.contains(p))),
            "{method:?}: replaced {}, live {:?}, grew {grew:?}",
            pool.replaced_workers(),
            pool.worker_pids()
        );
        // Workers that only run small tasks are not retired. (Not asserted on the
        // first map: a task skipped by a retiring worker runs again later, so a
        // worker may run small tasks first and a growing one after; in some runs
        // every worker of the first map grew.)
        let again = pool
            .options()
            .chunksize(1)
            .map(maybe_grow, (0..40).map(|i| (0, i)))
            .unwrap();
        assert_eq!(again.len(), 40);
        assert_eq!(pool.replaced_workers(), 6, "{method:?}");
        let live = pool.worker_pids();
        for p in &again {
            assert!(!grew.contains(p), "{method:?}: a retired worker ran a task");
            assert!(
                live.contains(p),
                "{method:?}: worker {p} was retired: {live:?}"
            );
        }
    }
}
