//! The pool test suite: every verb and every failure path, with real worker
//! processes. Every test arms a watchdog; pools have two workers (CI has 2 cores).
#![cfg(not(miri))]

#[path = "../common/mod.rs"]
mod common;

mod faults;
mod head_of_line;
mod idle;
mod interrupt;
mod issue10;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use common::{eventually, is_dead, watchdog, zombie_children};
use mproc::pool::{Pool, PoolError};
use mproc::process::StartMethod;

/// How long any one test may take before its watchdog aborts the binary.
pub const LIMIT: Duration = Duration::from_secs(60);

/// A pool of `n` workers that leaves SIGINT alone.
pub fn pool(n: usize) -> Pool {
    Pool::builder()
        .processes(n)
        .handle_ctrl_c(false)
        .build()
        .expect("pool starts")
}

fn square(x: u64) -> u64 {
    x * x
}

fn add(a: u64, b: u64) -> u64 {
    a + b
}

fn add3(a: u64, b: u64, c: String) -> String {
    format!("{}{c}", a + b)
}

#[test]
fn handles_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Pool>();
    send_sync::<mproc::pool::AsyncResult<u64>>();
    send_sync::<mproc::pool::MapResult<u64>>();
    send_sync::<mproc::pool::MapResult<std::rc::Rc<u64>>>();
    send_sync::<mproc::pool::TaskError>();
    send_sync::<mproc::futures::Future<u64>>();
    send_sync::<mproc::futures::ThreadPoolExecutor>();
    send_sync::<mproc::futures::ProcessPoolExecutor>();
}

#[test]
fn a_closed_pool_ends_an_endless_imap() {
    let _w = watchdog("a_closed_pool_ends_an_endless_imap", LIMIT);
    let p = pool(2);
    let mut it = p.options().window(16).imap(square, 0u64..);
    assert_eq!(it.next().unwrap().unwrap(), 0);
    p.terminate();
    // What was queued fails as cancelled; then the iterator ends.
    let rest: Vec<_> = it.by_ref().take(1000).collect();
    assert!(rest.len() < 1000, "the iterator did not end");
    assert!(
        rest.iter()
            .all(|r| r.as_ref().is_ok() || r.as_ref().unwrap_err().is_cancelled())
    );
}

#[test]
fn chunked_map_carries_every_item_type() {
    // Plain numbers travel in chunks as raw bytes, everything else as postcard:
    // both give the serial answer, in order, for every chunk size.
    let _w = watchdog("chunked_map_carries_every_item_type", LIMIT);
    let p = pool(2);
    for cs in [None, Some(1), Some(7)] {
        let opts = || match cs {
            Some(c) => p.options().chunksize(c),
            None => p.options(),
        };
        let neg: Vec<i8> = opts().map(|x: i8| x.wrapping_neg(), -100i8..100).unwrap();
        assert_eq!(neg, (-100i8..100).map(i8::wrapping_neg).collect::<Vec<_>>());
        let halves = opts().map(|x: u32| f64::from(x) / 2.0, 0..1000u32).unwrap();
        assert_eq!(
            halves,
            (0..1000).map(|x| f64::from(x) / 2.0).collect::<Vec<_>>()
        );
        let wide = opts().map(|x: u128| x << 64, 0..300u128).unwrap();
        assert_eq!(wide, (0..300u128).map(|x| x << 64).collect::<Vec<_>>());
        let words = opts().map(|x: u64| format!("#{x}"), 0..500).unwrap();
        assert_eq!(words, (0..500).map(|x| format!("#{x}")).collect::<Vec<_>>());
        let pairs = opts()
            .map(
                |s: String| (s.len(), s.is_empty()),
                ["", "ab", "c"].map(String::from),
            )
            .unwrap();
        assert_eq!(pairs, [(0, true), (2, false), (1, false)]);
    }
}

