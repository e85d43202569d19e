//! Queue scenarios: `_TestQueue` and `TestSimpleQueue` of `_test_multiprocessing.py`.

use std::time::{Duration, Instant};

use mproc::process::Process;
use mproc::queue::{
    GetError, GetTimeoutError, JoinableQueue, PutError, PutTimeoutError, Queue, SimpleQueue,
    TryGetError, TryPutError,
};
use mproc::sync::Event;
use serde::{Deserialize, Serialize, Serializer};

use crate::common::{eventually, watchdog};
use crate::{LIMIT, LONG};

/// Waits for `go`, then takes `n` items and returns them.
fn take_n((q, go, n): (Queue<u32>, Event, usize)) -> Vec<u32> {
    assert!(go.wait_timeout(LONG));
    (0..n).map(|_| q.get_timeout(LONG).unwrap()).collect()
}

/// Puts `0..n` and returns.
fn put_n((q, n): (Queue<u32>, u32)) {
    for i in 0..n {
        q.put(i).unwrap();
    }
}

/// `_TestQueue.test_put`: a bounded queue fills up (`full`, `put_nowait` raises
/// `Full`, `put(timeout)` times out with the item back), then a child drains it.
#[test]
fn test_put() {
    let _w = watchdog("test_put", LIMIT);
    let q = Queue::bounded(6).unwrap();
    assert!(q.is_empty() && !q.is_full());
    q.put(1).unwrap();
    q.try_put(2).unwrap();
    q.put_timeout(3, LONG).unwrap();
    q.put(4).unwrap();
    q.try_put(5).unwrap();
    q.put_timeout(6, LONG).unwrap();
    assert_eq!(q.len(), 6);
    assert!(q.is_full() && !q.is_empty());
    assert_eq!(q.try_put(7), Err(TryPutError::Full(7)));
    let t = Instant::now();
    assert_eq!(
        q.put_timeout(7, Duration::from_millis(100)),
        Err(PutTimeoutError::Timeout(7))
    );
    assert!(t.elapsed() >= Duration::from_millis(100));
    let go = Event::new().unwrap();
    let child = Process::start(take_n, (q.clone(), go.clone(), 6)).unwrap();
    go.set();
    assert_eq!(child.join().unwrap(), [1, 2, 3, 4, 5, 6]);
    assert!(q.is_empty() && !q.is_full());
}

/// `_TestQueue.test_put` (a blocked `put`): a `put` on a full queue waits until a
/// child makes room.
#[test]
fn test_put_blocks_until_room() {
    let _w = watchdog("test_put_blocks_until_room", LIMIT);
    let q = Queue::bounded(1).unwrap();
    q.put(0u32).unwrap();
    let go = Event::new().unwrap();
    let child = Process::start(take_n, (q.clone(), go.clone(), 2)).unwrap();
    go.set();
    q.put_timeout(1, LONG).unwrap();
    assert_eq!(child.join().unwrap(), [0, 1]);
}

/// `_TestQueue.test_get`: items a child put come out in order; on an empty queue
/// `get_nowait` raises `Empty` and `get(timeout)` times out.
#[test]
fn test_get() {
    let _w = watchdog("test_get", LIMIT);
    let q: Queue<u32> = Queue::new().unwrap();
    Process::start(put_n, (q.clone(), 4))
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(q.len(), 4);
    assert_eq!(q.get().unwrap(), 0);
    assert_eq!(q.try_get().unwrap(), 1);
    assert_eq!(q.get_timeout(LONG).unwrap(), 2);
    assert_eq!(q.get_deadline(Instant::now() + LONG).unwrap(), 3);
    assert_eq!(q.try_get(), Err(TryGetError::Empty));
    assert_eq!(
        q.get_timeout(Duration::from_millis(10)),
        Err(GetTimeoutError::Timeout)
    );
}

/// `_TestQueue.test_get` (a waiting `get`): a `get` blocked on an empty queue
/// returns as soon as a child puts.
#[test]
fn test_get_wakes_on_put() {
    let _w = watchdog("test_get_wakes_on_put", LIMIT);
    let q: Queue<u32> = Queue::new().unwrap();
    let child = Process::start(put_n, (q.clone(), 1)).unwrap();
    assert_eq!(q.get_timeout(LONG).unwrap(), 0);
    child.join().unwrap();
}

/// `_TestQueue.test_fork`: a child puts items and exits; every item is still
/// delivered afterwards, in order.
#[test]
fn test_fork() {
    let _w = watchdog("test_fork", LIMIT);
    let q: Queue<u32> = Queue::new().unwrap();
    let child = Process::start(put_n, (q.clone(), 10)).unwrap();
    child.join().unwrap();
    let got: Vec<u32> = (0..10).map(|_| q.get_timeout(LONG).unwrap()).collect();
    assert_eq!(got, (0..10).collect::<Vec<_>>());
    assert!(q.is_empty());
}

