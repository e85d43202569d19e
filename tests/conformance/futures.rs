//! `concurrent.futures` scenarios: `test_future.py`, `test_wait.py`,
//! `test_as_completed.py`, `executor.py`, `test_shutdown.py`, `test_deadlock.py`,
//! `test_process_pool.py`, `test_thread_pool.py`, `test_init.py`.
//!
//! The scenarios that hold for any executor run on both (`threads::` and
//! `processes::`, from the `both!` list at the bottom).
//!
//! About 1,000 lines: one scenario after another, each naming its CPython source;
//! kept in one file so that the `both!` list stays next to what it instantiates.

use std::pin::pin;
use std::sync::Arc;
use std::sync::mpsc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use mproc::futures::{
    Executor, Future, ProcessPoolExecutor, ReturnWhen, SubmitError, ThreadPoolExecutor,
    as_completed, as_completed_timeout, wait,
};
use mproc::pool::Pool;
use mproc::sync::{Barrier, Event};
use serde::{Deserialize, Serialize, Serializer};

use crate::common::{eventually, is_dead, watchdog};
use crate::{LIMIT, LONG, raise, sqr, wait_event};

fn threads() -> ThreadPoolExecutor {
    ThreadPoolExecutor::new(2).unwrap()
}

fn processes() -> ProcessPoolExecutor {
    ProcessPoolExecutor::from_pool(crate::pool(2))
}

fn mul((a, b): (u64, u64)) -> u64 {
    a * b
}

/// Waits for the event (bounded), then raises.
fn wait_and_raise(e: Event) -> u64 {
    e.wait_timeout(LONG);
    panic!("this is an exception")
}

/// Holds a worker until `e` is set (bounded); returns whether it was.
fn hold(e: Event) -> bool {
    wait_event(e)
}

/// [`hold`] as a number: 1 when the event was set.
fn hold_u64(e: Event) -> u64 {
    hold(e) as u64
}

/// A finished successful future (Python's `SUCCESSFUL_FUTURE`).
fn successful(ex: &impl Executor) -> Future<u64> {
    let f = ex.submit(sqr, 6).unwrap();
    assert!(f.wait_timeout(LONG));
    f
}

/// A finished failed future (Python's `EXCEPTION_FUTURE`).
fn failed(ex: &impl Executor) -> Future<u64> {
    let f = ex.submit(raise, 1).unwrap();
    assert!(f.wait_timeout(LONG));
    f
}

/// A cancelled future (Python's `CANCELLED_AND_NOTIFIED_FUTURE`): queued behind
/// every worker held by `gate`, then cancelled. Returns the holders too.
fn cancelled(ex: &impl Executor, gate: &Event, workers: usize) -> (Future<u64>, Vec<Future<bool>>) {
    let holders: Vec<_> = (0..workers)
        .map(|_| ex.submit(hold, gate.clone()).unwrap())
        .collect();
    let f = ex.submit(sqr, 1).unwrap();
    assert!(f.cancel());
    (f, holders)
}

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

// ---- scenarios run on both executors -----------------------------------------

fn done_callback_with_result(ex: impl Executor) {
    let gate = Event::new().unwrap();
    let f = ex
        .submit(
            |e: Event| if wait_event(e) { 5u64 } else { 0 },
            gate.clone(),
        )
        .unwrap();
    let (tx, rx) = mpsc::channel();
    f.add_done_callback(move |r| tx.send(r.as_ref().ok().copied()).unwrap());
    gate.set();
    assert_eq!(rx.recv_timeout(LONG).unwrap(), Some(5));
}

fn done_callback_with_exception(ex: impl Executor) {
    let f = ex.submit(raise, 3).unwrap();
    let (tx, rx) = mpsc::channel();
    f.add_done_callback(move |r| {
        tx.send(
            r.as_ref()
                .err()
                .and_then(|e| e.panic_message().map(str::to_string)),
        )
        .unwrap()
    });
    assert_eq!(rx.recv_timeout(LONG).unwrap(), Some("boom 3".to_string()));
}

fn done_callback_with_cancel(ex: impl Executor) {
    let gate = Event::new().unwrap();
    let holders: Vec<_> = (0..2)
        .map(|_| ex.submit(hold, gate.clone()).unwrap())
        .collect();
    let f = ex.submit(sqr, 1).unwrap();
    let (tx, rx) = mpsc::channel();
    f.add_done_callback(move |r| tx.send(r.as_ref().err().map(|e| e.is_cancelled())).unwrap());
    assert!(f.cancel());
    assert_eq!(rx.recv_timeout(LONG).unwrap(), Some(true));
    gate.set();
    for h in holders {
        assert!(h.result().unwrap());
    }
}

