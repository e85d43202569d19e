//! `multiprocessing.Pool` scenarios: `_TestPool`, `_TestPoolWorkerErrors`,
//! `_TestPoolWorkerLifetime`, `_TestInitializers` of `_test_multiprocessing.py`.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::Duration;

use mproc::pool::{Pool, PoolError};
use serde::{Deserialize, Serialize, Serializer};

use crate::common::{eventually, is_dead, watchdog};
use crate::{LIMIT, LONG, pool, raise, sleep_ms, sqr};

fn mul(a: u64, b: u64) -> u64 {
    a * b
}

/// An input that panics (Python's `exception_throwing_generator`) after `n` items.
fn panicking_input(n: u64) -> impl Iterator<Item = u64> {
    (0..).inspect(move |&i| {
        if i == n {
            panic!("SayWhenError at {i}");
        }
    })
}

/// A value that cannot be serialized (Python's `Unpicklable`).
#[derive(Debug, Deserialize)]
struct Unpicklable;

impl Serialize for Unpicklable {
    fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("this value cannot be serialized"))
    }
}

/// `_TestPool.test_apply`: `apply` runs one call and returns its value.
#[test]
fn test_apply() {
    let _w = watchdog("test_apply", LIMIT);
    let p = pool(2);
    assert_eq!(p.apply(sqr, 5).unwrap(), 25);
    assert_eq!(p.apply(|(a, b): (u64, u64)| mul(a, b), (3, 4)).unwrap(), 12);
}

/// `_TestPool.test_map`: `map` returns every result in order, with the automatic
/// chunk size and with an explicit one.
#[test]
fn test_map() {
    let _w = watchdog("test_map", LIMIT);
    let p = pool(2);
    let want: Vec<u64> = (0..10).map(|x| x * x).collect();
    assert_eq!(p.map(sqr, 0..10).unwrap(), want);
    let want: Vec<u64> = (0..100).map(|x| x * x).collect();
    assert_eq!(p.options().chunksize(20).map(sqr, 0..100).unwrap(), want);
}

/// `_TestPool.test_starmap`: each tuple's fields become the arguments.
#[test]
fn test_starmap() {
    let _w = watchdog("test_starmap", LIMIT);
    let p = pool(2);
    let pairs: Vec<(u64, u64)> = (0..10).map(|i| (i, i + 1)).collect();
    let want: Vec<u64> = pairs.iter().map(|&(a, b)| a * b).collect();
    assert_eq!(
        p.starmap(mul as fn(u64, u64) -> u64, pairs.clone())
            .unwrap(),
        want
    );
    let got = p
        .options()
        .chunksize(3)
        .starmap(mul as fn(u64, u64) -> u64, pairs)
        .unwrap();
    assert_eq!(got, want);
}

/// `_TestPool.test_map_async`: `map_async` hands back a result to `get` later.
#[test]
fn test_map_async() {
    let _w = watchdog("test_map_async", LIMIT);
    let p = pool(2);
    let r = p.map_async(sqr, 0..10);
    assert!(r.wait_timeout(LONG));
    assert!(r.ready());
    assert_eq!(r.get().unwrap(), (0..10).map(|x| x * x).collect::<Vec<_>>());
}

/// `_TestPool.test_map_async` (huge timeout): `wait_timeout(Duration::MAX)` means
/// no deadline (issue 10 item 7).
#[test]
fn test_map_async_huge_timeout() {
    let _w = watchdog("test_map_async_huge_timeout", LIMIT);
    let p = pool(1);
    let r = p.map_async(sqr, 0..3);
    assert!(r.wait_timeout(Duration::MAX));
    assert_eq!(r.get().unwrap(), [0, 1, 4]);
}

/// `_TestPool.test_map_unplicklable`: an argument that cannot be serialized fails
/// the call with a clear error; the pool goes on.
#[test]
fn test_map_unplicklable() {
    let _w = watchdog("test_map_unplicklable", LIMIT);
    let p = pool(1);
    let err = p
        .map(|_: Unpicklable| 1u8, (0..10).map(|_| Unpicklable))
        .unwrap_err();
    assert!(err.to_string().contains("cannot send"), "{err}");
    let err = p.apply(|_: Unpicklable| 1u8, Unpicklable).unwrap_err();
    assert!(err.to_string().contains("cannot send"), "{err}");
    assert_eq!(p.apply(sqr, 3).unwrap(), 9);
}

