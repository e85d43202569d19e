//! Ordering, bounds, blocking, timeouts, `task_done`/`join`, and many producers and
//! consumers, for each kind of queue (CPython's `BaseQueueTestMixin`).

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use mproc::threading::{
    GetTimeoutError, LifoQueue, Prioritized, PriorityQueue, PutTimeoutError, Queue, TryGetError,
    TryPutError,
};

use crate::common::watchdog;
use crate::util::{LIMIT, spawn};

const QUEUE_SIZE: usize = 5;

/// The operations every kind shares, so one scenario runs against the three.
pub trait Kind: Clone + Send + Sync + 'static {
    const NAME: &'static str;
    /// The order `get` returns 111, 333, 222 put in that order.
    const ORDER: [i64; 3];
    fn make(maxsize: usize) -> Self;
    fn put(&self, x: i64) -> Result<(), mproc::threading::PutError<i64>>;
    fn try_put(&self, x: i64) -> Result<(), TryPutError<i64>>;
    fn put_timeout(&self, x: i64, t: Duration) -> Result<(), PutTimeoutError<i64>>;
    fn get(&self) -> Result<i64, mproc::threading::GetError>;
    fn try_get(&self) -> Result<i64, TryGetError>;
    fn get_timeout(&self, t: Duration) -> Result<i64, GetTimeoutError>;
    fn task_done(&self) -> Result<(), mproc::threading::TaskDoneError>;
    fn join(&self);
    fn join_timeout(&self, t: Duration) -> Result<(), mproc::threading::JoinTimeoutError>;
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool;
    fn is_full(&self) -> bool;
    fn unfinished(&self) -> usize;
    fn shutdown(&self, immediate: bool) -> Vec<i64>;
    fn is_shutdown(&self) -> bool;
}

macro_rules! kind {
    ($t:ident, $order:expr) => {
        impl Kind for $t<i64> {
            const NAME: &'static str = stringify!($t);
            const ORDER: [i64; 3] = $order;
            fn make(maxsize: usize) -> Self {
                $t::with_maxsize(maxsize)
            }
            fn put(&self, x: i64) -> Result<(), mproc::threading::PutError<i64>> {
                $t::put(self, x)
            }
            fn try_put(&self, x: i64) -> Result<(), TryPutError<i64>> {
                $t::try_put(self, x)
            }
            fn put_timeout(&self, x: i64, t: Duration) -> Result<(), PutTimeoutError<i64>> {
                $t::put_timeout(self, x, t)
            }
            fn get(&self) -> Result<i64, mproc::threading::GetError> {
                $t::get(self)
            }
            fn try_get(&self) -> Result<i64, TryGetError> {
                $t::try_get(self)
            }
            fn get_timeout(&self, t: Duration) -> Result<i64, GetTimeoutError> {
                $t::get_timeout(self, t)
            }
            fn task_done(&self) -> Result<(), mproc::threading::TaskDoneError> {
                $t::task_done(self)
            }
            fn join(&self) {
                $t::join(self)
            }
            fn join_timeout(&self, t: Duration) -> Result<(), mproc::threading::JoinTimeoutError> {
                $t::join_timeout(self, t)
            }
            fn len(&self) -> usize {
                $t::len(self)
            }
            fn is_empty(&self) -> bool {
                $t::is_empty(self)
            }
            fn is_full(&self) -> bool {
                $t::is_full(self)
            }
            fn unfinished(&self) -> usize {
                $t::unfinished(self)
            }
            fn shutdown(&self, immediate: bool) -> Vec<i64> {
                $t::shutdown(self, immediate)
            }
            fn is_shutdown(&self) -> bool {
                $t::is_shutdown(self)
            }
        }
    };
}

kind!(Queue, [111, 333, 222]);
kind!(LifoQueue, [222, 333, 111]);
kind!(PriorityQueue, [111, 222, 333]);

/// Runs a generic scenario against each kind.
macro_rules! each_kind {
    ($($test:ident => $body:ident),* $(,)?) => {$(
        mod $test {
            use super::*;
            #[test]
            fn queue() {
                $body::<Queue<i64>>();
            }
            #[test]
            fn lifo() {
                $body::<LifoQueue<i64>>();
            }
            #[test]
            fn priority() {
                $body::<PriorityQueue<i64>>();
            }
        }
    )*};
}
pub(crate) use each_kind;

