//! Python 3.13's `Queue.shutdown(immediate)`: puts fail, gets drain then fail (or
//! fail at once), `join` returns, and every blocked waiter wakes.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use mproc::threading::{
    GetError, GetTimeoutError, LifoQueue, PriorityQueue, PutError, Queue, TryGetError, TryPutError,
};

use crate::common::watchdog;
use crate::queues::{Kind, each_kind};
use crate::util::{LIMIT, spawn, spawn_blocked};

each_kind! {
    shutdown_empty => shutdown_empty,
    shutdown_nonempty_drains => shutdown_nonempty,
    shutdown_immediate_discards => shutdown_immediate,
    shutdown_transitions => transitions,
    shutdown_all_methods_one_thread => all_methods_one_thread,
    shutdown_immediate_all_methods_one_thread => all_methods_one_thread_immediate,
    shutdown_wakes_every_getter => wakes_getters,
    shutdown_immediate_wakes_every_getter => wakes_getters_immediate,
    shutdown_wakes_every_putter => wakes_putters,
    shutdown_immediate_wakes_every_putter => wakes_putters_immediate,
    shutdown_immediate_releases_joiners => immediate_releases_joiners,
    shutdown_get_one_of_three_fails => three_getters_two_items,
    shutdown_many_threads => many_threads,
    shutdown_immediate_many_threads => many_threads_immediate,
}

fn shutdown_empty<K: Kind>() {
    let q = K::make(0);
    q.shutdown(false);
    assert_eq!(q.put(1), Err(PutError::ShutDown(1)));
    assert_eq!(q.get(), Err(GetError::ShutDown));
}

fn shutdown_nonempty<K: Kind>() {
    let q = K::make(0);
    q.put(1).unwrap();
    assert!(
        q.shutdown(false).is_empty(),
        "a plain shutdown removes nothing"
    );
    assert_eq!(q.get(), Ok(1));
    assert_eq!(q.get(), Err(GetError::ShutDown));
}

fn shutdown_immediate<K: Kind>() {
    let q = K::make(0);
    for x in [111, 333, 222] {
        q.put(x).unwrap();
    }
    assert_eq!(q.shutdown(true), K::ORDER, "removed items, in get order");
    assert_eq!(q.get(), Err(GetError::ShutDown));
    assert_eq!(q.unfinished(), 0);
}

fn transitions<K: Kind>() {
    let q = K::make(0);
    assert!(!q.is_shutdown());
    q.put(1).unwrap();
    q.shutdown(false);
    assert!(q.is_shutdown());
    assert_eq!(q.len(), 1);
    assert_eq!(
        q.shutdown(true),
        [1],
        "immediate after plain empties the queue"
    );
    assert!(q.is_shutdown());
    assert!(q.shutdown(false).is_empty());
    assert!(q.is_shutdown());
}

fn all_methods_one_thread<K: Kind>() {
    one_thread::<K>(false)
}
fn all_methods_one_thread_immediate<K: Kind>() {
    one_thread::<K>(true)
}

/// CPython's `_shutdown_all_methods_in_one_thread`.
fn one_thread<K: Kind>(immediate: bool) {
    let q = K::make(2);
    q.put(1).unwrap();
    q.try_put(2).unwrap();
    q.shutdown(immediate);
    assert_eq!(q.put(3), Err(PutError::ShutDown(3)));
    assert_eq!(
        q.try_put(4),
        Err(TryPutError::ShutDown(4)),
        "ShutDown beats Full"
    );
    if immediate {
        assert_eq!(q.get(), Err(GetError::ShutDown));
        assert_eq!(q.try_get(), Err(TryGetError::ShutDown));
        assert!(q.task_done().is_err(), "the removed items count as done");
        q.join_timeout(LIMIT).expect("join returns");
    } else {
        let mut got = [q.get().unwrap(), q.try_get().unwrap()];
        got.sort();
        assert_eq!(got, [1, 2]);
        q.task_done().unwrap();
        q.task_done().unwrap();
        q.join_timeout(LIMIT).expect("join returns");
        assert_eq!(q.get(), Err(GetError::ShutDown));
        assert_eq!(q.try_get(), Err(TryGetError::ShutDown));
        assert_eq!(
            q.get_timeout(Duration::from_secs(1)),
            Err(GetTimeoutError::ShutDown)
        );
    }
}