/// `_TestPool.test_map_chunksize`: a chunk size larger than the input, and an
/// empty input with a chunk size, both work.
#[test]
fn test_map_chunksize() {
    let _w = watchdog("test_map_chunksize", LIMIT);
    let p = pool(1);
    assert_eq!(p.options().chunksize(100).map(sqr, [1]).unwrap(), [1]);
    assert!(p.options().chunksize(100).map(sqr, []).unwrap().is_empty());
}

/// `_TestPool.test_map_handle_iterable_exception`: an input that raises makes
/// `map` raise, and the pool stays usable.
#[test]
fn test_map_handle_iterable_exception() {
    let _w = watchdog("test_map_handle_iterable_exception", LIMIT);
    let p = pool(1);
    let r = catch_unwind(AssertUnwindSafe(|| p.map(sqr, panicking_input(3))));
    assert!(r.is_err(), "the input's panic did not reach the caller");
    assert_eq!(p.map(sqr, 0..3).unwrap(), [0, 1, 4]);
}

/// `_TestPool.test_async`: `apply_async` + `get`, and `get_timeout` on a finished
/// call.
#[test]
fn test_async() {
    let _w = watchdog("test_async", LIMIT);
    let p = pool(1);
    let r = p.apply_async(sqr, 7);
    assert_eq!(r.get().unwrap(), 49);
    let r = p.apply_async(sqr, 8);
    assert_eq!(r.get_timeout(LONG).unwrap(), 64);
}

/// `_TestPool.test_async_timeout`: `get` with a timeout shorter than the task
/// returns without a value (the handle comes back), and a later `get` succeeds.
#[test]
fn test_async_timeout() {
    let _w = watchdog("test_async_timeout", LIMIT);
    let p = pool(1);
    let r = p.apply_async(sleep_ms, 500);
    let r = match r.get_timeout(Duration::from_millis(1)) {
        Err(Ok(handle)) => handle,
        other => panic!("expected a timeout, got {other:?}"),
    };
    assert!(!r.ready());
    assert_eq!(r.get().unwrap(), 500);
}

/// `_TestPool.test_async` (`successful`): unknown while the task runs, then true
/// or false.
#[test]
fn test_async_successful() {
    let _w = watchdog("test_async_successful", LIMIT);
    let p = pool(1);
    let gate = mproc::sync::Event::new().unwrap();
    let slow = p.apply_async(crate::wait_event, gate.clone());
    assert_eq!(slow.successful(), None);
    gate.set();
    assert!(slow.wait_timeout(LONG));
    assert_eq!(slow.successful(), Some(true));
    let bad = p.apply_async(raise, 1);
    assert!(bad.wait_timeout(LONG));
    assert_eq!(bad.successful(), Some(false));
}

/// `_TestPool.test_imap`: results in input order, with chunk size 1 and 100.
#[test]
fn test_imap() {
    let _w = watchdog("test_imap", LIMIT);
    let p = pool(2);
    let got: Vec<u64> = p.imap(sqr, 0..10).map(Result::unwrap).collect();
    assert_eq!(got, (0..10).map(|x| x * x).collect::<Vec<_>>());
    let mut it = p.options().chunksize(100).imap(sqr, 0..1000);
    for i in 0..1000 {
        assert_eq!(it.next().unwrap().unwrap(), i * i);
    }
    assert!(it.next().is_none());
}

/// `_TestPool.test_imap` (`next(timeout)`): a result not ready in time is a
/// timeout error that leaves the iterator usable; huge timeouts mean none (issue 10
/// item 7).
#[test]
fn test_imap_next_timeout() {
    let _w = watchdog("test_imap_next_timeout", LIMIT);
    let p = pool(1);
    let mut it = p.imap(sleep_ms, [300, 1]);
    let first = it.next_timeout(Duration::from_millis(1)).unwrap();
    assert!(first.unwrap_err().is_timeout());
    assert_eq!(it.next_timeout(Duration::MAX).unwrap().unwrap(), 300);
    assert_eq!(it.next_timeout(LONG).unwrap().unwrap(), 1);
    assert!(it.next_timeout(LONG).is_none());
}