#[test]
fn every_verb_gives_the_serial_answer() {
    let _w = watchdog("every_verb_gives_the_serial_answer", LIMIT);
    let p = pool(2);
    let want: Vec<u64> = (0..1000).map(square).collect();
    assert_eq!(p.map(square, 0..1000).unwrap(), want);
    for cs in [1, 3, 1000, 5000] {
        assert_eq!(
            p.options().chunksize(cs).map(square, 0..1000).unwrap(),
            want
        );
    }
    assert_eq!(p.map_async(square, 0..1000).get().unwrap(), want);
    assert_eq!(p.apply(square, 12).unwrap(), 144);
    assert_eq!(p.apply_async(square, 5).get().unwrap(), 25);
    let got: Vec<u64> = p.imap(square, 0..1000).map(Result::unwrap).collect();
    assert_eq!(got, want);
    let got: Vec<u64> = p
        .options()
        .chunksize(7)
        .imap(square, 0..1000)
        .map(Result::unwrap)
        .collect();
    assert_eq!(got, want);
    let mut got: Vec<u64> = p
        .imap_unordered(square, 0..1000)
        .map(Result::unwrap)
        .collect();
    got.sort_unstable();
    assert_eq!(got, want);
    let sums = p
        .starmap(add as fn(u64, u64) -> u64, (0..100).map(|i| (i, 1)))
        .unwrap();
    assert_eq!(sums, (1..101).collect::<Vec<u64>>());
    let s = p
        .starmap(
            add3 as fn(u64, u64, String) -> String,
            [(1, 2, "x".to_string())],
        )
        .unwrap();
    assert_eq!(s, ["3x"]);
    // Empty inputs.
    assert_eq!(p.map(square, Vec::<u64>::new()).unwrap(), Vec::<u64>::new());
    assert_eq!(p.imap(square, Vec::<u64>::new()).count(), 0);
    assert_eq!(p.imap_unordered(square, Vec::<u64>::new()).count(), 0);
    // Large arguments and results travel.
    let big: Vec<u8> = (0..3_000_000u32).map(|i| i as u8).collect();
    let back = p
        .apply(
            |v: Vec<u8>| v.into_iter().rev().collect::<Vec<u8>>(),
            big.clone(),
        )
        .unwrap();
    assert!(back.iter().rev().eq(big.iter()));
    // Work is spread over both workers.
    let pids: HashSet<u32> = p
        .options()
        .chunksize(1)
        .map(
            |ms: u64| {
                std::thread::sleep(Duration::from_millis(ms));
                std::process::id()
            },
            vec![20u64; 20],
        )
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(pids.len(), 2, "{pids:?}");
    assert!(!pids.contains(&std::process::id()));
}

#[test]
fn callbacks_run_in_the_parent() {
    let _w = watchdog("callbacks_run_in_the_parent", LIMIT);
    let p = pool(2);
    let (tx, rx) = mpsc::channel();
    let (tx2, tx3) = (tx.clone(), tx.clone());
    let parent = std::process::id();
    let ok = p.apply_async_with_callbacks(
        |x: u64| x + 1,
        41,
        move |v: &u64| {
            tx.send(format!("ok {v} in {}", std::process::id() == parent))
                .unwrap()
        },
        move |e| tx2.send(format!("error {e}")).unwrap(),
    );
    assert_eq!(rx.recv_timeout(LIMIT).unwrap(), "ok 42 in true");
    assert_eq!(ok.get().unwrap(), 42);
    let tx4 = tx3.clone();
    let bad = p.apply_async_with_callbacks(
        |_: ()| -> u8 { panic!("nope") },
        (),
        move |_v: &u8| tx3.send("ok".to_string()).unwrap(),
        move |e| {
            tx4.send(format!("error {}", e.panic_message().unwrap()))
                .unwrap()
        },
    );
    assert_eq!(rx.recv_timeout(LIMIT).unwrap(), "error nope");
    assert!(bad.get().unwrap_err().is_panic());
}

