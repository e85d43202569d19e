//! Thread-side `PriorityQueue` throughput (issue 14 item 2).
//!
//! Workloads, the same for every contender, items are integers from one fixed
//! pseudo-random sequence (so the heap does real work):
//! - one thread puts `PQ_COUNT` items, then gets them all (items/s, one put + one get
//!   per item);
//! - one producer thread → one consumer thread, and two → two, through a queue of
//!   `maxsize` [`MAXSIZE`] (items/s, from the start signal to the last get).
//!
//! Contenders: [`mproc::threading::PriorityQueue`]; Python's `queue.PriorityQueue`
//! (`benches/py/py_threading_pq.py`). The FIFO [`mproc::threading::Queue`] and
//! [`mproc::threading::LifoQueue`] share the queue core: they run the same 1 → 1 and
//! 2 → 2 workloads against Python's `queue.Queue` and `queue.LifoQueue` (each
//! consumer gets its share of the items, as a sentinel cannot stop a LIFO consumer).
//! In-process references: a bare
//! `Mutex<BinaryHeap>` on one thread (the floor of any locked heap) and
//! `crossbeam-channel` bounded between threads (a FIFO channel, no priority: the
//! ceiling for a hand-off between threads).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use mproc::threading::{LifoQueue, PriorityQueue, Queue};

use crate::anchors::PyAnchor;
use crate::{Area, Compare, Config, Local, Result, Role, Watchdog};

/// Items per sample (Python's script uses the same numbers).
pub const PQ_COUNT: usize = 200_000;
/// `maxsize` of the queue between threads.
pub const MAXSIZE: usize = 1024;

/// The item sequence: a 64-bit LCG (Knuth's MMIX constants), top 31 bits; the Python
/// script computes the same numbers.
pub fn items(n: usize, seed: u64) -> impl Iterator<Item = u64> {
    let mut x = seed;
    (0..n).map(move |_| {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        x >> 33
    })
}

/// One priority-queue implementation under the workloads; each returns seconds.
pub trait PqWorkload {
    /// One thread: put `n` items, then get them all; checks the order.
    fn single(&mut self, n: usize) -> Result<f64>;
    /// `producers` threads put `n` items in all, `consumers` threads get them all.
    fn threads(&mut self, producers: usize, consumers: usize, n: usize) -> Result<f64>;
}

/// [`mproc::threading::PriorityQueue`].
pub struct Mproc;

impl PqWorkload for Mproc {
    fn single(&mut self, n: usize) -> Result<f64> {
        let q = PriorityQueue::new();
        let t0 = Instant::now();
        for x in items(n, 1) {
            q.put(x).map_err(|e| e.to_string())?;
        }
        let mut last = 0;
        for _ in 0..n {
            let x = q.get().map_err(|e| e.to_string())?;
            if x < last {
                return Err("PriorityQueue out of order".into());
            }
            last = x;
        }
        Ok(t0.elapsed().as_secs_f64())
    }

    fn threads(&mut self, producers: usize, consumers: usize, n: usize) -> Result<f64> {
        let q = PriorityQueue::with_maxsize(MAXSIZE);
        run_threads(
            producers,
            consumers,
            n,
            "mproc PriorityQueue",
            |x| q.put(x).expect("not shut down"),
            || q.get().expect("not shut down"),
        )
    }
}

/// Larger than every item: put once per consumer after the producers are done, it
/// comes out of a priority queue after every item and stops its consumer.
pub const SENTINEL: u64 = u64::MAX;

/// The threaded workload over any `put`/`get` pair: producers put their share of the
/// items, then (once all are done) one [`SENTINEL`] per consumer; each consumer gets
/// until a sentinel. Checks the count and sum of what was received; returns the
/// seconds from the start signal to the last consumer's end.
pub fn run_threads(
    producers: usize,
    consumers: usize,
    n: usize,
    what: &str,
    put: impl Fn(u64) + Sync,
    get: impl Fn() -> u64 + Sync,
) -> Result<f64> {
    let per = n / producers;
    let go = Barrier::new(producers + consumers + 1);
    let _dog = Watchdog::arm(Duration::from_secs(120), what);
    let (dt, got, sum) = thread::scope(|s| {
        let (put, get, go) = (&put, &get, &go);
        let puts: Vec<_> = (0..producers)
            .map(|p| {
                s.spawn(move || {
                    go.wait();
                    for x in items(per, 1 + p as u64) {
                        put(x);
                    }
                })
            })
            .collect();
        let gets: Vec<_> = (0..consumers)
            .map(|_| {
                s.spawn(move || {
                    go.wait();
                    let (mut n, mut sum) = (0usize, 0u64);
                    loop {
                        let x = get();
                        if x == SENTINEL {
                            return (n, sum);
                        }
                        n += 1;
                        sum = sum.wrapping_add(x);
                    }
                })
            })
            .collect();
        go.wait();
        let t0 = Instant::now();
        for p in puts {
            p.join().expect("producer");
        }
        for _ in 0..consumers {
            put(SENTINEL);
        }
        let (mut got, mut sum) = (0, 0u64);
        for g in gets {
            let (k, s) = g.join().expect("consumer");
            got += k;
            sum = sum.wrapping_add(s);
        }
        (t0.elapsed(), got, sum)
    });
    let want: u64 = (0..producers)
        .flat_map(|p| items(per, 1 + p as u64))
        .fold(0, u64::wrapping_add);
    if (got, sum) != (per * producers, want) {
        return Err(format!(
            "{what}: received {got} items (sum {sum}), expected {} (sum {want})",
            per * producers
        )
        .into());
    }
    Ok(dt.as_secs_f64())
}

