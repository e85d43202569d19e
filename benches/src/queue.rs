//! Queue throughput (issue 3).
//!
//! Workloads, the same for every contender:
//! - 64-byte messages, one producer → one consumer, and two producers → two consumers
//!   (messages/s, the clock runs from "go" to the last message received);
//! - 1 MiB messages, one producer → one consumer (MB/s, 1 MB = 1e6 bytes).
//!
//! Contenders: mproc `Queue<Bytes>` between processes ([`MprocQueue`]: producer and
//! consumer children started with the default start method), Python's `multiprocessing.Queue` (`py_queue.py` for 1→1, `benches/py/py_queue_2to2.py`
//! for 2→2), `crossbeam-channel` bounded between threads (the in-process ceiling) and
//! `c/os_memcpy.c` (the bandwidth ceiling for 1 MiB messages).

use std::time::{Duration, Instant};

use mproc::process::Process;
use mproc::queue::{Bytes, Queue};
use mproc::sync::Barrier;

use crate::anchors::{CAnchor, PyAnchor};
use crate::{Area, Compare, Config, Local, Result, Role, Watchdog};

/// Messages per 64-byte sample (all producers together).
pub const SMALL_COUNT: usize = 1_000_000;
/// Messages per 1 MiB sample.
pub const BIG_COUNT: usize = 500;
/// Size of a big message.
pub const BIG_SIZE: usize = 1 << 20;
/// Capacity of the bounded channels (messages).
pub const CAPACITY: usize = 1024;

/// A 64-byte message (crossbeam's side; mproc sends [`Bytes`], see [`MprocQueue`]).
pub type Msg64 = [u8; 64];

/// One queue implementation under the producer/consumer workloads.
///
/// `run(producers, consumers, count, size)` sends `count` messages of `size` bytes in all,
/// split evenly over the producers, receives them all over the consumers, checks that every
/// byte arrived, and returns the seconds from the start signal to the last receive.
pub trait QueueWorkload {
    /// Runs one sample.
    fn run(&mut self, producers: usize, consumers: usize, count: usize, size: usize)
    -> Result<f64>;
}

/// `crossbeam_channel::bounded(CAPACITY)` between threads of this process.
pub struct Crossbeam;

impl QueueWorkload for Crossbeam {
    fn run(
        &mut self,
        producers: usize,
        consumers: usize,
        count: usize,
        size: usize,
    ) -> Result<f64> {
        let per_producer = count / producers;
        let total = per_producer * producers;
        let (tx, rx) = crossbeam_channel::bounded::<Vec<u8>>(CAPACITY);
        let (tx64, rx64) = crossbeam_channel::bounded::<Msg64>(CAPACITY);
        let go = std::sync::Barrier::new(producers + consumers + 1);
        let small = size == 64;
        std::thread::scope(|s| {
            for _ in 0..producers {
                let (tx, tx64, go) = (tx.clone(), tx64.clone(), &go);
                s.spawn(move || {
                    go.wait();
                    if small {
                        let m = [7u8; 64];
                        for _ in 0..per_producer {
                            tx64.send(m).expect("consumer alive");
                        }
                    } else {
                        // A fresh buffer per message, filled: what a producer would send.
                        for _ in 0..per_producer {
                            tx.send(vec![7u8; size]).expect("consumer alive");
                        }
                    }
                });
            }
            drop((tx, tx64));
            let mut handles = Vec::new();
            for _ in 0..consumers {
                let (rx, rx64, go) = (rx.clone(), rx64.clone(), &go);
                handles.push(s.spawn(move || {
                    go.wait();
                    let mut bytes = 0usize;
                    if small {
                        while let Ok(m) = rx64.recv() {
                            bytes += std::hint::black_box(m).len();
                        }
                    } else {
                        while let Ok(m) = rx.recv() {
                            bytes += std::hint::black_box(m).len();
                        }
                    }
                    (bytes, Instant::now())
                }));
            }
            // The clock starts as this thread releases the others: taken after the
            // barrier, it could read later than a consumer that finished a tiny
            // sample at once.
            let t0 = Instant::now();
            go.wait();
            let mut bytes = 0;
            let mut last = t0;
            for h in handles {
                let (b, t) = h.join().expect("consumer thread");
                bytes += b;
                last = last.max(t);
            }
            if bytes != total * size {
                return Err(format!("received {bytes} bytes, expected {}", total * size).into());
            }
            Ok((last - t0).as_secs_f64())
        })
    }
}