/// `_TestQueue.test_fork` (many processes): two producer and two consumer
/// processes; every item is delivered exactly once, in order per producer.
#[test]
fn test_fork_many_producers_and_consumers() {
    let _w = watchdog("test_fork_many_producers_and_consumers", LIMIT);
    fn produce((q, base): (Queue<u32>, u32)) {
        for i in 0..500 {
            q.put(base + i).unwrap();
        }
    }
    fn consume((q, n): (Queue<u32>, usize)) -> Vec<u32> {
        (0..n).map(|_| q.get_timeout(LONG).unwrap()).collect()
    }
    let q: Queue<u32> = Queue::bounded(16).unwrap();
    let consumers: Vec<_> = (0..2)
        .map(|_| Process::start(consume, (q.clone(), 500)).unwrap())
        .collect();
    let producers: Vec<_> = [0, 10_000]
        .into_iter()
        .map(|b| Process::start(produce, (q.clone(), b)).unwrap())
        .collect();
    for p in producers {
        p.join().unwrap();
    }
    let mut all = Vec::new();
    for c in consumers {
        let got = c.join().unwrap();
        for base in [0, 10_000] {
            let mine: Vec<u32> = got
                .iter()
                .copied()
                .filter(|&x| x / 10_000 == base / 10_000)
                .collect();
            assert!(mine.windows(2).all(|w| w[0] < w[1]), "out of order");
        }
        all.extend(got);
    }
    all.sort();
    let want: Vec<u32> = (0..500).chain(10_000..10_500).collect();
    assert_eq!(all, want);
}

/// `_TestQueue.test_qsize`: the size follows puts and gets.
#[test]
fn test_qsize() {
    let q = Queue::new().unwrap();
    assert_eq!(q.len(), 0);
    q.put(1u8).unwrap();
    assert_eq!(q.len(), 1);
    q.put(5).unwrap();
    assert_eq!(q.len(), 2);
    q.get().unwrap();
    assert_eq!(q.len(), 1);
    q.get().unwrap();
    assert_eq!(q.len(), 0);
}

/// `_TestQueue.test_task_done`: worker processes call `task_done` for each item;
/// `join` returns once every item is done.
#[test]
fn test_task_done() {
    let _w = watchdog("test_task_done", LIMIT);
    fn worker(q: JoinableQueue<Option<u32>>) {
        while let Some(_item) = q.get_timeout(LONG).unwrap() {
            q.task_done().unwrap();
        }
        q.task_done().unwrap();
    }
    let q: JoinableQueue<Option<u32>> = JoinableQueue::new().unwrap();
    let workers: Vec<_> = (0..2)
        .map(|_| Process::start(worker, q.clone()).unwrap())
        .collect();
    for i in 0..10 {
        q.put(Some(i)).unwrap();
    }
    assert!(q.join_timeout(LONG).is_ok());
    assert_eq!(q.unfinished(), 0);
    for _ in &workers {
        q.put(None).unwrap();
    }
    for w in workers {
        w.join().unwrap();
    }
    q.join();
}

/// `_TestQueue.test_task_done` (`join` with items not done): a join with a timeout
/// reports how many are unfinished.
#[test]
fn test_task_done_join_timeout() {
    let q = JoinableQueue::new().unwrap();
    q.put(1u8).unwrap();
    q.put(2).unwrap();
    q.get().unwrap();
    q.task_done().unwrap();
    let err = q.join_timeout(Duration::from_millis(10)).unwrap_err();
    assert_eq!(err.unfinished(), 1);
    q.get().unwrap();
    q.task_done().unwrap();
    assert!(q.join_timeout(Duration::MAX).is_ok());
}

/// `_TestQueue.test_task_done` (too many calls raise `ValueError`): a
/// `task_done` without a matching put is an error.
#[test]
fn test_task_done_too_many() {
    let q = JoinableQueue::new().unwrap();
    assert!(q.task_done().is_err());
    q.put('a').unwrap();
    q.get().unwrap();
    q.task_done().unwrap();
    let err = q.task_done().unwrap_err();
    assert!(!err.to_string().is_empty());
}

/// `_TestQueue.test_timeout`: `get(timeout)` on an empty queue waits at least the
/// timeout, then raises `Empty`.
#[test]
fn test_timeout() {
    let q: Queue<u8> = Queue::new().unwrap();
    let start = Instant::now();
    assert_eq!(
        q.get_timeout(Duration::from_millis(100)),
        Err(GetTimeoutError::Timeout)
    );
    assert!(start.elapsed() >= Duration::from_millis(100));
}

/// `_TestQueue.test_closed_queue_put_get_exceptions`: after `close`, `put`
/// fails with the item back; `get` drains what was put, then fails.
#[test]
fn test_closed_queue_put_get_exceptions() {
    let q = Queue::new().unwrap();
    q.put(1u8).unwrap();
    q.close();
    assert!(q.is_closed());
    assert_eq!(q.put(2), Err(PutError::Closed(2)));
    assert_eq!(q.try_put(3), Err(TryPutError::Closed(3)));
    assert_eq!(q.put_timeout(4, LONG), Err(PutTimeoutError::Closed(4)));
    assert_eq!(q.get(), Ok(1));
    assert_eq!(q.get(), Err(GetError::Closed));
}