const WAITERS: usize = 4;

fn wakes_getters<K: Kind>() {
    getters_woken::<K>(false)
}
fn wakes_getters_immediate<K: Kind>() {
    getters_woken::<K>(true)
}

/// Every getter blocked on an empty queue fails with `ShutDown` (CPython's
/// `test_shutdown_pending_get`, with several getters, timed and untimed).
fn getters_woken<K: Kind>(immediate: bool) {
    let _w = watchdog(K::NAME, Duration::from_secs(120));
    let q = K::make(0);
    let q2 = q.clone();
    let plain = spawn_blocked(WAITERS, "get", move || q2.get().map_err(|e| e.to_string()));
    let q2 = q.clone();
    let timed = spawn_blocked(WAITERS, "get_timeout", move || {
        q2.get_timeout(LIMIT * 3).map_err(|e| e.to_string())
    });
    q.shutdown(immediate);
    for g in plain.into_iter().chain(timed) {
        assert_eq!(
            g.result("blocked getter"),
            Err("the queue was shut down and is empty".to_string())
        );
    }
}

fn wakes_putters<K: Kind>() {
    putters_woken::<K>(false)
}
fn wakes_putters_immediate<K: Kind>() {
    putters_woken::<K>(true)
}

/// Every putter blocked on a full queue fails with `ShutDown` and gets its item
/// back (CPython's `_shutdown_put`).
fn putters_woken<K: Kind>(immediate: bool) {
    let _w = watchdog(K::NAME, Duration::from_secs(120));
    let q = K::make(2);
    q.put(1).unwrap();
    q.put(2).unwrap();
    let q2 = q.clone();
    let plain = spawn_blocked(WAITERS, "put", move || {
        q2.put(10).map_err(|e| e.into_inner())
    });
    let q2 = q.clone();
    let timed = spawn_blocked(WAITERS, "put_timeout", move || {
        q2.put_timeout(20, LIMIT * 3)
            .map_err(|e| (e.is_shutdown(), e.into_inner()))
    });
    q.shutdown(immediate);
    for p in plain {
        assert_eq!(p.result("blocked put"), Err(10));
    }
    for p in timed {
        assert_eq!(p.result("blocked put_timeout"), Err((true, 20)));
    }
    // Nothing a failed put offered got in.
    assert_eq!(q.len(), if immediate { 0 } else { 2 });
}

/// Joiners blocked on unfinished items return after an immediate shutdown once
/// the items already taken are done (CPython's `_shutdown_join`,
/// `_shutdown_put_join`).
fn immediate_releases_joiners<K: Kind>() {
    let _w = watchdog(K::NAME, Duration::from_secs(120));
    let q = K::make(2);
    q.put(1).unwrap();
    q.put(2).unwrap();
    let taken = q.get().unwrap();
    let q2 = q.clone();
    let joiners = spawn_blocked(WAITERS, "join", move || q2.join());
    let q2 = q.clone();
    let timed = spawn_blocked(WAITERS, "join_timeout", move || q2.join_timeout(LIMIT * 3));
    assert_eq!(q.shutdown(true).len(), 1, "the item not taken");
    // One task (the taken item) is still unfinished: the joiners still wait.
    for j in &joiners {
        j.assert_blocked("join with the taken item unfinished");
    }
    assert_eq!(q.unfinished(), 1);
    assert!(taken == 1 || taken == 2);
    q.task_done().unwrap();
    for j in joiners {
        j.result("joiner");
    }
    for j in timed {
        assert_eq!(j.result("timed joiner"), Ok(()));
    }
}

