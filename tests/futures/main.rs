//! The futures test suite. One behavioural suite runs against both executors (the
//! `conformance!` list at the bottom makes `threads::` and `processes::` variants);
//! process-only behaviours (crashes, kills at a deadline) follow.
#![cfg(not(miri))]

#[path = "../common/mod.rs"]
mod common;

mod issue10;

use issue10::{
    a_slow_callback_blocks_no_other_waiter, a_slow_late_callback_blocks_no_other_waiter,
    first_exception_is_not_a_cancellation, map_ends_after_its_deadline,
    map_submits_every_item_at_once, shutdown_cancels_the_queued_futures,
};

use std::pin::pin;
use std::sync::Arc;
use std::sync::mpsc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use common::{eventually, watchdog};
use mproc::futures::{
    Executor, Future, ProcessPoolExecutor, ReturnWhen, ThreadPoolExecutor, as_completed,
    as_completed_timeout, wait,
};
use mproc::pool::Pool;

const LIMIT: Duration = Duration::from_secs(60);

fn threads() -> ThreadPoolExecutor {
    ThreadPoolExecutor::new(2).expect("threads start")
}

fn processes() -> ProcessPoolExecutor {
    ProcessPoolExecutor::from_pool(
        Pool::builder()
            .processes(2)
            .handle_ctrl_c(false)
            .build()
            .unwrap(),
    )
}

fn sleep_ms(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

fn fail_on_odd(x: u64) -> u64 {
    if x % 2 == 1 {
        panic!("odd {x}");
    }
    x
}

/// A minimal executor for `async` code: polls on this thread, parks between wakes.
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut f = pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park_timeout(Duration::from_millis(100));
    }
}

fn submit_and_result(ex: impl Executor) {
    let _w = watchdog("submit_and_result", LIMIT);
    let f = ex.submit(|(a, b): (u64, u64)| a * b, (6, 7)).unwrap();
    assert_eq!(f.result().unwrap(), 42);
    let futs: Vec<Future<u64>> = (0..50)
        .map(|i| ex.submit(|x: u64| x + 1, i).unwrap())
        .collect();
    let got: Vec<u64> = futs.into_iter().map(|f| f.result().unwrap()).collect();
    assert_eq!(got, (1..51).collect::<Vec<_>>());
    let f = ex.submit(sleep_ms, 10).unwrap();
    f.wait();
    assert!(f.done() && !f.running() && !f.cancelled());
    assert!(f.error().is_none());
    assert_eq!(f.result().unwrap(), 10);
}

fn panics_are_errors(ex: impl Executor) {
    let _w = watchdog("panics_are_errors", LIMIT);
    let f = ex.submit(fail_on_odd, 3).unwrap();
    let e = f.error().unwrap();
    assert!(e.is_panic());
    assert_eq!(e.panic_message(), Some("odd 3"));
    assert!(e.panic_location().unwrap().contains("main.rs"), "{e}");
    assert!(f.result().unwrap_err().is_panic());
    // The executor keeps working.
    assert_eq!(ex.submit(fail_on_odd, 4).unwrap().result().unwrap(), 4);
}

fn map_in_order_with_timeout(ex: impl Executor) {
    let _w = watchdog("map_in_order_with_timeout", LIMIT);
    let got: Vec<u64> = ex
        .map(|x: u64| x * 3, 0..200, None, 1)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(got, (0..200).map(|x| x * 3).collect::<Vec<_>>());
    let got: Vec<u64> = ex
        .map(|x: u64| x * 3, 0..200, Some(Duration::from_secs(30)), 16)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(got.len(), 200);
    let results: Vec<_> = ex.map(fail_on_odd, 0..4, None, 1).unwrap().collect();
    assert!(results[1].as_ref().unwrap_err().is_panic());
    assert_eq!(*results[2].as_ref().unwrap(), 2);
    // A map whose results come too late: a timeout error, the rest cancelled.
    let start = Instant::now();
    let mut it = ex
        .map(
            sleep_ms,
            [1, 1500, 1500, 1500, 1500, 1500],
            Some(Duration::from_millis(300)),
            1,
        )
        .unwrap();
    assert_eq!(it.next().unwrap().unwrap(), 1);
    let e = it.next().unwrap().unwrap_err();
    assert!(e.is_timeout(), "{e}");
    drop(it);
    assert!(start.elapsed() < Duration::from_secs(20));
}