/// `_TestQueue.test_closed_queue_empty_exceptions`: a closed, empty queue answers
/// every kind of get with "closed" at once, never a hang.
#[test]
fn test_closed_queue_empty_exceptions() {
    let _w = watchdog("test_closed_queue_empty_exceptions", LIMIT);
    let q: Queue<u8> = Queue::new().unwrap();
    q.close();
    assert_eq!(q.try_get(), Err(TryGetError::Closed));
    assert_eq!(q.get_timeout(LONG), Err(GetTimeoutError::Closed));
    assert_eq!(q.get(), Err(GetError::Closed));
    assert!(q.is_empty());
}

/// `_TestQueue.test_closed_queue_empty_exceptions` (closed by another process): a
/// consumer waiting on an empty queue is woken by a child's `close`.
#[test]
fn test_close_wakes_waiting_get() {
    let _w = watchdog("test_close_wakes_waiting_get", LIMIT);
    let q: Queue<u8> = Queue::new().unwrap();
    let child = Process::start(|q: Queue<u8>| q.close(), q.clone()).unwrap();
    assert_eq!(q.get_timeout(LONG), Err(GetTimeoutError::Closed));
    child.join().unwrap();
}

#[derive(Debug, PartialEq, Deserialize)]
struct NotSerializable;

impl Serialize for NotSerializable {
    fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("cannot serialize this"))
    }
}

/// `_TestQueue.test_queue_feeder_donot_stop_onexc`: an item that cannot be
/// serialized fails its `put` (mproc: at once, with the item back) and the queue
/// keeps working.
#[test]
fn test_queue_feeder_donot_stop_onexc() {
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum Item {
        Good(u8),
        #[serde(skip_deserializing)]
        Bad(NotSerializable),
    }
    let q: Queue<Item> = Queue::new().unwrap();
    match q.put(Item::Bad(NotSerializable)) {
        Err(PutError::Invalid(item, e)) => {
            assert_eq!(item, Item::Bad(NotSerializable));
            assert!(!e.is_too_large());
        }
        other => panic!("unexpected {other:?}"),
    }
    q.put(Item::Good(1)).unwrap();
    assert_eq!(q.get().unwrap(), Item::Good(1));
}

/// `_TestQueue.test_queue_feeder_donot_stop_onexc` (an item over the size limit):
/// refused with the sizes, the queue is unaffected.
#[test]
fn test_put_too_large() {
    let q: Queue<Vec<u8>> = Queue::builder().max_message_size(1024).build().unwrap();
    let err = q.put(vec![0; 4096]).unwrap_err();
    let m = err.message_error().unwrap();
    assert!(m.is_too_large());
    assert_eq!(m.limit(), Some(1024));
    assert_eq!(err.into_inner().len(), 4096);
    q.put(vec![1; 10]).unwrap();
    assert_eq!(q.get().unwrap(), vec![1; 10]);
}

/// `TestSimpleQueue.test_empty`: `empty()` follows a child's puts and the
/// parent's gets.
#[test]
fn test_simple_queue_empty() {
    let _w = watchdog("test_simple_queue_empty", LIMIT);
    let q: SimpleQueue<u32> = SimpleQueue::new().unwrap();
    assert!(q.is_empty());
    let child = Process::start(
        |q: SimpleQueue<u32>| {
            q.put(1).unwrap();
            q.put(2).unwrap();
        },
        q.clone(),
    )
    .unwrap();
    child.join().unwrap();
    assert!(!q.is_empty());
    assert_eq!(q.get().unwrap(), 1);
    assert!(!q.is_empty());
    assert_eq!(q.get_timeout(LONG).unwrap(), 2);
    assert!(q.is_empty());
}

/// `TestSimpleQueue.test_close`: after `close`, puts fail and gets drain then fail.
#[test]
fn test_simple_queue_close() {
    let q: SimpleQueue<u8> = SimpleQueue::new().unwrap();
    q.put(9).unwrap();
    q.close();
    assert!(q.is_closed());
    assert!(q.put(1).unwrap_err().is_closed());
    assert_eq!(q.get().unwrap(), 9);
    assert!(q.get().unwrap_err().is_closed());
    assert_eq!(q.try_get(), Err(TryGetError::Closed));
}

/// `_TestQueue.test_get` (a consumer killed while it waits; Python's queue can
/// lose or corrupt data here): mproc's promise is that the next item goes to the
/// next consumer, whole.
#[test]
fn test_killed_waiting_consumer_loses_nothing() {
    let _w = watchdog("test_killed_waiting_consumer_loses_nothing", LIMIT);
    let q: Queue<u32> = Queue::new().unwrap();
    let ready = Event::new().unwrap();
    let child = Process::start(
        |(q, ready): (Queue<u32>, Event)| {
            ready.set();
            q.get_timeout(LONG).ok()
        },
        (q.clone(), ready.clone()),
    )
    .unwrap();
    assert!(ready.wait_timeout(LONG));
    assert!(eventually(LONG, || crate::common::all_threads_asleep(
        child.pid()
    )));
    child.kill().unwrap();
    assert!(child.join().unwrap_err().is_signaled());
    q.put(42).unwrap();
    assert_eq!(q.get_timeout(LONG).unwrap(), 42);
}