fn done_callback_raises(ex: impl Executor) {
    let f = ex.submit(sqr, 2).unwrap();
    let (tx, rx) = mpsc::channel();
    f.add_done_callback(|_| panic!("doh!"));
    f.add_done_callback(move |r| tx.send(*r.as_ref().unwrap()).unwrap());
    assert_eq!(rx.recv_timeout(LONG).unwrap(), 4);
    assert_eq!(f.result().unwrap(), 4);
}

fn done_callback_already_successful(ex: impl Executor) {
    let f = successful(&ex);
    let (tx, rx) = mpsc::channel();
    f.add_done_callback(move |r| tx.send(*r.as_ref().unwrap()).unwrap());
    // Runs at once, on this thread.
    assert_eq!(rx.try_recv().unwrap(), 36);
    assert_eq!(f.result().unwrap(), 36);
}

fn done_callback_already_failed(ex: impl Executor) {
    let f = failed(&ex);
    let (tx, rx) = mpsc::channel();
    f.add_done_callback(move |r| tx.send(r.as_ref().err().map(|e| e.is_panic())).unwrap());
    assert_eq!(rx.try_recv().unwrap(), Some(true));
}

fn done_callback_already_cancelled(ex: impl Executor) {
    let gate = Event::new().unwrap();
    let (f, holders) = cancelled(&ex, &gate, 2);
    let (tx, rx) = mpsc::channel();
    f.add_done_callback(move |r| tx.send(r.as_ref().err().map(|e| e.is_cancelled())).unwrap());
    assert_eq!(rx.try_recv().unwrap(), Some(true));
    gate.set();
    for h in holders {
        assert!(h.result().unwrap());
    }
}

fn cancel_states(ex: impl Executor) {
    let gate = Event::new().unwrap();
    let running: Vec<_> = (0..2)
        .map(|_| ex.submit(hold, gate.clone()).unwrap())
        .collect();
    assert!(eventually(LONG, || running.iter().all(|f| f.running())));
    let pending = ex.submit(sqr, 3).unwrap();
    assert!(!pending.running() && !pending.done() && !pending.cancelled());
    // A running future cannot be cancelled.
    assert!(!running[0].cancel());
    assert!(!running[0].cancelled());
    // A pending one can, and stays cancelled.
    assert!(pending.cancel());
    assert!(pending.cancelled() && pending.done() && !pending.running());
    assert!(pending.cancel());
    assert!(pending.result().unwrap_err().is_cancelled());
    gate.set();
    for f in running {
        assert!(f.wait_timeout(LONG));
        assert!(!f.cancel(), "a finished future cannot be cancelled");
        assert!(!f.cancelled() && f.done() && !f.running());
        assert!(f.result().unwrap());
    }
}

fn result_with_timeout(ex: impl Executor) {
    let gate = Event::new().unwrap();
    let f = ex.submit(hold, gate.clone()).unwrap();
    let err = f.result_timeout(Duration::from_millis(1)).unwrap_err();
    assert!(err.is_timeout());
    let f = err.into_inner().unwrap();
    gate.set();
    assert!(f.result_timeout(LONG).unwrap());
}

fn result_with_success(ex: impl Executor) {
    let f = ex.submit(mul, (6, 7)).unwrap();
    assert_eq!(f.result().unwrap(), 42);
}

fn result_with_cancel(ex: impl Executor) {
    let gate = Event::new().unwrap();
    let (f, holders) = cancelled(&ex, &gate, 2);
    let err = f.result_timeout(LONG).unwrap_err();
    assert!(err.task_error().unwrap().is_cancelled());
    gate.set();
    for h in holders {
        assert!(h.result().unwrap());
    }
}

fn exception_with_success(ex: impl Executor) {
    let f = successful(&ex);
    assert!(f.error().is_none());
    assert_eq!(f.result().unwrap(), 36);
    let f = failed(&ex);
    assert_eq!(f.error().unwrap().panic_message(), Some("boom 1"));
}

fn result_await(ex: impl Executor) {
    let f = ex.submit(sqr, 12).unwrap();
    assert_eq!(block_on(f).unwrap(), 144);
}

fn as_completed_no_timeout(ex: impl Executor) {
    let a = successful(&ex);
    let b = failed(&ex);
    let c = ex.submit(mul, (5, 2)).unwrap();
    let mut outcomes: Vec<String> = as_completed(vec![a, b, c])
        .map(|f| match f.result() {
            Ok(v) => v.to_string(),
            Err(e) => e.panic_message().unwrap_or("?").to_string(),
        })
        .collect();
    outcomes.sort();
    assert_eq!(outcomes, ["10", "36", "boom 1"]);
}