fn cancel_and_shutdown(ex: impl Executor) {
    let _w = watchdog("cancel_and_shutdown", LIMIT);
    let busy: Vec<_> = (0..2).map(|_| ex.submit(sleep_ms, 500).unwrap()).collect();
    assert!(eventually(Duration::from_secs(10), || busy
        .iter()
        .all(|b| b.running())));
    let queued: Vec<_> = (0..20).map(|i| ex.submit(|x: u64| x, i).unwrap()).collect();
    // The last queued one has not started yet: it can be cancelled.
    assert!(queued[19].cancel());
    assert!(queued[19].cancelled());
    ex.shutdown(true, true);
    assert!(ex.submit(|x: u64| x, 1).is_err());
    for b in busy {
        assert_eq!(b.result().unwrap(), 500);
    }
    let mut cancelled = 0;
    for q in queued {
        assert!(q.done());
        match q.result() {
            Ok(_) => {}
            Err(e) => {
                assert!(e.is_cancelled(), "{e}");
                cancelled += 1;
            }
        }
    }
    assert!(
        cancelled >= 14,
        "only {cancelled} of the queued tasks were cancelled"
    );
}

fn shutdown_without_cancel_runs_everything(ex: impl Executor) {
    let _w = watchdog("shutdown_without_cancel", LIMIT);
    let futs: Vec<_> = (0..10)
        .map(|i| ex.submit(|x: u64| x * 2, i).unwrap())
        .collect();
    ex.shutdown(true, false);
    let got: Vec<u64> = futs.into_iter().map(|f| f.result().unwrap()).collect();
    assert_eq!(got, (0..10).map(|x| x * 2).collect::<Vec<_>>());
}

fn as_completed_and_wait(ex: impl Executor) {
    let _w = watchdog("as_completed_and_wait", LIMIT);
    let futs: Vec<_> = [400u64, 10, 200]
        .iter()
        .map(|ms| ex.submit(sleep_ms, *ms).unwrap())
        .collect();
    let order: Vec<u64> = as_completed(futs).map(|f| f.result().unwrap()).collect();
    assert_eq!(order.len(), 3);
    assert_eq!(order[0], 10);
    let mut it = as_completed_timeout(
        vec![ex.submit(sleep_ms, 2000).unwrap()],
        Duration::from_millis(50),
    );
    assert!(it.next().is_none());
    let rest = it.into_remaining();
    assert_eq!(rest.len(), 1);
    let quick = ex.submit(sleep_ms, 1).unwrap();
    let slow = ex.submit(sleep_ms, 1500).unwrap();
    let w = wait(
        vec![quick, slow],
        Some(Duration::from_secs(30)),
        ReturnWhen::FirstCompleted,
    );
    assert_eq!(w.done.len(), 1);
    assert_eq!(w.not_done.len(), 1);
    let bad = ex.submit(fail_on_odd, 1).unwrap();
    let w2 = wait(
        w.not_done.into_iter().chain([bad]),
        Some(Duration::from_secs(30)),
        ReturnWhen::FirstException,
    );
    assert!(w2.done.iter().any(|f| f.error().is_some()));
    let all = wait(
        w2.done.into_iter().chain(w2.not_done).chain(rest),
        Some(Duration::from_secs(30)),
        ReturnWhen::AllCompleted,
    );
    assert_eq!(all.done.len(), 3);
    assert!(all.not_done.is_empty());
    // wait with a timeout returns what is done so far.
    let w3 = wait(
        vec![ex.submit(sleep_ms, 1000).unwrap()],
        Some(Duration::from_millis(20)),
        ReturnWhen::AllCompleted,
    );
    assert_eq!(w3.not_done.len(), 1);
}

fn callbacks_and_await(ex: impl Executor) {
    let _w = watchdog("callbacks_and_await", LIMIT);
    let (tx, rx) = mpsc::channel();
    let f = ex.submit(|x: u64| x + 1, 1).unwrap();
    let tx2 = tx.clone();
    f.add_done_callback(move |r| tx2.send(*r.as_ref().unwrap()).unwrap());
    assert_eq!(rx.recv_timeout(LIMIT).unwrap(), 2);
    // A callback added after completion runs at once.
    f.wait();
    f.add_done_callback(move |r| tx.send(*r.as_ref().unwrap() * 10).unwrap());
    assert_eq!(rx.try_recv().unwrap(), 20);
    assert_eq!(f.result().unwrap(), 2);
    // Await from async code, no runtime.
    let a = ex.submit(sleep_ms, 50).unwrap();
    let b = ex.submit(|x: u64| x * 2, 21).unwrap();
    let sum = block_on(async move { a.await.unwrap() + b.await.unwrap() });
    assert_eq!(sum, 92);
    let e = block_on(ex.submit(fail_on_odd, 7).unwrap()).unwrap_err();
    assert!(e.is_panic());
}