/// CLOCK_MONOTONIC in ns: one clock for every process of the machine, so a consumer's
/// "last message received" compares with the parent's "go".
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// A producer child: after the start barrier, puts `n` messages of `size` bytes;
/// returns the [`monotonic_ns`] at which it started.
///
/// Small messages are put by reference ([`Queue::put_ref`]), one payload over and over,
/// as the other sides send theirs: Python's producer puts one `bytes` object each time
/// and crossbeam's sends a `[u8; 64]` by value, neither allocating per message. A big
/// message is a fresh buffer each time, filled, as crossbeam's 1 MiB `Vec`s must be.
pub fn mproc_producer((q, go, n, size): (Queue<Bytes>, Barrier, u64, u64)) -> u64 {
    go.wait().expect("start barrier");
    let start = monotonic_ns();
    let size = size as usize;
    if size <= SMALL_MAX {
        let message = Bytes(vec![7u8; size]);
        for _ in 0..n {
            q.put_ref(&message).expect("queue open");
        }
    } else {
        for _ in 0..n {
            q.put(Bytes(vec![7u8; size])).expect("queue open");
        }
    }
    start
}

/// The largest message [`mproc_producer`] puts by reference.
const SMALL_MAX: usize = 4096;

/// A consumer child: after the start barrier, gets until the queue is closed and drained;
/// returns (bytes received, [`monotonic_ns`] when it last found the queue empty or closed
/// after a message: just after its last message, without reading the clock per message).
fn mproc_consumer((q, go): (Queue<Bytes>, Barrier)) -> (u64, u64) {
    go.wait().expect("start barrier");
    let mut bytes = 0u64;
    let mut check = |m: Bytes| {
        if m.first() != Some(&7) {
            panic!("message of {} bytes does not start with 7", m.len());
        }
        bytes += std::hint::black_box(m).len() as u64;
    };
    let last = loop {
        match q.try_get() {
            Ok(m) => check(m),
            Err(e) => {
                let now = monotonic_ns();
                if e.is_closed() {
                    break now;
                }
                match q.get() {
                    Ok(m) => check(m),
                    Err(_) => break now,
                }
            }
        }
    };
    (bytes, last)
}

/// mproc `Queue<Bytes>`, bounded like crossbeam's channel, between producer and consumer
/// child processes (default start method). The clock runs from the first producer's
/// start (after a start barrier) to the last message received, both read from
/// CLOCK_MONOTONIC in the children; the parent closes the queue once the producers have
/// returned.
pub struct MprocQueue;

impl QueueWorkload for MprocQueue {
    fn run(
        &mut self,
        producers: usize,
        consumers: usize,
        count: usize,
        size: usize,
    ) -> Result<f64> {
        let per_producer = count / producers;
        let total = per_producer * producers;
        let q = Queue::<Bytes>::bounded(CAPACITY).map_err(|e| format!("queue: {e}"))?;
        let go = Barrier::new(producers + consumers + 1).map_err(|e| format!("barrier: {e}"))?;
        let _watchdog = Watchdog::arm(Duration::from_secs(300), "mproc queue workload");
        let mut cons = Vec::new();
        for _ in 0..consumers {
            cons.push(
                Process::start(mproc_consumer, (q.clone(), go.clone()))
                    .map_err(|e| format!("start consumer: {e}"))?,
            );
        }
        let mut prods = Vec::new();
        for _ in 0..producers {
            prods.push(
                Process::start(
                    mproc_producer,
                    (q.clone(), go.clone(), per_producer as u64, size as u64),
                )
                .map_err(|e| format!("start producer: {e}"))?,
            );
        }
        go.wait().map_err(|e| format!("start barrier: {e}"))?;
        let mut t0 = u64::MAX;
        for p in prods {
            t0 = t0.min(p.join().map_err(|e| format!("producer: {e}"))?);
        }
        q.close();
        let mut bytes = 0u64;
        let mut last = t0;
        for c in cons {
            let (b, t) = c.join().map_err(|e| format!("consumer: {e}"))?;
            bytes += b;
            last = last.max(t);
        }
        if bytes != (total * size) as u64 {
            return Err(format!("received {bytes} bytes, expected {}", total * size).into());
        }
        Ok((last - t0) as f64 / 1e9)
    }
}