/// `_TestPool.test_imap_handle_iterable_exception`: results computed before the
/// input raised are yielded first, then the error.
#[test]
fn test_imap_handle_iterable_exception() {
    let _w = watchdog("test_imap_handle_iterable_exception", LIMIT);
    let p = pool(1);
    let mut it = p.imap(sqr, panicking_input(3));
    for i in 0..3u64 {
        let r = catch_unwind(AssertUnwindSafe(|| it.next()));
        assert_eq!(
            r.ok().flatten().map(Result::unwrap),
            Some(i * i),
            "item {i}"
        );
    }
    let end = catch_unwind(AssertUnwindSafe(|| it.next()));
    assert!(
        !matches!(end, Ok(Some(Ok(_)))),
        "a value after the input's panic"
    );
}

/// `_TestPool.test_imap_unordered`: every result, in some order.
#[test]
fn test_imap_unordered() {
    let _w = watchdog("test_imap_unordered", LIMIT);
    let p = pool(2);
    let mut got: Vec<u64> = p.imap_unordered(sqr, 0..100).map(Result::unwrap).collect();
    got.sort();
    assert_eq!(got, (0..100).map(|x| x * x).collect::<Vec<_>>());
    let mut got: Vec<u64> = p
        .options()
        .chunksize(53)
        .imap_unordered(sqr, 0..1000)
        .map(Result::unwrap)
        .collect();
    got.sort();
    assert_eq!(got, (0..1000).map(|x| x * x).collect::<Vec<_>>());
}

/// `_TestPool.test_imap_unordered` (a failing task): the error carries its task
/// index, the other results still arrive.
#[test]
fn test_imap_unordered_task_error() {
    let _w = watchdog("test_imap_unordered_task_error", LIMIT);
    let p = pool(2);
    let results: Vec<_> = p
        .imap_unordered(|x: u64| if x == 5 { raise(x) } else { x }, 0..10)
        .collect();
    assert_eq!(results.len(), 10);
    let errs: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].task_index(), Some(5));
    assert_eq!(errs[0].panic_message(), Some("boom 5"));
}

/// `_TestPool.test_make_pool`: a pool of 3 has 3 workers, each its own process.
#[test]
fn test_make_pool() {
    let _w = watchdog("test_make_pool", LIMIT);
    let p = pool(3);
    assert_eq!(p.processes(), 3);
    let pids = p.worker_pids();
    assert_eq!(pids.len(), 3);
    assert!(pids.iter().all(|&pid| pid != std::process::id()));
}

/// `_TestPool.test_make_pool` (`Pool(0)` raises `ValueError`): zero workers is
/// refused with a clear error.
#[test]
fn test_make_pool_zero() {
    let err = Pool::builder()
        .processes(0)
        .handle_ctrl_c(false)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains('0'), "{err}");
}

/// `_TestPool.test_terminate`: `terminate` with tasks queued and running returns
/// promptly; every unfinished task fails as cancelled.
#[test]
fn test_terminate() {
    let _w = watchdog("test_terminate", LIMIT);
    let p = pool(2);
    let results: Vec<_> = (0..6).map(|_| p.apply_async(sleep_ms, 60_000)).collect();
    let pids = p.worker_pids();
    p.terminate();
    for r in results {
        assert!(r.get().unwrap_err().is_cancelled());
    }
    for pid in pids {
        assert!(
            eventually(LONG, || is_dead(pid)),
            "worker {pid} survived terminate"
        );
    }
}

/// `_TestPool.test_empty_iterable`: `map`, `imap`, `imap_unordered`, `starmap`
/// and `map_async` of nothing are empty.
#[test]
fn test_empty_iterable() {
    let _w = watchdog("test_empty_iterable", LIMIT);
    let p = pool(1);
    assert!(p.map(sqr, []).unwrap().is_empty());
    assert!(p.imap(sqr, []).next().is_none());
    assert!(p.imap_unordered(sqr, []).next().is_none());
    assert!(
        p.starmap(mul as fn(u64, u64) -> u64, [])
            .unwrap()
            .is_empty()
    );
    assert!(p.map_async(sqr, []).get().unwrap().is_empty());
}

/// `_TestPool.test_context`: leaving the pool's scope (`with Pool()`) stops its
/// workers.
#[test]
fn test_context() {
    let _w = watchdog("test_context", LIMIT);
    let pids = {
        let p = pool(2);
        assert_eq!(p.map(sqr, 0..4).unwrap(), [0, 1, 4, 9]);
        p.worker_pids()
    };
    for pid in pids {
        assert!(
            eventually(LONG, || is_dead(pid)),
            "worker {pid} outlived its pool"
        );
    }
}

