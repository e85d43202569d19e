//! Queue `put_async`/`get_async`/`join_async` across processes.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use mproc::process::Process;
use mproc::queue::{GetError, JoinableQueue, Queue, SimpleQueue};

use crate::{Flavor, each_runtime, runtime, ticker, watchdog};

fn put_range(args: (Queue<u64>, u64)) {
    let (q, n) = args;
    for i in 0..n {
        q.put(i).unwrap();
    }
}

#[test]
fn get_async_from_a_producer_process() {
    each_runtime("queue get_async", |_| async {
        let q = Queue::<u64>::bounded(64).unwrap();
        let child = Process::start(put_range, (q.clone(), 2_000)).unwrap();
        for i in 0..2_000 {
            assert_eq!(q.get_async().await.unwrap(), i);
        }
        child.join_async().await.unwrap();
    });
}

/// A child with its own runtime, consuming with `get_async`; the parent
/// producing into a small bounded queue with `put_async` (so it waits for room).
fn async_consumer(q: Queue<u64>) -> u64 {
    runtime(Flavor::CurrentThread).block_on(async {
        let mut sum = 0;
        loop {
            match q.get_async().await {
                Ok(v) => sum += v,
                Err(GetError::Closed) => return sum,
                Err(e) => panic!("{e}"),
            }
        }
    })
}

#[test]
fn put_async_waits_for_room_made_by_another_process() {
    each_runtime("queue put_async", |_| async {
        let q = Queue::<u64>::bounded(4).unwrap();
        let child = Process::start(async_consumer, q.clone()).unwrap();
        for i in 0..3_000u64 {
            q.put_async(i).await.unwrap();
        }
        q.close();
        assert_eq!(
            child.join_async().await.unwrap(),
            (0..3_000u64).sum::<u64>()
        );
    });
}

/// Gets cancelled at random points, from several tasks at once: every item is
/// received exactly once.
#[test]
fn cancelled_gets_lose_nothing() {
    each_runtime("queue cancelled gets", |_| async {
        const N: u64 = 4_000;
        let q = Queue::<u64>::bounded(16).unwrap();
        // Gets that are certainly cancelled while they wait: nothing is put before
        // the producer starts. Then the racing ones below, at random points.
        let mut waited_out = 0;
        for _ in 0..20 {
            let pending = tokio::time::timeout(Duration::from_millis(1), q.get_async()).await;
            assert!(pending.is_err(), "a get returned from an empty queue");
            waited_out += 1;
        }
        let child = Process::start(put_range, (q.clone(), N)).unwrap();
        let mut tasks = Vec::new();
        for t in 0..4u64 {
            let q = q.clone();
            tasks.push(tokio::spawn(async move {
                let (mut got, mut cancelled) = (Vec::new(), 0u32);
                let mut seed = 0x9e37_79b9_7f4a_7c15u64 ^ t;
                loop {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    let limit = Duration::from_micros(seed % 200);
                    match tokio::time::timeout(limit, q.get_async()).await {
                        Ok(Ok(v)) => got.push(v),
                        Ok(Err(GetError::Closed)) => return (got, cancelled),
                        Ok(Err(e)) => panic!("{e}"),
                        Err(_) => cancelled += 1,
                    }
                }
            }));
        }
        child.join_async().await.unwrap();
        q.close();
        let mut all = Vec::new();
        let mut cancelled = waited_out;
        for t in tasks {
            let (got, c) = t.await.unwrap();
            assert!(
                got.windows(2).all(|w| w[0] < w[1]),
                "one consumer's items out of order"
            );
            all.extend(got);
            cancelled += c;
        }
        assert_eq!(all.len() as u64, N, "{cancelled} gets cancelled");
        let set: HashSet<u64> = all.into_iter().collect();
        assert_eq!(set.len() as u64, N, "an item was received twice");
        assert!(
            cancelled > 0,
            "no get was cancelled: the test tested nothing"
        );
    });
}

