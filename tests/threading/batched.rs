//! The batched path of the queue core: puts append to a staging buffer that a get
//! takes over whole, and a bounded put checks for room against a count the getters
//! publish every few gets. These tests hold it to Python's semantics: every item
//! exactly once with many putters and getters, the order a single getter sees once
//! all puts returned, a get that sees every put that returned before it, `try_put`
//! failing only on a queue that is really full, and no lost wake-up.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, mpsc};
use std::thread;
use std::time::Duration;

use mproc::threading::{LifoQueue, Prioritized, PriorityQueue, Queue, TryGetError, TryPutError};

use crate::common::{eventually, thread_state, watchdog};
use crate::queues::Kind;
use crate::util::LIMIT;

/// Items per putter in the stress tests.
const PER: i64 = if cfg!(debug_assertions) {
    4_000
} else {
    40_000
};

/// Four putters and four getters mixing blocking, timed and non-blocking calls, on
/// queues of several sizes: every item put is got exactly once, and the counts end
/// at zero.
fn every_item_exactly_once<K: Kind>() {
    for maxsize in [1, 3, 64, 0] {
        let _w = watchdog(K::NAME, Duration::from_secs(120));
        let q = K::make(maxsize);
        let go = Arc::new(Barrier::new(8));
        let putters: Vec<_> = (0..4i64)
            .map(|p| {
                let (q, go) = (q.clone(), Arc::clone(&go));
                thread::spawn(move || {
                    go.wait();
                    for i in 0..PER {
                        let mut x = p * PER + i;
                        match i % 3 {
                            0 => q.put(x).unwrap(),
                            1 => loop {
                                match q.put_timeout(x, Duration::from_micros(20)) {
                                    Ok(()) => break,
                                    Err(e) => x = e.into_inner(),
                                }
                            },
                            _ => loop {
                                match q.try_put(x) {
                                    Ok(()) => break,
                                    Err(TryPutError::Full(back)) => {
                                        x = back;
                                        thread::yield_now();
                                    }
                                    Err(e) => panic!("{e}"),
                                }
                            },
                        }
                    }
                })
            })
            .collect();
        let getters: Vec<_> = (0..4)
            .map(|g| {
                let (q, go) = (q.clone(), Arc::clone(&go));
                thread::spawn(move || {
                    go.wait();
                    let mut got = Vec::new();
                    loop {
                        let x = match g % 3 {
                            0 => match q.get() {
                                Ok(x) => x,
                                Err(_) => return got,
                            },
                            1 => match q.get_timeout(Duration::from_micros(20)) {
                                Ok(x) => x,
                                Err(e) if e.is_timeout() => continue,
                                Err(_) => return got,
                            },
                            _ => match q.try_get() {
                                Ok(x) => x,
                                Err(TryGetError::Empty) => {
                                    thread::yield_now();
                                    continue;
                                }
                                Err(TryGetError::ShutDown) => return got,
                            },
                        };
                        got.push(x);
                        q.task_done().unwrap();
                    }
                })
            })
            .collect();
        for p in putters {
            p.join().unwrap();
        }
        q.join_timeout(LIMIT)
            .unwrap_or_else(|e| panic!("{} maxsize {maxsize}: {e}", K::NAME));
        assert!(q.is_empty());
        q.shutdown(false);
        let mut seen = HashSet::new();
        for g in getters {
            for x in g.join().unwrap() {
                assert!(
                    seen.insert(x),
                    "{} maxsize {maxsize}: {x} got twice",
                    K::NAME
                );
            }
        }
        assert_eq!(
            seen.len(),
            4 * PER as usize,
            "{} maxsize {maxsize}: items lost",
            K::NAME
        );
        assert_eq!(q.unfinished(), 0);
    }
}

crate::queues::each_kind! {
    every_item_exactly_once_with_many_putters_and_getters => every_item_exactly_once,
    a_get_sees_every_put_that_returned => get_sees_returned_puts,
    try_put_is_full_only_when_the_queue_is => try_put_full_only_when_full,
    a_getter_asleep_is_woken_by_each_put => getter_woken_by_each_put,
}

/// Many putters at once, then one getter: smallest first, and among equal
/// priorities each putter's items in the order it put them.
#[test]
fn priority_order_seen_by_one_getter_after_all_puts_returned() {
    let _w = watchdog("priority order", Duration::from_secs(60));
    for maxsize in [0, 4 * PER as usize] {
        let q = PriorityQueue::with_maxsize(maxsize);
        let go = Arc::new(Barrier::new(4));
        let putters: Vec<_> = (0..4u32)
            .map(|p| {
                let (q, go) = (q.clone(), Arc::clone(&go));
                thread::spawn(move || {
                    go.wait();
                    let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ u64::from(p);
                    for i in 0..PER as u32 {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        q.put(Prioritized::new((x % 16) as u8, (p, i))).unwrap();
                    }
                })
            })
            .collect();
        for p in putters {
            p.join().unwrap();
        }
        assert_eq!(q.len(), 4 * PER as usize);
        let mut last_priority = 0u8;
        // Per priority, the last index seen from each putter.
        let mut last_index = [[None::<u32>; 4]; 16];
        let mut n = 0;
        while let Ok(item) = q.try_get() {
            let (p, i) = item.item;
            assert!(item.priority >= last_priority, "smallest first");
            last_priority = item.priority;
            let slot = &mut last_index[item.priority as usize][p as usize];
            assert!(
                slot.is_none_or(|l| l < i),
                "putter {p}: item {i} of priority {} after {slot:?}",
                item.priority
            );
            *slot = Some(i);
            n += 1;
        }
        assert_eq!(n, 4 * PER as usize);
    }
}