/// `_TestPool.test_traceback`: a task's exception comes back with its message,
/// where it was raised, and a backtrace; the task index and worker are named.
#[test]
fn test_traceback() {
    let _w = watchdog("test_traceback", LIMIT);
    let p = pool(1);
    let err = p.apply(raise, 4).unwrap_err();
    assert!(err.is_panic());
    assert_eq!(err.panic_message(), Some("boom 4"));
    assert!(err.panic_location().unwrap().contains("main.rs"));
    assert!(err.backtrace().is_some());
    assert_eq!(err.task_index(), Some(0));
    assert!(err.worker_pid().is_some());
    assert!(err.to_string().contains("boom 4"), "{err}");
}

/// `_TestPool.test_wrapped_exception`: a raising task does not harm its worker;
/// the next task runs on the same pool.
#[test]
fn test_wrapped_exception() {
    let _w = watchdog("test_wrapped_exception", LIMIT);
    let p = pool(1);
    for _ in 0..3 {
        assert!(p.apply(raise, 1).unwrap_err().is_panic());
        assert_eq!(p.apply(sqr, 2).unwrap(), 4);
    }
    assert_eq!(p.replaced_workers(), 0);
}

/// `_TestPool.test_map_no_failfast`: a failing item fails `map` (the first error
/// by index); the pool then runs the next map normally.
#[test]
fn test_map_no_failfast() {
    let _w = watchdog("test_map_no_failfast", LIMIT);
    let p = pool(2);
    let err = p
        .options()
        .chunksize(1)
        .map(|x: u64| if x % 4 == 3 { raise(x) } else { x }, 0..20)
        .unwrap_err();
    assert!(err.is_panic());
    // The first by index among those that failed; later ones may have been
    // cancelled by then, so any failing index is possible.
    let i = err.task_index().unwrap();
    assert_eq!(i % 4, 3);
    assert_eq!(err.panic_message(), Some(format!("boom {i}").as_str()));
    assert_eq!(p.map(sqr, 0..3).unwrap(), [0, 1, 4]);
}

/// `_TestPool.test_enter`: once the pool is closed, new work is refused.
#[test]
fn test_enter() {
    let _w = watchdog("test_enter", LIMIT);
    let p = pool(1);
    let queued = p.apply_async(sqr, 6);
    p.close();
    assert!(p.apply(sqr, 1).unwrap_err().is_cancelled());
    p.join();
    assert_eq!(queued.get().unwrap(), 36);
}

/// `_TestPool.test_async` (callback): the success callback gets the value.
#[test]
fn test_async_callback() {
    let _w = watchdog("test_async_callback", LIMIT);
    let p = pool(1);
    let (tx, rx) = mpsc::channel();
    let tx2 = tx.clone();
    let r = p.apply_async_with_callbacks(
        sqr,
        9,
        move |v: &u64| tx.send(Ok(*v)).unwrap(),
        move |e| tx2.send(Err(e.to_string())).unwrap(),
    );
    assert_eq!(rx.recv_timeout(LONG).unwrap(), Ok(81));
    assert_eq!(r.get().unwrap(), 81);
}

/// `_TestPoolWorkerErrors.test_async_error_callback`: the error callback gets the
/// task's error.
#[test]
fn test_async_error_callback() {
    let _w = watchdog("test_async_error_callback", LIMIT);
    let p = pool(1);
    let (tx, rx) = mpsc::channel();
    let tx2 = tx.clone();
    let r = p.apply_async_with_callbacks(
        raise,
        2,
        move |v: &u64| tx.send(Ok(*v)).unwrap(),
        move |e| {
            tx2.send(Err(e.panic_message().map(str::to_string)))
                .unwrap()
        },
    );
    assert_eq!(
        rx.recv_timeout(LONG).unwrap(),
        Err(Some("boom 2".to_string()))
    );
    assert!(r.get().unwrap_err().is_panic());
}

/// `_TestPoolWorkerErrors.test_unpickleable_result`: a result that cannot be
/// serialized fails that task only, through the error path; the pool goes on.
#[test]
fn test_unpickleable_result() {
    let _w = watchdog("test_unpickleable_result", LIMIT);
    let p = pool(1);
    let (tx, rx) = mpsc::channel();
    let r = p.apply_async_with_callbacks(
        |_: ()| Unpicklable,
        (),
        |_| {},
        move |e| tx.send(e.to_string()).unwrap(),
    );
    let msg = rx.recv_timeout(LONG).unwrap();
    assert!(msg.contains("serialize"), "{msg}");
    assert!(r.get().is_err());
    assert_eq!(p.apply(sqr, 3).unwrap(), 9);
}