fn as_completed_future_times_out(ex: impl Executor) {
    let gate = Event::new().unwrap();
    let done = successful(&ex);
    let slow = ex.submit(hold_u64, gate.clone()).unwrap();
    let mut it = as_completed_timeout(vec![done, slow], Duration::from_millis(100));
    assert_eq!(it.next().unwrap().result().unwrap(), 36);
    assert!(it.next().is_none());
    let rest = it.into_remaining();
    assert_eq!(rest.len(), 1);
    gate.set();
    for f in rest {
        assert_eq!(f.result().unwrap(), 1);
    }
}

fn as_completed_huge_timeout(ex: impl Executor) {
    let fs: Vec<_> = (0..4u64).map(|i| ex.submit(sqr, i).unwrap()).collect();
    let mut got: Vec<u64> = as_completed_timeout(fs, Duration::MAX)
        .map(|f| f.result().unwrap())
        .collect();
    got.sort();
    assert_eq!(got, [0, 1, 4, 9]);
}

fn wait_first_completed(ex: impl Executor) {
    let gate = Event::new().unwrap();
    let f1 = ex.submit(mul, (21, 2)).unwrap();
    let f2 = ex.submit(hold_u64, gate.clone()).unwrap();
    assert!(f1.wait_timeout(LONG));
    let w = wait(vec![f1, f2], Some(LONG), ReturnWhen::FirstCompleted);
    assert_eq!(w.done.len(), 1);
    assert_eq!(w.not_done.len(), 1);
    gate.set();
    let mut done = w.done.into_iter();
    assert_eq!(done.next().unwrap().result().unwrap(), 42);
    assert_eq!(w.not_done.into_iter().next().unwrap().result().unwrap(), 1);
}

fn wait_first_completed_some_already_completed(ex: impl Executor) {
    let gate = Event::new().unwrap();
    let held = ex.submit(hold_u64, gate.clone()).unwrap();
    let fs = vec![successful(&ex), failed(&ex), held];
    let w = wait(fs, Some(LONG), ReturnWhen::FirstCompleted);
    assert_eq!(w.done.len(), 2);
    assert_eq!(w.not_done.len(), 1);
    gate.set();
    assert_eq!(w.not_done.into_iter().next().unwrap().result().unwrap(), 1);
}

fn wait_first_exception(ex: impl Executor) {
    let e1 = Event::new().unwrap();
    let e2 = Event::new().unwrap();
    let f1 = ex.submit(mul, (2, 21)).unwrap();
    let f2 = ex.submit(wait_and_raise, e1.clone()).unwrap();
    assert!(f1.wait_timeout(LONG));
    let f3 = ex.submit(hold_u64, e2.clone()).unwrap();
    e1.set();
    let w = wait(vec![f1, f2, f3], Some(LONG), ReturnWhen::FirstException);
    assert_eq!(w.done.len(), 2);
    assert_eq!(w.not_done.len(), 1);
    assert_eq!(w.done.iter().filter(|f| f.error().is_some()).count(), 1);
    e2.set();
    assert_eq!(w.not_done.into_iter().next().unwrap().result().unwrap(), 1);
}

fn wait_first_exception_one_already_failed(ex: impl Executor) {
    let gate = Event::new().unwrap();
    let bad = failed(&ex);
    let held = ex.submit(hold_u64, gate.clone()).unwrap();
    let w = wait(vec![bad, held], Some(LONG), ReturnWhen::FirstException);
    assert_eq!(w.done.len(), 1);
    assert!(w.done[0].error().is_some());
    assert_eq!(w.not_done.len(), 1);
    gate.set();
    assert_eq!(w.not_done.into_iter().next().unwrap().result().unwrap(), 1);
}

fn wait_first_exception_cancelled_is_not_an_exception(ex: impl Executor) {
    // The finished future first: once the holders occupy every worker, nothing
    // else runs until the gate opens.
    let ok = successful(&ex);
    let gate = Event::new().unwrap();
    let (cancelled_f, holders) = cancelled(&ex, &gate, 2);
    // Held by the gate too, wherever the pool places it: it cannot finish before
    // the gate opens (Python's test uses a future that never completes).
    let pending = ex.submit(hold_u64, gate.clone()).unwrap();
    let w = wait(
        vec![ok, cancelled_f, pending],
        Some(Duration::from_millis(200)),
        ReturnWhen::FirstException,
    );
    // Python: a cancelled future is done but did not raise, so FIRST_EXCEPTION
    // waits on (here, until its timeout) with the held future not done.
    assert_eq!(w.done.len(), 2);
    assert_eq!(w.not_done.len(), 1);
    gate.set();
    for h in holders {
        assert!(h.result().unwrap());
    }
    for f in w.not_done {
        assert_eq!(f.result().unwrap(), 1);
    }
}

