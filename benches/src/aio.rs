//! The async methods (issue 14 item 1, feature `tokio`) against their blocking twins.
//!
//! - Queue 64-byte messages, 1 producer process → 1 consumer process: the consumer
//!   takes with `get_async` on a current-thread tokio runtime ([`AsyncQueue`]) or with
//!   the blocking `get` ([`MprocQueue`], as in the `queue` area); the producer is the
//!   same for both ([`mproc_producer`](crate::queue::mproc_producer)). Target: async
//!   ≥ 0.5× blocking.
//! - An idle awaiting consumer: a child whose `get_async` waits one second on an empty
//!   queue; the CPU time it spends (ms of CPU per second waited). Target: < 1% (10 ms).
//! - Pipe ping-pong: both sides async (`send_async`/`recv_async`, each on a
//!   current-thread runtime) against both sides blocking ([`MprocPipe`]).

use std::time::{Duration, Instant};

use mproc::pipe::{self, Connection};
use mproc::process::Process;
use mproc::queue::{Bytes, Queue};
use mproc::sync::Barrier;

use crate::pipe::{MprocPipe, PingPong, Placement, pin_to};
use crate::queue::{
    CAPACITY, MprocQueue, QueueWorkload, SMALL_COUNT, monotonic_ns, mproc_producer,
};
use crate::{Area, Compare, Config, Local, Result, Role, Watchdog};

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// An async consumer child: `get_async` on a current-thread runtime until the queue is
/// closed and drained; returns (bytes, [`monotonic_ns`] after its last message).
fn async_consumer((q, go): (Queue<Bytes>, Barrier)) -> (u64, u64) {
    go.wait().expect("start barrier");
    current_thread().block_on(async {
        let mut bytes = 0u64;
        loop {
            match q.get_async().await {
                Ok(m) => {
                    assert_eq!(m.first(), Some(&7), "a message does not start with 7");
                    bytes += std::hint::black_box(m).len() as u64;
                }
                Err(_) => return (bytes, monotonic_ns()),
            }
        }
    })
}

/// mproc `Queue<Bytes>` bounded like the `queue` area's, consumed with `get_async`.
pub struct AsyncQueue;

impl QueueWorkload for AsyncQueue {
    fn run(
        &mut self,
        producers: usize,
        consumers: usize,
        count: usize,
        size: usize,
    ) -> Result<f64> {
        let per = count / producers;
        let q = Queue::<Bytes>::bounded(CAPACITY).map_err(|e| format!("queue: {e}"))?;
        let go = Barrier::new(producers + consumers + 1).map_err(|e| format!("barrier: {e}"))?;
        let _watchdog = Watchdog::arm(Duration::from_secs(300), "async queue workload");
        let cons: Vec<_> = (0..consumers)
            .map(|_| Process::start(async_consumer, (q.clone(), go.clone())))
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| format!("start consumer: {e}"))?;
        let prods: Vec<_> = (0..producers)
            .map(|_| {
                Process::start(
                    mproc_producer,
                    (q.clone(), go.clone(), per as u64, size as u64),
                )
            })
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| format!("start producer: {e}"))?;
        go.wait().map_err(|e| format!("start barrier: {e}"))?;
        let mut t0 = u64::MAX;
        for p in prods {
            t0 = t0.min(p.join().map_err(|e| format!("producer: {e}"))?);
        }
        q.close();
        let (mut bytes, mut last) = (0u64, t0);
        for c in cons {
            let (b, t) = c.join().map_err(|e| format!("consumer: {e}"))?;
            bytes += b;
            last = last.max(t);
        }
        if bytes != (per * producers * size) as u64 {
            return Err(format!(
                "received {bytes} bytes, expected {}",
                per * producers * size
            )
            .into());
        }
        Ok((last - t0) as f64 / 1e9)
    }
}

/// CPU time (user + system) of the calling process, in seconds.
fn cpu_seconds() -> f64 {
    // SAFETY: `ru` is a valid, writable rusage; RUSAGE_SELF always exists.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(ru.ru_utime) + t(ru.ru_stime)
}

/// A child whose `get_async` waits `ms` milliseconds on an empty queue (until the
/// parent's put); returns the CPU milliseconds the wait cost, per second waited.
fn idle_consumer((q, ms): (Queue<u8>, u64)) -> f64 {
    current_thread().block_on(async {
        // Registered once before the measured wait (the first wait creates the wake
        // socket).
        let _ = tokio::time::timeout(Duration::from_millis(5), q.get_async()).await;
        let (cpu0, t0) = (cpu_seconds(), Instant::now());
        let got = q.get_async().await.expect("an item");
        let (cpu, wall) = (cpu_seconds() - cpu0, t0.elapsed().as_secs_f64());
        assert_eq!(got, 1);
        assert!(wall * 1e3 >= ms as f64 * 0.9, "woken early");
        cpu * 1e3 / wall
    })
}

