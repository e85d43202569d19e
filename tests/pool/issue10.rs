//! Regressions of issue 10 in the pool, and Python's `map_async` callbacks.

use std::sync::mpsc;

use mproc::futures::ThreadPoolExecutor;
use mproc::pool::{Pool, PoolError};

use crate::common::watchdog;
use crate::{LIMIT, pool};

fn double(x: u64) -> u64 {
    x * 2
}

/// Item 9: the results computed before the input iterator panicked come first,
/// then one error that says so, then the end (Python yields them, then raises).
#[test]
fn imap_yields_what_it_has_before_the_input_panicked() {
    let _w = watchdog("imap_yields_what_it_has_before_the_input_panicked", LIMIT);
    let p = pool(2);
    let input = (0..10u64).inspect(|&i| {
        if i == 3 {
            panic!("input broke at {i}");
        }
    });
    let got: Vec<_> = p.imap(double, input).collect();
    assert_eq!(got.len(), 4, "{got:?}");
    for (i, r) in got[..3].iter().enumerate() {
        assert_eq!(*r.as_ref().unwrap(), 2 * i as u64);
    }
    let e = got[3].as_ref().unwrap_err();
    assert_eq!(e.task_index(), Some(3));
    assert!(e.to_string().contains("input broke at 3"), "{e}");
    // The same for imap_unordered, and the pool goes on.
    let input = (0..10u64).map(|i| if i == 2 { panic!("no more") } else { i });
    let mut got: Vec<_> = p.imap_unordered(double, input).collect();
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(got.iter().filter(|r| r.is_err()).count(), 1);
    got.retain(|r| r.is_ok());
    let mut ok: Vec<u64> = got.into_iter().map(Result::unwrap).collect();
    ok.sort();
    assert_eq!(ok, [0, 2]);
    assert_eq!(p.map(double, 0..3).unwrap(), [0, 2, 4]);
}

/// Item 10: a pool or executor of no workers, or workers that retire after no
/// task, is an error, not silently 1.
#[test]
fn zero_workers_or_tasks_per_child_is_an_error() {
    let e = Pool::new(0).unwrap_err();
    assert!(matches!(e, PoolError::Invalid(_)), "{e:?}");
    assert!(e.to_string().contains("processes"), "{e}");
    let e = Pool::builder()
        .processes(1)
        .max_tasks_per_child(0)
        .build()
        .unwrap_err();
    assert!(matches!(e, PoolError::Invalid(_)), "{e:?}");
    assert!(e.to_string().contains("max_tasks_per_child"), "{e}");
    let e = ThreadPoolExecutor::new(0).unwrap_err();
    assert!(e.to_string().contains("max_workers"), "{e}");
}

/// `map_async` with Python's `callback`: it gets every result, in order, before
/// `get` returns them.
#[test]
fn map_async_calls_back_with_all_results() {
    let _w = watchdog("map_async_calls_back_with_all_results", LIMIT);
    let p = pool(2);
    for chunksize in [1, 4] {
        let (tx, rx) = mpsc::channel();
        let tx2 = tx.clone();
        let r = p
            .options()
            .chunksize(chunksize)
            .map_async(double, 0..20u64)
            .with_callbacks(
                move |v: &[u64]| tx.send(Ok(v.to_vec())).unwrap(),
                move |e| tx2.send(Err(e.to_string())).unwrap(),
            );
        let called = rx.recv_timeout(LIMIT).unwrap().unwrap();
        assert_eq!(called, (0..20).map(|x| x * 2).collect::<Vec<_>>());
        assert_eq!(r.get().unwrap(), called);
    }
}

fn fail_on_5(x: u64) -> u64 {
    if x == 5 {
        panic!("five");
    }
    x
}

/// `map_async` and `starmap_async` with `error_callback`: the first failure, once.
#[test]
fn map_async_calls_back_with_the_error() {
    let _w = watchdog("map_async_calls_back_with_the_error", LIMIT);
    let p = pool(2);
    let (tx, rx) = mpsc::channel();
    let tx2 = tx.clone();
    let r = p.map_async_with_callbacks(
        fail_on_5,
        0..10u64,
        move |_: &[u64]| tx.send("ok".to_string()).unwrap(),
        move |e| {
            tx2.send(format!("error {}", e.panic_message().unwrap()))
                .unwrap()
        },
    );
    assert_eq!(rx.recv_timeout(LIMIT).unwrap(), "error five");
    assert!(r.get().unwrap_err().is_panic());
    assert!(rx.try_recv().is_err(), "a second callback ran");

    fn pow(b: u64, e: u32) -> u64 {
        b.pow(e)
    }
    let (tx, rx) = mpsc::channel();
    let r = p.starmap_async_with_callbacks(
        pow as fn(u64, u32) -> u64,
        [(2, 3), (3, 2)],
        move |v: &[u64]| tx.send(v.to_vec()).unwrap(),
        |e| panic!("unexpected error {e}"),
    );
    assert_eq!(rx.recv_timeout(LIMIT).unwrap(), [8, 9]);
    assert_eq!(r.get().unwrap(), [8, 9]);
}