each_kind! {
    basic => basic_twice,
    task_done_without_put_is_an_error => task_done_without_put,
    join_after_task_done => join_twice_then_too_many_task_done,
    nowait => nowait,
    many_producers_and_consumers => many_producers_and_consumers,
    huge_timeouts_wait_for_ever => huge_timeouts,
}

/// CPython's `basic_queue_test`, done twice on one queue.
fn basic_twice<K: Kind>() {
    let _w = watchdog(K::NAME, Duration::from_secs(120));
    let q = K::make(QUEUE_SIZE);
    basic(&q);
    basic(&q);
}

fn basic<K: Kind>(q: &K) {
    assert_eq!(q.len(), 0, "call with an empty queue");
    assert!(q.is_empty());
    assert!(!q.is_full());
    for x in [111, 333, 222] {
        q.put(x).unwrap();
    }
    let got = [q.get().unwrap(), q.get().unwrap(), q.get().unwrap()];
    assert_eq!(got, K::ORDER, "{}: order", K::NAME);
    for i in 0..QUEUE_SIZE as i64 - 1 {
        q.put(i).unwrap();
        assert!(!q.is_empty());
    }
    assert!(!q.is_full());
    let last = 2 * QUEUE_SIZE as i64;
    let full = 3 * 2 * QUEUE_SIZE as i64;
    q.put(last).unwrap();
    assert!(q.is_full());
    assert!(!q.is_empty());
    assert_eq!(q.try_put(full), Err(TryPutError::Full(full)));
    assert_eq!(
        q.put_timeout(full, Duration::from_millis(10)),
        Err(PutTimeoutError::Timeout(full))
    );
    // A blocking put returns once a get makes room, not before.
    for timed in [false, true] {
        let q2 = q.clone();
        let putter = spawn(move || {
            if timed {
                q2.put_timeout(full, LIMIT).map_err(|e| e.to_string())
            } else {
                q2.put(full).map_err(|e| e.to_string())
            }
        });
        putter.assert_blocked("put on a full queue");
        q.get().unwrap();
        assert_eq!(putter.result("blocked put"), Ok(()));
        assert!(q.is_full());
    }
    for _ in 0..QUEUE_SIZE {
        q.get().unwrap();
    }
    assert_eq!(q.len(), 0);
    assert_eq!(q.try_get(), Err(TryGetError::Empty));
    assert_eq!(
        q.get_timeout(Duration::from_millis(10)),
        Err(GetTimeoutError::Timeout)
    );
    // A blocking get returns once a put gives it an item.
    for timed in [false, true] {
        let q2 = q.clone();
        let getter = spawn(move || {
            if timed {
                q2.get_timeout(LIMIT).map_err(|e| e.to_string())
            } else {
                q2.get().map_err(|e| e.to_string())
            }
        });
        getter.assert_blocked("get on an empty queue");
        q.put(-7).unwrap();
        assert_eq!(getter.result("blocked get"), Ok(-7));
    }
    // Every put above was matched by a get; mark them done for the next round.
    while q.unfinished() > 0 {
        q.task_done().unwrap();
    }
}

fn task_done_without_put<K: Kind>() {
    let q = K::make(0);
    let err = q.task_done().unwrap_err();
    assert!(err.to_string().contains("more times than items were put"));
    assert_eq!(q.unfinished(), 0);
}

/// CPython's `queue_join_test`, twice, then one `task_done` too many.
fn join_twice_then_too_many_task_done<K: Kind>() {
    let _w = watchdog(K::NAME, Duration::from_secs(120));
    let q = K::make(0);
    for _ in 0..2 {
        let sum = Arc::new(AtomicU64::new(0));
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let (q, sum) = (q.clone(), sum.clone());
                spawn(move || {
                    loop {
                        let x = q.get().unwrap();
                        if x < 0 {
                            q.task_done().unwrap();
                            return;
                        }
                        sum.fetch_add(x as u64, Ordering::SeqCst);
                        q.task_done().unwrap();
                    }
                })
            })
            .collect();
        for i in 0..100 {
            q.put(i).unwrap();
        }
        q.join_timeout(LIMIT)
            .expect("join returns once all are done");
        assert_eq!(
            sum.load(Ordering::SeqCst),
            (0..100).sum::<u64>(),
            "join returned before every task was done"
        );
        q.put(-1).unwrap();
        q.put(-1).unwrap();
        q.join_timeout(LIMIT).expect("a second join works too");
        for w in workers {
            w.result("worker");
        }
    }
    assert!(q.task_done().is_err(), "task_done once too many");
}