fn wait_all_completed(ex: impl Executor) {
    let fs = vec![
        successful(&ex),
        failed(&ex),
        ex.submit(raise, 2).unwrap(),
        ex.submit(mul, (2, 21)).unwrap(),
    ];
    let w = wait(fs, Some(LONG), ReturnWhen::AllCompleted);
    assert_eq!(w.done.len(), 4);
    assert!(w.not_done.is_empty());
    let errors = w.done.iter().filter(|f| f.error().is_some()).count();
    assert_eq!(errors, 2);
}

fn wait_timeout(ex: impl Executor) {
    let gate = Event::new().unwrap();
    let fs = vec![
        successful(&ex),
        failed(&ex),
        ex.submit(|e: Event| hold_u64(e) * 9, gate.clone()).unwrap(),
    ];
    let w = wait(
        fs,
        Some(Duration::from_millis(50)),
        ReturnWhen::AllCompleted,
    );
    assert_eq!(w.done.len(), 2);
    assert_eq!(w.not_done.len(), 1);
    gate.set();
    assert_eq!(w.not_done.into_iter().next().unwrap().result().unwrap(), 9);
}

fn wait_huge_timeout(ex: impl Executor) {
    let fs: Vec<_> = (0..3u64).map(|i| ex.submit(sqr, i).unwrap()).collect();
    let w = wait(fs, Some(Duration::MAX), ReturnWhen::AllCompleted);
    assert_eq!(w.done.len(), 3);
}

fn pending_calls_race(ex: impl Executor) {
    let gate = Event::new().unwrap();
    let fs: Vec<_> = (0..100)
        .map(|_| ex.submit(hold, gate.clone()).unwrap())
        .collect();
    gate.set();
    let w = wait(fs, Some(LONG), ReturnWhen::AllCompleted);
    assert_eq!(w.done.len(), 100);
    assert!(w.done.into_iter().all(|f| f.result().unwrap()));
}

fn submit(ex: impl Executor) {
    let f = ex.submit(|(b, e): (u64, u32)| b.pow(e), (2, 8)).unwrap();
    assert_eq!(f.result().unwrap(), 256);
}

fn map(ex: impl Executor) {
    let got: Vec<u64> = ex
        .map(sqr, 0..10, None, 1)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(got, (0..10).map(|x| x * x).collect::<Vec<_>>());
    let got: Vec<u64> = ex
        .map(sqr, 0..10, None, 3)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(got, (0..10).map(|x| x * x).collect::<Vec<_>>());
}

fn map_exception(ex: impl Executor) {
    let mut it = ex
        .map(
            |x: u64| if x == 2 { raise(x) } else { 10 / (x + 1) },
            0..4,
            None,
            1,
        )
        .unwrap();
    assert_eq!(it.next().unwrap().unwrap(), 10);
    assert_eq!(it.next().unwrap().unwrap(), 5);
    assert_eq!(
        it.next().unwrap().unwrap_err().panic_message(),
        Some("boom 2")
    );
}

fn map_timeout_ends_iteration(ex: impl Executor) {
    let gate = Event::new().unwrap();
    let items = vec![
        (gate.clone(), false),
        (gate.clone(), false),
        (gate.clone(), true),
        (gate.clone(), false),
    ];
    let mut it = ex
        .map(
            |(e, wait): (Event, bool)| if wait { hold(e) } else { true },
            items,
            Some(Duration::from_secs(3)),
            1,
        )
        .unwrap();
    assert!(it.next().unwrap().unwrap());
    assert!(it.next().unwrap().unwrap());
    assert!(it.next().unwrap().unwrap_err().is_timeout());
    let ended = it.next().is_none();
    gate.set();
    assert!(ended, "the iteration goes on after the timeout error");
}

fn map_huge_timeout(ex: impl Executor) {
    let got: Vec<u64> = ex
        .map(sqr, 0..4, Some(Duration::MAX), 1)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(got, [0, 1, 4, 9]);
}

fn map_submits_without_iteration(ex: impl Executor) {
    let q: mproc::queue::Queue<u64> = mproc::queue::Queue::new().unwrap();
    let items: Vec<_> = (0..4u64).map(|i| (q.clone(), i)).collect();
    let it = ex
        .map(
            |(q, i): (mproc::queue::Queue<u64>, u64)| q.put(i).is_ok(),
            items,
            None,
            1,
        )
        .unwrap();
    ex.shutdown(true, false);
    let mut got: Vec<u64> = (0..4).map(|_| q.get_timeout(LONG).unwrap()).collect();
    got.sort();
    assert_eq!(got, [0, 1, 2, 3]);
    drop(it);
}

fn run_after_shutdown(ex: impl Executor) {
    ex.shutdown(true, false);
    assert_eq!(ex.submit(sqr, 1).unwrap_err(), SubmitError::Closed);
}

