//! Every queue method, with threads of one process standing in for processes (the
//! queue does not know the difference: it is the same shared memory either way).

use std::collections::HashMap;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use mproc::queue::{
    Bytes, GetError, GetTimeoutError, JoinableQueue, PutError, PutTimeoutError, Queue, SimpleQueue,
    TryGetError, TryPutError,
};

use crate::util::watchdog;

#[test]
fn smoke_fifo_len_and_flags() {
    let _w = watchdog("smoke", Duration::from_secs(30));
    let q = Queue::<String>::bounded(3).unwrap();
    assert!(q.is_empty() && !q.is_full());
    assert_eq!(q.capacity(), Some(3));
    for s in ["a", "b", "c"] {
        q.put(s.to_string()).unwrap();
    }
    assert_eq!(q.len(), 3);
    assert!(q.is_full());
    assert_eq!(q.try_put("d".into()), Err(TryPutError::Full("d".into())));
    assert_eq!(q.get().unwrap(), "a");
    assert_eq!(q.try_get().unwrap(), "b");
    assert_eq!(q.get_timeout(Duration::from_secs(1)).unwrap(), "c");
    assert_eq!(q.try_get(), Err(TryGetError::Empty));
    assert!(q.is_empty());
}

#[test]
fn timeouts_are_bounded_and_honest() {
    let _w = watchdog("timeouts", Duration::from_secs(30));
    let q = Queue::<u32>::bounded(1).unwrap();
    let t = Instant::now();
    assert_eq!(
        q.get_timeout(Duration::from_millis(30)),
        Err(GetTimeoutError::Timeout)
    );
    assert!(t.elapsed() >= Duration::from_millis(30));
    q.put(1).unwrap();
    let t = Instant::now();
    assert_eq!(
        q.put_timeout(2, Duration::from_millis(30)),
        Err(PutTimeoutError::Timeout(2))
    );
    assert!(t.elapsed() >= Duration::from_millis(30));
    let at = Instant::now() + Duration::from_millis(10);
    assert!(q.put_deadline(3, at).unwrap_err().is_timeout());
    assert_eq!(q.get_deadline(at).unwrap(), 1);
    // A huge timeout is "forever", and an item arriving ends the wait.
    let q2 = q.clone();
    let h = thread::spawn(move || q2.get_timeout(Duration::MAX));
    q.put(4).unwrap();
    assert_eq!(h.join().unwrap(), Ok(4));
}

#[test]
fn blocked_get_and_put_wake_up() {
    let _w = watchdog("wake", Duration::from_secs(30));
    let q = Queue::<u64>::bounded(2).unwrap();
    // A getter asleep on an empty queue is woken by a put.
    let q2 = q.clone();
    let getter = thread::spawn(move || q2.get());
    thread::sleep(Duration::from_millis(100)); // let it fall asleep (not synchronisation: either way works)
    q.put(7).unwrap();
    assert_eq!(getter.join().unwrap(), Ok(7));
    // A putter asleep on a full queue is woken by a get.
    q.put(1).unwrap();
    q.put(2).unwrap();
    let q2 = q.clone();
    let putter = thread::spawn(move || q2.put(3));
    thread::sleep(Duration::from_millis(100));
    assert_eq!(q.get().unwrap(), 1);
    putter.join().unwrap().unwrap();
    assert_eq!(q.get().unwrap(), 2);
    assert_eq!(q.get().unwrap(), 3);
}

#[test]
fn close_drains_then_reports_closed_and_wakes_everyone() {
    let _w = watchdog("close", Duration::from_secs(30));
    let q = Queue::<u8>::bounded(1).unwrap();
    q.put(1).unwrap();
    // One putter waits for room, one getter waits on another (empty) queue.
    let q2 = q.clone();
    let putter = thread::spawn(move || q2.put(2));
    let empty = Queue::<u8>::new().unwrap();
    let e2 = empty.clone();
    let getter = thread::spawn(move || e2.get());
    thread::sleep(Duration::from_millis(50));
    q.close();
    empty.close();
    assert_eq!(putter.join().unwrap(), Err(PutError::Closed(2)));
    assert_eq!(getter.join().unwrap(), Err(GetError::Closed));
    assert!(q.is_closed());
    assert!(q.put(3).unwrap_err().is_closed());
    assert!(q.try_put(3).unwrap_err().is_closed());
    assert!(q.put_timeout(3, Duration::ZERO).unwrap_err().is_closed());
    // What was put before close is still delivered, then Closed.
    assert_eq!(q.get(), Ok(1));
    assert_eq!(q.get(), Err(GetError::Closed));
    assert_eq!(q.try_get(), Err(TryGetError::Closed));
    assert_eq!(
        q.get_timeout(Duration::from_secs(1)),
        Err(GetTimeoutError::Closed)
    );
    q.close(); // twice is fine
}