/// Panics on 13, returns anything else.
fn unlucky_13(x: u64) -> u64 {
    if x == 13 {
        panic!("unlucky {x}");
    }
    x
}

#[test]
fn a_panic_comes_back_and_the_worker_keeps_serving() {
    let _w = watchdog("a_panic_comes_back", LIMIT);
    let p = pool(2);
    let before: HashSet<u32> = p.worker_pids().into_iter().collect();
    let err = p.options().chunksize(1).map(unlucky_13, 0..40).unwrap_err();
    assert!(err.is_panic());
    assert_eq!(err.panic_message(), Some("unlucky 13"));
    assert_eq!(err.task_index(), Some(13));
    assert!(err.panic_location().unwrap().contains("main.rs"), "{err}");
    assert!(!err.backtrace().unwrap().is_empty());
    assert!(before.contains(&err.worker_pid().unwrap()));
    let msg = err.to_string();
    assert!(msg.starts_with("task 13 panicked in worker"), "{msg}");
    // The same with automatic chunking (a chunk runs in one call in the worker).
    let err = p.map(unlucky_13, 0..40).unwrap_err();
    assert!(err.is_panic());
    assert_eq!(err.task_index(), Some(13));
    assert_eq!(err.panic_message(), Some("unlucky 13"));
    assert!(before.contains(&err.worker_pid().unwrap()));
    // imap reports it in place and goes on.
    let results: Vec<_> = p
        .imap(
            |x: u64| if x % 10 == 3 { panic!("bad {x}") } else { x },
            0..30,
        )
        .collect();
    assert_eq!(results.iter().filter(|r| r.is_err()).count(), 3);
    assert_eq!(results[3].as_ref().unwrap_err().task_index(), Some(3));
    assert_eq!(*results[4].as_ref().unwrap(), 4);
    // Same workers: a panic does not cost a process.
    let after: HashSet<u32> = p.worker_pids().into_iter().collect();
    assert_eq!(before, after);
    assert_eq!(p.replaced_workers(), 0);
}

#[test]
fn max_tasks_per_child_recycles_workers() {
    let _w = watchdog("max_tasks_per_child_recycles_workers", LIMIT);
    let p = Pool::builder()
        .processes(1)
        .max_tasks_per_child(2)
        .handle_ctrl_c(false)
        .build()
        .unwrap();
    let pids = p
        .options()
        .chunksize(1)
        .map(|_: u32| std::process::id(), 0..6)
        .unwrap();
    let distinct: HashSet<u32> = pids.iter().copied().collect();
    assert_eq!(distinct.len(), 3, "{pids:?}");
    for pair in pids.chunks(2) {
        assert_eq!(pair[0], pair[1], "{pids:?}");
    }
    assert!(p.replaced_workers() >= 2);
    // The retired workers are reaped.
    for pid in distinct {
        if !p.worker_pids().contains(&pid) {
            assert!(eventually(Duration::from_secs(10), || is_dead(pid)));
        }
    }
    assert!(zombie_children(std::process::id()).is_empty());
}

static PREFIX: std::sync::OnceLock<String> = std::sync::OnceLock::new();

#[test]
fn initializer_runs_once_per_worker() {
    let _w = watchdog("initializer_runs_once_per_worker", LIMIT);
    let p = Pool::builder()
        .processes(2)
        .handle_ctrl_c(false)
        .initializer(
            |s: String| {
                PREFIX.set(s).unwrap();
            },
            "worker says".to_string(),
        )
        .build()
        .unwrap();
    let out = p
        .map(|x: u32| format!("{} {x}", PREFIX.get().unwrap()), 0..4)
        .unwrap();
    assert_eq!(out[3], "worker says 3");
    let err = Pool::builder()
        .processes(1)
        .handle_ctrl_c(false)
        .initializer(|_: ()| panic!("no config"), ())
        .build()
        .unwrap_err();
    match &err {
        PoolError::Initializer { reason, .. } => assert!(reason.contains("no config"), "{err}"),
        other => panic!("unexpected {other}"),
    }
}