/// `join` blocks until the last `task_done`, not before.
#[test]
fn join_blocks_until_the_last_task_done() {
    let _w = watchdog("join_blocks", Duration::from_secs(60));
    let q = Queue::new();
    q.put(1).unwrap();
    q.put(2).unwrap();
    let q2 = q.clone();
    let joiner = spawn(move || q2.join());
    joiner.assert_blocked("join with 2 unfinished");
    q.get().unwrap();
    q.get().unwrap();
    q.task_done().unwrap();
    joiner.assert_blocked("join with 1 unfinished");
    q.task_done().unwrap();
    joiner.result("join");
    assert_eq!(
        q.join_timeout(Duration::from_millis(1)),
        Ok(()),
        "nothing unfinished"
    );
}

fn nowait<K: Kind>() {
    let q = K::make(QUEUE_SIZE);
    for _ in 0..QUEUE_SIZE {
        q.try_put(1).unwrap();
    }
    assert!(q.try_put(1).unwrap_err().is_full());
    for _ in 0..QUEUE_SIZE {
        q.try_get().unwrap();
    }
    assert!(q.try_get().unwrap_err().is_empty());
}

/// `Duration::MAX` means no deadline: the call waits until it can proceed.
fn huge_timeouts<K: Kind>() {
    let _w = watchdog(K::NAME, Duration::from_secs(60));
    let q = K::make(1);
    let q2 = q.clone();
    let getter = spawn(move || q2.get_timeout(Duration::MAX));
    getter.assert_blocked("get_timeout(MAX)");
    q.put(5).unwrap();
    assert_eq!(getter.result("get_timeout(MAX)"), Ok(5));
    q.put(6).unwrap();
    let q2 = q.clone();
    let putter = spawn(move || q2.put_timeout(7, Duration::MAX));
    putter.assert_blocked("put_timeout(MAX)");
    assert_eq!(q.get(), Ok(6));
    assert_eq!(putter.result("put_timeout(MAX)"), Ok(()));
    let q2 = q.clone();
    let joiner = spawn(move || q2.join_timeout(Duration::MAX));
    joiner.assert_blocked("join_timeout(MAX)");
    q.get().unwrap();
    for _ in 0..3 {
        q.task_done().unwrap();
    }
    assert_eq!(joiner.result("join_timeout(MAX)"), Ok(()));
}

/// Producers and consumers on a small bounded queue: every item is received
/// exactly once, and `join` returns once all are done.
fn many_producers_and_consumers<K: Kind>() {
    const PRODUCERS: i64 = 4;
    const CONSUMERS: usize = 4;
    const PER: i64 = if cfg!(debug_assertions) {
        5_000
    } else {
        50_000
    };
    let _w = watchdog(K::NAME, Duration::from_secs(120));
    let q = K::make(16);
    let consumers: Vec<_> = (0..CONSUMERS)
        .map(|_| {
            let q = q.clone();
            spawn(move || {
                let mut got = Vec::new();
                while let Ok(x) = q.get() {
                    got.push(x);
                    q.task_done().unwrap();
                }
                got
            })
        })
        .collect();
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let q = q.clone();
            spawn(move || {
                for i in 0..PER {
                    q.put(p * PER + i).unwrap();
                }
            })
        })
        .collect();
    for p in producers {
        p.result("producer");
    }
    q.join_timeout(LIMIT).expect("all items done");
    q.shutdown(false);
    let mut seen = HashSet::new();
    let mut total = 0;
    for c in consumers {
        for x in c.result("consumer") {
            assert!(seen.insert(x), "{}: item {x} received twice", K::NAME);
            total += 1;
        }
    }
    assert_eq!(total, (PRODUCERS * PER) as usize, "{}: items lost", K::NAME);
}