fn result_timeout_gives_the_future_back(ex: impl Executor) {
    let _w = watchdog("result_timeout_gives_the_future_back", LIMIT);
    let f = ex.submit(sleep_ms, 300).unwrap();
    let e = f.result_timeout(Duration::from_millis(1)).unwrap_err();
    assert!(e.is_timeout());
    let f = e.into_inner().unwrap();
    assert_eq!(f.result_timeout(Duration::from_secs(30)).unwrap(), 300);
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod threads {
            $( #[test] fn $name() { super::$name(super::threads()) } )*
        }
        mod processes {
            $( #[test] fn $name() { super::$name(super::processes()) } )*
        }
    };
}

conformance!(
    submit_and_result,
    panics_are_errors,
    map_in_order_with_timeout,
    cancel_and_shutdown,
    shutdown_without_cancel_runs_everything,
    as_completed_and_wait,
    callbacks_and_await,
    result_timeout_gives_the_future_back,
    a_slow_callback_blocks_no_other_waiter,
    a_slow_late_callback_blocks_no_other_waiter,
    first_exception_is_not_a_cancellation,
    shutdown_cancels_the_queued_futures,
    map_submits_every_item_at_once,
    map_ends_after_its_deadline,
);

// Process-only: what threads cannot do.

#[test]
fn a_dead_worker_fails_only_its_future() {
    let _w = watchdog("a_dead_worker_fails_only_its_future", LIMIT);
    let ex = processes();
    let crash = ex
        .submit(|_: ()| -> u64 { std::process::abort() }, ())
        .unwrap();
    let others: Vec<_> = (0..20).map(|i| ex.submit(|x: u64| x, i).unwrap()).collect();
    let e = crash.result().unwrap_err();
    assert!(e.is_worker_lost());
    assert_eq!(e.signal(), Some(6));
    for (i, f) in others.into_iter().enumerate() {
        assert_eq!(f.result().unwrap(), i as u64);
    }
    // No BrokenProcessPool: the executor keeps serving.
    assert_eq!(ex.submit(|x: u64| x + 1, 1).unwrap().result().unwrap(), 2);
}

#[test]
fn a_hung_task_is_killed_at_its_deadline() {
    let _w = watchdog("a_hung_task_is_killed_at_its_deadline", LIMIT);
    let ex = ProcessPoolExecutor::from_pool(
        Pool::builder()
            .processes(2)
            .task_timeout(Duration::from_millis(300))
            .handle_ctrl_c(false)
            .build()
            .unwrap(),
    );
    let hung = ex.submit(sleep_ms, 60_000).unwrap();
    let e = hung.result().unwrap_err();
    assert!(e.is_timeout(), "{e}");
    assert_eq!(ex.submit(sleep_ms, 1).unwrap().result().unwrap(), 1);
}

fn double(x: u64) -> u64 {
    x * 2
}

/// Regression: `Duration::MAX` ("a timeout that never ends") panicked with
/// "overflow when adding duration to instant" in every API below; it now means
/// no deadline.
#[test]
fn a_timeout_of_duration_max_means_no_deadline() {
    let _w = watchdog("a_timeout_of_duration_max_means_no_deadline", LIMIT);
    let max = Duration::MAX;

    let child = mproc::process::Process::start(double, 4).unwrap();
    assert_eq!(child.join_timeout(max).ok(), Some(8));

    let ex = threads();
    let f = ex.submit(double, 1).unwrap();
    assert!(f.wait_timeout(max));
    assert_eq!(f.result_timeout(max).ok(), Some(2));
    let fs: Vec<_> = (0..3).map(|i| ex.submit(double, i).unwrap()).collect();
    let w = wait(fs, Some(max), ReturnWhen::AllCompleted);
    assert_eq!(w.done.len(), 3);
    let fs: Vec<_> = (0..3).map(|i| ex.submit(double, i).unwrap()).collect();
    assert_eq!(as_completed_timeout(fs, max).count(), 3);
    let got: Vec<u64> = ex
        .map(double, 0..4, Some(max), 1)
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(got, vec![0, 2, 4, 6]);

    let pex = processes();
    let got: Vec<u64> = pex
        .map(double, 0..4, Some(max), 1)
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(got, vec![0, 2, 4, 6]);

    let pool = Pool::builder()
        .processes(1)
        .handle_ctrl_c(false)
        .build()
        .unwrap();
    let r = pool.apply_async(double, 5);
    assert!(r.wait_timeout(max));
    assert_eq!(r.get_timeout(max).ok(), Some(10));
    let m = pool.map_async(double, 0..3);
    assert!(m.wait_timeout(max));
    let mut it = pool.imap(double, 0..3);
    assert_eq!(it.next_timeout(max).map(|r| r.unwrap()), Some(0));
    assert!(pool.wait_idle_timeout(max));
}