/// A putter puts an item that goes first in the queue's order, returns, and tells a
/// getter on another thread, whose `try_get` must return it: a get sees every put
/// that returned before it, also while other putters keep the staging buffer busy.
fn get_sees_returned_puts<K: Kind>() {
    let _w = watchdog(K::NAME, Duration::from_secs(60));
    let q = K::make(0);
    let rounds = if cfg!(debug_assertions) {
        2_000
    } else {
        20_000
    };
    // Background putters of noise (larger than every marker), keeping the staging
    // buffer busy while the markers go through it.
    let stop = Arc::new(AtomicBool::new(false));
    let noise: Vec<_> = (0..2)
        .map(|_| {
            let (q, stop) = (q.clone(), Arc::clone(&stop));
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    // Bounded: the getter drains the noise as it goes.
                    if q.len() < 64 {
                        let _ = q.put(NOISE);
                    } else {
                        thread::yield_now();
                    }
                }
            })
        })
        .collect();
    let (told_tx, told) = mpsc::channel::<i64>();
    let (ack_tx, ack) = mpsc::channel::<()>();
    let putter = {
        let q = q.clone();
        thread::spawn(move || {
            for r in 0..rounds {
                let marker = -1 - r;
                q.put(marker).unwrap();
                told_tx.send(marker).unwrap();
                ack.recv_timeout(LIMIT).expect("getter acknowledged");
            }
        })
    };
    // A priority queue hands the marker out first; FIFO may hand out noise put
    // before it, LIFO noise put after it: skip that.
    let marker_first = K::ORDER == [111, 222, 333];
    for _ in 0..rounds {
        let marker = told.recv_timeout(LIMIT).expect("putter told");
        loop {
            match q.try_get() {
                Ok(NOISE) if !marker_first => continue,
                Ok(x) => {
                    assert_eq!(x, marker, "{}: wrong item", K::NAME);
                    break;
                }
                Err(e) => panic!(
                    "{}: try_get after the put of {marker} returned: {e}",
                    K::NAME
                ),
            }
        }
        ack_tx.send(()).unwrap();
    }
    putter.join().unwrap();
    stop.store(true, Ordering::Relaxed);
    for t in noise {
        t.join().unwrap();
    }
}

/// Larger than every marker of [`get_sees_returned_puts`].
const NOISE: i64 = i64::MAX;

/// A bounded queue kept full: after each get, one `try_put` succeeds at once and
/// the next finds it full again, whatever the published count says.
fn try_put_full_only_when_full<K: Kind>() {
    for maxsize in [1, 2, 16, 100, 1024] {
        let q = K::make(maxsize);
        for x in 0..maxsize as i64 {
            q.try_put(x).unwrap();
        }
        assert!(q.is_full());
        for x in 0..3 * maxsize as i64 {
            assert!(
                matches!(q.try_put(-1), Err(TryPutError::Full(-1))),
                "{} maxsize {maxsize}: a full queue took an item",
                K::NAME
            );
            q.try_get().unwrap();
            assert!(!q.is_full());
            assert_eq!(q.len(), maxsize - 1);
            q.try_put(1000 + x).unwrap_or_else(|e| {
                panic!(
                    "{} maxsize {maxsize}: try_put after a get, {} items: {e}",
                    K::NAME,
                    q.len()
                )
            });
            assert!(q.is_full());
        }
        // Half empty: room for half at once.
        for _ in 0..maxsize / 2 {
            q.try_get().unwrap();
        }
        for x in 0..maxsize / 2 {
            q.try_put(x as i64).unwrap();
        }
        assert!(q.is_full());
    }
}

/// A getter that sleeps on an empty queue, again and again: each put wakes it (the
/// put sees the announced sleeper under the staging lock, or the getter sees the
/// item before it sleeps).
fn getter_woken_by_each_put<K: Kind>() {
    let _w = watchdog(K::NAME, Duration::from_secs(60));
    let q = K::make(4);
    let n = if cfg!(debug_assertions) { 50 } else { 200 };
    let (tid_tx, tid) = mpsc::channel();
    let getter = {
        let q = q.clone();
        thread::spawn(move || {
            tid_tx
                .send(rustix::thread::gettid().as_raw_nonzero().get() as u32)
                .unwrap();
            for i in 0..n {
                assert_eq!(q.get_timeout(LIMIT), Ok(i), "{}", K::NAME);
            }
        })
    };
    let tid = tid.recv_timeout(LIMIT).unwrap();
    for i in 0..n {
        // The getter took the last item and sleeps in the kernel, in its next get.
        assert!(eventually(LIMIT, || q.is_empty() && thread_state(tid) == Some('S')));
        q.put(i).unwrap();
    }
    getter.join().unwrap();
}

/// The three kinds accept the same items through one staging buffer: the order
/// each kind hands out after all puts returned.
#[test]
fn each_order_after_concurrent_puts() {
    let q = Queue::new();
    let l = LifoQueue::new();
    thread::scope(|s| {
        s.spawn(|| {
            for i in 0..1000 {
                q.put(i).unwrap();
                l.put(i).unwrap();
            }
        });
    });
    let got: Vec<_> = std::iter::from_fn(|| q.try_get().ok()).collect();
    assert_eq!(got, (0..1000).collect::<Vec<_>>());
    let got: Vec<_> = std::iter::from_fn(|| l.try_get().ok()).collect();
    assert_eq!(got, (0..1000).rev().collect::<Vec<_>>());
}