#[test]
fn size_limit_is_a_clear_error_and_the_queue_stays_usable() {
    let q = Queue::<Bytes>::builder()
        .max_message_size(1000)
        .build()
        .unwrap();
    q.put(Bytes::from(vec![1; 100])).unwrap();
    let err = q.put(Bytes::from(vec![2; 5000])).unwrap_err();
    let why = err.message_error().unwrap();
    assert!(why.is_too_large());
    assert_eq!(why.size(), Some(5002));
    assert_eq!(why.limit(), Some(1000));
    assert!(
        err.to_string()
            .contains("5002 bytes is over the limit of 1000"),
        "{err}"
    );
    assert_eq!(err.into_inner().len(), 5000);
    // Exactly at the limit: 2 length bytes + 998.
    q.put(Bytes::from(vec![3; 998])).unwrap();
    assert!(
        q.try_put(Bytes::from(vec![4; 999]))
            .unwrap_err()
            .message_error()
            .is_some()
    );
    assert_eq!(q.get().unwrap().len(), 100);
    assert_eq!(q.get().unwrap().len(), 998);
    assert!(q.is_empty());
    // The builder refuses a limit the ring cannot hold.
    let e = Queue::<u8>::builder()
        .byte_capacity(4096)
        .max_message_size(4096)
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("raise byte_capacity"), "{e}");
}

#[test]
fn byte_capacity_bounds_an_unbounded_queue() {
    let _w = watchdog("bytes", Duration::from_secs(30));
    let q = Queue::<Bytes>::builder()
        .byte_capacity(8192)
        .max_message_size(3000)
        .build()
        .unwrap();
    assert_eq!(q.capacity(), None);
    let mut n = 0;
    while q.try_put(Bytes::from(vec![n as u8; 1500])).is_ok() {
        n += 1;
    }
    assert!(n >= 4, "only {n} fit");
    assert!(q.try_put(Bytes::from(vec![0; 1500])).unwrap_err().is_full());
    let q2 = q.clone();
    let putter = thread::spawn(move || q2.put(Bytes::from(vec![99; 2500])));
    for i in 0..n {
        assert_eq!(q.get().unwrap()[0], i as u8);
    }
    putter.join().unwrap().unwrap();
    assert_eq!(q.get().unwrap()[0], 99);
}

#[test]
fn variable_sizes_through_a_small_ring_many_laps() {
    let _w = watchdog("laps", Duration::from_secs(60));
    let q = Queue::<Vec<u16>>::builder()
        .byte_capacity(4096)
        .max_message_size(1500)
        .build()
        .unwrap();
    let q2 = q.clone();
    let producer = thread::spawn(move || {
        let mut x = 1u32;
        for i in 0..20_000u32 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let len = (x % 400) as usize; // up to ~1200 bytes encoded
            q2.put(vec![i as u16; len]).unwrap();
        }
    });
    let mut x = 1u32;
    for i in 0..20_000u32 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let v = q.get().unwrap();
        assert_eq!(v.len(), (x % 400) as usize, "item {i}");
        assert!(v.iter().all(|&e| e == i as u16), "item {i}");
    }
    producer.join().unwrap();
    assert!(q.is_empty());
}

