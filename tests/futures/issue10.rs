//! Regressions of issue 10 (futures and executors), each run on both executors.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::mpsc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use mproc::futures::{Executor, ReturnWhen, as_completed_timeout, wait};
use mproc::sync::Event;

use crate::common::{eventually, watchdog};
use crate::{LIMIT, double};

/// Waits (at most a minute) for `gate`, then returns `x`: a task that runs exactly
/// as long as the test wants, on threads and in processes alike.
fn after_gate((gate, x): (Event, u64)) -> u64 {
    assert!(
        gate.wait_timeout(Duration::from_secs(60)),
        "the gate never opened"
    );
    x
}

/// A waker that reports each wake on a channel.
struct Report(mpsc::Sender<()>);

impl Wake for Report {
    fn wake(self: Arc<Self>) {
        let _ = self.0.send(());
    }
}

/// Item 2: a done-callback that takes its time blocks none of the future's other
/// waiters; those that need the value get it, woken, once the callback returns.
pub fn a_slow_callback_blocks_no_other_waiter(ex: impl Executor) {
    let _w = watchdog("a_slow_callback_blocks_no_other_waiter", LIMIT);
    let gate = Event::new().unwrap();
    let mut f = ex.submit(after_gate, (gate.clone(), 7)).unwrap();
    let (entered_tx, entered_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    // Registered while the task waits at the gate: it runs on the thread that
    // finishes the task.
    f.add_done_callback(move |r| {
        entered_tx.send(*r.as_ref().unwrap()).unwrap();
        let _ = release_rx.recv_timeout(LIMIT);
    });
    gate.set();
    assert_eq!(entered_rx.recv_timeout(LIMIT).unwrap(), 7);
    // The callback is running now and holds on.
    assert!(
        f.wait_timeout(Duration::from_secs(10)),
        "wait_timeout stalled"
    );
    f.wait();
    assert!(f.done() && !f.cancelled());
    assert!(f.error().is_none());
    let (woke_tx, woke_rx) = mpsc::channel();
    let waker = Waker::from(Arc::new(Report(woke_tx)));
    let mut cx = Context::from_waker(&waker);
    // `.await` needs the value, which the callback borrows: not ready yet, or ready.
    let early = Pin::new(&mut f).poll(&mut cx);
    let mut it = as_completed_timeout(vec![f], Duration::from_secs(10));
    let mut f = it.next().expect("as_completed stalled behind the callback");
    release_tx.send(()).unwrap();
    match early {
        Poll::Ready(r) => assert_eq!(r.unwrap(), 7),
        Poll::Pending => {
            woke_rx
                .recv_timeout(Duration::from_secs(10))
                .expect("the awaiting task was never woken");
            match Pin::new(&mut f).poll(&mut cx) {
                Poll::Ready(r) => assert_eq!(r.unwrap(), 7),
                Poll::Pending => panic!("woken, but the value is not back"),
            }
        }
    }
}

/// Item 2, the same on a future that is already finished: the callback runs on the
/// thread that adds it; the others go on meanwhile.
pub fn a_slow_late_callback_blocks_no_other_waiter(ex: impl Executor) {
    let _w = watchdog("a_slow_late_callback_blocks_no_other_waiter", LIMIT);
    let f = ex.submit(double, 21).unwrap();
    f.wait();
    let (entered_tx, entered_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    std::thread::scope(|s| {
        s.spawn(|| {
            f.add_done_callback(move |r| {
                entered_tx.send(*r.as_ref().unwrap()).unwrap();
                let _ = release_rx.recv_timeout(LIMIT);
            })
        });
        assert_eq!(entered_rx.recv_timeout(LIMIT).unwrap(), 42);
        assert!(
            f.wait_timeout(Duration::from_secs(10)),
            "wait_timeout stalled"
        );
        assert!(f.error().is_none());
        release_tx.send(()).unwrap();
    });
    assert_eq!(f.result().unwrap(), 42);
}

/// Item 3: `FIRST_EXCEPTION` returns on a future that failed, not on one that was
/// cancelled (Python's rule); with no failure it waits for all (here: its timeout).
pub fn first_exception_is_not_a_cancellation(ex: impl Executor) {
    let _w = watchdog("first_exception_is_not_a_cancellation", LIMIT);
    let gate = Event::new().unwrap();
    let busy: Vec<_> = (0..2)
        .map(|i| ex.submit(after_gate, (gate.clone(), i)).unwrap())
        .collect();
    assert!(eventually(LIMIT, || busy.iter().all(|b| b.running())));
    let queued = ex.submit(double, 1).unwrap();
    assert!(queued.cancel());
    let start = Instant::now();
    let w = wait(
        busy.into_iter().chain([queued]),
        Some(Duration::from_secs(2)),
        ReturnWhen::FirstException,
    );
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "wait returned on a cancelled future"
    );
    assert_eq!(w.done.len(), 1);
    assert_eq!(w.not_done.len(), 2);
    // A real failure ends the wait at once.
    gate.set();
    let bad = ex.submit(crate::fail_on_odd, 1).unwrap();
    let w = wait(
        w.not_done.into_iter().chain([bad]),
        Some(LIMIT),
        ReturnWhen::FirstException,
    );
    assert!(
        w.done
            .iter()
            .any(|f| f.error().is_some_and(|e| e.is_panic()))
    );
}

/// Item 4: after `shutdown(_, cancel_futures = true)` the queued futures are
/// cancelled and say so.
pub fn shutdown_cancels_the_queued_futures(ex: impl Executor) {
    let _w = watchdog("shutdown_cancels_the_queued_futures", LIMIT);
    let gate = Event::new().unwrap();
    let busy: Vec<_> = (0..2)
        .map(|i| ex.submit(after_gate, (gate.clone(), i)).unwrap())
        .collect();
    assert!(eventually(LIMIT, || busy.iter().all(|b| b.running())));
    let queued: Vec<_> = (0..5).map(|i| ex.submit(double, i).unwrap()).collect();
    ex.shutdown(false, true);
    gate.set();
    for q in queued {
        assert!(q.done());
        assert!(q.cancelled(), "{q:?} was not marked cancelled");
        assert!(q.result().unwrap_err().is_cancelled());
    }
    for (i, b) in busy.into_iter().enumerate() {
        assert_eq!(b.result().unwrap(), i as u64);
    }
}

/// Item 5: `map` submits every item at once, so a map never iterated before
/// `shutdown(wait = true, cancel_futures = false)` still ran all its calls.
pub fn map_submits_every_item_at_once(ex: impl Executor) {
    let _w = watchdog("map_submits_every_item_at_once", LIMIT);
    let it = ex.map(double, 0..20, None, 1).unwrap();
    ex.shutdown(true, false);
    let got: Vec<u64> = it.map(|r| r.unwrap()).collect();
    assert_eq!(got, (0..20).map(|x| x * 2).collect::<Vec<_>>());
}

/// Item 6: after a `map` deadline the iteration yields one timeout error and ends
/// (Python's `TimeoutError` ends the generator); the remaining calls are cancelled.
pub fn map_ends_after_its_deadline(ex: impl Executor) {
    let _w = watchdog("map_ends_after_its_deadline", LIMIT);
    let gate = Event::new().unwrap();
    let items: Vec<(Event, u64)> = (0..6).map(|i| (gate.clone(), i)).collect();
    let mut it = ex
        .map(after_gate, items, Some(Duration::from_millis(300)), 1)
        .unwrap();
    let e = it.next().unwrap().unwrap_err();
    assert!(e.is_timeout(), "{e}");
    assert!(
        it.next().is_none(),
        "the iteration went on after the deadline"
    );
    assert!(it.next().is_none());
    gate.set();
}

/// Python's `Future()` + `set_result` / `set_exception` / `exception(timeout)`:
/// a future the caller completes works with every waiter.
#[test]
fn a_user_made_future_serves_every_waiter() {
    use mproc::futures::{Future, TaskError, as_completed};
    let _w = watchdog("a_user_made_future_serves_every_waiter", LIMIT);
    let f: Future<u64> = Future::new();
    assert!(!f.done() && !f.running() && !f.cancelled());
    let e = f.error_timeout(Duration::from_millis(10)).unwrap_err();
    assert!(e.to_string().contains("not done"), "{e}");
    let (tx, rx) = mpsc::channel();
    f.add_done_callback(move |r| tx.send(*r.as_ref().unwrap()).unwrap());
    std::thread::scope(|s| {
        s.spawn(|| f.set_result(5).unwrap());
        assert!(f.wait_timeout(LIMIT));
    });
    assert_eq!(rx.recv_timeout(LIMIT).unwrap(), 5);
    assert_eq!(f.error_timeout(LIMIT).unwrap().map(|e| e.to_string()), None);
    assert_eq!(f.set_result(6), Err(6), "a second result was accepted");
    assert_eq!(crate::block_on(f).unwrap(), 5);

    let bad: Future<u64> = Future::new();
    bad.set_error(TaskError::from_message("upstream is down"))
        .unwrap();
    assert!(bad.set_error(TaskError::from_message("again")).is_err());
    assert_eq!(
        bad.error_timeout(LIMIT).unwrap().unwrap().to_string(),
        "upstream is down"
    );
    let done: Vec<_> = as_completed(vec![bad]).collect();
    assert_eq!(done[0].error().unwrap().to_string(), "upstream is down");

    let never: Future<u64> = Future::new();
    assert!(never.cancel() && never.cancelled());
    assert_eq!(never.set_result(1), Err(1));
    assert!(never.result().unwrap_err().is_cancelled());
}