/// `_TestPoolWorkerLifetime.test_pool_worker_lifetime`: with
/// `maxtasksperchild`, workers are replaced as they retire, and every task's
/// result arrives.
#[test]
fn test_pool_worker_lifetime() {
    let _w = watchdog("test_pool_worker_lifetime", LIMIT);
    let p = Pool::builder()
        .processes(2)
        .max_tasks_per_child(10)
        .handle_ctrl_c(false)
        .build()
        .unwrap();
    let first = p.worker_pids();
    let results: Vec<_> = (0..100u64).map(|i| p.apply_async(sqr, i)).collect();
    for (i, r) in results.into_iter().enumerate() {
        assert_eq!(r.get().unwrap(), (i * i) as u64);
    }
    assert!(
        p.replaced_workers() >= 2,
        "{} replaced",
        p.replaced_workers()
    );
    let now = p.worker_pids();
    assert!(
        now.iter().any(|pid| !first.contains(pid)),
        "no worker was replaced"
    );
    p.close();
    p.join();
}

/// `_TestPoolWorkerLifetime.test_pool_worker_lifetime_early_close`: tasks queued
/// before `close` all finish, even while workers retire after each task.
#[test]
fn test_pool_worker_lifetime_early_close() {
    let _w = watchdog("test_pool_worker_lifetime_early_close", LIMIT);
    let p = Pool::builder()
        .processes(1)
        .max_tasks_per_child(1)
        .handle_ctrl_c(false)
        .build()
        .unwrap();
    let results: Vec<_> = (0..6u64).map(|i| p.apply_async(sleep_ms, i * 10)).collect();
    p.close();
    p.join();
    for (i, r) in results.into_iter().enumerate() {
        assert_eq!(r.get().unwrap(), i as u64 * 10);
    }
}

/// `_TestPoolWorkerLifetime.test_pool_maxtasksperchild_invalid`:
/// `maxtasksperchild=0` is refused with a clear error.
#[test]
fn test_pool_maxtasksperchild_invalid() {
    let r = Pool::builder()
        .processes(1)
        .max_tasks_per_child(0)
        .handle_ctrl_c(false)
        .build();
    assert!(r.is_err());
}

static GREETING: OnceLock<String> = OnceLock::new();

/// `_TestInitializers.test_pool_initializer`: the initializer runs in every
/// worker before its first task.
#[test]
fn test_pool_initializer() {
    let _w = watchdog("test_pool_initializer", LIMIT);
    let p = Pool::builder()
        .processes(2)
        .initializer(
            |g: String| {
                let _ = GREETING.set(g);
            },
            "hello".to_string(),
        )
        .handle_ctrl_c(false)
        .build()
        .unwrap();
    let got = p
        .options()
        .chunksize(1)
        .map(|_: u8| GREETING.get().cloned().unwrap_or_default(), 0..8)
        .unwrap();
    assert!(got.iter().all(|g| g == "hello"));
    assert!(
        GREETING.get().is_none(),
        "the initializer ran in the parent"
    );
}

/// `test_init.FailingInitializerMixin.test_initializer` (Python: the executor
/// breaks): mproc's promise is that `build` fails with `PoolError::Initializer`
/// naming the worker and the panic.
#[test]
fn test_pool_initializer_failure() {
    let _w = watchdog("test_pool_initializer_failure", LIMIT);
    let err = Pool::builder()
        .processes(1)
        .initializer(|_: ()| panic!("init failed"), ())
        .handle_ctrl_c(false)
        .build()
        .unwrap_err();
    match &err {
        PoolError::Initializer { reason, .. } => assert!(reason.contains("init failed"), "{err}"),
        other => panic!("unexpected {other}"),
    }
}

/// `ExecutorDeadlockTest.test_crash_during_func_exec_on_worker` (pool variant;
/// Python's `Pool` hangs, cpython #66587): mproc's promise is that only the task on
/// the dead worker fails, with the signal, and the worker is replaced.
#[test]
fn test_crash_during_func_exec_on_worker() {
    let _w = watchdog("test_crash_during_func_exec_on_worker", LIMIT);
    let p = pool(2);
    let crash = p.apply_async(|_: ()| -> u64 { std::process::abort() }, ());
    let fine: Vec<_> = (0..10u64).map(|i| p.apply_async(sqr, i)).collect();
    let err = crash.get().unwrap_err();
    assert!(err.is_worker_lost());
    assert_eq!(err.signal(), Some(6));
    for (i, r) in fine.into_iter().enumerate() {
        assert_eq!(r.get().unwrap(), (i * i) as u64);
    }
    assert!(eventually(LONG, || p.replaced_workers() >= 1));
    assert_eq!(p.map(sqr, 0..4).unwrap(), [0, 1, 4, 9]);
}