/// Per producer, a FIFO queue keeps put order even with many consumers racing.
#[test]
fn fifo_keeps_each_producers_order() {
    let _w = watchdog("fifo order", Duration::from_secs(60));
    let q = Queue::with_maxsize(8);
    let producers: Vec<_> = (0..3u64)
        .map(|p| {
            let q = q.clone();
            spawn(move || {
                for i in 0..10_000u64 {
                    q.put((p, i)).unwrap();
                }
            })
        })
        .collect();
    let mut next = [0u64; 3];
    for _ in 0..30_000 {
        let (p, i) = q.get_timeout(LIMIT).unwrap();
        assert_eq!(i, next[p as usize], "producer {p} out of order");
        next[p as usize] += 1;
    }
    for p in producers {
        p.result("producer");
    }
}

/// Equal items come out in put order; `Prioritized` compares the priority only.
#[test]
fn priority_ties_keep_put_order() {
    let q = PriorityQueue::new();
    let puts = [
        (3, "c1"),
        (1, "a1"),
        (2, "b1"),
        (1, "a2"),
        (3, "c2"),
        (2, "b2"),
        (1, "a3"),
    ];
    for (p, name) in puts {
        q.put(Prioritized::new(p, name)).unwrap();
    }
    let got: Vec<_> = std::iter::from_fn(|| q.try_get().ok())
        .map(Prioritized::into_inner)
        .collect();
    assert_eq!(got, ["a1", "a2", "a3", "b1", "b2", "c1", "c2"]);

    // A long run: random priorities, each item tagged with its put index. Within a
    // priority, indices come out ascending.
    let q = PriorityQueue::new();
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for i in 0..20_000u32 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        q.put(Prioritized::new((x % 7) as u8, i)).unwrap();
    }
    let mut last: Option<(u8, u32)> = None;
    while let Ok(p) = q.try_get() {
        if let Some((lp, li)) = last {
            assert!(lp <= p.priority, "smallest first");
            if lp == p.priority {
                assert!(li < p.item, "ties in put order");
            }
        }
        last = Some((p.priority, p.item));
    }
}

/// Python's `PriorityQueue` of numbers: smallest first, duplicates kept.
#[test]
fn priority_smallest_first_with_duplicates() {
    let q = PriorityQueue::new();
    for x in [5, 1, 4, 1, 5, 9, 2, 6, 5, 3] {
        q.put(x).unwrap();
    }
    let got: Vec<i32> = std::iter::from_fn(|| q.try_get().ok()).collect();
    assert_eq!(got, [1, 1, 2, 3, 4, 5, 5, 5, 6, 9]);
    let q = PriorityQueue::new();
    for x in [2, 7, 1] {
        q.put(std::cmp::Reverse(x)).unwrap();
    }
    assert_eq!(q.get().unwrap().0, 7, "Reverse gives largest first");
}

/// A panicking `Ord` fails the operation that compared (here the get that merged
/// the staged item into the heap), and the queue goes on working with its counts
/// intact and no item lost.
#[test]
fn a_panicking_ord_leaves_the_queue_usable() {
    // Panics at the first comparison that involves 13, then behaves.
    static ARMED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);
    #[derive(PartialEq, Eq, Debug)]
    struct Touchy(u32);
    impl Ord for Touchy {
        fn cmp(&self, o: &Self) -> std::cmp::Ordering {
            if (self.0 == 13 || o.0 == 13) && ARMED.swap(false, Ordering::SeqCst) {
                panic!("unlucky");
            }
            self.0.cmp(&o.0)
        }
    }
    impl PartialOrd for Touchy {
        fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
            Some(self.cmp(o))
        }
    }
    let q = PriorityQueue::new();
    q.put(Touchy(2)).unwrap();
    q.put(Touchy(13)).unwrap();
    q.put(Touchy(7)).unwrap();
    let q2 = q.clone();
    let r = std::thread::spawn(move || q2.try_get().map(|t| t.0)).join();
    assert!(r.is_err(), "the comparison panicked");
    // Nothing was taken; every item is still counted; the locks are usable.
    assert_eq!(q.len(), 3);
    assert_eq!(q.unfinished(), 3);
    q.put(Touchy(1))
        .unwrap_or_else(|_| panic!("put after a panic"));
    assert_eq!(q.len(), 4);
    assert_eq!(q.try_get().map(|t| t.0), Ok(1));
    let removed: Vec<u32> = q.shutdown(true).into_iter().map(|t| t.0).collect();
    assert_eq!(removed, [2, 7, 13], "no item lost, still in order");
    q.task_done().unwrap();
    q.join_timeout(LIMIT).unwrap();
}