/// Byte items take the put's fast path (`put_bytes_now`) whenever the lock is free
/// and the record fits where the placement puts it; sizes from 0 to 1200 bytes (one-
/// and two-byte length prefixes) through a 4 KiB ring, with a consumer trailing,
/// wrap the ring thousands of times and fall back to the general path whenever the
/// ring is full or a look at the consumers' head is due.
#[test]
fn byte_items_of_every_size_through_a_small_ring_many_laps() {
    let _w = watchdog("byte laps", Duration::from_secs(60));
    let q = Queue::<Bytes>::builder()
        .byte_capacity(4096)
        .max_message_size(1500)
        .build()
        .unwrap();
    let sizes = |mut x: u32| {
        std::iter::from_fn(move || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            Some(match x % 8 {
                0 => 0,
                1 => 127,
                2 => 128,
                _ => (x % 1200) as usize,
            })
        })
    };
    let q2 = q.clone();
    let producer = thread::spawn(move || {
        for (i, len) in sizes(7).take(20_000).enumerate() {
            // Half by reference, half by value: the same bytes either way.
            let item = Bytes::from(vec![i as u8; len]);
            if i % 2 == 0 {
                q2.put_ref(&item).unwrap();
            } else {
                q2.put(item).unwrap();
            }
        }
    });
    for (i, len) in sizes(7).take(20_000).enumerate() {
        let v = q.get().unwrap();
        assert_eq!(v.len(), len, "item {i}");
        assert!(v.iter().all(|&b| b == i as u8), "item {i}");
    }
    producer.join().unwrap();
    assert!(q.is_empty());
}

#[test]
fn put_ref_leaves_the_item_with_the_caller_and_errors_give_the_reference_back() {
    let q = Queue::<String>::builder()
        .max_message_size(64)
        .build()
        .unwrap();
    let hello = "hello".to_string();
    q.put_ref(&hello).unwrap();
    q.try_put_ref(&hello).unwrap();
    assert_eq!(hello, "hello");
    assert_eq!(q.get().unwrap(), "hello");
    assert_eq!(q.get().unwrap(), "hello");
    let big = "x".repeat(100);
    match q.put_ref(&big) {
        Err(PutError::Invalid(item, why)) => {
            assert!(std::ptr::eq(item, &big));
            assert!(why.is_too_large(), "{why}");
        }
        other => panic!("{other:?}"),
    }
    assert!(q.is_empty());
    let bounded = Queue::<u64>::bounded(1).unwrap();
    bounded.try_put_ref(&1).unwrap();
    assert_eq!(bounded.try_put_ref(&2), Err(TryPutError::Full(&2)));
    bounded.close();
    assert_eq!(bounded.put_ref(&3), Err(PutError::Closed(&3)));
    assert_eq!(bounded.try_put_ref(&3), Err(TryPutError::Closed(&3)));
    assert_eq!(bounded.get().unwrap(), 1);
}

#[test]
fn many_producers_many_consumers_exactly_once_fifo_per_producer() {
    let _w = watchdog("mpmc", Duration::from_secs(120));
    const PRODUCERS: u32 = 4;
    const CONSUMERS: usize = 4;
    const PER: u64 = 20_000;
    let q = Queue::<(u32, u64)>::bounded(64).unwrap();
    let start = Arc::new(Barrier::new(PRODUCERS as usize + CONSUMERS));
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let (q, start) = (q.clone(), start.clone());
            thread::spawn(move || {
                start.wait();
                for i in 0..PER {
                    q.put((p, i)).unwrap();
                }
            })
        })
        .collect();
    let consumers: Vec<_> = (0..CONSUMERS)
        .map(|_| {
            let (q, start) = (q.clone(), start.clone());
            thread::spawn(move || {
                start.wait();
                let mut got = Vec::new();
                while let Ok(item) = q.get() {
                    got.push(item);
                }
                got
            })
        })
        .collect();
    for p in producers {
        p.join().unwrap();
    }
    q.close();
    let mut seen: HashMap<u32, Vec<u64>> = HashMap::new();
    for c in consumers {
        let mut last: HashMap<u32, u64> = HashMap::new();
        for (p, i) in c.join().unwrap() {
            if let Some(prev) = last.insert(p, i) {
                assert!(i > prev, "producer {p}: {i} after {prev} at one consumer");
            }
            seen.entry(p).or_default().push(i);
        }
    }
    for p in 0..PRODUCERS {
        let mut v = seen.remove(&p).unwrap();
        v.sort_unstable();
        assert_eq!(v, (0..PER).collect::<Vec<_>>(), "producer {p}");
    }
}