/// `ExecutorDeadlockTest.test_exit_during_func_exec_on_worker` (pool variant): a
/// task that calls `exit` fails with the exit code; the pool goes on.
#[test]
fn test_exit_during_func_exec_on_worker() {
    let _w = watchdog("test_exit_during_func_exec_on_worker", LIMIT);
    let p = pool(1);
    let err = p
        .apply(|_: ()| -> u64 { std::process::exit(3) }, ())
        .unwrap_err();
    assert!(err.is_worker_lost());
    assert_eq!(err.exit_status(), Some(mproc::process::ExitStatus::Code(3)));
    assert_eq!(p.apply(sqr, 5).unwrap(), 25);
}

/// `_TestPool.test_async_timeout` (mproc's per-task timeout, which Python's `Pool`
/// lacks): a task past its deadline has its worker killed and fails as a
/// timeout; the pool goes on.
#[test]
fn test_task_timeout_kills_worker() {
    let _w = watchdog("test_task_timeout_kills_worker", LIMIT);
    let p = pool(1);
    let err = p
        .options()
        .timeout(Duration::from_millis(300))
        .apply(sleep_ms, 60_000)
        .unwrap_err();
    assert!(err.is_timeout());
    assert_eq!(err.timeout(), Some(Duration::from_millis(300)));
    assert_eq!(p.apply(sqr, 4).unwrap(), 16);
}

/// `_TestPool.test_release_task_refs` (mproc: an idle pool reports idle, with a
/// huge timeout meaning none, issue 10 item 7).
#[test]
fn test_wait_idle() {
    let _w = watchdog("test_wait_idle", LIMIT);
    let p = pool(1);
    let r = p.apply_async(sleep_ms, 20);
    assert!(p.wait_idle_timeout(Duration::MAX));
    assert!(r.ready());
}

fn victim((e, pid): (mproc::sync::Event, mproc::shm::SharedAtomicU32)) -> bool {
    pid.store(std::process::id(), std::sync::atomic::Ordering::SeqCst);
    crate::wait_event(e)
}

/// Starts a victim task, optionally runs `others` quick tasks beside it, kills the
/// victim's worker from outside, and returns the victim's outcome.
fn kill_running_worker(others: u64) -> Result<bool, mproc::pool::TaskError> {
    use std::sync::atomic::Ordering::SeqCst;
    let p = pool(2);
    let gate = mproc::sync::Event::new().unwrap();
    let pid = mproc::shm::SharedAtomicU32::new(0).unwrap();
    let r = p.apply_async(victim, (gate.clone(), pid.clone()));
    assert!(eventually(LONG, || pid.load(SeqCst) != 0));
    let quick: Vec<_> = (0..others).map(|i| p.apply_async(sqr, i)).collect();
    for (i, q) in quick.into_iter().enumerate() {
        assert_eq!(q.get().unwrap(), (i * i) as u64);
    }
    let pid = pid.load(SeqCst);
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid as i32).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    let out = r.get();
    gate.set();
    out
}

/// `ExecutorDeadlockTest.test_crash_during_func_exec_on_worker` (pool variant, the
/// worker killed from outside with `SIGKILL` while its task waits): mproc's promise
/// is that the task fails as worker-lost with signal 9 (retries default to 0).
#[test]
fn test_worker_killed_from_outside() {
    let _w = watchdog("test_worker_killed_from_outside", LIMIT);
    let err = kill_running_worker(0).unwrap_err();
    assert!(err.is_worker_lost(), "{err}");
    assert_eq!(err.signal(), Some(9));
}

/// As [`test_worker_killed_from_outside`], with quick tasks run on the other
/// worker while the victim waits.
#[test]
fn test_worker_killed_from_outside_after_other_tasks() {
    let _w = watchdog("test_worker_killed_from_outside_after_other_tasks", LIMIT);
    let err = kill_running_worker(6).unwrap_err();
    assert!(err.is_worker_lost(), "{err}");
    assert_eq!(err.signal(), Some(9));
}
