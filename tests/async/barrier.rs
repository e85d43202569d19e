//! `Barrier::wait_async` across processes: threads and tasks in several processes
//! as parties of one barrier, a party killed while the others await, and what a
//! cancelled wait means for the other parties.

use std::sync::atomic::Ordering;
use std::time::Duration;

use mproc::process::Process;
use mproc::sync::{Barrier, BrokenBarrierError, BrokenReason};

use crate::{Flavor, each_runtime, runtime, ticker, watchdog};

/// Polls `cond` every few milliseconds without blocking the runtime, for at most
/// 20 s; panics with `what` when it never holds.
async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let waited = tokio::time::timeout(Duration::from_secs(20), async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "{what} never happened");
}

/// A barrier whose every wait gives up after 30 s (so that no bug hangs a test).
fn barrier(parties: usize) -> Barrier {
    Barrier::builder(parties)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

fn blocking_party(args: (Barrier, u32)) -> Vec<usize> {
    let (b, cycles) = args;
    (0..cycles).map(|_| b.wait().unwrap()).collect()
}

fn async_party(args: (Barrier, u32)) -> Vec<usize> {
    let (b, cycles) = args;
    runtime(Flavor::CurrentThread).block_on(async move {
        let mut out = Vec::new();
        for _ in 0..cycles {
            out.push(b.wait_async().await.unwrap());
        }
        out
    })
}

/// Four parties, cycle after cycle: a thread in one child, a task in another
/// child's runtime, two tasks here. Every cycle hands out each index once, so no
/// party ever missed a release or was counted in the wrong cycle (a slot reused
/// before its async occupant read its outcome would do either).
#[test]
fn barrier_wait_async_passes_cycles_with_threads_and_tasks_in_several_processes() {
    const CYCLES: u32 = 60;
    each_runtime("barrier wait_async cycles", |_| async {
        let b = barrier(4);
        let thread = Process::start(blocking_party, (b.clone(), CYCLES)).unwrap();
        let task = Process::start(async_party, (b.clone(), CYCLES)).unwrap();
        let locals: Vec<_> = (0..2)
            .map(|_| {
                let b = b.clone();
                tokio::spawn(async move {
                    let mut out = Vec::new();
                    for _ in 0..CYCLES {
                        out.push(b.wait_async().await.unwrap());
                    }
                    out
                })
            })
            .collect();
        let mut all = vec![
            thread.join_async().await.unwrap(),
            task.join_async().await.unwrap(),
        ];
        for l in locals {
            all.push(l.await.unwrap());
        }
        for c in 0..CYCLES as usize {
            let mut idx: Vec<usize> = all.iter().map(|v| v[c]).collect();
            idx.sort_unstable();
            assert_eq!(idx, [0, 1, 2, 3], "cycle {c}");
        }
        assert!(!b.is_broken());
        assert_eq!(b.n_waiting(), 0);
    });
}

#[test]
fn barrier_wait_async_never_blocks_a_current_thread_runtime() {
    fn late_party(b: Barrier) -> usize {
        std::thread::sleep(Duration::from_secs(1));
        b.wait().unwrap()
    }
    let _w = watchdog("barrier ticking", Duration::from_secs(60));
    runtime(Flavor::CurrentThread).block_on(async {
        let ticks = ticker(Duration::from_millis(10));
        let b = barrier(2);
        let child = Process::start(late_party, b.clone()).unwrap();
        tokio::task::yield_now().await;
        let before = ticks.load(Ordering::Relaxed);
        let mine = b.wait_async().await.unwrap();
        let during = ticks.load(Ordering::Relaxed) - before;
        assert!(
            during >= 10,
            "only {during} ticks while wait_async waited 1 s"
        );
        assert_eq!(mine + child.join_async().await.unwrap(), 1);
    });
}

fn blocking_until_killed(b: Barrier) -> Result<usize, BrokenBarrierError> {
    b.wait()
}

fn async_until_killed(b: Barrier) -> Result<usize, BrokenBarrierError> {
    runtime(Flavor::CurrentThread).block_on(b.wait_async())
}

/// Three parties: a child (a thread, or a task in its own runtime) and a task
/// here wait; the child is killed; the task here gets `PartyDied` with the
/// child's pid, and so does a later wait.
fn party_killed_while_others_await(child_fn: fn(Barrier) -> Result<usize, BrokenBarrierError>) {
    each_runtime("barrier party killed", move |_| async move {
        let b = barrier(3);
        let child = Process::start(child_fn, b.clone()).unwrap();
        let pid = child.pid();
        until("the child's arrival", || b.n_waiting() == 1).await;
        let mine = tokio::spawn({
            let b = b.clone();
            async move { b.wait_async().await }
        });
        until("this task's arrival", || b.n_waiting() == 2).await;
        child.kill().unwrap();
        assert!(child.join_async().await.unwrap_err().is_signaled());
        let err = tokio::time::timeout(Duration::from_secs(20), mine)
            .await
            .expect("the waiting task never learnt that a party died")
            .unwrap()
            .unwrap_err();
        assert_eq!(err.reason(), BrokenReason::PartyDied { pid: Some(pid) });
        assert!(b.is_broken());
        assert_eq!(
            b.wait_async().await.unwrap_err().reason(),
            BrokenReason::PartyDied { pid: Some(pid) }
        );
    });
}

#[test]
fn barrier_wait_async_reports_a_blocking_party_killed_while_it_waits() {
    party_killed_while_others_await(blocking_until_killed);
}

#[test]
fn barrier_wait_async_party_killed_is_reported_to_the_others() {
    party_killed_while_others_await(async_until_killed);
}

/// A `wait_async` dropped after its party arrived breaks the barrier: the other
/// party (a thread in a child) gets `Cancelled`, so does every later wait, until a
/// reset, after which the barrier passes again.
#[test]
fn barrier_wait_async_dropped_after_arriving_breaks_the_barrier() {
    each_runtime("barrier cancelled", |_| async {
        let b = barrier(3);
        let child = Process::start(blocking_until_killed, b.clone()).unwrap();
        until("the child's arrival", || b.n_waiting() == 1).await;
        let pending = tokio::spawn({
            let b = b.clone();
            async move { b.wait_async().await }
        });
        until("the task's arrival", || b.n_waiting() == 2).await;
        pending.abort();
        assert!(pending.await.unwrap_err().is_cancelled());
        let theirs = child.join_async().await.unwrap();
        assert_eq!(theirs.unwrap_err().reason(), BrokenReason::Cancelled);
        assert!(b.is_broken());
        assert_eq!(
            b.wait_async().await.unwrap_err().reason(),
            BrokenReason::Cancelled
        );
        b.reset();
        let child = Process::start(blocking_party, (b.clone(), 1)).unwrap();
        let other = tokio::spawn({
            let b = b.clone();
            async move { b.wait_async().await.unwrap() }
        });
        let mine = b.wait_async().await.unwrap();
        let mut idx = vec![
            mine,
            other.await.unwrap(),
            child.join_async().await.unwrap()[0],
        ];
        idx.sort_unstable();
        assert_eq!(idx, [0, 1, 2]);
    });
}

/// The barrier's default timeout applies to `wait_async` as to `wait`: it breaks
/// the barrier with `TimedOut`.
#[test]
fn barrier_wait_async_with_the_default_timeout_times_out_and_breaks() {
    each_runtime("barrier wait_async timeout", |_| async {
        let b = Barrier::builder(2)
            .timeout(Duration::from_millis(100))
            .build()
            .unwrap();
        let err = b.wait_async().await.unwrap_err();
        assert_eq!(err.reason(), BrokenReason::TimedOut);
        assert!(b.is_broken());
    });
}