fn hang_issue12364(ex: impl Executor) {
    let fs: Vec<_> = (0..20u64)
        .map(|i| ex.submit(crate::sleep_ms, i % 3).unwrap())
        .collect();
    ex.shutdown(true, false);
    for (i, f) in fs.into_iter().enumerate() {
        assert!(f.done());
        assert_eq!(f.result().unwrap(), i as u64 % 3);
    }
}

fn shutdown_no_wait(ex: impl Executor) {
    let gate = Event::new().unwrap();
    let f = ex.submit(hold, gate.clone()).unwrap();
    ex.shutdown(false, false);
    assert!(ex.submit(sqr, 1).is_err());
    gate.set();
    assert!(f.result_timeout(LONG).unwrap());
}

fn cancel_futures_fail_as_cancelled(ex: impl Executor) {
    let gate = Event::new().unwrap();
    let holders: Vec<_> = (0..2)
        .map(|_| ex.submit(hold, gate.clone()).unwrap())
        .collect();
    assert!(eventually(LONG, || holders.iter().all(|f| f.running())));
    let queued: Vec<_> = (0..10u64).map(|i| ex.submit(sqr, i).unwrap()).collect();
    let releaser = std::thread::spawn(move || {
        // Let the shutdown below cancel first: it does so before waiting.
        gate.set();
    });
    ex.shutdown(true, true);
    releaser.join().unwrap();
    for h in holders {
        assert!(h.result().unwrap());
    }
    for f in queued {
        // Either cancelled by shutdown or (if a worker was freed first) run.
        match f.result() {
            Ok(_) => {}
            Err(e) => assert!(e.is_cancelled(), "{e}"),
        }
    }
}

fn cancel_futures_are_cancelled(ex: impl Executor) {
    let gate = Event::new().unwrap();
    let holders: Vec<_> = (0..2)
        .map(|_| ex.submit(hold, gate.clone()).unwrap())
        .collect();
    assert!(eventually(LONG, || holders.iter().all(|f| f.running())));
    let queued: Vec<_> = (0..10u64).map(|i| ex.submit(sqr, i).unwrap()).collect();
    ex.shutdown(false, true);
    let n_cancelled = queued.iter().filter(|f| f.cancelled()).count();
    gate.set();
    for h in holders {
        assert!(h.result().unwrap());
    }
    assert_eq!(
        n_cancelled, 10,
        "test_cancel_futures: cancelled() after shutdown"
    );
}

fn deadlock_error_during_func_exec(ex: impl Executor) {
    let err = ex.submit(raise, 9).unwrap().result().unwrap_err();
    assert!(err.is_panic());
    assert_eq!(err.panic_message(), Some("boom 9"));
    assert_eq!(ex.submit(sqr, 3).unwrap().result().unwrap(), 9);
}