/// The threaded workload with each consumer stopping after its share of the items
/// (`n / consumers`): it needs no sentinel, so it suits every order. Checks the
/// count and sum; returns the seconds from the start signal to the last get.
pub fn run_threads_shares(
    producers: usize,
    consumers: usize,
    n: usize,
    what: &str,
    put: impl Fn(u64) + Sync,
    get: impl Fn() -> u64 + Sync,
) -> Result<f64> {
    let per = n / producers;
    let total = per * producers;
    let share = total / consumers;
    if share * consumers != total {
        return Err(
            format!("{what}: {total} items do not split among {consumers} consumers").into(),
        );
    }
    let go = Barrier::new(producers + consumers + 1);
    let _dog = Watchdog::arm(Duration::from_secs(120), what);
    let (dt, sum) = thread::scope(|s| {
        let (put, get, go) = (&put, &get, &go);
        let puts: Vec<_> = (0..producers)
            .map(|p| {
                s.spawn(move || {
                    go.wait();
                    for x in items(per, 1 + p as u64) {
                        put(x);
                    }
                })
            })
            .collect();
        let gets: Vec<_> = (0..consumers)
            .map(|_| {
                s.spawn(move || {
                    go.wait();
                    (0..share).fold(0u64, |sum, _| sum.wrapping_add(get()))
                })
            })
            .collect();
        go.wait();
        let t0 = Instant::now();
        for p in puts {
            p.join().expect("producer");
        }
        let sum = gets
            .into_iter()
            .map(|g| g.join().expect("consumer"))
            .fold(0u64, u64::wrapping_add);
        (t0.elapsed(), sum)
    });
    let want: u64 = (0..producers)
        .flat_map(|p| items(per, 1 + p as u64))
        .fold(0, u64::wrapping_add);
    if sum != want {
        return Err(format!("{what}: received items summing to {sum}, expected {want}").into());
    }
    Ok(dt.as_secs_f64())
}

/// [`mproc::threading::Queue`] (FIFO) between threads, `maxsize` [`MAXSIZE`].
pub fn fifo_threads(producers: usize, consumers: usize, n: usize) -> Result<f64> {
    let q = Queue::with_maxsize(MAXSIZE);
    run_threads_shares(
        producers,
        consumers,
        n,
        "mproc Queue",
        |x| q.put(x).expect("not shut down"),
        || q.get().expect("not shut down"),
    )
}

/// [`mproc::threading::LifoQueue`] between threads, `maxsize` [`MAXSIZE`].
pub fn lifo_threads(producers: usize, consumers: usize, n: usize) -> Result<f64> {
    let q = LifoQueue::with_maxsize(MAXSIZE);
    run_threads_shares(
        producers,
        consumers,
        n,
        "mproc LifoQueue",
        |x| q.put(x).expect("not shut down"),
        || q.get().expect("not shut down"),
    )
}

/// `Mutex<BinaryHeap>` on one thread: the floor of a locked heap (no waiting, no
/// condition variables, no task count).
pub struct BareHeap;

impl BareHeap {
    fn single(&mut self, n: usize) -> Result<f64> {
        let h = Mutex::new(BinaryHeap::new());
        let t0 = Instant::now();
        for x in items(n, 1) {
            std::hint::black_box(&h)
                .lock()
                .expect("lock")
                .push(Reverse(x));
        }
        let mut last = 0;
        for _ in 0..n {
            let Reverse(x) = h.lock().expect("lock").pop().ok_or("heap empty")?;
            if x < last {
                return Err("heap out of order".into());
            }
            last = x;
        }
        Ok(t0.elapsed().as_secs_f64())
    }
}

/// `crossbeam_channel::bounded(MAXSIZE)` between threads: a FIFO hand-off without
/// priority, the ceiling for passing items between threads.
pub fn crossbeam_threads(producers: usize, consumers: usize, n: usize) -> Result<f64> {
    let (tx, rx) = crossbeam_channel::bounded(MAXSIZE);
    run_threads(
        producers,
        consumers,
        n,
        "crossbeam-channel",
        |x| tx.send(x).expect("connected"),
        || rx.recv().expect("connected"),
    )
}