/// Two processes answering each other through two queues, 300 times: each
/// `get_async` is woken by the other process's put (a wake that relied on the
/// waiters' 50 ms nap would take 15 s).
#[test]
fn get_async_is_woken_by_a_put_in_another_process() {
    fn echo(qs: (Queue<u64>, Queue<u64>)) {
        let (inq, outq) = qs;
        while let Ok(v) = inq.get() {
            outq.put(v + 1).unwrap();
        }
    }
    each_runtime("queue wake", |_| async {
        let (to, from) = (Queue::<u64>::new().unwrap(), Queue::<u64>::new().unwrap());
        let child = Process::start(echo, (to.clone(), from.clone())).unwrap();
        let start = Instant::now();
        for i in 0..300 {
            to.put_async(i).await.unwrap();
            assert_eq!(from.get_async().await.unwrap(), i + 1);
        }
        let took = start.elapsed();
        to.close();
        child.join_async().await.unwrap();
        assert!(
            took < Duration::from_secs(8),
            "300 round trips took {took:?}"
        );
    });
}

#[test]
fn get_async_never_blocks_a_current_thread_runtime() {
    let _w = watchdog("queue ticking", Duration::from_secs(60));
    runtime(Flavor::CurrentThread).block_on(async {
        let ticks = ticker(Duration::from_millis(10));
        let q = Queue::<u8>::new().unwrap();
        let child = Process::start(
            |q: Queue<u8>| {
                std::thread::sleep(Duration::from_secs(1));
                q.put(4).unwrap();
            },
            q.clone(),
        )
        .unwrap();
        tokio::task::yield_now().await;
        let before = ticks.load(Ordering::Relaxed);
        assert_eq!(q.get_async().await.unwrap(), 4);
        let during = ticks.load(Ordering::Relaxed) - before;
        assert!(
            during >= 10,
            "only {during} ticks while get_async waited 1 s"
        );
        child.join_async().await.unwrap();
    });
}

#[test]
fn joinable_queue_join_async_and_simple_queue() {
    fn worker(q: JoinableQueue<u32>) {
        while let Ok(_v) = q.get() {
            q.task_done().unwrap();
        }
    }
    each_runtime("joinable join_async", |_| async {
        let q = JoinableQueue::<u32>::new().unwrap();
        for i in 0..100 {
            q.put_async(i).await.unwrap();
        }
        let child = Process::start(worker, q.clone()).unwrap();
        q.join_async().await;
        q.close();
        child.join_async().await.unwrap();

        let s = SimpleQueue::<String>::new().unwrap();
        let child = Process::start(
            |s: SimpleQueue<String>| s.put("hi".to_string()).unwrap(),
            s.clone(),
        )
        .unwrap();
        assert_eq!(s.get_async().await.unwrap(), "hi");
        s.put_async("back".into()).await.unwrap();
        assert_eq!(s.get().unwrap(), "back");
        child.join_async().await.unwrap();
    });
}

/// Dropping a runtime with gets, puts and a join pending returns; the pending
/// operations took and put nothing, and left no waiter behind that the blocking
/// calls would trip on.
#[test]
fn runtime_shutdown_with_pending_queue_operations() {
    let _w = watchdog("queue shutdown", Duration::from_secs(60));
    for flavor in [Flavor::CurrentThread, Flavor::MultiThread] {
        let empty = Arc::new(Queue::<u32>::new().unwrap());
        let full = Arc::new(Queue::<u32>::bounded(1).unwrap());
        full.put(0).unwrap();
        let joinable = Arc::new(JoinableQueue::<u32>::new().unwrap());
        joinable.put(1).unwrap();
        let rt = runtime(flavor);
        for _ in 0..3 {
            let (e, f) = (Arc::clone(&empty), Arc::clone(&full));
            rt.spawn(async move {
                let _ = e.get_async().await;
                panic!("nothing was put");
            });
            rt.spawn(async move {
                let _ = f.put_async(99).await;
                panic!("there was no room");
            });
        }
        let j = Arc::clone(&joinable);
        rt.spawn(async move { j.join_async().await });
        rt.block_on(async {
            for _ in 0..20 {
                tokio::task::yield_now().await;
            }
        });
        rt.shutdown_timeout(Duration::from_secs(10));
        assert_eq!(full.try_get().unwrap(), 0, "{flavor:?}");
        assert!(
            full.try_get().is_err(),
            "a cancelled put_async put its item"
        );
        empty.put(5).unwrap();
        assert_eq!(empty.get_timeout(Duration::from_secs(30)).unwrap(), 5);
        assert_eq!(joinable.get().unwrap(), 1);
        joinable.task_done().unwrap();
        joinable.join_timeout(Duration::from_secs(30)).unwrap();
    }
}