#[test]
fn imap_over_an_endless_input_stays_bounded() {
    let _w = watchdog("imap_over_an_endless_input_stays_bounded", LIMIT);
    let p = pool(2);
    let pulled = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&pulled);
    let endless = (0u64..).inspect(move |_| {
        counter.fetch_add(1, Ordering::Relaxed);
    });
    let mut it = p.options().window(100).imap(square, endless);
    for i in 0..20_000u64 {
        assert_eq!(it.next().unwrap().unwrap(), i * i);
        let ahead = pulled.load(Ordering::Relaxed) - (i as usize + 1);
        assert!(ahead <= 100, "read {ahead} items ahead of the consumer");
    }
    drop(it);
    let pulled2 = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&pulled2);
    let endless = (0u64..).inspect(move |_| {
        counter.fetch_add(1, Ordering::Relaxed);
    });
    let got: u64 = p
        .options()
        .window(50)
        .chunksize(5)
        .imap_unordered(square, endless)
        .take(5000)
        .map(Result::unwrap)
        .count() as u64;
    assert_eq!(got, 5000);
    assert!(pulled2.load(Ordering::Relaxed) <= 5000 + 50 + 5);
    // The pool still works after dropping unfinished iterators.
    assert_eq!(p.apply(square, 3).unwrap(), 9);
}

#[test]
fn close_join_and_terminate() {
    let _w = watchdog("close_join_and_terminate", LIMIT);
    let p = pool(2);
    let pending: Vec<_> = (0..10u64)
        .map(|i| {
            p.apply_async(
                |x: u64| {
                    std::thread::sleep(Duration::from_millis(20));
                    x
                },
                i,
            )
        })
        .collect();
    let pids = p.worker_pids();
    p.close();
    assert!(p.apply(square, 1).unwrap_err().is_cancelled());
    p.join();
    let values: Vec<u64> = pending.into_iter().map(|r| r.get().unwrap()).collect();
    assert_eq!(values, (0..10).collect::<Vec<_>>());
    for pid in &pids {
        assert!(eventually(Duration::from_secs(10), || is_dead(*pid)));
    }
    // Terminate fails what is queued and running.
    let p = pool(2);
    let slow: Vec<_> = (0..6)
        .map(|_| p.apply_async(|s: u64| std::thread::sleep(Duration::from_secs(s)), 60))
        .collect();
    let pids = p.worker_pids();
    p.terminate();
    for r in slow {
        assert!(r.get().unwrap_err().is_cancelled());
    }
    for pid in &pids {
        assert!(eventually(Duration::from_secs(10), || is_dead(*pid)));
    }
    // Drop terminates too, leaving no zombie.
    let p = pool(2);
    let _r = p.apply_async(|s: u64| std::thread::sleep(Duration::from_secs(s)), 60);
    let pids = p.worker_pids();
    drop(p);
    for pid in &pids {
        assert!(eventually(Duration::from_secs(10), || is_dead(*pid)));
    }
    let zombies = zombie_children(std::process::id());
    assert!(pids.iter().all(|p| !zombies.contains(p)), "{zombies:?}");
}

#[test]
fn every_start_method_runs_a_pool() {
    let _w = watchdog("every_start_method_runs_a_pool", LIMIT);
    for m in StartMethod::ALL {
        let p = Pool::builder()
            .processes(2)
            .start_method(m)
            .handle_ctrl_c(false)
            .build()
            .unwrap();
        assert_eq!(p.map(square, 0..100).unwrap()[99], 99 * 99, "{m:?}");
        let err = p
            .apply(|_: ()| -> u8 { std::process::abort() }, ())
            .unwrap_err();
        assert!(err.is_worker_lost(), "{m:?}: {err}");
        assert_eq!(err.signal(), Some(6));
        assert_eq!(p.apply(square, 4).unwrap(), 16, "{m:?}");
    }
}