/// The `threading` area.
pub fn area(_cfg: &Config) -> Result<Area> {
    let n = PQ_COUNT;
    let mproc = Local::new("mproc threading::PriorityQueue", Role::Mproc)
        .warmup(move || Mproc.single(n / 10).map(drop))
        .measure("mproc_pq_1thread", "items/s", move || {
            Ok(n as f64 / Mproc.single(n)?)
        })
        .measure("mproc_pq_threads_1to1", "items/s", move || {
            Ok(n as f64 / Mproc.threads(1, 1, n)?)
        })
        .measure("mproc_pq_threads_2to2", "items/s", move || {
            Ok(n as f64 / Mproc.threads(2, 2, n)?)
        })
        .measure("mproc_fifo_threads_1to1", "items/s", move || {
            Ok(n as f64 / fifo_threads(1, 1, n)?)
        })
        .measure("mproc_fifo_threads_2to2", "items/s", move || {
            Ok(n as f64 / fifo_threads(2, 2, n)?)
        })
        .measure("mproc_lifo_threads_1to1", "items/s", move || {
            Ok(n as f64 / lifo_threads(1, 1, n)?)
        })
        .measure("mproc_lifo_threads_2to2", "items/s", move || {
            Ok(n as f64 / lifo_threads(2, 2, n)?)
        });
    let bare = Local::new("Mutex<BinaryHeap>", Role::InProcess).measure(
        "bare_heap_1thread",
        "items/s",
        move || Ok(n as f64 / BareHeap.single(n)?),
    );
    let crossbeam = Local::new("crossbeam-channel (threads, FIFO)", Role::InProcess)
        .measure("crossbeam_threads_1to1", "items/s", move || {
            Ok(n as f64 / crossbeam_threads(1, 1, n)?)
        })
        .measure("crossbeam_threads_2to2", "items/s", move || {
            Ok(n as f64 / crossbeam_threads(2, 2, n)?)
        });
    Ok(Area {
        name: "threading",
        title: "Thread-side PriorityQueue (issue 14)",
        description: format!(
            "`mproc::threading::PriorityQueue<u64>` against Python's `queue.PriorityQueue` \
             (`benches/py/py_threading_pq.py`), {n} pseudo-random integers a sample (the same sequence in \
             both). One thread: put all, then get all (items/s, a put and a get per item). Between \
             threads: 1 producer → 1 consumer and 2 → 2 through `maxsize={MAXSIZE}`, from the start \
             signal to the last get (items/s). The FIFO `Queue` and the `LifoQueue` (same core) run 1 → 1 and \
             2 → 2 against Python's `queue.Queue` and `queue.LifoQueue`, each consumer getting its share of \
             the items. References: a bare `Mutex<BinaryHeap>` on one thread, \
             `crossbeam-channel` bounded({MAXSIZE}) between threads (FIFO, no priority)."
        ),
        mproc_pending: None,
        contenders: vec![
            Box::new(mproc),
            Box::new(bare),
            Box::new(crossbeam),
            Box::new(PyAnchor::new("py_threading_pq.py")),
        ],
        comparisons: vec![
            Compare::new("mproc_pq_1thread", "py_pq_1thread")
                .at_least(20.0, "issue 14: ≥ 20× Python"),
            Compare::new("mproc_pq_threads_1to1", "py_pq_threads_1to1")
                .at_least(20.0, "issue 14: ≥ 20× Python"),
            Compare::new("mproc_pq_threads_2to2", "py_pq_threads_2to2")
                .at_least(20.0, "issue 14: ≥ 20× Python"),
            Compare::new("mproc_fifo_threads_1to1", "py_fifo_threads_1to1"),
            Compare::new("mproc_fifo_threads_2to2", "py_fifo_threads_2to2"),
            Compare::new("mproc_lifo_threads_1to1", "py_lifo_threads_1to1"),
            Compare::new("mproc_lifo_threads_2to2", "py_lifo_threads_2to2"),
            Compare::new("mproc_pq_1thread", "bare_heap_1thread"),
            Compare::new("mproc_pq_threads_1to1", "crossbeam_threads_1to1"),
            Compare::new("mproc_pq_threads_2to2", "crossbeam_threads_2to2"),
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_contender_delivers_everything() {
        assert!(Mproc.single(1000).unwrap() > 0.0);
        assert!(Mproc.threads(2, 2, 1000).unwrap() > 0.0);
        assert!(BareHeap.single(1000).unwrap() > 0.0);
        assert!(crossbeam_threads(2, 2, 1000).unwrap() > 0.0);
        assert!(fifo_threads(2, 2, 1000).unwrap() > 0.0);
        assert!(lifo_threads(1, 1, 1000).unwrap() > 0.0);
        assert!(lifo_threads(2, 2, 1000).unwrap() > 0.0);
    }

    #[test]
    fn items_match_the_python_sequence() {
        // What py_threading_pq.py's `items(3, 1)` and `items(2, 2)` print.
        assert_eq!(
            items(3, 1).collect::<Vec<_>>(),
            [908834774, 1093944153, 1392341196]
        );
        assert_eq!(items(2, 2).collect::<Vec<_>>(), [1649717740, 1969491882]);
    }
}