/// Two items, three getters, plain shutdown: two get items, one fails
/// (CPython's `_shutdown_get`); the getters start after the shutdown.
fn three_getters_two_items<K: Kind>() {
    let _w = watchdog(K::NAME, Duration::from_secs(60));
    let q = K::make(2);
    q.put(1).unwrap();
    q.put(2).unwrap();
    q.shutdown(false);
    let getters: Vec<_> = (0..3)
        .map(|_| {
            let q = q.clone();
            spawn(move || q.get())
        })
        .collect();
    let mut results: Vec<_> = getters.into_iter().map(|g| g.result("getter")).collect();
    results.sort_by_key(|r| r.ok());
    assert_eq!(results, [Err(GetError::ShutDown), Ok(1), Ok(2)]);
}

fn many_threads<K: Kind>() {
    many::<K>(false)
}
fn many_threads_immediate<K: Kind>() {
    many::<K>(true)
}

/// CPython's `_shutdown_all_methods_in_many_threads`: writers and readers at full
/// speed, a shutdown in the middle. Every writer and reader ends with `ShutDown`
/// or its work done, every item put is received exactly once or returned by the
/// immediate shutdown, and joiners return.
fn many<K: Kind>(immediate: bool) {
    const WRITERS: i64 = 4;
    const READERS: usize = 6;
    const PER: i64 = 16_384;
    let _w = watchdog(K::NAME, Duration::from_secs(120));
    let q = K::make(0);
    let start = Arc::new(Barrier::new(WRITERS as usize + READERS + 1));
    let go_shutdown = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (q, start, go) = (q.clone(), start.clone(), go_shutdown.clone());
            spawn(move || {
                let mut put = Vec::new();
                for i in 0..PER / 4 {
                    q.put(w * PER + i).unwrap();
                    put.push(w * PER + i);
                }
                start.wait();
                for i in PER / 4..PER {
                    match q.put(w * PER + i) {
                        Ok(()) => put.push(w * PER + i),
                        Err(e) => {
                            assert!(e.is_shutdown());
                            return (put, true);
                        }
                    }
                    if i == PER / 2 {
                        go.store(true, Ordering::SeqCst);
                    }
                }
                (put, false)
            })
        })
        .collect();
    let readers: Vec<_> = (0..READERS)
        .map(|_| {
            let (q, start) = (q.clone(), start.clone());
            spawn(move || {
                let mut got = Vec::new();
                start.wait();
                loop {
                    match q.try_get() {
                        Ok(x) => {
                            got.push(x);
                            q.task_done().unwrap();
                        }
                        Err(TryGetError::Empty) => std::thread::yield_now(),
                        Err(TryGetError::ShutDown) => return got,
                    }
                }
            })
        })
        .collect();
    start.wait();
    assert!(
        crate::common::eventually(LIMIT, || go_shutdown.load(Ordering::SeqCst)),
        "a writer reached the middle"
    );
    let joiners: Vec<_> = (0..2)
        .map(|_| {
            let q = q.clone();
            spawn(move || q.join_timeout(LIMIT))
        })
        .collect();
    let removed = q.shutdown(immediate);
    if !immediate {
        assert!(removed.is_empty());
    }
    let mut put = HashSet::new();
    for w in writers {
        let (items, _refused) = w.result("writer");
        put.extend(items);
    }
    let mut got = HashSet::new();
    for r in readers {
        for x in r.result("reader") {
            assert!(got.insert(x), "item {x} received twice");
        }
    }
    for x in &removed {
        assert!(got.insert(*x), "item {x} both received and removed");
    }
    assert_eq!(got, put, "every item put was received or removed, once");
    assert!(q.is_empty());
    for j in joiners {
        assert_eq!(j.result("joiner"), Ok(()));
    }
}