macro_rules! both {
    ($($(#[$doc:meta])* $name:ident $(#[$ti:meta])? $(, #[$pi:meta])?;)*) => {
        mod threads {
            use super::*;
            $(
                $(#[$doc])*
                #[test]
                $(#[$ti])?
                fn $name() {
                    let _w = watchdog(stringify!($name), LIMIT);
                    super::$name(threads());
                }
            )*
        }
        mod processes {
            use super::*;
            $(
                $(#[$doc])*
                #[test]
                $(#[$pi])?
                fn $name() {
                    let _w = watchdog(stringify!($name), LIMIT);
                    super::$name(processes());
                }
            )*
        }
    };
}

both! {
    /// `FutureTests.test_done_callback_with_result`: the callback gets the value.
    done_callback_with_result;
    /// `FutureTests.test_done_callback_with_exception`: the callback gets the error.
    done_callback_with_exception;
    /// `FutureTests.test_done_callback_with_cancel`: cancelling runs the callback
    /// with a cancelled error.
    done_callback_with_cancel;
    /// `FutureTests.test_done_callback_raises`: a panicking callback is ignored and
    /// the next callback still runs.
    done_callback_raises;
    /// `FutureTests.test_done_callback_already_successful`: added to a finished
    /// future, the callback runs at once.
    done_callback_already_successful;
    /// `FutureTests.test_done_callback_already_failed`.
    done_callback_already_failed;
    /// `FutureTests.test_done_callback_already_cancelled`.
    done_callback_already_cancelled;
    /// `FutureTests.test_cancel`, `test_cancelled`, `test_done`, `test_running`:
    /// the states of pending, running, cancelled and finished futures.
    cancel_states;
    /// `FutureTests.test_result_with_timeout`: a timeout gives the future back.
    result_with_timeout;
    /// `FutureTests.test_result_with_success`.
    result_with_success;
    /// `FutureTests.test_result_with_cancel`: the result of a cancelled future is a
    /// cancelled error.
    result_with_cancel;
    /// `FutureTests.test_exception_with_success`: `error()` is `None` for a success
    /// and the task's error for a failure.
    exception_with_success;
    /// `FutureTests.test_result_with_success` through `.await` (Python's
    /// `asyncio.wrap_future`).
    result_await;
    /// `AsCompletedTests.test_no_timeout`: every future, finished or not.
    as_completed_no_timeout;
    /// `AsCompletedTests.test_future_times_out`: the finished ones are yielded, the
    /// rest are left at the timeout.
    as_completed_future_times_out;
    /// `AsCompletedTests.test_no_timeout` with a huge timeout (issue 10 item 7).
    as_completed_huge_timeout;
    /// `WaitTests.test_first_completed`.
    wait_first_completed;
    /// `WaitTests.test_first_completed_some_already_completed`.
    wait_first_completed_some_already_completed;
    /// `WaitTests.test_first_exception`: returns when a future raises, with the
    /// held one not done.
    wait_first_exception;
    /// `WaitTests.test_first_exception_one_already_failed`.
    wait_first_exception_one_already_failed;
    /// `WaitTests.test_first_exception_some_already_complete`: a cancelled future
    /// does not count as an exception.
    wait_first_exception_cancelled_is_not_an_exception;
    /// `WaitTests.test_all_completed`.
    wait_all_completed;
    /// `WaitTests.test_timeout`: at the timeout, the finished are done, the held one
    /// is not.
    wait_timeout;
    /// `WaitTests.test_timeout` with a huge timeout (issue 10 item 7).
    wait_huge_timeout;
    /// `ThreadPoolWaitTests.test_pending_calls_race`: 100 futures released at once,
    /// `ALL_COMPLETED` sees all of them.
    pending_calls_race;
    /// `ExecutorTest.test_submit`.
    submit;
    /// `ExecutorTest.test_map` (with and without a chunk size).
    map;
    /// `ExecutorTest.test_map_exception`: results up to the failing item, then its
    /// error.
    map_exception;
    /// `ExecutorTest.test_map_timeout`: results until the deadline, then one timeout
    /// error, then the iteration ends (issue 10 item 6: one behaviour for both).
    map_timeout_ends_iteration;
    /// `ExecutorTest.test_map_timeout` with a huge timeout (issue 10 item 7).
    map_huge_timeout;
    /// `ThreadPoolExecutorTest.test_map_submits_without_iteration`: every call runs
    /// although the map was never iterated.
    map_submits_without_iteration;
    /// `GeneralShutdownTests.test_run_after_shutdown`.
    run_after_shutdown;
    /// `ThreadPoolShutdownTest.test_hang_issue12364`: `shutdown(wait)` returns once
    /// every queued task has run.
    hang_issue12364;
    /// `GeneralShutdownTests.test_shutdown_no_wait`: returns at once; the running
    /// task still finishes.
    shutdown_no_wait;
    /// `GeneralShutdownTests.test_cancel_futures` (outcomes): queued futures fail as
    /// cancelled, running ones finish.
    cancel_futures_fail_as_cancelled;
    /// `GeneralShutdownTests.test_cancel_futures_wait_false`: the futures that
    /// shutdown cancelled report `cancelled()`.
    cancel_futures_are_cancelled;
    /// `ExecutorDeadlockTest.test_error_during_func_exec_on_worker`.
    deadlock_error_during_func_exec;
}

// ---- one executor only -------------------------------------------------------

/// `FutureTests.test_done_callback_already_successful` with another waiter: while a
/// slow callback runs on a finished future, `wait_timeout` on the same future
/// returns at once.
#[test]
fn slow_done_callback_does_not_block_waiters() {
    let _w = watchdog("slow_done_callback_does_not_block_waiters", LIMIT);
    let ex = threads();
    let f = Arc::new(successful(&ex));
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let (entered_tx, entered_rx) = mpsc::channel::<()>();
    let cb_future = Arc::clone(&f);
    let t = std::thread::spawn(move || {
        cb_future.add_done_callback(move |_| {
            entered_tx.send(()).unwrap();
            let _ = release_rx.recv_timeout(LONG);
        });
    });
    entered_rx.recv_timeout(LONG).unwrap();
    let prompt = f.wait_timeout(Duration::from_secs(5));
    release_tx.send(()).unwrap();
    t.join().unwrap();
    assert!(prompt, "wait_timeout stalled behind a running callback");
}

/// `ProcessPoolExecutorTest.test_killed_child` (Python: `BrokenProcessPool` for
/// every future): mproc's promise is that only the killed worker's task fails, the
/// executor keeps working.
#[test]
fn test_killed_child() {
    let _w = watchdog("test_killed_child", LIMIT);
    fn victim((e, pid): (Event, mproc::shm::SharedAtomicU32)) -> u64 {
        pid.store(std::process::id(), std::sync::atomic::Ordering::SeqCst);
        hold_u64(e)
    }
    let ex = processes();
    let gate = Event::new().unwrap();
    let pid = mproc::shm::SharedAtomicU32::new(0).unwrap();
    let victim = ex.submit(victim, (gate.clone(), pid.clone())).unwrap();
    assert!(eventually(LONG, || pid
        .load(std::sync::atomic::Ordering::SeqCst)
        != 0));
    let others: Vec<_> = (0..6u64).map(|i| ex.submit(sqr, i).unwrap()).collect();
    for (i, f) in others.into_iter().enumerate() {
        assert_eq!(f.result().unwrap(), (i * i) as u64);
    }
    let pid = pid.load(std::sync::atomic::Ordering::SeqCst);
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid as i32).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    let err = victim.result().unwrap_err();
    assert!(err.is_worker_lost(), "{err}");
    assert_eq!(err.signal(), Some(9));
    assert_eq!(ex.submit(sqr, 7).unwrap().result().unwrap(), 49);
    gate.set();
}

/// `ExecutorDeadlockTest.test_crash_during_func_exec_on_worker`: Python breaks the
/// executor; mproc's promise is that the crashing task fails as worker-lost and the
/// next one runs.
#[test]
fn test_crash_during_func_exec_on_worker() {
    let _w = watchdog("test_crash_during_func_exec_on_worker", LIMIT);
    let ex = processes();
    let err = ex
        .submit(|_: ()| -> u64 { std::process::abort() }, ())
        .unwrap()
        .result()
        .unwrap_err();
    assert!(err.is_worker_lost());
    assert_eq!(err.signal(), Some(6));
    assert_eq!(ex.submit(sqr, 3).unwrap().result().unwrap(), 9);
}

/// `ExecutorDeadlockTest.test_exit_during_func_exec_on_worker`.
#[test]
fn test_exit_during_func_exec_on_worker() {
    let _w = watchdog("test_exit_during_func_exec_on_worker", LIMIT);
    let ex = processes();
    let err = ex
        .submit(|_: ()| -> u64 { std::process::exit(1) }, ())
        .unwrap()
        .result()
        .unwrap_err();
    assert!(err.is_worker_lost());
    assert_eq!(err.exit_status(), Some(mproc::process::ExitStatus::Code(1)));
    assert_eq!(ex.submit(sqr, 3).unwrap().result().unwrap(), 9);
}

#[derive(Debug, Deserialize)]
struct Unpicklable;

impl Serialize for Unpicklable {
    fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("this value cannot be serialized"))
    }
}

/// `ExecutorDeadlockTest.test_error_at_task_pickle`: an argument that cannot be
/// serialized is refused at `submit`.
#[test]
fn test_error_at_task_pickle() {
    let _w = watchdog("test_error_at_task_pickle", LIMIT);
    let ex = processes();
    match ex.submit(|_: Unpicklable| 1u8, Unpicklable) {
        Err(SubmitError::Encode(msg)) => assert!(msg.contains("serialize"), "{msg}"),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(ex.submit(sqr, 2).unwrap().result().unwrap(), 4);
}

/// `ExecutorDeadlockTest.test_error_during_result_pickle_on_worker`: a result that
/// cannot be serialized fails that future; the executor goes on.
#[test]
fn test_error_during_result_pickle_on_worker() {
    let _w = watchdog("test_error_during_result_pickle_on_worker", LIMIT);
    let ex = processes();
    let err = ex
        .submit(|_: ()| Unpicklable, ())
        .unwrap()
        .result()
        .unwrap_err();
    assert!(err.to_string().contains("serialize"), "{err}");
    assert_eq!(ex.submit(sqr, 2).unwrap().result().unwrap(), 4);
}

/// `ProcessPoolExecutorTest.test_max_tasks_per_child`: workers retire after their
/// quota and the executor goes on.
#[test]
fn test_max_tasks_per_child() {
    let _w = watchdog("test_max_tasks_per_child", LIMIT);
    let pool = Pool::builder()
        .processes(1)
        .max_tasks_per_child(3)
        .handle_ctrl_c(false)
        .build()
        .unwrap();
    let ex = ProcessPoolExecutor::from_pool(pool);
    let pids: Vec<u32> = (0..6)
        .map(|_| {
            ex.submit(|_: ()| std::process::id(), ())
                .unwrap()
                .result()
                .unwrap()
        })
        .collect();
    assert_eq!(pids[0], pids[2]);
    assert_ne!(pids[2], pids[3]);
    assert_eq!(pids[3], pids[5]);
}

/// `ProcessPoolExecutorTest.test_max_workers_too_large` / `ExecutorTest`'s
/// `max_workers=0` raises `ValueError`: zero workers is refused.
#[test]
fn test_max_workers_zero() {
    assert!(ProcessPoolExecutor::new(0).is_err());
    assert!(ThreadPoolExecutor::new(0).is_err());
}

/// `ProcessPoolShutdownTest.test_processes_terminate`: after `shutdown(wait)` the
/// worker processes are gone.
#[test]
fn test_processes_terminate() {
    let _w = watchdog("test_processes_terminate", LIMIT);
    let ex = processes();
    assert_eq!(ex.submit(sqr, 2).unwrap().result().unwrap(), 4);
    let pids = ex.pool().worker_pids();
    ex.shutdown(true, false);
    for pid in pids {
        assert!(
            eventually(LONG, || is_dead(pid)),
            "worker {pid} survived shutdown"
        );
    }
}

/// `ProcessPoolShutdownTest.test_context_manager_shutdown`: leaving the scope
/// (drop) waits for submitted work.
#[test]
fn test_context_manager_shutdown() {
    let _w = watchdog("test_context_manager_shutdown", LIMIT);
    let fs: Vec<_> = {
        let ex = processes();
        (0..4u64)
            .map(|i| ex.submit(crate::sleep_ms, i * 10).unwrap())
            .collect()
    };
    for (i, f) in fs.into_iter().enumerate() {
        assert!(f.done());
        assert_eq!(f.result().unwrap(), i as u64 * 10);
    }
}

/// `ThreadPoolExecutorTest.test_saturation`: `n` threads run `n` tasks at once.
#[test]
fn test_saturation() {
    let _w = watchdog("test_saturation", LIMIT);
    let ex = ThreadPoolExecutor::new(4).unwrap();
    let b = Barrier::new(5).unwrap();
    let fs: Vec<_> = (0..4)
        .map(|_| {
            ex.submit(|b: Barrier| b.wait_timeout(LONG).is_ok(), b.clone())
                .unwrap()
        })
        .collect();
    assert!(
        b.wait_timeout(LONG).is_ok(),
        "the four tasks did not run together"
    );
    assert!(fs.into_iter().all(|f| f.result().unwrap()));
}

/// `ProcessPoolExecutorTest.test_saturation`-style: two workers run two tasks at
/// once (a barrier in shared memory between the worker processes).
#[test]
fn test_process_saturation() {
    let _w = watchdog("test_process_saturation", LIMIT);
    let ex = processes();
    let b = Barrier::new(3).unwrap();
    let fs: Vec<_> = (0..2)
        .map(|_| {
            ex.submit(|b: Barrier| b.wait_timeout(LONG).is_ok(), b.clone())
                .unwrap()
        })
        .collect();
    assert!(b.wait_timeout(LONG).is_ok());
    assert!(fs.into_iter().all(|f| f.result().unwrap()));
}

static INIT: std::sync::OnceLock<u64> = std::sync::OnceLock::new();

/// `InitializerMixin.test_initializer`: the initializer's state is seen by every
/// task.
#[test]
fn test_initializer() {
    let _w = watchdog("test_initializer", LIMIT);
    let pool = Pool::builder()
        .processes(2)
        .initializer(
            |v: u64| {
                let _ = INIT.set(v);
            },
            17,
        )
        .handle_ctrl_c(false)
        .build()
        .unwrap();
    let ex = ProcessPoolExecutor::from_pool(pool);
    let got: Vec<u64> = (0..6)
        .map(|_| {
            ex.submit(|_: ()| INIT.get().copied().unwrap_or(0), ())
                .unwrap()
        })
        .map(|f| f.result().unwrap())
        .collect();
    assert!(got.iter().all(|&v| v == 17), "{got:?}");
}

/// `ProcessPoolExecutorTest.test_traceback`: a task's panic comes back with its
/// message, location and backtrace.
#[test]
fn test_traceback() {
    let _w = watchdog("test_traceback", LIMIT);
    let ex = processes();
    let err = ex.submit(raise, 5).unwrap().result().unwrap_err();
    assert_eq!(err.panic_message(), Some("boom 5"));
    assert!(err.panic_location().unwrap().contains("main.rs"));
    assert!(err.backtrace().is_some());
}

/// `ProcessPoolExecutorTest.test_map_chunksize`: the chunk size does not change
/// the results or their order.
#[test]
fn test_map_chunksize() {
    let _w = watchdog("test_map_chunksize", LIMIT);
    let ex = processes();
    for chunksize in [1, 2, 5, 100] {
        let got: Vec<u64> = ex
            .map(sqr, 0..50, None, chunksize)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            got,
            (0..50).map(|x| x * x).collect::<Vec<_>>(),
            "chunksize {chunksize}"
        );
    }
}