fn idle_cpu_ms_per_s() -> Result<f64> {
    const MS: u64 = 1000;
    let q = Queue::<u8>::new().map_err(|e| format!("queue: {e}"))?;
    let child =
        Process::start(idle_consumer, (q.clone(), MS)).map_err(|e| format!("start: {e}"))?;
    let _watchdog = Watchdog::arm(Duration::from_secs(60), "idle async consumer");
    // The child's clock starts once it waits; give it the full second after that.
    std::thread::sleep(Duration::from_millis(MS + 200));
    q.put(1).map_err(|e| format!("put: {e}"))?;
    Ok(child.join().map_err(|e| format!("join: {e}"))?)
}

/// The echo child, async: a current-thread runtime, `recv_async`/`send_async`.
fn async_echo((conn, cpu): (Connection<u8>, Option<u64>)) {
    pin_to(cpu.map(|c| c as usize)).expect("pin the echo child");
    current_thread().block_on(async {
        while let Ok(b) = conn.recv_async().await {
            if b == 0 {
                break;
            }
            conn.send_async(&b).await.expect("parent alive");
        }
    })
}

/// mproc pipe ping-pong with both sides async.
pub struct AsyncPipe;

impl PingPong for AsyncPipe {
    fn round_trips(&mut self, n: usize, placement: Placement) -> Result<f64> {
        let (pcpu, ccpu) = placement.cpus();
        let (a, b) = pipe::duplex::<u8>().map_err(|e| format!("pipe: {e}"))?;
        let child = Process::start(async_echo, (b, ccpu.map(|c| c as u64)))
            .map_err(|e| format!("start: {e}"))?;
        let _watchdog = Watchdog::arm(Duration::from_secs(120), "async pipe ping-pong");
        pin_to(pcpu)?;
        let r = current_thread().block_on(async {
            a.send_async(&b'x')
                .await
                .map_err(|e| format!("send: {e}"))?;
            a.recv_async().await.map_err(|e| format!("recv: {e}"))?;
            let t0 = Instant::now();
            for _ in 0..n {
                a.send_async(&b'x')
                    .await
                    .map_err(|e| format!("send: {e}"))?;
                let got = a.recv_async().await.map_err(|e| format!("recv: {e}"))?;
                if got != b'x' {
                    return Err(format!("echo sent {got}").into());
                }
            }
            Result::Ok(t0.elapsed().as_secs_f64() / n as f64 * 1e6)
        });
        pin_to(None)?;
        a.send(&0).map_err(|e| format!("send: {e}"))?;
        child.join().map_err(|e| format!("join: {e}"))?;
        r
    }
}

const ROUND_TRIPS: usize = 20_000;

/// The `aio` area.
pub fn area(_cfg: &Config) -> Result<Area> {
    let blocking_q = std::rc::Rc::new(std::cell::RefCell::new(MprocQueue));
    let async_q = std::rc::Rc::new(std::cell::RefCell::new(AsyncQueue));
    let (bq, aq) = (blocking_q.clone(), async_q.clone());
    let queue = Local::new("mproc Queue, get vs get_async (processes)", Role::Mproc)
        .warmup(move || aq.borrow_mut().run(1, 1, SMALL_COUNT / 10, 64).map(drop))
        .measure("blocking_queue_64B_1to1", "msgs/s", move || {
            Ok(SMALL_COUNT as f64 / bq.borrow_mut().run(1, 1, SMALL_COUNT, 64)?)
        })
        .measure("async_queue_64B_1to1", "msgs/s", move || {
            Ok(SMALL_COUNT as f64 / async_q.borrow_mut().run(1, 1, SMALL_COUNT, 64)?)
        })
        .measure("async_idle_consumer_cpu", "ms", idle_cpu_ms_per_s);
    let pipes = Local::new("mproc Pipe, blocking vs async", Role::Mproc)
        .measure("blocking_pipe_pingpong", "us/roundtrip", || {
            MprocPipe.round_trips(ROUND_TRIPS, Placement::Unpinned)
        })
        .measure("async_pipe_pingpong", "us/roundtrip", || {
            AsyncPipe.round_trips(ROUND_TRIPS, Placement::Unpinned)
        });
    Ok(Area {
        name: "aio",
        title: "Async methods against the blocking ones (issue 14)",
        description: format!(
            "Queue: 64-byte `Bytes` messages, 1 producer process (blocking `put`) → 1 consumer process, \
             bounded({CAPACITY}), {SMALL_COUNT} messages a sample; the consumer uses `get` or `get_async` \
             (current-thread tokio runtime). Idle: CPU time of a child whose `get_async` waits 1 s on an \
             empty queue, in ms per second waited (1% = 10 ms). Pipe: `duplex::<u8>()` ping-pong, \
             {ROUND_TRIPS} round trips a sample, both sides blocking or both async."
        ),
        mproc_pending: None,
        contenders: vec![Box::new(queue), Box::new(pipes)],
        comparisons: vec![
            Compare::new("async_queue_64B_1to1", "blocking_queue_64B_1to1")
                .at_least(0.5, "issue 14: async ≥ 0.5× blocking"),
            Compare::new("async_pipe_pingpong", "blocking_pipe_pingpong"),
        ],
    })
}