#[test]
fn joinable_counts_tasks() {
    let _w = watchdog("joinable", Duration::from_secs(30));
    let q = JoinableQueue::<u32>::bounded(8).unwrap();
    assert!(q.task_done().is_err());
    let workers: Vec<_> = (0..3)
        .map(|_| {
            let q = q.clone();
            thread::spawn(move || {
                let mut n = 0;
                while let Ok(_item) = q.get() {
                    n += 1;
                    q.task_done().unwrap();
                }
                n
            })
        })
        .collect();
    for i in 0..500 {
        q.put(i).unwrap();
    }
    q.join();
    assert_eq!(q.unfinished(), 0);
    assert!(q.join_timeout(Duration::from_millis(1)).is_ok());
    q.close();
    let total: u32 = workers.into_iter().map(|w| w.join().unwrap()).sum();
    assert_eq!(total, 500);
    assert!(q.task_done().is_err());
    // join_timeout reports what is unfinished.
    let j = JoinableQueue::<u8>::new().unwrap();
    j.put(1).unwrap();
    j.put(2).unwrap();
    j.get().unwrap();
    j.task_done().unwrap();
    let e = j.join_timeout(Duration::from_millis(10)).unwrap_err();
    assert_eq!(e.unfinished(), 1);
    assert!(e.to_string().contains("1 unfinished"), "{e}");
}

#[test]
fn simple_queue() {
    let q = SimpleQueue::<(u8, String)>::new().unwrap();
    assert!(q.is_empty());
    q.put((1, "x".into())).unwrap();
    assert!(!q.is_empty());
    assert_eq!(q.get().unwrap(), (1, "x".to_string()));
    assert!(q.try_get().unwrap_err().is_empty());
    assert!(
        q.get_timeout(Duration::from_millis(1))
            .unwrap_err()
            .is_timeout()
    );
    q.close();
    assert!(q.is_closed());
    assert!(q.put((2, "y".into())).unwrap_err().is_closed());
    assert!(q.get().unwrap_err().is_closed());
}

#[test]
fn a_handle_through_a_pipe_is_the_same_queue() {
    let _w = watchdog("handle via pipe", Duration::from_secs(30));
    let q = Queue::<u32>::new().unwrap();
    let (tx, rx) = mproc::pipe::simplex::<Queue<u32>>().unwrap();
    tx.send(&q).unwrap();
    let q2 = rx.recv().unwrap(); // a second mapping of the same memfd
    q2.put(42).unwrap();
    assert_eq!(q.get().unwrap(), 42);
    // Wake-ups cross the two mappings too.
    let h = thread::spawn(move || q2.get_timeout(Duration::from_secs(10)));
    thread::sleep(Duration::from_millis(50));
    q.put(43).unwrap();
    assert_eq!(h.join().unwrap(), Ok(43));
    // A queue cannot carry a handle: clear error at the put.
    let qq = Queue::<Queue<u32>>::new().unwrap();
    let err = qq.put(q.clone()).unwrap_err();
    assert!(
        err.to_string()
            .contains("only be sent to another process by mproc"),
        "{err}"
    );
}

/// Makes and drops 50 queues, each cloned and sent through a pipe; returns this
/// process's open descriptors before and after.
fn churn_queue_handles(_: ()) -> (usize, usize) {
    let before = crate::util::open_fds();
    for _ in 0..50 {
        let q = JoinableQueue::<u64>::new().unwrap();
        let c = q.clone();
        c.put(1).unwrap();
        let (tx, rx) = mproc::pipe::simplex::<JoinableQueue<u64>>().unwrap();
        tx.send(&q).unwrap();
        let back = rx.recv().unwrap();
        assert_eq!(back.get().unwrap(), 1);
    }
    (before, crate::util::open_fds())
}

#[test]
fn nothing_leaks_when_handles_are_dropped() {
    // Counted in a child process of its own: the other tests of this binary run on
    // threads of this one and open descriptors of their own meanwhile.
    let child = mproc::process::Process::start(churn_queue_handles, ()).unwrap();
    let (before, after) = child.join_timeout(Duration::from_secs(60)).unwrap();
    assert_eq!(
        after, before,
        "descriptors left open by dropped queue handles"
    );
}

#[test]
fn task_done_right_after_a_fast_get_is_counted() {
    // Regression: a consumer can take an item before its producer has counted it;
    // task_done must not call that "more task_done than puts".
    let _w = watchdog("task_done race", Duration::from_secs(60));
    for _ in 0..5 {
        let q = JoinableQueue::<u32>::bounded(4).unwrap();
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let q = q.clone();
                thread::spawn(move || {
                    while let Ok(_x) = q.get() {
                        q.task_done().unwrap();
                    }
                })
            })
            .collect();
        for i in 0..20_000 {
            q.put(i).unwrap();
        }
        q.join_timeout(Duration::from_secs(30)).unwrap();
        q.close();
        for w in workers {
            w.join().unwrap();
        }
    }
}
