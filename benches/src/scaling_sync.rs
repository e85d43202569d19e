//! `Lock` and `Event` as processes outnumber CPUs (issue 16).
//!
//! - Lock: N processes (1, 2, 4, 8) share one lock, each doing its share of
//!   [`LOCK_OPS`] acquire+release pairs around a one-word critical section; total pairs
//!   per second from the first start to the last finish. Floor: the process-shared pthread
//!   mutex under the same load (`c/os_lock_contended.c`).
//! - Event: a token ring of N processes (2, 4, 8), N events; process i does `e[i].wait();
//!   e[i].clear(); e[i + 1].set()`. µs per hand-off. With more processes than CPUs the
//!   next holder is often not running: this is where spinning before sleeping costs.
//!
//! Python: `multiprocessing.Lock` and `Event` under the same loads
//! (`benches/py/py_scaling_sync.py`).

use std::time::Duration;

use mproc::process::Process;
use std::sync::atomic::Ordering::Relaxed;

use mproc::shm::SharedAtomicU64;
use mproc::sync::{Barrier, Event, Lock};

use crate::anchors::{CAnchor, PyAnchor};
use crate::queue::monotonic_ns;
use crate::{Area, Compare, Config, Local, Result, Role, Watchdog};

/// Process counts of the lock curve.
pub const LOCK_PROCS: [usize; 4] = [1, 2, 4, 8];
/// Process counts of the event ring.
pub const RING_PROCS: [usize; 3] = [2, 4, 8];
/// Acquire+release pairs per lock sample, all processes together.
pub const LOCK_OPS: usize = 2_000_000;
/// Hand-offs per event-ring sample.
pub const RING_HANDOFFS: usize = 10_000;

/// A lock child: after the barrier, `n` acquire+release pairs, each incrementing the
/// shared counter; returns its (start, end) on the machine's monotonic clock.
fn locker((lock, counter, go, n): (Lock, SharedAtomicU64, Barrier, u64)) -> (u64, u64) {
    go.wait().expect("start barrier");
    let start = monotonic_ns();
    for _ in 0..n {
        let g = lock.lock().expect("lock");
        // The critical section: the counter is only touched under the lock.
        // A plain load and store (no atomic RMW), as the C floor's `counter++`.
        counter.store(counter.load(Relaxed) + 1, Relaxed);
        drop(g);
    }
    (start, monotonic_ns())
}

fn lock_rate(procs: usize) -> Result<f64> {
    let lock = Lock::new().map_err(|e| format!("lock: {e}"))?;
    let counter = SharedAtomicU64::new(0).map_err(|e| format!("shared value: {e}"))?;
    let go = Barrier::new(procs).map_err(|e| format!("barrier: {e}"))?;
    let each = (LOCK_OPS / procs) as u64;
    let _watchdog = Watchdog::arm(Duration::from_secs(300), "mproc contended lock");
    let children = (0..procs)
        .map(|_| Process::start(locker, (lock.clone(), counter.clone(), go.clone(), each)))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| format!("start: {e}"))?;
    let (mut t0, mut t1) = (u64::MAX, 0);
    for c in children {
        let (s, e) = c.join().map_err(|e| format!("join: {e}"))?;
        t0 = t0.min(s);
        t1 = t1.max(e);
    }
    if counter.load(Relaxed) != each * procs as u64 {
        return Err(format!(
            "counter {} != {}",
            counter.load(Relaxed),
            each * procs as u64
        )
        .into());
    }
    Ok((each * procs as u64) as f64 / ((t1 - t0) as f64 / 1e9))
}

/// A ring member: `rounds` times, wait for its event, clear it, set the next one.
/// Returns when it finished on the monotonic clock.
fn ring_member((mine, next, go, rounds): (Event, Event, Barrier, u64)) -> u64 {
    go.wait().expect("start barrier");
    for _ in 0..rounds {
        mine.wait();
        mine.clear();
        next.set();
    }
    monotonic_ns()
}

fn ring_handoff_us(procs: usize) -> Result<f64> {
    let events = (0..procs)
        .map(|_| Event::new())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| format!("event: {e}"))?;
    let rounds = (RING_HANDOFFS / procs) as u64;
    let go = Barrier::new(procs + 1).map_err(|e| format!("barrier: {e}"))?;
    let _watchdog = Watchdog::arm(Duration::from_secs(300), "mproc event ring");
    let children = (0..procs)
        .map(|i| {
            let next = events[(i + 1) % procs].clone();
            let args = (events[i].clone(), next, go.clone(), rounds);
            Process::start(ring_member, args)
        })
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| format!("start: {e}"))?;
    go.wait().map_err(|e| format!("start barrier: {e}"))?;
    let t0 = monotonic_ns();
    events[0].set();
    let mut t1 = 0;
    for c in children {
        t1 = t1.max(c.join().map_err(|e| format!("join: {e}"))?);
    }
    Ok((t1 - t0) as f64 / 1e3 / (rounds * procs as u64) as f64)
}

/// The `scaling_sync` area.
pub fn area(_cfg: &Config) -> Result<Area> {
    let mut mproc = Local::new("mproc Lock, Event", Role::Mproc);
    let mut comparisons = Vec::new();
    for n in LOCK_PROCS {
        mproc = mproc.measure(format!("mproc_lock_{n}proc"), "ops/s", move || lock_rate(n));
        let floor = Compare::new(
            format!("mproc_lock_{n}proc"),
            format!("os_pshared_mutex_{n}proc"),
        );
        comparisons.push(match n {
            1 => floor.at_least(
                1.0 / 1.2,
                "issue 16: uncontended ≤ 1.2× the pthread floor's time",
            ),
            8 => floor.at_least(1.0, "issue 16: ≥ 1× the pthread mutex with 8 processes"),
            _ => floor,
        });
        comparisons.push(Compare::new(
            format!("mproc_lock_{n}proc"),
            format!("py_lock_{n}proc"),
        ));
    }
    for n in RING_PROCS {
        mproc = mproc.measure(
            format!("mproc_event_ring_{n}proc"),
            "us/handoff",
            move || ring_handoff_us(n),
        );
        comparisons.push(Compare::new(
            format!("mproc_event_ring_{n}proc"),
            format!("py_event_ring_{n}proc"),
        ));
    }
    Ok(Area {
        name: "scaling_sync",
        title: "Scaling: Lock and Event with 1 to 8 processes (issue 16)",
        description: format!(
            "Lock: N processes share one lock, {LOCK_OPS} acquire+release pairs a sample in all, each \
             incrementing a shared counter under the lock; pairs/s from the first start to the last finish. \
             Floor: a process-shared pthread mutex under the same load (`c/os_lock_contended.c`). Event: a token \
             ring of N processes and N events ({RING_HANDOFFS} hand-offs a sample), µs per hand-off. Python: \
             `multiprocessing.Lock`/`Event` under the same loads (`benches/py/py_scaling_sync.py`, fewer \
             operations). Children started with the default start method."
        ),
        mproc_pending: None,
        contenders: vec![
            Box::new(mproc),
            Box::new(CAnchor::new("os_lock_contended")),
            Box::new(PyAnchor::new("py_scaling_sync.py")),
        ],
        comparisons,
    })
}