#[test]
fn debug_and_clone_share_one_queue() {
    let q = Queue::with_maxsize(3);
    let q2 = q.clone();
    q2.put(1).unwrap();
    assert_eq!(q.len(), 1);
    let d = format!("{q:?}");
    assert!(d.contains("len: 1") && d.contains("maxsize: 3"), "{d}");
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Queue<String>>();
    send_sync::<LifoQueue<Vec<u8>>>();
    send_sync::<PriorityQueue<u64>>();
}

#[test]
fn error_messages_say_what_happened() {
    let q = Queue::with_maxsize(1);
    q.put(1).unwrap();
    assert_eq!(
        q.try_put(2).unwrap_err().to_string(),
        "cannot put into a full queue"
    );
    q.shutdown(true);
    assert_eq!(
        q.put(3).unwrap_err().to_string(),
        "cannot put into a queue that was shut down"
    );
    assert_eq!(
        q.get().unwrap_err().to_string(),
        "the queue was shut down and is empty"
    );
    assert_eq!(format!("{:?}", q.put(4).unwrap_err()), "ShutDown(..)");
}

/// Many putters and getters on a queue of one slot, some of them giving up after a
/// short time-out, others waiting for good: every item that a put reports as put is
/// got exactly once, and no waiter that waits for good is left asleep. (A sleeper
/// is signalled once, not once per op; a waiter that leaves on its time-out must
/// not take a signal meant for another with it.)
#[test]
fn waiters_with_and_without_time_outs_lose_no_wake_up() {
    let _w = watchdog("wake-up stress", Duration::from_secs(120));
    const PER: u64 = 2_000;
    let q = Arc::new(Queue::<u64>::with_maxsize(1));
    let got_sum = Arc::new(AtomicU64::new(0));
    let got_n = Arc::new(AtomicU64::new(0));
    let mut putters = Vec::new();
    for p in 0..4u64 {
        let q = Arc::clone(&q);
        putters.push(std::thread::spawn(move || {
            let mut sum = 0u64;
            for i in 0..PER {
                let x = p * PER + i + 1;
                if p % 2 == 0 {
                    // Gives up now and then; then the item was not put.
                    if q.put_timeout(x, Duration::from_micros(50)).is_ok() {
                        sum += x;
                    }
                } else {
                    q.put(x).unwrap();
                    sum += x;
                }
            }
            sum
        }));
    }
    let mut getters = Vec::new();
    for g in 0..4u64 {
        let (q, got_sum, got_n) = (Arc::clone(&q), Arc::clone(&got_sum), Arc::clone(&got_n));
        getters.push(std::thread::spawn(move || {
            loop {
                let x = if g % 2 == 0 {
                    match q.get_timeout(Duration::from_micros(50)) {
                        Ok(x) => x,
                        Err(e) if e.is_timeout() => continue,
                        Err(_) => return,
                    }
                } else {
                    match q.get() {
                        Ok(x) => x,
                        Err(_) => return,
                    }
                };
                got_sum.fetch_add(x, Ordering::Relaxed);
                got_n.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let put_sum: u64 = putters.into_iter().map(|t| t.join().unwrap()).sum();
    // Everything put is got, then the getters are released by the shutdown.
    assert!(
        crate::common::eventually(Duration::from_secs(60), || q.is_empty()),
        "items left in the queue: the getters stopped being woken"
    );
    q.shutdown(false);
    for g in getters {
        g.join().unwrap();
    }
    assert_eq!(got_sum.load(Ordering::Relaxed), put_sum);
    assert!(got_n.load(Ordering::Relaxed) >= 2 * PER);
}