/// The standard figures of a [`QueueWorkload`]: `<prefix>_64B_1to1`, `<prefix>_64B_2to2`
/// (msgs/s) and `<prefix>_1MiB` (MB/s).
pub fn queue_contender<W: QueueWorkload + 'static>(
    label: &str,
    role: Role,
    prefix: &str,
    w: W,
) -> Local {
    let w = std::rc::Rc::new(std::cell::RefCell::new(w));
    let (w1, w2, w3, w4) = (w.clone(), w.clone(), w.clone(), w);
    Local::new(label, role)
        .warmup(move || w1.borrow_mut().run(1, 1, SMALL_COUNT / 10, 64).map(drop))
        .measure(format!("{prefix}_64B_1to1"), "msgs/s", move || {
            Ok(SMALL_COUNT as f64 / w2.borrow_mut().run(1, 1, SMALL_COUNT, 64)?)
        })
        .measure(format!("{prefix}_64B_2to2"), "msgs/s", move || {
            Ok(SMALL_COUNT as f64 / w3.borrow_mut().run(2, 2, SMALL_COUNT, 64)?)
        })
        .measure(format!("{prefix}_1MiB"), "MB/s", move || {
            Ok((BIG_COUNT * BIG_SIZE) as f64
                / w4.borrow_mut().run(1, 1, BIG_COUNT, BIG_SIZE)?
                / 1e6)
        })
}

/// The `queue` area.
pub fn area(_cfg: &Config) -> Result<Area> {
    Ok(Area {
        name: "queue",
        title: "Queue throughput (issue 3)",
        description: format!(
            "64-byte messages, 1 producer process → 1 consumer process and 2 → 2 (messages/s), and 1 MiB \
             messages 1 → 1 (MB/s). mproc: `Queue<Bytes>` bounded({CAPACITY}) between child processes \
             (default start method), {SMALL_COUNT} messages a sample; a 64-byte message is one `Bytes` put again and again by reference (`put_ref`), as Python's producer puts one `bytes` object and crossbeam's sends a `[u8; 64]` by value, and a 1 MiB message a fresh `Bytes` each time. Python: `multiprocessing.Queue` (`py_queue.py` 1 → 1, \
             `benches/py/py_queue_2to2.py` 2 → 2, 200,000 messages a sample). In-process ceiling: \
             `crossbeam-channel` bounded({CAPACITY}) between threads, {SMALL_COUNT} messages a sample. \
             Bandwidth ceiling: hot `memcpy` of 64 MiB (`c/os_memcpy.c`)."
        ),
        mproc_pending: None,
        contenders: vec![
            Box::new(queue_contender(
                "mproc Queue (processes)",
                Role::Mproc,
                "mproc_queue",
                MprocQueue,
            )),
            Box::new(queue_contender(
                "crossbeam-channel (threads)",
                Role::InProcess,
                "crossbeam",
                Crossbeam,
            )),
            Box::new(PyAnchor::new("py_queue.py")),
            Box::new(PyAnchor::new("py_queue_2to2.py")),
            Box::new(CAnchor::new("os_memcpy")),
        ],
        comparisons: vec![
            Compare::new("mproc_queue_64B_1to1", "py_queue_64B")
                .at_least(50.0, "issue 3: ≥ 50× Python"),
            Compare::new("mproc_queue_64B_1to1", "crossbeam_64B_1to1")
                .at_least(0.3, "issue 3: ≥ 0.3× crossbeam"),
            Compare::new("mproc_queue_64B_2to2", "py_queue_64B_2to2")
                .at_least(50.0, "issue 3: ≥ 50× Python"),
            Compare::new("mproc_queue_64B_2to2", "crossbeam_64B_2to2")
                .at_least(0.3, "issue 3: ≥ 0.3× crossbeam"),
            Compare::new("mproc_queue_1MiB", "py_queue_1MiB")
                .at_least(10.0, "issue 3: ≥ 10× Python"),
            Compare::new("mproc_queue_1MiB", "os_memcpy_64MiB_hot")
                .at_least(0.3, "issue 3: ≥ 0.3× hot memcpy"),
            Compare::new("mproc_queue_1MiB", "crossbeam_1MiB"),
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mproc_delivers_everything() {
        assert!(MprocQueue.run(2, 2, 1000, 64).unwrap() > 0.0);
        assert!(MprocQueue.run(1, 1, 4, 1 << 16).unwrap() > 0.0);
    }

    #[test]
    fn crossbeam_delivers_everything() {
        // `run` fails unless every byte arrived; its time is a duration.
        assert!(Crossbeam.run(2, 2, 1000, 64).unwrap() >= 0.0);
        assert!(Crossbeam.run(1, 1, 4, 1 << 16).unwrap() >= 0.0);
    }
}
